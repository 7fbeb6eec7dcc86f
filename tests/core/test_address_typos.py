"""Address text detects typos: every substitution and adjacent transposition fails."""

from __future__ import annotations

import blake3
import pytest
from chainmall.core.address import address_from_public_key, decode_address, encode_address
from chainmall.core.errors import InvalidAddress
from chainmall.core.hashing import ADDRESS_KEY
from chainmall.core.keys import KeyPair
from hypothesis import given
from hypothesis import strategies as st

CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
SAMPLE = encode_address(KeyPair.from_seed(bytes(32)).address)


def test_derivation_is_keyed_blake3_of_the_public_key() -> None:
    public_key = KeyPair.from_seed(bytes(32)).public_key
    expected = blake3.blake3(public_key, key=ADDRESS_KEY).digest()[:20]
    assert address_from_public_key(public_key) == expected


@given(st.binary(min_size=20, max_size=20))
def test_round_trip(address: bytes) -> None:
    text = encode_address(address)
    assert text.startswith("cm1")
    assert decode_address(text) == address
    assert decode_address(text.upper()) == address


def test_every_substitution_is_detected() -> None:
    data_start = SAMPLE.index("1") + 1
    for position in range(data_start, len(SAMPLE)):
        for char in CHARSET:
            if char == SAMPLE[position]:
                continue
            typo = SAMPLE[:position] + char + SAMPLE[position + 1 :]
            with pytest.raises(InvalidAddress, match="checksum"):
                decode_address(typo)


def test_every_adjacent_transposition_is_detected() -> None:
    data_start = SAMPLE.index("1") + 1
    for position in range(data_start, len(SAMPLE) - 1):
        a, b = SAMPLE[position], SAMPLE[position + 1]
        if a == b:
            continue
        typo = SAMPLE[:position] + b + a + SAMPLE[position + 2 :]
        with pytest.raises(InvalidAddress):
            decode_address(typo)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (SAMPLE[:5] + SAMPLE[5].upper() + SAMPLE[6:], "mixes upper and lower"),
        ("xx" + SAMPLE[2:], "checksum"),
        (SAMPLE.replace("cm1", "cm1b", 1), "invalid character"),
        ("cm1", "too short"),
        (SAMPLE + "q" * 80, "longer than"),
        (encode_address(bytes(20))[:-8] + "qqqqqqqq", "checksum"),
    ],
)
def test_malformed_text_is_refused_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(InvalidAddress, match=reason):
        decode_address(text)


def test_wrong_prefix_with_valid_checksum() -> None:
    from chainmall.core import address as module

    values = module._regroup(bytes(20), 8, 5, pad=True)
    polymod = module._polymod(module._expand_hrp("zz") + values + [0] * 6)
    checksum = [(polymod ^ module._BECH32M_CONST) >> 5 * (5 - i) & 31 for i in range(6)]
    text = "zz1" + "".join(CHARSET[v] for v in values + checksum)
    with pytest.raises(InvalidAddress, match="prefix"):
        decode_address(text)
