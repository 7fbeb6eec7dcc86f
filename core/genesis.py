"""The genesis file: strict JSON loader, canonical binary encoding and hash, writer.

File (JSON, every field required, no others):

    {"chain_id": str, "genesis_time_ms": int,
     "initial_balances": [{"address": "cm1...", "amount": int}],
     "validators": [{"public_key": hex32, "power": int}],
     "params": {"fee_min": int}}

`genesis_hash` is BLAKE3 of the canonical binary encoding (docs/state.md),
never of the JSON text, so reformatting the file does not change the chain.
Every fault is `InvalidGenesis` with a one-line message naming the field.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .address import decode_address, encode_address
from .constants import (
    ADDRESS_BYTES,
    CHAIN_ID_BYTES_MAX,
    GENESIS_BALANCES_MAX,
    GENESIS_FILE_BYTES_MAX,
    GENESIS_VALIDATORS_MAX,
    GENESIS_VERSION,
    PUBLIC_KEY_BYTES,
    U64_MAX,
    VALIDATOR_SET_CONTEXT,
)
from .diskio import write_file_atomic
from .encoding import Writer
from .errors import InvalidAddress, InvalidGenesis, InvalidInput
from .hashing import digest, domain_key
from .tx import check_chain_id

VALIDATOR_SET_KEY = domain_key(VALIDATOR_SET_CONTEXT)


@dataclass(frozen=True, slots=True)
class Validator:
    """A validator: Ed25519 public key and voting power (> 0)."""

    public_key: bytes
    power: int


@dataclass(frozen=True, slots=True)
class Genesis:
    """A checked genesis: balances sorted by address, validators in file order."""

    chain_id: str
    genesis_time_ms: int
    initial_balances: tuple[tuple[bytes, int], ...]
    validators: tuple[Validator, ...]
    fee_min: int

    def __post_init__(self) -> None:
        _check(self)

    @property
    def total_supply(self) -> int:
        """Sum of the initial balances (<= U64_MAX)."""
        return sum(amount for _, amount in self.initial_balances)

    def encode(self) -> bytes:
        """Canonical bytes: version, chain id, time, balances, validators, params."""
        writer = Writer().u8(GENESIS_VERSION)
        writer.sized(self.chain_id.encode("ascii"), 1, CHAIN_ID_BYTES_MAX)
        writer.u64(self.genesis_time_ms).u32(len(self.initial_balances))
        for address, amount in self.initial_balances:
            writer.fixed(address, ADDRESS_BYTES).u64(amount)
        writer.raw(encode_validators(self.validators))
        writer.u64(self.fee_min)
        return writer.getvalue()

    def hash(self) -> bytes:
        """genesis_hash: BLAKE3 of `encode()`."""
        return digest(self.encode())

    @property
    def validator_set_hash(self) -> bytes:
        """Keyed BLAKE3 (VALIDATOR_SET_KEY) of the encoded validator set."""
        return digest(encode_validators(self.validators), VALIDATOR_SET_KEY)

    def to_json(self) -> dict[str, Any]:
        """The file form (a dict for json.dumps)."""
        return {
            "chain_id": self.chain_id,
            "genesis_time_ms": self.genesis_time_ms,
            "initial_balances": [
                {"address": encode_address(address), "amount": amount}
                for address, amount in self.initial_balances
            ],
            "validators": [
                {"public_key": v.public_key.hex(), "power": v.power} for v in self.validators
            ],
            "params": {"fee_min": self.fee_min},
        }


def encode_validators(validators: Iterable[Validator]) -> bytes:
    """count u16, then public key (32) || power u64 each, in order."""
    items = list(validators)
    writer = Writer().u16(len(items))
    for validator in items:
        writer.fixed(validator.public_key, PUBLIC_KEY_BYTES).u64(validator.power)
    return writer.getvalue()


def _u64(field: str, value: object, positive: bool = False) -> int:
    if type(value) is not int:
        raise InvalidGenesis(f"{field}: expected an integer, got {type(value).__name__}")
    if not (1 if positive else 0) <= value <= U64_MAX:
        low = "1" if positive else "0"
        raise InvalidGenesis(f"{field}: {value} is outside [{low}, 2^64 - 1]")
    return value


def _check(genesis: Genesis) -> None:
    """Every genesis rule that does not depend on the JSON form."""
    try:
        check_chain_id(genesis.chain_id)
    except InvalidInput as exc:
        raise InvalidGenesis(f"chain_id: {exc}") from None
    _u64("genesis_time_ms", genesis.genesis_time_ms)
    _u64("params.fee_min", genesis.fee_min)
    if len(genesis.initial_balances) > GENESIS_BALANCES_MAX:
        raise InvalidGenesis(f"initial_balances: more than {GENESIS_BALANCES_MAX} entries")
    previous = b""
    total = 0
    for index, (address, amount) in enumerate(genesis.initial_balances):
        field = f"initial_balances[{index}]"
        if not isinstance(address, bytes) or len(address) != ADDRESS_BYTES:
            raise InvalidGenesis(f"{field}.address: not a {ADDRESS_BYTES}-byte address")
        if address == previous:
            raise InvalidGenesis(f"{field}.address: duplicate address {encode_address(address)}")
        if address < previous:
            raise InvalidGenesis(f"{field}.address: balances must be sorted by address")
        previous = address
        total += _u64(f"{field}.amount", amount)
        if total > U64_MAX:
            raise InvalidGenesis("initial_balances: total supply exceeds 2^64 - 1")
    if not genesis.validators:
        raise InvalidGenesis("validators: the validator set is empty")
    if len(genesis.validators) > GENESIS_VALIDATORS_MAX:
        raise InvalidGenesis(f"validators: more than {GENESIS_VALIDATORS_MAX} validators")
    seen: set[bytes] = set()
    power_total = 0
    for index, validator in enumerate(genesis.validators):
        field = f"validators[{index}]"
        key = validator.public_key
        if not isinstance(key, bytes) or len(key) != PUBLIC_KEY_BYTES:
            raise InvalidGenesis(f"{field}.public_key: not {PUBLIC_KEY_BYTES} bytes")
        if key in seen:
            raise InvalidGenesis(f"{field}.public_key: duplicate validator {key.hex()}")
        seen.add(key)
        power_total += _u64(f"{field}.power", validator.power, positive=True)
        if power_total > U64_MAX:
            raise InvalidGenesis("validators: total power exceeds 2^64 - 1")


def make_genesis(
    chain_id: str,
    balances: Iterable[tuple[bytes | str, int]],
    validators: Iterable[tuple[bytes, int] | Validator],
    genesis_time_ms: int = 0,
    fee_min: int = 0,
) -> Genesis:
    """A checked Genesis; addresses as bytes or `cm1...` text, any order (sorted here)."""
    entries: list[tuple[bytes, int]] = []
    for index, (address, amount) in enumerate(balances):
        if isinstance(address, str):
            address = _address(f"initial_balances[{index}].address", address)
        entries.append((address, amount))
    entries.sort(key=lambda entry: entry[0])
    vals = tuple(v if isinstance(v, Validator) else Validator(v[0], v[1]) for v in validators)
    return Genesis(chain_id, genesis_time_ms, tuple(entries), vals, fee_min)


def _address(field: str, text: object) -> bytes:
    if not isinstance(text, str):
        raise InvalidGenesis(f"{field}: expected a cm1... string, got {type(text).__name__}")
    try:
        return decode_address(text)
    except InvalidAddress as exc:
        raise InvalidGenesis(f"{field}: {exc}") from None


def _object(field: str, value: object, keys: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidGenesis(f"{field}: expected an object, got {type(value).__name__}")
    unknown = sorted(set(value) - set(keys))
    if unknown:
        raise InvalidGenesis(f"{field}: unknown field {unknown[0]!r}")
    missing = [key for key in keys if key not in value]
    if missing:
        raise InvalidGenesis(f"{field}: missing field {missing[0]!r}")
    return value


def _list(field: str, value: object) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidGenesis(f"{field}: expected a list, got {type(value).__name__}")
    return value


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise InvalidGenesis(f"{key}: field given twice")
        result[key] = value
    return result


def _refuse_float(text: str) -> float:
    raise InvalidGenesis(f"number {text}: floats are not allowed (integers only)")


def parse_genesis(text: str | bytes) -> Genesis:
    """A checked Genesis from JSON text; InvalidGenesis for any fault."""
    if len(text) > GENESIS_FILE_BYTES_MAX:
        raise InvalidGenesis(f"genesis: file is over {GENESIS_FILE_BYTES_MAX} bytes")
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicate_keys,
                          parse_float=_refuse_float, parse_constant=_refuse_float)
    except (ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, InvalidGenesis):
            raise
        raise InvalidGenesis(f"genesis: not valid JSON: {exc}") from None
    except RecursionError:  # the C scanner counts nesting against the recursion limit
        raise InvalidGenesis("genesis: not valid JSON: arrays or objects nested too "
                             "deeply") from None
    top = _object("genesis", data,
                  ("chain_id", "genesis_time_ms", "initial_balances", "validators", "params"))
    if not isinstance(top["chain_id"], str):
        raise InvalidGenesis("chain_id: expected a string")
    params = _object("params", top["params"], ("fee_min",))
    balances: list[tuple[bytes, int]] = []
    seen: set[bytes] = set()
    for index, item in enumerate(_list("initial_balances", top["initial_balances"])):
        field = f"initial_balances[{index}]"
        entry = _object(field, item, ("address", "amount"))
        address = _address(f"{field}.address", entry["address"])
        if address in seen:
            raise InvalidGenesis(f"{field}.address: duplicate address {entry['address']}")
        seen.add(address)
        balances.append((address, _u64(f"{field}.amount", entry["amount"])))
    validators: list[Validator] = []
    for index, item in enumerate(_list("validators", top["validators"])):
        field = f"validators[{index}]"
        entry = _object(field, item, ("public_key", "power"))
        key_text = entry["public_key"]
        if not isinstance(key_text, str) or len(key_text) != 2 * PUBLIC_KEY_BYTES:
            raise InvalidGenesis(f"{field}.public_key: expected {2 * PUBLIC_KEY_BYTES} hex digits")
        try:
            key = bytes.fromhex(key_text)
        except ValueError:
            raise InvalidGenesis(f"{field}.public_key: not hex") from None
        if key.hex() != key_text:
            raise InvalidGenesis(f"{field}.public_key: use lower-case hex")
        validators.append(Validator(key, _u64(f"{field}.power", entry["power"], positive=True)))
    return make_genesis(top["chain_id"], balances, validators,
                        genesis_time_ms=_u64("genesis_time_ms", top["genesis_time_ms"]),
                        fee_min=_u64("params.fee_min", params["fee_min"]))


def load_genesis(path: str | os.PathLike[str]) -> Genesis:
    """Read and check a genesis file."""
    try:
        size = Path(path).stat().st_size
        if size > GENESIS_FILE_BYTES_MAX:
            raise InvalidGenesis(f"genesis: file is over {GENESIS_FILE_BYTES_MAX} bytes")
        text = Path(path).read_bytes()
    except OSError as exc:
        raise InvalidGenesis(f"genesis: cannot read {path}: {exc.strerror}") from None
    return parse_genesis(text)


def write_genesis(path: str | os.PathLike[str], genesis: Genesis) -> None:
    """Write `genesis` as JSON (indented, trailing newline): temp file, fsync, rename.

    A failure for space is DiskFull naming `path`; `path` is then untouched.
    """
    write_file_atomic(path, (json.dumps(genesis.to_json(), indent=2) + "\n").encode())
