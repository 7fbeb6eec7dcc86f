"""RPC settings: where to listen, the bearer token, the per-connection limits.

Node addresses are URLs: `tcp://HOST:PORT` and `unix:/PATH` (newline-delimited
JSON-RPC), `http://HOST:PORT` (HTTP POST, subscriptions over its `/ws`) and
`ws://HOST:PORT/ws` (WebSocket). Loopback only by default: a TCP or HTTP
listener on any other address needs a bearer token, and `RpcConfig.check`
refuses to start without one.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, fields
from urllib.parse import urlsplit

from ..constants import (
    RPC_BATCH_ITEMS_MAX,
    RPC_CONNECTIONS_MAX,
    RPC_FRAME_BYTES_MAX,
    RPC_IDLE_MS_MAX,
    RPC_INFLIGHT_REQUESTS_MAX,
    RPC_READ_MS_MAX,
    RPC_REQUESTS_BURST_MAX,
    RPC_REQUESTS_PER_S_MAX,
    RPC_SHUTDOWN_MS_MAX,
    RPC_SUBSCRIPTIONS_MAX,
    RPC_TCP_PORT_DEFAULT,
    RPC_TOKEN_CHARS_MIN,
    RPC_WAIT_MS_MAX,
    RPC_WRITE_BUFFER_BYTES_MAX,
    RPC_WRITE_MS_MAX,
    U32_MAX,
)
from ..errors import InvalidInput

NODE_ADDRESS_DEFAULT = f"tcp://127.0.0.1:{RPC_TCP_PORT_DEFAULT}"
SCHEMES = ("tcp", "unix", "http", "ws")


@dataclass(frozen=True, slots=True)
class RpcLimits:
    """Per-server and per-connection limits; the defaults are core/constants.py's `RPC_*`."""

    frame_bytes_max: int = RPC_FRAME_BYTES_MAX
    batch_items_max: int = RPC_BATCH_ITEMS_MAX
    connections_max: int = RPC_CONNECTIONS_MAX
    inflight_requests_max: int = RPC_INFLIGHT_REQUESTS_MAX
    requests_per_s_max: int = RPC_REQUESTS_PER_S_MAX
    requests_burst_max: int = RPC_REQUESTS_BURST_MAX
    subscriptions_max: int = RPC_SUBSCRIPTIONS_MAX
    write_buffer_bytes_max: int = RPC_WRITE_BUFFER_BYTES_MAX
    idle_ms_max: int = RPC_IDLE_MS_MAX
    read_ms_max: int = RPC_READ_MS_MAX
    write_ms_max: int = RPC_WRITE_MS_MAX
    wait_ms_max: int = RPC_WAIT_MS_MAX
    shutdown_ms_max: int = RPC_SHUTDOWN_MS_MAX

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if type(value) is not int or not 1 <= value <= U32_MAX:
                raise InvalidInput(f"rpc limit {item.name} must be an integer in [1, {U32_MAX}],"
                                   f" got {value!r}")
        if self.frame_bytes_max > self.write_buffer_bytes_max:
            raise InvalidInput("rpc limit frame_bytes_max must not exceed write_buffer_bytes_max")

    @classmethod
    def from_mapping(cls, values: dict[str, object]) -> RpcLimits:
        """Limits from a mapping of field names (the node config's `[rpc.limits]`)."""
        known = {item.name for item in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InvalidInput(f"unknown rpc limit {unknown[0]!r}")
        return cls(**values)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class NodeAddress:
    """A parsed node address: scheme, host and port (tcp, http, ws) or path (unix)."""

    scheme: str
    host: str = ""
    port: int = 0
    path: str = ""

    def __str__(self) -> str:
        if self.scheme == "unix":
            return f"unix:{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}{self.path}"

    @property
    def is_loopback(self) -> bool:
        """True for a Unix socket and for localhost / 127.0.0.0/8 / ::1."""
        return self.scheme == "unix" or host_is_loopback(self.host)


def host_is_loopback(host: str) -> bool:
    """True for `localhost` and loopback IP literals; any other name counts as remote."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_node_address(text: str) -> NodeAddress:
    """`tcp://HOST:PORT`, `unix:/PATH`, `http://HOST:PORT[/PATH]` or `ws://HOST:PORT/PATH`."""
    if not isinstance(text, str) or not text:
        raise InvalidInput("a node address is text such as tcp://127.0.0.1:8645")
    if text.startswith("unix:"):
        path = text[len("unix:"):]
        if path.startswith("//"):
            path = path[2:]
        if not path:
            raise InvalidInput(f"node address {text!r}: a unix address needs a path")
        return NodeAddress("unix", path=path)
    parts = urlsplit(text)
    if parts.scheme not in SCHEMES:
        raise InvalidInput(f"node address {text!r}: the scheme must be one of "
                           "tcp://, unix:, http://, ws://")
    try:
        port = parts.port
    except ValueError as error:
        raise InvalidInput(f"node address {text!r}: {error}") from None
    if not parts.hostname or port is None:
        raise InvalidInput(f"node address {text!r}: needs a host and a port")
    if parts.scheme == "tcp" and parts.path not in ("", "/"):
        raise InvalidInput(f"node address {text!r}: a tcp address has no path")
    path = parts.path if parts.scheme in ("http", "ws") else ""
    if parts.scheme == "ws" and not path:
        path = "/ws"
    return NodeAddress(parts.scheme, parts.hostname, port, path)


@dataclass(frozen=True, slots=True)
class RpcConfig:
    """Listeners (None: off), the bearer token ("" for none) and the limits.

    `tcp` and `http` are (host, port); port 0 picks a free port (see
    `RpcServer.addresses`). `unix` is a socket path, created mode 0600.
    """

    tcp: tuple[str, int] | None = ("127.0.0.1", RPC_TCP_PORT_DEFAULT)
    unix: str | None = None
    http: tuple[str, int] | None = None
    token: str = ""
    limits: RpcLimits = field(default_factory=RpcLimits)

    def check(self) -> None:
        """InvalidInput unless the config can start: a listener, valid ports, and a
        token of at least RPC_TOKEN_CHARS_MIN characters for any non-loopback listener."""
        if self.tcp is None and self.unix is None and self.http is None:
            raise InvalidInput("rpc: no listener configured (tcp, unix or http)")
        if self.token and len(self.token) < RPC_TOKEN_CHARS_MIN:
            raise InvalidInput(f"rpc: the token must be at least {RPC_TOKEN_CHARS_MIN} characters")
        for name, listen in (("tcp", self.tcp), ("http", self.http)):
            if listen is None:
                continue
            host, port = listen
            if not isinstance(host, str) or type(port) is not int or not 0 <= port <= 65535:
                raise InvalidInput(f"rpc: {name} listen address must be (host, port 0-65535)")
            if not host_is_loopback(host) and not self.token:
                raise InvalidInput(
                    f"rpc: {name} would listen on {host!r}, which is not loopback: "
                    "set a bearer token (rpc.token) to allow it"
                )
