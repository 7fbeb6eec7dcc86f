"""Read functions of the mall and the `/mall/...` query paths (docs/mall.md section 12).

The read functions return state entries `(key, value)` (in-process users,
the CLI through the node, tests). A query path's handler
`handler(state, data) -> [key, ...]` names the state keys of the same read;
the application reads each and proves it against the state root of the
height it serves (docs/abci.md), so a client checks every object it is shown.
`state` reads committed state with `get(key)` and `scan(start, end, limit)`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..constants import ADDRESS_BYTES, HASH_BYTES, JURISDICTION_BYTES_MAX, MALL_QUERY_ITEMS_MAX
from ..encoding import Reader
from ..errors import DecodeError, QueryError
from ..genesis import check_jurisdiction
from . import keys
from .codec import StateReader, check_uri
from .history import trace
from .tax import tax_report
from .vocab import ROLE_MERCHANT, ROLE_NAMES, role_bit_index

Entries = list[tuple[bytes, bytes]]
QueryHandler = Callable[[StateReader, bytes], list[bytes]]
EntryReader = Callable[[StateReader, bytes], Entries]


def one_entry(state: StateReader, key: bytes) -> Entries:
    """[(key, value)] if `key` is set, else []."""
    value = state.get(key)
    return [] if value is None else [(key, value)]


def _prefix(state: StateReader, prefix: bytes, limit: int = MALL_QUERY_ITEMS_MAX) -> Entries:
    start, end = keys.prefix_range(prefix)
    return state.scan(start, end, limit)


def party(state: StateReader, address: bytes) -> Entries:
    """The party entry and every certification of it (merchants)."""
    return one_entry(state, keys.party(address)) + _prefix(state, keys.certs_of(address))


def parties_with_role(state: StateReader, role: int, limit: int = MALL_QUERY_ITEMS_MAX
                      ) -> Entries:
    """The role index entries of `role` (in address order) and their party entries."""
    entries: Entries = []
    for key, value in _prefix(state, keys.role_prefix(role_bit_index(role)), limit):
        entries.append((key, value))
        entries += one_entry(state, keys.party(key[2:]))
    return entries


def merchants(state: StateReader, after: bytes = b"", limit: int = MALL_QUERY_ITEMS_MAX
              ) -> Entries:
    """Merchants in address order (those after `after`, if given), each as its role index
    entry, its party entry and its certifications; stops once `limit` entries are read
    (every merchant it includes is whole), so a client pages on with the last address."""
    prefix = keys.role_prefix(role_bit_index(ROLE_MERCHANT))
    start, end = keys.prefix_range(prefix)
    if after:
        start = keys.role_index(role_bit_index(ROLE_MERCHANT), after) + b"\x00"
    entries: Entries = []
    for key, value in state.scan(start, end, limit):
        if len(entries) >= limit:
            break
        entries.append((key, value))
        entries += party(state, key[len(prefix):])
    return entries


def product(state: StateReader, product_id: bytes) -> Entries:
    return one_entry(state, keys.product(product_id))


def merchant_products(state: StateReader, merchant: bytes,
                      limit: int = MALL_QUERY_ITEMS_MAX) -> Entries:
    entries: Entries = []
    for key, value in _prefix(state, keys.products_of(merchant), limit):
        entries.append((key, value))
        entries += one_entry(state, keys.product(key[1 + ADDRESS_BYTES:]))
    return entries


def order(state: StateReader, order_id: bytes) -> Entries:
    """The order, its escrow and its dispute (if any)."""
    return (one_entry(state, keys.order(order_id)) + one_entry(state, keys.escrow(order_id))
            + one_entry(state, keys.dispute(order_id)))


def party_orders(state: StateReader, address: bytes, side: int,
                 limit: int = MALL_QUERY_ITEMS_MAX) -> Entries:
    """A buyer's (side 1) or merchant's (side 2) orders, oldest first, with their escrows."""
    entries: Entries = []
    for key, value in _prefix(state, keys.orders_of(address, side), limit):
        entries.append((key, value))
        entries += order(state, key[-HASH_BYTES:])
    return entries


def handovers(state: StateReader, item_key: bytes) -> Entries:
    """The open hand-over proposals of an item."""
    return _prefix(state, keys.handovers_of(item_key))


def seats(state: StateReader, arbitrator: bytes) -> Entries:
    """An arbitrator's open panel seats, with the disputes."""
    entries: Entries = []
    for key, value in _prefix(state, keys.seats_of(arbitrator)):
        entries.append((key, value))
        entries += one_entry(state, keys.dispute(key[-HASH_BYTES:]))
    return entries


def trace_entries(state: StateReader, item: str | bytes) -> Entries:
    """Every state entry of `trace(item)`, in key order."""
    return sorted(trace(state, item).entries.items())


def trace_anchors(state: StateReader, item: str | bytes) -> Entries:
    """The anchors of `trace(item)` (docs/mall.md 6.5): proving these and checking the
    rest with `history.verify_trace` checks the whole trace."""
    return sorted(trace(state, item).anchors.items())


