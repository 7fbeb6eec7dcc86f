"""Crash safety: kill -9 a block importer at seeded moments; the store stays consistent.

A worker process (tests/proc/import_worker.py) applies a pre-built chain to a
data dir, printing each committed height. The parent kills it with SIGKILL at
seeded random moments, reopens the store after each kill and checks that the
tip is a committed height (at least the last one printed), that the app hash
equals the root rebuilt from the stored state, and that every stored root is
the in-process reference's. Then the worker finishes and the final root must
be the reference's. Failures print the seed (CHAINMALL_KILL_SEED replays).
"""

from __future__ import annotations

import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from chainmall.core.abci.app import ledger_machine
from chainmall.core.block import decode_block
from chainmall.core.constants import STORE_MERGE_BLOCKS, TX_TYPE_TRANSFER
from chainmall.core.genesis import make_genesis, write_genesis
from chainmall.core.keys import KeyPair
from chainmall.core.state.accounts import encode_transfer
from chainmall.core.state.root import MemoryNodeStore, StateTree, value_hash
from chainmall.core.store import Store
from chainmall.core.tx import sign_tx

WORKER = Path(__file__).with_name("import_worker.py")
CHAIN = "kill-test"
BLOCKS = 60
assert BLOCKS > STORE_MERGE_BLOCKS  # imports cross merges of the staged tables
TXS_PER_BLOCK = 50
KILLS = 15
PRUNE_RETAIN = 4  # heights whose state trees a pruning store keeps
LINE_DEADLINE_S = 60.0
SEED = int(os.environ.get("CHAINMALL_KILL_SEED", "20261125"))

pytestmark = pytest.mark.slow


def _build_chain(tmp: Path) -> tuple[Path, Path, list[bytes]]:
    """Genesis file, blocks file and reference roots (index = height) from one in-process run."""
    rng = random.Random(SEED)
    keys = [KeyPair.from_seed(rng.randbytes(32)) for _ in range(100)]
    validator = KeyPair.from_seed(rng.randbytes(32))
    genesis = make_genesis(CHAIN, [(k.address, 10**9) for k in keys],
                           [(validator.public_key, 1)], genesis_time_ms=1_000, fee_min=1)
    genesis_path = tmp / "genesis.json"
    write_genesis(genesis_path, genesis)
    nonces = [0] * len(keys)
    blocks_path = tmp / "blocks.bin"
    with Store(tmp / "reference") as store, blocks_path.open("wb") as out:
        machine = ledger_machine(store, genesis)
        for height in range(1, BLOCKS + 1):
            txs = []
            for _ in range(TXS_PER_BLOCK):
                i = rng.randrange(len(keys))
                to = keys[rng.randrange(len(keys))].address
                txs.append(sign_tx(keys[i], CHAIN, TX_TYPE_TRANSFER, nonces[i],
                                   rng.randrange(1, 10), 10**6,
                                   encode_transfer(to, rng.randrange(0, 10**6))))
                nonces[i] += 1
            block = machine.build_block(txs, 1_000 + height, validator.public_key)
            assert block.header.tx_count == TXS_PER_BLOCK
            machine.finalize_block(block)
            machine.commit()
            raw = block.encode()
            out.write(len(raw).to_bytes(4, "big") + raw)
        with store.reader() as view:
            roots = [view.root(height) for height in range(BLOCKS + 1)]
    return genesis_path, blocks_path, roots


class _Worker:
    """The worker process and a thread that queues its stdout lines."""

    def __init__(self, genesis: Path, blocks: Path, data: Path, env: dict | None = None,
                 retain: int = 0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), str(genesis), str(blocks), str(data), str(retain)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, **(env or {})},
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.committed = -1
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put(None)

    def wait_for(self, height: int, deadline: float) -> bool:
        """Read lines until `height` is committed (True) or the worker ends (False)."""
        while self.committed < height:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no commit of height {height} before the deadline")
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                return False
            if line.isdigit():
                self.committed = int(line)
            elif line.startswith("start "):
                self.committed = int(line.split()[1])
        return True

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=LINE_DEADLINE_S)
        self._thread.join(timeout=LINE_DEADLINE_S)

    def finish(self) -> int:
        code = self.proc.wait(timeout=LINE_DEADLINE_S * 2)
        self._thread.join(timeout=LINE_DEADLINE_S)
        while (line := self.lines.get_nowait()) is not None:
            if line.isdigit():
                self.committed = int(line)
        return code


