"""RPC abuse against a real server process (a fake node), on asyncio and on uvloop.

Random bytes, malformed and deeply nested JSON, 10 MB frames on every
transport, 1,000 idle connections, a slow frame that never completes, and
clients that stop reading. Each gets a JSON-RPC error or a closed connection;
afterwards the server still answers, every connection it held is gone, and
(last test) its traced memory and RSS are back near where they were.
The clients here are raw sockets, so nothing in the client library hides
what the server does.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import random
import resource
import socket
import time
from collections.abc import Iterator
from itertools import pairwise
from typing import Any

import pytest
from chainmall.core.rpc.client import BlockingClient
from rpc_helpers import ALICE, BOB, LOOP_KINDS, NodeProcess, funded_args, transfer

IDLE_MS = 2_000
READ_MS = 1_000
WRITE_MS = 1_000
WRITE_BUFFER_BYTES = 2 << 20
IDLE_CONNECTIONS = 1_000
BIG_FRAME_BYTES = 10 << 20
SEED = 20261112
BIG_BLOCK_TXS = 200


@pytest.fixture(scope="module", params=LOOP_KINDS)
def node(request: pytest.FixtureRequest,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    """One fake node process per loop kind, with short time-outs and no rate limit."""
    _raise_fd_limit(4 * IDLE_CONNECTIONS)
    socket_path = tmp_path_factory.mktemp("abuse") / "node.sock"
    limits = {"idle_ms_max": IDLE_MS, "read_ms_max": READ_MS, "write_ms_max": WRITE_MS,
              "write_buffer_bytes_max": WRITE_BUFFER_BYTES, "requests_per_s_max": 10**6,
              "requests_burst_max": 10**6, "connections_max": IDLE_CONNECTIONS + 24}
    args = ["--tcp", "127.0.0.1:0", "--http", "127.0.0.1:0", "--unix", str(socket_path),
            "--loop", str(request.param), "--tracemalloc", *funded_args(ALICE)]
    for name, value in limits.items():
        args += ["--limit", f"{name}={value}"]
    process = NodeProcess(args)
    process.big_block_height = _fill_a_block(process)  # type: ignore[attr-defined]
    yield process
    assert process.stop() == 0, "the server did not stop cleanly"


def _fill_a_block(node: NodeProcess) -> int:
    """Commit a block of BIG_BLOCK_TXS transfers: `block_get` of it is a big response."""
    txs = [transfer(ALICE, nonce, BOB.address, 1) for nonce in range(BIG_BLOCK_TXS)]
    with BlockingClient(node.addresses["tcp"]) as client:
        client.call("status")
        for tx in txs[:-1]:
            client.submit_tx(tx.encode())
        return client.submit_tx_wait(txs[-1].encode()).height


def _raise_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def _host_port(url: str) -> tuple[str, int]:
    host, port = url.split("://", 1)[1].rsplit(":", 1)
    return host, int(port)


def _connect(node: NodeProcess, transport: str = "tcp", timeout_s: float = 10.0) -> socket.socket:
    if transport == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout_s)
        sock.connect(node.addresses["unix"][len("unix:"):])
        return sock
    sock = socket.create_connection(_host_port(node.addresses[transport]), timeout=timeout_s)
    return sock


def stats(node: NodeProcess) -> dict[str, Any]:
    """The server's counters, through a fresh client (which proves it still answers)."""
    with BlockingClient(node.addresses["tcp"], timeout_s=10) as client:
        assert client.status().chain_id == "test-chain"
        return client.call("debug_stats")


def wait_drained(node: NodeProcess, timeout_s: float = 15.0) -> dict[str, Any]:
    """Poll until the server holds only the probe's own connection and request."""
    deadline = time.monotonic() + timeout_s
    while True:
        current = stats(node)
        server = current["server"]
        if server["connections"] == 1 and server["subscriptions"] == 0 and \
                server["inflight"] == 1:
            return current
        if time.monotonic() > deadline:
            raise AssertionError(f"server did not drain: {current}")
        time.sleep(0.05)


def read_until_closed(sock: socket.socket, timeout_s: float = 10.0) -> bytes:
    """Everything the server sends until it closes (AssertionError if it never does)."""
    sock.settimeout(timeout_s)
    chunks = []
    try:
        while True:
            chunk = sock.recv(1 << 16)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    except (ConnectionResetError, BrokenPipeError):
        return b"".join(chunks)
    except TimeoutError:
        raise AssertionError("the server kept the connection open") from None


def send_all_ignoring_close(sock: socket.socket, data: bytes) -> None:
    """Send `data`; the server may close mid-way (it refused the frame), which is fine."""
    with contextlib.suppress(BrokenPipeError, ConnectionResetError, TimeoutError):
        sock.sendall(data)


# --- the abuses ---------------------------------------------------------------------------


