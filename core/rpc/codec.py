"""The RPC's JSON conventions: values to JSON (server) and back (client), strictly.

Conventions (docs/rpc.md section 2):

* bytes (ids, hashes, keys, proofs, raw txs) are lower-case hex without `0x`;
* account addresses are their `cm1...` text;
* u64 amounts, balances, fees, nonces and tx expiry heights are decimal
  strings: JavaScript numbers lose precision past 2^53, and these are values
  a signer chooses;
* heights, indexes, counts, codes and times (ms) are JSON numbers: the chain
  produces them and they stay far below 2^53.

Parsers raise `InvalidInput` naming the field: the server turns that into
"invalid params" (-32602), the client into a malformed-response error.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..abci.types import Event, ProvenEntry, QueryResult
from ..address import address_from_public_key, decode_address, encode_address
from ..block import CommitCert, CommitSig, Header, block_hash
from ..constants import HASH_BYTES, U64_MAX
from ..errors import DecodeError, InvalidInput, error_class
from ..state.accounts import decode_transfer
from ..tx import Tx, decode_tx
from .services import (
    AccountInfo,
    AddressEvent,
    BlockInfo,
    NodeStatus,
    SubmitResult,
    TxInfo,
    TxState,
)

JsonObject = dict[str, Any]

_DECIMAL = re.compile(r"0|[1-9][0-9]{0,19}")
TRANSFER_TX_TYPE = 1


def error_name(code: int) -> str:
    """The error class name registered under `code` ("" for 0, "ChainmallError" if unknown)."""
    if code == 0:
        return ""
    try:
        return error_class(code).__name__
    except KeyError:
        return "ChainmallError"


# --- scalars ------------------------------------------------------------------


def hex_text(data: bytes) -> str:
    """Bytes as lower-case hex."""
    return data.hex()


def u64_text(value: int) -> str:
    """A u64 as decimal text."""
    return str(value)


def parse_hex(value: object, name: str, length: int | None = None,
              length_max: int | None = None) -> bytes:
    """Lower-case hex text -> bytes, of exactly `length` or at most `length_max` bytes."""
    if not isinstance(value, str):
        raise InvalidInput(f"{name}: expected hex text, got {_json_type(value)}")
    if length_max is not None and len(value) > 2 * length_max:
        raise InvalidInput(f"{name}: longer than {length_max} bytes")
    try:
        data = bytes.fromhex(value)
    except ValueError:
        data = None
    # fromhex also takes upper case and spaces: only text that its own hex gives back is
    # lower-case hex of whole bytes (a regular expression over the text cost ten times more)
    if data is None or data.hex() != value:
        raise InvalidInput(f"{name}: not lower-case hex of whole bytes")
    if length is not None and len(data) != length:
        raise InvalidInput(f"{name}: expected {length} bytes, got {len(data)}")
    return data


def parse_u64_text(value: object, name: str) -> int:
    """Decimal text of a u64 (no sign, no leading zeros) -> int."""
    if not isinstance(value, str) or not _DECIMAL.fullmatch(value):
        raise InvalidInput(f"{name}: expected a decimal string, got {_json_type(value)}")
    number = int(value)
    if number > U64_MAX:
        raise InvalidInput(f"{name}: {value} is above 2^64 - 1")
    return number


def parse_count(value: object, name: str, maximum: int = U64_MAX) -> int:
    """A JSON integer in [0, maximum] (a height, index, count or time; not a bool)."""
    if type(value) is not int or not 0 <= value <= maximum:
        raise InvalidInput(f"{name}: expected an integer in [0, {maximum}], got "
                           f"{_json_value(value)}")
    return value


def parse_bool(value: object, name: str) -> bool:
    """A JSON true or false."""
    if type(value) is not bool:
        raise InvalidInput(f"{name}: expected true or false, got {_json_type(value)}")
    return value


def parse_text(value: object, name: str, length_max: int) -> str:
    """A JSON string of at most `length_max` characters."""
    if not isinstance(value, str):
        raise InvalidInput(f"{name}: expected a string, got {_json_type(value)}")
    if len(value) > length_max:
        raise InvalidInput(f"{name}: longer than {length_max} characters")
    return value


def parse_address(value: object, name: str) -> bytes:
    """`cm1...` text -> the 20 address bytes (InvalidAddress says what is wrong)."""
    if not isinstance(value, str):
        raise InvalidInput(f"{name}: expected cm1... address text, got {_json_type(value)}")
    try:
        return decode_address(value)
    except InvalidInput as error:
        raise type(error)(f"{name}: {error}") from error


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
             int: "a number", float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _json_value(value: object) -> str:
    if isinstance(value, bool | int | float) and not isinstance(value, bool):
        return repr(value)[:40]
    return _json_type(value)


def _field(obj: object, name: str, context: str) -> Any:
    if not isinstance(obj, Mapping):
        raise InvalidInput(f"{context}: expected an object, got {_json_type(obj)}")
    if name not in obj:
        raise InvalidInput(f"{context}: missing field {name!r}")
    return obj[name]


def _list(value: object, name: str) -> Sequence[Any]:
    if not isinstance(value, list):
        raise InvalidInput(f"{name}: expected an array, got {_json_type(value)}")
    return value


# --- events ----------------------------------------------------------------------


def event_json(event: Event) -> JsonObject:
    """{"type", "attributes": [[key, value], ...]} (ordered; a key may repeat)."""
    return {"type": event.type, "attributes": [[key, value] for key, value in event.attributes]}


def event_from_json(obj: object) -> Event:
    """The Event of `event_json`."""
    kind = _field(obj, "type", "event")
    if not isinstance(kind, str):
        raise InvalidInput("event.type: expected a string")
    attributes = []
    for pair in _list(_field(obj, "attributes", "event"), "event.attributes"):
        if (not isinstance(pair, list) or len(pair) != 2
                or not all(isinstance(part, str) for part in pair)):
            raise InvalidInput("event.attributes: expected [key, value] string pairs")
        attributes.append((pair[0], pair[1]))
    return Event(kind, tuple(attributes))


# --- txs --------------------------------------------------------------------------


def decoded_tx_json(tx: Tx) -> JsonObject:
    """A tx's fields (and a transfer's recipient and amount) for people and scripts."""
    data: JsonObject = {
        "chain_id": tx.chain_id,
        "type": tx.tx_type,
        "sender": hex_text(tx.sender),
        "sender_address": encode_address(address_from_public_key(tx.sender)),
        "nonce": u64_text(tx.nonce),
        "fee": u64_text(tx.fee),
        "expiry_height": u64_text(tx.expiry_height),
        "payload": hex_text(tx.payload),
        "signature": hex_text(tx.signature),
    }
    if tx.tx_type == TRANSFER_TX_TYPE:
        try:
            recipient, amount = decode_transfer(tx.payload)
        except InvalidInput:
            pass  # a malformed payload: the raw hex says it all
        else:
            data["transfer"] = {"to": encode_address(recipient), "amount": u64_text(amount)}
    return data


# Each state's text (a lookup: an enum's `.value` costs a descriptor call per tx).
_STATE_TEXT = {state: state.value for state in TxState}


def submit_json(result: SubmitResult) -> JsonObject:
    """An admitted tx: {"tx_id"}."""
    return {"tx_id": hex_text(result.tx_id)}


def tx_json(info: TxInfo) -> JsonObject:
    """A tx's state; `height`, `index`, `code`, `error` and `log` are null unless final."""
    state = info.state
    if state is TxState.FINAL:
        code = info.code
        data: JsonObject = {
            "tx_id": info.tx_id.hex(), "status": "final", "height": info.height,
            "index": info.index, "code": code, "error": error_name(code) if code else None,
            "log": info.log,
            "events": [event_json(event) for event in info.events] if info.events else [],
            "tx": info.tx.hex() if info.tx else None, "decoded": None,
        }
    else:
        data = {
            "tx_id": info.tx_id.hex(), "status": _STATE_TEXT[state], "height": None,
            "index": None, "code": None, "error": None, "log": None,
            "events": [event_json(event) for event in info.events],
            "tx": info.tx.hex() if info.tx else None, "decoded": None,
        }
    if info.tx:
        with contextlib.suppress(DecodeError):
            data["decoded"] = decoded_tx_json(decode_tx(info.tx))
    return data


