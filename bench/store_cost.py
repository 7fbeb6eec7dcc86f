"""Where a block's state-tree update and store commit spend their thread CPU, split into
a fixed part per block and a part per key (issues 17, 12, 15).

Run: .venv/bin/python bench/store_cost.py [--baseline /work/main] [--blocks 320]
         [--skip 272] [--sizes 1250,2500,10000] [--accounts 10000,100000] [--retain 0]
     .venv/bin/pytest bench/store_cost.py --benchmark-only -s -q   (a small run)

For each number of accounts and each block size, blocks of that many transfers
(a random sender and a random recipient among the accounts, each getting a new
balance; the fee pool too) are made without signing: the state tree
(`StateTree.apply` through the last block's new nodes, as the state machine reads
them) gives the new nodes and the stale ones, the tx ids are random, the block bytes
180 bytes per tx. Each `Store.commit_block` is timed by its thread's CPU clock
(user + system: `resource.getrusage(RUSAGE_THREAD)`), and inside it by the store's
failpoint hooks, which mark its phases:

    open        the write txn's begin and the tip read
    tx check    block and block-index puts, the tx ids' key order, their repeat
                check in the older levels
    tx index    the ids into the recent level
    receipts    the receipts and the root
    state       the state writes
    nodes       the new tree nodes into the recent level (and stale records)
    merge       the recent level's slice into the middle level (tx index, tree)
    prune       (--retain > 0) the due stale nodes
    flush       the middle level's slice into the main tables (tx index, tree)
    txn commit  meta and LMDB's commit: dirty pages written and fsynced

With `--baseline DIR`, DIR's core/store.py (e.g. main's) gets the same commits in
the same process, block by block in alternating order, for the totals. Figures are
over the blocks past `--skip` (by default the levels are full: 16 recent slices, 256
middle ones). The fixed part and the per-tx part of each phase are a least-squares
line through the block sizes' per-block means.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from bench_merge import baseline_store
from benchutil import machine
from chainmall.core.state.root import MemoryNodeStore, StateTree
from chainmall.core.state.root.recent import RecentNodes
from chainmall.core.store import BlockCommit, Store, hash_key_order

TX_BYTES = 180
PHASES = ("open", "tx check", "tx index", "receipts", "state", "nodes", "merge", "prune",
          "flush", "txn commit")
# failpoint name -> the phase that ENDS there
_MARKS = {
    "store.commit.begin": "open",
    "store.commit.before_tx_index": "tx check",
    "store.commit.before_receipts": "tx index",
    "store.commit.before_state": "receipts",
    "store.commit.before_nodes": "state",
    "store.commit.before_merge": "nodes",
    "store.merge.after_tree": "merge",
    "store.prune.after": "prune",
    "store.flush.after_tree": "flush",
}
TARGET_APPLY_TX_S = 80_000  # issue 17: bench_apply, 10,000-tx blocks
ACCOUNT_KEY = b"\x01"
FEE_POOL_KEY = b"\x02fee_pool"


def _cpu_s() -> float:
    """This thread's CPU seconds, user + system."""
    usage = resource.getrusage(resource.RUSAGE_THREAD)
    return usage.ru_utime + usage.ru_stime


def _sys_s() -> float:
    return resource.getrusage(resource.RUSAGE_THREAD).ru_stime


