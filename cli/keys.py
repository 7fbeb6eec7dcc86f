"""`chainmall keys new|show|list`: Ed25519 keys in a key directory."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from chainmall.core.errors import KeyStoreError
from chainmall.core.keystore import DamagedKey, KeyInfo, KeyStore

from .context import Context

PASSPHRASE_ENV = "CHAINMALL_PASSPHRASE"


def _info_dict(info: KeyInfo) -> dict[str, object]:
    return {
        "name": info.name,
        "address": info.address_text,
        "public_key": info.public_key.hex(),
        "encrypted": info.encrypted,
    }


def _info_line(info: KeyInfo) -> str:
    lock = "encrypted" if info.encrypted else "plain"
    return f"{info.name}\t{info.address_text}\t{info.public_key.hex()}\t{lock}"


def warn(message: str) -> None:
    """A `warning: ...` line on stderr (stdout stays the command's output)."""
    click.echo(f"warning: {message}", err=True)


def warn_if_exposed(store: KeyStore, info: KeyInfo) -> None:
    """Warn, as ssh does, when a key file is open to the group or others."""
    if info.exposed:
        path = store.file(info.name)
        warn(f"key file {path} is accessible by group or others (mode {info.file_mode:04o}); "
             f"anyone who can read it can sign as {info.name!r}: run `chmod 600 {path}`")


def read_passphrase(passphrase_file: Path | None, confirm: bool) -> str:
    """From --passphrase-file, else $CHAINMALL_PASSPHRASE, else a terminal prompt."""
    if passphrase_file is not None:
        lines = passphrase_file.read_text(encoding="utf-8").splitlines()
        passphrase = lines[0] if lines else ""
    elif os.environ.get(PASSPHRASE_ENV):
        passphrase = os.environ[PASSPHRASE_ENV]
    elif sys.stdin.isatty():
        passphrase = click.prompt("Passphrase", hide_input=True, confirmation_prompt=confirm)
    else:
        raise KeyStoreError(
            f"a passphrase is needed: use --passphrase-file or set {PASSPHRASE_ENV}"
        )
    if not passphrase:
        raise KeyStoreError("the passphrase is empty")
    return passphrase


@click.group()
@click.option(
    "--key-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Key directory [default: HOME/keys].",
)
@click.pass_context
def keys(ctx: click.Context, key_dir: Path | None) -> None:
    """Create and inspect Ed25519 keys (secret files are mode 0600)."""
    obj: Context = ctx.obj
    ctx.meta["keystore"] = KeyStore(key_dir or obj.home / "keys")


@keys.command("new")
@click.argument("name")
@click.option("--encrypt", is_flag=True, help="Encrypt the secret with a passphrase (argon2id).")
@click.option(
    "--passphrase-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Read the passphrase from the first line of this file (implies --encrypt).",
)
@click.pass_context
def keys_new(ctx: click.Context, name: str, encrypt: bool, passphrase_file: Path | None) -> None:
    """Generate a new key pair called NAME."""
    store: KeyStore = ctx.meta["keystore"]
    passphrase = None
    if encrypt or passphrase_file is not None:
        passphrase = read_passphrase(passphrase_file, confirm=True)
    info = store.create(name, passphrase=passphrase)
    ctx.obj.emit(f"created {_info_line(info)}", _info_dict(info))


@keys.command("show")
@click.argument("name")
@click.pass_context
def keys_show(ctx: click.Context, name: str) -> None:
    """Show the public key and address of NAME (never the secret)."""
    store: KeyStore = ctx.meta["keystore"]
    info = store.show(name)
    warn_if_exposed(store, info)
    human = "\n".join(
        [
            f"name:       {info.name}",
            f"address:    {info.address_text}",
            f"public key: {info.public_key.hex()}",
            f"encrypted:  {'yes' if info.encrypted else 'no'}",
        ]
    )
    ctx.obj.emit(human, _info_dict(info))


@keys.command("list")
@click.pass_context
def keys_list(ctx: click.Context) -> None:
    """List every key in the key directory (a damaged file is listed as DAMAGED)."""
    store: KeyStore = ctx.meta["keystore"]
    entries = store.list()
    lines: list[str] = []
    data: list[dict[str, object]] = []
    for entry in entries:
        if isinstance(entry, DamagedKey):
            warn(f"key file {entry.path} is damaged: {entry.problem}")
            lines.append(f"{entry.name}\tDAMAGED\t{entry.problem}")
            data.append({"name": entry.name, "damaged": entry.problem})
        else:
            warn_if_exposed(store, entry)
            lines.append(_info_line(entry))
            data.append(_info_dict(entry))
    ctx.obj.emit("\n".join(lines) if lines else "no keys", data)
