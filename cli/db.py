"""`chainmall db`: check, export, import, migrate and describe a data directory's ledger."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from chainmall.core.archive import (
    export_chain,
    import_chain,
    read_archive_info,
    write_archive,
)
from chainmall.core.check import check_store
from chainmall.core.constants import STORE_FORMAT_VERSION
from chainmall.core.errors import (
    ChainmallError,
    StoreAlreadyInitialised,
    StoreChainMismatch,
    StoreCorrupt,
)
from chainmall.core.store import Store

from .context import Context
from .crashguard import guard_ledger_reads
from .datadir import (
    GENESIS_FILE,
    LEDGER_DIR,
    chain_data_dir_options,
    create_data_dir,
    data_dir_options,
    open_ledger,
    resolve_data_dir,
)

STDOUT = "-"


@click.group()
def db() -> None:
    """Check, export, import, migrate and describe the ledger."""


@db.command()
@chain_data_dir_options
@click.pass_obj
def info(obj: Context, chain_id: str | None, data_dir: Path | None) -> None:
    """Chain id, tip height, app hash, tip block hash and map size."""
    directory = resolve_data_dir(obj.home, chain_id, data_dir)
    guard_ledger_reads(directory, "db info")
    store, _, _ = open_ledger(directory, write=False)
    with store:
        tip = store.last()
        data = {
            "data_dir": str(directory),
            "chain_id": tip.chain_id,
            "height": tip.height,
            "app_hash": tip.app_hash.hex(),
            "block_hash": tip.block_hash.hex(),
            "map_size_bytes": store.map_size_bytes,
        }
    obj.emit("\n".join(f"{key:<15}{value}" for key, value in data.items()), data)


@db.command()
@chain_data_dir_options
@click.pass_obj
def check(obj: Context, chain_id: str | None, data_dir: Path | None) -> None:
    """Re-verify every stored block, receipt, root and tree node by replaying from genesis.

    Lists every problem it finds (one line each, on stderr) and exits 1 if
    there is any. Needs no free disk space: the replay runs in memory.
    """
    directory = resolve_data_dir(obj.home, chain_id, data_dir)
    guard_ledger_reads(directory, "db check")
    # Read-only, and no state machine: one reads the tip block when it starts, and a
    # damaged tip block must not stop the check before it lists every problem.
    store, genesis, _ = open_ledger(directory, write=False)
    with store, obj.progress("db check") as progress:
        height, problems = check_store(store, genesis, progress)
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


@db.command()
@chain_data_dir_options
@click.pass_obj
def migrate(obj: Context, chain_id: str | None, data_dir: Path | None) -> None:
    """Upgrade the ledger to this build's store format (docs/state.md), in one transaction.

    Format 3 ledgers (before the recent staging level was split by slice)
    are rewritten in place; a crash leaves them as they were. Builds older
    than this one cannot read a migrated ledger.
    """
    directory = resolve_data_dir(obj.home, chain_id, data_dir)
    store, _, _ = open_ledger(directory, write=True, command="db migrate",
                              store_options={"migrate_format": True})
    with store:
        height = store.last().height
        was = store.migrated_from
    data = {"data_dir": str(directory), "height": height, "migrated_from": was,
            "format_version": STORE_FORMAT_VERSION}
    text = (f"migrated {directory} from store format {was} to {STORE_FORMAT_VERSION} "
            f"({height} blocks)" if was is not None else
            f"{directory} is already in store format {STORE_FORMAT_VERSION}: nothing to do")
    obj.emit(text, data)


@db.command(name="export")
@chain_data_dir_options
@click.option("--force", is_flag=True, help="Replace FILE if it is an existing regular file.")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.pass_obj
def export_command(obj: Context, chain_id: str | None, data_dir: Path | None, force: bool,
                   file: str) -> None:
    """Write the chain to FILE (an archive, docs/archive.md); `-` is standard output.

    A symlink's target is written; a device or pipe is streamed to; a
    regular file is written through a temporary file and a rename, and an
    existing one is replaced only with --force.
    """
    to_stdout = file == STDOUT or _is_standard_output(file)
    if to_stdout and sys.stdout.isatty():
        raise OSError("standard output is a terminal: an archive is binary, redirect it to a "
                      "file or a pipe")
    directory = resolve_data_dir(obj.home, chain_id, data_dir)
    guard_ledger_reads(directory, "db export")
    store, genesis, _ = open_ledger(directory, write=False)
    with store, obj.progress("db export") as progress:
        if to_stdout:  # through the open descriptor: its offset and append mode hold
            out = sys.stdout.buffer
            count = write_archive(store, genesis, out, progress)
            out.flush()
        else:
            count = export_chain(store, genesis, file, force=force, progress=progress)
    where = "standard output" if file == STDOUT else file
    # When standard output carries the archive, the report goes to stderr.
    obj.emit(f"exported {count} blocks to {where}", {"file": file, "blocks": count},
             err=to_stdout)


def _is_standard_output(file: str) -> bool:
    """Whether `file` names the file this process's standard output is (/dev/stdout, ...)."""
    try:
        return os.path.samestat(os.stat(file), os.fstat(sys.stdout.fileno()))
    except (OSError, ValueError):
        return False


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
    with obj.progress("db import") as progress:
        archive = read_archive_info(file, progress)  # trailer first: a bad file writes nothing
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
        try:
            with obj.progress("db import") as progress:
                height = import_chain(file, store, resume=True, progress=progress)
        except (ChainmallError, OSError, KeyboardInterrupt) as exc:
            raise _stopped(exc, store, directory, file) from exc
        tip = store.last()
    obj.emit(
        f"imported {height} blocks of chain {tip.chain_id} into {directory}\n"
        f"  app hash {tip.app_hash.hex()}",
        {"data_dir": str(directory), "chain_id": tip.chain_id, "height": height,
         "app_hash": tip.app_hash.hex(), "block_hash": tip.block_hash.hex()},
    )


def _stopped(exc: BaseException, store: Store, directory: Path, file: Path) -> Exception:
    """The error of an import that stopped: why, what the directory holds, how to go on."""
    reason = (str(exc).splitlines() or [""])[0] or type(exc).__name__
    if isinstance(exc, KeyboardInterrupt):
        reason = "interrupted"
    try:
        held = f"the blocks verified so far, up to height {store.last().height}"
    except ChainmallError:
        held = "no verified block"
    message = (f"{reason}; {directory} holds {held}: `chainmall db import --resume "
               f"--data-dir {directory} {file}` continues from there")
    if isinstance(exc, ChainmallError):
        return type(exc)(message)
    return OSError(message)
