"""Finality: who waits for which tx, recent outcomes, and the node's subscriptions.

A tx is final when the block that records it is durably committed (after
`Application.commit` returned); only then does `committed` run, so nothing
here ever says "final" early. Lives on the event loop's thread.

Subscriptions start when they are made (an item produced before the first
read is kept) and hold at most SUBSCRIPTION_ITEMS_MAX undelivered items; a
subscriber that falls further behind is ended with SubscriberLagged.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from ..abci.types import Event
from ..block import Block
from ..constants import FINAL_RESULTS_KEPT_MAX, SUBSCRIPTION_ITEMS_MAX
from ..errors import SubscriberLagged
from ..rpc.services import TxInfo
from ..rpc.services import TxState as RpcTxState

T = TypeVar("T")


# A tx's state and, once final, its place and result: the RPC's own values (core/rpc/
# services.py, plain data with no server behind them), so that a tx's outcome is one
# object from the block to the answer, not copied into the RPC's type per tx. UNKNOWN:
# never seen, refused or dropped (a dropped tx keeps the code and log that say why);
# `tx` is the raw tx while it is pending (a final one is in its block).
TxState = RpcTxState
TxStatus = TxInfo


@dataclass(frozen=True, slots=True)
class CommittedBlock:
    """A committed block (with its commit certificate) and each tx's receipt code."""

    block: Block
    receipts: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class AddressEvent:
    """An event of a final tx that names an address (an attribute whose value is its
    `cm1...` text)."""

    height: int
    tx_id: bytes
    index: int
    event: Event


class Subscription(Generic[T]):
    """An async iterator of pushed items; `aclose()` unsubscribes."""

    def __init__(self, on_close: object = None) -> None:
        self._items: deque[T] = deque()
        self._ready = asyncio.Event()
        self._end: BaseException | None = None
        self._ended = False
        self._on_close = on_close

    def push(self, item: T) -> None:
        """Deliver an item (ends the subscription with SubscriberLagged when too far behind)."""
        if self._ended:
            return
        if len(self._items) >= SUBSCRIPTION_ITEMS_MAX:
            self.end(SubscriberLagged(f"the subscriber fell {SUBSCRIPTION_ITEMS_MAX} items "
                                      "behind"))
            return
        self._items.append(item)
        self._ready.set()

    def end(self, error: BaseException | None = None) -> None:
        """No more items: the iterator stops after the delivered ones (or raises `error`)."""
        if not self._ended:
            self._ended = True
            self._end = error
            self._ready.set()

    @property
    def ended(self) -> bool:
        """Whether the subscription was ended (items may still be waiting to be read)."""
        return self._ended

    def __aiter__(self) -> Subscription[T]:
        return self

    async def __anext__(self) -> T:
        while not self._items:
            if self._ended:
                if self._end is not None:
                    raise self._end
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()

    async def aclose(self) -> None:
        """Unsubscribe (idempotent)."""
        self.end()
        if callable(self._on_close):
            self._on_close(self)


class _Waiter:
    """One wait for one or more txs: their outcomes as they come; the future is done when
    all are known (or the wait ends first)."""

    __slots__ = ("future", "outcomes", "remaining")

    def __init__(self, future: asyncio.Future[None], outcomes: list[TxStatus | None],
                 remaining: int) -> None:
        self.future = future
        self.outcomes = outcomes
        self.remaining = remaining

    def settle(self, slot: int, status: TxStatus) -> None:
        """The outcome of the tx in `slot`."""
        if self.outcomes[slot] is None:
            self.outcomes[slot] = status
            self.remaining -= 1
            if not self.remaining and not self.future.done():
                self.future.set_result(None)


