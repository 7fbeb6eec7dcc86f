"""The mempool's rules: nonce order, limits, fee eviction, reaping and recheck."""

from __future__ import annotations

import pytest
from chainmall.core.address import address_from_public_key
from chainmall.core.constants import TX_TYPE_TRANSFER
from chainmall.core.errors import (
    FeeTooLow,
    InsufficientFee,
    MempoolFull,
    NonceMismatch,
    NonceTaken,
    SenderLimit,
    TxAlreadyPending,
    TxExpired,
    UnknownSender,
)
from chainmall.core.keys import KeyPair
from chainmall.core.node.mempool import Mempool, MempoolLimits
from chainmall.core.state.accounts import account_key, encode_transfer, pack_account
from chainmall.core.tx import Tx, sign_tx

CHAIN = "pool-test"
KEYS = [KeyPair.from_seed(bytes([i]) * 32) for i in range(1, 6)]
TO = KeyPair.from_seed(b"t" * 32).address
BIG = MempoolLimits(1000, 1 << 20, 100)


def transfer(key: KeyPair, nonce: int, fee: int = 1, expiry: int = 100) -> Tx:
    return sign_tx(key, CHAIN, TX_TYPE_TRANSFER, nonce, fee, expiry, encode_transfer(TO, 5))


def add(pool: Mempool, tx: Tx, account: tuple[int, int] | None = (1_000, 0)) -> list:
    return pool.add(tx, tx.encode(), account)


def test_admission_rules_in_order() -> None:
    pool = Mempool(BIG, fee_min=1)
    with pytest.raises(UnknownSender):
        add(pool, transfer(KEYS[0], 0), None)
    with pytest.raises(NonceMismatch):  # a replay of a committed tx is below the nonce
        add(pool, transfer(KEYS[0], 2), (1_000, 3))
    with pytest.raises(SenderLimit, match="ahead"):
        add(pool, transfer(KEYS[0], 100), (1_000, 0))
    with pytest.raises(FeeTooLow):
        add(pool, transfer(KEYS[0], 0, fee=0))
    with pytest.raises(InsufficientFee):
        add(pool, transfer(KEYS[0], 0, fee=2_000))
    tx = transfer(KEYS[0], 0)
    add(pool, tx)
    with pytest.raises(TxAlreadyPending):
        add(pool, tx)
    with pytest.raises(NonceTaken):
        add(pool, transfer(KEYS[0], 0, fee=3))
    assert len(pool) == 1 and tx.tx_id in pool and pool.bytes_total == len(tx.encode())


def test_pending_fees_count_against_the_committed_balance() -> None:
    pool = Mempool(BIG, fee_min=1)
    add(pool, transfer(KEYS[0], 0, fee=600), (1_000, 0))
    with pytest.raises(InsufficientFee):
        add(pool, transfer(KEYS[0], 1, fee=500))
    add(pool, transfer(KEYS[0], 1, fee=400))
    # The cached account is used for a known sender, whatever the caller passes.
    with pytest.raises(InsufficientFee):
        add(pool, transfer(KEYS[0], 2, fee=1), (10**9, 0))


def test_per_sender_limit() -> None:
    pool = Mempool(MempoolLimits(1000, 1 << 20, 3), fee_min=0)
    for nonce in range(3):
        add(pool, transfer(KEYS[0], nonce))
    with pytest.raises(SenderLimit):
        add(pool, transfer(KEYS[0], 3))
    add(pool, transfer(KEYS[1], 0))


def test_reap_orders_nonces_per_sender_and_fees_across_senders() -> None:
    pool = Mempool(BIG, fee_min=0)
    a = [transfer(KEYS[0], n, fee=1) for n in range(3)]
    b = [transfer(KEYS[1], n, fee=5) for n in range(2)]
    gap = transfer(KEYS[2], 1, fee=50)  # nonce 0 missing: cannot run yet
    for tx in [a[2], a[0], b[1], a[1], gap, b[0]]:
        add(pool, tx)
    reaped = pool.reap(100, 1 << 20)
    assert [p.tx for p in reaped] == [b[0], b[1], a[0], a[1], a[2]]
    assert pool.unreaped == 1
    assert pool.reap(100, 1 << 20) == []  # in the block being made, or behind a gap
    pool.release(reaped[3:])
    assert [p.tx for p in pool.reap(100, 1 << 20)] == [a[1], a[2]]


