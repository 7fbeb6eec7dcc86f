"""Per-block commit cost of the store (`Store.commit_block`), this build against another
checkout's store in the same run, block by block (issues 12, 13, 17).

Run: .venv/bin/python bench/bench_merge.py [--workload synthetic|apply|mall]
         [--baseline DIR] [--blocks 320] [--txs 2500] [--nodes 6000] [--retain 100]
     .venv/bin/pytest bench/bench_merge.py --benchmark-only -s -q

The commits (`BlockCommit`: a block's bytes, tx ids, state changes, new and
stale tree nodes) come from one of three workloads:

* `synthetic` (default): `--blocks` blocks of `--txs` random tx ids, a block
  body of that many 180-byte txs, `--nodes` new tree nodes and as many stale
  ones (live nodes picked at random, as a state tree's update retires them),
  `--changes` account writes. Long enough (320 blocks) for every staging
  level to be in its steady state.
* `apply`: the blocks of `bench_apply.py` (10,000 transfers each by default,
  `CHAINMALL_BENCH_BLOCKS` of them, 24 here unless set), executed once and their
  commits recorded, then replayed.
* `mall`: the blocks of `bench_mall_apply.py` (set-up blocks, then the mixed
  mall workload), recorded the same way.

Two stores in one process get the same commits, one after the other for each
height and in alternating order (so both see the same machine load): this
build's `Store`, and with `--baseline DIR` the `Store` of DIR's
`core/store.py` (another checkout, e.g. main's; it runs on this build's
constants and errors). Each `commit_block` is timed by the thread's CPU clock
(the other processes on a shared machine move it less) and by the wall clock
(fsync included). Figures are over the blocks past `--skip`; pruning keeps
`--retain` heights (0: off).

Targets: the p99 commit within 2x the median commit of the same store (no
block carries a merge: the node's p99, issue 12), and this build's commit CPU
below the baseline's. bench_apply's target for the whole Python share of a
transfer (decode, execution, tree, commit) is about 10 us per tx: the commit's
share per tx is printed beside it.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchutil import machine, verdict
from chainmall.core.store import BlockCommit, Store

TX_BYTES = 180
PYTHON_SHARE_TARGET_US = 10.0  # bench_apply: the whole Python share of a transfer


def baseline_store(checkout: str) -> type[Store]:
    """The `Store` class of another checkout's core/store.py (loaded as a sibling module
    of this build's, so its relative imports resolve here)."""
    path = Path(checkout) / "core" / "store.py"
    spec = importlib.util.spec_from_file_location("chainmall.core._baseline_store", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"error: no store module at {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.Store


def synthetic(count: int, txs: int, nodes: int, changes: int, accounts: int,
              seed: int) -> tuple[tuple, Iterator[BlockCommit]]:
    """Genesis arguments and synthetic BlockCommits, each retiring `nodes` live nodes."""
    def blocks() -> Iterator[BlockCommit]:
        rng = random.Random(seed)
        live: list[bytes] = []
        root = b"\x00" * 32
        for height in range(1, count + 1):
            stale = []
            for _ in range(min(nodes, len(live) // 2)):
                at = rng.randrange(len(live))
                live[at], live[-1] = live[-1], live[at]
                stale.append(live.pop())
            new_nodes = {rng.randbytes(32): b"\x01\x02" + rng.randbytes(64) for _ in range(nodes)}
            live += new_nodes
            state = {b"\x01" + rng.randrange(accounts).to_bytes(20, "big"): rng.randbytes(17)
                     for _ in range(changes)}
            app_hash = rng.randbytes(32)
            yield BlockCommit(
                height=height, block_hash=rng.randbytes(32),
                block_bytes=rng.randbytes(txs * TX_BYTES),
                tx_ids=[rng.randbytes(32) for _ in range(txs)], receipts_bytes=bytes(2 * txs),
                parent_app_hash=root, app_hash=app_hash, state_changes=state,
                new_nodes=new_nodes, stale_nodes=tuple(stale))
            root = app_hash
    return ("merge-bench", b"\x11" * 32, {}, {}, b"\x00" * 32), blocks()


def recorded(workload: str) -> tuple[tuple, list[BlockCommit]]:
    """Genesis arguments and the commits of bench_apply's or bench_mall_apply's blocks,
    recorded while they are executed once (signing and execution not timed)."""
    commits: list[BlockCommit] = []
    genesis: list[tuple] = []
    commit_block, init_genesis = Store.commit_block, Store.init_genesis

    def record(store: Store, commit: BlockCommit) -> None:
        commits.append(BlockCommit(
            commit.height, commit.block_hash, commit.block_bytes, list(commit.tx_ids),
            commit.receipts_bytes, commit.parent_app_hash, commit.app_hash,
            dict(commit.state_changes), dict(commit.new_nodes), tuple(commit.stale_nodes)))
        commit_block(store, commit)

    def record_genesis(store: Store, *args: Any) -> None:
        genesis.append((args[0], args[1], dict(args[2]), dict(args[3]), args[4]))
        init_genesis(store, *args)

    Store.commit_block, Store.init_genesis = record, record_genesis  # type: ignore[method-assign]
    try:
        with tempfile.TemporaryDirectory(prefix="chainmall-merge-record-") as directory:
            if workload == "apply":
                os.environ.setdefault("CHAINMALL_BENCH_BLOCKS", "24")
                import bench_apply

                bench_apply.prebuild(bench_apply.keys(bench_apply.SENDERS), directory)
            else:
                import bench_mall_apply

                mall_genesis, setup, blocks = bench_mall_apply._mall_blocks()
                bench_mall_apply._build(mall_genesis, setup + blocks,
                                        os.path.join(directory, "build"), mall=True)
    finally:
        Store.commit_block, Store.init_genesis = commit_block, init_genesis  # type: ignore[method-assign]
    return genesis[0], commits


def _stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"median": statistics.median(ordered), "p99": p99, "max": ordered[-1],
            "total": sum(ordered)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", choices=("synthetic", "apply", "mall"), default="synthetic")
    parser.add_argument("--baseline", help="a checkout whose core/store.py is the baseline")
    parser.add_argument("--blocks", type=int, default=320)
    parser.add_argument("--txs", type=int, default=2_500)
    parser.add_argument("--nodes", type=int, default=6_000)
    parser.add_argument("--changes", type=int, default=1_000)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--retain", type=int, default=100)
    parser.add_argument("--skip", type=int, default=16, help="first blocks left out of the figures")
    args = parser.parse_args(argv)
    print(f"machine: {machine()}; load average before: {os.getloadavg()}")
    if args.workload == "synthetic":
        genesis, commits = synthetic(args.blocks, args.txs, args.nodes, args.changes,
                                     args.accounts, seed=7)
    else:
        genesis, commits = recorded(args.workload)
        print(f"recorded {len(commits)} commits of the {args.workload} workload")
    classes: dict[str, type[Store]] = {"this build": Store}
    if args.baseline:
        classes["baseline"] = baseline_store(args.baseline)
    names = list(classes)
    started = time.perf_counter()
    wall: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    sizes = {"txs": 0, "nodes": 0, "keys": 0, "blocks": 0}
    with tempfile.TemporaryDirectory(prefix="chainmall-merge-") as temp:
        stores = {}
        for number, (name, cls) in enumerate(classes.items()):
            store = cls(Path(temp) / f"store{number}", map_size_bytes=1 << 36,
                        retain_heights=args.retain)
            store.init_genesis(*genesis)
            stores[name] = store
        for commit in commits:
            order = names if commit.height % 2 else names[::-1]  # who goes first alternates
            for name in order:
                wall_0, cpu_0 = time.perf_counter(), time.thread_time()
                stores[name].commit_block(commit)
                cpu_s, wall_s = time.thread_time() - cpu_0, time.perf_counter() - wall_0
                if commit.height > args.skip:
                    wall[name].append(wall_s)
                    cpu[name].append(cpu_s)
            if commit.height > args.skip:
                sizes["blocks"] += 1
                sizes["txs"] += len(commit.tx_ids)
                sizes["nodes"] += len(commit.new_nodes)
                sizes["keys"] += len(commit.state_changes)
            if commit.height % 32 == 0:
                print(f"  height {commit.height:>5}: " + ", ".join(
                    f"{name} {cpu[name][-1] * 1e3:6.1f} ms CPU" for name in names if cpu[name]),
                    flush=True)
        for store in stores.values():
            store.close()
    if not sizes["blocks"]:
        raise SystemExit("error: no block past --skip")
    print(f"{args.workload}: {sizes['blocks']} blocks past height {args.skip}: "
          f"{sizes['txs']:,} txs, {sizes['nodes']:,} new tree nodes, {sizes['keys']:,} state "
          f"writes; " + (f"pruning keeps {args.retain} heights" if args.retain else "pruning off"))
    result: dict[str, Any] = {}
    for name in names:
        w, c = _stats(wall[name]), _stats(cpu[name])
        result[name] = {"wall": w, "cpu": c}
        per = {unit: c["total"] / count * 1e6 for unit, count in
               (("tx", sizes["txs"]), ("node", sizes["nodes"]), ("key", sizes["keys"])) if count}
        print(f"  {name:<11} thread CPU ms: median {c['median'] * 1e3:7.1f}  p99 "
              f"{c['p99'] * 1e3:7.1f}  max {c['max'] * 1e3:7.1f} | wall ms: median "
              f"{w['median'] * 1e3:7.1f}  p99 {w['p99'] * 1e3:7.1f} | CPU us per "
              + ", ".join(f"{unit} {value:.2f}" for unit, value in per.items()))
        result[name]["per"] = per
    new = result["this build"]
    bounded = new["cpu"]["p99"] <= 2 * new["cpu"]["median"]
    print(f"this build: p99 commit / median (thread CPU) "
          f"{new['cpu']['p99'] / new['cpu']['median']:.2f}  target <= 2  {verdict(bounded)}")
    if "tx" in new["per"]:
        print(f"this build: commit CPU per tx {new['per']['tx']:.2f} us, beside bench_apply's "
              f"target for the whole Python share of a tx: about {PYTHON_SHARE_TARGET_US:.0f} us")
    if args.baseline:
        base = result["baseline"]
        ratios = sorted(a / b for a, b in zip(cpu["this build"], cpu["baseline"], strict=True))
        ratio = new["cpu"]["total"] / base["cpu"]["total"]
        print(f"this build / baseline, commit thread CPU: {ratio:.3f} in all, per block median "
              f"{statistics.median(ratios):.3f} (p10 {ratios[len(ratios) // 10]:.3f}, p90 "
              f"{ratios[len(ratios) * 9 // 10]:.3f})  target < 1  {verdict(ratio < 1)}")
        result["ratio"] = ratio
    print(f"({time.perf_counter() - started:.0f} s; load average after {os.getloadavg()})")
    result["bounded"] = bounded
    return result


def test_merge_spread(benchmark: Any) -> None:
    result = benchmark.pedantic(main, args=(["--blocks", "160"],), rounds=1, iterations=1)
    assert result["this build"]["cpu"]["max"] > 0


if __name__ == "__main__":
    main()
