"""`trace(item)`: an item's whole history in order, back through transformations to the raw
inputs and through the containers it travelled in, with every state entry it rests on;
`verify_trace`: a client's check of such a history against a state root.

Rules (docs/mall.md 6.5): all of the item's own events; for a
TransformationEvent that produced the item, each input's history up to and
including that event (and so on, back to the raw inputs); for an
AggregationEvent ADD that packed the item, the container's events from that
ADD to the DELETE that unpacked it (the hand-overs of the case carried the
item); for every included event, its error declaration if one was recorded.

Each returned object is a state entry (item, index entry, event, declaration
marker), so a client may prove every one of them against the state root.
It need not: `anchors` names the few entries that commit to everything else.
An item's index entries and its item entry carry the item's history hash
(`items.next_history`), so for each run of consecutive events of one item
the entry at the run's end (the item entry if the run reaches the end, else
the index entry) fixes every record of the run, complete and in order, given
the history hash before the run (the index entry just before it, if any).
Proving the anchors and hashing the records (`verify_trace`) checks the whole
trace with a handful of proofs.
"""

from __future__ import annotations

import functools
import struct
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ..constants import (
    HASH_BYTES,
    TABLE_MALL_DECLARATIONS,
    TABLE_MALL_EVENTS,
    TABLE_MALL_ITEM_EVENTS,
    TRACE_EVENTS_MAX,
    TRACE_ITEMS_MAX,
)
from ..errors import DecodeError, ItemNotFound
from . import keys
from .codec import StateReader
from .events import EventRecord, TraceEvent, decode_event_record, event_id_of
from .items import EMPTY_HISTORY, Item, decode_index_entry, decode_item, next_history
from .vocab import (
    ACTION_ADD,
    ACTION_DELETE,
    KIND_AGGREGATION,
    KIND_ERROR_DECLARATION,
    KIND_TRANSFORMATION,
)

_TIME = struct.Struct(">Q")
_EVENT_TIME_AT = 3  # version, kind, action, then the event time
_DECLARATION_TIME_AT = 2 + HASH_BYTES  # version, kind, event id, then the declaration time


@dataclass(frozen=True, slots=True)
class TraceStep:
    """One event of a trace, with the item it was reached through."""

    event_id: bytes
    record: EventRecord
    item_key: bytes
    declared_by: bytes | None  # the id of the declaration that calls it erroneous

    @property
    def is_declaration(self) -> bool:
        return self.record.kind == KIND_ERROR_DECLARATION


@dataclass(slots=True)
class Trace:
    """The result of `trace`: steps in order, the state entries they rest on, and the
    anchors among them (the entries a client proves to check all the others)."""

    root: bytes
    steps: list[TraceStep] = field(default_factory=list)
    items: dict[bytes, Item] = field(default_factory=dict)
    entries: dict[bytes, bytes] = field(default_factory=dict)  # state key -> value
    anchors: dict[bytes, bytes] = field(default_factory=dict)
    truncated: bool = False


class _Walker:
    def __init__(self, state: StateReader, max_items: int, result: Trace) -> None:
        self.state = state
        self.max_items = max_items
        self.result = result
        self.indexes: dict[bytes, list[bytes]] = {}  # item key -> event ids in order
        self.index_entries: dict[bytes, list[tuple[bytes, bytes]]] = {}  # (key, value)s
        self.records: dict[bytes, EventRecord] = {}
        self.events: dict[bytes, TraceEvent] = {}

    def index(self, item_key: bytes) -> list[bytes]:
        found = self.indexes.get(item_key)
        if found is not None:
            return found
        if len(self.indexes) >= self.max_items:
            self.result.truncated = True
            return []
        item_entry = keys.item(item_key)
        raw = self.state.get(item_entry)
        if raw is None:
            raise ItemNotFound(f"no item {item_key.hex()} has been recorded")
        item = decode_item(raw)
        self.result.items[item_key] = item
        self.result.entries[item_entry] = raw
        start, end = keys.prefix_range(keys.item_events_of(item_key))
        entries = self.state.scan(start, end, item.event_count + 1)
        if len(entries) != item.event_count:
            raise ItemNotFound(f"item {item.uri}: {len(entries)} index entries, its count says "
                               f"{item.event_count}")
        self.index_entries[item_key] = entries
        ids = self.indexes[item_key] = [decode_index_entry(value)[0] for _, value in entries]
        return ids

    def record(self, event_id: bytes) -> EventRecord:
        found = self.records.get(event_id)
        if found is None:
            key = keys.event(event_id)
            raw = self.state.get(key)
            if raw is None:
                raise ItemNotFound(f"an index names event {event_id.hex()}, which is missing")
            found = self.records[event_id] = decode_event_record(raw, check_payload=False)
            self.result.entries[key] = raw
        return found

    def links(self, event_id: bytes) -> TraceEvent | None:
        """The event, decoded, when it can lead elsewhere (a transformation or an
        aggregation); None for the rest, which the walk does not need to decode."""
        record = self.record(event_id)
        if record.kind not in (KIND_TRANSFORMATION, KIND_AGGREGATION):
            return None
        found = self.events.get(event_id)
        if found is None:
            found = self.events[event_id] = record.event()
        return found


