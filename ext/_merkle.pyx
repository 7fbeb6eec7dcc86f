# cython: language_level=3
"""Merkle root, inclusion proof and verification over packed 32-byte leaves, in C.

Kernel of `chainmall.core.merkle` (same signatures, same results, same
exceptions); the rule is docs/merkle.md. The tree is built bottom-up, which
gives the RFC 6962 split-rule tree: neighbours are paired level by level and a
lone last node goes up unchanged. Every level is one call to
`cm_blake3_hash_many_fixed`: the leaves as 32-byte inputs under the leaf key,
then each level's neighbour pairs, which sit back to back in the level buffer,
as 64-byte inputs under the node key (one compression each, SIMD across pairs).

To stay in cache the leaves are reduced in aligned blocks of BLOCK_LEAVES (a
power of two): pairs never cross an aligned block boundary below the block's
own height, and only the global last node is ever promoted, so the root of the
block roots is the root of the whole tree. All arguments are checked at Python
level; each call then releases the GIL once and nothing inside can fail.

This module imports nothing from `chainmall.core`: the constants it needs are
repeated below and a test compares them with core/constants.py and
core/hashing.py.
"""

import operator

import blake3 as _blake3_package

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.stdint cimport uint8_t
from libc.string cimport memcpy

# Absolute `ext.` cimport: Cython finds ext/_blake3.pxd from the project root
# (the package is mapped, so `chainmall/ext/` does not exist on disk).
from ext._blake3 cimport (
    CM_BLAKE3_AUTO,
    CM_BLAKE3_AVX2,
    CM_BLAKE3_PORTABLE,
    CM_BLAKE3_SSE41,
    cm_blake3_backend,
    cm_blake3_backend_name,
    cm_blake3_backend_t,
    cm_blake3_best_backend,
    cm_blake3_hash,
    cm_blake3_hash_many_fixed,
    cm_blake3_set_backend,
)

# --- protocol constants (copies of core/constants.py, checked by a test) -----
HASH_BYTES = 32
MERKLE_LEAVES_MAX = 1 << 24
MERKLE_LEAF_CONTEXT = "chainmall 2026-11 merkle leaf v1"
MERKLE_NODE_CONTEXT = "chainmall 2026-11 merkle node v1"
# Derived once here, as core/hashing.py does; ext/ may not import it.
MERKLE_LEAF_KEY = _blake3_package.blake3(b"", derive_key_context=MERKLE_LEAF_CONTEXT).digest()
MERKLE_NODE_KEY = _blake3_package.blake3(b"", derive_key_context=MERKLE_NODE_CONTEXT).digest()

cdef enum:
    NODE_BYTES = 32
    PAIR_BYTES = 64
    # Leaves per cache block: 64 KiB of leaf nodes plus 32 KiB for the next
    # level stay in L2 while the block is reduced. Must be a power of two.
    BLOCK_LEAVES = 2048
    # A tree of MERKLE_LEAVES_MAX = 2**24 leaves is 24 levels high.
    PROOF_DEPTH_MAX = 32

cdef uint8_t _leaf_key[NODE_BYTES]
cdef uint8_t _node_key[NODE_BYTES]
memcpy(_leaf_key, PyBytes_AS_STRING(MERKLE_LEAF_KEY), NODE_BYTES)
memcpy(_node_key, PyBytes_AS_STRING(MERKLE_NODE_KEY), NODE_BYTES)

cdef bytes _empty_root():
    cdef uint8_t nothing[1]
    cdef uint8_t out[NODE_BYTES]
    cm_blake3_hash(nothing, 0, _node_key, out)
    return PyBytes_FromStringAndSize(<char *>out, NODE_BYTES)

EMPTY_ROOT = _empty_root()

assert BLOCK_LEAVES & (BLOCK_LEAVES - 1) == 0
assert (MERKLE_LEAVES_MAX - 1).bit_length() <= PROOF_DEPTH_MAX


# --- C core: no Python objects, cannot fail ------------------------------------

cdef size_t _reduce(uint8_t *level, size_t width, uint8_t *other, size_t index,
                    uint8_t *proof, size_t depth) noexcept nogil:
    """Reduce `width` >= 1 nodes at `level` to one, left at `level`.

    `other` has room for (width + 1) / 2 nodes. When `proof` is not NULL the
    siblings met by node `index` are appended at proof[depth...]; returns the
    new depth.
    """
    cdef uint8_t *source = level
    cdef uint8_t *target = other
    cdef uint8_t *swap
    cdef size_t pairs
    while width > 1:
        if proof != NULL:
            if (index ^ 1) < width:  # else: `index` is the lone last node
                memcpy(proof + depth * NODE_BYTES, source + (index ^ 1) * NODE_BYTES,
                       NODE_BYTES)
                depth += 1
            index >>= 1
        pairs = width >> 1
        cm_blake3_hash_many_fixed(source, PAIR_BYTES, pairs, _node_key, target)
        if width & 1:
            memcpy(target + pairs * NODE_BYTES, source + (width - 1) * NODE_BYTES, NODE_BYTES)
        width = pairs + (width & 1)
        swap = source
        source = target
        target = swap
    if source != level:
        memcpy(level, source, NODE_BYTES)
    return depth


