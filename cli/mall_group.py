"""The `chainmall mall` command group, which several command modules extend.

Each module adds its own sub-groups or commands to `mall` when it is
imported (`@mall.group()` / `mall.add_command`): parties, listings, traces,
orders and tax (cli/mall_*.py), and any other domain that lives in the mall.
`cli/main.py` imports those modules before it adds `mall` to the root, so
every command gets the root's `--json` flag and one-line errors.
"""

from __future__ import annotations

import click


@click.group()
def mall() -> None:
    """The chain mall: parties, certified merchants, listings, traceability, orders, tax.

    Reads are verified: every object shown is proven against the node's state
    root first. Tx commands print the tx id and wait for finality unless
    --no-wait (docs/mall.md, section "The command line").
    """
