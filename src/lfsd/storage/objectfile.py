"""Writing one new object file: unnamed (``O_TMPFILE``) where possible, ``O_DIRECT`` for whole blocks, fsync, then
linked into place (or, for a named temp file, renamed).

Why ``O_DIRECT``: on the machines measured here, writing a new file through the page cache cost 3.4 s of kernel time
per GiB (~315 MB/s), the same write with ``O_DIRECT`` 0.3 s (~1.1 GB/s); uploads are written once and read rarely,
so caching them only evicts hotter data (MinIO writes objects with ``O_DIRECT`` for the same reason). Filesystems
without ``O_DIRECT`` (tmpfs) fall back to buffered writes.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import threading
from pathlib import Path

from lfsd.storage.buffers import PAGE

_DIRECT = getattr(os, "O_DIRECT", 0)
_TMPFILE = getattr(os, "O_TMPFILE", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
# ``open(dir, O_TMPFILE)`` where the file system (or the kernel) has no unnamed files.
NO_TMPFILE = (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL)


class ObjectFile:
    """A file that becomes an object only through :meth:`commit`. Blocking: call from a worker thread.

    Given ``unnamed_in`` (the object's shard directory, made here if missing) and a file system that supports it,
    the file is created there with ``O_TMPFILE``: it has no name until :meth:`commit` links it, so a crash leaves
    nothing behind and no temp directory entry is made and removed per upload. Its inode is allocated near its
    shard directory, not in the one temp directory's block group: on ext4 without a journal, where creating an
    inode scans the inodes of its group deleted in the last minutes, that was 2.4x less kernel time per 100 KiB
    object here (``bench/object_file.py``; docs/performance.md). ``fsync`` syncs the shard directories it makes.
    Otherwise it is a named temp file (``tmp``), renamed at commit and
    swept by ``LocalStore.sweep_temp`` after a crash.
    """

    def __init__(
        self, tmp: str | Path, size: int, *, direct: bool, unnamed_in: str | None = None, fsync: bool = True
    ) -> None:
        # Paths as strings: building and converting ``Path`` objects cost 12 us per upload (issue 17).
        self.tmp = os.fspath(tmp)
        self._direct = bool(direct and _DIRECT)
        self.named = True
        fd = -1
        if unnamed_in is not None and _TMPFILE:
            fd = self._open_unnamed(unnamed_in, fsync=fsync)
        if fd < 0:
            fd = self._open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _CLOEXEC)
        self._fd = fd
        self._size = size
        self._reserved = 0
        self._committing = threading.Lock()  # held by commit, waited for by discard

    def _open_unnamed(self, directory: str, *, fsync: bool) -> int:
        """An ``O_TMPFILE`` descriptor in ``directory``, or -1 where the file system has none."""
        flags = os.O_WRONLY | _TMPFILE | _CLOEXEC
        try:
            try:
                fd = self._open(directory, flags)
            except FileNotFoundError:
                _make_dirs(Path(directory), fsync=fsync)
                fd = self._open(directory, flags)
        except OSError as exc:
            if exc.errno in NO_TMPFILE:
                return -1
            raise
        self.named = False
        return fd

    def _open(self, path: str, flags: int) -> int:
        """``path`` opened with ``O_DIRECT`` if asked and the file system takes it, else without."""
        if self._direct:
            try:
                return os.open(path, flags | _DIRECT, 0o644)
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
        fd = os.open(path, flags, 0o644)
        self._direct = False
        return fd

    def write(self, view: memoryview) -> None:
        """Append ``view``; with ``O_DIRECT`` every write but the last must be a whole number of pages."""
        # Blocks are reserved as bytes arrive, a buffer at a time (cheaper than growing the file write by write,
        # and a full disk shows before the write), never for what the client only declared: a stalled upload
        # declaring gigabytes must not fill the disk for everyone else.
        _preallocate(self._fd, self._reserved, min(len(view), self._size - self._reserved))
        self._reserved += len(view)
        self._append(view)

    def write_whole(self, view: memoryview) -> None:
        """The whole object in one call. Nothing is preallocated: one write allocates its blocks itself, and a full
        disk fails it the same way (``posix_fallocate`` was one syscall more per small object, and with ``O_DIRECT``
        its unwritten extents had to be converted after the write; issue 17)."""
        self._reserved = len(view)
        self._append(view)

    def _append(self, view: memoryview) -> None:
        if self._direct:
            whole = len(view) - len(view) % PAGE
            if whole:
                try:
                    self._write_all(view[:whole])
                    view = view[whole:]
                except OSError as exc:
                    if exc.errno != errno.EINVAL:
                        raise
                    self._buffered()
            if view:
                self._buffered()  # the tail is not block-sized: the rest goes through the page cache
        self._write_all(view)

    def _buffered(self) -> None:
        if self._direct:
            fcntl.fcntl(self._fd, fcntl.F_SETFL, fcntl.fcntl(self._fd, fcntl.F_GETFL) & ~_DIRECT)
            self._direct = False

    def _write_all(self, view: memoryview) -> None:
        while view:
            written = os.write(self._fd, view)
            if written <= 0:
                raise OSError(errno.EIO, "write returned no progress")
            view = view[written:]

    def commit(self, final: str | Path, *, fsync: bool) -> None:
        """Make the file the object ``final``: durable (data, name, new directories) before this returns."""
        final = os.fspath(final)
        with self._committing:
            if self.named:
                self._rename(final, fsync=fsync)
            else:
                try:
                    self._link(final, fsync=fsync)
                finally:
                    os.close(self._fd)
                    self._fd = -1

    def _rename(self, final: str, *, fsync: bool) -> None:
        if fsync:
            os.fsync(self._fd)
        os.close(self._fd)
        self._fd = -1
        directory = os.path.dirname(final)  # noqa: PTH120 (strings on the per-upload path, see __init__)
        try:
            # The shard directories exist for nearly every object: renaming first spares a stat per upload.
            os.rename(self.tmp, final)  # noqa: PTH104
        except FileNotFoundError:
            _make_dirs(Path(directory), fsync=fsync)
            os.rename(self.tmp, final)  # noqa: PTH104
        if fsync:
            _fsync_dir(directory)

    def _link(self, final: str, *, fsync: bool) -> None:
        """Give the unnamed file its name: ``linkat`` through ``/proc/self/fd`` into the opened shard directory
        (Python's ``os.link`` calls ``linkat`` with ``AT_SYMLINK_FOLLOW`` only when given a directory descriptor)."""
        if fsync:
            os.fsync(self._fd)  # the data and the inode, before the object has a name anyone could open
        directory, name = os.path.split(final)
        source = f"/proc/self/fd/{self._fd}"
        try:
            dir_fd = os.open(directory, _DIR_FLAGS)
        except FileNotFoundError:
            _make_dirs(Path(directory), fsync=fsync)
            dir_fd = os.open(directory, _DIR_FLAGS)
        try:
            try:
                os.link(source, name, dst_dir_fd=dir_fd)
            except FileExistsError:
                self._replace(source, name, dir_fd)
            if fsync:
                # The link count went 0 -> 1 after the first fsync: without this, a file system that syncs only
                # what it is asked to (ext4 without a journal) could bring the entry back pointing at an inode
                # with no links. Then the entry itself, in its directory.
                os.fsync(self._fd)
                os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def _replace(self, source: str, name: str, dir_fd: int) -> None:
        """Stored already: replaced as a rename would (the same bytes; skipping it would answer measurably faster,
        telling the caller that some repository holds the oid). ``linkat`` cannot replace, so the file is named in
        the temp directory (swept there after a crash) and renamed over the object."""
        temp_dir, temp_name = os.path.split(self.tmp)
        temp_fd = os.open(temp_dir, _DIR_FLAGS)
        try:
            os.link(source, temp_name, dst_dir_fd=temp_fd)
            try:
                os.rename(temp_name, name, src_dir_fd=temp_fd, dst_dir_fd=dir_fd)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temp_name, dir_fd=temp_fd)
                raise
        finally:
            os.close(temp_fd)

    def discard(self) -> None:
        """Close and forget the file; a commit still running in another thread (its caller was cancelled, and a
        thread cannot be) is waited for first. Closing its descriptor under it would let the next ``open`` reuse the
        number, and ``linkat`` of ``/proc/self/fd/N`` would then name that other file as the object."""
        with self._committing:
            if self._fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(self._fd)
                self._fd = -1
            if self.named:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.tmp)  # noqa: PTH108


