"""ext/_txwire == core/txwire: the same outputs and the same exceptions on any input."""

from __future__ import annotations

import gc
import struct

import pytest
from chainmall import ext
from chainmall.core import constants, errors, txwire
from chainmall.core.tx import Tx, encode_body
from hypothesis import given, settings
from hypothesis import strategies as st

KERNEL = ext.load("_txwire")
pytestmark = pytest.mark.skipif(KERNEL is None, reason="chainmall.ext._txwire is not built")


def test_kernel_numbers_equal_core() -> None:
    for name in ("TX_VERSION", "CHAIN_ID_BYTES_MIN", "CHAIN_ID_BYTES_MAX", "TX_PAYLOAD_BYTES_MAX",
                 "TX_BODY_FIXED_BYTES", "TX_BYTES_MAX", "TX_BYTES_MIN", "SIGNATURE_BYTES",
                 "HASH_BYTES", "BATCH_ITEMS_MAX"):
        assert getattr(KERNEL, name) == getattr(constants, name), name
    assert KERNEL.TX_OK == errors.TX_OK
    assert errors.DecodeError.code == KERNEL.DECODE_ERROR
    assert errors.TxTooLarge.code == KERNEL.TX_TOO_LARGE
    assert KERNEL.TX_FIELDS == txwire.TX_FIELDS
    assert set(Tx.__slots__) == set(txwire.TX_FIELDS)


def outcome(function, *args):
    try:
        return function(*args)
    except (TypeError, ValueError) as error:
        return (type(error), str(error))


def both(name: str, *args) -> object:
    kernel = outcome(getattr(KERNEL, name), *args)
    reference = outcome(getattr(txwire, name), *args)
    assert kernel == reference
    return kernel


def pack(items: list[bytes]) -> tuple[bytes, list[int]]:
    offsets = [0]
    for item in items:
        offsets.append(offsets[-1] + len(item))
    return b"".join(items), offsets


chain_ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=32)
u64 = st.integers(0, constants.U64_MAX)
wire_txs = st.builds(
    lambda chain, tx_type, sender, nonce, fee, expiry, payload, signature:
    encode_body(chain, tx_type, sender, nonce, fee, expiry, payload) + signature,
    chain_ids, st.integers(0, 0xFFFF), st.binary(min_size=32, max_size=32), u64, u64, u64,
    st.binary(max_size=constants.TX_PAYLOAD_BYTES_MAX), st.binary(min_size=64, max_size=64))


def damage(data: st.DataObject, item: bytes) -> bytes:
    if not item or not data.draw(st.booleans()):
        return item
    at = data.draw(st.integers(0, len(item) - 1))
    return item[:at] + bytes([item[at] ^ data.draw(st.integers(1, 255))]) + item[at + 1 :]


@settings(max_examples=100)
@given(items=st.lists(wire_txs, max_size=6), data=st.data())
def test_check_and_build_agree(items: list[bytes], data: st.DataObject) -> None:
    items = [damage(data, item) for item in items]
    packed, offsets = pack(items)
    codes, ids = both("check_wire", packed, offsets)
    good = [item for item, code in zip(items, codes, strict=True) if code == errors.TX_OK]
    good_ids = b"".join(ids[32 * i : 32 * (i + 1)] for i, code in enumerate(codes)
                        if code == errors.TX_OK)
    kernel = KERNEL.build_txs(Tx, *pack(good), good_ids)
    reference = txwire.build_txs(Tx, *pack(good), good_ids)
    assert kernel == reference
    assert [(t.body, t.tx_id, t.signature) for t in kernel] == [
        (t.body, t.tx_id, t.signature) for t in reference]


@settings(max_examples=100)
@given(lengths=st.lists(st.integers(0, 300), max_size=8), cut=st.integers(0, 40),
       start=st.integers(0, 3), count=st.integers(0, 10))
def test_unframe_agrees(lengths: list[int], cut: int, start: int, count: int) -> None:
    framed = b"xyz"[:start] + b"".join(struct.pack(">H", n) + bytes([n % 251]) * n
                                       for n in lengths)
    data = framed[: max(0, len(framed) - cut)]
    both("unframe_txs", data, min(start, len(data)), count)


def test_the_same_argument_errors() -> None:
    tx = WIRE_TX
    cases = [
        ("check_wire", (b"", [])), ("check_wire", (b"ab", [0, 3])), ("check_wire", (b"ab", [1, 0])),
        ("check_wire", ("ab", [0, 2])), ("check_wire", (None, [0])),
        ("check_wire", (memoryview(b"abcd").cast("H"), [0, 1])),
        ("check_wire", (b"ab", [0, 1.5])),
        ("unframe_txs", (b"ab", 3, 0)), ("unframe_txs", (b"ab", 0, -1)),
        ("unframe_txs", (b"ab", 0.0, 1)), ("unframe_txs", (b"ab", 0, False)),
        ("build_txs", (Tx, tx, [0, len(tx)], b"")),
        ("build_txs", (Tx, tx[:-1], [0, len(tx) - 1], bytes(32))),
        ("build_txs", (int, tx, [0, len(tx)], bytes(32))),
        ("build_txs", (Tx, tx, [0, len(tx) + 1], bytes(32))),
    ]
    for name, args in cases:
        result = both(name, *args)
        assert isinstance(result, tuple) and result[0] in (TypeError, ValueError), (name, args)


WIRE_TX = encode_body("wire", 1, bytes(32), 1, 2, 3, b"p") + bytes(64)


def test_built_txs_are_left_out_of_the_cycle_collector() -> None:
    """They hold only str, int and bytes (so can be in no cycle); a class with a __dict__
    could hold anything, and its objects stay tracked."""
    data, offsets = pack([WIRE_TX])
    ids = KERNEL.check_wire(data, offsets)[1]
    (tx,) = KERNEL.build_txs(Tx, data, offsets, ids)
    assert not gc.is_tracked(tx)
    assert all(not gc.is_tracked(getattr(tx, name)) for name in txwire.TX_FIELDS)

    class Open(Tx):  # no __slots__: instances have a __dict__
        pass

    (opened,) = KERNEL.build_txs(Open, data, offsets, ids)
    assert gc.is_tracked(opened) and opened.body == tx.body
