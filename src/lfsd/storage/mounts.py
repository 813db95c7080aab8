"""Which file system holds a path (``/proc/self/mountinfo``): a local disk, or one whose calls can hang on a network."""

from __future__ import annotations

import os
import re
from pathlib import Path

# File systems whose metadata calls wait on a server: a stat can block for as long as the server is away.
NETWORK_TYPES = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "ceph", "glusterfs", "9p", "afs", "lustre", "gpfs", "beegfs", "ncpfs"}
)
_ESCAPE = re.compile(r"\\([0-7]{3})")


def file_system_type(path: str | Path, mountinfo: str | None = None) -> str | None:
    """The type of the file system mounted at the longest mount point above ``path`` (``ext4``, ``nfs4``,
    ``fuse.sshfs``…); None where ``/proc`` cannot say. Blocking."""
    if mountinfo is None:
        try:
            mountinfo = Path("/proc/self/mountinfo").read_text()
        except OSError:
            return None
    target = os.path.realpath(path)
    best, found = -1, None
    for line in mountinfo.splitlines():
        # ID PARENT MAJOR:MINOR ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPER_OPTIONS
        fields = line.split()
        if "-" not in fields or len(fields) < 5:
            continue
        mount_point = _ESCAPE.sub(lambda match: chr(int(match.group(1), 8)), fields[4])
        inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
        # ">=": mountinfo lists mounts in the order they were made, and a later one on the same point hides the
        # earlier one (an NFS export mounted over a local directory, or the other way round).
        if inside and len(mount_point) >= best:
            after = fields.index("-")
            if after + 1 < len(fields):
                best, found = len(mount_point), fields[after + 1]
    return found


def may_hang(path: str | Path, mountinfo: str | None = None) -> bool:
    """Whether a stat under ``path`` can block on a network (a network file system or FUSE). Blocking."""
    kind = file_system_type(path, mountinfo)
    return kind is not None and (kind in NETWORK_TYPES or kind == "fuse" or kind.startswith("fuse."))
