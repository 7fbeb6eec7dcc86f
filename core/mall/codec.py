"""Shared pieces of the mall's canonical encodings: text rules, strict payload readers.

Every mall payload and every mall state value starts with `MALL_VERSION` and
is read with `core/encoding.py`'s Reader, consumed exactly. A payload that is
not canonical is `MalformedPayload` (156, a receipt code); a stored value that
is not is `DecodeError` (the state is corrupt). Text is UTF-8 (names, titles)
or a restricted ASCII (URIs, codes), checked the same way on encode and decode
so that what one node accepts, every node accepts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from ..abci.types import Event
from ..constants import ADDRESS_BYTES, HASH_BYTES, MALL_VERSION
from ..encoding import Reader, Writer
from ..errors import DecodeError, MalformedPayload

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


E = TypeVar("E", bound=Exception)


class FieldReader:
    """A Reader that raises one error class (`MalformedPayload` or `DecodeError`) for
    every fault, including a broken text rule, and checks the version byte first."""

    __slots__ = ("_error", "_reader", "what")

    def __init__(self, data: bytes, what: str, error: type[Exception]) -> None:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise error(f"{what}: expected bytes")
        self._reader = Reader(data, what)
        self._error = error
        self.what = what
        version = self._call(self._reader.u8, "version")
        if version != MALL_VERSION:
            raise error(f"{what}: unsupported version {version}, expected {MALL_VERSION}")

    def _call(self, method: Callable, *args: object) -> object:
        try:
            return method(*args)
        except DecodeError as exc:
            if self._error is DecodeError:
                raise
            raise self._error(str(exc)) from None

    def u8(self, field: str) -> int:
        return self._call(self._reader.u8, field)  # type: ignore[return-value]

    def u16(self, field: str) -> int:
        return self._call(self._reader.u16, field)  # type: ignore[return-value]

    def u32(self, field: str) -> int:
        return self._call(self._reader.u32, field)  # type: ignore[return-value]

    def u64(self, field: str) -> int:
        return self._call(self._reader.u64, field)  # type: ignore[return-value]

    def fixed(self, length: int, field: str) -> bytes:
        return self._call(self._reader.fixed, length, field)  # type: ignore[return-value]

    def address(self, field: str) -> bytes:
        return self.fixed(ADDRESS_BYTES, field)

    def hash(self, field: str) -> bytes:
        return self.fixed(HASH_BYTES, field)

    def sized(self, prefix_bytes: int, max_bytes: int, field: str) -> bytes:
        return self._call(self._reader.sized, prefix_bytes, max_bytes, field)  # type: ignore

    def fail(self, message: str) -> Exception:
        """The reader's error for a rule the bytes break (raise it)."""
        return self._error(f"{self.what}: {message}")

    def text(self, max_bytes: int, field: str, check: Callable[[str, str], str] = check_text,
             low: int = 0) -> str:
        """A u8-sized UTF-8 text field that passes `check` and is at least `low` bytes."""
        raw = self.sized(1, max_bytes, field)
        try:
            text = raw.decode("utf-8")
            if len(raw) < low:
                raise ValueError(f"{field}: at least {low} bytes")
            if raw:
                check(text, field)
        except (UnicodeDecodeError, ValueError) as exc:
            raise self.fail(f"{field}: {exc}") from None
        return text

    def finish(self) -> None:
        self._call(self._reader.finish)


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
