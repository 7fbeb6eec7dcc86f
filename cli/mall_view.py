"""How the mall commands show mall objects: JSON for programs, aligned lines for people.

JSON follows the RPC's conventions (docs/rpc.md section 2): ids and hashes as
lower-case hex, addresses as `cm1...` text, amounts (u64 values a signer
chooses or that sum them) as decimal strings, heights, counts, basis points
and times (ms since the epoch) as numbers. Every `*_json` function takes a
decoded state value (core/mall/) and its id; every `*_lines` function the
JSON it made, so both outputs always say the same.
"""

from __future__ import annotations

from typing import Any

from chainmall.core.address import encode_address
from chainmall.core.constants import ADDRESS_BYTES, HASH_BYTES
from chainmall.core.mall.codec import NO_ADDRESS, NO_ID
from chainmall.core.mall.custody import Handover
from chainmall.core.mall.disputes import DISPUTE_OPEN, NO_VOTE, Dispute
from chainmall.core.mall.epcis import format_time
from chainmall.core.mall.escrow import CLOSE_NAMES, STATE_NAMES, Escrow
from chainmall.core.mall.history import TraceStep
from chainmall.core.mall.items import ITEM_CLASS, Item
from chainmall.core.mall.order_record import Order
from chainmall.core.mall.parties import CERT_ACTIVE, CertRecord, Party
from chainmall.core.mall.pool import NOT_IN_POOL
from chainmall.core.mall.products import PRODUCT_ACTIVE, Product
from chainmall.core.mall.tax import TaxRecord
from chainmall.core.mall.vocab import ACTION_NAMES, KIND_NAMES, role_names

Json = dict[str, Any]


def when(time_ms: int) -> str:
    """A block time (UTC) as RFC 3339 text."""
    try:
        return format_time(time_ms)
    except ValueError:
        return f"{time_ms} ms"


def lines(pairs: list[tuple[str, Any]]) -> str:
    """`name: value` lines with the values aligned."""
    width = max((len(name) for name, _ in pairs), default=0) + 1
    return "\n".join(f"{name + ':':<{width}} {value}" for name, value in pairs)


# --- parties ---------------------------------------------------------------------------


def party_json(address: bytes, party: Party) -> Json:
    return {
        "address": encode_address(address), "name": party.name,
        "roles": role_names(party.roles), "jurisdiction": party.jurisdiction or None,
        "bond": str(party.bond), "public_key": party.public_key.hex(),
        "open_orders": party.open_orders, "open_seats": party.open_seats,
        "in_arbitrator_pool": party.pool_index != NOT_IN_POOL,
        "registered_height": party.registered_height,
        "profile_hash": party.profile_hash.hex(),
    }


def party_lines(data: Json) -> list[tuple[str, Any]]:
    pairs = [("address", data["address"]), ("name", data["name"]),
             ("roles", ", ".join(data["roles"])), ("jurisdiction", data["jurisdiction"] or "-"),
             ("bond", data["bond"]), ("public key", data["public_key"]),
             ("open orders", data["open_orders"]), ("open seats", data["open_seats"]),
             ("registered at", f"height {data['registered_height']}")]
    if "arbitrator" in data["roles"]:
        pairs.append(("in the pool", "yes" if data["in_arbitrator_pool"] else "no"))
    if data["profile_hash"] != NO_ID.hex():
        pairs.append(("profile hash", data["profile_hash"]))
    return pairs


def cert_json(key: bytes, record: CertRecord) -> Json:
    """A certification from its state key (`14 || merchant || certifier || brand`)."""
    merchant = key[1:1 + ADDRESS_BYTES]
    certifier = key[1 + ADDRESS_BYTES:1 + 2 * ADDRESS_BYTES]
    brand = key[2 + 2 * ADDRESS_BYTES:].decode("utf-8", "replace")
    return {"merchant": encode_address(merchant), "certifier": encode_address(certifier),
            "brand": brand, "status": "active" if record.status == CERT_ACTIVE else "revoked",
            "certified_height": record.certified_height,
            "revoked_height": record.revoked_height or None}


def cert_line(data: Json) -> str:
    text = f"{data['brand']!r} by {data['certifier']}: {data['status']} (certified at height " \
           f"{data['certified_height']}"
    if data["revoked_height"]:
        text += f", revoked at height {data['revoked_height']}"
    return text + ")"


# --- products ----------------------------------------------------------------------------


