"""A small in-memory key-value `AbciApplication` for the ABCI server tests.

Txs are `key=value` bytes. The app hash is SHA-256 over the sorted entries,
so it changes only when state changes (an empty block leaves it alone, as
CometBFT's `create_empty_blocks = false` needs). `commit` keeps a snapshot per
height in `history`, standing in for a durable store: a test "restarts" the
app by building a new one from any snapshot, e.g. one block behind CometBFT.
Every call is recorded in `calls` as (name, height or detail).

Special txs drive failure paths: `raise=...` makes CheckTx raise (a code in
the response); `fail=...` passes CheckTx but makes FinalizeBlock raise (the
server must stop serving).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from chainmall.core.abci.types import (
    BlockRequest,
    CheckTxKind,
    CheckTxResult,
    CommitResult,
    Event,
    ExecTxResult,
    FinalizeBlockResult,
    InfoResult,
    InitChainRequest,
    InitChainResult,
    ProvenEntry,
    QueryRequest,
    QueryResult,
)
from chainmall.core.errors import DecodeError

BAD_TX_CODE = DecodeError.code


@dataclass(frozen=True)
class Snapshot:
    """What the app keeps durably at a height."""

    height: int
    app_hash: bytes
    entries: tuple[tuple[bytes, bytes], ...]


def state_hash(entries: dict[bytes, bytes]) -> bytes:
    """SHA-256 over the sorted, length-prefixed entries."""
    digest = hashlib.sha256(b"kv/v1")
    for key in sorted(entries):
        value = entries[key]
        digest.update(len(key).to_bytes(4, "big") + key + len(value).to_bytes(4, "big") + value)
    return digest.digest()


GENESIS = Snapshot(0, state_hash({}), ())


def parse_tx(tx: bytes) -> tuple[bytes, bytes] | None:
    """(key, value) of a `key=value` tx; None if it is not one."""
    key, sep, value = tx.partition(b"=")
    return (key, value) if sep and key else None


@dataclass
class KvApp:
    """The test application (see the module docstring)."""

    saved: Snapshot = GENESIS
    calls: list[tuple[str, object]] = field(default_factory=list)
    history: dict[int, Snapshot] = field(default_factory=dict)
    init_chain_requests: list[InitChainRequest] = field(default_factory=list)
    blocks: dict[int, BlockRequest] = field(default_factory=dict)
    _pending: Snapshot | None = None

    def __post_init__(self) -> None:
        self.history.setdefault(self.saved.height, self.saved)

    def _record(self, name: str, detail: object = None) -> None:
        self.calls.append((name, detail))

    def names(self) -> list[str]:
        """The recorded call names, in order."""
        return [name for name, _ in self.calls]

    @property
    def entries(self) -> dict[bytes, bytes]:
        """The committed key-value state."""
        return dict(self.saved.entries)

    def info(self) -> InfoResult:
        self._record("info", self.saved.height)
        return InfoResult(self.saved.height, self.saved.app_hash, "kv-test", 1)

    def init_chain(self, request: InitChainRequest) -> InitChainResult:
        self._record("init_chain", request.chain_id)
        self.init_chain_requests.append(request)
        entries = {k.encode(): v.encode()
                   for k, v in json.loads(request.app_state_bytes or b"{}").items()}
        self.saved = Snapshot(0, state_hash(entries), tuple(sorted(entries.items())))
        self.history = {0: self.saved}
        return InitChainResult((), self.saved.app_hash)

    def check_tx(self, tx: bytes, kind: CheckTxKind = CheckTxKind.NEW) -> CheckTxResult:
        self._record("check_tx", kind)
        if tx.startswith(b"raise="):
            raise RuntimeError("check_tx was told to raise")
        if parse_tx(tx) is None:
            return CheckTxResult(BAD_TX_CODE, log="not key=value")
        return CheckTxResult(0, tx_id=hashlib.sha256(tx).digest())

    def prepare_proposal(self, request: BlockRequest) -> tuple[bytes, ...]:
        self._record("prepare_proposal", request.height)
        chosen, size = [], 0
        for tx in request.txs:
            if parse_tx(tx) is not None and size + len(tx) <= request.max_tx_bytes:
                chosen.append(tx)
                size += len(tx)
        return tuple(chosen)

    def process_proposal(self, request: BlockRequest) -> bool:
        self._record("process_proposal", request.height)
        return all(parse_tx(tx) is not None for tx in request.txs)

    def finalize_block(self, request: BlockRequest) -> FinalizeBlockResult:
        self._record("finalize_block", request.height)
        if request.height != self.saved.height + 1:
            raise AssertionError(f"block {request.height} after {self.saved.height}")
        self.blocks[request.height] = request
        entries = self.entries
        results = []
        for tx in request.txs:
            if tx.startswith(b"fail="):
                raise RuntimeError("finalize_block was told to fail")
            parsed = parse_tx(tx)
            if parsed is None:
                results.append(ExecTxResult(BAD_TX_CODE, log="not key=value"))
                continue
            entries[parsed[0]] = parsed[1]
            results.append(ExecTxResult(
                0, events=(Event("kv", (("key", parsed[0].decode(errors="replace")),)),),
                tx_id=hashlib.sha256(tx).digest(),
            ))
        self._pending = Snapshot(request.height, state_hash(entries),
                                 tuple(sorted(entries.items())))
        return FinalizeBlockResult(
            tuple(results), (Event("block", (("txs", str(len(request.txs))),)),), (),
            self._pending.app_hash,
        )

    def commit(self) -> CommitResult:
        self._record("commit", self._pending.height if self._pending else None)
        if self._pending is None:
            raise AssertionError("commit without finalize_block")
        self.saved, self._pending = self._pending, None
        self.history[self.saved.height] = self.saved
        return CommitResult(0)

    def query(self, request: QueryRequest) -> QueryResult:
        self._record("query", request.path)
        if request.path != "/key":
            raise ValueError(f"unknown path {request.path}")
        entry = ProvenEntry(request.data, self.entries.get(request.data),
                            b"proof:" + request.data if request.prove else b"")
        return QueryResult(0, height=self.saved.height, root=self.saved.app_hash,
                           entries=(entry,))
