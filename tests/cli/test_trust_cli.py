"""`chainmall mall review|reputation|search|top|report|watch` and `chainmall reward ...`
against a real node running the mall and the trust rules (docs/trust.md 11, 14)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chainmall.cli.main import cli
from chainmall.cli.trust_client import read
from chainmall.core.abci.types import ProvenEntry, QueryResult
from chainmall.core.errors import InvalidProof
from chainmall.core.rpc.client import BlockingClient
from click.testing import CliRunner, Result
from trust_node import NodeDriver, start_trust_node

pytestmark = pytest.mark.slow
TEXT = "Anello bellissimo, argento 925 vero. " * 25  # 925 bytes: two txs


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A node where shop lists a ring and sold one to alice and one to bob."""
    from chainmall.core.mall.vocab import ROLE_ARBITRATOR, ROLE_MERCHANT
    from mall_chain import key, ok
    from trust_chain import sell

    base = tmp_path_factory.mktemp("trust-cli")
    home = base / "home"
    node, genesis = start_trust_node(home, base / "data")
    try:
        with BlockingClient(node.address) as client:
            chain = NodeDriver(client, genesis)
            k = {name: key(name) for name in ("shop", "alice", "bob", "arb1", "arb2", "arb3")}
            ok(chain.block([chain.register(k["shop"], ROLE_MERCHANT, 10_000, "IT", "Argenteria")]
                           + [chain.register(k[f"arb{i}"], ROLE_ARBITRATOR, 500,
                                             name=f"Arbitro {i}") for i in (1, 2, 3)]))
            ring = chain.list_product(k["shop"], 20_000, 1_000, "Anello in argento 925",
                                      "jewellery/rings")
            ok(chain.block([ring]))
            orders = sell(chain, [(k["shop"], k["alice"], ring.tx_id, 20_000),
                                  (k["shop"], k["bob"], ring.tx_id, 20_000)])
        yield {"home": home, "node": node.address, "product": ring.tx_id.hex(),
               "orders": [order.hex() for order in orders], "keys": k}
    finally:
        node.stop()


def invoke(world: dict[str, Any], *args: str) -> Result:
    runner = CliRunner(env={"CHAINMALL_HOME": str(world["home"]), "CHAINMALL_PASSPHRASE": "",
                            "CHAINMALL_NODE": world["node"], "CHAINMALL_FEE": "1"})
    return runner.invoke(cli, list(args))


