"""The mall workload's cost per tx type, in thread CPU time (what the load moves little).

Builds `bench_mall_apply.py`'s workload (smaller by default: CHAINMALL_BENCH_MALL_ORDERS
400 x CHAINMALL_BENCH_MALL_BLOCKS 6), then replays it into a fresh store ROUNDS times
in this thread (no pipeline: decoding and signature checks happen before, untimed),
timing with `time.thread_time` around each tx's handler (by tx type), the machine's
work around the handlers, the state tree update and the commit. The best round per
figure is kept. Keys written per tx type are the distinct keys the tx writes (the
handler's and the sender's account, for the fee and nonce), before the block folds the
keys several txs write (a merchant's account, the fee pool). Then, per state table,
what the blocks changed (the keys the tree and the commit pay for: count per tx,
deletes, mean value bytes) and the committed-state reads (LMDB lookups) the replay
made, during the txs and after them (the block's diff reads the committed value of
every key it writes that no tx read first: a new key costs a lookup that misses).

Usage (from the repository root):

    .venv/bin/python bench/mall_cost.py            # the table
    .venv/bin/python bench/mall_cost.py --profile  # + cProfile of one replay (top 40)
    .venv/bin/python bench/mall_cost.py --code DIR # another checkout's core/ (a baseline):
                                                   # its ext/ must be built

For a before/after figure, run the two alternately (interleaved), e.g. a copy of
main's tree with the compiled ext/ in /tmp/base: `--code /tmp/base`, then without.
"""

from __future__ import annotations

import contextlib
import cProfile
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
if "--code" in sys.argv:  # map the chainmall package to another checkout, before importing it
    _root = Path(sys.argv[sys.argv.index("--code") + 1]).resolve()
    import __editable___chainmall_0_1_0_finder as _finder  # type: ignore[import-not-found]

    _finder.MAPPING.update({f"chainmall.{part}": str(_root / part)
                            for part in ("cli", "core", "ext")})
os.environ.setdefault("CHAINMALL_BENCH_MALL_BLOCKS", "6")

import bench_mall_apply as workload
from benchutil import machine
from chainmall.core import constants as C
from chainmall.core.block import decode_block
from chainmall.core.mall import install
from chainmall.core.state.accounts import account_key
from chainmall.core.state.machine import StateMachine
from chainmall.core.store import Store, StoreView
from store_timer import TreeAndCommitTimes

ROUNDS = int(os.environ.get("CHAINMALL_COST_ROUNDS", "3"))
NAMES = {value: name[len("TX_MALL_"):].lower() for name, value in vars(C).items()
         if name.startswith("TX_MALL_") and isinstance(value, int)}


class _Meter:
    """Thread CPU seconds and writes per tx type, the tree and the commit, for one replay."""

    def __init__(self) -> None:
        self.handler_s: dict[int, float] = {}
        self.count: dict[int, int] = {}
        self.keys: dict[int, int] = {}
        self.tree_s = self.commit_s = self.finalize_s = 0.0
        self.changed = 0
        self.by_table: dict[int, list[int]] = {}  # table -> [changed, deletes, value bytes]
        self.reads: dict[tuple[str, int], list[int]] = {}  # (phase, table) -> [reads, hits]
        self.phase = "hooks"


class _TableTimes(TreeAndCommitTimes):
    """The tree and commit times, and each block's changed keys by table into `meter`."""

    def __init__(self, meter: _Meter) -> None:
        super().__init__(time.thread_time)
        self.meter = meter

    def observe(self, changes: Any, update: Any) -> None:
        by_table = self.meter.by_table
        for key, value in changes.items():
            entry = by_table.setdefault(key[0], [0, 0, 0])
            entry[0] += 1
            if value is None:
                entry[1] += 1
            else:
                entry[2] += len(value)


@contextlib.contextmanager
def _counting_reads(meter: _Meter) -> Iterator[None]:
    """Count the committed-state lookups (`StoreView.get_state`) by (phase, table)."""
    get_state = StoreView.get_state

    def counted(self: StoreView, key: bytes) -> bytes | None:
        value = get_state(self, key)
        entry = meter.reads.setdefault((meter.phase, key[0]), [0, 0])
        entry[0] += 1
        entry[1] += value is not None
        return value

    StoreView.get_state = counted  # type: ignore[method-assign]
    try:
        yield
    finally:
        StoreView.get_state = get_state  # type: ignore[method-assign]


def _instrument(machine_: StateMachine, meter: _Meter) -> None:
    clock = time.thread_time
    for tx_type, handler in list(machine_._handlers.items()):
        def timed(state: Any, ctx: Any, handler: Any = handler, tx_type: int = tx_type) -> None:
            start = clock()
            meter.phase = "txs"
            try:
                handler(state, ctx)
            finally:
                meter.phase = "machine"
                meter.handler_s[tx_type] = meter.handler_s.get(tx_type, 0.0) + clock() - start
                meter.count[tx_type] = meter.count.get(tx_type, 0) + 1
                sender = account_key(ctx.sender)  # its fee and nonce, written before
                meter.keys[tx_type] = meter.keys.get(tx_type, 0) + len(state.writes) + (
                    sender not in state.writes)
        machine_._handlers[tx_type] = timed


