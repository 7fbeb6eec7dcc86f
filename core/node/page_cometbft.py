"""The product page's anchor on a CometBFT network: the header its light client verified.

In a CometBFT network the state root after height h is the app hash of the
header at h + 1, certified by CometBFT's commit of h + 1 (docs/page.md
section 3.6). `LightClientAnchors` gives `PageReader` that header for the
state of a read snapshot (tip h): it waits up to
`PAGE_COMETBFT_HEADER_WAIT_MS` for CometBFT to commit h + 1, fetches the
signed header and validator set of h + 1 from the node's CometBFT RPC and
verifies them with `core/light.py` from the latest header it trusts (at
first the genesis validators' header at height 1, `core/proof_bundle.py`),
bisecting when the set changed too much, as `chainmall verify` does; a
height below the latest trusted one is verified backwards through the hash
links. Only then is it served, with the header's app hash checked against
the snapshot's root. On an idle chain (no h + 1 yet) the header at h serves
when it commits the same root: the state did not change in block h, so the
snapshot is the state at h - 1 too.

The node trusts its own CometBFT no more than a remote one: a header that
does not verify, or that commits another root than the node's state, is an
error, never an anchor.

Trust across restarts and silences: with a `store` path (the node's
`DATA/light-client.json`, `light_store.py`) the latest trusted header is
written there after every advance and read back at start, so a restarted
node resumes from it instead of walking from genesis (a damaged file, or one
of another chain, is discarded with a warning: the genesis header is still a
sound start). `refresh()` advances the trust to CometBFT's latest header;
`LightClientRefresher` calls it every `LIGHT_REFRESH_MS` while the node runs,
so an idle node never lets its trust grow older than the trusting period.
When the latest trusted header has expired anyway (the node was stopped
longer than that, or the chain made no block), every anchor is a
`TrustedHeaderExpired` saying so, logged, and the page shows that message
instead of any verdict.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from .. import light
from ..abci.cometbft_rpc import CometRpc
from ..constants import LIGHT_REFRESH_MS, LIGHT_REFRESH_RETRY_MS, PAGE_COMETBFT_HEADER_WAIT_MS
from ..errors import ChainmallError, LightStoreInvalid, NotFound, StorageError, TrustedHeaderExpired
from ..proof_bundle import TrustRoot, advance, retreat, trusted_start
from ..store import StoreView
from .light_store import TrustedState, load_state, save_state

log = logging.getLogger("chainmall.node.light")

CHECKED_BY_LIGHT_CLIENT = "light-client"
_POLL_S = 0.05  # between two looks at CometBFT's height while waiting for h + 1


@dataclass(frozen=True, slots=True)
class LightClientAnchor:
    """The state of `height` under `root`, committed by the verified header `block` (at
    `height` + 1); `trusted` the trust root (height, header hash) it was verified from."""

    height: int
    root: bytes
    block: light.LightBlock
    trusted: tuple[int, bytes]

    def to_json(self) -> dict[str, Any]:
        header = self.block.header
        return {"checked_by": CHECKED_BY_LIGHT_CLIENT, "height": self.height,
                "header": header.SerializeToString().hex(),
                "commit": self.block.commit.SerializeToString().hex(),
                "validators": light.encode_validator_set(
                    self.block.validators, header.proposer_address).hex(),
                "trusted": {"height": self.trusted[0], "hash": self.trusted[1].hex()}}


class LightClientAnchors:
    """The page's `AnchorSource` on a CometBFT node (see the module docstring)."""

    def __init__(self, rpc: CometRpc, trust: TrustRoot,
                 wait_ms: int = PAGE_COMETBFT_HEADER_WAIT_MS,
                 options: light.TrustOptions = light.DEFAULT_TRUST,
                 clock: Callable[[], float] = time.monotonic,
                 wall_ns: Callable[[], int] = time.time_ns,
                 store: Path | None = None) -> None:
        self.rpc = rpc
        self.trust = trust
        self.wait_ms = wait_ms
        self.options = options
        self.store = store
        self._clock = clock
        self._wall_ns = wall_ns
        self._lock = threading.Lock()  # the page's read threads and the refresher share it
        self._state: TrustedState | None = None
        self.resumed_from: int | None = None  # the stored header's height, when one was read
        if store is not None:
            self._resume(store)

    @property
    def latest(self) -> light.LightBlock | None:
        """The latest header the light client trusts (None before the first)."""
        state = self._state
        return None if state is None else state.latest

    def _resume(self, store: Path) -> None:
        try:
            state = load_state(store, self.trust)
        except LightStoreInvalid as exc:
            log.warning("light client: discarding the stored trusted header: %s; starting "
                        "again from the genesis validators' header", exc)
            return
        if state is None:
            return
        self._state = state
        self.resumed_from = state.latest.height
        log.info("light client: resumed from the trusted header at height %d stored in %s "
                 "(trusted until %s)", state.latest.height, store,
                 _format_ns(light.expires_ns(state.latest, self.options)))
        try:
            light.check_not_expired(state.latest, self._wall_ns(), self.options)
        except TrustedHeaderExpired as exc:
            log.error("light client: %s; item histories cannot be anchored", exc)

    def anchor(self, view: StoreView) -> LightClientAnchor:
        """The verified header that commits `view`'s state; NotFound when CometBFT has no
        such header yet, StorageError when it commits another root than the node's,
        TrustedHeaderExpired when the light client's trust has expired."""
        tip = view.last()
        if tip.height == 0:
            raise NotFound("no block has been committed yet")
        root = tip.app_hash
        if self._wait_for(tip.height + 1):
            block, trusted = self._verified(tip.height + 1)
            height = tip.height
        else:
            block, trusted = self._verified(tip.height)
            height = tip.height - 1
            if block.header.app_hash != root:
                raise NotFound(f"CometBFT has no header after height {tip.height} yet (an "
                               "idle chain): the history cannot be proven now, try again")
        if block.header.app_hash != root:
            raise StorageError(f"the verified CometBFT header at {block.height} commits app "
                               f"hash {block.header.app_hash.hex()}, the node's state at "
                               f"{tip.height} has root {root.hex()}")
        return LightClientAnchor(height, root, block, trusted)

    def refresh(self) -> int:
        """Advance the trust to CometBFT's latest header (verified, and stored); the height
        trusted now (0: CometBFT has no block yet). TrustedHeaderExpired when it is too late
        for that."""
        target = self.rpc.height()
        if target < 1 and self._state is None:
            return 0
        with self._lock:
            state = self._trusted_state()
            if target > state.latest.height:
                return self._advance(state, target).height
            return state.latest.height

    def _wait_for(self, height: int) -> bool:
        """Whether CometBFT has committed `height`, polling up to `wait_ms`."""
        end = self._clock() + self.wait_ms / 1000
        while self.rpc.height() < height:
            if self._clock() >= end:
                return False
            time.sleep(_POLL_S)  # blocks come on CometBFT's schedule
        return True

    def _trusted_state(self) -> TrustedState:
        """The light client's state (the genesis header when it has none yet), checked
        unexpired at the wall clock's now. Holds the lock."""
        if self._state is None:
            start = trusted_start(self.rpc, self.trust)
            log.info("light client: trusting the genesis validators' header at height %d",
                     start.height)
            self._state = TrustedState(start.height, start.hash(), start)
            self._save(self._state)
        try:
            light.check_not_expired(self._state.latest, self._wall_ns(), self.options)
        except TrustedHeaderExpired as exc:
            message = (f"the node's light client cannot verify a newer CometBFT header: "
                       f"{exc}; the history cannot be proven on this node until its trust "
                       "is renewed")
            log.error("light client: %s", message)
            raise TrustedHeaderExpired(message) from None
        return self._state

    def _advance(self, state: TrustedState, height: int) -> light.LightBlock:
        block = advance(self.rpc, state.latest, height, self._wall_ns(), self.options)
        self._state = TrustedState(state.root_height, state.root_hash, block)
        self._save(self._state)
        return block

    def _save(self, state: TrustedState) -> None:
        if self.store is not None:
            save_state(self.store, state, self.trust)

    def _verified(self, height: int) -> tuple[light.LightBlock, tuple[int, bytes]]:
        """(the light block of `height` verified by the light client, its trust root)."""
        with self._lock:
            state = self._trusted_state()
            latest = state.latest
            trusted = (state.root_height, state.root_hash)
            if height == latest.height:
                return latest, trusted
            if height > latest.height:
                return self._advance(state, height), trusted
            # below the latest (a request that raced a newer one, or a refresh): backwards
            return retreat(self.rpc, latest, height), trusted


