"""Validator and governance txs (types 0x0300-0x03FF, docs/cometbft.md section 7).

* 0x0300 VALIDATOR_BOND, payload public key (32) || amount u64: anyone, for a
  new record (the sender becomes its operator, the amount at least
  `bond_min`); then only the operator adds to it.
* 0x0301 VALIDATOR_UNBOND, payload public key (32) || amount u64: the
  operator, at power 0, `unbond_delay_ms` of block time after losing power.
* 0x0302 VALIDATOR_SET_POWER, payload public key (32) || power u64: a
  governance authority named in genesis.
* 0x0303 VALIDATOR_VOTE, payload public key (32) || power u64 || voter key
  (32): the operator of `voter`, a member of the set signing this height.

A power change takes effect in the set that signs two heights later
(`schedule.py`). A vote counts the voter's power in the set signing the
tx's height; once the voters hold more than 2/3 of that set's power the
change is applied as VALIDATOR_SET_POWER would, and the proposal closes.
Every failure raises a `ValidatorRuleError` (or a transfer error): the tx
pays its fee, and its writes are dropped.
"""

from __future__ import annotations

import struct

from ..abci.types import Event
from ..address import encode_address
from ..constants import PUBLIC_KEY_BYTES, U64_MAX
from ..errors import (
    BalanceOverflow,
    InsufficientBalance,
    MalformedPayload,
    NotAuthorised,
    UnbondRefused,
    UnknownValidator,
    ValidatorAlreadyVoted,
    ValidatorBondTooLow,
    ValidatorSetLimit,
)
from ..genesis import Genesis
from ..state.accounts import account_key, credit, invariant, pack_account, unpack_account
from ..state.machine import ExecContext, StateAccess
from . import records, schedule
from .records import ValidatorRecord

_KEY_AMOUNT = struct.Struct(f">{PUBLIC_KEY_BYTES}sQ")
_VOTE = struct.Struct(f">{PUBLIC_KEY_BYTES}sQ{PUBLIC_KEY_BYTES}s")


# --- payloads ----------------------------------------------------------------------


def encode_key_amount(public_key: bytes, amount: int) -> bytes:
    """The payload of BOND, UNBOND (amount) and SET_POWER (power): key || u64."""
    if len(public_key) != PUBLIC_KEY_BYTES or not 0 <= amount <= U64_MAX:
        raise ValueError("a 32-byte public key and a u64")
    return _KEY_AMOUNT.pack(public_key, amount)


def decode_key_amount(payload: bytes) -> tuple[bytes, int]:
    """(public key, u64) of a 40-byte payload; MalformedPayload otherwise."""
    if len(payload) != _KEY_AMOUNT.size:
        raise MalformedPayload(f"payload is {len(payload)} bytes, expected {_KEY_AMOUNT.size}")
    key, amount = _KEY_AMOUNT.unpack(payload)
    return key, amount


def encode_vote(public_key: bytes, power: int, voter: bytes) -> bytes:
    """The VALIDATOR_VOTE payload: key || power u64 || voter key."""
    if len(public_key) != PUBLIC_KEY_BYTES or len(voter) != PUBLIC_KEY_BYTES \
            or not 0 <= power <= U64_MAX:
        raise ValueError("two 32-byte public keys and a u64")
    return _VOTE.pack(public_key, power, voter)


def decode_vote(payload: bytes) -> tuple[bytes, int, bytes]:
    """(public key, power, voter key) of a 72-byte payload; MalformedPayload otherwise."""
    if len(payload) != _VOTE.size:
        raise MalformedPayload(f"payload is {len(payload)} bytes, expected {_VOTE.size}")
    key, power, voter = _VOTE.unpack(payload)
    return key, power, voter


# --- records -----------------------------------------------------------------------


def read_record(state: StateAccess, public_key: bytes) -> ValidatorRecord | None:
    """The record of validator `public_key`, None if it has none."""
    raw = state.get(records.record_key(public_key))
    return None if raw is None else records.decode_record(raw)


def write_record(state: StateAccess, public_key: bytes, record: ValidatorRecord) -> None:
    state.set(records.record_key(public_key), record.encode())


def _move_balance(state: StateAccess, address: bytes, delta: int) -> None:
    """Add `delta` (negative: take) to the balance of `address`."""
    key = account_key(address)
    raw = state.get(key)
    balance, nonce = (0, 0) if raw is None else unpack_account(raw)
    if delta < 0:
        if balance < -delta:
            raise InsufficientBalance(f"balance {balance} is below the amount {-delta}")
        balance += delta
    else:
        balance = credit(balance, delta)
    state.set(key, pack_account(balance, nonce))


def _event(kind: str, public_key: bytes, **attributes: str) -> Event:
    return Event(kind, (("validator", public_key.hex()), *attributes.items()))


# --- rules -------------------------------------------------------------------------


