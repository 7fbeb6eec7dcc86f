"""Many txs on the wire at once: unframe a block's tx list, check each tx's form, build Txs.

The reference of the kernel `chainmall.ext._txwire` (same signatures, same
results, same exceptions); `core/kernels.py` picks one. `core/block.py` and
`core/tx.py` decode through these on their fast path and fall back to the
one-tx-at-a-time decoder (`tx._decode`) whenever a tx is not well formed, so
every error a decoder raises, and its message, comes from that decoder; the
functions here only have to accept exactly what it accepts (the tests compare
the two on every shape of damage).

The wire form (docs/formats.md): body = version u8, chain id length L u8,
chain id (L), tx type u16, sender (32), nonce u64, fee u64, expiry height
u64, payload length P u32, payload (P); then the 64-byte signature. Field
offsets below are from the start of the tx, given L.

This module sits below `core/kernels.py` and imports nothing that hashes
through it (the tx ids use the `blake3` package, as kernels' fallbacks do),
so `build_txs` is given the Tx class rather than importing it.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from .batchargs import Buffer, as_bytes, index_in, item_count, read_offsets
from .constants import (
    BATCH_ITEMS_MAX,
    CHAIN_ID_ALPHABET,
    CHAIN_ID_BYTES_MAX,
    CHAIN_ID_BYTES_MIN,
    HASH_BYTES,
    SIGNATURE_BYTES,
    TX_BODY_FIXED_BYTES,
    TX_BYTES_MAX,
    TX_PAYLOAD_BYTES_MAX,
    TX_VERSION,
)
from .errors import TX_OK, DecodeError, TxTooLarge
from .hashing import digest_many

__all__ = ["TX_FIELDS", "build_txs", "check_wire", "unframe_txs"]

# The slots `build_txs` fills, in this order (core/tx.py's Tx: its fields, then its
# body and tx id).
TX_FIELDS = ("chain_id", "tx_type", "sender", "nonce", "fee", "expiry_height", "payload",
             "signature", "_body", "_tx_id")

_ALLOWED = frozenset(CHAIN_ID_ALPHABET)
# After the chain id: tx type, sender, nonce, fee, expiry height, payload length.
_FIXED = struct.Struct(">H32sQQQI")
_U16 = struct.Struct(">H")
assert 2 + _FIXED.size == TX_BODY_FIXED_BYTES


def unframe_txs(block: Buffer, start: int, count: int) -> tuple[int, bytes, list[int]]:
    """Read `count` u16-length-prefixed items from `block` at `start`, as a block's tx
    list holds them: (end, items back to back, their n + 1 offsets).

    `end` is the position after the last item; -1 (with b"" and [0]) when
    `block` ends inside an item or its length. The items are not checked.
    ValueError for `start` outside the buffer or a `count` outside
    [0, BATCH_ITEMS_MAX], TypeError for a non-buffer or a non-int.
    """
    data = as_bytes(block, "block")
    position = index_in(start, 0, len(data), "start")
    index_in(count, 0, BATCH_ITEMS_MAX, "count")
    size = len(data)
    items: list[bytes] = []
    offsets = [0]
    for _ in range(count):
        if position + 2 > size:
            return -1, b"", [0]
        (length,) = _U16.unpack_from(data, position)
        end = position + 2 + length
        if end > size:
            return -1, b"", [0]
        items.append(data[position + 2 : end])
        offsets.append(offsets[-1] + length)
        position = end
    return position, b"".join(items), offsets


def wire_code(tx: bytes) -> int:
    """TX_OK if `tx` is one well-formed wire tx, else the code `tx._decode` raises
    (TxTooLarge first, then DecodeError), in its order of checks."""
    size = len(tx)
    if size > TX_BYTES_MAX:
        return TxTooLarge.code
    if size < 2 or tx[0] != TX_VERSION:
        return DecodeError.code
    chain_id_bytes = tx[1]
    if not CHAIN_ID_BYTES_MIN <= chain_id_bytes <= CHAIN_ID_BYTES_MAX:
        return DecodeError.code
    payload_start = TX_BODY_FIXED_BYTES + chain_id_bytes
    if size < payload_start + SIGNATURE_BYTES:
        return DecodeError.code
    if not _ALLOWED.issuperset(tx[2 : 2 + chain_id_bytes]):
        return DecodeError.code
    payload_bytes = int.from_bytes(tx[payload_start - 4 : payload_start], "big")
    if payload_bytes > TX_PAYLOAD_BYTES_MAX:
        return DecodeError.code
    if size != payload_start + payload_bytes + SIGNATURE_BYTES:
        return DecodeError.code
    return TX_OK


def check_wire(txs: Buffer, offsets: Sequence[int]) -> tuple[list[int], bytes]:
    """The wire-form verdict of each of n packed txs and their ids: (codes, n * 32 bytes).

    Tx i is txs[offsets[i]:offsets[i + 1]]; its code is 0 when it decodes,
    102 (TxTooLarge) or 101 (DecodeError) as `decode_tx` would raise. Ids are
    BLAKE3 of the body, 32 zero bytes where the tx does not decode. Nothing
    else is checked (chain id, expiry and signature are `validate_batch`'s).
    """
    n = item_count(offsets)
    data = as_bytes(txs, "txs")
    offs = read_offsets(offsets, n, len(data))
    codes = [wire_code(data[offs[i] : offs[i + 1]]) for i in range(n)]
    bodies = [data[offs[i] : offs[i + 1] - SIGNATURE_BYTES]
              for i in range(n) if codes[i] == TX_OK]
    body_offsets = [0]
    for body in bodies:
        body_offsets.append(body_offsets[-1] + len(body))
    hashed = digest_many(b"".join(bodies), body_offsets) if bodies else b""
    ids = bytearray(HASH_BYTES * n)
    position = 0
    for i in range(n):
        if codes[i] == TX_OK:
            ids[HASH_BYTES * i : HASH_BYTES * (i + 1)] = hashed[position : position + HASH_BYTES]
            position += HASH_BYTES
    return codes, bytes(ids)


def _setters(tx_class: type) -> list:
    """The slot setters of `tx_class` for TX_FIELDS (TypeError unless each is a slot)."""
    if not isinstance(tx_class, type):
        raise TypeError(f"tx_class must be a class, got {type(tx_class).__name__}")
    setters = []
    for name in TX_FIELDS:
        descriptor = getattr(tx_class, name, None)
        if type(descriptor).__name__ != "member_descriptor":
            raise TypeError(f"{tx_class.__name__} has no slot {name!r}")
        setters.append(descriptor.__set__)
    return setters


def build_txs(tx_class: type, txs: Buffer, offsets: Sequence[int], ids: Buffer) -> list:
    """One `tx_class` object per packed wire tx, its slots TX_FIELDS filled from the bytes.

    Every tx must pass `check_wire` (ValueError naming the first that does
    not); `ids` holds their n * 32 bytes of tx ids, as `check_wire` gives
    them. The objects are made with `object.__new__`, as `tx._tx_from_parts`
    makes them: no `__init__` runs, the fields are known to be valid.
    """
    setters = _setters(tx_class)
    n = item_count(offsets)
    data = as_bytes(txs, "txs")
    id_bytes = as_bytes(ids, "ids")
    offs = read_offsets(offsets, n, len(data))
    if len(id_bytes) != HASH_BYTES * n:
        raise ValueError(f"ids must be {HASH_BYTES * n} bytes, got {len(id_bytes)}")
    chain_ids: dict[bytes, str] = {}
    result = []
    new = object.__new__
    for i in range(n):
        tx = data[offs[i] : offs[i + 1]]
        if wire_code(tx) != TX_OK:
            raise ValueError(f"build_txs: tx {i} is not a well-formed wire tx")
        chain_id_bytes = tx[1]
        raw_chain_id = tx[2 : 2 + chain_id_bytes]
        chain_id = chain_ids.get(raw_chain_id)
        if chain_id is None:
            chain_id = chain_ids[raw_chain_id] = raw_chain_id.decode("ascii")
        tx_type, sender, nonce, fee, expiry_height, payload_bytes = _FIXED.unpack_from(
            tx, 2 + chain_id_bytes)
        payload_start = TX_BODY_FIXED_BYTES + chain_id_bytes
        body_end = payload_start + payload_bytes
        values = (chain_id, tx_type, sender, nonce, fee, expiry_height,
                  tx[payload_start:body_end], tx[body_end:], tx[:body_end],
                  id_bytes[HASH_BYTES * i : HASH_BYTES * (i + 1)])
        item = new(tx_class)
        for setter, value in zip(setters, values, strict=True):
            setter(item, value)
        result.append(item)
    return result