def tx_info_from_json(obj: object) -> TxInfo:
    """The TxInfo of `tx_json` (events included, decoded fields dropped)."""
    tx_id = parse_hex(_field(obj, "tx_id", "tx"), "tx.tx_id", HASH_BYTES)
    try:
        state = TxState(_field(obj, "status", "tx"))
    except ValueError:
        raise InvalidInput("tx.status: expected unknown, pending or final") from None
    raw = _field(obj, "tx", "tx")
    tx = b"" if raw is None else parse_hex(raw, "tx.tx")
    events = tuple(event_from_json(e) for e in _list(_field(obj, "events", "tx"), "tx.events"))
    if state is not TxState.FINAL:
        return TxInfo(tx_id, state, events=events, tx=tx)
    log = _field(obj, "log", "tx")
    return TxInfo(
        tx_id, state,
        height=parse_count(_field(obj, "height", "tx"), "tx.height"),
        index=parse_count(_field(obj, "index", "tx"), "tx.index"),
        code=parse_count(_field(obj, "code", "tx"), "tx.code"),
        log=log if isinstance(log, str) else "",
        events=events, tx=tx,
    )


# --- blocks -----------------------------------------------------------------------


def header_json(header: Header) -> JsonObject:
    """Every header field (docs/formats.md), so a client can rebuild and hash it."""
    return {
        "chain_id": header.chain_id,
        "height": header.height,
        "prev_hash": hex_text(header.prev_hash),
        "time_ms": header.timestamp_ms,
        "proposer": hex_text(header.proposer),
        "tx_count": header.tx_count,
        "tx_root": hex_text(header.tx_root),
        "state_root": hex_text(header.state_root),
        "validator_set_hash": hex_text(header.validator_set_hash),
        "round": header.round,
    }


