"""Addresses: keyed-BLAKE3 derivation, and bech32m text that refuses every typo with a reason.

The checker here is independent of `core/address.py`: a BIP-350 encoder
written from the BIP's text (`bip350_encode`) builds strings with a valid
checksum but a wrong prefix or data length, and the BIP's own valid and
invalid strings pin the checksum.
"""

from __future__ import annotations

import blake3
import pytest
from chainmall.core.address import (
    address_from_public_key,
    bech32m_checksum_ok,
    decode_address,
    encode_address,
)
from chainmall.core.constants import ADDRESS_CONTEXT
from chainmall.core.errors import InvalidAddress, InvalidInput
from chainmall.core.hashing import ADDRESS_KEY
from chainmall.core.keys import KeyPair
from hypothesis import given, settings
from hypothesis import strategies as st

CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
BECH32M_CONST = 0x2BC830A3
PUBLIC_KEY = KeyPair.from_seed(bytes(range(32))).public_key
ADDRESS = address_from_public_key(PUBLIC_KEY)
SAMPLE = encode_address(ADDRESS)
DATA_START = len("cm1")

# BIP-350, "Test vectors for Bech32m": valid strings, then invalid ones (values only).
BIP350_VALID = [
    "A1LQFN3A",
    "a1lqfn3a",
    "an83characterlonghumanreadablepartthatcontainsthetheexcludedcharactersbioandnumber11sg7hg6",
    "abcdef1l7aum6echk45nj3s0wdvt2fg8x9yrzpqzd3ryx",
    "11llllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllludsr8",
    "split1checkupstagehandshakeupstreamerranterredcaperredlc445v",
    "?1v759aa",
]
BIP350_INVALID = [
    "\x201xj0phk",  # prefix character out of range
    "\x7f1g6xzxy",  # prefix character out of range
    "\x801vctc34",  # prefix character out of range
    "an84characterslonghumanreadablepartthatcontainsthetheexcludedcharactersbioandnumber11d6pts4",
    "qyrz8wqd2c9m",  # no separator
    "1qyrz8wqd2c9m",  # empty prefix
    "y1b0jsk6g",  # invalid data character
    "lt1igcx5c0",  # invalid data character
    "in1muywd",  # checksum too short
    "mm1crxm3i",  # invalid character in checksum
    "au1s5cgom",  # invalid character in checksum
    "M1VUXWEZ",  # checksum computed over the upper-case prefix
    "16plkw9",  # empty prefix
    "1p2gdwpf",  # empty prefix
    "A12UEL5L",  # a valid bech32 (BIP-173) string is not bech32m
]


def _polymod(values: list[int]) -> int:
    generators = [0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3]
    check = 1
    for value in values:
        top = check >> 25
        check = (check & 0x1FFFFFF) << 5 ^ value
        for i in range(5):
            check ^= generators[i] if (top >> i) & 1 else 0
    return check


def bip350_encode(hrp: str, groups: list[int]) -> str:
    """BIP-350 bech32m of five-bit `groups` under prefix `hrp` (no regrouping)."""
    expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    polymod = _polymod(expanded + groups + [0] * 6) ^ BECH32M_CONST
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(CHARSET[g] for g in groups + checksum)


def to_groups(data: bytes) -> list[int]:
    """Bytes as five-bit groups, the last one zero-padded."""
    bits = "".join(f"{b:08b}" for b in data)
    bits += "0" * (-len(bits) % 5)
    return [int(bits[i : i + 5], 2) for i in range(0, len(bits), 5)]


# --- derivation ------------------------------------------------------------------


def test_derivation_is_keyed_blake3_truncated_to_20_bytes() -> None:
    key = blake3.blake3(b"", derive_key_context=ADDRESS_CONTEXT).digest()
    assert key == ADDRESS_KEY
    assert blake3.blake3(PUBLIC_KEY, key=key).digest()[:20] == ADDRESS
    assert blake3.blake3(PUBLIC_KEY).digest()[:20] != ADDRESS  # keyed, not plain