class PhaseClock:
    """A store failpoint hook that adds each phase's thread CPU into `spent`."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = dict.fromkeys(PHASES, 0.0)
        self.last = 0.0

    def start(self) -> None:
        self.last = time.thread_time()

    def __call__(self, name: str) -> None:
        phase = _MARKS.get(name)
        if phase is None:
            return
        now = time.thread_time()
        self.spent[phase] += now - self.last
        self.last = now

    def finish(self) -> None:
        now = time.thread_time()
        self.spent["txn commit"] += now - self.last
        self.last = now


def _account_value(rng: random.Random) -> bytes:
    return b"\x01" + rng.getrandbits(64).to_bytes(8, "big") + rng.getrandbits(16).to_bytes(8, "big")


def run(accounts: int, txs: int, blocks: int, skip: int, retain: int,
        classes: dict[str, type[Store]], directory: str) -> dict[str, Any]:
    """One configuration: per-block means of the tree's and each store's commit CPU, and
    the branch's phases."""
    rng = random.Random(accounts * 7 + txs)
    keys = [ACCOUNT_KEY + rng.randbytes(20) for _ in range(accounts)]
    state = {key: _account_value(rng) for key in keys}
    state[FEE_POOL_KEY] = b"\x01" + bytes(8)
    genesis_update = StateTree(MemoryNodeStore()).apply(state)
    genesis_hash = rng.randbytes(32)
    stores = {}
    for number, (name, cls) in enumerate(classes.items()):
        store = cls(Path(directory) / f"{accounts}-{txs}-{number}", map_size_bytes=1 << 37,
                    retain_heights=retain)
        store.init_genesis("bench-1", genesis_hash, state, genesis_update.new_nodes,
                           genesis_update.root)
        stores[name] = store
    main_store = stores["this build"]
    clock = PhaseClock()
    main_store._failpoint = clock
    base_clock = PhaseClock()
    if "baseline" in stores:
        stores["baseline"]._failpoint = base_clock
    names = list(stores)
    root, recent = genesis_update.root, genesis_update.new_nodes
    totals = {"tree": 0.0, **{name: 0.0 for name in names},
              **{f"tree {name}": 0.0 for name in names}, "sys": 0.0, "wall": 0.0}
    counted = {"blocks": 0, "keys": 0, "nodes": 0, "stale": 0}
    for height in range(1, blocks + 1):
        changes: dict[bytes, bytes | None] = {}
        for _ in range(txs):
            changes[rng.choice(keys)] = _account_value(rng)
            changes[rng.choice(keys)] = _account_value(rng)
        changes[FEE_POOL_KEY] = b"\x01" + height.to_bytes(8, "big")
        tree_s: dict[str, float] = {}
        update = None
        for name in (names if height % 2 else names[::-1]):  # the tree over each store
            with stores[name].reader() as view:
                tree_0 = time.thread_time()
                made = StateTree(RecentNodes(view, recent), root).apply(changes)
                tree_s[name] = time.thread_time() - tree_0
            if update is None:
                update = made
            elif made.root != update.root:
                raise SystemExit(f"error: the stores' trees differ at height {height}")
        tx_ids = [rng.randbytes(32) for _ in range(txs)]
        commit = BlockCommit(
            height=height, block_hash=rng.randbytes(32), block_bytes=rng.randbytes(TX_BYTES * txs),
            tx_ids=tx_ids, receipts_bytes=b"\x01" + txs.to_bytes(4, "big") + bytes(2 * txs),
            parent_app_hash=root, app_hash=update.root, state_changes=changes,
            new_nodes=update.new_nodes, stale_nodes=update.stale_nodes,
            tx_order=hash_key_order(b"".join(tx_ids)))
        measured = height > skip
        for name in (names if height % 2 else names[::-1]):
            store = stores[name]
            sys_0, wall_0 = _sys_s(), time.perf_counter()
            cpu_0 = _cpu_s()
            phase_clock = clock if store is main_store else base_clock
            phase_clock.start()
            store.commit_block(commit)
            phase_clock.finish()
            cpu_s = _cpu_s() - cpu_0
            if measured:
                totals[name] += cpu_s
                if store is main_store:
                    totals["sys"] += _sys_s() - sys_0
                    totals["wall"] += time.perf_counter() - wall_0
        if not measured:
            clock.spent = dict.fromkeys(PHASES, 0.0)
            base_clock.spent = dict.fromkeys(PHASES, 0.0)
        else:
            totals["tree"] += tree_s["this build"]
            for name, spent in tree_s.items():
                totals[f"tree {name}"] += spent
            counted["blocks"] += 1
            counted["keys"] += len(changes)
            counted["nodes"] += len(update.new_nodes)
            counted["stale"] += len(update.stale_nodes)
        root, recent = update.root, update.new_nodes
    for store in stores.values():
        store.close()
    count = counted["blocks"]
    return {"means": {key: value / count for key, value in totals.items()},
            "phases": {phase: value / count for phase, value in clock.spent.items()},
            "baseline phases": {phase: value / count for phase, value in base_clock.spent.items()},
            "per_block": {key: value / count for key, value in counted.items() if key != "blocks"},
            "blocks": count}


