"""Benchmark the per-block reputation and ranking work against the merchants a block touches.

Run: .venv/bin/pytest bench/bench_trust_blocks.py --benchmark-only -s -q
     CHAINMALL_BENCH_TRUST_MAX_EXP=5 adds 10^5 merchants (a minute or two to build).

Issue target ("Trust in the mall"): "per-block reputation and ranking cost
proportional to the merchants touched" (a block pays for the merchants it
touches, not for all merchants: docs/trust.md 10).

Per size m (10^3, 10^4 merchants; 10^5 with the variable): a store holds m
merchants with reputations, each with PRODUCTS active listings with stats and
rank index entries (bench/trust_state.py, bulk-built with `build_tree`).
Each measured block touches T merchants (T in TOUCHED), new ones each block:
a bench hook, run at the start of the block, adds one counted order to each
touched merchant's reputation and to one of its listings' stats, exactly as
counting a settled order does (`reputation.touch`, `ranking.add_stats`).
The trust end-block hook then re-scores the touched merchants, re-ranks the
touched listings and, as their scores move, their other listings (fan-out),
plus its fixed budgets (the decay sweep of `rank_sweep_per_block` listings).
Printed: the end hook's time per block and per touched merchant, for each
(m, T). Proportional: per touched merchant flat across m; the hook's time
minus the fixed budget grows with T. Sizes and T take turns block by block;
times are best-of.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any

from benchutil import machine, verdict
from chainmall.core.genesis import TrustParams, make_genesis, make_trust
from chainmall.core.keys import KeyPair
from chainmall.core.state.accounts import FEE_POOL_KEY, Account, account_key, encode_fee_pool
from chainmall.core.state.machine import StateMachine
from chainmall.core.state.root import build_tree
from chainmall.core.store import Store
from chainmall.core.trust import hooks, install, ranking, reputation
from trust_state import Q, merchant_address, product_id, ranked_market

MAX_EXP = int(os.environ.get("CHAINMALL_BENCH_TRUST_MAX_EXP", "4"))
SIZES = [10**e for e in range(3, MAX_EXP + 1)]
TOUCHED = (0, 10, 100)
PRODUCTS = 4
BLOCKS = int(os.environ.get("CHAINMALL_BENCH_TRUST_BLOCKS", "5"))
FLAT_RATIO_MAX = 2.0
CHAIN_ID = "chainmall-bench-trust-blocks"
START_MS = 1_767_225_600_000
BLOCK_MS = 1_000
VALIDATOR = KeyPair.from_seed(b"validator".ljust(32, b"."))
PARAMS = TrustParams(rank_sweep_per_block=64)


def _genesis() -> Any:
    return make_genesis(CHAIN_ID, [(VALIDATOR.address, 10**9)], [(VALIDATOR.public_key, 1)],
                        genesis_time_ms=START_MS, fee_min=1, trust=make_trust([], PARAMS))


class _Size:
    """One market size: its store, machine, and the end hook's times per T."""

    def __init__(self, m: int, directory: str) -> None:
        self.m = m
        start = time.perf_counter()
        genesis = _genesis()
        state = ranked_market(m, PRODUCTS, PARAMS)
        state[account_key(VALIDATOR.address)] = Account(10**9, 0).encode()
        state[FEE_POOL_KEY] = encode_fee_pool(0)
        update = build_tree(state)
        self.store = Store(os.path.join(directory, f"m{m}"), map_size_bytes=1 << 34)
        self.store.init_genesis(CHAIN_ID, genesis.hash(), state, update.new_nodes, update.root)
        del state, update
        self.machine = StateMachine(self.store, genesis)
        self.touch_now = 0  # merchants the next block touches
        self.next_merchant = 0
        self.spent = [0.0]
        end = hooks.end_block

        def timed_end(state: Any, block: Any, trust_genesis: Any) -> None:
            t = time.perf_counter()
            end(state, block, trust_genesis)
            self.spent[0] += time.perf_counter() - t

        hooks.end_block = timed_end  # install binds the function it finds
        try:
            install(self.machine, genesis)
        finally:
            hooks.end_block = end
        self.machine.register_block_hook(self._touch, "begin")
        self.build_s = time.perf_counter() - start
        self.hook_s: dict[int, list[float]] = {t: [] for t in TOUCHED}

    def _touch(self, state: Any, block: Any) -> None:
        """One more counted order for each merchant touched, as counting a settlement does."""
        for _ in range(self.touch_now):
            i = self.next_merchant % self.m
            self.next_merchant += 1
            merchant = merchant_address(i)
            reputation.touch(state, merchant, block.height, PARAMS, orders_q=Q, shipped_q=Q,
                             on_time_q=Q, value=50_000, counted_orders=1)
            ranking.add_stats(state, product_id(i, 0), merchant, block.height, PARAMS,
                              sales_q=Q, counted_orders=1)

    def run_block(self, touched: int) -> None:
        height = self.machine.info()[0] + 1
        self.touch_now = touched
        self.spent[0] = 0.0
        self.machine.execute(height, START_MS + height * BLOCK_MS, VALIDATOR.public_key, [])
        self.machine.commit()
        self.hook_s[touched].append(self.spent[0])


def test_block_cost_follows_the_merchants_touched(benchmark: Any) -> None:
    with tempfile.TemporaryDirectory(prefix="chainmall-bench-trust-blocks-") as directory:
        sizes = [_Size(m, directory) for m in SIZES]
        for _ in range(BLOCKS):
            for touched in TOUCHED:
                for size in sizes:  # sizes and T take turns
                    size.run_block(touched)
        benchmark.pedantic(lambda: None, rounds=1, iterations=1)
        for size in sizes:
            size.store.close()
    print()
    print(f"machine: {machine('one thread')}")
    print(f"{PRODUCTS} listings per merchant; decay sweep {PARAMS.rank_sweep_per_block} "
          f"listings per block; best of {BLOCKS} blocks")
    print(f"  {'merchants':>10}{'build s':>9}" + "".join(f"{f'hook ms, T={t}':>16}"
                                                      for t in TOUCHED)
          + f"{'us per touched (T=100)':>25}")
    per_touched = []
    for size in sizes:
        best = {t: min(size.hook_s[t]) for t in TOUCHED}
        per = 1e6 * (best[TOUCHED[-1]] - best[0]) / TOUCHED[-1]
        per_touched.append(per)
        print(f"  {size.m:>10,}{size.build_s:>9.1f}"
              + "".join(f"{1e3 * best[t]:>16.2f}" for t in TOUCHED) + f"{per:>25.1f}")
    ratio = max(per_touched) / min(per_touched)
    grows = all(min(s.hook_s[TOUCHED[-1]]) > 3 * min(s.hook_s[TOUCHED[1]]) for s in sizes)
    print(f"per touched merchant, largest / smallest size: {ratio:.2f} (flat: <= "
          f"{FLAT_RATIO_MAX}); T=100 costs > 3x T=10 at every size: {grows}")
    print(f"target 'per-block reputation and ranking cost proportional to the merchants "
          f"touched': {verdict(ratio <= FLAT_RATIO_MAX and grows)}")
