# cython: language_level=3
"""One batch update of the state tree, in C: kernel of `core/state/root/tree.py`'s `_Apply`.

Same constructor shape and methods as the reference (`update`, `check_reads`,
`finish`, `nodes_read`), same results in the same order (the root,
`new_nodes` in post order along ascending paths, `stale_nodes` in read
order) and the same errors with the same messages: docs/state-root.md
section "The native update". The reference's recursions are repeated here
over C structures: the change batch is copied once into packed arrays, each
new node is a pair of references (a known hash, or the index of another new
node), and each node read is kept as (hash, 64-byte fields) in one packed
array per kind. No Python object is made per node between two reads.

Reads. The reader is asked for nodes in batches first: when it has
`get_nodes(hashes) -> list` (StoreView, MemoryNodeStore), the nodes on the
touched paths are fetched level by level, one call per level, before the
walk (a prefetch: nothing is counted, checked or reported from it), with the
untouched sibling a delete may leave alone. The walk then reads each node it
needs in the reference's order from the prefetched ones, without the GIL,
and asks `get_node` only for a node the prefetch did not get (a reader
without `get_nodes`, or an odd answer), so `nodes_read`, the errors and
their order are the reference's. The checks of the nodes read and the
hashing of the new nodes (one SIMD batch per kind and tree level) run
without the GIL too.

The error messages are made by the `corrupt` function handed in (the
reference's `_corrupt`) and a malformed node's DecodeError by `parse_node`
(the reference's `_parse_node`): this module imports nothing from
`chainmall.core`; the constants it repeats are compared with
core/constants.py by a test.
"""

import blake3 as _blake3_package

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_SetItem
from libc.stdint cimport int64_t, uint8_t, uint64_t
from libc.stdlib cimport free, malloc, qsort, realloc
from libc.string cimport memcmp, memcpy, memset

from ext._blake3 cimport cm_blake3_hash_many_fixed

# --- protocol constants (copies of core/constants.py, checked by a test) -----
HASH_BYTES = 32
STATE_PATH_BITS = 256
STATE_NODE_VERSION = 1
STATE_LEAF_CONTEXT = "chainmall 2026-11 state leaf v1"
STATE_NODE_CONTEXT = "chainmall 2026-11 state node v1"
KIND_LEAF = 1
KIND_INTERNAL = 2
NODE_BYTES = 66
STATE_LEAF_KEY = _blake3_package.blake3(b"", derive_key_context=STATE_LEAF_CONTEXT).digest()
STATE_NODE_KEY = _blake3_package.blake3(b"", derive_key_context=STATE_NODE_CONTEXT).digest()

cdef enum:
    H = 32             # a hash, a path, a value hash
    BODY = 64          # a node's two fields
    C_NODE_BYTES = 66  # version, kind, two fields
    C_VERSION = 1
    C_LEAF = 1
    C_INTERNAL = 2
    C_EMPTY = 0        # kinds inside `apply` only, as in the reference
    C_UNKNOWN = 3
    C_BITS = 256

cdef uint8_t _leaf_key[H]
cdef uint8_t _node_key[H]
cdef uint8_t _zero[BODY]
memcpy(_leaf_key, PyBytes_AS_STRING(STATE_LEAF_KEY), H)
memcpy(_node_key, PyBytes_AS_STRING(STATE_NODE_KEY), H)
memset(_zero, 0, BODY)
EMPTY_ROOT = bytes(H)


def describe() -> str:
    """What this kernel is, for `chainmall doctor`."""
    return "state tree update in C (batched reads, BLAKE3 batches without the GIL)"


# --- packed growable arrays ------------------------------------------------------

# --- the key order of packed hashes (core/store.py `hash_order`) ---------------

cdef struct HashAt:  # a hash inside the packed input, and its index there
    uint64_t head      # its first 8 bytes, big-endian: most comparisons end here
    const uint8_t *hash
    Py_ssize_t index


cdef int _hash_at_order(const void *a, const void *b) noexcept nogil:
    # qsort sorts pointers (8-byte elements: glibc's merge sort moves them as words)
    cdef const HashAt *x = (<const HashAt **>a)[0]
    cdef const HashAt *y = (<const HashAt **>b)[0]
    cdef int c
    if x.head != y.head:
        return -1 if x.head < y.head else 1
    c = memcmp(x.hash + 8, y.hash + 8, H - 8)
    if c != 0:
        return c
    return (x.index > y.index) - (x.index < y.index)


def hash_order(hashes):
    """The indexes of the 32-byte hashes packed in `hashes` (bytes), in the hashes' byte
    order, equal ones by index: `sorted(range(n), key=...)` of the hashes (core/store.py
    `hash_order`, the reference). Sorted without the GIL."""
    if type(hashes) is not bytes:
        raise TypeError(f"hashes must be bytes, not {type(hashes).__name__}")
    cdef Py_ssize_t size = PyBytes_GET_SIZE(hashes)
    if size % H:
        raise ValueError(f"hashes are {size} bytes, not a multiple of {H}")
    cdef Py_ssize_t count = size // H, i
    cdef int j
    cdef const uint8_t *data = <const uint8_t *>PyBytes_AS_STRING(hashes)
    cdef HashAt *items = <HashAt *>malloc(max(count, 1) * sizeof(HashAt))
    cdef HashAt **sorted_items = <HashAt **>malloc(max(count, 1) * sizeof(HashAt *))
    if items == NULL or sorted_items == NULL:
        free(items)
        free(sorted_items)
        raise MemoryError()
    try:
        with nogil:
            for i in range(count):
                items[i].hash = data + i * H
                items[i].index = i
                items[i].head = 0
                for j in range(8):
                    items[i].head = (items[i].head << 8) | data[i * H + j]
                sorted_items[i] = &items[i]
            qsort(sorted_items, count, sizeof(HashAt *), _hash_at_order)
        return [sorted_items[i].index for i in range(count)]
    finally:
        free(items)
        free(sorted_items)


