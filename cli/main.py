"""The `chainmall` root command: global options, sub-command wiring, one-line errors.

Every failure the user can cause ends as one line on stderr (`error: ...`)
and a non-zero exit; `--debug` shows the traceback instead.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click
from chainmall.core.errors import ChainmallError

from .chain import account, block, status, tx
from .context import Context, package_version
from .db import db
from .demo import demo
from .doctor import doctor
from .keys import keys
from .net import net
from .node import init
from .verify import verify

EXIT_ERROR = 1


def default_home() -> Path:
    """`$CHAINMALL_HOME`, else `~/.chainmall`."""
    return Path(os.environ.get("CHAINMALL_HOME") or Path.home() / ".chainmall")


class ChainmallGroup(click.Group):
    """A click group that turns expected failures into one-line errors."""

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
for _command in (status, account, block, tx):  # talk to a node (cli/chain.py)
    cli.add_command(_command)

if __name__ == "__main__":  # pragma: no cover
    cli()
