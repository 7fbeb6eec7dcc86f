"""Stateless batch checks of transactions and signatures: the reference for ext/_verify.pyx.

The compiled kernel (`chainmall.ext._verify`) and this module take the same
arguments and give the same results; `chainmall.core.accel` picks one and the
tests compare both. Here every check is plain Python over `core.tx` and the
ZIP 215 reference verifier `core.ed25519`, written to be read, not to be fast:
each signature is checked on its own (the kernel's batch equations give the
same verdicts, docs/verification.md section 1).

Stateless checks run in a fixed order and the first failure wins, so every node
reports the same code for the same bytes (docs/verification.md):

1. longer than TX_BYTES_MAX                    -> TxTooLarge   (102)
2. not the canonical wire form                 -> DecodeError  (101)
3. chain id is not the expected one            -> WrongChain   (111)
4. height > expiry_height                      -> TxExpired    (112)
5. Ed25519 under ZIP 215 rejects              -> BadSignature (113)
   otherwise                                      TX_OK        (0)
"""

from __future__ import annotations

import operator
import os
from collections.abc import Iterable, Sequence
from typing import Protocol

from .batchargs import as_bytes as _as_bytes
from .batchargs import item_count as _item_count
from .batchargs import read_offsets as _read_offsets
from .constants import (
    CHAIN_ID_ALPHABET,
    CHAIN_ID_BYTES_MAX,
    CHAIN_ID_BYTES_MIN,
    HASH_BYTES,
    PUBLIC_KEY_BYTES,
    SIGNATURE_BYTES,
    TX_BYTES_MAX,
    U64_MAX,
    VERIFY_THREADS_MAX,
)
from .ed25519 import verify_one
from .errors import TX_OK, BadSignature, DecodeError, TxExpired, TxTooLarge, WrongChain
from .tx import Tx, decode_tx

Buffer = bytes | bytearray | memoryview


class VerifyBatch(Protocol):
    """The shape shared by `verify_batch` here and in the kernel."""

    def __call__(
        self,
        public_keys: Buffer,
        messages: Buffer,
        offsets: Sequence[int],
        signatures: Buffer,
        threads: int = 0,
    ) -> list[bool]: ...


# --- argument checks (the kernel makes the same ones, in the same order) -----
def resolve_threads(threads: int) -> int:
    """The thread count a batch call uses: `threads`, or os.cpu_count() for 0."""
    if isinstance(threads, bool) or not isinstance(threads, int):
        raise TypeError(f"threads must be an int, got {type(threads).__name__}")
    if not 0 <= threads <= VERIFY_THREADS_MAX:
        raise ValueError(f"threads must be in [0, {VERIFY_THREADS_MAX}], got {threads}")
    if threads == 0:
        return min(os.cpu_count() or 1, VERIFY_THREADS_MAX)
    return threads


def _check_chain_id(chain_id: Buffer) -> bytes:
    value = bytes(memoryview(chain_id))
    if not CHAIN_ID_BYTES_MIN <= len(value) <= CHAIN_ID_BYTES_MAX:
        raise ValueError(
            f"chain id must be {CHAIN_ID_BYTES_MIN}..{CHAIN_ID_BYTES_MAX} bytes, got {len(value)}"
        )
    if value.translate(None, CHAIN_ID_ALPHABET):
        raise ValueError(f"chain id {value!r} has a byte outside CHAIN_ID_ALPHABET")
    return value


def _check_height(height: int) -> int:
    if isinstance(height, bool):
        raise TypeError("height must be an int, got bool")
    value = operator.index(height)
    if not 0 <= value <= U64_MAX:
        raise ValueError(f"height {value} is outside [0, 2^64)")
    return value


# --- signatures ------------------------------------------------------------------
def verify_batch(
    public_keys: Buffer,
    messages: Buffer,
    offsets: Sequence[int],
    signatures: Buffer,
    threads: int = 0,
) -> list[bool]:
    """Ed25519-verify n signatures under ZIP 215; one bool per item.

    public_keys: n * 32 bytes; messages: one buffer, message i is
    messages[offsets[i]:offsets[i + 1]]; signatures: n * 64 bytes. `threads` is
    checked as in the kernel but the reference runs on one, one signature at a
    time. ValueError for malformed shapes or a non-contiguous buffer, TypeError
    for a non-buffer; a bad item is just False.
    """
    n = _item_count(offsets)
    resolve_threads(threads)
    keys = _as_bytes(public_keys, "public_keys")
    data = _as_bytes(messages, "messages")
    sigs = _as_bytes(signatures, "signatures")
    if len(keys) != PUBLIC_KEY_BYTES * n:
        raise ValueError(f"public_keys must be {PUBLIC_KEY_BYTES * n} bytes, got {len(keys)}")
    if len(sigs) != SIGNATURE_BYTES * n:
        raise ValueError(f"signatures must be {SIGNATURE_BYTES * n} bytes, got {len(sigs)}")
    offs = _read_offsets(offsets, n, len(data))
    return [
        verify_one(
            keys[PUBLIC_KEY_BYTES * i : PUBLIC_KEY_BYTES * (i + 1)],
            data[offs[i] : offs[i + 1]],
            sigs[SIGNATURE_BYTES * i : SIGNATURE_BYTES * (i + 1)],
        )
        for i in range(n)
    ]


