"""Txs on the wire in bulk (core/txwire.py and its kernel) against the one-tx decoder.

`check_wire` must accept exactly what `decode_tx` accepts, with its code;
`build_txs` must build the Tx `decode_tx` builds; `unframe_txs` must read a
block's tx list as `Reader.u16_sized_many` does. Then `decode_block`,
`decode_txs` and `decode_each`, which go through them and fall back to the
tx-by-tx path on any fault, must give the very values and errors (class and
message) the tx-by-tx path gives: the tests force that path and compare.
"""

from __future__ import annotations

import struct

import blake3
import pytest
from chainmall import ext
from chainmall.core import block as block_module
from chainmall.core import constants, txwire
from chainmall.core import tx as tx_module
from chainmall.core.block import CommitCert, decode_block, make_block
from chainmall.core.errors import TX_OK, DecodeError, TxTooLarge
from chainmall.core.keys import KeyPair
from chainmall.core.tx import Tx, decode_each, decode_tx, decode_txs, sign_tx
from fuzzing import mutations
from hypothesis import given, settings
from hypothesis import strategies as st

KERNEL = ext.load("_txwire")
IMPLS = [
    pytest.param(KERNEL, id="kernel", marks=pytest.mark.skipif(
        KERNEL is None, reason="chainmall.ext._txwire is not built")),
    pytest.param(txwire, id="reference"),
]
CHAIN = "wire-test"
KEY = KeyPair.from_seed(b"\x05" * 32)
TXS = [sign_tx(KEY, CHAIN, tx_type, nonce, 3, 90, payload) for tx_type, nonce, payload in (
    (1, 0, b"\x01" * 28), (7, 1, b""), (65535, 2**64 - 1, b"p" * 896), (2, 5, b"abc"))]
WIRE = [tx.encode() for tx in TXS]


def pack(items: list[bytes]) -> tuple[bytes, list[int]]:
    offsets = [0]
    for item in items:
        offsets.append(offsets[-1] + len(item))
    return b"".join(items), offsets


def decoder_code(data: bytes) -> int:
    """What the one-tx decoder says of `data`: 0, or the code of the error it raises."""
    try:
        decode_tx(data)
    except DecodeError as error:
        return error.code
    return TX_OK


def same_tx(a: Tx, b: Tx) -> bool:
    return a == b and a.body == b.body and a.tx_id == b.tx_id and a.encode() == b.encode()


# --- check_wire and build_txs against decode_tx ------------------------------------
def _damaged() -> list[bytes]:
    valid = WIRE[0]
    chain_at = 2
    items = [
        b"", b"\x01", valid[:128], valid[:-1], valid + b"\x00",
        b"\x02" + valid[1:],  # version 2
        valid[:1] + b"\x00" + valid[2:],  # L = 0
        valid[:1] + b"\x21" + valid[2:],  # L = 33
        valid[:chain_at] + b"W" + valid[chain_at + 1 :],  # chain id upper case
        b"\xff" * (constants.TX_BYTES_MAX + 1),
        sign_tx(KEY, CHAIN, 1, 0, 1, 1, b"x" * 896).encode() + b"y" * 200,  # too large
    ]
    body = TXS[1].body
    fixed = 2 + len(CHAIN) + 2 + 32 + 24  # up to the payload length field
    for claimed in (1, 897, 2**32 - 1):
        items.append(body[:fixed] + struct.pack(">I", claimed) + body[fixed + 4 :]
                     + TXS[1].signature)
    return items


@pytest.mark.parametrize("impl", IMPLS)
def test_check_wire_gives_the_decoders_verdict_and_ids(impl) -> None:
    items = WIRE + _damaged()
    codes, ids = impl.check_wire(*pack(items))
    assert codes == [decoder_code(item) for item in items]
    assert TxTooLarge.code in codes and DecodeError.code in codes
    for index, (code, item) in enumerate(zip(codes, items, strict=True)):
        expected = decode_tx(item).tx_id if code == TX_OK else bytes(32)
        assert ids[32 * index : 32 * (index + 1)] == expected
    assert ids[:32] == blake3.blake3(TXS[0].body).digest()


@pytest.mark.parametrize("impl", IMPLS)
@settings(max_examples=150)
@given(seed=st.sampled_from(WIRE), data=st.data())
def test_check_wire_agrees_with_the_decoder_on_damaged_txs(impl, seed: bytes, data) -> None:
    item = data.draw(mutations(seed))
    codes, _ = impl.check_wire(*pack([item]))
    assert codes == [decoder_code(item)]


@pytest.mark.parametrize("impl", IMPLS)
def test_build_txs_builds_what_the_decoder_builds(impl) -> None:
    data, offsets = pack(WIRE)
    _, ids = impl.check_wire(data, offsets)
    built = impl.build_txs(Tx, data, offsets, ids)
    assert len(built) == len(TXS)
    for made, expected in zip(built, TXS, strict=True):
        assert type(made) is Tx and same_tx(made, expected)
        assert type(made.chain_id) is str and made.nonce == expected.nonce
    assert impl.build_txs(Tx, b"", [0], b"") == []


