"""Items and classes on the trace: who holds each, what it is packed in, its event index.

An item (an instance id such as an SGTIN) or a class (a lot or class id with
quantities) is `0x17 || item key`, the key being keyed BLAKE3 of its URI
(`keys.item_key`). It exists once an event creates it (an ADD, a
transformation output, a new aggregation parent). Its events are indexed in
order under `0x18 || item key || seq u32`, `seq` counting from 0 to
`event_count - 1`. Each index entry also holds the item's *history hash*
after that event, a hash chain over the event records
(`history_{n+1} = keyed BLAKE3(history_n || BLAKE3(record n))`), and the item
holds the latest: one proven entry (the item, or the index entry where a
trace cuts its history) proves a whole history prefix, complete and in order,
with hashing only (docs/mall.md 6.5). Custody of a packed item is its outermost
container's (docs/mall.md section 6.3).
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from ..constants import (
    AGGREGATION_DEPTH_MAX,
    DECODE_CACHE_ENTRIES,
    EPCIS_URI_BYTES_MAX,
    HASH_BYTES,
    MALL_VERSION,
)
from ..errors import DecodeError, ItemNotFound, ItemPacked, NotHolder
from ..hashing import digest, domain_key
from . import keys
from .codec import (
    NO_ID,
    FieldReader,
    MallState,
    StateReader,
    address_text,
    check_uri,
    decoded_values,
)
from .funds import invariant

ITEM_INSTANCE = 1
ITEM_CLASS = 2
PARTY_URI_PREFIX = "urn:chainmall:party:"
ORDER_URI_PREFIX = "urn:chainmall:order:"
TX_URI_PREFIX = "urn:chainmall:tx:"


def party_uri(address: bytes) -> str:
    """The URI a trace event uses for a party: urn:chainmall:party:<cm1 address>."""
    return PARTY_URI_PREFIX + address_text(address)


_ITEM = struct.Struct(">BB20s32sQIB32s")  # version .. history; then the uri
_INDEX = struct.Struct(">B32s32s")  # version, event id, history after it
HISTORY_CONTEXT = "chainmall 2026-11 mall item history v1"
HISTORY_KEY = domain_key(HISTORY_CONTEXT)
EMPTY_HISTORY = bytes(HASH_BYTES)


class Item(NamedTuple):
    """The value under `keys.item(key)`."""

    kind: int  # ITEM_INSTANCE or ITEM_CLASS
    holder: bytes  # address of the party holding it (its own custody, if packed: see holder_of)
    parent: bytes  # item key of the container it is packed in, NO_ID if none
    first_height: int
    event_count: int
    nest: int  # an upper bound of the packing levels below it (0: holds nothing)
    history: bytes  # the history hash after its last event (EMPTY_HISTORY before any)
    uri: str

    def encode(self) -> bytes:
        uri = self.uri.encode("utf-8")
        if len(uri) > EPCIS_URI_BYTES_MAX:
            raise ValueError("an item uri is over its limit")
        return _ITEM.pack(MALL_VERSION, *self[:7]) + bytes([len(uri)]) + uri

    @property
    def packed(self) -> bool:
        return self.parent != NO_ID


@decoded_values(DECODE_CACHE_ENTRIES)
def decode_item(value: bytes) -> Item:
    reader = FieldReader(value, "item", DecodeError, _ITEM)
    item = Item(*reader.head[1:], reader.text(EPCIS_URI_BYTES_MAX, "uri", check_uri, low=1))
    reader.finish()
    if item.kind not in (ITEM_INSTANCE, ITEM_CLASS):
        raise DecodeError(f"item: kind {item.kind}")
    if item.nest > AGGREGATION_DEPTH_MAX:
        raise DecodeError(f"item: nest {item.nest} over {AGGREGATION_DEPTH_MAX}")
    return item


def load_item(state: StateReader, key: bytes) -> Item | None:
    raw = state.get(keys.item(key))
    return None if raw is None else decode_item(raw)


def require_item(state: StateReader, key: bytes, uri: str = "") -> Item:
    item = load_item(state, key)
    if item is None:
        raise ItemNotFound(f"no item {uri or key.hex()} has been recorded")
    return item


def save_item(state: MallState, key: bytes, item: Item) -> None:
    state.set(keys.item(key), decode_item.remember(item.encode(), item))


def outermost(state: StateReader, key: bytes, item: Item) -> tuple[bytes, Item, int]:
    """(key, item, depth) of the outermost container of `item` (itself if unpacked)."""
    depth = 0
    while item.packed:
        depth += 1
        invariant(depth <= AGGREGATION_DEPTH_MAX, "packing deeper than AGGREGATION_DEPTH_MAX")
        key = item.parent
        parent = load_item(state, key)
        invariant(parent is not None, "an item is packed in a container that does not exist")
        assert parent is not None
        item = parent
    return key, item, depth


def holder_of(state: StateReader, key: bytes, item: Item) -> bytes:
    """Who holds `item` now: the holder of its outermost container."""
    return outermost(state, key, item)[1].holder


def require_custody(state: StateReader, key: bytes, item: Item, who: bytes) -> None:
    """NotHolder (415) unless `who` holds the item (through its containers)."""
    holder = holder_of(state, key, item)
    if holder != who:
        raise NotHolder(f"{address_text(who)} does not hold {item.uri} "
                        f"(held by {address_text(holder)})")


def container_chain(state: StateReader, key: bytes, item: Item) -> list[bytes]:
    """The item's key and the keys of its containers, innermost first."""
    chain = [key]
    while item.packed:
        invariant(len(chain) <= AGGREGATION_DEPTH_MAX, "packing deeper than the limit")
        key = item.parent
        parent = load_item(state, key)
        invariant(parent is not None, "missing container")
        assert parent is not None
        chain.append(key)
        item = parent
    return chain


