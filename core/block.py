"""Blocks: header, transactions and the optional commit certificate, canonically encoded.

The block hash covers the header only. The commit certificate (validator
signatures over that hash, filled in by the consensus issues) travels with
the block outside the header, since it cannot sign itself. Normative layout
in docs/formats.md. Every type is validated when built and every decoder is
strict: one encoding per value, limits checked before anything is allocated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .constants import (
    BLOCK_BYTES_MAX,
    BLOCK_TXS_MAX,
    BLOCK_VERSION,
    CHAIN_ID_BYTES_MAX,
    COMMIT_SIGN_DOMAIN,
    COMMIT_SIGNATURES_MAX,
    COMMIT_VERSION,
    HASH_BYTES,
    PUBLIC_KEY_BYTES,
    SIGNATURE_BYTES,
    TX_BYTES_MAX,
    TX_BYTES_MIN,
    U16_MAX,
    U32_MAX,
    U64_MAX,
)
from .encoding import Reader, Writer
from .errors import BlockTooLarge, DecodeError, InvalidBlock, InvalidInput, TxTooLarge
from .hashing import BLOCK_HASH_KEY, digest
from .kernels import merkle_root, unframe_txs
from .tx import Tx, check_chain_id, decode_packed, decode_txs, pack_txs

# Smallest encoding of one tx inside a block: u16 length + the smallest tx.
_BLOCK_TX_BYTES_MIN = 2 + TX_BYTES_MIN


def _check_fixed(name: str, value: object, length: int = HASH_BYTES) -> None:
    if type(value) is not bytes or len(value) != length:
        raise InvalidInput(f"{name} must be {length} bytes")


def _check_uint(name: str, value: object, limit: int) -> None:
    if type(value) is not int or not 0 <= value <= limit:
        raise InvalidInput(f"{name} must be an integer in [0, {limit}], got {value!r}")


def _byte_size(data: bytes | bytearray | memoryview) -> int:
    return data.nbytes if isinstance(data, memoryview) else len(data)


def _check_input(data: object, what: str) -> None:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError(f"{what}: expected bytes, got {type(data).__name__}")


# --- header ---------------------------------------------------------------------


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
    _encoded: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        raw_chain_id = check_chain_id(self.chain_id)
        _check_uint("height", self.height, U64_MAX)
        _check_uint("timestamp_ms", self.timestamp_ms, U64_MAX)
        _check_uint("tx count", self.tx_count, BLOCK_TXS_MAX)
        _check_uint("round", self.round, U32_MAX)
        for name in ("prev_hash", "tx_root", "state_root", "validator_set_hash"):
            _check_fixed(name, getattr(self, name))
        _check_fixed("proposer", self.proposer, PUBLIC_KEY_BYTES)
        writer = Writer().u8(BLOCK_VERSION).sized(raw_chain_id, 1, CHAIN_ID_BYTES_MAX)
        writer.u64(self.height).fixed(self.prev_hash, HASH_BYTES).u64(self.timestamp_ms)
        writer.fixed(self.proposer, PUBLIC_KEY_BYTES).u32(self.tx_count)
        writer.fixed(self.tx_root, HASH_BYTES).fixed(self.state_root, HASH_BYTES)
        writer.fixed(self.validator_set_hash, HASH_BYTES).u32(self.round)
        object.__setattr__(self, "_encoded", writer.getvalue())

    def encode(self) -> bytes:
        """Canonical header bytes (version byte first)."""
        return self._encoded

    def hash(self) -> bytes:
        """The block hash: keyed BLAKE3 (BLOCK_HASH_KEY) of the encoded header."""
        return block_hash(self)


def block_hash(header: Header) -> bytes:
    """Keyed BLAKE3 (BLOCK_HASH_KEY) of the canonical header bytes."""
    return digest(header.encode(), BLOCK_HASH_KEY)


def _read_header(reader: Reader) -> Header:
    version = reader.u8("header version")
    if version != BLOCK_VERSION:
        raise DecodeError(f"block: unsupported header version {version}, expected {BLOCK_VERSION}")
    chain_id = reader.sized(1, CHAIN_ID_BYTES_MAX, "chain id")
    height = reader.u64("height")
    prev_hash = reader.fixed(HASH_BYTES, "prev hash")
    timestamp_ms = reader.u64("timestamp")
    proposer = reader.fixed(PUBLIC_KEY_BYTES, "proposer")
    tx_count = reader.u32("tx count")
    if tx_count > BLOCK_TXS_MAX:
        raise BlockTooLarge(f"block: header tx count {tx_count}, limit {BLOCK_TXS_MAX}")
    tx_root = reader.fixed(HASH_BYTES, "tx root")
    state_root = reader.fixed(HASH_BYTES, "state root")
    validator_set_hash = reader.fixed(HASH_BYTES, "validator set hash")
    round_number = reader.u32("round")
    try:
        return Header(chain_id.decode("ascii"), height, prev_hash, timestamp_ms, proposer,
                      tx_count, tx_root, state_root, validator_set_hash, round_number)
    except (InvalidInput, UnicodeDecodeError) as error:  # only the chain id can be bad
        raise DecodeError(f"block header: {error}") from error


def decode_header(data: bytes | bytearray | memoryview) -> Header:
    """Strictly decode a header on its own (DecodeError)."""
    _check_input(data, "header")
    reader = Reader(data, "header")
    header = _read_header(reader)
    reader.finish()
    return header


# --- commit certificate ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CommitSig:
    """One validator's signature over a block hash, by its index in the validator set."""

    validator_index: int
    signature: bytes

    def __post_init__(self) -> None:
        _check_uint("validator index", self.validator_index, U16_MAX)
        _check_fixed("commit signature", self.signature, SIGNATURE_BYTES)


