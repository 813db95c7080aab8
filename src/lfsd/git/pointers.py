"""LFS pointers in Git history, read with git itself and streamed: which LFS objects the refs of a repository
reference (for ``gc --unreachable``), and which files a push brings as plain blobs where ``.gitattributes`` asks
for LFS (the optional pointer check of the pre-receive hook)."""

from __future__ import annotations

import io
import os
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from lfsd.core.git import ZERO_OID, GitFailed
from lfsd.core.oid import Oid
from lfsd.core.pointer import MAX_POINTER_SIZE, Pointer, parse_pointer
from lfsd.core.repo import RepoPath
from lfsd.git.repositories import BareRepositories
from lfsd.offload import in_thread

_REGULAR_FILES = (b"100644", b"100755")


def referenced_pointers(git_dir: Path, *, git: str = "git") -> Iterator[Pointer]:
    """Every LFS pointer some ref of ``git_dir`` reaches (each blob once). Blobs of pointer size only are read: a
    repository's big files never pass through here, and memory stays bounded whatever its history."""
    small_blobs = f"--filter=combine:object:type=blob+blob:limit={MAX_POINTER_SIZE}"
    revs = subprocess.Popen(
        [git, "--git-dir", str(git_dir), "rev-list", "--objects", "--no-object-names", small_blobs, "--all"],
        stdout=subprocess.PIPE,
    )
    assert revs.stdout is not None
    cat = subprocess.Popen(
        [git, "--git-dir", str(git_dir), "cat-file", "--batch"], stdin=revs.stdout, stdout=subprocess.PIPE
    )
    revs.stdout.close()  # cat-file holds the pipe now
    assert cat.stdout is not None
    try:
        for kind, body in _batch_output(cat.stdout):
            if kind == b"blob" and (pointer := parse_pointer(body)) is not None:
                yield pointer
    finally:
        cat.stdout.close()
        codes = (revs.wait(), cat.wait())
    if codes != (0, 0):
        raise GitFailed(f"could not read the repository's pointers (rev-list {codes[0]}, cat-file {codes[1]})")


def _batch_output(out: IO[bytes]) -> Iterator[tuple[bytes, bytes]]:
    """``(type, content)`` per object of ``git cat-file --batch`` output."""
    while header := out.readline():
        fields = header.split()
        if len(fields) != 3:
            raise GitFailed(f"unexpected cat-file output: {header[:100]!r}")
        size = int(fields[2])
        body = out.read(size + 1)  # the content and its newline
        if len(body) != size + 1:
            raise GitFailed("cat-file output ended early")
        yield fields[1], body[:-1]


@dataclass(frozen=True, slots=True)
class PlainFile:
    """A file a push brings as a plain blob although ``.gitattributes`` marks its path ``filter=lfs``."""

    path: str
    ref: str


def plain_lfs_files(
    updates: Sequence[tuple[str, str]], *, cwd: Path | None = None, git: str = "git"
) -> list[PlainFile]:
    """The files that ``updates`` (``(new tip, ref)`` pairs of a push, in the pre-receive hook) add or change as
    plain blobs at paths the tip's own ``.gitattributes`` gives to LFS. Only the new commits are looked at, and
    attributes are evaluated only for the blobs that are not pointers."""
    found: list[PlainFile] = []
    for tip, ref in updates:
        if tip == ZERO_OID:
            continue
        candidates = _new_blobs(tip, cwd, git)
        plain = _not_pointers(candidates, cwd, git)
        if plain:
            found += [PlainFile(path, ref) for path in _lfs_paths(tip, sorted(plain), cwd, git)]
    return found


def _git(cwd: Path | None, git: str, *args: str, stdin: bytes = b"", env: dict[str, str] | None = None) -> bytes:
    result = subprocess.run([git, *args], cwd=cwd, input=stdin, capture_output=True, check=False, env=env)
    if result.returncode != 0:
        raise GitFailed(f"git {args[0]} failed: {result.stderr.decode('utf-8', 'replace').strip()[:300]}")
    return result.stdout


