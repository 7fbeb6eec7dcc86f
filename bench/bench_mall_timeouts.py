"""Benchmark time-out processing per block as open orders grow from 10^3 to 10^6.

Run: .venv/bin/pytest bench/bench_mall_timeouts.py --benchmark-only -s -q
     CHAINMALL_BENCH_TIMEOUT_MAX_EXP=5 stops at 10^5 (the 10^6 state takes minutes to build).

Issue target ("The chain mall"): "Time-out processing per block flat from 10^3
to 10^6 open orders (per expiring order)."

Per size n: a store is initialised with a state holding n open, funded
orders (order, escrow and deadline entries; one merchant, one listing,
1,000 buyers), bulk-built with `build_tree`: the orders are the state, not
the product of n signed txs. EXPIRING orders fall due in each of the BLOCKS
measured blocks; the other orders' deadlines are later. Each measured block
is executed and committed with the mall installed (real machine, LMDB); the
begin-block hook refunds the orders due (a ship time-out each: buyer
credited, stock back, merchant counter, escrow closed, index entry deleted).

Printed per size: the hook's time per expiring order (the deadline index read
and the refunds: must be flat, it reads only what is due) and the whole
block's time per expiring order (the state tree adds a log n term, as the
state-root benchmark shows). The sizes take turns block by block, so the
machine's noise falls on all of them alike; times are best-of.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from benchutil import machine, verdict
from bulkstate import BulkState
from chainmall.core.abci.app import StateReader
from chainmall.core.genesis import MallParams, make_genesis, make_mall
from chainmall.core.keys import KeyPair
from chainmall.core.mall import hooks, install, keys
from chainmall.core.mall.codec import MARK, NO_ID
from chainmall.core.mall.escrow import (
    CLOSE_OPEN,
    ESCROW_FUNDED,
    ESCROW_REFUNDED,
    Escrow,
    load_escrow,
)
from chainmall.core.mall.order_record import Order
from chainmall.core.mall.parties import Party
from chainmall.core.mall.pool import NOT_IN_POOL
from chainmall.core.mall.products import PRODUCT_ACTIVE, Product
from chainmall.core.mall.vocab import ROLE_MERCHANT
from chainmall.core.state.accounts import FEE_POOL_KEY, Account, account_key, encode_fee_pool

MAX_EXP = int(os.environ.get("CHAINMALL_BENCH_TIMEOUT_MAX_EXP", "6"))
SIZES = [10**e for e in range(3, MAX_EXP + 1)]
EXPIRING = 200
BLOCKS = int(os.environ.get("CHAINMALL_BENCH_TIMEOUT_BLOCKS", "5"))
FLAT_RATIO_MAX = 2.0  # the hook's per-order time may not grow more than this across sizes
CHAIN_ID = "chainmall-bench-timeouts"
START_MS = 1_767_225_600_000
BLOCK_MS = 1_000
PRICE = 1_000
BUYERS = 1_000
FAR_MS = 10**9  # orders not measured fall due this much later


def _key(name: str) -> KeyPair:
    return KeyPair.from_seed(name.encode().ljust(32, b"."))


MERCHANT, AUTHORITY, VALIDATOR = _key("merchant"), _key("authority"), _key("validator")
BUYER_ADDRESSES = [_key(f"buyer-{i}").address for i in range(BUYERS)]
PRODUCT_ID = b"\x70" * 32


def _genesis() -> Any:
    params = MallParams(merchant_bond_min=1_000, ship_timeout_ms=3_600_000)
    return make_genesis(CHAIN_ID, [(VALIDATOR.address, 10**9)], [(VALIDATOR.public_key, 1)],
                        genesis_time_ms=START_MS, fee_min=1,
                        mall=make_mall([], [("IT", AUTHORITY.address, 2_200)], params))


def _state(n: int) -> dict[bytes, bytes]:
    """The genesis state with n open funded orders; the first BLOCKS * EXPIRING fall due in
    the measured blocks, EXPIRING per block."""
    state = {account_key(VALIDATOR.address): Account(10**9, 0).encode(),
             account_key(MERCHANT.address): Account(10**9, 0).encode(),
             FEE_POOL_KEY: encode_fee_pool(0)}
    for address in BUYER_ADDRESSES:
        state[account_key(address)] = Account(10**6, 0).encode()
    state[keys.party(MERCHANT.address)] = Party(
        ROLE_MERCHANT, MERCHANT.public_key, 1_000, n, 0, NOT_IN_POOL, 0, "IT", "merchant",
        NO_ID).encode()
    state[keys.product(PRODUCT_ID)] = Product(
        MERCHANT.address, PRODUCT_ACTIVE, PRICE, 0, n, 0, 0, NO_ID, "item", "bench").encode()
    measured = BLOCKS * EXPIRING
    for i in range(n):
        order_id = i.to_bytes(32, "big")
        due = (START_MS + (1 + i // EXPIRING) * BLOCK_MS if i < measured
               else START_MS + FAR_MS + i)
        state[keys.order(order_id)] = Order(
            BUYER_ADDRESSES[i % BUYERS], MERCHANT.address, PRODUCT_ID, 1, PRICE, PRICE, 2_200,
            0, 0, START_MS, "IT", b"\x5a" * 49).encode()
        state[keys.escrow(order_id)] = Escrow(
            ESCROW_FUNDED, PRICE, due, NO_ID, 0, 0, 0, 0, CLOSE_OPEN, 0, 0, 0, 0, 0).encode()
        state[keys.deadline(due, keys.DEADLINE_ESCROW, order_id)] = MARK
    return state


class _Size(BulkState):
    """One state size: its store, machine, and the times of its measured blocks."""

    def __init__(self, n: int, directory: str) -> None:
        super().__init__(n, directory, _genesis(), _state(n), install, (hooks, "begin_block"))

    def run_block(self) -> None:  # type: ignore[override]
        result = super().run_block(START_MS + self.next_height() * BLOCK_MS, VALIDATOR)
        refunds = [e for e in result.events if e.attribute("state") == "refunded"]
        assert len(refunds) == EXPIRING, len(refunds)

    def check(self) -> None:
        """The first order expired; the first order not measured is still open."""
        with self.store.reader() as view:
            reader = StateReader(view)
            assert load_escrow(reader, (0).to_bytes(32, "big")).state == ESCROW_REFUNDED
            if self.n > BLOCKS * EXPIRING:
                later = load_escrow(reader, (BLOCKS * EXPIRING).to_bytes(32, "big"))
                assert later.state == ESCROW_FUNDED


def test_timeouts_flat(benchmark: Any) -> None:
    with tempfile.TemporaryDirectory(prefix="chainmall-bench-timeouts-") as directory:
        sizes = [_Size(n, directory) for n in SIZES if n >= BLOCKS * EXPIRING
                 or n == SIZES[0]]
        for _ in range(BLOCKS if all(s.n >= BLOCKS * EXPIRING for s in sizes) else 1):
            for size in sizes:  # the sizes take turns
                size.run_block()
        benchmark.pedantic(lambda: None, rounds=1, iterations=1)
        for size in sizes:
            size.check()
            size.store.close()
    print()
    print(f"machine: {machine('one thread')}")
    print(f"{EXPIRING} orders expire per block; best of {len(sizes[0].block_s)} blocks per size")
    print(f"  {'open orders':>12}{'state build s':>15}{'hook us/order':>15}"
          f"{'block us/order':>16}")
    hook_us = []
    for size in sizes:
        per_hook = 1e6 * min(size.hook_s) / EXPIRING
        per_block = 1e6 * min(size.block_s) / EXPIRING
        hook_us.append(per_hook)
        print(f"  {size.n:>12,}{size.build_s:>15.1f}{per_hook:>15.1f}{per_block:>16.1f}")
    ratio = max(hook_us) / min(hook_us)
    print(f"hook time per expiring order, largest / smallest across sizes: {ratio:.2f} "
          f"(flat: <= {FLAT_RATIO_MAX}); target 'flat from 10^3 to 10^6 open orders': "
          f"{verdict(ratio <= FLAT_RATIO_MAX and sizes[-1].n >= 10**6)}")
