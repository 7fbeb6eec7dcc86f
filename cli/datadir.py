"""A node's data directory: where the genesis file and the LMDB ledger live.

Layout: `DATA/genesis.json` (the chain's genesis, JSON) and `DATA/ledger/`
(one LMDB environment). The default DATA is `HOME/<chain id>/`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click
from chainmall.core.errors import InvalidInput, StoreNotInitialised
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
    return sorted(entry.name for entry in home.iterdir()
                  if entry.is_dir() and (entry / GENESIS_FILE).is_file())


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


def open_store(data_dir: Path) -> tuple[Store, Genesis]:
    """The store and genesis of an initialised data directory, without a state machine.

    For `db check`: a state machine reads the tip block when it starts, and
    a damaged tip block must not stop the check before it lists every
    problem.
    """
    genesis_path = data_dir / GENESIS_FILE
    if not genesis_path.is_file() or not (data_dir / LEDGER_DIR).is_dir():
        raise StoreNotInitialised(f"{data_dir} holds no chain: run `chainmall init` first")
    genesis = load_genesis(genesis_path)
    return Store(data_dir / LEDGER_DIR), genesis


def open_ledger(data_dir: Path) -> tuple[Store, Genesis, StateMachine]:
    """The store, genesis and state machine of an initialised data directory."""
    genesis_path = data_dir / GENESIS_FILE
    if not genesis_path.is_file() or not (data_dir / LEDGER_DIR).is_dir():
        raise StoreNotInitialised(f"{data_dir} holds no chain: run `chainmall init` first")
    genesis = load_genesis(genesis_path)
    store = Store(data_dir / LEDGER_DIR)
    try:
        machine = StateMachine(store, genesis)
    except BaseException:
        store.close()
        raise
    return store, genesis, machine
