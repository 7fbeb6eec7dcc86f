"""One client connection's RPC state, whatever its transport: auth, rate, subscriptions.

A transport (a TCP/Unix stream, a WebSocket, one HTTP POST) subclasses
`Session` with how to send a frame and how to close. Subscriptions live
here: each is a task that reads the node's async iterator and pushes every
item as a `subscription` notification, and a `subscription_end`
notification when the node ends it (never after `unsubscribe`). A session
that cannot take what is pushed (its send buffer is over the limit) is
closed by its transport, so a client that stops reading costs bounded memory.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from ..errors import ChainmallError, LimitExceeded
from .config import RpcLimits
from .jsonrpc import INTERNAL_ERROR, RpcFault, domain_fault, notification

LOG = logging.getLogger("chainmall.rpc")


class TokenBucket:
    """Requests allowed per second with a burst: `take` is True while tokens remain."""

    __slots__ = ("_capacity", "_rate_per_s", "_stamp", "_tokens")

    def __init__(self, rate_per_s: int, capacity: int) -> None:
        self._rate_per_s = float(rate_per_s)
        self._capacity = float(capacity)
        self._tokens = float(capacity)
        self._stamp = time.monotonic()

    def take(self, count: int = 1) -> bool:
        """Spend `count` tokens if there are that many (after refilling)."""
        now = time.monotonic()
        self._tokens = min(self._capacity, self._tokens + (now - self._stamp) * self._rate_per_s)
        self._stamp = now
        if self._tokens < count:
            return False
        self._tokens -= count
        return True


class _Subscription:
    __slots__ = ("iterator", "render", "started", "task")

    def __init__(self, iterator: AsyncIterator[Any], render: Callable[[Any], Any]) -> None:
        self.iterator = iterator
        self.render = render
        self.started = False
        self.task: asyncio.Task[None] | None = None


class Session:
    """The transport-independent half of a connection (see the module docstring)."""

    kind = "session"
    supports_subscriptions = True

    def __init__(self, limits: RpcLimits, peer: str, authenticated: bool) -> None:
        self.limits = limits
        self.peer = peer
        self.authenticated = authenticated
        self.closed = False
        self.close_after_response = False  # set by a failed `auth`
        self.inflight = 0
        self.last_activity = time.monotonic()
        self._rate = TokenBucket(limits.requests_per_s_max, limits.requests_burst_max)
        self._subscriptions: dict[str, _Subscription] = {}
        self._next_subscription = 1

    # --- what a transport provides ---------------------------------------------

    def send(self, payload: bytes) -> None:
        """Queue one encoded message for the client (never blocks; may close the session)."""
        raise NotImplementedError

    def close(self, reason: str = "") -> None:
        """Close the connection; subscriptions end, in-flight results are dropped."""
        raise NotImplementedError

    def abort(self) -> None:
        """Drop the connection at once, without flushing (the default: `close`)."""
        self.close("aborted")

    # --- shared ---------------------------------------------------------------------

    def take_requests(self, count: int) -> bool:
        """Charge `count` requests to this connection's rate; False when over it."""
        return self._rate.take(count)

    @property
    def subscription_count(self) -> int:
        """Open subscriptions."""
        return len(self._subscriptions)

    def is_idle(self, now: float) -> bool:
        """No request in flight, no subscription, and nothing received for the idle limit."""
        return (self.inflight == 0 and not self._subscriptions
                and now - self.last_activity >= self.limits.idle_ms_max / 1000)

    def subscribe(self, iterator: AsyncIterator[Any], render: Callable[[Any], Any]) -> str:
        """Register a subscription (started by `start_subscriptions`); its id."""
        if not self.supports_subscriptions:
            raise LimitExceeded("subscriptions need a connection: use TCP, Unix or WebSocket")
        if len(self._subscriptions) >= self.limits.subscriptions_max:
            raise LimitExceeded(f"{len(self._subscriptions)} subscriptions on this connection,"
                                f" limit {self.limits.subscriptions_max}")
        subscription_id = f"{self._next_subscription:x}"
        self._next_subscription += 1
        self._subscriptions[subscription_id] = _Subscription(iterator, render)
        return subscription_id

    def start_subscriptions(self) -> None:
        """Start pushing for subscriptions whose `subscribe` answer has now been sent."""
        for subscription_id, subscription in self._subscriptions.items():
            if not subscription.started and not self.closed:
                subscription.started = True
                subscription.task = asyncio.get_running_loop().create_task(
                    self._pump(subscription_id, subscription))

    def unsubscribe(self, subscription_id: str) -> bool:
        """End a subscription without a `subscription_end` notice; False if unknown."""
        subscription = self._subscriptions.pop(subscription_id, None)
        if subscription is None:
            return False
        self._stop(subscription)
        return True

    def end_subscriptions(self) -> None:
        """Stop every subscription (the connection is closing)."""
        subscriptions = list(self._subscriptions.values())
        self._subscriptions.clear()
        for subscription in subscriptions:
            self._stop(subscription)

    def _stop(self, subscription: _Subscription) -> None:
        if subscription.task is not None:
            subscription.task.cancel()
        else:  # never started: close the node's iterator here
            _close_later(subscription.iterator)

    async def _pump(self, subscription_id: str, subscription: _Subscription) -> None:
        reason: dict[str, Any] = {"reason": "end"}
        try:
            async for item in subscription.iterator:
                if self.closed:
                    return
                self.send(notification("subscription", {
                    "subscription": subscription_id, "result": subscription.render(item)}))
        except asyncio.CancelledError:
            raise
        except ChainmallError as error:
            reason = {"reason": "error", "error": domain_fault(error).error_object()}
        except Exception:
            LOG.exception("subscription %s of %s failed", subscription_id, self.peer)
            reason = {"reason": "error",
                      "error": RpcFault(INTERNAL_ERROR, "internal error").error_object()}
        finally:
            await _close_iterator(subscription.iterator)
        if self._subscriptions.pop(subscription_id, None) is not None and not self.closed:
            self.send(notification("subscription_end", {"subscription": subscription_id,
                                                        **reason}))


async def _close_iterator(iterator: AsyncIterator[Any]) -> None:
    aclose = getattr(iterator, "aclose", None)
    if aclose is None:
        return
    try:
        await aclose()
    except Exception:  # a node iterator that fails while closing must not stop the RPC
        LOG.exception("closing a subscription iterator failed")


_CLOSING: set[asyncio.Task[None]] = set()  # strong references until each close is done


def _close_later(iterator: AsyncIterator[Any]) -> None:
    if getattr(iterator, "aclose", None) is not None:
        task = asyncio.get_running_loop().create_task(_close_iterator(iterator))
        _CLOSING.add(task)
        task.add_done_callback(_CLOSING.discard)
