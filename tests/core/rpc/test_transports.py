"""Every method, batch, subscription and error over every transport, on asyncio and uvloop.

A real RpcServer (TCP, Unix, HTTP, WebSocket on free ports) serves a FakeNode
in the test's loop; the client talks to it as an integrator would.
"""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from chainmall.core.errors import (
    LimitExceeded,
    NodeUnreachable,
    NonceMismatch,
    NotFinal,
    NotFound,
    RpcProtocolError,
    TxTooLarge,
    Unauthorized,
    WrongChain,
)
from chainmall.core.rpc.client import RpcClient
from chainmall.core.rpc.config import RpcConfig, RpcLimits
from chainmall.core.rpc.server import RpcServer
from chainmall.core.rpc.services import TxState
from chainmall.core.rpc.testing import FakeNode
from chainmall.core.state.accounts import account_key, pack_account
from chainmall.core.state.root import decode_proof, verify_proof
from rpc_helpers import ALICE, ALICE_BALANCE, BOB, CAROL, addresses_of, poll, serving, transfer

Run = Callable[[Coroutine[Any, Any, Any]], Any]
TRANSPORTS = ("tcp", "unix", "http", "ws")
TOKEN = "a-long-enough-token-for-tests"


def url_for(server: Any, transport: str) -> str:
    return dict(zip(TRANSPORTS, addresses_of(server), strict=True))[transport]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_every_method(run: Run, tmp_path: Path, transport: str) -> None:
    async def go() -> None:
        async with serving(tmp_path) as (node, server), \
                await RpcClient.connect(url_for(server, transport)) as client:
            assert "tx_submit_wait" in await client.call("rpc_methods")
            status = await client.status()
            assert (status.height, status.chain_id) == (0, "test-chain")
            assert status.validator == node.validator.public_key
            with pytest.raises(NotFound, match="no block"):
                await client.block()

            first = transfer(ALICE, 0, BOB.address, 1_000)
            final = await client.submit_tx_wait(first.encode(), timeout_s=10)
            assert final.state is TxState.FINAL and final.code == 0 and final.height == 1
            assert {event.type for event in final.events} == {"tx", "transfer"}

            second = transfer(ALICE, 1, BOB.address, 2_000)
            assert await client.submit_tx(second.encode()) == second.tx_id
            pending_or_final = await client.tx(second.tx_id)
            assert pending_or_final.state in (TxState.PENDING, TxState.FINAL)
            await poll(lambda: client.tx(second.tx_id), what="second tx")
            info = await poll(lambda: _final(client, second.tx_id), what="finality")
            assert info.tx == second.encode()
            assert (await client.tx(bytes(32))).state is TxState.UNKNOWN

            block = await client.block(info.height, txs=True)
            assert block.txs == (second.encode(),) and block.receipts == (0,)
            assert block.commit is not None and block.commit.block_hash == block.hash
            assert (await client.block(block_hash=block.hash)).height == block.height
            assert (await client.block()).height == node.height

            account = await client.account(BOB.address, prove=True)
            assert (account.balance, account.nonce, account.exists) == (3_000, 0, True)
            assert account.state_root == block.header.state_root
            value = pack_account(account.balance, account.nonce)
            assert verify_proof(account.state_root, account_key(BOB.address), value,
                                decode_proof(account.proof))
            absent = await client.account(CAROL.address, prove=True)
            assert not absent.exists and absent.balance == 0
            assert verify_proof(absent.state_root, account_key(CAROL.address), None,
                                decode_proof(absent.proof))
            old = await client.account(ALICE.address, height=1)
            assert old.nonce == 1 and old.balance == ALICE_BALANCE - 1_000 - 10

            entry = await client.state(account_key(BOB.address), prove=True)
            assert entry.value == value and entry.root == account.state_root
            assert verify_proof(entry.root, account_key(BOB.address), value,
                                decode_proof(entry.proof))
            by_tx = await client.query("/tx", second.tx_id)
            assert struct.unpack(">QIH", by_tx.value) == (info.height, 0, 0)
            stored = await client.query("/block", struct.pack(">Q", 1))
            assert len(stored.value) > 0
            with pytest.raises(NotFound):
                await client.block(99)
            with pytest.raises(NotFound):
                await client.account(BOB.address, height=99)
    run(go())


