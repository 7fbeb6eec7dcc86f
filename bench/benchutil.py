"""What every benchmark prints beside its figures: the machine and a target verdict."""

from __future__ import annotations

import os

from chainmall.cli.doctor import cpu_model

__all__ = ["cpu_model", "machine", "usable_cores", "verdict"]


def usable_cores() -> int:
    """Cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def machine(note: str = "") -> str:
    """One line naming the CPU and cores, plus an optional note (threads used)."""
    line = f"{cpu_model()}, {os.cpu_count()} cores ({usable_cores()} usable)"
    return f"{line}, {note}" if note else line


def verdict(met: bool) -> str:
    """The word printed beside a target."""
    return "MET" if met else "NOT MET"
