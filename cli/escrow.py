"""`chainmall escrow show|ship|deliver|confirm|dispute|evidence|rule|list`: an order's escrow.

The escrow's life (docs/mall.md section 9): funded when the order is placed;
shipped when the merchant's hand-over linked to the order (`ship`) is
accepted by a carrier (`chainmall mall trace accept`); delivered when the
buyer accepts the item or the carrier records the delivery (`deliver`);
released to the merchant, less fees and withheld tax, when the buyer
confirms (`confirm`); or disputed (`dispute`) and ruled by a drawn panel
(`rule`). Every waiting state has a deadline in block time, shown against
the node's last block time. Reads are proven against the state root.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from chainmall.core.address import encode_address
from chainmall.core.constants import (
    BPS_DENOMINATOR,
    MALL_QUERY_ITEMS_MAX,
    TX_MALL_DISPUTE_EVIDENCE,
    TX_MALL_DISPUTE_OPEN,
    TX_MALL_DISPUTE_VOTE,
    TX_MALL_ESCROW_CONFIRM,
    TX_MALL_ESCROW_DELIVER,
    TX_MALL_HANDOVER_PROPOSE,
)
from chainmall.core.errors import NotVoting
from chainmall.core.mall import keys
from chainmall.core.mall.custody import Proposal, decode_proposal
from chainmall.core.mall.disputes import (
    DISPUTE_OPEN,
    Evidence,
    Vote,
    decode_dispute,
    decode_evidence,
    decode_vote,
)
from chainmall.core.mall.escrow import DeliveryNote, decode_delivery
from chainmall.core.mall.order_record import OrderRef, decode_order_ref
from chainmall.core.rpc.client import BlockingClient

from .context import Context
from .mall_args import build_payload, content_hash, event_time, hex_id, item_argument
from .mall_order import (
    list_options,
    party_orders,
    proven_order,
    side_of,
    truncated,
    view_pairs,
)
from .mall_view import dispute_json, lines, vote_text
from .node_client import (
    TxOptions,
    address_argument,
    connect,
    load_signer,
    node_options,
    send_tx,
    tx_options,
)
from .proven import Proven, proven_query

_EVIDENCE_FILE = click.Path(dir_okay=False, exists=True, path_type=Path)


@click.group()
def escrow() -> None:
    """Ship, deliver, confirm, dispute and rule an order's escrow; show and list escrows."""


def _evidence_options(function: Any) -> Any:
    function = click.option("--evidence-hash", metavar="HEX",
                            help="The evidence's BLAKE3 hash.")(function)
    return click.option("--evidence", type=_EVIDENCE_FILE,
                        help="The evidence file (it stays off chain: its BLAKE3 hash goes on "
                             "chain).")(function)


def _evidence(order_id: str, evidence: Path | None, evidence_hash: str | None) -> bytes:
    if evidence is None and evidence_hash is None:
        raise click.UsageError("give --evidence FILE or --evidence-hash HEX")
    payload = Evidence(hex_id(order_id, "order id"),
                       content_hash(evidence, evidence_hash, "evidence"))
    return build_payload("evidence", payload.encode, decode_evidence)


@escrow.command("show", short_help="An order's escrow and dispute, proven.")
@click.argument("order_id", metavar="ORDER")
@node_options
@click.pass_obj
def escrow_show(obj: Context, order_id: str, node_address: str, token: str) -> None:
    """ORDER's escrow: state, what it holds, its deadline against the node's block time, the
    payout once closed, and its dispute (panel, votes, evidence), proven against the state
    root."""
    raw_id = hex_id(order_id, "order id")
    with connect(node_address, token) as client:
        found = proven_order(client, raw_id)
    data = found.json()
    obj.emit(lines(view_pairs(data)) + "\n" + found.proven.line(),
             {**data, "proof": found.proven.json()})


@escrow.command("ship", short_help="Hand the goods to a carrier, linked to the order.")
@click.argument("order_id", metavar="ORDER")
@click.option("--item", required=True, metavar="ITEM",
              help="The item (or the container) the goods travel in: its URI or item key.")
@click.option("--to", "carrier", required=True, metavar="ADDRESS",
              help="The carrier (or the buyer, for a hand delivery): cm1... or a key name.")