def ok_json(world: dict[str, Any], *args: str) -> Any:
    result = invoke(world, "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def one_line_error(result: Result, code: int = 1) -> str:
    assert result.exit_code == code, result.output
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith("error: "), result.output
    return lines[-1]


def test_reviews_versions_and_the_reply(world: dict[str, Any]) -> None:
    alice_order, bob_order = world["orders"]
    added = ok_json(world, "mall", "review", "add", alice_order, "--rating", "5",
                    "--text", TEXT, "--from", "alice")
    assert [tx["code"] for tx in added["txs"]] == [0, 0] and added["version"] == "1"
    ok_json(world, "mall", "review", "add", bob_order, "--rating", "4", "--from", "bob")
    corrected = ok_json(world, "mall", "review", "add", alice_order, "--rating", "4",
                        "--text", "Dopo un mese: ancora perfetto.", "--from", "alice")
    assert corrected["version"] == "2"
    ok_json(world, "mall", "review", "reply", alice_order, "--text", "Grazie!", "--from", "shop")
    shown = ok_json(world, "mall", "review", "list", "--order", alice_order)
    [item] = shown["reviews"]
    assert [v["version"] for v in item["versions"]] == [1, 2]
    assert item["versions"][0]["text"] == TEXT
    assert item["versions"][0]["complete"] and item["reply"]["text"] == "Grazie!"
    assert shown["proof"]["entries_verified"] >= 3
    by_product = ok_json(world, "mall", "review", "list", "--product", world["product"])
    assert {item["order_id"] for item in by_product["reviews"]} == set(world["orders"])
    by_merchant = ok_json(world, "mall", "review", "list", "--merchant", "shop")
    assert len(by_merchant["reviews"]) == 2
    human = invoke(world, "mall", "review", "list", "--order", alice_order).output
    assert "v2 ****" in human and "reply by cm1" in human and "proofs:" in human
    # Only the buyer reviews, once per version; only the merchant replies, once.
    assert "WrongParty (425)" in one_line_error(invoke(
        world, "mall", "review", "add", alice_order, "--rating", "1", "--from", "bob"))
    assert "ReplyExists" in one_line_error(invoke(
        world, "mall", "review", "reply", alice_order, "--text", "again", "--from", "shop"))


def test_reputation_top_and_search(world: dict[str, Any]) -> None:
    genesis = str(world["home"] / "genesis.json")
    reputation = ok_json(world, "mall", "reputation", "show", "shop", "--genesis", genesis)
    assert reputation["score_bps"] > 0 and reputation["counted_orders"] == 2
    assert reputation["proof"]["entries_verified"] == 2
    assert reputation["height"] >= reputation["stored"]["last_height"] > 0
    # The chain's trust parameters come from its genesis: none in HOME, none given.
    assert "--genesis" in one_line_error(invoke(world, "mall", "reputation", "show", "shop"))
    top = ok_json(world, "mall", "top", "-k", "5")
    assert [item["product_id"] for item in top["listings"]] == [world["product"]]
    assert top["listings"][0]["title"] == "Anello in argento 925"
    assert ok_json(world, "mall", "top", "--category", "jewellery")["listings"]
    assert ok_json(world, "mall", "top", "--category", "food")["listings"] == []
    found = ok_json(world, "mall", "search", "argento anello")
    assert [item["product_id"] for item in found["listings"]] == [world["product"]]
    assert ok_json(world, "mall", "search", "oro")["listings"] == []
    assert "Anello in argento 925" in invoke(world, "mall", "top").output
    assert "score:" in invoke(world, "mall", "reputation", "show", "shop",
                              "--genesis", genesis).output


def test_rewards_points_attest_epochs_and_claim(world: dict[str, Any]) -> None:
    points = ok_json(world, "reward", "points", "alice")
    assert points["points"] > 0 or points["claimable"] > 0
    attested = ok_json(world, "reward", "attest", "carol", "--action", "video",
                       "--claim", "video 42 watched by carol", "--from", "attester")
    assert attested["txs"][0]["code"] == 0
    again = invoke(world, "reward", "attest", "carol", "--action", "video",
                   "--claim", "video 42 watched by carol", "--from", "attester")
    assert "ClaimUsed" in one_line_error(again)
    assert "NotAttester" in one_line_error(invoke(
        world, "reward", "attest", "carol", "--action", "ad", "--claim", "x", "--from", "bob"))
    for attempt in range(5):  # 3 attested actions per account and epoch: a 4th is refused
        before = ok_json(world, "reward", "points", "carol")["current_epoch"]
        outputs = [invoke(world, "reward", "attest", "carol", "--action", "share", "--claim",
                          f"share {attempt}.{n}", "--from", "attester").output
                   for n in range(4)]
        if ok_json(world, "reward", "points", "carol")["current_epoch"] == before:
            assert any("AttestCapReached (509)" in output for output in outputs), outputs
            break
    else:
        raise AssertionError("every try crossed an epoch boundary")
    deadline = time.monotonic() + 60
    while True:  # an epoch closes at the first block after its end: make blocks until then
        ok_json(world, "tx", "send", "--from", "bob", "--to", "carol", "--amount", "1",
                "--fee", "1")
        owed = ok_json(world, "reward", "pending", "alice")
        if owed["claimable"] > 0:
            break
        assert time.monotonic() < deadline, owed
        time.sleep(0.5)
    epochs = ok_json(world, "reward", "epochs")
    closed = [e for e in epochs["epochs"] if e["state"] == "closed"]
    assert closed and all(e["amount"] >= e["settled"] for e in closed)
    before = int(ok_json(world, "account", "show", "alice")["balance"])
    claimed = ok_json(world, "reward", "claim", "--from", "alice")
    assert claimed["txs"][0]["code"] == 0
    after = int(ok_json(world, "account", "show", "alice")["balance"])
    assert after - before == owed["claimable"] - 1  # the claim's fee is 1
    assert ok_json(world, "reward", "pending", "alice")["claimable"] == 0
    assert "NothingToClaim (510)" in one_line_error(invoke(world, "reward", "claim",
                                                           "--from", "alice"))


def test_report_file_show_list_and_watch(world: dict[str, Any], tmp_path: Path) -> None:
    evidence = tmp_path / "evidence.json"
    evidence.write_text('{"why": "test"}')
    filed = ok_json(world, "mall", "report", "file", "shop", world["orders"][1],
                    "--evidence", str(evidence), "--from", "carol")
    report_id = filed["report_id"]
    shown = ok_json(world, "mall", "report", "show", report_id)
    assert shown["state"] == "open" and shown["orders"] == [world["orders"][1]]
    listed = ok_json(world, "mall", "report", "list", "shop")
    assert report_id in [item["report_id"] for item in listed["reports"]]
    assert "ReportInvalid" in one_line_error(invoke(
        world, "mall", "report", "file", "shop", world["orders"][1], "--evidence-hash",
        "ab" * 32, "--from", "carol"))
    assert "error:" in one_line_error(invoke(
        world, "mall", "report", "vote", report_id, "--fake", "--from", "bob"))
    watched = ok_json(world, "mall", "watch")
    assert watched["height"] > 0 and watched["findings"] == []  # two honest orders


def test_bad_input_is_one_line_and_help_is_there(world: dict[str, Any]) -> None:
    for args, code in ((("mall", "review", "add", "12", "--rating", "5", "--from", "alice"), 1),
                       (("mall", "review", "add", "ab" * 32, "--rating", "6", "--from", "alice"),
                        2),
                       (("mall", "review", "list", "--order", "zz"), 1),
                       (("mall", "reputation", "show", "nobody"), 1),
                       (("mall", "search", "!"), 1),
                       (("mall", "top", "-k", "101"), 2),
                       (("mall", "report", "show", "00" * 32), 1),
                       (("mall", "report", "file", "shop", "ab" * 32, "--from", "carol"), 2),
                       (("reward", "points", "cm1nothing"), 1),
                       (("reward", "attest", "bob", "--action", "dance", "--claim", "x",
                         "--from", "attester"), 2),
                       (("reward", "claim", "--from", "nobody"), 1)):
        one_line_error(invoke(world, *args), code)
    for args in (("mall", "review", "add"), ("mall", "review", "reply"), ("mall", "review", "list"),
                 ("mall", "reputation", "show"), ("mall", "search"), ("mall", "top"),
                 ("mall", "report", "file"), ("mall", "report", "vote"),
                 ("mall", "report", "show"), ("mall", "report", "list"), ("mall", "watch"),
                 ("reward", "points"), ("reward", "pending"), ("reward", "claim"),
                 ("reward", "epochs"), ("reward", "attest")):
        result = invoke(world, *args, "--help")
        assert result.exit_code == 0 and "--node" in result.output and "--json" in result.output


class _LyingClient:
    """Answers a query with a value changed after the proof was made."""

    def __init__(self, real: BlockingClient) -> None:
        self.real = real

    def query(self, path: str, data: bytes = b"", height: int = 0,
              prove: bool = False) -> QueryResult:
        result = self.real.query(path, data, height, prove)
        first = result.entries[0]
        forged = ProvenEntry(first.key, (first.value or b"") + b"\x00", first.proof)
        return QueryResult(result.code, result.log, result.height, result.root,
                           (forged, *result.entries[1:]))


def test_a_forged_answer_is_refused(world: dict[str, Any]) -> None:
    from mall_chain import key

    with BlockingClient(world["node"]) as client:
        assert read(client, "/trust/reputation", key("shop").address).entries
        with pytest.raises(InvalidProof):
            read(_LyingClient(client), "/trust/reputation", key("shop").address)  # type: ignore[arg-type]


def test_reputation_show_decays_to_the_current_height(tmp_path: Path) -> None:
    """With a half-life of 64 blocks (a decay step a block) and empty blocks, the shown
    reputation falls block by block while the stored record, untouched, stays as it was:
    the figures are the stored record brought to the node's height by the decay rule."""
    from chainmall.core.mall.vocab import ROLE_MERCHANT
    from chainmall.core.trust import keys as trust_keys
    from chainmall.core.trust.decay import DECAY_Q32
    from chainmall.core.trust.records import decode_reputation
    from mall_chain import key, ok
    from trust_chain import sell

    home = tmp_path / "home"
    node, genesis = start_trust_node(home, tmp_path / "data", "--node-empty-blocks", "true",
                                     half_life_blocks=64)
    try:
        with BlockingClient(node.address) as client:
            chain = NodeDriver(client, genesis)
            shop, buyer = key("shop"), key("alice")
            ok(chain.block([chain.register(shop, ROLE_MERCHANT, 10_000, "IT", "Argenteria")]))
            ring = chain.list_product(shop, 20_000, 1_000, "Anello", "jewellery/rings")
            ok(chain.block([ring]))
            order = sell(chain, [(shop, buyer, ring.tx_id, 20_000)])[0]
            ok(chain.block(chain.review(buyer, order, 5, "Bello")))
        world = {"home": home, "node": node.address}
        args = ("mall", "reputation", "show", "shop", "--genesis", str(home / "genesis.json"))
        first = ok_json(world, *args)
        deadline = time.monotonic() + 60
        with BlockingClient(node.address) as client:
            while client.status().height < first["height"] + 70:  # over a half-life later
                assert time.monotonic() < deadline, "the node made no empty blocks"
                time.sleep(0.05)
            later = ok_json(world, *args)
            stored = decode_reputation(read(client, "/trust/reputation", shop.address).get(
                trust_keys.merchant(shop.address)))
    finally:
        node.stop()
    assert later["stored"] == first["stored"] == {"last_height": stored.last_height,
                                                  "score_bps": stored.score_bps}
    for shown in (first, later):  # the documented rule, step by step (one block a step)
        steps = shown["height"] - stored.last_height
        expected = stored.orders_q * DECAY_Q32[steps % 64] >> (32 + steps // 64)
        assert shown["orders"] == f"{expected / (1 << 16):.2f}", (shown, steps)
    assert later["height"] - first["height"] >= 70
    assert float(later["orders"]) < float(first["orders"]) / 2  # over a half-life on
    assert later["score_bps"] < first["score_bps"]  # fewer, older ratings weigh less
