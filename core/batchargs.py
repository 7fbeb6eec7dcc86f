"""Argument checks shared by the batch references (`core/verify.py`, `core/txwire.py`, …).

Each compiled kernel makes the same checks, in the same order, with the same
exception types, so a caller sees one behaviour whichever implementation runs:
TypeError for a non-buffer, ValueError for a malformed shape.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

from .constants import BATCH_ITEMS_MAX

Buffer = bytes | bytearray | memoryview


def item_count(offsets: Sequence[int]) -> int:
    """n, from the n + 1 offsets of a packed batch (ValueError past BATCH_ITEMS_MAX)."""
    entries = len(offsets)
    if entries < 1:
        raise ValueError("offsets must hold n + 1 entries, at least one")
    if entries - 1 > BATCH_ITEMS_MAX:
        raise ValueError(f"{entries - 1} items is over BATCH_ITEMS_MAX ({BATCH_ITEMS_MAX})")
    return entries - 1


def read_offsets(offsets: Sequence[int], n: int, data_len: int) -> list[int]:
    """The n + 1 offsets as ints, each in [0, data_len] and non-decreasing (ValueError)."""
    result = []
    previous = 0
    for k in range(n + 1):
        value = operator.index(offsets[k])
        if not 0 <= value <= data_len:
            raise ValueError(f"offsets[{k}] = {value} is outside [0, {data_len}]")
        if value < previous:
            raise ValueError(f"offsets decrease at index {k}")
        result.append(value)
        previous = value
    return result


def as_bytes(data: Buffer, what: str) -> bytes:
    """A bytes-like argument as bytes: TypeError for None, str or a non-buffer,
    ValueError for a buffer that is not contiguous bytes (the kernels' rules)."""
    if data is None or isinstance(data, str):
        raise TypeError(f"{what} must be bytes-like, got {type(data).__name__}")
    view = memoryview(data)
    if view.itemsize != 1 or not view.c_contiguous:
        raise ValueError(f"{what} must be a contiguous buffer of bytes")
    return view.tobytes()


def as_writable(data: bytearray, what: str) -> bytearray:
    """A bytearray argument (the kernels write into it): TypeError for anything else."""
    if type(data) is not bytearray:
        raise TypeError(f"{what} must be a bytearray, got {type(data).__name__}")
    return data


def index_in(value: int, low: int, high: int, what: str) -> int:
    """An int argument in [low, high]: TypeError for a non-int (bool included), else
    ValueError outside the range."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, got {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{what} {value} is outside [{low}, {high}]")
    return value
