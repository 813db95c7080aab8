"""ObjectFile.commit makes the object durable: its data, its name, and every directory created for it."""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from lfsd.storage.objectfile import ObjectFile, links_unnamed_files

Recorder = Callable[[], list[Path]]


@pytest.fixture
def fsynced(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    """Every path ``os.fsync`` is called on, in order (the real fsync still runs)."""
    calls: list[Path] = []
    real = os.fsync

    def recording(fd: int) -> None:
        calls.append(Path(f"/proc/self/fd/{fd}").readlink())
        real(fd)

    monkeypatch.setattr(os, "fsync", recording)
    return lambda: calls


# Named temp files (file systems without O_TMPFILE, and the tests below that ask for one).


def _commit(root: Path, *, fsync: bool) -> Path:
    (root / "tmp").mkdir(exist_ok=True)
    name = "abcd" + "e" * 60
    final = root / "objects" / "ab" / "cd" / name
    file = ObjectFile(root / "tmp" / f"{name}.tmp", 3, direct=False)
    file.write(memoryview(b"abc"))
    file.commit(final, fsync=fsync)
    return final


def test_new_shard_directories_are_synced_into_their_parents(tmp_path: Path, fsynced: Recorder) -> None:
    (tmp_path / "objects").mkdir()
    final = _commit(tmp_path, fsync=True)
    assert final.read_bytes() == b"abc"
    objects = tmp_path / "objects"
    # The file's data, then each new directory's entry in its parent, then the object's name in its directory.
    assert fsynced()[1:] == [objects, objects / "ab", objects / "ab" / "cd"]
    assert fsynced()[0].name.endswith(".tmp")


def test_every_missing_level_is_created_and_synced(tmp_path: Path, fsynced: Recorder) -> None:
    _commit(tmp_path, fsync=True)
    objects = tmp_path / "objects"
    assert fsynced()[1:] == [tmp_path, objects, objects / "ab", objects / "ab" / "cd"]


def test_existing_shards_sync_only_the_objects_directory(tmp_path: Path, fsynced: Recorder) -> None:
    shard = tmp_path / "objects" / "ab" / "cd"
    shard.mkdir(parents=True)
    _commit(tmp_path, fsync=True)
    assert fsynced()[1:] == [shard]


def test_no_fsync_when_disabled(tmp_path: Path, fsynced: Recorder) -> None:
    final = _commit(tmp_path, fsync=False)
    assert final.read_bytes() == b"abc"
    assert fsynced() == []


# Unnamed files (O_TMPFILE in the shard directory, linked at commit); the file systems under tests support them.

NAME = "abcd" + "e" * 60


def _unnamed(root: Path, data: bytes = b"abc", *, fsync: bool = True) -> ObjectFile:
    (root / "tmp").mkdir(exist_ok=True)
    shard = root / "objects" / "ab" / "cd"
    file = ObjectFile(root / "tmp" / f"{NAME}.tmp", len(data), direct=False, unnamed_in=str(shard), fsync=fsync)
    assert not file.named
    file.write(memoryview(data))
    return file


def test_an_unnamed_file_is_synced_linked_synced_again_and_its_directory_synced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shard = tmp_path / "objects" / "ab" / "cd"
    shard.mkdir(parents=True)
    calls: list[tuple[str, bool]] = []  # (what was synced, whether the object had its name then)
    real = os.fsync

    def recording(fd: int) -> None:
        calls.append((str(Path(f"/proc/self/fd/{fd}").readlink()), (shard / NAME).exists()))
        real(fd)

    monkeypatch.setattr(os, "fsync", recording)
    file = _unnamed(tmp_path)
    assert list(shard.iterdir()) == []  # no name until the commit
    file.commit(shard / NAME, fsync=True)
    assert (shard / NAME).read_bytes() == b"abc"
    # The data before the name; the link count after it (a file system that syncs only what it is told, such as
    # ext4 without a journal, would otherwise keep an entry to an inode with no links); then the entry.
    unnamed = calls[0][0]
    assert unnamed.startswith(f"{shard}/#") and unnamed.endswith(" (deleted)")
    assert calls == [(unnamed, False), (unnamed, True), (str(shard), True)]
    assert list((tmp_path / "tmp").iterdir()) == []


def test_an_unnamed_files_new_shard_directories_are_made_and_synced_when_it_is_opened(
    tmp_path: Path, fsynced: Recorder
) -> None:
    objects = tmp_path / "objects"
    objects.mkdir()
    file = _unnamed(tmp_path)
    assert fsynced() == [objects, objects / "ab"]  # each new directory's entry in its parent
    file.commit(objects / "ab" / "cd" / NAME, fsync=True)
    assert fsynced()[-1] == objects / "ab" / "cd"


def test_an_object_stored_already_is_replaced_by_the_unnamed_file(tmp_path: Path, fsynced: Recorder) -> None:
    """``linkat`` cannot replace: the file is named in tmp/ and renamed over the object, as before."""
    shard = tmp_path / "objects" / "ab" / "cd"
    shard.mkdir(parents=True)
    (shard / NAME).write_bytes(b"old")
    _unnamed(tmp_path).commit(shard / NAME, fsync=True)
    assert (shard / NAME).read_bytes() == b"abc"
    assert fsynced()[-1] == shard
    assert list((tmp_path / "tmp").iterdir()) == []


def test_a_discarded_unnamed_file_leaves_nothing(tmp_path: Path) -> None:
    file = _unnamed(tmp_path, b"x" * 100_000, fsync=False)
    file.discard()
    assert list((tmp_path / "objects" / "ab" / "cd").iterdir()) == []
    assert list((tmp_path / "tmp").iterdir()) == []


@pytest.mark.parametrize("errno_", [errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL])
def test_without_o_tmpfile_a_named_temp_file_is_renamed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fsynced: Recorder, errno_: int
) -> None:
    real = os.open
    refused: list[str] = []

    def no_tmpfile(path: str, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        if flags & os.O_TMPFILE == os.O_TMPFILE:
            refused.append(path)
            raise OSError(errno_, os.strerror(errno_))
        return real(path, flags, mode, dir_fd=dir_fd)

    monkeypatch.setattr(os, "open", no_tmpfile)
    shard = tmp_path / "objects" / "ab" / "cd"
    shard.mkdir(parents=True)
    (tmp_path / "tmp").mkdir()
    file = ObjectFile(tmp_path / "tmp" / f"{NAME}.tmp", 3, direct=True, unnamed_in=str(shard))
    assert refused and file.named
    assert [p.name for p in (tmp_path / "tmp").iterdir()] == [f"{NAME}.tmp"]
    file.write(memoryview(b"abc"))
    file.commit(shard / NAME, fsync=True)
    assert (shard / NAME).read_bytes() == b"abc"
    assert fsynced() == [tmp_path / "tmp" / f"{NAME}.tmp", shard]
    assert list((tmp_path / "tmp").iterdir()) == []
    assert not links_unnamed_files(tmp_path / "tmp", "probe")


def test_the_probe_finds_unnamed_files_and_leaves_nothing(tmp_path: Path) -> None:
    assert links_unnamed_files(tmp_path, "probe")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("unnamed", [True, False], ids=["unnamed", "named"])
def test_discard_waits_for_a_commit_running_in_another_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unnamed: bool
) -> None:
    """An upload cancelled while its commit runs discards from another thread: the commit's descriptor must not be
    closed under it (the number could be reused by the next open, and linked as the object)."""
    shard = tmp_path / "objects" / "ab" / "cd"
    shard.mkdir(parents=True)
    (tmp_path / "tmp").mkdir()
    name = "abcd" + "e" * 60
    file = ObjectFile(tmp_path / "tmp" / f"{name}.tmp", 5, direct=False, unnamed_in=str(shard) if unnamed else None)
    assert file.named is not unnamed
    file.write_whole(memoryview(b"hello"))
    in_commit, release = threading.Event(), threading.Event()
    real = os.fsync

    def held(fd: int) -> None:
        if not in_commit.is_set():
            in_commit.set()
            release.wait(10)
        real(fd)

    monkeypatch.setattr(os, "fsync", held)
    committing = threading.Thread(target=file.commit, args=(shard / name,), kwargs={"fsync": True})
    committing.start()
    assert in_commit.wait(10)
    discarding = threading.Thread(target=file.discard)
    discarding.start()
    discarding.join(0.3)
    try:
        assert discarding.is_alive(), "discard closed the file while its commit was running"
    finally:
        release.set()
        committing.join(10)
        discarding.join(10)
    assert (shard / name).read_bytes() == b"hello"
    assert list((tmp_path / "tmp").iterdir()) == []