def test_derivation_is_deterministic_and_key_specific() -> None:
    assert address_from_public_key(PUBLIC_KEY) == ADDRESS
    assert address_from_public_key(bytearray(PUBLIC_KEY)) == ADDRESS
    other = KeyPair.from_seed(bytes(32)).public_key
    assert address_from_public_key(other) != ADDRESS


@pytest.mark.parametrize("public_key", [b"", bytes(31), bytes(33), "x" * 32, None])
def test_derivation_refuses_a_bad_public_key(public_key: object) -> None:
    with pytest.raises(InvalidInput, match="public key is 32 bytes"):
        address_from_public_key(public_key)  # type: ignore[arg-type]


# --- text form -------------------------------------------------------------------


def test_text_shape() -> None:
    assert SAMPLE.startswith("cm1")
    assert len(SAMPLE) == 3 + 32 + 6  # prefix, 160 bits in 32 groups, checksum
    assert SAMPLE.lower() == SAMPLE
    assert bip350_encode("cm", to_groups(ADDRESS)) == SAMPLE  # the independent encoder


@settings(max_examples=300)
@given(st.binary(min_size=20, max_size=20))
def test_round_trip(address: bytes) -> None:
    text = encode_address(address)
    assert text == bip350_encode("cm", to_groups(address))
    assert decode_address(text) == address
    assert decode_address(text.upper()) == address


@pytest.mark.parametrize("text", BIP350_VALID)
def test_bip350_valid_strings_pass_the_checksum(text: str) -> None:
    assert bech32m_checksum_ok(text)


@pytest.mark.parametrize("text", BIP350_INVALID)
def test_bip350_invalid_strings_fail(text: str) -> None:
    assert not bech32m_checksum_ok(text)
    with pytest.raises(InvalidAddress):
        decode_address(text)


def test_every_single_character_substitution_is_rejected() -> None:
    count = 0
    for position in range(DATA_START, len(SAMPLE)):
        for char in CHARSET:
            if char == SAMPLE[position]:
                continue
            typo = SAMPLE[:position] + char + SAMPLE[position + 1 :]
            with pytest.raises(InvalidAddress, match="checksum does not match"):
                decode_address(typo)
            count += 1
    assert count == 38 * 31


def test_every_prefix_substitution_is_rejected() -> None:
    for position in range(DATA_START):
        for char in "abcdefghijklmnopqrstuvwxyz0123456789":
            if char == SAMPLE[position]:
                continue
            with pytest.raises(InvalidAddress):
                decode_address(SAMPLE[:position] + char + SAMPLE[position + 1 :])


def test_every_adjacent_transposition_is_rejected() -> None:
    count = 0
    for position in range(len(SAMPLE) - 1):
        a, b = SAMPLE[position], SAMPLE[position + 1]
        if a == b:
            continue
        with pytest.raises(InvalidAddress):
            decode_address(SAMPLE[:position] + b + a + SAMPLE[position + 2 :])
        count += 1
    assert count > 30


def test_upper_case_is_accepted_mixed_case_is_not() -> None:
    assert decode_address(SAMPLE.upper()) == ADDRESS
    letter = next(i for i in range(DATA_START, len(SAMPLE)) if SAMPLE[i].isalpha())
    mixed = SAMPLE[:letter] + SAMPLE[letter].upper() + SAMPLE[letter + 1 :]
    with pytest.raises(InvalidAddress, match="mixes upper and lower case"):
        decode_address(mixed)
    with pytest.raises(InvalidAddress, match="mixes upper and lower case"):
        decode_address("CM1" + SAMPLE[3:])


