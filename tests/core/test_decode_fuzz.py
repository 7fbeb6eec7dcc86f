"""Decoders against random and mutated bytes: only DecodeError, never a partial object.

Every input either decodes to a value whose encoding is exactly the input
(canonical), or raises a DecodeError subclass. Hypothesis runs derandomized
(tests/conftest.py), so a failure replays.
"""

from __future__ import annotations

from collections.abc import Callable

from chainmall.core.block import CommitCert, CommitSig, decode_block, decode_commit, make_block
from chainmall.core.errors import DecodeError
from chainmall.core.keys import KeyPair
from chainmall.core.tx import decode_tx, sign_tx
from hypothesis import given, settings
from hypothesis import strategies as st

KEY = KeyPair.from_seed(bytes(range(32)))
TX = sign_tx(KEY, "fuzz-chain", 1, 7, 10, 100, b"payload bytes")
BLOCK = make_block("fuzz-chain", 5, bytes(32), 1_700_000_000_000, KEY.public_key,
                   [TX, sign_tx(KEY, "fuzz-chain", 1, 8, 10, 100, b"")], bytes(32), bytes(32))
COMMIT = CommitCert(5, 0, BLOCK.hash(), (CommitSig(0, bytes(64)), CommitSig(3, bytes(64))))
BLOCK_WITH_COMMIT = type(BLOCK)(BLOCK.header, BLOCK.txs, COMMIT)


def _mutations(seed: bytes) -> st.SearchStrategy[bytes]:
    """Seed bytes with a flip, an insertion, a deletion, a truncation or an extension."""
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


def _check(decode: Callable[[bytes], object], data: bytes) -> None:
    try:
        value = decode(data)
    except DecodeError:
        return
    assert value.encode() == data  # type: ignore[attr-defined]


@settings(max_examples=300)
@given(st.binary(max_size=1200))
def test_random_bytes(data: bytes) -> None:
    for decode in (decode_tx, decode_block, decode_commit):
        _check(decode, data)


@settings(max_examples=400)
@given(_mutations(TX.encode()))
def test_mutated_tx(data: bytes) -> None:
    _check(decode_tx, data)


@settings(max_examples=300)
@given(_mutations(BLOCK_WITH_COMMIT.encode()))
def test_mutated_block(data: bytes) -> None:
    _check(decode_block, data)


@settings(max_examples=300)
@given(_mutations(COMMIT.encode()))
def test_mutated_commit(data: bytes) -> None:
    _check(decode_commit, data)


def test_seeds_round_trip() -> None:
    assert decode_tx(TX.encode()) == TX
    assert decode_block(BLOCK_WITH_COMMIT.encode()) == BLOCK_WITH_COMMIT
    assert decode_commit(COMMIT.encode()) == COMMIT