def header_from_json(obj: object) -> Header:
    """The Header of `header_json` (InvalidInput for any bad field)."""
    def get(name: str) -> Any:
        return _field(obj, name, "header")

    chain_id = get("chain_id")
    if not isinstance(chain_id, str):
        raise InvalidInput("header.chain_id: expected a string")
    return Header(
        chain_id=chain_id,
        height=parse_count(get("height"), "header.height"),
        prev_hash=parse_hex(get("prev_hash"), "header.prev_hash", HASH_BYTES),
        timestamp_ms=parse_count(get("time_ms"), "header.time_ms"),
        proposer=parse_hex(get("proposer"), "header.proposer", 32),
        tx_count=parse_count(get("tx_count"), "header.tx_count"),
        tx_root=parse_hex(get("tx_root"), "header.tx_root", HASH_BYTES),
        state_root=parse_hex(get("state_root"), "header.state_root", HASH_BYTES),
        validator_set_hash=parse_hex(get("validator_set_hash"), "header.validator_set_hash",
                                     HASH_BYTES),
        round=parse_count(get("round"), "header.round"),
    )


def commit_json(commit: CommitCert | None) -> JsonObject | None:
    """The commit certificate: who signed which block hash."""
    if commit is None:
        return None
    return {
        "height": commit.height,
        "round": commit.round,
        "block_hash": hex_text(commit.block_hash),
        "signatures": [{"validator_index": sig.validator_index,
                        "signature": hex_text(sig.signature)} for sig in commit.signatures],
    }