def check_can_pack(state: StateReader, child_key: bytes, child: Item, parent_key: bytes,
                   parent: Item | None) -> None:
    """ItemPacked (416) if the child is packed already, is the parent, contains it, or the
    packing would nest items deeper than AGGREGATION_DEPTH_MAX.

    The rule kept: for every item, (containers above it) + (its `nest`) <=
    AGGREGATION_DEPTH_MAX. Packing the child under the parent's chain puts
    len(chain) containers above it; `pack` then raises the chain's `nest`.
    """
    if child.packed:
        raise ItemPacked(f"{child.uri} is already packed; unpack it first")
    if child_key == parent_key:
        raise ItemPacked(f"{child.uri} cannot be packed into itself")
    chain = [parent_key] if parent is None else container_chain(state, parent_key, parent)
    if child_key in chain:
        raise ItemPacked(f"{child.uri} contains the container it would be packed in")
    if len(chain) + child.nest > AGGREGATION_DEPTH_MAX:
        raise ItemPacked(f"packing would nest more than {AGGREGATION_DEPTH_MAX} levels")


def pack(state: MallState, child_key: bytes, child: Item, parent_key: bytes) -> None:
    """Pack the child into the parent (both saved; `check_can_pack` passed): the child's
    parent is set and every container up the chain gets `nest` >= its new height."""
    save_item(state, child_key, child._replace(parent=parent_key))
    height = child.nest + 1
    key = parent_key
    while True:
        container = load_item(state, key)
        invariant(container is not None, "packing into a missing container")
        assert container is not None
        if container.nest < height:
            container = container._replace(nest=height)
            save_item(state, key, container)
        if not container.packed:
            return
        key = container.parent
        height += 1


def next_history(history: bytes, record_value: bytes) -> bytes:
    """The history hash after an event whose stored record is `record_value`."""
    return digest(history + digest(record_value), HISTORY_KEY)


def append_index(state: MallState, key: bytes, item: Item, event_id: bytes,
                 record_value: bytes) -> Item:
    """Add the event (`event_id`, stored as `record_value`) as the item's next event; the
    updated item (saved here)."""
    history = next_history(item.history, record_value)
    state.set(keys.item_event(key, item.event_count),
              _INDEX.pack(MALL_VERSION, event_id, history))
    updated = item._replace(event_count=item.event_count + 1, history=history)
    save_item(state, key, updated)
    return updated


def decode_index_entry(value: bytes) -> tuple[bytes, bytes]:
    """(event id, history hash after it) of an item index entry."""
    reader = FieldReader(value, "item event", DecodeError, _INDEX)
    reader.finish()
    return reader.head[1], reader.head[2]
