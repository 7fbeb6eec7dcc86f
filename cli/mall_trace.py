"""`chainmall mall trace ...`: EPCIS-shaped events, two-sided custody hand-overs, histories.

`record` signs one event (what / when / where / why, docs/mall.md section 6)
built from its options; `declare` declares an earlier event erroneous;
`propose`, `accept`, `reject` and `cancel` are the hand-over's four sides
(section 7); `show` prints an item's whole history (back through
transformations and the containers it travelled in) checked against proven
anchors (`verify_trace`); `export` writes it as an EPCIS 2.0 JSON-LD document;
`import` signs the events of an EPCIS JSON document as one recorder.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import click
from chainmall.core.address import encode_address
from chainmall.core.constants import (
    AGGREGATION_DEPTH_MAX,
    EPCIS_IMPORT_BYTES_MAX,
    TX_MALL_HANDOVER_ACCEPT,
    TX_MALL_HANDOVER_CANCEL,
    TX_MALL_HANDOVER_PROPOSE,
    TX_MALL_HANDOVER_REJECT,
    TX_MALL_TRACE_DECLARE_ERROR,
    TX_MALL_TRACE_RECORD,
)
from chainmall.core.mall import keys
from chainmall.core.mall.codec import NO_ID, check_uri
from chainmall.core.mall.custody import (
    ACCEPT_STEPS,
    Acceptance,
    HandoverRef,
    Proposal,
    decode_acceptance,
    decode_handover,
    decode_handover_ref,
    decode_proposal,
)
from chainmall.core.mall.epcis import export_event, export_trace, import_document
from chainmall.core.mall.events import (
    BizTransaction,
    ErrorDeclaration,
    Quantity,
    SourceDest,
    TraceEvent,
    decode_declaration,
    decode_event,
    document_link,
    event_id_of,
)
from chainmall.core.mall.items import decode_item
from chainmall.core.mall.vocab import (
    ACTION_NAMES,
    ACTION_NONE,
    BIZ_STEPS,
    BIZ_TRANSACTION_TYPES,
    DISPOSITIONS,
    ERROR_REASONS,
    ILMD_FIELDS,
    KIND_AGGREGATION,
    KIND_OBJECT,
    KIND_TRANSACTION,
    KIND_TRANSFORMATION,
    SOURCE_TYPES,
)
from chainmall.core.rpc import codec
from chainmall.core.rpc.client import RpcClient
from chainmall.core.rpc.services import TxInfo, TxState

from .context import Context
from .mall_args import build_payload, event_time, hex_id, item_argument
from .mall_group import mall
from .mall_view import handover_json, item_json, lines, step_line
from .node_client import (
    TxOptions,
    address_argument,
    connect,
    fail_if_failed,
    load_signer,
    node_options,
    send_tx,
    sign_many,
    tx_line,
    tx_options,
)
from .proven import CheckedTrace, EntryState, Proven, fetch_trace, proven_query

KINDS = {"object": KIND_OBJECT, "aggregation": KIND_AGGREGATION,
         "transformation": KIND_TRANSFORMATION, "transaction": KIND_TRANSACTION}
_AMOUNT = re.compile(r"^(?P<amount>[0-9]{1,20})(?::(?P<uom>[A-Z0-9]{2,3}))?$")


def _quantity(text: str) -> Quantity:
    """`CLASS` or `CLASS=AMOUNT` or `CLASS=AMOUNT:UOM` (e.g. urn:epc:class:lgtin:...=250:GRM)."""
    uri, sep, tail = text.rpartition("=")
    if not sep or not tail[:1].isdigit():
        return Quantity(check_uri(text, "quantity class"))
    match = _AMOUNT.match(tail)
    if match is None:
        raise ValueError(f"quantity: {text[:80]!r}: expected CLASS=AMOUNT or CLASS=AMOUNT:UOM "
                         "(an integer, a unit of 2-3 of A-Z and 0-9)")
    return Quantity(check_uri(uri, "quantity class"), int(match["amount"]), match["uom"] or "")


def _typed(text: str, words: tuple[str, ...], what: str, required: bool) -> tuple[str | None,
                                                                                  str]:
    """`TYPE=VALUE` with TYPE one of `words` (optional unless `required`) -> (type, value)."""
    head, sep, rest = text.partition("=")
    if sep and head in words:
        return head, rest
    if required:
        raise ValueError(f"{what}: expected TYPE=URI with TYPE one of {', '.join(words)}; got "
                         f"{text[:80]!r}")
    return None, text


def _ilmd(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    fields = {field: field for field in ILMD_FIELDS}
    fields.update({field.split(":", 1)[1]: field for field in ILMD_FIELDS})
    if not sep or name not in fields:
        raise ValueError(f"ilmd: expected FIELD=VALUE with FIELD one of "
                         f"{', '.join(ILMD_FIELDS)}; got {text[:80]!r}")
    return fields[name], value


def _links(biz_tx: tuple[str, ...], documents: tuple[str, ...]) -> tuple[BizTransaction, ...]:
    links = []
    for text in biz_tx:
        link_type, uri = _typed(text, BIZ_TRANSACTION_TYPES, "biz-tx", False)
        links.append(BizTransaction(check_uri(uri, "biz-tx"), link_type))
    for text in documents:
        link_type, path = _typed(text, BIZ_TRANSACTION_TYPES, "document", False)
        links.append(document_link(Path(path).read_bytes(), link_type))
    return tuple(links)


def _parties(texts: tuple[str, ...], what: str) -> tuple[SourceDest, ...]:
    out = []
    for text in texts:
        kind, uri = _typed(text, SOURCE_TYPES, what, True)
        assert kind is not None
        out.append(SourceDest(kind, check_uri(uri, what)))
    return tuple(out)


@mall.group()
def trace() -> None:
    """Record EPCIS events, hand items over (two-sided), show and export verified histories."""


@trace.command("record", short_help="Record an EPCIS event; prints its event id.")
@click.option("--kind", required=True, type=click.Choice(list(KINDS)),
              help="The EPCIS event type.")
@click.option("--action", type=click.Choice(list(ACTION_NAMES.values()), case_sensitive=False),
              help="ADD, OBSERVE or DELETE (not for a transformation).")
@click.option("--time", "time_text", metavar="RFC3339",
              help="Event time with its offset, e.g. 2026-03-01T10:00:00+01:00 [default: now, "
                   "UTC].")
@click.option("--biz-step", type=click.Choice(BIZ_STEPS), metavar="STEP",
              help="CBV bizStep (e.g. commissioning, inspecting, packing); it decides which "
                   "roles may record the event.")
@click.option("--disposition", type=click.Choice(DISPOSITIONS), metavar="DISPOSITION",
              help="CBV disposition (e.g. active, conformant, in_transit).")
@click.option("--read-point", default="", metavar="URI", help="Where it was observed.")
@click.option("--biz-location", default="", metavar="URI", help="Where the items are now.")
@click.option("--parent", default="", metavar="URI",
              help="An aggregation's container (parentID).")
@click.option("--epc", "epcs", multiple=True, metavar="URI",
              help="An item instance (epcList, childEPCs or a transformation's input); "
                   "repeatable.")
@click.option("--quantity", "quantities", multiple=True, metavar="CLASS[=N[:UOM]]",
              help="A class or lot with a quantity, e.g. urn:epc:class:lgtin:...=1000:GRM; "
                   "repeatable.")
@click.option("--out-epc", "out_epcs", multiple=True, metavar="URI",
              help="A transformation's output instance; repeatable.")
@click.option("--out-quantity", "out_quantities", multiple=True, metavar="CLASS[=N[:UOM]]",
              help="A transformation's output class; repeatable.")
@click.option("--biz-tx", multiple=True, metavar="[TYPE=]URI",
              help="A business transaction (TYPE a CBV btt word, e.g. po=urn:...); "
                   "repeatable.")
@click.option("--document", "documents", multiple=True, metavar="[TYPE=]FILE",
              help="Link a business document by its BLAKE3 hash (it stays off chain); "
                   "repeatable.")
@click.option("--source", "sources", multiple=True, metavar="TYPE=URI",
              help="A source (owning_party, possessing_party, location); repeatable.")
@click.option("--destination", "destinations", multiple=True, metavar="TYPE=URI",
              help="A destination, as --source; repeatable.")
@click.option("--ilmd", "ilmd", multiple=True, metavar="FIELD=VALUE",
              help="Lot data, e.g. lotNumber=AG-1, countryOfOrigin=IT, fineness=925; "
                   "repeatable.")
@click.option("--certification", default="", metavar="URI",
              help="Certification info (e.g. a hallmark's URI).")
@tx_options
@click.pass_obj
def trace_record(obj: Context, kind: str, action: str | None, time_text: str | None,
                 biz_step: str | None, disposition: str | None, read_point: str,
                 biz_location: str, parent: str, epcs: tuple[str, ...],
                 quantities: tuple[str, ...], out_epcs: tuple[str, ...],
                 out_quantities: tuple[str, ...], biz_tx: tuple[str, ...],
                 documents: tuple[str, ...], sources: tuple[str, ...],
                 destinations: tuple[str, ...], ilmd: tuple[str, ...], certification: str,
                 tx: TxOptions) -> None:
    """Record one EPCIS event signed by the --from party (TRACE_RECORD); prints its event id.

    Only roles allowed for the bizStep may record it, and for most steps the
    recorder must hold the items (docs/mall.md 6.2)."""
    actions = {name: number for number, name in ACTION_NAMES.items()}
    if KINDS[kind] == KIND_TRANSFORMATION:
        if action is not None:
            raise click.UsageError("a transformation has no --action")
        action_number = ACTION_NONE
    elif action is None:
        raise click.UsageError(f"a {kind} event needs --action (ADD, OBSERVE or DELETE)")
    else:
        action_number = actions[action.upper()]
    time_ms, offset = event_time(time_text)
    event = TraceEvent(
        KINDS[kind], action_number, time_ms, offset, biz_step, disposition, read_point,
        biz_location, parent, tuple(epcs), tuple(_quantity(q) for q in quantities),
        tuple(out_epcs), tuple(_quantity(q) for q in out_quantities),
        _links(biz_tx, documents), _parties(sources, "source"),
        _parties(destinations, "destination"), tuple(_ilmd(i) for i in ilmd), certification)
    payload = build_payload("event", event.encode, decode_event)
    keypair = load_signer(obj, tx)
    send_tx(obj, tx, TX_MALL_TRACE_RECORD, payload, keypair=keypair,
            named=lambda _: {"event_id": event_id_of(keypair.address, payload).hex()})


@trace.command("declare", short_help="Declare an event erroneous (its recorder).")
@click.argument("event_id", metavar="EVENT")
@click.option("--reason", type=click.Choice(ERROR_REASONS), help="Why it is erroneous.")
@click.option("--corrective", "corrective", multiple=True, metavar="EVENT",
              help="The id of an event that corrects it; repeatable.")
@click.option("--time", "time_text", metavar="RFC3339",
              help="Declaration time with its offset [default: now, UTC].")
@tx_options
@click.pass_obj
def trace_declare(obj: Context, event_id: str, reason: str | None, corrective: tuple[str, ...],
                  time_text: str | None, tx: TxOptions) -> None:
    """Declare EVENT erroneous (TRACE_DECLARE_ERROR, by its recorder). Nothing is rewritten:
    the event stays, marked, and the corrections are new events."""
    time_ms, offset = event_time(time_text)
    declaration = ErrorDeclaration(hex_id(event_id, "event id"), time_ms, offset, reason,
                                   tuple(hex_id(c, "corrective event id") for c in corrective))
    payload = build_payload("error declaration", declaration.encode, decode_declaration)
    keypair = load_signer(obj, tx)
    send_tx(obj, tx, TX_MALL_TRACE_DECLARE_ERROR, payload, keypair=keypair,
            named=lambda _: {"declaration_id": event_id_of(keypair.address, payload).hex()})


# --- hand-over -------------------------------------------------------------------------------


@trace.command("propose", short_help="Offer an item you hold to a receiver.")
@click.argument("item")
@click.option("--to", "receiver", required=True, metavar="ADDRESS",
              help="Who should take it (cm1... or a key name).")
@click.option("--order", "order_id", metavar="ORDER",
              help="The order it ships or delivers (see `chainmall escrow ship`).")
@tx_options
@click.pass_obj
def trace_propose(obj: Context, item: str, receiver: str, order_id: str | None,
                  tx: TxOptions) -> None:
    """Offer ITEM (its URI or item key), which --from holds, to --to (HANDOVER_PROPOSE);
    custody moves when the receiver accepts."""
    item_key, _ = item_argument(item)
    proposal = Proposal(item_key, address_argument(obj, receiver),
                        hex_id(order_id, "order id") if order_id else NO_ID)
    send_tx(obj, tx, TX_MALL_HANDOVER_PROPOSE,
            build_payload("hand-over proposal", proposal.encode, decode_proposal))


@trace.command("accept", short_help="Accept an item offered to you: custody moves.")
@click.argument("item")
@click.option("--biz-step", type=click.Choice(ACCEPT_STEPS), default="receiving",
              show_default=True, help="The receiving event's bizStep.")
@click.option("--disposition", type=click.Choice(DISPOSITIONS), metavar="DISPOSITION",
              help="The receiving event's disposition (e.g. in_transit, completeness_verified).")
@click.option("--read-point", default="", metavar="URI", help="Where it was received.")
@click.option("--biz-location", default="", metavar="URI", help="Where the item is now.")
@click.option("--time", "time_text", metavar="RFC3339",
              help="Time of receipt with its offset [default: now, UTC].")
@tx_options
@click.pass_obj
def trace_accept(obj: Context, item: str, biz_step: str, disposition: str | None,
                 read_point: str, biz_location: str, time_text: str | None,
                 tx: TxOptions) -> None:
    """Accept the open proposal of ITEM to --from (HANDOVER_ACCEPT): --from holds it now, and
    a receiving event is recorded in its history (a linked order ships or is delivered)."""
    item_key, _ = item_argument(item)
    time_ms, offset = event_time(time_text)
    acceptance = Acceptance(item_key, time_ms, offset, biz_step, disposition, read_point,
                            biz_location)
    send_tx(obj, tx, TX_MALL_HANDOVER_ACCEPT,
            build_payload("hand-over acceptance", acceptance.encode, decode_acceptance))


@trace.command("reject", short_help="Refuse an item offered to you.")
@click.argument("item")
@tx_options
@click.pass_obj
def trace_reject(obj: Context, item: str, tx: TxOptions) -> None:
    """Refuse the open proposal of ITEM to --from (HANDOVER_REJECT)."""
    item_key, _ = item_argument(item)
    keypair = load_signer(obj, tx)
    ref = HandoverRef(item_key, keypair.address)
    send_tx(obj, tx, TX_MALL_HANDOVER_REJECT,
            build_payload("hand-over", ref.encode, decode_handover_ref), keypair=keypair)


@trace.command("cancel", short_help="Withdraw your offer of an item.")
@click.argument("item")
@click.option("--to", "receiver", required=True, metavar="ADDRESS",
              help="The receiver the proposal named.")
@tx_options
@click.pass_obj
def trace_cancel(obj: Context, item: str, receiver: str, tx: TxOptions) -> None:
    """Withdraw --from's open proposal of ITEM to --to (HANDOVER_CANCEL)."""
    item_key, _ = item_argument(item)
    ref = HandoverRef(item_key, address_argument(obj, receiver))
    send_tx(obj, tx, TX_MALL_HANDOVER_CANCEL,
            build_payload("hand-over", ref.encode, decode_handover_ref))


