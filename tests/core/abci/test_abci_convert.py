"""Protobuf <-> `types.py` conversions: round trips through the wire bytes, units, refusals."""

from __future__ import annotations

from typing import Any

import pytest
from chainmall.core.abci import convert
from chainmall.core.abci.proto.tendermint.abci import types_pb2 as abci
from chainmall.core.abci.proto.tendermint.crypto import keys_pb2
from chainmall.core.abci.types import (
    BlockRequest,
    CheckTxResult,
    CommitResult,
    Event,
    ExecTxResult,
    FinalizeBlockResult,
    InfoResult,
    InitChainRequest,
    InitChainResult,
    Misbehavior,
    MisbehaviorKind,
    ProvenEntry,
    QueryRequest,
    QueryResult,
    ValidatorUpdate,
)
from chainmall.core.errors import DecodeError, InvalidKey
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given
from hypothesis import strategies as st

I64 = st.integers(0, 2**63 - 1)
U32 = st.integers(0, 2**32 - 1)
TIME_MS = st.integers(0, 253_402_300_799_999)  # up to 9999-12-31, Timestamp's range
TEXT = st.text(max_size=20)
HASH = st.binary(min_size=32, max_size=32)
ADDRESS = st.binary(min_size=20, max_size=20)

events = st.builds(Event, TEXT, st.lists(st.tuples(TEXT, TEXT), max_size=3).map(tuple))
validator_updates = st.builds(ValidatorUpdate, HASH, I64)
misbehaviors = st.builds(Misbehavior, st.sampled_from(MisbehaviorKind), ADDRESS, I64, I64,
                         TIME_MS, I64)
block_requests = st.builds(
    BlockRequest, I64, TIME_MS, st.lists(st.binary(max_size=50), max_size=5).map(tuple),
    ADDRESS, hash=HASH, misbehavior=st.lists(misbehaviors, max_size=2).map(tuple),
    max_tx_bytes=I64,
)
exec_results = st.builds(ExecTxResult, U32, TEXT, st.lists(events, max_size=2).map(tuple),
                         st.binary(max_size=32))


def through_wire(message: Any) -> Any:
    """The message after serializing and parsing it again."""
    return type(message).FromString(message.SerializeToString())


@given(events)
def test_event(value: Event) -> None:
    message = through_wire(convert.event_to_proto(value))
    assert all(a.index for a in message.attributes)
    assert convert.event_from_proto(message) == value


@given(validator_updates)
def test_validator_update(value: ValidatorUpdate) -> None:
    message = through_wire(convert.validator_update_to_proto(value))
    assert message.pub_key.WhichOneof("sum") == "ed25519"
    assert convert.validator_update_from_proto(message) == value


@given(misbehaviors)
def test_misbehavior(value: Misbehavior) -> None:
    assert convert.misbehavior_from_proto(through_wire(convert.misbehavior_to_proto(value))) \
        == value


@given(block_requests)
def test_block_requests_of_each_kind(value: BlockRequest) -> None:
    prepare = through_wire(convert.block_request_to_proto(value, abci.RequestPrepareProposal))
    assert convert.block_request_from_proto(prepare) == \
        BlockRequest(value.height, value.time_ms, value.txs, value.proposer_address,
                     misbehavior=value.misbehavior, max_tx_bytes=value.max_tx_bytes)
    for kind in (abci.RequestProcessProposal, abci.RequestFinalizeBlock):
        message = through_wire(convert.block_request_to_proto(value, kind))
        assert convert.block_request_from_proto(message) == \
            BlockRequest(value.height, value.time_ms, value.txs, value.proposer_address,
                         hash=value.hash, misbehavior=value.misbehavior)


@given(st.builds(InitChainRequest, TEXT, TIME_MS, st.lists(validator_updates, max_size=3)
                 .map(tuple), st.binary(max_size=50), I64))
def test_init_chain_request(value: InitChainRequest) -> None:
    message = through_wire(convert.init_chain_request_to_proto(value))
    assert convert.init_chain_request_from_proto(message) == value


@given(st.builds(InitChainResult, st.lists(validator_updates, max_size=3).map(tuple), HASH))
def test_init_chain_result(value: InitChainResult) -> None:
    message = through_wire(convert.init_chain_result_to_proto(value))
    assert convert.init_chain_result_from_proto(message) == value


@given(st.builds(InfoResult, I64, HASH, TEXT, st.integers(0, 2**64 - 1)))
def test_info(value: InfoResult) -> None:
    message = through_wire(convert.info_result_to_proto(value))
    assert message.data == "chainmall"
    assert convert.info_result_from_proto(message) == value


@given(st.builds(CheckTxResult, U32, TEXT, tx_id=st.binary(max_size=32)))
def test_check_tx_result(value: CheckTxResult) -> None:
    message = through_wire(convert.check_tx_result_to_proto(value))
    assert message.data == value.tx_id
    assert convert.check_tx_result_from_proto(message) == value


