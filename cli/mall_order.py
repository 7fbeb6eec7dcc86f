"""`chainmall mall order place|show|list|cancel`: orders paid into escrow, sealed addresses.

`place` reads the listing and the merchant's public key (both proven), seals
the shipping address to that key on this machine (libsodium sealed box,
docs/mall.md section 8) and signs the order: only ciphertext goes on chain.
`show` with the merchant's key (`--key`) opens the address. Orders are read
with their escrow and dispute, proven against the state root.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import nacl.exceptions
from chainmall.core.address import encode_address
from chainmall.core.constants import (
    HASH_BYTES,
    MALL_QUERY_ITEMS_MAX,
    ORDER_QUANTITY_MAX,
    TX_MALL_ORDER_CANCEL,
    TX_MALL_ORDER_PLACE,
    U64_MAX,
)
from chainmall.core.errors import InvalidKey, NotFound
from chainmall.core.mall import keys
from chainmall.core.mall.disputes import Dispute, decode_dispute
from chainmall.core.mall.escrow import Escrow, decode_escrow
from chainmall.core.mall.order_record import Order, OrderRef, decode_order, decode_order_ref
from chainmall.core.mall.orders import Placement, decode_placement
from chainmall.core.mall.parties import decode_party
from chainmall.core.mall.sealing import open_address, seal_address
from chainmall.core.rpc.client import BlockingClient

from .context import Context
from .mall_args import build_payload, hex_id
from .mall_group import mall
from .mall_party import party_entries
from .mall_product import proven_product
from .mall_view import (
    dispute_json,
    dispute_lines,
    escrow_json,
    escrow_lines,
    lines,
    order_json,
    order_lines,
)
from .node_client import (
    TxOptions,
    address_argument,
    connect,
    load_key,
    load_signer,
    node_options,
    send_tx,
    tx_options,
)
from .proven import Proven, prove_absent, proven_query

SIDES = {"buyer": keys.SIDE_BUYER, "merchant": keys.SIDE_MERCHANT}


@dataclass(frozen=True, slots=True)
class ProvenOrder:
    """An order with its escrow and dispute (if any), proven; `block_time_ms` is the node's
    last block time (deadlines are shown against it)."""

    order_id: bytes
    order: Order
    escrow: Escrow
    dispute: Dispute | None
    proven: Proven
    block_time_ms: int

    def json(self) -> dict[str, Any]:
        data = order_json(self.order_id, self.order)
        data["escrow"] = escrow_json(self.escrow, self.block_time_ms)
        data["dispute"] = dispute_json(self.dispute) if self.dispute else None
        data["block_time_ms"] = self.block_time_ms
        return data


def view_pairs(data: dict[str, Any]) -> list[tuple[str, Any]]:
    """The order, its escrow and dispute as `name: value` pairs."""
    pairs = order_lines(data) + escrow_lines(data["escrow"])
    if data["dispute"]:
        pairs += dispute_lines(data["dispute"])
    return pairs


def proven_order(client: BlockingClient, order_id: bytes) -> ProvenOrder:
    """The order, escrow and dispute of `order_id`, proven; NotFound (absence proven)."""
    block_time_ms = client.status().block_time_ms
    proven = proven_query(client, "/mall/order", order_id)
    raw_order, raw_escrow = proven.get(keys.order(order_id)), proven.get(keys.escrow(order_id))
    if raw_order is None or raw_escrow is None:
        absent = prove_absent(client, keys.order(order_id))
        raise NotFound(f"no order {order_id.hex()} (absence proven at height {absent.height})")
    raw_dispute = proven.get(keys.dispute(order_id))
    return ProvenOrder(order_id, decode_order(raw_order), decode_escrow(raw_escrow),
                       decode_dispute(raw_dispute) if raw_dispute else None, proven,
                       block_time_ms)


def party_orders(client: BlockingClient, address: bytes, side: int
                 ) -> tuple[list[dict[str, Any]], Proven, int]:
    """A buyer's or merchant's orders, oldest first, each with its escrow and dispute."""
    block_time_ms = client.status().block_time_ms
    proven = proven_query(client, "/mall/orders", address + bytes([side]))
    values = {key: value for key, value in proven if value is not None}
    out = []
    for key, _ in proven.table(keys.orders_of(address, side)[0]):
        order_id = key[-HASH_BYTES:]
        raw_order, raw_escrow = values.get(keys.order(order_id)), values.get(
            keys.escrow(order_id))
        if raw_order is None or raw_escrow is None:
            continue
        raw_dispute = values.get(keys.dispute(order_id))
        out.append(ProvenOrder(order_id, decode_order(raw_order), decode_escrow(raw_escrow),
                               decode_dispute(raw_dispute) if raw_dispute else None, proven,
                               block_time_ms).json())
    return out, proven, block_time_ms


def truncated(proven: Proven, address: bytes, side: int) -> bool:
    """Whether a `/mall/orders` answer hit the query's limit (more orders than it lists)."""
    return len(proven.table(keys.orders_of(address, side)[0])) >= MALL_QUERY_ITEMS_MAX


def list_options(function: Any) -> Any:
    """`--buyer A` or `--merchant A` (exactly one)."""
    function = click.option("--merchant", "merchant_address", metavar="ADDRESS",
                            help="The merchant's orders (cm1... or a key name).")(function)
    return click.option("--buyer", "buyer_address", metavar="ADDRESS",
                        help="The buyer's orders (cm1... or a key name).")(function)


def side_of(obj: Context, buyer: str | None, merchant: str | None) -> tuple[bytes, int]:
    if (buyer is None) == (merchant is None):
        raise click.UsageError("give exactly one of --buyer and --merchant")
    if buyer is not None:
        return address_argument(obj, buyer), keys.SIDE_BUYER
    assert merchant is not None
    return address_argument(obj, merchant), keys.SIDE_MERCHANT