def set_power(state: StateAccess, ctx: ExecContext, genesis: Genesis, public_key: bytes,
              power: int) -> None:
    """Give validator `public_key` the power `power` (0 removes it from the set), effective
    two heights on; the rules of docs/cometbft.md section 7."""
    record = read_record(state, public_key)
    if record is None:
        raise UnknownValidator(f"validator {public_key.hex()} has no bond")
    if power > 0 and record.bond < genesis.governance.params.bond_min:
        raise ValidatorBondTooLow(f"bond {record.bond} is below bond_min "
                         f"{genesis.governance.params.bond_min}")
    if power == record.power:
        return
    projected = schedule.apply_changes(schedule.set_after_block(state), {public_key: power})
    problem = schedule.check_set(projected)
    if problem is not None:
        raise ValidatorSetLimit(problem)
    inactive_since = ctx.timestamp_ms if power == 0 else 0
    write_record(state, public_key, ValidatorRecord(power, record.bond, record.operator,
                                                    inactive_since, record.slashed_height))
    schedule.mark_pending(state, public_key)
    ctx.events.append(_event("validator_power", public_key, power=str(power),
                             previous=str(record.power),
                             effective_height=str(ctx.height + 2)))


def bond(state: StateAccess, ctx: ExecContext, genesis: Genesis) -> None:
    """VALIDATOR_BOND: move `amount` from the sender into the validator's bond."""
    public_key, amount = decode_key_amount(ctx.tx.payload)
    if amount == 0:
        raise MalformedPayload("a bond of 0")
    record = read_record(state, public_key)
    if record is None:
        if amount < genesis.governance.params.bond_min:
            raise ValidatorBondTooLow(f"a new validator's bond {amount} is below bond_min "
                             f"{genesis.governance.params.bond_min}")
        record = ValidatorRecord(0, 0, ctx.sender, ctx.timestamp_ms, 0)
        state.set(records.address_key_of(public_key), records.encode_address_entry(public_key))
    elif record.operator != ctx.sender:
        raise NotAuthorised(f"only the operator {encode_address(record.operator)} adds to "
                            "this bond")
    if record.bond + amount > U64_MAX:
        raise BalanceOverflow("the bond would exceed 2^64 - 1")
    _move_balance(state, ctx.sender, -amount)
    write_record(state, public_key, ValidatorRecord(
        record.power, record.bond + amount, record.operator, record.inactive_since_ms,
        record.slashed_height))
    ctx.events.append(_event("validator_bond", public_key, amount=str(amount),
                             bond=str(record.bond + amount),
                             operator=encode_address(record.operator)))


def unbond(state: StateAccess, ctx: ExecContext, genesis: Genesis) -> None:
    """VALIDATOR_UNBOND: return `amount` of the bond to the operator (the record goes when
    its bond reaches 0)."""
    public_key, amount = decode_key_amount(ctx.tx.payload)
    record = read_record(state, public_key)
    if record is None:
        raise UnknownValidator(f"validator {public_key.hex()} has no bond")
    if record.operator != ctx.sender:
        raise NotAuthorised("only the validator's operator unbonds")
    if record.power != 0:
        raise UnbondRefused("the validator still has power: set it to 0 first")
    release_ms = record.inactive_since_ms + genesis.governance.params.unbond_delay_ms
    if ctx.timestamp_ms < release_ms:
        raise UnbondRefused(f"the bond is held until block time {release_ms} ms")
    if amount == 0 or amount > record.bond:
        raise UnbondRefused(f"amount {amount} is not in [1, bond {record.bond}]")
    _move_balance(state, ctx.sender, amount)
    left = record.bond - amount
    if left == 0:
        state.delete(records.record_key(public_key))
        state.delete(records.address_key_of(public_key))
    else:
        write_record(state, public_key, ValidatorRecord(
            0, left, record.operator, record.inactive_since_ms, record.slashed_height))
    ctx.events.append(_event("validator_unbond", public_key, amount=str(amount),
                             bond=str(left)))


def set_power_by_authority(state: StateAccess, ctx: ExecContext, genesis: Genesis) -> None:
    """VALIDATOR_SET_POWER: a governance authority sets a validator's power."""
    public_key, power = decode_key_amount(ctx.tx.payload)
    if ctx.sender not in genesis.governance.authorities:
        raise NotAuthorised(f"{encode_address(ctx.sender)} is not a governance authority")
    set_power(state, ctx, genesis, public_key, power)


def vote(state: StateAccess, ctx: ExecContext, genesis: Genesis) -> None:
    """VALIDATOR_VOTE: a signing validator's operator votes for a power change; more than
    2/3 of the signing power applies it."""
    public_key, power, voter = decode_vote(ctx.tx.payload)
    signing = schedule.set_at(state, ctx.height)
    powers = {v.public_key: v.power for v in signing}
    if voter not in powers:
        raise NotAuthorised(f"voter {voter.hex()} is not in the set signing this height")
    voter_record = read_record(state, voter)
    invariant(voter_record is not None, "a signing validator has no record")
    assert voter_record is not None
    if voter_record.operator != ctx.sender:
        raise NotAuthorised("only the voter's operator votes for it")
    key = records.proposal_key(records.proposal_id(public_key, power))
    raw = state.get(key)
    proposal = (records.Proposal(public_key, power, ()) if raw is None
                else records.decode_proposal(raw))
    if voter in proposal.voters:
        raise ValidatorAlreadyVoted(f"validator {voter.hex()} already voted for this change")
    voters = tuple(sorted((*proposal.voters, voter)))
    tally = sum(powers.get(v, 0) for v in voters)
    total = sum(powers.values())
    ctx.events.append(_event("validator_vote", public_key, power=str(power),
                             voter=voter.hex(), tally=str(tally), total=str(total)))
    if 3 * tally > 2 * total:
        state.delete(key)
        set_power(state, ctx, genesis, public_key, power)
    else:
        state.set(key, records.Proposal(public_key, power, voters).encode())
