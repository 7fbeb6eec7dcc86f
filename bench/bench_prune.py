"""Pruning soak without the network: the ledger grows with blocks, not with tree history.

Run: .venv/bin/python bench/bench_prune.py [--blocks 800] [--retain 100]
     .venv/bin/pytest bench/bench_prune.py --benchmark-only -s -q

Issue target: "a node that runs for weeks: state-tree nodes older than a
retention window are pruned ... A soak benchmark shows the data dir's size
grows only with blocks, not with tree history."

Each block changes `--changes` (1,000: a 500-transfer block's senders and
receivers) random accounts among `--accounts` (50,000) through the real
state tree, and stores a block body, tx ids and receipts of a 1,250-tx
block, through `Store.commit_block`, once with pruning (`--retain`, 100
heights) and once without. About 15 minutes on a busy 2-core machine. Every
`--every` blocks it prints the tree's entries (all levels) and the ledger
file's size. The target: with pruning, the tree's entries level off (the
last quarter's within 10% of the third quarter's) while they keep growing
without it, and the file's growth per block comes down to what the blocks
themselves add. Runs in one process, no network: block sizes stay fixed,
whatever the machine's load, so the figures measure the store alone.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchutil import machine, verdict
from chainmall.core.state.accounts import Account, account_key
from chainmall.core.state.root import StateTree, build_tree
from chainmall.core.store import BlockCommit, Store

TX_BYTES = 180  # a transfer on the wire
BLOCK_TXS = 1_250


def run(path: Path, blocks: int, retain: int, accounts: int, changes: int, every: int,
        seed: int = 1) -> list[tuple[int, int, int]]:
    """(height, tree entries, ledger file bytes) every `every` blocks."""
    rng = random.Random(seed)
    keys = [account_key(i.to_bytes(20, "big")) for i in range(accounts)]
    state = {key: Account(10**12, 0).encode() for key in keys}
    genesis = build_tree(state)
    samples = []
    with Store(path, map_size_bytes=1 << 36, retain_heights=retain) as store:
        store.init_genesis("prune-bench", b"\x11" * 32, state, genesis.new_nodes, genesis.root)
        root = genesis.root
        for height in range(1, blocks + 1):
            picked = rng.sample(keys, changes)
            update_values = {key: Account(rng.randrange(10**12), height).encode()
                             for key in picked}
            with store.reader() as view:
                update = StateTree(view, root).apply(update_values)
            store.commit_block(BlockCommit(
                height=height, block_hash=rng.randbytes(32),
                block_bytes=rng.randbytes(BLOCK_TXS * TX_BYTES),
                tx_ids=[rng.randbytes(32) for _ in range(BLOCK_TXS)],
                receipts_bytes=bytes(BLOCK_TXS * 2), parent_app_hash=root, app_hash=update.root,
                state_changes=update_values, new_nodes=update.new_nodes,
                stale_nodes=update.stale_nodes))
            root = update.root
            if height % every == 0:
                with store.reader() as view:
                    entries = view.entry_counts()["tree"]
                size = (path / "data.mdb").stat().st_size
                samples.append((height, entries, size))
                print(f"  retain {retain or 'all':>5}  height {height:>6}  tree entries "
                      f"{entries:>11,}  ledger {size / 2**20:9.1f} MiB", flush=True)
    return samples


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=800)
    parser.add_argument("--retain", type=int, default=100)
    parser.add_argument("--accounts", type=int, default=50_000)
    parser.add_argument("--changes", type=int, default=1_000)
    parser.add_argument("--every", type=int, default=100)
    args = parser.parse_args(argv)
    print(f"machine: {machine()}; load average: {os.getloadavg()}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="chainmall-prune-") as temp:
        pruned = run(Path(temp) / "pruned", args.blocks, args.retain, args.accounts,
                     args.changes, args.every)
        kept = run(Path(temp) / "kept", args.blocks, 0, args.accounts, args.changes,
                   args.every)
    quarter = max(1, len(pruned) // 4)
    third_q = statistics.mean(s[1] for s in pruned[2 * quarter:3 * quarter])
    last_q = statistics.mean(s[1] for s in pruned[3 * quarter:])
    flat = last_q / third_q
    grown = kept[-1][1] / pruned[-1][1]
    per_block_pruned = (pruned[-1][2] - pruned[len(pruned) // 2][2]) / (
        pruned[-1][0] - pruned[len(pruned) // 2][0])
    per_block_kept = (kept[-1][2] - kept[len(kept) // 2][2]) / (
        kept[-1][0] - kept[len(kept) // 2][0])
    block_bytes = BLOCK_TXS * (TX_BYTES + 32 + 12 + 2)
    print(f"tree entries with pruning: last quarter / third quarter {flat:.3f}  "
          f"target <= 1.10  {verdict(flat <= 1.10)}")
    print(f"tree entries without pruning / with, at the end: {grown:.2f}x")
    print(f"ledger growth per block in the second half: pruned {per_block_pruned / 2**10:.0f} "
          f"KiB, kept {per_block_kept / 2**10:.0f} KiB; a block's own data "
          f"~{block_bytes / 2**10:.0f} KiB (+ B-tree overhead)")
    print(f"({time.perf_counter() - started:.0f} s; load average after {os.getloadavg()})")
    return {"flat_ratio": flat, "kept_over_pruned": grown,
            "growth_per_block_pruned": per_block_pruned,
            "growth_per_block_kept": per_block_kept}


def test_pruning_soak(benchmark: Any) -> None:
    result = benchmark.pedantic(main, args=([],), rounds=1, iterations=1)
    assert result["kept_over_pruned"] > 1


if __name__ == "__main__":
    main()
