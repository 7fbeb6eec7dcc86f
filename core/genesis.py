"""The genesis file: strict JSON loader, canonical binary encoding and hash, writer.

File (JSON, every field required, no others, except `mall` and `governance`,
which may be left out and then take `MallGenesis()` and `GovernanceGenesis()`):

    {"chain_id": str, "genesis_time_ms": int,
     "initial_balances": [{"address": "cm1...", "amount": int}],
     "validators": [{"public_key": hex32, "power": int}],
     "params": {"fee_min": int},
     "mall": {"certifiers": [{"address": "cm1...", "name": str}],
              "tax_authorities": [{"jurisdiction": str, "address": "cm1...",
                                   "rate_bps": int}],
              "params": {<MallParams fields>: int}},
     "governance": {"authorities": ["cm1..."],
                    "bonds": [{"public_key": hex32, "operator": "cm1...", "amount": int}],
                    "params": {"bond_min": int, "double_sign_slash_bps": int,
                               "unbond_delay_ms": int}}}

The governance section (docs/cometbft.md section 7) names the accounts that
may change the validator set on their own, the genesis validators' bonds and
operators, and the rule parameters.

`genesis_hash` is BLAKE3 of the canonical binary encoding (docs/state.md),
never of the JSON text, so reformatting the file does not change the chain.
Every fault is `InvalidGenesis` with a one-line message naming the field.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .address import address_from_public_key, decode_address, encode_address
from .constants import (
    ADDRESS_BYTES,
    BPS_DENOMINATOR,
    CHAIN_ID_BYTES_MAX,
    DISPUTE_ROUNDS_MAX,
    GENESIS_BALANCES_MAX,
    GENESIS_FILE_BYTES_MAX,
    GENESIS_VALIDATORS_MAX,
    GENESIS_VERSION,
    GOVERNANCE_AUTHORITIES_MAX,
    JURISDICTION_BYTES_MAX,
    MALL_CERTIFIERS_MAX,
    MALL_JURISDICTIONS_MAX,
    MALL_NAME_BYTES_MAX,
    MALL_TIMEOUT_MS_MAX,
    PUBLIC_KEY_BYTES,
    U16_MAX,
    U64_MAX,
    VALIDATOR_SET_CONTEXT,
    VALIDATOR_TOTAL_POWER_MAX,
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
class Certifier:
    """A certifier named in genesis: it certifies merchants as official brand sellers."""

    address: bytes
    name: str


@dataclass(frozen=True, slots=True)
class TaxAuthority:
    """The tax authority of one jurisdiction and the rate it starts with (basis points)."""

    jurisdiction: str
    address: bytes
    rate_bps: int


# (name, encoded width in bytes, low, high): the mall's integer parameters, in
# their canonical order. `high` None means the width's maximum.
_MALL_PARAM_RULES: tuple[tuple[str, int, int, int | None], ...] = (
    ("merchant_bond_min", 8, 0, None),
    ("arbitrator_bond_min", 8, 1, None),
    ("commission_bps", 2, 0, BPS_DENOMINATOR),
    ("tax_rate_max_bps", 2, 0, BPS_DENOMINATOR),
    ("ship_timeout_ms", 8, 1, MALL_TIMEOUT_MS_MAX),
    ("delivery_timeout_ms", 8, 1, MALL_TIMEOUT_MS_MAX),
    ("confirm_timeout_ms", 8, 1, MALL_TIMEOUT_MS_MAX),
    ("ruling_timeout_ms", 8, 1, MALL_TIMEOUT_MS_MAX),
    ("panel_threshold", 8, 0, None),
    ("arbitration_fee_bps", 2, 0, BPS_DENOMINATOR),
    ("slash_bps", 2, 0, BPS_DENOMINATOR),
    ("dispute_rounds_max", 1, 1, DISPUTE_ROUNDS_MAX),
    ("fallback_buyer_bps", 2, 0, BPS_DENOMINATOR),
)
_DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class MallParams:
    """The mall's rule parameters (docs/mall.md section 2); integers only."""

    merchant_bond_min: int = 1_000
    arbitrator_bond_min: int = 1_000
    commission_bps: int = 0
    tax_rate_max_bps: int = 5_000
    ship_timeout_ms: int = 7 * _DAY_MS
    delivery_timeout_ms: int = 21 * _DAY_MS
    confirm_timeout_ms: int = 7 * _DAY_MS
    ruling_timeout_ms: int = 3 * _DAY_MS
    panel_threshold: int = 100_000
    arbitration_fee_bps: int = 200
    slash_bps: int = 1_000
    dispute_rounds_max: int = 3
    fallback_buyer_bps: int = BPS_DENOMINATOR

    def __post_init__(self) -> None:
        for name, width, low, high in _MALL_PARAM_RULES:
            top = (1 << (8 * width)) - 1 if high is None else high
            value = getattr(self, name)
            if type(value) is not int:
                raise InvalidGenesis(f"mall.params.{name}: expected an integer, "
                                     f"got {type(value).__name__}")
            if not low <= value <= top:
                raise InvalidGenesis(f"mall.params.{name}: {value} is outside [{low}, {top}]")
        if self.commission_bps + self.tax_rate_max_bps > BPS_DENOMINATOR:
            raise InvalidGenesis("mall.params: commission_bps + tax_rate_max_bps exceeds 10000")

    def encode(self, writer: Writer) -> None:
        """Each parameter at its width, in `_MALL_PARAM_RULES` order."""
        for name, width, _, _ in _MALL_PARAM_RULES:
            value = getattr(self, name)
            {1: writer.u8, 2: writer.u16, 8: writer.u64}[width](value)


