"""Benchmark applying blocks of signed transfers into LMDB, split by phase.

Run: .venv/bin/pytest bench/bench_apply.py --benchmark-only -s -q

Issue targets:

* "Apply 100 blocks of 10,000 transactions each into LMDB: transactions per
  second applied, with the share of time in signature checks, state updates
  and commit. Target: >= 20,000 applied tx/s on this 2-core machine with
  signatures checked."

The blocks are signed and built OUTSIDE the measured region (with
`StateMachine.build_block` over a separate store) and encoded; then they are
replayed into a fresh LMDB store twice, and only the replays are timed:

* serial: decode, `finalize_block`, `commit`, one block after the other. Its
  split by phase is the issue's "share of time": decode, the stateless batch
  checks (signatures and tx ids, `accel.validate_batch` on all cores),
  execution (fees, nonces, transfers), the state tree update
  (`StateTree.apply`) and the LMDB commit;
* pipelined: the import path (`core/state/pipeline.py`, as `chainmall db
  import`): worker threads decode and check the next blocks while this
  thread executes and commits; the kernel releases the GIL, so signature
  checks overlap execution. The target is judged on this one.

Sizes: CHAINMALL_BENCH_BLOCKS / CHAINMALL_BENCH_TXS, by default the issue's
100 x 10,000 (about 5 minutes, most of it signing the blocks).

The state root's growth benchmark is bench/bench_state_root.py.
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from collections.abc import Callable
from typing import Any

from benchutil import machine, verdict
from chainmall.core import accel
from chainmall.core.block import decode_block
from chainmall.core.constants import TX_TYPE_TRANSFER
from chainmall.core.genesis import make_genesis
from chainmall.core.keys import KeyPair
from chainmall.core.state import machine as machine_module
from chainmall.core.state.accounts import encode_transfer
from chainmall.core.state.machine import CheckedTxs, StateMachine
from chainmall.core.state.pipeline import checked_ahead
from chainmall.core.state.root import StateTree
from chainmall.core.store import Store
from chainmall.core.tx import sign_tx

ISSUE_BLOCKS, ISSUE_TXS = 100, 10_000
BLOCKS = int(os.environ.get("CHAINMALL_BENCH_BLOCKS", str(ISSUE_BLOCKS)))
TXS_PER_BLOCK = int(os.environ.get("CHAINMALL_BENCH_TXS", str(ISSUE_TXS)))
SENDERS = int(os.environ.get("CHAINMALL_BENCH_SENDERS", "2000"))
TARGET_TX_PER_S = 20_000
CHAIN_ID = "chainmall-bench"
BALANCE = 10**15
FEE = 1
BLOCK_TIME_MS = 1_000

assert BLOCKS >= 1 and TXS_PER_BLOCK >= 1 and SENDERS >= 2


class _Timer:
    """Accumulates the time spent in wrapped callables, by label."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def wrap(self, label: str, func: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - start
        return timed


def keys(count: int) -> list[KeyPair]:
    return [KeyPair.from_seed(i.to_bytes(4, "big") * 8) for i in range(count)]


def prebuild(genesis_keys: list[KeyPair], directory: str) -> tuple[Any, list[bytes]]:
    """The genesis and the encoded blocks (signed, built and committed outside any timing)."""
    genesis = make_genesis(CHAIN_ID, [(k.address, BALANCE) for k in genesis_keys],
                           [(genesis_keys[0].public_key, 1)], genesis_time_ms=0, fee_min=FEE)
    rng = random.Random(20_261_125)
    nonces = [0] * len(genesis_keys)
    blocks: list[bytes] = []
    with Store(os.path.join(directory, "build")) as store:
        state = StateMachine(store, genesis)
        for height in range(1, BLOCKS + 1):
            txs = []
            for i in range(TXS_PER_BLOCK):
                sender = i % len(genesis_keys)
                recipient = rng.randrange(len(genesis_keys))
                payload = encode_transfer(genesis_keys[recipient].address, rng.randrange(1, 1000))
                txs.append(sign_tx(genesis_keys[sender], CHAIN_ID, TX_TYPE_TRANSFER,
                                   nonces[sender], FEE, height + 1_000, payload))
                nonces[sender] += 1
            block = state.build_block(txs, height * BLOCK_TIME_MS, genesis_keys[0].public_key)
            assert len(block.txs) == TXS_PER_BLOCK, "every prebuilt tx must be admissible"
            state.finalize_block(block)
            state.commit()
            blocks.append(block.encode())
    return genesis, blocks


