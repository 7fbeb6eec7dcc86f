"""Blocks: header, transactions and the optional commit certificate, canonically encoded.

The block hash covers the header only. The commit certificate (validator
signatures over that hash, filled in by the consensus issues) travels with
the block outside the header, since it cannot sign itself. Normative layout
in docs/formats.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .constants import (
    BLOCK_BYTES_MAX,
    BLOCK_TXS_MAX,
    BLOCK_VERSION,
    CHAIN_ID_BYTES_MAX,
    COMMIT_SIGNATURES_MAX,
    COMMIT_VERSION,
    HASH_BYTES,
    PUBLIC_KEY_BYTES,
    SIGNATURE_BYTES,
    TX_BYTES_MAX,
    U16_MAX,
)
from .encoding import Reader, Writer
from .errors import BlockTooLarge, DecodeError, InvalidBlock, InvalidInput
from .hashing import BLOCK_HASH_KEY, digest
from .tx import Tx, check_chain_id, decode_tx


def _check_hash(name: str, value: bytes, length: int = HASH_BYTES) -> None:
    if not isinstance(value, bytes) or len(value) != length:
        raise InvalidInput(f"{name} must be {length} bytes")


@dataclass(frozen=True, slots=True)
class Header:
    """What a block commits to; its keyed BLAKE3 is the block hash."""

    chain_id: str
    height: int
    prev_hash: bytes
    timestamp_ms: int
    proposer: bytes
    tx_count: int
    tx_root: bytes
    state_root: bytes
    validator_set_hash: bytes
    round: int = 0

    def __post_init__(self) -> None:
        check_chain_id(self.chain_id)
        for name in ("prev_hash", "tx_root", "state_root", "validator_set_hash"):
            _check_hash(name, getattr(self, name))
        _check_hash("proposer", self.proposer, PUBLIC_KEY_BYTES)
        if not 0 <= self.tx_count <= BLOCK_TXS_MAX:
            raise InvalidInput(f"tx count {self.tx_count} is over the limit of {BLOCK_TXS_MAX}")
        self.encode()  # range-checks every integer

    def encode(self) -> bytes:
        """Canonical header bytes (version byte first)."""
        writer = Writer().u8(BLOCK_VERSION)
        writer.sized(self.chain_id.encode("ascii"), 1, CHAIN_ID_BYTES_MAX)
        writer.u64(self.height).fixed(self.prev_hash, HASH_BYTES).u64(self.timestamp_ms)
        writer.fixed(self.proposer, PUBLIC_KEY_BYTES).u32(self.tx_count)
        writer.fixed(self.tx_root, HASH_BYTES).fixed(self.state_root, HASH_BYTES)
        writer.fixed(self.validator_set_hash, HASH_BYTES).u32(self.round)
        return writer.getvalue()

    def hash(self) -> bytes:
        """The block hash: keyed BLAKE3 (BLOCK_HASH_KEY) of the encoded header."""
        return block_hash(self)


def block_hash(header: Header) -> bytes:
    """Keyed BLAKE3 of the canonical header bytes."""
    return digest(header.encode(), BLOCK_HASH_KEY)


def _read_header(reader: Reader) -> Header:
    version = reader.u8("header version")
    if version != BLOCK_VERSION:
        raise DecodeError(f"block: unsupported header version {version}")
    chain_id = reader.sized(1, CHAIN_ID_BYTES_MAX, "chain id")
    height = reader.u64("height")
    prev_hash = reader.fixed(HASH_BYTES, "prev hash")
    timestamp_ms = reader.u64("timestamp")
    proposer = reader.fixed(PUBLIC_KEY_BYTES, "proposer")
    tx_count = reader.u32("tx count")
    tx_root = reader.fixed(HASH_BYTES, "tx root")
    state_root = reader.fixed(HASH_BYTES, "state root")
    validator_set_hash = reader.fixed(HASH_BYTES, "validator set hash")
    round_number = reader.u32("round")
    if tx_count > BLOCK_TXS_MAX:
        raise BlockTooLarge(f"block: {tx_count} txs, limit {BLOCK_TXS_MAX}")
    try:
        return Header(chain_id.decode("ascii"), height, prev_hash, timestamp_ms, proposer,
                      tx_count, tx_root, state_root, validator_set_hash, round_number)
    except (InvalidInput, UnicodeDecodeError) as error:
        raise DecodeError(f"block header: {error}") from error


def decode_header(data: bytes) -> Header:
    """Strictly decode a header on its own."""
    reader = Reader(data, "header")
    header = _read_header(reader)
    reader.finish()
    return header


@dataclass(frozen=True, slots=True)
class CommitSig:
    """One validator's signature over a block hash, by its index in the validator set."""

    validator_index: int
    signature: bytes