@tx_options
@click.pass_obj
def escrow_ship(obj: Context, order_id: str, item: str, carrier: str, tx: TxOptions) -> None:
    """Propose the hand-over of --item to --to, linked to ORDER, as its merchant
    (HANDOVER_PROPOSE). The escrow is shipped when a carrier accepts (`chainmall mall trace
    accept ITEM`), delivered when the buyer does."""
    item_key, _ = item_argument(item)
    proposal = Proposal(item_key, address_argument(obj, carrier), hex_id(order_id, "order id"))
    send_tx(obj, tx, TX_MALL_HANDOVER_PROPOSE,
            build_payload("hand-over proposal", proposal.encode, decode_proposal))


@escrow.command("deliver", short_help="Record the delivery (the carrier holding it).")
@click.argument("order_id", metavar="ORDER")
@click.option("--read-point", default="", metavar="URI", help="Where it was delivered.")
@click.option("--time", "time_text", metavar="RFC3339",
              help="Delivery time with its offset [default: now, UTC].")
@tx_options
@click.pass_obj
def escrow_deliver(obj: Context, order_id: str, read_point: str, time_text: str | None,
                   tx: TxOptions) -> None:
    """Record the delivery of ORDER as the carrier holding the shipped item (ESCROW_DELIVER):
    an arriving event in the item's history; the buyer's confirm window starts."""
    time_ms, offset = event_time(time_text)
    note = DeliveryNote(hex_id(order_id, "order id"), time_ms, offset, read_point)
    send_tx(obj, tx, TX_MALL_ESCROW_DELIVER,
            build_payload("delivery", note.encode, decode_delivery))


@escrow.command("confirm", short_help="Confirm receipt (buyer): release the escrow.")
@click.argument("order_id", metavar="ORDER")
@tx_options
@click.pass_obj
def escrow_confirm(obj: Context, order_id: str, tx: TxOptions) -> None:
    """Confirm receipt of ORDER as its buyer (ESCROW_CONFIRM): the escrow is released to the
    merchant, less the commission and the withheld tax."""
    ref = OrderRef(hex_id(order_id, "order id"))
    send_tx(obj, tx, TX_MALL_ESCROW_CONFIRM, build_payload("order", ref.encode,
                                                           decode_order_ref))


@escrow.command("dispute", short_help="Dispute an order with evidence (buyer/merchant).")
@click.argument("order_id", metavar="ORDER")
@_evidence_options
@tx_options
@click.pass_obj
def escrow_dispute(obj: Context, order_id: str, evidence: Path | None,
                   evidence_hash: str | None, tx: TxOptions) -> None:
    """Dispute ORDER as its buyer or merchant, with evidence (DISPUTE_OPEN): the next block
    draws the arbitrators from the bonded pool; neither party chooses them."""
    send_tx(obj, tx, TX_MALL_DISPUTE_OPEN, _evidence(order_id, evidence, evidence_hash))


@escrow.command("evidence", short_help="Add evidence to an open dispute.")
@click.argument("order_id", metavar="ORDER")
@_evidence_options
@tx_options
@click.pass_obj
def escrow_evidence(obj: Context, order_id: str, evidence: Path | None,
                    evidence_hash: str | None, tx: TxOptions) -> None:
    """Add evidence to ORDER's open dispute, as buyer or merchant (DISPUTE_EVIDENCE)."""
    send_tx(obj, tx, TX_MALL_DISPUTE_EVIDENCE, _evidence(order_id, evidence, evidence_hash))


def _current_round(client: BlockingClient, order_id: bytes) -> int:
    proven = proven_query(client, "/mall/order", order_id)
    raw = proven.get(keys.dispute(order_id))
    if raw is None:
        raise NotVoting(f"order {order_id.hex()} has no dispute")
    dispute = decode_dispute(raw)
    if dispute.state != DISPUTE_OPEN or dispute.round == 0:
        raise NotVoting(f"the dispute of order {order_id.hex()} is "
                        f"{'ruled' if dispute.state != DISPUTE_OPEN else 'not drawn yet'}")
    return dispute.round


@escrow.command("rule", short_help="Vote on a dispute (a seated arbitrator).")
@click.argument("order_id", metavar="ORDER")
@click.option("--refund", "outcome", flag_value="refund", help="The buyer gets it all back.")
@click.option("--release", "outcome", flag_value="release", help="The merchant is paid.")
@click.option("--buyer-bps", type=click.IntRange(0, BPS_DENOMINATOR), default=None,
              help="A split: the buyer's share in basis points.")