def test_check_tx_fields_without_a_place_in_v038_do_not_cross() -> None:
    value = CheckTxResult(0, priority=5, sender=b"s" * 32, nonce=3, tx_id=b"t")
    assert convert.check_tx_result_from_proto(convert.check_tx_result_to_proto(value)) == \
        CheckTxResult(0, tx_id=b"t")


@given(st.builds(FinalizeBlockResult, st.lists(exec_results, max_size=4).map(tuple),
                 st.lists(events, max_size=2).map(tuple),
                 st.lists(validator_updates, max_size=2).map(tuple), HASH))
def test_finalize_block_result(value: FinalizeBlockResult) -> None:
    message = through_wire(convert.finalize_block_result_to_proto(value))
    assert [r.data for r in message.tx_results] == [r.tx_id for r in value.tx_results]
    assert convert.finalize_block_result_from_proto(message) == value


@given(st.builds(CommitResult, I64))
def test_commit(value: CommitResult) -> None:
    assert convert.commit_result_from_proto(through_wire(convert.commit_result_to_proto(value))) \
        == value


@given(st.builds(QueryRequest, TEXT, st.binary(max_size=40), I64, st.booleans()))
def test_query_request(value: QueryRequest) -> None:
    message = through_wire(convert.query_request_to_proto(value))
    assert convert.query_request_from_proto(message) == value


proven_entries = st.builds(ProvenEntry, st.binary(max_size=40),
                           st.none() | st.binary(max_size=40), st.binary(max_size=80))


@given(st.builds(QueryResult, U32, TEXT, I64, st.just(b"") | HASH,
                 st.lists(proven_entries, max_size=4).map(tuple)))
def test_query_result(value: QueryResult) -> None:
    message = through_wire(convert.query_result_to_proto(value))
    assert [op.key for op in message.proof_ops.ops] == [e.key for e in value.entries]
    assert (message.key, message.value) == (value.key, value.value)  # what abci_query shows
    assert convert.query_result_from_proto(message) == value


def test_query_entry_bytes() -> None:
    present = convert.encode_query_entry(ProvenEntry(b"k", b"v", b"pp"))
    assert present.hex(" ") == "01 01 00 00 00 01 76 00 00 00 02 70 70"
    absent = convert.encode_query_entry(ProvenEntry(b"k", None))
    assert absent.hex(" ") == "01 00 00 00 00 00 00 00 00 00"
    assert convert.decode_query_entry(b"k", present) == ProvenEntry(b"k", b"v", b"pp")
    assert convert.decode_query_entry(b"k", absent) == ProvenEntry(b"k", None)


@pytest.mark.parametrize("data", [
    b"", bytes.fromhex("02 01 00000000 00000000"), bytes.fromhex("01 02 00000000 00000000"),
    bytes.fromhex("01 00 00000001 76 00000000"), bytes.fromhex("01 01 00000000 00000000 00"),
    bytes.fromhex("01 01 00000005 76"),
])
def test_malformed_query_entries_are_refused(data: bytes) -> None:
    with pytest.raises(DecodeError):
        convert.decode_query_entry(b"k", data)


def test_query_info_must_name_the_root() -> None:
    with pytest.raises(DecodeError):
        convert.query_result_from_proto(abci.ResponseQuery(info="plain words"))


@pytest.mark.parametrize(("seconds", "nanos", "ms"), [
    (0, 0, 0), (1, 999_999, 1000), (1, 1_000_000, 1001), (1_700_000_000, 123_456_789,
                                                           1_700_000_000_123),
])
def test_time_is_floored_to_milliseconds(seconds: int, nanos: int, ms: int) -> None:
    assert convert.time_ms_from_proto(Timestamp(seconds=seconds, nanos=nanos)) == ms
    back = Timestamp()
    convert.time_ms_to_proto(ms, back)
    assert convert.time_ms_from_proto(back) == ms


@pytest.mark.parametrize("key", [
    keys_pb2.PublicKey(secp256k1=b"\x02" + bytes(32)),
    keys_pb2.PublicKey(),
    keys_pb2.PublicKey(ed25519=bytes(31)),
])
def test_validator_keys_other_than_ed25519_are_refused(key: keys_pb2.PublicKey) -> None:
    with pytest.raises(InvalidKey):
        convert.validator_update_from_proto(abci.ValidatorUpdate(pub_key=key, power=1))


def test_unknown_misbehavior_type_reads_as_unknown() -> None:
    message = convert.misbehavior_to_proto(
        Misbehavior(MisbehaviorKind.DUPLICATE_VOTE, bytes(20), 1, 1, 0, 1))
    message.type = 9
    assert convert.misbehavior_from_proto(message).kind is MisbehaviorKind.UNKNOWN