def _new_blobs(tip: str, cwd: Path | None, git: str) -> dict[str, str]:
    """``{path: blob}`` for the regular files the commits new to the repository add or change (the last one wins
    for a path changed twice: history order does not matter for the check, each version is checked when seen)."""
    revs = subprocess.Popen([git, "rev-list", tip, "--not", "--all"], cwd=cwd, stdout=subprocess.PIPE)
    assert revs.stdout is not None
    diff = subprocess.Popen(
        [git, "diff-tree", "--stdin", "-r", "--raw", "-z", "--no-renames", "--no-commit-id", "--root"],
        cwd=cwd,
        stdin=revs.stdout,
        stdout=subprocess.PIPE,
    )
    revs.stdout.close()
    assert diff.stdout is not None
    blobs: dict[str, str] = {}
    try:
        fields = diff.stdout.read().split(b"\0")
    finally:
        diff.stdout.close()
        codes = (revs.wait(), diff.wait())
    if codes != (0, 0):
        raise GitFailed(f"could not list the pushed files (rev-list {codes[0]}, diff-tree {codes[1]})")
    # ":OLDMODE NEWMODE OLD NEW STATUS" then the path, each ended by NUL.
    for meta, path in zip(fields[0::2], fields[1::2], strict=False):
        parts = meta.lstrip(b":").split(b" ")
        if len(parts) == 5 and parts[1] in _REGULAR_FILES and parts[3] != ZERO_OID.encode():
            blobs[path.decode("utf-8", "surrogateescape")] = parts[3].decode("ascii")
    return blobs


def _not_pointers(blobs: dict[str, str], cwd: Path | None, git: str) -> set[str]:
    """The paths of ``blobs`` whose content is not an LFS pointer (big blobs are judged by size, never read)."""
    if not blobs:
        return set()
    names = sorted(set(blobs.values()))
    sizes: dict[str, int] = {}
    for line in _git(cwd, git, "cat-file", "--batch-check=%(objectname) %(objectsize)", stdin=_lines(names)).split(
        b"\n"
    ):
        if line:
            name, size = line.decode("ascii").split(" ")
            sizes[name] = int(size)
    small = [name for name in names if sizes[name] < MAX_POINTER_SIZE]
    pointers: set[str] = set()
    if small:
        content = _git(cwd, git, "cat-file", "--batch", stdin=_lines(small))
        for name, (_kind, body) in zip(small, _batch_output(io.BytesIO(content)), strict=True):
            if parse_pointer(body) is not None:
                pointers.add(name)
    return {path for path, blob in blobs.items() if blob not in pointers}


def _lfs_paths(tip: str, paths: list[str], cwd: Path | None, git: str) -> list[str]:
    """Those of ``paths`` whose ``filter`` attribute at commit ``tip`` is ``lfs`` (read from a throwaway index of
    the tip's tree: a bare repository has no work tree to read ``.gitattributes`` from)."""
    with tempfile.TemporaryDirectory(prefix="lfsd-attrs-") as scratch:
        env = {**os.environ, "GIT_INDEX_FILE": str(Path(scratch) / "index")}
        _git(cwd, git, "read-tree", tip, env=env)
        out = _git(cwd, git, "check-attr", "--cached", "-z", "--stdin", "filter", stdin=_nul(paths), env=env)
    fields = out.split(b"\0")
    lfs = []
    for path, _attr, value in zip(fields[0::3], fields[1::3], fields[2::3], strict=False):
        if value == b"lfs":
            lfs.append(path.decode("utf-8", "surrogateescape"))
    return lfs


def _lines(names: Sequence[str]) -> bytes:
    return "".join(name + "\n" for name in names).encode("ascii")


def _nul(paths: Sequence[str]) -> bytes:
    return b"".join(path.encode("utf-8", "surrogateescape") + b"\0" for path in paths)


class GitReferencedObjects:
    """Implements ``core.reachability.ReferencedObjects`` over the bare repositories."""

    def __init__(self, repositories: BareRepositories, *, git: str = "git") -> None:
        self._repositories = repositories
        self._git = git

    async def referenced(self, repo: RepoPath) -> set[Oid] | None:
        return await in_thread(self._referenced, repo)

    def _referenced(self, repo: RepoPath) -> set[Oid] | None:
        git_dir = self._repositories.location(repo)
        if not (git_dir / "HEAD").is_file():
            return None
        refs = subprocess.run(
            [self._git, "--git-dir", str(git_dir), "for-each-ref", "--count=1", "--format=%(refname)"],
            capture_output=True,
            check=False,
        )
        if refs.returncode != 0:
            raise GitFailed(f"could not list the refs of {repo}")
        if not refs.stdout.strip():
            return None  # nothing pushed: its Git lives elsewhere (or nowhere yet), so nothing is known
        return {pointer.oid for pointer in referenced_pointers(git_dir, git=self._git)}
