"""Deferred writes (`StateMachine.defer_writes`): block N's durable write runs on a writer
thread while block N+1 executes over N's changes laid on the store (`UnwrittenView`).

Same roots and the same store as the plain loop; a failed write fails every later call;
a full map is grown on the executing thread (never under an open snapshot); a crash in
the middle of a write leaves the store at a whole earlier block, and the import resumes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from chainmall.core.block import decode_block
from chainmall.core.errors import TX_OK, NonceMismatch, StorageError
from chainmall.core.genesis import make_genesis, write_genesis
from chainmall.core.keys import KeyPair
from chainmall.core.state.accounts import encode_transfer
from chainmall.core.state.machine import CheckedTxs, StateMachine
from chainmall.core.state.pipeline import checked_ahead
from chainmall.core.state.unwritten import UnwrittenView
from chainmall.core.store import Store
from chainmall.core.tx import sign_tx
from hypothesis import given, settings
from hypothesis import strategies as st

CHAIN = "deferred"
KEYS = [KeyPair.from_seed(bytes([i]) * 32) for i in range(1, 9)]
VALIDATOR = KeyPair.from_seed(b"v" * 32)
GENESIS = make_genesis(CHAIN, [(k.address, 10**9) for k in KEYS[:4]],
                       [(VALIDATOR.public_key, 1)], genesis_time_ms=0, fee_min=1)
PROCESS_DEADLINE_S = 120


def _chain(tmp_path: Path, blocks: int) -> list[bytes]:
    """`blocks` encoded blocks of transfers (new accounts appear along the way)."""
    encoded = []
    nonces = [0] * 4
    with Store(tmp_path / "build") as store:
        machine = StateMachine(store, GENESIS)
        for height in range(1, blocks + 1):
            txs = []
            for i, sender in enumerate(KEYS[:4]):
                to = KEYS[(i + height) % len(KEYS)].address
                txs.append(sign_tx(sender, CHAIN, 1, nonces[i], 1, 10**6,
                                   encode_transfer(to, 1_000 + height)))
                nonces[i] += 1
            block = machine.build_block(txs, height * 1_000, VALIDATOR.public_key)
            machine.finalize_block(block)
            machine.commit()
            encoded.append(block.encode())
    return encoded


def _import(store: Store, blocks: list[bytes], defer: bool,
            process: bool = False) -> list[tuple[int, bytes]]:
    """The blocks imported through the pipeline; (height, root) after each commit."""
    machine = StateMachine(store, GENESIS)
    if defer:
        machine.defer_writes(process=process)

    def prepare(raw: bytes) -> CheckedTxs:
        return machine.check_block_txs(decode_block(raw))

    tips = []
    try:
        for _, checked in checked_ahead(blocks, prepare):
            machine.finalize_block(checked.block, checked)
            machine.commit()
            tips.append(machine.info())
    finally:
        machine.close()
    return tips


def _contents(store: Store) -> tuple:
    with store.reader() as view:
        tip = view.last()
        return (tip, dict(view.state_items()), sorted(view.node_hashes()),
                [(view.block(h), view.root(h), view.receipts(h)) for h in range(tip.height + 1)])


@pytest.mark.parametrize("process", [False, True], ids=["thread", "process"])
def test_deferred_import_gives_the_plain_loops_roots_and_store(tmp_path, process) -> None:
    blocks = _chain(tmp_path, 24)  # crosses the staged tables' merges (16 recent slices)
    with Store(tmp_path / "plain") as plain, Store(tmp_path / "deferred") as deferred:
        assert _import(plain, blocks, defer=False) == _import(deferred, blocks, defer=True,
                                                              process=process)
        assert _contents(plain) == _contents(deferred)


def test_the_next_block_reads_the_unwritten_blocks_state(tmp_path) -> None:
    """While block N is being written, N+1 executes: the accounts N created exist for it."""
    blocks = _chain(tmp_path, 3)
    with Store(tmp_path / "import") as store:
        machine = StateMachine(store, GENESIS)
        machine.defer_writes()
        release = _hold_writes(store)
        try:
            machine.finalize_block(decode_block(blocks[0]))
            machine.commit()  # handed to the writer, which waits
            assert machine.info()[0] == 1
            assert store.last().height == 0  # not written yet
            # CheckTx reads block 1's state too: KEYS[0]'s nonce 0 is used, 1 is next.
            checked = machine.check_txs([_transfer(KEYS[0], nonce) for nonce in (0, 1)])
            assert [r.code for r in checked] == [NonceMismatch.code, TX_OK]
            result = machine.finalize_block(decode_block(blocks[1]))
            assert result.app_hash == decode_block(blocks[1]).header.state_root
        finally:
            release()
        machine.commit()  # waits for block 1, hands block 2 over
        machine.settle()
        assert store.last() == machine.tip
        machine.close()


def _transfer(sender: KeyPair, nonce: int) -> bytes:
    return sign_tx(sender, CHAIN, 1, nonce, 1, 10**6, encode_transfer(KEYS[7].address, 5)
                   ).encode()


@pytest.mark.parametrize("process", [False, True], ids=["thread", "process"])
def test_then_runs_once_its_block_is_written(tmp_path, process) -> None:
    """`commit(then)`: each block's `then` runs once, in order, with the block in the store,
    also for the blocks a full map left to the executing thread to write."""
    blocks = _chain(tmp_path, 30)
    with Store(tmp_path / "small", map_size_bytes=1 << 18) as store:
        machine = StateMachine(store, GENESIS)
        grown = store.grow_count
        machine.defer_writes(process=process)
        told: list[tuple[int, int]] = []
        try:
            for height, raw in enumerate(blocks, 1):
                machine.finalize_block(decode_block(raw))
                machine.commit(lambda height=height: told.append((height, store.last().height)))
        finally:
            machine.close()
        assert store.grow_count > grown
        assert told == [(height, height) for height in range(1, len(blocks) + 1)]


def _hold_writes(store: Store):
    """Make the store's writes wait (at their first failpoint) until the answer is called."""
    import threading

    gate = threading.Event()
    original = store._failpoint

    def failpoint(name: str) -> None:
        if name == "store.commit.begin":
            assert gate.wait(PROCESS_DEADLINE_S)
        original(name)

    store._failpoint = failpoint
    return gate.set