def _expire(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Finality:
    """Waiters for txs, recent outcomes (FINAL_RESULTS_KEPT_MAX), and subscribers."""

    def __init__(self, kept_max: int = FINAL_RESULTS_KEPT_MAX) -> None:
        self._kept_max = kept_max
        self._recent: OrderedDict[bytes, TxStatus] = OrderedDict()
        self._waiters: dict[bytes, list[tuple[_Waiter, int]]] = {}  # tx id -> (wait, slot)
        self._blocks: set[Subscription[CommittedBlock]] = set()
        self._txs: dict[bytes, set[Subscription[TxStatus]]] = {}
        self._addresses: dict[str, set[Subscription[AddressEvent]]] = {}
        self._closed = False

    def recent(self, tx_id: bytes) -> TxStatus | None:
        """The outcome of a tx that became final or was dropped recently, None if unknown."""
        return self._recent.get(tx_id)

    def _keep(self, status: TxStatus) -> None:
        recent = self._recent
        if status.tx_id in recent:  # a new key goes to the end anyway
            recent.move_to_end(status.tx_id)
        recent[status.tx_id] = status
        while len(recent) > self._kept_max:
            recent.popitem(last=False)

    # --- waiting -----------------------------------------------------------------------

    async def wait(self, tx_id: bytes, timeout_s: float) -> TxStatus | None:
        """The tx's outcome (FINAL, or UNKNOWN if dropped) once known; None on timeout or
        when the node stops first."""
        known = self._recent.get(tx_id)
        if known is not None:
            return known
        return (await self.wait_many((tx_id,), timeout_s))[0]

    async def wait_many(self, tx_ids: Sequence[bytes], timeout_s: float
                        ) -> list[TxStatus | None]:
        """`wait` for each of `tx_ids` at once, with one timer and one future: the outcome
        of each that became known within `timeout_s` (None for the others)."""
        recent = self._recent
        outcomes: list[TxStatus | None] = [recent.get(tx_id) for tx_id in tx_ids]
        remaining = outcomes.count(None)
        if not remaining or self._closed:
            return outcomes
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        waiter = _Waiter(future, outcomes, remaining)
        waiters = self._waiters
        for slot, tx_id in enumerate(tx_ids):
            if outcomes[slot] is None:
                entry = (waiter, slot)
                listed = waiters.get(tx_id)
                if listed is None:
                    waiters[tx_id] = [entry]
                else:
                    listed.append(entry)
        # A timer handle, not asyncio.wait_for: no extra task per wait (this runs once per
        # submit-and-wait, or once per batch of them).
        timer = loop.call_later(timeout_s, _expire, future)
        try:
            await future
        finally:
            timer.cancel()
            if waiter.remaining:  # forget the slots still waiting
                for slot, tx_id in enumerate(tx_ids):
                    if outcomes[slot] is None:
                        listed = waiters.get(tx_id)
                        if listed is not None:
                            with contextlib.suppress(ValueError):
                                listed.remove((waiter, slot))
                            if not listed:
                                del waiters[tx_id]
        return list(outcomes)

    def _resolve(self, status: TxStatus) -> None:
        for waiter, slot in self._waiters.pop(status.tx_id, ()):
            waiter.settle(slot, status)
        for subscription in self._txs.pop(status.tx_id, ()):
            subscription.push(status)
            subscription.end()

    # --- outcomes ----------------------------------------------------------------------

    def committed(self, block: CommittedBlock, finals: Iterable[TxStatus]) -> None:
        """A block was durably committed: its txs are final; tell waiters and subscribers.

        One pass over the block's txs with the tables at hand (no call per tx unless
        someone waits for it or subscribed); the recent outcomes are trimmed once."""
        height = block.block.header.height
        recent = self._recent
        waiters = self._waiters
        subscribed = self._txs
        addresses = self._addresses
        for status in finals:
            tx_id = status.tx_id
            if tx_id in recent:  # a new key goes to the end anyway
                recent.move_to_end(tx_id)
            recent[tx_id] = status
            waiting = waiters.pop(tx_id, None)
            if waiting is not None:
                for waiter, slot in waiting:
                    waiter.settle(slot, status)
            if subscribed:
                for subscription in subscribed.pop(tx_id, ()):
                    subscription.push(status)
                    subscription.end()
            if addresses:
                for event in status.events:
                    for _, value in event.attributes:
                        for subscription in addresses.get(value, ()):
                            subscription.push(AddressEvent(height, tx_id, status.index, event))
        kept_max = self._kept_max
        while len(recent) > kept_max:
            recent.popitem(last=False)
        for subscription in list(self._blocks):
            subscription.push(block)

    def dropped(self, statuses: Iterable[TxStatus]) -> None:
        """Txs that left the mempool without being committed (state UNKNOWN, with why)."""
        for status in statuses:
            self._keep(status)
            self._resolve(status)

    # --- subscriptions -----------------------------------------------------------------

    def subscribe_blocks(self) -> Subscription[CommittedBlock]:
        """Every block committed from now on."""
        subscription: Subscription[CommittedBlock] = Subscription(self._blocks.discard)
        if self._closed:
            subscription.end()
        else:
            self._blocks.add(subscription)
        return subscription

    def subscribe_tx(self, tx_id: bytes) -> Subscription[TxStatus]:
        """One item when the tx becomes final or is dropped, then the end (the caller checks
        the store for a tx that was final before)."""
        def forget(subscription: Subscription[TxStatus]) -> None:
            subscribers = self._txs.get(tx_id)
            if subscribers is not None:
                subscribers.discard(subscription)
                if not subscribers:
                    del self._txs[tx_id]

        subscription: Subscription[TxStatus] = Subscription(forget)
        known = self._recent.get(tx_id)
        if known is not None:
            subscription.push(known)
            subscription.end()
        elif self._closed:
            subscription.end()
        else:
            self._txs.setdefault(tx_id, set()).add(subscription)
        return subscription

    def subscribe_address(self, address_text: str) -> Subscription[AddressEvent]:
        """Events of final txs, from now on, with an attribute whose value is `address_text`."""
        def forget(subscription: Subscription[AddressEvent]) -> None:
            subscribers = self._addresses.get(address_text)
            if subscribers is not None:
                subscribers.discard(subscription)
                if not subscribers:
                    del self._addresses[address_text]

        subscription: Subscription[AddressEvent] = Subscription(forget)
        if self._closed:
            subscription.end()
        else:
            self._addresses.setdefault(address_text, set()).add(subscription)
        return subscription

    def close(self) -> None:
        """The node stops: waiters get None, every subscription ends."""
        self._closed = True
        for entries in self._waiters.values():
            for waiter, _ in entries:
                if not waiter.future.done():
                    waiter.future.set_result(None)
        self._waiters.clear()
        for subscription in list(self._blocks):
            subscription.end()
        for group in (*self._txs.values(), *self._addresses.values()):
            for subscription in list(group):
                subscription.end()
        self._blocks.clear()
        self._txs.clear()
        self._addresses.clear()
