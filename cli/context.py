"""What every sub-command shares: the root options and how to print results."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import click


def package_version() -> str:
    """The installed distribution's version."""
    try:
        return version("chainmall")
    except PackageNotFoundError:  # running from a source tree without install
        return "0+unknown"


@dataclass(frozen=True)
class Context:
    """What every sub-command may need from the root options."""

    home: Path
    json_output: bool
    debug: bool

    def emit(self, human: str, data: Any) -> None:
        """Print `data` as JSON with --json, else the human text."""
        if self.json_output:
            click.echo(json.dumps(data, indent=2, sort_keys=True))
        else:
            click.echo(human)
