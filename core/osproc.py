"""Linux process controls (prctl(2)) the node's threads and helper processes share.

Elsewhere than Linux each call does nothing (a name stays unset, a child does not die with
its parent by itself).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal

_PR_SET_PDEATHSIG = 1
_PR_SET_NAME = 15


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