def random_bytes(node: NodeProcess) -> None:
    rng = random.Random(SEED)
    for transport in ("tcp", "unix"):
        for size in (1, 100, 4096, 65536, 300_000):
            with _connect(node, transport) as sock:
                send_all_ignoring_close(sock, rng.randbytes(size) + b"\n")
                sock.shutdown(socket.SHUT_WR)  # end of input: answer, then close
                for line in read_until_closed(sock).splitlines():
                    assert json.loads(line)["error"]["code"] in (-32700, -32600)


def malformed_json(node: NodeProcess) -> None:
    frames = [b"{", b"}", b'{"jsonrpc":"2.0","method":"status","id":1', b"[" * 500_000,
              b"[" * 100_000 + b"]" * 100_000, b'{"jsonrpc":"2.0","id":1,"method":"status",'
              b'"params":' + b"[" * 500 + b"]" * 500 + b"}", b"\x00\xff" * 1000,
              b'"just a string"', b"[]", b'{"jsonrpc":"2.0","id":{"a":1},"method":"status"}',
              b'{"jsonrpc":"2.0","id":1,"method":"tx_get","params":{"tx_id":7}}',
              b'{"jsonrpc":"2.0","id":1,"method":"' + b"m" * 10_000 + b'"}',
              b'{"jsonrpc":"2.0","id":1,"method":"block_get","params":{"height":1e400}}',
              b'{"jsonrpc":"2.0","id":1,"method":"account_get","params":{"address":"cm1' +
              b"q" * 80 + b'"}}', b"9" * 100_000]
    expected = [-32700, -32700, -32700, -32700, -32700, -32602, -32700, -32600, -32600,
                -32600, -32602, -32601, -32602, -32602, -32700]
    with _connect(node) as sock:
        stream = sock.makefile("rb")
        for frame, code in zip(frames, expected, strict=True):
            sock.sendall(frame + b"\n")
            response = json.loads(stream.readline())
            assert response["error"]["code"] == code, (frame[:60], response)
        sock.sendall(b'{"jsonrpc":"2.0","method":"status","id":2}\n')  # still usable
        assert json.loads(stream.readline())["result"]["chain_id"] == "test-chain"


def ten_megabyte_frames(node: NodeProcess) -> None:
    big = b'{"jsonrpc":"2.0","id":1,"method":"tx_submit","params":["' + b"a" * BIG_FRAME_BYTES
    for transport in ("tcp", "unix"):
        for tail in (b'"]}\n', b""):  # complete, and never complete
            with _connect(node, transport) as sock:
                send_all_ignoring_close(sock, big + tail)
                answer = read_until_closed(sock)
                assert json.loads(answer.splitlines()[0])["error"]["code"] == -32600
    host, port = _host_port(node.addresses["http"])
    with socket.create_connection((host, port), timeout=10) as sock:
        request = (f"POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                   f"Content-Length: {len(big)}\r\n\r\n").encode()
        send_all_ignoring_close(sock, request + big)
        assert read_until_closed(sock).startswith(b"HTTP/1.1 413")
    with raw_websocket(node) as sock:
        send_all_ignoring_close(sock, ws_frame(big))
        answer = _after_pings(read_until_closed(sock))
        assert answer[:1] == b"\x88" and answer[2:4] == (1009).to_bytes(2, "big")  # too big


def _after_pings(answer: bytes) -> bytes:
    """The server's frames after any heartbeat pings (a slow upload can outlast one
    heartbeat interval on a loaded machine: the ping then comes before the close)."""
    while answer[:1] == b"\x89" and len(answer) >= 2:
        answer = answer[2 + (answer[1] & 0x7F):]
    return answer


def idle_connections(node: NodeProcess, wait_for_server: bool) -> None:
    sockets = []
    try:
        for index in range(IDLE_CONNECTIONS):
            transport = ("tcp", "unix", "http")[index % 3]
            sockets.append(_connect(node, transport))
        held = stats(node)["server"]
        assert held["connections"] == IDLE_CONNECTIONS + 1, held
        if wait_for_server:  # the idle time-out closes every one of them
            for sock in sockets:
                assert read_until_closed(sock, timeout_s=IDLE_MS / 1000 * 4) == b""
    finally:
        for sock in sockets:
            sock.close()


def slow_frame(node: NodeProcess) -> None:
    """A frame that trickles in a byte at a time never completes: closed at the read time-out."""
    with _connect(node) as sock:
        started = time.monotonic()
        sock.sendall(b'{"jsonrpc":')
        sock.settimeout(0.1)
        while True:
            try:
                sock.sendall(b" ")
                if sock.recv(1) == b"":
                    break
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
            assert time.monotonic() - started < READ_MS / 1000 * 5, "slow frame not cut off"
        assert time.monotonic() - started >= READ_MS / 1000 * 0.9


def _big_request(node: NodeProcess) -> bytes:
    height = node.big_block_height  # type: ignore[attr-defined]
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": "block_get",
                       "params": {"height": height, "txs": True}}).encode()


