"""A store snapshot one block behind, with that block's state changes laid over it.

While the state machine's writer thread makes block N durable
(`StateMachine.defer_writes`), block N+1 executes over the committed state
of N: a read snapshot of the store taken before N's write transaction
commits shows N-1, so the reads N+1 makes go through N's changes first (the
same mapping its `BlockCommit.state_changes` hands the store: key -> new
value, None deleted, in key order). The tree's nodes need nothing here: the
state machine already reads N's new nodes from memory first (`RecentNodes`),
and every node of N's tree that N did not make is in N-1's snapshot
(pruning deletes only nodes stale `retain_heights` blocks before N-1's).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Mapping, Sequence

from ..store import ChainTip, StoreView

__all__ = ["UnwrittenView"]

_ABSENT = object()


class UnwrittenView:
    """`view` (the store at the parent of `tip`) with `changes` (the block at `tip`: key
    -> value, None deleted) over its state reads: what the store will hold at `tip`."""

    __slots__ = ("_changes", "_keys", "_tip", "_view")

    def __init__(self, view: StoreView, changes: Mapping[bytes, bytes | None],
                 tip: ChainTip) -> None:
        self._view = view
        self._changes = changes
        self._keys: list[bytes] | None = None  # the changed keys, sorted (state_range)
        self._tip = tip

    def get_state(self, key: bytes) -> bytes | None:
        value = self._changes.get(key, _ABSENT)
        return self._view.get_state(key) if value is _ABSENT else value  # type: ignore[return-value]

    def get_states(self, keys: Sequence[bytes]) -> list[bytes | None]:
        """`get_state` of each key: the store asked once, the block's changes laid over."""
        found = self._view.get_states(keys)
        changes = self._changes
        if changes.keys().isdisjoint(keys):
            return found
        return [changes.get(key, value)
                for key, value in zip(keys, found, strict=True)]

    def state_range(self, start: bytes, end: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Entries with start <= key < end (one table) in key order, the block's changes
        merged in."""
        keys = self._keys
        if keys is None:
            keys = self._keys = sorted(self._changes)
        low, high = bisect_left(keys, start), bisect_left(keys, end)
        if low == high:
            return self._view.state_range(start, end)
        return self._merged(self._view.state_range(start, end), keys[low:high])

    def _merged(self, stored: Iterator[tuple[bytes, bytes]],
                changed: list[bytes]) -> Iterator[tuple[bytes, bytes]]:
        changes = self._changes
        index, count = 0, len(changed)
        try:
            for key, value in stored:
                while index < count and changed[index] < key:
                    new = changes[changed[index]]
                    if new is not None:
                        yield changed[index], new
                    index += 1
                if index < count and changed[index] == key:
                    new = changes[key]
                    index += 1
                    if new is not None:
                        yield key, new
                    continue
                yield key, value
            for key in changed[index:]:
                new = changes[key]
                if new is not None:
                    yield key, new
        finally:
            close = getattr(stored, "close", None)
            if close is not None:
                close()

    def get_node(self, node_hash: bytes) -> bytes | None:
        return self._view.get_node(node_hash)

    def get_nodes(self, node_hashes: list[bytes]) -> list[bytes | None]:
        return self._view.get_nodes(node_hashes)

    def last(self) -> ChainTip:
        """The tip the store will hold once the block is written."""
        return self._tip