def trace(state: StateReader, item: str | bytes, max_events: int = TRACE_EVENTS_MAX,
          max_items: int = TRACE_ITEMS_MAX) -> Trace:
    """The history of `item` (its URI, or its 32-byte key): see the module docstring.

    Steps are in chain order: by recording height, then event time, then id.
    ItemNotFound if the item was never recorded. `truncated` is set when the
    limits stopped the walk (the steps found so far are returned).
    """
    root = _key_of(item) if isinstance(item, str) else bytes(item)
    if len(root) != HASH_BYTES:
        raise ValueError("an item key is 32 bytes")
    result = Trace(root)
    walker = _Walker(state, max_items, result)
    included: dict[bytes, set[int]] = {}
    work: deque[tuple[bytes, int]] = deque()

    def include(item_key: bytes, positions: range) -> None:
        ids = walker.index(item_key)
        seen = included.setdefault(item_key, set())
        for position in positions:
            if position < len(ids) and position not in seen:
                seen.add(position)
                work.append((item_key, position))
                key, value = walker.index_entries[item_key][position]
                result.entries[key] = value

    include(root, range(len(walker.index(root))))
    steps: dict[bytes, TraceStep] = {}
    while work:
        if len(steps) >= max_events:
            result.truncated = True
            break
        item_key, position = work.popleft()
        event_id = walker.indexes[item_key][position]
        if event_id in steps:
            continue
        record = walker.record(event_id)
        marker_key = keys.declaration(event_id)
        marker = state.get(marker_key)
        declared_by = None
        if marker is not None:
            result.entries[marker_key] = result.anchors[marker_key] = marker
            declared_by = _declaration_id(marker)
            if declared_by not in steps:
                steps[declared_by] = TraceStep(declared_by, walker.record(declared_by),
                                               item_key, None)
        steps[event_id] = TraceStep(event_id, record, item_key, declared_by)
        event = walker.links(event_id)
        if event is None:
            continue
        if event.kind == KIND_TRANSFORMATION and _produced(event, item_key):
            for uri in (*event.epcs, *(q.epc_class for q in event.quantities)):
                source = _key_of(uri)
                ids = walker.index(source)
                if event_id in ids:
                    include(source, range(ids.index(event_id) + 1))
        if event.kind == KIND_AGGREGATION and event.action == ACTION_ADD \
                and _child(event, item_key):
            container = _key_of(event.parent)
            ids = walker.index(container)
            if event_id in ids:
                start = ids.index(event_id)
                include(container, range(start, _unpacked_at(walker, container, ids, start,
                                                             item_key) + 1))
    for item_key, positions in included.items():
        _anchor(result, item_key, positions, walker.index_entries[item_key])
    result.steps = sorted(steps.values(), key=lambda step: (
        step.record.height, _time_of(step.record), step.event_id))
    return result


def _anchor(result: Trace, item_key: bytes, positions: set[int],
            index_entries: list[tuple[bytes, bytes]]) -> None:
    """Name the entries that fix each run of consecutive included positions: the item, the
    index entry at a run's end (when it is not the item's last event) and the one just
    before a run's start (an anchor only: its event is not part of the trace)."""
    ordered = sorted(positions)
    runs: list[tuple[int, int]] = []
    for position in ordered:
        if runs and runs[-1][1] == position - 1:
            runs[-1] = (runs[-1][0], position)
        else:
            runs.append((position, position))
    item_entry = keys.item(item_key)
    result.anchors[item_entry] = result.entries[item_entry]
    count = len(index_entries)
    for first, last in runs:
        for position in (first - 1, last):
            if 0 <= position < count - 1:
                key, value = index_entries[position]
                result.entries[key] = result.anchors[key] = value