cdef struct Vec:
    char *data
    Py_ssize_t count     # records
    Py_ssize_t capacity  # records
    Py_ssize_t size      # bytes per record


cdef int vec_init(Vec *vec, Py_ssize_t size) except -1:
    vec.data = NULL
    vec.count = 0
    vec.capacity = 0
    vec.size = size
    return 0


cdef char *vec_push(Vec *vec) except NULL nogil:
    """Room for one more record at the end (uninitialised); its address."""
    cdef Py_ssize_t capacity
    cdef char *grown
    if vec.count == vec.capacity:
        capacity = vec.capacity * 2 if vec.capacity else 64
        grown = <char *>realloc(vec.data, capacity * vec.size)
        if grown == NULL:
            with gil:
                raise MemoryError()
        vec.data = grown
        vec.capacity = capacity
    vec.count += 1
    return vec.data + (vec.count - 1) * vec.size


cdef inline char *vec_at(Vec *vec, Py_ssize_t index) noexcept nogil:
    return vec.data + index * vec.size


cdef void vec_free(Vec *vec) noexcept nogil:
    free(vec.data)
    vec.data = NULL
    vec.count = vec.capacity = 0


# --- 32-byte hashes mapped to record indexes; with value 0, a set (open addressing)


cdef inline Py_ssize_t _slot(const uint8_t *key) noexcept nogil:
    cdef uint64_t word = 0
    cdef int i
    for i in range(8):
        word = (word << 8) | key[i + 8]
    for i in range(8):
        word ^= <uint64_t>key[i] << (8 * i)
    return <Py_ssize_t>((word * <uint64_t>0x9E3779B97F4A7C15) >> 17)


cdef struct HashIndex:   # 32-byte hash -> record index (open addressing, no deletes)
    uint8_t *keys
    Py_ssize_t *values    # -1: free
    Py_ssize_t mask


cdef int index_init(HashIndex *hi, Py_ssize_t items) except -1:
    cdef Py_ssize_t capacity = 16, i
    while capacity < 2 * items + 2:
        capacity *= 2
    hi.keys = <uint8_t *>malloc(capacity * H)
    hi.values = <Py_ssize_t *>malloc(capacity * sizeof(Py_ssize_t))
    if hi.keys == NULL or hi.values == NULL:
        free(hi.keys)
        free(hi.values)
        hi.keys = NULL
        hi.values = NULL
        raise MemoryError()
    for i in range(capacity):
        hi.values[i] = -1
    hi.mask = capacity - 1
    return 0


cdef void index_free(HashIndex *hi) noexcept:
    free(hi.keys)
    free(hi.values)
    hi.keys = NULL
    hi.values = NULL
    hi.mask = 0


cdef bint index_put(HashIndex *hi, const uint8_t *key, Py_ssize_t value) noexcept nogil:
    """Map `key` to `value` unless it is mapped already (the first one stays); whether it
    was new. The caller sized the index for every put."""
    cdef Py_ssize_t at = _slot(key) & hi.mask
    while hi.values[at] >= 0:
        if memcmp(hi.keys + at * H, key, H) == 0:
            return False
        at = (at + 1) & hi.mask
    hi.values[at] = value
    memcpy(hi.keys + at * H, key, H)
    return True


cdef Py_ssize_t index_get(const HashIndex *hi, const uint8_t *key) noexcept nogil:
    """The value mapped to `key`, -1 if none (or the index is empty)."""
    if hi.keys == NULL:
        return -1
    cdef Py_ssize_t at = _slot(key) & hi.mask
    while hi.values[at] >= 0:
        if memcmp(hi.keys + at * H, key, H) == 0:
            return hi.values[at]
        at = (at + 1) & hi.mask
    return -1


# --- paths ---------------------------------------------------------------------------

cdef inline int bit(const uint8_t *path, int depth) noexcept nogil:
    """Bit `depth` of a path (0 = most significant)."""
    return (path[depth >> 3] >> (7 - (depth & 7))) & 1


cdef inline bint same_prefix(const uint8_t *a, const uint8_t *b, int depth) noexcept nogil:
    """Whether two paths share their first `depth` bits."""
    cdef int whole = depth >> 3
    cdef int rest = depth & 7
    if memcmp(a, b, whole) != 0:
        return False
    if rest == 0:
        return True
    return ((a[whole] ^ b[whole]) >> (8 - rest)) == 0


cdef inline int first_difference(const uint8_t *a, const uint8_t *b) noexcept nogil:
    """The first bit where two different paths differ."""
    cdef int i = 0
    cdef uint8_t x
    while a[i] == b[i]:
        i += 1
    x = a[i] ^ b[i]
    cdef int depth = 8 * i
    while not (x & 0x80):
        x <<= 1
        depth += 1
    return depth


cdef inline bint is_zero(const uint8_t *data) noexcept nogil:
    return memcmp(data, _zero, H) == 0


cdef str hex_of(const uint8_t *node_hash):
    """A hash as hex, for the error messages."""
    return PyBytes_FromStringAndSize(<const char *>node_hash, H).hex()


# --- the update -------------------------------------------------------------------------

cdef struct Change:
    uint8_t path[H]
    uint8_t value[H]
    int has_value


