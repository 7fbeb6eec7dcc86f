"""The `chainmall mall` command group and its sub-groups: the mall's command modules (the tag
QR codes of cli/mall_qr.py, ...) add their commands to these."""

from __future__ import annotations

import click


@click.group()
def mall() -> None:
    """The mall: listings, items and their histories."""


@mall.group()
def product() -> None:
    """Listings and the tags of their items."""
