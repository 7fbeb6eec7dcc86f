"""A data directory's lock: writers hold an exclusive `flock` on DATA/LOCK, readers a shared one.

A writer opens (creating) DATA/LOCK, takes the exclusive lock without
waiting and writes "<pid> <command>" into it, so that a refused writer can
name the holder (DataDirInUse). A reader opens an existing LOCK read-only
(never creating it: readers write nothing) and takes a shared lock without
waiting; holding it, it knows no writer runs. flock locks belong to the
open file, so a lock taken on a LOCK file that was replaced meanwhile (its
directory swapped for a new one) is dropped and the new file locked.
core/datadir.py says who takes which.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from .constants import DATA_DIR_LOCK_ATTEMPTS_MAX
from .diskio import writing
from .errors import DataDirInUse

LOCK_FILE = "LOCK"
_LOCK_TEXT_BYTES_MAX = 256  # what a refused writer reads of the holder's "<pid> <command>"


def _same_file(fd: int, path: Path) -> bool:
    """Whether `fd` is still the file at `path` (a replaced directory has a new one)."""
    try:
        current = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (current.st_dev, current.st_ino)


class WriterLock:
    """The exclusive flock on DATA/LOCK that a writer holds for its whole run."""

    def __init__(self, fd: int, data_dir: Path) -> None:
        self._fd: int | None = fd
        self.data_dir = data_dir

    @classmethod
    def acquire(cls, data_dir: str | os.PathLike[str], command: str) -> WriterLock:
        """Lock `data_dir` (an existing directory) for writing; DataDirInUse if taken."""
        directory = Path(data_dir)
        lock_path = directory / LOCK_FILE
        for _ in range(DATA_DIR_LOCK_ATTEMPTS_MAX):
            with writing(lock_path):
                fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                message = _in_use(fd, directory)
                os.close(fd)
                raise DataDirInUse(message) from None
            if not _same_file(fd, lock_path):  # replaced meanwhile: lock the new one
                os.close(fd)
                continue
            try:
                with writing(lock_path):
                    os.ftruncate(fd, 0)
                    os.pwrite(fd, f"{os.getpid()} {command}\n".encode(), 0)
            except BaseException:
                os.close(fd)
                raise
            return cls(fd, directory)
        raise DataDirInUse(f"{directory} keeps being replaced by another process; try again")

    def release(self) -> None:
        """Release the lock (idempotent). The LOCK file stays: it names the last writer."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> WriterLock:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def _in_use(fd: int, directory: Path) -> str:
    """Why the exclusive lock on `fd` was refused: a writer, or only readers."""
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, _LOCK_TEXT_BYTES_MAX, 0).decode("utf-8", "replace").split()
        who = f" (pid {holder[0]}: {' '.join(holder[1:])})" if holder else ""
        return (f"{directory} is in use by another writer{who}; one writer at a time: wait "
                "for it to finish, or stop it")
    fcntl.flock(fd, fcntl.LOCK_UN)
    return (f"{directory} is being read by another chainmall command (db info, check or "
            "export); try again when it has finished")


def lock_for_reading(data_dir: Path) -> tuple[int | None, bool]:
    """(fd holding a shared lock on DATA/LOCK, or None; whether a writer holds it).

    Opens the LOCK file read-only and never creates it: a reader writes nothing.
    """
    lock_path = data_dir / LOCK_FILE
    for _ in range(DATA_DIR_LOCK_ATTEMPTS_MAX):
        try:
            fd = os.open(lock_path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None, False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None, True
        if _same_file(fd, lock_path):
            return fd, False
        os.close(fd)
    raise DataDirInUse(f"{data_dir} keeps being replaced by another process; try again")
