"""What the product page shows of the mall: listings best first, a listing with its merchant,
certifications and items, an item by its id, and the names of the parties in a history.

Read functions over committed state (`StateReader`), bounded by the `PAGE_*`
limits, returning the mall's own decoded values; the node turns them into the
page's JSON (docs/page.md section 2). Until the trust rules rank listings, the
top list is by units sold and a search matches titles and categories; a
`TrustView` (docs/page.md section 2.2) replaces both, and adds the merchant's
reputation and a listing's reviews, when the node is given one.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from ..constants import (
    ADDRESS_BYTES,
    HASH_BYTES,
    PAGE_ITEMS_MAX,
    PAGE_ORDERS_SCAN_MAX,
    PAGE_PRODUCTS_SCAN_MAX,
    TABLE_MALL_PRODUCTS,
)
from ..errors import ItemNotFound, ProductNotFound
from ..genesis import MallGenesis
from . import keys
from .codec import NO_ID, StateReader, check_uri
from .escrow import load_escrow
from .items import Item, load_item
from .order_record import load_order
from .parties import Party, decode_cert, load_party
from .products import PRODUCT_ACTIVE, Product, decode_product
from .vocab import role_names

CERT_ACTIVE = 1
_HEX_KEY = re.compile(r"[0-9a-f]{64}")


class Listing(NamedTuple):
    """A listing as the page shows it: its id and the decoded product."""

    product_id: bytes
    product: Product


class Certificate(NamedTuple):
    """An active certification of a merchant: the certifier, its genesis name, the brand."""

    certifier: bytes
    certifier_name: str
    brand: str
    certified_height: int


class Reputation(NamedTuple):
    """A merchant's standing as the trust rules score it: `score` out of `scale`."""

    score: int
    scale: int
    reviews: int


class Reply(NamedTuple):
    text: str
    height: int


class Review(NamedTuple):
    """One review of a listing, with the merchant's reply if there is one."""

    order_id: bytes
    author: bytes
    rating: int  # 1..5
    text: str
    height: int
    reply: Reply | None


class TrustView(Protocol):
    """What the trust rules give the page (docs/page.md section 2.2): their ranking, search,
    reputation and reviews over the same committed state. A node without one ranks by
    sales and shows no reputation or reviews."""

    def top(self, state: StateReader, limit: int) -> list[bytes]:
        """Product ids of the best-ranked active listings, best first."""
        ...

    def search(self, state: StateReader, query: str, limit: int) -> list[bytes]:
        """Product ids of the listings matching `query`, best first."""
        ...

    def reputation(self, state: StateReader, merchant: bytes) -> Reputation | None:
        """The merchant's score; None before it has one."""
        ...

    def reviews(self, state: StateReader, product_id: bytes, limit: int) -> list[Review]:
        """The listing's reviews, newest first, with replies."""
        ...


@dataclass(frozen=True, slots=True)
class Storefront:
    """The page's reads over committed state; `trust` switches ranking and adds standing."""

    mall: MallGenesis
    trust: TrustView | None = None

    @property
    def ranking(self) -> str:
        """How `top` orders listings: "trust" or "sales"."""
        return "sales" if self.trust is None else "trust"

    def top(self, state: StateReader, limit: int) -> list[Listing]:
        """The top `limit` active listings (by rank, or by units sold then newest)."""
        if self.trust is not None:
            return _listings(state, self.trust.top(state, limit))
        listings = [listing for listing in _active_listings(state)]
        listings.sort(key=lambda x: (-x.product.sold, -x.product.listed_height, x.product_id))
        return listings[:limit]

    def search(self, state: StateReader, query: str, limit: int) -> list[Listing]:
        """Active listings matching `query`: by rank, or (no trust view) every listing whose
        title or category holds each word of the query, case-folded, by sales."""
        if self.trust is not None:
            return _listings(state, self.trust.search(state, query, limit))
        words = query.casefold().split()
        found = [listing for listing in _active_listings(state)
                 if all(word in f"{listing.product.title} {listing.product.category}".casefold()
                        for word in words)]
        found.sort(key=lambda x: (-x.product.sold, -x.product.listed_height, x.product_id))
        return found[:limit]

    def certificates(self, state: StateReader, merchant: bytes) -> list[Certificate]:
        """The merchant's active certifications, by certifier then brand."""
        start, end = keys.prefix_range(keys.certs_of(merchant))
        found = []
        for key, value in state.scan(start, end, PAGE_ITEMS_MAX):
            record = decode_cert(value)
            if record.status != CERT_ACTIVE:
                continue
            certifier = key[1 + ADDRESS_BYTES:1 + 2 * ADDRESS_BYTES]
            brand = key[2 + 2 * ADDRESS_BYTES:].decode("utf-8")
            known = self.mall.certifier(certifier)
            found.append(Certificate(certifier, known.name if known else "an unknown certifier",
                                     brand, record.certified_height))
        return found

    def reputation(self, state: StateReader, merchant: bytes) -> Reputation | None:
        return None if self.trust is None else self.trust.reputation(state, merchant)

    def reviews(self, state: StateReader, product_id: bytes, limit: int) -> list[Review]:
        return [] if self.trust is None else self.trust.reviews(state, product_id, limit)


