"""The product page's JSON-RPC methods: `mall.info`, `mall.products`, `mall.product`,
`mall.item_trace` (docs/page.md section 2), and what they need from a node.

A node that serves the page implements `PageServices` beside `NodeServices`
and adds these methods to its table (`add_page_methods`); the results are
built by the node, JSON-ready, in one read of its committed state. Here the
parameters are checked (-32602 naming the one at fault) before the node does
any work.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from ..constants import (
    EPCIS_URI_BYTES_MAX,
    HASH_BYTES,
    PAGE_PRODUCTS_LIMIT_MAX,
    PAGE_QUERY_CHARS_MAX,
)
from ..errors import InvalidInput
from . import codec
from .methods import Call, Method, MethodTable, Param

PRODUCTS_LIMIT_DEFAULT = 24


@runtime_checkable
class PageServices(Protocol):
    """The page's reads; each result is the JSON object docs/page.md section 2 shows, and
    every call reads one committed height."""

    async def mall_info(self) -> dict[str, Any]:
        """The chain, the currency's display, how the top list is ranked, the latest
        height and the validator set hash a tag's link should carry."""
        ...

    async def mall_products(self, query: str, limit: int) -> dict[str, Any]:
        """The top listings (empty query) or those matching `query`, best first."""
        ...

    async def mall_product(self, product_id: bytes) -> dict[str, Any]:
        """One listing with its merchant, certifications, items and reviews (ProductNotFound)."""
        ...

    async def mall_item_trace(self, item: str) -> dict[str, Any]:
        """An item's whole history with the state proofs and the certified block that check
        it (ItemNotFound)."""
        ...


def _query(value: Any, name: str) -> str:
    return codec.parse_text(value, name, PAGE_QUERY_CHARS_MAX).strip()


def _limit(value: Any, name: str) -> int:
    limit = codec.parse_count(value, name, PAGE_PRODUCTS_LIMIT_MAX)
    if limit < 1:
        raise InvalidInput(f"{name}: expected an integer in [1, {PAGE_PRODUCTS_LIMIT_MAX}]")
    return limit


def _product_id(value: Any, name: str) -> bytes:
    return codec.parse_hex(value, name, HASH_BYTES)


def _item(value: Any, name: str) -> str:
    text = codec.parse_text(value, name, EPCIS_URI_BYTES_MAX)
    if not text:
        raise InvalidInput(f"{name}: an item URI or its 64-digit hex key")
    return text


def _services(call: Call) -> PageServices:
    services = call.services
    assert isinstance(services, PageServices), "add_page_methods needs PageServices"
    return services


async def _mall_info(call: Call) -> Any:
    return await _services(call).mall_info()


async def _mall_products(call: Call, query: str, limit: int) -> Any:
    return await _services(call).mall_products(query, limit)


async def _mall_product(call: Call, id: bytes) -> Any:
    return await _services(call).mall_product(id)


async def _mall_item_trace(call: Call, item: str) -> Any:
    return await _services(call).mall_item_trace(item)


def add_page_methods(table: MethodTable) -> MethodTable:
    """Add the page's four methods to `table`; the same table. Like every method they need
    the bearer token on a node that has one (docs/rpc.md section 1)."""
    for method in (
        Method("mall.info", _mall_info, (), "the mall as the page shows it"),
        Method("mall.products", _mall_products,
               (Param("query", _query, ""), Param("limit", _limit, PRODUCTS_LIMIT_DEFAULT)),
               "top listings, or those matching a query"),
        Method("mall.product", _mall_product, (Param("id", _product_id),),
               "a listing with its merchant, certifications, items, reviews"),
        Method("mall.item_trace", _mall_item_trace, (Param("item", _item),),
               "an item's history with the proofs that check it"),
    ):
        table.add(method)
    return table
