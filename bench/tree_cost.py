"""Why a changed state key costs more in the mall workload than in transfers: the state
tree's and the commit's thread CPU per key, beside what each key makes the tree do.

Run: .venv/bin/python bench/tree_cost.py   (sizes as bench_mall_apply.py:
     CHAINMALL_BENCH_MALL_ORDERS, CHAINMALL_BENCH_MALL_BLOCKS)

It builds bench_mall_apply's two workloads (the mixed mall blocks and as many signed
transfers), replays each into a fresh store serially (no signature workers beside, so
the thread clocks see only this thread's work) and, for every block, records the
thread CPU of `StateTree.apply` and of `Store.commit_block`, the keys changed (new,
updated, deleted), the tree nodes read and made, the stale nodes, the state entries'
value bytes and the state size. Printed per changed key, so the two workloads can be
compared on what drives the cost (nodes per key, not keys).
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
from chainmall.core.state.root import StateTree
from chainmall.core.store import Store


class Counters:
    """Thread CPU and tree figures summed over the measured blocks."""

    def __init__(self) -> None:
        self.tree_s = self.commit_s = 0.0
        self.keys = self.deletes = self.nodes_read = self.new_nodes = self.stale = 0
        self.value_bytes = self.blocks = 0
        self.state_entries = 0

    def __enter__(self) -> Counters:
        self._apply, self._commit = StateTree.apply, Store.commit_block
        counters = self

        def apply(tree: StateTree, changes: Any) -> Any:
            start = time.thread_time()
            update = counters._apply(tree, changes)
            counters.tree_s += time.thread_time() - start
            counters.keys += len(changes)
            counters.deletes += sum(value is None for value in changes.values())
            counters.value_bytes += sum(len(value) for value in changes.values() if value)
            counters.nodes_read += update.nodes_read
            counters.new_nodes += len(update.new_nodes)
            counters.stale += len(update.stale_nodes)
            return update

        def commit(store: Store, block: Any) -> Any:
            start = time.thread_time()
            try:
                return counters._commit(store, block)
            finally:
                counters.commit_s += time.thread_time() - start
                counters.blocks += 1

        StateTree.apply = apply  # type: ignore[method-assign]
        Store.commit_block = commit  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc_info: object) -> None:
        StateTree.apply = self._apply  # type: ignore[method-assign]
        Store.commit_block = self._commit  # type: ignore[method-assign]


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
            for raw in blocks:
                state.finalize_block(decode_block(raw))
                state.commit()
        with store.reader() as view:
            counters.state_entries = view.entry_counts()["state"]
    return counters


def main() -> None:
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
        results = {}
        for round_number in range(2):
            for label, args in (("transfers", (base_genesis, [], base_blocks, False)),
                                ("mall", (genesis, setup, blocks, True))):
                genesis_, setup_, blocks_, mall = args
                counters = replay(genesis_, setup_, blocks_,
                                  os.path.join(directory, f"{label}-{round_number}"), mall)
                best = results.get(label)
                if best is None or counters.tree_s < best.tree_s:
                    results[label] = counters
    print(f"{tx_count:,} txs per workload, serial replay, best of 2 rounds, thread CPU")
    header = ("workload", "keys/tx", "tree us/key", "commit us/key", "read/key", "new/key",
              "stale/key", "del %", "value B", "state entries")
    print("  " + "".join(f"{h:>14}" for h in header))
    for label, c in results.items():
        row = (label, c.keys / tx_count, 1e6 * c.tree_s / c.keys, 1e6 * c.commit_s / c.keys,
               c.nodes_read / c.keys, c.new_nodes / c.keys, c.stale / c.keys,
               100 * c.deletes / c.keys, c.value_bytes / max(1, c.keys - c.deletes),
               c.state_entries)
        print("  " + "".join(f"{v:>14.2f}" if isinstance(v, float) else f"{v:>14}"
                             for v in row))
        print(f"  {'':14}per new node: tree {1e6 * c.tree_s / c.new_nodes:.2f} us, commit "
              f"{1e6 * c.commit_s / c.new_nodes:.2f} us; per node read+made: tree "
              f"{1e6 * c.tree_s / (c.new_nodes + c.nodes_read):.2f} us")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
