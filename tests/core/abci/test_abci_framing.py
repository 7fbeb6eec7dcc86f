"""ABCI framing: varint-delimited protobuf frames decoded from reads split anywhere."""

from __future__ import annotations

import itertools
import random
import re

import pytest
from chainmall.core.abci import convert
from chainmall.core.abci.framing import FrameDecoder, append_frame, encode_frame
from chainmall.core.abci.proto.tendermint.abci import types_pb2 as abci
from chainmall.core.abci.types import (
    BlockRequest,
    InitChainRequest,
    Misbehavior,
    MisbehaviorKind,
    QueryRequest,
    ValidatorUpdate,
)
from chainmall.core.errors import AbciFrameError
from hypothesis import given
from hypothesis import strategies as st

FRAME_MAX = 1 << 20


def request_stream(seed: int) -> list[bytes]:
    """The requests CometBFT sends a fresh app, as serialized protobuf: a handshake,
    CheckTx floods with their Flushes, and blocks of a few hundred bytes to ~40 KB
    (length prefixes of 1 to 3 bytes)."""
    rng = random.Random(seed)
    validator = ValidatorUpdate(rng.randbytes(32), 10)
    messages = [
        abci.Request(echo=abci.RequestEcho(message="hello")),
        abci.Request(flush=abci.RequestFlush()),
        abci.Request(info=abci.RequestInfo(version="0.38.26", block_version=11, p2p_version=8,
                                           abci_version="2.0.0")),
        abci.Request(init_chain=convert.init_chain_request_to_proto(InitChainRequest(
            "test-chain", 1_700_000_000_123, (validator,), b'{"a":"1"}', 1))),
    ]
    for height in range(1, 6):
        sizes = [rng.choice([3, 100, 200, 1000]) for _ in range(rng.randrange(60))]
        txs = tuple(rng.randbytes(size) for size in sizes)
        for tx in txs:
            messages.append(abci.Request(check_tx=abci.RequestCheckTx(tx=tx)))
        messages.append(abci.Request(flush=abci.RequestFlush()))
        block = BlockRequest(
            height, 1_700_000_000_000 + height * 1000, txs, validator.public_key[:20],
            hash=rng.randbytes(32), max_tx_bytes=22020096,
            misbehavior=(Misbehavior(MisbehaviorKind.DUPLICATE_VOTE, rng.randbytes(20), 10,
                                     height - 1, 1_700_000_000_000, 40),) if height == 3 else (),
        )
        messages.append(abci.Request(prepare_proposal=convert.block_request_to_proto(
            block, abci.RequestPrepareProposal)))
        messages.append(abci.Request(process_proposal=convert.block_request_to_proto(
            block, abci.RequestProcessProposal)))
        messages.append(abci.Request(finalize_block=convert.block_request_to_proto(
            block, abci.RequestFinalizeBlock)))
        messages.append(abci.Request(commit=abci.RequestCommit()))
        messages.append(abci.Request(query=convert.query_request_to_proto(
            QueryRequest("/key", b"k", 0, True))))
    messages.append(abci.Request())  # an empty message: a zero-length frame
    return [m.SerializeToString() for m in messages]


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def test_stream_has_long_prefixes_and_an_empty_frame() -> None:
    frames = request_stream(1)
    assert max(len(f) for f in frames) >= 1 << 14  # a 3-byte length prefix
    assert min(len(f) for f in frames) == 0


@pytest.mark.parametrize("seed", range(5))
def test_random_splits_give_back_every_frame(seed: int) -> None:
    frames = request_stream(seed)
    stream = b"".join(encode_frame(f) for f in frames)
    rng = random.Random(seed)
    for _ in range(20):
        cuts = [rng.randrange(len(stream)) for _ in range(rng.choice([1, 10, 100, 1000]))]
        decoder = FrameDecoder(FRAME_MAX)
        got: list[bytes] = []
        for piece in split_at(stream, cuts):
            got += decoder.feed(piece)
        assert got == frames
        assert decoder.pending_bytes == 0


def test_byte_at_a_time() -> None:
    frames = request_stream(7)
    stream = b"".join(encode_frame(f) for f in frames)
    decoder = FrameDecoder(FRAME_MAX)
    got: list[bytes] = []
    for index in range(len(stream)):
        got += decoder.feed(stream[index:index + 1])
    assert got == frames


@given(st.lists(st.binary(max_size=400), max_size=20), st.lists(st.integers(0, 10_000)))
def test_any_frames_any_splits(frames: list[bytes], cuts: list[int]) -> None:
    out = bytearray()
    for frame in frames:
        append_frame(out, frame)
    decoder = FrameDecoder(FRAME_MAX)
    got: list[bytes] = []
    for piece in split_at(bytes(out), cuts):
        got += decoder.feed(piece)
    assert got == frames and decoder.pending_bytes == 0


def test_split_length_prefix_waits_for_the_rest() -> None:
    message = bytes(300)  # prefix 0xac 0x02
    framed = encode_frame(message)
    assert framed[:2] == b"\xac\x02"
    decoder = FrameDecoder(FRAME_MAX)
    assert decoder.feed(framed[:1]) == []
    assert decoder.pending_bytes == 1
    assert decoder.feed(framed[1:2]) == []
    assert decoder.feed(framed[2:]) == [message]


@pytest.mark.parametrize(("length", "prefix"), [
    (0, b"\x00"), (1, b"\x01"), (127, b"\x7f"), (128, b"\x80\x01"), (300, b"\xac\x02"),
    (16383, b"\xff\x7f"), (16384, b"\x80\x80\x01"),
])
def test_prefix_is_the_unsigned_varint(length: int, prefix: bytes) -> None:
    # The bytes of Go's binary.PutUvarint, which CometBFT's protoio writes.
    framed = encode_frame(bytes(length))
    assert framed == prefix + bytes(length)
    assert FrameDecoder(FRAME_MAX).feed(framed) == [bytes(length)]


def test_frame_over_the_limit_is_refused_before_its_body() -> None:
    decoder = FrameDecoder(1000)
    assert decoder.feed(encode_frame(bytes(1000))) == [bytes(1000)]
    with pytest.raises(AbciFrameError, match="over the limit"):
        decoder.feed(encode_frame(bytes(1001))[:2])  # the prefix alone tells


def test_overlong_prefix_is_refused() -> None:
    decoder = FrameDecoder(2**62)
    with pytest.raises(AbciFrameError, match="longer than 10 bytes"):
        decoder.feed(b"\x80" * 10 + b"\x00")


def test_non_minimal_prefix_is_read_as_go_reads_it() -> None:
    decoder = FrameDecoder(FRAME_MAX)
    assert decoder.feed(b"\x83\x00abc") == [b"abc"]


def test_worked_examples_in_the_docs() -> None:
    """docs/cometbft.md's frame table: each message, in protobuf text form, frames to its hex."""
    from pathlib import Path

    from google.protobuf import text_format

    doc = (Path(__file__).resolve().parents[3] / "docs" / "cometbft.md").read_text()
    rows = re.findall(r"^\| `(Request|Response)\{(.*)\}` \| `([0-9a-f ]+)` \|$", doc, re.MULTILINE)
    assert len(rows) >= 6
    for kind, body, frame in rows:
        message = text_format.Parse(body.replace(", ", " "), getattr(abci, kind)())
        assert encode_frame(message.SerializeToString()).hex(" ") == frame, body
        [decoded] = FrameDecoder(FRAME_MAX).feed(bytes.fromhex(frame))
        assert getattr(abci, kind).FromString(decoded) == message
