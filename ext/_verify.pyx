# cython: language_level=3
"""Stateless batch validation in C: tx parse and checks, BLAKE3 tx ids, Ed25519 over OpenMP.

Kernel of `chainmall.core.verify` and `chainmall.core.ed25519` (same signatures,
same results). Arguments are checked at Python level; then each batch runs in
one GIL release: parse and check every tx, hash every decodable body with the
SIMD BLAKE3 kernel, and verify the signatures that still matter under ZIP 215
(ext/ed25519, ed25519-zebra), grouped by public key (a sender's signatures share
one term of the equation), ED25519_BATCH_ITEMS per batch equation, the
batches spread over cores with `prange`. A batch that fails is re-checked one
signature at a time inside ext/ed25519, so every item gets its own verdict.
Nothing inside the nogil region can raise: a bad tx only yields its code.

This module imports nothing from `chainmall.core`; the protocol numbers it needs
are duplicated below and a test compares them with core/constants.py and
core/errors.py.
"""

import operator
import os

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cython.parallel cimport prange
from libc.stdint cimport int32_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc, qsort
from libc.string cimport memcmp, memcpy, memset

# Absolute `ext.` cimports: Cython resolves them from the project root (the
# build's working directory); `._x` would look for chainmall/ext/_x.pxd.
from ext._blake3 cimport cm_blake3_backend, cm_blake3_backend_name, cm_blake3_hash_many_var
from ext._ed25519 cimport (
    cm_ed25519_backend,
    cm_ed25519_compiled_backends,
    cm_ed25519_verify,
    cm_ed25519_verify_batch,
    cm_ed25519_version,
)
from ext._wire cimport (
    WIRE_DECODE_ERROR,
    WIRE_HASH,
    WIRE_OK,
    WIRE_SIG,
    WIRE_TOO_LARGE,
    wire_be64,
    wire_check,
)


# --- protocol numbers (copies of core/constants.py and core/errors.py) -------
TX_OK = 0
DECODE_ERROR = 101
TX_TOO_LARGE = 102
WRONG_CHAIN = 111
TX_EXPIRED = 112
BAD_SIGNATURE = 113

TX_VERSION = 1
CHAIN_ID_BYTES_MIN = 1
CHAIN_ID_BYTES_MAX = 32
CHAIN_ID_ALPHABET = b"abcdefghijklmnopqrstuvwxyz0123456789-"
TX_PAYLOAD_BYTES_MAX = 896
TX_BODY_FIXED_BYTES = 64
TX_BYTES_MAX = 1088
TX_SIGN_DOMAIN = b"chainmall/tx/sign/v1\x00"
HASH_BYTES = 32
PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
U64_MAX = 2**64 - 1
BATCH_ITEMS_MAX = 1_000_000
VERIFY_THREADS_MAX = 256
ED25519_BATCH_ITEMS = 128

# The same numbers for C code (enum members are compile-time constants).
cdef enum:
    C_TX_OK = 0
    C_WRONG_CHAIN = 111
    C_TX_EXPIRED = 112
    C_BAD_SIGNATURE = 113
    C_PENDING = -1          # passed every check before the signature
    C_SIG = 64
    C_PK = 32
    C_HASH = 32
    C_BATCH = 128           # ED25519_BATCH_ITEMS: signatures per batch equation

assert C_BATCH == ED25519_BATCH_ITEMS
assert WIRE_DECODE_ERROR == DECODE_ERROR and WIRE_TOO_LARGE == TX_TOO_LARGE
assert WIRE_OK == TX_OK and WIRE_SIG == C_SIG and WIRE_HASH == C_HASH

# Pointer for empty buffers (a zero-length view has no element 0 to address).
cdef unsigned char _EMPTY[1]
_EMPTY[0] = 0

_index = operator.index


# --- helpers run with the GIL (argument checks) ------------------------------
cdef inline const unsigned char *_ptr(const unsigned char[::1] view) noexcept:
    if view.shape[0] == 0:
        return _EMPTY
    return &view[0]