@dataclass(frozen=True, slots=True)
class CommitCert:
    """A certificate that validators signed block `block_hash` at `height` in `round`.

    Signatures are in strictly increasing validator index order (one
    encoding per set of signers, no validator counted twice).
    """

    height: int
    round: int
    block_hash: bytes
    signatures: tuple[CommitSig, ...] = ()

    def __post_init__(self) -> None:
        _check_uint("commit height", self.height, U64_MAX)
        _check_uint("commit round", self.round, U32_MAX)
        _check_fixed("block hash", self.block_hash)
        signatures = tuple(self.signatures)
        object.__setattr__(self, "signatures", signatures)
        if len(signatures) > COMMIT_SIGNATURES_MAX:
            raise InvalidInput(
                f"{len(signatures)} commit signatures, limit {COMMIT_SIGNATURES_MAX}"
            )
        previous = -1
        for sig in signatures:
            if not isinstance(sig, CommitSig):
                raise InvalidInput(f"commit signatures must be CommitSig, got {type(sig).__name__}")
            if sig.validator_index <= previous:
                raise InvalidInput(
                    f"validator index {sig.validator_index} after {previous}: "
                    "indexes must be strictly increasing"
                )
            previous = sig.validator_index

    def encode(self) -> bytes:
        """Canonical certificate bytes (version byte first)."""
        writer = Writer().u8(COMMIT_VERSION).u64(self.height).u32(self.round)
        writer.fixed(self.block_hash, HASH_BYTES).u16(len(self.signatures))
        for sig in self.signatures:
            writer.u16(sig.validator_index).fixed(sig.signature, SIGNATURE_BYTES)
        return writer.getvalue()


def commit_sign_bytes(chain_id: str, height: int, round_number: int, block_hash: bytes) -> bytes:
    """What a validator signs to commit a block: COMMIT_SIGN_DOMAIN, u8 chain id length,
    chain id, height u64, round u32, block hash (docs/formats.md section 7)."""
    raw_chain_id = check_chain_id(chain_id)
    _check_uint("commit height", height, U64_MAX)
    _check_uint("commit round", round_number, U32_MAX)
    _check_fixed("block hash", block_hash)
    writer = Writer().raw(COMMIT_SIGN_DOMAIN).sized(raw_chain_id, 1, CHAIN_ID_BYTES_MAX)
    return writer.u64(height).u32(round_number).fixed(block_hash, HASH_BYTES).getvalue()


def _read_commit(reader: Reader) -> CommitCert:
    version = reader.u8("commit version")
    if version != COMMIT_VERSION:
        raise DecodeError(f"commit: unsupported version {version}, expected {COMMIT_VERSION}")
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
    except InvalidInput as error:  # unsorted or duplicate validator indexes
        raise DecodeError(f"commit: {error}") from error


def decode_commit(data: bytes | bytearray | memoryview) -> CommitCert:
    """Strictly decode a commit certificate (DecodeError)."""
    _check_input(data, "commit")
    reader = Reader(data, "commit")
    commit = _read_commit(reader)
    reader.finish()
    return commit


# --- block ------------------------------------------------------------------------


def compute_tx_root(txs: Sequence[Tx]) -> bytes:
    """Merkle root (docs/merkle.md) of the tx ids, in block order."""
    return merkle_root(b"".join(tx.tx_id for tx in txs))


