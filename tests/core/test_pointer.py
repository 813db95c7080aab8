"""LFS pointer files, parsed the way git-lfs writes them and nothing looser."""

from __future__ import annotations

import pytest

from lfsd.core.pointer import Pointer, parse_pointer

OID = "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393"
GOOD = f"version https://git-lfs.github.com/spec/v1\noid sha256:{OID}\nsize 12345\n".encode()


def test_a_pointer_as_git_lfs_writes_it() -> None:
    assert parse_pointer(GOOD) == Pointer(OID, 12345)  # type: ignore[arg-type]
    old = GOOD.replace(b"git-lfs.github.com", b"hawser.github.com")
    assert parse_pointer(old) == Pointer(OID, 12345)  # type: ignore[arg-type]
    ext = f"version https://git-lfs.github.com/spec/v1\next-0-foo sha256:{OID}\noid sha256:{OID}\nsize 1\n"
    assert parse_pointer(ext.encode()) == Pointer(OID, 1)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"int main(void) { return 0; }\n",
        GOOD[:-1],  # no final newline
        GOOD.replace(b"version https://git-lfs.github.com/spec/v1\n", b""),  # no version
        GOOD.replace(b"spec/v1", b"spec/v2"),
        GOOD.replace(b"sha256:", b"sha1:"),
        GOOD.replace(OID.encode(), OID.upper().encode()),
        GOOD.replace(b"size 12345", b"size -1"),
        GOOD.replace(b"size 12345", b"size 012"),
        GOOD.replace(b"size 12345", "size ١٢".encode()),  # non-ASCII digits
        GOOD.replace(b"size 12345\n", b""),
        f"version https://git-lfs.github.com/spec/v1\nsize 1\noid sha256:{OID}\n".encode(),  # keys out of order
        GOOD + b"size 2\n",  # a key twice
        GOOD + b"x" * 1024,
    ],
)
def test_anything_else_is_not_a_pointer(blob: bytes) -> None:
    assert parse_pointer(blob) is None
