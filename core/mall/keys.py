"""Every mall state key, in one place (docs/mall.md section 3).

A key is `table id || fields`, fields fixed-width or u8-length-prefixed, so a
table is one key range and index tables sort the way their queries read them
(a party's orders by height, deadlines by time, tax records by jurisdiction
then height). Heights and times are u64 big-endian.
"""

from __future__ import annotations

import struct

from ..constants import (
    ADDRESS_BYTES,
    EPCIS_URI_BYTES_MAX,
    HASH_BYTES,
    JURISDICTION_BYTES_MAX,
    MALL_BRAND_BYTES_MAX,
    TABLE_MALL_CERTS,
    TABLE_MALL_CLOSED,
    TABLE_MALL_DEADLINES,
    TABLE_MALL_DECLARATIONS,
    TABLE_MALL_DISPUTES,
    TABLE_MALL_DRAWS,
    TABLE_MALL_ESCROWS,
    TABLE_MALL_EVENTS,
    TABLE_MALL_HANDOVERS,
    TABLE_MALL_ITEM_EVENTS,
    TABLE_MALL_ITEMS,
    TABLE_MALL_MERCHANT_PRODUCTS,
    TABLE_MALL_META,
    TABLE_MALL_ORDERS,
    TABLE_MALL_PARTIES,
    TABLE_MALL_PARTY_ORDERS,
    TABLE_MALL_POOL,
    TABLE_MALL_PRODUCTS,
    TABLE_MALL_ROLES,
    TABLE_MALL_SEATS,
    TABLE_MALL_TAX_RATES,
    TABLE_MALL_TAX_RECORDS,
)
from ..hashing import digest, domain_key

ITEM_KEY_CONTEXT = "chainmall 2026-11 mall item id v1"
ITEM_KEY = domain_key(ITEM_KEY_CONTEXT)

_U64 = struct.Struct(">Q")
_U32 = struct.Struct(">I")
_SEQ_MAX = 2**32 - 1
_U64_MAX = 2**64 - 1


def _check(value: bytes, length: int, what: str) -> bytes:
    if len(value) != length:
        raise ValueError(f"{what} is {length} bytes, got {len(value)}")
    return value


def _sized(text: str, max_bytes: int) -> bytes:
    raw = text.encode("utf-8")
    if len(raw) > max_bytes:
        raise ValueError(f"{text[:20]!r} is over {max_bytes} bytes")
    return bytes([len(raw)]) + raw


def table_range(table: int) -> tuple[bytes, bytes]:
    """[start, end) covering a whole table."""
    return bytes([table]), bytes([table + 1])


def prefix_range(prefix: bytes) -> tuple[bytes, bytes]:
    """[start, end) of every key that starts with `prefix`."""
    end = prefix.rstrip(b"\xff")
    assert end, "a prefix starts with a table id below 0xFF"
    return prefix, end[:-1] + bytes([end[-1] + 1])


def item_key(uri: str) -> bytes:
    """The 32-byte key of an item or class id: keyed BLAKE3 of its URI text."""
    raw = uri.encode("utf-8")
    if not raw or len(raw) > EPCIS_URI_BYTES_MAX:
        raise ValueError(f"an item id is 1..{EPCIS_URI_BYTES_MAX} bytes")
    return digest(raw, ITEM_KEY)


def party(address: bytes) -> bytes:
    return bytes([TABLE_MALL_PARTIES]) + _check(address, ADDRESS_BYTES, "an address")


def role_index(role_bit: int, address: bytes) -> bytes:
    return bytes([TABLE_MALL_ROLES, role_bit]) + _check(address, ADDRESS_BYTES, "an address")


def role_prefix(role_bit: int) -> bytes:
    return bytes([TABLE_MALL_ROLES, role_bit])


def pool_slot(index: int) -> bytes:
    return bytes([TABLE_MALL_POOL]) + _U32.pack(index)


POOL_SIZE = bytes([TABLE_MALL_META]) + b"pool_size"


def cert(merchant: bytes, certifier: bytes, brand: str) -> bytes:
    return (bytes([TABLE_MALL_CERTS]) + _check(merchant, ADDRESS_BYTES, "an address")
            + _check(certifier, ADDRESS_BYTES, "an address") + _sized(brand, MALL_BRAND_BYTES_MAX))


def certs_of(merchant: bytes) -> bytes:
    return bytes([TABLE_MALL_CERTS]) + _check(merchant, ADDRESS_BYTES, "an address")


def product(product_id: bytes) -> bytes:
    return bytes([TABLE_MALL_PRODUCTS]) + _check(product_id, HASH_BYTES, "a product id")


def merchant_product(merchant: bytes, product_id: bytes) -> bytes:
    return (bytes([TABLE_MALL_MERCHANT_PRODUCTS]) + _check(merchant, ADDRESS_BYTES, "an address")
            + _check(product_id, HASH_BYTES, "a product id"))


def products_of(merchant: bytes) -> bytes:
    return bytes([TABLE_MALL_MERCHANT_PRODUCTS]) + _check(merchant, ADDRESS_BYTES, "an address")


def item(key: bytes) -> bytes:
    return bytes([TABLE_MALL_ITEMS]) + _check(key, HASH_BYTES, "an item key")