@mall.group()
def order() -> None:
    """Order products into escrow with a sealed shipping address; show and list orders."""


@order.command("place", short_help="Order a product into escrow; prints the order id.")
@click.argument("product_id", metavar="PRODUCT")
@click.option("--quantity", type=click.IntRange(1, ORDER_QUANTITY_MAX), default=1,
              show_default=True, help="Units to buy.")
@click.option("--address", "address_text", metavar="TEXT",
              help="Shipping address (sealed to the merchant's key before it leaves this "
                   "machine).")
@click.option("--address-file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Read the shipping address from this file (UTF-8).")
@click.option("--max-price", type=click.IntRange(1, U64_MAX), default=None,
              help="Highest unit price accepted [default: the price shown now, so a raise "
                   "in the meantime fails the order instead of charging more].")
@tx_options
@click.pass_obj
def order_place(obj: Context, product_id: str, quantity: int, address_text: str | None,
                address_file: Path | None, max_price: int | None, tx: TxOptions) -> None:
    """Order --quantity of PRODUCT as --from, paying into escrow (ORDER_PLACE); prints the
    order id. Stock is reserved in the same tx."""
    if (address_text is None) == (address_file is None):
        raise click.UsageError("give exactly one of --address and --address-file")
    shipping = address_text if address_file is None else \
        address_file.read_text(encoding="utf-8").strip()
    raw_id = hex_id(product_id, "product id")
    keypair = load_signer(obj, tx)
    with connect(tx.node_address, tx.token) as client:
        listing, _ = proven_product(client, raw_id)
        merchant = party_entries(client, listing.merchant)
    party = decode_party(merchant.get(keys.party(listing.merchant)) or b"")
    sealed = seal_address(party.public_key, shipping or "")
    placement = Placement(raw_id, quantity, listing.price if max_price is None else max_price,
                          sealed)
    payload = build_payload("order", placement.encode, decode_placement)
    send_tx(obj, tx, TX_MALL_ORDER_PLACE, payload, keypair=keypair,
            named=lambda signed: {"order_id": signed.tx_id.hex(),
                                  "amount": str(listing.price * quantity)})


@order.command("show", short_help="An order with its escrow, proven (--key: the address).")
@click.argument("order_id", metavar="ORDER")
@click.option("--key", "key_name", metavar="KEY",
              help="The merchant's key: open the sealed shipping address with it.")
@click.option("--key-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Key directory [default: HOME/keys].")
@click.option("--passphrase-file", type=click.Path(dir_okay=False, exists=True,
                                                   path_type=Path),
              help="Passphrase of an encrypted key.")
@node_options
@click.pass_obj
def order_show(obj: Context, order_id: str, key_name: str | None, key_dir: Path | None,
               passphrase_file: Path | None, node_address: str, token: str) -> None:
    """ORDER with its escrow and dispute, proven against the state root; with --key (the
    merchant's), the shipping address opened."""
    raw_id = hex_id(order_id, "order id")
    keypair = load_key(obj, key_name, key_dir, passphrase_file) if key_name else None
    with connect(node_address, token) as client:
        found = proven_order(client, raw_id)
    data = found.json()
    pairs = view_pairs(data)
    if keypair is not None:
        try:
            opened = open_address(keypair, found.order.sealed_address)
        except (nacl.exceptions.CryptoError, UnicodeDecodeError):
            raise InvalidKey(f"the sealed address does not open with key {key_name!r} "
                             f"({encode_address(keypair.address)}): only the merchant's key "
                             "opens it") from None
        data["shipping_address"] = opened
        pairs.append(("shipping address", opened))
    obj.emit(lines(pairs) + "\n" + found.proven.line(), {**data, "proof": found.proven.json()})


@order.command("list", short_help="A buyer's or merchant's orders, proven.")
@list_options
@click.option("--open", "only_open", is_flag=True, help="Only orders whose escrow is open.")
@node_options
@click.pass_obj
def order_list(obj: Context, buyer_address: str | None, merchant_address: str | None,
               only_open: bool, node_address: str, token: str) -> None:
    """A buyer's or a merchant's orders, oldest first, with their escrow state, proven
    against the state root."""
    address, side = side_of(obj, buyer_address, merchant_address)
    with connect(node_address, token) as client:
        orders, proven, _ = party_orders(client, address, side)
    if only_open:
        orders = [o for o in orders if o["escrow"]["open"]]
    rows = [f"{o['order_id']}  h{o['placed_height']:<6} {o['escrow']['state']:<9} "
            f"{o['quantity']} x {o['unit_price']} = {o['amount']}  product "
            f"{o['product_id'][:16]}" for o in orders]
    rows.append(f"{len(orders)} orders; {proven.line()}")
    if truncated(proven, address, side):
        rows.append(f"truncated: the node lists the oldest {MALL_QUERY_ITEMS_MAX} orders")
    obj.emit("\n".join(rows), {"address": encode_address(address),
                               "side": "buyer" if side == keys.SIDE_BUYER else "merchant",
                               "orders": orders, "truncated": truncated(proven, address, side),
                               "proof": proven.json()})


@order.command("cancel", short_help="Cancel an unshipped order (merchant): refund.")
@click.argument("order_id", metavar="ORDER")
@tx_options
@click.pass_obj
def order_cancel(obj: Context, order_id: str, tx: TxOptions) -> None:
    """Cancel ORDER before shipping, as its merchant (ORDER_CANCEL): a full refund, the stock
    restored."""
    ref = OrderRef(hex_id(order_id, "order id"))
    send_tx(obj, tx, TX_MALL_ORDER_CANCEL, build_payload("order", ref.encode, decode_order_ref))
