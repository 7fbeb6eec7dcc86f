"""`chainmall init`: a genesis file and an LMDB ledger in a new data directory."""

from __future__ import annotations

from pathlib import Path

import click
from chainmall.core.address import address_from_public_key, decode_address
from chainmall.core.datadir import check_new_data_dir
from chainmall.core.genesis import Genesis, load_genesis, make_genesis
from chainmall.core.keystore import KeyStore
from chainmall.core.node.config import CONFIG_FILE, config_template

from .context import Context
from .datadir import create_data_dir, data_dir_options, resolve_data_dir
from .keys import read_passphrase, warn, warn_if_exposed

DEFAULT_VALIDATOR_KEY = "validator"
DEFAULT_VALIDATOR_POWER = 10
DEFAULT_BALANCE = 10**15


def _parse_balance(text: str) -> tuple[bytes, int]:
    address, separator, amount = text.partition("=")
    if not separator or not amount.isdigit():
        raise click.BadParameter(f"{text!r}: expected ADDRESS=AMOUNT (a whole number)")
    return decode_address(address), int(amount)


def _validator_public_key(store: KeyStore, name: str, passphrase_file: Path | None) -> bytes:
    """The validator key's public key, checked against its secret; created if missing.

    An encrypted key is opened with its passphrase: the public key stored
    beside a secret is only trusted once the secret is shown to be its own.
    """
    if not store.has(name):
        info = store.create(name)
        warn(f"created the validator key {name!r} unencrypted at {store.file(name)} (mode "
             "0600): anyone who can read it can sign as the validator. Keep it private and "
             "backed up, or create an encrypted key first (`chainmall keys new NAME "
             "--encrypt`) and pass `--validator-key NAME`")
        return info.public_key
    info = store.show(name)  # a plain key: checks the public key is its seed's
    warn_if_exposed(store, info)
    if info.encrypted:
        store.load(name, read_passphrase(passphrase_file, confirm=False))
    return info.public_key


def _new_genesis(obj: Context, chain_id: str, key_name: str, passphrase_file: Path | None,
                 balances: tuple[str, ...], fee_min: int, genesis_time_ms: int) -> Genesis:
    entries = [_parse_balance(text) for text in balances]
    public_key = _validator_public_key(KeyStore(obj.home / "keys"), key_name, passphrase_file)
    if not entries:
        entries = [(address_from_public_key(public_key), DEFAULT_BALANCE)]
    return make_genesis(chain_id, entries, [(public_key, DEFAULT_VALIDATOR_POWER)],
                        genesis_time_ms=genesis_time_ms, fee_min=fee_min)


@click.command()
@data_dir_options
@click.option("--genesis", "genesis_path", type=click.Path(dir_okay=False, exists=True,
              path_type=Path), help="Use this genesis file instead of creating one.")
@click.option("--validator-key", default=DEFAULT_VALIDATOR_KEY, show_default=True,
              help="Key (in HOME/keys, created unencrypted if missing) of the single "
                   "validator.")
@click.option("--passphrase-file", type=click.Path(dir_okay=False, exists=True,
              path_type=Path),
              help="The validator key's passphrase, if it is encrypted (first line) "
                   "[default: $CHAINMALL_PASSPHRASE, else a prompt].")
@click.option("--balance", "balances", multiple=True, metavar="ADDRESS=AMOUNT",
              help="An initial balance (repeatable) [default: the validator gets 10^15].")
@click.option("--fee-min", type=click.IntRange(0), default=0, show_default=True,
              help="Minimum fee per tx, in base units.")
@click.option("--genesis-time-ms", type=click.IntRange(0), default=0, show_default=True,
              help="Genesis time (ms since the epoch); block times must not go below it.")
@click.pass_obj
def init(obj: Context, chain_id: str, data_dir: Path | None, genesis_path: Path | None,
         validator_key: str, passphrase_file: Path | None, balances: tuple[str, ...],
         fee_min: int, genesis_time_ms: int) -> None:
    """Create a data directory: genesis.json and the LMDB ledger at height 0.

    The directory must be new or empty. It is built beside its final place
    and renamed into it at the end, so a failed init leaves nothing behind.
    """
    directory = resolve_data_dir(obj.home, chain_id, data_dir)
    check_new_data_dir(directory)  # before any key is made: says what is there
    progress = obj.progress("init")  # a large genesis takes a while: say so on a terminal
    if genesis_path is not None:
        with progress.activity("reading the genesis file"):
            genesis = load_genesis(genesis_path)
    else:
        genesis = _new_genesis(obj, chain_id, validator_key, passphrase_file, balances,
                               fee_min, genesis_time_ms)
    with progress.activity(f"writing the genesis state "
                           f"({len(genesis.initial_balances)} accounts)"):
        store, genesis, machine = create_data_dir(
            directory, genesis, command="init", extra_files={CONFIG_FILE: config_template()})
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
        "config": str(directory / CONFIG_FILE),
    }
    obj.emit(
        f"initialised chain {genesis.chain_id} in {directory}\n"
        f"  genesis hash {data['genesis_hash']}\n  state root   {data['app_hash']}\n"
        f"  node config  {data['config']} (then: chainmall node start --data-dir "
        f"{directory})",
        data,
    )
