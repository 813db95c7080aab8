"""ObjectFile.commit makes the object durable: its data, its name, and every directory created for it."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from lfsd.storage.objectfile import ObjectFile

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
