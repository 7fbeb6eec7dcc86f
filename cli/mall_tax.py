"""`chainmall mall tax rate|report`: a jurisdiction's rate, and the audit of what was withheld.

`rate` is the tax authority's TAX_RATE_SET (docs/mall.md section 10). `report`
reads every settlement's tax record of a jurisdiction between two heights
(page by page), verifies each record's proof against the state root, and
adds the totals up on this machine: an authority audits the settlements
without trusting the merchant, or the node's arithmetic.
"""

from __future__ import annotations

from typing import Any

import click
from chainmall.core.constants import (
    BPS_DENOMINATOR,
    JURISDICTION_BYTES_MAX,
    MALL_QUERY_ITEMS_MAX,
    MALL_TAX_REPORT_PAGES_MAX,
    TX_MALL_TAX_RATE_SET,
    U64_MAX,
)
from chainmall.core.genesis import check_jurisdiction
from chainmall.core.mall import keys
from chainmall.core.mall.tax import (
    RateSetting,
    decode_rate_setting,
    decode_tax_rate,
    decode_tax_record,
)

from .context import Context
from .mall_args import build_payload
from .mall_group import mall
from .mall_view import tax_record_json
from .node_client import TxOptions, connect, node_options, send_tx, tx_options
from .proven import Proven, proven_query


def _jurisdiction(text: str) -> str:
    try:
        return check_jurisdiction(text)
    except ValueError as exc:
        raise ValueError(f"jurisdiction: {exc}") from None


@mall.group()
def tax() -> None:
    """Set a jurisdiction's tax rate (its authority); audit the tax withheld at settlement."""


@tax.command("rate", short_help="Set a jurisdiction's tax rate (its authority).")
@click.option("--jurisdiction", required=True, help="The jurisdiction code, e.g. IT.")
@click.option("--rate-bps", type=click.IntRange(0, BPS_DENOMINATOR), required=True,
              help="The rate in basis points (2200 = 22%), at most the genesis tax_rate_max_bps.")
@tx_options
@click.pass_obj
def tax_rate(obj: Context, jurisdiction: str, rate_bps: int, tx: TxOptions) -> None:
    """Set --jurisdiction's tax rate, signed by its tax authority (TAX_RATE_SET). Orders keep
    the rate in force when they were placed."""
    setting = RateSetting(_jurisdiction(jurisdiction), rate_bps)
    send_tx(obj, tx, TX_MALL_TAX_RATE_SET,
            build_payload("tax rate", setting.encode, decode_rate_setting))


def _report_data(jurisdiction: str, from_height: int, to_height: int) -> bytes:
    raw = jurisdiction.encode("ascii")
    if not 1 <= len(raw) <= JURISDICTION_BYTES_MAX:
        raise ValueError("jurisdiction: 1..16 bytes")
    return bytes([len(raw)]) + raw + from_height.to_bytes(8, "big") + to_height.to_bytes(8, "big")


@tax.command("report", short_help="Settlements and tax withheld, with proofs.")
@click.option("--jurisdiction", required=True, help="The jurisdiction code, e.g. IT.")
@click.option("--from", "from_height", type=click.IntRange(0, U64_MAX), default=0,
              show_default=True, help="First height (inclusive).")
@click.option("--to", "to_height", type=click.IntRange(0, U64_MAX), default=None,
              help="Last height (inclusive) [default: the node's latest].")
@click.option("--records/--totals-only", default=True, show_default=True,
              help="List each settlement, or only the totals.")
@node_options
@click.pass_obj
def tax_report(obj: Context, jurisdiction: str, from_height: int, to_height: int | None,
               records: bool, node_address: str, token: str) -> None:
    """The settlements of --jurisdiction from --from to --to (heights): each order's gross,
    tax and rate, the totals and each merchant's, every record proven against the state
    root and summed here."""
    code = _jurisdiction(jurisdiction)
    pages: list[Proven] = []
    found: dict[bytes, bytes] = {}
    truncated = False
    if to_height is not None and from_height > to_height:
        raise click.UsageError(f"--from {from_height} is above --to {to_height}")
    with connect(node_address, token) as client:
        if to_height is None:
            to_height = client.status().height
        if from_height > to_height:
            raise click.UsageError(f"--from {from_height} is above the node's height "
                                   f"{to_height}")
        start = from_height
        rate_entry = proven_query(client, "/mall/tax_rate", code.encode("ascii"))
        for _ in range(MALL_TAX_REPORT_PAGES_MAX):
            page = proven_query(client, "/mall/tax_report", _report_data(code, start, to_height))
            pages.append(page)
            new = {key: value for key, value in page if value is not None and key not in found}
            found.update(new)
            if len(page) < MALL_QUERY_ITEMS_MAX or not new:
                truncated = len(page) >= MALL_QUERY_ITEMS_MAX and not new
                break
            start = max(tax_record_json(key, decode_tax_record(value))["height"]
                        for key, value in new.items())
        else:
            truncated = True
    settlements = [tax_record_json(key, decode_tax_record(value))
                   for key, value in sorted(found.items())]
    by_merchant: dict[str, dict[str, int]] = {}
    for item in settlements:
        totals = by_merchant.setdefault(item["merchant"], {"settlements": 0, "gross": 0,
                                                           "tax": 0})
        totals["settlements"] += 1
        totals["gross"] += int(item["gross"])
        totals["tax"] += int(item["tax"])
    gross = sum(int(item["gross"]) for item in settlements)
    withheld = sum(int(item["tax"]) for item in settlements)
    rate_value = rate_entry.get(keys.tax_rate(code))
    rate: dict[str, Any] | None = None
    if rate_value is not None:
        setting = decode_tax_rate(rate_value)
        rate = {"rate_bps": setting.rate_bps, "set_height": setting.set_height}
    rows = [f"tax report {code}, heights {from_height}..{to_height}"]
    rows.append(f"rate in force: {rate['rate_bps']} bps (set at height {rate['set_height']})"
                if rate else "rate in force: the genesis rate (no TAX_RATE_SET yet)")
    if records:
        rows += [f"  h{s['height']:<6} order {s['order_id']}  merchant {s['merchant']}  gross "
                 f"{s['gross']}  tax {s['tax']} ({s['rate_bps']} bps)" for s in settlements]
    rows += [f"  merchant {name}: {t['settlements']} settlements, gross {t['gross']}, tax "
             f"{t['tax']}" for name, t in sorted(by_merchant.items())]
    rows.append(f"settlements: {len(settlements)}, gross {gross}, tax withheld {withheld}")
    if truncated:
        rows.append("truncated: more records than the report reads; narrow --from/--to")
    verified = sum(len(page) for page in pages)
    rows.append(f"proofs: {verified} records verified against the state root "
                f"(height {pages[-1].height}, {len(pages)} pages); totals summed here")
    obj.emit("\n".join(rows), {
        "jurisdiction": code, "from_height": from_height, "to_height": to_height,
        "rate": rate, "settlements": settlements if records else None,
        "settlement_count": len(settlements), "gross_total": str(gross),
        "tax_total": str(withheld),
        "merchants": {name: {key: str(value) if key != "settlements" else value
                             for key, value in t.items()}
                      for name, t in sorted(by_merchant.items())},
        "truncated": truncated,
        "proof": {"pages": [page.json() for page in pages], "verified": True}})
