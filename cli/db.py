"""`chainmall db`: check, export, import and describe a data directory's ledger."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from chainmall.core.archive import check_store, export_chain, import_chain, read_archive_info
from chainmall.core.errors import StoreAlreadyInitialised, StoreChainMismatch, StoreCorrupt

from .context import Context
from .crashguard import guard_ledger_reads
from .datadir import (
    GENESIS_FILE,
    LEDGER_DIR,
    create_data_dir,
    data_dir_options,
    open_ledger,
    resolve_data_dir,
)


@click.group()
def db() -> None:
    """Check, export, import and describe the ledger."""


@db.command()
@data_dir_options
@click.pass_obj
def info(obj: Context, chain_id: str, data_dir: Path | None) -> None:
    """Chain id, tip height, app hash, tip block hash and map size."""
    directory = resolve_data_dir(obj.home, chain_id, data_dir)
    guard_ledger_reads(directory, "db info")
    store, _, _ = open_ledger(directory, write=False)
    with store:
        tip = store.last()
        data = {
            "chain_id": tip.chain_id,
            "height": tip.height,
            "app_hash": tip.app_hash.hex(),
            "block_hash": tip.block_hash.hex(),
            "map_size_bytes": store.map_size_bytes,
        }
    obj.emit("\n".join(f"{key:<15}{value}" for key, value in data.items()), data)


@db.command()
@data_dir_options
@click.pass_obj
def check(obj: Context, chain_id: str, data_dir: Path | None) -> None:
    """Re-verify every stored block, receipt and root by replaying from genesis."""
    directory = resolve_data_dir(obj.home, chain_id, data_dir)
    guard_ledger_reads(directory, "db check")
    store, genesis, _ = open_ledger(directory, write=False)
    with store:
        height, problems = check_store(store, genesis)
    data = {"ok": not problems, "height": height, "problems": problems}
    if obj.json_output:
        obj.emit("", data)
        if problems:
            click.echo(f"error: {len(problems)} problem(s) found: {problems[0]}", err=True)
            sys.exit(1)
        return
    for problem in problems:
        click.echo(f"problem: {problem}", err=True)
    if problems:
        raise StoreCorrupt(f"{len(problems)} problem(s) found up to height {height}: "
                           f"{problems[0]}")
    click.echo(f"ok: {height} blocks verified")


@db.command(name="export")
@data_dir_options
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_obj
def export_command(obj: Context, chain_id: str, data_dir: Path | None, file: Path) -> None:
    """Write the chain to FILE (an archive, docs/archive.md)."""
    directory = resolve_data_dir(obj.home, chain_id, data_dir)
    guard_ledger_reads(directory, "db export")
    store, genesis, _ = open_ledger(directory, write=False)
    with store:
        count = export_chain(store, genesis, file)
    obj.emit(f"exported {count} blocks to {file}", {"file": str(file), "blocks": count})


@db.command(name="import")
@data_dir_options
@click.option("--resume", is_flag=True,
              help="Continue an import that stopped: the data directory must hold a prefix "
                   "of the archive's chain.")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.pass_obj
def import_command(obj: Context, chain_id: str, data_dir: Path | None, resume: bool,
                   file: Path) -> None:
    """Initialise a data directory from the archive FILE, replaying every block."""
    directory = resolve_data_dir(obj.home, chain_id, data_dir)
    guard_ledger_reads(directory, "db import")
    archive = read_archive_info(file)  # trailer first: a bad file writes nothing
    initialised = (directory / GENESIS_FILE).exists() or (directory / LEDGER_DIR).exists()
    if initialised and not resume:
        raise StoreAlreadyInitialised(f"{directory} is already initialised (to continue an "
                                      "import that stopped, add --resume)")
    if initialised:
        store, genesis, _ = open_ledger(directory, write=True, command="db import")
        if genesis != archive.genesis:
            store.close()
            raise StoreChainMismatch(f"{directory}'s genesis.json is not the archive's genesis")
    else:  # built beside and renamed into place: holds the genesis state, locked
        store, _, _ = create_data_dir(directory, archive.genesis, command="db import")
    # A replay failure keeps the verified blocks (the store is at the last good one);
    # `--resume` continues from there. A new directory resumes from height 0.
    with store:
        height = import_chain(file, store, resume=True)
        tip = store.last()
    obj.emit(
        f"imported {height} blocks of chain {tip.chain_id} into {directory}\n"
        f"  app hash {tip.app_hash.hex()}",
        {"data_dir": str(directory), "chain_id": tip.chain_id, "height": height,
         "app_hash": tip.app_hash.hex(), "block_hash": tip.block_hash.hex()},
    )