def _check_store(data: Path, roots: list[bytes], committed: int) -> int:
    """The reopened store's tip height, after checking it against the reference."""
    with Store(data) as store, store.reader() as view:
        tip = view.last()
        assert committed <= tip.height <= BLOCKS, (committed, tip.height)
        assert tip.app_hash == roots[tip.height]
        items = dict(view.state_items())
        rebuilt = StateTree(MemoryNodeStore()).apply(items).root
        assert rebuilt == tip.app_hash
        tree = StateTree(view, tip.app_hash)  # the stored tree (pruned or not) proves them all
        for key, value in items.items():
            assert tree.get_value_hash(key) == value_hash(value)
        for height in range(tip.height + 1):
            assert view.root(height) == roots[height], height
        for height in range(1, tip.height + 1):  # the tx index, staged or merged
            for index, tx in enumerate(decode_block(view.block(height)).txs):
                assert view.tx_location(tx.tx_id) == (height, index)
        assert view.entry_counts()["tx_index"] == sum(
            len(decode_block(view.block(height)).txs) for height in range(1, tip.height + 1))
        assert view.block(tip.height + 1) is None
        assert view.root(tip.height + 1) is None
        return tip.height


def _unpruned_tree_entries(genesis: Path, blocks: Path, tmp_path: Path) -> int:
    """How many tree entries the same chain leaves without pruning."""
    data = tmp_path / "unpruned"
    assert _Worker(genesis, blocks, data).finish() == 0
    with Store(data) as store, store.reader() as view:
        return view.entry_counts()["tree"]


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    return _build_chain(tmp_path_factory.mktemp("chain"))


def test_kill_9_at_random_moments(chain, tmp_path) -> None:
    genesis, blocks, roots = chain
    data = tmp_path / "data"
    rng = random.Random(SEED)
    try:
        height = 0
        for _ in range(KILLS):
            worker = _Worker(genesis, blocks, data)
            target = min(BLOCKS, height + rng.randint(1, 4))
            reached = worker.wait_for(target, time.monotonic() + LINE_DEADLINE_S)
            if not reached:  # the worker ended on its own: it must have finished the chain
                assert worker.finish() == 0 and worker.committed == BLOCKS, worker.committed
            if rng.random() < 0.7:
                time.sleep(rng.uniform(0, 0.03))  # the kill moment itself, seeded
            worker.kill()
            height = _check_store(data, roots, max(worker.committed, 0))
        worker = _Worker(genesis, blocks, data)
        assert worker.finish() == 0, worker.proc.stderr.read() if worker.proc.stderr else ""
        assert _check_store(data, roots, BLOCKS) == BLOCKS
    except BaseException:
        print(f"kill test failed with seed {SEED} (CHAINMALL_KILL_SEED={SEED} replays)")
        raise


@pytest.mark.parametrize(("failpoint", "survives", "retain"), [
    ("store.commit.before_state", 0, 0),
    ("store.commit.before_meta", 0, 0),
    # Every block's commit moves a slice of each staging level (block 1's too); with
    # pruning on (the last 4 heights kept), the first prune is in block 5's.
    ("store.merge.after_tx_index", 0, 0),
    ("store.merge.after_tree", 0, 0),
    ("store.prune.after", PRUNE_RETAIN, PRUNE_RETAIN),
    ("store.flush.after_tree", 0, PRUNE_RETAIN),
])
def test_exit_inside_the_commit_txn(chain, tmp_path, failpoint: str, survives: int,
                                    retain: int) -> None:
    genesis, blocks, roots = chain
    data = tmp_path / "data"
    worker = _Worker(genesis, blocks, data, env={"CHAINMALL_FAILPOINT": failpoint},
                     retain=retain)
    assert worker.finish() == 86
    assert _check_store(data, roots, survives) == survives
    worker = _Worker(genesis, blocks, data, retain=retain)
    assert worker.finish() == 0
    assert _check_store(data, roots, BLOCKS) == BLOCKS


def test_kill_9_while_pruning(chain, tmp_path) -> None:
    """Pruning on: kills at seeded moments never lose a node the tip's tree needs."""
    genesis, blocks, roots = chain
    data = tmp_path / "data"
    rng = random.Random(SEED + 1)
    height = 0
    while height < BLOCKS:
        worker = _Worker(genesis, blocks, data, retain=PRUNE_RETAIN)
        target = min(BLOCKS, height + rng.randint(5, 20))
        if not worker.wait_for(target, time.monotonic() + LINE_DEADLINE_S):
            assert worker.finish() == 0 and worker.committed == BLOCKS
        time.sleep(rng.uniform(0, 0.03))
        worker.kill()
        height = _check_store(data, roots, max(worker.committed, 0))
    with Store(data) as store, store.reader() as view:
        counts = view.entry_counts()
    assert counts["tree"] < _unpruned_tree_entries(genesis, blocks, tmp_path)