# --- reading ---------------------------------------------------------------------------------


def _holder(entries: EntryState, item_key: bytes) -> bytes | None:
    """Who holds the item: the holder of its outermost container, from checked entries
    (None if a container is not among them)."""
    item = decode_item(entries.get(keys.item(item_key)) or b"")
    for _ in range(AGGREGATION_DEPTH_MAX):
        if not item.packed:
            return item.holder
        parent = entries.get(keys.item(item.parent))
        if parent is None:
            return None
        item = decode_item(parent)
    return None if item.packed else item.holder


def _checked(item: str, node_address: str, token: str
             ) -> tuple[CheckedTrace, list[dict[str, Any]], Proven]:
    item_key, _ = item_argument(item)
    with connect(node_address, token) as client:
        checked = fetch_trace(client, item_key)
        proposals = proven_query(client, "/mall/handovers", item_key)
    open_proposals = [handover_json(key, decode_handover(value))
                      for key, value in proposals if value is not None]
    return checked, open_proposals, proposals


@trace.command("show", short_help="An item's whole history, checked by its proofs.")
@click.argument("item")
@node_options
@click.pass_obj
def trace_show(obj: Context, item: str, node_address: str, token: str) -> None:
    """ITEM's whole history in chain order: its own events, its inputs' back to the raw
    materials, the containers it travelled in, error declarations; who holds it now and its
    open hand-over proposals. Checked: the anchors proven against the state root, every
    other entry against them (verify_trace)."""
    checked, proposals, proven_proposals = _checked(item, node_address, token)
    result = checked.trace
    entries = EntryState(result.entries)
    items = {key: value.uri for key, value in result.items.items()}
    root = result.items[checked.item_key]
    data = item_json(checked.item_key, root, _holder(entries, checked.item_key))
    steps = []
    for step in result.steps:
        entry: dict[str, Any] = {"event_id": step.event_id.hex(), "item": items.get(
            step.item_key, step.item_key.hex()), "height": step.record.height,
            "recorder": encode_address(step.record.recorder),
            "tx_id": step.record.tx_id.hex(), "declaration": step.is_declaration,
            "declared_by": step.declared_by.hex() if step.declared_by else None}
        if not step.is_declaration:
            entry["epcis"] = export_event(step.record)
        steps.append(entry)
    pairs = [("item", data["uri"]), ("item key", data["item_key"]), ("kind", data["kind"]),
             ("holder", data["holder"] or "unknown (its container is not in the history)"),
             ("events", f"{len(steps)} in its history ({data['events']} of its own)")]
    if data["packed_in"]:
        pairs.append(("packed in", items.get(bytes.fromhex(data["packed_in"]),
                                             data["packed_in"])))
    for proposal in proposals:
        pairs.append(("proposed", f"to {proposal['receiver']} by {proposal['proposer']}"
                                  + (f" (order {proposal['order_id']})"
                                     if proposal["order_id"] else "")))
    body = [step_line(step, items) for step in result.steps]
    summary = [checked.line()]
    if proposals:
        summary.append(f"open proposals: {proven_proposals.line()}")
    if result.truncated:
        summary.append("truncated: the history is longer than one query returns")
    obj.emit("\n".join([lines(pairs), *body, *summary]),
             {**data, "steps": steps, "open_proposals": proposals,
              "truncated": result.truncated, "proof": checked.json()})


