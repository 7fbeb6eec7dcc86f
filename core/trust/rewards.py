"""Token rewards: points per epoch, the epoch close, the reward-per-point accumulator, claims.

Epoch `e` spans block times [genesis + e * epoch_ms, genesis + (e + 1) * epoch_ms).
Contributions earn points in the current epoch (`award`); the first block
of a later epoch closes it (`close_epoch`, begin-block hook): a share of the
fee pool plus the configured issuance becomes the epoch's `amount`, and its
reward per point `amount * 2^64 // total_points` (Q64) is stored. That is
all a close does, so it costs the same for 10 contributors or 10^6. An
account's reward is settled lazily, when it next earns or claims:
`points * per_point >> 64` moves from the epoch's unsettled rest into the
account's `pending`; REWARD_CLAIM pays `pending` to its balance. What no
account settles within `claim_epochs` epochs returns to the fee pool when
the epoch expires. Units issued are counted in `META_ISSUED`, which holds
*minus* the issued total in the supply (docs/trust.md section 9), so the
machine's supply check stays exact while issuance adds to the total.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..constants import (
    ACCUMULATOR_SHIFT,
    ADDRESS_BYTES,
    ATTEST_CLAIMS_PER_TX_MAX,
    BPS_DENOMINATOR,
    EPOCHS_EXPIRED_PER_BLOCK_MAX,
    HASH_BYTES,
    U32_MAX,
    U64_MAX,
)
from ..errors import AttestCapReached, ClaimUsed, NotAttester, NothingToClaim
from ..genesis import Genesis, TrustParams
from ..mall.codec import (
    Clock,
    MallState,
    StateReader,
    TxContext,
    address_text,
    emit,
    payload_decoder,
    payload_reader,
    writer,
)
from ..mall.funds import credit, credit_fee_pool, invariant
from ..state.accounts import FEE_POOL_KEY, decode_fee_pool, encode_fee_pool
from . import keys
from .records import (
    ACTION_NAMES,
    EMPTY_ACCOUNT,
    EPOCH_CLOSED,
    EPOCH_EXPIRED,
    EPOCH_OPEN,
    NEW_EPOCH,
    ClaimRecord,
    EpochPointer,
    EpochRecord,
    RewardAccount,
    decode_epoch,
    decode_epoch_pointer,
    decode_reward_account,
    decode_u64,
    encode_u64,
)


def epoch_at(genesis_time_ms: int, time_ms: int, params: TrustParams) -> int:
    """The epoch of a block time (capped at U32_MAX)."""
    return min(U32_MAX, max(0, time_ms - genesis_time_ms) // params.epoch_ms)


def pointer(state: StateReader) -> EpochPointer:
    raw = state.get(keys.META_EPOCH)
    return EpochPointer(0, 0) if raw is None else decode_epoch_pointer(raw)


def current_epoch(state: StateReader) -> int:
    """The epoch the state is in (closed up to it by the begin-block hook)."""
    return pointer(state).current


def load_epoch(state: StateReader, number: int) -> EpochRecord | None:
    raw = state.get(keys.epoch(number))
    return None if raw is None else decode_epoch(raw)


def load_account(state: StateReader, address: bytes) -> RewardAccount:
    raw = state.get(keys.reward_account(address))
    return EMPTY_ACCOUNT if raw is None else decode_reward_account(raw)


def issued(state: StateReader) -> int:
    raw = state.get(keys.META_ISSUED)
    return 0 if raw is None else decode_u64(raw, "issued")


# --- supply ----------------------------------------------------------------------------


def epoch_supply(key: bytes, value: bytes) -> int:
    """Units an epoch entry holds: a closed epoch's unsettled rest."""
    return decode_epoch(value).held


def account_supply(key: bytes, value: bytes) -> int:
    """Units a reward account holds: its settled, unclaimed rewards."""
    return decode_reward_account(value).pending


def meta_supply(key: bytes, value: bytes) -> int:
    """Minus the units issued so far (the other meta entries hold nothing): issuance adds
    to an epoch and to this counter alike, so the sum the machine checks is unchanged."""
    return -decode_u64(value, "issued") if key == keys.META_ISSUED else 0


# --- settling and awarding ----------------------------------------------------------------


def reward_of(points: int, record: EpochRecord) -> int:
    """What `points` of a closed epoch earn: points * per_point >> 64 (floor)."""
    return (points * record.per_point) >> ACCUMULATOR_SHIFT