async def _final(client: RpcClient, tx_id: bytes) -> Any:
    info = await client.tx(tx_id)
    return info if info.state is TxState.FINAL else None


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_errors_keep_their_class_and_data(run: Run, tmp_path: Path, transport: str) -> None:
    async def go() -> None:
        async with serving(tmp_path, block_ms=60_000) as (_, server), \
                await RpcClient.connect(url_for(server, transport)) as client:
            tx = transfer(ALICE, 0, BOB.address, 5)
            with pytest.raises(NotFinal, match="still pending") as not_final:
                await client.submit_tx_wait(tx.encode(), timeout_s=0.2)
            assert not_final.value.data["tx_id"] == tx.tx_id.hex()  # type: ignore[attr-defined]
            with pytest.raises(NonceMismatch) as replay:
                await client.submit_tx(tx.encode())
            assert replay.value.data == {"class": "NonceMismatch",  # type: ignore[attr-defined]
                                         "tx_id": tx.tx_id.hex()}
            with pytest.raises(WrongChain):
                await client.submit_tx(transfer(ALICE, 1, BOB.address, 5, chain_id="x").encode())
            with pytest.raises(TxTooLarge):
                await client.call("tx_submit", {"tx": "00" * 2000})
            with pytest.raises(RpcProtocolError) as bad_params:
                await client.call("account_get", {"address": "cm1nope"})
            assert bad_params.value.rpc_code == -32602
            with pytest.raises(RpcProtocolError) as unknown:
                await client.call("no_such_method")
            assert unknown.value.rpc_code == -32601
    run(go())


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_batch(run: Run, tmp_path: Path, transport: str) -> None:
    async def go() -> None:
        async with serving(tmp_path) as (_, server), \
                await RpcClient.connect(url_for(server, transport)) as client:
            txs = [transfer(ALICE, nonce, BOB.address, 1) for nonce in range(5)]
            results = await client.batch([("tx_submit", {"tx": tx.encode().hex()}) for tx in txs]
                                         + [("status", None), ("nope", None)])
            assert [r["tx_id"] for r in results[:5]] == [tx.tx_id.hex() for tx in txs]
            assert results[5]["chain_id"] == "test-chain"
            assert isinstance(results[6], RpcProtocolError)
    run(go())


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_subscriptions(run: Run, tmp_path: Path, transport: str) -> None:
    async def go() -> None:
        async with serving(tmp_path) as (node, server):
            async with await RpcClient.connect(url_for(server, transport)) as client:
                await _subscriptions(client, node)
            await poll(lambda: node.subscriber_count == 0, what="node iterators closed")
    run(go())


async def _subscriptions(client: RpcClient, node: FakeNode) -> None:
    """Every topic, then unsubscribing; one subscription is left for the disconnect."""
    blocks = await client.subscribe_blocks()
    bob_events = await client.subscribe_events(BOB.address)
    tx = transfer(ALICE, 0, BOB.address, 77)
    finality = await client.subscribe_tx(tx.tx_id)
    await client.submit_tx(tx.encode())
    block = await asyncio.wait_for(blocks.__anext__(), 10)
    assert block.tx_ids == (tx.tx_id,)
    final = [item async for item in finality]  # one item, then the end
    assert len(final) == 1 and final[0].state is TxState.FINAL
    event = await asyncio.wait_for(bob_events.__anext__(), 10)
    assert event.tx_id == tx.tx_id and event.event.type == "transfer"
    assert event.event.attribute("amount") == "77"
    already = await client.subscribe_tx(tx.tx_id)  # final before subscribing
    assert [item.height async for item in already] == [block.height]

    await blocks.close()
    await client.submit_tx_wait(transfer(ALICE, 1, CAROL.address, 1).encode())
    async for _ in blocks:
        raise AssertionError("a closed subscription still yields")
    assert (await client.call("unsubscribe", ["ff"])) is False
    await bob_events.close()
    await client.subscribe_events(CAROL.address)  # left open: freed on disconnect
    await poll(lambda: node.subscriber_count == 1, what="one subscriber left")


