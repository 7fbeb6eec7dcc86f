"""Parties: registration with roles and a bond, updates and unbonding; certification.

A party is `0x10 || address` (docs/mall.md section 4). Merchants and
arbitrators keep a bond of at least their role's genesis minimum; a party's
bond counts toward the total supply (registered with the machine). Bonded
arbitrators are the draw pool (`pool.py`). Certifiers named in genesis certify
a merchant as an official seller of a brand, and revoke it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import NamedTuple

from ..constants import (
    ADDRESS_BYTES,
    DECODE_CACHE_ENTRIES,
    HASH_BYTES,
    JURISDICTION_BYTES_MAX,
    MALL_BRAND_BYTES_MAX,
    MALL_NAME_BYTES_MAX,
    MALL_VERSION,
    PUBLIC_KEY_BYTES,
)
from ..errors import (
    AmountOutOfRange,
    BondTooLow,
    CertificationMissing,
    DecodeError,
    NotCertifier,
    NotRegistered,
    ObligationsOpen,
    PartyExists,
    RoleMissing,
    UnknownJurisdiction,
)
from ..genesis import MallGenesis, MallParams
from . import keys
from .codec import (
    MARK,
    Clock,
    FieldReader,
    MallState,
    StateReader,
    TxContext,
    address_text,
    check_jurisdiction_text,
    check_text,
    decoded_values,
    emit,
    payload_decoder,
    payload_reader,
    put_text,
    value_reader,
    writer,
)
from .funds import credit, debit, invariant
from .pool import NOT_IN_POOL, pool_add, pool_remove
from .vocab import (
    ROLE_ARBITRATOR,
    ROLE_MERCHANT,
    ROLES_ALL,
    role_bit_index,
    role_bits,
    role_names,
)

_PARTY = struct.Struct(">BH32sQIIIQ")  # version .. registered_height; then the texts, hash


class Party(NamedTuple):
    """A registered party (the value under `keys.party(address)`)."""

    roles: int
    public_key: bytes
    bond: int
    open_orders: int  # escrows open with this party as merchant
    open_seats: int  # dispute panel seats held
    pool_index: int  # slot in the arbitrator pool, NOT_IN_POOL if none
    registered_height: int
    jurisdiction: str
    name: str
    profile_hash: bytes

    def encode(self) -> bytes:
        jurisdiction, name = self.jurisdiction.encode(), self.name.encode()
        if len(jurisdiction) > JURISDICTION_BYTES_MAX or len(name) > MALL_NAME_BYTES_MAX:
            raise ValueError("party text over its limit")
        if len(self.profile_hash) != HASH_BYTES:
            raise ValueError("a profile hash is 32 bytes")
        return b"".join((_PARTY.pack(MALL_VERSION, *self[:7]), bytes([len(jurisdiction)]),
                         jurisdiction, bytes([len(name)]), name, self.profile_hash))

    def has(self, role: int) -> bool:
        return bool(self.roles & role)


@decoded_values(DECODE_CACHE_ENTRIES)
def decode_party(value: bytes) -> Party:
    reader = FieldReader(value, "party", DecodeError, _PARTY)
    party = Party(*reader.head[1:],
                  reader.text(JURISDICTION_BYTES_MAX, "jurisdiction", check_jurisdiction_text),
                  reader.text(MALL_NAME_BYTES_MAX, "name"), reader.hash("profile hash"))
    reader.finish()
    return party


_BOND = struct.Struct(">Q")
_BOND_OFFSET = 1 + 2 + PUBLIC_KEY_BYTES  # version, roles, public key


def party_bond(key: bytes, value: bytes) -> int:
    """Supply held by a party entry: its bond (registered with `register_supply`).

    Read at its fixed offset: the supply check runs on every changed entry of
    every block. A value that is not a party's fails the full decode instead.
    """
    if len(value) < _BOND_OFFSET + _BOND.size or value[0] != MALL_VERSION:
        return decode_party(value).bond
    return _BOND.unpack_from(value, _BOND_OFFSET)[0]


def load_party(state: StateReader, address: bytes) -> Party | None:
    raw = state.get(keys.party(address))
    return None if raw is None else decode_party(raw)


def require_party(state: StateReader, address: bytes, role: int = 0,
                  who: str = "the sender") -> Party:
    """The party at `address`; NotRegistered (401) or RoleMissing (403) otherwise."""
    party = load_party(state, address)
    if party is None:
        raise NotRegistered(f"{who} ({address_text(address)}) is not a registered party")
    if role and not party.has(role):
        raise RoleMissing(f"{who} ({address_text(address)}) is not a "
                          f"{'/'.join(role_names(role))}")
    return party


def save_party(state: MallState, address: bytes, party: Party) -> None:
    state.set(keys.party(address), decode_party.remember(party.encode(), party))


def bond_required(roles: int, params: MallParams) -> int:
    """The minimum bond of a set of roles: the sum of its bonded roles' minimums."""
    required = 0
    if roles & ROLE_MERCHANT:
        required += params.merchant_bond_min
    if roles & ROLE_ARBITRATOR:
        required += params.arbitrator_bond_min
    return required


