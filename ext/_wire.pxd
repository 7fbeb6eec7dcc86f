# cython: language_level=3
"""The v1 tx wire form in C (docs/formats.md), inline and nogil, for every kernel that parses txs.

`cimport` it (`from ext._wire cimport ...`): the functions are compiled into
each kernel, nothing is imported at run time. The numbers are copies of
core/constants.py and core/errors.py; `ext/_txwire.pyx` exports them and a test
compares. Offsets into a tx, with L its chain id length: chain id at 2, tx
type u16 at 2 + L, sender at 4 + L, nonce u64 at 36 + L, fee u64 at 44 + L,
expiry height u64 at 52 + L, payload length u32 at 60 + L, payload at 64 + L,
the signature in the last 64 bytes.
"""

from libc.stdint cimport uint16_t, uint32_t, uint64_t


cdef enum:
    WIRE_OK = 0
    WIRE_DECODE_ERROR = 101
    WIRE_TOO_LARGE = 102
    WIRE_VERSION = 1
    WIRE_CHAIN_ID_MIN = 1
    WIRE_CHAIN_ID_MAX = 32
    WIRE_PAYLOAD_MAX = 896
    WIRE_BODY_FIXED = 64      # the body without chain id and payload
    WIRE_SIG = 64
    WIRE_PK = 32
    WIRE_HASH = 32
    WIRE_TX_BYTES_MAX = 1088
    WIRE_TX_BYTES_MIN = 129   # WIRE_BODY_FIXED + WIRE_CHAIN_ID_MIN + WIRE_SIG


cdef inline uint16_t wire_be16(const unsigned char *p) noexcept nogil:
    return <uint16_t>(((<uint16_t>p[0]) << 8) | p[1])


cdef inline uint32_t wire_be32(const unsigned char *p) noexcept nogil:
    return ((<uint32_t>p[0]) << 24) | ((<uint32_t>p[1]) << 16) | ((<uint32_t>p[2]) << 8) | p[3]


cdef inline uint64_t wire_be64(const unsigned char *p) noexcept nogil:
    return ((<uint64_t>wire_be32(p)) << 32) | wire_be32(p + 4)


cdef inline bint wire_chain_id_byte(unsigned char c) noexcept nogil:
    """Whether `c` is in CHAIN_ID_ALPHABET (a-z, 0-9, '-')."""
    return (c >= 97 and c <= 122) or (c >= 48 and c <= 57) or c == 45


cdef inline int wire_check(const unsigned char *tx, size_t tx_len,
                           size_t *body_len) noexcept nogil:
    """WIRE_OK if tx[0:tx_len] is one well-formed wire tx, else WIRE_TOO_LARGE or
    WIRE_DECODE_ERROR (core/tx.py's decoder: too large first).

    Sets body_len to the body's length when the tx is well formed, else to 0.
    """
    cdef size_t L, P, k
    body_len[0] = 0
    if tx_len > WIRE_TX_BYTES_MAX:
        return WIRE_TOO_LARGE
    if tx_len < WIRE_TX_BYTES_MIN:
        return WIRE_DECODE_ERROR
    if tx[0] != WIRE_VERSION:
        return WIRE_DECODE_ERROR
    L = tx[1]
    if L < WIRE_CHAIN_ID_MIN or L > WIRE_CHAIN_ID_MAX:
        return WIRE_DECODE_ERROR
    if tx_len < WIRE_BODY_FIXED + WIRE_SIG + L:    # the payload length field lies inside
        return WIRE_DECODE_ERROR
    for k in range(L):
        if not wire_chain_id_byte(tx[2 + k]):
            return WIRE_DECODE_ERROR
    P = wire_be32(tx + 60 + L)
    if P > WIRE_PAYLOAD_MAX:
        return WIRE_DECODE_ERROR
    if tx_len != WIRE_BODY_FIXED + WIRE_SIG + L + P:
        return WIRE_DECODE_ERROR
    body_len[0] = WIRE_BODY_FIXED + L + P
    return WIRE_OK
