"""The signing sets by height, mirrored from CometBFT's rule, and the updates to send it.

CometBFT applies the validator updates of block h to the set that signs
height h + 2 (the set of h + 1 is already fixed by header h's
`next_validators_hash`). The state keeps the same schedule: the set that signs
from height e is the entry `set_key(e)`; the index lists the newest
VALIDATOR_SETS_KEPT effective heights, enough to name the sets of h, h + 1 and
h + 2 while block h runs. The genesis set signs from height 1, in genesis
file order; later sets keep the order of the set they change (a validator
whose power changes keeps its place, a removed one leaves, new ones come last
in public key order).

`end_block` is the validators' end-block hook: if any validator's power changed
in the block (`records.PENDING_KEY` lists them), it writes the set of h + 2
and appends the differences from the set of h + 1 to the block's validator
updates, which the application returns to CometBFT.
"""

from __future__ import annotations

from ..abci.types import Event, ValidatorUpdate
from ..constants import VALIDATOR_SETS_KEPT, VALIDATOR_TOTAL_POWER_MAX, VALIDATORS_MAX
from ..genesis import VALIDATOR_SET_KEY, Genesis, Validator, encode_validators
from ..hashing import digest
from ..state.accounts import invariant
from ..state.machine import BlockContext, StateAccess
from . import records
from .records import PENDING_KEY, SET_INDEX_KEY


def validator_set_hash(validators: tuple[Validator, ...]) -> bytes:
    """Keyed BLAKE3 (VALIDATOR_SET_KEY) of the encoded list: the record header's
    `validator_set_hash` (the genesis set's is `Genesis.validator_set_hash`)."""
    return digest(encode_validators(validators), VALIDATOR_SET_KEY)


def genesis_entries(genesis: Genesis) -> dict[bytes, bytes]:
    """The schedule's state at height 0: the genesis set signs from height 1."""
    return {SET_INDEX_KEY: records.encode_index((1,)),
            records.set_key(1): records.encode_set(genesis.validators)}


def _index(state: StateAccess) -> tuple[int, ...]:
    raw = state.get(SET_INDEX_KEY)
    invariant(raw is not None, "the validator set index is missing")
    assert raw is not None
    return records.decode_index(raw)


def set_at(state: StateAccess, height: int) -> tuple[Validator, ...]:
    """The set that signs `height`, for heights the index still covers (from the oldest
    kept set's height on: at least the running block's and the two after it)."""
    effective = [h for h in _index(state) if h <= height]
    invariant(bool(effective), f"no validator set is kept for height {height}")
    raw = state.get(records.set_key(effective[-1]))
    invariant(raw is not None, f"the validator set of height {effective[-1]} is missing")
    assert raw is not None
    return records.decode_set(raw)


def latest_set(state: StateAccess) -> tuple[Validator, ...]:
    """The newest scheduled set (what the records' powers add up to, before this block's
    pending changes)."""
    return set_at(state, _index(state)[-1])


def set_hash_at(state: StateAccess, height: int) -> bytes:
    """The hash of the set that signs `height` (the machine's validator set hash)."""
    return validator_set_hash(set_at(state, height))


def pending(state: StateAccess) -> tuple[bytes, ...]:
    """The validators whose power changed in the running block."""
    raw = state.get(PENDING_KEY)
    return () if raw is None else records.decode_pending(raw)


def mark_pending(state: StateAccess, public_key: bytes) -> None:
    """Note that validator `public_key`'s power changed in this block."""
    keys = pending(state)
    if public_key not in keys:
        invariant(len(keys) < VALIDATORS_MAX, "too many validator changes in one block")
        state.set(PENDING_KEY, records.encode_pending(tuple(sorted((*keys, public_key)))))


def record_powers(state: StateAccess, keys: tuple[bytes, ...]) -> dict[bytes, int]:
    """The record power of each key (0 for a key without a record)."""
    powers = {}
    for key in keys:
        raw = state.get(records.record_key(key))
        powers[key] = 0 if raw is None else records.decode_record(raw).power
    return powers


def apply_changes(base: tuple[Validator, ...],
                  powers: dict[bytes, int]) -> tuple[Validator, ...]:
    """`base` with the new `powers`: changed members keep their place, members at power 0
    leave, new members come last in key order."""
    members = {validator.public_key for validator in base}
    result = [Validator(v.public_key, powers.get(v.public_key, v.power)) for v in base]
    result = [v for v in result if v.power > 0]
    result += [Validator(key, powers[key]) for key in sorted(powers)
               if key not in members and powers[key] > 0]
    return tuple(result)


def check_set(validators: tuple[Validator, ...]) -> str | None:
    """Why CometBFT would refuse `validators` as a signing set, None if it would not."""
    if not validators:
        return "the signing set would be empty"
    if len(validators) > VALIDATORS_MAX:
        return f"the signing set would have more than {VALIDATORS_MAX} validators"
    total = sum(v.power for v in validators)
    if total > VALIDATOR_TOTAL_POWER_MAX:
        return f"the total power would exceed {VALIDATOR_TOTAL_POWER_MAX}"
    return None


def set_after_block(state: StateAccess) -> tuple[Validator, ...]:
    """The set the records will form once this block's pending changes are scheduled."""
    keys = pending(state)
    base = latest_set(state)
    return apply_changes(base, record_powers(state, keys)) if keys else base


def end_block(state: StateAccess, block: BlockContext) -> None:
    """Schedule this block's power changes for height h + 2 and report them as updates."""
    keys = pending(state)
    if not keys:
        return
    state.delete(PENDING_KEY)
    height = block.height
    upcoming = set_at(state, height + 1)
    current = {v.public_key: v.power for v in upcoming}
    powers = record_powers(state, keys)
    changed = {key: power for key, power in powers.items() if current.get(key, 0) != power}
    if not changed:
        return
    scheduled = apply_changes(upcoming, changed)
    problem = check_set(scheduled)
    invariant(problem is None, f"block {height}: {problem}")
    effective = height + 2
    index = _index(state)
    invariant(index[-1] <= effective, "the validator set index is ahead of the block")
    kept = (*tuple(h for h in index if h < effective), effective)
    state.set(SET_INDEX_KEY, records.encode_index(kept[-VALIDATOR_SETS_KEPT:]))
    state.set(records.set_key(effective), records.encode_set(scheduled))
    for key in sorted(changed):
        block.validator_updates.append(ValidatorUpdate(key, changed[key]))
    block.events.append(Event("validator_set", (
        ("height", str(effective)),
        ("hash", validator_set_hash(scheduled).hex()),
        ("validators", str(len(scheduled))),
        ("total_power", str(sum(v.power for v in scheduled))))))
