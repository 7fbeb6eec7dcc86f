"""Token rewards (docs/trust.md 9): points, the epoch close with its accumulator, lazy
settlement and claims, attested actions, expiry; nothing is created or lost."""

from __future__ import annotations

import dataclasses

import pytest
from chainmall.core import constants as C
from chainmall.core.errors import (
    AttestCapReached,
    ClaimUsed,
    MalformedPayload,
    NotAttester,
    NothingToClaim,
)
from chainmall.core.genesis import TrustParams, make_genesis, make_trust
from chainmall.core.keys import KeyPair
from chainmall.core.state.accounts import FEE_POOL_KEY, decode_fee_pool, encode_fee_pool
from chainmall.core.trust import keys, rewards
from chainmall.core.trust.records import EPOCH_CLOSED, EPOCH_EXPIRED, EPOCH_OPEN
from dict_state import Clock, DictState
from hypothesis import given, settings
from hypothesis import strategies as st
from mall_chain import ok
from trust_chain import TRUST_TEST_PARAMS, refused, sell

DAY_MS = 86_400_000


def fee_pool(chain) -> int:
    return decode_fee_pool(chain.get(FEE_POOL_KEY))


def test_an_epoch_closes_and_its_contributors_claim(market):
    chain, k, products = market
    sell(chain, [(k["shop"], k["alice"], products["ring"], 20_000),
                 (k["shop2"], k["bob"], products["chain"], 5_000)])
    assert chain.epoch(0).state == EPOCH_OPEN and chain.epoch(0).total_points == 500
    pool = fee_pool(chain)
    refused(chain, chain.claim(k["alice"]), NothingToClaim.code)  # the epoch is open
    chain.block([], advance_ms=DAY_MS)
    record = chain.epoch(0)
    share = (pool + 1) * TRUST_TEST_PARAMS.pool_share_bps // 10_000  # + the refused tx's fee
    assert record.state == EPOCH_CLOSED
    assert (record.amount, record.issued) == (share + 10_000, 10_000)
    assert record.per_point == ((share + 10_000) << 64) // 500
    before = {name: chain.balance(k[name]) for name in ("alice", "bob", "shop", "shop2")}
    result = chain.block([chain.claim(k[name]) for name in before])
    ok(result)
    paid = {name: chain.balance(k[name]) - before[name] + 1 for name in before}  # + fee
    assert paid["alice"] == paid["shop"] == (200 * record.per_point) >> 64
    assert paid["bob"] == paid["shop2"] == (50 * record.per_point) >> 64
    assert sum(paid.values()) <= record.amount
    assert chain.epoch(0).settled == sum(paid.values())
    # The checked sum counts the issued units negatively: it stays the genesis total.
    assert chain.total_supply() == chain.genesis.total_supply
    assert chain.issued() == 10_000
    assert chain.query("/trust/rewards", k["alice"].address)


def test_unsettled_rewards_expire_back_to_the_fee_pool(market):
    chain, k, products = market
    sell(chain, [(k["shop"], k["alice"], products["ring"], 20_000)])
    chain.block([], advance_ms=DAY_MS)
    amount = chain.epoch(0).amount
    ok(chain.block([chain.claim(k["alice"])]))
    rest = amount - chain.epoch(0).settled
    assert rest > 0  # the shop has not claimed
    for _ in range(TRUST_TEST_PARAMS.claim_epochs - 1):  # epochs 2 .. claim_epochs
        chain.block([], advance_ms=DAY_MS)
        assert chain.epoch(0).state == EPOCH_CLOSED
    pool = fee_pool(chain)
    chain.block([], advance_ms=DAY_MS)  # epoch claim_epochs + 1 begins
    assert chain.epoch(0).state == EPOCH_EXPIRED
    assert fee_pool(chain) == pool + rest
    refused(chain, chain.claim(k["shop"]), NothingToClaim.code)  # too late
    assert chain.total_supply() == chain.genesis.total_supply


def test_attested_actions_once_each_within_the_cap(market):
    chain, k, _ = market
    claims = [(k["alice"].address, 1, bytes([i]) * 32) for i in range(1, 4)]
    ok(chain.block([chain.attest(k["attester"], claims)]))
    assert chain.reward_account(k["alice"].address).points == 3 * 10
    assert chain.reward_account(k["alice"].address).attested == 3
    assert chain.query("/trust/claim", bytes([1]) * 32)
    refused(chain, chain.attest(k["reporter"], [(k["bob"].address, 1, b"\x09" * 32)]),
            NotAttester.code)
    refused(chain, chain.attest(k["attester"], [(k["bob"].address, 2, b"\x01" * 32)]),
            ClaimUsed.code)
    refused(chain, chain.attest(k["attester"], [(k["alice"].address, 3, b"\x05" * 32)]),
            AttestCapReached.code)
    # All or nothing: a good claim with a used one changes nothing.
    refused(chain, chain.attest(k["attester"], [(k["bob"].address, 3, b"\x06" * 32),
                                               (k["bob"].address, 3, b"\x02" * 32)]),
            ClaimUsed.code)
    for bad in (b"\x01\x00", b"\x01\x01" + k["bob"].address + b"\x04" + b"\x07" * 32,
                b"\x01\x02" + (k["bob"].address + b"\x01" + b"\x07" * 32) * 2):
        refused(chain, chain.tx(k["attester"], C.TX_TRUST_REWARD_ATTEST, bad),
                MalformedPayload.code)
    chain.block([], advance_ms=DAY_MS)  # a new epoch: the cap starts again
    ok(chain.block([chain.attest(k["attester"], [(k["alice"].address, 3, b"\x05" * 32)])]))


