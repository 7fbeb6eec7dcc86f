"""A state in a dict, with the handler interface (get, set, delete, scan), for property
tests that drive the trust functions directly, much faster than a chain."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class DictState:
    def __init__(self, entries: dict[bytes, bytes] | None = None) -> None:
        self.entries: dict[bytes, bytes] = dict(entries or {})

    def get(self, key: bytes) -> bytes | None:
        return self.entries.get(key)

    def set(self, key: bytes, value: bytes) -> None:
        assert isinstance(value, bytes)
        self.entries[key] = value

    def delete(self, key: bytes) -> None:
        self.entries.pop(key, None)

    def scan(self, start: bytes, end: bytes, limit: int | None = None
             ) -> list[tuple[bytes, bytes]]:
        found = sorted((k, v) for k, v in self.entries.items() if start <= k < end)
        return found if limit is None else found[:limit]


@dataclass
class Clock:
    """A block or tx context: height, time, events (and what hooks read)."""

    height: int
    timestamp_ms: int
    events: list[Any] = field(default_factory=list)
    prev_hash: bytes = b"\x00" * 32