def _declaration_id(marker: bytes) -> bytes:
    if len(marker) != 1 + HASH_BYTES or marker[0] != 1:
        raise DecodeError("declaration marker: not version 1 and a 32-byte id")
    return marker[1:]


def _time_of(record: EventRecord) -> int:
    at = _DECLARATION_TIME_AT if record.kind == KIND_ERROR_DECLARATION else _EVENT_TIME_AT
    return _TIME.unpack_from(record.payload, at)[0]


_key_of: Callable[[str], bytes] = functools.lru_cache(maxsize=1 << 12)(keys.item_key)


def _produced(event: TraceEvent, item_key: bytes) -> bool:
    outputs = (*event.out_epcs, *(q.epc_class for q in event.out_quantities))
    return any(_key_of(uri) == item_key for uri in outputs)


def _child(event: TraceEvent, item_key: bytes) -> bool:
    return any(_key_of(uri) == item_key for uri in event.epcs)


def _unpacked_at(walker: _Walker, container: bytes, ids: list[bytes], start: int,
                 item_key: bytes) -> int:
    """Position of the container's DELETE that unpacked the item after `start` (or the end)."""
    for position in range(start + 1, len(ids)):
        event = walker.links(ids[position])
        if event is not None and event.kind == KIND_AGGREGATION \
                and event.action == ACTION_DELETE and _child(event, item_key):
            return position
    return len(ids) - 1


# --- the client's check ---------------------------------------------------------------


class TraceInvalid(Exception):
    """A trace that does not check out against the anchors (the message says where)."""


def verify_trace(anchors: Mapping[bytes, bytes], entries: Mapping[bytes, bytes],
                 root: bytes) -> None:
    """Check the trace of item `root` (its key) from its entries and its anchors, which the
    caller has already proven against the state root; TraceInvalid on the first fault.

    For every run of consecutive index entries of an item: each event record
    must be the one its index entry names (its id recomputed from recorder and
    payload), and folding the records into the history hash, from the anchor
    before the run (or the empty history), must give the anchor at its end.
    An index entry without its event record must be an anchor (the one just
    before a run). Every declaration marker must be an anchor naming a record
    present. And nothing may be left out: the root item's whole history is
    there, every transformation that produced an item of the trace has each
    input's history from its first event up to it, and every packing of an
    item has its container's events from that packing to the unpacking.
    """
    for key, value in anchors.items():
        if entries.get(key) != value:
            raise TraceInvalid(f"anchor {key.hex()} is not among the entries as proven")
    records = {key[1:]: value for key, value in entries.items()
               if key[0] == TABLE_MALL_EVENTS}
    verified: set[bytes] = set()  # event ids checked through a run or a marker
    positions: dict[bytes, dict[int, bytes]] = {}
    for key, value in entries.items():
        if key[0] != TABLE_MALL_ITEM_EVENTS:
            continue
        if keys.event(decode_index_entry(value)[0]) not in entries:
            if anchors.get(key) != value:  # only an anchor before a run comes without its event
                raise TraceInvalid(f"index entry {key.hex()}: its event is missing")
            continue
        positions.setdefault(key[1:1 + HASH_BYTES], {})[
            int.from_bytes(key[1 + HASH_BYTES:], "big")] = value
    for item_key, by_position in positions.items():
        item_value = anchors.get(keys.item(item_key))
        if item_value is None or entries.get(keys.item(item_key)) != item_value:
            raise TraceInvalid(f"item {item_key.hex()} is not an anchor")
        item = decode_item(item_value)
        history = EMPTY_HISTORY
        previous = None
        for position in sorted(by_position):
            if position != previous + 1 if previous is not None else position != 0:
                before = keys.item_event(item_key, position - 1)
                if before not in anchors:
                    raise TraceInvalid(f"item {item.uri}: no anchor before position {position}")
                history = decode_index_entry(anchors[before])[1]
            event_id, claimed = decode_index_entry(by_position[position])
            record = records[event_id]  # present: checked above
            decoded = decode_event_record(record, check_payload=False)
            if event_id_of(decoded.recorder, decoded.payload) != event_id:
                raise TraceInvalid(f"item {item.uri}: the record of {event_id.hex()} is not "
                                   "that event")
            verified.add(event_id)
            history = next_history(history, record)
            if history != claimed:
                raise TraceInvalid(f"item {item.uri}: history breaks at position {position}")
            last = position == item.event_count - 1
            anchor = keys.item(item_key) if last else keys.item_event(item_key, position)
            ends_run = position + 1 not in by_position
            if ends_run and anchor in anchors:
                expected = item.history if last else decode_index_entry(anchors[anchor])[1]
                if history != expected:
                    raise TraceInvalid(f"item {item.uri}: the run ending at {position} does "
                                       "not match its anchor")
            elif ends_run:
                raise TraceInvalid(f"item {item.uri}: no anchor at the end of a run "
                                   f"({position})")
            previous = position
    for key, value in entries.items():
        if key[0] != TABLE_MALL_DECLARATIONS:
            continue
        declaration_id = _declaration_id(value)
        record = records.get(declaration_id)
        if anchors.get(key) != value or record is None:
            raise TraceInvalid(f"declaration marker {key.hex()} is not an anchor with its "
                               "record")
        decoded = decode_event_record(record, check_payload=False)
        if event_id_of(decoded.recorder, decoded.payload) != declaration_id:
            raise TraceInvalid(f"the record of declaration {declaration_id.hex()} is not it")
        verified.add(declaration_id)
    unchecked = set(records) - verified
    if unchecked:
        raise TraceInvalid(f"{len(unchecked)} event records are not fixed by any anchor")
    _check_complete(anchors, positions, records, root)


