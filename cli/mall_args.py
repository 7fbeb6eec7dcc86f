"""Arguments of the mall commands: ids, items, event times, content hashes, payload checks.

Every parser raises ValueError (or an InvalidInput) with a one-line message
naming the argument, which the root command prints as `error: ...`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import click
from chainmall.core.constants import EPCIS_TZ_OFFSET_MINUTES_MAX, HASH_BYTES
from chainmall.core.hashing import digest
from chainmall.core.mall import keys
from chainmall.core.mall.codec import check_uri
from chainmall.core.mall.epcis import parse_time

_HEX_ID = re.compile(r"[0-9a-fA-F]{64}")


def hex_id(text: str, what: str) -> bytes:
    """A 32-byte id written as 64 hex digits."""
    if not _HEX_ID.fullmatch(text.strip()):
        raise ValueError(f"{what}: expected {2 * HASH_BYTES} hex digits, got {text[:80]!r}")
    return bytes.fromhex(text.strip())


def item_argument(text: str) -> tuple[bytes, str | None]:
    """An item: its URI (e.g. urn:epc:id:sgtin:...) or its 64-hex item key -> (key, uri)."""
    if _HEX_ID.fullmatch(text.strip()):
        return bytes.fromhex(text.strip()), None
    try:
        uri = check_uri(text, "item")
    except ValueError as exc:
        raise ValueError(f"{exc} (give the item's URI or its 64-hex item key)") from None
    return keys.item_key(uri), uri


def event_time(text: str | None) -> tuple[int, int]:
    """An RFC 3339 time with its offset (e.g. 2026-03-01T10:00:00+01:00) -> (ms since the
    epoch, offset in minutes); None: now, in UTC."""
    if text is None:
        return time.time_ns() // 1_000_000, 0
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"time: {text!r} is not an RFC 3339 time "
                         "(e.g. 2026-03-01T10:00:00+01:00)") from None
    offset = moment.utcoffset()
    if offset is None:
        raise ValueError(f"time: {text!r} needs its offset (Z or +HH:MM)")
    minutes = int(offset.total_seconds()) // 60
    if abs(minutes) > EPCIS_TZ_OFFSET_MINUTES_MAX:
        raise ValueError(f"time: offset of {text!r} is outside -14:00..+14:00")
    return parse_time(text.strip(), "time"), minutes


def content_hash(path: Path | None, hex_text: str | None, what: str) -> bytes:
    """BLAKE3 of a file's bytes (`--WHAT FILE`), or a given hash (`--WHAT-hash HEX`), or 32
    zero bytes when neither is given; both at once is an error."""
    if path is not None and hex_text is not None:
        raise click.UsageError(f"give --{what} or --{what}-hash, not both")
    if path is not None:
        return digest(path.read_bytes())
    if hex_text is not None:
        return hex_id(hex_text, f"{what} hash")
    return bytes(HASH_BYTES)


def build_payload(what: str, encode: Callable[[], bytes],
                  decoder: Callable[[bytes], object]) -> bytes:
    """The payload `encode()` makes, once its decoder accepts it: a rule it breaks is a
    one-line error before signing (a field over its limit, MalformedPayload), not a failed
    tx that costs a fee."""
    try:
        payload = encode()
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from None
    decoder(payload)
    return payload
