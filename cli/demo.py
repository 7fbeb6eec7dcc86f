"""`chainmall demo`: a local ledger with demo data, end to end.

The main job until the node exists. It creates a data directory with a
genesis that funds eight demo accounts, shows the batch validator rejecting
faulty transactions, then builds, executes and commits blocks of signed
transfers into the LMDB ledger, and proves one transaction (Merkle proof
against the header's tx root) and one account (state proof against the
header's state root).
"""

from __future__ import annotations

import time
from pathlib import Path

import click
from chainmall.core import accel
from chainmall.core.address import encode_address
from chainmall.core.block import decode_block
from chainmall.core.constants import BLOCK_TXS_MAX, HASH_BYTES, TX_TYPE_TRANSFER
from chainmall.core.errors import TX_OK, StoreAlreadyInitialised, error_class
from chainmall.core.genesis import load_genesis, make_genesis
from chainmall.core.hashing import digest
from chainmall.core.keys import KeyPair
from chainmall.core.state.accounts import encode_transfer
from chainmall.core.tx import Tx, pack_txs, sign_tx

from .context import Context
from .datadir import GENESIS_FILE, create_data_dir

CHAIN_ID = "chainmall-demo"
DEMO_TIMESTAMP_MS = 1_764_000_000_000  # fixed: the demo's hashes are reproducible
BLOCK_INTERVAL_MS = 1_000
ACCOUNTS = 8
INITIAL_BALANCE = 10**12
FEE = 10
EXPIRY_BLOCKS = 100


def _elapsed_ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000.0, 3)


def _prepare_data_dir(directory: Path) -> None:
    """Refuse a directory that holds other data (`create_data_dir` replaces the demo's own)."""
    if not directory.exists() or not any(directory.iterdir()):
        return
    genesis_file = directory / GENESIS_FILE
    if genesis_file.is_file() and load_genesis(genesis_file).chain_id == CHAIN_ID:
        return
    raise StoreAlreadyInitialised(
        f"{directory} exists and is not demo data; pick another --data-dir"
    )


def _transfers(keys: list[KeyPair], nonces: list[int], count: int, height: int) -> list[Tx]:
    txs = []
    for i in range(count):
        sender_index = i % len(keys)
        recipient = keys[(sender_index + 1) % len(keys)]
        payload = encode_transfer(recipient.address, 1_000 + i)
        txs.append(sign_tx(keys[sender_index], CHAIN_ID, TX_TYPE_TRANSFER, nonces[sender_index],
                           FEE, height + EXPIRY_BLOCKS, payload))
        nonces[sender_index] += 1
    return txs


def _faulty_txs(key: KeyPair, height: int) -> list[Tx]:
    """One tx per stateless fault the batch validator must reject."""
    good = sign_tx(key, CHAIN_ID, TX_TYPE_TRANSFER, 10**6, FEE, height + 1, b"")
    flipped = good.signature[:-1] + bytes([good.signature[-1] ^ 0x01])
    tampered = Tx(good.chain_id, good.tx_type, good.sender, good.nonce, good.fee,
                  good.expiry_height, good.payload, flipped)
    other_chain = sign_tx(key, "some-other-chain", TX_TYPE_TRANSFER, 10**6, FEE, height + 1, b"")
    expired = sign_tx(key, CHAIN_ID, TX_TYPE_TRANSFER, 10**6, FEE, height - 1, b"")
    return [tampered, other_chain, expired]


def _rejections(candidates: list[Tx], height: int) -> tuple[dict[str, int], float]:
    packed, offsets = pack_txs([tx.encode() for tx in candidates])
    start = time.perf_counter()
    codes, _ = accel.validate_batch(packed, offsets, CHAIN_ID.encode(), height)
    elapsed = _elapsed_ms(start)
    rejected: dict[str, int] = {}
    for code in codes:
        if code != TX_OK:
            name = error_class(code).__name__
            rejected[name] = rejected.get(name, 0) + 1
    return dict(sorted(rejected.items())), elapsed


@click.command()
@click.option("--txs", "tx_count", type=click.IntRange(1, BLOCK_TXS_MAX), default=2000,
              show_default=True, help="Transfers per block.")
@click.option("--blocks", "block_count", type=click.IntRange(1, 1000), default=3,
              show_default=True, help="Blocks to build, execute and commit.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the demo ledger lives (recreated each run) "
                   "[default: HOME/chainmall-demo].")
