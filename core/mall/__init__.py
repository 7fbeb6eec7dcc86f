"""The chain mall: parties, listings, EPCIS-shaped traceability, orders, escrow, disputes, tax.

Domain rules as state-machine handlers (docs/mall.md). `install(machine,
genesis)` plugs them into the machine; `install_queries(app)` adds the
`/mall/...` query paths. Nothing in `core/state/` imports this package.
"""

from __future__ import annotations

from .install import install
from .queries import install_queries

__all__ = ["install", "install_queries"]
