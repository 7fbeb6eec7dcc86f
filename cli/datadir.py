"""The `--chain-id` / `--data-dir` options, and the data directory calls the CLI uses.

The layout, the writers' lock and opening or creating a ledger live in
`core/datadir.py` (the node needs them too); they are re-exported here.
The default data directory is `HOME/<chain id>/`; a command that reads an
existing chain, given no chain id, takes the only chain in HOME.
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
from chainmall.core.errors import InvalidInput

__all__ = [
    "DEFAULT_CHAIN_ID",
    "GENESIS_FILE",
    "LEDGER_DIR",
    "LOCK_FILE",
    "chain_data_dir_options",
    "chains_in",
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


def chain_data_dir_options(function: F) -> F:
    """`--chain-id` / `--data-dir` for a command that reads an existing chain.

    Without either, the chain is the only one in HOME (so `chainmall db info`
    works right after `chainmall demo`), else `local`.
    """
    function = click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Node data directory [default: HOME/<chain-id>].",
    )(function)
    return click.option(
        "--chain-id", default=None,
        help=f"Chain id; names the default data directory [default: the only chain in HOME, "
             f"else {DEFAULT_CHAIN_ID}].",
    )(function)


def chains_in(home: Path) -> list[str]:
    """The chain ids that have a data directory (one holding a genesis file) in HOME, sorted."""
    if not home.is_dir():
        return []
    return sorted(entry.name for entry in home.iterdir()  # ".x.new": one being created
                  if not entry.name.startswith(".") and entry.is_dir()
                  and (entry / GENESIS_FILE).is_file())


def resolve_data_dir(home: Path, chain_id: str | None, data_dir: Path | None) -> Path:
    """`data_dir`, else HOME/<chain id>; no chain id: the only chain in HOME, else `local`.

    InvalidInput when HOME holds several chains and none was named.
    """
    if data_dir is not None:
        return data_dir
    if chain_id is None:
        chains = chains_in(home)
        if len(chains) > 1 and DEFAULT_CHAIN_ID not in chains:
            raise InvalidInput(f"{home} holds several chains ({', '.join(chains)}): pick one "
                               "with --chain-id")
        chain_id = chains[0] if len(chains) == 1 else DEFAULT_CHAIN_ID
    return home / chain_id