def product_json(product_id: bytes, product: Product) -> Json:
    return {
        "product_id": product_id.hex(), "merchant": encode_address(product.merchant),
        "title": product.title, "category": product.category,
        "status": "active" if product.status == PRODUCT_ACTIVE else "delisted",
        "price": str(product.price), "stock": product.stock, "sold": str(product.sold),
        "listed_height": product.listed_height, "updated_height": product.updated_height,
        "metadata_hash": product.metadata_hash.hex(),
    }


def product_lines(data: Json) -> list[tuple[str, Any]]:
    return [("product id", data["product_id"]), ("title", data["title"]),
            ("category", data["category"]), ("merchant", data["merchant"]),
            ("status", data["status"]), ("price", data["price"]), ("stock", data["stock"]),
            ("sold", data["sold"]),
            ("listed at", f"height {data['listed_height']} (updated at "
                          f"{data['updated_height']})"),
            ("metadata hash", data["metadata_hash"])]


def product_row(data: Json) -> str:
    return (f"{data['product_id']}  {data['status']:<8} price {data['price']:>10}  stock "
            f"{data['stock']:>6}  {data['title']}")


# --- orders, escrows, disputes -------------------------------------------------------------


def order_json(order_id: bytes, order: Order) -> Json:
    return {
        "order_id": order_id.hex(), "buyer": encode_address(order.buyer),
        "merchant": encode_address(order.merchant), "product_id": order.product_id.hex(),
        "quantity": order.quantity, "unit_price": str(order.unit_price),
        "amount": str(order.amount), "tax_rate_bps": order.tax_rate_bps,
        "commission_bps": order.commission_bps, "jurisdiction": order.jurisdiction,
        "placed_height": order.placed_height, "placed_ms": order.placed_ms,
        "sealed_address": order.sealed_address.hex(),
    }


def order_lines(data: Json) -> list[tuple[str, Any]]:
    return [("order id", data["order_id"]), ("buyer", data["buyer"]),
            ("merchant", data["merchant"]), ("product", data["product_id"]),
            ("quantity", data["quantity"]), ("unit price", data["unit_price"]),
            ("amount", data["amount"]),
            ("tax rate", f"{data['tax_rate_bps']} bps ({data['jurisdiction']})"),
            ("commission", f"{data['commission_bps']} bps"),
            ("placed", f"height {data['placed_height']}, {when(data['placed_ms'])}"),
            ("sealed address", f"{len(data['sealed_address']) // 2} bytes of ciphertext")]


def escrow_json(escrow: Escrow, block_time_ms: int) -> Json:
    """The escrow; `due_in_ms` is its deadline less the node's last block time."""
    data: Json = {
        "state": STATE_NAMES[escrow.state], "open": escrow.open, "held": str(escrow.held),
        "deadline_ms": escrow.deadline_ms or None,
        "due_in_ms": (escrow.deadline_ms - block_time_ms) if escrow.deadline_ms else None,
        "shipped_item": escrow.item_key.hex() if escrow.item_key != NO_ID else None,
        "shipped_ms": escrow.shipped_ms or None, "delivered_ms": escrow.delivered_ms or None,
        "closed_ms": escrow.closed_ms or None, "closed_height": escrow.closed_height or None,
        "close_reason": None if escrow.open else CLOSE_NAMES[escrow.close_reason],
    }
    for name in ("buyer_paid", "merchant_paid", "tax", "commission", "arbitration_fee"):
        data[name] = str(getattr(escrow, name))
    return data


def escrow_lines(data: Json) -> list[tuple[str, Any]]:
    pairs: list[tuple[str, Any]] = [("escrow", data["state"]), ("held", data["held"])]
    if data["deadline_ms"]:
        due = data["due_in_ms"]
        relative = (f"in {due / 1000:.1f} s of block time" if due > 0
                    else "due: applied by the next block")
        pairs.append(("deadline", f"{when(data['deadline_ms'])} ({relative})"))
    if data["shipped_item"]:
        pairs.append(("shipped item", data["shipped_item"]))
    for name in ("shipped", "delivered", "closed"):
        if data[f"{name}_ms"]:
            pairs.append((name, when(data[f"{name}_ms"])))
    if not data["open"]:
        pairs.append(("closed by", f"{data['close_reason']} at height {data['closed_height']}"))
        pairs.append(("paid", f"buyer {data['buyer_paid']}, merchant {data['merchant_paid']}, "
                              f"tax {data['tax']}, commission {data['commission']}, "
                              f"arbitration {data['arbitration_fee']}"))
    return pairs


