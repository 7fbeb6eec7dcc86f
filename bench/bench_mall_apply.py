"""Benchmark a mixed mall workload applied into LMDB with signatures checked.

Run: .venv/bin/pytest bench/bench_mall_apply.py --benchmark-only -s -q

Issue target ("The chain mall"): "A mixed mall block workload (orders, escrow
steps, trace events, hand-overs) applied into LMDB with signatures checked:
>= 10,000 tx/s on this machine."

Workload, per block in steady state (sizes: CHAINMALL_BENCH_MALL_ORDERS new orders
per block, default 400, over CHAINMALL_BENCH_MALL_BLOCKS blocks, default 12,
plus 4 blocks that drain the pipeline): every order goes through five txs in
five consecutive blocks: ORDER_PLACE (stock reserved, payment into escrow),
HANDOVER_PROPOSE (merchant to carrier, linked), HANDOVER_ACCEPT (the carrier:
custody moves, an EPCIS event is recorded, the escrow is shipped),
ESCROW_DELIVER (the carrier's delivery event) and ESCROW_CONFIRM (settlement:
tax withheld, commission, payout); besides, as many TRACE_RECORD inspections
as new orders. 16 merchants, 16 carriers, 4 inspectors, one buyer per order.

The blocks are signed and built outside the measured region (`execute` over a
separate store), then replayed into a fresh store as the import path does
(`core/state/pipeline.py`: worker threads decode and check the next blocks'
signatures while this thread executes and commits), after the set-up blocks
(registrations, listings, item commissioning), which are not timed. The
baseline, in the same run and in interleaved rounds, replays the same number
of signed TRANSFER txs the same way. Beside the wall times it prints the
replaying thread's CPU time per tx (`time.thread_time`: executing and
committing, not the workers' decoding and signature checks), the figure a
shared machine moves least.

A third arm, in the same interleaved rounds, replays the mall blocks with
deferred writes (`StateMachine.defer_writes`: each block's durable write on a
writer thread while the next block executes); its time includes the last
block's write. Its "commit" is the writer thread's wall, overlapped with the
execution, so its "rest" is not printed. A fourth arm hands the writes to a
writer process (`defer_writes(process=True)`: its own GIL; the commit timed
there is not seen here, so its "commit" is 0). The verdict is the fastest mall
arm's.
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from typing import Any

from benchutil import machine, verdict
from chainmall.core import constants as C
from chainmall.core.block import decode_block
from chainmall.core.genesis import MallParams, make_genesis, make_mall
from chainmall.core.keys import KeyPair
from chainmall.core.mall import install
from chainmall.core.mall.custody import Acceptance, Proposal
from chainmall.core.mall.escrow import DeliveryNote
from chainmall.core.mall.events import TraceEvent
from chainmall.core.mall.keys import item_key
from chainmall.core.mall.order_record import OrderRef
from chainmall.core.mall.orders import Placement
from chainmall.core.mall.parties import PartyDetails
from chainmall.core.mall.products import Listing
from chainmall.core.mall.vocab import (
    ACTION_ADD,
    ACTION_OBSERVE,
    KIND_OBJECT,
    ROLE_CARRIER,
    ROLE_INSPECTOR,
    ROLE_MERCHANT,
)
from chainmall.core.state.accounts import encode_transfer
from chainmall.core.state.machine import StateMachine
from chainmall.core.state.pipeline import checked_ahead
from chainmall.core.store import Store
from chainmall.core.tx import Tx, decode_tx, sign_tx
from store_timer import TreeAndCommitTimes

ORDERS = int(os.environ.get("CHAINMALL_BENCH_MALL_ORDERS", "400"))
BLOCKS = int(os.environ.get("CHAINMALL_BENCH_MALL_BLOCKS", "12"))
ROUNDS = int(os.environ.get("CHAINMALL_BENCH_MALL_ROUNDS", "2"))
TARGET_TX_PER_S = 10_000
CHAIN_ID = "chainmall-bench-mall"
MERCHANTS, CARRIERS, INSPECTORS = 16, 16, 4
FEE = 1
PRICE = 1_000
BLOCK_TIME_MS = 1_000
START_MS = 1_767_225_600_000
STAGES = 5  # order, propose, accept, deliver, confirm


def _key(role: str, index: int) -> KeyPair:
    return KeyPair.from_seed(f"{role}-{index}".encode().ljust(32, b"."))


class _Signer:
    """Signs txs with each key's next nonce."""

    def __init__(self) -> None:
        self.nonces: dict[bytes, int] = {}

    def __call__(self, key: KeyPair, tx_type: int, payload: bytes) -> Tx:
        nonce = self.nonces.get(key.public_key, 0)
        self.nonces[key.public_key] = nonce + 1
        return sign_tx(key, CHAIN_ID, tx_type, nonce, FEE, 2**62, payload)


