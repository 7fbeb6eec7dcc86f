"""What every sub-command shares: the root options, how to print results and progress."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import click

from .progress import Progress, progress


def package_version() -> str:
    """The installed distribution's version."""
    try:
        return version("chainmall")
    except PackageNotFoundError:  # running from a source tree without install
        return "0+unknown"


def default_home() -> Path:
    """`$CHAINMALL_HOME`, else `~/.chainmall`."""
    return Path(os.environ.get("CHAINMALL_HOME") or Path.home() / ".chainmall")


@dataclass
class Context:
    """What every sub-command may need from the root options.

    Not frozen: `--json` may also come after the sub-command's name, and
    then sets `json_output` while that command's options are parsed.
    """

    home: Path
    json_output: bool
    debug: bool

    def emit(self, human: str, data: Any, err: bool = False) -> None:
        """Print `data` as JSON with --json, else the human text (on stderr if `err`)."""
        if self.json_output:
            click.echo(json.dumps(data, indent=2, sort_keys=True), err=err)
        else:
            click.echo(human, err=err)

    def progress(self, title: str) -> Progress:
        """Progress bars for a long step: on a terminal only, never with --json."""
        return progress(title, self.json_output)

    def command_prefix(self) -> str:
        """How to start a `chainmall` command line that reaches this HOME."""
        if self.home == default_home():
            return "chainmall"
        return f"chainmall --home {self.home}"
