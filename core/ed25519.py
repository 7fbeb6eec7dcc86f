"""Ed25519 verification under ZIP 215 in plain Python: the reference for ext/ed25519.

Written from ZIP 215 (zcash/zips, `zip-0215.rst`) and the curve arithmetic of
RFC 8032 section 5.1, to be read, not to be fast (a few milliseconds per
signature). The compiled path (`chainmall.ext._verify.verify_one`, on
ed25519-zebra) takes the same arguments and must give the same verdict on
every input; `CHAINMALL_PURE=1` runs this one instead, and the tests hold the
two together (docs/verification.md).

The rule, for public key A_bytes, signature R_bytes || S_bytes and message M:

1. S, read little-endian from S_bytes, must be < L (canonical);
2. A_bytes and R_bytes must decode to curve points, where the y coordinate is
   taken as given even when it is >= p (non-canonical encodings accepted) and
   x = 0 with the sign bit set is accepted; small-order points are accepted;
3. k = SHA-512(R_bytes || A_bytes || M) mod L, over the bytes as given;
4. the cofactored equation [8][S]B = [8]R + [8][k]A must hold.

Signing is not here: keys and signatures come from libsodium (PyNaCl).
"""

from __future__ import annotations

import hashlib

from .constants import PUBLIC_KEY_BYTES, SIGNATURE_BYTES

__all__ = ["BASE_POINT_ENCODING", "L", "P", "decode_point", "encode_point", "verify_one"]

