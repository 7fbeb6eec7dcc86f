"""A seeded market simulator: honest trade with planted brushing campaigns, run on a real chain.

Measures the fake-order defences end to end (docs/trust.md section 12): a
`MarketConfig` and a seed give a `Plan` (every actor and every action with
its block time, from two random streams, one for the honest market and one
for the campaigns, so the same seed gives the same honest market with or
without campaigns); `run_market` executes it block by block on an
in-process chain with the mall and the trust rules installed (real
signatures, real LMDB), runs the watcher every `watch_every_ms` and files
its reports, lets a drawn panel rule them (the arbitrators are modelled as
accurate: they rule "fake" when at least half of a report's orders are
planted fakes), and `measure` compares what was flagged or reported with
the ground truth. `detection_table` runs a market with and without its
campaigns and adds, per brushing merchant, its listing's rank (and its
position in the rank index) in both runs: the rank must not be higher with
the campaign (a position also moves when *other* brushers are punished).

Honest behaviour: buyers (most from genesis, `new_buyer_bps` of them
created by an exchange account during the run) place 1-4 orders at random
times, choosing a shop they bought from before with probability
`repeat_bps`, else by popularity (Zipf, s = 1, brushing shops in the tail);
shops ship within 1-30 hours, buyers accept within 2 hours and confirm
within a day; 30% of orders get a review whose rating follows the shop's
quality. Honest shops never send money to buyers.

Campaigns (`CAMPAIGN_KINDS`):
* `self-funded`: the merchant funds fresh accounts, which order from it;
* `hired-ring`: existing accounts order from the merchant three times in an
  hour each, and are paid back directly after the release;
* `fresh-burst`: a farm creates fresh accounts just before, and all place
  their first order with the merchant within an hour;
* `camouflaged`: workers order from a ring of three merchants, spread over
  days, also buy from honest shops, and are paid back through an
  intermediary account.
Every fake order is shipped at once, confirmed and reviewed with 5 stars.
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import constants as C
from ..abci.app import Application
from ..genesis import Genesis, MallParams, TrustParams, make_genesis, make_mall, make_trust
from ..keys import KeyPair
from ..mall.custody import Acceptance, Proposal
from ..mall.events import TraceEvent
from ..mall.keys import item_key
from ..mall.order_record import OrderRef
from ..mall.orders import Placement
from ..mall.parties import PartyDetails
from ..mall.products import Listing
from ..mall.vocab import ACTION_ADD, KIND_OBJECT, ROLE_ARBITRATOR, ROLE_MERCHANT
from ..state.accounts import encode_transfer
from ..store import Store
from ..tx import Tx, sign_tx
from . import keys
from .records import FLAG_FAKE, FLAG_REPORTED, FLAGS_VOID, decode_order_trust
from .reports import (
    REPORT_FAKE,
    REPORT_OPEN,
    VERDICT_FAKE,
    VERDICT_NOT_FAKE,
    Verdict,
    decode_filing,
    decode_report,
)
from .reviews import ReviewDraft
from .watch import StoreChainReader, Watcher, WatchParams, file_reports

CHAIN_ID = "market-sim"
START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
FEE = 1
CAMPAIGN_KINDS = ("self-funded", "hired-ring", "fresh-burst", "camouflaged")
ITEMS_PER_EVENT = 16  # epcs per commissioning event (the payload cap)


@dataclass(frozen=True, slots=True)
class Campaign:
    """One kind of planted campaign: `merchants` brushing shops (a ring of three for
    camouflaged), `buyers` fake buyers per shop (per ring), `orders` per fake buyer and
    shop."""

    kind: str
    merchants: int
    buyers: int
    orders: int


DEFAULT_CAMPAIGNS = (
    Campaign("self-funded", 2, 12, 3),
    Campaign("hired-ring", 2, 8, 3),
    Campaign("fresh-burst", 2, 16, 1),
    Campaign("camouflaged", 3, 20, 2),
)


@dataclass(frozen=True, slots=True)
class MarketConfig:
    """The market's size and behaviour (module docstring)."""

    seed: int = 2026
    honest_buyers: int = 2_000
    honest_shops: int = 100
    new_buyer_bps: int = 500
    repeat_bps: int = 1_500
    review_bps: int = 3_000
    hours: int = 48
    block_ms: int = 5 * MINUTE_MS
    watch_every_ms: int = 6 * HOUR_MS
    arbitrators: int = 7
    campaigns: tuple[Campaign, ...] = DEFAULT_CAMPAIGNS
    watch: WatchParams = field(default_factory=WatchParams)