def _replay(genesis: Any, blocks: list[bytes], directory: str,
            pipelined: bool) -> dict[str, float]:
    """Apply the encoded blocks into a fresh store; seconds per phase and in total.

    Serial: decode, `finalize_block`, `commit`, one block after the other.
    Pipelined (the import path, `core/state/pipeline.py`): a worker decodes
    and checks block N+1 while this thread executes and commits block N;
    "decode" and "checks" are then the worker's time, overlapped with the
    rest, and "wait" is the time this thread waited for the worker.
    """
    timer = _Timer()
    saved_validate = accel.validate_batch
    saved_apply = StateTree.apply
    name = "replay-pipelined" if pipelined else "replay-serial"
    with Store(os.path.join(directory, name)) as store:
        state = StateMachine(store, genesis)
        decode = timer.wrap("decode", decode_block)
        accel.validate_batch = timer.wrap("checks", saved_validate)  # type: ignore[assignment]
        StateTree.apply = timer.wrap("root", saved_apply)  # type: ignore[method-assign]

        def prepare(raw: bytes) -> CheckedTxs:
            return state.check_block_txs(decode(raw))

        stream = (checked_ahead(blocks, prepare) if pipelined
                  else ((raw, prepare(raw)) for raw in blocks))
        wait_s = finalize_s = commit_s = 0.0
        try:
            start = t0 = time.perf_counter()
            for _, checked in stream:
                t1 = time.perf_counter()
                result = state.finalize_block(checked.block, checked)
                t2 = time.perf_counter()
                state.commit()
                t3 = time.perf_counter()
                assert result.app_hash == checked.block.header.state_root
                wait_s += t1 - t0
                finalize_s += t2 - t1
                commit_s += t3 - t2
                t0 = t3
            total_s = time.perf_counter() - start
        finally:
            accel.validate_batch = saved_validate  # type: ignore[assignment]
            StateTree.apply = saved_apply  # type: ignore[method-assign]
    decode_s = timer.seconds.get("decode", 0.0)
    checks_s = timer.seconds.get("checks", 0.0)
    root_s = timer.seconds.get("root", 0.0)
    split = {
        "decode": decode_s,
        "checks": checks_s,
        "execute": finalize_s - root_s,
        "root": root_s,
        "commit": commit_s,
        "total": total_s,
    }
    if pipelined:
        split["wait"] = wait_s
    else:  # `prepare` ran in this thread: its time is the decode and checks above
        split["other"] = wait_s - decode_s - checks_s
    return split


_LABELS = {
    "decode": "decode blocks",
    "checks": "stateless checks + signatures",
    "wait": "waiting for the worker",
    "other": "tx packing, tx root, block size",
    "execute": "execution (fees, nonces, transfers)",
    "root": "state tree update (root)",
    "commit": "commit (LMDB write txn)",
}


def _print_split(title: str, split: dict[str, float]) -> None:
    total = split["total"]
    print(f"{title}: {BLOCKS * TXS_PER_BLOCK / total:,.0f} tx/s")
    print(f"  {'phase':<38}{'seconds':>9}{'share':>8}{'ms/block':>10}")
    for phase, label in _LABELS.items():
        if phase in split:
            seconds = split[phase]
            worker = " (worker)" if "wait" in split and phase in ("decode", "checks") else ""
            print(f"  {label + worker:<38}{seconds:>9.2f}{seconds / total:>8.1%}"
                  f"{seconds * 1000 / BLOCKS:>10.1f}")
    print(f"  {'total (wall)':<38}{total:>9.2f}{1:>8.0%}{total * 1000 / BLOCKS:>10.1f}")


def test_apply_blocks(benchmark: Any) -> None:
    assert machine_module.StateTree is StateTree
    signers = keys(SENDERS)
    with tempfile.TemporaryDirectory(prefix="chainmall-bench-apply-") as directory:
        t0 = time.perf_counter()
        genesis, blocks = prebuild(signers, directory)
        build_s = time.perf_counter() - t0
        serial = _replay(genesis, blocks, directory, pipelined=False)
        pipelined = benchmark.pedantic(_replay, args=(genesis, blocks, directory, True),
                                       rounds=1, iterations=1)
    tx_per_s = BLOCKS * TXS_PER_BLOCK / pipelined["total"]
    print()
    print(f"machine: {machine('one process; signatures in validate_batch, all cores')}")
    for kernel in accel.status():
        print(f"kernel {kernel.name}: {kernel.in_use} ({kernel.detail})")
    print(f"size run: {BLOCKS} blocks x {TXS_PER_BLOCK:,} txs ({SENDERS:,} senders); "
          f"issue's size: {ISSUE_BLOCKS} x {ISSUE_TXS:,} (CHAINMALL_BENCH_BLOCKS/_TXS)")
    print(f"prebuild (signing + build_block, not measured): {build_s:.1f} s")
    _print_split("serial (one block after the other)", serial)
    _print_split("pipelined (the import path: next block checked in a worker)", pipelined)
    print(f"pipelined / serial: {serial['total'] / pipelined['total']:.2f}x")
    print(f"applied (pipelined): {tx_per_s:,.0f} tx/s; target >= {TARGET_TX_PER_S:,} tx/s with "
          f"signatures checked: {verdict(tx_per_s >= TARGET_TX_PER_S)}")
