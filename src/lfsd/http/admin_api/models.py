"""The admin API's request bodies: strict types, unknown fields refused (a typo must not pass as a no-op)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from lfsd.core.tokens import MAX_TOKEN_LABEL_LENGTH

MAX_PASSWORD_LENGTH = 1024


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class NewUser(Strict):
    name: StrictStr = Field(description="1-100 printable characters without ':'")
    admin: StrictBool = False
    password: StrictStr | None = Field(default=None, min_length=1, max_length=MAX_PASSWORD_LENGTH)


class UserChange(Strict):
    """Each field present is changed; ``password: null`` removes the password (tokens only)."""

    disabled: StrictBool | None = None
    admin: StrictBool | None = None
    password: StrictStr | None = Field(default=None, min_length=1, max_length=MAX_PASSWORD_LENGTH)


class PasswordChange(Strict):
    current_password: StrictStr = Field(max_length=MAX_PASSWORD_LENGTH)
    new_password: StrictStr = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)


class NewToken(Strict):
    label: StrictStr | None = Field(default=None, max_length=MAX_TOKEN_LABEL_LENGTH)
    expires_days: StrictInt | None = Field(default=None, ge=1, le=100_000)
    scope: Literal["read", "write", "admin"] = "write"


class NewRepo(Strict):
    path: StrictStr = Field(description="owner/name, or group/sub/name")
    public: StrictBool = False


class RepoChange(Strict):
    """Each field present is changed; ``path`` renames (objects, locks and grants follow)."""

    path: StrictStr | None = None
    public: StrictBool | None = None
    locking: StrictBool | None = None


class GrantChange(Strict):
    permission: Literal["read", "write", "admin"]


class QuotaChange(Strict):
    """A byte quota; ``DELETE`` on the same path clears it (unlimited, or the server-wide default for a repository)."""

    quota_bytes: StrictInt = Field(ge=1, lt=2**63)


class NewSshKey(Strict):
    key: StrictStr = Field(description="one line of a .pub file: TYPE BASE64 [COMMENT]", max_length=16384)
    label: StrictStr | None = Field(default=None, max_length=100, description="defaults to the key's comment")