def item_event(key: bytes, seq: int) -> bytes:
    if not 0 <= seq <= _SEQ_MAX:
        raise ValueError("an item's event sequence number is a u32")
    return bytes([TABLE_MALL_ITEM_EVENTS]) + _check(key, HASH_BYTES, "an item key") + _U32.pack(seq)


def item_events_of(key: bytes) -> bytes:
    return bytes([TABLE_MALL_ITEM_EVENTS]) + _check(key, HASH_BYTES, "an item key")


def event(event_id: bytes) -> bytes:
    return bytes([TABLE_MALL_EVENTS]) + _check(event_id, HASH_BYTES, "an event id")


def declaration(event_id: bytes) -> bytes:
    return bytes([TABLE_MALL_DECLARATIONS]) + _check(event_id, HASH_BYTES, "an event id")


def handover(key: bytes, receiver: bytes) -> bytes:
    return (bytes([TABLE_MALL_HANDOVERS]) + _check(key, HASH_BYTES, "an item key")
            + _check(receiver, ADDRESS_BYTES, "an address"))


def handovers_of(key: bytes) -> bytes:
    return bytes([TABLE_MALL_HANDOVERS]) + _check(key, HASH_BYTES, "an item key")


def order(order_id: bytes) -> bytes:
    return bytes([TABLE_MALL_ORDERS]) + _check(order_id, HASH_BYTES, "an order id")


def escrow(order_id: bytes) -> bytes:
    return bytes([TABLE_MALL_ESCROWS]) + _check(order_id, HASH_BYTES, "an order id")


SIDE_BUYER = 1
SIDE_MERCHANT = 2


def party_order(address: bytes, side: int, height: int, order_id: bytes) -> bytes:
    return (bytes([TABLE_MALL_PARTY_ORDERS]) + _check(address, ADDRESS_BYTES, "an address")
            + bytes([side]) + _U64.pack(height) + _check(order_id, HASH_BYTES, "an order id"))


def orders_of(address: bytes, side: int) -> bytes:
    return (bytes([TABLE_MALL_PARTY_ORDERS]) + _check(address, ADDRESS_BYTES, "an address")
            + bytes([side]))


def dispute(order_id: bytes) -> bytes:
    return bytes([TABLE_MALL_DISPUTES]) + _check(order_id, HASH_BYTES, "an order id")


def seat(arbitrator: bytes, order_id: bytes) -> bytes:
    return (bytes([TABLE_MALL_SEATS]) + _check(arbitrator, ADDRESS_BYTES, "an address")
            + _check(order_id, HASH_BYTES, "an order id"))


def seats_of(arbitrator: bytes) -> bytes:
    return bytes([TABLE_MALL_SEATS]) + _check(arbitrator, ADDRESS_BYTES, "an address")


DEADLINE_ESCROW = 1
DEADLINE_DISPUTE = 2


def deadline(due_ms: int, kind: int, order_id: bytes) -> bytes:
    return (bytes([TABLE_MALL_DEADLINES]) + _U64.pack(due_ms) + bytes([kind])
            + _check(order_id, HASH_BYTES, "an order id"))


def deadlines_due(now_ms: int) -> tuple[bytes, bytes]:
    """[start, end) of every deadline at or before `now_ms`."""
    start = bytes([TABLE_MALL_DEADLINES])
    if now_ms >= _U64_MAX:
        return start, bytes([TABLE_MALL_DEADLINES + 1])
    return start, start + _U64.pack(now_ms + 1)


def parse_deadline(key: bytes) -> tuple[int, int, bytes]:
    """(due_ms, kind, order id) of a deadline key."""
    assert key[0] == TABLE_MALL_DEADLINES and len(key) == 1 + 8 + 1 + HASH_BYTES
    return _U64.unpack_from(key, 1)[0], key[9], key[10:]


def draw(order_id: bytes) -> bytes:
    return bytes([TABLE_MALL_DRAWS]) + _check(order_id, HASH_BYTES, "an order id")


def tax_rate(jurisdiction: str) -> bytes:
    return bytes([TABLE_MALL_TAX_RATES]) + _sized(jurisdiction, JURISDICTION_BYTES_MAX)


def tax_record(jurisdiction: str, height: int, order_id: bytes) -> bytes:
    return (bytes([TABLE_MALL_TAX_RECORDS]) + _sized(jurisdiction, JURISDICTION_BYTES_MAX)
            + _U64.pack(height) + _check(order_id, HASH_BYTES, "an order id"))


def tax_records_between(jurisdiction: str, from_height: int,
                        to_height: int) -> tuple[bytes, bytes]:
    """[start, end) of a jurisdiction's tax records at heights from_height..to_height."""
    prefix = bytes([TABLE_MALL_TAX_RECORDS]) + _sized(jurisdiction, JURISDICTION_BYTES_MAX)
    end = prefix_range(prefix)[1] if to_height >= _U64_MAX else prefix + _U64.pack(to_height + 1)
    return prefix + _U64.pack(from_height), end


def closed(height: int, order_id: bytes) -> bytes:
    return bytes([TABLE_MALL_CLOSED]) + _U64.pack(height) + _check(order_id, HASH_BYTES,
                                                                     "an order id")


def closed_at(height: int) -> bytes:
    return bytes([TABLE_MALL_CLOSED]) + _U64.pack(height)
