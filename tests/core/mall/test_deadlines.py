"""Deadlines in block time: applied in the first block at or after them, by the begin-block
hook, at most a bounded number per block (the rest wait a block), each state's rule."""

from __future__ import annotations

from chainmall.core.mall import hooks, keys
from chainmall.core.mall.deadlines import due
from chainmall.core.mall.escrow import (
    CLOSE_CONFIRM_TIMEOUT,
    CLOSE_DELIVERY_TIMEOUT,
    CLOSE_SHIP_TIMEOUT,
    ESCROW_FUNDED,
    ESCROW_REFUNDED,
    ESCROW_RELEASED,
    load_escrow,
)
from chainmall.core.mall.events import TraceEvent
from chainmall.core.mall.vocab import ACTION_ADD, KIND_OBJECT, ROLE_CARRIER, ROLE_MERCHANT
from mall_chain import TEST_PARAMS, MallChain, key, mall_genesis, ok

NAMES = ["merchant", "buyer", "carrier", "agenzia"]
K = {name: key(name) for name in NAMES}



def setup(path) -> tuple[MallChain, bytes]:
    chain = MallChain(path, mall_genesis({name: 10**9 for name in NAMES}))
    ok(chain.block([chain.register(K["merchant"], ROLE_MERCHANT, 1_000, "IT"),
                    chain.register(K["carrier"], ROLE_CARRIER)]))
    listing = chain.list_product(K["merchant"], 1_000, 1_000)
    uris = tuple(f"urn:epc:id:sgtin:3.3.{n}" for n in range(4))
    ok(chain.block([listing, chain.record(K["merchant"], TraceEvent(
        KIND_OBJECT, ACTION_ADD, chain.time_ms, 0, "commissioning", epcs=uris))]))
    return chain, listing.tx_id


def escrow(chain: MallChain, order_id: bytes):
    with chain.reader() as state:
        return load_escrow(state, order_id)


def test_a_deadline_applies_in_the_first_block_at_or_after_it(tmp_path) -> None:
    chain, product = setup(tmp_path / "data")
    order = chain.order(K["buyer"], product, 1, 1_000)
    ok(chain.block([order]))
    placed = chain.time_ms
    due_ms = placed + TEST_PARAMS.ship_timeout_ms
    assert escrow(chain, order.tx_id).deadline_ms == due_ms
    ok(chain.block([], advance_ms=due_ms - 1 - chain.time_ms))  # 1 ms before
    assert escrow(chain, order.tx_id).state == ESCROW_FUNDED
    # A tx in the block at the deadline sees the deadline applied (hooks run first).
    result = chain.block([chain.cancel_order(K["merchant"], order.tx_id)], advance_ms=1)
    assert result.codes == [424]  # WrongEscrowState: already refunded
    closed = escrow(chain, order.tx_id)
    assert closed.state == ESCROW_REFUNDED and closed.close_reason == CLOSE_SHIP_TIMEOUT
    assert closed.closed_ms == due_ms
    assert [e.type for e in result.block_events] == ["mall.escrow"]
    with chain.reader() as state:
        assert due(state, 2**63) == []  # nothing left in the index


def test_delivery_and_confirm_time_outs(tmp_path) -> None:
    chain, product = setup(tmp_path / "data")
    shipped, delivered = (chain.order(K["buyer"], product, 1, 1_000) for _ in range(2))
    ok(chain.block([shipped, delivered]))
    ok(chain.block([chain.propose(K["merchant"], "urn:epc:id:sgtin:3.3.0",
                                  K["carrier"].address, shipped.tx_id),
                    chain.propose(K["merchant"], "urn:epc:id:sgtin:3.3.1", K["buyer"].address,
                                  delivered.tx_id)]))
    ok(chain.block([chain.accept(K["carrier"], "urn:epc:id:sgtin:3.3.0"),
                    chain.accept(K["buyer"], "urn:epc:id:sgtin:3.3.1", "accepting")]))
    assert escrow(chain, delivered.tx_id).deadline_ms == \
        chain.time_ms + TEST_PARAMS.confirm_timeout_ms
    ok(chain.block([], advance_ms=max(TEST_PARAMS.confirm_timeout_ms,
                                      TEST_PARAMS.delivery_timeout_ms)))
    one, two = escrow(chain, shipped.tx_id), escrow(chain, delivered.tx_id)
    assert (one.state, one.close_reason) == (ESCROW_REFUNDED, CLOSE_DELIVERY_TIMEOUT)
    assert (two.state, two.close_reason) == (ESCROW_RELEASED, CLOSE_CONFIRM_TIMEOUT)
    assert two.merchant_paid > 0 and one.buyer_paid == 1_000


def test_a_block_applies_at_most_the_limit_and_the_rest_waits(tmp_path, monkeypatch) -> None:
    chain, product = setup(tmp_path / "data")
    orders = [chain.order(K["buyer"], product, 1, 1_000) for _ in range(5)]
    ok(chain.block(orders))
    monkeypatch.setattr(hooks, "due", lambda state, now: due(state, now, 2))
    ok(chain.block([], advance_ms=TEST_PARAMS.ship_timeout_ms))
    states = [escrow(chain, o.tx_id).state for o in orders]
    assert states.count(ESCROW_REFUNDED) == 2
    ok(chain.block([], advance_ms=1))
    ok(chain.block([], advance_ms=1))
    assert [escrow(chain, o.tx_id).state for o in orders] == [ESCROW_REFUNDED] * 5
    # Applied in key order: time, kind, order id.
    first_two = sorted(o.tx_id for o in orders)[:2]
    assert {o.tx_id for o, s in zip(orders, states, strict=True) if s == ESCROW_REFUNDED} == \
        set(first_two)


def test_the_index_holds_one_entry_per_waiting_escrow(tmp_path) -> None:
    chain, product = setup(tmp_path / "data")
    order = chain.order(K["buyer"], product, 1, 1_000)
    ok(chain.block([order]))
    ok(chain.block([chain.propose(K["merchant"], "urn:epc:id:sgtin:3.3.2",
                                  K["carrier"].address, order.tx_id)]))
    ok(chain.block([chain.accept(K["carrier"], "urn:epc:id:sgtin:3.3.2")]))
    with chain.reader() as state:
        entries = state.scan(*keys.table_range(keys.deadline(0, 1, bytes(32))[0]))
    assert [key[-32:] for key, _ in entries] == [order.tx_id]
    assert keys.parse_deadline(entries[0][0])[0] == escrow(chain, order.tx_id).deadline_ms