class EndingNode(FakeNode):
    """A node whose block subscriptions end with an error after one block."""

    def subscribe_blocks(self) -> Any:
        feed = super().subscribe_blocks()

        async def one_then_fail() -> Any:
            try:
                yield await feed.__anext__()
                raise LimitExceeded("subscriber fell behind")
            finally:
                await feed.aclose()  # type: ignore[attr-defined]

        return one_then_fail()


def test_subscription_ended_by_the_node(run: Run, tmp_path: Path) -> None:
    async def go() -> None:
        node = EndingNode(balances={ALICE.address: ALICE_BALANCE}, block_interval_ms=20)
        server = RpcServer(node, RpcConfig(tcp=("127.0.0.1", 0)))
        await node.start()
        await server.start()
        try:
            async with await RpcClient.connect(server.addresses["tcp"]) as client:
                blocks = await client.subscribe_blocks()
                await client.submit_tx(transfer(ALICE, 0, BOB.address, 1).encode())
                assert (await asyncio.wait_for(blocks.__anext__(), 10)).height == 1
                with pytest.raises(LimitExceeded, match="fell behind"):
                    await asyncio.wait_for(blocks.__anext__(), 10)
                assert server.stats()["subscriptions"] == 0
                assert (await client.status()).height == 1  # the connection lives on
        finally:
            await server.stop()
            await node.stop()
    run(go())


def test_subscribers_are_not_idle(run: Run, tmp_path: Path) -> None:
    async def go() -> None:
        limits = RpcLimits(idle_ms_max=200, read_ms_max=200, write_ms_max=200)
        async with serving(tmp_path, limits) as (_, server):
            listener = await RpcClient.connect(server.addresses["tcp"])
            idle = await RpcClient.connect(server.addresses["tcp"])
            events = await listener.subscribe_events(BOB.address)
            await poll(lambda: server.stats()["connections"] == 1, what="idle one closed")
            with pytest.raises(NodeUnreachable):
                await idle.status()
            async with await RpcClient.connect(server.addresses["tcp"]) as sender:
                await sender.submit_tx(transfer(ALICE, 0, BOB.address, 3).encode())
            assert (await asyncio.wait_for(events.__anext__(), 10)).event.type == "transfer"
            await listener.close()
            await idle.close()
    run(go())


def test_subscription_limit_and_post_only(run: Run, tmp_path: Path) -> None:
    async def go() -> None:
        async with serving(tmp_path, RpcLimits(subscriptions_max=2)) as (_, server):
            async with await RpcClient.connect(server.addresses["tcp"]) as client:
                await client.subscribe_blocks()
                await client.subscribe_blocks()
                with pytest.raises(LimitExceeded, match="limit 2"):
                    await client.subscribe_blocks()
                await poll(lambda: server.stats()["subscriptions"] == 2)
            await poll(lambda: server.stats()["subscriptions"] == 0, what="subscriptions freed")
            async with aiohttp.ClientSession() as http:
                request = {"jsonrpc": "2.0", "id": 1, "method": "subscribe",
                           "params": {"topic": "blocks"}}
                async with http.post(server.addresses["http"] + "/", json=request) as response:
                    error = (await response.json())["error"]
            assert error["data"]["class"] == "LimitExceeded" and "WebSocket" in error["message"]
    run(go())


def test_http_specifics(run: Run, tmp_path: Path) -> None:
    static = tmp_path / "site"
    static.mkdir()
    (static / "index.html").write_text("<h1>shop</h1>")
    (static / "app.js").write_text("console.log(1)")
    (tmp_path / "secret.txt").write_text("no")

    async def go() -> None:
        limits = RpcLimits(frame_bytes_max=4096)
        async with serving(tmp_path, limits, static_root=static) as (_, server), \
                aiohttp.ClientSession() as http:
            base = server.addresses["http"]
            notify = {"jsonrpc": "2.0", "method": "status"}
            async with http.post(base + "/", json=notify) as response:
                assert response.status == 204
            async with http.post(base + "/", data=b"x" * 5000) as response:
                assert response.status == 413
                assert (await response.json())["error"]["code"] == -32600
            async with http.post(base + "/", data=b"{oops") as response:
                assert (await response.json())["error"]["code"] == -32700
            for path in ("/", "/item/urn:epc:id:sgtin:1.2.3", "/item/a%2Fb", "/product/ab"):
                async with http.get(base + path) as response:
                    assert await response.text() == "<h1>shop</h1>", path
                    assert response.content_type == "text/html"
                    assert response.headers["Content-Security-Policy"] == "default-src 'self'"
            async with http.get(base + "/static/app.js") as response:
                assert response.status == 200 and "javascript" in response.content_type
            for path in ("/../secret.txt", "/static/../../secret.txt", "/%2e%2e/secret.txt",
                         "/static/missing.css", "/static/.hidden", "/item/a/b", "/x", "/rpc",
                         "/app.js"):
                async with http.get(base + path) as response:
                    assert response.status == 404, path
            (static / "app.js").unlink()  # an install without the built page
            async with http.get(base + "/item/x") as response:
                assert response.status == 503
                assert "make web" in await response.text()
    run(go())