@pytest.mark.parametrize("impl", IMPLS)
def test_build_txs_refuses_what_it_cannot_build(impl) -> None:
    data, offsets = pack([WIRE[0], WIRE[1][:-1]])
    with pytest.raises(ValueError, match="tx 1 is not a well-formed wire tx"):
        impl.build_txs(Tx, data, offsets, bytes(64))
    data, offsets = pack(WIRE[:1])
    with pytest.raises(ValueError, match="ids must be 32 bytes"):
        impl.build_txs(Tx, data, offsets, bytes(31))
    with pytest.raises(TypeError, match="no slot"):
        impl.build_txs(CommitCert, data, offsets, bytes(32))
    with pytest.raises(TypeError, match="a class"):
        impl.build_txs("Tx", data, offsets, bytes(32))


# --- unframe_txs against the block reader ----------------------------------------------
@pytest.mark.parametrize("impl", IMPLS)
def test_unframe_reads_a_tx_list_and_finds_its_end(impl) -> None:
    framed = b"".join(struct.pack(">H", len(item)) + item for item in [*WIRE, b"", b"ab"])
    data = b"head" + framed + b"tail"
    end, items, offsets = impl.unframe_txs(data, 4, len(WIRE) + 2)
    assert end == len(data) - 4
    assert (items, offsets) == pack([*WIRE, b"", b"ab"])
    assert impl.unframe_txs(data, 4, 0) == (4, b"", [0])
    assert impl.unframe_txs(data, len(data), 0) == (len(data), b"", [0])


@pytest.mark.parametrize("impl", IMPLS)
def test_unframe_reports_a_list_cut_short(impl) -> None:
    framed = struct.pack(">H", 3) + b"abc" + struct.pack(">H", 5) + b"de"
    assert impl.unframe_txs(framed, 0, 1) == (5, b"abc", [0, 3])
    assert impl.unframe_txs(framed, 0, 2) == (-1, b"", [0])  # item 1 is cut
    assert impl.unframe_txs(framed, 0, 3) == (-1, b"", [0])
    assert impl.unframe_txs(framed[:6], 0, 2) == (-1, b"", [0])  # its length is cut


@pytest.mark.parametrize("impl", IMPLS)
def test_unframe_checks_its_arguments(impl) -> None:
    with pytest.raises(ValueError, match="start 5 is outside"):
        impl.unframe_txs(b"abcd", 5, 0)
    with pytest.raises(ValueError, match="count -1 is outside"):
        impl.unframe_txs(b"abcd", 0, -1)
    with pytest.raises(ValueError, match=r"count \d+ is outside"):
        impl.unframe_txs(b"abcd", 0, constants.BATCH_ITEMS_MAX + 1)
    with pytest.raises(TypeError, match="start must be an int"):
        impl.unframe_txs(b"abcd", True, 0)
    with pytest.raises(TypeError, match="block must be bytes-like"):
        impl.unframe_txs("abcd", 0, 0)


# --- the decoders: fast path == tx-by-tx path -----------------------------------------
def slow(decode, *args):
    """`decode(*args)` with the bulk path disabled: its value, or its error."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(block_module, "unframe_txs", lambda *a: (-1, b"", [0]))
        patch.setattr(tx_module, "_decode_packed", lambda items: None)
        return outcome(decode, *args)


def outcome(decode, *args):
    try:
        return decode(*args)
    except DecodeError as error:
        return (type(error), str(error))


def _block_bytes() -> bytes:
    return make_block(CHAIN, 3, bytes(32), 7, KEY.public_key, TXS, bytes(32),
                      bytes(32)).encode()


BLOCK = _block_bytes()


def test_a_decoded_block_is_the_same_either_way() -> None:
    fast = decode_block(BLOCK)
    assert fast == slow(decode_block, BLOCK)
    assert all(same_tx(a, b) for a, b in zip(fast.txs, TXS, strict=True))
    assert block_module.wire_txs(fast) == pack(WIRE)


@settings(max_examples=200)
@given(data=mutations(BLOCK))
def test_damaged_blocks_fail_the_same_way_either_way(data: bytes) -> None:
    fast = outcome(decode_block, data)
    expected = slow(decode_block, data)
    assert fast == expected
    if not isinstance(fast, tuple):
        assert all(same_tx(a, b) for a, b in zip(fast.txs, expected.txs, strict=True))


@settings(max_examples=100)
@given(items=st.lists(st.one_of(st.sampled_from(WIRE), st.sampled_from(WIRE).flatmap(mutations)),
                      max_size=5))
def test_decode_txs_and_each_are_the_same_either_way(items: list[bytes]) -> None:
    assert outcome(decode_txs, items) == slow(decode_txs, items)
    each = decode_each(items)
    expected = slow(decode_each, items)
    assert [(type(v), str(v)) if isinstance(v, DecodeError) else v for v in each] == [
        (type(v), str(v)) if isinstance(v, DecodeError) else v for v in expected]
    for made, other in zip(each, expected, strict=True):
        if isinstance(made, Tx):
            assert same_tx(made, other)


def test_decode_each_takes_other_buffers_the_slow_way() -> None:
    items = [bytearray(WIRE[0]), memoryview(WIRE[1]), WIRE[2]]
    assert [tx.tx_id for tx in decode_each(items)] == [tx.tx_id for tx in TXS[:3]]
    assert [tx.tx_id for tx in decode_txs(items)] == [tx.tx_id for tx in TXS[:3]]
