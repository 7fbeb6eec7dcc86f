"""Account addresses: derived from a public key with keyed BLAKE3; text form bech32m.

The text form is BIP-350 bech32m with the human-readable prefix `cm`, e.g.
`cm1...`. Its BCH checksum detects any substitution of up to 4 characters,
so every single typo and every adjacent transposition (tests check both). It is
written here, some 40 lines against BIP-350, because no well-kept,
maintained Python package provides bech32m.
"""

from __future__ import annotations

from .constants import ADDRESS_BYTES, ADDRESS_HRP, PUBLIC_KEY_BYTES
from .errors import InvalidAddress, InvalidKey
from .hashing import ADDRESS_KEY, digest

_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_CHAR_VALUE = {c: i for i, c in enumerate(_CHARSET)}
_BECH32M_CONST = 0x2BC830A3
_GENERATORS = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
_CHECKSUM_CHARS = 6
_TEXT_CHARS_MAX = 90
_DATA_CHARS = (ADDRESS_BYTES * 8 + 4) // 5  # 32 five-bit groups, no padding bits


def address_from_public_key(public_key: bytes) -> bytes:
    """The 20-byte address of an Ed25519 public key: keyed BLAKE3, truncated."""
    if not isinstance(public_key, bytes | bytearray) or len(public_key) != PUBLIC_KEY_BYTES:
        raise InvalidKey(f"a public key is {PUBLIC_KEY_BYTES} bytes")
    return digest(bytes(public_key), ADDRESS_KEY)[:ADDRESS_BYTES]


def _generator_xor(top: int) -> int:
    """The XOR of the generators picked by the bits of `top` (the checksum's top five)."""
    result = 0
    for i, generator in enumerate(_GENERATORS):
        if (top >> i) & 1:
            result ^= generator
    return result


_TOP_XOR = tuple(_generator_xor(top) for top in range(32))


def _polymod(values: list[int], checksum: int = 1) -> int:
    """BIP-350's checksum polynomial over `values`, continuing from `checksum`."""
    top_xor = _TOP_XOR
    for value in values:
        checksum = ((checksum & 0x1FFFFFF) << 5 ^ value) ^ top_xor[checksum >> 25]
    return checksum


def _expand_hrp(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


# The checksum's state after the address prefix, which every address starts with.
_ADDRESS_HRP_STATE = _polymod(_expand_hrp(ADDRESS_HRP))


def _regroup(data: bytes | list[int], from_bits: int, to_bits: int, pad: bool) -> list[int]:
    """Regroup a bit string; strict (no non-zero padding) when not padding."""
    accumulator, bits, result = 0, 0, []
    mask = (1 << to_bits) - 1
    for value in data:
        accumulator = (accumulator << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            result.append((accumulator >> bits) & mask)
    if pad and bits:
        result.append((accumulator << (to_bits - bits)) & mask)
    elif not pad and (bits >= from_bits or (accumulator << (to_bits - bits)) & mask):
        raise InvalidAddress("address has non-zero padding bits")
    return result


def bech32m_checksum_ok(text: str) -> bool:
    """True when `text` is a syntactically valid bech32m string (any prefix)."""
    try:
        _split(text)
    except InvalidAddress:
        return False
    return True


def _split(text: str) -> tuple[str, list[int]]:
    if not isinstance(text, str):
        raise InvalidAddress("an address must be text")
    if len(text) > _TEXT_CHARS_MAX:
        raise InvalidAddress(f"address is longer than {_TEXT_CHARS_MAX} characters")
    if any(ord(c) < 33 or ord(c) > 126 for c in text):
        raise InvalidAddress("address has a character outside printable ASCII")
    if text.lower() != text and text.upper() != text:
        raise InvalidAddress("address mixes upper and lower case")
    text = text.lower()
    separator = text.rfind("1")
    if separator < 1 or separator + _CHECKSUM_CHARS + 1 > len(text):
        raise InvalidAddress("address has no prefix separator '1' or is too short")
    hrp, rest = text[:separator], text[separator + 1 :]
    bad = [c for c in rest if c not in _CHAR_VALUE]
    if bad:
        raise InvalidAddress(f"address has an invalid character {bad[0]!r}")
    values = [_CHAR_VALUE[c] for c in rest]
    if _polymod(_expand_hrp(hrp) + values) != _BECH32M_CONST:
        raise InvalidAddress("address checksum does not match (typo?)")
    return hrp, values[:-_CHECKSUM_CHARS]


def encode_address(address: bytes) -> str:
    """The bech32m text form (`cm1...`) of a 20-byte address."""
    if not isinstance(address, bytes | bytearray) or len(address) != ADDRESS_BYTES:
        raise InvalidAddress(f"an address is {ADDRESS_BYTES} bytes")
    values = _regroup(bytes(address), 8, 5, pad=True)
    polymod = _polymod(values + [0] * _CHECKSUM_CHARS, _ADDRESS_HRP_STATE)
    checksum = [(polymod ^ _BECH32M_CONST) >> 5 * (5 - i) & 31 for i in range(_CHECKSUM_CHARS)]
    return ADDRESS_HRP + "1" + "".join(_CHARSET[v] for v in values + checksum)


def decode_address(text: str) -> bytes:
    """The 20 address bytes of `cm1...` text; InvalidAddress says what is wrong."""
    hrp, values = _split(text)
    if hrp != ADDRESS_HRP:
        raise InvalidAddress(f"address prefix is {hrp!r}, expected {ADDRESS_HRP!r}")
    if len(values) != _DATA_CHARS:
        raise InvalidAddress(
            f"address has {len(values)} data characters, expected {_DATA_CHARS} "
            f"({ADDRESS_BYTES} bytes)"
        )
    address = bytes(_regroup(values, 5, 8, pad=False))
    assert len(address) == ADDRESS_BYTES
    return address
