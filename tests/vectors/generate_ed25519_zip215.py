"""Generate tests/vectors/ed25519_zip215.json: the ZIP 215 verdicts the tests expect.

Three parts, each with where it comes from:

* `small_order`: ZIP 215's small-order set. The 8 canonical encodings of the
  8-torsion points and the 6 non-canonical encodings of low-order points,
  derived here from the curve equation (not copied): the identity (0, 1), the
  point (0, -1) of order 2, the two points (+-sqrt(-1), 0) of order 4, and the
  four points of order 8, whose y satisfies d y^4 + 2 y^2 - 1 = 0 (doubling
  them must give y = 0); then the encodings that name a low-order point
  without being canonical: x = 0 with the sign bit set (y = 1 and y = p - 1),
  and y >= p (y = p and y = p + 1, which reduce to 0 and 1, each sign). Every
  encoding is checked here to decode (y taken mod p) to a point P with [8]P =
  0. ZIP 215 says every signature (A, R || S) with A and R from this set, S = 0
  and the message "Zcash" is valid: 14 x 14 = 196 cases, all valid, because
  [8][0]B = 0 = [8]R + [8][k]A. (ed25519-zebra's tests/small_order.rs builds
  the same set from curve25519-dalek's EIGHT_TORSION table.)
* `wycheproof`: each of the 151 Wycheproof cases' verdict under ZIP 215. It is
  Wycheproof's own `result` except where ZIP 215 accepts what Wycheproof,
  following RFC 8032, rejects; every such case is listed in ZIP215_ACCEPTS
  below with the reason, worked out by hand from the rule.
* `rfc8032`: the five RFC 8032 section 7.1 vectors, all valid under any rule.

Uses only the standard library, no chainmall code: the tests run chainmall's
compiled and pure-Python verifiers against this file.

    .venv/bin/python tests/vectors/generate_ed25519_zip215.py          # rewrite
    .venv/bin/python tests/vectors/generate_ed25519_zip215.py --check  # exit 1 if stale

Regenerate only in a commit that says why.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "ed25519_zip215.json"

P = 2**255 - 19
D = (-121665 * pow(121666, P - 2, P)) % P
SMALL_ORDER_MESSAGE = b"Zcash"

# Wycheproof tcId -> why ZIP 215 accepts a case Wycheproof marks invalid.
ZIP215_ACCEPTS = {
    151: (
        "R is y = 1 with the sign bit of x set, a non-canonical encoding of the "
        "identity; ZIP 215 decodes it (x = 0, sign bit ignored) instead of refusing "
        "it as RFC 8032 section 5.1.3 step 4 does, and the hash is over R as given, "
        "so the signature verifies"
    ),
}


# --- field and curve, affine, written out for this script only -------------------------
def inverse(a: int) -> int:
    return pow(a, P - 2, P)


def sqrt(a: int) -> int | None:
    """A square root of a mod p (p = 5 mod 8), or None."""
    a %= P
    root = pow(a, (P + 3) // 8, P)
    if root * root % P == a:
        return root
    root = root * pow(2, (P - 1) // 4, P) % P
    return root if root * root % P == a else None


def x_for_y(y: int) -> int | None:
    """An x with (x, y) on -x^2 + y^2 = 1 + d x^2 y^2, or None."""
    return sqrt((y * y - 1) * inverse(D * y * y + 1))


def add(p1: tuple[int, int], p2: tuple[int, int]) -> tuple[int, int]:
    (x1, y1), (x2, y2) = p1, p2
    t = D * x1 * x2 * y1 * y2 % P
    return ((x1 * y2 + x2 * y1) * inverse(1 + t) % P, (y1 * y2 + x1 * x2) * inverse(1 - t) % P)


def order(point: tuple[int, int]) -> int:
    """The order of a point of order dividing 8 (assert otherwise)."""
    current, n = point, 1
    while current != (0, 1):
        current, n = add(current, point), n + 1
        assert n <= 8, "not a point of small order"
    return n


def encode(y: int, sign: int) -> str:
    """32-byte encoding of a 255-bit y (possibly >= p) and a sign bit, as hex."""
    assert 0 <= y < 2**255 and sign in (0, 1)
    return (y | (sign << 255)).to_bytes(32, "little").hex()


def decode(encoding: str) -> tuple[int, int]:
    """(x, y) named by an encoding under ZIP 215's relaxed decoding (y taken mod p)."""
    value = int.from_bytes(bytes.fromhex(encoding), "little")
    y, sign = (value & (2**255 - 1)) % P, value >> 255
    x = x_for_y(y)
    assert x is not None, encoding
    if x & 1 != sign:
        x = (-x) % P
    return (x, y)