cdef size_t _tree(const uint8_t *leaves, size_t count, size_t index, uint8_t *scratch,
                  uint8_t *root, uint8_t *proof) noexcept nogil:
    """Root of `count` >= 1 leaves into `root`; siblings of `index` into `proof` if not NULL.

    `scratch` is _scratch_bytes(count) bytes. Returns the proof length.
    """
    cdef size_t blocks = (count + BLOCK_LEAVES - 1) // BLOCK_LEAVES
    cdef size_t block_width = count if count < BLOCK_LEAVES else BLOCK_LEAVES
    cdef uint8_t *block = scratch
    cdef uint8_t *block_other = block + block_width * NODE_BYTES
    cdef uint8_t *tops = block_other + ((block_width + 1) // 2) * NODE_BYTES
    cdef uint8_t *tops_other = tops + blocks * NODE_BYTES
    cdef size_t b, first, width
    cdef size_t depth = 0
    for b in range(blocks):
        first = b * BLOCK_LEAVES
        width = count - first if count - first < BLOCK_LEAVES else BLOCK_LEAVES
        cm_blake3_hash_many_fixed(leaves + first * NODE_BYTES, NODE_BYTES, width, _leaf_key,
                                  block)
        if proof != NULL and index // BLOCK_LEAVES == b:
            depth = _reduce(block, width, block_other, index % BLOCK_LEAVES, proof, depth)
            # The block root is promoted up to the block's height when the
            # block is short; promotion adds no sibling, so nothing to record.
        else:
            _reduce(block, width, block_other, 0, NULL, 0)
        memcpy(tops + b * NODE_BYTES, block, NODE_BYTES)
    depth = _reduce(tops, blocks, tops_other, index // BLOCK_LEAVES, proof, depth)
    memcpy(root, tops, NODE_BYTES)
    return depth


cdef size_t _scratch_bytes(size_t count) noexcept nogil:
    cdef size_t blocks = (count + BLOCK_LEAVES - 1) // BLOCK_LEAVES
    cdef size_t block_width = count if count < BLOCK_LEAVES else BLOCK_LEAVES
    return (block_width + (block_width + 1) // 2 + blocks + (blocks + 1) // 2) * NODE_BYTES


cdef size_t _proof_length(size_t index, size_t count) noexcept nogil:
    """Number of siblings on the path of leaf `index` < `count` (lone nodes have none)."""
    cdef size_t length = 0
    while count > 1:
        if (index ^ 1) < count:
            length += 1
        index >>= 1
        count = (count + 1) >> 1
    return length


# --- Python-level checks (same order and messages as core/merkle.py) -------------

cdef const unsigned char[::1] _packed_leaves(object leaves):
    try:
        view = memoryview(leaves).cast("B")
    except TypeError:
        raise TypeError(
            f"leaves must be a contiguous bytes-like object, not {type(leaves).__name__}"
        ) from None
    if len(view) % HASH_BYTES != 0:
        raise ValueError(f"leaves are {len(view)} bytes, not a multiple of {HASH_BYTES}")
    if len(view) // HASH_BYTES > MERKLE_LEAVES_MAX:
        raise ValueError(
            f"{len(view) // HASH_BYTES} leaves is more than MERKLE_LEAVES_MAX={MERKLE_LEAVES_MAX}"
        )
    return view


cdef bytes _checked_bytes(object value, str name):
    if type(value) is bytes:
        return <bytes>value
    try:
        return bytes(memoryview(value).cast("B"))
    except TypeError:
        raise TypeError(
            f"{name} must be a contiguous bytes-like object, not {type(value).__name__}"
        ) from None


cdef size_t _run_tree(const unsigned char[::1] data, size_t index, uint8_t *root,
                      uint8_t *proof) except? 0:
    """Allocate the scratch buffer and run `_tree` in one GIL release."""
    cdef size_t count = data.shape[0] // NODE_BYTES
    cdef size_t depth
    cdef uint8_t *scratch = <uint8_t *>PyMem_Malloc(_scratch_bytes(count))
    if scratch == NULL:
        raise MemoryError()
    try:
        with nogil:
            depth = _tree(&data[0], count, index, scratch, root, proof)
    finally:
        PyMem_Free(scratch)
    return depth


# --- public API --------------------------------------------------------------------

def merkle_root(leaves) -> bytes:
    """The Merkle root of the packed 32-byte `leaves` (ValueError if malformed)."""
    cdef const unsigned char[::1] data = _packed_leaves(leaves)
    cdef uint8_t root[NODE_BYTES]
    if data.shape[0] == 0:
        return EMPTY_ROOT
    _run_tree(data, 0, root, NULL)
    return PyBytes_FromStringAndSize(<char *>root, NODE_BYTES)


def merkle_proof(leaves, index) -> list:
    """Sibling hashes, bottom-up, proving leaf `index` of the packed `leaves`."""
    cdef const unsigned char[::1] data = _packed_leaves(leaves)
    cdef uint8_t root[NODE_BYTES]
    cdef uint8_t proof[PROOF_DEPTH_MAX * NODE_BYTES]
    cdef size_t depth, i
    index = operator.index(index)
    count = data.shape[0] // HASH_BYTES
    if not 0 <= index < count:
        raise ValueError(f"index {index} is out of range for {count} leaves")
    depth = _run_tree(data, index, root, proof)
    assert depth == _proof_length(index, count)
    return [PyBytes_FromStringAndSize(<char *>proof + i * NODE_BYTES, NODE_BYTES)
            for i in range(depth)]


def merkle_verify(root, leaf, index, count, proof) -> bool:
    """Whether `proof` shows `leaf` at `index` among `count` leaves under `root`.

    False for anything that does not verify: sizes other than 32 bytes, index
    out of range, count over MERKLE_LEAVES_MAX, a proof longer or shorter than
    (index, count) requires, or any hash that does not lead to `root`.
    TypeError only for arguments of the wrong type (all are checked first).
    """
    cdef bytes root_bytes = _checked_bytes(root, "root")
    cdef bytes leaf_bytes = _checked_bytes(leaf, "leaf")
    index = operator.index(index)
    count = operator.index(count)
    if isinstance(proof, (str, bytes, bytearray, memoryview)):
        raise TypeError(f"proof must be a sequence of hashes, not {type(proof).__name__}")
    siblings = [_checked_bytes(sibling, "proof item") for sibling in proof]

    if len(root_bytes) != NODE_BYTES or len(leaf_bytes) != NODE_BYTES:
        return False
    if not 0 <= index < count <= MERKLE_LEAVES_MAX:
        return False
    cdef size_t c_index = index
    cdef size_t c_count = count
    cdef size_t depth = len(siblings)
    if depth != _proof_length(c_index, c_count):
        return False
    cdef uint8_t path[PROOF_DEPTH_MAX * NODE_BYTES]
    cdef size_t i
    for i in range(depth):
        sibling = <bytes>siblings[i]
        if len(sibling) != NODE_BYTES:
            return False
        memcpy(path + i * NODE_BYTES, PyBytes_AS_STRING(sibling), NODE_BYTES)

    cdef const uint8_t *expected = <const uint8_t *>PyBytes_AS_STRING(root_bytes)
    cdef const uint8_t *leaf_ptr = <const uint8_t *>PyBytes_AS_STRING(leaf_bytes)
    cdef uint8_t node[NODE_BYTES]
    cdef uint8_t pair[PAIR_BYTES]
    cdef size_t used = 0
    cdef int differ = 0
    with nogil:
        cm_blake3_hash(leaf_ptr, NODE_BYTES, _leaf_key, node)
        while c_count > 1:
            if (c_index ^ 1) < c_count:  # else: lone last node, promoted unchanged
                if c_index & 1:
                    memcpy(pair, path + used * NODE_BYTES, NODE_BYTES)
                    memcpy(pair + NODE_BYTES, node, NODE_BYTES)
                else:
                    memcpy(pair, node, NODE_BYTES)
                    memcpy(pair + NODE_BYTES, path + used * NODE_BYTES, NODE_BYTES)
                cm_blake3_hash(pair, PAIR_BYTES, _node_key, node)
                used += 1
            c_index >>= 1
            c_count = (c_count + 1) >> 1
        for i in range(<size_t>NODE_BYTES):
            differ |= node[i] ^ expected[i]
    return used == depth and differ == 0


# Each kernel module links its own copy of the BLAKE3 C code, so forcing a back
# end in `chainmall.ext._blake3` does not reach this module: it has its own switch.
_BACKENDS = {
    "auto": CM_BLAKE3_AUTO,
    "portable": CM_BLAKE3_PORTABLE,
    "sse41": CM_BLAKE3_SSE41,
    "avx2": CM_BLAKE3_AVX2,
}


def backend() -> str:
    """Name of the BLAKE3 back end this kernel hashes with: "portable", "sse41" or "avx2"."""
    return cm_blake3_backend_name(cm_blake3_backend()).decode()


def set_backend(name) -> None:
    """Force this kernel's BLAKE3 back end, or "auto" for the CPU's best (tests, benchmarks).

    ValueError if the name is unknown or the CPU lacks that back end. Not safe
    while another thread is running this kernel.
    """
    if not isinstance(name, str):
        raise TypeError(f"backend name must be a str, not {type(name).__name__}")
    if name not in _BACKENDS:
        raise ValueError(f"unknown BLAKE3 backend {name!r}; choose from {sorted(_BACKENDS)}")
    if cm_blake3_set_backend(<cm_blake3_backend_t>_BACKENDS[name]) != 0:
        best = cm_blake3_backend_name(cm_blake3_best_backend()).decode()
        raise ValueError(f"this CPU does not support the {name} backend (best: {best})")


def describe() -> str:
    """One line for `chainmall doctor` and benchmarks, e.g. "Merkle over BLAKE3 avx2 (...)"."""
    return f"Merkle over BLAKE3 {backend()} ({BLOCK_LEAVES}-leaf cache blocks)"