def _make_dirs(directory: Path, *, fsync: bool) -> None:
    """Create ``directory`` and its missing parents one level at a time, each made durable in its parent.

    A new shard directory is an entry in its parent: until the parent is fsynced, a power loss can drop the
    directory, and with it every object renamed into it since, although each of those was acknowledged.
    """
    missing: list[Path] = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    for level in reversed(missing):
        # If another upload made it a moment ago, that one may not have synced it yet: sync it here too.
        with contextlib.suppress(FileExistsError):
            level.mkdir()
        if fsync:
            _fsync_dir(level.parent)


def links_unnamed_files(directory: str | Path, probe_name: str) -> bool:
    """Whether unnamed files (``O_TMPFILE``) can be created in ``directory`` and linked by name (a kernel and file
    system with ``O_TMPFILE``, and ``/proc`` mounted). Blocking; asked once, at start-up."""
    if not _TMPFILE:
        return False
    try:
        fd = os.open(directory, os.O_WRONLY | _TMPFILE | _CLOEXEC, 0o644)
    except OSError as exc:
        if exc.errno in NO_TMPFILE:
            return False
        raise
    try:
        dir_fd = os.open(directory, _DIR_FLAGS)
        try:
            os.link(f"/proc/self/fd/{fd}", probe_name, dst_dir_fd=dir_fd)
            os.unlink(probe_name, dir_fd=dir_fd)
        except OSError:
            return False
        finally:
            os.close(dir_fd)
    finally:
        os.close(fd)
    return True


_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _CLOEXEC


def _fsync_dir(directory: str | Path) -> None:
    fd = os.open(directory, _DIR_FLAGS)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _preallocate(fd: int, offset: int, length: int) -> None:
    if length <= 0:
        return
    try:
        os.posix_fallocate(fd, offset, length)
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
            raise