def test_a_failed_write_fails_every_later_call(tmp_path) -> None:
    blocks = _chain(tmp_path, 3)
    with Store(tmp_path / "import") as store:
        machine = StateMachine(store, GENESIS)
        machine.defer_writes()
        machine.finalize_block(decode_block(blocks[0]))
        machine.commit()
        machine.settle()

        def broken(name: str) -> None:
            if name == "store.commit.before_nodes":
                raise StorageError("the disk went away")

        store._failpoint = broken
        machine.finalize_block(decode_block(blocks[1]))
        machine.commit()  # the write fails on the writer thread
        with pytest.raises(StorageError, match="went away"):
            machine.finalize_block(decode_block(blocks[2]))
            machine.commit()
        for call in (machine.settle, lambda: machine.check_txs([]),
                     lambda: machine.finalize_block(decode_block(blocks[2]))):
            with pytest.raises(StorageError, match="went away"):
                call()
        assert store.last().height == 1  # the failed block's txn was aborted whole
        with pytest.raises(StorageError):
            machine.close()


@pytest.mark.parametrize("process", [False, True], ids=["thread", "process"])
def test_a_full_map_is_grown_by_the_executing_thread(tmp_path, process) -> None:
    """The writer (thread or process) never grows the map (that closes open snapshots);
    the block it could not write is written, growing the map, when the next commit
    waits for it, and a writer process adopts the new size."""
    blocks = _chain(tmp_path, 30)
    with Store(tmp_path / "plain") as plain:
        expected = _import(plain, blocks, defer=False)
    with Store(tmp_path / "small", map_size_bytes=1 << 18) as store:
        StateMachine(store, GENESIS)  # the genesis written (it may grow the map itself)
        grown = store.grow_count
        assert _import(store, blocks, defer=True, process=process) == expected
        assert store.grow_count > grown
        assert store.last().app_hash == expected[-1][1]


def test_a_writer_process_that_ends_fails_every_later_call(tmp_path) -> None:
    blocks = _chain(tmp_path, 3)
    with Store(tmp_path / "import") as store:
        machine = StateMachine(store, GENESIS)
        machine.defer_writes(process=True)
        machine.finalize_block(decode_block(blocks[0]))
        machine.commit()
        machine.settle()
        writer = machine._writer_process._process
        writer.kill()
        writer.join(PROCESS_DEADLINE_S)
        machine.finalize_block(decode_block(blocks[1]))
        machine.commit()  # handed to a writer that is gone
        with pytest.raises(StorageError, match="writer process"):
            machine.settle()
        with pytest.raises(StorageError, match="writer process"):
            machine.finalize_block(decode_block(blocks[2]))
        assert store.last().height == 1
        with pytest.raises(StorageError):
            machine.close()


@settings(max_examples=200, deadline=None, derandomize=True)
@given(stored=st.dictionaries(st.binary(min_size=1, max_size=3), st.binary(max_size=2),
                              max_size=12),
       changes=st.dictionaries(st.binary(min_size=1, max_size=3),
                               st.none() | st.binary(max_size=2), max_size=12),
       bounds=st.lists(st.binary(min_size=1, max_size=3), min_size=2, max_size=2))