@dataclass(frozen=True, slots=True)
class CommitCert:
    """A certificate that validators signed block `block_hash` at `height` in `round`."""

    height: int
    round: int
    block_hash: bytes
    signatures: tuple[CommitSig, ...] = ()

    def __post_init__(self) -> None:
        _check_hash("block hash", self.block_hash)
        if len(self.signatures) > COMMIT_SIGNATURES_MAX:
            raise InvalidInput(f"more than {COMMIT_SIGNATURES_MAX} commit signatures")
        previous = -1
        for sig in self.signatures:
            if not previous < sig.validator_index <= U16_MAX:
                raise InvalidInput("commit validator indexes must be strictly increasing u16")
            _check_hash("commit signature", sig.signature, SIGNATURE_BYTES)
            previous = sig.validator_index
        self.encode()

    def encode(self) -> bytes:
        """Canonical certificate bytes."""
        writer = Writer().u8(COMMIT_VERSION).u64(self.height).u32(self.round)
        writer.fixed(self.block_hash, HASH_BYTES).u16(len(self.signatures))
        for sig in self.signatures:
            writer.u16(sig.validator_index).fixed(sig.signature, SIGNATURE_BYTES)
        return writer.getvalue()


def _read_commit(reader: Reader) -> CommitCert:
    version = reader.u8("commit version")
    if version != COMMIT_VERSION:
        raise DecodeError(f"commit: unsupported version {version}")
    height = reader.u64("commit height")
    round_number = reader.u32("commit round")
    hash_value = reader.fixed(HASH_BYTES, "commit block hash")
    count = reader.u16("commit signature count")
    if count > COMMIT_SIGNATURES_MAX:
        raise DecodeError(f"commit: {count} signatures, limit {COMMIT_SIGNATURES_MAX}")
    signatures = tuple(
        CommitSig(reader.u16("validator index"), reader.fixed(SIGNATURE_BYTES, "signature"))
        for _ in range(count)
    )
    try:
        return CommitCert(height, round_number, hash_value, signatures)
    except InvalidInput as error:
        raise DecodeError(f"commit: {error}") from error


def decode_commit(data: bytes) -> CommitCert:
    """Strictly decode a commit certificate."""
    reader = Reader(data, "commit")
    commit = _read_commit(reader)
    reader.finish()
    return commit


def compute_tx_root(txs: Sequence[Tx]) -> bytes:
    """Merkle root (docs/merkle.md) of the tx ids, in block order."""
    from . import accel  # deferred: accel imports the verifier, which imports tx

    return accel.merkle_root(b"".join(tx.tx_id for tx in txs))


@dataclass(frozen=True, slots=True)
class Block:
    """A header, its transactions, and optionally the certificate that commits it."""

    header: Header
    txs: tuple[Tx, ...] = field(default=())
    commit: CommitCert | None = None

    def __post_init__(self) -> None:
        if len(self.txs) != self.header.tx_count:
            raise InvalidInput(
                f"header says {self.header.tx_count} txs, block has {len(self.txs)}"
            )

    def hash(self) -> bytes:
        """The block hash (of the header)."""
        return self.header.hash()

    def encode(self) -> bytes:
        """Canonical block bytes: header, txs (u16 length each), commit flag and cert."""
        writer = Writer().raw(self.header.encode())
        for tx in self.txs:
            writer.sized(tx.encode(), 2, TX_BYTES_MAX)
        if self.commit is None:
            writer.u8(0)
        else:
            writer.u8(1).raw(self.commit.encode())
        encoded = writer.getvalue()
        if len(encoded) > BLOCK_BYTES_MAX:
            raise BlockTooLarge(f"block is {len(encoded)} bytes, limit {BLOCK_BYTES_MAX}")
        return encoded

    def check_tx_root(self) -> None:
        """InvalidBlock unless the header's tx root is the Merkle root of the txs."""
        if compute_tx_root(self.txs) != self.header.tx_root:
            raise InvalidBlock(f"block {self.header.height}: tx root does not match its txs")


def decode_block(data: bytes | bytearray | memoryview) -> Block:
    """Strictly decode a block; every tx is decoded too (BlockTooLarge, DecodeError)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError(f"block: expected bytes, got {type(data).__name__}")
    if len(data) > BLOCK_BYTES_MAX:
        raise BlockTooLarge(f"block is {len(data)} bytes, limit {BLOCK_BYTES_MAX}")
    reader = Reader(data, "block")
    header = _read_header(reader)
    txs = tuple(decode_tx(reader.sized(2, TX_BYTES_MAX, "tx")) for _ in range(header.tx_count))
    flag = reader.u8("commit flag")
    if flag not in (0, 1):
        raise DecodeError(f"block: commit flag must be 0 or 1, got {flag}")
    commit = _read_commit(reader) if flag else None
    reader.finish()
    return Block(header, txs, commit)


def make_block(
    chain_id: str,
    height: int,
    prev_hash: bytes,
    timestamp_ms: int,
    proposer: bytes,
    txs: Sequence[Tx],
    state_root: bytes,
    validator_set_hash: bytes,
    round: int = 0,
) -> Block:
    """A block whose header's tx count and tx root are computed from `txs`."""
    header = Header(chain_id, height, prev_hash, timestamp_ms, proposer, len(txs),
                    compute_tx_root(txs), state_root, validator_set_hash, round)
    return Block(header, tuple(txs))
