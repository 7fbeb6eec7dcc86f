"""The product page's answers from a node's ledger: listings, a listing, an item's history.

`PageReader` builds the JSON results of docs/page.md section 2 from the
mall's committed state, each in one LMDB read snapshot, so every object of
an answer is read at one height. `item_trace` serves an item's history the
way the browser checks it: every state entry of `trace(item)` (items, index
entries, event records, declaration markers), state proofs of its anchors
and of the absence of the declaration markers the page cannot otherwise
rule out (below), against the state root of the latest block, that block's
header, its commit certificate and the validator set that signed it
(`checked_by` "commit", the in-process engine's form); a CometBFT node gives
`PageReader` an `AnchorSource` that serves its light client's verified header
instead (`page_cometbft.py`, docs/page.md section 3.6).

A declaration of an event is indexed under the items the event names, so it
is in the history of any item whose events are served to the end. An event
served only in the cut part of an input's or a container's history could
have been declared erroneous later: for each such event without a marker the
answer proves that no marker exists.

The methods are synchronous and read LMDB: the node runs them in its read
threads.

Test-only switch: with `CHAINMALL_TEST_SWITCHES=1`, `CHAINMALL_TEST_ALTER_EVENT`
(an event id, hex) makes `item_trace` serve that event's record with one bit
of its event time flipped, after the proofs were made: the browser test
checks that the page then says "not verified". Without the first variable
the second is refused (`alteration_from_env`); neither is a config key.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ..abci.app import Application, StateReader
from ..address import decode_address, encode_address
from ..block import Block, decode_block
from ..constants import (
    HASH_BYTES,
    PAGE_CURRENCY_DECIMALS,
    PAGE_CURRENCY_SYMBOL,
    PAGE_REVIEWS_MAX,
    PAGE_TRACE_EVENTS_MAX,
    PAGE_TRACE_ITEMS_MAX,
    TABLE_MALL_EVENTS,
    TABLE_MALL_ITEM_EVENTS,
)
from ..errors import InvalidAddress, InvalidConfig, LimitExceeded, NotFound, StorageError
from ..genesis import VALIDATOR_SET_KEY, encode_validators
from ..hashing import digest
from ..mall import keys as mall_keys
from ..mall import storefront
from ..mall.events import decode_event_record
from ..mall.history import Trace, trace
from ..mall.items import PARTY_URI_PREFIX, decode_index_entry
from ..mall.parties import load_party
from ..mall.products import PRODUCT_ACTIVE
from ..mall.storefront import Listing, Reputation, Storefront
from ..mall.vocab import KIND_ERROR_DECLARATION
from ..state.root import StateTree
from ..store import StoreView
from .page_trust import trust_view

log = logging.getLogger("chainmall.node.page")

TEST_SWITCHES_ENV = "CHAINMALL_TEST_SWITCHES"
ALTER_EVENT_ENV = "CHAINMALL_TEST_ALTER_EVENT"
CHECKED_BY_COMMIT = "commit"
_HEX_ID = re.compile(r"[0-9a-f]{64}")
# Where a record's event time sits: version, height, block time, tx id, recorder, payload
# length (the record), then version, kind, action (the payload).
_EVENT_TIME_LAST_BYTE = 1 + 8 + 8 + 32 + 20 + 2 + 3 + 7


def alteration_from_env(environ: Mapping[str, str] | None = None) -> bytes | None:
    """The event id `CHAINMALL_TEST_ALTER_EVENT` names, or None; InvalidConfig when it is set
    without `CHAINMALL_TEST_SWITCHES=1` or is not an event id (64 lower-case hex digits)."""
    environ = os.environ if environ is None else environ
    text = environ.get(ALTER_EVENT_ENV)
    if text is None:
        return None
    if environ.get(TEST_SWITCHES_ENV) != "1":
        raise InvalidConfig(f"{ALTER_EVENT_ENV} is a test-only switch: it is refused unless "
                            f"{TEST_SWITCHES_ENV}=1 is set too")
    if not _HEX_ID.fullmatch(text):
        raise InvalidConfig(f"{ALTER_EVENT_ENV}: expected an event id (64 lower-case hex "
                            "digits)")
    return bytes.fromhex(text)


class Anchor(Protocol):
    """What an item's history is proven against: `root`, the state root the proofs are
    taken under, and `to_json()`, the answer's `anchor` (docs/page.md section 2.4)."""

    @property
    def root(self) -> bytes: ...

    def to_json(self) -> dict[str, Any]: ...


class AnchorSource(Protocol):
    """Where a node's anchors come from: the anchor for the state of a read snapshot."""

    def anchor(self, view: StoreView) -> Anchor: ...


