"""Four validators on 127.0.0.1 under low load, through crashes (CI's share of the cluster tests).

Real processes: each node is `chainmall net run-node` (the application behind
the ABCI server, CometBFT as its child). An invariant checker compares every
node's block hash and app hash at every height throughout. The schedule:
all four finalize; one is killed (SIGKILL to its application and CometBFT)
and the other three keep finalizing; restarted, it catches up; two are
killed and finality stops (3 of 4 needed: no height is added, no fork);
one restarted and finality resumes; the last restarted and all agree.
The CLI's `net init|start|status|stop` run once against a small net too, which
makes empty blocks while idle without changing its app hash.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cluster_harness import (
    AgreementChecker,
    Cluster,
    TransferLoad,
    cometbft_binary,
    dump_logs,
    free_port_range,
    poll,
)

pytestmark = pytest.mark.slow
STALL_WINDOW_S = 3.0


def chainmall(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "chainmall.cli", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=120, check=False)


def progress(cluster: Cluster, nodes: set[int], blocks: int = 3) -> int:
    """Wait until every node of `nodes` is `blocks` past the highest height now."""
    target = cluster.max_height() + blocks
    cluster.wait_height(target, nodes)
    return target


def test_four_validators_survive_crashes(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path / "net", 4, seed=11)
    try:
        cluster.start_all()
        with AgreementChecker(cluster) as checker, TransferLoad(cluster, rate=20) as load:
            progress(cluster, {0, 1, 2, 3})

            cluster.kill(3)  # one of four down: 30 of 40 power still signs
            progress(cluster, {0, 1, 2})
            cluster.start(3)
            tip = progress(cluster, {0, 1, 2})
            cluster.wait_height(tip, {3})  # caught up through block sync and replay

            cluster.kill(2)
            cluster.kill(3)  # 20 of 40: no quorum
            stalled = cluster.max_height()
            end = time.monotonic() + STALL_WINDOW_S
            while time.monotonic() < end:  # an observation window: nothing may finalize
                assert cluster.max_height() <= stalled + 1, "finalized without a quorum"
                time.sleep(0.1)
            stalled = cluster.max_height()

            cluster.start(2)
            resumed = progress(cluster, {0, 1, 2})
            assert resumed > stalled
            cluster.start(3)
            tip = progress(cluster, {0, 1, 2, 3})
            poll(lambda: all(checker.caught_up(i, tip) for i in range(4)),
                 "the checker to compare every node up to the tip")
        top = checker.assert_agreement(tip)
        assert load.committed > 0, "no transfer was committed"
        print(f"compared {top} heights on 4 nodes; {load.sent} transfers sent, "
              f"{load.resent} resent, {load.committed} seen committed")
    except BaseException:
        dump_logs(cluster)
        raise
    finally:
        cluster.close()


def test_net_commands(tmp_path: Path) -> None:
    cometbft_binary()
    net_dir = tmp_path / "net"
    import random

    base = free_port_range(20, random.Random(3))
    made = chainmall("--json", "net", "init", "--validators", "2", "--dir", str(net_dir),
                     "--base-port", str(base), "--seed", "ab" * 32, home=tmp_path)
    assert made.returncode == 0, made.stderr
    assert [n["rpc_port"] for n in json.loads(made.stdout)["nodes"]] == [base + 1, base + 11]
    again = chainmall("net", "init", "--dir", str(net_dir), home=tmp_path)
    assert again.returncode == 1 and again.stderr.startswith("error: ") and "not empty" in \
        again.stderr
    missing = chainmall("net", "status", "--dir", str(tmp_path / "none"), home=tmp_path)
    assert missing.returncode == 1 and "no localnet" in missing.stderr
    try:
        started = chainmall("net", "start", "--dir", str(net_dir), home=tmp_path)
        assert started.returncode == 0, started.stderr
        assert started.stdout.strip() == "started node0, node1"

        def status() -> dict | None:
            shown = chainmall("--json", "net", "status", "--dir", str(net_dir), home=tmp_path)
            assert shown.returncode == 0, shown.stderr
            data = json.loads(shown.stdout)
            return data if data["height"] >= 1 and all(
                n.get("peers") == 1 for n in data["nodes"]) else None
        data = poll(status, "both nodes at height 1 and peered")
        assert data["agree"] and all(n["pid"] for n in data["nodes"])
        # No tx is sent: the idle net still makes a block a second (deadlines fall due in
        # block time), and an empty block leaves the app hash alone.
        first = data["nodes"][0]["app_hash"]
        idle = poll(lambda: (d := status()) and d["height"] >= data["height"] + 2 and d,
                    "the idle net to make empty blocks")
        assert idle["agree"] and {n["app_hash"] for n in idle["nodes"]} == {first}
    finally:
        stopped = chainmall("net", "stop", "--dir", str(net_dir), home=tmp_path)
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.strip() == "stopped node0, node1"
    assert not any((net_dir / f"node{i}" / "node.pid").exists() for i in range(2))
    assert "node1: stopped" in chainmall("net", "status", "--dir", str(net_dir),
                                         home=tmp_path).stdout
