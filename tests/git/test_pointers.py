"""LFS pointers in Git history, read with the real git: what the refs reference, and what a push brings as plain
files where .gitattributes asks for LFS."""

from __future__ import annotations

import hashlib
from pathlib import Path

from lfsd.core.git import ZERO_OID
from lfsd.git.pointers import PlainFile, plain_lfs_files, referenced_pointers
from tests.git.test_changes import Repo


def _pointer(content: bytes) -> tuple[str, bytes]:
    oid = hashlib.sha256(content).hexdigest()
    return oid, f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {len(content)}\n".encode()


def _write(repo: Repo, name: str, data: bytes) -> None:
    target = repo.path / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    repo.git("add", name)


def _commit(repo: Repo, message: str) -> str:
    repo.git("commit", "-q", "-m", message)
    return repo.git("rev-parse", "HEAD")


def test_the_pointers_every_ref_reaches_and_only_those(tmp_path: Path) -> None:
    repo = Repo(tmp_path)
    first, first_blob = _pointer(b"first")
    second, second_blob = _pointer(b"second")
    dropped, dropped_blob = _pointer(b"dropped")
    _write(repo, "a.bin", first_blob)
    _write(repo, "big.dat", b"x" * 5000)  # above pointer size: never read
    _write(repo, "notes.txt", b"version https://git-lfs.github.com/spec/v1\n")  # pointer-like, not a pointer
    _commit(repo, "one")
    _write(repo, "a.bin", second_blob)  # the first version stays in history: still referenced
    _commit(repo, "two")
    repo.git("checkout", "-q", "-b", "side")
    _write(repo, "gone.bin", dropped_blob)
    _commit(repo, "side")
    found = {p.oid for p in referenced_pointers(repo.path / ".git")}
    assert found == {first, second, dropped}
    # Once no ref reaches the commit, its pointer is no longer referenced (reflogs do not count).
    repo.git("checkout", "-q", "main")
    repo.git("branch", "-q", "-D", "side")
    assert {p.oid for p in referenced_pointers(repo.path / ".git")} == {first, second}


def test_a_push_of_plain_files_where_gitattributes_asks_for_lfs(tmp_path: Path) -> None:
    repo = Repo(tmp_path)
    _write(repo, ".gitattributes", b"*.psd filter=lfs diff=lfs merge=lfs -text\nart/** filter=lfs\n")
    base = _commit(repo, "attributes")
    _, pointer_blob = _pointer(b"layered")
    _write(repo, "hero.psd", pointer_blob)  # as git-lfs stores it: fine
    _write(repo, "art/sky.png", b"\x89PNG plain bytes")  # plain, but art/** is LFS
    _write(repo, "deep/dir/raw.psd", b"y" * 4096)  # plain and big
    _write(repo, "code/main.c", b"int main;\n")  # plain, and not LFS: fine
    pushed = _commit(repo, "assets")
    repo.git("update-ref", "refs/heads/main", base)  # as in pre-receive: the refs do not have it yet
    found = plain_lfs_files([(pushed, "refs/heads/main")], cwd=repo.path)
    assert found == [PlainFile("art/sky.png", "refs/heads/main"), PlainFile("deep/dir/raw.psd", "refs/heads/main")]
    # A deleted ref and commits the refs have already bring nothing.
    assert plain_lfs_files([(ZERO_OID, "refs/heads/old")], cwd=repo.path) == []
    repo.git("update-ref", "refs/heads/main", pushed)
    assert plain_lfs_files([(pushed, "refs/heads/main")], cwd=repo.path) == []


def test_attributes_come_from_the_pushed_tip(tmp_path: Path) -> None:
    repo = Repo(tmp_path)
    base = _commit_file(repo, "README", b"hi\n")
    _write(repo, "model.bin", b"plain weights")
    _write(repo, ".gitattributes", b"*.bin filter=lfs\n")
    tip = _commit(repo, "track bins, badly")
    repo.git("update-ref", "refs/heads/main", base)
    assert plain_lfs_files([(tip, "refs/heads/main")], cwd=repo.path) == [PlainFile("model.bin", "refs/heads/main")]


def _commit_file(repo: Repo, name: str, data: bytes) -> str:
    _write(repo, name, data)
    return _commit(repo, name)
