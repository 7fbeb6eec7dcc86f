"""Choose each batch function's implementation: the compiled kernel or its reference.

The kernels in `chainmall.ext` and the references in `chainmall.core` share
signatures and results. The low-level choices (hashing, Merkle, one Ed25519
signature, txs on the wire) are made in `core/kernels.py`, below the modules
that use them, and re-exported here; the batch validators `verify_batch` and
`validate_batch`, whose reference lives in `core/verify.py`, and the transfer
runs of `core/state/transfers.py` are chosen here, above them. Set
`CHAINMALL_PURE=1` to force the pure-Python references (the kernels are then
not even imported). A kernel that failed to build falls back to its reference,
and `status()` (shown by `chainmall doctor`) says which one is in use.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import verify
from .kernels import (
    PURE,
    blake3_kernel,
    build_txs,
    check_wire,
    digest_many,
    digest_many_fixed,
    hash_many,
    hash_many_fixed,
    mall_kernel,
    merkle_kernel,
    merkle_proof,
    merkle_root,
    merkle_verify,
    tree_kernel,
    txwire_kernel,
    unframe_txs,
    verify_kernel,
    verify_one,
)
from .kernels import load as _load
from .state import transfers

__all__ = [
    "PURE",
    "KernelStatus",
    "build_txs",
    "check_wire",
    "digest_many",
    "digest_many_fixed",
    "ed25519_backend",
    "hash_many",
    "hash_many_fixed",
    "load_accounts",
    "merkle_proof",
    "merkle_root",
    "merkle_verify",
    "plan_transfers",
    "run_transfers",
    "set_account",
    "status",
    "success_results",
    "take_dirty",
    "unframe_txs",
    "validate_batch",
    "verify_batch",
    "verify_one",
    "watch_keys",
]

ED25519_RULE = "ZIP 215"

verify_batch = verify_kernel.verify_batch if verify_kernel else verify.verify_batch
validate_batch = verify_kernel.validate_batch if verify_kernel else verify.validate_batch

# Runs of transfers over prefetched accounts (core/state/transfers.py, used by the machine).
transfer_kernel = _load("_transfer")
_transfers = transfer_kernel or transfers
plan_transfers = _transfers.plan_transfers
load_accounts = _transfers.load_accounts
run_transfers = _transfers.run_transfers
take_dirty = _transfers.take_dirty
set_account = _transfers.set_account
success_results = _transfers.success_results
watch_keys = _transfers.watch_keys


@dataclass(frozen=True)
class KernelStatus:
    """Which implementation serves one kernel, and why."""

    name: str
    compiled: bool
    in_use: str  # "kernel" or "reference"
    detail: str


def ed25519_backend() -> str:
    """What checks Ed25519 signatures here: a curve25519-dalek back end, or the reference."""
    if verify_kernel is not None:
        return verify_kernel.ed25519_backend()
    return "pure Python"


def status() -> list[KernelStatus]:
    """One entry per kernel: compiled or not, and what runs."""
    from chainmall import ext

    compiled = ext.compiled()
    loaded = {"_blake3": blake3_kernel, "_merkle": merkle_kernel, "_verify": verify_kernel,
              "_txwire": txwire_kernel, "_transfer": transfer_kernel,
              "_tree": tree_kernel, "_mall": mall_kernel}
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
