"""The mall's commands of issue 13, gathered: importing this module attaches `party`,
`merchant`, `product`, `trace`, `order` and `tax` to the `mall` group (cli/mall_group.py).
`chainmall escrow` is its own root group (cli/escrow.py)."""

from __future__ import annotations

from . import mall_order, mall_party, mall_product, mall_tax, mall_trace
from .mall_group import mall

__all__ = ["mall", "mall_order", "mall_party", "mall_product", "mall_tax", "mall_trace"]