@dataclass(frozen=True, slots=True)
class MallGenesis:
    """The mall section: certifiers (by address), tax authorities (by jurisdiction), params."""

    certifiers: tuple[Certifier, ...] = ()
    tax_authorities: tuple[TaxAuthority, ...] = ()
    params: MallParams = field(default_factory=MallParams)

    def __post_init__(self) -> None:
        _check_mall(self)

    def encode(self, writer: Writer) -> None:
        """certifiers u16 count || (address || name u8-sized)*, authorities u16 count ||
        (jurisdiction u8-sized || address || rate_bps u16)*, params."""
        writer.u16(len(self.certifiers))
        for certifier in self.certifiers:
            writer.fixed(certifier.address, ADDRESS_BYTES)
            writer.sized(certifier.name.encode("utf-8"), 1, MALL_NAME_BYTES_MAX)
        writer.u16(len(self.tax_authorities))
        for authority in self.tax_authorities:
            writer.sized(authority.jurisdiction.encode("ascii"), 1, JURISDICTION_BYTES_MAX)
            writer.fixed(authority.address, ADDRESS_BYTES).u16(authority.rate_bps)
        self.params.encode(writer)

    def certifier(self, address: bytes) -> Certifier | None:
        """The certifier with `address`, None if it is not one."""
        for certifier in self.certifiers:
            if certifier.address == address:
                return certifier
        return None

    def authority(self, jurisdiction: str) -> TaxAuthority | None:
        """The tax authority of `jurisdiction`, None if none is named."""
        for authority in self.tax_authorities:
            if authority.jurisdiction == jurisdiction:
                return authority
        return None

    def to_json(self) -> dict[str, Any]:
        """The file form of the section."""
        return {
            "certifiers": [{"address": encode_address(c.address), "name": c.name}
                           for c in self.certifiers],
            "tax_authorities": [{"jurisdiction": a.jurisdiction,
                                 "address": encode_address(a.address),
                                 "rate_bps": a.rate_bps} for a in self.tax_authorities],
            "params": {f.name: getattr(self.params, f.name) for f in fields(MallParams)},
        }


_JURISDICTION_FIRST = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_JURISDICTION_REST = _JURISDICTION_FIRST | frozenset(b"0123456789-")


def check_jurisdiction(text: object) -> str:
    """A jurisdiction code (2-16 of A-Z, 0-9 and '-', starting with a letter), or ValueError."""
    if not isinstance(text, str):
        raise ValueError(f"expected a string, got {type(text).__name__}")
    raw = text.encode("ascii", errors="replace")
    if not 2 <= len(raw) <= JURISDICTION_BYTES_MAX:
        raise ValueError(f"a jurisdiction is 2..{JURISDICTION_BYTES_MAX} characters")
    if raw[0] not in _JURISDICTION_FIRST or not _JURISDICTION_REST.issuperset(raw):
        raise ValueError(f"jurisdiction {text!r}: use A-Z, 0-9 and '-', starting with a letter")
    return text