@dataclass
class PlannedOrder:
    """An order of the plan and its ground truth (`label`: honest, fake kind, camouflage)."""

    buyer: int  # actor index
    shop: int  # shop index
    price: int
    label: str
    placed_ms: int
    item: str = ""
    order_id: bytes = b""
    rating: int = 0


@dataclass
class Plan:
    """Actors and timed actions (time, sequence, kind, arguments)."""

    config: MarketConfig
    actors: list[KeyPair]  # every account that signs
    balances: dict[int, int]  # genesis balances by actor index
    shops: list[int]  # actor index of each shop (honest first, then brushing)
    shop_quality: list[float]
    brushing: dict[int, str]  # shop index -> campaign kind
    arbitrators: list[int]
    watcher: int
    orders: list[PlannedOrder]
    actions: list[tuple[int, int, str, tuple[Any, ...]]]


def _key(label: str) -> KeyPair:
    return KeyPair.from_seed(label.encode().ljust(32, b".")[:32])


class _Planner:
    def __init__(self, config: MarketConfig, campaigns: bool) -> None:
        self.config = config
        self.campaigns = campaigns
        self.honest = random.Random(config.seed)
        self.fake = random.Random(config.seed * 7919 + 1)
        self.actors: list[KeyPair] = []
        self.balances: dict[int, int] = {}
        self.orders: list[PlannedOrder] = []
        self.actions: list[tuple[int, int, str, tuple[Any, ...]]] = []
        self.seq = 0
        self.horizon_ms = config.hours * HOUR_MS

    def actor(self, label: str, balance: int = 0) -> int:
        self.actors.append(_key(label))
        if balance:
            self.balances[len(self.actors) - 1] = balance
        return len(self.actors) - 1

    def act(self, time_ms: int, kind: str, *args: Any) -> None:
        self.seq += 1
        self.actions.append((int(time_ms), self.seq, kind, args))

    def order(self, rng: random.Random, buyer: int, shop: int, price: int, label: str,
              placed_ms: int, ship_after: tuple[int, int], confirm_after: tuple[int, int],
              rating: int) -> PlannedOrder:
        planned = PlannedOrder(buyer, shop, price, label, placed_ms, rating=rating)
        index = len(self.orders)
        self.orders.append(planned)
        shipped = placed_ms + rng.randint(*ship_after)
        accepted = shipped + rng.randint(5 * MINUTE_MS, 2 * HOUR_MS)
        confirmed = accepted + rng.randint(*confirm_after)
        self.act(placed_ms, "place", index)
        self.act(shipped, "ship", index)
        self.act(accepted, "accept", index)
        self.act(confirmed, "confirm", index)
        if rating:
            self.act(confirmed + rng.randint(MINUTE_MS, 6 * HOUR_MS), "review", index)
        return planned


