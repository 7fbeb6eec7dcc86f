"""Transactions: the v1 wire format, tx id, sign bytes, signing and strict decoding.

Normative layout in docs/formats.md; `ext/_verify.pyx` parses the same bytes
in C and the tests hold the two to identical verdicts. A `Tx` is validated
when it is built (so an out-of-range one cannot exist) and keeps its body
bytes and tx id, which every later step needs: the id is computed once.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .constants import (
    CHAIN_ID_ALPHABET,
    CHAIN_ID_BYTES_MAX,
    CHAIN_ID_BYTES_MIN,
    HASH_BYTES,
    PUBLIC_KEY_BYTES,
    SIGNATURE_BYTES,
    TX_BODY_BYTES_MAX,
    TX_BODY_FIXED_BYTES,
    TX_BYTES_MAX,
    TX_PAYLOAD_BYTES_MAX,
    TX_SIGN_DOMAIN,
    TX_VERSION,
    U16_MAX,
    U64_MAX,
)
from .encoding import Writer
from .errors import DecodeError, InvalidInput, TxTooLarge
from .hashing import digest
from .kernels import build_txs, check_wire, digest_many
from .keys import KeyPair, verify_signature

_ALLOWED_CHAIN_ID_BYTES = frozenset(CHAIN_ID_ALPHABET)
_BYTES_LIKE = (bytes, bytearray, memoryview)
# Body fields after the chain id: tx_type, sender, nonce, fee, expiry_height, P.
_FIXED = struct.Struct(">H32sQQQI")
assert 2 + _FIXED.size == TX_BODY_FIXED_BYTES


def check_chain_id(chain_id: str) -> bytes:
    """The chain id as ASCII bytes, or InvalidInput if it breaks the chain id rule."""
    if not isinstance(chain_id, str):
        raise InvalidInput(f"a chain id is text, got {type(chain_id).__name__}")
    raw = chain_id.encode("ascii", errors="replace")  # non-ASCII -> '?', rejected below
    if not CHAIN_ID_BYTES_MIN <= len(raw) <= CHAIN_ID_BYTES_MAX:
        raise InvalidInput(
            f"chain id must be {CHAIN_ID_BYTES_MIN}..{CHAIN_ID_BYTES_MAX} bytes, got {len(raw)}"
        )
    if not _ALLOWED_CHAIN_ID_BYTES.issuperset(raw):
        raise InvalidInput(f"chain id {chain_id!r} may only use a-z, 0-9 and '-'")
    return raw


def _check_bytes(name: str, value: object) -> bytes:
    if not isinstance(value, _BYTES_LIKE):
        raise InvalidInput(f"{name} must be bytes, got {type(value).__name__}")
    return bytes(value)


def _check_uint(name: str, value: object, limit: int) -> None:
    if type(value) is not int or not 0 <= value <= limit:
        raise InvalidInput(f"{name} must be an integer in [0, {limit}], got {value!r}")


def encode_body(
    chain_id: str,
    tx_type: int,
    sender: bytes,
    nonce: int,
    fee: int,
    expiry_height: int,
    payload: bytes,
) -> bytes:
    """The canonical body (what the tx id hashes); InvalidInput for any bad field."""
    raw_chain_id = check_chain_id(chain_id)
    _check_uint("tx type", tx_type, U16_MAX)
    sender = _check_bytes("sender", sender)
    if len(sender) != PUBLIC_KEY_BYTES:
        raise InvalidInput(f"sender public key must be {PUBLIC_KEY_BYTES} bytes, got {len(sender)}")
    for name, value in (("nonce", nonce), ("fee", fee), ("expiry height", expiry_height)):
        _check_uint(name, value, U64_MAX)
    payload = _check_bytes("payload", payload)
    if len(payload) > TX_PAYLOAD_BYTES_MAX:
        raise InvalidInput(f"payload is {len(payload)} bytes, limit {TX_PAYLOAD_BYTES_MAX}")
    writer = Writer().u8(TX_VERSION).sized(raw_chain_id, 1, CHAIN_ID_BYTES_MAX)
    writer.u16(tx_type).fixed(sender, PUBLIC_KEY_BYTES)
    writer.u64(nonce).u64(fee).u64(expiry_height)
    body = writer.sized(payload, 4, TX_PAYLOAD_BYTES_MAX).getvalue()
    assert len(body) <= TX_BODY_BYTES_MAX
    return body


def tx_id_of_body(body: bytes) -> bytes:
    """A tx id: plain BLAKE3-256 of the body (the signature is not part of it)."""
    return digest(body)


def sign_bytes(chain_id: str, tx_id: bytes) -> bytes:
    """What Ed25519 signs: domain tag, u8 chain id length, chain id, tx id."""
    raw_chain_id = check_chain_id(chain_id)
    tx_id = _check_bytes("tx id", tx_id)
    if len(tx_id) != HASH_BYTES:
        raise InvalidInput(f"a tx id is {HASH_BYTES} bytes, got {len(tx_id)}")
    return TX_SIGN_DOMAIN + bytes([len(raw_chain_id)]) + raw_chain_id + tx_id


@dataclass(frozen=True, slots=True)
class Tx:
    """A signed transaction (version TX_VERSION); ValueError (InvalidInput) if out of range."""

    chain_id: str
    tx_type: int
    sender: bytes
    nonce: int
    fee: int
    expiry_height: int
    payload: bytes
    signature: bytes
    _body: bytes = field(init=False, repr=False, compare=False)
    _tx_id: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("sender", "payload", "signature"):
            value = getattr(self, name)
            if type(value) is not bytes:  # immutable, so a Tx is hashable
                raise InvalidInput(f"tx {name} must be bytes, got {type(value).__name__}")
        if len(self.signature) != SIGNATURE_BYTES:
            raise InvalidInput(f"signature must be {SIGNATURE_BYTES} bytes")
        body = encode_body(  # validates every other field
            self.chain_id, self.tx_type, self.sender, self.nonce, self.fee,
            self.expiry_height, self.payload,
        )
        object.__setattr__(self, "_body", body)
        object.__setattr__(self, "_tx_id", tx_id_of_body(body))

    @property
    def body(self) -> bytes:
        """The canonical body bytes."""
        return self._body

    @property
    def tx_id(self) -> bytes:
        """BLAKE3-256 of the body."""
        return self._tx_id

    @property
    def sign_bytes(self) -> bytes:
        """The message the signature is over."""
        return sign_bytes(self.chain_id, self._tx_id)

    def encode(self) -> bytes:
        """The wire form: body || signature."""
        return self._body + self.signature

    def verify_signature(self) -> bool:
        """The ZIP 215 verdict on the signature (False, never an exception)."""
        return verify_signature(self.sender, self.sign_bytes, self.signature)


def sign_tx(
    keypair: KeyPair,
    chain_id: str,
    tx_type: int,
    nonce: int,
    fee: int,
    expiry_height: int,
    payload: bytes = b"",
) -> Tx:
    """A transaction from `keypair`, signed for `chain_id`."""
    body = encode_body(chain_id, tx_type, keypair.public_key, nonce, fee, expiry_height, payload)
    signature = keypair.sign(sign_bytes(chain_id, tx_id_of_body(body)))
    return _tx_from_parts(chain_id, tx_type, keypair.public_key, nonce, fee, expiry_height,
                          bytes(payload), signature, body)


# Slot setters of the frozen Tx, for building one from fields already checked.
_SETTERS = tuple(getattr(Tx, name).__set__ for name in (
    "chain_id", "tx_type", "sender", "nonce", "fee", "expiry_height", "payload", "signature",
    "_body", "_tx_id"))
_SET_TX_ID = _SETTERS[-1]


def _tx_from_parts(chain_id: str, tx_type: int, sender: bytes, nonce: int, fee: int,
                   expiry_height: int, payload: bytes, signature: bytes, body: bytes,
                   tx_id: bytes | None = None) -> Tx:
    """A Tx from fields already checked (by a strict decode or `encode_body`) and their body.

    Skips `__post_init__`, which would re-encode the body: decoding is on
    every block's path. `tx_id` None: hashed here; decoders of many txs
    pass b"" and set the ids from one batch hash (`decode_txs`).
    """
    tx = object.__new__(Tx)
    (set_chain_id, set_type, set_sender, set_nonce, set_fee, set_expiry, set_payload,
     set_signature, set_body, set_id) = _SETTERS
    set_chain_id(tx, chain_id)
    set_type(tx, tx_type)
    set_sender(tx, sender)
    set_nonce(tx, nonce)
    set_fee(tx, fee)
    set_expiry(tx, expiry_height)
    set_payload(tx, payload)
    set_signature(tx, signature)
    set_body(tx, body)
    set_id(tx, tx_id_of_body(body) if tx_id is None else tx_id)
    return tx


def decode_tx(data: bytes | bytearray | memoryview) -> Tx:
    """Strictly decode a wire tx: TxTooLarge first, then DecodeError for any other fault."""
    return _decode(data, None)


def decode_txs(wire_txs: Iterable[bytes | bytearray | memoryview]) -> list[Tx]:
    """Strictly decode many wire txs, hashing their ids in one batch.

    The same txs and errors as `decode_tx` on each in turn, the message of
    the first bad one prefixed with "tx <index>: ".
    """
    items = list(wire_txs)
    fast = _decode_packed(items)
    if fast is not None:
        return fast
    txs = []
    for index, data in enumerate(items):
        try:
            txs.append(_decode(data, b""))
        except DecodeError as error:  # same class, with the tx's place
            raise type(error)(f"tx {index}: {error}") from error
    _set_tx_ids(txs)
    return txs


def decode_packed(data: bytes, offsets: list[int]) -> list[Tx] | None:
    """The txs packed in `data` (tx i is data[offsets[i]:offsets[i + 1]]) when every one
    decodes, None if any does not (decode it with `decode_tx` for its error).

    One kernel call checks every tx's form and hashes the ids, another builds
    the Tx objects (core/txwire.py).
    """
    codes, ids = check_wire(data, offsets)
    if any(codes):
        return None
    return build_txs(Tx, data, offsets, ids)


def _decode_packed(items: list[bytes | bytearray | memoryview]) -> list[Tx] | None:
    """`decode_packed` of `items` when they are all bytes, else None."""
    if not all(item.__class__ is bytes for item in items):
        return None
    return decode_packed(*pack_txs(items))  # type: ignore[arg-type]


def decode_each(wire_txs: Iterable[bytes | bytearray | memoryview]) -> list[Tx | DecodeError]:
    """Strictly decode each wire tx on its own: the Tx, or the DecodeError (TxTooLarge
    included) `decode_tx` would raise for it; the ids are hashed in one batch."""
    items = list(wire_txs)
    fast = _decode_packed(items)
    if fast is not None:
        return fast  # type: ignore[return-value]
    results: list[Tx | DecodeError] = []
    for data in items:
        try:
            results.append(_decode(data, b""))
        except DecodeError as error:
            results.append(error)
    _set_tx_ids([item for item in results if isinstance(item, Tx)])
    return results


def _set_tx_ids(txs: Sequence[Tx]) -> None:
    """Give txs decoded without an id (`_decode(data, b"")`) their ids, in one batch."""
    if not txs:
        return
    data, offsets = pack_txs([tx._body for tx in txs])
    ids = digest_many(data, offsets)
    for tx, start in zip(txs, range(0, len(ids), HASH_BYTES), strict=True):
        _SET_TX_ID(tx, ids[start : start + HASH_BYTES])


def _decode(data: bytes | bytearray | memoryview, tx_id: bytes | None) -> Tx:
    """`decode_tx`; with `tx_id` b"" the id is left for `_set_tx_ids`."""
    if not isinstance(data, _BYTES_LIKE):
        raise DecodeError(f"tx: expected bytes, got {type(data).__name__}")
    size = data.nbytes if isinstance(data, memoryview) else len(data)
    if size > TX_BYTES_MAX:
        raise TxTooLarge(f"tx is {size} bytes, limit {TX_BYTES_MAX}")
    data = bytes(data)
    if size < 2:
        raise DecodeError(f"tx: truncated: {size} bytes")
    if data[0] != TX_VERSION:
        raise DecodeError(f"tx: unsupported version {data[0]}, expected {TX_VERSION}")
    chain_id_bytes = data[1]
    if not CHAIN_ID_BYTES_MIN <= chain_id_bytes <= CHAIN_ID_BYTES_MAX:
        raise DecodeError(
            f"tx: chain id length {chain_id_bytes} is outside "
            f"{CHAIN_ID_BYTES_MIN}..{CHAIN_ID_BYTES_MAX}"
        )
    payload_start = 2 + chain_id_bytes + _FIXED.size
    if size < payload_start + SIGNATURE_BYTES:
        raise DecodeError(f"tx: truncated: {size} bytes, need at least "
                          f"{payload_start + SIGNATURE_BYTES} for chain id length "
                          f"{chain_id_bytes}")
    raw_chain_id = data[2 : 2 + chain_id_bytes]
    if not _ALLOWED_CHAIN_ID_BYTES.issuperset(raw_chain_id):
        raise DecodeError("tx: chain id has a byte outside a-z, 0-9, '-'")
    tx_type, sender, nonce, fee, expiry_height, payload_bytes = _FIXED.unpack_from(
        data, 2 + chain_id_bytes
    )
    if payload_bytes > TX_PAYLOAD_BYTES_MAX:
        raise DecodeError(f"tx: payload is {payload_bytes} bytes, limit {TX_PAYLOAD_BYTES_MAX}")
    body_end = payload_start + payload_bytes
    if size != body_end + SIGNATURE_BYTES:
        raise DecodeError(
            f"tx: {size} bytes, but its chain id and payload lengths make "
            f"{body_end + SIGNATURE_BYTES}"
        )
    return _tx_from_parts(
        raw_chain_id.decode("ascii"), tx_type, sender, nonce, fee, expiry_height,
        data[payload_start:body_end], data[body_end:], data[:body_end], tx_id,
    )


def pack_txs(txs: Sequence[bytes]) -> tuple[bytes, list[int]]:
    """Encoded txs as one packed buffer and n + 1 offsets, for the batch validators."""
    offsets = [0]
    for tx in txs:
        offsets.append(offsets[-1] + len(tx))
    return b"".join(txs), offsets
