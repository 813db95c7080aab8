"""Repository paths: ``owner/name`` or nested ``group/sub/name``, as they appear in Git remote URLs."""

from __future__ import annotations

import re
from typing import Final

from lfsd.core.errors import InvalidRepoPath

_SEGMENT_RE: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")
MAX_SEGMENTS: Final = 8
MAX_LENGTH: Final = 255


class RepoPath(str):
    """A validated repository path: 2..8 segments of ``[A-Za-z0-9_.-]``, none empty, ``.`` or ``..``.

    A trailing ``.git`` is not part of the path: ``group/name.git`` and ``group/name`` name the same repository.
    """

    __slots__ = ()

    @classmethod
    def parse(cls, value: object) -> RepoPath:
        if not isinstance(value, str) or len(value) > MAX_LENGTH + 4:
            raise InvalidRepoPath()
        path = value.removesuffix(".git")
        segments = path.split("/")
        if not 2 <= len(segments) <= MAX_SEGMENTS or len(path) > MAX_LENGTH:
            raise InvalidRepoPath()
        for segment in segments:
            if _SEGMENT_RE.fullmatch(segment) is None or segment.endswith(".git") or segment.endswith("."):
                raise InvalidRepoPath()
        return cls(path)

    @property
    def owner(self) -> str:
        return self.split("/", 1)[0]
