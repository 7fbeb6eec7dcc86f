"""`chainmall mall review|reputation|search|top|report|watch`: trust in the mall (issue 14).

Reads go through the `/trust/...` query paths (docs/trust.md section 11) and
every entry shown is proven against the node's state root first
(cli/trust_client.py). Tx commands sign with `--from KEY`, print one line
per tx and wait for finality unless `--no-wait`. `attach(group)` adds the
commands to the `mall` group.
"""

from __future__ import annotations

import struct
import time
from pathlib import Path
from typing import Any

import click
from chainmall.core.address import encode_address
from chainmall.core.constants import (
    MALL_CATEGORY_BYTES_MAX,
    RATING_MAX,
    RATING_MIN,
    REPORT_ORDERS_MAX,
    REVIEW_TEXT_BYTES_MAX,
    SEARCH_TERMS_MAX,
    TABLE_TRUST_RANK,
    TABLE_TRUST_REPLIES,
    TABLE_TRUST_REPORTS,
    TABLE_TRUST_REVIEWS,
    TOP_K_MAX,
    TRUST_COUNT_ONE,
    TX_TRUST_REPORT_FILE,
    TX_TRUST_REPORT_VOTE,
    TX_TRUST_REVIEW_ADD,
    TX_TRUST_REVIEW_CONTINUE,
    TX_TRUST_REVIEW_REPLY,
)
from chainmall.core.datadir import GENESIS_FILE
from chainmall.core.errors import InvalidInput, NotFound
from chainmall.core.genesis import TrustParams, load_genesis
from chainmall.core.hashing import digest
from chainmall.core.mall import keys as mall_keys
from chainmall.core.mall.products import decode_product
from chainmall.core.rpc.client import BlockingClient
from chainmall.core.trust import keys, ranking
from chainmall.core.trust import reputation as reputation_rules
from chainmall.core.trust.records import decode_product_stats, decode_reputation
from chainmall.core.trust.reports import (
    STATE_NAMES,
    VERDICT_FAKE,
    VERDICT_NOT_FAKE,
    Filing,
    Verdict,
    decode_report,
)
from chainmall.core.trust.reviews import (
    ReplyDraft,
    ReviewDraft,
    TextPart,
    decode_reply,
    decode_review,
    split_text,
)
from chainmall.core.trust.watch import RpcChainReader, Watcher, payloads

from .context import Context
from .trust_client import (
    Proven,
    TxOptions,
    address_of,
    connect,
    hex_id,
    node_options,
    read,
    send,
    tx_options,
)

_U16 = struct.Struct(">H")


def _text(text: str | None, text_file: Path | None, what: str) -> str:
    if text is not None and text_file is not None:
        raise click.UsageError(f"give the {what} with --text or --text-file, not both")
    if text_file is not None:
        text = text_file.read_text(encoding="utf-8")
    text = text or ""
    size = len(text.encode("utf-8"))
    if size > REVIEW_TEXT_BYTES_MAX:
        raise ValueError(f"the {what} is {size} bytes of UTF-8; at most "
                         f"{REVIEW_TEXT_BYTES_MAX} are allowed")
    return text


def _q(value: int) -> str:
    """A Q16 count for people (two decimals)."""
    return f"{value / TRUST_COUNT_ONE:.2f}"


# --- reviews --------------------------------------------------------------------------------


@click.group()
def review() -> None:
    """Verified-buyer reviews: add one, reply to one, list them (docs/trust.md 4)."""


def _reviews_json(proven: Proven) -> list[dict[str, Any]]:
    """Every review version and reply of the entries, grouped by order, in served order."""
    orders: dict[bytes, dict[str, Any]] = {}
    for key, value in proven.entries:
        if value is None or key[0] not in (TABLE_TRUST_REVIEWS, TABLE_TRUST_REPLIES):
            continue
        order_id = key[1:33]
        item = orders.setdefault(order_id, {"order_id": order_id.hex(), "versions": [],
                                            "reply": None})
        if key[0] == TABLE_TRUST_REVIEWS:
            version = decode_review(value)
            item["versions"].append({
                "version": key[33], "buyer": encode_address(version.buyer),
                "product_id": version.product_id.hex(), "rating": version.rating,
                "height": version.height, "time_ms": version.time_ms,
                "text": version.text.decode("utf-8", "replace"),
                "complete": version.complete})
        else:
            reply_value = decode_reply(value)
            item["reply"] = {"merchant": encode_address(reply_value.merchant),
                             "height": reply_value.height,
                             "text": reply_value.text.decode("utf-8", "replace"),
                             "complete": reply_value.complete}
    return list(orders.values())