@trace.command("export", short_help="An item's checked history as EPCIS 2.0 JSON-LD.")
@click.argument("item")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the document to this file [default: standard output].")
@node_options
@click.pass_obj
def trace_export(obj: Context, item: str, output: Path | None, node_address: str,
                 token: str) -> None:
    """ITEM's checked history as an EPCIS 2.0 JSON-LD EPCISDocument (the standard's schema;
    chainmall's facts as `chainmall:` extension fields)."""
    item_key, _ = item_argument(item)
    with connect(node_address, token) as client:
        checked = fetch_trace(client, item_key)
    document = export_trace(checked.trace)
    text = json.dumps(document, indent=2, sort_keys=False)
    events = len(document["epcisBody"]["eventList"])
    if output is None:
        click.echo(text)
        click.echo(f"{events} events; {checked.line()}", err=True)
        return
    output.write_text(text + "\n", encoding="utf-8")
    obj.emit(f"wrote {events} events to {output}\n{checked.line()}",
             {"output": str(output), "events": events, "proof": checked.json()})


async def _submit_all(node_address: str, token: str, wires: list[bytes], wait: bool,
                      timeout_s: float) -> list[TxInfo]:
    """Submit in order over one connection (so the nonces reach the mempool in order), then
    wait for each (concurrently) unless `wait` is False."""
    async with await RpcClient.connect(node_address, token) as client:
        if not wait:
            return [TxInfo(await client.submit_tx(wire), TxState.PENDING, tx=wire)
                    for wire in wires]
        return list(await asyncio.gather(*(client.submit_tx_wait(wire, timeout_s)
                                           for wire in wires)))


