"""Kill-test worker: apply a file of blocks to a data dir, printing each committed height.

Usage: python import_worker.py GENESIS_JSON BLOCKS_FILE DATA_DIR [RETAIN_HEIGHTS]

RETAIN_HEIGHTS (default 0: keep every height) turns the store's pruning on.

The blocks file is a sequence of (u32 big-endian length, canonical block
bytes). The worker resumes after the store's tip, so it can be killed and
restarted any number of times. A line "<height>" is printed (and flushed)
only after that height's commit returned, i.e. is durable.
"""

from __future__ import annotations

import sys
from pathlib import Path

from chainmall.core.abci.app import ledger_machine
from chainmall.core.block import decode_block
from chainmall.core.genesis import load_genesis
from chainmall.core.store import Store


def read_blocks(path: str) -> list[bytes]:
    data = Path(path).read_bytes()
    blocks, position = [], 0
    while position < len(data):
        length = int.from_bytes(data[position : position + 4], "big")
        blocks.append(data[position + 4 : position + 4 + length])
        position += 4 + length
    return blocks


def main(genesis_path: str, blocks_path: str, data_dir: str, retain: str = "0") -> int:
    genesis = load_genesis(genesis_path)
    blocks = read_blocks(blocks_path)
    with Store(data_dir, retain_heights=int(retain)) as store:
        machine = ledger_machine(store, genesis)
        height, _ = machine.info()
        print(f"start {height}", flush=True)
        for raw in blocks[height:]:
            machine.finalize_block(decode_block(raw))
            committed = machine.commit()
            print(committed, flush=True)
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