def small_order_encodings() -> list[dict[str, object]]:
    i = sqrt(P - 1)  # sqrt(-1)
    assert i is not None
    # Order 8: y^2 is a root of d Y^2 + 2 Y - 1 = 0 that is itself a square.
    disc = sqrt(4 + 4 * D)
    assert disc is not None
    candidates = [(-2 + disc) * inverse(2 * D) % P, (-2 - disc) * inverse(2 * D) % P]
    y8 = next(root for c in candidates if (root := sqrt(c)) is not None
              and x_for_y(root) is not None)
    y8 = min(y8, P - y8)
    canonical = [
        ("identity (0, 1)", 1, 0),
        ("order 2: (0, -1)", P - 1, 0),
        ("order 4: (sqrt(-1), 0), x even", 0, 0),
        ("order 4: (-sqrt(-1), 0), x odd", 0, 1),
        ("order 8: y = y8, x even", y8, 0),
        ("order 8: y = y8, x odd", y8, 1),
        ("order 8: y = -y8, x even", P - y8, 0),
        ("order 8: y = -y8, x odd", P - y8, 1),
    ]
    non_canonical = [
        ("identity with the sign bit set (x = 0)", 1, 1),
        ("order 2 (0, -1) with the sign bit set (x = 0)", P - 1, 1),
        ("y = p (reduces to 0: order 4), sign 0", P, 0),
        ("y = p (reduces to 0: order 4), sign 1", P, 1),
        ("y = p + 1 (reduces to 1: the identity), sign 0", P + 1, 0),
        ("y = p + 1 (reduces to 1: the identity), sign 1", P + 1, 1),
    ]
    result = []
    for kind, entries in (("canonical", canonical), ("non-canonical", non_canonical)):
        for label, y, sign in entries:
            text = encode(y, sign)
            point = decode(text)
            x = point[0]
            is_canonical = y < P and not (x == 0 and sign == 1)
            assert is_canonical == (kind == "canonical"), label
            if kind == "canonical":
                assert x & 1 == sign, label
            result.append({"encoding": text, "kind": kind, "order": order(point),
                           "point": label})
    assert len(result) == 14 and len({e["encoding"] for e in result}) == 14
    assert sorted(e["order"] for e in result[:8]) == [1, 2, 4, 4, 8, 8, 8, 8]
    return result


def wycheproof_verdicts() -> list[dict[str, object]]:
    data = json.loads((HERE / "wycheproof_ed25519.json").read_text())
    rows = []
    for group in data["testGroups"]:
        for test in group["tests"]:
            tc_id, result = test["tcId"], test["result"]
            if tc_id in ZIP215_ACCEPTS:
                assert result == "invalid", tc_id
                rows.append({"tcId": tc_id, "wycheproof": result, "zip215": "valid",
                             "why": ZIP215_ACCEPTS[tc_id]})
            else:
                rows.append({"tcId": tc_id, "wycheproof": result, "zip215": result,
                             "why": "as Wycheproof"})
    assert len(rows) == data["numberOfTests"] == 151
    return rows


def build() -> dict[str, object]:
    rfc = json.loads((HERE / "rfc8032_ed25519.json").read_text())
    return {
        "source": "home-made by tests/vectors/generate_ed25519_zip215.py from ZIP 215 "
                  "(zcash/zips zip-0215.rst), the Wycheproof and RFC 8032 files beside it",
        "rule": "ZIP 215: [8][S]B = [8]R + [8][k]A, S < L, A and R decoded as given "
                "(non-canonical and small-order accepted), k = SHA-512(R || A || M) mod L",
        "small_order": {
            "note": "every (A, R) pair from `encodings` with S = 0 and this message is valid",
            "message": SMALL_ORDER_MESSAGE.hex(),
            "s": "00" * 32,
            "encodings": small_order_encodings(),
        },
        "wycheproof": wycheproof_verdicts(),
        "rfc8032": [{"name": v["name"], "zip215": "valid",
                     "why": "RFC 8032 section 7.1 (valid under every rule)"}
                    for v in rfc["vectors"]],
    }


def render() -> str:
    return json.dumps(build(), indent=1) + "\n"


def main() -> int:
    text = render()
    if "--check" in sys.argv[1:]:
        if OUTPUT.read_text() != text:
            print(f"{OUTPUT.name} is stale: rerun {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
