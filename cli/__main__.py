"""`python -m chainmall.cli`: the same as the `chainmall` command."""

from .main import cli

cli()
