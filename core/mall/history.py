"""`trace(item)`: an item's whole history in order, back through transformations to the raw
inputs and through the containers it travelled in, with every state entry it rests on.

Rules (docs/mall.md 6.5): all of the item's own events; for a
TransformationEvent that produced the item, each input's history up to and
including that event (and so on, back to the raw inputs); for an
AggregationEvent ADD that packed the item, the container's events from that
ADD to the DELETE that unpacked it (hand-overs of the case carried the item);
for every included event, its error declaration if one was recorded. Each
returned object is a state entry (item, index entry, event, declaration
marker), so the caller proves each against the state root; the item entries'
event counts with their index entries prove nothing was left out.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from ..constants import HASH_BYTES, TRACE_EVENTS_MAX, TRACE_ITEMS_MAX
from ..errors import ItemNotFound
from . import keys
from .codec import StateReader
from .events import EventRecord, TraceEvent, decode_event_record
from .items import Item, decode_index_entry, decode_item
from .vocab import (
    ACTION_ADD,
    ACTION_DELETE,
    KIND_AGGREGATION,
    KIND_ERROR_DECLARATION,
    KIND_TRANSFORMATION,
)


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
    """The result of `trace`: steps in order and the state entries they rest on."""

    root: bytes
    steps: list[TraceStep] = field(default_factory=list)
    items: dict[bytes, Item] = field(default_factory=dict)
    entries: dict[bytes, bytes] = field(default_factory=dict)  # state key -> value
    truncated: bool = False


class _Walker:
    def __init__(self, state: StateReader, max_events: int, max_items: int) -> None:
        self.state = state
        self.max_events = max_events
        self.max_items = max_items
        self.indexes: dict[bytes, list[bytes]] = {}
        self.records: dict[bytes, EventRecord] = {}
        self.events: dict[bytes, TraceEvent] = {}
        self.included: dict[bytes, set[int]] = {}
        self.result: Trace | None = None

    def index(self, item_key: bytes) -> list[bytes]:
        found = self.indexes.get(item_key)
        if found is not None:
            return found
        assert self.result is not None
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
        ids = []
        for key, value in entries:
            self.result.entries[key] = value
            ids.append(decode_index_entry(value))
        self.indexes[item_key] = ids
        return ids

    def record(self, event_id: bytes) -> EventRecord:
        found = self.records.get(event_id)
        if found is None:
            assert self.result is not None
            key = keys.event(event_id)
            raw = self.state.get(key)
            if raw is None:
                raise ItemNotFound(f"an index names event {event_id.hex()}, which is missing")
            found = self.records[event_id] = decode_event_record(raw)
            self.result.entries[key] = raw
        return found

    def event(self, event_id: bytes) -> TraceEvent | None:
        record = self.record(event_id)
        if record.kind == KIND_ERROR_DECLARATION:
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
    root = keys.item_key(item) if isinstance(item, str) else bytes(item)
    if len(root) != HASH_BYTES:
        raise ValueError("an item key is 32 bytes")
    walker = _Walker(state, max_events, max_items)
    result = walker.result = Trace(root)
    work: deque[tuple[bytes, int]] = deque()

    def include(item_key: bytes, positions: range) -> None:
        ids = walker.index(item_key)
        seen = walker.included.setdefault(item_key, set())
        for position in positions:
            if position < len(ids) and position not in seen:
                seen.add(position)
                work.append((item_key, position))

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
        marker = state.get(keys.declaration(event_id))
        declared_by = None
        if marker is not None:
            result.entries[keys.declaration(event_id)] = marker
            declared_by = decode_index_entry(marker)
            walker.record(declared_by)
            if declared_by not in steps:
                steps[declared_by] = TraceStep(declared_by, walker.records[declared_by],
                                               item_key, None)
        steps[event_id] = TraceStep(event_id, record, item_key, declared_by)
        event = walker.event(event_id)
        if event is None:
            continue
        if event.kind == KIND_TRANSFORMATION and _produced(event, item_key):
            for uri in (*event.epcs, *(q.epc_class for q in event.quantities)):
                source = keys.item_key(uri)
                ids = walker.index(source)
                if event_id in ids:
                    include(source, range(ids.index(event_id) + 1))
        if event.kind == KIND_AGGREGATION and event.action == ACTION_ADD \
                and _child(event, item_key):
            container = keys.item_key(event.parent)
            ids = walker.index(container)
            if event_id in ids:
                start = ids.index(event_id)
                include(container, range(start, _unpacked_at(walker, container, ids, start,
                                                             item_key) + 1))
    result.steps = sorted(steps.values(), key=lambda step: (
        step.record.height, _time(walker, step), step.event_id))
    return result


def _time(walker: _Walker, step: TraceStep) -> int:
    if step.is_declaration:
        return step.record.declaration().declaration_time_ms
    event = walker.event(step.event_id)
    assert event is not None
    return event.event_time_ms


def _produced(event: TraceEvent, item_key: bytes) -> bool:
    outputs = (*event.out_epcs, *(q.epc_class for q in event.out_quantities))
    return any(keys.item_key(uri) == item_key for uri in outputs)


def _child(event: TraceEvent, item_key: bytes) -> bool:
    return any(keys.item_key(uri) == item_key for uri in event.epcs)


def _unpacked_at(walker: _Walker, container: bytes, ids: list[bytes], start: int,
                 item_key: bytes) -> int:
    """Position of the container's DELETE that unpacked the item after `start` (or the end)."""
    for position in range(start + 1, len(ids)):
        event = walker.event(ids[position])
        if event is not None and event.kind == KIND_AGGREGATION \
                and event.action == ACTION_DELETE and _child(event, item_key):
            return position
    return len(ids) - 1