def in_pool_by_rule(party: Party, params: MallParams) -> bool:
    """An arbitrator is in the draw pool while its bond covers its roles' minimum."""
    return party.has(ROLE_ARBITRATOR) and party.bond >= bond_required(party.roles, params)


def sync_pool(state: MallState, address: bytes, party: Party, params: MallParams) -> Party:
    """Put `party` into or take it out of the pool as `in_pool_by_rule` says; the updated
    party (saved by the caller). A moved member's slot is saved here."""
    wanted = in_pool_by_rule(party, params)
    if wanted and party.pool_index == NOT_IN_POOL:
        index = pool_add(state, address)
        if index is None:
            raise AmountOutOfRange("the arbitrator pool is full")
        return party._replace(pool_index=index)
    if not wanted and party.pool_index != NOT_IN_POOL:
        moved = pool_remove(state, party.pool_index)
        if moved is not None:
            other = load_party(state, moved)
            invariant(other is not None, "a pool member has no party entry")
            assert other is not None
            save_party(state, moved, other._replace(pool_index=party.pool_index))
        return party._replace(pool_index=NOT_IN_POOL)
    return party


def _set_role_index(state: MallState, address: bytes, old: int, new: int) -> None:
    for role in role_bits(old & ~new):
        state.delete(keys.role_index(role_bit_index(role), address))
    for role in role_bits(new & ~old):
        state.set(keys.role_index(role_bit_index(role), address), MARK)


# --- payloads ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PartyDetails:
    """PARTY_REGISTER / PARTY_UPDATE payload: roles, bond (added), jurisdiction, name,
    profile hash (BLAKE3 of the off-chain profile)."""

    roles: int
    bond: int
    jurisdiction: str
    name: str
    profile_hash: bytes

    def encode(self) -> bytes:
        out = writer().u16(self.roles).u64(self.bond)
        put_text(out, self.jurisdiction, JURISDICTION_BYTES_MAX)
        put_text(out, self.name, MALL_NAME_BYTES_MAX)
        return out.fixed(self.profile_hash, HASH_BYTES).getvalue()


@payload_decoder
def decode_party_details(payload: bytes, allow_no_roles: bool = False) -> PartyDetails:
    reader = payload_reader(payload, "party details")
    details = PartyDetails(
        reader.u16("roles"), reader.u64("bond"),
        reader.text(JURISDICTION_BYTES_MAX, "jurisdiction", check_jurisdiction_text),
        reader.text(MALL_NAME_BYTES_MAX, "name", check_text, low=1),
        reader.hash("profile hash"))
    reader.finish()
    if details.roles & ~ROLES_ALL:
        raise reader.fail(f"unknown role bits {details.roles & ~ROLES_ALL:#x}")
    if details.roles == 0 and not allow_no_roles:
        raise reader.fail("a party registers at least one role")
    return details


@dataclass(frozen=True, slots=True)
class Unbond:
    """PARTY_UNBOND payload: the amount to move from the bond back to the balance."""

    amount: int

    def encode(self) -> bytes:
        return writer().u64(self.amount).getvalue()


@payload_decoder
def decode_unbond(payload: bytes) -> Unbond:
    reader = payload_reader(payload, "unbond")
    unbond = Unbond(reader.u64("amount"))
    reader.finish()
    if unbond.amount == 0:
        raise reader.fail("the amount is 0")
    return unbond


@dataclass(frozen=True, slots=True)
class Certification:
    """MERCHANT_CERTIFY / MERCHANT_REVOKE payload: the merchant and the brand."""

    merchant: bytes
    brand: str

    def encode(self) -> bytes:
        out = writer().fixed(self.merchant, ADDRESS_BYTES)
        return put_text(out, self.brand, MALL_BRAND_BYTES_MAX).getvalue()


@payload_decoder
def decode_certification(payload: bytes) -> Certification:
    reader = payload_reader(payload, "certification")
    cert = Certification(reader.address("merchant"),
                         reader.text(MALL_BRAND_BYTES_MAX, "brand", check_text, low=1))
    reader.finish()
    return cert


CERT_ACTIVE = 1
CERT_REVOKED = 2


@dataclass(frozen=True, slots=True)
class CertRecord:
    """The value under `keys.cert(merchant, certifier, brand)`."""

    status: int
    certified_height: int
    revoked_height: int

    def encode(self) -> bytes:
        return writer().u8(self.status).u64(self.certified_height).u64(
            self.revoked_height).getvalue()


def decode_cert(value: bytes) -> CertRecord:
    reader = value_reader(value, "certification")
    record = CertRecord(reader.u8("status"), reader.u64("certified height"),
                        reader.u64("revoked height"))
    reader.finish()
    if record.status not in (CERT_ACTIVE, CERT_REVOKED):
        raise DecodeError(f"certification: status {record.status}")
    return record


# --- handlers --------------------------------------------------------------------------


def _check_merchant_jurisdiction(roles: int, jurisdiction: str, mall: MallGenesis) -> None:
    if roles & ROLE_MERCHANT and mall.authority(jurisdiction) is None:
        raise UnknownJurisdiction(f"merchant jurisdiction {jurisdiction!r} has no tax "
                                  "authority in genesis")