cdef const unsigned char[::1] _byte_view(object data, str what):
    """`data` as a 1-D byte view; TypeError for a non-buffer, ValueError for a
    buffer that is not contiguous bytes (the reference's `_as_bytes` rules)."""
    if data is None or isinstance(data, str):
        raise TypeError(f"{what} must be bytes-like, got {type(data).__name__}")
    view = memoryview(data)
    if view.itemsize != 1 or not view.c_contiguous:
        raise ValueError(f"{what} must be a contiguous buffer of bytes")
    return view.cast("B") if view.format != "B" or view.ndim != 1 else view


cdef Py_ssize_t _item_count(object offsets) except -1:
    """n from the n + 1 offsets, checked against BATCH_ITEMS_MAX."""
    cdef Py_ssize_t entries = len(offsets)
    if entries < 1:
        raise ValueError("offsets must hold n + 1 entries, at least one")
    if entries - 1 > BATCH_ITEMS_MAX:
        raise ValueError(f"{entries - 1} items is over BATCH_ITEMS_MAX ({BATCH_ITEMS_MAX})")
    return entries - 1


cdef int _fill_offsets(object offsets, Py_ssize_t n, Py_ssize_t data_len,
                       uint64_t *out) except -1:
    """Copy offsets into `out`, each in [0, data_len] and non-decreasing."""
    cdef Py_ssize_t k
    cdef uint64_t previous = 0
    cdef uint64_t current
    for k in range(n + 1):
        value = _index(offsets[k])
        if value < 0 or value > data_len:
            raise ValueError(f"offsets[{k}] = {value} is outside [0, {data_len}]")
        current = <uint64_t>value
        if current < previous:
            raise ValueError(f"offsets decrease at index {k}")
        out[k] = current
        previous = current
    return 0


cdef int _resolve_threads(object threads) except -1:
    """Thread count to use: `threads`, or os.cpu_count() for 0."""
    if isinstance(threads, bool) or not isinstance(threads, int):
        raise TypeError(f"threads must be an int, got {type(threads).__name__}")
    if threads < 0 or threads > VERIFY_THREADS_MAX:
        raise ValueError(f"threads must be in [0, {VERIFY_THREADS_MAX}], got {threads}")
    if threads == 0:
        return min(os.cpu_count() or 1, VERIFY_THREADS_MAX)
    return threads


cdef bytes _check_chain_id(object chain_id):
    """The expected chain id as bytes; ValueError unless it is a valid chain id."""
    value = bytes(memoryview(chain_id))
    if not CHAIN_ID_BYTES_MIN <= len(value) <= CHAIN_ID_BYTES_MAX:
        raise ValueError(
            f"chain id must be {CHAIN_ID_BYTES_MIN}..{CHAIN_ID_BYTES_MAX} bytes, got {len(value)}"
        )
    if value.translate(None, CHAIN_ID_ALPHABET):
        raise ValueError(f"chain id {value!r} has a byte outside CHAIN_ID_ALPHABET")
    return value


cdef uint64_t _check_height(object height) except? 0:
    if isinstance(height, bool):
        raise TypeError("height must be an int, got bool")
    value = _index(height)
    if value < 0 or value > U64_MAX:
        raise ValueError(f"height {value} is outside [0, 2^64)")
    return <uint64_t>value


cdef void *_alloc(size_t size) except NULL:
    cdef void *block = PyMem_Malloc(size if size else 1)
    if block == NULL:
        raise MemoryError()
    return block


