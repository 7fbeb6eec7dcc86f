"""The node supervisor: the application and CometBFT live and die as a pair.

One validator, run by `chainmall net run-node`. The application fails in
FinalizeBlock (a failpoint): the supervisor stops CometBFT, says why, and
with --restart starts the pair again, which catches up and goes on.
CometBFT killed (SIGKILL to the child alone): the same, the other way round.
Without --restart the node process ends with a one-line error and CometBFT
is gone too.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from chainmall.cli.net import LOG_FILE
from cluster_harness import Cluster, TransferLoad, dump_logs, poll

pytestmark = pytest.mark.slow


def cometbft_child(node_pid: int) -> int | None:
    """The pid of the CometBFT process a node process runs (None if none)."""
    try:
        children = Path(f"/proc/{node_pid}/task/{node_pid}/children").read_text().split()
    except OSError:
        return None
    for child in children:
        try:
            if b"cometbft" in Path(f"/proc/{child}/cmdline").read_bytes():
                return int(child)
        except OSError:
            continue
    return None


def test_a_failed_half_stops_and_restarts_the_pair(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path / "net", 1, seed=5)
    log = cluster.net.node_dir(0) / LOG_FILE
    try:
        failing_height = 6
        cluster.start(0, restart=True,
                      env={"CHAINMALL_FAILPOINT": f"abci.finalize_block@{failing_height}"})
        cluster.wait_serving(0)
        with TransferLoad(cluster, rate=30):
            cluster.wait_height(failing_height + 3)
            text = log.read_text()
            assert "the application failed in finalize_block: RuntimeError: failpoint" in text \
                and "; stopping CometBFT" in text, text[-2000:]
            assert "restarting the application and CometBFT (restart 1)" in text

            node = cluster.processes[0]
            first = poll(lambda: cometbft_child(node.pid), "CometBFT's pid")
            os.kill(first, signal.SIGKILL)
            poll(lambda: "CometBFT was killed by signal 9" in log.read_text(),
                 "the supervisor to see CometBFT die")
            second = poll(lambda: (c := cometbft_child(node.pid)) and c != first and c,
                          "a new CometBFT")
            cluster.wait_height(cluster.max_height() + 2)
            assert node.poll() is None and second != first

        cluster.stop(0)
        cluster.start(0, restart=False)
        cluster.wait_serving(0)
        node = cluster.processes[0]
        child = poll(lambda: cometbft_child(node.pid), "CometBFT's pid")
        os.kill(child, signal.SIGKILL)
        assert node.wait(60) == 1
        assert log.read_text().rstrip().splitlines()[-1].startswith(
            "error: CometBFT was killed by signal 9")
        cluster.processes.pop(0)
        cluster.up.discard(0)
    except BaseException:
        dump_logs(cluster)
        raise
    finally:
        cluster.close()