@click.pass_obj
def demo(obj: Context, tx_count: int, block_count: int, data_dir: Path | None) -> None:
    """Run a local ledger with demo data: validate, execute, commit and prove blocks."""
    directory = data_dir or obj.home / CHAIN_ID
    _prepare_data_dir(directory)
    keys = [KeyPair.from_seed(digest(b"chainmall demo account %d" % i)) for i in range(ACCOUNTS)]
    genesis = make_genesis(CHAIN_ID, [(k.address, INITIAL_BALANCE) for k in keys],
                           [(keys[0].public_key, 10)], genesis_time_ms=DEMO_TIMESTAMP_MS,
                           fee_min=1)
    store, genesis, machine = create_data_dir(directory, genesis, command="demo",
                                              replace_chain_id=CHAIN_ID)
    with store:
        nonces = [0] * ACCOUNTS
        timings: dict[str, float] = {"sign": 0.0, "build": 0.0, "finalize": 0.0, "commit": 0.0}
        rejected: dict[str, int] = {}
        blocks = []
        for height in range(1, block_count + 1):
            start = time.perf_counter()
            txs = _transfers(keys, nonces, tx_count, height)
            timings["sign"] += _elapsed_ms(start)
            if height == 1:
                rejected, timings["validate_batch"] = _rejections(
                    txs + _faulty_txs(keys[0], height), height)
            start = time.perf_counter()
            block = machine.build_block(txs, DEMO_TIMESTAMP_MS + height * BLOCK_INTERVAL_MS,
                                        keys[0].public_key)
            timings["build"] += _elapsed_ms(start)
            start = time.perf_counter()
            result = machine.finalize_block(block)
            timings["finalize"] += _elapsed_ms(start)
            start = time.perf_counter()
            machine.commit()
            timings["commit"] += _elapsed_ms(start)
            assert result.app_hash == block.header.state_root
            blocks.append((block, result))

        last, last_result = blocks[-1]
        encoded = last.encode()
        round_trip = decode_block(encoded) == last and decode_block(encoded).encode() == encoded
        tx_ids = b"".join(tx.tx_id for tx in last.txs)
        index = len(last.txs) // 2
        leaf = tx_ids[index * HASH_BYTES : (index + 1) * HASH_BYTES]
        proof = accel.merkle_proof(tx_ids, index)
        proof_ok = accel.merkle_verify(last.header.tx_root, leaf, index, len(last.txs), proof)
        bad_proof = [proof[0][:-1] + bytes([proof[0][-1] ^ 1]), *proof[1:]] if proof else proof
        tampered_ok = accel.merkle_verify(last.header.tx_root, leaf, index, len(last.txs),
                                          bad_proof)
        account = machine.prove_account(keys[1].address)
        account_ok = account.verify(last.header.state_root)
        height, app_hash = machine.info()

    successes = sum(1 for r in last_result.tx_results if r.code == TX_OK)
    data = {
        "chain_id": CHAIN_ID,
        "data_dir": str(directory),
        "height": height,
        "state_root": app_hash.hex(),
        "block_hash": last.hash().hex(),
        "tx_root": last.header.tx_root.hex(),
        "block_bytes": len(encoded),
        "accepted": len(blocks[0][0].txs),
        "rejected": rejected,
        "last_block_successful_txs": successes,
        "block_round_trip": round_trip,
        "proof_index": index,
        "proof_tx_id": leaf.hex(),
        "proof_length": len(proof),
        "proof_verifies": proof_ok,
        "tampered_proof_verifies": tampered_ok,
        "account_proof_verifies": account_ok,
        "timings_ms": {k: round(v, 3) for k, v in timings.items()},
        "implementations": {s.name: s.in_use for s in accel.status()},
    }
    rejected_text = ", ".join(f"{n} x{c}" for n, c in rejected.items()) or "none"
    per_block = round(timings["finalize"] / block_count, 1)
    human = "\n".join(
        [
            f"demo ledger {CHAIN_ID} in {directory}",
            f"  batch validation of block 1's candidates: {tx_count} accepted, rejected: "
            f"{rejected_text} ({timings['validate_batch']} ms)",
            f"  committed {block_count} blocks of {tx_count} transfers to LMDB "
            f"(finalize {per_block} ms per block); height {height}",
            f"  state root {app_hash.hex()}",
            f"  block {height}: {last.hash().hex()}, {len(encoded)} bytes, "
            f"round trip {'ok' if round_trip else 'FAILED'}",
            f"  tx #{index} proven against the tx root with {len(proof)} hashes: "
            f"{'verifies' if proof_ok else 'FAILS'}; tampered proof "
            f"{'verifies (BUG)' if tampered_ok else 'rejected'}",
            f"  account {encode_address(keys[1].address)} proven against the state root: "
            f"{'verifies' if account_ok else 'FAILS'}",
        ]
    )
    obj.emit(human, data)
    if not (proof_ok and not tampered_ok and round_trip and account_ok):
        raise SystemExit(1)