# --- C code (no GIL, never raises) ---------------------------------------------
cdef int _check_tx(const unsigned char *tx, size_t tx_len,
                   const unsigned char *chain_id, size_t chain_id_len,
                   uint64_t height, size_t *body_len) noexcept nogil:
    """Code of one tx up to (not including) the signature check; C_PENDING if all pass.

    Sets body_len to the body length when the tx decodes, else to 0. The wire
    form is ext/_wire.pxd's (offsets as in docs/verification.md, L = chain id
    length).
    """
    cdef size_t L
    cdef int code = wire_check(tx, tx_len, body_len)
    if code != WIRE_OK:
        return code
    L = tx[1]
    if L != chain_id_len or memcmp(tx + 2, chain_id, L) != 0:
        return C_WRONG_CHAIN
    if height > wire_be64(tx + 52 + L):
        return C_TX_EXPIRED
    return C_PENDING


cdef void _verify_chunks_in_order(Py_ssize_t n, int threads, const uint8_t **pks,
                         const uint8_t **msgs, const size_t *msg_lens, const uint8_t **sigs,
                         unsigned char *ok) noexcept nogil:
    """ok[i] for n items given by pointer arrays, C_BATCH consecutive items per batch
    equation, the batches shared out over `threads` threads."""
    cdef Py_ssize_t chunk, start, count
    cdef Py_ssize_t chunks = (n + C_BATCH - 1) // C_BATCH
    if chunks <= 1 or threads <= 1:
        # One batch equation (e.g. a mempool's single tx): no thread team to wake,
        # and none left spinning afterwards (OpenMP's idle threads busy-wait).
        if n > 0:
            cm_ed25519_verify_batch(n if n < C_BATCH else C_BATCH, pks, msgs, msg_lens,
                                    sigs, ok)
        for chunk in range(1, chunks):
            start = chunk * C_BATCH
            count = n - start
            if count > C_BATCH:
                count = C_BATCH
            cm_ed25519_verify_batch(count, pks + start, msgs + start, msg_lens + start,
                                    sigs + start, ok + start)
        return
    for chunk in prange(chunks, num_threads=threads, schedule="dynamic", chunksize=1):
        start = chunk * C_BATCH
        count = n - start
        if count > C_BATCH:
            count = C_BATCH
        cm_ed25519_verify_batch(count, pks + start, msgs + start, msg_lens + start,
                                sigs + start, ok + start)



cdef struct _KeyedItem:
    const uint8_t *pk
    Py_ssize_t index


cdef int _by_key(const void *a, const void *b) noexcept nogil:
    """qsort order of _KeyedItem: public key bytes, then position (a total order)."""
    cdef const _KeyedItem *x = <const _KeyedItem *>a
    cdef const _KeyedItem *y = <const _KeyedItem *>b
    cdef int order = memcmp(x.pk, y.pk, C_PK)
    if order != 0:
        return order
    return (x.index > y.index) - (x.index < y.index)


cdef void _verify_chunks(Py_ssize_t n, int threads, const uint8_t **pks,
                         const uint8_t **msgs, const size_t *msg_lens, const uint8_t **sigs,
                         unsigned char *ok) noexcept nogil:
    """ok[i] for n items given by pointer arrays, the items grouped by public key
    before they are cut into batch equations.

    ed25519-zebra's batch equation has one point per distinct key (and decodes
    each distinct key once), so a sender's signatures in one equation cost
    less than as many senders': measured on bench_apply's blocks (each sender 5
    times in 10,000 txs), 14.4 against 21.2 µs per signature on one thread.
    The verdicts do not depend on the grouping (ZIP 215: a batch accepts exactly
    when every item is valid). Without memory for the scratch arrays, the items
    are checked in the order given.
    """
    cdef Py_ssize_t j, index
    cdef _KeyedItem *items
    cdef void *scratch
    cdef const uint8_t **sorted_pks
    cdef const uint8_t **sorted_msgs
    cdef const uint8_t **sorted_sigs
    cdef size_t *sorted_lens
    cdef unsigned char *sorted_ok
    if n <= 2:
        _verify_chunks_in_order(n, threads, pks, msgs, msg_lens, sigs, ok)
        return
    items = <_KeyedItem *>malloc(sizeof(_KeyedItem) * n)
    scratch = malloc((3 * sizeof(uint8_t *) + sizeof(size_t) + 1) * n)
    if items == NULL or scratch == NULL:
        free(items)
        free(scratch)
        _verify_chunks_in_order(n, threads, pks, msgs, msg_lens, sigs, ok)
        return
    sorted_pks = <const uint8_t **>scratch
    sorted_msgs = sorted_pks + n
    sorted_sigs = sorted_msgs + n
    sorted_lens = <size_t *>(sorted_sigs + n)
    sorted_ok = <unsigned char *>(sorted_lens + n)
    for j in range(n):
        items[j].pk = pks[j]
        items[j].index = j
    qsort(items, n, sizeof(_KeyedItem), _by_key)
    for j in range(n):
        index = items[j].index
        sorted_pks[j] = pks[index]
        sorted_msgs[j] = msgs[index]
        sorted_lens[j] = msg_lens[index]
        sorted_sigs[j] = sigs[index]
    _verify_chunks_in_order(n, threads, sorted_pks, sorted_msgs, sorted_lens, sorted_sigs,
                            sorted_ok)
    for j in range(n):
        ok[items[j].index] = sorted_ok[j]
    free(items)
    free(scratch)