def test_reap_respects_the_block_limits() -> None:
    pool = Mempool(BIG, fee_min=0)
    txs = [transfer(KEYS[0], n) for n in range(5)]
    for tx in txs:
        add(pool, tx)
    assert [p.tx for p in pool.reap(2, 1 << 20)] == txs[:2]
    size = len(txs[0].encode())
    assert [p.tx for p in pool.reap(100, 2 * size + 1)] == txs[2:4]


def test_full_pool_evicts_the_lowest_fee_and_its_sender_tail() -> None:
    pool = Mempool(MempoolLimits(3, 1 << 20, 100), fee_min=0)
    low = [transfer(KEYS[0], n, fee=1) for n in range(2)]
    mid = transfer(KEYS[1], 0, fee=5)
    for tx in [*low, mid]:
        add(pool, tx)
    with pytest.raises(MempoolFull):
        add(pool, transfer(KEYS[2], 0, fee=1))
    assert len(pool) == 3  # a refused tx evicts nothing
    evicted = add(pool, transfer(KEYS[2], 0, fee=9))
    # The latest low-fee tx goes first; nothing else had to.
    assert [d.pending.tx for d in evicted] == [low[1]]
    assert all(d.code == MempoolFull.code for d in evicted)
    evicted = add(pool, transfer(KEYS[3], 0, fee=9))
    assert [d.pending.tx for d in evicted] == [low[0]]
    assert len(pool) == 3


def test_eviction_after_the_pool_drained_and_filled_again() -> None:
    # The eviction order is made from the pool once it is full (a pool with room keeps
    # none): txs admitted while there was room are candidates like any other.
    pool = Mempool(MempoolLimits(4, 1 << 20, 100), fee_min=0)
    first = [transfer(KEYS[i], 0, fee=3) for i in range(4)]
    for tx in first:
        add(pool, tx)
    evicted = add(pool, transfer(KEYS[4], 0, fee=4))
    assert [d.pending.tx for d in evicted] == [first[3]]
    reaped = pool.reap(10, 1 << 20)
    assert len(reaped) == 4
    pool.remove_reaped(reaped)
    assert pool.recheck_changed(1, {}) == [] and len(pool) == 0
    again = [transfer(KEYS[i], 1, fee=fee) for i, fee in enumerate((5, 2, 7, 2))]
    for tx in again:
        add(pool, tx, (1_000, 1))
    with pytest.raises(MempoolFull):  # a fee of 2 does not beat the lowest pending fee
        add(pool, transfer(KEYS[4], 1, fee=2), (1_000, 1))
    evicted = add(pool, transfer(KEYS[4], 1, fee=6), (1_000, 1))
    assert [d.pending.tx for d in evicted] == [again[3]]  # the latest of the lowest fee
    evicted = add(pool, transfer(KEYS[3], 1, fee=9), (1_000, 1))
    assert [d.pending.tx for d in evicted] == [again[1]]
    assert sorted(p.tx.fee for p in pool.reap(10, 1 << 20)) == [5, 6, 7, 9]


def test_eviction_takes_a_senders_higher_nonces_too() -> None:
    pool = Mempool(MempoolLimits(3, 1 << 20, 100), fee_min=0)
    add(pool, transfer(KEYS[0], 0, fee=1))
    add(pool, transfer(KEYS[0], 1, fee=7))
    add(pool, transfer(KEYS[1], 0, fee=5))
    evicted = add(pool, transfer(KEYS[2], 0, fee=6))
    assert [(d.pending.tx.sender, d.pending.tx.nonce) for d in evicted] == [
        (KEYS[0].public_key, 0), (KEYS[0].public_key, 1)]
    assert len(pool) == 2


def test_txs_in_the_block_being_made_are_not_evicted() -> None:
    pool = Mempool(MempoolLimits(1, 1 << 20, 100), fee_min=0)
    add(pool, transfer(KEYS[0], 0, fee=1))
    pool.reap(10, 1 << 20)
    with pytest.raises(MempoolFull):
        add(pool, transfer(KEYS[1], 0, fee=100))


def test_byte_limit() -> None:
    size = len(transfer(KEYS[0], 0).encode())
    pool = Mempool(MempoolLimits(100, 2 * size, 100), fee_min=0)
    add(pool, transfer(KEYS[0], 0))
    add(pool, transfer(KEYS[0], 1))
    with pytest.raises(MempoolFull):
        add(pool, transfer(KEYS[1], 0))


