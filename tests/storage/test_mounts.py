"""Telling a local disk from a network file system by ``/proc/self/mountinfo``."""

from __future__ import annotations

from pathlib import Path

import pytest

from lfsd.storage.mounts import file_system_type, may_hang

MOUNTINFO = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 22 0:40 / /srv/lfs rw,relatime shared:2 - nfs4 server:/export rw,vers=4.2
31 30 0:41 / /srv/lfs/local rw - xfs /dev/sdb1 rw
32 22 0:42 / /mnt/with\\040space rw - fuse.sshfs user@host:/ rw
33 22 0:43 / /srv/lfsdata rw - tmpfs tmpfs rw
34 22 0:44 / /srv/stacked rw - ext4 /dev/sdc1 rw
35 34 0:45 / /srv/stacked rw - nfs4 server:/stacked rw
"""


@pytest.mark.parametrize(
    ("path", "kind", "hangs"),
    [
        ("/srv/lfs/objects", "nfs4", True),
        ("/srv/lfs", "nfs4", True),
        ("/srv/lfs/local/objects", "xfs", False),  # the longest mount point wins
        ("/srv/lfsdata/objects", "tmpfs", False),  # a prefix of the name is not a parent directory
        ("/mnt/with space/data", "fuse.sshfs", True),  # mountinfo escapes spaces as \040
        ("/var/lib/lfsd", "ext4", False),
        ("/srv/stacked/objects", "nfs4", True),  # mounted over the local disk: the later mount is the one seen
    ],
)
def test_the_file_system_under_a_path(path: str, kind: str, hangs: bool) -> None:
    assert file_system_type(path, MOUNTINFO) == kind
    assert may_hang(path, MOUNTINFO) is hangs


def test_this_machines_temporary_directory_is_known(tmp_path: Path) -> None:
    assert file_system_type(tmp_path) is not None
