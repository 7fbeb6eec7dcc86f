"""The arbitrator draw: deterministic, seeded by the previous block's hash, from the pool.

A seat is filled by probing the pool at indexes derived from keyed BLAKE3 of
(previous block hash, order id, round, seat, attempt), up to DRAW_ATTEMPTS_MAX
probes, then walking the pool in order from the last probe for at most
DRAW_WALK_MAX members. A candidate is eligible unless it is a party (buyer or
merchant), sat on this dispute before, was funded into existence by a party
(following creator records up to CREATOR_HOPS_MAX links), or funded a party
into existence. Why this seed and this exclusion rule: docs/mall.md 11.2.
"""

from __future__ import annotations

from ..constants import CREATOR_HOPS_MAX, DRAW_ATTEMPTS_MAX, DRAW_WALK_MAX, HASH_BYTES
from ..encoding import Writer
from ..hashing import digest, domain_key
from ..state.accounts import creator_key, decode_creator
from .codec import StateReader
from .pool import pool_member, pool_size

DRAW_CONTEXT = "chainmall 2026-11 mall arbitrator draw v1"
DRAW_KEY = domain_key(DRAW_CONTEXT)


def creators(state: StateReader, address: bytes, hops: int = CREATOR_HOPS_MAX) -> list[bytes]:
    """Who funded `address` into existence, who funded that one, ... up to `hops` links."""
    chain = []
    for _ in range(hops):
        raw = state.get(creator_key(address))
        if raw is None:
            break
        address = decode_creator(raw)
        chain.append(address)
    return chain


def probe_index(prev_hash: bytes, order_id: bytes, round_number: int, seat: int, attempt: int,
                size: int) -> int:
    """The pool index of one probe (uniform up to a bias below 2^-40 for size <= 2^24)."""
    assert len(prev_hash) == HASH_BYTES and size > 0
    message = (Writer().fixed(prev_hash, HASH_BYTES).fixed(order_id, HASH_BYTES)
               .u8(round_number).u8(seat).u16(attempt).getvalue())
    return int.from_bytes(digest(message, DRAW_KEY)[:8], "big") % size


class Eligibility:
    """Who may sit on one dispute's panel (computed once per dispute and round)."""

    def __init__(self, state: StateReader, buyer: bytes, merchant: bytes,
                 excluded: list[bytes]) -> None:
        self._state = state
        self._parties = {buyer, merchant}
        # Accounts that funded a party into existence (within the hop limit).
        self._party_creators = set(creators(state, buyer)) | set(creators(state, merchant))
        self._excluded = set(excluded)

    def __call__(self, candidate: bytes) -> bool:
        if candidate in self._parties or candidate in self._excluded:
            return False
        if candidate in self._party_creators:
            return False
        return not self._parties.intersection(creators(self._state, candidate))


def draw_one(state: StateReader, prev_hash: bytes, order_id: bytes, round_number: int,
             seat: int, eligible: Eligibility) -> bytes | None:
    """The arbitrator for one seat, or None if no eligible member was found."""
    size = pool_size(state)
    if size == 0:
        return None
    index = 0
    for attempt in range(DRAW_ATTEMPTS_MAX):
        index = probe_index(prev_hash, order_id, round_number, seat, attempt, size)
        candidate = pool_member(state, index)
        if eligible(candidate):
            return candidate
    for step in range(1, min(size, DRAW_WALK_MAX) + 1):
        candidate = pool_member(state, (index + step) % size)
        if eligible(candidate):
            return candidate
    return None