cdef void _verify_all(const unsigned char *public_keys, const unsigned char *messages,
                      const uint64_t *offsets, const unsigned char *signatures,
                      Py_ssize_t n, int threads, unsigned char *ok,
                      const uint8_t **pks, const uint8_t **msgs, size_t *msg_lens,
                      const uint8_t **sigs) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        pks[i] = public_keys + C_PK * i
        msgs[i] = messages + offsets[i]
        msg_lens[i] = offsets[i + 1] - offsets[i]
        sigs[i] = signatures + C_SIG * i
    _verify_chunks(n, threads, pks, msgs, msg_lens, sigs, ok)


cdef void _validate_all(const unsigned char *txs, const uint64_t *offsets, Py_ssize_t n,
                        const unsigned char *chain_id, size_t chain_id_len, uint64_t height,
                        int threads, const unsigned char *sign_prefix, size_t sign_prefix_len,
                        int32_t *codes, unsigned char *ids,
                        unsigned char *bodies, uint64_t *body_offsets, uint32_t *decoded,
                        uint32_t *pending, unsigned char *id_scratch,
                        unsigned char *sign_bytes, const uint8_t **pks, const uint8_t **msgs,
                        size_t *msg_lens, const uint8_t **sigs,
                        unsigned char *ok) noexcept nogil:
    """Fill codes (n) and ids (n * 32, zeroed beforehand) for one batch.

    Scratch: bodies (>= sum of body lengths), body_offsets (n + 1), decoded and
    pending (n each), id_scratch (n * 32), sign_bytes (n * (sign_prefix_len + 32)),
    pks, msgs, msg_lens, sigs and ok (n each).
    """
    cdef Py_ssize_t i, j, decoded_count = 0, pending_count = 0
    cdef size_t body_len
    cdef size_t sign_len = sign_prefix_len + C_HASH
    cdef const unsigned char *tx
    cdef unsigned char *slot
    cdef int code

    # 1. Parse and check every tx; pack decodable bodies back to back for hashing.
    body_offsets[0] = 0
    for i in range(n):
        tx = txs + offsets[i]
        code = _check_tx(tx, offsets[i + 1] - offsets[i], chain_id, chain_id_len, height,
                         &body_len)
        codes[i] = code
        if body_len:
            memcpy(bodies + body_offsets[decoded_count], tx, body_len)
            body_offsets[decoded_count + 1] = body_offsets[decoded_count] + body_len
            decoded[decoded_count] = <uint32_t>i
            decoded_count += 1
            if code == C_PENDING:
                pending[pending_count] = <uint32_t>i
                pending_count += 1

    # 2. tx ids: BLAKE3 of every decodable body (SIMD across bodies).
    if decoded_count:
        cm_blake3_hash_many_var(bodies, body_offsets, decoded_count, NULL, id_scratch)
    for j in range(decoded_count):
        memcpy(ids + C_HASH * decoded[j], id_scratch + C_HASH * j, C_HASH)

    # 3. Signatures of txs that passed every earlier check, in batches. The sign
    # bytes DOMAIN || L || chain_id || tx id of pending tx j go to sign_bytes[j].
    for j in range(pending_count):
        i = pending[j]
        tx = txs + offsets[i]
        slot = sign_bytes + sign_len * j
        memcpy(slot, sign_prefix, sign_prefix_len)
        memcpy(slot + sign_prefix_len, ids + C_HASH * i, C_HASH)
        pks[j] = tx + 4 + chain_id_len
        msgs[j] = slot
        msg_lens[j] = sign_len
        sigs[j] = txs + offsets[i + 1] - C_SIG
    _verify_chunks(pending_count, threads, pks, msgs, msg_lens, sigs, ok)
    for j in range(pending_count):
        codes[pending[j]] = C_TX_OK if ok[j] else C_BAD_SIGNATURE