def _check_mall(mall: MallGenesis) -> None:
    """The mall section's rules (those that do not depend on the JSON form)."""
    if not isinstance(mall.params, MallParams):
        raise InvalidGenesis("mall.params: expected MallParams")
    if len(mall.certifiers) > MALL_CERTIFIERS_MAX:
        raise InvalidGenesis(f"mall.certifiers: more than {MALL_CERTIFIERS_MAX} certifiers")
    previous = b""
    for index, certifier in enumerate(mall.certifiers):
        where = f"mall.certifiers[{index}]"
        if not isinstance(certifier.address, bytes) or len(certifier.address) != ADDRESS_BYTES:
            raise InvalidGenesis(f"{where}.address: not a {ADDRESS_BYTES}-byte address")
        if certifier.address <= previous:
            raise InvalidGenesis(f"{where}.address: certifiers must be unique and sorted "
                                 "by address")
        previous = certifier.address
        name = certifier.name
        if not isinstance(name, str) or not 1 <= len(name.encode("utf-8", "replace")) \
                <= MALL_NAME_BYTES_MAX:
            raise InvalidGenesis(f"{where}.name: 1..{MALL_NAME_BYTES_MAX} bytes of UTF-8")
        if not name.isprintable():
            raise InvalidGenesis(f"{where}.name: control characters are not allowed")
    if len(mall.tax_authorities) > MALL_JURISDICTIONS_MAX:
        raise InvalidGenesis(f"mall.tax_authorities: more than {MALL_JURISDICTIONS_MAX}")
    previous_jurisdiction = b""
    for index, authority in enumerate(mall.tax_authorities):
        where = f"mall.tax_authorities[{index}]"
        try:
            check_jurisdiction(authority.jurisdiction)
        except ValueError as exc:
            raise InvalidGenesis(f"{where}.jurisdiction: {exc}") from None
        raw = authority.jurisdiction.encode("ascii")
        if raw <= previous_jurisdiction:
            raise InvalidGenesis(f"{where}.jurisdiction: jurisdictions must be unique and "
                                 "sorted")
        previous_jurisdiction = raw
        if not isinstance(authority.address, bytes) or len(authority.address) != ADDRESS_BYTES:
            raise InvalidGenesis(f"{where}.address: not a {ADDRESS_BYTES}-byte address")
        rate = authority.rate_bps
        if type(rate) is not int or not 0 <= rate <= mall.params.tax_rate_max_bps:
            raise InvalidGenesis(f"{where}.rate_bps: {rate!r} is outside "
                                 f"[0, tax_rate_max_bps = {mall.params.tax_rate_max_bps}]")


@dataclass(frozen=True, slots=True)
class GovernanceParams:
    """The validator rules' parameters (docs/cometbft.md section 7); integers only.

    `bond_min`: the least bond of a new validator record and of a validator
    given power; `double_sign_slash_bps`: the share of bond and power a
    duplicate vote costs; `unbond_delay_ms`: block time between losing power
    and withdrawing the bond (evidence of earlier misbehaviour can still slash it).
    """

    bond_min: int = 1_000
    double_sign_slash_bps: int = 1_000
    unbond_delay_ms: int = 7 * _DAY_MS

    def __post_init__(self) -> None:
        _u64("governance.params.bond_min", self.bond_min, positive=True)
        _u64("governance.params.unbond_delay_ms", self.unbond_delay_ms)
        bps = self.double_sign_slash_bps
        if type(bps) is not int or not 0 <= bps <= BPS_DENOMINATOR:
            raise InvalidGenesis(f"governance.params.double_sign_slash_bps: {bps!r} is outside "
                                 f"[0, {BPS_DENOMINATOR}]")


@dataclass(frozen=True, slots=True)
class GenesisBond:
    """A genesis validator's bond and the account that operates it (gets it back, votes)."""

    public_key: bytes
    operator: bytes
    amount: int


