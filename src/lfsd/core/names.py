"""User names, as a request may carry them: the domain of ``users.name``."""

from __future__ import annotations

from typing import Final

from lfsd.core.errors import Unprocessable

MAX_USER_NAME_LENGTH: Final = 100  # users.name is VARCHAR(100)


class InvalidUserName(Unprocessable):
    default_message = f"user names are 1-{MAX_USER_NAME_LENGTH} printable characters without ':'"


class UserName(str):
    """1 to 100 printable characters without ``:`` (the rule ``lfsd user add`` applies): no NUL, no controls.

    A name outside this domain names no user, so a login with one fails like any wrong credentials.
    """

    __slots__ = ()

    @classmethod
    def parse(cls, value: object) -> UserName:
        if not isinstance(value, str) or not 1 <= len(value) <= MAX_USER_NAME_LENGTH:
            raise InvalidUserName()
        if ":" in value or not value.isprintable():
            raise InvalidUserName()
        return cls(value)
