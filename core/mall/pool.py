"""The arbitrator pool: a dense array of bonded arbitrators, so a draw is O(1) per probe.

Slots `0x12 || index u32` hold addresses for indexes 0..size-1; the size is
`keys.POOL_SIZE`; each party entry remembers its slot (`pool_index`, or
`NOT_IN_POOL`). Removal moves the last slot into the hole, so the array
stays dense and every update touches at most three entries.
"""

from __future__ import annotations

from ..constants import ADDRESS_BYTES, ARBITRATOR_POOL_MAX
from ..errors import DecodeError
from . import keys
from .codec import MallState, StateReader, value_reader, writer
from .funds import invariant

NOT_IN_POOL = 2**32 - 1


def pool_size(state: StateReader) -> int:
    raw = state.get(keys.POOL_SIZE)
    if raw is None:
        return 0
    reader = value_reader(raw, "pool size")
    size = reader.u32("size")
    reader.finish()
    return size


def pool_member(state: StateReader, index: int) -> bytes:
    """The address in slot `index` (< pool_size)."""
    raw = state.get(keys.pool_slot(index))
    if raw is None:
        raise DecodeError(f"pool slot {index} is empty below the pool size")
    reader = value_reader(raw, "pool slot")
    address = reader.fixed(ADDRESS_BYTES, "address")
    reader.finish()
    return address


def _set_size(state: MallState, size: int) -> None:
    state.set(keys.POOL_SIZE, writer().u32(size).getvalue())


def pool_add(state: MallState, address: bytes) -> int | None:
    """Append `address`; its slot index, or None when the pool is full (ARBITRATOR_POOL_MAX)."""
    size = pool_size(state)
    if size >= ARBITRATOR_POOL_MAX:
        return None
    state.set(keys.pool_slot(size), writer().fixed(address, ADDRESS_BYTES).getvalue())
    _set_size(state, size + 1)
    return size


def pool_remove(state: MallState, index: int) -> bytes | None:
    """Empty slot `index`, moving the last member into it; the moved address (None if the
    removed slot was the last). The caller updates the moved party's `pool_index`."""
    size = pool_size(state)
    invariant(0 <= index < size, f"pool slot {index} outside the pool of {size}")
    last = size - 1
    moved = None
    if index != last:
        moved = pool_member(state, last)
        state.set(keys.pool_slot(index), writer().fixed(moved, ADDRESS_BYTES).getvalue())
    state.delete(keys.pool_slot(last))
    _set_size(state, last)
    return moved
