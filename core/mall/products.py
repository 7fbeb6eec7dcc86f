"""Listings: a merchant lists a product, updates its price, stock and metadata, delists it.

A product is `0x15 || product id`, the id being the listing tx's id; the
merchant's index `0x16 || merchant || product id` lists its products. Prices
are integers in the smallest unit; media stay off chain, named by the BLAKE3
hash of their metadata document (docs/mall.md section 5).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import NamedTuple

from ..constants import (
    DECODE_CACHE_ENTRIES,
    HASH_BYTES,
    MALL_CATEGORY_BYTES_MAX,
    MALL_TITLE_BYTES_MAX,
    MALL_VERSION,
)
from ..errors import DecodeError, NotOwner, ProductDelisted, ProductNotFound
from . import keys
from .codec import (
    MARK,
    FieldReader,
    MallState,
    StateReader,
    TxContext,
    address_text,
    check_text,
    check_token,
    decoded_values,
    emit,
    payload_decoder,
    payload_reader,
    put_text,
    writer,
)
from .parties import require_party
from .vocab import ROLE_MERCHANT

PRODUCT_ACTIVE = 1
PRODUCT_DELISTED = 2


_PRODUCT = struct.Struct(">B20sBQIQQQ32s")  # version .. metadata hash; then the texts


class Product(NamedTuple):
    """A listing (the value under `keys.product(id)`)."""

    merchant: bytes
    status: int
    price: int
    stock: int
    sold: int  # units reserved by orders not refunded before shipping
    listed_height: int
    updated_height: int
    metadata_hash: bytes
    title: str
    category: str

    def encode(self) -> bytes:
        title, category = self.title.encode(), self.category.encode()
        if len(title) > MALL_TITLE_BYTES_MAX or len(category) > MALL_CATEGORY_BYTES_MAX:
            raise ValueError("product text over its limit")
        return b"".join((_PRODUCT.pack(MALL_VERSION, *self[:8]), bytes([len(title)]), title,
                         bytes([len(category)]), category))


@decoded_values(DECODE_CACHE_ENTRIES)
def decode_product(value: bytes) -> Product:
    reader = FieldReader(value, "product", DecodeError, _PRODUCT)
    product = Product(*reader.head[1:],
                      reader.text(MALL_TITLE_BYTES_MAX, "title", check_text, low=1),
                      reader.text(MALL_CATEGORY_BYTES_MAX, "category", check_token, low=1))
    reader.finish()
    if product.status not in (PRODUCT_ACTIVE, PRODUCT_DELISTED):
        raise DecodeError(f"product: status {product.status}")
    return product


def load_product(state: StateReader, product_id: bytes) -> Product | None:
    raw = state.get(keys.product(product_id))
    return None if raw is None else decode_product(raw)


def require_product(state: StateReader, product_id: bytes) -> Product:
    product = load_product(state, product_id)
    if product is None:
        raise ProductNotFound(f"no product {product_id.hex()}")
    return product


def save_product(state: MallState, product_id: bytes, product: Product) -> None:
    state.set(keys.product(product_id), decode_product.remember(product.encode(), product))


@dataclass(frozen=True, slots=True)
class Listing:
    """PRODUCT_LIST payload."""

    price: int
    stock: int
    metadata_hash: bytes
    title: str
    category: str

    def encode(self) -> bytes:
        out = writer().u64(self.price).u32(self.stock).fixed(self.metadata_hash, HASH_BYTES)
        put_text(out, self.title, MALL_TITLE_BYTES_MAX)
        return put_text(out, self.category, MALL_CATEGORY_BYTES_MAX).getvalue()


@payload_decoder
def decode_listing(payload: bytes) -> Listing:
    reader = payload_reader(payload, "listing")
    listing = Listing(reader.u64("price"), reader.u32("stock"), reader.hash("metadata hash"),
                      reader.text(MALL_TITLE_BYTES_MAX, "title", check_text, low=1),
                      reader.text(MALL_CATEGORY_BYTES_MAX, "category", check_token, low=1))
    reader.finish()
    if listing.price == 0:
        raise reader.fail("the price is 0")
    return listing


@dataclass(frozen=True, slots=True)
class ProductUpdate:
    """PRODUCT_UPDATE payload: new price, stock and metadata hash of a listing."""

    product_id: bytes
    price: int
    stock: int
    metadata_hash: bytes

    def encode(self) -> bytes:
        out = writer().fixed(self.product_id, HASH_BYTES).u64(self.price).u32(self.stock)
        return out.fixed(self.metadata_hash, HASH_BYTES).getvalue()


@payload_decoder
def decode_product_update(payload: bytes) -> ProductUpdate:
    reader = payload_reader(payload, "product update")
    update = ProductUpdate(reader.hash("product id"), reader.u64("price"), reader.u32("stock"),
                           reader.hash("metadata hash"))
    reader.finish()
    if update.price == 0:
        raise reader.fail("the price is 0")
    return update


@dataclass(frozen=True, slots=True)
class ProductRef:
    """PRODUCT_DELIST payload (and any payload that is just a 32-byte id)."""

    product_id: bytes

    def encode(self) -> bytes:
        return writer().fixed(self.product_id, HASH_BYTES).getvalue()


@payload_decoder
def decode_product_ref(payload: bytes) -> ProductRef:
    reader = payload_reader(payload, "product")
    ref = ProductRef(reader.hash("product id"))
    reader.finish()
    return ref


def _owned_active(state: StateReader, ctx: TxContext, product_id: bytes) -> Product:
    product = require_product(state, product_id)
    if product.merchant != ctx.sender:
        raise NotOwner(f"product {product_id.hex()} belongs to "
                       f"{address_text(product.merchant)}")
    if product.status != PRODUCT_ACTIVE:
        raise ProductDelisted(f"product {product_id.hex()} is delisted")
    return product


def list_product(state: MallState, ctx: TxContext) -> None:
    """PRODUCT_LIST (docs/mall.md 5.1): the product id is the tx id."""
    listing = decode_listing(ctx.tx.payload)
    require_party(state, ctx.sender, ROLE_MERCHANT)
    product_id = ctx.tx.tx_id
    product = Product(ctx.sender, PRODUCT_ACTIVE, listing.price, listing.stock, 0, ctx.height,
                      ctx.height, listing.metadata_hash, listing.title, listing.category)
    save_product(state, product_id, product)
    state.set(keys.merchant_product(ctx.sender, product_id), MARK)
    _event(ctx, "mall.product", product_id, product)


def update_product(state: MallState, ctx: TxContext) -> None:
    """PRODUCT_UPDATE (docs/mall.md 5.2)."""
    update = decode_product_update(ctx.tx.payload)
    product = _owned_active(state, ctx, update.product_id)
    product = product._replace(price=update.price, stock=update.stock,
                      metadata_hash=update.metadata_hash, updated_height=ctx.height)
    save_product(state, update.product_id, product)
    _event(ctx, "mall.product", update.product_id, product)


def delist_product(state: MallState, ctx: TxContext) -> None:
    """PRODUCT_DELIST (docs/mall.md 5.3): no new orders; open orders run their course."""
    ref = decode_product_ref(ctx.tx.payload)
    product = _owned_active(state, ctx, ref.product_id)
    product = product._replace(status=PRODUCT_DELISTED, updated_height=ctx.height)
    save_product(state, ref.product_id, product)
    _event(ctx, "mall.product", ref.product_id, product)


def _event(ctx: TxContext, kind: str, product_id: bytes, product: Product) -> None:
    emit(ctx, kind, ("product", product_id.hex()), ("merchant", address_text(product.merchant)),
         ("price", str(product.price)), ("stock", str(product.stock)),
         ("status", "active" if product.status == PRODUCT_ACTIVE else "delisted"))