def test_recheck_after_a_commit() -> None:
    pool = Mempool(BIG, fee_min=0)
    a = [transfer(KEYS[0], n, fee=100) for n in range(3)]
    b = [transfer(KEYS[1], n, fee=100) for n in range(3)]
    c = transfer(KEYS[2], 0, expiry=5)
    for tx in [*a, *b, c]:
        add(pool, tx)
    reaped = pool.reap(2, 1 << 20)
    assert len(reaped) == 2
    pool.remove(p.tx.tx_id for p in reaped)
    assert pool.unreaped == len(pool) == 5
    accounts = {
        KEYS[0].public_key: (1_000, 2),   # a[0], a[1] committed (or replaced elsewhere)
        KEYS[1].public_key: (150, 0),     # the balance now covers one pending fee only
        KEYS[2].public_key: (1_000, 0),
    }
    dropped = pool.recheck(5, accounts)
    codes = {d.pending.tx.tx_id: d.code for d in dropped}
    assert codes == {b[1].tx_id: InsufficientFee.code, b[2].tx_id: InsufficientFee.code,
                     c.tx_id: TxExpired.code}
    remaining = {p.tx.tx_id for p in pool.reap(100, 1 << 20)}
    assert remaining == {a[2].tx_id, b[0].tx_id}
    assert pool.height == 5


def test_recheck_drops_used_nonces_and_forgets_idle_senders() -> None:
    pool = Mempool(BIG, fee_min=0)
    tx = transfer(KEYS[0], 0)
    add(pool, tx)
    dropped = pool.recheck(1, {KEYS[0].public_key: (1_000, 1)})
    assert [(d.pending.tx, d.code) for d in dropped] == [(tx, NonceMismatch.code)]
    assert len(pool) == 0 and pool.senders() == []
    assert pool.account(KEYS[0].public_key) is None


def test_recheck_from_a_block_s_changes() -> None:
    """`recheck_changed` takes the new account of each sender whose entry the block
    changed and keeps the cached one of the others; a deleted entry drops the sender's
    txs. It drops the same txs as `recheck` given every account."""
    def key_of(keypair: KeyPair) -> bytes:
        return account_key(address_from_public_key(keypair.public_key))

    def pool_with_txs() -> tuple[Mempool, list[Tx]]:
        pool = Mempool(BIG, fee_min=1)
        txs = [transfer(KEYS[0], 0), transfer(KEYS[0], 1), transfer(KEYS[1], 0, fee=300),
               transfer(KEYS[1], 1, fee=300), transfer(KEYS[2], 0), transfer(KEYS[3], 4,
                                                                             expiry=1)]
        for tx in txs:
            add(pool, tx, (1_000, 4) if tx.sender == KEYS[3].public_key else (1_000, 0))
        return pool, txs

    pool, txs = pool_with_txs()
    changes = {key_of(KEYS[0]): pack_account(999, 1),  # tx 0 committed
               key_of(KEYS[1]): pack_account(400, 0),  # paid out: covers one fee
               key_of(KEYS[2]): None,                  # the account is gone
               b"\x09" * 33: b"another entry"}         # not an account of the pool
    dropped = pool.recheck_changed(1, changes)  # KEYS[3] unchanged: cached (1_000, 4)
    codes = {d.pending.tx.tx_id: d.code for d in dropped}
    assert codes == {txs[0].tx_id: NonceMismatch.code, txs[3].tx_id: InsufficientFee.code,
                     txs[4].tx_id: UnknownSender.code, txs[5].tx_id: TxExpired.code}
    assert pool.account(KEYS[0].public_key) == (999, 1)
    assert pool.height == 1
    reference, _ = pool_with_txs()
    again = reference.recheck(1, {KEYS[0].public_key: (999, 1), KEYS[1].public_key: (400, 0),
                                  KEYS[2].public_key: None, KEYS[3].public_key: (1_000, 4)})
    assert [(d.pending.tx.tx_id, d.code) for d in again] == [
        (d.pending.tx.tx_id, d.code) for d in dropped]


def test_the_next_block_is_reaped_while_the_last_is_settled() -> None:
    """The producer pipelines: block 2 is reaped before block 1's txs leave the pool, and
    block 1's recheck leaves block 2's txs to block 2."""
    pool = Mempool(BIG, fee_min=0)
    a = [transfer(KEYS[0], n, fee=100) for n in range(4)]
    b = transfer(KEYS[1], 0, fee=200, expiry=1)
    for tx in a:
        add(pool, tx)
    first = pool.reap(2, 1 << 20)
    assert [p.tx for p in first] == [a[0], a[1]]
    add(pool, b)  # arrives while block 1 is made
    second = pool.reap(2, 1 << 20)  # block 1 still in the pool: its txs are skipped
    assert [p.tx for p in second] == [b, a[2]]
    pool.remove_reaped(first)
    # b expired at height 1 (recheck at height 1 asks for expiry >= 2) and the balance
    # covers one fee only: both would be dropped, but they are in block 2.
    dropped = pool.recheck(1, {KEYS[0].public_key: (100, 2), KEYS[1].public_key: (1_000, 0)})
    assert [(d.pending.tx, d.code) for d in dropped] == [(a[3], InsufficientFee.code)]
    assert pool.reap(10, 1 << 20) == []  # block 2 holds the rest
    pool.remove_reaped(second)
    assert len(pool) == 0