def verify_signatures(
    items: Iterable[tuple[bytes, bytes, bytes]],
    batch: VerifyBatch = verify_batch,
    threads: int = 0,
) -> list[bool]:
    """Verify (public_key, message, signature) triples of any lengths through `batch`.

    The packed batch API only has room for 32-byte keys and 64-byte signatures,
    so an item with another length is rejected here (False) and never reaches
    the verifier, the same verdict `keys.verify_signature` gives it.
    `batch` is `verify_batch` of this module or of the kernel.
    """
    triples = [(bytes(pk), bytes(msg), bytes(sig)) for pk, msg, sig in items]
    well_formed = [
        i
        for i, (pk, _, sig) in enumerate(triples)
        if len(pk) == PUBLIC_KEY_BYTES and len(sig) == SIGNATURE_BYTES
    ]
    offsets = [0]
    for i in well_formed:
        offsets.append(offsets[-1] + len(triples[i][1]))
    verdicts = batch(
        b"".join(triples[i][0] for i in well_formed),
        b"".join(triples[i][1] for i in well_formed),
        offsets,
        b"".join(triples[i][2] for i in well_formed),
        threads,
    )
    result = [False] * len(triples)
    for i, verdict in zip(well_formed, verdicts, strict=True):
        result[i] = verdict
    return result


# --- transactions ------------------------------------------------------------------
def check_tx(tx: Tx, chain_id: bytes, height: int) -> None:
    """The stateless checks after decoding, in order; raise the first that fails.

    WrongChain if the tx names another chain, TxExpired if `height` is past its
    expiry height, BadSignature if the sender's signature over the sign bytes
    does not verify under ZIP 215 (the pure-Python reference verifier).
    """
    if tx.chain_id.encode("ascii") != chain_id:
        raise WrongChain(f"tx is for chain {tx.chain_id!r}, expected {chain_id!r}")
    if height > tx.expiry_height:
        raise TxExpired(f"tx expired at height {tx.expiry_height}, now {height}")
    if not verify_one(tx.sender, tx.sign_bytes, tx.signature):
        raise BadSignature("the sender's signature does not verify")


def _validate_one(raw: bytes, chain_id: bytes, height: int) -> tuple[int, bytes]:
    """(code, tx id or 32 zero bytes) of one tx; checks in the documented order."""
    if len(raw) > TX_BYTES_MAX:
        return TxTooLarge.code, bytes(HASH_BYTES)
    try:
        tx = decode_tx(raw)
    except DecodeError:
        return DecodeError.code, bytes(HASH_BYTES)
    try:
        check_tx(tx, chain_id, height)
    except (WrongChain, TxExpired, BadSignature) as error:
        return error.code, tx.tx_id
    return TX_OK, tx.tx_id


def validate_batch(
    txs: Buffer,
    offsets: Sequence[int],
    chain_id: bytes,
    height: int,
    threads: int = 0,
) -> tuple[list[int], bytes]:
    """Stateless checks of n packed txs: (per-tx codes, n * 32 bytes of tx ids).

    Tx i is txs[offsets[i]:offsets[i + 1]]. Codes, first failure wins: 102 too
    large, 101 malformed, 111 wrong chain, 112 expired (height > expiry_height),
    113 bad signature (ZIP 215), 0 ok. Ids are BLAKE3 of the body, zeros where
    the tx did not decode. ValueError for malformed arguments or a
    non-contiguous buffer, TypeError for wrong types; never for a bad tx.
    """
    n = _item_count(offsets)
    chain = _check_chain_id(chain_id)
    height_value = _check_height(height)
    resolve_threads(threads)
    data = _as_bytes(txs, "txs")
    offs = _read_offsets(offsets, n, len(data))
    codes: list[int] = []
    ids = bytearray()
    for i in range(n):
        code, tx_id = _validate_one(data[offs[i] : offs[i + 1]], chain, height_value)
        codes.append(code)
        ids += tx_id
    return codes, bytes(ids)
