"""`chainmall node start|config`: run a node in the foreground; show its effective settings.

Every configuration key is also a flag of both commands (`--section-key`,
generated from `core/node/config.py`'s table), so `node config` with the
same flags shows exactly what `node start` would run with.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from chainmall.core.errors import KeyStoreError
from chainmall.core.keystore import KeyStore
from chainmall.core.node.app import FrontendFactory, run_node
from chainmall.core.node.config import SETTINGS, Config, load_config

from .context import Context, package_version
from .datadir import data_dir_options, resolve_data_dir
from .node_demo import demo as node_demo

F = TypeVar("F", bound=Callable[..., object])
PASSPHRASE_ENV = "CHAINMALL_PASSPHRASE"
_PARAM_KEYS = {setting.flag[2:].replace("-", "_"): setting.key for setting in SETTINGS}


def config_options(function: F) -> F:
    """`--config FILE` and one flag per configuration key."""
    for setting in reversed(SETTINGS):
        choices = f" [{'|'.join(setting.choices)}]" if setting.choices else ""
        function = click.option(setting.flag, default=None, metavar=setting.kind.__name__.upper(),
                                help=f"{setting.doc}{choices} (config: {setting.key}, "
                                     f"env: {setting.env})")(function)
    return click.option("--config", "config_file", type=click.Path(dir_okay=False,
                        path_type=Path), default=None,
                        help="Configuration file [default: DATA/config.toml if present].")(
        function)


def _effective(data_dir: Path, config_file: Path | None, flags: dict[str, Any]) -> Config:
    values = {_PARAM_KEYS[name]: value for name, value in flags.items() if name in _PARAM_KEYS}
    return load_config(data_dir, config_file, values)


def _passphrase(obj: Context, key_name: str, passphrase_file: Path | None) -> str | None:
    """The validator key's passphrase when it is encrypted: --passphrase-file, else
    $CHAINMALL_PASSPHRASE (no prompt: a node may run without a terminal)."""
    if not KeyStore(obj.home / "keys").show(key_name).encrypted:
        return None
    if passphrase_file is not None:
        lines = passphrase_file.read_text(encoding="utf-8").splitlines()
        return lines[0] if lines else ""
    if PASSPHRASE_ENV in os.environ:
        return os.environ[PASSPHRASE_ENV]
    raise KeyStoreError(f"validator key {key_name!r} is encrypted: use --passphrase-file or "
                        f"set {PASSPHRASE_ENV}")


@click.group()
def node() -> None:
    """Run a node, or show its configuration."""


@node.command()
@data_dir_options
@config_options
@click.option("--passphrase-file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              default=None, help="The validator key's passphrase, if it is encrypted.")
@click.option("--engine", type=click.Choice(["inprocess", "cometbft"]), default="inprocess",
              show_default=True,
              help="Who makes blocks: this process as the single validator, or CometBFT "
                   "(from DATA/cometbft, run as a supervised child).")
@click.option("--restart/--no-restart", default=False, show_default=True,
              help="(cometbft) Restart the application and CometBFT when either dies.")
@click.pass_obj
def start(obj: Context, chain_id: str, data_dir: Path | None, config_file: Path | None,
          passphrase_file: Path | None, engine: str, restart: bool, **flags: Any) -> None:
    """Run the node in the foreground until Ctrl-C (SIGINT) or SIGTERM.

    With the in-process engine it makes blocks as the chain's single
    validator; with `--engine cometbft` the application runs behind the ABCI
    server and CometBFT (DATA/cometbft, e.g. made by `chainmall net init`)
    orders the txs: it is started after the application and stopped before
    it, and if either dies both stop (`--restart` starts them again). Either
    way the node serves JSON-RPC on the configured listeners, and a second
    node on the same data directory is refused.
    """
    directory = resolve_data_dir(obj.home, chain_id, data_dir)
    config = _effective(directory, config_file, flags)
    if engine == "cometbft":
        from chainmall.core.node.cometbft_node import run_cometbft_node

        run_cometbft_node(directory, config, version=package_version(), restart=restart)
        return
    passphrase = _passphrase(obj, config.node.validator_key, passphrase_file)
    status = run_node(directory, config, obj.home, version=package_version(),
                      passphrase=passphrase, frontends=default_frontends(config))
    sys.exit(status)


def default_frontends(config: Config) -> list[FrontendFactory]:
    """The front ends `node start` serves the node with: the JSON-RPC server."""
    from chainmall.core.node.services import rpc_frontend  # imports the RPC layer

    return [rpc_frontend(config)]


node.add_command(node_demo)


@node.command("config")
@data_dir_options
@config_options
@click.pass_obj
def show_config(obj: Context, chain_id: str, data_dir: Path | None, config_file: Path | None,
                **flags: Any) -> None:
    """Print the effective configuration and where each value came from."""
    directory = resolve_data_dir(obj.home, chain_id, data_dir)
    config = _effective(directory, config_file, flags)
    rows = config.describe()
    secret = {setting.key for setting in SETTINGS if setting.secret}
    data = {"file": None if config.file is None else str(config.file),
            "settings": {key: {"value": ("<set>" if config.values[key] else "")
                               if key in secret else config.values[key], "source": source}
                         for key, _, source in rows}}
    width = max(len(key) + len(value) for key, value, _ in rows) + 3
    lines = [f"# config file: {config.file or 'none (defaults, variables and flags only)'}"]
    lines += [f"{f'{key} = {value}':<{width}}  # {source}" for key, value, source in rows]
    obj.emit("\n".join(lines), data)
