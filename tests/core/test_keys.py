"""Ed25519 key pairs: deterministic from a seed, RFC 8032 answers, a verifier that never raises."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from chainmall.core.address import address_from_public_key
from chainmall.core.errors import InvalidKey
from chainmall.core.keys import KeyPair, verify_signature
from hypothesis import given, settings
from hypothesis import strategies as st

VECTORS = json.loads(
    (Path(__file__).resolve().parents[1] / "vectors" / "rfc8032_ed25519.json").read_text()
)["vectors"]
TEST_1 = next(v for v in VECTORS if v["name"] == "TEST 1")
KEY = KeyPair.from_seed(bytes(range(32)))
OTHER = KeyPair.from_seed(bytes(range(1, 33)))
MESSAGE = b"chainmall key test message"
SIGNATURE = KEY.sign(MESSAGE)


def test_from_seed_is_deterministic() -> None:
    again = KeyPair.from_seed(bytes(range(32)))
    assert again == KEY
    assert again.public_key == KEY.public_key
    assert again.sign(MESSAGE) == SIGNATURE  # Ed25519 signing is deterministic
    assert OTHER.public_key != KEY.public_key


def test_from_seed_accepts_bytes_like() -> None:
    assert KeyPair.from_seed(bytearray(range(32))) == KEY
    assert KeyPair.from_seed(memoryview(bytes(range(32)))) == KEY


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_rfc8032_public_key_and_signature(vector: dict[str, str]) -> None:
    key = KeyPair.from_seed(bytes.fromhex(vector["secret_key"]))
    message = bytes.fromhex(vector["message"])
    assert key.public_key.hex() == vector["public_key"]
    assert key.sign(message).hex() == vector["signature"]
    assert verify_signature(key.public_key, message, bytes.fromhex(vector["signature"]))


def test_rfc8032_test_1_by_value() -> None:
    # Pinned here as well, so a damaged vector file cannot pass silently.
    key = KeyPair.from_seed(bytes.fromhex(TEST_1["secret_key"]))
    assert key.public_key.hex() == (
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    )
    assert key.sign(b"").hex().startswith("e5564300c360ac729086e2cc806e828a")


def test_address_property_is_the_derived_address() -> None:
    assert KEY.address == address_from_public_key(KEY.public_key)
    assert len(KEY.address) == 20


def test_repr_hides_the_seed() -> None:
    text = repr(KEY)
    assert KEY.seed.hex() not in text
    assert repr(KEY.seed) not in text


@pytest.mark.parametrize(
    "seed", [b"", bytes(31), bytes(33), "00" * 32, 32, None, [0] * 32],
    ids=["empty", "31", "33", "hex-text", "int", "none", "list"],
)
def test_bad_seed_is_invalid_key(seed: object) -> None:
    with pytest.raises(InvalidKey, match="seed"):
        KeyPair.from_seed(seed)  # type: ignore[arg-type]


def test_int_seed_is_not_taken_for_zero_bytes() -> None:
    # bytes(32) is 32 zero bytes: an int must be refused, never turned into a key.
    with pytest.raises(InvalidKey):
        KeyPair.from_seed(32)  # type: ignore[arg-type]


def test_generate_gives_distinct_working_keys() -> None:
    a, b = KeyPair.generate(), KeyPair.generate()
    assert a.seed != b.seed
    assert verify_signature(a.public_key, MESSAGE, a.sign(MESSAGE))


@settings(max_examples=100)
@given(st.binary(min_size=32, max_size=32), st.binary(max_size=2000))
def test_sign_verify_round_trip(seed: bytes, message: bytes) -> None:
    key = KeyPair.from_seed(seed)
    signature = key.sign(message)
    assert len(signature) == 64
    assert verify_signature(key.public_key, message, signature) is True


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview])
def test_verify_accepts_bytes_like(wrap: type) -> None:
    assert verify_signature(wrap(KEY.public_key), wrap(MESSAGE), wrap(SIGNATURE)) is True


def test_verify_false_for_tampered_message() -> None:
    assert verify_signature(KEY.public_key, MESSAGE + b"!", SIGNATURE) is False
    assert verify_signature(KEY.public_key, MESSAGE[:-1], SIGNATURE) is False
    assert verify_signature(KEY.public_key, b"", SIGNATURE) is False


def test_verify_false_for_other_key() -> None:
    assert verify_signature(OTHER.public_key, MESSAGE, SIGNATURE) is False


def test_verify_false_for_every_flipped_signature_byte() -> None:
    for index in range(64):
        flipped = bytearray(SIGNATURE)
        flipped[index] ^= 0x01
        assert verify_signature(KEY.public_key, MESSAGE, bytes(flipped)) is False, index


def test_verify_false_for_every_flipped_key_byte() -> None:
    for index in range(32):
        flipped = bytearray(KEY.public_key)
        flipped[index] ^= 0x80
        assert verify_signature(bytes(flipped), MESSAGE, SIGNATURE) is False, index


@pytest.mark.parametrize(
    ("public_key", "signature"),
    [
        (KEY.public_key[:31], SIGNATURE),
        (KEY.public_key + b"\x00", SIGNATURE),
        (b"", SIGNATURE),
        (KEY.public_key, SIGNATURE[:63]),
        (KEY.public_key, SIGNATURE + b"\x00"),
        (KEY.public_key, b""),
        (KEY.public_key, SIGNATURE + MESSAGE),  # attached form is not a detached signature
    ],
    ids=["key-31", "key-33", "key-0", "sig-63", "sig-65", "sig-0", "sig-attached"],
)
def test_verify_false_for_wrong_lengths(public_key: bytes, signature: bytes) -> None:
    assert verify_signature(public_key, MESSAGE, signature) is False


@pytest.mark.parametrize("bad", [None, "text", 12, 3.5, [1, 2], KEY.public_key.hex()])
def test_verify_false_never_raises_for_non_bytes(bad: object) -> None:
    assert verify_signature(bad, MESSAGE, SIGNATURE) is False  # type: ignore[arg-type]
    assert verify_signature(KEY.public_key, bad, SIGNATURE) is False  # type: ignore[arg-type]
    assert verify_signature(KEY.public_key, MESSAGE, bad) is False  # type: ignore[arg-type]


def test_all_zero_key_and_signature_verify_under_zip215() -> None:
    # The all-zero key and R are the same order-4 point and S = 0: under ZIP 215's
    # cofactored equation [8][0]B = [8]R + [8][k]A holds for any message. A key that
    # is a small-order point has no secret (docs/verification.md section 1).
    assert verify_signature(bytes(32), MESSAGE, bytes(64)) is True
    assert verify_signature(bytes(32), b"any other message", bytes(64)) is True
    # S must still be canonical, and a real key still needs its own signature.
    order = (2**252 + 27742317777372353535851937790883648493).to_bytes(32, "little")
    assert verify_signature(bytes(32), MESSAGE, bytes(32) + order) is False
    assert verify_signature(KEY.public_key, MESSAGE, bytes(64)) is False
