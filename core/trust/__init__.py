"""Trust in the mall: verified-buyer reviews, reputation, fake-order signals and reports,
ranking, and token rewards (docs/trust.md).

Deterministic tx logic on top of the mall's orders and escrow: `install(machine,
genesis)` plugs the handlers, tx observers, block hooks and supply tables into
the machine; `install_queries(app)` adds the `/trust/...` query paths. The
off-chain watcher (`watch.py`) and the market simulator (`simulate.py`) read the
chain and are not part of the state machine.
"""

from __future__ import annotations

from .install import install
from .queries import install_queries

__all__ = ["install", "install_queries"]