def _genesis(keys: list[KeyPair], authority: KeyPair) -> Any:
    params = MallParams(merchant_bond_min=1_000, arbitrator_bond_min=500, commission_bps=100,
                        tax_rate_max_bps=3_000)
    mall = make_mall([], [("IT", authority.address, 2_200)], params)
    return make_genesis(CHAIN_ID, [(k.address, 10**12) for k in keys],
                        [(keys[0].public_key, 1)], genesis_time_ms=START_MS, fee_min=FEE,
                        mall=mall)


def _mall_blocks() -> tuple[Any, list[list[Tx]], list[list[Tx]]]:
    """The genesis, the set-up blocks' txs and the workload blocks' txs."""
    merchants = [_key("merchant", i) for i in range(MERCHANTS)]
    carriers = [_key("carrier", i) for i in range(CARRIERS)]
    inspectors = [_key("inspector", i) for i in range(INSPECTORS)]
    buyers = [_key("buyer", i) for i in range(ORDERS * BLOCKS)]
    authority = _key("authority", 0)
    genesis = _genesis([*merchants, *carriers, *inspectors, *buyers, authority], authority)
    sign = _Signer()
    setup: list[list[Tx]] = []
    empty = b"\x00" * 32
    setup.append([sign(m, C.TX_MALL_PARTY_REGISTER,
                       PartyDetails(ROLE_MERCHANT, 1_000, "IT", "merchant", empty).encode())
                  for m in merchants]
                 + [sign(c, C.TX_MALL_PARTY_REGISTER,
                         PartyDetails(ROLE_CARRIER, 0, "", "carrier", empty).encode())
                    for c in carriers]
                 + [sign(i, C.TX_MALL_PARTY_REGISTER,
                         PartyDetails(ROLE_INSPECTOR, 0, "", "inspector", empty).encode())
                    for i in inspectors])
    listings = [sign(m, C.TX_MALL_PRODUCT_LIST,
                     Listing(PRICE, 2**32 - 1, empty, "item", "bench").encode())
                for m in merchants]
    setup.append(listings)
    per_merchant = -(-ORDERS // MERCHANTS) * BLOCKS  # any ORDERS: merchant j % 16 each
    uris = {m.public_key: [f"urn:epc:id:sgtin:{n}.9.{i}" for i in range(per_merchant)]
            for n, m in enumerate(merchants)}
    commissions = []
    for m in merchants:
        mine = uris[m.public_key]
        for start in range(0, len(mine), C.EPCIS_EVENT_IDS_MAX):
            event = TraceEvent(KIND_OBJECT, ACTION_ADD, START_MS + start, 0, "commissioning",
                               "active", epcs=tuple(mine[start:start + C.EPCIS_EVENT_IDS_MAX]))
            commissions.append(sign(m, C.TX_MALL_TRACE_RECORD, event.encode()))
    setup.append(commissions)
    rng = random.Random(20_261_128)
    all_uris = [uri for mine in uris.values() for uri in mine]
    # (signer, tx type, payload) per block; signed at the end in block order, so each
    # key's nonces follow the order its txs take in the chain.
    plan: list[list[tuple[KeyPair, int, bytes]]] = [[] for _ in range(BLOCKS + STAGES - 1)]
    time_ms = START_MS + (len(setup) + 1) * BLOCK_TIME_MS
    next_item = {m.public_key: 0 for m in merchants}
    for b in range(BLOCKS):
        for j in range(ORDERS):
            buyer = buyers[b * ORDERS + j]
            merchant = merchants[j % MERCHANTS]
            carrier = carriers[j % CARRIERS]
            uri = uris[merchant.public_key][next_item[merchant.public_key]]
            next_item[merchant.public_key] += 1
            product = listings[j % MERCHANTS].tx_id
            # A buyer signs only its order (nonce 0) and its confirmation (nonce 1).
            order = sign(buyer, C.TX_MALL_ORDER_PLACE,
                         Placement(product, 1, PRICE, b"\x5a" * 80).encode())
            plan[b].append((buyer, 0, order.encode()))
            plan[b + 1].append((merchant, C.TX_MALL_HANDOVER_PROPOSE, Proposal(
                item_key(uri), carrier.address, order.tx_id).encode()))
            accept_ms = time_ms + (b + 2) * BLOCK_TIME_MS
            plan[b + 2].append((carrier, C.TX_MALL_HANDOVER_ACCEPT, Acceptance(
                item_key(uri), accept_ms, 60, "receiving", "in_transit").encode()))
            plan[b + 3].append((carrier, C.TX_MALL_ESCROW_DELIVER, DeliveryNote(
                order.tx_id, accept_ms + BLOCK_TIME_MS, 60, "").encode()))
            confirm = sign(buyer, C.TX_MALL_ESCROW_CONFIRM, OrderRef(order.tx_id).encode())
            plan[b + 4].append((buyer, 0, confirm.encode()))
        for j in range(ORDERS):
            inspector = inspectors[j % INSPECTORS]
            event = TraceEvent(KIND_OBJECT, ACTION_OBSERVE, time_ms + b * BLOCK_TIME_MS + j, 60,
                               "inspecting", "conformant", epcs=(rng.choice(all_uris),))
            plan[b].append((inspector, C.TX_MALL_TRACE_RECORD, event.encode()))
    blocks = [[decode_tx(payload) if tx_type == 0 else sign(key, tx_type, payload)
               for key, tx_type, payload in entries] for entries in plan]
    return genesis, setup, blocks


def _transfer_blocks(count: int, per_block: int) -> tuple[Any, list[list[Tx]]]:
    """The baseline: `count` signed transfers in blocks of `per_block`."""
    senders = [_key("sender", i) for i in range(2_000)]
    genesis = _genesis(senders, senders[0])
    sign = _Signer()
    rng = random.Random(7)
    txs = [sign(senders[i % len(senders)], C.TX_TYPE_TRANSFER,
                encode_transfer(senders[rng.randrange(len(senders))].address, 1))
           for i in range(count)]
    return genesis, [txs[i:i + per_block] for i in range(0, count, per_block)]


def _build(genesis: Any, blocks: list[list[Tx]], path: str,
           mall: bool) -> tuple[list[bytes], bytes]:
    """Execute and commit the blocks over a store; their encoded records and the last
    state root."""
    records = []
    with Store(path) as store:
        state = StateMachine(store, genesis)
        if mall:
            install(state, genesis)
        for txs in blocks:
            height, _ = state.info()
            result = state.execute(height + 1, START_MS + (height + 1) * BLOCK_TIME_MS,
                                   genesis.validators[0].public_key, txs)
            failed = [(r.code, r.log) for r in result.tx_results if r.code]
            assert not failed, failed[:3]
            state.commit()
            records.append(result.block.encode())
        return records, state.info()[1]


def _replay(genesis: Any, setup: list[bytes], blocks: list[bytes], path: str,
            mall: bool, defer: bool = False,
            process: bool = False) -> tuple[float, float, TreeAndCommitTimes, bytes]:
    """Replay the set-up blocks (not timed), then the blocks (timed, pipelined; with
    `defer`, each block written while the next executes): seconds, this thread's CPU
    seconds (executing and committing; the workers that decode and check signatures,
    and the writer, are other threads), the time in the state tree and the commit, and
    the last state root."""
    with Store(path) as store:
        state = StateMachine(store, genesis)
        if mall:
            install(state, genesis)
        for raw in setup:
            state.finalize_block(decode_block(raw))
            state.commit()

        def prepare(raw: bytes):
            return state.check_block_txs(decode_block(raw))

        if defer:
            state.defer_writes(process=process)  # the writer process starts untimed
        with TreeAndCommitTimes() as split:
            start, cpu_start = time.perf_counter(), time.thread_time()
            for _, checked in checked_ahead(blocks, prepare):
                state.finalize_block(checked.block, checked)
                state.commit()
            state.close()  # the last block's write
            return (time.perf_counter() - start, time.thread_time() - cpu_start, split,
                    state.info()[1])


def test_mall_workload(benchmark: Any) -> None:
    with tempfile.TemporaryDirectory(prefix="chainmall-bench-mall-") as directory:
        t0 = time.perf_counter()
        genesis, setup_txs, block_txs = _mall_blocks()
        records, mall_root = _build(genesis, setup_txs + block_txs,
                                    os.path.join(directory, "build"), mall=True)
        setup, blocks = records[:len(setup_txs)], records[len(setup_txs):]
        tx_count = sum(len(txs) for txs in block_txs)
        per_block = max(len(txs) for txs in block_txs)
        base_genesis, base_txs = _transfer_blocks(tx_count, per_block)
        base_blocks, base_root = _build(base_genesis, base_txs, os.path.join(directory, "base"),
                                        False)
        build_s = time.perf_counter() - t0
        mall_s, defer_s, process_s, base_s, splits, cpu = [], [], [], [], {}, {}
        for round_number in range(ROUNDS):  # interleaved: the machine's noise hits both
            seconds, cpu["base", round_number], splits["base", round_number], root = _replay(
                base_genesis, [], base_blocks, os.path.join(directory, f"base-{round_number}"),
                False)
            assert root == base_root, "the replay's state root differs from the build's"
            base_s.append(seconds)
            seconds, cpu["mall", round_number], splits["mall", round_number], root = _replay(
                genesis, setup, blocks, os.path.join(directory, f"mall-{round_number}"), True)
            assert root == mall_root, "the replay's state root differs from the build's"
            mall_s.append(seconds)
            seconds, cpu["defer", round_number], splits["defer", round_number], root = _replay(
                genesis, setup, blocks, os.path.join(directory, f"defer-{round_number}"), True,
                defer=True)
            assert root == mall_root, "the replay's state root differs from the build's"
            defer_s.append(seconds)
            seconds, cpu["process", round_number], splits["process", round_number], root = _replay(
                genesis, setup, blocks, os.path.join(directory, f"process-{round_number}"), True,
                defer=True, process=True)
            assert root == mall_root, "the replay's state root differs from the build's"
            process_s.append(seconds)
        benchmark.extra_info.update(mall_s=mall_s, defer_s=defer_s, process_s=process_s,
                                    base_s=base_s)
        benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    best_mall, best_base = min(min(mall_s), min(defer_s), min(process_s)), min(base_s)
    mall_rate, base_rate = tx_count / best_mall, tx_count / best_base
    kinds = {}
    for txs in block_txs:
        for tx in txs:
            kinds[tx.tx_type] = kinds.get(tx.tx_type, 0) + 1
    print()
    load = os.getloadavg()
    print(f"machine: {machine('one process; signatures checked by workers on all cores')}; "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"workload: {len(blocks)} blocks, {tx_count:,} txs (up to {per_block:,} per block): "
          + ", ".join(f"{tx_type:#06x} x {n:,}" for tx_type, n in sorted(kinds.items())))
    print(f"build (signing + execute, not measured): {build_s:.1f} s; last state root "
          f"{mall_root.hex()} (every replay ends on it)")
    print(f"rounds (s): mall {', '.join(f'{s:.2f}' for s in mall_s)}; mall, deferred writes "
          f"{', '.join(f'{s:.2f}' for s in defer_s)}; mall, writer process "
          f"{', '.join(f'{s:.2f}' for s in process_s)}; "
          f"transfers {', '.join(f'{s:.2f}' for s in base_s)}")
    print(f"baseline, same tx count of transfers: {base_rate:,.0f} tx/s")
    print(f"  {'per tx, best round':<34}{'total':>9}{'tree':>9}{'commit':>9}{'rest':>9}"
          f"{'keys/tx':>9}{'thread CPU':>12}")
    for label, name, times in (("transfers", "base", base_s), ("mall", "mall", mall_s),
                               ("mall, deferred writes", "defer", defer_s),
                               ("mall, writer process", "process", process_s)):
        best = times.index(min(times))
        split = splits[name, best]
        total_us, root_us, commit_us = (1e6 * x / tx_count for x in (
            times[best], split.tree_s, split.commit_s))
        cpu_us = 1e6 * min(cpu[name, n] for n in range(ROUNDS)) / tx_count
        rest = "-" if name in ("defer", "process") else f"{total_us - root_us - commit_us:.1f}"
        print(f"  {label + ' (us)':<34}{total_us:>9.1f}{root_us:>9.1f}{commit_us:>9.1f}"
              f"{rest:>9}{split.changed_keys / tx_count:>9.2f}{cpu_us:>12.1f}")
    print("  (thread CPU: the executing thread's (inline: and committing), least of the "
          "rounds; the others are wall time of the best round; deferred: commit is the "
          "writer thread's wall, overlapped)")
    print(f"mall workload: {mall_rate:,.0f} tx/s ({mall_rate / base_rate:.2f}x the transfer "
          f"rate); target >= {TARGET_TX_PER_S:,} tx/s with signatures checked: "
          f"{verdict(mall_rate >= TARGET_TX_PER_S)}")
