"""Tax: rates per jurisdiction set by its authority, withholding at settlement, reports.

Each jurisdiction's authority (named in genesis with a starting rate) sets the
rate with TAX_RATE_SET; an order keeps the rate in force when it was placed.
At settlement the tax on the merchant's share is withheld and credited to the
authority, and a tax record `0x24 || jurisdiction || height || order id` is
written, so `tax_report` is a range read whose every entry has a proof: an
authority audits without trusting the merchant (docs/mall.md section 10).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..constants import ADDRESS_BYTES, BPS_DENOMINATOR, JURISDICTION_BYTES_MAX, MALL_QUERY_ITEMS_MAX
from ..errors import AmountOutOfRange, NotTaxAuthority, UnknownJurisdiction
from ..genesis import MallGenesis, check_jurisdiction
from . import keys
from .codec import (
    Clock,
    MallState,
    StateReader,
    TxContext,
    address_text,
    check_jurisdiction_text,
    emit,
    payload_decoder,
    payload_reader,
    put_text,
    value_reader,
    writer,
)
from .funds import credit, invariant


@dataclass(frozen=True, slots=True)
class TaxRate:
    """The value under `keys.tax_rate(jurisdiction)`."""

    rate_bps: int
    set_height: int

    def encode(self) -> bytes:
        return writer().u16(self.rate_bps).u64(self.set_height).getvalue()


def decode_tax_rate(value: bytes) -> TaxRate:
    reader = value_reader(value, "tax rate")
    rate = TaxRate(reader.u16("rate"), reader.u64("set height"))
    reader.finish()
    return rate


def current_rate(state: StateReader, jurisdiction: str, mall: MallGenesis) -> int:
    """The rate in force: the last TAX_RATE_SET, or the genesis rate before any."""
    raw = state.get(keys.tax_rate(jurisdiction))
    if raw is not None:
        return decode_tax_rate(raw).rate_bps
    authority = mall.authority(jurisdiction)
    return 0 if authority is None else authority.rate_bps


@dataclass(frozen=True, slots=True)
class RateSetting:
    """TAX_RATE_SET payload."""

    jurisdiction: str
    rate_bps: int

    def encode(self) -> bytes:
        out = put_text(writer(), self.jurisdiction, JURISDICTION_BYTES_MAX)
        return out.u16(self.rate_bps).getvalue()


@payload_decoder
def decode_rate_setting(payload: bytes) -> RateSetting:
    reader = payload_reader(payload, "tax rate")
    jurisdiction = reader.text(JURISDICTION_BYTES_MAX, "jurisdiction",
                               check_jurisdiction_text, low=2)
    setting = RateSetting(jurisdiction, reader.u16("rate"))
    reader.finish()
    if setting.rate_bps > BPS_DENOMINATOR:
        raise reader.fail(f"rate {setting.rate_bps} bps is over {BPS_DENOMINATOR}")
    return setting


def set_rate(state: MallState, ctx: TxContext, mall: MallGenesis) -> None:
    """TAX_RATE_SET (docs/mall.md 10.1)."""
    setting = decode_rate_setting(ctx.tx.payload)
    authority = mall.authority(setting.jurisdiction)
    if authority is None:
        raise UnknownJurisdiction(f"no tax authority for {setting.jurisdiction!r}")
    if ctx.sender != authority.address:
        raise NotTaxAuthority(f"{address_text(ctx.sender)} is not the tax authority of "
                              f"{setting.jurisdiction}")
    if setting.rate_bps > mall.params.tax_rate_max_bps:
        raise AmountOutOfRange(f"rate {setting.rate_bps} bps is over tax_rate_max_bps "
                               f"{mall.params.tax_rate_max_bps}")
    state.set(keys.tax_rate(setting.jurisdiction), TaxRate(setting.rate_bps, ctx.height).encode())
    emit(ctx, "mall.tax_rate", ("jurisdiction", setting.jurisdiction),
         ("rate_bps", str(setting.rate_bps)))


@dataclass(frozen=True, slots=True)
class TaxRecord:
    """One settlement's tax, under `keys.tax_record(jurisdiction, height, order_id)`."""

    merchant: bytes
    gross: int  # the merchant's share of the settlement, before tax and commission
    tax: int
    rate_bps: int
    authority: bytes

    def encode(self) -> bytes:
        out = writer().fixed(self.merchant, ADDRESS_BYTES).u64(self.gross).u64(self.tax)
        return out.u16(self.rate_bps).fixed(self.authority, ADDRESS_BYTES).getvalue()


def decode_tax_record(value: bytes) -> TaxRecord:
    reader = value_reader(value, "tax record")
    record = TaxRecord(reader.address("merchant"), reader.u64("gross"), reader.u64("tax"),
                       reader.u16("rate"), reader.address("authority"))
    reader.finish()
    return record


def withhold(state: MallState, clock: Clock, mall: MallGenesis, order_id: bytes,
             jurisdiction: str, merchant: bytes, gross: int, rate_bps: int) -> int:
    """Withhold tax on `gross` at `rate_bps` (floor), credit the authority, write the record;
    the tax withheld. A settlement that pays the merchant nothing writes no record."""
    if gross == 0:
        return 0
    authority = mall.authority(jurisdiction)
    invariant(authority is not None, f"jurisdiction {jurisdiction} has no tax authority")
    assert authority is not None
    tax = gross * rate_bps // BPS_DENOMINATOR
    credit(state, authority.address, tax)
    state.set(keys.tax_record(jurisdiction, clock.height, order_id),
              TaxRecord(merchant, gross, tax, rate_bps, authority.address).encode())
    return tax


@dataclass(frozen=True, slots=True)
class TaxReport:
    """`tax_report`: the records (each a state entry to prove) and their totals."""

    jurisdiction: str
    from_height: int
    to_height: int
    entries: list[tuple[bytes, bytes]]
    settlements: int
    gross_total: int
    tax_total: int
    truncated: bool  # more than `limit` records: ask again from the last height


def tax_report(state: StateReader, jurisdiction: str, from_height: int, to_height: int,
               limit: int = MALL_QUERY_ITEMS_MAX) -> TaxReport:
    """Settlements and withheld totals of `jurisdiction` at heights from..to (inclusive)."""
    check_jurisdiction(jurisdiction)
    if not 0 <= from_height <= to_height:
        raise ValueError("need 0 <= from_height <= to_height")
    start, end = keys.tax_records_between(jurisdiction, from_height, to_height)
    entries = state.scan(start, end, limit + 1)
    truncated = len(entries) > limit
    entries = entries[:limit]
    records = [decode_tax_record(value) for _, value in entries]
    return TaxReport(jurisdiction, from_height, to_height, entries, len(records),
                     sum(r.gross for r in records), sum(r.tax for r in records), truncated)
