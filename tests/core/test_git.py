"""The lock rule a push must keep, and the message the pusher reads."""

from __future__ import annotations

from datetime import UTC, datetime

from lfsd.core.auth import Permission
from lfsd.core.git import GitService, lock_violations, rejection_message
from lfsd.core.lockpath import LockPath
from lfsd.core.locks import Lock

ALICE, BOB = 1, 2


def _lock(lock_id: int, path: str, owner: int, name: str) -> Lock:
    return Lock(lock_id, path, datetime(2026, 1, 1, tzinfo=UTC), owner, name)


LOCKS = {
    LockPath("art/hero.psd"): _lock(7, "art/hero.psd", ALICE, "alice"),
    LockPath("art/bob.psd"): _lock(8, "art/bob.psd", BOB, "bob"),
    LockPath("art/café.psd"): _lock(9, "art/café.psd", ALICE, "alice"),
}


def test_only_other_users_locks_on_changed_paths_refuse_a_push() -> None:
    changed = ["code/main.c", "art/bob.psd", "art/hero.psd", "art/hero.psd", "README"]
    assert [lock.id for lock in lock_violations(changed, LOCKS, BOB)] == [7]
    assert lock_violations(changed, LOCKS, ALICE) == [LOCKS[LockPath("art/bob.psd")]]
    assert lock_violations(["code/main.c", "docs/x.md"], LOCKS, BOB) == []


def test_paths_compare_in_the_locks_normal_form() -> None:
    decomposed = "art/cafe\u0301.psd"  # NFD, as macOS names it
    assert [lock.id for lock in lock_violations([decomposed, "art\\hero.psd"], LOCKS, BOB)] == [9, 7]
    assert lock_violations(["../x", "", "a//b"], LOCKS, BOB) == []  # no lock can name these


def test_the_message_names_path_owner_and_lock_id() -> None:
    message = rejection_message([LOCKS[LockPath("art/hero.psd")]])
    assert "Unable to push locked files:" in message
    assert "* art/hero.psd - alice (lock 7)" in message


def test_services_and_what_they_need() -> None:
    assert GitService.parse("git-upload-pack") is GitService.UPLOAD_PACK
    assert GitService.parse("git-upload-archive") is None
    assert GitService.parse(None) is None
    assert GitService.UPLOAD_PACK.needed is Permission.READ
    assert GitService.RECEIVE_PACK.needed is Permission.WRITE
