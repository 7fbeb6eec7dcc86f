"""How many txs the next block may take, by what the last blocks cost.

One mechanism for both engines: the in-process producer (core/node/producer.py)
caps the blocks it reaps with it, and the application caps its own
PrepareProposal under CometBFT with it (core/abci/app.py). It only shapes
what a node proposes; no validator's verdict on a block depends on it.
"""

from __future__ import annotations

from ..constants import BLOCK_TXS_ADAPTIVE_MIN, BLOCK_TXS_ADAPTIVE_START


class BlockSizer:
    """How many txs the next block may take: what the last blocks' execution and commit
    time says fits in `target_ms`, between `floor` (default BLOCK_TXS_ADAPTIVE_MIN) and
    `txs_max`, starting at `start` (default BLOCK_TXS_ADAPTIVE_START).

    The estimate moves halfway to each new measurement, and only when one says
    something about the cap: a block that overran the target (shrink), or a
    full block (grow or shrink). A partly filled block that ended in time
    leaves it (its time is mostly the block's fixed cost)."""

    def __init__(self, txs_max: int, target_ms: float, *, floor: int = BLOCK_TXS_ADAPTIVE_MIN,
                 start: int = BLOCK_TXS_ADAPTIVE_START) -> None:
        if txs_max < 1 or target_ms <= 0 or floor < 1 or start < 1:
            raise ValueError("a block takes at least one tx, in a positive time target")
        self.txs_max = txs_max
        self.target_ms = target_ms
        self._floor = min(floor, txs_max)
        self.cap = max(self._floor, min(start, txs_max))

    def observe(self, txs: int, took_ms: float) -> None:
        """A block of `txs` txs took `took_ms` to execute and commit."""
        if txs < 1 or (txs < self.cap and took_ms <= self.target_ms):
            return
        fits = txs * self.target_ms / max(took_ms, 0.001)
        self.cap = max(self._floor, min(self.txs_max, int((self.cap + fits) / 2)))
