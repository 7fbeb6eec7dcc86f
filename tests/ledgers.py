"""Small real ledgers for tests, and the ways operators find them damaged."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import lmdb
from chainmall.core.datadir import GENESIS_FILE, LEDGER_DIR, create_data_dir
from chainmall.core.errors import ChainmallError, DataDirDamaged, StoreTruncated
from chainmall.core.genesis import make_genesis
from chainmall.core.keys import KeyPair
from chainmall.core.state.accounts import encode_transfer
from chainmall.core.store import DATA_FILE
from chainmall.core.tx import sign_tx

CHAIN = "ledger-test"
KEYS = [KeyPair.from_seed(bytes([i]) * 32) for i in range(1, 4)]
VALIDATOR = KeyPair.from_seed(b"v" * 32)
GENESIS = make_genesis(CHAIN, [(k.address, 1_000_000) for k in KEYS],
                       [(VALIDATOR.public_key, 1)], genesis_time_ms=1_000, fee_min=2)


def build_node(directory: Path, blocks: int) -> None:
    """A data directory holding `blocks` blocks of transfers (its writers' lock released)."""
    store, _, machine = create_data_dir(directory, GENESIS, command="test")
    with store:
        for height in range(1, blocks + 1):
            txs = [sign_tx(key, CHAIN, 1, height - 1, 2, 1_000_000,
                           encode_transfer(KEYS[(i + 1) % len(KEYS)].address, 10 * height))
                   for i, key in enumerate(KEYS)]
            machine.finalize_block(machine.build_block(txs, 2_000 + height,
                                                       VALIDATOR.public_key))
            machine.commit()


def downgrade_to_format_3(ledger: Path) -> None:
    """Rewrite a closed ledger (its LMDB directory) into store format 3's layout: each
    staged table's recent level one database `<table>_recent` instead of one per slice."""
    env = lmdb.open(str(ledger), max_dbs=64, subdir=True)
    with env.begin(write=True) as txn:
        for table in ("tx_index", "tree"):
            old = env.open_db(f"{table}_recent".encode(), txn=txn)
            for nibble in range(16):
                part = env.open_db(f"{table}_recent_{nibble:x}".encode(), txn=txn, create=False)
                txn.cursor(old).putmulti(list(txn.cursor(part).iternext()))
                txn.drop(part, delete=True)
        txn.put(b"format_version", (3).to_bytes(4, "big"), db=env.open_db(b"meta", txn=txn))
    env.close()


def files(directory: Path) -> dict[str, bytes | None]:
    """Every entry under `directory`: file bytes, None for a directory."""
    return {str(p.relative_to(directory)): (p.read_bytes() if p.is_file() else None)
            for p in sorted(directory.rglob("*"))}


def empty_meta(node: Path) -> None:
    """Empty the ledger's meta table (every other table keeps its entries)."""
    env = lmdb.open(str(node / LEDGER_DIR), max_dbs=32)
    with env.begin(write=True) as txn:
        txn.drop(env.open_db(b"meta", txn=txn), delete=False)
    env.close()


def truncate_ledger(node: Path) -> None:
    """Cut the ledger file to half its size."""
    data = node / LEDGER_DIR / DATA_FILE
    with data.open("r+b") as handle:
        handle.truncate(data.stat().st_size // 2)


# name -> (damage it, the error, a regex of its message)
DAMAGES: dict[str, tuple[Callable[[Path], object], type[ChainmallError], str]] = {
    "no-ledger-dir": (lambda n: shutil.rmtree(n / LEDGER_DIR), DataDirDamaged,
                      "genesis.json but no ledger/"),
    "no-genesis": (lambda n: (n / GENESIS_FILE).unlink(), DataDirDamaged,
                   "ledger/ directory but no genesis.json"),
    "no-data-file": (lambda n: (n / LEDGER_DIR / DATA_FILE).unlink(), DataDirDamaged,
                     "holds no data.mdb"),
    "empty-data-file": (lambda n: (n / LEDGER_DIR / DATA_FILE).write_bytes(b""),
                        DataDirDamaged, "is empty"),
    "empty-meta": (empty_meta, DataDirDamaged, r"holds no chain \(its meta table is empty\)"),
    "truncated": (truncate_ledger, StoreTruncated,
                  r"the ledger file is truncated \(\d+ of \d+ bytes\)"),
}
RECOVERY_HINT = "to recover, restore the chain from an export"
