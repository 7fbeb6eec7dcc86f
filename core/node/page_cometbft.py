"""The product page's anchor on a CometBFT network: the header its light client verified.

In a CometBFT network the state root after height h is the app hash of the
header at h + 1, certified by CometBFT's commit of h + 1 (docs/page.md
section 3.6). `LightClientAnchors` gives `PageReader` that header for the
state of a read snapshot (tip h): it waits up to
`PAGE_COMETBFT_HEADER_WAIT_MS` for CometBFT to commit h + 1, fetches the
signed header and validator set of h + 1 from the node's CometBFT RPC and
verifies them with `core/light.py` from a trusted start (the genesis
validators' header at height 1, `core/proof_bundle.py`), each later header
from the last one verified (bisecting when the set changed too much), as
`chainmall verify` does. Only then is it served, with the header's app hash
checked against the snapshot's root. On an idle chain (no h + 1 yet) the
header at h serves when it commits the same root: the state did not change
in block h, so the snapshot is the state at h - 1 too.

The node trusts its own CometBFT no more than a remote one: a header that
does not verify, or that commits another root than the node's state, is an
error, never an anchor. The light client keeps its latest verified header;
like CometBFT's, it stops trusting it after the trusting period
(`LIGHT_TRUSTING_PERIOD_MS_DEFAULT`), so an item history asked for after a
longer silence is a LightClientError (starting again from a newer trusted
header is not done: the start is always the genesis header).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import light
from ..abci.cometbft_rpc import CometRpc
from ..constants import PAGE_COMETBFT_HEADER_WAIT_MS
from ..errors import NotFound, StorageError
from ..proof_bundle import TrustRoot, advance, trusted_start
from ..store import StoreView

CHECKED_BY_LIGHT_CLIENT = "light-client"
_POLL_S = 0.05  # between two looks at CometBFT's height while waiting for h + 1


@dataclass(frozen=True, slots=True)
class LightClientAnchor:
    """The state of `height` under `root`, committed by the verified header `block` (at
    `height` + 1), verified from the trusted header `start`."""

    height: int
    root: bytes
    block: light.LightBlock
    start: light.LightBlock

    def to_json(self) -> dict[str, Any]:
        header = self.block.header
        return {"checked_by": CHECKED_BY_LIGHT_CLIENT, "height": self.height,
                "header": header.SerializeToString().hex(),
                "commit": self.block.commit.SerializeToString().hex(),
                "validators": light.encode_validator_set(
                    self.block.validators, header.proposer_address).hex(),
                "trusted": {"height": self.start.height, "hash": self.start.hash().hex()}}


class LightClientAnchors:
    """The page's `AnchorSource` on a CometBFT node (see the module docstring)."""

    def __init__(self, rpc: CometRpc, trust: TrustRoot,
                 wait_ms: int = PAGE_COMETBFT_HEADER_WAIT_MS,
                 options: light.TrustOptions = light.DEFAULT_TRUST,
                 clock: Callable[[], float] = time.monotonic,
                 wall_ns: Callable[[], int] = time.time_ns) -> None:
        self.rpc = rpc
        self.trust = trust
        self.wait_ms = wait_ms
        self.options = options
        self._clock = clock
        self._wall_ns = wall_ns
        self._lock = threading.Lock()  # the page's read threads share one light client
        self._start: light.LightBlock | None = None
        self._latest: light.LightBlock | None = None

    def anchor(self, view: StoreView) -> LightClientAnchor:
        """The verified header that commits `view`'s state; NotFound when CometBFT has no
        such header yet, StorageError when it commits another root than the node's."""
        tip = view.last()
        if tip.height == 0:
            raise NotFound("no block has been committed yet")
        root = tip.app_hash
        if self._wait_for(tip.height + 1):
            block, start = self._verified(tip.height + 1)
            height = tip.height
        else:
            block, start = self._verified(tip.height)
            height = tip.height - 1
            if block.header.app_hash != root:
                raise NotFound(f"CometBFT has no header after height {tip.height} yet (an "
                               "idle chain): the history cannot be proven now, try again")
        if block.header.app_hash != root:
            raise StorageError(f"the verified CometBFT header at {block.height} commits app "
                               f"hash {block.header.app_hash.hex()}, the node's state at "
                               f"{tip.height} has root {root.hex()}")
        return LightClientAnchor(height, root, block, start)

    def _wait_for(self, height: int) -> bool:
        """Whether CometBFT has committed `height`, polling up to `wait_ms`."""
        end = self._clock() + self.wait_ms / 1000
        while self.rpc.height() < height:
            if self._clock() >= end:
                return False
            time.sleep(_POLL_S)  # blocks come on CometBFT's schedule
        return True

    def _verified(self, height: int) -> tuple[light.LightBlock, light.LightBlock]:
        """(the light block of `height` verified by the light client, its trusted start)."""
        with self._lock:
            if self._start is None:
                self._start = self._latest = trusted_start(self.rpc, self.trust)
            start, latest = self._start, self._latest
            assert latest is not None
            for known in (start, latest):
                if known.height == height:
                    return known, start
            # a height below the latest (a request that raced a newer one): from the start
            base = latest if height > latest.height else start
            block = advance(self.rpc, base, height, self._wall_ns(), self.options)
            if height > latest.height:
                self._latest = block
            return block, start