def _reviews_human(items: list[dict[str, Any]]) -> list[str]:
    lines = []
    for item in items:
        lines.append(f"order {item['order_id']}")
        for version in item["versions"]:
            part = "" if version["complete"] else " (text incomplete)"
            lines.append(f"  v{version['version']} {'*' * version['rating']:<5} "
                         f"{version['rating']}/5 by {version['buyer']} at height "
                         f"{version['height']}{part}: {version['text']}")
        if item["reply"]:
            lines.append(f"  reply by {item['reply']['merchant']} at height "
                         f"{item['reply']['height']}: {item['reply']['text']}")
    return lines


@review.command("add", short_help="Review an order you bought (1-5 stars, text).")
@click.argument("order_id")
@click.option("--rating", type=click.IntRange(RATING_MIN, RATING_MAX), required=True,
              help="Stars, 1 to 5.")
@click.option("--text", default=None, help=f"Review text (at most {REVIEW_TEXT_BYTES_MAX} "
                                           "bytes of UTF-8).")
@click.option("--text-file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              default=None, help="Read the text from a UTF-8 file.")
@tx_options
@click.pass_obj
def review_add(obj: Context, order_id: str, rating: int, text: str | None,
               text_file: Path | None, tx: TxOptions) -> None:
    """Review ORDER_ID as its buyer (a second review is a new version; both stay)."""
    raw_id = hex_id(order_id, "order id")
    body = _text(text, text_file, "review text")
    parts = split_text(body)
    with connect(tx.node_address, tx.token) as client:
        versions = read(client, "/trust/review", raw_id).table(TABLE_TRUST_REVIEWS)
        version = len(versions) + 1
        payloads = [(TX_TRUST_REVIEW_ADD,
                     ReviewDraft(raw_id, rating, len(body.encode()), parts[0]).encode())]
        payloads += [(TX_TRUST_REVIEW_CONTINUE, TextPart(raw_id, version, part).encode())
                     for part in parts[1:]]
        send(obj, tx, payloads, {"order_id": raw_id.hex(), "version": str(version)},
             client=client)


@review.command("reply", short_help="Reply once, as the merchant, to a review.")
@click.argument("order_id")
@click.option("--text", default=None, help="Reply text.")
@click.option("--text-file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              default=None, help="Read the text from a UTF-8 file.")
@tx_options
@click.pass_obj
def review_reply(obj: Context, order_id: str, text: str | None, text_file: Path | None,
                 tx: TxOptions) -> None:
    """Reply, as the merchant, to the review of ORDER_ID (once)."""
    raw_id = hex_id(order_id, "order id")
    body = _text(text, text_file, "reply text")
    if not body:
        raise click.UsageError("a reply needs a text (--text or --text-file)")
    parts = split_text(body)
    payloads = [(TX_TRUST_REVIEW_REPLY, ReplyDraft(raw_id, len(body.encode()), parts[0]).encode())]
    payloads += [(TX_TRUST_REVIEW_CONTINUE, TextPart(raw_id, 0, part).encode())
                 for part in parts[1:]]
    send(obj, tx, payloads, {"order_id": raw_id.hex()})


@review.command("list", short_help="Reviews of an order, a listing or a merchant.")
@click.option("--order", "order_id", default=None, help="Every version of one order's review.")
@click.option("--product", "product_id", default=None, help="The reviews of a listing.")
@click.option("--merchant", default=None, help="The reviews of a merchant (cm1... or key).")
@click.option("--from-height", type=click.IntRange(0), default=0, show_default=True,
              help="Reviews written at or after this height (--product/--merchant).")
@node_options
@click.pass_obj
def review_list(obj: Context, order_id: str | None, product_id: str | None,
                merchant: str | None, from_height: int, node_address: str,
                token: str) -> None:
    """Reviews with their versions and replies, oldest first, proven entry by entry."""
    if sum(x is not None for x in (order_id, product_id, merchant)) != 1:
        raise click.UsageError("give exactly one of --order, --product, --merchant")
    if order_id is not None:
        path, data = "/trust/review", hex_id(order_id, "order id")
    elif product_id is not None:
        path = "/trust/reviews"
        data = bytes([keys.SCOPE_PRODUCT]) + hex_id(product_id, "product id")
        data += from_height.to_bytes(8, "big")
    else:
        path = "/trust/reviews"
        data = bytes([keys.SCOPE_MERCHANT]) + address_of(obj, merchant or "")
        data += from_height.to_bytes(8, "big")
    with connect(node_address, token) as client:
        proven = read(client, path, data)
    items = _reviews_json(proven)
    lines = _reviews_human(items) or ["no reviews"]
    obj.emit("\n".join([*lines, proven.line()]), {"reviews": items, "proof": proven.json()})


# --- reputation -----------------------------------------------------------------------------


@click.group()
def reputation() -> None:
    """Merchants' reputations (docs/trust.md 5)."""


@reputation.command("show", short_help="A merchant's reputation, decayed to now.")
@click.argument("merchant")
@click.option("--genesis", "genesis_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None,
              help="The chain's genesis file (its trust parameters decay the record) "
                   "[default: genesis.json of the node's chain in HOME].")
@node_options
@click.pass_obj
def reputation_show(obj: Context, merchant: str, genesis_file: Path | None, node_address: str,
                    token: str) -> None:
    """The reputation of MERCHANT (cm1... or a key name) at the node's current height.

    The proven record is brought forward to that height by the decay rule
    (docs/trust.md 5.1) and scored (5.2) with the chain's trust parameters,
    read from its genesis; the stored score, as of the record's last change,
    is shown beside it.
    """
    address = address_of(obj, merchant)
    with connect(node_address, token) as client:
        proven = read(client, "/trust/reputation", address)
        raw = proven.get(keys.merchant(address))
        params = _trust_params(obj, genesis_file, client) if raw is not None else None
    if raw is None:
        if proven.get(mall_keys.party(address)) is None:
            raise NotFound(f"{encode_address(address)} is not a party of the mall")
        data: dict[str, Any] = {"merchant": encode_address(address), "score_bps": None}
        obj.emit(f"merchant:   {encode_address(address)}\nno counted activity yet\n"
                 f"{proven.line()}", {**data, "proof": proven.json()})
        return
    assert params is not None
    stored = decode_reputation(raw)
    record = reputation_rules.bring_forward(stored, proven.height, params)
    score = reputation_rules.score(record, params)
    data = {"merchant": encode_address(address), "height": proven.height,
            "score_bps": score.score_bps, "quality_bps": score.quality_bps,
            "service_bps": score.service_bps, "volume_bps": score.volume_bps,
            "rating_milli": score.rating_milli,
            "stored": {"last_height": stored.last_height, "score_bps": stored.score_bps},
            "orders": _q(record.orders_q),
            "cancels": _q(record.cancels_q), "timeouts": _q(record.timeouts_q),
            "disputes_lost": _q(record.disputes_q), "shipped": _q(record.shipped_q),
            "on_time": _q(record.on_time_q), "value": record.value,
            "ratings": _q(record.rating_count_q),
            "rating_average": (round(record.rating_sum_q / record.rating_count_q, 3)
                               if record.rating_count_q else None),
            "strikes": record.strikes, "fake_orders": record.fake_orders,
            "flagged_orders": record.flagged_orders, "counted_orders": record.counted_orders}
    human = [f"merchant:        {data['merchant']}",
             f"score:           {score.score_bps / 100:.2f}% at height {proven.height} "
             f"(stored: {stored.score_bps / 100:.2f}% at height {stored.last_height})",
             f"orders:          {data['orders']} (decayed; {record.counted_orders} counted "
             f"in all)",
             f"ratings:         {data['ratings']} (average {data['rating_average']})",
             f"shipped on time: {data['on_time']} of {data['shipped']}",
             f"disputes lost:   {data['disputes_lost']}, time-outs {data['timeouts']}, "
             f"refunds {data['cancels']}",
             f"value:           {record.value} (decayed)",
             f"fake orders:     {record.fake_orders} ruled, {record.flagged_orders} flagged, "
             f"{record.strikes} strike(s)",
             proven.line()]
    obj.emit("\n".join(human), {**data, "proof": proven.json()})


def _trust_params(obj: Context, genesis_file: Path | None, client: BlockingClient
                  ) -> TrustParams:
    """The trust parameters of the node's chain: from `genesis_file`, else from the
    genesis of HOME's data directory for the node's chain id; InvalidInput if there is
    none or it is another chain's."""
    chain_id = client.status().chain_id
    if genesis_file is None:
        genesis_file = obj.home / chain_id / GENESIS_FILE
        if not genesis_file.is_file():
            raise InvalidInput(f"no genesis of chain {chain_id!r} in {obj.home}: pass the "
                               f"chain's genesis file with --genesis (its trust parameters "
                               f"decay the reputation)")
    genesis = load_genesis(genesis_file)
    if genesis.chain_id != chain_id:
        raise InvalidInput(f"{genesis_file} is the genesis of chain {genesis.chain_id!r}, "
                           f"the node runs {chain_id!r}")
    return genesis.trust.params


# --- ranking -----------------------------------------------------------------------------


def _listings(proven: Proven) -> list[dict[str, Any]]:
    items = []
    for key, value in proven.entries:
        if key[0] != TABLE_TRUST_RANK or value is None:
            continue
        rank_ppm, product_id = keys.parse_rank_entry(key)
        item: dict[str, Any] = {"product_id": product_id.hex(), "rank_ppm": rank_ppm}
        raw = proven.get(mall_keys.product(product_id))
        if raw is not None:
            product = decode_product(raw)
            item.update(title=product.title, category=product.category, price=product.price,
                        merchant=encode_address(product.merchant))
        stats = proven.get(keys.product(product_id))
        if stats is not None:
            record = decode_product_stats(stats)
            item.update(sales=_q(record.sales_q), reviews=record.reviews)
        items.append(item)
    return items


def _ranked(obj: Context, proven: Proven, empty: str) -> None:
    items = _listings(proven)
    lines = [f"{n:>3}. {item['rank_ppm'] / 10_000:6.2f}  {item.get('title', '?')} "
             f"[{item.get('category', '?')}] price {item.get('price', '?')}  "
             f"{item['product_id']}" for n, item in enumerate(items, 1)] or [empty]
    obj.emit("\n".join([*lines, proven.line()]), {"listings": items, "proof": proven.json()})


def _k_option(function: Any) -> Any:
    return click.option("-k", "--limit", "k", type=click.IntRange(1, TOP_K_MAX), default=10,
                        show_default=True, help="How many listings.")(function)


@click.command(short_help="Search listings by words, best ranked first.")
@click.argument("query")
@_k_option
@node_options
@click.pass_obj
def search(obj: Context, query: str, k: int, node_address: str, token: str) -> None:
    """Listings whose title and category hold every word of QUERY, best ranked first."""
    if not ranking.tokens(query, SEARCH_TERMS_MAX):
        raise ValueError("the query has no word to search for (2-32 letters or digits)")
    with connect(node_address, token) as client:
        proven = read(client, "/trust/search", _U16.pack(k) + query.encode("utf-8"))
    _ranked(obj, proven, "no listing matches")


@click.command(short_help="The best ranked listings, of a category or all.")
@click.option("--category", default="", help="A category (and its sub-categories).")
@_k_option
@node_options
@click.pass_obj
def top(obj: Context, category: str, k: int, node_address: str, token: str) -> None:
    """The best ranked listings (quality, service, sales, reputation; never payment)."""
    if len(category.encode()) > MALL_CATEGORY_BYTES_MAX or not category.isascii():
        raise ValueError(f"the category must be ASCII, at most {MALL_CATEGORY_BYTES_MAX} bytes")
    with connect(node_address, token) as client:
        proven = read(client, "/trust/top", _U16.pack(k) + category.encode("ascii"))
    _ranked(obj, proven, "no listing")


# --- reports --------------------------------------------------------------------------------


@click.group()
def report() -> None:
    """Fake-order reports: file one, vote on one (a seated arbitrator), show them."""


def _report_json(report_id: bytes, raw: bytes) -> dict[str, Any]:
    record = decode_report(raw)
    return {"report_id": report_id.hex(), "state": STATE_NAMES[record.state],
            "reporter": encode_address(record.reporter),
            "merchant": encode_address(record.merchant), "evidence": record.evidence.hex(),
            "deposit": record.deposit, "filed_height": record.filed_height,
            "round": record.round, "ruled_height": record.ruled_height,
            "slashed": record.slashed, "reporter_reward": record.reporter_reward,
            "orders": [order.hex() for order in record.orders],
            "seats": [{"arbitrator": encode_address(seat.arbitrator), "verdict": seat.vote}
                      for seat in record.seats if seat.filled]}


def _report_lines(item: dict[str, Any]) -> list[str]:
    return [f"report {item['report_id']}: {item['state']} (round {item['round']})",
            f"  merchant {item['merchant']}, reporter {item['reporter']}, "
            f"{len(item['orders'])} order(s), filed at height {item['filed_height']}",
            f"  slashed {item['slashed']}, reporter reward {item['reporter_reward']}"]


@report.command("file", short_help="Report a merchant's orders as fake.")
@click.argument("merchant")
@click.argument("order_ids", nargs=-1, required=True)
@click.option("--evidence", "evidence_file", type=click.Path(dir_okay=False, exists=True,
                                                             path_type=Path),
              default=None, help="The evidence document (its BLAKE3 goes on chain).")
@click.option("--evidence-hash", default=None, help="The evidence's BLAKE3 (64 hex digits).")
@tx_options
@click.pass_obj
def report_file(obj: Context, merchant: str, order_ids: tuple[str, ...],
                evidence_file: Path | None, evidence_hash: str | None, tx: TxOptions) -> None:
    """Report ORDER_IDS of MERCHANT as fake (a deposit is held until the ruling)."""
    if (evidence_file is None) == (evidence_hash is None):
        raise click.UsageError("give the evidence: --evidence FILE or --evidence-hash HEX")
    if len(order_ids) > REPORT_ORDERS_MAX:
        raise ValueError(f"a report names at most {REPORT_ORDERS_MAX} orders")
    evidence = digest(evidence_file.read_bytes()) if evidence_file is not None \
        else hex_id(evidence_hash or "", "evidence hash")
    orders = tuple(sorted({hex_id(order, "order id") for order in order_ids}))
    payload = Filing(address_of(obj, merchant), evidence, orders).encode()
    send(obj, tx, [(TX_TRUST_REPORT_FILE, payload)], id_name="report_id")


@report.command("vote", short_help="Vote on a report as a seated arbitrator.")
@click.argument("report_id")
@click.option("--fake/--not-fake", required=True, help="The verdict.")
@tx_options
@click.pass_obj
def report_vote(obj: Context, report_id: str, fake: bool, tx: TxOptions) -> None:
    """Vote on REPORT_ID as an arbitrator seated on its panel (the current round)."""
    raw_id = hex_id(report_id, "report id")
    with connect(tx.node_address, tx.token) as client:
        raw = read(client, "/trust/report", raw_id).get(keys.report(raw_id))
        if raw is None:
            raise NotFound(f"no report {raw_id.hex()}")
        record = decode_report(raw)
        verdict = Verdict(raw_id, record.round, VERDICT_FAKE if fake else VERDICT_NOT_FAKE)
        send(obj, tx, [(TX_TRUST_REPORT_VOTE, verdict.encode())], {"report_id": raw_id.hex()},
             client=client)


@report.command("show", short_help="A report: state, orders, panel, ruling.")
@click.argument("report_id")
@node_options
@click.pass_obj
def report_show(obj: Context, report_id: str, node_address: str, token: str) -> None:
    """A report: its state, orders, panel and ruling."""
    raw_id = hex_id(report_id, "report id")
    with connect(node_address, token) as client:
        proven = read(client, "/trust/report", raw_id)
    raw = proven.get(keys.report(raw_id))
    if raw is None:
        raise NotFound(f"no report {raw_id.hex()}")
    item = _report_json(raw_id, raw)
    lines = _report_lines(item) + [f"  order {order}" for order in item["orders"]]
    obj.emit("\n".join([*lines, proven.line()]), {**item, "proof": proven.json()})


@report.command("list", short_help="The reports against a merchant.")
@click.argument("merchant")
@node_options
@click.pass_obj
def report_list(obj: Context, merchant: str, node_address: str, token: str) -> None:
    """The reports against MERCHANT (cm1... or a key name)."""
    address = address_of(obj, merchant)
    with connect(node_address, token) as client:
        proven = read(client, "/trust/reports", address)
    items = [_report_json(key[1:], value) for key, value in proven.table(TABLE_TRUST_REPORTS)]
    lines = [line for item in items for line in _report_lines(item)] or ["no reports"]
    obj.emit("\n".join([*lines, proven.line()]), {"reports": items, "proof": proven.json()})


# --- the watcher ------------------------------------------------------------------------------


@click.command(short_help="Find dense buyer-merchant blocks (brushing); report them.")
@click.option("--report", "report_from", default=None, metavar="KEY",
              help="File a report per finding, signed by KEY (else only print them).")
@click.option("--follow", is_flag=True, help="Keep watching new blocks until Ctrl-C.")
@click.option("--interval", "interval_s", type=click.FloatRange(0.1, 3600), default=5.0,
              show_default=True, help="Seconds between scans with --follow.")
@click.option("--fee", type=click.IntRange(0), default=0, show_default=True,
              envvar="CHAINMALL_FEE", help="Fee of each report tx [env: CHAINMALL_FEE].")
@click.option("--key-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Key directory [default: HOME/keys].")
@click.option("--passphrase-file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Passphrase of an encrypted key.")
@node_options
@click.pass_obj
def watch(obj: Context, report_from: str | None, follow: bool, interval_s: float, fee: int,
          key_dir: Path | None, passphrase_file: Path | None, node_address: str,
          token: str) -> None:
    """Look for dense buyer-merchant blocks (Fraudar-style) in the chain; report them.

    Reads every block through the node, finds groups of buyers that buy
    together from a few shops far more densely than the market does
    (docs/trust.md 6.4), and prints each finding: a merchant, its orders and
    buyers. With --report KEY, files a fake-order report per finding (at most
    24 orders each; the deposit is held until a panel rules).
    """
    options = TxOptions(report_from or "", fee, None, None, False, 60.0, key_dir,
                        passphrase_file, node_address, token)
    with connect(node_address, token) as client:
        watcher = Watcher(RpcChainReader(client))
        seen: list[dict[str, Any]] = []
        try:
            while True:
                read_blocks = watcher.catch_up()
                found = _scan(obj, client, watcher, options if report_from else None)
                seen += found
                if not follow:
                    break
                if found or read_blocks:
                    _print_findings(obj, found, watcher.next_height - 1)
                time.sleep(interval_s)
        except KeyboardInterrupt:
            pass
    if not follow:
        _print_findings(obj, seen, watcher.next_height - 1)


def _scan(obj: Context, client: BlockingClient, watcher: Watcher,
          options: TxOptions | None) -> list[dict[str, Any]]:
    items = []
    for finding, payload in payloads(watcher.scan()):
        item = {"merchant": encode_address(finding.merchant),
                "orders": [order.hex() for order in finding.orders],
                "buyers": [encode_address(buyer) for buyer in finding.buyers],
                "density": round(finding.density, 4),
                "background": round(finding.background, 4),
                "evidence_hash": finding.evidence_hash().hex(), "report_id": None}
        if options is not None:
            infos = send(_Quiet(obj), options, [(TX_TRUST_REPORT_FILE, payload)], client=client)
            item["report_id"] = infos[0].tx_id.hex()
        watcher.reported.update(finding.orders)
        items.append(item)
    return items


class _Quiet(Context):
    """A context that prints nothing (the watcher prints its own summary)."""

    def __init__(self, obj: Context) -> None:
        super().__init__(obj.home, obj.json_output, obj.debug)

    def emit(self, human: str, data: Any, err: bool = False) -> None:
        return None


def _print_findings(obj: Context, items: list[dict[str, Any]], height: int) -> None:
    lines = [f"read up to height {height}: {len(items)} finding(s)"]
    for item in items:
        flags = f" -> report {item['report_id']}" if item["report_id"] else ""
        lines.append(f"  merchant {item['merchant']}: {len(item['orders'])} order(s) from "
                     f"{len(item['buyers'])} buyer(s), density {item['density']} "
                     f"(market {item['background']}){flags}")
    obj.emit("\n".join(lines), {"height": height, "findings": items})


# --- wiring --------------------------------------------------------------------------------

COMMANDS = (review, reputation, search, top, report, watch)


def attach(group: click.Group) -> None:
    """Add the trust commands to the `mall` group."""
    for command in COMMANDS:
        group.add_command(command)
