from __future__ import annotations

import pytest

from lfsd.core.auth import Identity, Permission, Repo, effective_permission, require
from lfsd.core.errors import Forbidden, InvalidOid, InvalidRepoPath, NotFound, Unauthorized
from lfsd.core.oid import Oid
from lfsd.core.repo import RepoPath

GOOD = "a" * 64


def test_oid_accepts_64_lowercase_hex() -> None:
    assert Oid.parse(GOOD) == GOOD
    assert Oid.parse(GOOD).shard == ("aa", "aa")


@pytest.mark.parametrize(
    "value",
    [
        "A" * 64,
        "a" * 63,
        "a" * 65,
        "g" * 64,
        "../" + "a" * 61,
        "a" * 63 + "\x00",
        "а" * 64,
        "",
        None,
        12,
        " " + "a" * 63,
    ],
)
def test_oid_rejects(value: object) -> None:
    with pytest.raises(InvalidOid):
        Oid.parse(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("acme/game", "acme/game"), ("acme/game.git", "acme/game"), ("a/b/c", "a/b/c"), ("o_1/n-2.x", "o_1/n-2.x")],
)
def test_repo_path_parses(value: str, expected: str) -> None:
    assert RepoPath.parse(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "acme",
        "acme/",
        "/acme/game",
        "acme//game",
        "acme/../game",
        "acme/./game",
        "acme/.hidden",
        "acme/%2e%2e",
        "acme\\game",
        "acme/ga me",
        "acme/game\n",
        "acme/x.git/y",
        "a/" + "b" * 300,
        "/".join(["a"] * 9),
        "acme/game.",
    ],
)
def test_repo_path_rejects(value: str) -> None:
    with pytest.raises(InvalidRepoPath):
        RepoPath.parse(value)


def test_permission_parse() -> None:
    assert Permission.parse("write") is Permission.WRITE
    with pytest.raises(ValueError, match="unknown permission"):
        Permission.parse("none")
    with pytest.raises(ValueError, match="unknown permission"):
        Permission.parse("owner")


PRIVATE = Repo(1, RepoPath("a/b"), is_public=False)
PUBLIC = Repo(2, RepoPath("a/c"), is_public=True)
ALICE = Identity(1, "alice", is_admin=False)
ADMIN = Identity(2, "root", is_admin=True)


def test_effective_permission() -> None:
    assert effective_permission(None, PRIVATE, Permission.NONE) is Permission.NONE
    assert effective_permission(None, PUBLIC, Permission.NONE) is Permission.READ
    assert effective_permission(ALICE, PUBLIC, Permission.NONE) is Permission.READ
    assert effective_permission(ALICE, PUBLIC, Permission.WRITE) is Permission.WRITE
    assert effective_permission(ADMIN, PRIVATE, Permission.NONE) is Permission.ADMIN
    # A grant never reaches an anonymous caller.
    assert effective_permission(None, PRIVATE, Permission.ADMIN) is Permission.NONE


def test_require_maps_shortfalls_to_spec_statuses() -> None:
    require(ALICE, Permission.WRITE, Permission.READ)
    with pytest.raises(Unauthorized):
        require(None, Permission.READ, Permission.WRITE)
    with pytest.raises(Forbidden):
        require(ALICE, Permission.READ, Permission.WRITE)
    with pytest.raises(NotFound):
        require(ALICE, Permission.NONE, Permission.READ)
