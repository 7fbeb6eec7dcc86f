"""The `--chain-id` / `--data-dir` options, and the data directory calls the CLI uses.

The layout, the writers' lock and opening or creating a ledger live in
`core/datadir.py` (the node needs them too); they are re-exported here.
The default data directory is `HOME/<chain id>/`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click
from chainmall.core.datadir import (
    GENESIS_FILE,
    LEDGER_DIR,
    LOCK_FILE,
    check_layout,
    create_data_dir,
    open_ledger,
)

__all__ = [
    "DEFAULT_CHAIN_ID",
    "GENESIS_FILE",
    "LEDGER_DIR",
    "LOCK_FILE",
    "check_layout",
    "create_data_dir",
    "data_dir_options",
    "open_ledger",
    "resolve_data_dir",
]

DEFAULT_CHAIN_ID = "local"

F = TypeVar("F", bound=Callable[..., object])


def data_dir_options(function: F) -> F:
    """The `--chain-id` / `--data-dir` pair every ledger command takes."""
    function = click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Node data directory [default: HOME/<chain-id>].",
    )(function)
    return click.option(
        "--chain-id", default=DEFAULT_CHAIN_ID, show_default=True,
        help="Chain id; names the default data directory.",
    )(function)


def resolve_data_dir(home: Path, chain_id: str, data_dir: Path | None) -> Path:
    """`data_dir`, else HOME/<chain id>."""
    return data_dir if data_dir is not None else home / chain_id
