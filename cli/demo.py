"""`chainmall demo`: sign, batch-validate, encode and Merkle-prove one block.

The main job until the node exists: it exercises every kernel on a realistic
block and shows what a rejected transaction looks like.
"""

from __future__ import annotations

import time

import click
from chainmall.core import accel
from chainmall.core.block import decode_block, make_block
from chainmall.core.constants import BLOCK_TXS_MAX, HASH_BYTES
from chainmall.core.errors import TX_OK, error_class
from chainmall.core.hashing import digest
from chainmall.core.keys import KeyPair
from chainmall.core.tx import Tx, pack_txs, sign_tx

from .context import Context

CHAIN_ID = "chainmall-demo"
DEMO_TX_TYPE = 1  # a transfer: payload = recipient address (20 bytes) || amount (u64)
DEMO_HEIGHT = 1
DEMO_TIMESTAMP_MS = 1_764_000_000_000  # fixed: the demo output is reproducible
ACCOUNTS = 8


def _elapsed_ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000.0, 3)


def _demo_txs(keys: list[KeyPair], count: int) -> list[Tx]:
    txs = []
    for i in range(count):
        sender = keys[i % len(keys)]
        recipient = keys[(i + 1) % len(keys)]
        payload = recipient.address + (1_000 + i).to_bytes(8, "big")
        txs.append(sign_tx(sender, CHAIN_ID, DEMO_TX_TYPE, i // len(keys), 10, 100, payload))
    return txs


def _faulty_txs(key: KeyPair) -> list[Tx]:
    """One tx per stateless fault the demo shows being rejected."""
    good = sign_tx(key, CHAIN_ID, DEMO_TX_TYPE, 10**6, 10, 100, b"tampered")
    flipped = good.signature[:-1] + bytes([good.signature[-1] ^ 0x01])
    tampered = Tx(good.chain_id, good.tx_type, good.sender, good.nonce, good.fee,
                  good.expiry_height, good.payload, flipped)
    other_chain = sign_tx(key, "some-other-chain", DEMO_TX_TYPE, 10**6 + 1, 10, 100, b"")
    expired = sign_tx(key, CHAIN_ID, DEMO_TX_TYPE, 10**6 + 2, 10, DEMO_HEIGHT - 1, b"")
    return [tampered, other_chain, expired]


@click.command()
@click.option("--txs", "tx_count", type=click.IntRange(1, BLOCK_TXS_MAX - 3), default=2000,
              show_default=True, help="Valid transactions in the block.")
@click.pass_obj
def demo(obj: Context, tx_count: int) -> None:
    """Build a block of signed transfers, validate it in one batch, prove one tx."""
    keys = [KeyPair.from_seed(digest(b"chainmall demo account %d" % i)) for i in range(ACCOUNTS)]

    start = time.perf_counter()
    candidates = _demo_txs(keys, tx_count) + _faulty_txs(keys[0])
    sign_ms = _elapsed_ms(start)

    packed, offsets = pack_txs([tx.encode() for tx in candidates])
    start = time.perf_counter()
    codes, tx_ids = accel.validate_batch(packed, offsets, CHAIN_ID.encode(), DEMO_HEIGHT)
    validate_ms = _elapsed_ms(start)
    accepted = [tx for tx, code in zip(candidates, codes, strict=True) if code == TX_OK]
    rejected: dict[str, int] = {}
    for code in codes:
        if code != TX_OK:
            name = error_class(code).__name__
            rejected[name] = rejected.get(name, 0) + 1

    start = time.perf_counter()
    block = make_block(
        chain_id=CHAIN_ID,
        height=DEMO_HEIGHT,
        prev_hash=bytes(HASH_BYTES),
        timestamp_ms=DEMO_TIMESTAMP_MS,
        proposer=keys[0].public_key,
        txs=accepted,
        state_root=bytes(HASH_BYTES),
        validator_set_hash=digest(keys[0].public_key),
    )
    encoded = block.encode()
    decoded = decode_block(encoded)
    decoded.check_tx_root()
    block_ms = _elapsed_ms(start)

    accepted_ids = b"".join(
        tx_ids[i * HASH_BYTES : (i + 1) * HASH_BYTES]
        for i, code in enumerate(codes)
        if code == TX_OK
    )
    index = len(accepted) // 2
    leaf = accepted_ids[index * HASH_BYTES : (index + 1) * HASH_BYTES]
    start = time.perf_counter()
    proof = accel.merkle_proof(accepted_ids, index)
    proof_ok = accel.merkle_verify(block.header.tx_root, leaf, index, len(accepted), proof)
    prove_ms = _elapsed_ms(start)
    bad_proof = [proof[0][:-1] + bytes([proof[0][-1] ^ 1]), *proof[1:]] if proof else proof
    tampered_ok = accel.merkle_verify(block.header.tx_root, leaf, index, len(accepted), bad_proof)

    data = {
        "chain_id": CHAIN_ID,
        "height": DEMO_HEIGHT,
        "block_hash": block.hash().hex(),
        "tx_root": block.header.tx_root.hex(),
        "block_bytes": len(encoded),
        "accepted": len(accepted),
        "rejected": dict(sorted(rejected.items())),
        "block_round_trip": decoded == block and decoded.encode() == encoded,
        "proof_index": index,
        "proof_tx_id": leaf.hex(),
        "proof_length": len(proof),
        "proof_verifies": proof_ok,
        "tampered_proof_verifies": tampered_ok,
        "timings_ms": {
            "sign": sign_ms,
            "validate_batch": validate_ms,
            "build_encode_decode": block_ms,
            "prove_verify": prove_ms,
        },
        "implementations": {s.name: s.in_use for s in accel.status()},
    }
    rejected_text = ", ".join(f"{n} x{c}" for n, c in data["rejected"].items()) or "none"
    human = "\n".join(
        [
            f"chain {CHAIN_ID}, block {DEMO_HEIGHT}: {block.hash().hex()}",
            f"  signed {len(candidates)} txs in {sign_ms} ms",
            f"  validate_batch: {len(accepted)} accepted, rejected: {rejected_text} "
            f"({validate_ms} ms)",
            f"  block: {len(encoded)} bytes, tx root {block.header.tx_root.hex()}, "
            f"encode/decode round trip {'ok' if data['block_round_trip'] else 'FAILED'}",
            f"  tx #{index} ({leaf.hex()[:16]}...) proven with {len(proof)} hashes: "
            f"{'verifies' if proof_ok else 'FAILS'}; tampered proof "
            f"{'verifies (BUG)' if tampered_ok else 'rejected'}",
        ]
    )
    obj.emit(human, data)
    if not (proof_ok and not tampered_ok and data["block_round_trip"]):
        raise SystemExit(1)