cdef struct Entry:   # an entry to build a subtree from: always set
    uint8_t path[H]
    uint8_t value[H]


cdef struct Ref:     # a subtree: a new node's index (>= 0), or -1 and a known hash
    int64_t index
    uint8_t hash[H]


cdef struct Stored:  # the leaf that held a subtree being rebuilt
    uint8_t hash[H]
    uint8_t path[H]
    uint8_t value[H]


cdef struct Fetched:  # a node the prefetch got: well formed (kind 1, 2) or odd (kind 0)
    uint8_t hash[H]
    uint8_t fields[BODY]
    int kind
    Py_ssize_t odd      # kind 0: its index in `_odd` (what the reader returned)


cdef struct Wanted:   # a node the prefetch asks for, and the changes below it
    uint8_t hash[H]
    Py_ssize_t lo
    Py_ssize_t hi       # lo == hi: fetched for `_join` only, nothing below it
    uint8_t sibling[H]  # its sibling, if a delete may leave this side Empty
    int has_sibling


cdef inline void ref_hash(Ref *ref, const uint8_t *node_hash) noexcept nogil:
    ref.index = -1
    memcpy(ref.hash, node_hash, H)


cdef inline void ref_new(Ref *ref, int64_t index) noexcept nogil:
    ref.index = index
    memset(ref.hash, 0, H)


cdef inline bint ref_is(const Ref *ref, const uint8_t *node_hash) noexcept nogil:
    return ref.index < 0 and memcmp(ref.hash, node_hash, H) == 0


cdef inline bint ref_empty(const Ref *ref) noexcept nogil:
    return ref.index < 0 and is_zero(ref.hash)