@dataclass(frozen=True, slots=True)
class GovernanceGenesis:
    """The governance section: authorities (sorted addresses), bonds (sorted by key), params."""

    authorities: tuple[bytes, ...] = ()
    bonds: tuple[GenesisBond, ...] = ()
    params: GovernanceParams = field(default_factory=GovernanceParams)

    def encode(self, writer: Writer) -> None:
        """authorities u16 count || address*, bonds u16 count || (public key || operator ||
        amount u64)*, bond_min u64, double_sign_slash_bps u16, unbond_delay_ms u64."""
        writer.u16(len(self.authorities))
        for address in self.authorities:
            writer.fixed(address, ADDRESS_BYTES)
        writer.u16(len(self.bonds))
        for bond in self.bonds:
            writer.fixed(bond.public_key, PUBLIC_KEY_BYTES).fixed(bond.operator, ADDRESS_BYTES)
            writer.u64(bond.amount)
        params = self.params
        writer.u64(params.bond_min).u16(params.double_sign_slash_bps).u64(params.unbond_delay_ms)

    def bond_of(self, public_key: bytes) -> GenesisBond | None:
        """The genesis bond of validator `public_key`, None if it has none."""
        for bond in self.bonds:
            if bond.public_key == public_key:
                return bond
        return None

    def to_json(self) -> dict[str, Any]:
        """The file form of the section."""
        return {
            "authorities": [encode_address(address) for address in self.authorities],
            "bonds": [{"public_key": b.public_key.hex(), "operator": encode_address(b.operator),
                       "amount": b.amount} for b in self.bonds],
            "params": {"bond_min": self.params.bond_min,
                       "double_sign_slash_bps": self.params.double_sign_slash_bps,
                       "unbond_delay_ms": self.params.unbond_delay_ms},
        }


@dataclass(frozen=True, slots=True)
class Genesis:
    """A checked genesis: balances sorted by address, validators in file order."""

    chain_id: str
    genesis_time_ms: int
    initial_balances: tuple[tuple[bytes, int], ...]
    validators: tuple[Validator, ...]
    fee_min: int
    mall: MallGenesis = field(default_factory=MallGenesis)
    governance: GovernanceGenesis = field(default_factory=GovernanceGenesis)

    def __post_init__(self) -> None:
        _check(self)

    @property
    def total_supply(self) -> int:
        """Sum of the initial balances and the genesis bonds (<= U64_MAX)."""
        return (sum(amount for _, amount in self.initial_balances)
                + sum(bond.amount for bond in self.governance.bonds))

    def operator_of(self, public_key: bytes) -> bytes:
        """The operator address of genesis validator `public_key`: its bond's, else the
        account address of the key itself."""
        bond = self.governance.bond_of(public_key)
        return address_from_public_key(public_key) if bond is None else bond.operator

    def encode(self) -> bytes:
        """Canonical bytes: version, chain id, time, balances, validators, params, mall,
        governance."""
        writer = Writer().u8(GENESIS_VERSION)
        writer.sized(self.chain_id.encode("ascii"), 1, CHAIN_ID_BYTES_MAX)
        writer.u64(self.genesis_time_ms).u32(len(self.initial_balances))
        for address, amount in self.initial_balances:
            writer.fixed(address, ADDRESS_BYTES).u64(amount)
        writer.raw(encode_validators(self.validators))
        writer.u64(self.fee_min)
        self.mall.encode(writer)
        self.governance.encode(writer)
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
            "mall": self.mall.to_json(),
            "governance": self.governance.to_json(),
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
    if not isinstance(genesis.mall, MallGenesis):
        raise InvalidGenesis("mall: expected a MallGenesis")
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
        if power_total > VALIDATOR_TOTAL_POWER_MAX:
            raise InvalidGenesis(f"validators: total power exceeds {VALIDATOR_TOTAL_POWER_MAX} "
                                 "(CometBFT's cap, MaxInt64 / 8)")
    _check_governance(genesis.governance, seen, total)


def _check_governance(governance: GovernanceGenesis, validator_keys: set[bytes],
                      balances_total: int) -> None:
    """The governance section's rules: sorted unique authorities and bonds, bonds only of
    genesis validators, the supply with bonds within u64."""
    if not isinstance(governance, GovernanceGenesis):
        raise InvalidGenesis("governance: expected a GovernanceGenesis")
    if not isinstance(governance.params, GovernanceParams):
        raise InvalidGenesis("governance.params: expected GovernanceParams")
    if len(governance.authorities) > GOVERNANCE_AUTHORITIES_MAX:
        raise InvalidGenesis(f"governance.authorities: more than {GOVERNANCE_AUTHORITIES_MAX}")
    previous = b""
    for index, address in enumerate(governance.authorities):
        where = f"governance.authorities[{index}]"
        if not isinstance(address, bytes) or len(address) != ADDRESS_BYTES:
            raise InvalidGenesis(f"{where}: not a {ADDRESS_BYTES}-byte address")
        if address <= previous:
            raise InvalidGenesis(f"{where}: authorities must be unique and sorted by address")
        previous = address
    if len(governance.bonds) > U16_MAX:
        raise InvalidGenesis("governance.bonds: too many")
    previous = b""
    total = balances_total
    for index, bond in enumerate(governance.bonds):
        where = f"governance.bonds[{index}]"
        if not isinstance(bond, GenesisBond):
            raise InvalidGenesis(f"{where}: expected a GenesisBond")
        key = bond.public_key
        if not isinstance(key, bytes) or len(key) != PUBLIC_KEY_BYTES:
            raise InvalidGenesis(f"{where}.public_key: not {PUBLIC_KEY_BYTES} bytes")
        if key <= previous:
            raise InvalidGenesis(f"{where}.public_key: bonds must be unique and sorted by key")
        previous = key
        if key not in validator_keys:
            raise InvalidGenesis(f"{where}.public_key: {key.hex()} is not a genesis validator")
        if not isinstance(bond.operator, bytes) or len(bond.operator) != ADDRESS_BYTES:
            raise InvalidGenesis(f"{where}.operator: not a {ADDRESS_BYTES}-byte address")
        total += _u64(f"{where}.amount", bond.amount)
        if total > U64_MAX:
            raise InvalidGenesis("governance.bonds: the supply with bonds exceeds 2^64 - 1")