def test_a_failed_lower_nonce_does_not_reap_a_block_s_tx_twice() -> None:
    pool = Mempool(BIG, fee_min=0)
    a = [transfer(KEYS[0], n) for n in range(3)]
    for tx in a:
        add(pool, tx)
    first = pool.reap(1, 1 << 20)
    second = pool.reap(1, 1 << 20)
    assert [p.tx for p in second] == [a[1]]
    pool.remove_reaped(first)
    # a[0] failed in its block: the nonce stayed at 0; a[1] is in block 2 already.
    assert pool.recheck(1, {KEYS[0].public_key: (1_000, 0)}) == []
    assert pool.reap(10, 1 << 20) == []


@pytest.mark.parametrize("seed", range(6))
def test_recheck_from_changes_matches_recheck_from_reads(seed: int) -> None:
    """Random admissions, blocks (some txs fail, some balances move by receipts) and
    expiries: `recheck_changed` given only the changed entries drops exactly what
    `recheck` given every sender's account drops, and leaves the same pool."""
    import random

    from chainmall.core.errors import ChainmallError

    rng = random.Random(seed)
    keys = KEYS[:4]
    accounts = {k.public_key: (rng.randrange(0, 40), 0) for k in keys}
    state_key = {k.public_key: account_key(address_from_public_key(k.public_key))
                 for k in keys}
    by_changes, by_reads = Mempool(BIG, fee_min=1), Mempool(BIG, fee_min=1)
    for height in range(1, 61):
        for _ in range(rng.randrange(0, 6)):
            key = rng.choice(keys)
            balance, nonce = accounts[key.public_key]
            tx = transfer(key, max(0, nonce + rng.randrange(-1, 4)), fee=rng.randrange(1, 9),
                          expiry=height - 1 + rng.randrange(0, 12))
            verdicts = []
            for pool in (by_changes, by_reads):
                try:
                    pool.add(tx, tx.encode(), accounts[key.public_key])
                    verdicts.append(0)
                except ChainmallError as exc:
                    verdicts.append(exc.code)
            assert verdicts[0] == verdicts[1]
        size = rng.randrange(0, 5)
        reaped = by_changes.reap(size, 1 << 20)
        assert [p.tx for p in reaped] == [p.tx for p in by_reads.reap(size, 1 << 20)]
        changes: dict[bytes, bytes | None] = {}
        for pending in reaped:  # the block: a tx runs if its nonce is next and fee paid
            tx = pending.tx
            balance, nonce = accounts[tx.sender]
            if tx.nonce == nonce and balance >= tx.fee and rng.random() < 0.9:
                accounts[tx.sender] = (balance - tx.fee, nonce + 1)
                changes[state_key[tx.sender]] = pack_account(*accounts[tx.sender])
        for key in keys:  # what else moved the accounts: receipts, spending, a used nonce
            if rng.random() < 0.3:
                balance, nonce = accounts[key.public_key]
                accounts[key.public_key] = (max(0, balance + rng.randrange(-15, 20)),
                                            nonce + (rng.random() < 0.3))
                changes[state_key[key.public_key]] = pack_account(*accounts[key.public_key])
        by_changes.remove_reaped(reaped)
        by_reads.remove_reaped([by_reads.get(p.tx.tx_id) for p in reaped  # type: ignore[misc]
                                if by_reads.get(p.tx.tx_id) is not None])
        first = by_changes.recheck_changed(height, changes)
        second = by_reads.recheck(height, {k: accounts[k] for k, _ in by_reads.senders()})
        assert sorted((d.pending.tx.tx_id, d.code) for d in first) == sorted(
            (d.pending.tx.tx_id, d.code) for d in second)
        assert by_changes.senders() == by_reads.senders()
        assert len(by_changes) == len(by_reads)
        assert all(by_changes.account(k) == by_reads.account(k) for k, _ in by_reads.senders())
        left, right = by_changes.reap(1000, 1 << 20), by_reads.reap(1000, 1 << 20)
        assert [p.tx for p in left] == [p.tx for p in right]
        by_changes.release(left)
        by_reads.release(right)
