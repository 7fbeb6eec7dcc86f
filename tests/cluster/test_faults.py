"""Longer fault schedules of a 4-validator localnet (`make test-cluster`).

* a node whose ledger and CometBFT data are wiped rejoins by replaying every
  block (block sync feeding FinalizeBlock from height 1) and agrees;
* partitions and lossy links through a loopback TCP proxy between every pair
  of peers: a 2 | 2 split stops finality without a fork, a 3 | 1 split does
  not stop the three, and links that delay and drop traffic slow the net
  without forking it; healed, every node catches up;
* a double-signing validator (its key on a second node that prevotes before
  seeing proposals) is reported by CometBFT in FinalizeBlock and slashed by
  chainmall's rule (bond and power), which CometBFT's set then shows.

Each runs with the invariant checker and a seeded transfer load.
"""

from __future__ import annotations

import base64
import random
import shutil
import time
from pathlib import Path

import pytest
from chainmall.core.abci.cometbft import configure_home
from chainmall.core.abci.localnet import configure_node
from chainmall.core.light import sorted_validators
from chainmall.core.validators.records import decode_record
from cluster_harness import (
    AgreementChecker,
    Cluster,
    TransferLoad,
    dump_logs,
    free_port_range,
    long_schedules_only,
    poll,
)
from netproxy import PeerProxy

pytestmark = [pytest.mark.slow, long_schedules_only()]
WINDOW_S = 4.0


def assert_stalled(cluster: Cluster, window_s: float = WINDOW_S) -> int:
    """Observe for `window_s` that no height is added beyond one in flight; the height."""
    stalled = cluster.max_height()
    end = time.monotonic() + window_s
    while time.monotonic() < end:
        assert cluster.max_height() <= stalled + 1, "finalized without a quorum"
        time.sleep(0.1)
    return cluster.max_height()


def progress(cluster: Cluster, nodes: set[int], blocks: int = 3, deadline_s: float = 90) -> int:
    target = cluster.max_height() + blocks
    cluster.wait_height(target, nodes, deadline_s)
    return target


def test_a_wiped_node_rejoins_by_replaying_blocks(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path / "net", 4, seed=31)
    try:
        cluster.start_all()
        with AgreementChecker(cluster) as checker, TransferLoad(cluster, rate=30):
            progress(cluster, {0, 1, 2, 3}, blocks=10)
            cluster.stop(2)
            cluster.wipe(2)
            progress(cluster, {0, 1, 3}, blocks=3)
            cluster.start(2)
            tip = progress(cluster, {0, 1, 3})
            cluster.wait_height(tip, {2})
            poll(lambda: all(checker.caught_up(i, tip) for i in range(4)), "the checker")
        checker.assert_agreement(tip)
        starts = [line for line in (cluster.net.node_dir(2) / "node.log").read_text()
                  .splitlines() if "CometBFT started" in line]
        assert len(starts) == 2 and starts[-1].endswith("app at height 0")  # replayed all
    except BaseException:
        dump_logs(cluster)
        raise
    finally:
        cluster.close()


def test_partitions_and_lossy_links(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path / "net", 4, seed=37)
    net = cluster.net
    proxy = PeerProxy([n.p2p_port for n in net.nodes],
                      free_port_range(16, random.Random(41)), seed=43)
    for node in net.nodes:
        configure_node(net, node.index, peers=[
            f"{other.node_id}@127.0.0.1:{proxy.port(node.index, other.index)}"
            for other in net.nodes if other.index != node.index])
    try:
        cluster.start_all()
        everyone = {0, 1, 2, 3}
        with AgreementChecker(cluster) as checker, TransferLoad(cluster, rate=20):
            progress(cluster, everyone)

            proxy.partition([{0, 1}, {2, 3}])  # neither side has 2/3
            assert_stalled(cluster)
            proxy.heal()
            progress(cluster, everyone, deadline_s=120)

            proxy.partition([{0, 1, 2}, {3}])  # the three go on, the one waits
            progress(cluster, {0, 1, 2}, blocks=5)
            proxy.heal()
            tip = progress(cluster, everyone, deadline_s=120)

            proxy.set_faults(delay_ms=40, drop_rate=0.01)
            progress(cluster, {0, 1, 2, 3}, blocks=5, deadline_s=180)
            proxy.set_faults()
            tip = progress(cluster, everyone, deadline_s=120)
            poll(lambda: all(checker.caught_up(i, tip) for i in range(4)), "the checker")
        checker.assert_agreement(tip)
        print(f"proxy: {proxy.forwarded_chunks} chunks forwarded, {proxy.dropped} links "
              "dropped")
        assert proxy.dropped > 0
    except BaseException:
        dump_logs(cluster)
        raise
    finally:
        cluster.close()
        proxy.close()


def test_a_double_signing_validator_is_reported_and_slashed(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path / "net", 4, full_nodes=1, seed=47)
    net = cluster.net
    # Node 4 runs validator 3's key and prevotes before any proposal can reach it:
    # validator 3 then votes for blocks and nil at the same heights and rounds.
    twin_config = net.cometbft_home(4) / "config"
    shutil.copyfile(net.cometbft_home(3) / "config" / "priv_validator_key.json",
                    twin_config / "priv_validator_key.json")
    configure_home(net.cometbft_home(4), {"consensus": {"timeout_propose": "1ms",
                                                        "timeout_propose_delta": "0ms"}})
    offender = net.nodes[3].public_key
    address = sorted_validators([(offender, 10)])[0].address.hex().upper()
    rpc = cluster.rpc(0)
    try:
        cluster.start_all()
        with AgreementChecker(cluster) as checker, TransferLoad(cluster, rate=20):
            def evidence_height() -> int:
                for height in range(1, rpc.height() + 1):
                    evidence = rpc.block(height)["block"]["evidence"]["evidence"] or []
                    if any(item["value"]["vote_a"]["validator_address"] == address
                           for item in evidence if "vote_a" in item.get("value", {})):
                        return height
                return 0
            reported = poll(evidence_height, "duplicate-vote evidence in a block", 180)
            cluster.kill(4)  # the twin goes; the net goes on

            def slashed() -> bool:
                answer = rpc.abci_query("/validators/record", offender)
                record = decode_record(base64.b64decode(answer["value"]))
                return record.slashed_height > 0 and record
            record = poll(slashed, "the slash in state")
            assert record.bond < 10_000 and record.power < 10
            events = rpc.call("block_results", height=reported)["finalize_block_events"]
            assert any(e["type"] == "slash" for e in events), events
            # CometBFT's set at H + 2 is chainmall's after block H (more evidence of the
            # twin's votes may still come in later blocks).
            answer = rpc.abci_query("/validators/record", offender)
            at = int(answer["height"])
            power = decode_record(base64.b64decode(answer["value"])).power
            cluster.wait_height(at + 2, {0})
            powers = {v["address"]: int(v["voting_power"]) for v in rpc.validators(at + 2)}
            assert powers[address] == power < 10
            tip = progress(cluster, {0, 1, 2, 3}, blocks=3)
            poll(lambda: all(checker.caught_up(i, tip) for i in range(4)), "the checker")
        checker.assert_agreement(tip)
    except BaseException:
        dump_logs(cluster)
        raise
    finally:
        cluster.close()