@pytest.mark.parametrize("transport", ("tcp", "http", "ws"))
def test_token(run: Run, tmp_path: Path, transport: str) -> None:
    async def go() -> None:
        async with serving(tmp_path, token=TOKEN) as (_, server):
            url = url_for(server, transport)
            async with await RpcClient.connect(url, token=TOKEN) as client:
                assert (await client.status()).height == 0
            if transport == "http":
                with pytest.raises(Unauthorized):
                    await RpcClient.connect(url)  # checks with a first POST
                with pytest.raises(Unauthorized):
                    await RpcClient.connect(url, token="wrong" * 5)
                return
            async with await RpcClient.connect(url) as client:
                with pytest.raises(Unauthorized, match="call auth"):
                    await client.status()
            with pytest.raises((Unauthorized, NodeUnreachable)):
                async with await RpcClient.connect(url, token="wrong" * 5) as client:
                    await client.status()
            async with await RpcClient.connect(server.addresses["unix"]) as client:
                assert (await client.status()).height == 0  # the socket file is 0600
    run(go())


def test_connection_limit(run: Run, tmp_path: Path) -> None:
    async def go() -> None:
        async with serving(tmp_path, RpcLimits(connections_max=3)) as (_, server):
            clients = [await RpcClient.connect(server.addresses["tcp"]) for _ in range(3)]
            host, port = server.addresses["tcp"][len("tcp://"):].rsplit(":", 1)
            reader, writer = await asyncio.open_connection(host, int(port))
            refusal = json.loads(await asyncio.wait_for(reader.readline(), 5))
            assert refusal["error"]["data"]["class"] == "LimitExceeded"
            assert await asyncio.wait_for(reader.read(), 5) == b""  # then closed
            writer.close()
            async with aiohttp.ClientSession() as http, \
                    http.post(server.addresses["http"] + "/", json={}) as response:
                assert response.status == 503
            assert server.stats()["refused"] == 2
            for client in clients:
                await client.close()
            await poll(lambda: server.stats()["connections"] == 0)
            async with await RpcClient.connect(server.addresses["tcp"]) as client:
                assert (await client.status()).height == 0
    run(go())


def test_stop_answers_in_flight_then_closes(run: Run, tmp_path: Path) -> None:
    async def go() -> None:
        async with serving(tmp_path, block_ms=300) as (_, server):
            client = await RpcClient.connect(server.addresses["tcp"])
            waiting = asyncio.ensure_future(
                client.submit_tx_wait(transfer(ALICE, 0, BOB.address, 1).encode()))
            await poll(lambda: server.stats()["inflight"] == 1)
            await server.stop()  # lets the wait finish (the next block is within the grace)
            assert (await waiting).state is TxState.FINAL
            with pytest.raises(NodeUnreachable):
                await client.status()
            await client.close()
    run(go())


def test_unreachable_node_is_one_clear_error(run: Run, tmp_path: Path) -> None:
    async def go() -> None:
        with pytest.raises(NodeUnreachable, match=r"tcp://127.0.0.1:1: connection refused"):
            await RpcClient.connect("tcp://127.0.0.1:1")
        with pytest.raises(NodeUnreachable, match="no such socket"):
            await RpcClient.connect(f"unix:{tmp_path}/none.sock")
        with pytest.raises(NodeUnreachable):
            await RpcClient.connect("http://127.0.0.1:1")
    run(go())
