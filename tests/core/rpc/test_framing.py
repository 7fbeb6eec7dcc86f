"""Newline frames: split anywhere, same frames; a frame over the cap is refused early."""

from __future__ import annotations

import pytest
from chainmall.core.rpc.framing import FrameDecoder, FrameTooLarge, encode_frame
from hypothesis import given
from hypothesis import strategies as st


def test_frames_and_crlf() -> None:
    decoder = FrameDecoder(100)
    assert decoder.feed(b'{"a":1}\n{"b"') == [b'{"a":1}']
    assert decoder.pending_bytes == 4
    assert decoder.feed(b":2}\r\n\n") == [b'{"b":2}', b""]
    assert decoder.pending_bytes == 0


def test_frame_at_the_cap_passes_one_byte_more_fails() -> None:
    assert FrameDecoder(10).feed(b"x" * 10 + b"\n") == [b"x" * 10]
    with pytest.raises(FrameTooLarge):
        FrameDecoder(10).feed(b"x" * 11 + b"\n")


def test_oversized_frame_is_refused_before_its_end_arrives() -> None:
    decoder = FrameDecoder(1000)
    decoder.feed(b"y" * 1000)
    with pytest.raises(FrameTooLarge):
        decoder.feed(b"y")  # no newline yet: the decoder will not hold more


_LINE = st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"").replace(b"\r", b""))


@given(st.lists(_LINE, max_size=8),
       st.lists(st.integers(1, 30), min_size=1, max_size=20))
def test_any_split_gives_the_same_frames(frames: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(encode_frame(frame) for frame in frames)
    decoder = FrameDecoder(64)
    got: list[bytes] = []
    position = 0
    for cut in cuts * (len(stream) // max(1, sum(cuts)) + 1):
        got += decoder.feed(stream[position:position + cut])
        position += cut
        if position >= len(stream):
            break
    got += decoder.feed(stream[position:])
    assert got == frames
