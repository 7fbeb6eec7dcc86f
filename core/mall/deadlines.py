"""The deadline index: waiting states ordered by block time, so expiry is a range read.

An entry `0x21 || due_ms u64 || kind u8 || order id` exists for every escrow
in a waiting state (kind 1) and every open dispute round (kind 2); the object
remembers its `due_ms`, so a transition deletes its old entry in O(1). The
begin-block hook reads the entries due at or before the block time in key
order, at most DEADLINES_PER_BLOCK_MAX per block (the rest stay due and go
first in the next block), so a block pays for what expires in it, however
many orders are open (docs/mall.md section 9.3).
"""

from __future__ import annotations

from ..constants import DEADLINES_PER_BLOCK_MAX
from . import keys
from .codec import MARK, MallState, StateReader, check_mark
from .funds import invariant


def schedule(state: MallState, due_ms: int, kind: int, order_id: bytes) -> None:
    state.set(keys.deadline(due_ms, kind, order_id), MARK)


def unschedule(state: MallState, due_ms: int, kind: int, order_id: bytes) -> None:
    key = keys.deadline(due_ms, kind, order_id)
    invariant(state.get(key) is not None, f"no deadline entry at {due_ms} for "
                                          f"{order_id.hex()}")
    state.delete(key)


def due(state: StateReader, now_ms: int,
        limit: int = DEADLINES_PER_BLOCK_MAX) -> list[tuple[int, int, bytes]]:
    """(due_ms, kind, order id) of the first `limit` entries due at or before `now_ms`."""
    start, end = keys.deadlines_due(now_ms)
    found = []
    for key, value in state.scan(start, end, limit):
        check_mark(value, "deadline")
        found.append(keys.parse_deadline(key))
    return found