def _active_listings(state: StateReader) -> list[Listing]:
    start = bytes([TABLE_MALL_PRODUCTS])
    end = bytes([TABLE_MALL_PRODUCTS + 1])
    listings = []
    for key, value in state.scan(start, end, PAGE_PRODUCTS_SCAN_MAX):
        product = decode_product(value)
        if product.status == PRODUCT_ACTIVE:
            listings.append(Listing(key[1:], product))
    return listings


def _listings(state: StateReader, product_ids: Sequence[bytes]) -> list[Listing]:
    found = []
    for product_id in product_ids:
        raw = state.get(keys.product(product_id))
        if raw is not None:
            found.append(Listing(product_id, decode_product(raw)))
    return found


def listing(state: StateReader, product_id: bytes) -> Product:
    """The listing `product_id` (delisted ones too); ProductNotFound if there is none."""
    raw = state.get(keys.product(product_id))
    if raw is None:
        raise ProductNotFound(f"no product {product_id.hex()}")
    return decode_product(raw)


def shipped_items(state: StateReader, merchant: bytes, product_id: bytes,
                  limit: int = PAGE_ITEMS_MAX) -> list[str]:
    """The URIs of the items (or the cases) shipped for the listing's orders: what a buyer
    of it received, each with a history. Reads the merchant's first PAGE_ORDERS_SCAN_MAX
    orders, oldest first; each item once."""
    start, end = keys.prefix_range(keys.orders_of(merchant, keys.SIDE_MERCHANT))
    found: list[str] = []
    for key, _ in state.scan(start, end, PAGE_ORDERS_SCAN_MAX):
        order_id = key[-HASH_BYTES:]
        order = load_order(state, order_id)
        if order is None or order.product_id != product_id:
            continue
        escrow = load_escrow(state, order_id)
        if escrow is None or escrow.item_key == NO_ID:
            continue
        item = load_item(state, escrow.item_key)
        if item is not None and item.uri not in found:
            found.append(item.uri)
            if len(found) >= limit:
                break
    return found


def item_key_of(text: str) -> bytes:
    """The item key named by `text`: its URI, or the 32-byte key as 64 lower-case hex
    digits; ValueError for anything else."""
    if _HEX_KEY.fullmatch(text):
        return bytes.fromhex(text)
    return keys.item_key(check_uri(text, "item"))


def find_item(state: StateReader, text: str) -> tuple[bytes, Item]:
    """(key, item) of the item `text` names (URI or hex key); ItemNotFound if none was
    recorded (or the text names no item)."""
    try:
        item_key = item_key_of(text)
    except ValueError:
        raise ItemNotFound(f"no item {text[:80]!r}: not an item URI or key") from None
    item = load_item(state, item_key)
    if item is None:
        raise ItemNotFound(f"no item {text[:80]!r} has been recorded")
    return item_key, item


def party_label(state: StateReader, mall: MallGenesis, address: bytes) -> tuple[str, str] | None:
    """(name, roles) of a registered party or a genesis certifier, None for other accounts.
    Labels only: the page shows the address beside them."""
    party: Party | None = load_party(state, address)
    if party is not None:
        return party.name, ", ".join(role_names(party.roles))
    certifier = mall.certifier(address)
    return None if certifier is None else (certifier.name, "certifier")


# RFC 3986 pchar minus '%': what an item URI keeps unescaped in a page path segment.
_PATH_SAFE = ":@!$&'()*+,;=-._~"


def item_page_path(item_uri: str, validator_set_hash: bytes | None = None) -> str:
    """The page path of an item (docs/page.md section 1): `/item/<uri, percent-encoded as
    one segment>`, with `?vs=<hex>` naming the validator set a tag was printed for."""
    path = "/item/" + urllib.parse.quote(item_uri, safe=_PATH_SAFE)
    return path if validator_set_hash is None else f"{path}?vs={validator_set_hash.hex()}"
