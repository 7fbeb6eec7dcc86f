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
the answer with that anchor check: every step verified.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
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
from chainmall.core.genesis import MallParams, make_mall
from chainmall.core.rpc.client import BlockingClient
from chainmall.core.rpc.services import TxState
from cluster_harness import Cluster, dump_logs

WEB_TESTS = Path(__file__).resolve().parents[1] / "web"
if str(WEB_TESTS) not in sys.path:
    sys.path.insert(0, str(WEB_TESTS))
from page_verdict import page_verdict  # noqa: E402

pytestmark = pytest.mark.slow
STORY_BATCHES = 6  # through the workshop's forging of the twelve rings from the lot


def test_item_trace_is_anchored_on_the_light_clients_header(tmp_path: Path) -> None:
    section = make_mall([(story_key("certifier").address, CERTIFIER_NAME)],
                        [("MX", story_key("tax-mx").address, 1_600)], MallParams())
    cluster = Cluster(tmp_path / "net", 1, seed=71, mall=section, fee_min=FEE,
                      extra_balances=tuple((story_key(n).address, BALANCE) for n in ACCOUNTS))
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
        anchor = answer["anchor"]
        assert anchor["checked_by"] == "light-client"
        block = _checked_light_block(anchor, cluster.chain_id)
        first = cluster.rpc(0).commit(1)["signed_header"]["header"]
        assert anchor["trusted"] == {"height": 1,
                                     "hash": light.header_hash(light.header_from_json(first))
                                     .hex()}
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
    except BaseException:
        dump_logs(cluster)
        raise
    finally:
        cluster.close()


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