@click.option("--round", "round_number", type=click.IntRange(1, 255), default=None,
              help="The round voted in [default: the dispute's current round].")
@tx_options
@click.pass_obj
def escrow_rule(obj: Context, order_id: str, outcome: str | None, buyer_bps: int | None,
                round_number: int | None, tx: TxOptions) -> None:
    """Vote on ORDER's dispute as an arbitrator seated on its panel (DISPUTE_VOTE): --refund,
    --release or --buyer-bps N. A majority of the panel rules at once."""
    if (outcome is None) == (buyer_bps is None):
        raise click.UsageError("give exactly one of --refund, --release and --buyer-bps")
    share = buyer_bps if outcome is None else (BPS_DENOMINATOR if outcome == "refund" else 0)
    raw_id = hex_id(order_id, "order id")
    keypair = load_signer(obj, tx)
    if round_number is None:
        with connect(tx.node_address, tx.token) as client:
            round_number = _current_round(client, raw_id)
    vote = Vote(raw_id, round_number, share)
    send_tx(obj, tx, TX_MALL_DISPUTE_VOTE, build_payload("vote", vote.encode, decode_vote),
            keypair=keypair, named=lambda _: {"vote": vote_text(share),
                                              "round": str(round_number)})


@escrow.command("list", short_help="Escrows of a buyer or merchant, or an arbitrator's seats.")
@list_options
@click.option("--arbitrator", "arbitrator_address", metavar="ADDRESS",
              help="The disputes an arbitrator sits on (its open seats).")
@click.option("--open", "only_open", is_flag=True, help="Only open escrows.")
@node_options
@click.pass_obj
def escrow_list(obj: Context, buyer_address: str | None, merchant_address: str | None,
                arbitrator_address: str | None, only_open: bool, node_address: str,
                token: str) -> None:
    """The escrows of a buyer's or merchant's orders (state, held, deadline), or the
    disputes an arbitrator sits on, proven against the state root."""
    if arbitrator_address is not None:
        if buyer_address or merchant_address:
            raise click.UsageError("give one of --buyer, --merchant and --arbitrator")
        _list_seats(obj, address_argument(obj, arbitrator_address), node_address, token)
        return
    address, side = side_of(obj, buyer_address, merchant_address)
    with connect(node_address, token) as client:
        orders, proven, block_time_ms = party_orders(client, address, side)
    if only_open:
        orders = [o for o in orders if o["escrow"]["open"]]
    rows = []
    for found in orders:
        state = found["escrow"]
        due = state["due_in_ms"]
        deadline = "" if due is None else (f"  due in {due / 1000:.1f} s" if due > 0
                                           else "  due now")
        rows.append(f"{found['order_id']}  {state['state']:<9} held {state['held']:>10}"
                    f"{deadline}")
    rows.append(f"{len(orders)} escrows; {proven.line()}")
    if truncated(proven, address, side):
        rows.append(f"truncated: the node lists the oldest {MALL_QUERY_ITEMS_MAX} orders")
    obj.emit("\n".join(rows), {"address": encode_address(address), "block_time_ms":
                               block_time_ms, "escrows": [{"order_id": o["order_id"],
                                                           **o["escrow"]} for o in orders],
                               "truncated": truncated(proven, address, side),
                               "proof": proven.json()})


def _list_seats(obj: Context, arbitrator: bytes, node_address: str, token: str) -> None:
    with connect(node_address, token) as client:
        proven: Proven = proven_query(client, "/mall/seats", arbitrator)
    disputes = []
    for key, _ in proven.table(keys.seats_of(arbitrator)[0]):
        order_id = key[-32:]
        raw = proven.get(keys.dispute(order_id))
        if raw is not None:
            disputes.append({"order_id": order_id.hex(), **dispute_json(decode_dispute(raw))})
    rows = [f"{d['order_id']}  {d['state']}, round {d['round']}" for d in disputes]
    rows.append(f"{len(disputes)} seats of {encode_address(arbitrator)}; {proven.line()}")
    obj.emit("\n".join(rows), {"arbitrator": encode_address(arbitrator), "disputes": disputes,
                               "proof": proven.json()})
