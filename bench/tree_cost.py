"""The state tree's cost per key and per tx, native (ext/_tree) against the pure-Python
reference in the same run, beside the commit's and what each key makes the tree do.

Run: .venv/bin/python bench/tree_cost.py   (sizes as bench_mall_apply.py:
     CHAINMALL_BENCH_MALL_ORDERS, CHAINMALL_BENCH_MALL_BLOCKS;
     CHAINMALL_BENCH_TREE_ROUNDS interleaved rounds, default 2)

It builds bench_mall_apply's two workloads (the mixed mall blocks and as many signed
transfers), replays each into a fresh store serially (no signature workers beside, so
the thread clocks see only this thread's work) and, for every block, records the
thread CPU of `StateTree.apply` and of `Store.commit_block`, the keys changed (new,
updated, deleted), the tree nodes read and made, the stale nodes, the state entries'
value bytes and the state size. Printed per changed key, so the two workloads can be
compared on what drives the cost (nodes per key, not keys).

Each round replays both workloads twice, once with `StateTree.apply` on the
kernel (ext/_tree.pyx) and once on the reference `_Apply` (the order
alternates between rounds), and checks that both end at the same state
root. Besides the tree's own CPU it prints each block's whole thread CPU
(decode, execute, tree, commit; no signature checks) per tx, and the serial
rate that thread CPU allows, beside the issues' targets (#13: the mixed mall
>= 10,000 tx/s, #17: bench_apply's transfers >= 80,000 tx/s with a Python
share of about 10 us per tx). Those targets are judged by bench_mall_apply.py
and bench_apply.py (pipelined, signatures on all cores); the figures here are
the single-thread share the tree takes out of them. Thread CPU moves less
with the machine's load than wall time does; the load average is printed.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import bench_mall_apply as mall_bench
from benchutil import machine
from chainmall.core.block import decode_block
from chainmall.core.mall import install
from chainmall.core.state.machine import StateMachine
from chainmall.core.state.root import tree as tree_module
from chainmall.core.store import Store
from store_timer import TreeAndCommitTimes

ROUNDS = int(os.environ.get("CHAINMALL_BENCH_TREE_ROUNDS", "2"))
VARIANTS = {"native": tree_module._native_apply, "reference": tree_module._Apply}
TARGET_MALL_TX_S = 10_000  # issue 13, bench_mall_apply.py
TARGET_TRANSFER_TX_S = 80_000  # issue 17, bench_apply.py
TARGET_PYTHON_US = 10  # issue 17: the Python share per transfer tx


class Counters(TreeAndCommitTimes):
    """Thread CPU and tree figures summed over the measured blocks."""

    def __init__(self) -> None:
        super().__init__(time.thread_time)
        self.deletes = self.nodes_read = self.new_nodes = self.stale = 0
        self.value_bytes = 0
        self.state_entries = 0
        self.block_s = self.wall_s = 0.0  # whole blocks: thread CPU and wall
        self.root = b""

    @property
    def keys(self) -> int:
        """The keys the tree updates changed."""
        return self.changed_keys

    def observe(self, changes: Any, update: Any) -> None:
        self.deletes += sum(value is None for value in changes.values())
        self.value_bytes += sum(len(value) for value in changes.values() if value)
        self.nodes_read += update.nodes_read
        self.new_nodes += len(update.new_nodes)
        self.stale += len(update.stale_nodes)


def replay(genesis: Any, setup: list[bytes], blocks: list[bytes], path: str,
           mall: bool) -> Counters:
    with Store(path) as store:
        state = StateMachine(store, genesis)
        if mall:
            install(state, genesis)
        for raw in setup:
            state.finalize_block(decode_block(raw))
            state.commit()
        with Counters() as counters:
            wall, cpu = time.perf_counter(), time.thread_time()
            for raw in blocks:
                state.finalize_block(decode_block(raw))
                state.commit()
            counters.block_s = time.thread_time() - cpu
            counters.wall_s = time.perf_counter() - wall
        with store.reader() as view:
            counters.state_entries = view.entry_counts()["state"]
        counters.root = state.info()[1]
    return counters


def main() -> None:
    if tree_module.tree_kernel is None:
        raise SystemExit("error: ext/_tree is not built (or CHAINMALL_PURE=1): run `make setup`")
    print(f"machine: {machine()}; load average before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory(prefix="chainmall-tree-cost-") as directory:
        genesis, setup_txs, block_txs = mall_bench._mall_blocks()
        records, _ = mall_bench._build(genesis, setup_txs + block_txs,
                                       os.path.join(directory, "build"), mall=True)
        setup, blocks = records[:len(setup_txs)], records[len(setup_txs):]
        tx_count = sum(len(txs) for txs in block_txs)
        per_block = max(len(txs) for txs in block_txs)
        base_genesis, base_txs = mall_bench._transfer_blocks(tx_count, per_block)
        base_blocks, _ = mall_bench._build(base_genesis, base_txs,
                                           os.path.join(directory, "base"), False)
        workloads = {"transfers": (base_genesis, [], base_blocks, False),
                     "mall": (genesis, setup, blocks, True)}
        runs: dict[tuple[str, str], list[Counters]] = {}
        loads = []
        original = tree_module._APPLY
        try:
            for round_number in range(ROUNDS):
                order = list(VARIANTS) if round_number % 2 == 0 else list(VARIANTS)[::-1]
                for variant in order:
                    tree_module._APPLY = VARIANTS[variant]
                    for label, (genesis_, setup_, blocks_, mall) in workloads.items():
                        path = os.path.join(directory, f"{label}-{variant}-{round_number}")
                        runs.setdefault((label, variant), []).append(
                            replay(genesis_, setup_, blocks_, path, mall))
                        loads.append(os.getloadavg()[0])
        finally:
            tree_module._APPLY = original
    for label in workloads:
        roots = {c.root for variant in VARIANTS for c in runs[label, variant]}
        assert len(roots) == 1, f"{label}: the variants end at different state roots"
    print(f"{tx_count:,} txs per workload, serial replay, {ROUNDS} interleaved rounds "
          f"(best shown), thread CPU; load average {min(loads):.1f}-{max(loads):.1f}")
    header = ("workload", "tree", "keys/tx", "tree us/key", "tree us/tx", "block us/tx",
              "commit us/key", "read/key", "new/key", "stale/key", "del %")
    print("  " + "".join(f"{h:>14}" for h in header))
    best: dict[tuple[str, str], Counters] = {}
    for (label, variant), counters in runs.items():
        best[label, variant] = c = min(counters, key=lambda run: run.tree_s)
        row = (label, variant, c.keys / tx_count, 1e6 * c.tree_s / c.keys,
               1e6 * c.tree_s / tx_count, 1e6 * c.block_s / tx_count,
               1e6 * c.commit_s / c.keys, c.nodes_read / c.keys, c.new_nodes / c.keys,
               c.stale / c.keys, 100 * c.deletes / c.keys)
        print("  " + "".join(f"{v:>14.2f}" if isinstance(v, float) else f"{v:>14}"
                             for v in row))
    print("native against reference (per round, same workload):")
    for label in workloads:
        tree_ratios = [n.tree_s / r.tree_s for n, r in
                       zip(runs[label, "native"], runs[label, "reference"], strict=True)]
        block_ratios = [n.block_s / r.block_s for n, r in
                        zip(runs[label, "native"], runs[label, "reference"], strict=True)]
        native, reference = best[label, "native"], best[label, "reference"]
        saved = 1e6 * (reference.tree_s - native.tree_s) / tx_count
        per_node = {variant: 1e6 * c.tree_s / (c.new_nodes + c.nodes_read)
                    for variant, c in (("native", native), ("reference", reference))}
        print(f"  {label:10} tree CPU x{min(tree_ratios):.2f}-{max(tree_ratios):.2f}, "
              f"block CPU x{min(block_ratios):.2f}-{max(block_ratios):.2f}; "
              f"{saved:.1f} us/tx saved; per node read+made: native {per_node['native']:.2f} "
              f"us, reference {per_node['reference']:.2f} us")
    mall, transfers = best["mall", "native"], best["transfers", "native"]
    mall_rate = tx_count / mall.block_s
    transfer_rate = tx_count / transfers.block_s
    print("targets (judged by bench_mall_apply.py / bench_apply.py; here one thread's CPU, "
          "no signature checks):")
    print(f"  #13 mixed mall >= {TARGET_MALL_TX_S:,} tx/s: this thread's CPU allows "
          f"{mall_rate:,.0f} tx/s ({1e6 * mall.block_s / tx_count:.1f} us/tx, of which the "
          f"tree {1e6 * mall.tree_s / tx_count:.1f})")
    print(f"  #17 transfers >= {TARGET_TRANSFER_TX_S:,} tx/s, Python share ~{TARGET_PYTHON_US} "
          f"us/tx: this thread's CPU allows {transfer_rate:,.0f} tx/s "
          f"({1e6 * transfers.block_s / tx_count:.1f} us/tx, of which the tree "
          f"{1e6 * transfers.tree_s / tx_count:.1f})")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