def _check_complete(anchors: Mapping[bytes, bytes], positions: dict[bytes, dict[int, bytes]],
                    records: Mapping[bytes, bytes], root: bytes) -> None:
    """The completeness rules of `verify_trace` (its runs are already checked): the root's
    whole history; for a transformation that produced an item of the trace, each input's
    history from its first event up to it; for a packing of an item, the container's events
    from it to the unpacking of the item (or the container's last event)."""
    root_item = anchors.get(keys.item(root))
    if root_item is None:
        raise TraceInvalid("the traced item is not among the anchors")
    count = decode_item(root_item).event_count
    if sorted(positions.get(root, {})) != list(range(count)):
        raise TraceInvalid(f"the traced item's history is not whole ({count} events)")
    for item_key, by_position in positions.items():
        for value in by_position.values():
            event_id = decode_index_entry(value)[0]
            event = _linking_event(records, event_id)
            if event is None:
                continue
            if event.kind == KIND_TRANSFORMATION and _produced(event, item_key):
                for uri in (*event.epcs, *(q.epc_class for q in event.quantities)):
                    listed = positions.get(_key_of(uri), {})
                    at = _position_of(listed, event_id)
                    if at is None or any(p not in listed for p in range(at)):
                        raise TraceInvalid(f"event {event_id.hex()} leads to item {uri}, "
                                           "whose history up to it is missing")
            elif event.kind == KIND_AGGREGATION and event.action == ACTION_ADD \
                    and _child(event, item_key):
                container = _key_of(event.parent)
                listed = positions.get(container, {})
                at = _position_of(listed, event_id)
                if at is None or not _packed_run_listed(anchors, records, container, listed,
                                                        at, item_key):
                    raise TraceInvalid(f"event {event_id.hex()} leads to item {event.parent}, "
                                       "whose events from it are missing")


def _linking_event(records: Mapping[bytes, bytes], event_id: bytes) -> TraceEvent | None:
    """The event of a record when it is a transformation or an aggregation, else None."""
    record = decode_event_record(records[event_id], check_payload=False)
    if record.kind not in (KIND_TRANSFORMATION, KIND_AGGREGATION):
        return None
    try:
        return record.event()
    except DecodeError as exc:
        raise TraceInvalid(f"event {event_id.hex()}: {exc}") from None


def _position_of(listed: Mapping[int, bytes], event_id: bytes) -> int | None:
    for position, value in listed.items():
        if decode_index_entry(value)[0] == event_id:
            return position
    return None


def _packed_run_listed(anchors: Mapping[bytes, bytes], records: Mapping[bytes, bytes],
                       container: bytes, listed: Mapping[int, bytes], start: int,
                       item_key: bytes) -> bool:
    """Whether the container's events from `start` (the packing) are listed up to the
    aggregation DELETE that unpacked the item, or to the container's last event."""
    value = anchors.get(keys.item(container))
    if value is None:
        return False
    last = decode_item(value).event_count - 1
    position = start
    while position < last:
        position += 1
        if position not in listed:
            return False
        event = _linking_event(records, decode_index_entry(listed[position])[0])
        if event is not None and event.kind == KIND_AGGREGATION \
                and event.action == ACTION_DELETE and _child(event, item_key):
            return True
    return True