def settle(state: MallState, address: bytes, now_epoch: int) -> RewardAccount:
    """The account moved to `now_epoch`: the points of its older epoch, if closed and not
    expired, become pending rewards (taken from that epoch's unsettled rest)."""
    account = load_account(state, address)
    if account.epoch >= now_epoch:
        return account
    pending = account.pending
    if account.points:
        record = load_epoch(state, account.epoch)
        invariant(record is not None and record.state != EPOCH_OPEN,
                  "an account's past epoch is not closed")
        assert record is not None
        if record.state == EPOCH_CLOSED:
            share = min(reward_of(account.points, record), record.amount - record.settled)
            state.set(keys.epoch(account.epoch),
                      record._replace(settled=record.settled + share).encode())
            pending += share
            invariant(pending <= U64_MAX, "pending rewards overflow")
    return account._replace(epoch=now_epoch, points=0, attested=0, pending=pending)


def award(state: MallState, address: bytes, points: int, attested: int = 0) -> int:
    """Credit `points` (saturating at u64) to the account in the current epoch; the epoch
    the points went to."""
    now = current_epoch(state)
    account = settle(state, address, now)
    record = load_epoch(state, now) or NEW_EPOCH
    invariant(record.state == EPOCH_OPEN, "the current epoch is closed")
    points = min(points, U64_MAX - account.points, U64_MAX - record.total_points)
    state.set(keys.reward_account(address), account._replace(
        points=account.points + points, attested=account.attested + attested).encode())
    if points:
        state.set(keys.epoch(now), record._replace(
            total_points=record.total_points + points).encode())
    return now


def withdraw(state: MallState, address: bytes, points: int, epoch: int) -> None:
    """Take back `points` awarded in `epoch` (a voided order): from the account's points
    while it has not settled that epoch (and from the epoch's total while it is open),
    else from its pending rewards what they earned, to the fee pool."""
    if points == 0:
        return
    account = load_account(state, address)
    if account.epoch == epoch:
        taken = min(points, account.points)
        state.set(keys.reward_account(address),
                  account._replace(points=account.points - taken).encode())
        record = load_epoch(state, epoch)
        if record is not None and record.state == EPOCH_OPEN:
            state.set(keys.epoch(epoch), record._replace(
                total_points=record.total_points - min(taken, record.total_points)).encode())
        return
    if account.epoch < epoch:
        return  # invariant: an award moved the account to its epoch; nothing to take
    record = load_epoch(state, epoch)
    if record is None or record.state == EPOCH_OPEN:
        return
    taken = min(account.pending, reward_of(points, record))
    if taken:
        state.set(keys.reward_account(address),
                  account._replace(pending=account.pending - taken).encode())
        credit_fee_pool(state, taken)


# --- the epoch close (begin-block hook) -------------------------------------------------------


def close_epochs(state: MallState, block: Clock, genesis: Genesis) -> None:
    """Close the current epoch if the block is in a later one; expire what fell out of the
    claim window. O(1) in the number of contributors."""
    params = genesis.trust.params
    now = epoch_at(genesis.genesis_time_ms, block.timestamp_ms, params)
    mark = pointer(state)
    if now <= mark.current:
        return
    record = load_epoch(state, mark.current)
    if record is not None and record.state == EPOCH_OPEN and record.total_points:
        pool = decode_fee_pool(state.get(FEE_POOL_KEY) or encode_fee_pool(0))
        share = pool * params.pool_share_bps // BPS_DENOMINATOR
        minted = min(params.issuance_per_epoch, params.issuance_max - issued(state))
        amount = share + minted
        per_point = (amount << ACCUMULATOR_SHIFT) // record.total_points
        state.set(FEE_POOL_KEY, encode_fee_pool(pool - share))
        if minted:
            state.set(keys.META_ISSUED, encode_u64(issued(state) + minted))
        state.set(keys.epoch(mark.current), record._replace(
            state=EPOCH_CLOSED, amount=amount, issued=minted,
            per_point_q64=per_point.to_bytes(16, "big"), closed_height=block.height).encode())
        emit(block, "trust.epoch", ("epoch", str(mark.current)), ("amount", str(amount)),
             ("issued", str(minted)), ("points", str(record.total_points)))
    elif record is not None and record.state == EPOCH_OPEN:  # no points: nothing to pay
        state.set(keys.epoch(mark.current), record._replace(
            state=EPOCH_EXPIRED, closed_height=block.height).encode())
    oldest = _expire(state, block, mark.oldest, now, params)
    state.set(keys.META_EPOCH, EpochPointer(now, oldest).encode())


