"""Benchmark the reward epoch boundary as contributors grow from 10^2 to 10^6.

Run: .venv/bin/pytest bench/bench_trust_epochs.py --benchmark-only -s -q
     CHAINMALL_BENCH_EPOCH_MAX_EXP=6 adds 10^6 (`make bench-trust`; minutes to build).

Issue target ("Trust in the mall"): "Epoch boundary cost flat from 10^2 to 10^6
contributors" (a reward-per-point accumulator: the close stores one reward
per point; each account settles lazily when it next earns or claims).

Per size n: a store is initialised with a state holding n reward accounts
with points in epoch 0 and BLOCKS open epochs with their point totals, a
funded fee pool, bulk-built with `build_tree` (the accounts are the state,
not the product of n signed txs). Each measured block is one epoch later
than the last, so its begin-block hook closes one epoch (pool share plus
issuance, reward per point); the block is executed and committed with the
trust rules installed (real machine, LMDB). Printed per size: the close's
time (`rewards.close_epochs`) and the whole block's. The sizes take turns
block by block, so the machine's noise falls on all of them alike; times are
best-of.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from benchutil import machine, verdict
from bulkstate import BulkState
from chainmall.core.genesis import TrustParams, make_genesis, make_trust
from chainmall.core.keys import KeyPair
from chainmall.core.state.accounts import FEE_POOL_KEY, Account, account_key, encode_fee_pool
from chainmall.core.trust import install, keys, rewards
from chainmall.core.trust.records import (
    EPOCH_CLOSED,
    EPOCH_OPEN,
    EpochPointer,
    EpochRecord,
    RewardAccount,
    decode_epoch,
)

MAX_EXP = int(os.environ.get("CHAINMALL_BENCH_EPOCH_MAX_EXP", "5"))
SIZES = [10**e for e in range(2, MAX_EXP + 1)]
BLOCKS = int(os.environ.get("CHAINMALL_BENCH_EPOCH_BLOCKS", "7"))
FLAT_RATIO_MAX = 2.0  # the close may not cost more than this at the largest size
CHAIN_ID = "chainmall-bench-epochs"
START_MS = 1_767_225_600_000
EPOCH_MS = 60_000
POINTS = 7
POOL = 10**12
VALIDATOR = KeyPair.from_seed(b"validator".ljust(32, b"."))
PARAMS = TrustParams(epoch_ms=EPOCH_MS, pool_share_bps=5_000, issuance_per_epoch=1_000,
                     issuance_max=10**9, claim_epochs=52)


def _genesis() -> Any:
    return make_genesis(CHAIN_ID, [(VALIDATOR.address, 10**9)], [(VALIDATOR.public_key, 1)],
                        genesis_time_ms=START_MS, fee_min=1, trust=make_trust([], PARAMS))


def _contributor(i: int) -> bytes:
    return b"\xc0" + i.to_bytes(19, "big")


def _state(n: int) -> dict[bytes, bytes]:
    """The genesis state with n contributors' points in epoch 0 and BLOCKS open epochs."""
    state = {account_key(VALIDATOR.address): Account(10**9, 0).encode(),
             FEE_POOL_KEY: encode_fee_pool(POOL),
             keys.META_EPOCH: EpochPointer(0, 0).encode()}
    total = n * POINTS
    for epoch in range(BLOCKS):
        state[keys.epoch(epoch)] = EpochRecord(EPOCH_OPEN, total, 0, 0, bytes(16), 0,
                                               0).encode()
    account = RewardAccount(0, POINTS, 0, 0, 0).encode()
    for i in range(n):
        state[keys.reward_account(_contributor(i))] = account
    return state


class _Size(BulkState):
    """One state size: its store, machine, and the times of its measured blocks."""

    def __init__(self, n: int, directory: str) -> None:
        super().__init__(n, directory, _genesis(), _state(n), install,
                         (rewards, "close_epochs"))

    def run_block(self) -> None:  # type: ignore[override]
        result = super().run_block(START_MS + self.next_height() * EPOCH_MS, VALIDATOR)
        closes = [e for e in result.events if e.type == "trust.epoch"]
        assert len(closes) == 1, result.events

    def check(self) -> None:
        """Every measured epoch closed, with the pool share and issuance per point."""
        with self.store.reader() as view:
            for epoch in range(len(self.block_s)):
                record = decode_epoch(view.get_state(keys.epoch(epoch)))
                assert record.state == EPOCH_CLOSED and record.amount > 0
                assert record.per_point == (record.amount << 64) // (self.n * POINTS)


def test_epoch_boundary_flat(benchmark: Any) -> None:
    with tempfile.TemporaryDirectory(prefix="chainmall-bench-epochs-") as directory:
        sizes = [_Size(n, directory) for n in SIZES]
        for _ in range(BLOCKS):
            for size in sizes:  # the sizes take turns
                size.run_block()
        benchmark.pedantic(lambda: None, rounds=1, iterations=1)
        for size in sizes:
            size.check()
            size.store.close()
    print()
    print(f"machine: {machine('one thread')}")
    print(f"one epoch closes per block; best of {BLOCKS} blocks per size")
    print(f"  {'contributors':>12}{'state build s':>15}{'close us':>11}{'block us':>11}")
    close_us = []
    for size in sizes:
        close_us.append(1e6 * min(size.hook_s))
        print(f"  {size.n:>12,}{size.build_s:>15.1f}{close_us[-1]:>11.1f}"
              f"{1e6 * min(size.block_s):>11.1f}")
    ratio = close_us[-1] / close_us[0]
    print(f"epoch close, largest / smallest size: {ratio:.2f} (flat: <= {FLAT_RATIO_MAX}); "
          f"target 'flat from 10^2 to 10^6 contributors': "
          f"{verdict(ratio <= FLAT_RATIO_MAX and sizes[-1].n >= 10**6)}"
          + ("" if sizes[-1].n >= 10**6 else
             " (10^6 not run: CHAINMALL_BENCH_EPOCH_MAX_EXP=6, or make bench-trust)"))
