"""The asyncio RPC client (TCP, Unix, HTTP, WebSocket) and a blocking wrapper for scripts.

    async with await RpcClient.connect("tcp://127.0.0.1:8645") as client:
        status = await client.status()
        info = await client.submit_tx_wait(tx.encode())
        async for block in await client.subscribe_blocks():
            ...

Typed methods return the values of `core/rpc/services.py` (blocks as
`codec.BlockView`, whose header hash is checked). Errors come back as the
same exception classes the node raised (`NotFound`, `NonceMismatch`, ...;
`data` attribute = the error's data); protocol faults as RpcProtocolError
(`rpc_code` = the JSON-RPC code); a node that cannot be reached or drops the
connection as NodeUnreachable; a call without an answer in time as RpcTimeout.

`http://` addresses send calls as HTTP POSTs and open a WebSocket on the
same port for subscriptions; `ws://` sends everything over the WebSocket.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from types import TracebackType
from typing import Any, Generic, TypeVar

from ..abci.types import QueryResult
from ..address import encode_address
from ..constants import RPC_CLIENT_QUEUE_ITEMS_MAX, RPC_RESPONSE_BYTES_MAX, RPC_WAIT_MS_DEFAULT
from ..errors import (
    ChainmallError,
    InvalidInput,
    LimitExceeded,
    NodeUnreachable,
    RpcProtocolError,
    RpcTimeout,
    error_class,
)
from . import codec
from .config import NodeAddress, parse_node_address
from .framing import FrameDecoder, FrameTooLarge, encode_frame
from .jsonrpc import PROTOCOL_CODES, encode_json
from .services import AccountInfo, AddressEvent, NodeStatus, TxInfo

T = TypeVar("T")
CALL_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 10.0
WAIT_MARGIN_S = 5.0  # a submit-and-wait call may take this much past its own time-out

_END = object()
_CONNECTION_METHODS = ("subscribe", "unsubscribe")  # never by POST: they need the connection


def error_from_object(error: Any) -> ChainmallError:
    """The exception for a JSON-RPC error object (see the module docstring)."""
    if not isinstance(error, dict) or type(error.get("code")) is not int:
        return RpcProtocolError(f"malformed error object: {str(error)[:200]}")
    code, message = error["code"], str(error.get("message", ""))
    data = error.get("data")
    if code in PROTOCOL_CODES or -32768 <= code <= -32000:
        exception: ChainmallError = RpcProtocolError(message, rpc_code=code)
    else:
        try:
            cls = error_class(code)
        except KeyError:
            cls = ChainmallError
        try:
            exception = cls(message)
        except TypeError:  # pragma: no cover - every registered class takes a message
            exception = ChainmallError(message)
    exception.data = data  # type: ignore[attr-defined]
    return exception


class Subscription(Generic[T]):
    """Pushed items of one subscription, as an async iterator; `close()` unsubscribes.

    Ends when the node ends it (e.g. after a tx's finality), raising the
    node's error if it ended with one; LimitExceeded if the consumer fell
    more than RPC_CLIENT_QUEUE_ITEMS_MAX items behind.
    """

    def __init__(self, client: RpcClient, parse: Callable[[Any], T]) -> None:
        self._client = client
        self._parse = parse
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self.id = ""
        self._done = False

    def _push(self, item: Any) -> None:
        if self._queue.qsize() >= RPC_CLIENT_QUEUE_ITEMS_MAX:
            self._end(LimitExceeded("subscription consumer fell too far behind"))
            return
        self._queue.put_nowait(item)

    def _end(self, error: BaseException | None = None) -> None:
        self._client._subscriptions.pop(self.id, None)
        self._queue.put_nowait(error if error is not None else _END)

    def __aiter__(self) -> Subscription[T]:
        return self

    async def __anext__(self) -> T:
        if self._done:
            raise StopAsyncIteration
        item = await self._queue.get()
        if item is _END:
            self._done = True
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            self._done = True
            raise item
        try:
            return self._parse(item)
        except InvalidInput as error:
            raise RpcProtocolError(f"malformed notification: {error}") from None

    async def close(self) -> None:
        """Unsubscribe (nothing more is pushed); the iterator ends."""
        if self._done:
            return
        self._done = True
        if self._client._subscriptions.pop(self.id, None) is not None:
            with contextlib.suppress(ChainmallError):
                await self._client.call("unsubscribe", {"subscription": self.id})


class _Connection:
    """A message channel to the node: send one encoded frame; deliver incoming messages."""

    def __init__(self, deliver: Callable[[Any], None], lost: Callable[[str], None]) -> None:
        self._deliver = deliver
        self._lost = lost

    async def send(self, payload: bytes) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


class _StreamConnection(_Connection):
    """TCP or Unix: newline-delimited frames."""

    def __init__(self, deliver: Callable[[Any], None], lost: Callable[[str], None],
                 reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        super().__init__(deliver, lost)
        self._reader = reader
        self._writer = writer
        self._task = asyncio.get_running_loop().create_task(self._read_loop())

    async def _read_loop(self) -> None:
        decoder = FrameDecoder(RPC_RESPONSE_BYTES_MAX)
        reason = "the node closed the connection"
        try:
            while True:
                data = await self._reader.read(1 << 16)
                if not data:
                    break
                for frame in decoder.feed(data):
                    if frame:
                        self._deliver(json.loads(frame))
        except (OSError, ValueError, FrameTooLarge) as error:
            reason = f"connection failed: {error}"
        finally:
            self._lost(reason)

    async def send(self, payload: bytes) -> None:
        self._writer.write(encode_frame(payload))
        await self._writer.drain()

    async def close(self) -> None:
        self._task.cancel()
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()


class _WebSocketConnection(_Connection):
    """A WebSocket: one text message per frame."""

    def __init__(self, deliver: Callable[[Any], None], lost: Callable[[str], None],
                 session: Any, ws: Any) -> None:
        super().__init__(deliver, lost)
        self._session = session
        self._ws = ws
        self._task = asyncio.get_running_loop().create_task(self._read_loop())

    async def _read_loop(self) -> None:
        from aiohttp import WSMsgType

        reason = "the node closed the WebSocket"
        try:
            async for message in self._ws:
                if message.type == WSMsgType.TEXT:
                    self._deliver(json.loads(message.data))
                elif message.type != WSMsgType.BINARY:
                    break
        except (OSError, ValueError) as error:
            reason = f"WebSocket failed: {error}"
        finally:
            self._lost(reason)

    async def send(self, payload: bytes) -> None:
        await self._ws.send_str(payload.decode("ascii"))

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(Exception):
            await self._ws.close()
        if self._session is not None:
            await self._session.close()


class RpcClient:
    """A connection to a node (see the module docstring); use `RpcClient.connect`."""

    def __init__(self, address: NodeAddress, token: str, timeout_s: float) -> None:
        self.address = address
        self.token = token
        self.timeout_s = timeout_s
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[asyncio.Future[Any], Callable[[Any], None] | None]] = {}
        self._subscriptions: dict[str, Subscription[Any]] = {}
        self._connection: _Connection | None = None  # frames (tcp, unix, ws)
        self._http: Any = None  # aiohttp ClientSession for http:// calls
        self._closed_reason = ""

    @classmethod
    async def connect(cls, address: str, token: str = "",
                      timeout_s: float = CALL_TIMEOUT_S) -> RpcClient:
        """Connect to `address` (tcp://, unix:, http://, ws://); NodeUnreachable if it cannot."""
        client = cls(parse_node_address(address), token, timeout_s)
        await client._open()
        return client

    async def __aenter__(self) -> RpcClient:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        traceback: TracebackType | None) -> None:
        await self.close()

    def _unreachable(self, reason: str) -> NodeUnreachable:
        return NodeUnreachable(f"cannot reach the node at {self.address}: {reason}")

    async def _open(self) -> None:
        address = self.address
        try:
            if address.scheme == "tcp":
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(address.host, address.port, limit=1 << 16),
                    CONNECT_TIMEOUT_S)
                self._connection = _StreamConnection(self._deliver, self._lost, reader, writer)
            elif address.scheme == "unix":
                reader, writer = await asyncio.wait_for(
                    asyncio.open_unix_connection(address.path, limit=1 << 16), CONNECT_TIMEOUT_S)
                self._connection = _StreamConnection(self._deliver, self._lost, reader, writer)
            elif address.scheme == "ws":
                self._connection = await self._open_websocket(address)
            else:
                import aiohttp

                self._http = aiohttp.ClientSession(
                    timeout=aiohttp.ClientTimeout(total=None, connect=CONNECT_TIMEOUT_S))
                await self.call("rpc_methods")  # fail now, not at the first real call
            if self.token and address.scheme in ("tcp", "ws"):
                await self.call("auth", {"token": self.token})
        except (OSError, TimeoutError) as error:
            await self.close()
            raise self._unreachable(_reason(error)) from None
        except BaseException:
            await self.close()
            raise

    async def _open_websocket(self, address: NodeAddress) -> _Connection:
        import aiohttp

        host = f"[{address.host}]" if ":" in address.host else address.host
        url = f"http://{host}:{address.port}{address.path if address.scheme == 'ws' else '/ws'}"
        session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, connect=CONNECT_TIMEOUT_S))
        try:
            ws = await session.ws_connect(url, headers=self._auth_headers(),
                                          max_msg_size=RPC_RESPONSE_BYTES_MAX, autoping=True)
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            await session.close()
            raise self._unreachable(_reason(error)) from None
        return _WebSocketConnection(self._deliver, self._lost, session, ws)

    def _auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def close(self) -> None:
        """Close the connection; pending calls fail with NodeUnreachable."""
        self._lost("the client closed the connection")
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.close()
        http, self._http = self._http, None
        if http is not None:
            await http.close()
        self._lost("the client closed the connection")

    # --- incoming ------------------------------------------------------------------------

    def _deliver(self, message: Any) -> None:
        for item in message if isinstance(message, list) else (message,):
            if not isinstance(item, dict):
                continue
            if "method" in item and "id" not in item:
                self._notify(item.get("method"), item.get("params"))
                continue
            request_id = item.get("id")
            pending = self._pending.pop(request_id, None) if type(request_id) is int else None
            if pending is None:
                if request_id is None and "error" in item:  # a fault about the connection
                    self._lost(str(item["error"].get("message", "error")))
                continue
            future, on_result = pending
            if future.done():
                continue
            if "error" in item:
                future.set_exception(error_from_object(item["error"]))
            else:
                if on_result is not None:
                    on_result(item.get("result"))
                future.set_result(item.get("result"))

    def _notify(self, method: Any, params: Any) -> None:
        if not isinstance(params, dict):
            return
        subscription = self._subscriptions.get(str(params.get("subscription")))
        if subscription is None:
            return
        if method == "subscription":
            subscription._push(params.get("result"))
        elif method == "subscription_end":
            error = params.get("error")
            subscription._end(error_from_object(error) if error else None)

    def _lost(self, reason: str) -> None:
        if not self._closed_reason:
            self._closed_reason = reason
        pending, self._pending = self._pending, {}
        for future, _ in pending.values():
            if not future.done():
                future.set_exception(self._unreachable(reason))
        subscriptions, self._subscriptions = self._subscriptions, {}
        for subscription in subscriptions.values():
            subscription._end(self._unreachable(reason))

    # --- calls -----------------------------------------------------------------------------

    async def call(self, method: str, params: Any = None, timeout_s: float | None = None,
                   on_result: Callable[[Any], None] | None = None) -> Any:
        """Call `method` with `params` (a dict or list); its result, or its error raised."""
        request_id = next(self._ids)
        request: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            request["params"] = params
        timeout = self.timeout_s if timeout_s is None else timeout_s
        if self._http is not None and method not in _CONNECTION_METHODS:
            return await self._post(request, timeout)
        if self._connection is None or self._closed_reason:
            raise self._unreachable(self._closed_reason or "not connected")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = (future, on_result)
        try:
            await self._connection.send(encode_json(request))
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise RpcTimeout(f"{method}: no answer from {self.address} in {timeout:g} s") from None
        except (OSError, RuntimeError) as error:
            raise self._unreachable(_reason(error)) from None
        finally:
            self._pending.pop(request_id, None)

    async def batch(self, calls: list[tuple[str, Any]],
                    timeout_s: float | None = None) -> list[Any]:
        """Several calls in one JSON-RPC batch; each entry is its result or its exception."""
        ids = [next(self._ids) for _ in calls]
        requests = [{"jsonrpc": "2.0", "id": request_id, "method": method,
                     **({"params": params} if params is not None else {})}
                    for request_id, (method, params) in zip(ids, calls, strict=True)]
        timeout = self.timeout_s if timeout_s is None else timeout_s
        if self._http is not None:
            responses = await self._post(requests, timeout, raw=True)
            by_id = {r.get("id"): r for r in responses if isinstance(r, dict)}
            return [_outcome(by_id.get(request_id)) for request_id in ids]
        if self._connection is None or self._closed_reason:
            raise self._unreachable(self._closed_reason or "not connected")
        loop = asyncio.get_running_loop()
        futures = []
        for request_id in ids:
            future: asyncio.Future[Any] = loop.create_future()
            self._pending[request_id] = (future, None)
            futures.append(future)
        try:
            await self._connection.send(encode_json(requests))
            done = await asyncio.wait_for(
                asyncio.gather(*futures, return_exceptions=True), timeout)
        except TimeoutError:
            raise RpcTimeout(f"batch: no answer from {self.address} in {timeout:g} s") from None
        finally:
            for request_id in ids:
                self._pending.pop(request_id, None)
        return list(done)

    async def _post(self, payload: Any, timeout_s: float, raw: bool = False) -> Any:
        import aiohttp

        address = self.address
        host = f"[{address.host}]" if ":" in address.host else address.host
        url = f"http://{host}:{address.port}/"
        try:
            async with self._http.post(url, data=encode_json(payload), headers={
                    "Content-Type": "application/json", **self._auth_headers()},
                    timeout=aiohttp.ClientTimeout(total=timeout_s)) as response:
                body = await response.read()
        except TimeoutError:
            raise RpcTimeout(f"no answer from {address} in {timeout_s:g} s") from None
        except (aiohttp.ClientError, OSError) as error:
            raise self._unreachable(_reason(error)) from None
        try:
            message = json.loads(body)
        except ValueError:
            raise RpcProtocolError(f"HTTP {response.status}: not JSON") from None
        if raw:
            if isinstance(message, dict) and "error" in message:
                raise error_from_object(message["error"])
            return message
        return _outcome(message, raise_error=True)

    # --- typed methods ------------------------------------------------------------------------

    async def status(self) -> NodeStatus:
        """The node's status."""
        return _parse(codec.status_from_json, await self.call("status"))

    async def submit_tx(self, tx: bytes) -> bytes:
        """Offer a raw tx; its id (the refusal's error class if refused)."""
        result = await self.call("tx_submit", {"tx": tx.hex()})
        return _parse(lambda r: codec.parse_hex(r.get("tx_id") if isinstance(r, dict) else r,
                                                "tx_id", 32), result)

    async def submit_tx_wait(self, tx: bytes,
                             timeout_s: float = RPC_WAIT_MS_DEFAULT / 1000) -> TxInfo:
        """Offer a raw tx and return once it is final (NotFinal if not within `timeout_s`)."""
        result = await self.call("tx_submit_wait",
                                 {"tx": tx.hex(), "timeout_ms": int(timeout_s * 1000)},
                                 timeout_s=timeout_s + WAIT_MARGIN_S)
        return _parse(codec.tx_info_from_json, result)

    async def tx(self, tx_id: bytes) -> TxInfo:
        """A tx's status and, when final, its receipt."""
        return _parse(codec.tx_info_from_json, await self.call("tx_get", {"tx_id": tx_id.hex()}))

    async def block(self, height: int | None = None, block_hash: bytes | None = None,
                    txs: bool = False) -> codec.BlockView:
        """A block by height or hash (the latest without either), raw txs when `txs`."""
        params: dict[str, Any] = {"txs": txs}
        if height is not None:
            params["height"] = height
        if block_hash is not None:
            params["hash"] = block_hash.hex()
        return _parse(codec.block_view_from_json, await self.call("block_get", params))

    async def account(self, address: bytes, height: int = 0, prove: bool = False) -> AccountInfo:
        """An account (20-byte address) at `height` (0: latest), with its proof when `prove`."""
        result = await self.call("account_get", {"address": encode_address(address),
                                                 "height": height, "prove": prove})
        return _parse(codec.account_from_json, result)

    async def state(self, key: bytes, height: int = 0, prove: bool = False) -> QueryResult:
        """A state entry by key (value b"" when absent)."""
        result = await self.call("state_get", {"key": key.hex(), "height": height,
                                               "prove": prove})
        return _parse(codec.query_from_json, result)

    async def query(self, path: str, data: bytes = b"", height: int = 0,
                    prove: bool = False) -> QueryResult:
        """An ABCI query by path (docs/abci.md)."""
        result = await self.call("query", {"path": path, "data": data.hex(), "height": height,
                                           "prove": prove})
        return _parse(codec.query_from_json, result)

    async def subscribe_blocks(self) -> Subscription[codec.BlockView]:
        """Every block committed from now on."""
        return await self._subscribe({"topic": "blocks"}, codec.block_view_from_json)

    async def subscribe_tx(self, tx_id: bytes) -> Subscription[TxInfo]:
        """One item when the tx is final, then the end."""
        return await self._subscribe({"topic": "tx", "tx_id": tx_id.hex()},
                                     codec.tx_info_from_json)

    async def subscribe_events(self, address: bytes) -> Subscription[AddressEvent]:
        """Events of final txs that name `address`."""
        return await self._subscribe({"topic": "events", "address": encode_address(address)},
                                     codec.address_event_from_json)

    async def _subscribe(self, params: dict[str, Any],
                         parse: Callable[[Any], T]) -> Subscription[T]:
        if self._http is not None and (self._connection is None or self._closed_reason):
            # http://: calls go by POST, subscriptions need the WebSocket on the same port
            if self._connection is not None:
                await self._connection.close()
            self._connection = await self._open_websocket(self.address)
            self._closed_reason = ""
        subscription: Subscription[T] = Subscription(self, parse)

        def register(result: Any) -> None:  # runs in the reader, before any notification
            subscription.id = str(result)
            self._subscriptions[subscription.id] = subscription

        await self.call("subscribe", params, on_result=register)
        return subscription


