"""What the disk's sync adds to an LMDB commit of a block's new tree nodes (issues 12, 15).

Run: .venv/bin/python bench/disk_sync_cost.py [--keys 30000] [--table 1000000] [--blocks 8]

Two LMDB environments in a temporary directory under the working directory (the disk
the node's data dir would be on), each with one table of `--table` random 32-byte keys
with 66-byte values (the state tree's node size), one opened with `sync=True` (as the
store is) and one with `sync=False`. Each block puts `--keys` new random keys (a block's
new tree nodes land on pages of their own) and commits; the two environments take turns,
alternating who goes first. Printed per environment, as medians over the blocks after
the first two: the puts' and the commit's wall time and thread CPU. The difference of
the two commits' wall is what the sync costs a block on this disk: time the committing
thread waits, which is neither CPU nor a wait for a core.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import lmdb
from benchutil import machine

VALUE_BYTES = 66  # a state tree node's encoding (core/state/root/nodes.py: NODE_BYTES)
KEY_BYTES = 32
WARM_BLOCKS = 2


def _random_entries(count: int) -> list[tuple[bytes, bytes]]:
    return sorted((os.urandom(KEY_BYTES), os.urandom(VALUE_BYTES)) for _ in range(count))


def _open(path: Path, sync: bool, table: int | None) -> lmdb.Environment:
    env = lmdb.open(str(path), map_size=8 << 30, sync=sync, max_dbs=2)
    if table:
        with env.begin(write=True, db=env.open_db(b"tree")) as txn:
            txn.cursor().putmulti(_random_entries(table), append=True)
    return env


def _block(env: lmdb.Environment, keys: int) -> tuple[float, float, float, float]:
    """One block: (puts wall, puts CPU, commit wall, commit CPU) in seconds."""
    entries = _random_entries(keys)
    db = env.open_db(b"tree")
    wall0, cpu0 = time.perf_counter(), time.thread_time()
    txn = env.begin(write=True, db=db)
    cursor = txn.cursor()
    for key, value in entries:
        cursor.put(key, value)
    wall1, cpu1 = time.perf_counter(), time.thread_time()
    txn.commit()
    wall2, cpu2 = time.perf_counter(), time.thread_time()
    return wall1 - wall0, cpu1 - cpu0, wall2 - wall1, cpu2 - cpu1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=30_000, help="new keys per block")
    parser.add_argument("--table", type=int, default=1_000_000, help="keys in the table")
    parser.add_argument("--blocks", type=int, default=8, help="blocks per environment")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="disk-sync-", dir=".") as tmp:
        envs = {sync: _open(Path(tmp, f"sync-{sync}"), sync, args.table)
                for sync in (True, False)}
        times: dict[bool, list[tuple[float, float, float, float]]] = {True: [], False: []}
        for block in range(args.blocks):
            for sync in ((True, False) if block % 2 == 0 else (False, True)):
                times[sync].append(_block(envs[sync], args.keys))
        for sync, env in envs.items():
            env.close()
            kept = times[sync][WARM_BLOCKS:] or times[sync]
            puts_wall, puts_cpu, commit_wall, commit_cpu = (
                statistics.median(row[i] for row in kept) * 1e3 for i in range(4))
            print(f"sync={sync!s:5}  {args.keys:,} new keys per block into {args.table:,}: puts "
                  f"{puts_wall:.1f} ms wall ({puts_cpu:.1f} CPU), commit {commit_wall:.1f} ms "
                  f"wall ({commit_cpu:.1f} CPU); load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