def dispute_json(dispute: Dispute) -> Json:
    return {
        "state": "open" if dispute.state == DISPUTE_OPEN else "ruled",
        "opener": encode_address(dispute.opener), "round": dispute.round,
        "opened_height": dispute.opened_height,
        "round_deadline_ms": dispute.round_deadline_ms or None,
        "ruling_buyer_bps": None if dispute.ruling_bps == NO_VOTE else dispute.ruling_bps,
        "evidence": [{"submitter": encode_address(who), "hash": digest.hex()}
                     for who, digest in dispute.evidence],
        "seats": [{"arbitrator": encode_address(seat.arbitrator)
                   if seat.arbitrator != NO_ADDRESS else None,
                   "vote_buyer_bps": None if seat.vote == NO_VOTE else seat.vote}
                  for seat in dispute.seats],
    }


def dispute_lines(data: Json) -> list[tuple[str, Any]]:
    pairs: list[tuple[str, Any]] = [
        ("dispute", f"{data['state']}, opened by {data['opener']} at height "
                    f"{data['opened_height']}"),
        ("round", data["round"] or "not drawn yet (the next block draws the panel)")]
    if data["round_deadline_ms"]:
        pairs.append(("round deadline", when(data["round_deadline_ms"])))
    for number, seat in enumerate(data["seats"], 1):
        vote = seat["vote_buyer_bps"]
        pairs.append((f"seat {number}", f"{seat['arbitrator'] or 'empty'}: "
                                        f"{'no vote yet' if vote is None else vote_text(vote)}"))
    for item in data["evidence"]:
        pairs.append(("evidence", f"{item['hash']} from {item['submitter']}"))
    if data["ruling_buyer_bps"] is not None:
        pairs.append(("ruling", vote_text(data["ruling_buyer_bps"])))
    return pairs


def vote_text(buyer_bps: int) -> str:
    if buyer_bps == 10_000:
        return "refund (buyer 10000 bps)"
    if buyer_bps == 0:
        return "release (buyer 0 bps)"
    return f"split: buyer {buyer_bps} bps"


# --- tax -------------------------------------------------------------------------------------


def tax_record_json(key: bytes, record: TaxRecord) -> Json:
    """A tax record from its key (`24 || jurisdiction u8-sized || height u64 || order id`)."""
    size = key[1]
    height = int.from_bytes(key[2 + size:10 + size], "big")
    return {"jurisdiction": key[2:2 + size].decode("ascii", "replace"), "height": height,
            "order_id": key[10 + size:].hex(), "merchant": encode_address(record.merchant),
            "gross": str(record.gross), "tax": str(record.tax), "rate_bps": record.rate_bps,
            "authority": encode_address(record.authority)}


# --- traceability ----------------------------------------------------------------------------


def item_json(item_key: bytes, item: Item, holder: bytes | None) -> Json:
    """An item; `holder` None when its outermost container was not read."""
    return {"item_key": item_key.hex(), "uri": item.uri,
            "kind": "class" if item.kind == ITEM_CLASS else "instance",
            "holder": None if holder is None else encode_address(holder),
            "packed_in": item.parent.hex() if item.packed else None,
            "first_height": item.first_height, "events": item.event_count,
            "history": item.history.hex()}


def handover_json(key: bytes, handover: Handover) -> Json:
    """An open proposal from its key (`1B || item key || receiver`)."""
    return {"item_key": key[1:1 + HASH_BYTES].hex(),
            "receiver": encode_address(key[1 + HASH_BYTES:]),
            "proposer": encode_address(handover.proposer),
            "order_id": handover.order_id.hex() if handover.order_id != NO_ID else None,
            "proposed_height": handover.proposed_height, "tx_id": handover.tx_id.hex()}


def step_line(step: TraceStep, uris: dict[bytes, str]) -> str:
    """One event of a history, for people."""
    record = step.record
    head = f"h{record.height:<6} {encode_address(record.recorder)}"
    if step.is_declaration:
        declared = record.declaration()
        return (f"{head}  error declaration ({declared.reason or 'no reason'}) of event "
                f"{declared.event_id.hex()[:16]}")
    event = record.event()
    kind = KIND_NAMES[event.kind].replace("Event", "")
    action = f" {ACTION_NAMES[event.action]}" if event.action in ACTION_NAMES else ""
    why = "/".join(word for word in (event.biz_step, event.disposition) if word) or "-"
    text = (f"{head}  {format_time(event.event_time_ms, event.tz_offset_min)}  "
            f"{kind}{action} {why}  [{uris.get(step.item_key, step.item_key.hex()[:16])}]")
    if step.declared_by is not None:
        text += f"  ERRONEOUS (declared by {step.declared_by.hex()[:16]})"
    return text + f"  id {step.event_id.hex()[:16]}"
