"""Durable file writes, and the one way a full disk is reported.

A write that fails for space must say so and name the file: the OS error of
a failed `write()` carries no path, and LMDB reports a short write (the disk
filled up part-way through) as EIO. `disk_full` recognises both; `writing`
turns them into `DiskFull` naming the path; `write_file_atomic` writes a
file through a temporary name, fsync and rename, so a failure leaves the old
file (or none) and never half of the new one.
"""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .constants import DISK_FULL_FREE_BYTES_MAX
from .errors import DiskFull

_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def free_bytes(path: str | os.PathLike[str]) -> int | None:
    """Bytes an unprivileged writer may still use on `path`'s file system (None: unknown)."""
    probe = Path(path)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        stats = os.statvfs(probe)
    except OSError:
        return None
    return stats.f_bavail * stats.f_frsize


def disk_full(error: BaseException, path: str | os.PathLike[str]) -> DiskFull | None:
    """A DiskFull naming `path` if `error` is a failure for space, else None.

    ENOSPC and EDQUOT always are; EIO is when at most DISK_FULL_FREE_BYTES_MAX
    bytes are left, because LMDB reports a short write (the file system took
    part of a page run, then ran out) as EIO.
    """
    code = getattr(error, "errno", None)
    text = str(error)
    if code in _SPACE_ERRNOS or "No space left on device" in text or "quota exceeded" in text:
        return DiskFull(f"no space left on device: cannot write {path}", os.fspath(path))
    if code == errno.EIO or "Input/output error" in text:
        free = free_bytes(path)
        if free is not None and free <= DISK_FULL_FREE_BYTES_MAX:
            return DiskFull(f"no space left on device: cannot write {path} "
                            f"(a short write, {free} bytes free)", os.fspath(path))
    return None


@contextmanager
def writing(path: str | os.PathLike[str]) -> Iterator[None]:
    """Report a failure for space inside the block as DiskFull naming `path`."""
    try:
        yield
    except OSError as error:
        full = disk_full(error, path)
        if full is None:
            raise
        raise full from error


def fsync_directory(path: str | os.PathLike[str]) -> None:
    """Make the entries of directory `path` (a create, a rename) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file_atomic(path: str | os.PathLike[str], data: bytes, mode: int = 0o644) -> None:
    """Write `data` to `path` via a temporary file beside it, fsync and rename.

    On any failure the temporary file is removed and `path` is untouched;
    a failure for space is DiskFull naming `path`.
    """
    target = Path(path)
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    with writing(target):
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, target)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        fsync_directory(target.parent)
