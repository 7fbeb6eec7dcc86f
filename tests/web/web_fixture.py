"""Mock mall data for the product page: the silver-jewellery story and a 1,000-event item.

Builds, with chainmall's real state tree, header and commit code, the exact
JSON-RPC results docs/page.md defines (`mall.info`, `mall.products`,
`mall.product`, `mall.item_trace`), so the page can be looked at and tested
before the node and the mall serve them. A tamper switch alters one thing
after the proofs are made, as the node's test-only switch will.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from chainmall.core.address import encode_address
from chainmall.core.keys import KeyPair
from web_chain import Anchor, ProvenState, filler_entries, key_of, make_anchor
from web_layout import TraceEvent, trace_key

CHAIN_ID = "chainmall-demo"
ANCHOR_HEIGHT = 4242
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
STORY_START_MS = 1_775_030_400_000  # 2026-04-01 08:00 UTC
BIG_ITEM = "bench-1000"
TAMPER_MODES = ("event", "commit", "hide")


@dataclass(frozen=True)
class Party:
    """A registered party of the story."""

    name: str
    role: str
    key: KeyPair

    @property
    def address(self) -> str:
        return encode_address(self.key.address)


def _parties() -> dict[str, Party]:
    table = {
        "refiner": ("Andes Silver Refinery", "producer"),
        "workshop": ("Taller Plata Taxco", "processor"),
        "assay": ("Taxco Assay Office", "inspector"),
        "merchant": ("Luna Jewellery", "merchant"),
        "merchant2": ("Plata Viva", "merchant"),
        "certifier": ("Silver Guild Certification", "certifier"),
        "freight": ("Sierra Freight", "carrier"),
        "courier": ("Last Mile Couriers", "carrier"),
        "buyer": ("a buyer", "buyer"),
        "buyer2": ("a buyer", "buyer"),
        "buyer3": ("a buyer", "buyer"),
    }
    return {tag: Party(name, role, key_of(tag)) for tag, (name, role) in table.items()}


@dataclass
class Story:
    """Trace lists per item, in order, plus the listings and their reviews."""

    parties: dict[str, Party]
    lists: dict[str, list[TraceEvent]] = field(default_factory=dict)
    height: int = 100

    def record(self, item: str, event: TraceEvent) -> None:
        self.lists.setdefault(item, []).append(event)

    def event(self, kind: str, who: str, time_ms: int, biz_step: str, **fields: Any) -> TraceEvent:
        self.height += 3
        for side in ("source", "destination"):
            if isinstance(fields.get(side), str):
                fields[side] = self.parties[fields[side]].key.address
        return TraceEvent(kind=kind, event_time_ms=time_ms, tz_offset=fields.pop("tz", "-06:00"),
                          recorded_height=self.height, signer=self.parties[who].key.public_key,
                          biz_step=biz_step, **fields)


RINGS = [f"ring-{n:04d}" for n in range(1, 13)]
LOT = "lot-ag-2026-0042"


def _silver_story(story: Story) -> None:
    t = STORY_START_MS
    commission = story.event(
        "object", "refiner", t, "commissioning", tz="-04:00", disposition="active",
        read_point="Potosí refinery, furnace 2",
        biz_location="Andes Silver Refinery, Potosí, Bolivia",
        outputs=((LOT, 5000),),
        details="Fine silver bars, 999.0 fineness, 5,000 g, ore from Cerro Rico (lot AG-2026-0042)",
    )
    story.record(LOT, commission)
    story.record(LOT, story.event(
        "custody", "refiner", t + 2 * DAY_MS, "shipping", tz="-04:00", disposition="in_transit",
        read_point="Potosí refinery, dispatch dock", biz_location="Potosí, Bolivia",
        outputs=((LOT, 5000),), source="refiner", destination="freight",
        details="Handed to Sierra Freight, sealed case 7731",
    ))
    story.record(LOT, story.event(
        "custody", "workshop", t + 9 * DAY_MS, "receiving", disposition="in_progress",
        read_point="Taller Plata Taxco, receiving desk",
        biz_location="Taxco de Alarcón, Guerrero, Mexico",
        outputs=((LOT, 5000),), source="freight", destination="workshop",
        details="Seal 7731 intact, 5,000 g weighed on arrival",
    ))
    forged = story.event(
        "transformation", "workshop", t + 12 * DAY_MS, "creating_class_instance",
        disposition="active", read_point="Bench 3",
        biz_location="Taller Plata Taxco, Taxco, Mexico",
        inputs=((LOT, 96),), outputs=tuple((ring, 1) for ring in RINGS),
        details="12 rings hand-forged from 96 g of lot AG-2026-0042, alloyed to sterling 925",
    )
    story.record(LOT, forged)
    for ring in RINGS:
        story.record(ring, forged)
    mistaken = story.event(
        "object", "assay", t + 14 * DAY_MS, "inspecting", disposition="conformant",
        read_point="Assay lab, XRF bench", biz_location="Taxco Assay Office, Taxco, Mexico",
        outputs=tuple((ring, 1) for ring in RINGS),
        details="Fineness 92.5 per mille, hallmark TX-925 struck",
    )
    correction = story.event(
        "correction", "assay", t + 14 * DAY_MS + 2 * HOUR_MS, "inspecting",
        read_point="Assay lab", biz_location="Taxco Assay Office, Taxco, Mexico",
        outputs=tuple((ring, 1) for ring in RINGS), corrects=mistaken.event_id(),
        details="Typing error in the fineness: 92.5 was written for 925 per mille",
    )
    corrected_assay = story.event(
        "object", "assay", t + 14 * DAY_MS + 2 * HOUR_MS, "inspecting", disposition="conformant",
        read_point="Assay lab, XRF bench", biz_location="Taxco Assay Office, Taxco, Mexico",
        outputs=tuple((ring, 1) for ring in RINGS),
        details="Fineness 925 per mille (sterling), hallmark TX-925 struck",
    )
    to_shop = story.event(
        "custody", "merchant", t + 16 * DAY_MS, "receiving", disposition="sellable_not_accessible",
        read_point="Luna Jewellery stock room", biz_location="Luna Jewellery, Mexico City",
        outputs=tuple((ring, 1) for ring in RINGS), source="workshop", destination="merchant",
        details="Received 12 rings from the workshop",
    )
    for ring in RINGS:
        story.record(ring, mistaken)
        story.record(ring, correction)
        story.record(ring, corrected_assay)
        story.record(ring, to_shop)
    shipped = t + 30 * DAY_MS
    for who, source, destination, step, offset, place, note in (
        ("merchant", "merchant", "freight", "shipping", 0, "Luna Jewellery, Mexico City",
         "Order 7 packed and handed to Sierra Freight"),
        ("courier", "freight", "courier", "receiving", DAY_MS, "Last Mile depot, Guadalajara",
         "Transferred to Last Mile Couriers for delivery"),
        ("buyer", "courier", "buyer", "accepting", 2 * DAY_MS, "Guadalajara, Jalisco",
         "Delivered; received by the buyer"),
    ):
        story.record(RINGS[0], story.event(
            "custody", who, shipped + offset, step, read_point=place, biz_location=place,
            outputs=((RINGS[0], 1),), source=source, destination=destination, details=note,
            disposition="in_transit" if step != "accepting" else "active",
        ))


def _big_item(story: Story, total: int) -> None:
    """`total` distinct events over four levels joined by three transformations."""
    levels = [f"{BIG_ITEM}-raw", f"{BIG_ITEM}-cast", f"{BIG_ITEM}-part", BIG_ITEM]
    per_level = total // len(levels)
    time_ms = STORY_START_MS
    for depth, item in enumerate(levels):
        if depth > 0:
            story.record(item, story.lists[levels[depth - 1]][-1])  # the transformation
        for count in range(per_level - (1 if depth < 3 else 0)):
            time_ms += HOUR_MS
            story.record(item, story.event(
                "object", "assay" if count % 2 else "workshop", time_ms, "inspecting",
                read_point=f"Station {count % 7}", biz_location="Test plant",
                outputs=((item, 1),), disposition="conformant",
                details=f"Check {count} of {item}",
            ))
        if depth < 3:
            time_ms += HOUR_MS
            story.record(item, story.event(
                "transformation", "workshop", time_ms, "creating_class_instance",
                read_point="Press", biz_location="Test plant", inputs=((item, 1),),
                outputs=((levels[depth + 1], 1),), details=f"{item} becomes {levels[depth + 1]}",
            ))


@dataclass
class MockMall:
    """The JSON-RPC results the mock node serves, built once."""

    info: dict[str, Any]
    products: list[dict[str, Any]]
    product_pages: dict[str, dict[str, Any]]
    traces: dict[str, dict[str, Any]]
    anchor: Anchor
    parties: dict[str, Party]


def _listing_json(story: Story, certified: bool) -> dict[str, Any]:
    p = story.parties
    return {
        "ring": {
            "id": "silver-ring-925",
            "title": "Sterling silver ring, hand-forged in Taxco",
            "category": "jewellery/rings",
            "price": "8900",
            "stock": "11",
            "sold": "41",
            "items": RINGS,
            "merchant": {
                "address": p["merchant"].address,
                "name": p["merchant"].name,
                "jurisdiction": "MX",
                "certifications": [{
                    "certifier": {"address": p["certifier"].address, "name": p["certifier"].name},
                    "brand": "Taxco Silver",
                    "height": "130",
                }] if certified else [],
                "reputation": {"score": 94, "scale": 100, "reviews": 3},
            },
            "reviews": [
                {"order": "7", "author": p["buyer"].address, "rating": 5, "height": "4100",
                 "text": "Beautiful ring, and I could see where the silver came from.",
                 "reply": {"text": "Thank you! Each ring is forged by hand in Taxco.",
                           "height": "4105"}},
                {"order": "9", "author": p["buyer2"].address, "rating": 4, "height": "4150",
                 "text": "Lovely finish; shipping took eight days.", "reply": None},
                {"order": "12", "author": p["buyer3"].address, "rating": 5, "height": "4200",
                 "text": "The hallmark matches the assay record. Very happy.",
                 "reply": {"text": "Glad it arrived safely.", "height": "4201"}},
            ],
        },
    }


def _product_summary(page: dict[str, Any]) -> dict[str, Any]:
    merchant = page["merchant"]
    certifications = merchant["certifications"]
    return {
        "id": page["id"], "title": page["title"], "category": page["category"],
        "price": page["price"], "stock": page["stock"], "sold": page["sold"],
        "merchant": {"address": merchant["address"], "name": merchant["name"]},
        "certified_by": certifications[0]["certifier"] if certifications else None,
        "reputation": merchant["reputation"],
    }


def _other_products(story: Story) -> list[dict[str, Any]]:
    p = story.parties
    base = _listing_json(story, True)["ring"]
    chain = dict(base, id="silver-chain-45", title="Silver curb chain, 45 cm", price="12900",
                 category="jewellery/necklaces", stock="4", sold="17", items=[], reviews=[])
    earrings = dict(
        base, id="silver-earrings-leaf", title="Leaf earrings in 950 silver", price="5400",
        category="jewellery/earrings", stock="23", sold="9", items=[], reviews=[],
        merchant={"address": p["merchant2"].address, "name": p["merchant2"].name,
                  "jurisdiction": "MX", "certifications": [],
                  "reputation": {"score": 71, "scale": 100, "reviews": 1}},
    )
    return [chain, earrings]


def _entry(item: str, seq: int, value: bytes, state: ProvenState) -> dict[str, Any]:
    key = trace_key(item, seq)
    return {"seq": seq, "key": key.hex(), "value": value.hex(), "proof": state.prove(key).hex()}


def _trace_items(lists: dict[str, list[TraceEvent]], item: str) -> list[str]:
    """`item`, then every input reached through its transformations (breadth first)."""
    order, queue = [], [item]
    while queue:
        current = queue.pop(0)
        if current in order or current not in lists:
            continue
        order.append(current)
        for event in lists[current]:
            if event.kind == "transformation" and any(o == current for o, _ in event.outputs):
                queue.extend(name for name, _ in event.inputs)
    return order


def build_mall(tamper: str | None = None, big_item_events: int = 1000,
               filler: int = 5000) -> MockMall:
    """Every mock result; `tamper` is None or one of `event:ITEM:SEQ`, `commit`, `hide:ITEM`."""
    story = Story(_parties())
    _silver_story(story)
    if big_item_events:
        _big_item(story, big_item_events)
    entries = filler_entries(filler)
    for item, events in story.lists.items():
        for seq, event in enumerate(events):
            entries[trace_key(item, seq)] = event.encode()
    state = ProvenState(entries)
    validators = [(key_of(f"validator-{i}"), 10) for i in range(4)]
    anchor = make_anchor(CHAIN_ID, ANCHOR_HEIGHT, state.root, validators, signers=[0, 1, 3])
    names = {
        party.address: {"name": party.name, "role": party.role}
        for tag, party in story.parties.items() if not tag.startswith("buyer")
    }
    traces = {}
    for item in story.lists:
        if item.startswith(LOT) or item.endswith(("-raw", "-cast", "-part")):
            continue  # inputs are served inside the traces of what they became
        lists = []
        for name in _trace_items(story.lists, item):
            events = story.lists[name]
            lists.append({
                "item": name,
                "events": [_entry(name, seq, e.encode(), state) for seq, e in enumerate(events)],
                "end": {"seq": len(events), "key": trace_key(name, len(events)).hex(),
                        "proof": state.prove(trace_key(name, len(events))).hex()},
            })
        traces[item] = {
            "item": item,
            "product": "silver-ring-925" if item in RINGS else None,
            "anchor": anchor.to_json(),
            "lists": lists,
            "parties": names,
        }
    ring = _listing_json(story, True)["ring"]
    pages = {page["id"]: page for page in [ring, *_other_products(story)]}
    mall = MockMall(
        info={"chain_id": CHAIN_ID, "name": "chainmall demo mall",
              "currency": {"symbol": "CMT", "decimals": 2}, "ranking": "sales"},
        products=sorted((_product_summary(p) for p in pages.values()),
                        key=lambda p: -int(p["sold"])),
        product_pages=pages, traces=traces, anchor=anchor, parties=story.parties,
    )
    if tamper:
        _apply_tamper(mall, tamper, validators)
    return mall


def _apply_tamper(mall: MockMall, tamper: str, validators: list) -> None:
    """Alter one served thing after its proof was made (the test-only switch)."""
    mode, _, rest = tamper.partition(":")
    if mode == "event":
        item, _, seq_text = rest.rpartition(":")
        for trace in mall.traces.values():
            for listed in trace["lists"]:
                if listed["item"] == item:
                    entry = listed["events"][int(seq_text)]
                    value = bytearray.fromhex(entry["value"])
                    value[-1] ^= 0x01  # the last byte of the details text: still readable
                    entry["value"] = value.hex()
    elif mode == "commit":
        signature = bytearray(mall.anchor.commit.signatures[0].signature)
        signature[5] ^= 0x01
        sigs = list(mall.anchor.commit.signatures)
        sigs[0] = replace(sigs[0], signature=bytes(signature))
        bad = replace(mall.anchor, commit=replace(mall.anchor.commit, signatures=tuple(sigs)))
        for trace in mall.traces.values():
            trace["anchor"] = bad.to_json()
    elif mode == "hide":
        for trace in mall.traces.values():
            for listed in trace["lists"]:
                if listed["item"] == rest:
                    hidden = listed["events"].pop()
                    listed["end"] = {"seq": hidden["seq"], "key": hidden["key"],
                                     "proof": hidden["proof"]}
    else:
        raise ValueError(f"unknown tamper mode {tamper!r}; use one of {TAMPER_MODES}")
