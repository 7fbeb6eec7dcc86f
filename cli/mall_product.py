"""`chainmall mall product add|update|delist|show|list`: a merchant's listings.

A listing's id is the id of the tx that listed it; prices are integers in the
smallest unit; media stay off chain, named by the BLAKE3 hash of their
metadata document (docs/mall.md section 5). `show` and `list` print only what
they proved against the state root.
"""

from __future__ import annotations

from pathlib import Path

import click
from chainmall.core.address import encode_address
from chainmall.core.constants import (
    PRODUCT_STOCK_MAX,
    TX_MALL_PRODUCT_DELIST,
    TX_MALL_PRODUCT_LIST,
    TX_MALL_PRODUCT_UPDATE,
    U64_MAX,
)
from chainmall.core.errors import NotFound
from chainmall.core.mall import keys
from chainmall.core.mall.products import (
    Listing,
    Product,
    ProductRef,
    ProductUpdate,
    decode_listing,
    decode_product,
    decode_product_ref,
    decode_product_update,
)
from chainmall.core.rpc.client import BlockingClient

from .context import Context
from .mall_args import build_payload, content_hash, hex_id
from .mall_group import mall
from .mall_view import lines, product_json, product_lines, product_row
from .node_client import (
    TxOptions,
    address_argument,
    connect,
    load_signer,
    node_options,
    send_tx,
    tx_options,
)
from .proven import Proven, prove_absent, proven_query

_METADATA_FILE = click.Path(dir_okay=False, exists=True, path_type=Path)


def proven_product(client: BlockingClient, product_id: bytes) -> tuple[Product, Proven]:
    """The listing, proven; NotFound (its absence proven) if there is none."""
    proven = proven_query(client, "/mall/product", product_id)
    value = proven.get(keys.product(product_id))
    if value is None:
        absent = prove_absent(client, keys.product(product_id))
        raise NotFound(f"no product {product_id.hex()} (absence proven at height "
                       f"{absent.height})")
    return decode_product(value), proven


@mall.group()
def product() -> None:
    """List products for sale, update price and stock, delist; show listings verified."""


@product.command("add", short_help="List a product; prints its product id.")
@click.option("--price", type=click.IntRange(1, U64_MAX), required=True,
              help="Unit price in the smallest unit.")
@click.option("--stock", type=click.IntRange(0, PRODUCT_STOCK_MAX), required=True,
              help="Units for sale.")
@click.option("--title", required=True, help="Title (1-128 bytes of printable UTF-8).")
@click.option("--category", required=True,
              help="Category path of a-z, 0-9, '-', '_', '/' (e.g. jewellery/rings).")
@click.option("--metadata", type=_METADATA_FILE,
              help="Off-chain metadata document (media, description): its BLAKE3 hash goes "
                   "on chain.")
@click.option("--metadata-hash", metavar="HEX", help="The metadata document's BLAKE3 hash.")
@tx_options
@click.pass_obj
def product_add(obj: Context, price: int, stock: int, title: str, category: str,
                metadata: Path | None, metadata_hash: str | None, tx: TxOptions) -> None:
    """List a product as the --from merchant (PRODUCT_LIST); prints its product id."""
    listing = Listing(price, stock, content_hash(metadata, metadata_hash, "metadata"), title,
                      category)
    payload = build_payload("listing", listing.encode, decode_listing)
    send_tx(obj, tx, TX_MALL_PRODUCT_LIST, payload,
            named=lambda signed: {"product_id": signed.tx_id.hex()})


@product.command("update", short_help="Change a listing's price, stock or metadata.")
@click.argument("product_id", metavar="PRODUCT")
@click.option("--price", type=click.IntRange(1, U64_MAX), default=None,
              help="New unit price [default: unchanged].")
@click.option("--stock", type=click.IntRange(0, PRODUCT_STOCK_MAX), default=None,
              help="Units left to sell (absolute) [default: unchanged].")
@click.option("--metadata", type=_METADATA_FILE, help="New metadata document.")
@click.option("--metadata-hash", metavar="HEX", help="New metadata hash.")
@tx_options
@click.pass_obj
def product_update(obj: Context, product_id: str, price: int | None, stock: int | None,
                   metadata: Path | None, metadata_hash: str | None, tx: TxOptions) -> None:
    """Change PRODUCT's price, stock or metadata (PRODUCT_UPDATE); what is not given keeps
    its current (proven) value."""
    raw_id = hex_id(product_id, "product id")
    if price is None and stock is None and metadata is None and metadata_hash is None:
        raise click.UsageError("give --price, --stock or --metadata to change")
    keypair = load_signer(obj, tx)
    with connect(tx.node_address, tx.token) as client:
        current, _ = proven_product(client, raw_id)
    new_hash = current.metadata_hash
    if metadata is not None or metadata_hash is not None:
        new_hash = content_hash(metadata, metadata_hash, "metadata")
    update = ProductUpdate(raw_id, current.price if price is None else price,
                           current.stock if stock is None else stock, new_hash)
    payload = build_payload("product update", update.encode, decode_product_update)
    send_tx(obj, tx, TX_MALL_PRODUCT_UPDATE, payload, keypair=keypair)


@product.command("delist", short_help="Delist a product for good.")
@click.argument("product_id", metavar="PRODUCT")
@tx_options
@click.pass_obj
def product_delist(obj: Context, product_id: str, tx: TxOptions) -> None:
    """Delist PRODUCT for good (PRODUCT_DELIST): no new orders; open ones run their course."""
    ref = ProductRef(hex_id(product_id, "product id"))
    send_tx(obj, tx, TX_MALL_PRODUCT_DELIST, build_payload("product", ref.encode,
                                                           decode_product_ref))


@product.command("show", short_help="A listing, proven against the state root.")
@click.argument("product_id", metavar="PRODUCT")
@node_options
@click.pass_obj
def product_show(obj: Context, product_id: str, node_address: str, token: str) -> None:
    """A listing: merchant, price, stock, sales, metadata hash, proven against the state
    root."""
    raw_id = hex_id(product_id, "product id")
    with connect(node_address, token) as client:
        found, proven = proven_product(client, raw_id)
    data = product_json(raw_id, found)
    obj.emit(lines(product_lines(data)) + "\n" + proven.line(),
             {**data, "proof": proven.json()})


@product.command("list", short_help="A merchant's listings, proven.")
@click.option("--merchant", "merchant_address", required=True, metavar="ADDRESS",
              help="The merchant (cm1... or a key name).")
@click.option("--all", "include_delisted", is_flag=True, help="Delisted products too.")
@node_options
@click.pass_obj
def product_list(obj: Context, merchant_address: str, include_delisted: bool,
                 node_address: str, token: str) -> None:
    """A merchant's listings (active ones unless --all), proven against the state root."""
    merchant = address_argument(obj, merchant_address)
    with connect(node_address, token) as client:
        proven = proven_query(client, "/mall/products", merchant)
    products = [product_json(key[1:], decode_product(value))
                for key, value in proven.table(keys.product(bytes(32))[0])]
    if not include_delisted:
        products = [p for p in products if p["status"] == "active"]
    rows = [product_row(p) for p in products]
    rows.append(f"{len(products)} products of {encode_address(merchant)}; {proven.line()}")
    obj.emit("\n".join(rows), {"merchant": encode_address(merchant), "products": products,
                               "proof": proven.json()})