@dataclass(frozen=True, slots=True)
class Block:
    """A header, its transactions, and optionally the certificate that commits it.

    The tx count must match the header, and a commit, when present, must be
    for this block (its height and header hash). The tx root is checked
    separately (`check_tx_root`), since it costs a Merkle tree.
    """

    header: Header
    txs: tuple[Tx, ...] = ()
    commit: CommitCert | None = None
    # The canonical bytes, kept by `decode_block` (strict, so they are what
    # `encode` would build) and by the first `encode`.
    _encoded: bytes | None = field(default=None, init=False, repr=False, compare=False)
    # The txs' wire bytes packed for the batch kernels (`wire_txs`), kept once made.
    _wire: tuple[bytes, list[int]] | None = field(
        default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.header, Header):
            raise InvalidInput(f"a block header is a Header, got {type(self.header).__name__}")
        txs = tuple(self.txs)
        object.__setattr__(self, "txs", txs)
        if len(txs) != self.header.tx_count:
            raise InvalidInput(f"header says {self.header.tx_count} txs, block has {len(txs)}")
        if not all(isinstance(tx, Tx) for tx in txs):
            raise InvalidInput("block txs must be Tx values")
        if self.commit is not None:
            if not isinstance(self.commit, CommitCert):
                raise InvalidInput(f"a commit is a CommitCert, got {type(self.commit).__name__}")
            if self.commit.height != self.header.height or self.commit.block_hash != self.hash():
                raise InvalidInput(
                    f"block {self.header.height}: its commit certifies another block "
                    f"(height {self.commit.height})"
                )

    def hash(self) -> bytes:
        """The block hash (of the header)."""
        return block_hash(self.header)

    def encode(self) -> bytes:
        """Canonical block bytes: header, u32 tx count, txs (u16 length each), commit.

        BlockTooLarge if the result would be over BLOCK_BYTES_MAX.
        """
        if self._encoded is not None:
            return self._encoded
        writer = Writer().raw(self.header.encode()).u32(len(self.txs))
        for tx in self.txs:
            writer.sized(tx.encode(), 2, TX_BYTES_MAX)
        if self.commit is None:
            writer.u8(0)
        else:
            writer.u8(1).raw(self.commit.encode())
        encoded = writer.getvalue()
        if len(encoded) > BLOCK_BYTES_MAX:
            raise BlockTooLarge(f"block is {len(encoded)} bytes, limit {BLOCK_BYTES_MAX}")
        object.__setattr__(self, "_encoded", encoded)
        return encoded

    def check_tx_root(self) -> None:
        """InvalidBlock unless the header's tx root is the Merkle root of the tx ids."""
        if compute_tx_root(self.txs) != self.header.tx_root:
            raise InvalidBlock(f"block {self.header.height}: tx root does not match its txs")


def decode_block(data: bytes | bytearray | memoryview) -> Block:
    """Strictly decode a block, every tx included (BlockTooLarge, TxTooLarge, DecodeError)."""
    _check_input(data, "block")
    size = _byte_size(data)
    if size > BLOCK_BYTES_MAX:
        raise BlockTooLarge(f"block is {size} bytes, limit {BLOCK_BYTES_MAX}")
    reader = Reader(data, "block")
    header = _read_header(reader)
    tx_count = reader.u32("tx count")
    if tx_count != header.tx_count:
        raise DecodeError(f"block: {tx_count} txs follow a header that says {header.tx_count}")
    if tx_count * _BLOCK_TX_BYTES_MIN + 1 > reader.remaining:  # + the commit flag
        raise DecodeError(f"block: {reader.remaining} bytes cannot hold {tx_count} txs")
    raw = bytes(data)
    # The fast path: every tx framed and well formed (one kernel call each to unframe,
    # check and build); any fault anywhere takes the tx-by-tx path, which raises it.
    end, wire, offsets = unframe_txs(raw, reader.position, tx_count)
    txs = None if end < 0 else decode_packed(wire, offsets)
    if txs is None:
        # Each length prefix is checked against TX_BYTES_MAX before its bytes are read.
        wire_txs = reader.u16_sized_many(tx_count, "tx", TX_BYTES_MAX, TxTooLarge)
    else:
        reader.skip_to(end)
    flag = reader.u8("commit flag")
    if flag not in (0, 1):
        raise DecodeError(f"block: commit flag must be 0 or 1, got {flag}")
    commit = _read_commit(reader) if flag else None
    reader.finish()
    if txs is None:
        try:
            txs = decode_txs(wire_txs)
        except DecodeError as error:  # same class, with the tx's place in the block
            raise type(error)(f"block: {error}") from error
    try:
        block = Block(header, txs, commit)
    except InvalidInput as error:  # a commit for another block
        raise DecodeError(f"block: {error}") from error
    object.__setattr__(block, "_encoded", raw)
    if end >= 0:
        object.__setattr__(block, "_wire", (wire, offsets))
    return block


def wire_txs(block: Block) -> tuple[bytes, list[int]]:
    """The block's txs in wire form, packed back to back, and their n + 1 offsets (as the
    batch kernels take them); kept on the block once made."""
    packed = block._wire
    if packed is None:
        packed = pack_txs([tx.encode() for tx in block.txs])
        object.__setattr__(block, "_wire", packed)
    return packed


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
    commit: CommitCert | None = None,
) -> Block:
    """A block whose header's tx count and tx root are computed from `txs`."""
    txs = tuple(txs)
    header = Header(chain_id, height, prev_hash, timestamp_ms, proposer, len(txs),
                    compute_tx_root(txs), state_root, validator_set_hash, round)
    return Block(header, txs, commit)