def make_genesis(
    chain_id: str,
    balances: Iterable[tuple[bytes | str, int]],
    validators: Iterable[tuple[bytes, int] | Validator],
    genesis_time_ms: int = 0,
    fee_min: int = 0,
    mall: MallGenesis | None = None,
    governance: GovernanceGenesis | None = None,
) -> Genesis:
    """A checked Genesis; addresses as bytes or `cm1...` text, any order (sorted here).

    `mall` None: the default mall section (no certifiers or tax authorities);
    `governance` None: the default governance section (no authorities, no bonds).
    """
    entries: list[tuple[bytes, int]] = []
    for index, (address, amount) in enumerate(balances):
        if isinstance(address, str):
            address = _address(f"initial_balances[{index}].address", address)
        entries.append((address, amount))
    entries.sort(key=lambda entry: entry[0])
    vals = tuple(v if isinstance(v, Validator) else Validator(v[0], v[1]) for v in validators)
    return Genesis(chain_id, genesis_time_ms, tuple(entries), vals, fee_min,
                   MallGenesis() if mall is None else mall,
                   GovernanceGenesis() if governance is None else governance)


def make_governance(
    authorities: Iterable[bytes | str] = (),
    bonds: Iterable[tuple[bytes, bytes | str, int]] = (),
    params: GovernanceParams | None = None,
) -> GovernanceGenesis:
    """A governance section; addresses as bytes or `cm1...` text, any order (sorted here).

    `bonds` are (validator public key, operator address, amount).
    """
    addresses = sorted(_address(f"governance.authorities[{i}]", a) if isinstance(a, str) else a
                       for i, a in enumerate(authorities))
    made = []
    for index, (public_key, operator, amount) in enumerate(bonds):
        if isinstance(operator, str):
            operator = _address(f"governance.bonds[{index}].operator", operator)
        made.append(GenesisBond(public_key, operator, amount))
    made.sort(key=lambda bond: bond.public_key)
    return GovernanceGenesis(tuple(addresses), tuple(made),
                             GovernanceParams() if params is None else params)


def make_mall(
    certifiers: Iterable[tuple[bytes | str, str]] = (),
    tax_authorities: Iterable[tuple[str, bytes | str, int]] = (),
    params: MallParams | None = None,
) -> MallGenesis:
    """A checked mall section; addresses as bytes or `cm1...` text, any order (sorted here)."""
    named = []
    for index, (address, name) in enumerate(certifiers):
        if isinstance(address, str):
            address = _address(f"mall.certifiers[{index}].address", address)
        named.append(Certifier(address, name))
    named.sort(key=lambda certifier: certifier.address)
    authorities = []
    for index, (jurisdiction, address, rate_bps) in enumerate(tax_authorities):
        if isinstance(address, str):
            address = _address(f"mall.tax_authorities[{index}].address", address)
        authorities.append(TaxAuthority(jurisdiction, address, rate_bps))
    authorities.sort(key=lambda authority: str(authority.jurisdiction))
    return MallGenesis(tuple(named), tuple(authorities),
                       MallParams() if params is None else params)


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
    if isinstance(data, dict):  # the optional sections: their defaults
        data = {"mall": None, "governance": None, **data}
    top = _object("genesis", data, ("chain_id", "genesis_time_ms", "initial_balances",
                                    "validators", "params", "mall", "governance"))
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
        key = _public_key(f"{field}.public_key", entry["public_key"])
        validators.append(Validator(key, _u64(f"{field}.power", entry["power"], positive=True)))
    return make_genesis(top["chain_id"], balances, validators,
                        genesis_time_ms=_u64("genesis_time_ms", top["genesis_time_ms"]),
                        fee_min=_u64("params.fee_min", params["fee_min"]),
                        mall=None if top["mall"] is None else _parse_mall(top["mall"]),
                        governance=None if top["governance"] is None
                        else _parse_governance(top["governance"]))


