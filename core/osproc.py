"""Linux process controls the node's threads and helper processes share: prctl(2) and
glibc's mallopt(3).

Elsewhere than Linux with glibc each call does nothing (a name stays unset, a child does not
die with its parent by itself, malloc keeps its own policy).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal

_PR_SET_PDEATHSIG = 1
_PR_SET_NAME = 15
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 1 << 20
"""Blocks at least this large come from their own mappings: above a block's own buffers
(a mapping per 128 KiB buffer, glibc's starting threshold, cost the block thread ~13% more
CPU), below the capped caches' tables (several MiB)."""


def _prctl(option: int, value: int | bytes) -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)


def name_os_thread(name: str) -> None:
    """Give the calling thread `name` in the OS (`top -H`, /proc/PID/task/*/comm, and the
    process's name when called on its main thread), where Python's thread names do not
    appear. At most 15 bytes are kept."""
    _prctl(_PR_SET_NAME, name.encode()[:15])


def die_with_parent(parent_pid: int, sig: int = signal.SIGKILL) -> bool:
    """Have the kernel send `sig` to this process when the thread that started it ends
    (PR_SET_PDEATHSIG); False if the parent `parent_pid` had ended already."""
    _prctl(_PR_SET_PDEATHSIG, sig)
    return os.getppid() == parent_pid


def fix_malloc_mmap_threshold(threshold_bytes: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Pin glibc's mmap threshold at `threshold_bytes`; False where there is no mallopt.

    By default glibc raises the threshold each time a mapped block is freed, up to 32 MiB,
    so a long-running process's large buffers (the capped caches' dict tables, rebuilt as
    they churn) move into the heap and its arenas, where freeing them seldom gives memory
    back: a 10-minute soak's resident memory grew in steps while nothing was kept longer.
    A fixed threshold keeps large blocks in their own mappings, returned to the kernel
    when freed (bench/README.md, "malloc's moving threshold")."""
    with contextlib.suppress(OSError, AttributeError):
        return bool(ctypes.CDLL(None).mallopt(_M_MMAP_THRESHOLD, threshold_bytes))
    return False
