"""Load the compiled kernels and pick the low-level functions: hashing, Merkle, one
signature, txs on the wire.

This module sits below every module that hashes, builds Merkle roots, checks a
single signature or decodes many txs (`core/tx.py`, `core/block.py`,
`core/keys.py`, the state tree), so they import it without a circle. The batch validators, which sit
above `core/verify.py`, are chosen in `core/accel.py`, which also re-exports
everything chosen here and reports the choice (`accel.status()`).

`CHAINMALL_PURE=1` forces the pure-Python references (the kernels are then not
even imported); a kernel that failed to build falls back to its reference.
"""

from __future__ import annotations

import os
from types import ModuleType

from . import ed25519, hashing, merkle, txwire

PURE = os.environ.get("CHAINMALL_PURE") == "1"


def load(name: str) -> ModuleType | None:
    """The compiled kernel `name`, or None when it is not built or PURE is set."""
    if PURE:
        return None
    from chainmall import ext

    return ext.load(name)


blake3_kernel = load("_blake3")
merkle_kernel = load("_merkle")
verify_kernel = load("_verify")
txwire_kernel = load("_txwire")
# The state tree's batch update (core/state/root/tree.py `_Apply`), chosen there.
tree_kernel = load("_tree")
# The mall's event-recording escrow steps (core/mall/native.py configures and chooses).
mall_kernel = load("_mall")

hash_many_fixed = blake3_kernel.hash_many_fixed if blake3_kernel else hashing.hash_many_fixed
hash_many = blake3_kernel.hash_many if blake3_kernel else hashing.hash_many
# Hashing on the hot path (tx ids of a decoded block, state tree nodes): without the kernel,
# the blake3 package, never the slow reference.
digest_many = blake3_kernel.hash_many if blake3_kernel else hashing.digest_many
digest_many_fixed = (
    blake3_kernel.hash_many_fixed if blake3_kernel else hashing.digest_many_fixed
)
merkle_root = merkle_kernel.merkle_root if merkle_kernel else merkle.merkle_root
merkle_proof = merkle_kernel.merkle_proof if merkle_kernel else merkle.merkle_proof
merkle_verify = merkle_kernel.merkle_verify if merkle_kernel else merkle.merkle_verify
# One Ed25519 signature under ZIP 215 (docs/verification.md).
verify_one = verify_kernel.verify_one if verify_kernel else ed25519.verify_one
# Many txs on the wire (core/txwire.py): a block's tx list unframed, checked, built.
unframe_txs = txwire_kernel.unframe_txs if txwire_kernel else txwire.unframe_txs
check_wire = txwire_kernel.check_wire if txwire_kernel else txwire.check_wire
build_txs = txwire_kernel.build_txs if txwire_kernel else txwire.build_txs