def register(state: MallState, ctx: TxContext, mall: MallGenesis) -> None:
    """PARTY_REGISTER (docs/mall.md 4.1)."""
    details = decode_party_details(ctx.tx.payload)
    sender = ctx.sender
    if load_party(state, sender) is not None:
        raise PartyExists(f"{address_text(sender)} is already registered")
    _check_merchant_jurisdiction(details.roles, details.jurisdiction, mall)
    required = bond_required(details.roles, mall.params)
    if details.bond < required:
        raise BondTooLow(f"bond {details.bond} is below the roles' minimum {required}")
    debit(state, sender, details.bond)
    party = Party(details.roles, ctx.tx.sender, details.bond, 0, 0, NOT_IN_POOL, ctx.height,
                  details.jurisdiction, details.name, details.profile_hash)
    party = sync_pool(state, sender, party, mall.params)
    save_party(state, sender, party)
    _set_role_index(state, sender, 0, party.roles)
    _event(ctx, "mall.party", sender, party)


def update(state: MallState, ctx: TxContext, mall: MallGenesis) -> None:
    """PARTY_UPDATE (docs/mall.md 4.2): new roles and details, `bond` added to the bond."""
    details = decode_party_details(ctx.tx.payload, allow_no_roles=True)
    sender = ctx.sender
    party = require_party(state, sender)
    dropped = party.roles & ~details.roles
    if dropped & ROLE_MERCHANT and party.open_orders:
        raise ObligationsOpen(f"{party.open_orders} open orders as merchant")
    if dropped & ROLE_ARBITRATOR and party.open_seats:
        raise ObligationsOpen(f"{party.open_seats} open panel seats")
    _check_merchant_jurisdiction(details.roles, details.jurisdiction, mall)
    bond = party.bond + details.bond
    required = bond_required(details.roles, mall.params)
    if bond < required:
        raise BondTooLow(f"bond {bond} is below the roles' minimum {required}")
    debit(state, sender, details.bond)
    new = party._replace(roles=details.roles, bond=bond, jurisdiction=details.jurisdiction,
                  name=details.name, profile_hash=details.profile_hash)
    new = sync_pool(state, sender, new, mall.params)
    save_party(state, sender, new)
    _set_role_index(state, sender, party.roles, new.roles)
    _event(ctx, "mall.party", sender, new)


def unbond(state: MallState, ctx: TxContext, mall: MallGenesis) -> None:
    """PARTY_UNBOND (docs/mall.md 4.3): only the part above the roles' minimum."""
    amount = decode_unbond(ctx.tx.payload).amount
    sender = ctx.sender
    party = require_party(state, sender)
    required = bond_required(party.roles, mall.params)
    if amount > party.bond or party.bond - amount < required:
        raise BondTooLow(f"bond {party.bond} less {amount} is below the roles' minimum "
                         f"{required}")
    new = sync_pool(state, sender, party._replace(bond=party.bond - amount), mall.params)
    save_party(state, sender, new)
    credit(state, sender, amount)
    _event(ctx, "mall.party", sender, new)


def _certification(state: MallState, ctx: TxContext, mall: MallGenesis,
                   ) -> tuple[Certification, bytes, CertRecord | None]:
    cert = decode_certification(ctx.tx.payload)
    if mall.certifier(ctx.sender) is None:
        raise NotCertifier(f"{address_text(ctx.sender)} is not a certifier named in genesis")
    require_party(state, cert.merchant, ROLE_MERCHANT, "the merchant")
    key = keys.cert(cert.merchant, ctx.sender, cert.brand)
    raw = state.get(key)
    return cert, key, None if raw is None else decode_cert(raw)


def certify(state: MallState, ctx: TxContext, mall: MallGenesis) -> None:
    """MERCHANT_CERTIFY (docs/mall.md 4.4): (re)activates the certification."""
    cert, key, _ = _certification(state, ctx, mall)
    state.set(key, CertRecord(CERT_ACTIVE, ctx.height, 0).encode())
    _cert_event(ctx, "mall.certify", cert, ctx.sender)


def revoke(state: MallState, ctx: TxContext, mall: MallGenesis) -> None:
    """MERCHANT_REVOKE (docs/mall.md 4.5)."""
    cert, key, record = _certification(state, ctx, mall)
    if record is None or record.status != CERT_ACTIVE:
        raise CertificationMissing(f"no active certification of {address_text(cert.merchant)}"
                                   f" for {cert.brand!r} by this certifier")
    state.set(key, CertRecord(CERT_REVOKED, record.certified_height, ctx.height).encode())
    _cert_event(ctx, "mall.revoke", cert, ctx.sender)


def _event(ctx: Clock, kind: str, address: bytes, party: Party) -> None:
    emit(ctx, kind, ("address", address_text(address)),
         ("roles", ",".join(role_names(party.roles))), ("bond", str(party.bond)))


def _cert_event(ctx: Clock, kind: str, cert: Certification, certifier: bytes) -> None:
    emit(ctx, kind, ("merchant", address_text(cert.merchant)),
         ("certifier", address_text(certifier)), ("brand", cert.brand))
