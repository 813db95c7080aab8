"""Reading the rules file (TOML, or JSON when its name ends in ``.json``)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from lfsd.core.external import InvalidRules, RuleSet


def load_rules(path: Path) -> RuleSet:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise InvalidRules(f"cannot read the rules file {path}: {error.strerror}") from None
    try:
        document = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as error:
        raise InvalidRules(f"the rules file {path} is not valid: {error}") from None
    try:
        return RuleSet.parse(document)
    except InvalidRules as error:
        raise InvalidRules(f"{path}: {error}") from None