def test_issuance_stops_at_its_cap(tmp_path):
    from trust_chain import TrustChain, trust_genesis

    params = dataclasses.replace(TRUST_TEST_PARAMS, issuance_per_epoch=600,
                                 issuance_max=1_000)
    chain = TrustChain(tmp_path / "cap", trust_genesis(
        {"attester": 10**6, "alice": 10**6, "agenzia": 1}, trust=params))
    from mall_chain import key

    for epoch in range(3):
        ok(chain.block([chain.attest(key("attester"),
                                     [(key("alice").address, 1, bytes([epoch + 1]) * 32)])]))
        chain.block([], advance_ms=DAY_MS)
    assert [chain.epoch(e).issued for e in range(3)] == [600, 400, 0]
    assert chain.issued() == 1_000 and chain.total_supply() == chain.genesis.total_supply
    chain.close()


# --- the property: nothing is created or lost ------------------------------------------

ACCOUNTS = [KeyPair.from_seed(bytes([i]) * 32).address for i in range(1, 6)]
GENESIS = make_genesis("rewards-prop", [(ACCOUNTS[0], 10**12)],
                       [(KeyPair.from_seed(b"v" * 32).public_key, 1)], genesis_time_ms=0,
                       trust=make_trust([], TrustParams(
                           epoch_ms=1_000, pool_share_bps=3_333, issuance_per_epoch=77,
                           issuance_max=5_000, claim_epochs=2)))

operation = st.one_of(
    st.tuples(st.just("award"), st.integers(0, 4), st.integers(0, 10**6)),
    st.tuples(st.just("withdraw"), st.integers(0, 4), st.integers(0, 10**6)),
    st.tuples(st.just("fees"), st.integers(0, 4), st.integers(0, 10**7)),
    st.tuples(st.just("claim"), st.integers(0, 4), st.integers(0, 0)),
    st.tuples(st.just("time"), st.integers(0, 4), st.integers(1, 3_500)),
)


def held(state: DictState) -> int:
    """Every unit the rewards hold, the fee pool and the claimed balances, less the issued."""
    total = decode_fee_pool(state.get(FEE_POOL_KEY))
    for key, value in state.entries.items():
        if key[0] == C.TABLE_TRUST_EPOCHS:
            total += rewards.epoch_supply(key, value)
        elif key[0] == C.TABLE_TRUST_ACCOUNTS:
            total += rewards.account_supply(key, value)
        elif key[0] == C.TABLE_TRUST_META:
            total += rewards.meta_supply(key, value)
        elif key[:1] == b"\xee":  # claimed balances in this model
            total += int.from_bytes(value, "big")
    return total


@settings(max_examples=150, deadline=None)
@given(st.lists(operation, max_size=60))
def test_rewards_conserve_every_unit(ops) -> None:
    state = DictState({FEE_POOL_KEY: encode_fee_pool(0)})
    clock = Clock(1, 0)
    injected = 0
    awarded: dict[int, list[tuple[int, int]]] = {}
    for kind, who, amount in ops:
        address = ACCOUNTS[who]
        if kind == "award":
            epoch = rewards.award(state, address, amount)
            awarded.setdefault(who, []).append((amount, epoch))
        elif kind == "withdraw" and awarded.get(who):
            points, epoch = awarded[who].pop()
            rewards.withdraw(state, address, points, epoch)
        elif kind == "fees":
            pool = decode_fee_pool(state.get(FEE_POOL_KEY))
            state.set(FEE_POOL_KEY, encode_fee_pool(pool + amount))
            injected += amount
        elif kind == "claim":
            account = rewards.settle(state, address, rewards.current_epoch(state))
            state.set(keys.reward_account(address), account._replace(pending=0).encode())
            balance = int.from_bytes(state.get(b"\xee" + address) or b"", "big")
            state.set(b"\xee" + address, (balance + account.pending).to_bytes(16, "big"))
        elif kind == "time":
            clock = Clock(clock.height + 1, clock.timestamp_ms + amount)
            rewards.close_epochs(state, clock, GENESIS)
        assert held(state) == injected
        issued = rewards.issued(state)
        assert issued <= GENESIS.trust.params.issuance_max
        for key, value in state.entries.items():
            if key[0] == C.TABLE_TRUST_EPOCHS:
                record = rewards.decode_epoch(value)
                assert record.settled <= record.amount


def test_the_close_costs_the_same_for_any_number_of_contributors() -> None:
    """The close reads and writes a fixed set of entries: count them, for 10 and 10,000."""
    touched = []
    for contributors in (10, 10_000):
        state = DictState({FEE_POOL_KEY: encode_fee_pool(10**9)})
        for i in range(contributors):
            rewards.award(state, i.to_bytes(20, "big"), 7)
        counter = CountingState(state)
        rewards.close_epochs(counter, Clock(2, 10 * 86_400_000), GENESIS)
        touched.append((counter.reads, counter.writes))
    assert touched[0] == touched[1]


class CountingState:
    def __init__(self, inner: DictState) -> None:
        self.inner, self.reads, self.writes = inner, 0, 0

    def get(self, key):
        self.reads += 1
        return self.inner.get(key)

    def set(self, key, value):
        self.writes += 1
        self.inner.set(key, value)

    def delete(self, key):
        self.writes += 1
        self.inner.delete(key)

    def scan(self, start, end, limit=None):
        found = self.inner.scan(start, end, limit)
        self.reads += len(found) + 1
        return found


@pytest.mark.parametrize("payload", [b"", b"\x01\x00", b"\x02"])
def test_claim_payload_is_exactly_the_version(market, payload):
    chain, k, _ = market
    refused(chain, chain.tx(k["alice"], C.TX_TRUST_REWARD_CLAIM, payload),
            MalformedPayload.code)
