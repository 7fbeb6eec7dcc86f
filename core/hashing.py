"""BLAKE3 for chainmall: the pure-Python reference, its batch functions, and the domain keys.

Three parts:

* The reference, written from the BLAKE3 specification (BLAKE3-team/BLAKE3,
  blake3.pdf): `blake3_hash` (plain and keyed, any length, through the chunk
  tree) and `blake3_derive_key`. It is slow and exists to check the kernels.
* `hash_many_fixed` and `hash_many`: references for the batch kernel in
  `chainmall.ext._blake3`, with the same signatures, results, argument checks
  and exception types. `chainmall.core.accel` picks one of the two.
* Fast helpers for the rest of the code base, on the `blake3` package:
  `digest`, `domain_key` and the domain keys `MERKLE_LEAF_KEY`,
  `MERKLE_NODE_KEY`, `ADDRESS_KEY`, `BLOCK_HASH_KEY`.

Batch conventions (shared with the kernel):
  * `data` is any C-contiguous bytes-like object, taken as its raw bytes.
  * `key` is None (plain hash) or a bytes-like of exactly 32 bytes (keyed hash).
  * `hash_many_fixed` needs `item_bytes >= 1`: with 0 the number of messages
    would be undefined. Use `hash_many` for batches of empty messages.
  * `hash_many` takes n + 1 offsets; message i is data[offsets[i]:offsets[i+1]].
The batch size is not capped here; callers enforce `BATCH_ITEMS_MAX`.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Sequence
from typing import SupportsIndex

import blake3 as _blake3_package

from .constants import (
    ADDRESS_CONTEXT,
    BLOCK_HASH_CONTEXT,
    HASH_BYTES,
    MERKLE_LEAF_CONTEXT,
    MERKLE_NODE_CONTEXT,
)

BytesLike = bytes | bytearray | memoryview

KEY_BYTES = 32
BLOCK_BYTES = 64
CHUNK_BYTES = 1024

# Domain flags (specification, section 2.1).
CHUNK_START = 1 << 0
CHUNK_END = 1 << 1
PARENT = 1 << 2
ROOT = 1 << 3
KEYED_HASH = 1 << 4
DERIVE_KEY_CONTEXT = 1 << 5
DERIVE_KEY_MATERIAL = 1 << 6

_MASK = 0xFFFFFFFF
IV = (
    0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A,
    0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19,
)
# Applied to the message words between rounds.
MSG_PERMUTATION = (2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8)

assert HASH_BYTES == 32
assert sorted(MSG_PERMUTATION) == list(range(16))


# --- the reference ------------------------------------------------------------


def _g(v: list[int], a: int, b: int, c: int, d: int, mx: int, my: int) -> None:
    """The quarter-round G, on state words a, b, c, d."""
    v[a] = (v[a] + v[b] + mx) & _MASK
    x = v[d] ^ v[a]
    v[d] = ((x >> 16) | (x << 16)) & _MASK
    v[c] = (v[c] + v[d]) & _MASK
    x = v[b] ^ v[c]
    v[b] = ((x >> 12) | (x << 20)) & _MASK
    v[a] = (v[a] + v[b] + my) & _MASK
    x = v[d] ^ v[a]
    v[d] = ((x >> 8) | (x << 24)) & _MASK
    v[c] = (v[c] + v[d]) & _MASK
    x = v[b] ^ v[c]
    v[b] = ((x >> 7) | (x << 25)) & _MASK


def _round(v: list[int], m: list[int]) -> None:
    """One round: G on the four columns, then on the four diagonals."""
    _g(v, 0, 4, 8, 12, m[0], m[1])
    _g(v, 1, 5, 9, 13, m[2], m[3])
    _g(v, 2, 6, 10, 14, m[4], m[5])
    _g(v, 3, 7, 11, 15, m[6], m[7])
    _g(v, 0, 5, 10, 15, m[8], m[9])
    _g(v, 1, 6, 11, 12, m[10], m[11])
    _g(v, 2, 7, 8, 13, m[12], m[13])
    _g(v, 3, 4, 9, 14, m[14], m[15])


def compress(
    cv: tuple[int, ...], block: bytes, block_len: int, counter: int, flags: int
) -> tuple[int, ...]:
    """The compression function, truncated to the new 8-word chaining value.

    `block` is exactly 64 bytes (zero-padded past `block_len`).
    """
    assert len(cv) == 8
    assert len(block) == BLOCK_BYTES
    assert 0 <= block_len <= BLOCK_BYTES
    m = [int.from_bytes(block[i : i + 4], "little") for i in range(0, BLOCK_BYTES, 4)]
    v = [
        *cv,
        IV[0], IV[1], IV[2], IV[3],
        counter & _MASK, (counter >> 32) & _MASK, block_len, flags,
    ]
    for round_index in range(7):
        _round(v, m)
        if round_index < 6:
            m = [m[i] for i in MSG_PERMUTATION]
    return tuple(v[i] ^ v[i + 8] for i in range(8))


def _words_to_bytes(words: tuple[int, ...]) -> bytes:
    return b"".join(w.to_bytes(4, "little") for w in words)


def _chunk_cv(
    chunk: bytes, chunk_counter: int, key_words: tuple[int, ...], flags: int, root: bool
) -> tuple[int, ...]:
    """Chaining value of one chunk (<= 1024 bytes); `root` marks its last block ROOT."""
    assert len(chunk) <= CHUNK_BYTES
    cv = key_words
    block_count = max(1, -(-len(chunk) // BLOCK_BYTES))
    for index in range(block_count):
        block = chunk[index * BLOCK_BYTES : (index + 1) * BLOCK_BYTES]
        block_flags = flags
        if index == 0:
            block_flags |= CHUNK_START
        if index == block_count - 1:
            block_flags |= CHUNK_END | (ROOT if root else 0)
        padded = block + bytes(BLOCK_BYTES - len(block))
        cv = compress(cv, padded, len(block), chunk_counter, block_flags)
    return cv


def _parent_cv(
    left: tuple[int, ...], right: tuple[int, ...], key_words: tuple[int, ...], flags: int
) -> tuple[int, ...]:
    block = _words_to_bytes(left) + _words_to_bytes(right)
    return compress(key_words, block, BLOCK_BYTES, 0, flags | PARENT)


def _hash_tree(data: bytes, key_words: tuple[int, ...], flags: int) -> bytes:
    """Root hash over the chunk tree, built with a stack of chaining values.

    After chunk i (0-based, not the last) is added, one merge happens per
    trailing zero bit of i + 1, so the stack holds the roots of complete
    subtrees, largest first. The last chunk's value then merges down the
    stack, and the final merge is the root.
    """
    chunks = [data[i : i + CHUNK_BYTES] for i in range(0, len(data), CHUNK_BYTES)] or [b""]
    if len(chunks) == 1:
        return _words_to_bytes(_chunk_cv(chunks[0], 0, key_words, flags, root=True))
    stack: list[tuple[int, ...]] = []
    for index, chunk in enumerate(chunks[:-1]):
        cv = _chunk_cv(chunk, index, key_words, flags, root=False)
        total = index + 1
        while total & 1 == 0:
            cv = _parent_cv(stack.pop(), cv, key_words, flags)
            total >>= 1
        stack.append(cv)
    cv = _chunk_cv(chunks[-1], len(chunks) - 1, key_words, flags, root=False)
    while len(stack) > 1:
        cv = _parent_cv(stack.pop(), cv, key_words, flags)
    return _words_to_bytes(_parent_cv(stack.pop(), cv, key_words, flags | ROOT))


def _key_to_words(key: bytes) -> tuple[int, ...]:
    assert len(key) == KEY_BYTES
    return tuple(int.from_bytes(key[i : i + 4], "little") for i in range(0, KEY_BYTES, 4))


def _byte_view(data: object, what: str) -> memoryview:
    """`data` as a flat, C-contiguous memoryview of bytes (the kernel's rule)."""
    try:
        view = memoryview(data)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{what} must be a bytes-like object, not {type(data).__name__}") from None
    if not view.c_contiguous:
        raise ValueError(f"{what} must be C-contiguous")
    if view.ndim != 1 or view.itemsize != 1 or view.format != "B":
        view = view.cast("B")
    return view


def _key_bytes(key: BytesLike | None) -> bytes | None:
    """None, or the key's 32 bytes; ValueError for any other length."""
    if key is None:
        return None
    view = _byte_view(key, "key")
    if len(view) != KEY_BYTES:
        raise ValueError(f"key must be exactly {KEY_BYTES} bytes, got {len(view)}")
    return view.tobytes()


def blake3_hash(data: BytesLike, key: BytesLike | None = None) -> bytes:
    """BLAKE3 of `data` (any length), 32 bytes; with `key` (32 bytes), keyed_hash."""
    message = _byte_view(data, "data").tobytes()
    key_bytes = _key_bytes(key)
    if key_bytes is None:
        return _hash_tree(message, IV, 0)
    return _hash_tree(message, _key_to_words(key_bytes), KEYED_HASH)


def blake3_derive_key(context: str, key_material: BytesLike) -> bytes:
    """BLAKE3 derive_key: a 32-byte key for `context` (a hard-coded string) and material."""
    if not isinstance(context, str):
        raise TypeError(f"context must be a str, not {type(context).__name__}")
    context_key = _hash_tree(context.encode("utf-8"), IV, DERIVE_KEY_CONTEXT)
    material = _byte_view(key_material, "key_material").tobytes()
    return _hash_tree(material, _key_to_words(context_key), DERIVE_KEY_MATERIAL)


# --- batch references (same signatures and results as chainmall.ext._blake3) ---


def hash_many_fixed(
    data: BytesLike, item_bytes: SupportsIndex, key: BytesLike | None = None
) -> bytes:
    """BLAKE3 of each `item_bytes`-byte message in `data`, as n * 32 packed bytes.

    `len(data)` must be a multiple of `item_bytes` (>= 1); `key` (32 bytes)
    selects keyed hashing.
    """
    view = _byte_view(data, "data")
    item_len = operator.index(item_bytes)
    if item_len < 1:
        raise ValueError(f"item_bytes must be >= 1, got {item_len}")
    key_bytes = _key_bytes(key)
    if len(view) % item_len != 0:
        raise ValueError(f"len(data) = {len(view)} is not a multiple of item_bytes = {item_len}")
    return b"".join(
        blake3_hash(view[start : start + item_len], key_bytes)
        for start in range(0, len(view), item_len)
    )


def _offset_list(offsets: object) -> list[int]:
    """The offsets as Python ints (TypeError for anything that is not an int)."""
    try:
        view = memoryview(offsets)  # type: ignore[arg-type]
    except TypeError:
        view = None
    if view is not None:
        if view.ndim != 1:
            raise ValueError(f"offsets must be one-dimensional, got {view.ndim} dimensions")
        offsets = view.tolist()
    try:
        values = iter(offsets)  # type: ignore[call-overload]
    except TypeError:
        raise TypeError(
            f"offsets must be a sequence of ints, not {type(offsets).__name__}"
        ) from None
    return [operator.index(value) for value in values]


def _check_offsets(values: list[int], data_len: int) -> None:
    """All >= 0, non-decreasing, last <= data_len; checked in the kernel's order."""
    if not values:
        raise ValueError("offsets must have at least one entry (n + 1 for n messages)")
    for i, value in enumerate(values):
        if value < 0:
            raise ValueError(f"offsets[{i}] must be >= 0, got {value}")
        if i > 0 and value < values[i - 1]:
            raise ValueError(
                f"offsets must be non-decreasing: offsets[{i - 1}] = {values[i - 1]} > "
                f"offsets[{i}] = {value}"
            )
    if values[-1] > data_len:
        raise ValueError(
            f"offsets[-1] = {values[-1]} is past the end of data ({data_len} bytes)"
        )


def hash_many(data: BytesLike, offsets: object, key: BytesLike | None = None) -> bytes:
    """BLAKE3 of each message data[offsets[i]:offsets[i + 1]], as n * 32 packed bytes.

    `offsets` holds n + 1 non-decreasing ints in [0, len(data)] (a list, an
    array('Q') or a uint64 memoryview); `key` (32 bytes) selects keyed hashing.
    """
    view = _byte_view(data, "data")
    key_bytes = _key_bytes(key)
    values = _offset_list(offsets)
    _check_offsets(values, len(view))
    return b"".join(
        blake3_hash(view[start:end], key_bytes) for start, end in itertools.pairwise(values)
    )


# --- fast helpers for the rest of the code base (the blake3 package) ----------


def digest(data: BytesLike, key: bytes | None = None) -> bytes:
    """BLAKE3 of `data`, 32 bytes; keyed with `key` (32 bytes) when given."""
    return _blake3_package.blake3(data, key=key).digest()


def digest_many(data: BytesLike, offsets: Sequence[int], key: bytes | None = None) -> bytes:
    """`hash_many` through the blake3 package: accel's fallback when the kernel is
    not built (the pure-Python reference is for checking, far too slow)."""
    view = memoryview(data)
    return b"".join(_blake3_package.blake3(view[start:end], key=key).digest()
                    for start, end in itertools.pairwise(offsets))


def digest_many_fixed(data: BytesLike, item_bytes: int, key: bytes | None = None) -> bytes:
    """`hash_many_fixed` through the blake3 package (accel's fast fallback, as above)."""
    view = memoryview(data)
    return b"".join(_blake3_package.blake3(view[start : start + item_bytes], key=key).digest()
                    for start in range(0, len(view), item_bytes))


def domain_key(context: str) -> bytes:
    """The 32-byte key for one domain: BLAKE3 derive_key(context, key_material=b"")."""
    return _blake3_package.blake3(b"", derive_key_context=context).digest()


MERKLE_LEAF_KEY = domain_key(MERKLE_LEAF_CONTEXT)
MERKLE_NODE_KEY = domain_key(MERKLE_NODE_CONTEXT)
ADDRESS_KEY = domain_key(ADDRESS_CONTEXT)
BLOCK_HASH_KEY = domain_key(BLOCK_HASH_CONTEXT)

assert len({MERKLE_LEAF_KEY, MERKLE_NODE_KEY, ADDRESS_KEY, BLOCK_HASH_KEY}) == 4