@pytest.mark.parametrize("hrp", ["bc", "c", "cmx", "xm", "cm1"])
def test_wrong_prefix_with_a_valid_checksum(hrp: str) -> None:
    text = bip350_encode(hrp, to_groups(ADDRESS))
    assert bech32m_checksum_ok(text)
    with pytest.raises(InvalidAddress, match=f"prefix is {hrp!r}, expected 'cm'"):
        decode_address(text)


@pytest.mark.parametrize("char", ["b", "i", "o"])
def test_character_outside_the_alphabet(char: str) -> None:
    text = SAMPLE[:10] + char + SAMPLE[11:]
    with pytest.raises(InvalidAddress, match=f"invalid character {char!r}"):
        decode_address(text)


def test_separator_character_in_the_data() -> None:
    # The last '1' is the separator, so a '1' in the data moves it: the prefix
    # becomes "cm1..." and the checksum, over a different split, fails.
    text = SAMPLE[:10] + "1" + SAMPLE[11:]
    with pytest.raises(InvalidAddress, match="checksum does not match"):
        decode_address(text)


@pytest.mark.parametrize("size", [0, 1, 19, 21, 32])
def test_wrong_data_length_with_a_valid_checksum(size: int) -> None:
    text = bip350_encode("cm", to_groups(bytes(range(size))))
    assert bech32m_checksum_ok(text)
    with pytest.raises(InvalidAddress, match=r"expected 32 \(20 bytes\)"):
        decode_address(text)


def test_wrong_group_count_with_a_valid_checksum() -> None:
    # 31 and 33 groups: not a whole 20-byte address, whatever the padding.
    for groups in ([0] * 31, [0] * 33):
        with pytest.raises(InvalidAddress, match="data characters"):
            decode_address(bip350_encode("cm", groups))


def test_non_zero_padding_bits_are_refused() -> None:
    # 20 bytes are exactly 32 groups, so padding can only come with a wrong count;
    # 19 bytes take 31 groups with 3 padding bits, set here.
    groups = to_groups(bytes(19))
    groups[-1] |= 0b001
    with pytest.raises(InvalidAddress):
        decode_address(bip350_encode("cm", groups))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "no prefix separator"),
        ("cm", "no prefix separator"),
        ("cm1", "too short"),
        ("cm1qqqqq", "too short"),
        ("1" + SAMPLE, "checksum"),
        (SAMPLE[:-1], "checksum"),
        (SAMPLE + "q", "checksum"),
        (SAMPLE + "q" * 60, "longer than 90"),
        (SAMPLE[:5] + " " + SAMPLE[6:], "outside printable ASCII"),
        (SAMPLE[:5] + "é" + SAMPLE[6:], "outside printable ASCII"),
        (SAMPLE + "\n", "outside printable ASCII"),
    ],
    ids=["empty", "no-separator", "prefix-only", "short-checksum", "extra-prefix-char",
         "one-char-short", "one-char-long", "too-long", "space", "non-ascii", "newline"],
)
def test_malformed_text_names_the_problem(text: str, reason: str) -> None:
    with pytest.raises(InvalidAddress, match=reason):
        decode_address(text)


@pytest.mark.parametrize("text", [None, b"cm1qqqq", 42, ["cm1"]])
def test_non_text_is_refused(text: object) -> None:
    with pytest.raises(InvalidAddress, match="must be text"):
        decode_address(text)  # type: ignore[arg-type]


@pytest.mark.parametrize("address", [b"", bytes(19), bytes(21), bytes(32), "x" * 20, None])
def test_encode_refuses_anything_but_20_bytes(address: object) -> None:
    with pytest.raises(InvalidAddress, match="20 bytes"):
        encode_address(address)  # type: ignore[arg-type]


@settings(max_examples=200)
@given(st.text(alphabet=CHARSET + "cm1BIO", max_size=50))
def test_random_text_raises_only_invalid_address(text: str) -> None:
    try:
        address = decode_address(text)
    except InvalidAddress:
        return
    assert encode_address(address) == text.lower()
