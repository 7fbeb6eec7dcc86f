"""Recording trace events: the role and custody rules, item creation, error declarations.

TRACE_RECORD stores an EPCIS-shaped event signed by a registered party whose
roles may record its bizStep (`vocab.BIZ_STEP_RULES`), after the item rules
of its kind hold (docs/mall.md section 6.2). TRACE_DECLARE_ERROR declares an
earlier event erroneous: nothing is rewritten, the declaration is one more
event in the histories of the items the erroneous event names.
`record_event` is the one path that writes an event and its index entries;
hand-overs and deliveries use it too.
"""

from __future__ import annotations

from ..constants import HASH_BYTES
from ..errors import (
    AlreadyDeclared,
    EventExists,
    EventNotFound,
    ItemExists,
    ItemPacked,
    NotOwner,
    StepNotAllowed,
)
from . import keys
from .codec import NO_ID, MallState, StateReader, TxContext, address_text, emit, writer
from .events import (
    EventRecord,
    TraceEvent,
    decode_declaration,
    decode_event,
    decode_event_record,
    event_id_of,
)
from .funds import invariant
from .items import (
    EMPTY_HISTORY,
    ITEM_CLASS,
    ITEM_INSTANCE,
    Item,
    append_index,
    check_can_pack,
    load_item,
    pack,
    require_custody,
    require_item,
    save_item,
)
from .parties import require_party
from .vocab import (
    ACTION_ADD,
    ACTION_DELETE,
    BIZ_STEP_RULES,
    BIZ_STEPS,
    KIND_AGGREGATION,
    KIND_ERROR_DECLARATION,
    KIND_NAMES,
    KIND_OBJECT,
    KIND_TRANSFORMATION,
    NO_STEP_RULE,
    index_of,
)


def load_event(state: StateReader, event_id: bytes) -> EventRecord | None:
    raw = state.get(keys.event(event_id))
    return None if raw is None else decode_event_record(raw)


def record_event(state: MallState, ctx: TxContext, recorder: bytes, payload: bytes,
                 item_keys: list[bytes], items: list[Item] | None = None,
                 event_id: bytes | None = None) -> bytes:
    """Store the event (or declaration) `payload` by `recorder` and append it to the
    histories of `item_keys` (which exist); its id. EventExists (418) if recorded before.

    `items`, when given, are the items of `item_keys` as the caller holds them (its
    unsaved changes included: they are saved here, once); `event_id`, when given, is
    `event_id_of(recorder, payload)` already found unrecorded by the caller."""
    if event_id is None:
        event_id = event_id_of(recorder, payload)
        key = keys.event(event_id)
        if state.get(key) is not None:
            raise EventExists(f"event {event_id.hex()} is already recorded")
    else:
        key = keys.event(event_id)
    value = EventRecord(ctx.height, ctx.timestamp_ms, ctx.tx.tx_id, recorder, payload).encode()
    state.set(key, value)
    for index, item_key in enumerate(item_keys):
        item = load_item(state, item_key) if items is None else items[index]
        invariant(item is not None, "an event names an item that does not exist")
        assert item is not None
        append_index(state, item_key, item, event_id, value)
    emit(ctx, "mall.trace", ("event", event_id.hex()), ("recorder", address_text(recorder)),
         ("kind", KIND_NAMES.get(payload[1], "ErrorDeclaration")))
    return event_id


def _new_item(state: MallState, ctx: TxContext, uri: str, kind: int, created: dict) -> bytes:
    key = keys.item_key(uri)
    created[key] = Item(kind, ctx.sender, NO_ID, ctx.height, 0, 0, EMPTY_HISTORY, uri)
    save_item(state, key, created[key])
    return key


def _existing(state: StateReader, ctx: TxContext, uri: str, custody: bool) -> tuple[bytes, Item]:
    key = keys.item_key(uri)
    item = require_item(state, key, uri)
    if custody:
        require_custody(state, key, item, ctx.sender)
    return key, item


def _new_or_held_class(state: MallState, ctx: TxContext, uri: str, created: dict) -> bytes:
    """A class id an ADD or an output names: created if new, else the sender must hold it."""
    key = keys.item_key(uri)
    item = load_item(state, key)
    if item is None:
        return _new_item(state, ctx, uri, ITEM_CLASS, created)
    if item.kind != ITEM_CLASS:
        raise ItemExists(f"{uri} is recorded as an instance, not a class")
    require_custody(state, key, item, ctx.sender)
    return key


def _new_instance(state: MallState, ctx: TxContext, uri: str, created: dict) -> bytes:
    key = keys.item_key(uri)
    if load_item(state, key) is not None:
        raise ItemExists(f"{uri} is already recorded")
    return _new_item(state, ctx, uri, ITEM_INSTANCE, created)


