"""chainmall.ext: compiled kernels (Cython + C), each with a reference in core/.

Nothing here imports `chainmall.core`; `chainmall.core.accel` chooses between
a kernel and its reference. `compiled()` says which kernels were built.
"""

from __future__ import annotations

import importlib

KERNELS = ("_blake3", "_merkle", "_verify")


def load(name: str):
    """The compiled kernel module `name`, or None when it was not built."""
    if name not in KERNELS:
        raise ValueError(f"unknown kernel {name!r}")
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ImportError:
        return None


def compiled() -> dict[str, bool]:
    """Kernel name -> whether its extension module imports."""
    return {name: load(name) is not None for name in KERNELS}
