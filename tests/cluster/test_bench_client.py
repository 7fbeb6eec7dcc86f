"""The cluster benchmark's client resends what a dead node admitted (bench/cluster)."""

from __future__ import annotations

import base64
import hashlib
import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from chainmall.core.abci.envelope import flatten
from chainmall.core.constants import TX_TYPE_TRANSFER
from chainmall.core.state.accounts import encode_transfer
from chainmall.core.tx import sign_tx

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from cluster import cluster_bench


class _Recorder(BaseHTTPRequestHandler):
    """Answers every JSON-RPC batch with code 0 and keeps the txs it carried."""

    received: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        calls = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        raws = [base64.b64decode(call["params"]["tx"]) for call in calls]
        type(self).received.extend(flatten(raws)[0])
        body = json.dumps([{"jsonrpc": "2.0", "id": call["id"], "result": {"code": 0}}
                           for call in calls]).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def live_port() -> Iterator[int]:
    _Recorder.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _txs(count: int) -> list[bytes]:
    senders = cluster_bench.make_senders(count)
    return [sign_tx(k, "t", TX_TYPE_TRANSFER, 0, 1, 10**9,
                    encode_transfer(senders[0].address, 1)).encode() for k in senders]


def test_a_dead_nodes_admitted_txs_not_final_are_resent_once_through_a_live_node(
        live_port: int) -> None:
    txs = _txs(5)
    run = cluster_bench.Run("kill")
    nodes = [3, 3, 0, 3, 3]  # the node each tx went to
    for tx, node in zip(txs, nodes, strict=True):
        digest = hashlib.sha256(tx).digest()
        run.submitted[digest], run.sent_to[digest], run.raw[digest] = 1.0, node, tx
    run.final[hashlib.sha256(txs[3]).digest()] = 2.0  # final before its node died
    alive = {0, 1, 2}
    ports = {0: live_port, 1: live_port, 2: live_port, 3: 1}
    resubmitter = cluster_bench.Resubmitter(run, ports, 2, threading.Lock(), alive, 2)
    resubmitter.sweep()
    assert sorted(_Recorder.received) == sorted([txs[0], txs[1], txs[4]])
    for index in (0, 1, 4):
        digest = hashlib.sha256(txs[index]).digest()
        assert run.sent_to[digest] in alive
        assert digest in run.resubmitted
        assert run.submitted[digest] == 1.0  # latency still from the first submission
    resubmitter.sweep()  # nothing left on a dead node
    assert len(_Recorder.received) == 3


def test_nothing_is_resent_while_every_node_is_up(live_port: int) -> None:
    txs = _txs(2)
    run = cluster_bench.Run("steady")
    for tx in txs:
        digest = hashlib.sha256(tx).digest()
        run.submitted[digest], run.sent_to[digest], run.raw[digest] = 1.0, 1, tx
    ports = {0: live_port, 1: live_port}
    cluster_bench.Resubmitter(run, ports, 200, threading.Lock(), {0, 1}, 200).sweep()
    assert _Recorder.received == []
    assert not run.resubmitted
