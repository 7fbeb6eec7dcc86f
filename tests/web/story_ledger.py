"""A data directory holding the silver-jewellery story (cli/story.py) and an item with 1,000
events, built in this process with the in-process engine (blocks, certificates), ready for a
real `chainmall node start` on it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import blake3
from chainmall.cli.story import (
    ASSAY_LAB,
    MEXICO_MIN,
    START_MS,
    WORKSHOP,
    SilverStory,
    story_genesis,
)
from chainmall.core.datadir import create_data_dir
from chainmall.core.genesis import Genesis
from chainmall.core.keys import KeyPair
from chainmall.core.keystore import KeyStore
from chainmall.core.mall.events import Quantity, TraceEvent
from chainmall.core.mall.vocab import (
    ACTION_ADD,
    ACTION_NONE,
    ACTION_OBSERVE,
    KIND_OBJECT,
    KIND_TRANSFORMATION,
)
from chainmall.core.node.app import open_application
from chainmall.core.node.engine import SingleValidatorEngine
from chainmall.core.tx import Tx

CHAIN = "page-test"
VALIDATOR = KeyPair.from_seed(b"page test validator".ljust(32, b"."))
VALIDATOR_KEY_NAME = "validator"  # node.validator_key's default
LONG_LEVELS = tuple(f"urn:epc:id:sgtin:7501234.099999.{n}" for n in range(1, 5))
LONG_ITEM = LONG_LEVELS[-1]  # made from three earlier items, 250 events each


@dataclass(frozen=True)
class StoryLedger:
    """Where the ledger is and what is in it."""

    home: Path
    data: Path
    genesis: Genesis
    story: SilverStory
    long_item: str | None
    height: int


def long_history(story: SilverStory, events: int) -> list[list[Tx]]:
    """Batches recording `events` distinct events (a multiple of 4) over four items, each
    made from the one before by a transformation: the last item's history holds them all."""
    per_item = events // len(LONG_LEVELS)
    assert per_item * len(LONG_LEVELS) == events and per_item >= 2
    time_ms = START_MS
    batches: list[list[Tx]] = []
    for level, uri in enumerate(LONG_LEVELS):
        batch = []
        inspections = per_item - 1 - (1 if level == 0 else 0)
        if level == 0:
            batch.append(story.record("workshop", TraceEvent(
                KIND_OBJECT, ACTION_ADD, time_ms, MEXICO_MIN, "commissioning", "active",
                WORKSHOP, WORKSHOP, epcs=(uri,))))
        if level == len(LONG_LEVELS) - 1:
            inspections += 1
        for _ in range(inspections):
            time_ms += 60_000
            batch.append(story.record("assay", TraceEvent(
                KIND_OBJECT, ACTION_OBSERVE, time_ms, MEXICO_MIN, "inspecting",
                "conformant", ASSAY_LAB, ASSAY_LAB, epcs=(uri,))))
        if level < len(LONG_LEVELS) - 1:
            time_ms += 60_000
            batch.append(story.record("workshop", TraceEvent(
                KIND_TRANSFORMATION, ACTION_NONE, time_ms, MEXICO_MIN, "commissioning",
                "active", WORKSHOP, WORKSHOP, quantities=(Quantity(uri),),
                out_epcs=(LONG_LEVELS[level + 1],))))
        batches.append(batch)
    return batches


def deterministic_seal(merchant_key: bytes, address: str) -> bytes:
    """A stand-in for a sealed box of the right length, the same on every run (the chain
    only checks the length): for ledgers whose bytes must not change between runs."""
    stream = b""
    while len(stream) < len(address) + 48:
        stream += blake3.blake3(merchant_key + address.encode() + bytes([len(stream)])).digest()
    return stream[:len(address.encode()) + 48]


def build_story_ledger(home: Path, data: Path, long_item_events: int = 1000,
                       start_ms: int | None = None, deterministic: bool = False) -> StoryLedger:
    """The data directory `data` with the story (and the long item unless 0 events), its
    validator key in HOME/keys; blocks one second apart from `start_ms` (default: ending
    before now). `deterministic`: the same bytes on every run (stand-in sealed addresses)."""
    KeyStore(home / "keys").import_seed(VALIDATOR_KEY_NAME, VALIDATOR.seed)
    genesis = story_genesis(CHAIN, VALIDATOR.public_key, genesis_time_ms=1_000)
    store, _, _ = create_data_dir(data, genesis, command="page test")
    store.close()
    story = SilverStory(CHAIN, deterministic_seal) if deterministic else SilverStory(CHAIN)
    batches = story.blocks()
    if long_item_events:
        batches += long_history(story, long_item_events)
    app = open_application(data, "page-test")
    try:
        engine = SingleValidatorEngine(app, VALIDATOR)
        now_ms = start_ms if start_ms is not None else \
            int(time.time() * 1000) - 1000 * (len(batches) + 1)
        for number, batch in enumerate(batches):
            produced = engine.make_block([tx.encode() for tx in batch], now_ms + 1000 * number)
            failed = [(r.code, r.log) for r in produced.result.tx_results if r.code != 0]
            assert not failed and len(produced.block.txs) == len(batch), failed
        height = app.info().last_block_height
    finally:
        app.store.close()
    return StoryLedger(home, data, genesis, story, LONG_ITEM if long_item_events else None,
                       height)
