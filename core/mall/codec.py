"""Shared pieces of the mall's canonical encodings: text rules, strict payload readers.

Every mall payload and every mall state value starts with `MALL_VERSION` and
is read with `core/encoding.py`'s Reader, consumed exactly. A payload that is
not canonical is `MalformedPayload` (156, a receipt code); a stored value that
is not is `DecodeError` (the state is corrupt). Text is UTF-8 (names, titles)
or a restricted ASCII (URIs, codes), checked the same way on encode and decode
so that what one node accepts, every node accepts.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

from ..abci.types import Event
from ..address import encode_address
from ..constants import ADDRESS_BYTES, ADDRESS_TEXT_CACHE_ENTRIES, HASH_BYTES, MALL_VERSION
from ..encoding import Reader, Writer
from ..errors import DecodeError, MalformedPayload
from ..genesis import check_jurisdiction

MARK = bytes([MALL_VERSION])  # the value of an index entry: it only says "present"
NO_ID = bytes(HASH_BYTES)  # "none" in a 32-byte id field
NO_ADDRESS = bytes(ADDRESS_BYTES)

# URI characters of RFC 3986 (unreserved, reserved and '%'): an exported EPCIS
# document must pass the schema's "uri" format check.
_URI_CHARS = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/?#[]@!$&'()*+,;=%")
_SCHEME_FIRST = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_SCHEME_REST = _SCHEME_FIRST | frozenset(b"0123456789+.-")
_TOKEN_CHARS = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789-_/")


class StateReader(Protocol):
    """Read access to state entries: a block's state, or a committed view for queries."""

    def get(self, key: bytes) -> bytes | None: ...

    def scan(self, start: bytes, end: bytes,
             limit: int | None = None) -> list[tuple[bytes, bytes]]: ...


class MallState(StateReader, Protocol):
    """What a handler or hook gets (docs/abci.md): reads, writes, deletes, ordered scans."""

    def set(self, key: bytes, value: bytes) -> None: ...

    def delete(self, key: bytes) -> None: ...


class Clock(Protocol):
    """The block facts a transition needs: a tx's ExecContext or a hook's block context."""

    height: int
    timestamp_ms: int
    events: list


class TxContext(Clock, Protocol):
    """A handler's ExecContext (docs/abci.md): the block facts, the tx and its sender."""

    tx: Any  # core.tx.Tx: sender public key, payload, tx_id
    sender: bytes  # the sender's 20-byte address


def check_uri(text: str, what: str) -> str:
    """`text` if it is a URI of RFC 3986 characters with a scheme; ValueError otherwise."""
    raw = text.encode("utf-8") if isinstance(text, str) else b""
    if not isinstance(text, str) or not raw:
        raise ValueError(f"{what}: expected a URI")
    colon = raw.find(b":")
    if colon < 1 or raw[0] not in _SCHEME_FIRST or not _SCHEME_REST.issuperset(raw[1:colon]):
        raise ValueError(f"{what}: {text[:40]!r} is not a URI (scheme:...)")
    if colon == len(raw) - 1 or not _URI_CHARS.issuperset(raw):
        raise ValueError(f"{what}: {text[:40]!r} has characters a URI may not hold")
    return text


def check_jurisdiction_text(text: str, what: str) -> str:
    """A jurisdiction code field (`genesis.check_jurisdiction`), as a text rule."""
    return check_jurisdiction(text)


def check_token(text: str, what: str, low: int = 1) -> str:
    """A lower-case token path (a-z, 0-9, '-', '_', '/'), e.g. a category."""
    raw = text.encode("utf-8") if isinstance(text, str) else b"\xff"
    if len(raw) < low or not _TOKEN_CHARS.issuperset(raw):
        raise ValueError(f"{what}: use a-z, 0-9, '-', '_' and '/'")
    return text


def check_text(text: str, what: str, low: int = 0) -> str:
    """Printable UTF-8 text (no control characters) of at least `low` bytes."""
    if not isinstance(text, str):
        raise ValueError(f"{what}: expected text")
    if len(text.encode("utf-8", "replace")) < low or not text.isprintable():
        raise ValueError(f"{what}: printable text of at least {low} bytes")
    return text


