"""State keys and canonical values of the validator tables (docs/cometbft.md section 7).

Table 0x40, one record per bonded validator:

    0x40 || public key (32)  ->  version u8 | power u64 | bond u64 | operator (20)
                                 | inactive_since_ms u64 | slashed_height u64

Table 0x41, the signing sets and what finds them:

    0x41 00                         -> version u8 | count u8 | height u64 * count
                                       (the effective heights of the newest sets, ascending)
    0x41 01 || height u64           -> version u8 | validator list (genesis encoding):
                                       the set that signs from `height` until the next entry
    0x41 02 || CometBFT address (20) -> version u8 | public key (32)
    0x41 03                         -> version u8 | count u16 | public key * count (sorted):
                                       validators whose power changed in this block
                                       (written and deleted within one block)

Table 0x42, open proposals of a validator-set change put to a vote:

    0x42 || proposal id (32)        -> version u8 | public key (32) | power u64
                                       | count u16 | voter public key * count (sorted)

Every decoder is strict (`DecodeError`): one encoding per value.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from ..abci.types import validator_address
from ..constants import (
    ADDRESS_BYTES,
    PROPOSAL_VERSION,
    PUBLIC_KEY_BYTES,
    TABLE_GOVERNANCE,
    TABLE_VALIDATOR_SETS,
    TABLE_VALIDATORS,
    VALIDATOR_PENDING_MAX,
    VALIDATOR_SET_VERSION,
    VALIDATOR_SETS_KEPT,
    VALIDATOR_VERSION,
    VALIDATORS_MAX,
)
from ..encoding import Reader, Writer
from ..errors import DecodeError
from ..genesis import Validator, encode_validators
from ..hashing import digest

_RECORD_PREFIX = bytes([TABLE_VALIDATORS])
SET_INDEX_KEY = bytes([TABLE_VALIDATOR_SETS, 0x00])
_SET_PREFIX = bytes([TABLE_VALIDATOR_SETS, 0x01])
_ADDRESS_PREFIX = bytes([TABLE_VALIDATOR_SETS, 0x02])
PENDING_KEY = bytes([TABLE_VALIDATOR_SETS, 0x03])
_PROPOSAL_PREFIX = bytes([TABLE_GOVERNANCE])
_PROPOSAL_ID_DOMAIN = b"chainmall/validator-proposal/v1\x00"


def _check_key(public_key: bytes) -> bytes:
    if type(public_key) is not bytes or len(public_key) != PUBLIC_KEY_BYTES:
        raise ValueError(f"a validator public key is {PUBLIC_KEY_BYTES} bytes")
    return public_key


def record_key(public_key: bytes) -> bytes:
    """0x40 || public key."""
    return _RECORD_PREFIX + _check_key(public_key)


def set_key(height: int) -> bytes:
    """0x41 01 || height u64: the set that signs from `height` on."""
    return _SET_PREFIX + height.to_bytes(8, "big")


def set_key_range(below: int) -> tuple[bytes, bytes]:
    """The key range of set entries effective at heights < `below`."""
    return _SET_PREFIX + bytes(8), set_key(below)


def address_key(address: bytes) -> bytes:
    """0x41 02 || CometBFT address (SHA-256(public key)[:20])."""
    if len(address) != 20:
        raise ValueError("a CometBFT validator address is 20 bytes")
    return _ADDRESS_PREFIX + address


def address_key_of(public_key: bytes) -> bytes:
    """The address index key of validator `public_key`."""
    return address_key(validator_address(_check_key(public_key)))


def proposal_id(public_key: bytes, power: int) -> bytes:
    """The id of the proposal to give `public_key` the power `power`."""
    return digest(_PROPOSAL_ID_DOMAIN + _check_key(public_key) + power.to_bytes(8, "big"))


def proposal_key(identifier: bytes) -> bytes:
    """0x42 || proposal id."""
    return _PROPOSAL_PREFIX + identifier


@dataclass(frozen=True, slots=True)
class ValidatorRecord:
    """A bonded validator: its power (0: not in the set), bond, operator account, the
    block time it last lost its power, and the highest infraction height slashed."""

    power: int
    bond: int
    operator: bytes
    inactive_since_ms: int = 0
    slashed_height: int = 0

    def encode(self) -> bytes:
        """The canonical value (module docstring)."""
        writer = Writer().u8(VALIDATOR_VERSION).u64(self.power).u64(self.bond)
        writer.fixed(self.operator, ADDRESS_BYTES)
        return writer.u64(self.inactive_since_ms).u64(self.slashed_height).getvalue()


def decode_record(data: bytes) -> ValidatorRecord:
    """Strictly decode a validator record."""
    reader = Reader(data, "validator record")
    version = reader.u8("version")
    if version != VALIDATOR_VERSION:
        raise DecodeError(f"validator record: unsupported version {version}")
    record = ValidatorRecord(reader.u64("power"), reader.u64("bond"),
                             reader.fixed(ADDRESS_BYTES, "operator"), reader.u64("inactive since"),
                             reader.u64("slashed height"))
    reader.finish()
    return record


def encode_set(validators: tuple[Validator, ...]) -> bytes:
    """version u8 || the genesis encoding of the list (count u16, key || power u64 each)."""
    return bytes([VALIDATOR_SET_VERSION]) + encode_validators(validators)


def decode_set(data: bytes) -> tuple[Validator, ...]:
    """Strictly decode a signing set: distinct keys, positive powers, at most VALIDATORS_MAX."""
    reader = Reader(data, "validator set")
    version = reader.u8("version")
    if version != VALIDATOR_SET_VERSION:
        raise DecodeError(f"validator set: unsupported version {version}")
    count = reader.u16("count")
    if not 1 <= count <= VALIDATORS_MAX:
        raise DecodeError(f"validator set: {count} validators, expected 1..{VALIDATORS_MAX}")
    validators = []
    seen: set[bytes] = set()
    for _ in range(count):
        key = reader.fixed(PUBLIC_KEY_BYTES, "public key")
        power = reader.u64("power")
        if power == 0 or key in seen:
            raise DecodeError("validator set: a zero power or a key listed twice")
        seen.add(key)
        validators.append(Validator(key, power))
    reader.finish()
    return tuple(validators)


def encode_index(heights: tuple[int, ...]) -> bytes:
    """version u8 || count u8 || ascending heights u64."""
    writer = Writer().u8(VALIDATOR_SET_VERSION).u8(len(heights))
    for height in heights:
        writer.u64(height)
    return writer.getvalue()


def decode_index(data: bytes) -> tuple[int, ...]:
    """Strictly decode the set index: 1..VALIDATOR_SETS_KEPT strictly ascending heights."""
    reader = Reader(data, "validator set index")
    version = reader.u8("version")
    if version != VALIDATOR_SET_VERSION:
        raise DecodeError(f"validator set index: unsupported version {version}")
    count = reader.u8("count")
    if not 1 <= count <= VALIDATOR_SETS_KEPT:
        raise DecodeError(f"validator set index: {count} heights")
    heights = tuple(reader.u64("height") for _ in range(count))
    reader.finish()
    if any(a >= b for a, b in itertools.pairwise(heights)):
        raise DecodeError("validator set index: heights not ascending")
    return heights


def encode_address_entry(public_key: bytes) -> bytes:
    """version u8 || public key."""
    return bytes([VALIDATOR_VERSION]) + _check_key(public_key)


def decode_address_entry(data: bytes) -> bytes:
    """The public key of an address index entry."""
    reader = Reader(data, "validator address")
    version = reader.u8("version")
    if version != VALIDATOR_VERSION:
        raise DecodeError(f"validator address: unsupported version {version}")
    key = reader.fixed(PUBLIC_KEY_BYTES, "public key")
    reader.finish()
    return key


def _encode_keys(writer: Writer, keys: tuple[bytes, ...]) -> bytes:
    writer.u16(len(keys))
    for key in keys:
        writer.fixed(key, PUBLIC_KEY_BYTES)
    return writer.getvalue()


def _decode_keys(reader: Reader, limit: int, what: str) -> tuple[bytes, ...]:
    count = reader.u16("count")
    if count > limit:
        raise DecodeError(f"{what}: {count} keys, limit {limit}")
    keys = tuple(reader.fixed(PUBLIC_KEY_BYTES, "public key") for _ in range(count))
    if any(a >= b for a, b in itertools.pairwise(keys)):
        raise DecodeError(f"{what}: keys not sorted and distinct")
    reader.finish()
    return keys


def encode_pending(keys: tuple[bytes, ...]) -> bytes:
    """version u8 || count u16 || sorted public keys."""
    return _encode_keys(Writer().u8(VALIDATOR_VERSION), keys)


def decode_pending(data: bytes) -> tuple[bytes, ...]:
    """The validators whose power changed in this block."""
    reader = Reader(data, "pending validators")
    version = reader.u8("version")
    if version != VALIDATOR_VERSION:
        raise DecodeError(f"pending validators: unsupported version {version}")
    return _decode_keys(reader, VALIDATOR_PENDING_MAX, "pending validators")


@dataclass(frozen=True, slots=True)
class Proposal:
    """An open proposal: give `public_key` the power `power`; the validators that voted."""

    public_key: bytes
    power: int
    voters: tuple[bytes, ...]

    def encode(self) -> bytes:
        """The canonical value (module docstring)."""
        writer = Writer().u8(PROPOSAL_VERSION).fixed(self.public_key, PUBLIC_KEY_BYTES)
        return _encode_keys(writer.u64(self.power), self.voters)


def decode_proposal(data: bytes) -> Proposal:
    """Strictly decode a proposal."""
    reader = Reader(data, "proposal")
    version = reader.u8("version")
    if version != PROPOSAL_VERSION:
        raise DecodeError(f"proposal: unsupported version {version}")
    key = reader.fixed(PUBLIC_KEY_BYTES, "public key")
    power = reader.u64("power")
    return Proposal(key, power, _decode_keys(reader, VALIDATORS_MAX, "proposal voters"))
