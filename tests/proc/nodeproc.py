"""Real node processes for the tests: a funded chain, `chainmall node start`, its address.

`make_chain` writes a genesis funding `ACCOUNTS` keys and initialises a data
directory with `chainmall init` (the validator key goes to HOME/keys).
`NodeProcess` runs `chainmall node start` on free ports (port 0, the node
logs the addresses it got) with JSON logs, and reads its log lines in a
thread so a test can wait for one with a deadline.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from chainmall.core.constants import TX_TYPE_TRANSFER
from chainmall.core.genesis import make_genesis, write_genesis
from chainmall.core.keys import KeyPair
from chainmall.core.keystore import KeyStore
from chainmall.core.state.accounts import encode_transfer
from chainmall.core.tx import Tx, sign_tx

CHAIN = "proc-node"
ACCOUNTS = 40
VALIDATOR_SEED = b"\x07" * 32
START_DEADLINE_S = 60.0


def keys() -> list[KeyPair]:
    return [KeyPair.from_seed(i.to_bytes(32, "big")) for i in range(1, ACCOUNTS + 1)]


def cli(home: Path, *args: str, timeout_s: float = 300.0) -> subprocess.CompletedProcess:
    """Run the installed CLI in a child process."""
    env = {**os.environ, "CHAINMALL_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "chainmall.cli", *args], capture_output=True,
                          text=True, env=env, stdin=subprocess.DEVNULL, timeout=timeout_s)


def make_chain(home: Path, data: Path) -> None:
    """A data directory whose genesis funds `keys()` and whose validator key is in HOME."""
    validator = KeyPair.from_seed(VALIDATOR_SEED)
    KeyStore(home / "keys").import_seed("validator", validator.seed)
    genesis = make_genesis(CHAIN, [(k.address, 10**12) for k in keys()],
                           [(validator.public_key, 1)], genesis_time_ms=1_000, fee_min=1)
    home.mkdir(parents=True, exist_ok=True)
    write_genesis(home / "genesis.json", genesis)
    result = cli(home, "init", "--data-dir", str(data), "--genesis", str(home / "genesis.json"))
    assert result.returncode == 0, result.stderr


def transfers(count: int, start_nonce: int = 0, senders: int = ACCOUNTS) -> list[Tx]:
    """`count` signed transfers, round-robin over the first `senders` keys."""
    pairs = keys()
    txs = []
    for i in range(count):
        sender = pairs[i % senders]
        to = pairs[(i + 1) % len(pairs)].address
        txs.append(sign_tx(sender, CHAIN, TX_TYPE_TRANSFER, start_nonce + i // senders, 1,
                           10**9, encode_transfer(to, 1 + i % 7)))
    return txs


class NodeProcess:
    """`chainmall node start` over `data`, with JSON logs read by a thread."""

    def __init__(self, home: Path, data: Path, *flags: str) -> None:
        env = {**os.environ, "CHAINMALL_HOME": str(home)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "chainmall.cli", "node", "start", "--data-dir", str(data),
             "--log-format", "json", "--rpc-tcp", "127.0.0.1:0", *flags],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
            stdin=subprocess.DEVNULL)
        self.lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.log: list[str] = []
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()
        self.address = ""

    def _pump(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line)
            try:
                entry = json.loads(line)
            except ValueError:
                entry = {"msg": line.strip()}
            self.lines.put(entry if isinstance(entry, dict) else {"msg": line.strip()})
        self.lines.put(None)

    def wait_for(self, message: str, deadline_s: float = START_DEADLINE_S) -> dict[str, Any]:
        """The first log entry with `msg` == message; AssertionError if the node ends or the
        deadline passes first."""
        deadline = time.monotonic() + deadline_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {message!r} log line in time:\n{''.join(self.log)}")
            try:
                entry = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if entry is None:
                raise AssertionError(f"the node ended before {message!r}:\n{''.join(self.log)}")
            if entry.get("msg") == message:
                return entry

    def ready(self) -> str:
        """Wait until the node serves; its TCP address."""
        entry = self.wait_for("node ready")
        self.address = entry["addresses"]["tcp"]
        return self.address

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def finish(self, timeout_s: float = 120.0) -> int:
        """Wait for the process to end; its exit status."""
        code = self.proc.wait(timeout=timeout_s)
        self._thread.join(timeout=timeout_s)
        return code

    def stop(self) -> int:
        """SIGTERM, then wait; the exit status."""
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
        return self.finish()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.signal(signal.SIGKILL)
        self.finish()
