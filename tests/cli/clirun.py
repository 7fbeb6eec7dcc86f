"""Shared by the CLI tests: run `chainmall` in a child process, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CLI = [sys.executable, "-m", "chainmall.cli"]


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a CLI run: HOME set, no passphrase inherited."""
    env = {key: value for key, value in os.environ.items() if key != "CHAINMALL_PASSPHRASE"}
    return {**env, "CHAINMALL_HOME": str(home), **extra}


def run(home: Path, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI and wait for it."""
    return subprocess.run([*CLI, *args], capture_output=True, text=True,
                          env=cli_env(home, **extra_env), stdin=subprocess.DEVNULL, timeout=120)


def start(home: Path, *args: str) -> subprocess.Popen[str]:
    """Start the CLI (collect it with `.communicate()`)."""
    return subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=cli_env(home), stdin=subprocess.DEVNULL)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The `error: ...` line of a failed run, after checking it is all it printed on stderr."""
    assert result.returncode == 1, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]