P = 2**255 - 19  # the field prime
L = 2**252 + 27742317777372353535851937790883648493  # order of the prime subgroup
D = (-121665 * pow(121666, P - 2, P)) % P  # curve constant d = -121665/121666
SQRT_M1 = pow(2, (P - 1) // 4, P)  # a square root of -1 mod p
COFACTOR_DOUBLINGS = 3  # [8]X = three doublings
BASE_POINT_ENCODING = bytes.fromhex("58" + "66" * 31)  # B: y = 4/5, x even

# A point in extended coordinates (X:Y:Z:T), x = X/Z, y = Y/Z, x*y = T/Z.
Point = tuple[int, int, int, int]
IDENTITY: Point = (0, 1, 1, 0)


# --- arithmetic (RFC 8032 section 5.1.4; complete for a = -1 and non-square d) ----
def point_add(p: Point, q: Point) -> Point:
    """p + q; the formula holds for every pair of points, doubling and identity too."""
    x1, y1, z1, t1 = p
    x2, y2, z2, t2 = q
    a = (y1 - x1) * (y2 - x2) % P
    b = (y1 + x1) * (y2 + x2) % P
    c = 2 * D * t1 * t2 % P
    d = 2 * z1 * z2 % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def point_double(p: Point) -> Point:
    """2p (RFC 8032's dedicated doubling formula)."""
    x1, y1, z1, _ = p
    a = x1 * x1 % P
    b = y1 * y1 % P
    c = 2 * z1 * z1 % P
    h = a + b
    e = h - (x1 + y1) * (x1 + y1)
    g = a - b
    f = c + g
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def point_negate(p: Point) -> Point:
    """-p: (x, y) -> (-x, y)."""
    x, y, z, t = p
    return ((-x) % P, y, z, (-t) % P)


def is_identity(p: Point) -> bool:
    """Whether p is the neutral element (0, 1)."""
    x, y, z, _ = p
    return x % P == 0 and (y - z) % P == 0


def scalar_mult(scalar: int, point: Point) -> Point:
    """[scalar]point for 0 <= scalar < 2^256, four bits at a time (variable time)."""
    table = [IDENTITY, point]
    for _ in range(14):
        table.append(point_add(table[-1], point))
    result = IDENTITY
    for shift in range(252, -1, -4):
        for _ in range(4):
            result = point_double(result)
        result = point_add(result, table[(scalar >> shift) & 15])
    return result


_base_table: list[list[Point]] = []  # [i][j] = [j * 16^i]B, built on first use


def base_mult(scalar: int) -> Point:
    """[scalar]B for 0 <= scalar < 2^256, from a table of nibble multiples of B."""
    if not _base_table:
        step = decode_point(BASE_POINT_ENCODING)
        assert step is not None
        for _ in range(64):
            row = [IDENTITY, step]
            for _ in range(14):
                row.append(point_add(row[-1], step))
            _base_table.append(row)
            step = point_add(row[15], step)  # [16]step
    result = IDENTITY
    for i in range(64):
        result = point_add(result, _base_table[i][(scalar >> (4 * i)) & 15])
    return result


# --- encoding (RFC 8032 section 5.1.2-5.1.3, relaxed as ZIP 215 says) ---------------
def decode_point(encoding: bytes) -> Point | None:
    """The point a 32-byte encoding names, or None if it names none.

    ZIP 215: the 255-bit y is used as given even when y >= p (it is reduced mod
    p), and x = 0 with the sign bit set decodes to x = 0, where RFC 8032 would
    refuse both. Nothing is refused for being of small order.
    """
    if len(encoding) != 32:
        raise ValueError(f"a point encoding is 32 bytes, got {len(encoding)}")
    value = int.from_bytes(encoding, "little")
    sign = value >> 255
    y = (value & ((1 << 255) - 1)) % P
    u = (y * y - 1) % P
    v = (D * y * y + 1) % P
    # Candidate root of u/v (RFC 8032 5.1.3 step 2): x = u v^3 (u v^7)^((p-5)/8).
    x = u * pow(v, 3, P) * pow(u * pow(v, 7, P), (P - 5) // 8, P) % P
    vxx = v * x * x % P
    if vxx == (-u) % P and vxx != u:
        x = x * SQRT_M1 % P
    elif vxx != u:
        return None  # u/v is not a square: no point has this y
    if x & 1 != sign:
        x = (-x) % P  # for x = 0 this stays 0: the sign bit is ignored
    return (x, y, 1, x * y % P)


def encode_point(point: Point) -> bytes:
    """The canonical 32-byte encoding of a point."""
    x, y, z, _ = point
    inverse = pow(z, P - 2, P)
    x, y = x * inverse % P, y * inverse % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


# --- verification --------------------------------------------------------------------
def _as_bytes(value: object, what: str) -> bytes:
    if value is None or isinstance(value, str):
        raise TypeError(f"{what} must be bytes-like, got {type(value).__name__}")
    view = memoryview(value)  # TypeError for anything that is not a buffer
    if view.itemsize != 1 or not view.c_contiguous:
        raise ValueError(f"{what} must be a contiguous buffer of bytes")
    return view.tobytes()


def verify_one(public_key: object, message: object, signature: object) -> bool:
    """ZIP 215 verdict on one signature: True if valid.

    public_key is 32 bytes, signature 64 bytes, message any length (all
    bytes-like). ValueError for other lengths or a non-contiguous buffer,
    TypeError for a non-buffer; an invalid signature is just False.
    """
    key = _as_bytes(public_key, "public_key")
    text = _as_bytes(message, "message")
    sig = _as_bytes(signature, "signature")
    if len(key) != PUBLIC_KEY_BYTES:
        raise ValueError(f"public_key must be {PUBLIC_KEY_BYTES} bytes, got {len(key)}")
    if len(sig) != SIGNATURE_BYTES:
        raise ValueError(f"signature must be {SIGNATURE_BYTES} bytes, got {len(sig)}")
    r_bytes, s_bytes = sig[:32], sig[32:]
    s = int.from_bytes(s_bytes, "little")
    if s >= L:
        return False
    a_point = decode_point(key)
    r_point = decode_point(r_bytes)
    if a_point is None or r_point is None:
        return False
    k = int.from_bytes(hashlib.sha512(r_bytes + key + text).digest(), "little") % L
    # [8]([S]B - R - [k]A) must be the identity.
    check = point_add(base_mult(s), point_negate(point_add(r_point, scalar_mult(k, a_point))))
    for _ in range(COFACTOR_DOUBLINGS):
        check = point_double(check)
    return is_identity(check)