def _public_key(field: str, text: object) -> bytes:
    if not isinstance(text, str) or len(text) != 2 * PUBLIC_KEY_BYTES:
        raise InvalidGenesis(f"{field}: expected {2 * PUBLIC_KEY_BYTES} hex digits")
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise InvalidGenesis(f"{field}: not hex") from None
    if key.hex() != text:
        raise InvalidGenesis(f"{field}: use lower-case hex")
    return key


def _parse_governance(value: object) -> GovernanceGenesis:
    """The governance section from its JSON form (InvalidGenesis naming the field)."""
    section = _object("governance", value, ("authorities", "bonds", "params"))
    authorities: list[bytes] = []
    for index, item in enumerate(_list("governance.authorities", section["authorities"])):
        address = _address(f"governance.authorities[{index}]", item)
        if address in authorities:
            raise InvalidGenesis(f"governance.authorities[{index}]: duplicate authority {item}")
        authorities.append(address)
    bonds: list[tuple[bytes, bytes, int]] = []
    for index, item in enumerate(_list("governance.bonds", section["bonds"])):
        where = f"governance.bonds[{index}]"
        entry = _object(where, item, ("public_key", "operator", "amount"))
        key = _public_key(f"{where}.public_key", entry["public_key"])
        if any(key == bond[0] for bond in bonds):
            raise InvalidGenesis(f"{where}.public_key: duplicate bond for {key.hex()}")
        bonds.append((key, _address(f"{where}.operator", entry["operator"]),
                      _u64(f"{where}.amount", entry["amount"])))
    params = _object("governance.params", section["params"],
                     ("bond_min", "double_sign_slash_bps", "unbond_delay_ms"))
    for name, number in params.items():
        _u64(f"governance.params.{name}", number)
    return make_governance(authorities, bonds, GovernanceParams(**params))


def _parse_mall(value: object) -> MallGenesis:
    """The mall section from its JSON form (InvalidGenesis naming the field on any fault)."""
    section = _object("mall", value, ("certifiers", "tax_authorities", "params"))
    certifiers: list[tuple[bytes, str]] = []
    seen: set[bytes] = set()
    for index, item in enumerate(_list("mall.certifiers", section["certifiers"])):
        where = f"mall.certifiers[{index}]"
        entry = _object(where, item, ("address", "name"))
        address = _address(f"{where}.address", entry["address"])
        if address in seen:
            raise InvalidGenesis(f"{where}.address: duplicate certifier {entry['address']}")
        seen.add(address)
        if not isinstance(entry["name"], str):
            raise InvalidGenesis(f"{where}.name: expected a string")
        certifiers.append((address, entry["name"]))
    authorities: list[tuple[str, bytes, int]] = []
    jurisdictions: set[str] = set()
    for index, item in enumerate(_list("mall.tax_authorities", section["tax_authorities"])):
        where = f"mall.tax_authorities[{index}]"
        entry = _object(where, item, ("jurisdiction", "address", "rate_bps"))
        try:
            jurisdiction = check_jurisdiction(entry["jurisdiction"])
        except ValueError as exc:
            raise InvalidGenesis(f"{where}.jurisdiction: {exc}") from None
        if jurisdiction in jurisdictions:
            raise InvalidGenesis(f"{where}.jurisdiction: duplicate jurisdiction {jurisdiction}")
        jurisdictions.add(jurisdiction)
        rate = entry["rate_bps"]
        if type(rate) is not int:
            raise InvalidGenesis(f"{where}.rate_bps: expected an integer")
        authorities.append((jurisdiction, _address(f"{where}.address", entry["address"]), rate))
    names = tuple(f.name for f in fields(MallParams))
    params = _object("mall.params", section["params"], names)
    return make_mall(certifiers, authorities, MallParams(**params))


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