def plan_market(config: MarketConfig, campaigns: bool = True) -> Plan:
    """The actors and actions of a market (the honest part is the same either way)."""
    p = _Planner(config, campaigns)
    honest = p.honest
    exchange = p.actor("exchange", 10**15)
    watcher = p.actor("watcher", 10**12)
    arbitrators = [p.actor(f"arbitrator-{i}", 10**9) for i in range(config.arbitrators)]
    shops: list[int] = []
    quality: list[float] = []
    for i in range(config.honest_shops):
        shops.append(p.actor(f"shop-{i}", 10**9))
        quality.append(honest.uniform(3.3, 5.0))
    brushing: dict[int, str] = {}
    for campaign in config.campaigns:
        for j in range(campaign.merchants):
            brushing[len(shops)] = campaign.kind
            shops.append(p.actor(f"brush-{campaign.kind}-{j}", 10**12))
            quality.append(honest.uniform(3.3, 4.2))
    shop_count = len(shops)
    # Popularity: Zipf over a fixed shuffled order, brushing shops in the tail.
    order = list(range(config.honest_shops))
    honest.shuffle(order)
    order += sorted(brushing)
    weights = [0.0] * shop_count
    for rank, shop in enumerate(order):
        weights[shop] = 1.0 / (rank + 1)
    prices = [honest.randint(10, 500) * 100 for _ in range(shop_count)]
    # Honest buyers.
    for b in range(config.honest_buyers):
        count = honest.randint(1, 4)
        new = honest.randrange(10_000) < config.new_buyer_bps
        buyer = p.actor(f"buyer-{b}", 0 if new else 10**8)
        times = sorted(honest.randrange(0, p.horizon_ms - 32 * HOUR_MS) for _ in range(count))
        if new:
            p.act(max(0, times[0] - honest.randint(HOUR_MS, 12 * HOUR_MS)), "fund", exchange,
                  buyer, 10**8)
        visited: list[int] = []
        for placed in times:
            if visited and honest.randrange(10_000) < config.repeat_bps:
                shop = honest.choice(visited)
            else:
                shop = honest.choices(range(shop_count), weights)[0]
            visited.append(shop)
            rating = 0
            if honest.randrange(10_000) < config.review_bps:
                rating = max(1, min(5, round(quality[shop] + honest.uniform(-1.0, 1.0))))
            p.order(honest, buyer, shop, prices[shop], "honest", placed,
                    (HOUR_MS, 30 * HOUR_MS), (10 * MINUTE_MS, DAY_MS), rating)
    if campaigns:
        _plan_campaigns(p, config, shops, brushing, prices, weights, exchange)
    p.actions.sort()
    return Plan(config, p.actors, p.balances, shops, quality, brushing, arbitrators, watcher,
                p.orders, p.actions)


