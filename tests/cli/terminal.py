"""Run the CLI as a real process whose standard error is a terminal (a pseudo-terminal)."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time
from dataclasses import dataclass
from pathlib import Path

TIMEOUT_S = 120


@dataclass(frozen=True)
class TerminalRun:
    """A finished run: exit status, standard output, and what the terminal received."""

    returncode: int
    stdout: str
    terminal: str


def run_on_terminal(home: Path, *args: str, columns: int = 100,
                    lines: int = 30) -> TerminalRun:
    """`chainmall ARGS` with stderr on a pty of `columns` x `lines`, stdout on a pipe."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("CHAINMALL_PASSPHRASE", "COLUMNS")}
    env["CHAINMALL_HOME"] = str(home)
    process = subprocess.Popen([sys.executable, "-m", "chainmall.cli", *args],
                               stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL,
                               env=env)
    os.close(slave)
    received = bytearray()
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the child closed its end
                    break
                if not chunk:
                    break
                received += chunk
            elif process.poll() is not None:
                break
        assert process.stdout is not None
        stdout = process.stdout.read()
        returncode = process.wait(timeout=TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)
    return TerminalRun(returncode, stdout.decode(), received.decode(errors="replace"))
