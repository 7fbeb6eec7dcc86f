"""The `chainmall` root command: global options, sub-command wiring, one-line errors.

Every failure ends as one line on stderr (`error: ...`) and a non-zero exit
status: 1 for an error (bad input, a damaged store, a failed check), 2 for a
usage error (an unknown command or option, a missing argument, an option
value click refuses). `--debug` shows the traceback of an error instead.
`--json` is accepted before the sub-command and after it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from chainmall.core.errors import ChainmallError

from .chain import account, block, status, tx
from .context import Context, default_home, package_version
from .db import db
from .demo import demo
from .doctor import doctor
from .escrow import escrow
from .keys import keys
from .mall import mall  # its command modules attach to it on import (cli/mall_group.py)
from .net import net
from .node import init
from .node_cmd import node
from .verify import verify

__all__ = ["EXIT_ERROR", "EXIT_USAGE", "cli", "default_home", "package_version"]

EXIT_ERROR = 1
EXIT_USAGE = 2  # click's convention, kept: scripts can tell a typo from a failure


def _set_json(ctx: click.Context, _: click.Parameter, value: bool) -> None:
    """`--json` given after a sub-command's name: switch the shared context to JSON."""
    if value:
        obj = ctx.find_object(Context)
        if obj is not None:
            obj.json_output = True


def _accept_json(command: click.Command) -> None:
    """Give `command` (and, for a group, every sub-command) its own `--json` flag."""
    if not any("--json" in getattr(param, "opts", ()) for param in command.params):
        command.params.append(click.Option(
            ["--json"], is_flag=True, expose_value=False, is_eager=True, callback=_set_json,
            help="Machine-readable JSON output (as the global --json)."))
    if isinstance(command, click.Group):
        for sub_command in command.commands.values():
            _accept_json(sub_command)


class ChainmallGroup(click.Group):
    """A click group that turns every failure into one line on stderr."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        _accept_json(cmd)
        super().add_command(cmd, name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (ChainmallError, OSError, ValueError) as error:
            obj = ctx.find_object(Context)
            if obj is not None and obj.debug:
                raise
            message = str(error) or type(error).__name__
            click.echo(f"error: {message.splitlines()[0]}", err=True)
            sys.exit(EXIT_ERROR)

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        """As click's, but a usage error is one line (`error: ...`, exit 2), not three."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            result = super().main(args, prog_name, complete_var, False, **extra)
        except click.UsageError as error:
            hint = ""
            if error.ctx is not None:
                hint = f" (see `{error.ctx.command_path} --help`)"
            message = _first_line(error.format_message()).rstrip(".")
            click.echo(f"error: {message}{hint}", err=True)
            sys.exit(EXIT_USAGE)
        except click.ClickException as error:
            click.echo(f"error: {_first_line(error.format_message())}", err=True)
            sys.exit(error.exit_code)
        except click.Abort:
            click.echo("error: aborted", err=True)
            sys.exit(EXIT_ERROR)
        # click returns an `Exit` code (0 after --help or --version) or the command's value.
        sys.exit(result if isinstance(result, int) else 0)


def _first_line(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else "usage error"


@click.group(cls=ChainmallGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_version(), "--version", prog_name="chainmall")
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Base directory for keys and node data [default: $CHAINMALL_HOME or ~/.chainmall].",
)
@click.option("--json", "json_output", is_flag=True, help="Machine-readable JSON output.")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.pass_context
def cli(ctx: click.Context, home: Path | None, json_output: bool, debug: bool) -> None:
    """chainmall: a fast, verifiable ledger for chain merchants."""
    ctx.obj = Context(home=home or default_home(), json_output=json_output, debug=debug)


cli.add_command(keys)
cli.add_command(doctor)
cli.add_command(demo)
cli.add_command(init)
cli.add_command(db)
cli.add_command(net)
cli.add_command(verify)
cli.add_command(node)
for _command in (status, account, block, tx):  # talk to a node (cli/chain.py)
    cli.add_command(_command)
cli.add_command(mall)  # after every module that extends it is imported: all get --json
cli.add_command(escrow)

if __name__ == "__main__":  # pragma: no cover
    cli()
