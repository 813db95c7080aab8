"""Characters that no stored or compared value may hold."""

from __future__ import annotations

import re
from typing import Final

# C0 controls (NUL included: PostgreSQL cannot store it in text), DEL, C1 controls, and lone surrogates (no UTF-8
# encoding exists for them, so no driver can send them). git refuses all the controls in ref names, and in a path
# or a name they only ever serve to hide or forge text in terminals and logs.
_FORBIDDEN: Final = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def has_control_characters(text: str) -> bool:
    return _FORBIDDEN.search(text) is not None
