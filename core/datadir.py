"""A node's data directory: its layout, the writers' lock, damage, and how it is opened.

Layout:

    DATA/genesis.json  the chain's genesis (core/genesis.py)
    DATA/ledger/       one LMDB environment, data.mdb and lock.mdb (core/store.py)
    DATA/LOCK          the writers' lock: a writer holds an exclusive `flock` on
                       it for its whole run and writes "<pid> <command>" into it

A directory that does not exist, or holds neither genesis.json nor ledger/,
holds no chain: `init` or `db import` creates one. A directory with only
part of a chain (genesis.json without a ledger, a ledger without
genesis.json, no or an empty data.mdb, a ledger whose meta table is empty,
a truncated or corrupted data.mdb) is damaged, never taken for new: opening
it says what is missing and how to recover, and nothing rewrites it.

Writers: `create_data_dir` (init, db import, demo) builds the directory
beside its target under a temporary name and renames it into place at the
end, so a failed creation leaves nothing; `open_ledger(write=True)` opens an
existing one. Both take the writers' lock first and refuse (DataDirInUse,
naming the holder) when another process has it, so two writers never share
a ledger.

Readers write nothing, not even LMDB's lock file: `open_ledger(write=False)`
takes a *shared* flock on DATA/LOCK (a read-only open of an existing file)
and, while it holds it, no writer can start, so LMDB runs without its lock
file (`lmdb_lock=False`). When a writer holds the lock, the reader instead
opens with LMDB's lock so that its snapshot is protected; LMDB then records
the reader in `lock.mdb`, a file the running writer already owns. A
directory without a LOCK file (made before the lock existed) is read without
a lock; a writer that starts during such a read is not seen. A writer that
finds only readers is refused too ("being read"), and can retry when they
end.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import stat
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, overload

from .dirlock import LOCK_FILE, WriterLock, lock_for_reading
from .diskio import fsync_directory, writing
from .errors import (
    DataDirDamaged,
    DiskFull,
    InvalidInput,
    StorageError,
    StoreAlreadyInitialised,
    StoreCorrupt,
    StoreNotInitialised,
)
from .genesis import Genesis, load_genesis, write_genesis
from .state.machine import StateMachine
from .store import DATA_FILE, Store

__all__ = [
    "GENESIS_FILE",
    "LEDGER_DIR",
    "LOCK_FILE",
    "WriterLock",
    "check_layout",
    "check_new_data_dir",
    "create_data_dir",
    "open_ledger",
]

GENESIS_FILE = "genesis.json"
LEDGER_DIR = "ledger"
RECOVERY = ("to recover, restore the chain from an export into a new directory "
            "(`chainmall db import --data-dir NEW ARCHIVE`) or start a new chain there "
            "(`chainmall init --data-dir NEW`)")
CREATE = "create one with `chainmall init` or `chainmall db import`"


# --- layout and damage ----------------------------------------------------------------

def _damage(data_dir: Path) -> str | None:
    """What is missing from a directory that holds genesis.json or ledger/ (None: nothing)."""
    ledger = data_dir / LEDGER_DIR
    if not ledger.exists():
        return "it has genesis.json but no ledger/ directory"
    if not (data_dir / GENESIS_FILE).exists():
        return "it has a ledger/ directory but no genesis.json"
    if not ledger.is_dir():
        return "its ledger/ is not a directory"
    data_file = ledger / DATA_FILE
    if not data_file.is_file():
        return f"its ledger/ holds no {DATA_FILE}"
    if data_file.stat().st_size == 0:
        return f"its ledger file {data_file} is empty"
    return None


def check_layout(data_dir: str | os.PathLike[str]) -> None:
    """Raise unless `data_dir` holds every part of a chain (reads the listing only).

    StoreNotInitialised when it holds no chain at all, DataDirDamaged (with
    how to recover) when it holds part of one.
    """
    directory = Path(data_dir)
    if not directory.exists():
        raise StoreNotInitialised(f"{directory} does not exist, so it holds no chain: {CREATE}")
    if not directory.is_dir():
        raise StorageError(f"{directory} is not a directory")
    if not (directory / GENESIS_FILE).exists() and not (directory / LEDGER_DIR).exists():
        raise StoreNotInitialised(f"{directory} holds no chain (no genesis.json, no ledger/): "
                                  f"{CREATE}")
    problem = _damage(directory)
    if problem is not None:
        raise DataDirDamaged(f"{directory} is damaged: {problem}; {RECOVERY}")


@contextmanager
def _reported_as_damage(data_dir: Path) -> Iterator[None]:
    """A ledger that holds no chain is damaged (genesis.json is there); corruption gets
    the way to recover."""
    try:
        yield
    except StoreNotInitialised as exc:
        raise DataDirDamaged(f"{data_dir} is damaged: {exc}; {RECOVERY}") from exc
    except StoreCorrupt as exc:
        raise type(exc)(f"{exc}; {RECOVERY}") from exc


def _found(directory: Path, entries: list[str]) -> str:
    """What an existing, non-empty directory holds, for a refused creation."""
    if GENESIS_FILE in entries or LEDGER_DIR in entries:
        problem = _damage(directory)
        if problem is None:
            return (f"{directory} is already initialised (it holds genesis.json and ledger/); "
                    "pick another --data-dir for a new chain")
        return (f"{directory} holds a half-made or damaged data directory ({problem}); a new "
                "chain is created only in a new or empty directory: move it away or pick "
                "another --data-dir")
    shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
    return (f"{directory} is not empty (it holds {shown}) and is not a data directory; a new "
            "chain is created only in a new or empty directory")


# --- opening --------------------------------------------------------------------------

@overload
def open_ledger(data_dir: str | os.PathLike[str], *, write: Literal[True],
                command: str = ..., store_options: Mapping[str, Any] | None = ...,
                ) -> tuple[Store, Genesis, StateMachine]: ...


@overload
def open_ledger(data_dir: str | os.PathLike[str], *, write: Literal[False],
                command: str = ..., store_options: Mapping[str, Any] | None = ...,
                ) -> tuple[Store, Genesis, None]: ...


def open_ledger(data_dir: str | os.PathLike[str], *, write: bool,
                command: str = "chainmall", store_options: Mapping[str, Any] | None = None,
                ) -> tuple[Store, Genesis, StateMachine | None]:
    """The store and genesis of an initialised data directory, and its state machine.

    `write=False`: a read-only store and no machine; nothing in the directory
    is written. `write=True`: takes the writers' lock (named `command` for
    whoever is refused) until the store is closed; `store_options` are more
    `Store` arguments (a node's map size and pruning window). Either way, a
    directory that holds no chain is StoreNotInitialised, a damaged one
    DataDirDamaged or StoreCorrupt (with how to recover), and a ledger of
    another chain than genesis.json StoreChainMismatch.
    """
    directory = Path(data_dir)
    if write:
        check_layout(directory)
        return _open_for_writing(directory, WriterLock.acquire(directory, command),
                                 store_options or {})
    return _open_for_reading(directory)


def _open_for_reading(directory: Path) -> tuple[Store, Genesis, None]:
    check_layout(directory)
    fd, writer_runs = lock_for_reading(directory)

    def release() -> None:
        if fd is not None:
            os.close(fd)

    try:
        check_layout(directory)  # again, now that no writer can start
        genesis = load_genesis(directory / GENESIS_FILE)
        with _reported_as_damage(directory):
            store = Store(directory / LEDGER_DIR, readonly=True, lmdb_lock=writer_runs,
                          on_close=release)
    except BaseException:
        release()
        raise
    try:
        with _reported_as_damage(directory):
            store.check_chain(genesis.chain_id, genesis.hash())
    except BaseException:
        store.close()
        raise
    return store, genesis, None


def _open_for_writing(directory: Path, lock: WriterLock,
                      store_options: Mapping[str, Any] | None = None,
                      ) -> tuple[Store, Genesis, StateMachine]:
    try:
        check_layout(directory)
        genesis = load_genesis(directory / GENESIS_FILE)
        with _reported_as_damage(directory):
            store = Store(directory / LEDGER_DIR, create=False, on_close=lock.release,
                          **(store_options or {}))
    except BaseException:
        lock.release()
        raise
    try:
        with _reported_as_damage(directory):
            store.last()  # no chain in the ledger: damaged, never rewritten from genesis
            machine = _ledger_machine(store, genesis)
    except BaseException:
        store.close()
        raise
    return store, genesis, machine


def _ledger_machine(store: Store, genesis: Genesis) -> StateMachine:
    """The state machine with the domain modules installed (deferred import: the
    application imports the machine), so the genesis state and blocks are the
    application's."""
    from .abci.app import ledger_machine

    return ledger_machine(store, genesis)


# --- creating -------------------------------------------------------------------------

def create_data_dir(data_dir: str | os.PathLike[str], genesis: Genesis, *, command: str,
                    replace_chain_id: str | None = None,
                    extra_files: Mapping[str, str] | None = None,
                    ) -> tuple[Store, Genesis, StateMachine]:
    """Create a data directory holding `genesis` at height 0, atomically; open it for writing.

    The directory is built beside its target under a temporary name (genesis
    file, LOCK, ledger with the genesis state) and renamed into place, so a
    failure (a full disk, a crash) leaves no half-made target. The target
    must not exist or be an empty directory. `extra_files` (name -> text, e.g.
    the node's commented config.toml) are written into it before the rename.
    With `replace_chain_id`, an
    existing data directory whose genesis names that chain is replaced
    (under its writers' lock: DataDirInUse while another process writes it).
    Otherwise StoreAlreadyInitialised says what the target holds. The
    returned store holds the writers' lock until it is closed.
    """
    target = Path(data_dir)
    if target.is_symlink():  # build beside the real directory: a rename stays on its disk
        target = target.resolve()
    old_lock = _claim(target, command, replace_chain_id)
    try:
        lock = _build_and_move(target, genesis, command, replacing=old_lock is not None,
                               extra_files=extra_files or {})
    finally:
        if old_lock is not None:
            old_lock.release()
    return _open_for_writing(target, lock)


def check_new_data_dir(data_dir: str | os.PathLike[str]) -> None:
    """Raise StoreAlreadyInitialised, saying what is there, unless `data_dir` is absent
    or an empty directory (where a new chain may be created)."""
    target = Path(data_dir).resolve()
    if not target.exists():
        return
    if not target.is_dir():
        raise StoreAlreadyInitialised(f"{target} exists and is not a directory")
    entries = sorted(os.listdir(target))
    if entries:
        raise StoreAlreadyInitialised(_found(target, entries))


def _claim(target: Path, command: str, replace_chain_id: str | None) -> WriterLock | None:
    """None if `target` may simply be created; its lock if it is to be replaced."""
    if not target.is_dir() or not any(target.iterdir()) or replace_chain_id is None:
        check_new_data_dir(target)
        return None
    entries = sorted(os.listdir(target))
    if GENESIS_FILE in entries:
        lock = WriterLock.acquire(target, command)
        try:
            chain_id = load_genesis(target / GENESIS_FILE).chain_id
        except InvalidInput:
            chain_id = None
        if chain_id == replace_chain_id:
            return lock
        lock.release()
        if chain_id is not None:
            raise StoreAlreadyInitialised(f"{target} holds chain {chain_id!r}, not "
                                          f"{replace_chain_id!r}; pick another --data-dir")
    raise StoreAlreadyInitialised(_found(target, entries))


def _directory_mode(target: Path) -> int:
    """The mode a plain mkdir would give `target` (an empty target keeps its own)."""
    if target.is_dir():
        return stat.S_IMODE(target.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    return 0o777 & ~umask


def _build_and_move(target: Path, genesis: Genesis, command: str,
                    replacing: bool, extra_files: Mapping[str, str]) -> WriterLock:
    parent = target.parent
    with writing(parent):
        parent.mkdir(parents=True, exist_ok=True)
        temporary = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".new",
                                          dir=parent))
    lock: WriterLock | None = None
    try:
        os.chmod(temporary, _directory_mode(target))
        lock = WriterLock.acquire(temporary, command)
        write_genesis(temporary / GENESIS_FILE, genesis)
        with Store(temporary / LEDGER_DIR) as store:
            _ledger_machine(store, genesis)  # writes the genesis state: height 0
        for name, text in sorted(extra_files.items()):
            with writing(temporary / name):
                (temporary / name).write_text(text, encoding="utf-8")
        with writing(temporary):
            fsync_directory(temporary)
        _move_into_place(temporary, target, replacing)
    except BaseException as exc:
        if lock is not None:
            lock.release()
        shutil.rmtree(temporary, ignore_errors=True)
        if isinstance(exc, DiskFull) and exc.path is not None:  # name the user's path
            failed = Path(exc.path)
            inside = failed.relative_to(temporary) if failed.is_relative_to(temporary) else failed
            raise DiskFull(f"no space left on device: cannot create {target} ({inside} did "
                           "not fit); nothing was left behind", os.fspath(target)) from exc
        raise
    return lock


def _move_into_place(temporary: Path, target: Path, replacing: bool) -> None:
    """Rename the built directory to `target` (over an empty one, or swapping the old out)."""
    parent = target.parent
    if replacing:
        old = parent / f".{target.name}.{secrets.token_hex(6)}.old"
        os.rename(target, old)
        try:
            os.rename(temporary, target)
        except BaseException:
            os.rename(old, target)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        try:
            os.rename(temporary, target)  # replaces an empty directory, nothing else
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                raise StoreAlreadyInitialised(
                    f"{target} was filled by another process meanwhile: "
                    f"{_found(target, sorted(os.listdir(target)))}") from None
            raise
    with writing(parent):
        fsync_directory(parent)