def tax_rate(state: StateReader, jurisdiction: str) -> Entries:
    return one_entry(state, keys.tax_rate(jurisdiction))


# --- the query paths -------------------------------------------------------------------


def _reader(data: bytes, what: str) -> Reader:
    return Reader(data, f"{what} query")


def _fixed(data: bytes, length: int, what: str) -> bytes:
    if len(data) != length:
        raise QueryError(f"{what} query: expected {length} bytes, got {len(data)}")
    return bytes(data)


def _address(data: bytes) -> bytes:
    return _fixed(data, ADDRESS_BYTES, "address")


def _hash(data: bytes) -> bytes:
    return _fixed(data, HASH_BYTES, "id")


def _role(data: bytes) -> int:
    role = 1 << _fixed(data, 1, "role")[0]
    if role not in ROLE_NAMES:
        raise QueryError("role query: unknown role bit")
    return role


def _merchants(state: StateReader, data: bytes) -> Entries:
    if data and len(data) != ADDRESS_BYTES:
        raise QueryError(f"merchants query: empty, or the {ADDRESS_BYTES}-byte address to list "
                         f"after; got {len(data)} bytes")
    return merchants(state, bytes(data))


def _orders(state: StateReader, data: bytes) -> Entries:
    raw = _fixed(data, ADDRESS_BYTES + 1, "orders")
    address, side = raw[:ADDRESS_BYTES], raw[ADDRESS_BYTES]
    if side not in (keys.SIDE_BUYER, keys.SIDE_MERCHANT):
        raise QueryError("orders query: side is 1 (buyer) or 2 (merchant)")
    return party_orders(state, address, side)


def _trace_item(data: bytes) -> str | bytes:
    if len(data) == HASH_BYTES:
        return data
    try:
        return check_uri(data.decode("utf-8"), "item")
    except (UnicodeDecodeError, ValueError) as exc:
        raise QueryError(f"trace query: not an item key or URI: {exc}") from None


def _trace(state: StateReader, data: bytes) -> Entries:
    return trace_entries(state, _trace_item(data))


def _trace_anchors(state: StateReader, data: bytes) -> Entries:
    return trace_anchors(state, _trace_item(data))


def _tax_report(state: StateReader, data: bytes) -> Entries:
    try:
        reader = _reader(data, "tax report")
        jurisdiction = reader.sized(1, JURISDICTION_BYTES_MAX, "jurisdiction")
        from_height, to_height = reader.u64("from"), reader.u64("to")
        reader.finish()
    except DecodeError as exc:
        raise QueryError(str(exc)) from None
    try:
        return tax_report(state, jurisdiction.decode("ascii"), from_height, to_height).entries
    except (UnicodeDecodeError, ValueError) as exc:
        raise QueryError(f"tax report query: {exc}") from None


def _tax_rate(state: StateReader, data: bytes) -> Entries:
    try:
        return tax_rate(state, check_jurisdiction(data.decode("ascii")))
    except (UnicodeDecodeError, ValueError) as exc:
        raise QueryError(f"tax rate query: {exc}") from None


# path -> (read, what its data is); docs/mall.md section 12 lists them.
QUERIES: dict[str, tuple[EntryReader, str]] = {
    "/mall/party": (lambda s, d: party(s, _address(d)), "address (20)"),
    "/mall/parties": (lambda s, d: parties_with_role(s, _role(d)), "role bit u8"),
    "/mall/merchants": (_merchants, "empty, or the merchant address (20) to list after"),
    "/mall/product": (lambda s, d: product(s, _hash(d)), "product id (32)"),
    "/mall/products": (lambda s, d: merchant_products(s, _address(d)), "merchant address (20)"),
    "/mall/order": (lambda s, d: order(s, _hash(d)), "order id (32)"),
    "/mall/orders": (_orders, "address (20) || side u8 (1 buyer, 2 merchant)"),
    "/mall/handovers": (lambda s, d: handovers(s, _hash(d)), "item key (32)"),
    "/mall/seats": (lambda s, d: seats(s, _address(d)), "arbitrator address (20)"),
    "/mall/trace": (_trace, "item key (32) or item URI (UTF-8)"),
    "/mall/trace_anchors": (_trace_anchors, "item key (32) or item URI (UTF-8)"),
    "/mall/tax_report": (_tax_report, "jurisdiction u8-sized || from u64 || to u64"),
    "/mall/tax_rate": (_tax_rate, "jurisdiction (ASCII)"),
}


def _keys_of(read: EntryReader) -> QueryHandler:
    def handler(state: StateReader, data: bytes) -> list[bytes]:
        return [key for key, _ in read(state, data)]

    handler.__doc__ = read.__doc__
    return handler


def register_queries(app: Any, table: Mapping[str, tuple[EntryReader, str]]) -> None:
    """Register each path of `table` (path -> (reader of entries, request format)) with the
    application (`app.register_query`): the handler answers the keys the reader finds,
    which the application returns with their values and proofs."""
    for path, (read, _) in table.items():
        app.register_query(path, _keys_of(read))


def install_queries(app: Any) -> None:
    """Register every `/mall/...` path with the application (`app.register_query`)."""
    register_queries(app, QUERIES)
