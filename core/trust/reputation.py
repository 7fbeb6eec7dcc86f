"""A merchant's reputation: decayed accumulators, the documented score, incremental updates.

`0x33 || merchant` keeps integer accumulators (counts in Q16, value in base
units) as of the height it was last touched; `bring_forward` decays them to
a later height (`decay.py`), `add`/`take` apply or withdraw one order's or
one review's contribution. The score (basis points) is a pure function of
the record (`score`, docs/trust.md section 5): a Bayesian average rating, a
service figure from shipping, time-outs, cancellations and lost disputes, a
logarithmic volume figure, less a strike per fake-order ruling. A block
recomputes the score once per merchant it touched (`rescore`, from the end
hook), never for the others.
"""

from __future__ import annotations

from typing import NamedTuple

from ..constants import BPS_DENOMINATOR, TRUST_COUNT_ONE, U32_MAX, U64_MAX
from ..genesis import TrustParams
from ..mall.codec import MARK, MallState, StateReader
from . import keys
from .decay import advance, decay, decay_steps
from .records import EMPTY_REPUTATION, Reputation, decode_reputation

Q = TRUST_COUNT_ONE
STARS_MILLI_MIN = 1_000
STARS_MILLI_SPAN = 4_000  # 1.000 .. 5.000 stars

# The decayed fields, in record order (the others are lifetime counters or the score).
DECAYED = ("orders_q", "cancels_q", "timeouts_q", "disputes_q", "shipped_q", "on_time_q",
           "value", "rating_sum_q", "rating_count_q")


class Score(NamedTuple):
    """The parts of a reputation (basis points each) and the Bayesian rating."""

    rating_milli: int
    quality_bps: int
    service_bps: int
    volume_bps: int
    score_bps: int


def bring_forward(record: Reputation, height: int, params: TrustParams) -> Reputation:
    """The record with every decayed field decayed by the whole steps from its
    `last_height` to `height` (decay.advance: the rest of a step carries over)."""
    steps, reached = advance(record.last_height, height, params.half_life_blocks)
    if steps == 0:
        return record
    changes = {name: decay_steps(getattr(record, name), steps) for name in DECAYED}
    return record._replace(last_height=reached, **changes)


def bayesian_milli(sum_q: int, count_q: int, prior_milli: int, prior_weight: int) -> int:
    """(prior_weight * prior + sum of ratings) / (prior_weight + count), in milli-stars."""
    weight_q = prior_weight * Q
    return (weight_q * prior_milli + sum_q * 1_000) // (weight_q + count_q)


def stars_to_bps(rating_milli: int, scale: int = BPS_DENOMINATOR) -> int:
    """1.000 stars -> 0, 5.000 -> `scale` (floor)."""
    return (rating_milli - STARS_MILLI_MIN) * scale // STARS_MILLI_SPAN


def score(record: Reputation, params: TrustParams) -> Score:
    """The reputation of a record (already brought forward): docs/trust.md section 5."""
    rating = bayesian_milli(record.rating_sum_q, record.rating_count_q,
                            params.prior_rating_milli, params.prior_weight)
    quality = stars_to_bps(rating)
    prior_q = params.service_prior_weight * Q
    ship = (record.on_time_q * BPS_DENOMINATOR + prior_q * params.service_prior_bps) \
        // (record.shipped_q + prior_q)
    settled = record.orders_q + record.cancels_q + record.timeouts_q + record.disputes_q
    trouble_q = record.disputes_q + record.timeouts_q + record.cancels_q // 2
    trouble = min(BPS_DENOMINATOR, trouble_q * BPS_DENOMINATOR // (settled + prior_q))
    service = ship * (BPS_DENOMINATOR - trouble) // BPS_DENOMINATOR
    volume = min(BPS_DENOMINATOR,
                 record.value.bit_length() * BPS_DENOMINATOR // params.volume_bits_full)
    weights = params.rep_weight_quality + params.rep_weight_service + params.rep_weight_volume
    base = (params.rep_weight_quality * quality + params.rep_weight_service * service
            + params.rep_weight_volume * volume) // weights
    total = max(0, base - record.strikes * params.fake_strike_bps)
    return Score(rating, quality, service, volume, total)


def load(state: StateReader, merchant: bytes) -> Reputation:
    raw = state.get(keys.merchant(merchant))
    return EMPTY_REPUTATION if raw is None else decode_reputation(raw)


def save(state: MallState, merchant: bytes, record: Reputation) -> None:
    state.set(keys.merchant(merchant), record.encode())


def current(state: StateReader, merchant: bytes, height: int, params: TrustParams,
            ) -> tuple[Reputation, Score]:
    """The merchant's record brought forward to `height` and its score then (no write)."""
    record = bring_forward(load(state, merchant), height, params)
    return record, score(record, params)


def touch(state: MallState, merchant: bytes, height: int, params: TrustParams,
          **deltas: int) -> None:
    """Add `deltas` (negative: withdraw, floored at 0) to the merchant's record brought
    forward to `height`; the merchant is re-scored at the end of the block."""
    raw = state.get(keys.merchant(merchant))
    record = EMPTY_REPUTATION._replace(last_height=height) if raw is None \
        else bring_forward(decode_reputation(raw), height, params)
    changes = {}
    for name, delta in deltas.items():
        top = U32_MAX if name in ("strikes", "fake_orders", "flagged_orders") else U64_MAX
        changes[name] = min(max(getattr(record, name) + delta, 0), top)
    save(state, merchant, record._replace(**changes))
    state.set(keys.dirty_merchant(merchant), MARK)


def decayed_since(value: int, since_height: int, height: int, params: TrustParams) -> int:
    """A contribution made at `since_height`, as it weighs at `height`."""
    return decay(value, height - since_height, params.half_life_blocks)


def rescore(state: MallState, merchant: bytes, height: int, params: TrustParams) -> bool:
    """Bring the record to `height` and store its score; whether the score changed."""
    old = load(state, merchant)
    record = bring_forward(old, height, params)
    record = record._replace(score_bps=score(record, params).score_bps)
    if record != old:
        save(state, merchant, record)
    return record.score_bps != old.score_bps
