"""The product page's item history from a CometBFT node (docs/page.md section 3.6).

A 1-validator localnet with the silver story's genesis section plays the
story up to the rings' forging (party registrations, the certification, the
lot's commissioning and hand-overs, the transformation into rings) through
node 0's RPC. `mall.item_trace` of ring one then answers the CometBFT anchor
form: the state read at height h and CometBFT's header h + 1, its commit and
validator set, verified by the node's light client from the genesis header.
The test checks that anchor on its own from the protobuf bytes served
(`core/light.py`: header hash, validator set hash, signatures of more than
2/3 of the power, app hash), that the trusted header is CometBFT's header 1,
and then runs the page's Python reference (`tests/web/page_verdict.py`) over
the answer with that anchor check: every step verified. Last, headless
Chromium opens ring one's page served by that node (web/browser/check.mjs):
the browser verifies every step too.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from chainmall.cli.net import LOG_FILE
from chainmall.cli.story import (
    ACCOUNTS,
    BALANCE,
    CERTIFIER_NAME,
    FEE,
    RINGS,
    SilverStory,
    story_key,
)
from chainmall.core import light
from chainmall.core.abci.proto.tendermint.types import types_pb2, validator_pb2
from chainmall.core.errors import ChainmallError
from chainmall.core.genesis import MallParams, load_genesis, make_mall
from chainmall.core.node.config import CONFIG_FILE
from chainmall.core.node.light_store import LIGHT_STORE_FILE, load_state
from chainmall.core.node.page import ALTER_EVENT_ENV, TEST_SWITCHES_ENV
from chainmall.core.proof_bundle import TrustRoot
from chainmall.core.rpc.client import BlockingClient
from chainmall.core.rpc.services import TxState
from cluster_harness import Cluster, dump_logs, poll

WEB_TESTS = Path(__file__).resolve().parents[1] / "web"
if str(WEB_TESTS) not in sys.path:
    sys.path.insert(0, str(WEB_TESTS))
from page_verdict import page_verdict  # noqa: E402
from web_tools import STATIC, WEB, web_deps_or_skip  # noqa: E402

pytestmark = pytest.mark.slow
STORY_BATCHES = 6  # through the workshop's forging of the twelve rings from the lot
GENESIS_START = "light client: trusting the genesis validators' header"


@dataclass
class Served:
    cluster: Cluster
    answer: dict[str, Any]
    page: str  # node 0's HTTP base URL (the page)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A 1-validator net with the story played to the rings, node 0 serving the page over
    HTTP, and ring one's `mall.item_trace` answer from node 0."""
    section = make_mall([(story_key("certifier").address, CERTIFIER_NAME)],
                        [("MX", story_key("tax-mx").address, 1_600)], MallParams())
    cluster = Cluster(tmp_path_factory.mktemp("pagenet") / "net", 1, seed=71, mall=section,
                      fee_min=FEE,
                      extra_balances=tuple((story_key(n).address, BALANCE) for n in ACCOUNTS))
    http = f"127.0.0.1:{_free_port()}"
    config = cluster.net.node_dir(0) / CONFIG_FILE
    assert 'http = ""' in config.read_text()
    config.write_text(config.read_text().replace('http = ""', f'http = "{http}"'))
    try:
        cluster.start_all()
        address = f"tcp://127.0.0.1:{cluster.net.nodes[0].api_port}"
        with BlockingClient(address, timeout_s=60) as client:
            story = SilverStory(cluster.chain_id)
            for batch in story.blocks()[:STORY_BATCHES]:
                for tx in batch:
                    final = client.submit_tx_wait(tx.encode(), 30)
                    assert final.state is TxState.FINAL and final.code == 0, final
            answer = client.call("mall.item_trace", {"item": RINGS[0]})
        yield Served(cluster, answer, f"http://{http}")
    except BaseException:
        dump_logs(cluster)
        raise
    finally:
        cluster.close()


def test_item_trace_is_anchored_on_the_light_clients_header(served: Served) -> None:
    answer, cluster = served.answer, served.cluster
    anchor = answer["anchor"]
    assert anchor["checked_by"] == "light-client"
    block = _checked_light_block(anchor, cluster.chain_id)
    first = cluster.rpc(0).commit(1)["signed_header"]["header"]
    assert anchor["trusted"] == {
        "height": 1, "hash": light.header_hash(light.header_from_json(first)).hex()}
    assert block.header.app_hash == bytes.fromhex(
        cluster.rpc(0).commit(block.height)["signed_header"]["header"]["app_hash"])

    verdict = page_verdict(answer, anchor_check=_light_anchor_check(cluster.chain_id))
    assert verdict.ok and verdict.anchor is None and not verdict.faults, verdict.to_json()
    # the lot commissioned, received twice, forged into the rings
    assert len(verdict.steps) == 4 and set(verdict.steps.values()) == {""}, verdict.steps

    # The same answer with the app hash of another state: the page's check fails.
    forged = types_pb2.Header.FromString(bytes.fromhex(anchor["header"]))
    forged.app_hash = bytes(32)
    altered = {**answer, "anchor": {**anchor, "header": forged.SerializeToString().hex()}}
    refused = page_verdict(altered, anchor_check=_light_anchor_check(cluster.chain_id))
    assert not refused.ok and refused.anchor is not None


