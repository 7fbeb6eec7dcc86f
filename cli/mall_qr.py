"""`chainmall mall product qr ITEM`: the QR code of an item's product page, for its tag.

The code holds `<page address>/item/<item URI>?vs=<validator set hash>`
(docs/page.md section 3.5): whoever scans the tag opens the item's history and
the page refuses any validator set but the one named, so a node that invents
its own validators cannot pass a forged history off as the chain's. The
hash comes from the node (`mall.info`), or from `--vs` with no node at all
when ITEM is a URI. SVG (the default) or PNG, drawn by segno.
"""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path
from typing import Any

import click
import segno
from chainmall.core.errors import InvalidInput, ItemNotFound
from chainmall.core.mall.items import decode_item
from chainmall.core.mall.keys import item as item_entry_key
from chainmall.core.mall.storefront import item_key_of, item_page_path
from chainmall.core.rpc.client import BlockingClient

from .chain import node_options
from .context import Context
from .mall_product import product

PAGE_ADDRESS_DEFAULT = "http://127.0.0.1:8646"
QR_ERROR_LEVEL = "m"  # medium: a scuffed tag still reads
SVG_SCALE = 4
PNG_SCALE = 8
QUIET_ZONE_MODULES = 4
_HEX_HASH = re.compile(r"[0-9a-f]{64}")


def tag_link(page_address: str, item_uri: str, validator_set_hash: bytes) -> str:
    """The link a tag carries (docs/page.md section 3.5)."""
    return page_address.rstrip("/") + item_page_path(item_uri, validator_set_hash)


def qr_bytes(link: str, kind: str) -> bytes:
    """The QR code of `link` as an SVG document or a PNG image (a regular QR code, never a
    Micro QR, error correction M, a quiet zone of 4 modules)."""
    code = segno.make_qr(link, error=QR_ERROR_LEVEL)
    out = io.BytesIO()
    if kind == "svg":
        code.save(out, kind="svg", scale=SVG_SCALE, border=QUIET_ZONE_MODULES,
                  title=link, xmldecl=True)
    else:
        code.save(out, kind="png", scale=PNG_SCALE, border=QUIET_ZONE_MODULES)
    return out.getvalue()


def _from_node(node_address: str, token: str, item: str) -> tuple[str, bytes]:
    """(item URI, validator set hash) from the node: the item must have been recorded."""
    with BlockingClient(node_address, token) as client:
        info = client.call("mall.info", {})
        key = item_key_of(item)
        found = client.call("state_get", {"key": item_entry_key(key).hex()})
        value = found["entries"][0]["value"] if found.get("entries") else None
        if value is None:
            raise ItemNotFound(f"no item {item[:80]!r} has been recorded on this chain")
        return decode_item(bytes.fromhex(value)).uri, bytes.fromhex(info["validator_set_hash"])


@product.command("qr", short_help="The QR code of an item's tag: a link to its product page.")
@click.argument("item")
@click.option("--svg", "kind", flag_value="svg", default=True, help="An SVG document (default).")
@click.option("--png", "kind", flag_value="png", help="A PNG image.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write it to FILE [default: standard output; a PNG needs FILE or a pipe].")
@click.option("--page-address", default=None,
              help="The product page's address printed on the tag, e.g. https://shop.example "
                   "[default: the node's HTTP address, else " + PAGE_ADDRESS_DEFAULT + "].")
@click.option("--vs", "validator_set", default=None,
              help="The validator set hash (64 hex digits) instead of asking the node; with an "
                   "item URI, no node is needed.")
@node_options
@click.pass_obj
def qr(obj: Context, item: str, kind: str, out: Path | None, page_address: str | None,
       validator_set: str | None, node_address: str, token: str) -> None:
    """The QR code for ITEM's tag (ITEM: its URI, or its 64-digit hex key): a link to its
    product page that names the validators to check its history against."""
    try:
        item_key_of(item)
    except ValueError:
        raise InvalidInput(f"ITEM: {item[:80]!r} is not an item URI or a 64-digit hex key") \
            from None
    if validator_set is not None and not _HEX_HASH.fullmatch(validator_set):
        raise InvalidInput("--vs: expected 64 lower-case hex digits")
    if validator_set is not None and not re.fullmatch(r"[0-9a-f]{64}", item):
        uri, vs = item, bytes.fromhex(validator_set)
    else:
        uri, vs = _from_node(node_address, token, item)
        if validator_set is not None and bytes.fromhex(validator_set) != vs:
            raise InvalidInput("--vs names another validator set than the node's")
    if page_address is None:
        page_address = node_address if node_address.startswith("http") else PAGE_ADDRESS_DEFAULT
    if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", page_address):
        raise InvalidInput(f"--page-address: {page_address!r} is not an http(s) address")
    link = tag_link(page_address, uri, vs)
    data = qr_bytes(link, kind)
    facts: dict[str, Any] = {"item": uri, "link": link, "validator_set_hash": vs.hex(),
                             "format": kind, "bytes": len(data)}
    if out is None:
        if kind == "png" and sys.stdout.isatty():
            raise InvalidInput("--png writes binary: give --out FILE or pipe it")
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    out.write_bytes(data)
    obj.emit(f"wrote {out} ({kind.upper()}, {len(data)} bytes): {link}",
             {**facts, "out": str(out)})
