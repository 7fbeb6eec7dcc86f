"""The RPC server: TCP and Unix listeners (newline-delimited frames), the HTTP one, limits.

`RpcServer(services, config).start()` opens every configured listener on the
running loop (asyncio or uvloop); `stop()` stops accepting, lets in-flight
requests finish for up to `shutdown_ms_max`, then closes every connection.

Each stream connection is an asyncio `Protocol` (no stream reader buffers):

* frames are cut by `FrameDecoder`; a frame over `frame_bytes_max` is
  answered with -32600 and the connection is closed (it cannot resync);
* each frame runs as a task; at `inflight_requests_max` frames in flight the
  transport stops reading until half of them are done (back-pressure on the
  client, no queue in the server);
* what is sent in one turn of the event loop (the answers of a block's txs,
  say) goes to the transport as one write, not one system call per answer;
  past `write_buffer_bytes_max` unsent bytes (a client that stopped
  reading), or when the buffer stays above its high-water mark for
  `write_ms_max`, the connection is aborted;
* a watchdog closes a connection that is idle (nothing in flight, no
  subscription) for `idle_ms_max`, or that has held a partial frame for
  `read_ms_max` of reading (a slow or half-open client); while the server
  itself does not read (back-pressure) that clock stands still, and it
  starts again when reading resumes;
* past `connections_max` open connections (all transports), a new one gets
  a LimitExceeded error line and is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import socket
import stat
import time
from pathlib import Path
from typing import Any, cast

from ..constants import RPC_WAIT_MS_DEFAULT
from ..errors import InvalidInput, LimitExceeded
from .config import RpcConfig
from .dispatch import Dispatcher
from .framing import NEWLINE, FrameDecoder, FrameTooLarge, encode_frame
from .jsonrpc import INVALID_REQUEST, RpcFault, domain_fault, encode_json, error_response
from .methods import MethodTable, default_methods
from .services import NodeServices
from .session import Session

LOG = logging.getLogger("chainmall.rpc")
WRITE_HIGH_WATER_BYTES = 256 * 1024  # the transport asks us to pause above this
WATCHDOG_DIVISOR = 4  # the watchdog runs this many times per shortest time-out
STOP_FLUSH_S = 1.0  # on stop, closing connections get this long to flush, then are aborted


class _Registry:
    """Open sessions of every transport, for the connection limit, stats and stop.

    `connections` count against the limit (TCP, Unix and HTTP connections);
    `attached` sessions ride on one of them (a WebSocket on its HTTP
    connection) and are only tracked.
    """

    def __init__(self, connections_max: int) -> None:
        self.connections_max = connections_max
        self.connections: set[Session] = set()
        self.attached: set[Session] = set()
        self.refused = 0

    @property
    def sessions(self) -> set[Session]:
        """Every open session."""
        return self.connections | self.attached

    def admit(self, session: Session) -> bool:
        """Count a new connection; False (and counted as refused) past the limit."""
        if len(self.connections) >= self.connections_max:
            self.refused += 1
            return False
        self.connections.add(session)
        return True

    def attach(self, session: Session) -> None:
        """Track a session carried by an admitted connection."""
        self.attached.add(session)

    def release(self, session: Session) -> None:
        """Forget a closed session."""
        self.connections.discard(session)
        self.attached.discard(session)


def too_many_connections(connections_max: int) -> bytes:
    """The error sent to a connection refused for the connection limit."""
    fault = domain_fault(LimitExceeded(f"too many connections (limit {connections_max})"))
    return encode_json(error_response(None, fault))


class StreamSession(Session, asyncio.Protocol):
    """A TCP or Unix connection carrying newline-delimited JSON-RPC frames."""

    def __init__(self, server: RpcServer, kind: str, authenticated: bool) -> None:
        Session.__init__(self, server.config.limits, peer="?", authenticated=authenticated)
        self.kind = kind
        self._server = server
        self._decoder = FrameDecoder(self.limits.frame_bytes_max)
        self._transport: asyncio.Transport | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._reading_paused = False
        self._eof = False
        self._partial_since: float | None = None
        self._write_paused_since: float | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._force_close: asyncio.TimerHandle | None = None
        self._out: list[bytes] = []  # sent this turn of the loop, written by `_flush`
        self._out_bytes = 0
        self._flush_handle: asyncio.Handle | None = None

    # --- asyncio.Protocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop: not a subclass
        self._transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{self.kind}:{peer}" if peer else self.kind
        if not self._server.registry.admit(self):
            self.closed = True
            transport.write(encode_frame(too_many_connections(self.limits.connections_max)))
            transport.close()
            return
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):  # detect half-open peers eventually
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER_BYTES)
        self._schedule_watchdog()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._server.registry.release(self)
        for handle in (self._watchdog, self._force_close, self._flush_handle):
            if handle is not None:
                handle.cancel()
        self._watchdog = self._force_close = self._flush_handle = None
        self._out.clear()
        self.end_subscriptions()
        for task in list(self._tasks):  # nobody is left to answer
            task.cancel()

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        now = time.monotonic()
        self.last_activity = now
        try:
            frames = self._decoder.feed(data)
        except FrameTooLarge as error:
            self._fail(RpcFault(INVALID_REQUEST, str(error)))
            return
        if not self._decoder.pending_bytes:
            self._partial_since = None
        elif frames or self._partial_since is None:  # a new frame has started: its clock
            self._partial_since = now
        loop = asyncio.get_running_loop()
        for frame in frames:
            if not frame.strip():
                continue
            self.inflight += 1
            task = loop.create_task(self._serve(frame))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if self.inflight >= self.limits.inflight_requests_max and not self._reading_paused:
            self._reading_paused = True
            self._partial_since = None  # the server holds the client off: no read clock
            assert self._transport is not None
            self._transport.pause_reading()

    def eof_received(self) -> bool:
        self._eof = True  # answer what is in flight, then close
        if self.inflight == 0:
            self.close("end of input")
        return True

    def pause_writing(self) -> None:
        self._write_paused_since = time.monotonic()

    def resume_writing(self) -> None:
        self._write_paused_since = None

    # --- Session ------------------------------------------------------------------------

    def send(self, payload: bytes) -> None:
        transport = self._transport
        if self.closed or transport is None or transport.is_closing():
            return
        if (transport.get_write_buffer_size() + self._out_bytes
                > self.limits.write_buffer_bytes_max):
            LOG.info("rpc: %s is not reading its responses: closing", self.peer)
            self.abort()
            return
        self._out.append(payload)
        self._out.append(NEWLINE)
        self._out_bytes += len(payload) + 1
        if self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        """Write what was sent since the last flush, as one write."""
        self._flush_handle = None
        out = self._out
        if not out:
            return
        self._out = []
        self._out_bytes = 0
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.write(b"".join(out))

    def close(self, reason: str = "") -> None:
        transport = self._transport
        if self._flush_handle is not None:  # what was sent goes out first
            self._flush_handle.cancel()
            self._flush()
        if transport is not None and not transport.is_closing():
            if reason:
                LOG.debug("rpc: closing %s: %s", self.peer, reason)
            transport.close()  # flushes what is buffered first...
            if transport.get_write_buffer_size():  # ...unless the client never takes it
                self._force_close = asyncio.get_running_loop().call_later(
                    self.limits.write_ms_max / 1000, transport.abort)
        self.closed = True

    def abort(self) -> None:
        """Drop the connection without flushing what is buffered."""
        self.closed = True
        self._out.clear()
        self._out_bytes = 0
        if self._transport is not None:
            self._transport.abort()

    # --- internals ----------------------------------------------------------------------

    async def _serve(self, frame: bytes) -> None:
        try:
            response = await self._server.dispatcher.handle_frame(self, frame)
            if response is not None:
                self.send(response)
            self.start_subscriptions()
            if self.close_after_response:
                self.close("failed auth")
        finally:
            self.inflight -= 1
            if self._reading_paused and self.inflight <= self.limits.inflight_requests_max // 2:
                self._reading_paused = False
                if self._decoder.pending_bytes:  # a frame held while paused: its clock restarts
                    self._partial_since = time.monotonic()
                if self._transport is not None and not self.closed:
                    self._transport.resume_reading()
            if self._eof and self.inflight == 0:
                self.close("end of input")

    def _fail(self, fault: RpcFault) -> None:
        self.send(encode_json(error_response(None, fault)))
        self.close(fault.message)

    def _schedule_watchdog(self) -> None:
        limits = self.limits
        period_s = min(limits.idle_ms_max, limits.read_ms_max, limits.write_ms_max) / 1000
        self._watchdog = asyncio.get_running_loop().call_later(
            period_s / WATCHDOG_DIVISOR, self._check_deadlines)

    def _check_deadlines(self) -> None:
        self._watchdog = None
        if self.closed:
            return
        now = time.monotonic()
        limits = self.limits
        if self._write_paused_since is not None and (
                now - self._write_paused_since >= limits.write_ms_max / 1000):
            LOG.info("rpc: %s took nothing for %d ms: closing", self.peer, limits.write_ms_max)
            self.abort()
            return
        if self._partial_since is not None and not self._reading_paused and (
                now - self._partial_since >= limits.read_ms_max / 1000):
            self.close("incomplete frame past the read time-out")
            return
        if self.is_idle(now):
            self.close("idle")
            return
        self._schedule_watchdog()


class RpcServer:
    """Serves a `NodeServices` over the configured listeners (see the module docstring)."""

    def __init__(self, services: NodeServices, config: RpcConfig | None = None,
                 methods: MethodTable | None = None, static_root: Any = None) -> None:
        self.config = config or RpcConfig()
        self.services = services
        self.methods = methods or default_methods(RPC_WAIT_MS_DEFAULT)
        self.dispatcher = Dispatcher(self.methods, services, self.config.limits,
                                     self.config.token)
        self.registry = _Registry(self.config.limits.connections_max)
        self.static_root = static_root
        self._servers: list[asyncio.AbstractServer] = []
        self._http: Any = None
        self._unix_path: Path | None = None
        self.addresses: dict[str, str] = {}

    async def start(self) -> None:
        """Open the listeners; InvalidInput for a config that must not start (checked first)."""
        self.config.check()
        loop = asyncio.get_running_loop()
        token_required = bool(self.config.token)
        try:
            if self.config.tcp is not None:
                host, port = self.config.tcp
                server = await loop.create_server(
                    lambda: StreamSession(self, "tcp", not token_required), host, port,
                    reuse_address=True, backlog=1024)
                self._servers.append(server)
                self.addresses["tcp"] = _url("tcp", server)
            if self.config.unix is not None:
                path = Path(self.config.unix)
                _remove_stale_socket(path)
                umask = os.umask(0o177)  # the socket file is born 0600: no window for others
                try:
                    server = await loop.create_unix_server(
                        lambda: StreamSession(self, "unix", True), str(path), backlog=1024)
                finally:
                    os.umask(umask)
                self._unix_path = path
                self._servers.append(server)
                self.addresses["unix"] = f"unix:{path}"
            if self.config.http is not None:
                from .http import HttpTransport  # aiohttp is only imported when HTTP is on

                self._http = HttpTransport(self, self.static_root)
                self.addresses["http"] = await self._http.start(*self.config.http)
        except BaseException:
            await self.stop()
            raise
        LOG.info("rpc listening on %s", ", ".join(self.addresses.values()))

    async def stop(self) -> None:
        """Stop accepting, give in-flight requests `shutdown_ms_max`, close every connection."""
        for server in self._servers:
            server.close()
        http, self._http = self._http, None
        if http is not None:
            await http.stop_accepting()
        deadline = time.monotonic() + self.config.limits.shutdown_ms_max / 1000
        while any(s.inflight for s in self.registry.sessions) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for session in list(self.registry.sessions):
            session.end_subscriptions()
            session.close("server stopping")
        deadline = time.monotonic() + STOP_FLUSH_S
        while self.registry.sessions and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for session in list(self.registry.sessions):  # clients that take nothing more
            session.abort()
        if http is not None:
            await http.close()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1.0)
        self._servers.clear()
        if self._unix_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self._unix_path.unlink()
            self._unix_path = None

    def stats(self) -> dict[str, int]:
        """Open connections (by transport), subscriptions, requests in flight, refusals."""
        sessions = list(self.registry.sessions)
        counts = {"connections": len(self.registry.connections),
                  "refused": self.registry.refused,
                  "subscriptions": sum(s.subscription_count for s in sessions),
                  "inflight": sum(s.inflight for s in sessions)}
        for kind in ("tcp", "unix", "ws", "http"):
            counts[kind] = sum(1 for s in sessions if s.kind == kind)
        return counts


def raise_open_files_limit(wanted: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE towards `wanted` (within the hard limit);
    the soft limit now in force. A node serving `connections_max` clients needs it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


def _url(scheme: str, server: asyncio.AbstractServer) -> str:
    sockets = server.sockets
    host, port = sockets[0].getsockname()[:2]
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}:{port}"


def _remove_stale_socket(path: Path) -> None:
    """Remove a socket file left by a previous run; refuse to touch any other file."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise InvalidInput(f"rpc: {path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        path.unlink()  # nobody listens: stale
    else:
        raise InvalidInput(f"rpc: another process is listening on {path}")
    finally:
        probe.close()