@dataclass(frozen=True, slots=True)
class CommitAnchor:
    """The in-process engine's anchor: the latest block, its commit certificate and the
    validator set that signed it (`checked_by` "commit")."""

    block: Block
    validators: bytes

    @property
    def root(self) -> bytes:
        return self.block.header.state_root

    def to_json(self) -> dict[str, Any]:
        header = self.block.header
        assert self.block.commit is not None
        return {"checked_by": CHECKED_BY_COMMIT, "height": header.height,
                "header": header.encode().hex(), "commit": self.block.commit.encode().hex(),
                "validators": self.validators.hex()}


class PageReader:
    """The page's reads over an `Application`'s store (see the module docstring)."""

    def __init__(self, app: Application, storefront_view: Storefront | None = None,
                 alter_event: bytes | None = None, anchors: AnchorSource | None = None) -> None:
        self.app = app
        self.anchors = anchors
        self.genesis = app.genesis
        self.storefront = storefront_view or Storefront(app.genesis.mall, trust_view())
        self.alter_event = alter_event
        self._validators = encode_validators(app.genesis.validators)
        if alter_event is not None:
            log.warning("test switch: item histories serve event %s altered",
                        alter_event.hex())

    # --- mall.info --------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        with self.app.store.reader() as view:
            tip = view.last()
        return {"chain_id": self.genesis.chain_id,
                "name": f"chainmall · {self.genesis.chain_id}",
                "currency": {"symbol": PAGE_CURRENCY_SYMBOL,
                             "decimals": PAGE_CURRENCY_DECIMALS},
                "ranking": self.storefront.ranking, "height": tip.height,
                "validator_set_hash": digest(self._validators, VALIDATOR_SET_KEY).hex()}

    # --- mall.products / mall.product ---------------------------------------------------

    def products(self, query: str, limit: int) -> dict[str, Any]:
        with self.app.store.reader() as view:
            state = StateReader(view)
            if query:
                found = self.storefront.search(state, query, limit)
            else:
                found = self.storefront.top(state, limit)
            products = [self._summary(state, listing) for listing in found]
        ranking = "match" if query else self.storefront.ranking
        return {"query": query, "ranking": ranking, "products": products}

    def _summary(self, state: StateReader, listing: Listing) -> dict[str, Any]:
        product = listing.product
        merchant = product.merchant
        certificates = self.storefront.certificates(state, merchant)
        return {**_product_fields(listing),
                "merchant": {"address": encode_address(merchant),
                             "name": _party_name(state, merchant)},
                "certified_by": ({"address": encode_address(certificates[0].certifier),
                                  "name": certificates[0].certifier_name}
                                 if certificates else None),
                "reputation": _reputation(self.storefront.reputation(state, merchant))}

    def product(self, product_id: bytes) -> dict[str, Any]:
        with self.app.store.reader() as view:
            state = StateReader(view)
            product = storefront.listing(state, product_id)
            merchant = product.merchant
            party = load_party(state, merchant)
            certificates = self.storefront.certificates(state, merchant)
            reviews = self.storefront.reviews(state, product_id, PAGE_REVIEWS_MAX)
            return {
                **_product_fields(Listing(product_id, product)),
                "items": storefront.shipped_items(state, merchant, product_id),
                "merchant": {
                    "address": encode_address(merchant),
                    "name": party.name if party else "",
                    "jurisdiction": party.jurisdiction if party else "",
                    "certifications": [
                        {"certifier": {"address": encode_address(c.certifier),
                                       "name": c.certifier_name},
                         "brand": c.brand, "height": c.certified_height}
                        for c in certificates],
                    "reputation": _reputation(self.storefront.reputation(state, merchant)),
                },
                "reviews": [
                    {"order": r.order_id.hex(), "author": encode_address(r.author),
                     "rating": r.rating, "text": r.text, "height": r.height,
                     "reply": None if r.reply is None else {"text": r.reply.text,
                                                            "height": r.reply.height}}
                    for r in reviews],
            }

    # --- mall.item_trace ----------------------------------------------------------------

    def item_trace(self, item: str) -> dict[str, Any]:
        with self.app.store.reader() as view:
            state = StateReader(view)
            item_key, found = storefront.find_item(state, item)
            anchor = self._anchor(view)
            history = trace(state, item_key, PAGE_TRACE_EVENTS_MAX, PAGE_TRACE_ITEMS_MAX)
            if history.truncated:
                raise LimitExceeded(f"the history of {found.uri} reaches more than "
                                    f"{PAGE_TRACE_EVENTS_MAX} events or "
                                    f"{PAGE_TRACE_ITEMS_MAX} items: too long for the page")
            tree = StateTree(view, anchor.root)
            proofs = [{"key": key.hex(), "proof": tree.prove(key).encode().hex()}
                      for key in sorted([*history.anchors, *_unshown_markers(history)])]
            parties = self._parties(state, history)
        entries = sorted(history.entries.items())
        if self.alter_event is not None:
            entries = [(key, _altered(key, value, self.alter_event)) for key, value in entries]
        return {"item": found.uri, "key": item_key.hex(), "anchor": anchor.to_json(),
                "entries": [{"key": key.hex(), "value": value.hex()} for key, value in entries],
                "proofs": proofs, "parties": parties}

    def _anchor(self, view: StoreView) -> Anchor:
        """The anchor source's anchor for `view`; without one, the latest committed block,
        with its certificate and the set that signed it."""
        if self.anchors is not None:
            return self.anchors.anchor(view)
        tip = view.last()
        if tip.height == 0:
            raise NotFound("no block has been committed yet")
        raw = view.block(tip.height)
        if raw is None:
            raise StorageError(f"block {tip.height} is missing from the store")
        block = decode_block(raw)
        header = block.header
        if block.commit is None:  # a CometBFT network: its certificates are CometBFT's
            raise NotFound(f"block {tip.height} carries no chainmall commit certificate: a "
                           "CometBFT network's node serves its light client's headers")
        if header.state_root != tip.app_hash:
            raise StorageError(f"block {tip.height}'s state root is not the tip's app hash")
        if digest(self._validators, VALIDATOR_SET_KEY) != header.validator_set_hash:
            raise StorageError(f"block {tip.height} names another validator set than genesis")
        return CommitAnchor(block, self._validators)

    def _parties(self, state: StateReader, history: Trace) -> dict[str, dict[str, str]]:
        """Display names of the recorders and of the parties the events name (labels, not
        checked: the page shows the checked address beside each)."""
        addresses: dict[bytes, None] = {}
        party_uri = PARTY_URI_PREFIX.encode()
        for step in history.steps:
            addresses[step.record.recorder] = None
            if step.is_declaration or party_uri not in step.record.payload:
                continue  # no party named: no need to decode it
            event = step.record.event()
            for entry in (*event.sources, *event.destinations):
                if entry.uri.startswith(PARTY_URI_PREFIX):
                    try:
                        addresses[decode_address(entry.uri[len(PARTY_URI_PREFIX):])] = None
                    except InvalidAddress:
                        continue
        labels = {}
        for address in addresses:
            label = storefront.party_label(state, self.genesis.mall, address)
            if label is not None:
                labels[encode_address(address)] = {"name": label[0], "role": label[1]}
        return labels


