"""What a push changes: the paths touched by the commits it brings that the repository does not have yet.

Run inside the pre-receive hook, where git has the pushed objects in quarantine and the refs not yet moved, so
``--not --all`` leaves exactly the new commits, for a new branch as for an update: work grows with the push, not
with the history.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lfsd.core.git import ZERO_OID, GitFailed

READ_SIZE = 64 * 1024


@dataclass(frozen=True, slots=True)
class RefUpdate:
    old: str
    new: str
    ref: str


def parse_updates(text: str) -> list[RefUpdate]:
    """The hook's stdin: one ``OLD NEW REF`` line per ref."""
    updates = []
    for line in text.splitlines():
        if not line.strip():
            continue
        old, new, ref = line.split(" ", 2)  # a malformed line is a ValueError: the hook refuses the push
        updates.append(RefUpdate(old, new, ref))
    return updates


def changed_paths(updates: list[RefUpdate], *, cwd: Path | None = None, git: str = "git") -> Iterator[str]:
    """Every path a new commit adds, changes or removes against its parent (each path may come more than once).

    A deleted ref brings nothing. A merge contributes only what it changes against every parent (``--cc``): what it
    brings from the merged side was checked (or already present) as those commits themselves. ``cwd``: the
    repository (the hook runs in it).
    """
    tips = [update.new for update in updates if update.new != ZERO_OID]
    if not tips:
        return
    revs = subprocess.Popen([git, "rev-list", *tips, "--not", "--all"], cwd=cwd, stdout=subprocess.PIPE)
    assert revs.stdout is not None
    diff = subprocess.Popen(
        [git, "diff-tree", "--stdin", "-r", "--cc", "--no-renames", "--name-only", "-z", "--no-commit-id", "--root"],
        cwd=cwd,
        stdin=revs.stdout,
        stdout=subprocess.PIPE,
    )
    revs.stdout.close()  # diff-tree holds the pipe now; rev-list sees it close if diff-tree dies
    assert diff.stdout is not None
    rest = b""
    try:
        while chunk := diff.stdout.read(READ_SIZE):
            *names, rest = (rest + chunk).split(b"\0")
            for name in names:
                if name:
                    yield name.decode("utf-8", "surrogateescape")
    finally:
        diff.stdout.close()
        codes = (revs.wait(), diff.wait())
    if codes != (0, 0):
        raise GitFailed(f"could not list the pushed changes (rev-list {codes[0]}, diff-tree {codes[1]})")
