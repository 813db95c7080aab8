"""A credential scoped to one repository (SSH's, ``git-lfs-authenticate``'s) is worth nothing anywhere else."""

from __future__ import annotations

from lfsd.core.auth import Identity, Permission, Repo, effective_permission
from lfsd.core.repo import RepoPath

GAME = Repo(1, RepoPath.parse("acme/game"), is_public=False)
DOCS = Repo(2, RepoPath.parse("acme/docs"), is_public=True)


def test_a_scoped_credential_holds_only_its_repository() -> None:
    scoped = Identity(1, "alice", is_admin=False, repo_scope=GAME.path)
    assert effective_permission(scoped, GAME, Permission.WRITE) is Permission.WRITE
    assert effective_permission(scoped, DOCS, Permission.WRITE) is Permission.NONE  # public too: not its scope


def test_a_scoped_admin_is_scoped_too() -> None:
    admin = Identity(1, "root", is_admin=True, repo_scope=GAME.path)
    assert effective_permission(admin, GAME, Permission.NONE) is Permission.ADMIN
    assert effective_permission(admin, DOCS, Permission.NONE) is Permission.NONE


def test_an_unscoped_credential_is_unchanged() -> None:
    alice = Identity(1, "alice", is_admin=False)
    assert effective_permission(alice, DOCS, Permission.NONE) is Permission.READ
