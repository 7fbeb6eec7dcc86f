"""The ABCI 2.0 calls as plain values: what the `Application` takes and returns.

These mirror CometBFT v0.38's `abci/types.proto` request and response
messages, keeping only the fields chainmall uses, with our units: times are
integer milliseconds since the Unix epoch (header time, never a local clock),
hashes and keys are raw bytes, and validator addresses are CometBFT's
(the first 20 bytes of SHA-256 of the Ed25519 public key). Both engines build
these values: the in-process single-validator engine directly, and the ABCI
socket server (`core/abci/server.py`) from protobuf messages. Nothing here
knows which engine is in front.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol

from ..constants import PUBLIC_KEY_BYTES

VALIDATOR_ADDRESS_BYTES = 20


def validator_address(public_key: bytes) -> bytes:
    """CometBFT's address of an Ed25519 validator key: SHA-256(public key)[:20]."""
    if len(public_key) != PUBLIC_KEY_BYTES:
        raise ValueError(f"an Ed25519 public key is {PUBLIC_KEY_BYTES} bytes")
    return hashlib.sha256(public_key).digest()[:VALIDATOR_ADDRESS_BYTES]


@dataclass(frozen=True, slots=True)
class Event:
    """An ABCI event: a type and ordered (key, value) text attributes.

    Attributes marked for indexing by CometBFT are all of them; the RPC's
    subscriptions match on `type` and attribute values (e.g. an address).
    """

    type: str
    attributes: tuple[tuple[str, str], ...] = ()

    def attribute(self, key: str) -> str | None:
        """The first value of attribute `key`, None if absent."""
        for name, value in self.attributes:
            if name == key:
                return value
        return None


@dataclass(frozen=True, slots=True)
class ValidatorUpdate:
    """A validator's new voting power (0 removes it), by Ed25519 public key."""

    public_key: bytes
    power: int


class CheckTxKind(IntEnum):
    """ABCI CheckTxType: a tx seen for the first time, or re-checked after a commit."""

    NEW = 0
    RECHECK = 1


class MisbehaviorKind(IntEnum):
    """ABCI MisbehaviorType."""

    UNKNOWN = 0
    DUPLICATE_VOTE = 1
    LIGHT_CLIENT_ATTACK = 2


@dataclass(frozen=True, slots=True)
class Misbehavior:
    """Evidence the engine reports in FinalizeBlock (e.g. a validator that double-signed)."""

    kind: MisbehaviorKind
    validator_address: bytes
    validator_power: int
    height: int
    time_ms: int
    total_voting_power: int


@dataclass(frozen=True, slots=True)
class InfoResult:
    """ABCI Info: the last durably committed height and its app hash (0 and the genesis
    root before the first block)."""

    last_block_height: int
    last_block_app_hash: bytes
    version: str
    app_version: int


@dataclass(frozen=True, slots=True)
class InitChainRequest:
    """ABCI InitChain: the engine's genesis (chain id, time, validators, app state bytes)."""

    chain_id: str
    time_ms: int
    validators: tuple[ValidatorUpdate, ...] = ()
    app_state_bytes: bytes = b""
    initial_height: int = 1


@dataclass(frozen=True, slots=True)
class InitChainResult:
    """The app's validator set (empty: keep the engine's) and its genesis app hash."""

    validators: tuple[ValidatorUpdate, ...]
    app_hash: bytes


@dataclass(frozen=True, slots=True)
class CheckTxResult:
    """ABCI CheckTx: code 0 admits the tx. `priority` orders a full mempool (the fee);
    `sender` and `nonce` let a mempool keep one sender's txs in nonce order."""

    code: int
    log: str = ""
    priority: int = 0
    sender: bytes = b""
    nonce: int = 0
    tx_id: bytes = b""


@dataclass(frozen=True, slots=True)
class BlockRequest:
    """What PrepareProposal, ProcessProposal and FinalizeBlock carry about a block.

    `txs` are raw tx bytes in the proposed order. `hash` is the engine's block
    hash (empty in PrepareProposal and in the in-process engine).
    `max_tx_bytes` is PrepareProposal's budget (0: no budget given).
    """

    height: int
    time_ms: int
    txs: tuple[bytes, ...]
    proposer_address: bytes
    hash: bytes = b""
    misbehavior: tuple[Misbehavior, ...] = ()
    max_tx_bytes: int = 0


