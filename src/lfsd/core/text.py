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


def ascii_number(text: object, max_digits: int) -> int | None:
    """The number ``text`` spells in 1 to ``max_digits`` ASCII digits, else None.

    ``str.isdigit`` alone also accepts other scripts' digits (``²``, ``٣``), which ``int`` then rejects or reads.
    """
    if not isinstance(text, str) or not 0 < len(text) <= max_digits or not (text.isascii() and text.isdigit()):
        return None
    return int(text)
