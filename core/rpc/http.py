"""HTTP POST and WebSocket (aiohttp) on one port, same methods; static pages beside them.

Routes: `POST /` takes one JSON-RPC frame (request or batch) as the body and
answers it (204 when it held only notifications); `GET /ws` upgrades to a
WebSocket where every text message is a frame and subscriptions are pushed
as notifications. With a page root (the built product page, package data:
docs/page.md section 1), `GET /`, `GET /product/<id>` and `GET /item/<id>`
serve its `index.html` and `GET /static/<name>` its files, with a
`default-src 'self'` content security policy; when the page is not built
they answer 503 with one line saying so. Without a page root, `GET /` is a
line naming the RPC.

Limits, as on the stream transports: the connection limit (an HTTP
connection counts once, with the WebSocket it may carry), the body and
message size (413 / close 1009), the per-connection rate, `read_ms_max` for
a request body, `idle_ms_max` for an idle connection (aiohttp's keep-alive,
also before the first request), and a client that takes no output for
`write_ms_max` is dropped. With a token, POST needs `Authorization: Bearer
<token>`; a WebSocket needs the header on the upgrade or an `auth` call first.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import mimetypes
import re
import time
from collections import deque
from typing import TYPE_CHECKING, Any, cast

from aiohttp import WSMsgType, web
from aiohttp.web_exceptions import HTTPRequestEntityTooLarge

from ..errors import Unauthorized
from .jsonrpc import INVALID_REQUEST, RpcFault, domain_fault, encode_json, error_response
from .server import WATCHDOG_DIVISOR, too_many_connections
from .session import Session

if TYPE_CHECKING:
    from .server import RpcServer

LOG = logging.getLogger("chainmall.rpc")
JSON_TYPE = "application/json"
_STATIC_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
PAGE_ROUTES = ("/", "/product/{id}", "/item/{id}")  # each serves index.html
PAGE_FILES_NEEDED = ("index.html", "app.js")
PAGE_NOT_BUILT = "the product page is not built: run make web\n"
PAGE_HEADERS = {"Content-Security-Policy": "default-src 'self'",
                "X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}


class HttpConnection(Session, asyncio.Protocol):
    """One HTTP connection: its rate and write watchdog; the session of its POSTs.

    Sits between the transport and aiohttp's request handler, so it sees every
    connection (for the limit) and the transport's flow control (a client that
    stops reading is dropped after `write_ms_max`).
    """

    kind = "http"
    supports_subscriptions = False  # a POST has no connection to push to

    def __init__(self, owner: HttpTransport, handler: asyncio.Protocol) -> None:
        super().__init__(owner.server.config.limits, peer="http", authenticated=False)
        self._owner = owner
        self.handler = handler
        self.admitted = False
        self.transport: asyncio.Transport | None = None
        self._write_paused_since: float | None = None
        self._watchdog: asyncio.TimerHandle | None = None

    # --- asyncio.Protocol, forwarded to aiohttp ---------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop: not a subclass
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"http:{peer}"
        if not self._owner.server.registry.admit(self):
            self.closed = True
            body = too_many_connections(self.limits.connections_max)
            transport.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: "
                            b"application/json\r\nConnection: close\r\nContent-Length: "
                            + str(len(body)).encode() + b"\r\n\r\n" + body)
            transport.close()
            return
        self.admitted = True
        self._owner.connections[self.handler] = self
        self.handler.connection_made(transport)
        self._schedule_watchdog()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.admitted:
            return
        self._owner.server.registry.release(self)
        self._owner.connections.pop(self.handler, None)
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        self.handler.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.admitted:
            self.handler.data_received(data)

    def eof_received(self) -> bool | None:
        return self.handler.eof_received() if self.admitted else None

    def pause_writing(self) -> None:
        self._write_paused_since = time.monotonic()
        if self.admitted:
            self.handler.pause_writing()

    def resume_writing(self) -> None:
        self._write_paused_since = None
        if self.admitted:
            self.handler.resume_writing()

    # --- Session -----------------------------------------------------------------------------

    def send(self, payload: bytes) -> None:  # pragma: no cover - POST answers by return value
        raise RuntimeError("an HTTP POST session has nothing to push")

    def close(self, reason: str = "") -> None:
        self.closed = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _schedule_watchdog(self) -> None:
        self._watchdog = asyncio.get_running_loop().call_later(
            self.limits.write_ms_max / 1000 / WATCHDOG_DIVISOR, self._check_write)

    def _check_write(self) -> None:
        self._watchdog = None
        if self.transport is None:
            return
        paused = self._write_paused_since
        if paused is not None and time.monotonic() - paused >= self.limits.write_ms_max / 1000:
            LOG.info("rpc: %s took nothing for %d ms: closing", self.peer,
                     self.limits.write_ms_max)
            self.closed = True
            self.transport.abort()
            return
        self._schedule_watchdog()


class WsSession(Session):
    """A WebSocket: text messages are frames; responses and notifications are queued
    and written in order by one writer task."""

    kind = "ws"

    def __init__(self, owner: HttpTransport, ws: web.WebSocketResponse, peer: str,
                 authenticated: bool) -> None:
        super().__init__(owner.server.config.limits, peer=peer, authenticated=authenticated)
        self._owner = owner
        self._ws = ws
        self._queue: deque[bytes] = deque()
        self._queued_bytes = 0
        self._wakeup = asyncio.Event()
        self._slot = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._writer = asyncio.get_running_loop().create_task(self._write_loop())
        self._watchdog: asyncio.TimerHandle | None = None
        self._schedule_watchdog()

    def send(self, payload: bytes) -> None:
        if self.closed:
            return
        if self._queued_bytes + len(payload) > self.limits.write_buffer_bytes_max:
            LOG.info("rpc: %s is not reading its messages: closing", self.peer)
            self.close("not reading")
            return
        self._queue.append(payload)
        self._queued_bytes += len(payload)
        self._wakeup.set()

    def close(self, reason: str = "") -> None:
        if self.closed:
            return
        self.closed = True
        self._wakeup.set()
        self._slot.set()
        task = asyncio.get_running_loop().create_task(self._ws.close())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def receive_loop(self) -> None:
        """Read frames until the socket closes; each runs as a task."""
        loop = asyncio.get_running_loop()
        try:
            async for message in self._ws:
                if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    break
                self.last_activity = time.monotonic()
                self.inflight += 1
                task = loop.create_task(self._serve(message.data))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                while self.inflight >= self.limits.inflight_requests_max and not self.closed:
                    self._slot.clear()
                    await self._slot.wait()  # back-pressure: stop reading
                if self.closed:
                    break
        finally:
            self.closed = True
            self.end_subscriptions()
            if self._watchdog is not None:
                self._watchdog.cancel()
            for task in list(self._tasks):
                task.cancel()
            self._wakeup.set()
            with contextlib.suppress(Exception):
                await self._writer

    async def _serve(self, frame: bytes | str) -> None:
        try:
            response = await self._owner.server.dispatcher.handle_frame(self, frame)
            if response is not None:
                self.send(response)
            self.start_subscriptions()
            if self.close_after_response:
                self.close("failed auth")
        finally:
            self.inflight -= 1
            if self.inflight <= self.limits.inflight_requests_max // 2:
                self._slot.set()

    async def _write_loop(self) -> None:
        while True:
            while self._queue and not self._ws.closed:
                payload = self._queue.popleft()
                self._queued_bytes -= len(payload)
                try:
                    await self._ws.send_str(payload.decode("ascii"))
                except (ConnectionError, RuntimeError):
                    self.closed = True
                    return
            if self.closed:
                return
            self._wakeup.clear()
            await self._wakeup.wait()

    def _schedule_watchdog(self) -> None:
        limits = self.limits
        period_s = min(limits.idle_ms_max, limits.read_ms_max) / 1000 / WATCHDOG_DIVISOR
        self._watchdog = asyncio.get_running_loop().call_later(period_s, self._check_idle)

    def _check_idle(self) -> None:
        self._watchdog = None
        if self.closed:
            return
        if self.is_idle(time.monotonic()):
            self.close("idle")
            return
        self._schedule_watchdog()


class HttpTransport:
    """The aiohttp application and its listener, serving an `RpcServer`'s dispatcher."""

    def __init__(self, server: RpcServer, static_root: Any = None) -> None:
        self.server = server
        self.static_root = static_root
        self.connections: dict[object, HttpConnection] = {}
        limits = server.config.limits
        app = web.Application(client_max_size=limits.frame_bytes_max)
        app.router.add_post("/", self._post)
        app.router.add_get("/ws", self._websocket)
        if static_root is None:
            app.router.add_get("/", self._index)
        else:
            for route in PAGE_ROUTES:
                app.router.add_get(route, self._page)
            app.router.add_get("/static/{name}", self._static)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None,
                                     keepalive_timeout=limits.idle_ms_max / 1000,
                                     lingering_time=0,  # never wait for an unread body
                                     shutdown_timeout=limits.shutdown_ms_max / 1000)
        self._listener: asyncio.AbstractServer | None = None
        self._ws_sessions: set[WsSession] = set()

    async def start(self, host: str, port: int) -> str:
        """Listen on (host, port); the URL actually bound."""
        await self._runner.setup()
        handler_factory = self._runner.server
        assert handler_factory is not None
        loop = asyncio.get_running_loop()
        self._listener = await loop.create_server(
            lambda: HttpConnection(self, handler_factory()), host, port,
            reuse_address=True, backlog=1024)
        bound_host, bound_port = self._listener.sockets[0].getsockname()[:2]
        bound_host = f"[{bound_host}]" if ":" in bound_host else bound_host
        return f"http://{bound_host}:{bound_port}"

    async def stop_accepting(self) -> None:
        """Stop taking new connections."""
        if self._listener is not None:
            self._listener.close()

    async def close(self) -> None:
        """Close every WebSocket and connection, and the application."""
        for session in list(self._ws_sessions):
            session.close("server stopping")
        for connection in list(self.connections.values()):
            connection.close("server stopping")
        await self._runner.cleanup()
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._listener.wait_closed(), 1.0)

    # --- handlers -------------------------------------------------------------------------

    def _bearer_ok(self, request: web.BaseRequest) -> bool:
        token = self.server.config.token
        if not token:
            return True
        header = request.headers.get("Authorization", "")
        scheme, _, presented = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            presented.strip().encode(), token.encode())

    async def _post(self, request: web.Request) -> web.StreamResponse:
        connection = self.connections.get(request.protocol)
        if connection is None:  # pragma: no cover - every admitted connection is mapped
            return _json_error(503, RpcFault(INVALID_REQUEST, "connection not admitted"))
        if not self._bearer_ok(request):
            return _json_error(401, domain_fault(Unauthorized(
                "this listener needs Authorization: Bearer <token>")))
        limits = self.server.config.limits
        try:
            body = await asyncio.wait_for(request.read(), limits.read_ms_max / 1000)
        except HTTPRequestEntityTooLarge:
            return _json_error(413, RpcFault(
                INVALID_REQUEST, f"body of more than {limits.frame_bytes_max} bytes"))
        except TimeoutError:
            response = _json_error(408, RpcFault(
                INVALID_REQUEST, f"request body not complete within {limits.read_ms_max} ms"))
            response.force_close()  # answer, then close: the rest of the body may never come
            return response
        connection.authenticated = True
        connection.last_activity = time.monotonic()
        connection.inflight += 1
        try:
            response = await self.server.dispatcher.handle_frame(connection, body)
        finally:
            connection.inflight -= 1
        if response is None:
            return web.Response(status=204)
        return web.Response(body=response, content_type=JSON_TYPE)

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        limits = self.server.config.limits
        ws = web.WebSocketResponse(max_msg_size=limits.frame_bytes_max, compress=False,
                                   heartbeat=limits.read_ms_max / 1000)
        await ws.prepare(request)
        connection = self.connections.get(request.protocol)
        session = WsSession(self, ws, connection.peer if connection else "ws",
                            self._bearer_ok(request))
        self._ws_sessions.add(session)
        self.server.registry.attach(session)  # counted by its HTTP connection
        try:
            await session.receive_loop()
        finally:
            self._ws_sessions.discard(session)
            self.server.registry.release(session)
            with contextlib.suppress(Exception):
                await ws.close()
        return ws

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text="chainmall JSON-RPC 2.0: POST / or WebSocket /ws "
                                 "(docs/rpc.md)\n")

    async def _page(self, request: web.Request) -> web.StreamResponse:
        return self._file("index.html")

    async def _static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if not _STATIC_NAME.fullmatch(name):
            raise web.HTTPNotFound()
        return self._file(name)

    def _file(self, name: str) -> web.StreamResponse:
        """A file of the page (404 if there is no such file; 503 if the page is not built)."""
        root = self.static_root
        if not all(root.joinpath(needed).is_file() for needed in PAGE_FILES_NEEDED):
            return web.Response(status=503, text=PAGE_NOT_BUILT, headers=PAGE_HEADERS)
        resource = root.joinpath(name)
        if not resource.is_file():
            raise web.HTTPNotFound()
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        charset = "utf-8" if content_type.startswith("text/") or content_type.endswith(
            ("javascript", "+xml", "json")) else None
        return web.Response(body=resource.read_bytes(), content_type=content_type,
                            charset=charset, headers=PAGE_HEADERS)


def _json_error(status: int, fault: RpcFault) -> web.Response:
    return web.Response(status=status, body=encode_json(error_response(None, fault)),
                        content_type=JSON_TYPE)
