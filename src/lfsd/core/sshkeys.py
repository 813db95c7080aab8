"""OpenSSH public keys: parsed and checked at the edge, fingerprinted as ``ssh-keygen -lf`` does.

Accepted: ``ssh-ed25519``, ``ecdsa-sha2-nistp256/384/521`` and ``ssh-rsa`` of at least 2048 bits. DSA (``ssh-dss``,
1024 bits by definition and removed from OpenSSH), short RSA keys and anything that does not decode are refused with
a message that says why. The key blob is read field by field (RFC 4253 section 6.6, RFC 5656, RFC 8709) and must end
exactly where its last field does.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Protocol

from lfsd.core.errors import BadRequest

MIN_RSA_BITS: Final = 2048
MAX_KEY_LABEL_LENGTH: Final = 100
MAX_KEY_TYPE_LENGTH: Final = 64
MAX_KEY_BASE64_LENGTH: Final = 8192  # an RSA key of 16384 bits is about 2,800 characters

# curve name in the key type -> the length of an uncompressed point (0x04, x, y)
_EC_POINTS: Final = {"nistp256": 65, "nistp384": 97, "nistp521": 133}
SUPPORTED_TYPES: Final = ("ssh-ed25519", *(f"ecdsa-sha2-{curve}" for curve in _EC_POINTS), "ssh-rsa")


class InvalidPublicKey(BadRequest):
    default_message = "invalid SSH public key"


@dataclass(frozen=True, slots=True)
class PublicKey:
    key_type: str
    blob: bytes
    comment: str = ""

    @property
    def base64(self) -> str:
        return base64.b64encode(self.blob).decode("ascii")

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.blob)

    @property
    def openssh(self) -> str:
        """``TYPE BASE64``: the form authorized_keys and AuthorizedKeysCommand use (without the comment)."""
        return f"{self.key_type} {self.base64}"


def fingerprint(blob: bytes) -> str:
    """``SHA256:`` and the unpadded base64 of the blob's SHA-256, as ``ssh-keygen -lf`` prints it."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii").rstrip("=")


def fingerprint_digest(blob: bytes) -> str:
    """The blob's SHA-256 in lowercase hex: what the database keeps unique (hex compares the same under every
    collation; base64 would not under MySQL's case-insensitive ones)."""
    return hashlib.sha256(blob).hexdigest()


def fingerprint_of_digest(digest: str) -> str:
    """The ``SHA256:…`` fingerprint of a stored ``fingerprint_digest``."""
    return "SHA256:" + base64.b64encode(bytes.fromhex(digest)).decode("ascii").rstrip("=")


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._at = 0

    def string(self) -> bytes:
        if self._at + 4 > len(self._data):
            raise InvalidPublicKey("invalid SSH public key: the key data is truncated")
        size = int.from_bytes(self._data[self._at : self._at + 4], "big")
        start = self._at + 4
        if start + size > len(self._data):
            raise InvalidPublicKey("invalid SSH public key: the key data is truncated")
        self._at = start + size
        return self._data[start : self._at]

    def end(self) -> None:
        if self._at != len(self._data):
            raise InvalidPublicKey("invalid SSH public key: unexpected bytes after the key data")


def _check_blob(key_type: str, blob: bytes) -> None:
    reader = _Reader(blob)
    inner = reader.string()
    if inner != key_type.encode("ascii"):
        raise InvalidPublicKey(f"invalid SSH public key: the key data is a {inner[:40]!r} key, not {key_type}")
    if key_type == "ssh-ed25519":
        if len(reader.string()) != 32:
            raise InvalidPublicKey("invalid SSH public key: an ed25519 key is 32 bytes")
    elif key_type.startswith("ecdsa-sha2-"):
        curve = key_type.removeprefix("ecdsa-sha2-")
        if reader.string() != curve.encode("ascii"):
            raise InvalidPublicKey(f"invalid SSH public key: the curve does not match {key_type}")
        point = reader.string()
        if len(point) != _EC_POINTS[curve] or point[0] != 4:
            raise InvalidPublicKey(f"invalid SSH public key: not an uncompressed {curve} point")
    else:  # ssh-rsa: mpint e, mpint n
        exponent = int.from_bytes(reader.string(), "big")
        modulus = int.from_bytes(reader.string(), "big")
        if exponent < 3 or exponent % 2 == 0:
            raise InvalidPublicKey("invalid SSH public key: bad RSA exponent")
        if modulus.bit_length() < MIN_RSA_BITS:
            raise InvalidPublicKey(
                f"RSA keys need at least {MIN_RSA_BITS} bits (this one has {modulus.bit_length()}): "
                "make an ed25519 key with `ssh-keygen -t ed25519`"
            )
    reader.end()


def parse_public_key(text: str) -> PublicKey:
    """One public key line (``TYPE BASE64 [COMMENT]``, as in ``id_ed25519.pub``); options before the type, as in
    authorized_keys, are refused: lfsd decides the options."""
    line = text.strip()
    if not line:
        raise InvalidPublicKey("no SSH public key given (paste the line of your .pub file)")
    if "\n" in line or "\r" in line:
        raise InvalidPublicKey("one SSH public key at a time: the input has several lines")
    if not line.isprintable():
        raise InvalidPublicKey("invalid SSH public key: it contains control characters")
    key_type, _, rest = line.partition(" ")
    encoded, _, comment = rest.strip().partition(" ")
    if key_type == "ssh-dss":
        raise InvalidPublicKey("DSA keys are refused (weak, and removed from OpenSSH): use ssh-keygen -t ed25519")
    if key_type not in SUPPORTED_TYPES:
        shown = key_type[:40]
        raise InvalidPublicKey(f"unsupported SSH key type {shown!r}: expected one of {', '.join(SUPPORTED_TYPES)}")
    if not encoded or len(encoded) > MAX_KEY_BASE64_LENGTH:
        raise InvalidPublicKey("invalid SSH public key: the key data is missing or too long")
    try:
        blob = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidPublicKey("invalid SSH public key: the key data is not base64") from None
    _check_blob(key_type, blob)
    return PublicKey(key_type, blob, comment.strip())


def parse_offered_key(key_type: str, encoded: str) -> PublicKey | None:
    """The key sshd offers to ``AuthorizedKeysCommand`` (``%t %k``), or None when it is not one lfsd accepts."""
    try:
        return parse_public_key(f"{key_type} {encoded}")
    except InvalidPublicKey:
        return None


def check_key_label(label: str | None) -> None:
    if label is not None and (len(label) > MAX_KEY_LABEL_LENGTH or not label.isprintable()):
        raise BadRequest(f"an SSH key label is at most {MAX_KEY_LABEL_LENGTH} printable characters")


@dataclass(frozen=True, slots=True)
class SshKeyInfo:
    """A key as listed: type, fingerprint and label; never more of the key than that."""

    id: int
    user_id: int
    user_name: str
    key_type: str
    fingerprint: str
    label: str | None
    created_at: datetime
    last_used_at: datetime | None


class SshKeyAdmin(Protocol):
    async def add(self, user_id: int, key: PublicKey, label: str | None) -> int:
        """The new key's id; ``Conflict`` when the key is already registered (to anyone)."""

    async def keys_of(self, user_id: int) -> list[SshKeyInfo]: ...

    async def key_info(self, key_id: int) -> SshKeyInfo | None: ...

    async def remove(self, key_id: int) -> bool: ...
