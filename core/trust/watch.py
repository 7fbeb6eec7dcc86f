"""The off-chain fake-order watcher: read the chain, find dense buyer-merchant blocks, report.

`Watcher` reads blocks through a `ChainReader` (a local store, or a node
through `core/rpc/client.py`), keeps the buyer-merchant order graph, the
transfers between accounts and the on-chain signals raised so far, and on
`scan()` looks for dense blocks with `fraudar.find_blocks` (docs/trust.md
section 6.4):

1. edges: buyer -> merchant, weight `log(1 + orders)`, column-weighted,
   each of a buyer's edges scaled by 1 + the evidence the chain holds
   against it: orders already flagged, money from a merchant it bought from
   (flow-back, also through one intermediary), funding by such a merchant;
2. a block is suspicious when its density is at least `density_factor`
   times the plain graph's and it has at least `min_buyers` buyers;
3. inside it, a merchant is kept when at least `column_share` of its order
   weight comes from the block's buyers (an honest shop that fake buyers
   also use as camouflage is not), and a buyer when at least `row_share` of
   its weight goes to the kept merchants;
4. the orders between kept buyers and kept merchants that are not already
   reported or ruled fake, nor in an earlier finding of the scan, become
   `Finding`s: one per merchant, with the order ids as evidence (at most
   REPORT_ORDERS_MAX per report).

`file_reports` turns findings into REPORT_FILE payloads for a `ReportSink`
(the CLI signs and submits them through the node). Nothing here is
consensus code: floating point and heuristics are fine, and a report is
only a claim that a drawn panel rules on.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from ..address import address_from_public_key, encode_address
from ..block import decode_block
from ..constants import (
    REPORT_ORDERS_MAX,
    TX_MALL_ORDER_PLACE,
    TX_TRUST_REPORT_FILE,
    TX_TYPE_TRANSFER,
)
from ..errors import ChainmallError
from ..hashing import digest
from ..mall import keys as mall_keys
from ..mall.orders import decode_placement
from ..mall.products import decode_product
from ..state.accounts import creator_key, decode_creator, decode_transfer
from ..state.receipts import decode_receipts
from ..tx import Tx, decode_tx
from . import keys
from .fraudar import find_blocks, weighted
from .records import FLAG_FAKE, FLAGS_VOID, decode_order_trust
from .reports import Filing, decode_filing


class ChainReader(Protocol):
    """What the watcher reads: the tip height, a block's txs with their result codes, and
    state entries at the tip."""

    def height(self) -> int: ...

    def block_txs(self, height: int) -> list[tuple[Tx, int]]: ...

    def state(self, key: bytes) -> bytes | None: ...

    def states(self, keys: list[bytes]) -> list[bytes | None]: ...


class StoreChainReader:
    """A `ChainReader` over a local store (a node's data directory, a test's ledger)."""

    def __init__(self, store) -> None:
        self._store = store

    def height(self) -> int:
        return self._store.last().height

    def block_txs(self, height: int) -> list[tuple[Tx, int]]:
        with self._store.reader() as view:
            raw, receipts = view.block(height), view.receipts(height)
        if raw is None:
            return []
        codes = decode_receipts(receipts) if receipts is not None else ()
        return list(zip(decode_block(raw).txs, codes, strict=True))

    def state(self, key: bytes) -> bytes | None:
        with self._store.reader() as view:
            return view.get_state(key)

    def states(self, keys: list[bytes]) -> list[bytes | None]:
        with self._store.reader() as view:  # one snapshot for the lot
            return [view.get_state(key) for key in keys]


class RpcChainReader:
    """A `ChainReader` over a running node (`BlockingClient` of core/rpc/client.py)."""

    def __init__(self, client) -> None:
        self._client = client

    def height(self) -> int:
        return self._client.status().height

    def block_txs(self, height: int) -> list[tuple[Tx, int]]:
        view = self._client.block(height, txs=True)
        return [(decode_tx(raw), code)
                for raw, code in zip(view.txs or (), view.receipts, strict=True)]

    def state(self, key: bytes) -> bytes | None:
        result = self._client.query("/state", key)
        return result.entries[0].value if result.entries else None

    def states(self, keys: list[bytes]) -> list[bytes | None]:
        return [self.state(key) for key in keys]


@dataclass(frozen=True, slots=True)
class WatchParams:
    """The watcher's thresholds (docs/trust.md 6.4), tuned on the market simulator."""

    blocks_max: int = 8  # dense blocks looked for per scan
    density_factor: float = 1.5  # a block must be this many times denser than the graph
    min_buyers: int = 3
    column_share: float = 0.5
    row_share: float = 0.5
    expand_share: float = 0.75
    prior_flagged: float = 0.5  # per order of the buyer flagged by an on-chain signal
    prior_flowback: float = 1.0  # money came back from a merchant it bought from
    prior_funded: float = 1.0  # a merchant it bought from funded it into existence


@dataclass
class _OrderInfo:
    buyer: bytes
    merchant: bytes
    height: int