def test_unwritten_view_reads_as_the_written_store(stored, changes, bounds) -> None:
    written = {**stored, **changes}
    written = {key: value for key, value in written.items() if value is not None}
    view = UnwrittenView(_DictView(stored), dict(sorted(changes.items())), "tip")  # type: ignore[arg-type]
    keys = sorted({*stored, *changes, *bounds})
    assert [view.get_state(key) for key in keys] == [written.get(key) for key in keys]
    assert view.get_states(keys) == [written.get(key) for key in keys]
    start, end = sorted(bounds)
    assert list(view.state_range(start, end)) == sorted(
        (key, value) for key, value in written.items() if start <= key < end)
    assert view.last() == "tip"


class _DictView:
    """A store snapshot's state reads over a dict (keys of one table)."""

    def __init__(self, entries: dict[bytes, bytes]) -> None:
        self._entries = entries

    def get_state(self, key: bytes) -> bytes | None:
        return self._entries.get(key)

    def get_states(self, keys: list[bytes]) -> list[bytes | None]:
        return [self._entries.get(key) for key in keys]

    def state_range(self, start: bytes, end: bytes):
        for key in sorted(self._entries):
            if start <= key < end:
                yield key, self._entries[key]


_CRASHING_IMPORT = textwrap.dedent("""
    import os, sys
    from chainmall.core.block import decode_block
    from chainmall.core.genesis import load_genesis
    from chainmall.core.state.machine import StateMachine
    from chainmall.core.store import Store

    genesis_path, blocks_dir, data, crash_at = sys.argv[1:5]
    blocks = [open(os.path.join(blocks_dir, f"{h}.block"), "rb").read()
              for h in range(1, len(os.listdir(blocks_dir)) + 1)]
    with Store(data) as store:
        machine = StateMachine(store, load_genesis(genesis_path))
        machine.defer_writes()
        writes = 0

        def failpoint(name):
            global writes
            if name == "store.commit.before_merge":
                writes += 1
                if writes == int(crash_at):
                    os._exit(86)  # mid-transaction, on the writer thread

        store._failpoint = failpoint
        start = machine.info()[0]
        for raw in blocks[start:]:
            machine.finalize_block(decode_block(raw))
            machine.commit()
            print("committed", machine.info()[0], flush=True)
        machine.close()
        print("done", machine.info()[0], flush=True)
""")


def _crash_setup(tmp_path, script_name: str, script_text: str):
    """A 12-block chain's plain import (what every later import must equal), its genesis
    and blocks as files, and the import script a subprocess runs over them."""
    blocks = _chain(tmp_path, 12)
    with Store(tmp_path / "plain") as plain:
        expected = dict(_import(plain, blocks, defer=False))
    genesis_path = tmp_path / "genesis.json"
    write_genesis(genesis_path, GENESIS)
    blocks_dir = tmp_path / "blocks"
    blocks_dir.mkdir()
    for height, raw in enumerate(blocks, 1):
        (blocks_dir / f"{height}.block").write_bytes(raw)
    script = tmp_path / script_name
    script.write_text(script_text)
    return blocks, expected, genesis_path, blocks_dir, script, tmp_path / "data"


def test_a_crash_inside_a_deferred_write_loses_only_unwritten_blocks(tmp_path) -> None:
    blocks, expected, genesis_path, blocks_dir, script, data = _crash_setup(
        tmp_path, "crashing_import.py", _CRASHING_IMPORT)

    def run(crash_at: int) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(script), str(genesis_path), str(blocks_dir),
                               str(data), str(crash_at)], capture_output=True, text=True,
                              timeout=PROCESS_DEADLINE_S)

    crashed = run(crash_at=7)  # the 7th write of this process dies inside its txn
    assert crashed.returncode == 86, crashed.stderr
    handed = [int(line.split()[1]) for line in crashed.stdout.splitlines()
              if line.startswith("committed")]
    with Store(data) as store, store.reader() as view:
        tip = view.last()
        assert tip.height == 6  # blocks 1-6 whole; 7 was being written
        assert max(handed) <= tip.height + 1  # at most one block handed over and lost
        assert tip.app_hash == expected[tip.height]
        assert view.block(tip.height + 1) is None
    resumed = run(crash_at=0)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.splitlines()[-1] == f"done {len(blocks)}"
    with Store(data) as store:
        assert store.last().app_hash == expected[len(blocks)]


_PROCESS_IMPORT = textwrap.dedent("""
    import os, sys
    from chainmall.core.block import decode_block
    from chainmall.core.genesis import load_genesis
    from chainmall.core.state.machine import StateMachine
    from chainmall.core.store import Store

    if __name__ == "__main__":  # the writer process is spawned: it imports this file
        genesis_path, blocks_dir, data, stop = sys.argv[1:5]
        blocks = [open(os.path.join(blocks_dir, f"{h}.block"), "rb").read()
                  for h in range(1, len(os.listdir(blocks_dir)) + 1)]
        with Store(data) as store:
            machine = StateMachine(store, load_genesis(genesis_path))
            machine.defer_writes(process=True)
            for raw in blocks[machine.info()[0]:int(stop)]:
                machine.finalize_block(decode_block(raw))
                machine.commit()
                print("committed", machine.info()[0], flush=True)
            machine.close()
            print("done", machine.info()[0], flush=True)
""")


