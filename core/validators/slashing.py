"""Slashing: the rule applied to misbehaviour CometBFT reports in FinalizeBlock.

For each reported misbehaviour (a duplicate vote, or a light-client attack),
in the order CometBFT lists it, at the start of the block (docs/cometbft.md
section 7):

1. the validator is found by its CometBFT address (the address index keeps
   every bonded validator, in the set or not); unknown: nothing happens;
2. an infraction at a height at or below the record's `slashed_height` is
   not slashed again (one slash per validator and infraction height, and
   never for an older one once slashed);
3. `cut = bond * double_sign_slash_bps // 10_000` leaves the bond for the
   fee pool (the supply is unchanged);
4. the power is lowered by `ceil(power * double_sign_slash_bps / 10_000)`,
   never below 0, and never to 0 when that would leave the signing set
   without power; the change takes effect two heights on, like any other;
5. an event `slash` names the validator, the infraction height and kind, the
   bond cut and the new power.
"""

from __future__ import annotations

from ..abci.types import Event, Misbehavior
from ..constants import BPS_DENOMINATOR, U64_MAX
from ..genesis import Genesis
from ..state.accounts import FEE_POOL_KEY, decode_fee_pool, encode_fee_pool, invariant
from ..state.machine import BlockContext, StateAccess
from . import records, schedule
from .governance import read_record, write_record
from .records import ValidatorRecord


def slash_cuts(bond: int, power: int, bps: int) -> tuple[int, int]:
    """(bond cut, power cut) of one slash at `bps` basis points (before the last-validator
    rule)."""
    bond_cut = bond * bps // BPS_DENOMINATOR
    power_cut = min(power, -(-power * bps // BPS_DENOMINATOR))
    return bond_cut, power_cut


def _slash(state: StateAccess, block: BlockContext, genesis: Genesis,
           misbehavior: Misbehavior) -> None:
    raw = state.get(records.address_key(misbehavior.validator_address))
    if raw is None:
        return
    public_key = records.decode_address_entry(raw)
    record = read_record(state, public_key)
    invariant(record is not None, "an indexed validator has no record")
    assert record is not None
    if misbehavior.height <= record.slashed_height:
        return
    bond_cut, power_cut = slash_cuts(record.bond, record.power,
                                     genesis.governance.params.double_sign_slash_bps)
    power = record.power - power_cut
    if power == 0 and record.power > 0:
        others = schedule.apply_changes(schedule.set_after_block(state), {public_key: 0})
        if not others:
            power = record.power  # the last validator is never removed by slashing
    inactive_since = block.timestamp_ms if power == 0 and record.power > 0 \
        else record.inactive_since_ms
    write_record(state, public_key, ValidatorRecord(
        power, record.bond - bond_cut, record.operator, inactive_since, misbehavior.height))
    if power != record.power:
        schedule.mark_pending(state, public_key)
    if bond_cut:
        pool = state.get(FEE_POOL_KEY)
        total = (0 if pool is None else decode_fee_pool(pool)) + bond_cut
        invariant(total <= U64_MAX, "the fee pool overflows u64")
        state.set(FEE_POOL_KEY, encode_fee_pool(total))
    block.events.append(Event("slash", (
        ("validator", public_key.hex()),
        ("kind", misbehavior.kind.name.lower()),
        ("infraction_height", str(misbehavior.height)),
        ("bond_cut", str(bond_cut)),
        ("bond", str(record.bond - bond_cut)),
        ("power", str(power)),
        ("previous_power", str(record.power)))))


def begin_block(state: StateAccess, block: BlockContext, genesis: Genesis) -> None:
    """Slash every validator the block's misbehaviour list names (module docstring)."""
    for misbehavior in block.misbehavior:
        _slash(state, block, genesis, misbehavior)