cdef class Apply:
    """One batch update: sorted changes in, new root and new nodes out (see `_Apply`).

    `changes` is `_sorted_changes`' list of (path as int, path, value hash or
    None); `result_class` builds the result (TreeUpdate), `corrupt` makes a
    store fault's error from its message and `parse_node` names what is
    wrong with a malformed node (by raising).
    """

    cdef object _get_node
    cdef object _get_nodes
    cdef object _result_class
    cdef object _corrupt
    cdef object _parse_node
    cdef Change *_changes
    cdef Py_ssize_t _count
    cdef Py_ssize_t *_sets   # _sets[i]: the changes before i that set a value
    # New node i: first/second references (a leaf's path and value hash as
    # known hashes), depth (-1 for a leaf), in the order made: post order.
    cdef Vec _first
    cdef Vec _second
    cdef Vec _depth
    # The nodes read, by kind: hashes and fields in read order.
    cdef Vec _leaf_hashes
    cdef Vec _leaf_fields
    cdef Vec _internal_hashes
    cdef Vec _internal_fields
    # What the prefetch got, and where: hash -> record.
    cdef Vec _fetched
    cdef HashIndex _fetched_at
    cdef list _odd           # what the reader returned for the odd ones
    cdef bint _prefetch_done
    cdef readonly Py_ssize_t nodes_read

    def __cinit__(self):
        self._changes = NULL
        self._sets = NULL
        vec_init(&self._first, sizeof(Ref))
        vec_init(&self._second, sizeof(Ref))
        vec_init(&self._depth, sizeof(int))
        vec_init(&self._leaf_hashes, H)
        vec_init(&self._leaf_fields, BODY)
        vec_init(&self._internal_hashes, H)
        vec_init(&self._internal_fields, BODY)
        vec_init(&self._fetched, sizeof(Fetched))
        self._fetched_at.keys = NULL
        self._fetched_at.values = NULL
        self._fetched_at.mask = 0

    def __dealloc__(self):
        free(self._changes)
        free(self._sets)
        vec_free(&self._first)
        vec_free(&self._second)
        vec_free(&self._depth)
        vec_free(&self._leaf_hashes)
        vec_free(&self._leaf_fields)
        vec_free(&self._internal_hashes)
        vec_free(&self._internal_fields)
        vec_free(&self._fetched)
        index_free(&self._fetched_at)

    def __init__(self, reader, list changes, result_class, corrupt, parse_node):
        cdef Py_ssize_t i
        cdef Change *change
        cdef object path, value
        self._get_node = reader.get_node
        self._get_nodes = getattr(reader, "get_nodes", None)
        self._result_class = result_class
        self._corrupt = corrupt
        self._parse_node = parse_node
        self._odd = []
        self._prefetch_done = False
        self.nodes_read = 0
        self._count = len(changes)
        self._changes = <Change *>malloc(max(self._count, 1) * sizeof(Change))
        if self._changes == NULL:
            raise MemoryError()
        for i in range(self._count):
            _, path, value = changes[i]
            if type(path) is not bytes or PyBytes_GET_SIZE(path) != H:
                raise ValueError(f"change {i}: the path must be {H} bytes")
            change = &self._changes[i]
            memcpy(change.path, PyBytes_AS_STRING(path), H)
            if value is None:
                change.has_value = 0
                memset(change.value, 0, H)
            else:
                if type(value) is not bytes or PyBytes_GET_SIZE(value) != H:
                    raise ValueError(f"change {i}: the value hash must be {H} bytes or None")
                change.has_value = 1
                memcpy(change.value, PyBytes_AS_STRING(value), H)
        for i in range(1, self._count):
            if memcmp(self._changes[i - 1].path, self._changes[i].path, H) >= 0:
                raise ValueError("changes must be sorted by path, each path once")
        self._sets = <Py_ssize_t *>malloc((self._count + 1) * sizeof(Py_ssize_t))
        if self._sets == NULL:
            raise MemoryError()
        self._sets[0] = 0
        for i in range(self._count):
            self._sets[i + 1] = self._sets[i] + self._changes[i].has_value

    # --- reads ----------------------------------------------------------------------

    cdef int prefetch(self, const uint8_t *root) except -1:
        """Fetch the nodes on the touched paths, a level per `get_nodes` call.

        Only fills `_fetched`: a node missing or malformed here is kept as
        the reader gave it, for the walk to find (and report) where the
        reference would. Besides the nodes on the touched paths, it fetches
        the untouched sibling `_join` reads when a side may end Empty (its
        changes are all deletes and hit a leaf, or at least two of them an
        internal node), so the walk needs no read of its own.
        """
        cdef Vec level, following
        cdef Wanted *wanted
        cdef Wanted *child
        cdef Fetched *got
        cdef list hashes, found
        cdef object data
        cdef const uint8_t *raw
        cdef Py_ssize_t i, count, split, lo, hi
        cdef bint deletes_only
        cdef int depth = 0
        self._prefetch_done = True
        if self._get_nodes is None or is_zero(root):
            return 0
        vec_init(&level, sizeof(Wanted))
        vec_init(&following, sizeof(Wanted))
        try:
            wanted = <Wanted *>vec_push(&level)
            memcpy(wanted.hash, root, H)
            wanted.lo, wanted.hi = 0, self._count
            wanted.has_sibling = 0
            while level.count and depth < C_BITS:
                count = level.count
                hashes = [PyBytes_FromStringAndSize(vec_at(&level, i), H) for i in range(count)]
                found = self._get_nodes(hashes)
                if type(found) is not list or len(found) != count:
                    raise TypeError("get_nodes must return a list, one entry per hash")
                following.count = 0
                for i in range(count):
                    wanted = <Wanted *>vec_at(&level, i)
                    data = found[i]
                    if type(data) is not bytes and isinstance(data, (bytearray, memoryview)):
                        data = bytes(data)
                    got = <Fetched *>vec_push(&self._fetched)
                    memcpy(got.hash, wanted.hash, H)
                    got.kind = 0
                    if type(data) is bytes and PyBytes_GET_SIZE(data) == C_NODE_BYTES:
                        raw = <const uint8_t *>PyBytes_AS_STRING(data)
                        if raw[0] == C_VERSION and (raw[1] == C_LEAF or (
                                raw[1] == C_INTERNAL and memcmp(raw + 2, _zero, BODY) != 0)):
                            got.kind = raw[1]
                            memcpy(got.fields, raw + 2, BODY)
                    if got.kind == 0:
                        got.odd = len(self._odd)
                        self._odd.append(data)
                        continue
                    if wanted.has_sibling and (got.kind == C_LEAF or wanted.hi - wanted.lo >= 2):
                        child = <Wanted *>vec_push(&following)
                        memcpy(child.hash, wanted.sibling, H)
                        child.lo = child.hi = 0
                        child.has_sibling = 0
                    if got.kind != C_INTERNAL or wanted.lo >= wanted.hi:
                        continue
                    lo, hi = wanted.lo, wanted.hi
                    deletes_only = self._sets[hi] == self._sets[lo]
                    split = self.split(depth, lo, hi)
                    if lo < split and not is_zero(got.fields):
                        child = <Wanted *>vec_push(&following)
                        memcpy(child.hash, got.fields, H)
                        child.lo, child.hi = lo, split
                        child.has_sibling = (deletes_only and split == hi
                                             and not is_zero(got.fields + H))
                        memcpy(child.sibling, got.fields + H, H)
                    if split < hi and not is_zero(got.fields + H):
                        child = <Wanted *>vec_push(&following)
                        memcpy(child.hash, got.fields + H, H)
                        child.lo, child.hi = split, hi
                        child.has_sibling = (deletes_only and split == lo
                                             and not is_zero(got.fields))
                        memcpy(child.sibling, got.fields, H)
                level, following = following, level
                depth += 1
            index_init(&self._fetched_at, self._fetched.count)
            for i in range(self._fetched.count):
                index_put(&self._fetched_at, (<Fetched *>vec_at(&self._fetched, i)).hash, i)
        finally:
            vec_free(&level)
            vec_free(&following)
        return 0

    cdef Py_ssize_t read(self, const uint8_t *node_hash, int *kind) except -1 nogil:
        """Read a stored node: its index among the reads of its kind (see `_Apply._read`).

        From the prefetched records when there (no GIL), else through the reader.
        """
        cdef Py_ssize_t at = index_get(&self._fetched_at, node_hash)
        cdef Fetched *got
        self.nodes_read += 1
        if at >= 0:
            got = <Fetched *>vec_at(&self._fetched, at)
            if got.kind == C_LEAF:
                memcpy(vec_push(&self._leaf_hashes), node_hash, H)
                memcpy(vec_push(&self._leaf_fields), got.fields, BODY)
                kind[0] = C_LEAF
                return self._leaf_hashes.count - 1
            if got.kind == C_INTERNAL:
                memcpy(vec_push(&self._internal_hashes), node_hash, H)
                memcpy(vec_push(&self._internal_fields), got.fields, BODY)
                kind[0] = C_INTERNAL
                return self._internal_hashes.count - 1
        with gil:
            return self.read_slow(node_hash, at, kind)

    cdef Py_ssize_t read_slow(self, const uint8_t *node_hash, Py_ssize_t at,
                              int *kind) except -1:
        """`read` of a node not prefetched (at < 0) or prefetched as something odd."""
        key = PyBytes_FromStringAndSize(<char *>node_hash, H)
        if at >= 0:
            return self.accept(key, self._odd[(<Fetched *>vec_at(&self._fetched, at)).odd], kind)
        return self.accept(key, self._get_node(key), kind)

    cdef Py_ssize_t accept(self, object key, object data, int *kind) except -1:
        cdef const uint8_t *raw
        cdef int node_kind = 0
        if type(data) is not bytes and isinstance(data, (bytearray, memoryview)):
            data = bytes(data)
        if type(data) is bytes and PyBytes_GET_SIZE(data) == C_NODE_BYTES:
            raw = <const uint8_t *>PyBytes_AS_STRING(data)
            if raw[0] == C_VERSION:
                node_kind = raw[1]
        if node_kind == C_LEAF:
            memcpy(vec_push(&self._leaf_hashes), PyBytes_AS_STRING(key), H)
            memcpy(vec_push(&self._leaf_fields), raw + 2, BODY)
            kind[0] = C_LEAF
            return self._leaf_hashes.count - 1
        if node_kind == C_INTERNAL and memcmp(raw + 2, _zero, BODY) != 0:
            memcpy(vec_push(&self._internal_hashes), PyBytes_AS_STRING(key), H)
            memcpy(vec_push(&self._internal_fields), raw + 2, BODY)
            kind[0] = C_INTERNAL
            return self._internal_hashes.count - 1
        # The slow path finds what is wrong, in the reference's words.
        if data is None:
            raise self._corrupt(f"node {key.hex()} is missing from the store")
        try:
            self._parse_node(data)
        except Exception as exc:
            raise self._corrupt(f"node {key.hex()} is malformed: {exc}") from exc
        raise AssertionError("_parse_node accepted a node the fast path refused")

    def check_reads(self) -> None:
        """The reference's StorageError unless every node read hashes to its key."""
        cdef Vec *hashes
        cdef Vec *fields
        cdef uint8_t *computed
        cdef const uint8_t *key
        cdef Py_ssize_t i, count, bad
        cdef int kind
        for kind in range(C_LEAF, C_INTERNAL + 1):
            if kind == C_LEAF:
                hashes, fields, key = &self._leaf_hashes, &self._leaf_fields, _leaf_key
            else:
                hashes, fields, key = &self._internal_hashes, &self._internal_fields, _node_key
            count = hashes.count
            if count == 0:
                continue
            computed = <uint8_t *>malloc(count * H)
            if computed == NULL:
                raise MemoryError()
            bad = -1
            with nogil:
                cm_blake3_hash_many_fixed(<uint8_t *>fields.data, BODY, count, key, computed)
                for i in range(count):
                    if memcmp(computed + i * H, vec_at(hashes, i), H) != 0:
                        bad = i
                        break
            free(computed)
            if bad >= 0:
                packed = PyBytes_FromStringAndSize(vec_at(hashes, bad), H)
                raise self._corrupt(f"node stored under {packed.hex()} does not hash to it")

    # --- new nodes ------------------------------------------------------------------

    cdef int64_t leaf(self, const uint8_t *path, const uint8_t *value) except -1 nogil:
        cdef int64_t index = self._first.count
        ref_hash(<Ref *>vec_push(&self._first), path)
        ref_hash(<Ref *>vec_push(&self._second), value)
        (<int *>vec_push(&self._depth))[0] = -1
        return index

    cdef int64_t internal(self, const Ref *left, const Ref *right, int depth) except -1 nogil:
        cdef int64_t index = self._first.count
        assert not (ref_empty(left) and ref_empty(right))
        memcpy(vec_push(&self._first), left, sizeof(Ref))
        memcpy(vec_push(&self._second), right, sizeof(Ref))
        (<int *>vec_push(&self._depth))[0] = depth
        return index

    # --- the walk (the reference's methods, one for one) ----------------------------

    cdef Py_ssize_t split(self, int depth, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
        """First index in [lo, hi) whose path has bit `depth` set (hi if none)."""
        cdef Py_ssize_t middle
        while lo < hi:
            middle = (lo + hi) >> 1
            if bit(self._changes[middle].path, depth):
                hi = middle
            else:
                lo = middle + 1
        return lo

    def update(self, bytes node_hash, int depth, Py_ssize_t lo, Py_ssize_t hi):
        """Apply changes[lo:hi] to the stored subtree `node_hash` at `depth`: (ref, kind).

        The ref is a new node's index (int) or a known hash (bytes). The first
        call fetches the touched paths in batches from `node_hash` down.
        """
        cdef Ref out
        cdef int kind
        if PyBytes_GET_SIZE(node_hash) != H:
            raise ValueError(f"node_hash must be {H} bytes")
        if not (0 <= lo < hi <= self._count) or not (0 <= depth <= C_BITS):
            raise ValueError("update: lo, hi or depth out of range")
        cdef const uint8_t *start = <const uint8_t *>PyBytes_AS_STRING(node_hash)
        if not self._prefetch_done and depth == 0:
            self.prefetch(start)
        if self._fetched_at.keys == NULL:
            # No prefetch (a reader without get_nodes): every read needs the GIL.
            self._update(start, depth, lo, hi, &out, &kind)
        else:
            with nogil:  # the walk and the tree's shape, over the prefetched nodes
                self._update(start, depth, lo, hi, &out, &kind)
        return self._ref_object(&out), kind

    cdef object _ref_object(self, const Ref *ref):
        if ref.index >= 0:
            return ref.index
        return PyBytes_FromStringAndSize(<char *>ref.hash, H)

    cdef int _update(self, const uint8_t *hash_in, int depth, Py_ssize_t lo, Py_ssize_t hi,
                     Ref *out, int *out_kind) except -1 nogil:
        cdef uint8_t node_hash[H]
        cdef uint8_t fields[BODY]
        cdef Ref left, right
        cdef int left_kind, right_kind, kind
        cdef Py_ssize_t at, split
        memcpy(node_hash, hash_in, H)
        if hi - lo == 1:
            return self._update_one(node_hash, depth, lo, out, out_kind)
        if is_zero(node_hash):
            return self._build_changes(depth, lo, hi, out, out_kind)
        at = self.read(node_hash, &kind)
        if kind == C_LEAF:
            return self._update_leaf(at, depth, lo, hi, out, out_kind)
        memcpy(fields, vec_at(&self._internal_fields, at), BODY)
        if depth >= C_BITS:
            with gil:
                raise self._corrupt(f"internal node {hex_of(node_hash)} below depth {C_BITS}")
        split = self.split(depth, lo, hi)
        ref_hash(&left, fields)
        ref_hash(&right, fields + H)
        left_kind = right_kind = C_UNKNOWN
        if lo < split:
            self._update(fields, depth + 1, lo, split, &left, &left_kind)
        if split < hi:
            self._update(fields + H, depth + 1, split, hi, &right, &right_kind)
        return self._join(node_hash, depth, fields, &left, left_kind, &right, right_kind,
                          out, out_kind)

    cdef int _update_one(self, const uint8_t *hash_in, int depth, Py_ssize_t index,
                         Ref *out, int *out_kind) except -1 nogil:
        """`_update` for the one change changes[index]: down its path, then back up."""
        cdef uint8_t node_hash[H]
        cdef uint8_t fields[BODY]
        cdef uint8_t above_hash[H]
        cdef Py_ssize_t above[C_BITS + 1]  # internal reads passed, by index
        cdef int count = 0
        cdef int kind, on_right
        cdef Py_ssize_t at
        cdef Ref node, sibling
        cdef int node_kind
        cdef bint reached = False
        cdef Change *change = &self._changes[index]
        memcpy(node_hash, hash_in, H)
        while not is_zero(node_hash):
            at = self.read(node_hash, &kind)
            if kind == C_LEAF:
                self._update_leaf(at, depth, index, index + 1, &node, &node_kind)
                reached = True
                break
            if depth >= C_BITS:
                with gil:
                    raise self._corrupt(
                        f"internal node {hex_of(node_hash)} below depth {C_BITS}")
            above[count] = at
            count += 1
            memcpy(node_hash, vec_at(&self._internal_fields, at) + H * bit(change.path, depth),
                   H)
            depth += 1
        if not reached:
            if change.has_value:
                ref_new(&node, self.leaf(change.path, change.value))
                node_kind = C_LEAF
            else:
                ref_hash(&node, _zero)
                node_kind = C_EMPTY
        while count > 0:
            count -= 1
            depth -= 1
            memcpy(fields, vec_at(&self._internal_fields, above[count]), BODY)
            on_right = bit(change.path, depth)
            if on_right:
                ref_hash(&sibling, fields)
            else:
                ref_hash(&sibling, fields + H)
            if node.index >= 0 and not ref_empty(&sibling):
                # The common case: a new child beside a stored sibling.
                if on_right:
                    ref_new(&node, self.internal(&sibling, &node, depth))
                else:
                    ref_new(&node, self.internal(&node, &sibling, depth))
                node_kind = C_INTERNAL
                continue
            memcpy(above_hash, vec_at(&self._internal_hashes, above[count]), H)
            if on_right:
                self._join(above_hash, depth, fields, &sibling, C_UNKNOWN, &node, node_kind,
                           &node, &node_kind)
            else:
                self._join(above_hash, depth, fields, &node, node_kind, &sibling, C_UNKNOWN,
                           &node, &node_kind)
        memcpy(out, &node, sizeof(Ref))
        out_kind[0] = node_kind
        return 0

    cdef int _join(self, const uint8_t *node_hash, int depth, const uint8_t *old_fields,
                   const Ref *left_in, int left_kind, const Ref *right_in, int right_kind,
                   Ref *out, int *out_kind) except -1 nogil:
        """The subtree that replaces internal node `node_hash` (at `depth`) given new children."""
        cdef Ref left, right
        cdef Ref *other
        cdef int other_kind
        cdef Py_ssize_t ignored
        memcpy(&left, left_in, sizeof(Ref))  # `out` may be either input
        memcpy(&right, right_in, sizeof(Ref))
        if ref_is(&left, old_fields) and ref_is(&right, old_fields + H):
            ref_hash(out, node_hash)
            out_kind[0] = C_INTERNAL
            return 0
        if ref_empty(&left) and ref_empty(&right):
            ref_hash(out, _zero)
            out_kind[0] = C_EMPTY
            return 0
        if ref_empty(&left) or ref_empty(&right):
            # One side left: a lone leaf moves up; an internal node stays.
            if ref_empty(&left):
                other, other_kind = &right, right_kind
            else:
                other, other_kind = &left, left_kind
            if other_kind == C_UNKNOWN:
                assert other.index < 0
                ignored = self.read(other.hash, &other_kind)
            if other_kind == C_LEAF:
                memcpy(out, other, sizeof(Ref))
                out_kind[0] = C_LEAF
                return 0
        ref_new(out, self.internal(&left, &right, depth))
        out_kind[0] = C_INTERNAL
        return 0

    cdef int _update_leaf(self, Py_ssize_t at, int depth, Py_ssize_t lo, Py_ssize_t hi,
                          Ref *out, int *out_kind) except -1 nogil:
        """Merge changes[lo:hi] with the stored leaf read as leaf read `at`, then rebuild."""
        cdef Stored stored
        cdef Entry *entries
        cdef Py_ssize_t count = 0, i, first, last, middle
        cdef bint replaced
        memcpy(stored.hash, vec_at(&self._leaf_hashes, at), H)
        memcpy(stored.path, vec_at(&self._leaf_fields, at), H)
        memcpy(stored.value, vec_at(&self._leaf_fields, at) + H, H)
        if not same_prefix(stored.path, self._changes[lo].path, depth):
            with gil:
                raise self._corrupt(f"leaf {hex_of(stored.hash)} is off its path at depth "
                                    f"{depth}")
        first, last = lo, hi  # bisect_left for the stored path
        while first < last:
            middle = (first + last) >> 1
            if memcmp(self._changes[middle].path, stored.path, H) < 0:
                first = middle + 1
            else:
                last = middle
        replaced = first < hi and memcmp(self._changes[first].path, stored.path, H) == 0
        entries = <Entry *>malloc((hi - lo + 1) * sizeof(Entry))
        if entries == NULL:
            with gil:
                raise MemoryError()
        try:
            for i in range(lo, hi):
                if i == first and not replaced:
                    memcpy(entries[count].path, stored.path, H)
                    memcpy(entries[count].value, stored.value, H)
                    count += 1
                if self._changes[i].has_value:
                    memcpy(entries[count].path, self._changes[i].path, H)
                    memcpy(entries[count].value, self._changes[i].value, H)
                    count += 1
            if first == hi and not replaced:
                memcpy(entries[count].path, stored.path, H)
                memcpy(entries[count].value, stored.value, H)
                count += 1
            self._build(entries, depth, 0, count, &stored, out, out_kind)
        finally:
            free(entries)
        return 0

    cdef int _build_changes(self, int depth, Py_ssize_t lo, Py_ssize_t hi,
                            Ref *out, int *out_kind) except -1 nogil:
        """`_build` over the set changes of changes[lo:hi] (an Empty subtree)."""
        cdef Entry *entries = <Entry *>malloc((hi - lo) * sizeof(Entry))
        cdef Py_ssize_t count = 0, i
        if entries == NULL:
            with gil:
                raise MemoryError()
        try:
            for i in range(lo, hi):
                if self._changes[i].has_value:
                    memcpy(entries[count].path, self._changes[i].path, H)
                    memcpy(entries[count].value, self._changes[i].value, H)
                    count += 1
            self._build(entries, depth, 0, count, NULL, out, out_kind)
        finally:
            free(entries)
        return 0

    cdef int _build(self, const Entry *entries, int depth, Py_ssize_t lo, Py_ssize_t hi,
                    const Stored *stored, Ref *out, int *out_kind) except -1 nogil:
        """The canonical subtree at `depth` holding entries[lo:hi] (sorted, all set)."""
        cdef int split_depth, chain_depth
        cdef Py_ssize_t first, last, middle
        cdef Ref left, right, empty, node
        cdef int ignored
        if lo == hi:
            ref_hash(out, _zero)
            out_kind[0] = C_EMPTY
            return 0
        if hi - lo == 1:
            if (stored != NULL and memcmp(entries[lo].path, stored.path, H) == 0
                    and memcmp(entries[lo].value, stored.value, H) == 0):
                ref_hash(out, stored.hash)
            else:
                ref_new(out, self.leaf(entries[lo].path, entries[lo].value))
            out_kind[0] = C_LEAF
            return 0
        split_depth = first_difference(entries[lo].path, entries[hi - 1].path)
        assert depth <= split_depth < C_BITS
        first, last = lo, hi
        while first < last:
            middle = (first + last) >> 1
            if bit(entries[middle].path, split_depth):
                last = middle
            else:
                first = middle + 1
        assert lo < first < hi
        self._build(entries, split_depth + 1, lo, first, stored, &left, &ignored)
        self._build(entries, split_depth + 1, first, hi, stored, &right, &ignored)
        ref_new(&node, self.internal(&left, &right, split_depth))
        ref_hash(&empty, _zero)
        for chain_depth in range(split_depth - 1, depth - 1, -1):
            if bit(entries[lo].path, chain_depth):
                ref_new(&node, self.internal(&empty, &node, chain_depth))
            else:
                ref_new(&node, self.internal(&node, &empty, chain_depth))
        memcpy(out, &node, sizeof(Ref))
        out_kind[0] = C_INTERNAL
        return 0

    # --- the result -------------------------------------------------------------------

    def finish(self, root):
        """Check the reads, hash the new nodes level by level, and return the update."""
        cdef Py_ssize_t count = self._first.count
        cdef Py_ssize_t i, j, reads
        cdef uint8_t *hashes = NULL
        cdef uint8_t *bodies = NULL
        cdef uint8_t *scratch = NULL
        cdef Py_ssize_t *order = NULL
        cdef Py_ssize_t starts[C_BITS + 2]
        cdef int depth, group
        cdef Ref *ref
        cdef uint8_t encoding[C_NODE_BYTES]
        cdef HashIndex kept, made, seen
        cdef const uint8_t *fields
        cdef bytes root_hash
        cdef Vec *table
        self.check_reads()
        kept.keys = made.keys = seen.keys = NULL
        kept.values = made.values = seen.values = NULL
        try:
            hashes = <uint8_t *>malloc(max(count, 1) * H)
            bodies = <uint8_t *>malloc(max(count, 1) * BODY)
            scratch = <uint8_t *>malloc(max(count, 1) * (BODY + H))
            order = <Py_ssize_t *>malloc(max(count, 1) * sizeof(Py_ssize_t))
            if hashes == NULL or bodies == NULL or scratch == NULL or order == NULL:
                raise MemoryError()
            with nogil:
                self._hash_new(count, hashes, bodies, scratch, order, starts)
            new_nodes = {}
            for i in range(count):
                depth = (<int *>vec_at(&self._depth, i))[0]
                encoding[0] = C_VERSION
                encoding[1] = C_LEAF if depth < 0 else C_INTERNAL
                memcpy(encoding + 2, bodies + i * BODY, BODY)
                PyDict_SetItem(new_nodes,
                               PyBytes_FromStringAndSize(<char *>hashes + i * H, H),
                               PyBytes_FromStringAndSize(<char *>encoding, C_NODE_BYTES))
            if type(root) is bytes:
                root_hash = root
            else:
                i = root
                if not 0 <= i < count:
                    raise ValueError(f"root {i} is not a new node")
                root_hash = PyBytes_FromStringAndSize(<char *>hashes + i * H, H)
            assert len(root_hash) == H
            assert root_hash == EMPTY_ROOT or new_nodes or self.nodes_read > 0
            # The stale nodes (see `_Apply._stale`).
            reads = self._leaf_hashes.count + self._internal_hashes.count
            index_init(&kept, 1 + 2 * count + 2 * self._internal_hashes.count)
            index_init(&made, count)
            index_init(&seen, reads)
            stale = []
            index_put(&kept, <const uint8_t *>PyBytes_AS_STRING(root_hash), 0)
            with nogil:
                for i in range(count):
                    index_put(&made, hashes + i * H, 0)
                    if (<int *>vec_at(&self._depth, i))[0] < 0:
                        continue
                    ref = <Ref *>vec_at(&self._first, i)
                    if ref.index < 0:
                        index_put(&kept, ref.hash, 0)
                    ref = <Ref *>vec_at(&self._second, i)
                    if ref.index < 0:
                        index_put(&kept, ref.hash, 0)
                for i in range(self._internal_hashes.count):
                    if index_get(&kept, <const uint8_t *>vec_at(&self._internal_hashes, i)) >= 0:
                        fields = <const uint8_t *>vec_at(&self._internal_fields, i)
                        index_put(&kept, fields, 0)
                        index_put(&kept, fields + H, 0)
            for group in range(2):
                table = &self._leaf_hashes if group == 0 else &self._internal_hashes
                for i in range(table.count):
                    fields = <const uint8_t *>vec_at(table, i)
                    if index_get(&kept, fields) >= 0 or index_get(&made, fields) >= 0:
                        continue
                    if index_put(&seen, fields, 0):
                        stale.append(PyBytes_FromStringAndSize(<char *>fields, H))
            return self._result_class(root_hash, new_nodes, self.nodes_read, tuple(stale))
        finally:
            free(hashes)
            free(bodies)
            free(scratch)
            free(order)
            index_free(&kept)
            index_free(&made)
            index_free(&seen)

    cdef void _hash_new(self, Py_ssize_t count, uint8_t *hashes, uint8_t *bodies,
                        uint8_t *scratch, Py_ssize_t *order, Py_ssize_t *starts) noexcept nogil:
        """Hash the new nodes: the leaves, then each level of internal nodes from the deepest.

        Fills `bodies` (each node's two fields) and `hashes`. `order` lists
        the nodes by group (leaves, then depth 255 down to 0), each group in
        the order made; group g is order[starts[g]:starts[g + 1]].
        """
        cdef Py_ssize_t i, j, at, n
        cdef int depth, group
        cdef const Ref *ref
        cdef const uint8_t *key
        # Counting sort by group: 0 for leaves, 1 + (255 - depth) for internal nodes.
        for group in range(C_BITS + 2):
            starts[group] = 0
        for i in range(count):
            depth = (<int *>vec_at(&self._depth, i))[0]
            starts[(0 if depth < 0 else 1 + (C_BITS - 1 - depth)) + 1] += 1
        for group in range(C_BITS + 1):
            starts[group + 1] += starts[group]
        # starts[g] is now the start of group g; fill with a moving cursor per group.
        for i in range(count):
            depth = (<int *>vec_at(&self._depth, i))[0]
            group = 0 if depth < 0 else 1 + (C_BITS - 1 - depth)
            order[starts[group]] = i
            starts[group] += 1
        # Each cursor ended at the next group's start: shift back.
        for group in range(C_BITS, 0, -1):
            starts[group] = starts[group - 1]
        starts[0] = 0
        for group in range(C_BITS + 1):
            n = starts[group + 1] - starts[group]
            if n == 0:
                continue
            for j in range(n):
                i = order[starts[group] + j]
                ref = <const Ref *>vec_at(&self._first, i)
                if ref.index >= 0:
                    memcpy(scratch + j * BODY, hashes + ref.index * H, H)
                else:
                    memcpy(scratch + j * BODY, ref.hash, H)
                ref = <const Ref *>vec_at(&self._second, i)
                if ref.index >= 0:
                    memcpy(scratch + j * BODY + H, hashes + ref.index * H, H)
                else:
                    memcpy(scratch + j * BODY + H, ref.hash, H)
            if group == 0:
                key = _leaf_key
            else:
                key = _node_key
            cm_blake3_hash_many_fixed(scratch, BODY, n, key, scratch + n * BODY)
            for j in range(n):
                i = order[starts[group] + j]
                memcpy(bodies + i * BODY, scratch + j * BODY, BODY)
                memcpy(hashes + i * H, scratch + n * BODY + j * H, H)