# --- public API ----------------------------------------------------------------
def verify_one(public_key, message, signature):
    """ZIP 215 verdict on one signature: True if valid.

    public_key is 32 bytes, signature 64 bytes, message any length (all
    bytes-like). ValueError for other lengths or a non-contiguous buffer,
    TypeError for a non-buffer; an invalid signature is just False.
    """
    cdef int valid
    cdef const unsigned char[::1] key
    cdef const unsigned char[::1] text
    cdef const unsigned char[::1] sig
    cdef const unsigned char *key_ptr
    cdef const unsigned char *text_ptr
    cdef const unsigned char *sig_ptr
    cdef size_t text_len
    if type(public_key) is bytes and type(message) is bytes and type(signature) is bytes:
        # The common case (keys.verify_signature, check_tx): no buffer views to build.
        if len(<bytes>public_key) != C_PK:
            raise ValueError(f"public_key must be {C_PK} bytes, got {len(public_key)}")
        if len(<bytes>signature) != C_SIG:
            raise ValueError(f"signature must be {C_SIG} bytes, got {len(signature)}")
        key_ptr = <const unsigned char *>PyBytes_AS_STRING(public_key)
        text_ptr = <const unsigned char *>PyBytes_AS_STRING(message)
        text_len = len(<bytes>message)
        sig_ptr = <const unsigned char *>PyBytes_AS_STRING(signature)
    else:
        key = _byte_view(public_key, "public_key")
        text = _byte_view(message, "message")
        sig = _byte_view(signature, "signature")
        if key.shape[0] != C_PK:
            raise ValueError(f"public_key must be {C_PK} bytes, got {key.shape[0]}")
        if sig.shape[0] != C_SIG:
            raise ValueError(f"signature must be {C_SIG} bytes, got {sig.shape[0]}")
        key_ptr = &key[0]
        text_ptr = _ptr(text)
        text_len = text.shape[0]
        sig_ptr = &sig[0]
    with nogil:
        valid = cm_ed25519_verify(key_ptr, text_ptr, text_len, sig_ptr)
    return valid == 1


