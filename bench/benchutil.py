"""What every benchmark prints beside its figures (the machine, a target verdict) and
how it shows progress through long set-up work (cli/progress.py: a bar on a terminal,
so with `pytest -s`; nothing when output is captured)."""

from __future__ import annotations

import os

from chainmall.cli.doctor import cpu_model
from chainmall.cli.progress import Progress
from chainmall.cli.progress import progress as _progress

__all__ = ["Progress", "cpu_model", "machine", "progress", "usable_cores", "verdict"]


def progress(title: str) -> Progress:
    """Progress bars for a benchmark's untimed set-up (never inside a timed region)."""
    return _progress(f"bench {title}")


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
