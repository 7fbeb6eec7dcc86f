"""Plugging validators into the application: genesis entries, txs, hooks, supply, queries.

* genesis state: a record per genesis validator (its genesis power, its bond
  and operator from the governance section, else bond 0 and the account of
  its own key), its address index entry, and the genesis set signing from 1;
* the four tx types of `governance.py`;
* a begin-block hook (slashing, before the txs) and an end-block hook (the
  schedule, after them: it must see every power change of the block);
* bonds count in the supply;
* the record header's validator set hash and the block proposer follow the
  set in state;
* queries: `/validators/record` (a public key), `/validators/set` (a height
  u64; the entries the set signing that height is read from).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..constants import (
    PUBLIC_KEY_BYTES,
    TABLE_VALIDATORS,
    TX_TYPE_VALIDATOR_BOND,
    TX_TYPE_VALIDATOR_SET_POWER,
    TX_TYPE_VALIDATOR_UNBOND,
    TX_TYPE_VALIDATOR_VOTE,
)
from ..errors import QueryError
from ..genesis import Genesis
from ..state.machine import BlockContext, ExecContext, StateAccess, StateMachine
from . import governance, records, schedule, slashing

if TYPE_CHECKING:
    from ..abci.app import Application, StateReader

_U64 = struct.Struct(">Q")


def genesis_state(genesis: Genesis) -> dict[bytes, bytes]:
    """The validator entries of the state at height 0."""
    entries = schedule.genesis_entries(genesis)
    for validator in genesis.validators:
        bond = genesis.governance.bond_of(validator.public_key)
        record = records.ValidatorRecord(validator.power, 0 if bond is None else bond.amount,
                                         genesis.operator_of(validator.public_key))
        entries[records.record_key(validator.public_key)] = record.encode()
        entries[records.address_key_of(validator.public_key)] = \
            records.encode_address_entry(validator.public_key)
    return entries


def bond_supply(key: bytes, value: bytes) -> int:
    """The part of the supply a validator record holds: its bond."""
    return records.decode_record(value).bond


def install(machine: StateMachine, genesis: Genesis) -> None:
    """Register the validator txs, the slashing and schedule hooks, bonds in the supply and
    the validator set hash of each height."""
    handlers = {
        TX_TYPE_VALIDATOR_BOND: governance.bond,
        TX_TYPE_VALIDATOR_UNBOND: governance.unbond,
        TX_TYPE_VALIDATOR_SET_POWER: governance.set_power_by_authority,
        TX_TYPE_VALIDATOR_VOTE: governance.vote,
    }
    for tx_type, handler in handlers.items():
        machine.register(tx_type, _bound(handler, genesis))

    def begin(state: StateAccess, block: BlockContext) -> None:
        slashing.begin_block(state, block, genesis)

    machine.register_block_hook(begin, "begin")
    machine.register_block_hook(schedule.end_block, "end")
    machine.register_supply(TABLE_VALIDATORS, bond_supply)
    machine.register_validator_set_hash(schedule.set_hash_at)


def _bound(handler, genesis: Genesis):  # type: ignore[no-untyped-def]
    def run(state: StateAccess, ctx: ExecContext) -> None:
        handler(state, ctx, genesis)

    run.__doc__ = handler.__doc__
    return run


def proposer_of(state: StateReader, address: bytes) -> bytes | None:
    """The public key of the bonded validator at CometBFT address `address`."""
    raw = state.get(records.address_key(address)) if len(address) == 20 else None
    return None if raw is None else records.decode_address_entry(raw)


def _record_keys(state: StateReader, data: bytes) -> Sequence[bytes]:
    if len(data) != PUBLIC_KEY_BYTES:
        raise QueryError(f"/validators/record needs a {PUBLIC_KEY_BYTES}-byte public key")
    return [records.record_key(data)]


def _set_keys(state: StateReader, data: bytes) -> Sequence[bytes]:
    if len(data) != _U64.size:
        raise QueryError("/validators/set needs a height as u64")
    height = _U64.unpack(data)[0]
    if height == 0:
        raise QueryError("/validators/set: heights start at 1")
    start, end = records.set_key_range(height + 1)
    entries = state.scan(start, end)
    if not entries:
        raise QueryError(f"no validator set is scheduled for height {height}")
    return [records.SET_INDEX_KEY, entries[-1][0]]


def install_app(app: Application) -> None:
    """The application side: the proposer lookup and the query paths."""
    app.register_proposer_lookup(proposer_of)
    app.register_query("/validators/record", _record_keys)
    app.register_query("/validators/set", _set_keys)