def verify_batch(public_keys, messages, offsets, signatures, threads=0):
    """Ed25519-verify n signatures under ZIP 215; one bool per item.

    public_keys: n * 32 bytes; messages: one buffer, message i is
    messages[offsets[i]:offsets[i + 1]]; signatures: n * 64 bytes. threads=0
    uses every core. ValueError for malformed shapes or a non-contiguous
    buffer, TypeError for a non-buffer; a bad item is just False.
    """
    cdef Py_ssize_t n = _item_count(offsets)
    cdef Py_ssize_t i
    cdef int thread_count = _resolve_threads(threads)
    cdef const unsigned char[::1] keys_view = _byte_view(public_keys, "public_keys")
    cdef const unsigned char[::1] messages_view = _byte_view(messages, "messages")
    cdef const unsigned char[::1] sigs_view = _byte_view(signatures, "signatures")
    cdef uint64_t *offs = NULL
    cdef unsigned char *ok = NULL
    cdef const uint8_t **pks = NULL
    cdef const uint8_t **msgs = NULL
    cdef size_t *msg_lens = NULL
    cdef const uint8_t **sigs = NULL
    cdef const unsigned char *pk_ptr
    cdef const unsigned char *msg_ptr
    cdef const unsigned char *sig_ptr
    if keys_view.shape[0] != C_PK * n:
        raise ValueError(f"public_keys must be {C_PK * n} bytes, got {keys_view.shape[0]}")
    if sigs_view.shape[0] != C_SIG * n:
        raise ValueError(f"signatures must be {C_SIG * n} bytes, got {sigs_view.shape[0]}")
    try:
        offs = <uint64_t *>_alloc(sizeof(uint64_t) * (n + 1))
        _fill_offsets(offsets, n, messages_view.shape[0], offs)
        ok = <unsigned char *>_alloc(n)
        pks = <const uint8_t **>_alloc(sizeof(uint8_t *) * n)
        msgs = <const uint8_t **>_alloc(sizeof(uint8_t *) * n)
        msg_lens = <size_t *>_alloc(sizeof(size_t) * n)
        sigs = <const uint8_t **>_alloc(sizeof(uint8_t *) * n)
        pk_ptr = _ptr(keys_view)
        msg_ptr = _ptr(messages_view)
        sig_ptr = _ptr(sigs_view)
        with nogil:
            _verify_all(pk_ptr, msg_ptr, offs, sig_ptr, n, thread_count, ok,
                        pks, msgs, msg_lens, sigs)
        return [ok[i] != 0 for i in range(n)]
    finally:
        PyMem_Free(offs)
        PyMem_Free(ok)
        PyMem_Free(pks)
        PyMem_Free(msgs)
        PyMem_Free(msg_lens)
        PyMem_Free(sigs)


