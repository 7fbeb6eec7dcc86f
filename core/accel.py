"""Choose each batch function's implementation: the compiled kernel or its reference.

The kernels in `chainmall.ext` and the references in `chainmall.core` share
signatures and results; this module is the only place that picks one. Set
`CHAINMALL_PURE=1` to force the pure-Python references (the kernels are then
not even imported). A kernel that failed to build falls back to its reference,
and `status()` (shown by `chainmall doctor`) says which one is in use.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from types import ModuleType

from . import hashing, merkle, verify

PURE = os.environ.get("CHAINMALL_PURE") == "1"


@dataclass(frozen=True)
class KernelStatus:
    """Which implementation serves one kernel, and why."""

    name: str
    compiled: bool
    in_use: str  # "kernel" or "reference"
    detail: str


def _load(name: str) -> ModuleType | None:
    if PURE:
        return None
    from chainmall import ext

    return ext.load(name)


_blake3 = _load("_blake3")
_merkle = _load("_merkle")
_verify = _load("_verify")

hash_many_fixed = _blake3.hash_many_fixed if _blake3 else hashing.hash_many_fixed
hash_many = _blake3.hash_many if _blake3 else hashing.hash_many
# Hashing on the hot path (tx ids of a decoded block, state tree nodes): without the kernel,
# the blake3 package, never the slow reference.
digest_many = _blake3.hash_many if _blake3 else hashing.digest_many
digest_many_fixed = _blake3.hash_many_fixed if _blake3 else hashing.digest_many_fixed
merkle_root = _merkle.merkle_root if _merkle else merkle.merkle_root
merkle_proof = _merkle.merkle_proof if _merkle else merkle.merkle_proof
merkle_verify = _merkle.merkle_verify if _merkle else merkle.merkle_verify
verify_batch = _verify.verify_batch if _verify else verify.verify_batch
validate_batch = _verify.validate_batch if _verify else verify.validate_batch


def status() -> list[KernelStatus]:
    """One entry per kernel: compiled or not, and what runs."""
    from chainmall import ext

    compiled = ext.compiled()
    loaded = {"_blake3": _blake3, "_merkle": _merkle, "_verify": _verify}
    result = []
    for name, module in loaded.items():
        if module is not None:
            detail = module.describe()
        elif PURE:
            detail = "CHAINMALL_PURE=1 forces the pure-Python reference"
        elif not compiled[name]:
            detail = "extension not built: pure-Python reference in use (run `make setup`)"
        else:
            detail = "reference in use"
        result.append(
            KernelStatus(name, compiled[name], "kernel" if module else "reference", detail)
        )
    return result
