"""JSON-RPC 2.0 rules, transport-free: envelopes, batches, notifications, codes, rate, auth."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from chainmall.core.errors import NotFound
from chainmall.core.rpc.config import RpcLimits
from chainmall.core.rpc.dispatch import Dispatcher
from chainmall.core.rpc.methods import Method, default_methods
from chainmall.core.rpc.session import Session
from chainmall.core.rpc.testing import FakeNode
from rpc_helpers import ALICE, run_on

TOKEN = "s3cret-token-0123456789"


class RecordingSession(Session):
    """A session that keeps what is pushed to it."""

    def __init__(self, limits: RpcLimits, authenticated: bool = True) -> None:
        super().__init__(limits, "test", authenticated)
        self.sent: list[Any] = []

    def send(self, payload: bytes) -> None:
        self.sent.append(json.loads(payload))

    def close(self, reason: str = "") -> None:
        self.closed = True


def answer(frame: str | bytes, limits: RpcLimits | None = None, token: str = "",
           authenticated: bool = True, extra: Method | None = None) -> Any:
    """The decoded response to one frame (None when there is none)."""
    limits = limits or RpcLimits()

    async def go() -> Any:
        methods = default_methods(1000)
        if extra is not None:
            methods.add(extra)
        dispatcher = Dispatcher(methods, FakeNode(balances={ALICE.address: 5}), limits, token)
        raw = await dispatcher.handle_frame(RecordingSession(limits, authenticated), frame)
        return None if raw is None else json.loads(raw)

    return run_on("asyncio", go())


def error_code(response: Any) -> int:
    return response["error"]["code"]


@pytest.mark.parametrize("frame", [b"{", b"\xff\xfe", b"nul", b'{"a":1}x', b"[1,", b"1" * 5000])
def test_parse_error(frame: bytes) -> None:
    response = answer(frame)
    assert error_code(response) == -32700 and response["id"] is None


def test_deeply_nested_json_is_a_parse_error_not_a_crash() -> None:
    response = answer(b"[" * 200_000 + b"]" * 200_000)
    assert error_code(response) == -32700 and "nested" in response["error"]["message"]


@pytest.mark.parametrize("request_", [
    1, "x", None, {}, {"jsonrpc": "1.0", "method": "status", "id": 1},
    {"jsonrpc": "2.0", "method": 5, "id": 1}, {"jsonrpc": "2.0", "method": "status", "id": 1.5},
    {"jsonrpc": "2.0", "method": "status", "id": [1]},
])
def test_invalid_request(request_: Any) -> None:
    response = answer(json.dumps(request_))
    assert error_code(response) == -32600


def test_success_echoes_the_id() -> None:
    for request_id in (7, "abc", None):
        response = answer(json.dumps({"jsonrpc": "2.0", "method": "status", "id": request_id}))
        assert response["id"] == request_id and response["result"]["height"] == 0


def test_unknown_method_and_bad_params() -> None:
    assert error_code(answer('{"jsonrpc":"2.0","method":"nope","id":1}')) == -32601
    for params in ('{"tx_id": 5}', '{"tx_id": "00"}', '["zz"]', '{"other": 1}', "[1,2]", "3",
                   "{}"):
        frame = f'{{"jsonrpc":"2.0","method":"tx_get","id":1,"params":{params}}}'
        response = answer(frame)
        assert error_code(response) == -32602, params


def test_params_by_position_or_by_name() -> None:
    by_name = answer('{"jsonrpc":"2.0","id":1,"method":"block_get","params":{"height":1}}')
    by_position = answer('{"jsonrpc":"2.0","id":1,"method":"block_get","params":[1]}')
    assert by_name == by_position
    assert error_code(by_name) == NotFound.code
    assert by_name["error"]["data"] == {"class": "NotFound"}


def test_notifications_get_no_response_even_on_error() -> None:
    assert answer('{"jsonrpc":"2.0","method":"status"}') is None
    assert answer('{"jsonrpc":"2.0","method":"nope"}') is None
    assert answer('[{"jsonrpc":"2.0","method":"status"}]') is None


def test_batch() -> None:
    batch = [
        {"jsonrpc": "2.0", "method": "status", "id": 1},
        {"jsonrpc": "2.0", "method": "status"},  # a notification: no entry
        {"jsonrpc": "2.0", "method": "nope", "id": 2},
        5,
        {"jsonrpc": "2.0", "method": "tx_get", "id": "t", "params": {"tx_id": "00" * 32}},
    ]
    responses = answer(json.dumps(batch))
    assert len(responses) == 4
    by_id = {r["id"]: r for r in responses if r["id"] is not None}
    assert by_id[1]["result"]["chain_id"] == "test-chain"
    assert error_code(by_id[2]) == -32601
    assert by_id["t"]["result"]["status"] == "unknown"
    assert [error_code(r) for r in responses if r["id"] is None] == [-32600]


def test_empty_and_oversized_batches() -> None:
    assert error_code(answer("[]")) == -32600
    limits = RpcLimits(batch_items_max=3)
    request = {"jsonrpc": "2.0", "method": "status", "id": 1}
    assert len(answer(json.dumps([request] * 3), limits)) == 3
    response = answer(json.dumps([request] * 4), limits)
    assert error_code(response) == -32600 and "limit 3" in response["error"]["message"]


def test_rate_limit_per_session() -> None:
    limits = RpcLimits(requests_per_s_max=1, requests_burst_max=2)

    async def go() -> list[Any]:
        dispatcher = Dispatcher(default_methods(1000), FakeNode(), limits, "")
        session = RecordingSession(limits)
        frame = b'{"jsonrpc":"2.0","method":"status","id":1}'
        return [json.loads(await dispatcher.handle_frame(session, frame)) for _ in range(3)]

    first, second, third = run_on("asyncio", go())
    assert "result" in first and "result" in second
    assert third["error"]["code"] == 305 and third["error"]["data"]["class"] == "RateLimited"


def test_auth_gate() -> None:
    frame = '{"jsonrpc":"2.0","method":"status","id":1}'
    response = answer(frame, token=TOKEN, authenticated=False)
    assert error_code(response) == 306 and response["error"]["data"]["class"] == "Unauthorized"
    assert error_code(answer('{"jsonrpc":"2.0","method":"auth","id":1,"params":["bad"]}',
                             token=TOKEN, authenticated=False)) == 306

    async def go() -> Any:
        dispatcher = Dispatcher(default_methods(1000), FakeNode(), RpcLimits(), TOKEN)
        session = RecordingSession(RpcLimits(), authenticated=False)
        auth = json.dumps({"jsonrpc": "2.0", "method": "auth", "id": 1, "params": [TOKEN]})
        assert json.loads(await dispatcher.handle_frame(session, auth))["result"] is True
        return json.loads(await dispatcher.handle_frame(session, frame))

    assert run_on("asyncio", go())["result"]["height"] == 0


def test_internal_errors_are_logged_not_leaked(caplog: pytest.LogCaptureFixture) -> None:
    async def broken(call: Any) -> Any:
        raise KeyError("secret detail")

    response = answer('{"jsonrpc":"2.0","method":"broken","id":1}',
                      extra=Method("broken", broken))
    assert response["error"] == {"code": -32603, "message": "internal error"}
    assert "secret detail" in caplog.text


def test_batch_items_start_in_order() -> None:
    order: list[int] = []

    async def record(call: Any, n: int) -> Any:
        order.append(n)
        await asyncio.sleep(0)
        return n

    from chainmall.core.rpc.methods import Param
    method = Method("record", record, (Param("n", lambda v, name: v),))
    batch = [{"jsonrpc": "2.0", "method": "record", "id": i, "params": [i]} for i in range(20)]
    responses = answer(json.dumps(batch), extra=method)
    assert order == list(range(20))
    assert sorted(r["result"] for r in responses) == list(range(20))