def test_a_writer_process_dying_inside_its_write_loses_only_unwritten_blocks(tmp_path) -> None:
    """The writer process exits inside block 7's transaction (a failpoint): the import
    fails, the store holds blocks 1-6 whole, and the next import finishes the chain."""
    _, expected, genesis_path, blocks_dir, script, data = _crash_setup(
        tmp_path, "process_import.py", _PROCESS_IMPORT)

    def run(stop: int, failpoint: str = "") -> subprocess.CompletedProcess[str]:
        env = {key: value for key, value in os.environ.items() if key != "CHAINMALL_FAILPOINT"}
        if failpoint:
            env["CHAINMALL_FAILPOINT"] = failpoint
        return subprocess.run([sys.executable, str(script), str(genesis_path), str(blocks_dir),
                               str(data), str(stop)], capture_output=True, text=True,
                              timeout=PROCESS_DEADLINE_S, env=env)

    first = run(stop=6)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[-1] == "done 6"
    crashed = run(stop=12, failpoint="store.commit.before_merge")
    assert crashed.returncode != 0
    assert "writer process ended" in crashed.stderr
    with Store(data) as store, store.reader() as view:
        tip = view.last()
        assert tip.height == 6
        assert tip.app_hash == expected[6]
        assert view.block(7) is None
    resumed = run(stop=12)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.splitlines()[-1] == "done 12"
    with Store(data) as store:
        assert store.last().app_hash == expected[12]



_WRITER_PARENT = textwrap.dedent("""
    import multiprocessing, os, sys, time
    from chainmall.core.block import decode_block
    from chainmall.core.genesis import load_genesis
    from chainmall.core.state.machine import StateMachine
    from chainmall.core.store import Store

    if __name__ == "__mp_main__":  # the writer process: each write hangs, after a mark
        commit_block = Store.commit_block

        def hanging(self, *args, **kwargs):
            open(os.environ["WRITING_MARK"], "w").close()
            time.sleep(float(os.environ["WRITE_HANG_S"]))
            return commit_block(self, *args, **kwargs)

        Store.commit_block = hanging

    if __name__ == "__main__":
        genesis_path, first_block, data = sys.argv[1:4]
        with Store(data) as store:
            machine = StateMachine(store, load_genesis(genesis_path))
            machine.defer_writes(process=True)
            [writer] = multiprocessing.active_children()
            machine.finalize_block(decode_block(open(first_block, "rb").read()))
            machine.commit()  # handed to the writer, which hangs inside the write
            print("writer", writer.pid, flush=True)
            sys.stdin.read()  # until killed
""")
WRITE_HANG_S = 3 * PROCESS_DEADLINE_S


def _process_gone(pid: int) -> bool:
    """Whether `pid` no longer runs (gone, or a zombie nobody has reaped yet)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def test_a_killed_process_takes_its_writer_process_with_it(tmp_path) -> None:
    """kill -9 of the executing process while its writer process is inside a block's
    write kills the writer too: the write is aborted, not finished under a process
    restarted on the same data dir, and the store holds the blocks before it."""
    genesis_path = tmp_path / "genesis.json"
    write_genesis(genesis_path, GENESIS)
    first_block = tmp_path / "1.block"
    first_block.write_bytes(_chain(tmp_path, 1)[0])
    script = tmp_path / "writer_parent.py"
    script.write_text(_WRITER_PARENT)
    mark = tmp_path / "writing"
    env = dict(os.environ, WRITING_MARK=str(mark), WRITE_HANG_S=str(WRITE_HANG_S))
    parent = subprocess.Popen([sys.executable, str(script), str(genesis_path),
                               str(first_block), str(tmp_path / "data")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline()
        assert line.startswith("writer "), line
        writer_pid = int(line.split()[1])
        deadline = time.monotonic() + PROCESS_DEADLINE_S
        while not mark.exists():  # the writer is inside block 1's write
            assert time.monotonic() < deadline, "the writer never began the write"
            time.sleep(0.01)
    finally:
        parent.kill()
        parent.wait(PROCESS_DEADLINE_S)
    deadline = time.monotonic() + PROCESS_DEADLINE_S
    while not _process_gone(writer_pid):
        assert time.monotonic() < deadline, "the writer process outlived its parent"
        time.sleep(0.01)
    with Store(tmp_path / "data") as store:
        assert store.last().height == 0