def _unshown_markers(history: Trace) -> list[bytes]:
    """The declaration marker keys of the events served only in cut histories (not in a run
    that reaches its item's last event) that have no marker: the answer proves them absent."""
    listed: dict[bytes, dict[int, bytes]] = {}
    for key, value in history.entries.items():
        if key[0] == TABLE_MALL_ITEM_EVENTS:
            event_id = decode_index_entry(value)[0]
            if mall_keys.event(event_id) in history.entries:
                listed.setdefault(key[1:1 + HASH_BYTES], {})[
                    int.from_bytes(key[1 + HASH_BYTES:], "big")] = event_id
    served: set[bytes] = set()
    covered: set[bytes] = set()
    for item_key, by_seq in listed.items():
        served.update(by_seq.values())
        seq = history.items[item_key].event_count - 1
        while seq in by_seq:
            covered.add(by_seq[seq])
            seq -= 1
    unshown = []
    for event_id in served - covered:
        marker = mall_keys.declaration(event_id)
        record = decode_event_record(history.entries[mall_keys.event(event_id)], False)
        if marker not in history.entries and record.kind != KIND_ERROR_DECLARATION:
            unshown.append(marker)
    return unshown


def _product_fields(listing: Listing) -> dict[str, Any]:
    product = listing.product
    return {"id": listing.product_id.hex(), "title": product.title,
            "category": product.category, "price": str(product.price),
            "stock": product.stock, "sold": product.sold,
            "status": "active" if product.status == PRODUCT_ACTIVE else "delisted",
            "listed_height": product.listed_height}


def _party_name(state: StateReader, address: bytes) -> str:
    party = load_party(state, address)
    return party.name if party else ""


def _reputation(reputation: Reputation | None) -> dict[str, int] | None:
    if reputation is None:
        return None
    return {"score": reputation.score, "scale": reputation.scale,
            "reviews": reputation.reviews}


def _altered(key: bytes, value: bytes, event_id: bytes) -> bytes:
    """The test switch: the record of `event_id` with one bit of its event time flipped."""
    if len(key) != 1 + HASH_BYTES or key[1:] != event_id or key[0] != TABLE_MALL_EVENTS:
        return value
    changed = bytearray(value)
    changed[_EVENT_TIME_LAST_BYTE] ^= 0x01
    return bytes(changed)