def _reason(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "no answer in time"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, FileNotFoundError):
        return "no such socket"
    text = str(error) or type(error).__name__
    return text.splitlines()[0]


def _outcome(response: Any, raise_error: bool = False) -> Any:
    if not isinstance(response, dict):
        error: ChainmallError = RpcProtocolError("missing or malformed response")
    elif "error" in response:
        error = error_from_object(response["error"])
    else:
        return response.get("result")
    if raise_error:
        raise error
    return error


def _parse(parse: Callable[[Any], T], value: Any) -> T:
    try:
        return parse(value)
    except InvalidInput as error:
        raise RpcProtocolError(f"malformed response: {error}") from None


class _Box:
    """A value with a constant-cost repr (see `BlockingClient._run`)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


async def _boxed(call: Awaitable[Any]) -> _Box:
    return _Box(await call)


class BlockingClient:
    """`RpcClient` for scripts: the same typed methods, blocking, on a private event loop.

        with BlockingClient("tcp://127.0.0.1:8645") as node:
            print(node.status().height)
    """

    def __init__(self, address: str, token: str = "", timeout_s: float = CALL_TIMEOUT_S) -> None:
        self._runner = asyncio.Runner()
        try:
            self._client = self._run(RpcClient.connect(address, token, timeout_s))
        except BaseException:
            self._runner.close()
            raise

    def _run(self, call: Awaitable[T]) -> T:
        """`call`'s result, run on the private loop.

        The result travels in a `_Box`: in the main thread, Python 3.11's
        `Runner.run` formats the finished task, result included, when it
        checks the SIGINT handler it set, and the repr of a large answer (a
        proven top-k: 31 entries) cost about 1 ms of CPU per call.
        """
        return self._runner.run(_boxed(call)).value

    def __enter__(self) -> BlockingClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection and the private loop."""
        with contextlib.suppress(Exception):
            self._run(self._client.close())
        self._runner.close()

    def call(self, method: str, params: Any = None) -> Any:
        """A raw call."""
        return self._run(self._client.call(method, params))

    def status(self) -> NodeStatus:
        """The node's status."""
        return self._run(self._client.status())

    def submit_tx(self, tx: bytes) -> bytes:
        """Offer a raw tx; its id."""
        return self._run(self._client.submit_tx(tx))

    def submit_tx_wait(self, tx: bytes, timeout_s: float = RPC_WAIT_MS_DEFAULT / 1000) -> TxInfo:
        """Offer a raw tx; its final state."""
        return self._run(self._client.submit_tx_wait(tx, timeout_s))

    def tx(self, tx_id: bytes) -> TxInfo:
        """A tx's status."""
        return self._run(self._client.tx(tx_id))

    def block(self, height: int | None = None, block_hash: bytes | None = None,
              txs: bool = False) -> codec.BlockView:
        """A block by height or hash."""
        return self._run(self._client.block(height, block_hash, txs))

    def account(self, address: bytes, height: int = 0, prove: bool = False) -> AccountInfo:
        """An account."""
        return self._run(self._client.account(address, height, prove))

    def query(self, path: str, data: bytes = b"", height: int = 0,
              prove: bool = False) -> QueryResult:
        """An ABCI query."""
        return self._run(self._client.query(path, data, height, prove))

    def blocks(self) -> Iterator[codec.BlockView]:
        """New blocks as they are committed (a generator; close it to unsubscribe)."""
        return self._iterate(self._client.subscribe_blocks())

    def events(self, address: bytes) -> Iterator[AddressEvent]:
        """Events naming `address` as they happen."""
        return self._iterate(self._client.subscribe_events(address))

    def _iterate(self, opening: Any) -> Iterator[Any]:
        subscription: AsyncIterator[Any] = self._run(opening)
        try:
            while True:
                try:
                    yield self._run(subscription.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            with contextlib.suppress(Exception):
                self._run(subscription.close())  # type: ignore[attr-defined]