class LightClientRefresher:
    """Calls `anchors.refresh()` at start and then every `interval_ms` while the node runs,
    after `retry_ms` when it failed or CometBFT had no block yet (CometBFT starts with the
    node); a front end of the node's supervisor: `start()` and `stop()` on the event loop."""

    def __init__(self, anchors: LightClientAnchors, interval_ms: int = LIGHT_REFRESH_MS,
                 retry_ms: int = LIGHT_REFRESH_RETRY_MS) -> None:
        self.anchors = anchors
        self.interval_ms = interval_ms
        self.retry_ms = retry_ms
        self.refreshes = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            delay_ms = self.retry_ms
            try:
                height = await asyncio.to_thread(self.anchors.refresh)
                if height:
                    delay_ms = self.interval_ms
                    log.debug("light client: trusted up to height %d", height)
            except TrustedHeaderExpired:
                delay_ms = self.interval_ms  # logged where it was found; a retry cannot help
            except (ChainmallError, OSError) as exc:  # at start CometBFT may not answer yet
                log.log(logging.INFO if self.refreshes == 0 else logging.WARNING,
                        "light client: refreshing the trusted header failed: %s (tried again "
                        "in %g s)", exc, self.retry_ms / 1000)
            self.refreshes += 1
            await asyncio.sleep(delay_ms / 1000)  # a periodic refresh


def _format_ns(when_ns: int) -> str:
    return light.format_time(Timestamp(seconds=when_ns // 1_000_000_000))