def _expire(state: MallState, block: Clock, oldest: int, now: int,
            params: TrustParams) -> int:
    """Expire the closed epochs older than the claim window (their unsettled rest returns
    to the fee pool); the new oldest epoch not expired."""
    bound = now - params.claim_epochs  # epochs below it are out of the window
    if bound <= oldest:
        return oldest
    expired = state.scan(keys.epoch(oldest), keys.epoch(bound),
                         EPOCHS_EXPIRED_PER_BLOCK_MAX)
    for key, value in expired:
        record = decode_epoch(value)
        if record.state == EPOCH_CLOSED:
            credit_fee_pool(state, record.amount - record.settled)
            state.set(key, record._replace(state=EPOCH_EXPIRED).encode())
            emit(block, "trust.epoch", ("epoch", str(int.from_bytes(key[1:], "big"))),
                 ("expired", str(record.amount - record.settled)))
    if len(expired) == EPOCHS_EXPIRED_PER_BLOCK_MAX:
        return int.from_bytes(expired[-1][0][1:], "big") + 1
    return bound


# --- REWARD_CLAIM and REWARD_ATTEST ----------------------------------------------------------


@payload_decoder
def decode_claim_request(payload: bytes) -> None:
    """REWARD_CLAIM payload: the version byte alone."""
    payload_reader(payload, "claim").finish()


def claim(state: MallState, ctx: TxContext, genesis: Genesis) -> None:
    """REWARD_CLAIM (docs/trust.md 9.4): settle the sender and pay its pending rewards."""
    decode_claim_request(ctx.tx.payload)
    account = settle(state, ctx.sender, current_epoch(state))
    if account.pending == 0:
        raise NothingToClaim("no reward is owed to the sender (points of the current epoch "
                             "are paid after it closes)")
    paid = account.pending
    state.set(keys.reward_account(ctx.sender),
              account._replace(pending=0, claimed=min(U64_MAX, account.claimed + paid)).encode())
    credit(state, ctx.sender, paid)
    emit(ctx, "trust.claim", ("account", address_text(ctx.sender)), ("amount", str(paid)))


@dataclass(frozen=True, slots=True)
class Attestation:
    """REWARD_ATTEST payload: claims of off-chain actions (account, action, claim id)."""

    claims: tuple[tuple[bytes, int, bytes], ...]

    def encode(self) -> bytes:
        out = writer().u8(len(self.claims))
        for account, action, claim_id in self.claims:
            out.fixed(account, ADDRESS_BYTES).u8(action).fixed(claim_id, HASH_BYTES)
        return out.getvalue()


@payload_decoder
def decode_attestation(payload: bytes) -> Attestation:
    reader = payload_reader(payload, "attestation")
    count = reader.u8("count")
    if not 1 <= count <= ATTEST_CLAIMS_PER_TX_MAX:
        raise reader.fail(f"{count} claims, expected 1..{ATTEST_CLAIMS_PER_TX_MAX}")
    claims = tuple((reader.address("account"), reader.u8("action"), reader.hash("claim id"))
                   for _ in range(count))
    reader.finish()
    for _, action, _ in claims:
        if action not in ACTION_NAMES:
            raise reader.fail(f"unknown action {action} (1 video, 2 ad, 3 share)")
    ids = [claim_id for _, _, claim_id in claims]
    if len(set(ids)) != len(ids):
        raise reader.fail("a claim id appears twice")
    return Attestation(claims)


def attest(state: MallState, ctx: TxContext, genesis: Genesis) -> None:
    """REWARD_ATTEST (docs/trust.md 9.3): the attester vouches for off-chain actions; each
    claim id is rewarded once, within the account's cap per epoch."""
    attestation = decode_attestation(ctx.tx.payload)
    params = genesis.trust.params
    if not genesis.trust.is_attester(ctx.sender):
        raise NotAttester(f"{address_text(ctx.sender)} is not an attester named in genesis")
    now = current_epoch(state)
    for account_address, action, claim_id in attestation.claims:
        if state.get(keys.claim(claim_id)) is not None:
            raise ClaimUsed(f"claim {claim_id.hex()} has been rewarded already")
        account = settle(state, account_address, now)
        if account.attested >= params.attest_claims_max:
            raise AttestCapReached(f"{address_text(account_address)} has its "
                                   f"{params.attest_claims_max} attested actions this epoch")
        state.set(keys.reward_account(account_address), account.encode())
        award(state, account_address, params.attest_points, attested=1)
        state.set(keys.claim(claim_id),
                  ClaimRecord(account_address, action, now, ctx.height).encode())
        emit(ctx, "trust.attest", ("account", address_text(account_address)),
             ("action", ACTION_NAMES[action]), ("claim", claim_id.hex()))
