"""Benchmark applying blocks of signed transfers into LMDB, split by phase.

Run: .venv/bin/pytest bench/bench_apply.py --benchmark-only -s -q

Issue targets:

* "Apply 100 blocks of 10,000 transactions each into LMDB: transactions per
  second applied, with the share of time in signature checks, state updates
  and commit. Target: >= 20,000 applied tx/s on this 2-core machine with
  signatures checked."

Apply: the blocks are signed and built OUTSIDE the measured region (with
`StateMachine.build_block` over a separate store), encoded, then decoded and
replayed into a fresh LMDB store through `finalize_block` + `commit`; only
the replay is timed. The split: stateless batch checks (signatures, tx ids:
`accel.validate_batch`), execution (fees, nonces, transfers, the overlay),
the state tree update (`StateTree.apply`), and the LMDB commit. Sizes come
from CHAINMALL_BENCH_BLOCKS / CHAINMALL_BENCH_TXS (default 10 x 10,000, a
run of about two minutes in pure Python; the issue's size is 100 x 10,000).

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
from chainmall.core.state.machine import StateMachine
from chainmall.core.state.root import StateTree
from chainmall.core.store import Store
from chainmall.core.tx import sign_tx

ISSUE_BLOCKS, ISSUE_TXS = 100, 10_000
BLOCKS = int(os.environ.get("CHAINMALL_BENCH_BLOCKS", "10"))
TXS_PER_BLOCK = int(os.environ.get("CHAINMALL_BENCH_TXS", "10000"))
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


def _keys(count: int) -> list[KeyPair]:
    return [KeyPair.from_seed(i.to_bytes(4, "big") * 8) for i in range(count)]


def _prebuild(genesis_keys: list[KeyPair], directory: str) -> tuple[Any, list[bytes]]:
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


def _replay(genesis: Any, blocks: list[bytes], directory: str) -> dict[str, float]:
    """Apply the encoded blocks into a fresh store; seconds per phase and in total."""
    timer = _Timer()
    saved_validate = accel.validate_batch
    saved_apply = StateTree.apply
    with Store(os.path.join(directory, "replay")) as store:
        state = StateMachine(store, genesis)
        accel.validate_batch = timer.wrap("checks", saved_validate)  # type: ignore[assignment]
        StateTree.apply = timer.wrap("root", saved_apply)  # type: ignore[method-assign]
        try:
            decode_s = finalize_s = commit_s = 0.0
            for raw in blocks:
                t0 = time.perf_counter()
                block = decode_block(raw)
                t1 = time.perf_counter()
                result = state.finalize_block(block)
                t2 = time.perf_counter()
                state.commit()
                t3 = time.perf_counter()
                assert result.app_hash == block.header.state_root
                decode_s += t1 - t0
                finalize_s += t2 - t1
                commit_s += t3 - t2
        finally:
            accel.validate_batch = saved_validate  # type: ignore[assignment]
            StateTree.apply = saved_apply  # type: ignore[method-assign]
    checks_s = timer.seconds.get("checks", 0.0)
    root_s = timer.seconds.get("root", 0.0)
    return {
        "decode": decode_s,
        "checks": checks_s,
        "execute": finalize_s - checks_s - root_s,
        "root": root_s,
        "commit": commit_s,
        "total": decode_s + finalize_s + commit_s,
    }


def test_apply_blocks(benchmark: Any) -> None:
    assert machine_module.StateTree is StateTree
    keys = _keys(SENDERS)
    with tempfile.TemporaryDirectory(prefix="chainmall-bench-apply-") as directory:
        t0 = time.perf_counter()
        genesis, blocks = _prebuild(keys, directory)
        build_s = time.perf_counter() - t0
        split = benchmark.pedantic(_replay, args=(genesis, blocks, directory),
                                   rounds=1, iterations=1)
    total_txs = BLOCKS * TXS_PER_BLOCK
    tx_per_s = total_txs / split["total"]
    print()
    print(f"machine: {machine('one process; signatures in validate_batch')}")
    for kernel in accel.status():
        print(f"kernel {kernel.name}: {kernel.in_use} ({kernel.detail})")
    print(f"size run: {BLOCKS} blocks x {TXS_PER_BLOCK:,} txs ({SENDERS:,} senders); "
          f"issue's size: {ISSUE_BLOCKS} x {ISSUE_TXS:,} (CHAINMALL_BENCH_BLOCKS/_TXS)")
    print(f"prebuild (signing + build_block, not measured): {build_s:.1f} s")
    print(f"{'phase':<34}{'seconds':>10}{'share':>9}{'ms/block':>11}")
    labels = {
        "decode": "decode blocks",
        "checks": "stateless checks + signatures",
        "execute": "execution (fees, nonces, transfers)",
        "root": "state tree update (root)",
        "commit": "commit (LMDB write txn)",
    }
    for phase, label in labels.items():
        seconds = split[phase]
        print(f"{label:<34}{seconds:>10.2f}{seconds / split['total']:>9.1%}"
              f"{seconds * 1000 / BLOCKS:>11.1f}")
    print(f"{'total':<34}{split['total']:>10.2f}{1:>9.0%}{split['total'] * 1000 / BLOCKS:>11.1f}")
    print(f"applied: {tx_per_s:,.0f} tx/s; target >= {TARGET_TX_PER_S:,} tx/s with "
          f"signatures checked: {verdict(tx_per_s >= TARGET_TX_PER_S)}")
