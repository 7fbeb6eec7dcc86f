"""Data directories: read-only opens write nothing, damage is named, one writer, atomic creation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import lmdb
import pytest
from chainmall.core import datadir
from chainmall.core.datadir import (
    GENESIS_FILE,
    LEDGER_DIR,
    LOCK_FILE,
    WriterLock,
    check_new_data_dir,
    create_data_dir,
    open_ledger,
)
from chainmall.core.errors import (
    DataDirDamaged,
    DataDirInUse,
    DiskFull,
    StoreAlreadyInitialised,
    StoreChainMismatch,
    StoreNotInitialised,
)
from chainmall.core.genesis import make_genesis, write_genesis
from ledgers import (
    CHAIN,
    DAMAGES,
    GENESIS,
    KEYS,
    RECOVERY_HINT,
    VALIDATOR,
    build_node,
    empty_meta,
    files,
)

BLOCKS = 3


def build(directory: Path, blocks: int = BLOCKS) -> None:
    build_node(directory, blocks)


@pytest.fixture
def node(tmp_path: Path) -> Path:
    directory = tmp_path / "node"
    build(directory)
    return directory


# --- reading writes nothing ---------------------------------------------------------------

@pytest.mark.parametrize("remove", [None, LOCK_FILE, f"{LEDGER_DIR}/lock.mdb"],
                         ids=["as-made", "no-LOCK", "no-lock.mdb"])
def test_reading_writes_nothing(node: Path, remove: str | None) -> None:
    if remove is not None:
        (node / remove).unlink()
    before = files(node)
    store, genesis, machine = open_ledger(node, write=False)
    with store:
        assert machine is None and genesis == GENESIS
        assert store.last().height == BLOCKS
        with store.reader() as view:
            assert view.block(BLOCKS) is not None
    assert files(node) == before


@pytest.mark.parametrize("write", [False, True], ids=["read", "write"])
@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_damaged_directory_is_named_and_left_alone(node: Path, damage: str,
                                                     write: bool) -> None:
    make_damage, error, message = DAMAGES[damage]
    make_damage(node)
    before = files(node)
    with pytest.raises(error, match=message) as raised:
        open_ledger(node, write=write)
    assert RECOVERY_HINT in str(raised.value)
    assert "run `chainmall init`" not in str(raised.value)
    after = files(node)
    if write and after[LOCK_FILE] != before[LOCK_FILE]:  # the writer took the lock, no more
        assert after.pop(LOCK_FILE) == f"{os.getpid()} chainmall\n".encode()
        before.pop(LOCK_FILE)
    assert after == before


def test_no_chain_is_not_damage(tmp_path: Path) -> None:
    for directory in (tmp_path / "absent", tmp_path):
        for write in (False, True):
            with pytest.raises(StoreNotInitialised, match=r"holds no chain.*chainmall init"):
                open_ledger(directory, write=write)
    assert list(tmp_path.iterdir()) == []


def test_a_ledger_of_another_chain(node: Path) -> None:
    other = make_genesis("other-chain", [(KEYS[0].address, 5)], [(VALIDATOR.public_key, 1)])
    write_genesis(node / GENESIS_FILE, other)
    for write in (False, True):
        with pytest.raises(StoreChainMismatch, match=f"holds chain {CHAIN!r}"):
            open_ledger(node, write=write)


# --- one writer -----------------------------------------------------------------------------

READ_HEIGHT = """
import sys
from chainmall.core.datadir import open_ledger
from chainmall.core.dirlock import lock_for_reading
from pathlib import Path
print(lock_for_reading(Path(sys.argv[1]))[1])
store, _, _ = open_ledger(sys.argv[1], write=False)
print(store.last().height)
"""

def test_a_second_writer_is_refused_and_named(node: Path) -> None:
    store, _, _ = open_ledger(node, write=True, command="db import")
    with store:
        with pytest.raises(DataDirInUse, match=rf"in use by another writer \(pid {os.getpid()}: "
                                               r"db import\)"):
            open_ledger(node, write=True, command="demo")
        with pytest.raises(DataDirInUse, match="in use"):
            create_data_dir(node, GENESIS, command="demo", replace_chain_id=CHAIN)
        # A reader (another process: LMDB opens an environment once per process) still
        # reads, under LMDB's own lock, which protects its snapshot from the writer.
        reader = subprocess.run(
            [sys.executable, "-c", READ_HEIGHT, str(node)], capture_output=True, text=True,
            timeout=60, check=True)
        assert reader.stdout.split() == ["True", str(BLOCKS)]  # a writer runs; the tip
    again, _, _ = open_ledger(node, write=True)  # released with the store
    again.close()


def test_a_writer_waits_for_no_reader_but_is_told(node: Path) -> None:
    reader, _, _ = open_ledger(node, write=False)
    with reader, pytest.raises(DataDirInUse, match="being read by another chainmall command"):
        open_ledger(node, write=True)
    open_ledger(node, write=True)[0].close()


# --- creating -------------------------------------------------------------------------------

def test_create_into_an_empty_directory(tmp_path: Path) -> None:
    target = tmp_path / "empty"
    target.mkdir(mode=0o750)
    os.chmod(target, 0o750)
    store, genesis, machine = create_data_dir(target, GENESIS, command="init")
    with store:
        assert machine.info()[0] == 0 and genesis == GENESIS
    assert sorted(os.listdir(target)) == [LOCK_FILE, GENESIS_FILE, LEDGER_DIR]
    assert (os.stat(target).st_mode & 0o777) == 0o750
    assert sorted(os.listdir(tmp_path)) == ["empty"]  # no temporary left beside it


def test_create_through_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "disk" / "node"
    real.mkdir(parents=True)
    link = tmp_path / "node"
    link.symlink_to(real)
    create_data_dir(link, GENESIS, command="init")[0].close()
    assert link.is_symlink() and (real / GENESIS_FILE).is_file()
    open_ledger(link, write=False)[0].close()


@pytest.mark.parametrize(
    ("prepare", "message"),
    [
        (lambda d: build(d), "already initialised"),
        (lambda d: (d.mkdir(), write_genesis(d / GENESIS_FILE, GENESIS)),
         r"half-made or damaged data directory \(it has genesis.json but no ledger/"),
        (lambda d: (d.mkdir(), (d / "notes.txt").write_text("mine")),
         r"is not empty \(it holds notes.txt\) and is not a data directory"),
        (lambda d: d.write_text("a file"), "exists and is not a directory"),
    ],
    ids=["initialised", "half-made", "other-files", "a-file"],
)
def test_create_says_what_it_found(tmp_path: Path, prepare, message: str) -> None:
    target = tmp_path / "node"
    prepare(target)
    before = files(tmp_path)
    with pytest.raises(StoreAlreadyInitialised, match=message):
        check_new_data_dir(target)
    with pytest.raises(StoreAlreadyInitialised, match=message):
        create_data_dir(target, GENESIS, command="init")
    assert files(tmp_path) == before


@pytest.mark.parametrize("fail_at", ["genesis", "ledger", "rename"])
def test_a_failed_create_leaves_nothing(tmp_path: Path, monkeypatch, fail_at: str) -> None:
    def full(*_args: object, **_kwargs: object) -> None:
        raise DiskFull("no space left on device: injected")

    target = {"genesis": "write_genesis", "ledger": "_ledger_machine",
              "rename": "_move_into_place"}
    monkeypatch.setattr(datadir, target[fail_at], full)
    with pytest.raises(DiskFull):
        create_data_dir(tmp_path / "node", GENESIS, command="init")
    assert list(tmp_path.iterdir()) == []


def test_replace_only_the_named_chain(tmp_path: Path) -> None:
    target = tmp_path / "node"
    build(target)
    store, _, machine = create_data_dir(target, GENESIS, command="demo", replace_chain_id=CHAIN)
    with store:
        assert machine.info()[0] == 0
    assert sorted(os.listdir(tmp_path)) == ["node"]
    with pytest.raises(StoreAlreadyInitialised, match=f"holds chain {CHAIN!r}, not 'x'"):
        create_data_dir(target, GENESIS, command="demo", replace_chain_id="x")


def test_writing_never_recreates_a_ledger_from_genesis(node: Path) -> None:
    empty_meta(node)
    blocks_before = _table_entries(node, b"blocks")
    with pytest.raises(DataDirDamaged):
        open_ledger(node, write=True)
    assert _table_entries(node, b"blocks") == blocks_before == BLOCKS


def _table_entries(node: Path, name: bytes) -> int:
    env = lmdb.open(str(node / LEDGER_DIR), readonly=True, lock=False, max_dbs=32)
    try:
        with env.begin() as txn:
            return txn.stat(env.open_db(name, txn=txn, create=False))["entries"]
    finally:
        env.close()


def test_lock_text_is_pid_and_command(node: Path) -> None:
    with WriterLock.acquire(node, "db import"):
        assert (node / LOCK_FILE).read_text() == f"{os.getpid()} db import\n"
