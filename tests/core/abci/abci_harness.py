"""Test harness for the ABCI server: a server on its own loop thread, a raw socket client,
and a real single-validator CometBFT node on 127.0.0.1 with free ports.

Nothing here sleeps to wait: `poll` retries a condition until a deadline.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import Any, TypeVar

import pytest
from chainmall.core.abci.cometbft import configure_home, find_cometbft, init_home
from chainmall.core.abci.framing import FrameDecoder, encode_frame
from chainmall.core.abci.proto.tendermint.abci import types_pb2 as abci
from chainmall.core.abci.server import AbciServer
from chainmall.core.abci.types import AbciApplication
from chainmall.core.errors import CometBFTMissing

T = TypeVar("T")

DEADLINE_S = 60.0
# `make test` sets this: there a missing binary fails the tests instead of skipping them.
REQUIRE_ENV = "CHAINMALL_REQUIRE_COMETBFT"


def poll(condition: Callable[[], T], what: str, deadline_s: float = DEADLINE_S) -> T:
    """Call `condition` until it returns something truthy; fail after `deadline_s`."""
    end = time.monotonic() + deadline_s
    delay = 0.005
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {deadline_s} s waiting for {what}")
        time.sleep(delay)  # back-off between checks, not a wait for the condition
        delay = min(delay * 2, 0.1)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cometbft_binary() -> Path:
    """The CometBFT binary, or skip (fail under `make test`) when it is not installed."""
    try:
        return find_cometbft()
    except CometBFTMissing as error:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(str(error))
        pytest.skip(str(error))


class ServerThread:
    """An `AbciServer` on an event loop of its own thread, driven from blocking test code."""

    def __init__(self, app: AbciApplication, address: str, executor: Executor | None = None,
                 loop_factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop,
                 ) -> None:
        self.loop = loop_factory()
        self._thread = threading.Thread(target=self.loop.run_forever, name="abci-test-loop",
                                        daemon=True)
        self._thread.start()
        self.server = AbciServer(app, executor=executor)
        self.run(self.server.start(address))

    @property
    def address(self) -> str:
        return self.server.address

    def run(self, coroutine: Any, timeout_s: float = DEADLINE_S) -> Any:
        """Run `coroutine` on the server's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout_s)

    def failure(self) -> BaseException | None:
        """The exception serving stopped with, None while serving or after a clean stop."""
        async def check() -> BaseException | None:
            try:
                await asyncio.wait_for(self.server.wait_closed(), 0.001)
            except TimeoutError:
                return None
            except Exception as error:
                return error
            return None
        return self.run(check())

    def close(self) -> None:
        """Stop the server and its loop thread."""
        if self._thread.is_alive():
            self.run(self.server.stop())
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(DEADLINE_S)
            self.loop.close()


class RawClient:
    """A blocking ABCI client speaking the wire format directly (as CometBFT does)."""

    def __init__(self, address: str) -> None:
        scheme, _, rest = address.partition("://")
        if scheme == "unix":
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.connect(rest)
        else:
            host, _, port = rest.rpartition(":")
            self.sock = socket.create_connection((host, int(port)))
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(DEADLINE_S)
        self.decoder = FrameDecoder(1 << 30)
        self.pending: list[bytes] = []

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, *requests: abci.Request) -> None:
        self.sock.sendall(b"".join(encode_frame(r.SerializeToString()) for r in requests))

    def receive(self, count: int) -> list[abci.Response]:
        """The next `count` responses (fails on EOF)."""
        while len(self.pending) < count:
            data = self.sock.recv(1 << 16)
            if not data:
                raise ConnectionError(f"closed after {len(self.pending)} of {count} responses")
            self.pending += self.decoder.feed(data)
        frames, self.pending = self.pending[:count], self.pending[count:]
        return [abci.Response.FromString(f) for f in frames]

    def call(self, *requests: abci.Request) -> list[abci.Response]:
        self.send(*requests)
        return self.receive(len(requests))

    def closed_by_peer(self) -> bool:
        """True once the server has closed the connection (reads EOF)."""
        try:
            return self.sock.recv(1 << 16) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()


class CometNode:
    """One CometBFT validator in a temp home, with its app at `proxy_app`.

    Config: free ports on 127.0.0.1, `create_empty_blocks = false`, short
    timeouts. Its log goes to `home/cometbft.log` (printed when a test fails
    through `log_tail`).
    """

    def __init__(self, binary: Path, home: Path, proxy_app: str,
                 app_state: dict[str, str] | None = None, chain_id: str | None = None) -> None:
        self.binary = binary
        self.home = home
        init_home(binary, home)
        self.rpc_port = free_port()
        configure_home(home, {
            "": {"proxy_app": proxy_app, "moniker": "abci-test", "log_level": "info"},
            "rpc": {"laddr": f"tcp://127.0.0.1:{self.rpc_port}"},
            "p2p": {"laddr": f"tcp://127.0.0.1:{free_port()}", "pex": False},
            "consensus": {
                "create_empty_blocks": False,
                "timeout_propose": "500ms",
                "timeout_commit": "50ms",
            },
            "instrumentation": {"prometheus": False},
        })
        genesis_path = home / "config" / "genesis.json"
        self.genesis = json.loads(genesis_path.read_text())
        if app_state is not None:
            self.genesis["app_state"] = app_state
        if chain_id is not None:
            self.genesis["chain_id"] = chain_id
        genesis_path.write_text(json.dumps(self.genesis, indent=2))
        self.validator_key = base64.b64decode(json.loads(
            (home / "config" / "priv_validator_key.json").read_text())["pub_key"]["value"])
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None
        with (self.home / "cometbft.log").open("ab") as log:
            self.process = subprocess.Popen(
                [str(self.binary), "start", "--home", str(self.home)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )

    def stop(self) -> int:
        """SIGTERM, then wait (SIGKILL past the deadline); the exit status."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(DEADLINE_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(DEADLINE_S)
        return self.process.returncode

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def rpc(self, method: str, **params: str | int) -> dict[str, Any]:
        """One CometBFT RPC call (URI form); its `result`, or AssertionError on an RPC error."""
        query = urllib.parse.urlencode({k: str(v) for k, v in params.items()})
        url = f"http://127.0.0.1:{self.rpc_port}/{method}" + (f"?{query}" if query else "")
        try:
            with urllib.request.urlopen(url, timeout=DEADLINE_S) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as error:  # CometBFT sends RPC errors with status 500
            body = json.loads(error.read())
        if "error" in body:
            raise AssertionError(f"{method}: {body['error']}")
        return body["result"]

    def rpc_ready(self) -> bool:
        try:
            self.rpc("health")
        except OSError:
            return False
        return True

    def height(self) -> int:
        return int(self.rpc("status")["sync_info"]["latest_block_height"])

    def log_tail(self, lines: int = 40) -> str:
        path = self.home / "cometbft.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