def _replay(genesis: Any, setup: list[bytes], blocks: list[bytes], path: str,
            profile: cProfile.Profile | None = None, count_reads: bool = False) -> _Meter:
    meter = _Meter()
    clock = time.thread_time
    with Store(path) as store:
        state = StateMachine(store, genesis)
        install(state, genesis)
        for raw in setup:
            state.finalize_block(decode_block(raw))
            state.commit()
        checked = []
        for raw in blocks:
            block = decode_block(raw)
            checked.append((block, state.check_block_txs(block)))
        _instrument(state, meter)
        counting = _counting_reads(meter) if count_reads else contextlib.nullcontext()
        with _TableTimes(meter) as times, counting:
            if profile is not None:
                profile.enable()
            for block, checks in checked:
                start = clock()
                meter.phase = "hooks"
                state.finalize_block(block, checks)
                state.commit()
                meter.finalize_s += clock() - start
            if profile is not None:
                profile.disable()
        meter.tree_s, meter.commit_s = times.tree_s, times.commit_s
        meter.changed = times.changed_keys
    return meter


def main(argv: list[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="chainmall-mall-cost-") as directory:
        genesis, setup_txs, block_txs = workload._mall_blocks()
        records, root = workload._build(genesis, setup_txs + block_txs,
                                        os.path.join(directory, "build"), mall=True)
        setup, blocks = records[:len(setup_txs)], records[len(setup_txs):]
        txs = sum(len(b) for b in block_txs)
        meters = [_replay(genesis, setup, blocks, os.path.join(directory, f"r{n}"))
                  for n in range(ROUNDS)]
        reads = _replay(genesis, setup, blocks, os.path.join(directory, "reads"),
                        count_reads=True)
        if "--profile" in argv:
            profile = cProfile.Profile()
            _replay(genesis, setup, blocks, os.path.join(directory, "profiled"), profile)
            pstats.Stats(profile).sort_stats("tottime").print_stats(40)
    load = os.getloadavg()
    print(f"machine: {machine('main thread CPU time, best of ' + str(ROUNDS) + ' replays')}")
    print(f"load average: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    import chainmall.core

    print(f"code: {Path(chainmall.core.__file__).parent.parent}")
    print(f"workload: {len(blocks)} blocks, {txs:,} txs; last root {root.hex()[:16]}...")
    print(f"  {'tx type':<18}{'count':>7}{'handler us':>12}{'keys/tx':>9}")
    for tx_type in sorted(meters[0].count):
        best = min(m.handler_s[tx_type] for m in meters)
        count = meters[0].count[tx_type]
        print(f"  {NAMES.get(tx_type, hex(tx_type)):<18}{count:>7,}{1e6 * best / count:>12.1f}"
              f"{meters[0].keys[tx_type] / count:>9.2f}")
    handlers = min(sum(m.handler_s.values()) for m in meters)
    finalize = min(m.finalize_s for m in meters)
    tree = min(m.tree_s for m in meters)
    commit = min(m.commit_s for m in meters)
    rest = min(m.finalize_s - m.tree_s - m.commit_s - sum(m.handler_s.values())
               for m in meters)
    changed = meters[0].changed
    print(f"  per tx (us): finalize+commit {1e6 * finalize / txs:.1f} = handlers "
          f"{1e6 * handlers / txs:.1f} + tree {1e6 * tree / txs:.1f} + commit "
          f"{1e6 * commit / txs:.1f} + machine {1e6 * rest / txs:.1f}; "
          f"changed keys {changed / txs:.2f}/tx (tree {1e6 * tree / changed:.1f} us/key, "
          f"commit {1e6 * commit / changed:.1f} us/key)")

    _print_tables(meters[0], reads, txs)


def _print_tables(meter: _Meter, reads: _Meter, txs: int) -> None:
    """The changed keys and the committed-state reads per state table."""
    names = {**{table: name for table, name in C.STATE_TABLES.items()}}
    print(f"  {'state table':<26}{'changed/tx':>11}{'share':>7}{'deletes':>9}{'value B':>9}")
    total = sum(entry[0] for entry in meter.by_table.values())
    for table, (changed, deletes, size) in sorted(meter.by_table.items(),
                                                  key=lambda item: -item[1][0]):
        written = changed - deletes
        print(f"  {names.get(table, hex(table)):<26}{changed / txs:>11.2f}"
              f"{100 * changed / total:>6.0f}%{deletes:>9,}"
              f"{size / written if written else 0:>9.0f}")
    print(f"  {'committed reads':<26}{'reads/tx':>11}{'hits':>7}  (before the first tx: hooks; in "
          "handlers: txs; else machine: admission, the diff)")
    for (phase, table), (count, hits) in sorted(reads.reads.items(), key=lambda item: -item[1][0]):
        label = f"{phase} {names.get(table, hex(table))}"
        print(f"  {label:<26}{count / txs:>11.2f}{100 * hits / count:>6.0f}%")


if __name__ == "__main__":
    main(sys.argv[1:])