def _line(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least squares y = a + b x: (a, b)."""
    n = len(xs)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    var = sum((x - mean_x) ** 2 for x in xs)
    slope = 0.0 if not var else sum((x - mean_x) * (y - mean_y)
                                     for x, y in zip(xs, ys, strict=True)) / var
    return mean_y - slope * mean_x, slope


def main(argv: list[str] | None = None) -> dict[Any, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", help="a checkout whose core/store.py is the baseline")
    parser.add_argument("--blocks", type=int, default=320)
    parser.add_argument("--skip", type=int, default=272)
    parser.add_argument("--sizes", default="1250,2500,10000")
    parser.add_argument("--accounts", default="10000,100000")
    parser.add_argument("--retain", type=int, default=0)
    args = parser.parse_args(argv)
    if args.skip >= args.blocks:
        raise SystemExit("error: --skip must be below --blocks")
    sizes = [int(size) for size in args.sizes.split(",")]
    account_counts = [int(count) for count in args.accounts.split(",")]
    print(f"machine: {machine()}; load average before: {os.getloadavg()}")
    classes: dict[str, type[Store]] = {"this build": Store}
    if args.baseline:
        classes["baseline"] = baseline_store(args.baseline)
    results: dict[Any, Any] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="chainmall-store-cost-") as directory:
        for accounts in account_counts:
            for txs in sizes:
                result = run(accounts, txs, args.blocks, args.skip, args.retain, classes,
                             directory)
                results[accounts, txs] = result
                means, per = result["means"], result["per_block"]
                line = (f"{accounts:>7,} accounts, {txs:>6,} txs/block ({result['blocks']} blocks, "
                        f"{per['keys']:,.0f} keys, {per['nodes']:,.0f} new nodes, "
                        f"{per['stale']:,.0f} stale per block): tree {means['tree'] * 1e3:6.1f} ms "
                        f"= {means['tree'] / txs * 1e6:5.2f} us/tx; commit "
                        f"{means['this build'] * 1e3:6.1f} ms = "
                        f"{means['this build'] / txs * 1e6:5.2f} us/tx (system "
                        f"{means['sys'] / txs * 1e6:4.2f}, wall {means['wall'] * 1e3:6.1f} ms)")
                if "baseline" in means:
                    line += (f"; baseline commit {means['baseline'] / txs * 1e6:5.2f} us/tx, "
                             f"this / baseline {means['this build'] / means['baseline']:.3f}; "
                             f"tree over the baseline {means['tree baseline'] / txs * 1e6:5.2f}"
                             f" us/tx, this / baseline "
                             f"{means['tree this build'] / means['tree baseline']:.3f}")
                print(line + f"  [load {os.getloadavg()[0]:.1f}]", flush=True)
                print("    phases, us/tx: " + ", ".join(
                    f"{phase} {value / txs * 1e6:.2f}" for phase, value in result["phases"].items()
                    if value), flush=True)
                if "baseline" in means:
                    print("    baseline phases, us/tx: " + ", ".join(
                        f"{phase} {value / txs * 1e6:.2f}"
                        for phase, value in result["baseline phases"].items() if value), flush=True)
    print("fixed part per block (ms) + part per tx (us), least squares over the block sizes:")
    for accounts in account_counts:
        xs = [float(txs) for txs in sizes]
        rows = {"tree": [results[accounts, txs]["means"]["tree"] for txs in sizes],
                "commit": [results[accounts, txs]["means"]["this build"] for txs in sizes]}
        if args.baseline:
            rows["baseline commit"] = [results[accounts, txs]["means"]["baseline"] for txs in sizes]
        for phase in PHASES:
            rows[f"  {phase}"] = [results[accounts, txs]["phases"][phase] for txs in sizes]
        for label, ys in rows.items():
            if not any(ys):
                continue
            fixed, per_tx = _line(xs, ys)
            print(f"  {accounts:>7,} accounts  {label:<16} {fixed * 1e3:7.2f} ms + "
                  f"{per_tx * 1e6:5.2f} us/tx")
    print(f"target (issue 17): bench_apply >= {TARGET_APPLY_TX_S:,} tx/s, i.e. "
          f"{1e6 / TARGET_APPLY_TX_S:.1f} us/tx of wall for everything; judged by bench_apply.py")
    print(f"({time.perf_counter() - started:.0f} s; load average after {os.getloadavg()})")
    return results


def test_store_cost_phases(benchmark: Any) -> None:
    results = benchmark.pedantic(main, args=(["--blocks", "24", "--skip", "20", "--sizes",
                                              "200,800", "--accounts", "2000"],),
                                 rounds=1, iterations=1)
    for result in results.values():
        assert result["phases"]["nodes"] > 0 and result["phases"]["txn commit"] > 0


if __name__ == "__main__":
    main()