def commit_from_json(obj: object) -> CommitCert | None:
    """The CommitCert of `commit_json` (None for null)."""
    if obj is None:
        return None
    signatures = tuple(
        CommitSig(parse_count(_field(sig, "validator_index", "commit signature"),
                              "commit.validator_index"),
                  parse_hex(_field(sig, "signature", "commit signature"), "commit.signature", 64))
        for sig in _list(_field(obj, "signatures", "commit"), "commit.signatures")
    )
    return CommitCert(
        parse_count(_field(obj, "height", "commit"), "commit.height"),
        parse_count(_field(obj, "round", "commit"), "commit.round"),
        parse_hex(_field(obj, "block_hash", "commit"), "commit.block_hash", HASH_BYTES),
        signatures,
    )


def block_json(info: BlockInfo, with_txs: bool) -> JsonObject:
    """A block: hash, header, tx ids, receipts, commit, and the raw txs when asked for."""
    block = info.block
    return {
        "height": block.header.height,
        "hash": hex_text(block.hash()),
        "header": header_json(block.header),
        "tx_ids": [hex_text(tx.tx_id) for tx in block.txs],
        "txs": [hex_text(tx.encode()) for tx in block.txs] if with_txs else None,
        "receipts": list(info.receipts),
        "commit": commit_json(block.commit),
    }


@dataclass(frozen=True, slots=True)
class BlockView:
    """A block as the client receives it; its header's hash is checked against `hash`."""

    header: Header
    hash: bytes
    tx_ids: tuple[bytes, ...]
    receipts: tuple[int, ...]
    commit: CommitCert | None
    txs: tuple[bytes, ...] | None = None  # raw txs, when asked for

    @property
    def height(self) -> int:
        """The block's height."""
        return self.header.height


def block_view_from_json(obj: object) -> BlockView:
    """The BlockView of `block_json`; InvalidInput if the header does not hash to `hash`,
    the tx ids do not match the header's count, or the commit is for another block."""
    header = header_from_json(_field(obj, "header", "block"))
    claimed = parse_hex(_field(obj, "hash", "block"), "block.hash", HASH_BYTES)
    if block_hash(header) != claimed:
        raise InvalidInput("block.hash: the header does not hash to it")
    tx_ids = tuple(parse_hex(t, "block.tx_ids", HASH_BYTES)
                   for t in _list(_field(obj, "tx_ids", "block"), "block.tx_ids"))
    if len(tx_ids) != header.tx_count:
        raise InvalidInput(f"block.tx_ids: {len(tx_ids)} ids, header says {header.tx_count}")
    receipts = tuple(parse_count(code, "block.receipts")
                     for code in _list(_field(obj, "receipts", "block"), "block.receipts"))
    raw_txs = _field(obj, "txs", "block")
    txs = None if raw_txs is None else tuple(parse_hex(t, "block.txs")
                                             for t in _list(raw_txs, "block.txs"))
    commit = commit_from_json(_field(obj, "commit", "block"))
    if commit is not None and (commit.block_hash != claimed or commit.height != header.height):
        raise InvalidInput("block.commit: certifies another block")
    return BlockView(header, claimed, tx_ids, receipts, commit, txs)


# --- accounts, status, queries, events --------------------------------------------


def account_json(info: AccountInfo) -> JsonObject:
    """An account with the root it was read under and, when asked for, its proof."""
    return {
        "address": encode_address(info.address),
        "balance": u64_text(info.balance),
        "nonce": u64_text(info.nonce),
        "exists": info.exists,
        "height": info.height,
        "state_root": hex_text(info.state_root),
        "proof": hex_text(info.proof) if info.proof else None,
    }


def account_from_json(obj: object) -> AccountInfo:
    """The AccountInfo of `account_json`."""
    def get(name: str) -> Any:
        return _field(obj, name, "account")

    proof = get("proof")
    return AccountInfo(
        address=parse_address(get("address"), "account.address"),
        balance=parse_u64_text(get("balance"), "account.balance"),
        nonce=parse_u64_text(get("nonce"), "account.nonce"),
        exists=parse_bool(get("exists"), "account.exists"),
        height=parse_count(get("height"), "account.height"),
        state_root=parse_hex(get("state_root"), "account.state_root", HASH_BYTES),
        proof=b"" if proof is None else parse_hex(proof, "account.proof"),
    )


