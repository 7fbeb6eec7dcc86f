"""The chainmall txs a CometBFT tx carries, decoded once per node.

A CometBFT tx (a batch envelope or a plain tx) reaches the application up to
four times on a validator: CheckTx when it arrives, then in the block's
PrepareProposal (the proposer's), ProcessProposal and FinalizeBlock.
`DecodedTxs` keeps what CheckTx (or a proposal) decoded, keyed by the
CometBFT tx's exact bytes, so the later calls take the envelope apart and
decode its txs only once. Decoding is a pure function of the bytes, so a hit
gives exactly what decoding again would; the state machine still checks
every decoded tx against its signature cache (or verifies it) before it
executes: nothing here says a tx is valid.

Bounded: at most `limit` carried txs are kept (ABCI_DECODED_TXS_MAX), the
oldest forgotten first; a block's CometBFT txs are forgotten once it is
finalized.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence

from ..constants import ABCI_DECODED_TXS_MAX
from ..tx import Tx
from .envelope import flatten


class DecodedTxs:
    """CometBFT tx bytes -> (the decoded txs it carries, its envelope count: 0 for a plain
    tx), for txs whose every carried tx decoded. Thread-safe."""

    __slots__ = ("_entries", "_held", "_limit", "_lock", "hits", "misses")

    def __init__(self, limit: int = ABCI_DECODED_TXS_MAX) -> None:
        # Ordered, oldest first: OrderedDict's popitem(last=False) is O(1), where dropping
        # a plain dict's first entry again and again walks its deleted slots.
        self._entries: OrderedDict[bytes, tuple[tuple[Tx, ...], int]] = OrderedDict()
        self._held = 0  # carried txs in `_entries`
        self._limit = limit
        self._lock = threading.Lock()
        self.hits = 0  # CometBFT txs found by `flatten`
        self.misses = 0  # ... and taken apart again

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def carried(self) -> int:
        """Carried txs held."""
        return self._held

    def remember(self, raw: bytes, txs: Sequence[Tx | None], count: int) -> None:
        """Keep `txs`, what CometBFT tx `raw` carries decoded (`count`: its envelope count,
        0 for a plain tx); nothing is kept if one of them did not decode (None)."""
        if any(tx is None for tx in txs) or not 0 < len(txs) <= self._limit:
            return
        key = bytes(raw)
        with self._lock:
            entries = self._entries
            old = entries.pop(key, None)
            if old is not None:
                self._held -= len(old[0])
            entries[key] = (tuple(txs), count)  # type: ignore[arg-type]
            self._held += len(txs)
            while self._held > self._limit:
                self._held -= len(entries.popitem(last=False)[1][0])

    def forget(self, raws: Iterable[bytes]) -> None:
        """Drop what is kept for `raws` (a finalized block's txs)."""
        with self._lock:
            for raw in raws:
                entry = self._entries.pop(raw, None)
                if entry is not None:
                    self._held -= len(entry[0])

    def flatten(self, raws: Sequence[bytes]) -> tuple[list[Tx | bytes], list[int]]:
        """`envelope.flatten(raws)`, with the decoded tx in place of the wire bytes of
        every carried tx kept here (the same txs, the same counts)."""
        flat: list[Tx | bytes] = []
        counts: list[int] = []
        entries = self._entries
        hits = 0
        with self._lock:
            found = [entries.get(raw) for raw in raws]
        for raw, entry in zip(raws, found, strict=True):
            if entry is not None:
                flat.extend(entry[0])
                counts.append(entry[1])
                hits += 1
                continue
            inner, count = flatten([raw])
            flat.extend(inner)
            counts.append(count[0])
        self.hits += hits
        self.misses += len(raws) - hits
        return flat, counts
