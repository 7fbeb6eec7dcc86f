"""The mall kernel (ext/_mall.pyx) against its references, `orders.place`,
`custody.propose`, `custody.accept`, `escrow.deliver`, `escrow.confirm` and `trace.record`: the same
reads, the same writes in the same order, the same events and the same errors (type
and message), over generated states and payloads; and the pinned chain run on both,
block by block.

Without the compiled kernel these tests are skipped; the rest of tests/core/mall runs on
whichever path is in use (the kernel by default, the references with CHAINMALL_PURE=1).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import pytest
from chainmall import ext
from chainmall.core import constants as C
from chainmall.core.abci.types import Event
from chainmall.core.hashing import digest
from chainmall.core.mall import (
    codec,
    custody,
    escrow,
    events,
    items,
    keys,
    native,
    order_record,
    orders,
    parties,
    products,
    trace,
)
from chainmall.core.mall.codec import MARK, NO_ID
from chainmall.core.mall.custody import Acceptance, Handover
from chainmall.core.mall.escrow import DeliveryNote, Escrow
from chainmall.core.mall.events import Quantity, TraceEvent
from chainmall.core.mall.install import HANDLERS
from chainmall.core.mall.items import Item
from chainmall.core.mall.order_record import Order
from chainmall.core.mall.orders import Placement
from chainmall.core.mall.parties import Party
from chainmall.core.mall.pool import NOT_IN_POOL
from chainmall.core.mall.products import Product
from chainmall.core.mall.tax import TaxRate
from chainmall.core.mall.vocab import (
    ACTION_ADD,
    ACTION_OBSERVE,
    KIND_OBJECT,
    ROLE_CARRIER,
    ROLE_INSPECTOR,
    ROLE_MERCHANT,
)
from chainmall.core.state.accounts import (
    ACCOUNT_BYTES,
    FEE_POOL_KEY,
    account_key,
    encode_fee_pool,
    pack_account,
)
from chainmall.core.state.machine import ExecContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mall_chain import TEST_PARAMS, MallChain, mall_genesis
from test_root_pin import NAMES, run_chain

KERNEL = ext.load("_mall")
pytestmark = pytest.mark.skipif(KERNEL is None, reason="ext/_mall is not built")

if KERNEL is not None and not KERNEL.configured():  # CHAINMALL_PURE=1: configure it here
    native.configure(KERNEL)

AUTHORITY = SimpleNamespace(address=b"\x09" * 20, rate_bps=2_200)
MALL = SimpleNamespace(params=TEST_PARAMS,
                       authority=lambda j: AUTHORITY if j in ("IT", "FR") else None)


class RecordingState:
    """A dict of state entries that logs every read and write."""

    def __init__(self, entries: dict[bytes, bytes]) -> None:
        self.entries = dict(entries)
        self.reads: set[bytes] = set()
        self.writes: list[tuple[str, bytes, bytes | None]] = []

    def get(self, key: bytes) -> bytes | None:
        self.reads.add(key)
        return self.entries.get(key)

    def set(self, key: bytes, value: bytes) -> None:
        assert type(value) is bytes
        self.writes.append(("set", key, value))
        self.entries[key] = value

    def delete(self, key: bytes) -> None:
        self.writes.append(("delete", key, None))
        self.entries.pop(key, None)


def _run(handler: Any, entries: dict[bytes, bytes], payload: bytes, sender: bytes,
         height: int = 50, time_ms: int = 1_767_300_000_000) -> tuple:
    """What `handler` does: (error type and message or None, writes, events, reads)."""
    state = RecordingState(entries)
    tx = SimpleNamespace(payload=payload, tx_id=digest(payload + sender))
    ctx = ExecContext(height, time_ms, tx, sender, [], None)
    try:
        if handler in (trace.record, getattr(KERNEL, "record", None)):
            handler(state, ctx)
        else:
            handler(state, ctx, MALL)
        error = None
    except Exception as exc:
        error = (type(exc), str(exc))
    return error, state.writes, ctx.events, state.reads


def _same(reference: Any, kernel: Any, entries: dict[bytes, bytes], payload: bytes,
          sender: bytes) -> tuple:
    expected = _run(reference, entries, payload, sender)
    got = _run(kernel, entries, payload, sender)
    assert got[:3] == expected[:3]
    assert got[3] == expected[3], "the kernel reads keys the reference does not"
    return expected


def test_the_kernel_s_numbers_are_core_s() -> None:
    assert KERNEL is not None
    for name in ("MALL_VERSION", "ADDRESS_BYTES", "HASH_BYTES", "EPCIS_URI_BYTES_MAX",
                 "TX_PAYLOAD_BYTES_MAX", "TABLE_MALL_PARTIES", "TABLE_MALL_ITEMS",
                 "TABLE_MALL_ITEM_EVENTS", "TABLE_MALL_EVENTS", "TABLE_MALL_HANDOVERS",
                 "TABLE_MALL_ORDERS", "TABLE_MALL_ESCROWS", "TABLE_MALL_DEADLINES"):
        assert getattr(KERNEL, name) == getattr(C, name), name
    assert KERNEL.TZ_OFFSET_BIAS == events.TZ_OFFSET_BIAS
    assert KERNEL.DEADLINE_ESCROW == keys.DEADLINE_ESCROW
    assert KERNEL.ROLE_CARRIER == ROLE_CARRIER
    assert (KERNEL.ITEM_INSTANCE, KERNEL.ITEM_CLASS) == (items.ITEM_INSTANCE, items.ITEM_CLASS)
    assert (KERNEL.ESCROW_FUNDED, KERNEL.ESCROW_SHIPPED, KERNEL.ESCROW_DELIVERED) == (
        escrow.ESCROW_FUNDED, escrow.ESCROW_SHIPPED, escrow.ESCROW_DELIVERED)
    assert KERNEL.ESCROW_STATES == len(escrow.STATE_NAMES) == max(escrow.STATE_NAMES)
    assert KERNEL.CLOSE_REASONS == len(escrow.CLOSE_NAMES) == max(escrow.CLOSE_NAMES) + 1
    assert frozenset(KERNEL.OPEN_STATES) == escrow.OPEN_STATES
    assert custody._HANDOVER.size == KERNEL.HANDOVER_BYTES
    assert escrow._ESCROW.size == KERNEL.ESCROW_BYTES
    assert items._ITEM.size == KERNEL.ITEM_HEAD_BYTES
    assert events._RECORD.size == KERNEL.RECORD_HEAD_BYTES
    assert (KERNEL.TX_URI_PREFIX, KERNEL.ORDER_URI_PREFIX, KERNEL.PARTY_URI_PREFIX) == (
        items.TX_URI_PREFIX, items.ORDER_URI_PREFIX, items.PARTY_URI_PREFIX)
    assert frozenset(KERNEL.URI_CHARS) == codec._URI_CHARS
    assert frozenset(KERNEL.SCHEME_FIRST) == codec._SCHEME_FIRST
    assert frozenset(KERNEL.SCHEME_REST) == codec._SCHEME_REST
    assert (KERNEL.KIND_OBJECT, KERNEL.ACTION_OBSERVE) == (1, 2)
    assert (KERNEL.ESCROW_RELEASED, KERNEL.CLOSE_CONFIRMED) == (escrow.ESCROW_RELEASED,
                                                                escrow.CLOSE_CONFIRMED)
    for name in ("BPS_DENOMINATOR", "TABLE_ACCOUNTS", "TABLE_MALL_TAX_RECORDS",
                 "TABLE_MALL_CLOSED", "ACCOUNT_VERSION", "FEE_POOL_VERSION",
                 "JURISDICTION_BYTES_MAX"):
        assert getattr(KERNEL, name) == getattr(C, name), name
    assert KERNEL.ACCOUNT_BYTES == ACCOUNT_BYTES
    assert KERNEL.FEE_POOL_KEY == FEE_POOL_KEY
    assert KERNEL.PARTY_OPEN_ORDERS_OFFSET == parties._PARTY.size - 4 - 4 - 4 - 8 == 43
    for name in ("TABLE_MALL_PRODUCTS", "TABLE_MALL_PARTY_ORDERS", "TABLE_MALL_TAX_RATES",
                 "ORDER_QUANTITY_MAX", "SEALED_BOX_OVERHEAD_BYTES", "SEALED_ADDRESS_BYTES_MAX"):
        assert getattr(KERNEL, name) == getattr(C, name), name
    assert KERNEL.ROLE_MERCHANT == ROLE_MERCHANT
    assert KERNEL.PRODUCT_ACTIVE == products.PRODUCT_ACTIVE
    assert products._PRODUCT.size == KERNEL.PRODUCT_HEAD_BYTES
    assert (KERNEL.SIDE_BUYER, KERNEL.SIDE_MERCHANT) == (keys.SIDE_BUYER, keys.SIDE_MERCHANT)
    assert len(TaxRate(1, 2).encode()) == KERNEL.TAX_RATE_BYTES
    assert order_record._ORDER.size == 113
    assert (KERNEL.EPCIS_TIME_MS_MAX, KERNEL.EPCIS_EVENT_IDS_MAX) == (C.EPCIS_TIME_MS_MAX,
                                                                      C.EPCIS_EVENT_IDS_MAX)


# --- generated states ---------------------------------------------------------------------

ADDRESSES = [bytes([n]) * 20 for n in range(1, 6)]  # 0 proposer/merchant, 1 receiver, ...
URIS = ["urn:epc:id:sgtin:8012345.000777.1", "urn:epc:class:lgtin:8012345.1.AG",
        "x:y", "urn:" + "a" * 124]
READ_POINTS = ["", "urn:epc:id:sgln:1.2.3", "x:y", ":bad", "a:", "9a:b", "ab cd:x",
               "a+b.c-d:x%20", "urn:é", "urn:" + "b" * 124, "urn:" + "b" * 125]
TIMES = st.one_of(st.integers(0, 2**64 - 1), st.just(1_767_300_000_000))


@st.composite
def _records(draw: st.DrawFn, item_key: bytes, holder: bytes, order_id: bytes,
             buyer: bytes, merchant: bytes, healthy: bool,
             escrow_states: tuple[int, ...] = ()) -> dict[bytes, bytes]:
    """An item (maybe packed, in a container), an order, its escrow and deadline entry, and
    parties, each present or not, some of them broken; all there and sound if `healthy`
    (the escrow then in one of `escrow_states`, every party a carrier)."""
    entries: dict[bytes, bytes] = {}
    packed = not healthy and draw(st.booleans()) and draw(st.booleans())
    container = digest(b"container" + item_key)
    if healthy or draw(st.integers(0, 9)):
        entries[keys.item(item_key)] = Item(
            draw(st.sampled_from([items.ITEM_INSTANCE, items.ITEM_CLASS])), holder,
            container if packed else NO_ID, 3,
            draw(st.sampled_from([0, 1, 7] if healthy else [0, 7, 2**32 - 1])), 0,
            draw(st.binary(min_size=32, max_size=32)), draw(st.sampled_from(URIS))).encode()
        if packed:
            entries[keys.item(container)] = Item(items.ITEM_INSTANCE, holder, NO_ID, 3, 0, 1,
                                                 bytes(32), "urn:case:1").encode()
    if healthy or draw(st.integers(0, 9)):
        entries[keys.order(order_id)] = Order(
            buyer, merchant, bytes(32), 1, 10, 10, 2_200, 100, 5, 1_000, "IT",
            b"\x5a" * 60).encode()
    state = draw(st.sampled_from(escrow_states) if healthy else st.integers(1, 7))
    reason = 0 if state in escrow.OPEN_STATES else draw(st.integers(1, 7))
    deadline = draw(st.sampled_from([0, 1_767_000_000_000, 2**64 - 1]))
    if healthy or draw(st.integers(0, 9)):
        entries[keys.escrow(order_id)] = Escrow(
            state, 10, deadline,
            item_key if healthy else draw(st.sampled_from([item_key, NO_ID])), 0, 0, 0, 0,
            reason, 0, 0, 0, 0, 0).encode()
        if deadline and (healthy or draw(st.integers(0, 7))):
            entries[keys.deadline(deadline, keys.DEADLINE_ESCROW, order_id)] = MARK
    for address in ADDRESSES[:3]:
        if healthy or draw(st.booleans()):
            roles = ROLE_CARRIER if healthy else draw(st.sampled_from(
                [ROLE_CARRIER, ROLE_INSPECTOR, ROLE_CARRIER | ROLE_MERCHANT]))
            entries[keys.party(address)] = Party(roles, b"\x01" * 32, 0, 0, 0, NOT_IN_POOL, 1,
                                                 "", "p", bytes(32)).encode()
    if not healthy and draw(st.integers(0, 9)) == 0:  # a corrupt entry somewhere
        victim = draw(st.sampled_from(sorted(entries) or [keys.item(item_key)]))
        entries[victim] = draw(st.binary(max_size=130))
    return entries


def _mutate(draw: st.DrawFn, payload: bytes, healthy: bool) -> bytes:
    if healthy:
        return payload
    how = draw(st.integers(0, 5))
    if how == 0 and payload:
        at = draw(st.integers(0, len(payload) - 1))
        return payload[:at] + bytes([draw(st.integers(0, 255))]) + payload[at + 1:]
    if how == 1:
        return payload[:draw(st.integers(0, len(payload)))]
    if how == 2:
        return payload + draw(st.binary(min_size=1, max_size=3))
    return payload


def _recorded_already(handler: Any, entries: dict[bytes, bytes], payload: bytes,
                      sender: bytes) -> dict[bytes, bytes]:
    """`entries` with the event this tx would record already there (EventExists)."""
    _, writes, _, _ = _run(handler, entries, payload, sender)
    events_written = [key for op, key, _ in writes if key[0] == C.TABLE_MALL_EVENTS]
    return {**entries, **{key: b"recorded" for key in events_written}}


@st.composite
def acceptances(draw: st.DrawFn) -> tuple[dict[bytes, bytes], bytes, bytes]:
    healthy = draw(st.booleans())
    proposer, receiver = ADDRESSES[0], ADDRESSES[1]
    item_key = digest(draw(st.sampled_from(URIS)).encode())
    order_id = draw(st.sampled_from([NO_ID, b"\x07" * 32]))
    buyer = draw(st.sampled_from([receiver, ADDRESSES[3]]))
    merchant = draw(st.sampled_from([proposer, ADDRESSES[4]]))
    holder = proposer if healthy else draw(st.sampled_from([proposer, ADDRESSES[2]]))
    entries = draw(_records(item_key, holder, order_id, buyer, merchant, healthy,
                            (escrow.ESCROW_FUNDED, escrow.ESCROW_SHIPPED)))
    if healthy or draw(st.integers(0, 9)):
        entries[keys.handover(item_key, receiver)] = Handover(
            proposer, order_id, 7, b"\x0b" * 32).encode()
    payload = Acceptance(
        item_key, draw(TIMES), draw(st.integers(-840, 840)),
        draw(st.sampled_from(custody.ACCEPT_STEPS)),
        draw(st.sampled_from([None, "in_transit", "active", "in_progress"])),
        draw(st.sampled_from(READ_POINTS[:3])), draw(st.sampled_from(READ_POINTS[:3]))).encode()
    if not healthy and draw(st.booleans()):  # bytes the encoder would not write
        text = draw(st.sampled_from(READ_POINTS)).encode()
        payload = (payload[:43] + bytes([draw(st.integers(0, 60)), draw(st.integers(0, 30))])
                   + bytes([len(text)]) + text + b"\x00")
    payload = _mutate(draw, payload, healthy)
    if not healthy and draw(st.integers(0, 4)) == 0:
        entries = _recorded_already(custody.accept, entries, payload, receiver)
    return entries, payload, receiver



@st.composite
def proposals(draw: st.DrawFn) -> tuple[dict[bytes, bytes], bytes, bytes]:
    healthy = draw(st.booleans())
    proposer = ADDRESSES[0]
    receiver = ADDRESSES[1] if healthy else draw(st.sampled_from([ADDRESSES[1], proposer]))
    item_key = digest(draw(st.sampled_from(URIS)).encode())
    order_id = draw(st.sampled_from([NO_ID, b"\x07" * 32]))
    holder = proposer if healthy else draw(st.sampled_from([proposer, ADDRESSES[2]]))
    entries = draw(_records(item_key, holder, order_id, ADDRESSES[3], proposer, healthy,
                            (escrow.ESCROW_FUNDED,)))
    if not healthy and draw(st.integers(0, 4)) == 0:  # an open proposal there already
        entries[keys.handover(item_key, receiver)] = Handover(
            proposer, NO_ID, 7, b"\x0b" * 32).encode()
    payload = custody.Proposal(item_key, receiver, order_id).encode()
    return entries, _mutate(draw, payload, healthy), proposer

@st.composite
def deliveries(draw: st.DrawFn) -> tuple[dict[bytes, bytes], bytes, bytes]:
    healthy = draw(st.booleans())
    carrier = ADDRESSES[1]
    item_key = digest(draw(st.sampled_from(URIS)).encode())
    order_id = b"\x07" * 32
    holder = carrier if healthy else draw(st.sampled_from([carrier, ADDRESSES[2]]))
    entries = draw(_records(item_key, holder, order_id, ADDRESSES[3], ADDRESSES[0], healthy,
                            (escrow.ESCROW_SHIPPED,)))
    text = draw(st.sampled_from(READ_POINTS[:3] if healthy else READ_POINTS))
    payload = DeliveryNote(order_id, draw(TIMES), draw(st.integers(-840, 840)), "").encode()
    payload = payload[:43] + bytes([len(text.encode())]) + text.encode()
    if not healthy and draw(st.integers(0, 9)) == 0:
        payload = payload[:41] + (1681).to_bytes(2, "big") + payload[43:]
    payload = _mutate(draw, payload, healthy)
    if not healthy and draw(st.integers(0, 4)) == 0:
        entries = _recorded_already(escrow.deliver, entries, payload, carrier)
    return entries, payload, carrier


SETTINGS = settings(max_examples=400, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def confirmations(draw: st.DrawFn) -> tuple[dict[bytes, bytes], bytes, bytes]:
    healthy = draw(st.booleans())
    buyer, merchant = ADDRESSES[3], draw(st.sampled_from([ADDRESSES[0], AUTHORITY.address]))
    order_id = b"\x07" * 32
    entries = draw(_records(digest(b"item"), buyer, order_id, buyer, merchant, healthy,
                            (escrow.ESCROW_SHIPPED, escrow.ESCROW_DELIVERED)))
    held = draw(st.sampled_from([0, 1, 99, 10_000, 2**64 - 1]))
    if keys.escrow(order_id) in entries and len(entries[keys.escrow(order_id)]) == 123:
        value = entries[keys.escrow(order_id)]
        entries[keys.escrow(order_id)] = value[:2] + held.to_bytes(8, "big") + value[10:]
    if keys.order(order_id) in entries:
        entries[keys.order(order_id)] = Order(
            buyer, merchant, bytes(32), 1, 10, 10, draw(st.sampled_from([0, 2_200, 65_535])),
            draw(st.sampled_from([0, 100, 10_000])), 5, 1_000,
            draw(st.sampled_from(["IT", "IT", "FR", "DE"] if not healthy else ["IT"])),
            b"\x5a" * 60).encode()
    if healthy or draw(st.booleans()):
        entries[keys.party(merchant)] = Party(
            ROLE_MERCHANT, b"\x01" * 32, 1_000, draw(st.sampled_from([1, 5] if healthy
                                                                    else [0, 1])),
            0, NOT_IN_POOL, 1, "IT", "m", bytes(32)).encode()
    for address in (merchant, AUTHORITY.address):
        if draw(st.booleans()):
            entries[account_key(address)] = pack_account(
                draw(st.sampled_from([0, 5, 2**64 - 1] if not healthy else [0, 5])), 3)
    if draw(st.booleans()):
        entries[FEE_POOL_KEY] = encode_fee_pool(
            draw(st.sampled_from([0, 7, 2**64 - 1] if not healthy else [0, 7])))
    if not healthy and draw(st.integers(0, 9)) == 0:
        entries[draw(st.sampled_from([account_key(merchant), FEE_POOL_KEY]))] = b"\x01bad"
    sender = buyer if healthy else draw(st.sampled_from([buyer, merchant]))
    payload = _mutate(draw, b"\x01" + order_id, healthy)
    return entries, payload, sender


@st.composite
def placements(draw: st.DrawFn) -> tuple[dict[bytes, bytes], bytes, bytes]:
    healthy = draw(st.booleans())
    buyer = ADDRESSES[3]
    merchant = draw(st.sampled_from([ADDRESSES[0]] if healthy else [ADDRESSES[0], buyer]))
    product_id = b"\x05" * 32
    entries: dict[bytes, bytes] = {}
    price = draw(st.sampled_from([0, 1, 1_000, 2**63]))
    stock = draw(st.sampled_from([0, 1, 5, 2**32 - 1]))
    quantity = draw(st.sampled_from([1, 2, 1_000_000] if healthy else [0, 1, 2, 1_000_001]))
    if healthy or draw(st.integers(0, 9)):
        entries[keys.product(product_id)] = Product(
            merchant, products.PRODUCT_ACTIVE if healthy else draw(st.sampled_from([1, 2])),
            price, max(stock, quantity) if healthy else stock,
            draw(st.sampled_from([0, 3] if healthy else [0, 2**64 - 1])), 1, 1,
            bytes(32), "Anello", "jewellery/rings").encode()
    if healthy or draw(st.integers(0, 9)):
        entries[keys.party(merchant)] = Party(
            ROLE_MERCHANT if healthy else draw(st.sampled_from([ROLE_MERCHANT, ROLE_CARRIER])),
            b"\x01" * 32, draw(st.sampled_from([1_000, 5_000] if healthy else [0, 1_000])),
            draw(st.sampled_from([0, 4] if healthy else [0, 2**32 - 1])), 0, NOT_IN_POOL, 1,
            draw(st.sampled_from(["IT", "FR"] if healthy else ["IT", "DE", ""])), "m",
            bytes(32)).encode()
    if healthy or draw(st.booleans()):
        entries[account_key(buyer)] = pack_account(
            draw(st.sampled_from([2**64 - 1] if healthy else [0, 10, 2**64 - 1])), 1)
    if draw(st.booleans()):
        entries[keys.tax_rate("IT")] = TaxRate(draw(st.sampled_from([0, 1_900])), 4).encode()
    if not healthy and draw(st.integers(0, 9)) == 0:
        entries[draw(st.sampled_from([account_key(buyer), keys.tax_rate("IT"),
                                      keys.product(product_id)]))] = b"\x01bad"
    sealed = b"\x5a" * draw(st.sampled_from([49, 80, 512] if healthy else [48, 49, 513]))
    payload = Placement(product_id, quantity, draw(st.sampled_from(
        [2**64 - 1] if healthy else [0, 1_000, 2**64 - 1])), sealed[:512]).encode()
    if len(sealed) == 513:
        payload = payload[:45] + (513).to_bytes(2, "big") + sealed
    return entries, _mutate(draw, payload, healthy), buyer


@st.composite
def trace_records(draw: st.DrawFn) -> tuple[dict[bytes, bytes], bytes, bytes]:
    healthy = draw(st.booleans())
    inspector, other = ADDRESSES[2], ADDRESSES[0]
    uris = draw(st.lists(st.sampled_from(URIS), min_size=1, max_size=3,
                         unique=not healthy or draw(st.booleans())))
    entries: dict[bytes, bytes] = {}
    for uri in set(uris):
        if healthy or draw(st.integers(0, 7)):
            packed = not healthy and draw(st.integers(0, 3)) == 0
            entries[keys.item(keys.item_key(uri))] = Item(
                draw(st.sampled_from([items.ITEM_INSTANCE, items.ITEM_CLASS])),
                inspector if healthy else draw(st.sampled_from([inspector, other])),
                b"\x0c" * 32 if packed else NO_ID, 3,
                draw(st.sampled_from([0, 4] if healthy else [0, 2**32 - 1])), 0,
                draw(st.binary(min_size=32, max_size=32)), uri).encode()
    if healthy or draw(st.integers(0, 7)):
        entries[keys.party(inspector)] = Party(
            draw(st.sampled_from([ROLE_INSPECTOR, ROLE_CARRIER, ROLE_MERCHANT])), b"\x01" * 32,
            0, 0, 0, NOT_IN_POOL, 1, "", "i", bytes(32)).encode()
    step = draw(st.sampled_from([None, "inspecting", "receiving", "shipping", "commissioning"]))
    event = TraceEvent(
        KIND_OBJECT, ACTION_OBSERVE if healthy else draw(st.sampled_from(
            [ACTION_OBSERVE, ACTION_ADD])),
        draw(st.sampled_from([0, 1_767_300_000_000, C.EPCIS_TIME_MS_MAX])),
        draw(st.integers(-840, 840)), step,
        draw(st.sampled_from([None, "conformant", "non_conformant"])),
        draw(st.sampled_from(READ_POINTS[:3])), draw(st.sampled_from(READ_POINTS[:3])),
        epcs=tuple(uris) if healthy or draw(st.booleans()) else (),
        quantities=() if healthy or draw(st.booleans()) else (Quantity(URIS[1]),),
        certification=draw(st.sampled_from(["", "urn:x:925"])))
    try:
        payload = event.encode()
    except Exception:
        payload = event.encode(check=False)
    if not healthy and draw(st.integers(0, 4)) == 0:  # an id, read point or time the rules refuse
        text = draw(st.sampled_from(READ_POINTS)).encode()
        at = draw(st.sampled_from([15, len(payload) - 1]))
        payload = payload[:at] + bytes([len(text)]) + text + payload[at + 1 + payload[at]:]
    if not healthy and draw(st.integers(0, 9)) == 0:
        payload = payload[:3] + (C.EPCIS_TIME_MS_MAX + 1).to_bytes(8, "big") + payload[11:]
    payload = _mutate(draw, payload, healthy)
    if not healthy and draw(st.integers(0, 4)) == 0:
        entries = _recorded_already(trace.record, entries, payload, inspector)
    return entries, payload, inspector


# Each kernel handler, its reference and the strategy that draws its cases.
HANDLER_CASES: dict[str, tuple[Any, Any]] = {
    "accept": (custody.accept, acceptances),
    "propose": (custody.propose, proposals),
    "deliver": (escrow.deliver, deliveries),
    "confirm": (escrow.confirm, confirmations),
    "place": (orders.place, placements),
    "record": (trace.record, trace_records),
}


@pytest.mark.parametrize("handler", sorted(HANDLER_CASES))
@SETTINGS
@given(data=st.data())
def test_the_kernel_handler_is_the_reference_s(handler: str, data: st.DataObject) -> None:
    assert KERNEL is not None
    reference, cases = HANDLER_CASES[handler]
    _same(reference, getattr(KERNEL, handler), *data.draw(cases()))


def test_both_paths_run_in_the_generated_cases() -> None:
    """The generated cases are not vacuous: some succeed in C, some go to the reference."""
    assert KERNEL is not None
    before = KERNEL.counts()
    for handler in HANDLER_CASES:
        test_the_kernel_handler_is_the_reference_s(handler=handler)
    in_c, handed_back = (now - then for now, then in zip(KERNEL.counts(), before,
                                                           strict=True))
    assert in_c > 50 and handed_back > 50, (in_c, handed_back)


def test_a_shipping_and_a_delivery_write_what_the_reference_writes() -> None:
    """One hand-over to a carrier (ships the order), one delivery: exact values."""
    assert KERNEL is not None
    merchant, carrier, buyer = ADDRESSES[0], ADDRESSES[1], ADDRESSES[3]
    uri = URIS[0]
    item_key = keys.item_key(uri)
    order_id = b"\x07" * 32
    entries = {
        keys.item(item_key): Item(items.ITEM_INSTANCE, merchant, NO_ID, 3, 1, 0, b"\x33" * 32,
                                  uri).encode(),
        keys.order(order_id): Order(buyer, merchant, bytes(32), 1, 10, 10, 2_200, 100, 5,
                                    1_000, "IT", b"\x5a" * 60).encode(),
        keys.escrow(order_id): Escrow(escrow.ESCROW_FUNDED, 10, 1_767_000_000_000, NO_ID, 0,
                                      0, 0, 0, 0, 0, 0, 0, 0, 0).encode(),
        keys.deadline(1_767_000_000_000, keys.DEADLINE_ESCROW, order_id): MARK,
        keys.party(carrier): Party(ROLE_CARRIER, b"\x01" * 32, 0, 0, 0, NOT_IN_POOL, 1, "",
                                   "c", bytes(32)).encode(),
        keys.handover(item_key, carrier): Handover(merchant, order_id, 7,
                                                   b"\x0b" * 32).encode(),
    }
    acceptance = Acceptance(item_key, 1_767_300_000_000, 60, "receiving", "in_transit",
                            "urn:epc:id:sgln:1.2.3").encode()
    error, writes, emitted, _ = _same(custody.accept, KERNEL.accept, entries, acceptance,
                                      carrier)
    assert error is None
    assert [e.type for e in emitted] == ["mall.trace", "mall.escrow", "mall.handover"]
    assert emitted[1] == Event("mall.escrow", (("order", order_id.hex()), ("state", "shipped")))
    shipped = dict(entries)
    for op, key, value in writes:
        if op == "set":
            shipped[key] = value
        else:
            del shipped[key]
    note = DeliveryNote(order_id, 1_767_300_100_000, -300, "urn:epc:id:sgln:9.9.9").encode()
    error, writes, emitted, _ = _same(escrow.deliver, KERNEL.deliver, shipped, note, carrier)
    assert error is None
    assert [op for op, _, _ in writes] == ["set", "set", "set", "delete", "set", "set"]
    assert emitted[1] == Event("mall.escrow", (("order", order_id.hex()),
                                               ("state", "delivered")))


@contextmanager
def _handlers(accept: Any, deliver: Any, confirm: Any, place: Any,
              record: Any, propose: Any) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(HANDLERS, C.TX_MALL_TRACE_RECORD,
                      lambda state, ctx, mall: record(state, ctx))
        patch.setitem(HANDLERS, C.TX_MALL_ORDER_PLACE, place)
        patch.setitem(HANDLERS, C.TX_MALL_HANDOVER_ACCEPT, accept)
        patch.setitem(HANDLERS, C.TX_MALL_HANDOVER_PROPOSE, propose)
        patch.setitem(HANDLERS, C.TX_MALL_ESCROW_DELIVER, deliver)
        patch.setitem(HANDLERS, C.TX_MALL_ESCROW_CONFIRM, confirm)
        yield


def _pinned_chain(path: Any) -> list[tuple]:
    """Every block of the pinned chain: (root, codes, logs, tx events, block events)."""
    chain = MallChain(path, mall_genesis({name: 10**9 for name in NAMES},
                                         certifiers=("certifier",)))
    seen: list[tuple] = []
    block = chain.block

    def recording(txs: list, advance_ms: int = 1_000) -> Any:
        result = block(txs, advance_ms)
        seen.append((chain.root, result.codes, result.logs, result.events,
                     result.block_events))
        return result

    chain.block = recording  # type: ignore[method-assign]
    try:
        run_chain(chain)
    finally:
        chain.close()
    return seen


def test_the_pinned_chain_is_the_same_on_both_paths(tmp_path: Any) -> None:
    assert KERNEL is not None
    with _handlers(custody.accept, escrow.deliver, escrow.confirm, orders.place,
                   trace.record, custody.propose):
        reference = _pinned_chain(tmp_path / "reference")
    before = KERNEL.counts()[0]
    with _handlers(KERNEL.accept, KERNEL.deliver, KERNEL.confirm, KERNEL.place,
                   KERNEL.record, KERNEL.propose):
        kernel = _pinned_chain(tmp_path / "kernel")
    assert KERNEL.counts()[0] - before >= 14  # orders, escrow steps, inspections, in C
    assert kernel == reference
