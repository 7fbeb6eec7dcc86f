"""JSON conventions: hex bytes, cm1 addresses, u64 as decimal strings; strict parsers."""

from __future__ import annotations

import json

import pytest
from chainmall.core.abci.types import Event, ProvenEntry, QueryResult
from chainmall.core.constants import U64_MAX
from chainmall.core.errors import InvalidAddress, InvalidInput
from chainmall.core.rpc import codec
from chainmall.core.rpc.services import (
    AccountInfo,
    AddressEvent,
    NodeStatus,
    TxInfo,
    TxState,
)
from chainmall.core.rpc.testing import FakeNode
from hypothesis import given
from hypothesis import strategies as st
from rpc_helpers import ALICE, BOB, run_on, transfer


def roundtrip(value: object) -> object:
    return json.loads(json.dumps(value))


@given(st.integers(0, U64_MAX))
def test_u64_text_roundtrip(value: int) -> None:
    assert codec.parse_u64_text(codec.u64_text(value), "x") == value


@pytest.mark.parametrize("bad", ["", "01", "-1", "1.0", " 1", "18446744073709551616", 5, None])
def test_u64_text_is_strict(bad: object) -> None:
    with pytest.raises(InvalidInput):
        codec.parse_u64_text(bad, "amount")


@pytest.mark.parametrize("bad", ["ABCD", "abc", "0x00", 12, None, "zz"])
def test_hex_is_lower_case_whole_bytes(bad: object) -> None:
    with pytest.raises(InvalidInput, match="tx_id"):
        codec.parse_hex(bad, "tx_id")


def test_hex_lengths() -> None:
    assert codec.parse_hex("00ff", "k", 2) == b"\x00\xff"
    with pytest.raises(InvalidInput, match="expected 32 bytes"):
        codec.parse_hex("00", "k", 32)
    with pytest.raises(InvalidInput, match="longer than 1 bytes"):
        codec.parse_hex("0000", "k", length_max=1)


@pytest.mark.parametrize("bad", [True, -1, 1.5, "3", None])
def test_counts_are_plain_non_negative_integers(bad: object) -> None:
    with pytest.raises(InvalidInput):
        codec.parse_count(bad, "height")


def test_address_names_the_field() -> None:
    assert codec.parse_address(codec.encode_address(ALICE.address), "a") == ALICE.address
    with pytest.raises(InvalidAddress, match=r"^address: "):
        codec.parse_address("cm1qqqq", "address")


def test_values_roundtrip_through_json() -> None:
    event = Event("transfer", (("sender", "cm1x"), ("amount", "5"), ("amount", "6")))
    assert codec.event_from_json(roundtrip(codec.event_json(event))) == event
    tx = transfer(ALICE, 3, BOB.address, U64_MAX - 1)
    final = TxInfo(tx.tx_id, TxState.FINAL, 7, 2, 154, "no", (event,), tx.encode())
    data = codec.tx_json(final)
    assert data["error"] == "InsufficientBalance"
    assert data["decoded"]["transfer"]["amount"] == str(U64_MAX - 1)
    assert data["decoded"]["nonce"] == "3" and data["decoded"]["fee"] == "10"
    assert codec.tx_info_from_json(roundtrip(data)) == final
    pending = TxInfo(tx.tx_id, TxState.PENDING, tx=tx.encode())
    assert codec.tx_json(pending)["height"] is None
    assert codec.tx_info_from_json(roundtrip(codec.tx_json(pending))) == pending
    account = AccountInfo(ALICE.address, U64_MAX, 2**60, True, 9, bytes(32), b"\x01\x02")
    account_data = codec.account_json(account)
    assert account_data["balance"] == str(U64_MAX) and account_data["nonce"] == str(2**60)
    assert codec.account_from_json(roundtrip(account_data)) == account
    status = NodeStatus("c", 5, bytes(32), bytes(range(32)), 123, 4, 500, "v", ALICE.public_key)
    assert codec.status_from_json(roundtrip(codec.status_json(status))) == status
    query = QueryResult(0, "", 3, bytes(range(32)), (
        ProvenEntry(b"\x01", b"", b"\x07"), ProvenEntry(b"\x02", None), ProvenEntry(b"\x03", b"v")))
    data = codec.query_json(query)
    assert [entry["value"] for entry in data["entries"]] == ["", None, "76"]  # empty != absent
    assert codec.query_from_json(roundtrip(data)) == query
    item = AddressEvent(4, tx.tx_id, 1, event)
    assert codec.address_event_from_json(roundtrip(codec.address_event_json(item))) == item


def test_block_view_checks_the_header_hash() -> None:
    async def make_block() -> object:
        node = FakeNode(balances={ALICE.address: 10**9})
        await node.submit_tx(transfer(ALICE, 0, BOB.address, 5).encode())
        return node.produce_block()

    info = run_on("asyncio", make_block())
    data = roundtrip(codec.block_json(info, with_txs=True))
    view = codec.block_view_from_json(data)
    assert view.hash == info.block.hash() and view.height == 1
    assert view.txs == (info.block.txs[0].encode(),)
    assert view.commit == info.block.commit
    data["header"]["time_ms"] += 1  # a header that does not hash to the claimed hash
    with pytest.raises(InvalidInput, match="does not hash"):
        codec.block_view_from_json(data)