def apply_item_rules(state: MallState, ctx: TxContext, event: TraceEvent,
                     custody: bool) -> list[bytes]:
    """Check the kind's item rules (docs/mall.md 6.2), create and pack/unpack items; the
    keys of every item the event names, in `TraceEvent.item_ids` order."""
    created: dict[bytes, Item] = {}
    classes = [q.epc_class for q in event.quantities]
    if event.kind == KIND_OBJECT and event.action == ACTION_ADD:
        return ([_new_instance(state, ctx, uri, created) for uri in event.epcs]
                + [_new_or_held_class(state, ctx, uri, created) for uri in classes])
    if event.kind == KIND_TRANSFORMATION:
        inputs = [_existing(state, ctx, uri, True)[0] for uri in (*event.epcs, *classes)]
        outputs = [_new_instance(state, ctx, uri, created) for uri in event.out_epcs]
        outputs += [_new_or_held_class(state, ctx, q.epc_class, created)
                    for q in event.out_quantities]
        return inputs + outputs
    if event.kind == KIND_AGGREGATION and event.action in (ACTION_ADD, ACTION_DELETE):
        return _aggregate(state, ctx, event, classes, created)
    return [_existing(state, ctx, uri, custody)[0]
            for uri in ([event.parent] if event.parent else []) + list(event.epcs) + classes]


def _aggregate(state: MallState, ctx: TxContext, event: TraceEvent, classes: list[str],
               created: dict) -> list[bytes]:
    """AggregationEvent ADD packs the child items into the parent (created if new);
    DELETE unpacks them. The sender must hold the parent and every child."""
    parent_key = keys.item_key(event.parent)
    parent = load_item(state, parent_key)
    if parent is None:
        if event.action == ACTION_DELETE:
            require_item(state, parent_key, event.parent)  # raises ItemNotFound
        parent_key = _new_instance(state, ctx, event.parent, created)
    else:
        require_custody(state, parent_key, parent, ctx.sender)
    children = []
    for uri in event.epcs:
        child_key, child = _existing(state, ctx, uri, True)
        if event.action == ACTION_ADD:
            check_can_pack(state, child_key, child, parent_key, load_item(state, parent_key))
            pack(state, child_key, child, parent_key)
        else:
            if child.parent != parent_key:
                raise ItemPacked(f"{uri} is not packed in {event.parent}")
            save_item(state, child_key, child._replace(parent=NO_ID))
        children.append(child_key)
    class_keys = [_existing(state, ctx, uri, True)[0] for uri in classes]
    return [parent_key, *children, *class_keys]


def record(state: MallState, ctx: TxContext) -> None:
    """TRACE_RECORD (docs/mall.md 6.1)."""
    payload = ctx.tx.payload
    event = decode_event(payload)
    party = require_party(state, ctx.sender)
    rule = NO_STEP_RULE if event.biz_step is None else \
        BIZ_STEP_RULES[index_of(BIZ_STEPS, event.biz_step)]
    if not party.roles & rule.roles:
        raise StepNotAllowed(f"bizStep {event.biz_step or '(none)'} is not open to the "
                             "sender's roles")
    event_id = event_id_of(ctx.sender, payload)
    if state.get(keys.event(event_id)) is not None:
        raise EventExists("this event is already recorded")
    item_keys = apply_item_rules(state, ctx, event, rule.custody)
    record_event(state, ctx, ctx.sender, payload, item_keys, event_id=event_id)


def declare_error(state: MallState, ctx: TxContext) -> None:
    """TRACE_DECLARE_ERROR (docs/mall.md 6.4): only the erroneous event's recorder."""
    payload = ctx.tx.payload
    declaration = decode_declaration(payload)
    require_party(state, ctx.sender)
    original = load_event(state, declaration.event_id)
    if original is None or original.kind == KIND_ERROR_DECLARATION:
        raise EventNotFound(f"no event {declaration.event_id.hex()}")
    if original.recorder != ctx.sender:
        raise NotOwner("only the event's recorder may declare it erroneous")
    marker = keys.declaration(declaration.event_id)
    if state.get(marker) is not None:
        raise AlreadyDeclared(f"event {declaration.event_id.hex()} is already declared")
    for corrective in declaration.corrective_ids:
        found = load_event(state, corrective)
        if found is None or found.kind == KIND_ERROR_DECLARATION:
            raise EventNotFound(f"no corrective event {corrective.hex()}")
    item_keys = [keys.item_key(uri) for uri in original.event().item_ids()]
    declaration_id = record_event(state, ctx, ctx.sender, payload, item_keys)
    state.set(marker, writer().fixed(declaration_id, HASH_BYTES).getvalue())

