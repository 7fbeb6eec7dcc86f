"""A node's data directory: where the genesis file and the LMDB ledger live.

Layout: `DATA/genesis.json` (the chain's genesis, JSON) and `DATA/ledger/`
(one LMDB environment). The default DATA is `HOME/<chain id>/`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click
from chainmall.core.abci.app import ledger_machine
from chainmall.core.errors import StoreNotInitialised
from chainmall.core.genesis import Genesis, load_genesis
from chainmall.core.state.machine import StateMachine
from chainmall.core.store import Store

GENESIS_FILE = "genesis.json"
LEDGER_DIR = "ledger"
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


def open_ledger(data_dir: Path) -> tuple[Store, Genesis, StateMachine]:
    """The store, genesis and state machine of an initialised data directory."""
    genesis_path = data_dir / GENESIS_FILE
    if not genesis_path.is_file() or not (data_dir / LEDGER_DIR).is_dir():
        raise StoreNotInitialised(f"{data_dir} holds no chain: run `chainmall init` first")
    genesis = load_genesis(genesis_path)
    store = Store(data_dir / LEDGER_DIR)
    try:
        machine = ledger_machine(store, genesis)
    except BaseException:
        store.close()
        raise
    return store, genesis, machine