class FieldReader(Reader):
    """A `Reader` that checks the version byte first and reads the mall's field kinds.

    Its own rule failures (`fail`, `text`) raise `error`; the Reader's faults
    (truncation, oversized, trailing bytes) raise DecodeError, which the
    payload decoders (`payload_decoder`) turn into MalformedPayload. Fields
    are read without an extra call layer: decoding is on every tx's path.
    """

    __slots__ = ("_error", "head")

    def __init__(self, data: bytes, what: str, error: type[Exception],
                 head: struct.Struct | None = None) -> None:
        """`head`, when given, is the fixed-width start of the value (version first),
        unpacked at once into `self.head`; reading goes on after it."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise error(f"{what}: expected bytes")
        super().__init__(data, what)
        self._error = error
        if head is None:
            self.head: tuple = ()
            version = self.u8("version")
        else:
            if len(self._data) < head.size:
                raise error(f"{what}: truncated: {len(self._data)} bytes, the fixed part is "
                            f"{head.size}")
            self.head = head.unpack_from(self._data)
            self._pos = head.size
            version = self.head[0]
        if version != MALL_VERSION:
            raise error(f"{what}: unsupported version {version}, expected {MALL_VERSION}")

    @property
    def what(self) -> str:
        return self._what

    # u8, fixed and text are on every payload's path: they read in place when the bytes
    # are there and leave faults (with the Reader's messages) to the Reader's methods.

    def u8(self, field: str = "u8") -> int:
        pos = self._pos
        if pos < len(self._data):
            self._pos = pos + 1
            return self._data[pos]
        return super().u8(field)

    def fixed(self, length: int, field: str = "bytes") -> bytes:
        pos = self._pos
        end = pos + length
        if end <= len(self._data):
            self._pos = end
            return self._data[pos:end]
        return super().fixed(length, field)

    def address(self, field: str) -> bytes:
        return self.fixed(ADDRESS_BYTES, field)

    def hash(self, field: str) -> bytes:
        return self.fixed(HASH_BYTES, field)

    def fail(self, message: str) -> Exception:
        """The reader's error for a rule the bytes break (raise it)."""
        return self._error(f"{self._what}: {message}")

    def text(self, max_bytes: int, field: str, check: Callable[[str, str], str] = check_text,
             low: int = 0) -> str:
        """A u8-sized UTF-8 text field that passes `check` and is at least `low` bytes."""
        data, pos = self._data, self._pos
        if pos < len(data) and data[pos] <= max_bytes and pos + 1 + data[pos] <= len(data):
            end = pos + 1 + data[pos]
            self._pos = end
            raw = data[pos + 1:end]
        else:
            raw = self.sized(1, max_bytes, field)  # its fault, in the Reader's words
        if not raw:
            if low:
                raise self.fail(f"{field}: at least {low} bytes")
            return ""
        try:
            text = raw.decode("utf-8")
            if len(raw) < low:
                raise ValueError(f"at least {low} bytes")
            check(text, field)
        except (UnicodeDecodeError, ValueError) as exc:
            raise self.fail(f"{field}: {exc}") from None
        return text


D = TypeVar("D")


def payload_decoder(decode: Callable[..., D]) -> Callable[..., D]:
    """Make a payload decoder raise only MalformedPayload (its Reader raises DecodeError)."""

    @functools.wraps(decode)
    def strict(payload: bytes, *args: Any, **kwargs: Any) -> D:
        try:
            return decode(payload, *args, **kwargs)
        except DecodeError as exc:
            raise MalformedPayload(str(exc)) from None

    return strict


V = TypeVar("V")


class DecodedValues(Generic[V]):
    """A stored value's decoder, remembering what it decoded by the value's bytes.

    Mall objects are immutable and their decoders pure functions of the bytes, so a
    value read again (the same entry in a later tx or block, or the same bytes under
    another key) is decoded once. The saving side files what it just encoded
    (`remember`): the next tx that reads that entry gets the object without decoding.
    Bounded by `max_entries` (emptied when full). With `CHECK` on (tests), every
    remembered object is checked to be what decoding its bytes gives.
    """

    CHECK = False

    __slots__ = ("__name__", "__wrapped__", "_decode", "_max", "_values")

    def __init__(self, decode: Callable[[bytes], V], max_entries: int) -> None:
        self._decode = decode
        self._max = max_entries
        self._values: dict[bytes, V] = {}
        self.__name__, self.__wrapped__ = decode.__name__, decode

    def __call__(self, value: bytes) -> V:
        decoded = self._values.get(value)
        if decoded is None:
            decoded = self._decode(value)  # a fault raises here: nothing is kept
            self._keep(value, decoded)
        return decoded

    def remember(self, value: bytes, decoded: V) -> bytes:
        """File `decoded` as the object `value` (its encoding) decodes to; `value`."""
        if DecodedValues.CHECK and self._decode(value) != decoded:
            raise AssertionError(f"{self.__name__}: a remembered object is not what its "
                                 "bytes decode to")
        self._keep(value, decoded)
        return value

    def _keep(self, value: bytes, decoded: V) -> None:
        values = self._values
        if len(values) >= self._max:
            values.clear()
        values[value] = decoded


def decoded_values(max_entries: int) -> Callable[[Callable[[bytes], V]], DecodedValues[V]]:
    """Decorator: `DecodedValues(decode, max_entries)`."""
    return lambda decode: DecodedValues(decode, max_entries)


@functools.lru_cache(maxsize=ADDRESS_TEXT_CACHE_ENTRIES)
def address_text(address: bytes) -> str:
    """`encode_address`, cached: event attributes and party URIs name the same parties
    again and again, and bech32m in Python costs ~70 us an address."""
    return encode_address(address)


def payload_reader(payload: bytes, what: str) -> FieldReader:
    """A strict reader of a tx payload (MalformedPayload on any fault)."""
    return FieldReader(payload, what, MalformedPayload)


def value_reader(value: bytes, what: str) -> FieldReader:
    """A strict reader of a stored value (DecodeError on any fault)."""
    return FieldReader(value, what, DecodeError)


def writer() -> Writer:
    """A Writer that has written the version byte."""
    return Writer().u8(MALL_VERSION)


def put_text(out: Writer, text: str, max_bytes: int) -> Writer:
    """A u8-sized UTF-8 text field."""
    return out.sized(text.encode("utf-8"), 1, max_bytes)


def check_mark(value: bytes | None, what: str) -> None:
    """An index entry's value must be `MARK`."""
    if value != MARK:
        raise DecodeError(f"{what}: an index entry holds {value!r}, expected {MARK!r}")


def emit(ctx: Clock, kind: str, *attributes: tuple[str, str]) -> None:
    """Append an ABCI event (dropped by the machine if the tx fails)."""
    ctx.events.append(Event(kind, tuple(attributes)))
