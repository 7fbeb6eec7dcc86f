"""Batch envelopes: one CometBFT tx carrying many individually signed chainmall txs.

CometBFT's cost is per tx it handles (mempool, gossip, hashing, one CheckTx
per node), whatever the tx's size; an envelope pays it once for up to
ENVELOPE_TXS_MAX txs. The envelope is transport only: the application takes
every envelope apart before it checks or executes anything, so each inner tx
is checked (signature on every node), executed, recorded and indexed exactly
as if it had come alone, under either engine. Layout (docs/formats.md
section 11), big-endian:

    magic u8 (0xE1) | version u8 (1) | count u16 (1..ENVELOPE_TXS_MAX)
    then count times: length u16 (TX_BYTES_MIN..TX_BYTES_MAX) | tx bytes

nothing after the last tx. A v1 tx starts with TX_VERSION (1), so the first
byte tells the two apart. `flatten` turns a block's CometBFT txs into the
chainmall txs it carries: a malformed envelope stays one item, which then
fails its stateless checks like any undecodable tx (deterministically, on
every node).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from ..constants import (
    ENVELOPE_MAGIC,
    ENVELOPE_TXS_MAX,
    ENVELOPE_VERSION,
    TX_BYTES_MAX,
    TX_BYTES_MIN,
)
from ..errors import EnvelopeError

_HEAD = struct.Struct(">BBH")
_LENGTH = struct.Struct(">H")
_RESULT = struct.Struct(">32sH")
assert TX_BYTES_MAX <= 0xFFFF and ENVELOPE_TXS_MAX <= 0xFFFF


def is_envelope(raw: bytes) -> bool:
    """Whether `raw` claims to be an envelope (its first byte); it may still be malformed."""
    return len(raw) > 0 and raw[0] == ENVELOPE_MAGIC


def encode_envelope(txs: Sequence[bytes]) -> bytes:
    """One envelope carrying `txs` (wire bytes, in order); InvalidInput (EnvelopeError)
    if there are none, more than ENVELOPE_TXS_MAX, or one of a length no tx has."""
    if not 1 <= len(txs) <= ENVELOPE_TXS_MAX:
        raise EnvelopeError(f"an envelope carries 1..{ENVELOPE_TXS_MAX} txs, got {len(txs)}")
    parts = [_HEAD.pack(ENVELOPE_MAGIC, ENVELOPE_VERSION, len(txs))]
    for tx in txs:
        if not TX_BYTES_MIN <= len(tx) <= TX_BYTES_MAX:
            raise EnvelopeError(f"a tx of {len(tx)} bytes cannot be in an envelope "
                                f"({TX_BYTES_MIN}..{TX_BYTES_MAX})")
        parts.append(_LENGTH.pack(len(tx)))
        parts.append(bytes(tx))
    return b"".join(parts)


def decode_envelope(raw: bytes) -> list[bytes]:
    """The txs an envelope carries, in order; EnvelopeError unless `raw` is exactly the
    canonical encoding of one."""
    size = len(raw)
    if size < _HEAD.size:
        raise EnvelopeError(f"an envelope of {size} bytes is shorter than its header")
    magic, version, count = _HEAD.unpack_from(raw)
    if magic != ENVELOPE_MAGIC:
        raise EnvelopeError(f"not an envelope: first byte {magic:#04x}")
    if version != ENVELOPE_VERSION:
        raise EnvelopeError(f"envelope version {version}, expected {ENVELOPE_VERSION}")
    if not 1 <= count <= ENVELOPE_TXS_MAX:
        raise EnvelopeError(f"an envelope carries 1..{ENVELOPE_TXS_MAX} txs, says {count}")
    txs = []
    offset = _HEAD.size
    for index in range(count):
        if offset + 2 > size:
            raise EnvelopeError(f"envelope ends inside the length of tx {index}")
        length = (raw[offset] << 8) | raw[offset + 1]
        if not TX_BYTES_MIN <= length <= TX_BYTES_MAX:
            raise EnvelopeError(f"envelope tx {index}: length {length} is outside "
                                f"{TX_BYTES_MIN}..{TX_BYTES_MAX}")
        offset += 2
        end = offset + length
        if end > size:
            raise EnvelopeError(f"envelope ends inside tx {index}")
        txs.append(bytes(raw[offset:end]))
        offset = end
    if offset != size:
        raise EnvelopeError(f"{size - offset} bytes after the envelope's last tx")
    return txs


def carried_count(raw: bytes) -> int:
    """How many txs `raw` carries by its header alone: an envelope's count, else 1 (a plain
    tx, or a malformed envelope, which `flatten` passes on as one item). For sizing a
    proposal only; `flatten` is the check."""
    if len(raw) >= _HEAD.size and raw[0] == ENVELOPE_MAGIC:
        return max(1, (raw[2] << 8) | raw[3])
    return 1


def flatten(raws: Sequence[bytes]) -> tuple[list[bytes], list[int]]:
    """The chainmall txs carried by a block's CometBFT txs, in order, and for each CometBFT
    tx the number of txs its envelope carries (0: not an envelope, or a malformed one,
    which is passed on as one item and fails its stateless checks)."""
    flat: list[bytes] = []
    counts: list[int] = []
    for raw in raws:
        if len(raw) and raw[0] == ENVELOPE_MAGIC:
            try:
                inner = decode_envelope(raw)
            except EnvelopeError:
                pass
            else:
                flat.extend(inner)
                counts.append(len(inner))
                continue
        flat.append(raw)
        counts.append(0)
    return flat, counts


def group(counts: Sequence[int], items: Sequence[object]) -> list[list[object]]:
    """`items` (one per flattened tx) cut back into one list per CometBFT tx."""
    groups = []
    start = 0
    for count in counts:
        width = count or 1
        groups.append(list(items[start:start + width]))
        start += width
    if start != len(items):
        raise ValueError(f"{len(items)} items for {start} flattened txs")
    return groups


def encode_results(results: Sequence[tuple[bytes, int]]) -> bytes:
    """An envelope's ExecTxResult `data`: per inner tx, its id (32 bytes) and code (u16)."""
    return b"".join(_RESULT.pack(tx_id, code) for tx_id, code in results)


def decode_results(data: bytes) -> list[tuple[bytes, int]]:
    """The (tx id, code) pairs `encode_results` made; EnvelopeError if `data` is not that."""
    if len(data) % _RESULT.size:
        raise EnvelopeError(f"envelope results of {len(data)} bytes: not a multiple of "
                            f"{_RESULT.size}")
    return [_RESULT.unpack_from(data, offset) for offset in range(0, len(data), _RESULT.size)]
