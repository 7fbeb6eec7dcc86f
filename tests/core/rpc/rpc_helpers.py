"""RPC test helpers: both event loops (asyncio and uvloop), funded keys, servers on free ports.

In-process tests run a `FakeNode` behind a real `RpcServer` on 127.0.0.1
port 0 (and a Unix socket in the test's directory), on the loop named by
the `loop_kind` parameter, like uvloop's own test mixins run one test body
on both loops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import uvloop
from chainmall.core.address import encode_address
from chainmall.core.keys import KeyPair
from chainmall.core.rpc.config import RpcConfig, RpcLimits
from chainmall.core.rpc.server import RpcServer
from chainmall.core.rpc.testing import FakeNode
from chainmall.core.state.accounts import encode_transfer
from chainmall.core.tx import Tx, sign_tx

LOOP_KINDS = ("asyncio", "uvloop")
ALICE = KeyPair.from_seed(bytes(range(32)))
BOB = KeyPair.from_seed(bytes(range(1, 33)))
CAROL = KeyPair.from_seed(bytes(range(2, 34)))
ALICE_BALANCE = 10**12
BLOCK_MS = 30


def run_on(loop_kind: str, coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run `coroutine` to completion on a new loop of the given kind."""
    factory = uvloop.new_event_loop if loop_kind == "uvloop" else asyncio.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coroutine)


def transfer(sender: KeyPair, nonce: int, recipient: bytes, amount: int, fee: int = 10,
             chain_id: str = "test-chain", expiry_height: int = 10**6) -> Tx:
    """A signed TRANSFER."""
    return sign_tx(sender, chain_id, 1, nonce, fee, expiry_height,
                   encode_transfer(recipient, amount))


def addresses_of(server: RpcServer) -> list[str]:
    """The client URLs of every transport a server listens on."""
    urls = [server.addresses["tcp"], server.addresses["unix"]]
    if "http" in server.addresses:
        urls += [server.addresses["http"], server.addresses["http"].replace("http", "ws") + "/ws"]
    return urls


@contextlib.asynccontextmanager
async def serving(tmp_path: Path, limits: RpcLimits | None = None, token: str = "",
                  http: bool = True, block_ms: int = BLOCK_MS,
                  static_root: Any = None) -> AsyncIterator[tuple[FakeNode, RpcServer]]:
    """A fake node with ALICE funded, served on every transport (free ports)."""
    node = FakeNode(balances={ALICE.address: ALICE_BALANCE}, block_interval_ms=block_ms)
    config = RpcConfig(tcp=("127.0.0.1", 0), unix=str(tmp_path / "node.sock"),
                       http=("127.0.0.1", 0) if http else None, token=token,
                       limits=limits or RpcLimits())
    server = RpcServer(node, config, static_root=static_root)
    await node.start()
    await server.start()
    try:
        yield node, server
    finally:
        await server.stop()
        await node.stop()


async def poll(condition: Callable[[], Any], timeout_s: float = 10.0,
               what: str = "condition") -> Any:
    """Await until `condition()` is truthy (it may be a coroutine function); its value."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


# --- a fake node in its own process ---------------------------------------------------------


class NodeProcess:
    """`python -m chainmall.core.rpc.testing` in a child process, with its addresses."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "chainmall.core.rpc.testing", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, **(env or {})})
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.process.wait(10)
            assert self.process.stderr is not None
            raise AssertionError(f"fake node did not start: {self.process.stderr.read()}")
        self.addresses: dict[str, Any] = json.loads(line)
        self.pid = self.process.pid

    def stop(self) -> int:
        """SIGTERM, then wait (SIGKILL after 10 s); the exit status."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        return self.process.returncode


@contextlib.contextmanager
def node_process(args: list[str]) -> Iterator[NodeProcess]:
    """A fake node process for the duration of the block; stopped (and reaped) after."""
    process = NodeProcess(args)
    try:
        yield process
    finally:
        process.stop()


def funded_args(*keys: KeyPair) -> list[str]:
    """`--balance` flags funding each key with ALICE_BALANCE."""
    args = []
    for key in keys:
        args += ["--balance", f"{encode_address(key.address)}={ALICE_BALANCE}"]
    return args