def test_the_page_in_chromium_verifies_the_cometbft_nodes_history(served: Served) -> None:
    """Ring one's page, served by the CometBFT node itself, in headless Chromium
    (web/browser/check.mjs): every step verified against the light client's header."""
    node = web_deps_or_skip()
    if not (STATIC / "app.js").exists():
        pytest.fail("the product page is not built (core/rpc/static/): run `make web`")
    chromium = _chromium_or_skip()
    result = subprocess.run(
        [node, "browser/check.mjs", "--only-large", "--base", served.page, "--large",
         RINGS[0], "--timing-runs", "1", "--chromium", str(chromium)],
        cwd=WEB, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    [seen] = report["large"]
    assert seen["state"] == "done" and seen["verdict"] == "true", seen
    assert seen["steps"] == seen["verified"] == 4, seen


def test_a_restarted_node_resumes_its_trust_and_serves_the_tamper_switch(
        served: Served) -> None:
    """Node 0 stored its light client's trusted header (DATA/light-client.json); restarted
    (with the test-only switch altering one event of ring one's history) it resumes from
    that header, not from genesis, and the altered step is "not verified" in Python and in
    Chromium. Runs last: it restarts the module's node."""
    cluster = served.cluster
    node_dir = cluster.net.node_dir(0)
    trust = TrustRoot.from_genesis(load_genesis(node_dir / "genesis.json"))
    before = load_state(node_dir / LIGHT_STORE_FILE, trust)
    assert before is not None and before.latest.height >= served.answer["anchor"]["height"] + 1
    assert (before.root_height, before.root_hash.hex()) == (
        1, served.answer["anchor"]["trusted"]["hash"])
    log = node_dir / LOG_FILE
    assert log.read_text().count(GENESIS_START) == 1

    verdict = page_verdict(served.answer, anchor_check=_light_anchor_check(cluster.chain_id))
    altered = sorted(verdict.steps)[-1]  # one event of ring one's history
    cluster.stop(0)
    cluster.start(0, env={TEST_SWITCHES_ENV: "1", ALTER_EVENT_ENV: altered})
    cluster.wait_serving(0)
    address = f"tcp://127.0.0.1:{cluster.net.nodes[0].api_port}"
    answer = poll(lambda: _item_trace(address), "node 0's item history after the restart")

    text = log.read_text()
    assert text.count(GENESIS_START) == 1, "the restarted node walked from genesis again"
    assert f"resumed from the trusted header at height {before.latest.height}" in text
    assert answer["anchor"]["trusted"] == served.answer["anchor"]["trusted"]
    after = load_state(node_dir / LIGHT_STORE_FILE, trust)
    assert after is not None and after.latest.height >= before.latest.height

    tampered = page_verdict(answer, anchor_check=_light_anchor_check(cluster.chain_id))
    assert not tampered.ok and tampered.anchor is None
    assert {k for k, code in tampered.steps.items() if code} == {altered}, tampered.steps

    chromium = _chromium_or_skip()
    result = subprocess.run(
        [web_deps_or_skip(), "browser/check.mjs", "--only-large", "--base", served.page,
         "--large", RINGS[0], "--timing-runs", "1", "--chromium", str(chromium)],
        cwd=WEB, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    [seen] = json.loads(result.stdout.strip().splitlines()[-1])["large"]
    assert seen["state"] == "done" and seen["verdict"] == "false", seen
    assert "Not verified" in seen["verdict_text"], seen
    [bad] = seen["not_verified"]
    assert bad["id"] == altered and bad["text"].endswith("not verified"), seen
    assert seen["verified"] == seen["steps"] - 1 == 3, seen


def _item_trace(address: str) -> dict[str, Any] | None:
    try:
        with BlockingClient(address, timeout_s=30) as client:
            return client.call("mall.item_trace", {"item": RINGS[0]})
    except (ChainmallError, OSError):
        return None  # not serving yet


def _chromium_or_skip() -> Path:
    chromium = Path(os.environ.get("CHAINMALL_CHROMIUM", "/usr/bin/chromium"))
    if not chromium.exists():
        reason = f"Debian's chromium is not installed at {chromium}: run `make test-browser`"
        if os.environ.get("CHAINMALL_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{reason} (CHAINMALL_REQUIRE_BROWSER=1)")
        pytest.skip(reason)
    return chromium


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _checked_light_block(anchor: dict[str, Any], chain_id: str) -> light.LightBlock:
    """The anchor's signed header h + 1, checked as the page checks it (docs/page.md 3.6)."""
    header = types_pb2.Header.FromString(bytes.fromhex(anchor["header"]))
    commit = types_pb2.Commit.FromString(bytes.fromhex(anchor["commit"]))
    encoded = validator_pb2.ValidatorSet.FromString(bytes.fromhex(anchor["validators"]))
    validators = tuple(light.LightValidator(v.address, v.pub_key.ed25519, v.voting_power)
                       for v in encoded.validators)
    block = light.LightBlock(header, commit, validators)
    assert header.height == anchor["height"] + 1
    light.check_signed_header(block, chain_id)
    assert light.validator_set_hash(validators) == header.validators_hash
    assert light.verify_commit(chain_id, validators, block) * 3 > \
        2 * sum(v.voting_power for v in validators)
    return block


def _light_anchor_check(chain_id: str):  # type: ignore[no-untyped-def]
    def check(anchor: dict[str, Any], pinned: bytes | None) -> tuple[str | None, bytes]:
        try:
            block = _checked_light_block(anchor, chain_id)
        except (AssertionError, ChainmallError, ValueError):
            return "light-client", b""
        return None, block.header.app_hash
    return check
