"""Fuzzing helpers shared by the decoder tests: byte mutations and the canonical check."""

from __future__ import annotations

from collections.abc import Callable

from chainmall.core.errors import DecodeError
from hypothesis import strategies as st


def mutations(seed: bytes) -> st.SearchStrategy[bytes]:
    """`seed` with one flip, insertion, deletion, truncation or extension."""
    size = len(seed)
    flip = st.tuples(st.integers(0, size - 1), st.integers(1, 255)).map(
        lambda p: seed[: p[0]] + bytes([seed[p[0]] ^ p[1]]) + seed[p[0] + 1 :])
    insert = st.tuples(st.integers(0, size), st.binary(min_size=1, max_size=8)).map(
        lambda p: seed[: p[0]] + p[1] + seed[p[0] :])
    delete = st.tuples(st.integers(0, size - 1), st.integers(1, 8)).map(
        lambda p: seed[: p[0]] + seed[p[0] + p[1] :])
    truncate = st.integers(0, size - 1).map(lambda n: seed[:n])
    extend = st.binary(min_size=1, max_size=16).map(lambda tail: seed + tail)
    return st.one_of(flip, insert, delete, truncate, extend)


def check_canonical(decode: Callable[[bytes], object], data: bytes) -> None:
    """Either a DecodeError, or a value whose encoding is exactly `data`."""
    try:
        value = decode(data)
    except DecodeError:
        return
    assert value.encode() == data  # type: ignore[attr-defined]
