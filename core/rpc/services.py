"""What the RPC needs from a node: the `NodeServices` protocol and the values it returns.

The node implements `NodeServices` and hands it to `RpcServer`; the RPC never
imports the node. Every method is a coroutine that runs on the server's event
loop, so an implementation must not block it (CPU-bound or LMDB work goes to
an executor). Domain faults are raised as `ChainmallError` subclasses
(`NotFound`, `InvalidInput`, ...) and reach the client as JSON-RPC errors
with the class's code; anything else is an internal error (-32603) and is
logged. A call whose client disconnects is cancelled, so every method must
be safe to cancel at any `await` (a tx already handed to the mempool stays
there).

"Final" means committed: a tx is final once the block that holds it is
durably committed (and its commit certificate signed); the node reports
`TxState.FINAL` only after that.

Subscriptions are plain methods that return an async iterator. The
subscription starts when the method is called (not at the first
`__anext__`), so an item produced between the call and the first read is
not lost. The RPC reads items promptly and stops reading by calling
`aclose()` on the iterator when it has one (unsubscribe, disconnect), so an
implementation should free its per-subscriber state there (or in the
generator's `finally`). An implementation may end an iterator that falls
too far behind (e.g. a bounded queue overflowed) by raising
`LimitExceeded`; the client is told the subscription ended.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

from ..abci.types import Event, QueryRequest, QueryResult
from ..block import Block


class TxState(StrEnum):
    """Where a tx is: unknown to the node, admitted to the mempool, or final (committed)."""

    UNKNOWN = "unknown"
    PENDING = "pending"
    FINAL = "final"


# SubmitResult and TxInfo are made once per tx on the node's event loop (every verdict,
# every final outcome): plain slotted values, not frozen dataclasses, whose __init__ sets
# each field through object.__setattr__ and costs about three times as much. Nothing
# changes one after it is made; they compare and hash by value as before.
@dataclass(slots=True, unsafe_hash=True)
class SubmitResult:
    """The mempool's verdict on a submitted tx: code 0 admitted, otherwise the
    error code (core/errors.py) that refused it, with a human `log`.

    `tx_id` is the tx's id when the bytes decode, else b"". A value: never changed
    after it is made.
    """

    tx_id: bytes
    code: int
    log: str = ""


@dataclass(slots=True, unsafe_hash=True)
class TxInfo:
    """A tx's state and, once final, its place and result.

    For `FINAL`: `height` and `index` locate it, `code` is its receipt
    (0 success, else the execution error's code) with `log`, and `events`
    are its ABCI events (empty when the node no longer keeps events for an
    old block). `tx` is the raw tx when the node has it (pending or final).
    A value: never changed after it is made.
    """

    tx_id: bytes
    state: TxState
    height: int = 0
    index: int = 0
    code: int = 0
    log: str = ""
    events: tuple[Event, ...] = ()
    tx: bytes = b""


@dataclass(frozen=True, slots=True)
class WaitResult:
    """What submit-and-wait ends with: the admission verdict, then the tx's state.

    `tx.state` is FINAL when the tx was committed within the wait; PENDING
    when the wait ran out first (it may still become final); UNKNOWN when it
    was refused (`submit.code != 0`) or dropped from the mempool meanwhile.
    """

    submit: SubmitResult
    tx: TxInfo


@dataclass(frozen=True, slots=True)
class BlockInfo:
    """A committed block (header, txs, and its commit certificate) and its receipts.

    `block.commit` is the certificate that made it final (None only under an
    engine that keeps certificates elsewhere); `receipts[i]` is tx i's code.
    """

    block: Block
    receipts: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class AccountInfo:
    """An account at a committed height: balance and next nonce (both 0 when absent).

    `state_root` is the root after `height` (the header's state root) and
    `proof`, when asked for, the canonical state proof (docs/state-root.md)
    of the account's state key under it: of its value, or of its absence.
    """

    address: bytes
    balance: int
    nonce: int
    exists: bool
    height: int
    state_root: bytes
    proof: bytes = b""


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """The node at its last committed block (height 0: only the genesis)."""

    chain_id: str
    height: int
    app_hash: bytes
    block_hash: bytes
    block_time_ms: int
    mempool_txs: int
    mempool_bytes: int
    version: str
    validator: bytes  # this node's validator public key (b"" if it does not validate)


@dataclass(frozen=True, slots=True)
class AddressEvent:
    """An event of a final tx that names an address: where it happened, and the event."""

    height: int
    tx_id: bytes
    index: int
    event: Event


@runtime_checkable
class NodeServices(Protocol):
    """The operations the RPC serves; the node implements them (see the module docstring)."""

    async def submit_tx(self, tx: bytes) -> SubmitResult:
        """Offer raw tx bytes to the mempool; never raises for a bad tx (its code says why)."""
        ...

    async def submit_tx_wait(self, tx: bytes, timeout_s: float) -> WaitResult:
        """`submit_tx`, then wait up to `timeout_s` for the tx to be final."""
        ...

    async def submit_txs(self, txs: Sequence[bytes]) -> list[SubmitResult]:
        """`submit_tx` of each of `txs`, offered in this order in one step: one verdict each
        (a JSON-RPC batch's submits)."""
        ...

    async def wait_txs(self, tx_ids: Sequence[bytes], timeout_s: float) -> list[TxInfo]:
        """Wait up to `timeout_s` until each tx (submitted before) is final; the state of
        each at the end: FINAL, PENDING (the wait ran out first) or UNKNOWN (dropped)."""
        ...

    async def tx_status(self, tx_id: bytes) -> TxInfo:
        """The state of tx `tx_id` (UNKNOWN for an id the node has never seen or dropped)."""
        ...

    async def block(self, height: int) -> BlockInfo:
        """The committed block at `height` (>= 1); NotFound above the tip."""
        ...

    async def block_by_hash(self, block_hash: bytes) -> BlockInfo:
        """The committed block whose header hash is `block_hash`; NotFound if none."""
        ...

    async def account(self, address: bytes, height: int = 0, prove: bool = False) -> AccountInfo:
        """The account of a 20-byte address at `height` (0: latest); a ChainmallError
        (NotFound, QueryError) for a height the node does not serve."""
        ...

    async def status(self) -> NodeStatus:
        """Height, app hash, mempool size, version, validator and chain id."""
        ...

    async def query(self, request: QueryRequest) -> QueryResult:
        """An ABCI query (docs/abci.md: `/state`, `/account`, `/tx`, `/block`, and the
        paths domain modules register); a non-zero `code` is reported as that error."""
        ...

    def subscribe_blocks(self) -> AsyncIterator[BlockInfo]:
        """Every block committed from now on, in height order."""
        ...

    def subscribe_tx(self, tx_id: bytes) -> AsyncIterator[TxInfo]:
        """One item when tx `tx_id` is final (at once if it already is), then the end."""
        ...

    def subscribe_events(self, address: bytes) -> AsyncIterator[AddressEvent]:
        """The events of final txs, from now on, that name the 20-byte `address`
        (an attribute whose value is its `cm1...` text), in block and tx order."""
        ...
