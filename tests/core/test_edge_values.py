"""The values a request carries, parsed into what their columns hold: lock paths, ids, refs and user names."""

from __future__ import annotations

import unicodedata

import pytest

from lfsd.core.lockpath import MAX_LOCK_PATH_LENGTH, InvalidLockPath, LockPath
from lfsd.core.locks import MAX_LOCK_ID, MAX_REF_LENGTH, InvalidRef, LockId, LockNotFound, RefName
from lfsd.core.names import InvalidUserName, UserName
from lfsd.observability.logs import escape


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("a/b.psd", "a/b.psd"),
        (unicodedata.normalize("NFD", "art/h\u00e9ros.psd"), "art/h\u00e9ros.psd"),
        ("dir\\sub\\file.bin", "dir/sub/file.bin"),
        ("x:y.txt", "x:y.txt"),
        (" spaced ", " spaced "),
        ("no\u00a0break\u200d.psd", "no\u00a0break\u200d.psd"),
        ("e\u0301" * MAX_LOCK_PATH_LENGTH, "\u00e9" * MAX_LOCK_PATH_LENGTH),
    ],
)
def test_lock_paths_are_normalised(sent: str, stored: str) -> None:
    path = LockPath.parse(sent)
    assert path == stored and isinstance(path, LockPath)
    assert LockPath.parse(path) == path  # normalising is idempotent


@pytest.mark.parametrize(
    "sent",
    [
        None,
        7,
        "",
        "/abs",
        "\\abs",
        "C:",
        "C:/x",
        "c:\\x",
        "a//b",
        "a/",
        "./a",
        "a/./b",
        "a/../b",
        "a\\..\\b",
        "a\x00b",
        "a\tb",
        "a\nb",
        "a\x7fb",
        "a\x85b",
        "a\ud800b",
        "p" * (MAX_LOCK_PATH_LENGTH + 1),
        "\u0958" * (MAX_LOCK_PATH_LENGTH // 2 + 1),  # grows past the column once normalised
        "p" * 100_000,
    ],
)
def test_lock_paths_rejected(sent: object) -> None:
    with pytest.raises(InvalidLockPath) as raised:
        LockPath.parse(sent)
    assert raised.value.status == 422


def test_lock_ids_span_the_column() -> None:
    assert LockId.parse("1") == 1 and LockId.parse(str(MAX_LOCK_ID)) == MAX_LOCK_ID == 2**31 - 1
    for bad in ("0", str(MAX_LOCK_ID + 1), "99999999999", "9" * 400, "-1", "1.0", "", "²", "abc", None, 5):
        with pytest.raises(LockNotFound) as raised:
            LockId.parse(bad)
        assert raised.value.status == 404


def test_refs() -> None:
    assert RefName.parse(None) is None and RefName.parse("") is None
    assert RefName.parse("refs/heads/" + "x" * (MAX_REF_LENGTH - 11)) is not None
    for bad in ("refs/heads/a\x00b", "a\nb", "x" * (MAX_REF_LENGTH + 1), 5, ["refs/heads/main"]):
        with pytest.raises(InvalidRef):
            RefName.parse(bad)


def test_user_names() -> None:
    assert UserName.parse("alice") == "alice" and UserName.parse("r" * 100) == "r" * 100
    for bad in ("", "r" * 101, "a:b", "a\x00b", "a\x1bb", "a\x85b", "a\nb", None):
        with pytest.raises(InvalidUserName):
            UserName.parse(bad)


@pytest.mark.parametrize(
    ("text", "logged"),
    [
        ("plain text", "plain text"),
        ("a\nb\rc", "a\\nb\\rc"),
        ("back\\slash", "back\\\\slash"),
        ("nel\x85 ls\u2028 esc\x1b del\x7f", "nel\\x85 ls\\u2028 esc\\x1b del\\x7f"),
        ("undecodable \udcff", "undecodable \\udcff"),
        ("caf\u00e9 \U0001f600", "caf\u00e9 \U0001f600"),
    ],
)
def test_log_escape(text: str, logged: str) -> None:
    assert escape(text) == logged
    assert logged.isprintable()
