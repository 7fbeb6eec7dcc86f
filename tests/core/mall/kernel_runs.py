"""The machine's transfer runs swapped between the kernel and the reference, for tests that
run the same blocks on the kernel, on the pure-Python reference and one by one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from chainmall import ext
from chainmall.core.state import machine as machine_module
from chainmall.core.state import transfers

# The kernel; without it (CHAINMALL_PURE=1, not built) the reference stands in, so mixed
# blocks are still checked against the one-by-one path.
KERNEL = ext.load("_transfer") or transfers
TRANSFER_FUNCTIONS = ("plan_transfers", "load_accounts", "run_transfers", "take_dirty",
                      "set_account", "success_results", "watch_keys")


class CountingKernel:
    """The kernel (or its stand-in), counting the txs its runs execute (to show a test is
    not vacuous)."""

    def __init__(self) -> None:
        self.executed = 0

    def __getattr__(self, name: str):
        return getattr(KERNEL, name)

    def run_transfers(self, plan, table, start, stop, fee_min, room):
        done, fees = KERNEL.run_transfers(plan, table, start, stop, fee_min, room)
        self.executed += done - start
        return done, fees


@contextmanager
def transfer_functions(impl) -> Iterator[None]:
    """The machine's transfer runs on `impl` (the kernel or the reference) meanwhile."""
    with pytest.MonkeyPatch.context() as patch:
        for name in TRANSFER_FUNCTIONS:
            patch.setattr(machine_module.accel, name, getattr(impl, name))
        yield
