"""Node answers the client checks itself: every entry proven against the query's state root.

`proven_query` asks a query path with proofs and verifies each entry's proof
(docs/state-root.md) against the state root the node answered with, before
anything is shown; a proof that fails is `InvalidProof`, never a result.
`prove_absent` proves that a key holds nothing (a "not found" that the node
cannot fake). `fetch_trace` checks an item's history the light way
(docs/mall.md 6.5): the anchors proven, every other entry checked against
them by hashing (`history.verify_trace`). `EntryState` serves checked entries
to the mall's own read functions (e.g. `history.trace`), so the client orders
and exports a history exactly as a node would, from data it verified.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from chainmall.core.constants import MALL_TRACE_READS_MAX
from chainmall.core.errors import InvalidProof
from chainmall.core.mall import keys
from chainmall.core.mall.history import Trace, TraceInvalid, trace, verify_trace
from chainmall.core.rpc.client import BlockingClient
from chainmall.core.state.root import decode_proof, verify_proof


@dataclass(frozen=True, slots=True)
class Proven:
    """A query's entries, each proven against `root`, the state root after `height`."""

    path: str
    height: int
    root: bytes
    entries: tuple[tuple[bytes, bytes | None], ...]

    def __iter__(self) -> Iterator[tuple[bytes, bytes | None]]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def table(self, table: int) -> list[tuple[bytes, bytes]]:
        """The present entries of one state table, in the order served."""
        return [(key, value) for key, value in self.entries
                if key[0] == table and value is not None]

    def get(self, key: bytes) -> bytes | None:
        return dict(self.entries).get(key)

    def line(self) -> str:
        """What was checked, for people."""
        return (f"proofs: {len(self.entries)} entries verified against state root "
                f"{self.root.hex()} (height {self.height})")

    def json(self) -> dict[str, Any]:
        """What was checked, for programs."""
        return {"height": self.height, "state_root": self.root.hex(),
                "entries_verified": len(self.entries), "verified": True}


def _check(path: str, root: bytes, key: bytes, value: bytes | None, proof: bytes) -> None:
    if not proof:
        raise InvalidProof(f"{path}: the node sent no proof for entry {key.hex()}")
    if not verify_proof(root, key, value, decode_proof(proof)):
        raise InvalidProof(f"{path}: entry {key.hex()} does not prove against state root "
                           f"{root.hex()}: do not trust this node's answer")


def proven_query(client: BlockingClient, path: str, data: bytes = b"") -> Proven:
    """`path` with proofs; every entry verified against the answer's root (InvalidProof)."""
    result = client.query(path, data, prove=True)
    for entry in result.entries:
        _check(path, result.root, entry.key, entry.value, entry.proof)
    return Proven(path, result.height, result.root,
                  tuple((entry.key, entry.value) for entry in result.entries))


def prove_absent(client: BlockingClient, key: bytes) -> Proven:
    """The proof that state key `key` holds nothing (InvalidProof if the proof fails).

    Returns the proven (key, None); a present value comes back as it is, proven."""
    result = client.query("/state", key, prove=True)
    entry = result.entries[0] if result.entries else None
    if entry is None or entry.key != key:
        raise InvalidProof(f"the node did not answer for state key {key.hex()}")
    _check("/state", result.root, key, entry.value, entry.proof)
    return Proven("/state", result.height, result.root, ((key, entry.value),))


class EntryState:
    """Read access (`get`, `scan`) over a set of checked state entries, as the mall's read
    functions expect (core/mall/codec.py: StateReader)."""

    def __init__(self, entries: Mapping[bytes, bytes]) -> None:
        self._entries = dict(entries)
        self._keys = sorted(self._entries)

    def get(self, key: bytes) -> bytes | None:
        return self._entries.get(key)

    def scan(self, start: bytes, end: bytes,
             limit: int | None = None) -> list[tuple[bytes, bytes]]:
        at = bisect.bisect_left(self._keys, start)
        out: list[tuple[bytes, bytes]] = []
        while at < len(self._keys) and self._keys[at] < end:
            if limit is not None and len(out) >= limit:
                break
            out.append((self._keys[at], self._entries[self._keys[at]]))
            at += 1
        return out


@dataclass(frozen=True, slots=True)
class CheckedTrace:
    """An item's history as `history.trace` orders it, from entries checked against proven
    anchors: `anchors` says at which height and root they were proven."""

    item_key: bytes
    trace: Trace
    anchors: Proven
    entries_checked: int

    def line(self) -> str:
        return (f"proofs: {len(self.anchors)} anchors verified against state root "
                f"{self.anchors.root.hex()} (height {self.anchors.height}); "
                f"{self.entries_checked} entries checked against them (verify_trace)")

    def json(self) -> dict[str, Any]:
        return {"height": self.anchors.height, "state_root": self.anchors.root.hex(),
                "anchors_verified": len(self.anchors), "entries_checked": self.entries_checked,
                "verified": True}


def fetch_trace(client: BlockingClient, item: str | bytes) -> CheckedTrace:
    """The checked history of `item` (URI or 32-byte key); InvalidProof if it does not check.

    Two reads: the anchors with proofs, the whole trace without; a block committed
    between them may change the trace, so a mismatch is read again (at most
    MALL_TRACE_READS_MAX times) before it is called invalid."""
    data = item.encode("utf-8") if isinstance(item, str) else bytes(item)
    item_key = keys.item_key(item) if isinstance(item, str) else bytes(item)
    problem = ""
    for _ in range(MALL_TRACE_READS_MAX):
        anchors = proven_query(client, "/mall/trace_anchors", data)
        served = client.query("/mall/trace", data)
        entries = {entry.key: entry.value for entry in served.entries
                   if entry.value is not None}
        present = {key: value for key, value in anchors if value is not None}
        try:
            verify_trace(present, entries, item_key)
        except TraceInvalid as exc:
            problem = str(exc)
            continue
        return CheckedTrace(item_key, trace(EntryState(entries), item_key), anchors,
                            len(entries))
    raise InvalidProof(f"the history of {item if isinstance(item, str) else item.hex()} does "
                       f"not check against its proven anchors: {problem}")
