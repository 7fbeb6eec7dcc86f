"""Conversions between CometBFT's ABCI protobuf messages and the values of `types.py`.

`*_from_proto` reads a message into a value, `*_to_proto` builds the message
from a value; the server uses one direction, clients and tests the other.
Units change at this edge only: protobuf Timestamps become integer
milliseconds since the Unix epoch (floored; the header time is what all
validators agreed on), validator keys become raw Ed25519 bytes (any other key
type is refused), event attributes are always marked for indexing.

Some value fields have no place in CometBFT's messages and do not cross the
socket: `CheckTxResult.priority/sender/nonce` (v0.38 dropped them from
ResponseCheckTx) and `FinalizeBlockResult.block_hash` (chainmall's own record).
The tx id travels in the `data` field of CheckTx and of each ExecTxResult.
A Query result's entries travel as ProofOps (`encode_query_entry`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from google.protobuf.timestamp_pb2 import Timestamp

from ..constants import ABCI_QUERY_PROOF_BYTES_MAX, PUBLIC_KEY_BYTES, STATE_VALUE_BYTES_MAX
from ..encoding import Reader, Writer
from ..errors import DecodeError, InvalidKey
from .envelope import encode_results
from .proto.tendermint.abci import types_pb2 as abci
from .proto.tendermint.crypto import keys_pb2
from .types import (
    BlockRequest,
    CheckTxResult,
    CommitResult,
    Event,
    ExecTxResult,
    FinalizeBlockResult,
    InfoResult,
    InitChainRequest,
    InitChainResult,
    Misbehavior,
    MisbehaviorKind,
    ProvenEntry,
    QueryRequest,
    QueryResult,
    ValidatorUpdate,
)

# ProofOp.type of one entry of a Query response, and its encoding's version byte.
QUERY_ENTRY_OP_TYPE = "chainmall/entry"
QUERY_ENTRY_VERSION = 1

BlockRequestMessage = (
    abci.RequestPrepareProposal | abci.RequestProcessProposal | abci.RequestFinalizeBlock
)


# --- units -------------------------------------------------------------------


def time_ms_from_proto(timestamp: Timestamp) -> int:
    """Milliseconds since the Unix epoch, floored (sub-millisecond digits dropped)."""
    return timestamp.seconds * 1000 + timestamp.nanos // 1_000_000


def time_ms_to_proto(time_ms: int, timestamp: Timestamp) -> None:
    """Set `timestamp` to `time_ms` milliseconds since the Unix epoch."""
    seconds, millis = divmod(time_ms, 1000)
    timestamp.seconds = seconds
    timestamp.nanos = millis * 1_000_000


def ed25519_key_from_proto(key: keys_pb2.PublicKey) -> bytes:
    """The raw Ed25519 key; `InvalidKey` for any other key type or a wrong length."""
    kind = key.WhichOneof("sum")
    if kind != "ed25519":
        raise InvalidKey(f"validator key type {kind or 'none'} is not supported: "
                         "chainmall validators use Ed25519")
    if len(key.ed25519) != PUBLIC_KEY_BYTES:
        raise InvalidKey(f"an Ed25519 validator key is {PUBLIC_KEY_BYTES} bytes, "
                         f"got {len(key.ed25519)}")
    return key.ed25519


# --- shared parts --------------------------------------------------------------


def event_to_proto(event: Event, into: abci.Event | None = None) -> abci.Event:
    """An ABCI event (filled in `into` if given); every attribute is marked for indexing."""
    message = abci.Event() if into is None else into
    message.type = event.type
    add = message.attributes.add
    for key, value in event.attributes:
        add(key=key, value=value, index=True)
    return message


def event_from_proto(message: abci.Event) -> Event:
    """An event value (the attributes' index flags are dropped)."""
    return Event(message.type, tuple((a.key, a.value) for a in message.attributes))


def validator_update_to_proto(update: ValidatorUpdate) -> abci.ValidatorUpdate:
    """A validator update with an Ed25519 key."""
    return abci.ValidatorUpdate(
        pub_key=keys_pb2.PublicKey(ed25519=update.public_key), power=update.power
    )


def validator_update_from_proto(message: abci.ValidatorUpdate) -> ValidatorUpdate:
    """A validator update value; `InvalidKey` unless the key is Ed25519."""
    return ValidatorUpdate(ed25519_key_from_proto(message.pub_key), message.power)


def misbehavior_to_proto(item: Misbehavior) -> abci.Misbehavior:
    """Evidence as CometBFT reports it."""
    message = abci.Misbehavior(
        type=int(item.kind),
        validator=abci.Validator(address=item.validator_address, power=item.validator_power),
        height=item.height,
        total_voting_power=item.total_voting_power,
    )
    time_ms_to_proto(item.time_ms, message.time)
    return message


def misbehavior_from_proto(message: abci.Misbehavior) -> Misbehavior:
    """An evidence value (an unknown type number reads as UNKNOWN)."""
    try:
        kind = MisbehaviorKind(message.type)
    except ValueError:
        kind = MisbehaviorKind.UNKNOWN
    return Misbehavior(
        kind=kind,
        validator_address=message.validator.address,
        validator_power=message.validator.power,
        height=message.height,
        time_ms=time_ms_from_proto(message.time),
        total_voting_power=message.total_voting_power,
    )


def exec_tx_result_to_proto(
    result: ExecTxResult, into: abci.ExecTxResult | None = None
) -> abci.ExecTxResult:
    """One tx's outcome (filled in `into` if given); the tx id goes in `data`."""
    message = abci.ExecTxResult() if into is None else into
    message.code = result.code
    message.data = result.tx_id
    message.log = result.log
    for event in result.events:
        event_to_proto(event, message.events.add())
    return message


def exec_tx_result_from_proto(message: abci.ExecTxResult) -> ExecTxResult:
    """One tx's outcome value."""
    return ExecTxResult(
        code=message.code, log=message.log,
        events=tuple(event_from_proto(e) for e in message.events), tx_id=message.data,
    )


# --- Info, InitChain ---------------------------------------------------------------


def info_result_to_proto(result: InfoResult, data: str = "chainmall") -> abci.ResponseInfo:
    """ResponseInfo: the last committed height and app hash."""
    return abci.ResponseInfo(
        data=data, version=result.version, app_version=result.app_version,
        last_block_height=result.last_block_height,
        last_block_app_hash=result.last_block_app_hash,
    )


def info_result_from_proto(message: abci.ResponseInfo) -> InfoResult:
    """An Info value."""
    return InfoResult(
        last_block_height=message.last_block_height,
        last_block_app_hash=message.last_block_app_hash,
        version=message.version, app_version=message.app_version,
    )


def init_chain_request_to_proto(request: InitChainRequest) -> abci.RequestInitChain:
    """RequestInitChain (no consensus params: the engine's genesis holds those)."""
    message = abci.RequestInitChain(
        chain_id=request.chain_id,
        validators=[validator_update_to_proto(v) for v in request.validators],
        app_state_bytes=request.app_state_bytes, initial_height=request.initial_height,
    )
    time_ms_to_proto(request.time_ms, message.time)
    return message


def init_chain_request_from_proto(message: abci.RequestInitChain) -> InitChainRequest:
    """An InitChain value; `InvalidKey` if a genesis validator's key is not Ed25519."""
    return InitChainRequest(
        chain_id=message.chain_id,
        time_ms=time_ms_from_proto(message.time),
        validators=tuple(validator_update_from_proto(v) for v in message.validators),
        app_state_bytes=message.app_state_bytes,
        initial_height=message.initial_height,
    )


def init_chain_result_to_proto(result: InitChainResult) -> abci.ResponseInitChain:
    """ResponseInitChain: the app's validators (none: keep the engine's) and app hash."""
    return abci.ResponseInitChain(
        validators=[validator_update_to_proto(v) for v in result.validators],
        app_hash=result.app_hash,
    )


def init_chain_result_from_proto(message: abci.ResponseInitChain) -> InitChainResult:
    """An InitChain result value."""
    return InitChainResult(
        validators=tuple(validator_update_from_proto(v) for v in message.validators),
        app_hash=message.app_hash,
    )


# --- CheckTx -------------------------------------------------------------------------


def check_tx_result_to_proto(
    result: CheckTxResult, into: abci.ResponseCheckTx | None = None
) -> abci.ResponseCheckTx:
    """ResponseCheckTx (filled in `into` if given): code, log and the tx id in `data`."""
    message = abci.ResponseCheckTx() if into is None else into
    message.code = result.code
    message.data = result.tx_id
    message.log = result.log
    return message


def check_tx_result_from_proto(message: abci.ResponseCheckTx) -> CheckTxResult:
    """A CheckTx value (priority, sender and nonce do not cross the socket)."""
    return CheckTxResult(code=message.code, log=message.log, tx_id=message.data)


# --- PrepareProposal, ProcessProposal, FinalizeBlock ----------------------------------


def block_request_from_proto(message: BlockRequestMessage) -> BlockRequest:
    """The block a PrepareProposal, ProcessProposal or FinalizeBlock request carries."""
    is_prepare = isinstance(message, abci.RequestPrepareProposal)
    return BlockRequest(
        height=message.height,
        time_ms=time_ms_from_proto(message.time),
        txs=tuple(message.txs),
        proposer_address=message.proposer_address,
        hash=b"" if is_prepare else message.hash,
        misbehavior=tuple(misbehavior_from_proto(m) for m in message.misbehavior),
        max_tx_bytes=message.max_tx_bytes if is_prepare else 0,
    )


def block_request_to_proto(
    request: BlockRequest, kind: type[BlockRequestMessage]
) -> BlockRequestMessage:
    """A PrepareProposal, ProcessProposal or FinalizeBlock request (`kind`) for the block."""
    message = kind(
        txs=request.txs,
        height=request.height,
        proposer_address=request.proposer_address,
        misbehavior=[misbehavior_to_proto(m) for m in request.misbehavior],
    )
    if isinstance(message, abci.RequestPrepareProposal):
        message.max_tx_bytes = request.max_tx_bytes
    else:
        message.hash = request.hash
    time_ms_to_proto(request.time_ms, message.time)
    return message


def envelope_result_to_proto(
    results: Sequence[ExecTxResult], into: abci.ExecTxResult | None = None
) -> abci.ExecTxResult:
    """A batch envelope's outcome (filled in `into` if given): code 0, `data` each carried
    tx's id and code (`envelope.encode_results`), the carried txs' events in order."""
    message = abci.ExecTxResult() if into is None else into
    message.data = encode_results([(r.tx_id.rjust(32, b"\0"), r.code) for r in results])
    failed = sum(1 for r in results if r.code)
    message.log = f"envelope of {len(results)} txs, {failed} failed"
    add_event = message.events.add
    for result in results:
        for event in result.events:
            event_to_proto(event, add_event())
    return message


def finalize_block_result_to_proto(
    result: FinalizeBlockResult, into: abci.ResponseFinalizeBlock | None = None
) -> abci.ResponseFinalizeBlock:
    """ResponseFinalizeBlock (filled in `into` if given): tx results in request order (an
    envelope's carried txs as one result), events, validator updates, app hash."""
    message = abci.ResponseFinalizeBlock() if into is None else into
    for event in result.events:
        event_to_proto(event, message.events.add())
    add_result = message.tx_results.add
    if result.envelopes:
        start = 0
        for count in result.envelopes:
            if count:
                envelope_result_to_proto(result.tx_results[start:start + count], add_result())
                start += count
            else:
                exec_tx_result_to_proto(result.tx_results[start], add_result())
                start += 1
    else:
        for tx_result in result.tx_results:  # one per tx: built in place, not copied
            exec_tx_result_to_proto(tx_result, add_result())
    message.validator_updates.extend(validator_update_to_proto(v) for v in result.validator_updates)
    message.app_hash = result.app_hash
    return message


def finalize_block_result_from_proto(message: abci.ResponseFinalizeBlock) -> FinalizeBlockResult:
    """A FinalizeBlock value (without chainmall's own block hash)."""
    return FinalizeBlockResult(
        tx_results=tuple(exec_tx_result_from_proto(r) for r in message.tx_results),
        events=tuple(event_from_proto(e) for e in message.events),
        validator_updates=tuple(validator_update_from_proto(v) for v in message.validator_updates),
        app_hash=message.app_hash,
    )


# --- Commit, Query ---------------------------------------------------------------------


def commit_result_to_proto(result: CommitResult) -> abci.ResponseCommit:
    """ResponseCommit: the retain height."""
    return abci.ResponseCommit(retain_height=result.retain_height)


def commit_result_from_proto(message: abci.ResponseCommit) -> CommitResult:
    """A Commit value."""
    return CommitResult(retain_height=message.retain_height)


def query_request_to_proto(request: QueryRequest) -> abci.RequestQuery:
    """RequestQuery."""
    return abci.RequestQuery(
        path=request.path, data=request.data, height=request.height, prove=request.prove
    )


def query_request_from_proto(message: abci.RequestQuery) -> QueryRequest:
    """A Query value."""
    return QueryRequest(
        path=message.path, data=message.data, height=message.height, prove=message.prove
    )


def encode_query_entry(entry: ProvenEntry) -> bytes:
    """One entry of a Query response: version u8, present u8, value (u32-sized, empty
    when absent), proof (u32-sized, empty when not asked for)."""
    return (Writer().u8(QUERY_ENTRY_VERSION).u8(int(entry.value is not None))
            .sized(entry.value or b"", 4, STATE_VALUE_BYTES_MAX)
            .sized(entry.proof, 4, ABCI_QUERY_PROOF_BYTES_MAX).getvalue())


def decode_query_entry(key: bytes, data: bytes) -> ProvenEntry:
    """The entry `encode_query_entry` wrote for `key`; `DecodeError` on anything else."""
    reader = Reader(data, "query entry")
    if reader.u8("version") != QUERY_ENTRY_VERSION:
        raise DecodeError(f"query entry version is not {QUERY_ENTRY_VERSION}")
    present = reader.u8("present")
    if present > 1:
        raise DecodeError("query entry: present is not 0 or 1")
    value = reader.sized(4, STATE_VALUE_BYTES_MAX, "value")
    if not present and value:
        raise DecodeError("query entry: an absent entry with a value")
    proof = reader.sized(4, ABCI_QUERY_PROOF_BYTES_MAX, "proof")
    reader.finish()
    return ProvenEntry(key, value if present else None, proof)


def query_result_to_proto(result: QueryResult) -> abci.ResponseQuery:
    """ResponseQuery: `key`/`value` are the first entry's (as `abci_query` shows them);
    every entry, with its proof, is one ProofOp of type QUERY_ENTRY_OP_TYPE, in order;
    `info` is {"root": hex} when the result names its root."""
    message = abci.ResponseQuery(
        code=result.code, log=result.log, key=result.key, value=result.value,
        height=result.height,
        info=json.dumps({"root": result.root.hex()}) if result.root else "",
    )
    add = message.proof_ops.ops.add
    for entry in result.entries:
        add(type=QUERY_ENTRY_OP_TYPE, key=entry.key, data=encode_query_entry(entry))
    return message


def query_result_from_proto(message: abci.ResponseQuery) -> QueryResult:
    """A Query result value; `DecodeError` if an entry or the info is malformed."""
    entries = tuple(decode_query_entry(op.key, op.data) for op in message.proof_ops.ops
                    if op.type == QUERY_ENTRY_OP_TYPE)
    root = b""
    if message.info:
        try:
            root = bytes.fromhex(json.loads(message.info)["root"])
        except (ValueError, KeyError, TypeError) as error:
            raise DecodeError(f"query info {message.info!r} is not {{\"root\": hex}}") \
                from error
    return QueryResult(code=message.code, log=message.log, height=message.height, root=root,
                       entries=entries)