def slow_http(node: NodeProcess) -> None:
    """HTTP headers that trickle in forever are cut at the idle time-out; a body that stops
    half-way gets 408 at the read time-out."""
    host, port = _host_port(node.addresses["http"])
    with socket.create_connection((host, port), timeout=10) as sock:
        started = time.monotonic()
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")
        sock.settimeout(0.1)
        while True:
            try:
                sock.sendall(b"X")
                if sock.recv(1) == b"":
                    break
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
            assert time.monotonic() - started < IDLE_MS / 1000 * 5, "slow headers not cut off"
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"json")
        assert read_until_closed(sock).startswith(b"HTTP/1.1 408")


def stops_reading_tcp(node: NodeProcess) -> None:
    """Pipelines requests with big answers and reads nothing: the server drops it."""
    request = _big_request(node) + b"\n"
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(_host_port(node.addresses["tcp"]))
    sock.settimeout(0.5)
    deadline = time.monotonic() + 20
    with sock:
        while time.monotonic() < deadline:
            try:
                sock.sendall(request)
            except TimeoutError:
                continue  # our send buffer is full too: keep pushing until the server gives up
            except (BrokenPipeError, ConnectionResetError):
                return
        raise AssertionError("the server kept a client that reads nothing")


def stops_reading_websocket(node: NodeProcess) -> None:
    frame = ws_frame(_big_request(node))
    with raw_websocket(node, receive_buffer_bytes=4096) as sock:
        sock.settimeout(0.5)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                sock.sendall(frame)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                return
        raise AssertionError("the server kept a WebSocket client that reads nothing")


@contextlib.contextmanager
def raw_websocket(node: NodeProcess, receive_buffer_bytes: int = 0) -> Iterator[socket.socket]:
    """A WebSocket to /ws over a plain socket (RFC 6455 handshake), frames by hand."""
    host, port = _host_port(node.addresses["http"])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer_bytes:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer_bytes)
    sock.settimeout(10)
    sock.connect((host, port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    try:
        yield sock
    finally:
        sock.close()


def ws_frame(payload: bytes) -> bytes:
    """One masked text frame (client to server)."""
    size = len(payload)
    if size < 126:
        header = bytes([0x81, 0x80 | size])
    elif size < 1 << 16:
        header = bytes([0x81, 0x80 | 126]) + size.to_bytes(2, "big")
    else:
        header = bytes([0x81, 0x80 | 127]) + size.to_bytes(8, "big")
    mask = os.urandom(4)
    repeated = (mask * (size // 4 + 1))[:size]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(
        size, "big")
    return header + mask + masked


# --- tests --------------------------------------------------------------------------------------


def test_random_bytes(node: NodeProcess) -> None:
    random_bytes(node)
    wait_drained(node)


def test_malformed_and_deeply_nested_json(node: NodeProcess) -> None:
    malformed_json(node)
    wait_drained(node)


def test_ten_megabyte_frames_on_every_transport(node: NodeProcess) -> None:
    ten_megabyte_frames(node)
    wait_drained(node)


def test_thousand_idle_connections_are_held_then_timed_out(node: NodeProcess) -> None:
    idle_connections(node, wait_for_server=True)
    wait_drained(node)


def test_slow_frame_is_cut_off(node: NodeProcess) -> None:
    slow_frame(node)
    slow_http(node)
    wait_drained(node)


def test_clients_that_stop_reading_are_dropped(node: NodeProcess) -> None:
    stops_reading_tcp(node)
    stops_reading_websocket(node)
    wait_drained(node)


def test_memory_is_back_after_repeated_abuse(node: NodeProcess) -> None:
    """After a warm-up round, more rounds of every abuse leave memory where it was.

    A leak grows with every round; on a loaded machine one round may leave some buffers
    the next one frees. So memory must stop growing in some round (the smallest growth
    between two consecutive rounds is small), and the total stays bounded."""

    def one_round() -> dict[str, Any]:
        random_bytes(node)
        malformed_json(node)
        ten_megabyte_frames(node)
        idle_connections(node, wait_for_server=False)
        stops_reading_tcp(node)
        stops_reading_websocket(node)
        return wait_drained(node)

    samples = [one_round() for _ in range(4)]
    baseline, after = samples[0], samples[-1]
    steps = [b["traced_bytes"] - a["traced_bytes"] for a, b in pairwise(samples)]
    traced_growth = after["traced_bytes"] - baseline["traced_bytes"]
    rss_growth = after["rss_bytes"] - baseline["rss_bytes"]
    print(f"traced {baseline['traced_bytes']} -> {after['traced_bytes']} "
          f"(per round {steps}), rss {baseline['rss_bytes']} -> {after['rss_bytes']} "
          f"({rss_growth:+}), tasks {baseline['tasks']} -> {after['tasks']}")
    assert min(steps) < 256 * 1024, steps
    assert traced_growth < 2 << 20
    assert rss_growth < 32 << 20
    assert after["tasks"] <= baseline["tasks"]
