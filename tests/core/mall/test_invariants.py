"""Hypothesis stateful tests: escrow and supply invariants, and the transition rules.

Random sequences of orders, shipments, hand-overs, deliveries, confirmations,
cancellations, disputes, votes and jumps in block time run block by block
through the real state machine. Before each tx block the pending deadlines
and draws are applied in empty blocks, so an independent model of the
transition table predicts exactly whether the tx (often signed by the wrong
party, or for an order in the wrong state) succeeds. After every block the
invariants of docs/mall.md section 14 are checked against the whole state:
supply kept, escrows pay out exactly what they hold, only transitions of the
table, the deadline index and the counters agree with the objects.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from chainmall.core import constants as C
from chainmall.core.constants import TABLE_MALL_DEADLINES, TABLE_MALL_DRAWS
from chainmall.core.mall import keys
from chainmall.core.mall.disputes import DISPUTE_OPEN, NO_VOTE, decode_dispute
from chainmall.core.mall.escrow import (
    ALLOWED,
    ESCROW_DELIVERED,
    ESCROW_DISPUTED,
    ESCROW_FUNDED,
    ESCROW_SHIPPED,
    OPEN_STATES,
    decode_escrow,
)
from chainmall.core.mall.events import TraceEvent
from chainmall.core.mall.items import decode_item
from chainmall.core.mall.order_record import decode_order
from chainmall.core.mall.parties import decode_party, in_pool_by_rule
from chainmall.core.mall.pool import NOT_IN_POOL, pool_member, pool_size
from chainmall.core.mall.products import decode_product
from chainmall.core.mall.vocab import (
    ACTION_ADD,
    KIND_OBJECT,
    ROLE_ARBITRATOR,
    ROLE_CARRIER,
    ROLE_MERCHANT,
)
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
)
from mall_chain import TEST_PARAMS, MallChain, key, mall_genesis

MERCHANTS = ["m1", "m2"]
BUYERS = ["b1", "b2"]
CARRIERS = ["c1", "c2"]
ARBITRATORS = ["a1", "a2", "a3", "a4"]
STRANGER = "stranger"
NAMES = MERCHANTS + BUYERS + CARRIERS + ARBITRATORS + [STRANGER, "agenzia"]
K = {name: key(name) for name in NAMES}
BY_ADDRESS = {K[name].address: name for name in NAMES}
ITEMS_PER_MERCHANT = 30
# m1's listing is below the panel threshold (one arbitrator), m2's above (a panel).
PRICES = {"m1": 10_000, "m2": 60_000}
STOCK = 12
TIMEOUT_MAX = max(TEST_PARAMS.ship_timeout_ms, TEST_PARAMS.delivery_timeout_ms,
                  TEST_PARAMS.confirm_timeout_ms, TEST_PARAMS.ruling_timeout_ms)


def item_uri(merchant: str, n: int) -> str:
    return f"urn:epc:id:sgtin:{1 + MERCHANTS.index(merchant)}.5.{n}"


class EscrowMachine(RuleBasedStateMachine):
    orders = Bundle("orders")

    def __init__(self) -> None:
        super().__init__()
        base = Path("/dev/shm") if Path("/dev/shm").is_dir() else None
        self.dir = Path(tempfile.mkdtemp(prefix="mall-stateful-", dir=base))
        self.chain = MallChain(self.dir / "data", mall_genesis({n: 10**9 for n in NAMES}))
        self.products: dict[str, bytes] = {}
        self.next_item = {m: 0 for m in MERCHANTS}
        self.seen_state: dict[bytes, int] = {}  # order id -> last escrow state seen

    def teardown(self) -> None:
        self.chain.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # --- chain helpers -----------------------------------------------------------------

    def settle_pending(self) -> None:
        """Run empty blocks until no deadline is due at the next block and no draw waits,
        so the next tx block starts from the state read before it."""
        while True:
            now = self.chain.time_ms + 1
            with self.chain.reader() as state:
                due = state.scan(*keys.deadlines_due(now), 1)
                draws = state.scan(*keys.table_range(TABLE_MALL_DRAWS), 1)
            if not due and not draws:
                return
            self.chain.block([], advance_ms=1)

    def run(self, signer: str, tx) -> int:
        result = self.chain.block([tx], advance_ms=1)
        code = result.codes[0]
        event(f"tx {tx.tx_type:#06x} {'ok' if code == 0 else 'refused'}")
        return code

    def escrow(self, order_id: bytes):
        with self.chain.reader() as state:
            return decode_escrow(state.get(keys.escrow(order_id)))

    def order(self, order_id: bytes):
        with self.chain.reader() as state:
            return decode_order(state.get(keys.order(order_id)))

    def holder(self, item_key: bytes) -> bytes:
        with self.chain.reader() as state:
            return decode_item(state.get(keys.item(item_key))).holder

    # --- set-up --------------------------------------------------------------------------

    @initialize(target=orders)
    def set_up(self):
        chain = self.chain
        txs = [chain.register(K[m], ROLE_MERCHANT, 1_000, "IT") for m in MERCHANTS]
        txs += [chain.register(K[c], ROLE_CARRIER) for c in CARRIERS]
        txs += [chain.register(K[a], ROLE_ARBITRATOR, 500) for a in ARBITRATORS]
        assert chain.block(txs).codes == [0] * len(txs)
        txs, listings = [], {}
        for merchant in MERCHANTS:
            uris = tuple(item_uri(merchant, n) for n in range(ITEMS_PER_MERCHANT))
            txs.append(chain.record(K[merchant], TraceEvent(
                KIND_OBJECT, ACTION_ADD, chain.time_ms, 0, "commissioning", epcs=uris)))
            listings[merchant] = chain.list_product(K[merchant], PRICES[merchant], STOCK)
            txs.append(listings[merchant])
        assert chain.block(txs).codes == [0] * len(txs)
        self.products = {merchant: tx.tx_id for merchant, tx in listings.items()}
        first = [chain.order(K[buyer], self.products[merchant], 1, PRICES[merchant])
                 for buyer, merchant in (("b1", "m1"), ("b2", "m2"), ("b1", "m2"))]
        assert chain.block(first).codes == [0] * len(first)
        return multiple(*(tx.tx_id for tx in first))

    # --- rules ------------------------------------------------------------------------------

    @rule(target=orders, buyer=st.sampled_from(BUYERS), merchant=st.sampled_from(MERCHANTS),
          quantity=st.integers(1, 3))
    def place(self, buyer: str, merchant: str, quantity: int):
        self.settle_pending()
        with self.chain.reader() as state:
            product = decode_product(state.get(keys.product(self.products[merchant])))
        tx = self.chain.order(K[buyer], self.products[merchant], quantity, PRICES[merchant])
        code = self.run(buyer, tx)
        assert (code == 0) == (product.stock >= quantity), code
        return tx.tx_id if code == 0 else multiple()

    @rule(order_id=orders, carrier=st.sampled_from(CARRIERS))
    def ship(self, order_id: bytes, carrier: str) -> None:
        """The merchant hands a fresh item to a carrier, linked to the order."""
        self.settle_pending()
        order = self.order(order_id)
        merchant = BY_ADDRESS[order.merchant]
        if self.next_item[merchant] >= ITEMS_PER_MERCHANT:
            return
        uri = item_uri(merchant, self.next_item[merchant])
        self.next_item[merchant] += 1
        assert self.run(merchant, self.chain.propose(K[merchant], uri, K[carrier].address,
                                                     order_id)) == 0
        self.settle_pending()
        before = self.escrow(order_id).state
        assert self.run(carrier, self.chain.accept(K[carrier], uri)) == 0
        after = self.escrow(order_id).state
        assert after == (ESCROW_SHIPPED if before == ESCROW_FUNDED else before)

    @rule(order_id=orders, carrier=st.sampled_from(CARRIERS), direct=st.booleans())
    def progress(self, order_id: bytes, carrier: str, direct: bool) -> None:
        """Move an order one step along the happy path: ship it, or deliver it (by the
        carrier's delivery event, or by handing it to the buyer)."""
        state = self.escrow(order_id).state
        if state == ESCROW_FUNDED:
            self.ship(order_id, carrier)
        elif state == ESCROW_SHIPPED:
            holder = BY_ADDRESS.get(self.holder(self.escrow(order_id).item_key))
            if direct and holder in CARRIERS:
                self.deliver(order_id, holder)
            else:
                self.hand_on(order_id, BY_ADDRESS[self.order(order_id).buyer])

    @rule(order_id=orders, carrier=st.sampled_from(CARRIERS), direct=st.booleans())
    def progress_again(self, order_id: bytes, carrier: str, direct: bool) -> None:
        """The same as `progress` (a second rule doubles its share of the steps)."""
        self.progress(order_id, carrier, direct)

    @rule(order_id=orders, receiver=st.sampled_from(CARRIERS + BUYERS))
    def hand_on(self, order_id: bytes, receiver: str) -> None:
        """The holder of the shipped item hands it on (another carrier, or a buyer)."""
        self.settle_pending()
        escrow = self.escrow(order_id)
        if escrow.item_key == bytes(32):
            return
        holder = BY_ADDRESS.get(self.holder(escrow.item_key))
        if holder is None or holder == receiver:
            return
        with self.chain.reader() as state:
            uri = decode_item(state.get(keys.item(escrow.item_key))).uri
            open_proposal = state.get(keys.handover(escrow.item_key, K[receiver].address))
        if open_proposal is not None:  # left by an earlier stale attempt
            return
        assert self.run(holder, self.chain.propose(K[holder], uri, K[receiver].address,
                                                   order_id)) == 0
        self.settle_pending()
        before = self.escrow(order_id)
        order = self.order(order_id)
        code = self.run(receiver, self.chain.accept(K[receiver], uri))
        if self.holder(escrow.item_key) != K[receiver].address:
            assert code != 0  # the proposer no longer held it
            return
        assert code == 0
        after = self.escrow(order_id).state
        delivers = (before.state == ESCROW_SHIPPED and K[receiver].address == order.buyer
                    and before.item_key == escrow.item_key)
        assert after == (ESCROW_DELIVERED if delivers else before.state)

    @rule(order_id=orders, signer=st.sampled_from(CARRIERS + BUYERS))
    def deliver(self, order_id: bytes, signer: str) -> None:
        self.settle_pending()
        escrow = self.escrow(order_id)
        expected = (escrow.state == ESCROW_SHIPPED and signer in CARRIERS
                    and self.holder(escrow.item_key) == K[signer].address)
        code = self.run(signer, self.chain.deliver(K[signer], order_id))
        assert (code == 0) == expected, code
        if expected:
            assert self.escrow(order_id).state == ESCROW_DELIVERED

    @rule(order_id=orders, signer=st.sampled_from(BUYERS + MERCHANTS + [STRANGER]))
    def confirm(self, order_id: bytes, signer: str) -> None:
        self.settle_pending()
        escrow, order = self.escrow(order_id), self.order(order_id)
        expected = (K[signer].address == order.buyer
                    and escrow.state in (ESCROW_SHIPPED, ESCROW_DELIVERED))
        code = self.run(signer, self.chain.confirm(K[signer], order_id))
        assert (code == 0) == expected, code

    @rule(order_id=orders, signer=st.sampled_from(BUYERS + MERCHANTS))
    def cancel(self, order_id: bytes, signer: str) -> None:
        self.settle_pending()
        escrow, order = self.escrow(order_id), self.order(order_id)
        expected = K[signer].address == order.merchant and escrow.state == ESCROW_FUNDED
        code = self.run(signer, self.chain.cancel_order(K[signer], order_id))
        assert (code == 0) == expected, code

    @rule(order_id=orders, signer=st.sampled_from(BUYERS + MERCHANTS + [STRANGER]))
    def dispute(self, order_id: bytes, signer: str) -> None:
        self.settle_pending()
        escrow, order = self.escrow(order_id), self.order(order_id)
        expected = (K[signer].address in (order.buyer, order.merchant)
                    and escrow.state in (ESCROW_SHIPPED, ESCROW_DELIVERED))
        code = self.run(signer, self.chain.dispute(K[signer], order_id))
        assert (code == 0) == expected, code

    @rule(order_id=orders, arbitrator=st.sampled_from(ARBITRATORS),
          share=st.sampled_from([0, 2_500, 10_000]))
    def vote(self, order_id: bytes, arbitrator: str, share: int) -> None:
        self.settle_pending()
        with self.chain.reader() as state:
            raw = state.get(keys.dispute(order_id))
        dispute = None if raw is None else decode_dispute(raw)
        round_number = dispute.round if dispute is not None else 1
        seated = dispute is not None and any(
            seat.arbitrator == K[arbitrator].address and seat.vote == NO_VOTE
            for seat in dispute.seats)
        expected = (dispute is not None and dispute.state == DISPUTE_OPEN
                    and dispute.round > 0 and seated)
        code = self.run(arbitrator, self.chain.vote(K[arbitrator], order_id,
                                                     max(round_number, 1), share))
        assert (code == 0) == expected, code

    @rule(order_id=orders)
    def confirm_as_buyer(self, order_id: bytes) -> None:
        self.confirm(order_id, BY_ADDRESS[self.order(order_id).buyer])

    @rule(order_id=orders, by_buyer=st.booleans())
    def dispute_as_party(self, order_id: bytes, by_buyer: bool) -> None:
        order = self.order(order_id)
        self.dispute(order_id, BY_ADDRESS[order.buyer if by_buyer else order.merchant])

    @rule(order_id=orders, share=st.sampled_from([0, 3_333, 10_000]))
    def vote_as_seated(self, order_id: bytes, share: int) -> None:
        """A seated arbitrator who has not voted votes (if there is one)."""
        self.settle_pending()
        with self.chain.reader() as state:
            raw = state.get(keys.dispute(order_id))
        if raw is None:
            return
        waiting = [seat.arbitrator for seat in decode_dispute(raw).seats
                   if seat.filled and seat.vote == NO_VOTE]
        if waiting:
            self.vote(order_id, BY_ADDRESS[waiting[0]], share)

    @rule(advance_ms=st.one_of(st.integers(1, 10), st.integers(1, 2 * TIMEOUT_MAX)))
    def advance(self, advance_ms: int) -> None:
        """Block time jumps; whatever falls due is applied in this block."""
        result = self.chain.block([], advance_ms=advance_ms)
        closed = sum(1 for e in result.block_events
                     if e.type == "mall.escrow" and e.attribute("reason"))
        event(f"time-outs applied: {min(closed, 3)}{'+' if closed > 3 else ''}")

    # --- invariants ---------------------------------------------------------------------------

    @invariant()
    def supply_is_conserved(self) -> None:
        assert self.chain.total_supply() == self.chain.genesis.total_supply

    @invariant()
    def escrows_and_indexes_agree(self) -> None:
        params = TEST_PARAMS
        with self.chain.store.reader() as view:
            entries = dict(view.state_items())
        escrows = {k[1:]: decode_escrow(v) for k, v in entries.items()
                   if k[0] == C.TABLE_MALL_ESCROWS}
        orders = {k[1:]: decode_order(v) for k, v in entries.items()
                  if k[0] == C.TABLE_MALL_ORDERS}
        disputes = {k[1:]: decode_dispute(v) for k, v in entries.items()
                    if k[0] == C.TABLE_MALL_DISPUTES}
        expected_deadlines = set()
        open_orders: dict[bytes, int] = {}
        for order_id, escrow in escrows.items():
            order = orders[order_id]
            previous = self.seen_state.get(order_id, ESCROW_FUNDED)
            assert escrow.state == previous or escrow.state in ALLOWED[previous] or (
                # two steps between checks: funded -> shipped -> delivered, etc.
                any(escrow.state in ALLOWED[middle] for middle in ALLOWED[previous]
                    if middle in ALLOWED)), (previous, escrow.state)
            self.seen_state[order_id] = escrow.state
            if escrow.open:
                assert escrow.held == order.amount
                open_orders[order.merchant] = open_orders.get(order.merchant, 0) + 1
                if escrow.state == ESCROW_DISPUTED:
                    assert escrow.deadline_ms == 0
                else:
                    assert escrow.deadline_ms > 0
                    expected_deadlines.add(keys.deadline(escrow.deadline_ms,
                                                         keys.DEADLINE_ESCROW, order_id))
            else:
                # Never more out than in: the settlement splits exactly the amount.
                assert escrow.held == 0
                assert (escrow.buyer_paid + escrow.merchant_paid + escrow.tax
                        + escrow.commission + escrow.arbitration_fee) == order.amount
                assert escrow.tax == (order.amount - escrow.arbitration_fee
                                      - escrow.buyer_paid) * order.tax_rate_bps // 10_000
        seats: dict[bytes, int] = {}
        for order_id, dispute in disputes.items():
            if dispute.state == DISPUTE_OPEN:
                assert escrows[order_id].state == ESCROW_DISPUTED
                if dispute.round_deadline_ms:
                    expected_deadlines.add(keys.deadline(dispute.round_deadline_ms,
                                                         keys.DEADLINE_DISPUTE, order_id))
                for seat in dispute.seats:
                    if seat.filled:
                        seats[seat.arbitrator] = seats.get(seat.arbitrator, 0) + 1
                        assert keys.seat(seat.arbitrator, order_id) in entries
        deadlines = {k for k in entries if k[0] == TABLE_MALL_DEADLINES}
        assert deadlines == expected_deadlines
        seat_entries = {k for k in entries if k[0] == C.TABLE_MALL_SEATS}
        assert len(seat_entries) == sum(seats.values())
        with self.chain.reader() as state:
            members = {pool_member(state, i) for i in range(pool_size(state))}
        for key_, value in entries.items():
            if key_[0] != C.TABLE_MALL_PARTIES:
                continue
            party, address = decode_party(value), key_[1:]
            assert party.open_orders == open_orders.get(address, 0)
            assert party.open_seats == seats.get(address, 0)
            assert (address in members) == in_pool_by_rule(party, params)
            assert (party.pool_index != NOT_IN_POOL) == (address in members)
        for product_id in self.products.values():
            product = decode_product(entries[keys.product(product_id)])
            assert product.stock + product.sold == STOCK
        assert all(escrow.state in OPEN_STATES or escrow.close_reason
                   for escrow in escrows.values())


TestEscrowInvariants = EscrowMachine.TestCase
TestEscrowInvariants.settings = settings(max_examples=30, stateful_step_count=40,
                                         deadline=None)
