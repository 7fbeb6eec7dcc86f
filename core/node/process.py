"""A node in a child process: `chainmall node start`, its addresses, stop and kill.

For tests, benchmarks and scripts that need a real node: `NodeProcess` runs
`chainmall node start` with JSON logs and its RPC on a free port (port 0:
the node logs the address it got), reads its log lines in a thread, and
lets the caller wait for one ("node ready") with a deadline.
"""

from __future__ import annotations

import atexit
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

START_DEADLINE_S = 60.0


class NodeProcess:
    """`chainmall node start` over `data` (HOME `home`), JSON logs read by a thread;
    `flags` are more `node start` options."""

    def __init__(self, home: Path, data: Path, *flags: str,
                 env: dict[str, str] | None = None) -> None:
        env = {**os.environ, "CHAINMALL_HOME": str(home), **(env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "chainmall.cli", "node", "start", "--data-dir", str(data),
             "--log-format", "json", "--rpc-tcp", "127.0.0.1:0", "--rpc-http", "127.0.0.1:0",
             *flags],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
            stdin=subprocess.DEVNULL)
        self.lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.log: list[str] = []
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()
        self.address = ""
        atexit.register(self._end_orphan)  # a caller that dies early leaves no node behind

    def _end_orphan(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

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