@dataclass(frozen=True, slots=True)
class Finding:
    """Orders of one merchant the watcher would report, and why (for the evidence)."""

    merchant: bytes
    orders: tuple[bytes, ...]
    buyers: tuple[bytes, ...]
    density: float
    background: float

    def evidence(self) -> bytes:
        """The canonical evidence document (JSON, sorted keys); its BLAKE3 is the report's
        evidence hash."""
        return json.dumps({
            "kind": "chainmall dense block v1", "merchant": encode_address(self.merchant),
            "orders": [order.hex() for order in self.orders],
            "buyers": [encode_address(buyer) for buyer in self.buyers],
            "density": round(self.density, 6), "background": round(self.background, 6),
        }, sort_keys=True, separators=(",", ":")).encode()

    def evidence_hash(self) -> bytes:
        return digest(self.evidence())


@dataclass
class Watcher:
    """The graph of orders and transfers read so far, and the scan over it."""

    reader: ChainReader
    params: WatchParams = field(default_factory=WatchParams)
    next_height: int = 1
    orders: dict[bytes, _OrderInfo] = field(default_factory=dict)
    transfers: dict[tuple[bytes, bytes], int] = field(default_factory=dict)
    reported: set[bytes] = field(default_factory=set)
    _merchant_of: dict[bytes, bytes] = field(default_factory=dict)

    def catch_up(self, until: int | None = None) -> int:
        """Read every block from `next_height` to `until` (default the tip); blocks read."""
        tip = self.reader.height() if until is None else until
        count = 0
        while self.next_height <= tip:
            self._read_block(self.next_height)
            self.next_height += 1
            count += 1
        return count

    def _read_block(self, height: int) -> None:
        for tx, code in self.reader.block_txs(height):
            if code != 0:
                continue
            sender = address_from_public_key(tx.sender)
            if tx.tx_type == TX_MALL_ORDER_PLACE:
                placement = decode_placement(tx.payload)
                merchant = self._merchant(placement.product_id)
                if merchant is not None:
                    self.orders[tx.tx_id] = _OrderInfo(sender, merchant, height)
            elif tx.tx_type == TX_TYPE_TRANSFER:
                recipient, amount = decode_transfer(tx.payload)
                if amount:
                    pair = (sender, recipient)
                    self.transfers[pair] = self.transfers.get(pair, 0) + amount
            elif tx.tx_type == TX_TRUST_REPORT_FILE:
                self.reported.update(decode_filing(tx.payload).orders)

    def _merchant(self, product_id: bytes) -> bytes | None:
        merchant = self._merchant_of.get(product_id)
        if merchant is None:
            raw = self.reader.state(mall_keys.product(product_id))
            if raw is None:
                return None
            merchant = self._merchant_of[product_id] = decode_product(raw).merchant
        return merchant

    def _flags(self, order_ids: list[bytes]) -> dict[bytes, int]:
        """The trust flags of each order (0 without a record), in one batch read."""
        values = self.reader.states([keys.order(order_id) for order_id in order_ids])
        return {order_id: 0 if raw is None else decode_order_trust(raw).flags
                for order_id, raw in zip(order_ids, values, strict=True)}

    def _creators(self, addresses: list[bytes]) -> dict[bytes, bytes | None]:
        values = self.reader.states([creator_key(address) for address in addresses])
        return {address: None if raw is None else decode_creator(raw)
                for address, raw in zip(addresses, values, strict=True)}

    def scan(self) -> list[Finding]:
        """The findings of the graph read so far (nothing is submitted)."""
        params = self.params
        buyers: dict[bytes, int] = {}
        merchants: dict[bytes, int] = {}
        counts: dict[tuple[int, int], int] = {}
        by_pair: dict[tuple[int, int], list[bytes]] = {}
        for order_id in sorted(self.orders):
            info = self.orders[order_id]
            row = buyers.setdefault(info.buyer, len(buyers))
            column = merchants.setdefault(info.merchant, len(merchants))
            counts[(row, column)] = counts.get((row, column), 0) + 1
            by_pair.setdefault((row, column), []).append(order_id)
        if not counts:
            return []
        flags = self._flags(sorted(self.orders))
        edges = {edge: math.log1p(count) for edge, count in counts.items()}
        priors = self._priors(buyers, merchants, by_pair, flags)
        # Evidence scales a buyer's edges (a prior on its own could make a block of
        # buyers without merchants); the bar is the density of the plain graph.
        evidence = {edge: weight * (1.0 + priors.get(edge[0], 0.0))
                    for edge, weight in edges.items()}
        background = _density(edges)
        blocks = find_blocks(evidence, {}, params.blocks_max,
                             params.density_factor * background)
        buyer_list = list(buyers)
        merchant_list = list(merchants)
        row_weight: dict[int, float] = {}
        column_weight: dict[int, float] = {}
        by_column: dict[int, list[int]] = {}
        for (row, column), weight in edges.items():
            row_weight[row] = row_weight.get(row, 0.0) + weight
            column_weight[column] = column_weight.get(column, 0.0) + weight
            by_column.setdefault(column, []).append(row)
        findings: list[Finding] = []
        taken: set[bytes] = set()  # orders in a finding already (blocks may overlap)
        for block in blocks:
            if len(block.rows) < params.min_buyers:
                continue
            rows = set(block.rows)
            kept_columns = [
                column for column in block.columns
                if sum(edges.get((row, column), 0.0) for row in rows)
                >= params.column_share * column_weight[column]]
            kept_rows = [
                row for row in block.rows
                if sum(edges.get((row, column), 0.0) for column in kept_columns)
                >= params.row_share * row_weight[row]]
            kept_rows = self._expand(kept_rows, kept_columns, edges, row_weight, by_column)
            if len(kept_rows) < params.min_buyers:
                continue
            for column in kept_columns:
                orders = sorted(order_id for row in kept_rows
                                for order_id in by_pair.get((row, column), ())
                                if order_id not in self.reported)
                orders = [order_id for order_id in orders
                          if not flags[order_id] & FLAG_FAKE and order_id not in taken]
                taken.update(orders)
                if orders:
                    findings.append(Finding(
                        merchant_list[column], tuple(orders),
                        tuple(sorted(buyer_list[row] for row in kept_rows)),
                        block.density, background))
        return findings

    def _expand(self, rows: list[int], columns: list[int], edges: dict[tuple[int, int], float],
                row_weight: dict[int, float], by_column: dict[int, list[int]]) -> list[int]:
        """The block's buyers, plus every other buyer who buys from its kept merchants as
        heavily as the block's buyers do (at least `expand_share` of their median weight
        into them, and `row_share` of its own weight): a density average leaves out
        members a little less suspicious than the rest."""
        if not rows or not columns:
            return rows
        into = {row: sum(edges.get((row, column), 0.0) for column in columns)
                for row in rows}
        median = sorted(into.values())[len(into) // 2]
        kept = set(rows)
        for column in columns:
            for row in by_column.get(column, ()):
                if row in kept:
                    continue
                weight = sum(edges.get((row, other), 0.0) for other in columns)
                if weight >= self.params.expand_share * median and \
                        weight >= self.params.row_share * row_weight[row]:
                    kept.add(row)
        return sorted(kept)

    def _priors(self, buyers: dict[bytes, int], merchants: dict[bytes, int],
                by_pair: dict[tuple[int, int], list[bytes]],
                flags: dict[bytes, int]) -> dict[int, float]:
        params = self.params
        merchant_list = list(merchants)
        sellers: dict[int, set[bytes]] = {}
        flagged: dict[int, int] = {}
        for (row, column), order_ids in by_pair.items():
            sellers.setdefault(row, set()).add(merchant_list[column])
            flagged[row] = flagged.get(row, 0) + sum(
                1 for order_id in order_ids if flags[order_id] & FLAGS_VOID & ~FLAG_FAKE)
        paid_by: dict[bytes, set[bytes]] = {}  # recipient -> senders
        for sender, recipient in self.transfers:
            paid_by.setdefault(recipient, set()).add(sender)
        creators = self._creators(list(buyers))
        priors: dict[int, float] = {}
        for buyer, row in buyers.items():
            prior = params.prior_flagged * math.log1p(flagged.get(row, 0))
            payers = paid_by.get(buyer, set())
            payers_of_payers = set().union(*(paid_by.get(p, set()) for p in sorted(payers)))
            for merchant in sorted(sellers.get(row, ())):
                if merchant in payers or merchant in payers_of_payers:
                    prior += params.prior_flowback
                if creators[buyer] == merchant:
                    prior += params.prior_funded
            if prior:
                priors[row] = prior
        return priors


def _density(edges: dict[tuple[int, int], float]) -> float:
    """The whole graph's density (column-weighted edges per node)."""
    rows = {row for row, _ in edges}
    columns = {column for _, column in edges}
    return sum(weighted(edges).values()) / (len(rows) + len(columns))


class ReportSink(Protocol):
    """Where reports go: sign and submit a REPORT_FILE payload; its tx id (report id)."""

    def __call__(self, payload: bytes) -> bytes: ...


def payloads(findings: Iterable[Finding]) -> list[tuple[Finding, bytes]]:
    """REPORT_FILE payloads for the findings: at most REPORT_ORDERS_MAX orders each, in
    order id order (a finding with more orders becomes several reports)."""
    result = []
    for finding in findings:
        for start in range(0, len(finding.orders), REPORT_ORDERS_MAX):
            chunk = finding.orders[start:start + REPORT_ORDERS_MAX]
            part = Finding(finding.merchant, chunk, finding.buyers, finding.density,
                           finding.background)
            result.append((part, Filing(finding.merchant, part.evidence_hash(),
                                        chunk).encode()))
    return result


def file_reports(watcher: Watcher, findings: Iterable[Finding], sink: ReportSink,
                 on_error: Callable[[Finding, ChainmallError], None] | None = None,
                 ) -> list[bytes]:
    """Submit a report per payload; the report ids. Orders reported are remembered."""
    ids = []
    for finding, payload in payloads(findings):
        try:
            ids.append(sink(payload))
        except ChainmallError as error:
            if on_error is None:
                raise
            on_error(finding, error)
            continue
        watcher.reported.update(finding.orders)
    return ids
