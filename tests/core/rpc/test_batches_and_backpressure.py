"""Batched tx submits (one hand-off per batch) and back-pressure without lost connections.

A batch's `tx_submit`/`tx_submit_wait` calls are answered by one batch
handler: each answer must be the one the call alone would get. A connection
whose reading the server paused (requests in flight at the limit) must not be
closed by the read time-out while the server itself holds it off.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from chainmall.core.constants import TX_BYTES_MAX
from chainmall.core.rpc.config import RpcLimits
from chainmall.core.rpc.methods import Call, Method
from rpc_helpers import ALICE, BOB, CAROL, poll, serving, transfer

Run = Callable[[Coroutine[Any, Any, Any]], Any]


def _request(request_id: int | None, method: str, params: Any = None) -> dict[str, Any]:
    request: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if request_id is not None:
        request["id"] = request_id
    if params is not None:
        request["params"] = params
    return request


async def _exchange(address: str, frame: Any) -> Any:
    host, port = address[len("tcp://"):].rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(json.dumps(frame).encode() + b"\n")
        return json.loads(await asyncio.wait_for(reader.readline(), 10))
    finally:
        writer.close()


def test_batched_submits_answer_as_single_calls(run: Run, tmp_path: Path) -> None:
    async def go() -> None:
        async with serving(tmp_path, RpcLimits(wait_ms_max=10_000)) as (_, server):
            txs = [transfer(ALICE, nonce, BOB.address, 1).encode().hex() for nonce in range(4)]
            stranger = transfer(CAROL, 0, BOB.address, 1).encode().hex()  # no account
            batch = [
                _request(1, "tx_submit_wait", {"tx": txs[0], "timeout_ms": 4_000}),
                _request(2, "tx_submit", [txs[1]]),
                _request(3, "status"),
                _request(None, "tx_submit", {"tx": txs[2]}),  # a notification: no answer
                _request(4, "tx_submit_wait", {"tx": txs[3], "timeout_ms": 3_000}),
                _request(5, "tx_submit_wait", {"tx": stranger}),
                _request(6, "tx_submit_wait", {"tx": "00" * (TX_BYTES_MAX + 1)}),
                _request(7, "tx_submit_wait", {"tx": txs[0], "timeout_ms": 10_001}),
                _request(8, "tx_submit", {"tx": "0g"}),
                _request(9, "tx_submit", {"tx": txs[1]}),  # the same tx again
            ]
            answers = {a["id"]: a for a in await _exchange(server.addresses["tcp"], batch)}
            assert sorted(answers) == [1, 2, 3, 4, 5, 6, 7, 8, 9]
            for request_id, tx in ((1, txs[0]), (4, txs[3])):
                result = answers[request_id]["result"]
                assert result["status"] == "final" and result["code"] == 0
                assert result["tx"] is None or result["tx"] == tx
            assert answers[2]["result"]["tx_id"] == answers[9]["error"]["data"]["tx_id"]
            assert answers[3]["result"]["chain_id"] == "test-chain"
            assert answers[5]["error"]["data"]["class"] == "UnknownSender"
            assert answers[6]["error"]["data"]["class"] == "TxTooLarge"
            assert answers[7]["error"]["code"] == -32602
            assert answers[7]["error"]["data"] == {"param": "timeout_ms"}
            assert answers[8]["error"]["code"] == -32602
            assert answers[9]["error"]["data"]["class"] == "NonceMismatch"  # a replay
            # each alone gets the same answer
            alone = await _exchange(server.addresses["tcp"], batch[6])
            assert alone["error"] == answers[6]["error"]
            alone = await _exchange(server.addresses["tcp"], batch[7])
            assert alone["error"] == answers[7]["error"]
    run(go())


def test_paused_reading_does_not_run_the_read_clock(run: Run, tmp_path: Path) -> None:
    """At the in-flight limit the server stops reading; a partial frame it then holds is the
    server's doing, so the read time-out must not close the connection meanwhile."""
    read_ms = 300
    limits = RpcLimits(inflight_requests_max=4, read_ms_max=read_ms)

    async def go() -> None:
        async with serving(tmp_path, limits) as (_, server):
            gate = asyncio.Event()

            async def slow(call: Call) -> Any:
                await gate.wait()
                return "done"

            server.methods.add(Method("slow", slow))
            host, port = server.addresses["tcp"][len("tcp://"):].rsplit(":", 1)
            reader, writer = await asyncio.open_connection(host, int(port))
            lines = b"".join(json.dumps(_request(i, "slow")).encode() + b"\n" for i in range(4))
            writer.write(lines + b'{"jsonrpc":"2.0","id":99,"method":"status"')  # partial
            await poll(lambda: server.stats()["inflight"] == 4, what="4 requests in flight")
            await asyncio.sleep(3 * read_ms / 1000)  # let the read time-out pass, paused
            assert server.stats()["connections"] == 1, "closed while the server held it off"
            gate.set()
            answers = [json.loads(await asyncio.wait_for(reader.readline(), 5))
                       for _ in range(4)]
            assert sorted(a["id"] for a in answers) == [0, 1, 2, 3]
            assert {a["result"] for a in answers} == {"done"}
            writer.write(b"}\n")
            status = json.loads(await asyncio.wait_for(reader.readline(), 5))
            assert status["id"] == 99 and status["result"]["chain_id"] == "test-chain"
            # reading again: a frame left incomplete now is cut at the read time-out
            writer.write(b'{"jsonrpc":')
            assert await asyncio.wait_for(reader.read(), 5) == b""
            writer.close()
    run(go())
