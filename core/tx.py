"""Transactions: the v1 wire format, tx id, sign bytes, signing and strict decoding.

Normative layout in docs/formats.md; `ext/_verify.pyx` parses the same bytes
in C and the tests hold the two to identical verdicts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .constants import (
    CHAIN_ID_ALPHABET,
    CHAIN_ID_BYTES_MAX,
    CHAIN_ID_BYTES_MIN,
    PUBLIC_KEY_BYTES,
    SIGNATURE_BYTES,
    TX_BYTES_MAX,
    TX_PAYLOAD_BYTES_MAX,
    TX_SIGN_DOMAIN,
    TX_VERSION,
    U16_MAX,
    U64_MAX,
)
from .encoding import Reader, Writer
from .errors import DecodeError, InvalidInput, TxTooLarge
from .hashing import digest
from .keys import KeyPair, verify_signature

_ALLOWED_CHAIN_ID_BYTES = frozenset(CHAIN_ID_ALPHABET)


def check_chain_id(chain_id: str) -> bytes:
    """The chain id as bytes, or InvalidInput if it breaks the chain id rule."""
    if not isinstance(chain_id, str):
        raise InvalidInput("a chain id is text")
    raw = chain_id.encode("ascii", errors="replace")
    if not CHAIN_ID_BYTES_MIN <= len(raw) <= CHAIN_ID_BYTES_MAX:
        raise InvalidInput(
            f"chain id must be {CHAIN_ID_BYTES_MIN}..{CHAIN_ID_BYTES_MAX} bytes, got {len(raw)}"
        )
    if not _ALLOWED_CHAIN_ID_BYTES.issuperset(raw):
        raise InvalidInput(f"chain id {chain_id!r} may only use a-z, 0-9 and '-'")
    return raw


def _check_u64(name: str, value: int) -> None:
    if type(value) is not int or not 0 <= value <= U64_MAX:
        raise InvalidInput(f"{name} must be an integer in [0, 2^64), got {value!r}")


def encode_body(
    chain_id: str,
    tx_type: int,
    sender: bytes,
    nonce: int,
    fee: int,
    expiry_height: int,
    payload: bytes,
) -> bytes:
    """The canonical body (everything the signature covers, via the tx id)."""
    raw_chain_id = check_chain_id(chain_id)
    if type(tx_type) is not int or not 0 <= tx_type <= U16_MAX:
        raise InvalidInput(f"tx type must be an integer in [0, 65535], got {tx_type!r}")
    if len(sender) != PUBLIC_KEY_BYTES:
        raise InvalidInput(f"sender public key must be {PUBLIC_KEY_BYTES} bytes")
    for name, value in (("nonce", nonce), ("fee", fee), ("expiry height", expiry_height)):
        _check_u64(name, value)
    if len(payload) > TX_PAYLOAD_BYTES_MAX:
        raise InvalidInput(f"payload is {len(payload)} bytes, limit {TX_PAYLOAD_BYTES_MAX}")
    writer = Writer().u8(TX_VERSION).sized(raw_chain_id, 1, CHAIN_ID_BYTES_MAX)
    writer.u16(tx_type).fixed(bytes(sender), PUBLIC_KEY_BYTES)
    writer.u64(nonce).u64(fee).u64(expiry_height)
    return writer.sized(bytes(payload), 4, TX_PAYLOAD_BYTES_MAX).getvalue()


def tx_id_of_body(body: bytes) -> bytes:
    """A tx id: plain BLAKE3-256 of the body (the signature is not part of it)."""
    return digest(body)


def sign_bytes(chain_id: str, tx_id: bytes) -> bytes:
    """What Ed25519 signs: domain tag, chain id, tx id (no cross-chain replay)."""
    raw_chain_id = check_chain_id(chain_id)
    return TX_SIGN_DOMAIN + bytes([len(raw_chain_id)]) + raw_chain_id + bytes(tx_id)


@dataclass(frozen=True, slots=True)
class Tx:
    """A signed transaction (version TX_VERSION)."""

    chain_id: str
    tx_type: int
    sender: bytes
    nonce: int
    fee: int
    expiry_height: int
    payload: bytes
    signature: bytes

    def __post_init__(self) -> None:
        if len(self.signature) != SIGNATURE_BYTES:
            raise InvalidInput(f"signature must be {SIGNATURE_BYTES} bytes")
        encode_body(  # validates every other field
            self.chain_id, self.tx_type, self.sender, self.nonce, self.fee,
            self.expiry_height, self.payload,
        )

    @property
    def body(self) -> bytes:
        """The canonical body bytes."""
        return encode_body(
            self.chain_id, self.tx_type, self.sender, self.nonce, self.fee,
            self.expiry_height, self.payload,
        )

    @property
    def tx_id(self) -> bytes:
        """BLAKE3-256 of the body."""
        return tx_id_of_body(self.body)

    @property
    def sign_bytes(self) -> bytes:
        """The message the signature is over."""
        return sign_bytes(self.chain_id, self.tx_id)

    def encode(self) -> bytes:
        """The wire form: body || signature."""
        return self.body + self.signature

    def verify_signature(self) -> bool:
        """libsodium's strict verdict on the signature."""
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
    return Tx(chain_id, tx_type, keypair.public_key, nonce, fee, expiry_height, payload, signature)


def decode_tx(data: bytes | bytearray | memoryview) -> Tx:
    """Strictly decode a wire tx: TxTooLarge first, then DecodeError for any other fault."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError(f"tx: expected bytes, got {type(data).__name__}")
    if len(data) > TX_BYTES_MAX:
        raise TxTooLarge(f"tx is {len(data)} bytes, limit {TX_BYTES_MAX}")
    reader = Reader(data, "tx")
    version = reader.u8("version")
    if version != TX_VERSION:
        raise DecodeError(f"tx: unsupported version {version}")
    raw_chain_id = reader.sized(1, CHAIN_ID_BYTES_MAX, "chain id")
    if len(raw_chain_id) < CHAIN_ID_BYTES_MIN or not _ALLOWED_CHAIN_ID_BYTES.issuperset(
        raw_chain_id
    ):
        raise DecodeError("tx: chain id is empty or has a byte outside a-z, 0-9, '-'")
    tx_type = reader.u16("tx type")
    sender = reader.fixed(PUBLIC_KEY_BYTES, "sender")
    nonce = reader.u64("nonce")
    fee = reader.u64("fee")
    expiry_height = reader.u64("expiry height")
    payload = reader.sized(4, TX_PAYLOAD_BYTES_MAX, "payload")
    signature = reader.fixed(SIGNATURE_BYTES, "signature")
    reader.finish()
    return Tx(raw_chain_id.decode("ascii"), tx_type, sender, nonce, fee, expiry_height,
              payload, signature)


def pack_txs(txs: Sequence[bytes]) -> tuple[bytes, list[int]]:
    """Encoded txs as one packed buffer and n + 1 offsets, for the batch validators."""
    offsets = [0]
    for tx in txs:
        offsets.append(offsets[-1] + len(tx))
    return b"".join(txs), offsets