@dataclass(frozen=True, slots=True)
class ExecTxResult:
    """One tx's outcome in FinalizeBlock: code 0 is success, with its events."""

    code: int
    log: str = ""
    events: tuple[Event, ...] = ()
    tx_id: bytes = b""


class TxOutcome(Protocol):
    """What FinalizeBlock says of one tx: an `ExecTxResult`, or any object with the same
    fields (the application hands on the state machine's own results, one per tx, rather
    than copying each into an `ExecTxResult`)."""

    @property
    def code(self) -> int: ...

    @property
    def log(self) -> str: ...

    @property
    def events(self) -> tuple[Event, ...]: ...

    @property
    def tx_id(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class FinalizeBlockResult:
    """ABCI FinalizeBlock: per-tx results in request order, block events, validator
    updates and the app hash after the block (nothing durable until `commit`).

    `block_hash` is the hash of chainmall's own record of the block (its
    header, docs/formats.md), which the store keeps and `db check` verifies.
    `envelopes`, when the block carried batch envelopes (`envelope.py`), has one
    count per request tx: how many of `tx_results` belong to it (0: a plain tx,
    one result); empty when there were none (one result per request tx).
    """

    tx_results: tuple[TxOutcome, ...]  # `ExecTxResult`s, or objects with their fields
    events: tuple[Event, ...]
    validator_updates: tuple[ValidatorUpdate, ...]
    app_hash: bytes
    block_hash: bytes = b""
    envelopes: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class CommitResult:
    """ABCI Commit: the engine may delete its blocks below `retain_height` (0: keep all)."""

    retain_height: int = 0


@dataclass(frozen=True, slots=True)
class QueryRequest:
    """ABCI Query: a `path` naming what to read, its `data` (e.g. a state key), the
    height to read at (0: the latest committed) and whether to return a proof."""

    path: str
    data: bytes = b""
    height: int = 0
    prove: bool = False


@dataclass(frozen=True, slots=True)
class ProvenEntry:
    """One state entry read by a query: `value` None when absent; `proof` the canonical
    state proof (docs/state-root.md) of the key under the query's root, when asked for."""

    key: bytes
    value: bytes | None
    proof: bytes = b""


@dataclass(frozen=True, slots=True)
class QueryResult:
    """ABCI Query response: code 0 on success, the entries read, at `height` under `root`.

    Most paths read one entry (`key`, `value`, `proof` give it, as ABCI's
    single-entry response does); a domain path may read several (an item's
    trace), each with its own proof under the same root.
    """

    code: int
    log: str = ""
    height: int = 0
    root: bytes = b""
    entries: tuple[ProvenEntry, ...] = ()

    @property
    def key(self) -> bytes:
        """The first entry's key (b"" if none)."""
        return self.entries[0].key if self.entries else b""

    @property
    def value(self) -> bytes:
        """The first entry's value (b"" if none or absent)."""
        return (self.entries[0].value or b"") if self.entries else b""

    @property
    def proof(self) -> bytes:
        """The first entry's proof (b"" if none or not asked for)."""
        return self.entries[0].proof if self.entries else b""


class AbciApplication(Protocol):
    """The ABCI 2.0 application both engines drive (`core/abci/app.py` implements it).

    Calls arrive one at a time per connection; the engines never run two
    block calls at once. `finalize_block` changes nothing durable; `commit`
    makes the finalized block durable in one store transaction.
    """

    def info(self) -> InfoResult: ...

    def init_chain(self, request: InitChainRequest) -> InitChainResult: ...

    def check_tx(self, tx: bytes, kind: CheckTxKind = CheckTxKind.NEW) -> CheckTxResult: ...

    def prepare_proposal(self, request: BlockRequest) -> tuple[bytes, ...]: ...

    def process_proposal(self, request: BlockRequest) -> bool: ...

    def finalize_block(self, request: BlockRequest) -> FinalizeBlockResult: ...

    def commit(self) -> CommitResult: ...

    def query(self, request: QueryRequest) -> QueryResult: ...