def _plan_campaigns(p: _Planner, config: MarketConfig, shops: list[int],
                    brushing: dict[int, str], prices: list[int], weights: list[float],
                    exchange: int) -> None:
    rng = p.fake
    fast = (10 * MINUTE_MS, HOUR_MS)
    soon = (10 * MINUTE_MS, 3 * HOUR_MS)
    honest_shops = list(range(config.honest_shops))
    by_kind: dict[str, list[int]] = {}
    for shop, kind in brushing.items():
        by_kind.setdefault(kind, []).append(shop)
    for campaign in config.campaigns:
        targets = by_kind.get(campaign.kind, [])
        if campaign.kind == "camouflaged":
            ring = targets
            middle = p.actor("camouflage-payer", 10**6)
            for w in range(campaign.buyers):
                worker = p.actor(f"camo-worker-{w}", 10**9)
                for shop in ring:
                    for _ in range(campaign.orders):
                        placed = rng.randrange(0, p.horizon_ms - 32 * HOUR_MS)
                        p.order(rng, worker, shop, prices[shop], "camouflaged", placed, fast,
                                soon, 5)
                        p.act(placed + 12 * HOUR_MS, "pay", shops[shop], middle, prices[shop])
                        p.act(placed + 13 * HOUR_MS, "pay", middle, worker, prices[shop])
                for _ in range(3):
                    shop = rng.choices(honest_shops, weights[:len(honest_shops)])[0]
                    placed = rng.randrange(0, p.horizon_ms - 32 * HOUR_MS)
                    p.order(rng, worker, shop, prices[shop], "camouflage", placed,
                            (HOUR_MS, 30 * HOUR_MS), soon, 0)
            continue
        for shop in targets:
            merchant = shops[shop]
            start = rng.randrange(2 * HOUR_MS, p.horizon_ms // 2)
            if campaign.kind == "self-funded":
                for b in range(campaign.buyers):
                    buyer = p.actor(f"self-{shop}-{b}")
                    p.act(start, "fund", merchant, buyer,
                          campaign.orders * (prices[shop] + 10))
                    for _ in range(campaign.orders):
                        placed = start + rng.randint(10 * MINUTE_MS, 20 * HOUR_MS)
                        p.order(rng, buyer, shop, prices[shop], campaign.kind, placed, fast,
                                soon, 5)
            elif campaign.kind == "hired-ring":
                for b in range(campaign.buyers):
                    worker = p.actor(f"hired-{shop}-{b}", 10**9)
                    hour = (start + rng.randrange(0, 6) * HOUR_MS) // HOUR_MS * HOUR_MS
                    for _ in range(campaign.orders):
                        placed = hour + rng.randrange(0, 50 * MINUTE_MS)
                        planned = p.order(rng, worker, shop, prices[shop], campaign.kind,
                                          placed, fast, soon, 5)
                        p.act(planned.placed_ms + 6 * HOUR_MS, "pay", merchant, worker,
                              prices[shop] // 10)
            elif campaign.kind == "fresh-burst":
                farm = p.actor(f"farm-{shop}", 10**9)
                hour = start // HOUR_MS * HOUR_MS
                for b in range(campaign.buyers):
                    buyer = p.actor(f"fresh-{shop}-{b}")
                    p.act(hour - 30 * MINUTE_MS, "fund", farm, buyer,
                          campaign.orders * (prices[shop] + 10))
                    for _ in range(campaign.orders):
                        placed = hour + rng.randrange(0, 55 * MINUTE_MS)
                        p.order(rng, buyer, shop, prices[shop], campaign.kind, placed, fast,
                                soon, 5)
            else:
                raise ValueError(f"unknown campaign kind {campaign.kind!r}")


# --- running a plan on a chain ---------------------------------------------------------


def market_genesis(plan: Plan) -> Genesis:
    mall = make_mall([], [("IT", plan.actors[0].address, 2_000)], MallParams(
        merchant_bond_min=1_000, arbitrator_bond_min=500, commission_bps=100,
        ship_timeout_ms=3 * DAY_MS, delivery_timeout_ms=3 * DAY_MS,
        confirm_timeout_ms=3 * DAY_MS))
    trust = make_trust([], TrustParams(epoch_ms=DAY_MS, report_deposit=1_000,
                                       report_ruling_timeout_ms=6 * HOUR_MS))
    return make_genesis(CHAIN_ID, [(plan.actors[i].address, amount)
                                   for i, amount in sorted(plan.balances.items())],
                        [(_key("validator").public_key, 1)], genesis_time_ms=START_MS,
                        fee_min=FEE, mall=mall, trust=trust)


class _Chain:
    """A minimal in-process chain: sign, execute, commit."""

    def __init__(self, path: Path, genesis: Genesis) -> None:
        self.store = Store(path, map_size_bytes=1 << 32)
        self.app = Application(self.store, genesis)
        self.machine = self.app.machine
        self.nonces: dict[bytes, int] = {}
        self.time_ms = genesis.genesis_time_ms
        self.validator = _key("validator")

    def tx(self, signer: KeyPair, tx_type: int, payload: bytes) -> Tx:
        nonce = self.nonces.get(signer.public_key, 0)
        self.nonces[signer.public_key] = nonce + 1
        return sign_tx(signer, CHAIN_ID, tx_type, nonce, FEE, 2**63, payload)

    def block(self, txs: list[Tx], time_ms: int) -> list[int]:
        self.time_ms = max(self.time_ms, time_ms)
        height = self.machine.info()[0] + 1
        result = self.machine.execute(height, self.time_ms, self.validator.public_key, txs)
        self.machine.commit()
        return [r.code for r in result.tx_results]


@dataclass
class Outcome:
    """What a run left: the plan, each order's trust flags, the reports, the rank index."""

    plan: Plan
    flags: list[int]  # per planned order (0 when it was never placed)
    reported: list[bool]
    rank_positions: dict[int, int]  # shop index -> position of its listing in the index
    ranks: dict[int, int]  # shop index -> its listing's rank (ppm)
    reports: int
    fake_rulings: int
    failed_txs: int
    blocks: int
    refused_reports: dict[int, int] = field(default_factory=dict)  # error code -> count


def run_market(plan: Plan, workdir: Path | None = None,
               progress: Callable[[int, int], None] | None = None) -> Outcome:
    """Execute the plan on a fresh chain (in `workdir`, else a temporary directory)."""
    if workdir is None:
        # tmpfs when there is one: the run commits a block per step and measures
        # detection, not fsync.
        scratch = "/dev/shm" if Path("/dev/shm").is_dir() else None
        with tempfile.TemporaryDirectory(prefix="chainmall-market-", dir=scratch) as tmp:
            return run_market(plan, Path(tmp), progress)
    genesis = market_genesis(plan)
    chain = _Chain(workdir / "ledger", genesis)
    try:
        return _Runner(plan, chain, progress).run()
    finally:
        chain.store.close()


class _Runner:
    def __init__(self, plan: Plan, chain: _Chain,
                 progress: Callable[[int, int], None] | None) -> None:
        self.plan = plan
        self.chain = chain
        self.progress = progress
        self.actors = plan.actors
        self.products: dict[int, bytes] = {}
        self.items: dict[int, list[str]] = {}
        self.failed = 0
        self.blocks = 0
        self.watcher = Watcher(StoreChainReader(chain.store), plan.config.watch)
        self.reports: dict[bytes, tuple[int, ...]] = {}  # report id -> planned order indexes
        self.by_order_id: dict[bytes, int] = {}
        self.voted: set[bytes] = set()
        self.refused: dict[int, int] = {}  # error code -> reports the chain refused

    def _run_block(self, txs: list[Tx], time_ms: int) -> list[int]:
        codes = self.chain.block(txs, time_ms)
        self.blocks += 1
        self.failed += sum(1 for code in codes if code)
        return codes

    def setup(self) -> None:
        plan, chain = self.plan, self.chain
        t = START_MS
        txs = []
        for shop_index, actor in enumerate(plan.shops):
            details = PartyDetails(ROLE_MERCHANT, 10_000, "IT", f"Shop {shop_index}",
                                   bytes(32))
            txs.append(chain.tx(self.actors[actor], C.TX_MALL_PARTY_REGISTER, details.encode()))
        for actor in plan.arbitrators:
            details = PartyDetails(ROLE_ARBITRATOR, 1_000, "", "Arbitrator", bytes(32))
            txs.append(chain.tx(self.actors[actor], C.TX_MALL_PARTY_REGISTER, details.encode()))
        self._run_block(txs, t + 1_000)
        needed: dict[int, int] = {}
        for planned in plan.orders:
            needed[planned.shop] = needed.get(planned.shop, 0) + 1
        listings = []
        for shop_index, actor in enumerate(plan.shops):
            price = next((o.price for o in plan.orders if o.shop == shop_index), 1_000)
            words = ("silver", "ring", "necklace", "bracelet", "earrings", "brooch")
            title = f"{words[shop_index % 6].title()} {words[(shop_index // 6) % 6]} " \
                    f"no. {shop_index}"
            listing = Listing(price, 1_000_000, bytes(32), title,
                              f"jewellery/{words[shop_index % 6]}")
            tx = chain.tx(self.actors[actor], C.TX_MALL_PRODUCT_LIST, listing.encode())
            listings.append(tx)
            self.products[shop_index] = tx.tx_id
        self._run_block(listings, t + 2_000)
        events = []
        for shop_index, actor in enumerate(plan.shops):
            uris = [f"urn:epc:id:sgtin:0000001.{shop_index:06d}.{n}"
                    for n in range(needed.get(shop_index, 0))]
            self.items[shop_index] = uris
            for start in range(0, len(uris), ITEMS_PER_EVENT):
                event = TraceEvent(KIND_OBJECT, ACTION_ADD, t, 0, "commissioning", "active",
                                   epcs=tuple(uris[start:start + ITEMS_PER_EVENT]))
                events.append(chain.tx(self.actors[actor], C.TX_MALL_TRACE_RECORD,
                                       event.encode(check=False)))
        self._run_block(events, t + 3_000)
        next_item = dict.fromkeys(range(len(plan.shops)), 0)
        for planned in plan.orders:
            planned.item = self.items[planned.shop][next_item[planned.shop]]
            next_item[planned.shop] += 1

    def _tx_for(self, kind: str, args: tuple[Any, ...]) -> Tx | None:
        chain, actors, plan = self.chain, self.actors, self.plan
        if kind in ("fund", "pay"):
            source, target, amount = args
            return chain.tx(actors[source], C.TX_TYPE_TRANSFER,
                            encode_transfer(actors[target].address, amount))
        planned = plan.orders[args[0]]
        buyer = actors[planned.buyer]
        merchant = actors[plan.shops[planned.shop]]
        if kind == "place":
            tx = chain.tx(buyer, C.TX_MALL_ORDER_PLACE, Placement(
                self.products[planned.shop], 1, planned.price, b"\x5a" * 60).encode())
            planned.order_id = tx.tx_id
            self.by_order_id[tx.tx_id] = args[0]
            return tx
        if not planned.order_id:
            return None
        if kind == "ship":
            return chain.tx(merchant, C.TX_MALL_HANDOVER_PROPOSE, Proposal(
                item_key(planned.item), buyer.address, planned.order_id).encode())
        if kind == "accept":
            return chain.tx(buyer, C.TX_MALL_HANDOVER_ACCEPT, Acceptance(
                item_key(planned.item), chain.time_ms, 0, "accepting").encode())
        if kind == "confirm":
            return chain.tx(buyer, C.TX_MALL_ESCROW_CONFIRM,
                            OrderRef(planned.order_id).encode())
        if kind == "review":
            return chain.tx(buyer, C.TX_TRUST_REVIEW_ADD,
                            ReviewDraft(planned.order_id, planned.rating, 0, b"").encode())
        raise ValueError(kind)

    def run(self) -> Outcome:
        plan, config = self.plan, self.plan.config
        self.setup()
        actions = plan.actions
        index = 0
        time_ms = START_MS + 4_000
        next_watch = START_MS + config.watch_every_ms
        end_ms = START_MS + config.hours * HOUR_MS
        total_blocks = (end_ms - time_ms) // config.block_ms + 1
        while time_ms < end_ms or index < len(actions):
            time_ms += config.block_ms
            txs: list[Tx] = []
            while index < len(actions) and START_MS + actions[index][0] <= time_ms:
                _, _, kind, args = actions[index]
                index += 1
                tx = self._tx_for(kind, args)
                if tx is not None:
                    txs.append(tx)
            txs += self._votes()
            codes = self._run_block(txs, time_ms)
            self._forget_failed_orders(txs, codes)
            if time_ms >= next_watch:
                next_watch += config.watch_every_ms
                self._watch(time_ms)
            if self.progress is not None:
                self.progress(self.blocks, total_blocks)
        for _ in range(3):  # a last look, and the blocks the panels need to rule
            self._watch(time_ms)
            for _ in range(3):
                time_ms += config.block_ms
                self._run_block(self._votes(), time_ms)
        return self._outcome()

    def _forget_failed_orders(self, txs: list[Tx], codes: list[int]) -> None:
        for tx, code in zip(txs, codes, strict=True):
            if code and tx.tx_type == C.TX_MALL_ORDER_PLACE:
                self.plan.orders[self.by_order_id[tx.tx_id]].order_id = b""

    def _watch(self, time_ms: int) -> None:
        self.watcher.catch_up()
        findings = self.watcher.scan()
        watcher_key = self.actors[self.plan.watcher]
        pending: list[Tx] = []

        def sink(payload: bytes) -> bytes:
            tx = self.chain.tx(watcher_key, C.TX_TRUST_REPORT_FILE, payload)
            pending.append(tx)
            self.reports[tx.tx_id] = tuple(self.by_order_id[order_id]
                                           for order_id in decode_filing(payload).orders)
            return tx.tx_id

        file_reports(self.watcher, findings, sink)
        if pending:
            codes = self._run_block(pending, time_ms)
            for tx, code in zip(pending, codes, strict=True):
                if code:  # a report the chain refused names nothing: it counts for nothing
                    self.refused[code] = self.refused.get(code, 0) + 1
                    del self.reports[tx.tx_id]
                    self.watcher.reported.difference_update(decode_filing(tx.payload).orders)

    def _votes(self) -> list[Tx]:
        """Panel members vote on drawn reports: fake when at least half the orders are."""
        txs = []
        for report_id, members in self.reports.items():
            if report_id in self.voted:
                continue
            with self.chain.store.reader() as view:
                raw = view.get_state(keys.report(report_id))
            if raw is None:
                continue
            report = decode_report(raw)
            if report.state != REPORT_OPEN or report.round == 0:
                continue
            fakes = sum(1 for m in members if self.plan.orders[m].label in CAMPAIGN_KINDS)
            verdict = VERDICT_FAKE if 2 * fakes >= len(members) else VERDICT_NOT_FAKE
            by_address = {self.actors[a].address: self.actors[a] for a in self.plan.arbitrators}
            majority = len(report.seats) // 2 + 1
            for seat in [seat for seat in report.seats if seat.filled][:majority]:
                if seat.filled:
                    txs.append(self.chain.tx(by_address[seat.arbitrator],
                                             C.TX_TRUST_REPORT_VOTE,
                                             Verdict(report_id, report.round, verdict).encode()))
            self.voted.add(report_id)
        return txs

    def _outcome(self) -> Outcome:
        plan = self.plan
        flags, reported = [], []
        with self.chain.store.reader() as view:
            for planned in plan.orders:
                raw = view.get_state(keys.order(planned.order_id)) if planned.order_id else None
                record = None if raw is None else decode_order_trust(raw)
                flags.append(0 if record is None else record.flags)
                reported.append(record is not None and (
                    bool(record.flags & (FLAG_REPORTED | FLAG_FAKE))
                    or planned.order_id in self.watcher.reported))
            positions: dict[int, int] = {}
            ranks: dict[int, int] = {}
            shop_of = {product_id: shop for shop, product_id in self.products.items()}
            start, end = keys.prefix_range(keys.rank_prefix(keys.TERM_ALL, b""))
            for position, (key, _) in enumerate(view.state_range(start, end)):
                rank, product_id = keys.parse_rank_entry(key)
                if product_id in shop_of:
                    positions[shop_of[product_id]] = position
                    ranks[shop_of[product_id]] = rank
            fake_rulings = sum(
                1 for report_id in self.reports
                if decode_report(view.get_state(keys.report(report_id))).state == REPORT_FAKE)
        return Outcome(plan, flags, reported, positions, ranks, len(self.reports),
                       fake_rulings, self.failed, self.blocks, dict(self.refused))


# --- measuring -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the detection table."""

    kind: str
    orders: int
    caught: int
    flagged: int
    reported: int

    @property
    def rate(self) -> float:
        return self.caught / self.orders if self.orders else 0.0


def measure(outcome: Outcome) -> list[Row]:
    """Per label (each campaign kind, camouflage, honest): orders placed, caught (flagged
    on chain or reported), of which flagged, of which reported."""
    rows = []
    labels = [*CAMPAIGN_KINDS, "camouflage", "honest"]
    for label in labels:
        placed = [i for i, o in enumerate(outcome.plan.orders)
                  if o.label == label and o.order_id]
        if not placed:
            continue
        flagged = sum(1 for i in placed if outcome.flags[i] & FLAGS_VOID & ~FLAG_FAKE)
        reported_ = sum(1 for i in placed if outcome.reported[i])
        caught = sum(1 for i in placed
                     if outcome.flags[i] & FLAGS_VOID or outcome.reported[i])
        rows.append(Row(label, len(placed), caught, flagged, reported_))
    return rows


@dataclass(frozen=True, slots=True)
class Table:
    """The detection table with the rank check."""

    rows: list[Row]
    # brushing shop -> (kind, rank with, rank without, position with, position without)
    standing: dict[int, tuple[str, int, int, int, int]]
    outcome: Outcome

    @property
    def fake_recall(self) -> float:
        fake = [r for r in self.rows if r.kind in CAMPAIGN_KINDS]
        total = sum(r.orders for r in fake)
        return sum(r.caught for r in fake) / total if total else 0.0

    @property
    def honest_rate(self) -> float:
        honest = [r for r in self.rows if r.kind == "honest"]
        return honest[0].rate if honest else 0.0

    @property
    def rank_gainers(self) -> list[int]:
        """Brushing shops whose listing ranks higher with their campaign than without (the
        rank itself: a position also moves when other brushers are punished)."""
        return [shop for shop, (_, with_, without, _, _) in self.standing.items()
                if with_ > without]


def detection_table(config: MarketConfig,
                    progress: Callable[[str, int, int], None] | None = None) -> Table:
    """Run the market with and without its campaigns; the table and the rank check."""
    with_plan = plan_market(config, campaigns=True)
    without_plan = plan_market(config, campaigns=False)

    def step(label: str) -> Callable[[int, int], None] | None:
        if progress is None:
            return None
        return lambda done, total: progress(label, done, total)

    outcome = run_market(with_plan, progress=step("with campaigns"))
    baseline = run_market(without_plan, progress=step("without campaigns"))
    standing = {shop: (kind, outcome.ranks.get(shop, 0), baseline.ranks.get(shop, 0),
                       outcome.rank_positions.get(shop, -1),
                       baseline.rank_positions.get(shop, -1))
                for shop, kind in with_plan.brushing.items()}
    return Table(measure(outcome), standing, outcome)


def format_table(table: Table) -> str:
    """The printed table: kind, orders, recall (or false-positive rate), flagged, reported."""
    lines = [f"{'kind':<14} {'orders':>7} {'caught':>7} {'rate':>8} {'flagged':>8} "
             f"{'reported':>9}"]
    for row in table.rows:
        name = "recall" if row.kind in CAMPAIGN_KINDS else (
            "FP rate" if row.kind == "honest" else "rate")
        lines.append(f"{row.kind:<14} {row.orders:>7} {row.caught:>7} "
                     f"{100 * row.rate:>7.2f}% {row.flagged:>8} {row.reported:>9}  ({name})")
    lines.append(f"reports: {table.outcome.reports} accepted, {table.outcome.fake_rulings} "
                 f"ruled fake; refused by the chain: {table.outcome.refused_reports or 'none'}")
    lines.append("")
    lines.append(f"{'brushing shop':<14} {'kind':<12} {'rank with':>10} {'without':>8} "
                 f"{'position with':>14} {'without':>8}")
    for shop, (kind, with_, without, at_with, at_without) in sorted(table.standing.items()):
        lines.append(f"{shop:<14} {kind:<12} {with_:>10} {without:>8} {at_with:>14} "
                     f"{at_without:>8}")
    return "\n".join(lines)