@trace.command("import", short_help="Record the events of an EPCIS JSON document.")
@click.argument("document", type=click.File("rb"))
@click.option("--allow-extensions", is_flag=True,
              help="Drop (and list) extension fields instead of refusing the document.")
@tx_options
@click.pass_obj
def trace_import(obj: Context, document: Any, allow_extensions: bool, tx: TxOptions) -> None:
    """Sign every event of an EPCIS 2.0 JSON DOCUMENT (a file, or - for standard input) as
    --from and record them in order, then their error declarations; prints each tx and event
    id. Fields chainmall cannot keep faithfully are refused with the reason."""
    raw = document.read(EPCIS_IMPORT_BYTES_MAX + 1)
    if len(raw) > EPCIS_IMPORT_BYTES_MAX:
        raise ValueError(f"the document is over {EPCIS_IMPORT_BYTES_MAX} bytes")
    imported = import_document(raw, allow_extensions)
    if not imported.events:
        raise ValueError("the document holds no events")
    keypair = load_signer(obj, tx)
    payloads = imported.payloads(keypair.address)
    with connect(tx.node_address, tx.token) as client:
        signed = sign_many(client, keypair, tx, payloads)
    infos = asyncio.run(_submit_all(tx.node_address, tx.token, [s.encode() for s in signed],
                                    not tx.no_wait, tx.timeout_s))
    rows, records = [], []
    for (tx_type, payload), info in zip(payloads, infos, strict=True):
        event_id = event_id_of(keypair.address, payload).hex()
        what = "declaration" if tx_type == TX_MALL_TRACE_DECLARE_ERROR else "event"
        rows.append(f"{tx_line(info, waited=not tx.no_wait)}  {what} {event_id}")
        records.append({**codec.tx_json(info), what + "_id": event_id})
    if imported.dropped:
        rows.append(f"dropped extension fields: {', '.join(sorted(set(imported.dropped)))}")
    obj.emit("\n".join(rows), {"txs": records, "dropped": sorted(set(imported.dropped))})
    for info in infos:
        fail_if_failed(info)

