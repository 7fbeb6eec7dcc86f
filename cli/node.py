"""`chainmall init`: a genesis file and an LMDB ledger in a data directory."""

from __future__ import annotations

import shutil
from pathlib import Path

import click
from chainmall.core.address import address_from_public_key, decode_address
from chainmall.core.errors import KeyStoreError, StoreAlreadyInitialised
from chainmall.core.genesis import Genesis, load_genesis, make_genesis, write_genesis
from chainmall.core.keystore import KeyStore

from .context import Context
from .datadir import GENESIS_FILE, LEDGER_DIR, data_dir_options, open_ledger, resolve_data_dir

DEFAULT_VALIDATOR_KEY = "validator"
DEFAULT_VALIDATOR_POWER = 10
DEFAULT_BALANCE = 10**15


def _parse_balance(text: str) -> tuple[bytes, int]:
    address, separator, amount = text.partition("=")
    if not separator or not amount.isdigit():
        raise click.BadParameter(f"{text!r}: expected ADDRESS=AMOUNT (a whole number)")
    return decode_address(address), int(amount)


def _validator_public_key(store: KeyStore, name: str) -> bytes:
    try:
        return store.show(name).public_key
    except KeyStoreError:
        return store.create(name).public_key


def _new_genesis(obj: Context, chain_id: str, key_name: str, balances: tuple[str, ...],
                 fee_min: int, genesis_time_ms: int) -> Genesis:
    public_key = _validator_public_key(KeyStore(obj.home / "keys"), key_name)
    entries = [_parse_balance(text) for text in balances]
    if not entries:
        entries = [(address_from_public_key(public_key), DEFAULT_BALANCE)]
    return make_genesis(chain_id, entries, [(public_key, DEFAULT_VALIDATOR_POWER)],
                        genesis_time_ms=genesis_time_ms, fee_min=fee_min)


@click.command()
@data_dir_options
@click.option("--genesis", "genesis_path", type=click.Path(dir_okay=False, exists=True,
              path_type=Path), help="Use this genesis file instead of creating one.")
@click.option("--validator-key", default=DEFAULT_VALIDATOR_KEY, show_default=True,
              help="Key (in HOME/keys, created if missing) of the single validator.")
@click.option("--balance", "balances", multiple=True, metavar="ADDRESS=AMOUNT",
              help="An initial balance (repeatable) [default: the validator gets 10^15].")
@click.option("--fee-min", type=click.IntRange(0), default=0, show_default=True,
              help="Minimum fee per tx, in base units.")
@click.option("--genesis-time-ms", type=click.IntRange(0), default=0, show_default=True,
              help="Genesis time (ms since the epoch); block times must not go below it.")
@click.pass_obj
def init(obj: Context, chain_id: str, data_dir: Path | None, genesis_path: Path | None,
         validator_key: str, balances: tuple[str, ...], fee_min: int,
         genesis_time_ms: int) -> None:
    """Create a data directory: genesis.json and the LMDB ledger at height 0."""
    directory = resolve_data_dir(obj.home, chain_id, data_dir)
    if (directory / GENESIS_FILE).exists() or (directory / LEDGER_DIR).exists():
        raise StoreAlreadyInitialised(f"{directory} is already initialised")
    progress = obj.progress("init")  # a large genesis takes a while: say so on a terminal
    if genesis_path is not None:
        with progress.activity("reading the genesis file"):
            genesis = load_genesis(genesis_path)
    else:
        genesis = _new_genesis(obj, chain_id, validator_key, balances, fee_min, genesis_time_ms)
    (directory / LEDGER_DIR).mkdir(parents=True)
    try:
        with progress.activity(f"writing the genesis state "
                               f"({len(genesis.initial_balances)} accounts)"):
            write_genesis(directory / GENESIS_FILE, genesis)
            store, genesis, machine = open_ledger(directory)
    except BaseException:  # leave no half-initialised directory behind
        (directory / GENESIS_FILE).unlink(missing_ok=True)
        shutil.rmtree(directory / LEDGER_DIR, ignore_errors=True)
        raise
    with store:
        height, app_hash = machine.info()
    data = {
        "data_dir": str(directory),
        "chain_id": genesis.chain_id,
        "genesis_hash": genesis.hash().hex(),
        "height": height,
        "app_hash": app_hash.hex(),
        "total_supply": genesis.total_supply,
        "validators": [v.public_key.hex() for v in genesis.validators],
    }
    obj.emit(
        f"initialised chain {genesis.chain_id} in {directory}\n"
        f"  genesis hash {data['genesis_hash']}\n  state root   {data['app_hash']}",
        data,
    )
