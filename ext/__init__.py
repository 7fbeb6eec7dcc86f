"""chainmall.ext: compiled kernels (Cython + C), each with a reference in core/.

Nothing here imports `chainmall.core`; `chainmall.core.kernels` and
`chainmall.core.accel` choose between a kernel and its reference. `compiled()`
says which kernels were built. `_verify` links `ext/ed25519/` (Rust, ZIP 215).
`_sodium_bench` (libsodium's verify loop, the benchmark baseline) is not a
kernel: no reference, no verdict, built only where libsodium's headers are.
"""

from __future__ import annotations

import importlib

KERNELS = ("_blake3", "_merkle", "_verify", "_txwire", "_transfer", "_tree", "_mall")


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