def validate_batch(txs, offsets, chain_id, height, threads=0):
    """Stateless checks of n packed txs: (per-tx codes, n * 32 bytes of tx ids).

    Tx i is txs[offsets[i]:offsets[i + 1]]. Codes, first failure wins: 102 too
    large, 101 malformed, 111 wrong chain, 112 expired (height > expiry_height),
    113 bad signature (ZIP 215), 0 ok. Ids are BLAKE3 of the body, zeros where
    the tx did not decode. ValueError for malformed arguments or a
    non-contiguous buffer, TypeError for wrong types; never for a bad tx.
    """
    cdef Py_ssize_t n = _item_count(offsets)
    cdef Py_ssize_t i
    cdef bytes chain = _check_chain_id(chain_id)
    cdef uint64_t height_value = _check_height(height)
    cdef int thread_count = _resolve_threads(threads)
    cdef const unsigned char[::1] txs_view = _byte_view(txs, "txs")
    cdef bytes prefix = TX_SIGN_DOMAIN + bytes((len(chain),)) + chain
    cdef Py_ssize_t txs_len = txs_view.shape[0]
    cdef uint64_t *offs = NULL
    cdef int32_t *codes = NULL
    cdef unsigned char *bodies = NULL
    cdef uint64_t *body_offsets = NULL
    cdef uint32_t *decoded = NULL
    cdef uint32_t *pending = NULL
    cdef unsigned char *id_scratch = NULL
    cdef unsigned char *sign_bytes = NULL
    cdef const uint8_t **pks = NULL
    cdef const uint8_t **msgs = NULL
    cdef size_t *msg_lens = NULL
    cdef const uint8_t **sigs = NULL
    cdef unsigned char *ok = NULL
    cdef const unsigned char *txs_ptr = _ptr(txs_view)
    cdef const unsigned char *chain_ptr = <const unsigned char *>PyBytes_AS_STRING(chain)
    cdef const unsigned char *prefix_ptr = <const unsigned char *>PyBytes_AS_STRING(prefix)
    cdef size_t chain_len = len(chain)
    cdef size_t prefix_len = len(prefix)
    cdef unsigned char *ids_ptr
    ids = PyBytes_FromStringAndSize(NULL, C_HASH * n)
    ids_ptr = <unsigned char *>PyBytes_AS_STRING(ids)
    memset(ids_ptr, 0, C_HASH * n)
    try:
        offs = <uint64_t *>_alloc(sizeof(uint64_t) * (n + 1))
        _fill_offsets(offsets, n, txs_len, offs)
        codes = <int32_t *>_alloc(sizeof(int32_t) * n)
        bodies = <unsigned char *>_alloc(txs_len)
        body_offsets = <uint64_t *>_alloc(sizeof(uint64_t) * (n + 1))
        decoded = <uint32_t *>_alloc(sizeof(uint32_t) * n)
        pending = <uint32_t *>_alloc(sizeof(uint32_t) * n)
        id_scratch = <unsigned char *>_alloc(C_HASH * n)
        sign_bytes = <unsigned char *>_alloc((prefix_len + C_HASH) * n)
        pks = <const uint8_t **>_alloc(sizeof(uint8_t *) * n)
        msgs = <const uint8_t **>_alloc(sizeof(uint8_t *) * n)
        msg_lens = <size_t *>_alloc(sizeof(size_t) * n)
        sigs = <const uint8_t **>_alloc(sizeof(uint8_t *) * n)
        ok = <unsigned char *>_alloc(n)
        with nogil:
            _validate_all(txs_ptr, offs, n, chain_ptr, chain_len, height_value, thread_count,
                          prefix_ptr, prefix_len, codes, ids_ptr, bodies, body_offsets,
                          decoded, pending, id_scratch, sign_bytes, pks, msgs, msg_lens,
                          sigs, ok)
        result = [codes[i] for i in range(n)]
        if C_PENDING in result:
            raise AssertionError("validate_batch left a tx without a verdict")
        return result, ids
    finally:
        PyMem_Free(offs)
        PyMem_Free(codes)
        PyMem_Free(bodies)
        PyMem_Free(body_offsets)
        PyMem_Free(decoded)
        PyMem_Free(pending)
        PyMem_Free(id_scratch)
        PyMem_Free(sign_bytes)
        PyMem_Free(pks)
        PyMem_Free(msgs)
        PyMem_Free(msg_lens)
        PyMem_Free(sigs)
        PyMem_Free(ok)


def ed25519_backend() -> str:
    """The curve25519-dalek back end that runs here: "avx512ifma", "avx2" or "serial"."""
    return cm_ed25519_backend().decode("ascii")


def ed25519_compiled_backends() -> str:
    """The back ends compiled in, best first (e.g. "avx512ifma,avx2,serial")."""
    return cm_ed25519_compiled_backends().decode("ascii")


def ed25519_version() -> str:
    """The Ed25519 crates linked in: "ed25519-zebra X, curve25519-dalek Y"."""
    return cm_ed25519_version().decode("ascii")


def blake3_backend() -> str:
    """Name of the BLAKE3 back end the tx ids are hashed with."""
    return cm_blake3_backend_name(cm_blake3_backend()).decode("ascii")


def describe() -> str:
    """One line for `doctor` and benchmarks: rule, library, back end, batching, threads."""
    threads = min(os.cpu_count() or 1, VERIFY_THREADS_MAX)
    return (
        f"ZIP 215 via {ed25519_version()}, back end {ed25519_backend()} "
        f"(compiled: {ed25519_compiled_backends()}), batches of {ED25519_BATCH_ITEMS}, "
        f"OpenMP {threads} threads, BLAKE3 {blake3_backend()}"
    )
