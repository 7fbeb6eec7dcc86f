"""Canonical codec: every width round-trips at its bounds, and every fault is a DecodeError."""

from __future__ import annotations

import pytest
from chainmall.core.encoding import Reader, Writer
from chainmall.core.errors import DecodeError
from hypothesis import given, settings
from hypothesis import strategies as st

WIDTHS = [("u8", 1), ("u16", 2), ("u32", 4), ("u64", 8)]


@pytest.mark.parametrize(("method", "width"), WIDTHS)
@pytest.mark.parametrize("where", ["zero", "one", "max-1", "max"])
def test_uint_round_trip_at_bounds(method: str, width: int, where: str) -> None:
    top = (1 << (8 * width)) - 1
    value = {"zero": 0, "one": 1, "max-1": top - 1, "max": top}[where]
    data = getattr(Writer(), method)(value).getvalue()
    assert data == value.to_bytes(width, "big")  # fixed width, big-endian
    reader = Reader(data)
    assert getattr(reader, method)() == value
    assert reader.remaining == 0
    reader.finish()


@pytest.mark.parametrize(("method", "width"), WIDTHS)
@pytest.mark.parametrize("offset", [1, 2, 1 << 70])
def test_writer_refuses_out_of_range(method: str, width: int, offset: int) -> None:
    top = (1 << (8 * width)) - 1
    for value in (top + offset, -offset):
        with pytest.raises(ValueError, match="expected an integer"):
            getattr(Writer(), method)(value)


@pytest.mark.parametrize(("method", "width"), WIDTHS)
@pytest.mark.parametrize("value", [True, False, 1.0, "1", b"\x01", None, 2**0.5])
def test_writer_refuses_non_int(method: str, width: int, value: object) -> None:
    # bool is an int subclass: refused too, so `True` never encodes as 1.
    with pytest.raises(ValueError, match="expected an integer"):
        getattr(Writer(), method)(value)


def test_writer_failure_leaves_the_buffer_unchanged() -> None:
    writer = Writer().u8(7)
    with pytest.raises(ValueError):
        writer.u16(1 << 16)
    assert writer.getvalue() == b"\x07"


@settings(max_examples=200)
@given(
    st.integers(0, 2**8 - 1),
    st.integers(0, 2**16 - 1),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**64 - 1),
    st.binary(max_size=300),
    st.binary(min_size=5, max_size=5),
)
def test_mixed_round_trip(a: int, b: int, c: int, d: int, blob: bytes, fixed: bytes) -> None:
    data = (
        Writer().u8(a).u16(b).u32(c).u64(d).sized(blob, 2, 300).fixed(fixed, 5)
        .sized(blob[:255], 1, 255).getvalue()
    )
    assert len(data) == 1 + 2 + 4 + 8 + 2 + len(blob) + 5 + 1 + len(blob[:255])
    reader = Reader(data)
    assert (reader.u8(), reader.u16(), reader.u32(), reader.u64()) == (a, b, c, d)
    assert reader.sized(2, 300) == blob
    assert reader.fixed(5) == fixed
    assert reader.sized(1, 255) == blob[:255]
    reader.finish()


@pytest.mark.parametrize(("prefix_bytes", "length"), [(1, 0), (1, 255), (2, 0), (2, 65535), (4, 9)])
def test_sized_bounds(prefix_bytes: int, length: int) -> None:
    blob = bytes([0xAB]) * length
    data = Writer().sized(blob, prefix_bytes, length).getvalue()
    assert data == length.to_bytes(prefix_bytes, "big") + blob
    reader = Reader(data)
    assert reader.sized(prefix_bytes, length) == blob
    reader.finish()


def test_sized_writer_refuses_over_max_and_over_prefix_width() -> None:
    with pytest.raises(ValueError, match="11 bytes is over the limit of 10"):
        Writer().sized(b"x" * 11, 4, 10)
    # 256 does not fit a one-byte prefix: the message names the binding limit.
    with pytest.raises(ValueError, match="256 bytes is over the limit of 255"):
        Writer().sized(b"x" * 256, 1, 1000)


def test_sized_reader_refuses_length_over_max_before_reading() -> None:
    # The declared length is over the limit; the bytes are all there, still refused.
    data = (11).to_bytes(2, "big") + b"y" * 11
    with pytest.raises(DecodeError, match="blob is 11 bytes, limit 10"):
        Reader(data, "thing").sized(2, 10, "blob")
    # A huge declared length with nothing behind it is the same error, not a truncation.
    with pytest.raises(DecodeError, match="limit 10"):
        Reader(b"\xff\xff\xff\xff").sized(4, 10)


def test_fixed_writer_refuses_wrong_length() -> None:
    with pytest.raises(ValueError, match="expected 4 bytes, got 3"):
        Writer().fixed(b"abc", 4)


@pytest.mark.parametrize(("method", "width"), WIDTHS)
def test_truncated_uint(method: str, width: int) -> None:
    for size in range(width):
        reader = Reader(b"\x01" * size, "thing")
        with pytest.raises(DecodeError, match=f"thing: truncated at {method}"):
            getattr(reader, method)()


def test_truncated_fixed_and_sized_name_the_field_and_offset() -> None:
    reader = Reader(b"\x00\x01abc", "thing")
    reader.u16("head")
    expected = r"truncated at tail \(need 4 bytes at offset 2, have 3\)"
    with pytest.raises(DecodeError, match=expected):
        reader.fixed(4, "tail")
    with pytest.raises(DecodeError, match="truncated at name length"):
        Reader(b"\x00", "thing").sized(2, 10, "name")
    with pytest.raises(DecodeError, match="truncated at name"):
        Reader(b"\x05abcd", "thing").sized(1, 10, "name")


def test_failed_read_does_not_advance() -> None:
    reader = Reader(b"\x01\x02\x03")
    with pytest.raises(DecodeError):
        reader.u32()
    assert reader.position == 0
    assert reader.u16() == 0x0102


def test_finish_rejects_trailing_bytes() -> None:
    reader = Reader(b"\x01\x02\x03", "thing")
    reader.u16()
    with pytest.raises(DecodeError, match="thing: 1 trailing bytes after offset 2"):
        reader.finish()
    reader.u8()
    reader.finish()


def test_finish_on_empty_input() -> None:
    Reader(b"").finish()
    with pytest.raises(DecodeError, match="trailing"):
        Reader(b"\x00").finish()


@pytest.mark.parametrize("data", ["text", 12, None, [1, 2], object()])
def test_reader_refuses_non_bytes(data: object) -> None:
    with pytest.raises(DecodeError, match="thing: expected bytes"):
        Reader(data, "thing")  # type: ignore[arg-type]


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview])
def test_reader_accepts_bytes_like_and_copies(wrap: type) -> None:
    source = bytearray(b"\x00\x2a")
    reader = Reader(wrap(source))
    source[1] = 0  # later changes to the caller's buffer do not reach the reader
    assert reader.u16() == 42


@settings(max_examples=200)
@given(st.binary(max_size=64), st.lists(st.sampled_from(["u8", "u16", "u32", "u64", "sized"])))
def test_reader_raises_only_decode_error(data: bytes, steps: list[str]) -> None:
    reader = Reader(data)
    try:
        for step in steps:
            if step == "sized":
                reader.sized(1, 16)
            else:
                getattr(reader, step)()
        reader.finish()
    except DecodeError:
        pass
    assert 0 <= reader.position <= len(data)
