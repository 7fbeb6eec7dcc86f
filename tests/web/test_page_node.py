"""The node's product page answers over a real ledger holding the silver-jewellery story:
listings, a listing, item histories that the page's reference check (page_verdict.py) and
the mall's own `verify_trace` accept, the test-only switch, and the JSON-RPC parameters."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chainmall.cli.story import BRAND, CASE, CERTIFIER_NAME, REPLY, RINGS, SilverStory
from chainmall.core.abci.app import Application
from chainmall.core.errors import InvalidConfig, ItemNotFound, ProductNotFound
from chainmall.core.mall import keys
from chainmall.core.mall.history import verify_trace
from chainmall.core.mall.storefront import item_page_path
from chainmall.core.node.app import open_application
from chainmall.core.node.page import (
    ALTER_EVENT_ENV,
    TEST_SWITCHES_ENV,
    PageReader,
    alteration_from_env,
)
from chainmall.core.node.page_trust import trust_view
from chainmall.core.rpc.jsonrpc import RpcFault
from chainmall.core.rpc.methods import MethodTable, bind_params
from chainmall.core.rpc.page_methods import add_page_methods
from page_verdict import page_verdict
from story_ledger import StoryLedger, build_story_ledger

LONG_EVENTS = 40
TRUST = trust_view() is not None  # the trust rules rank, score and serve reviews
RANKING = "trust" if TRUST else "sales"


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[StoryLedger, Application]]:
    root = tmp_path_factory.mktemp("page-node")
    built = build_story_ledger(root / "home", root / "data", LONG_EVENTS)
    app = open_application(built.data, "page-test")
    try:
        yield built, app
    finally:
        app.store.close()


def _json(answer: dict[str, Any]) -> Any:
    """The answer as a client receives it."""
    return json.loads(json.dumps(answer))


def test_info_names_the_chain_and_the_validator_set(ledger) -> None:
    built, app = ledger
    info = PageReader(app).info()
    assert info["chain_id"] == built.genesis.chain_id and info["ranking"] == RANKING
    assert info["height"] == built.height
    assert info["validator_set_hash"] == built.genesis.validator_set_hash.hex()
    assert info["currency"]["decimals"] >= 0


def test_top_products_and_search(ledger) -> None:
    built, app = ledger
    reader = PageReader(app)
    top = reader.products("", 10)
    assert top["ranking"] == RANKING
    ring, earrings = sorted(top["products"], key=lambda p: p["id"] != built.story.product_id.hex())
    if not TRUST:
        assert top["products"] == [ring, earrings]  # most sold first
    assert ring["id"] == built.story.product_id.hex() and ring["sold"] == 4
    assert ring["certified_by"]["name"] == CERTIFIER_NAME and earrings["certified_by"] is None
    assert ring["price"] == "8900" and (ring["reputation"] is None) == (not TRUST)
    found = reader.products("EARRINGS silver", 10)
    assert found["ranking"] == "match"
    assert [p["title"] for p in found["products"]] == ["Leaf earrings in 950 silver"]
    assert reader.products("nothing like it", 10)["products"] == []
    assert len(reader.products("", 1)["products"]) == 1


def test_a_listing_with_its_certified_merchant_and_items(ledger) -> None:
    built, app = ledger
    page = PageReader(app).product(built.story.product_id)
    merchant = page["merchant"]
    assert merchant["name"] == "Luna Jewellery" and merchant["jurisdiction"] == "MX"
    (certificate,) = merchant["certifications"]
    assert certificate["certifier"]["name"] == CERTIFIER_NAME and certificate["brand"] == BRAND
    assert sorted(page["items"]) == sorted([RINGS[0], CASE])  # what buyers one and two received
    assert page["stock"] == 8
    if TRUST:  # the story's two reviews, and the merchant's reply to the second
        assert merchant["reputation"]["scale"] == 100 and merchant["reputation"]["reviews"] == 2
        assert sorted(r["rating"] for r in page["reviews"]) == [4, 5]
        assert [r["reply"]["text"] for r in page["reviews"] if r["reply"]] == [REPLY]
    else:
        assert page["reviews"] == [] and merchant["reputation"] is None
    with pytest.raises(ProductNotFound):
        PageReader(app).product(bytes(32))


@pytest.mark.parametrize("item", [RINGS[0], RINGS[2], CASE, "long"])
def test_item_histories_verify_as_the_page_checks_them(ledger, item: str) -> None:
    built, app = ledger
    uri = built.long_item if item == "long" else item
    answer = _json(PageReader(app).item_trace(uri))
    verdict = page_verdict(answer)
    assert verdict.ok, verdict.to_json()
    entries = {bytes.fromhex(e["key"]): bytes.fromhex(e["value"]) for e in answer["entries"]}
    anchors = {bytes.fromhex(p["key"]): entries[bytes.fromhex(p["key"])]
               for p in answer["proofs"] if bytes.fromhex(p["key"]) in entries}
    verify_trace(anchors, entries, keys.item_key(uri))  # the mall's own check agrees
    assert answer["item"] == uri and answer["anchor"]["height"] == built.height
    if item == "long":
        assert len(verdict.steps) == LONG_EVENTS
    if item == RINGS[0]:
        assert len(verdict.steps) == 11
        labels = {label["name"] for label in answer["parties"].values()}
        assert {"Andes Silver Refinery", "Taxco Assay Office", "Last Mile Couriers"} <= labels


def test_an_item_by_its_key_and_unknown_items(ledger) -> None:
    _, app = ledger
    reader = PageReader(app)
    by_key = reader.item_trace(keys.item_key(RINGS[0]).hex())
    assert by_key["item"] == RINGS[0]
    for text in ("urn:epc:id:sgtin:0.0.0", "not a uri", "ab" * 32):
        with pytest.raises(ItemNotFound):
            reader.item_trace(text)


def test_the_test_switch_alters_one_event_and_the_page_sees_it(ledger) -> None:
    built, app = ledger
    story: SilverStory = built.story
    altered = PageReader(app, alter_event=story.wrong_inspection).item_trace(RINGS[0])
    verdict = page_verdict(_json(altered))
    assert not verdict.ok
    assert verdict.steps[story.wrong_inspection.hex()] == "chain"
    assert verdict.lists == {keys.item_key(RINGS[0]).hex(): "chain"}
    honest = page_verdict(_json(PageReader(app).item_trace(RINGS[0])))
    assert honest.ok


def test_the_test_switch_is_refused_without_the_test_flag() -> None:
    event = "ab" * 32
    assert alteration_from_env({}) is None
    with pytest.raises(InvalidConfig, match="test-only"):
        alteration_from_env({ALTER_EVENT_ENV: event})
    with pytest.raises(InvalidConfig, match="event id"):
        alteration_from_env({ALTER_EVENT_ENV: "xyz", TEST_SWITCHES_ENV: "1"})
    assert alteration_from_env({ALTER_EVENT_ENV: event, TEST_SWITCHES_ENV: "1"}) == \
        bytes.fromhex(event)


def test_item_page_paths_keep_the_uri_readable() -> None:
    assert item_page_path(RINGS[0]) == f"/item/{RINGS[0]}"
    assert item_page_path("https://id.example/01/1?x") == \
        "/item/https:%2F%2Fid.example%2F01%2F1%3Fx"
    assert item_page_path(RINGS[0], b"\x01" * 32).endswith("?vs=" + "01" * 32)


@pytest.mark.parametrize(("method", "params", "param"), [
    ("mall.products", {"limit": 0}, "limit"),
    ("mall.products", {"limit": 101}, "limit"),
    ("mall.products", {"query": 7}, "query"),
    ("mall.products", {"query": "x" * 129}, "query"),
    ("mall.product", {"id": "AB" * 32}, "id"),
    ("mall.product", {"id": "ab"}, "id"),
    ("mall.item_trace", {"item": ""}, "item"),
    ("mall.item_trace", {"item": "u:" + "x" * 127}, "item"),
])
def test_bad_params_are_invalid_params_naming_the_param(method: str, params: dict,
                                                        param: str) -> None:
    table = add_page_methods(MethodTable())
    found = table.get(method)
    assert found is not None
    with pytest.raises(RpcFault) as fault:
        bind_params(found, params)
    assert fault.value.code == -32602 and fault.value.data == {"param": param}


def test_node_start_refuses_the_switch_without_the_test_flag(ledger) -> None:
    built, _ = ledger
    env = {**os.environ, "CHAINMALL_HOME": str(built.home), ALTER_EVENT_ENV: "ab" * 32}
    env.pop(TEST_SWITCHES_ENV, None)
    result = subprocess.run(
        [sys.executable, "-m", "chainmall.cli", "node", "start", "--data-dir", str(built.data),
         "--rpc-tcp", "127.0.0.1:0", "--rpc-http", "127.0.0.1:0"],
        capture_output=True, text=True, env=env, timeout=120, stdin=subprocess.DEVNULL,
        check=False)
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and "test-only" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_cometbft_node_refuses_the_switch_without_the_test_flag(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`node start --engine cometbft` checks the switch before anything else starts."""
    from chainmall.core.node.cometbft_node import run_cometbft_node
    from chainmall.core.node.config import load_config

    monkeypatch.setenv(ALTER_EVENT_ENV, "ab" * 32)
    monkeypatch.delenv(TEST_SWITCHES_ENV, raising=False)
    with pytest.raises(InvalidConfig, match="test-only"):
        run_cometbft_node(tmp_path, load_config(tmp_path, environ={}), version="test",
                          restart=False)