def status_json(status: NodeStatus) -> JsonObject:
    """The node's status."""
    validator = None
    if status.validator:
        validator = {"public_key": hex_text(status.validator),
                     "address": encode_address(address_from_public_key(status.validator))}
    return {
        "chain_id": status.chain_id,
        "height": status.height,
        "app_hash": hex_text(status.app_hash),
        "block_hash": hex_text(status.block_hash),
        "block_time_ms": status.block_time_ms,
        "mempool_txs": status.mempool_txs,
        "mempool_bytes": status.mempool_bytes,
        "version": status.version,
        "validator": validator,
    }


def status_from_json(obj: object) -> NodeStatus:
    """The NodeStatus of `status_json`."""
    def get(name: str) -> Any:
        return _field(obj, name, "status")

    validator = get("validator")
    chain_id, version = get("chain_id"), get("version")
    if not isinstance(chain_id, str) or not isinstance(version, str):
        raise InvalidInput("status: chain_id and version are strings")
    return NodeStatus(
        chain_id=chain_id,
        height=parse_count(get("height"), "status.height"),
        app_hash=parse_hex(get("app_hash"), "status.app_hash", HASH_BYTES),
        block_hash=parse_hex(get("block_hash"), "status.block_hash", HASH_BYTES),
        block_time_ms=parse_count(get("block_time_ms"), "status.block_time_ms"),
        mempool_txs=parse_count(get("mempool_txs"), "status.mempool_txs"),
        mempool_bytes=parse_count(get("mempool_bytes"), "status.mempool_bytes"),
        version=version,
        validator=b"" if validator is None else parse_hex(
            _field(validator, "public_key", "status.validator"), "status.validator", 32),
    )


def query_json(result: QueryResult) -> JsonObject:
    """A successful query: the height and state root read at (root null for chain records:
    `/tx`, `/block`), and each entry read with its value (hex; null when absent, "" for an
    empty value) and its proof under the root (null unless asked for)."""
    return {
        "height": result.height,
        "root": hex_text(result.root) if result.root else None,
        "entries": [{"key": hex_text(entry.key),
                     "value": None if entry.value is None else hex_text(entry.value),
                     "proof": hex_text(entry.proof) if entry.proof else None}
                    for entry in result.entries],
        "log": result.log,
    }


def query_from_json(obj: object) -> QueryResult:
    """The QueryResult of `query_json` (code 0)."""
    entries = []
    for item in _list(_field(obj, "entries", "query"), "query.entries"):
        value, proof = _field(item, "value", "query entry"), _field(item, "proof", "query entry")
        entries.append(ProvenEntry(
            parse_hex(_field(item, "key", "query entry"), "query.key"),
            None if value is None else parse_hex(value, "query.value"),
            b"" if proof is None else parse_hex(proof, "query.proof")))
    log = _field(obj, "log", "query")
    root = _field(obj, "root", "query")
    return QueryResult(
        code=0,
        log=log if isinstance(log, str) else "",
        height=parse_count(_field(obj, "height", "query"), "query.height"),
        root=b"" if root is None else parse_hex(root, "query.root", HASH_BYTES),
        entries=tuple(entries),
    )


def address_event_json(item: AddressEvent) -> JsonObject:
    """An event of a final tx that names a subscribed address."""
    return {"height": item.height, "tx_id": hex_text(item.tx_id), "index": item.index,
            "event": event_json(item.event)}


def address_event_from_json(obj: object) -> AddressEvent:
    """The AddressEvent of `address_event_json`."""
    return AddressEvent(
        parse_count(_field(obj, "height", "event"), "event.height"),
        parse_hex(_field(obj, "tx_id", "event"), "event.tx_id", HASH_BYTES),
        parse_count(_field(obj, "index", "event"), "event.index"),
        event_from_json(_field(obj, "event", "event")),
    )

