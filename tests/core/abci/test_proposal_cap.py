"""The cap on this node's own proposals (PrepareProposal under CometBFT): the producer's
`BlockSizer`, envelopes counted by the txs they carry, arrivals, and ProcessProposal
unaffected (the cap shapes only what this node proposes)."""

from __future__ import annotations

import pytest
from app_chain import AppChain, forged
from app_chain import block as request
from chainmall.core.abci import block_sizer
from chainmall.core.abci.app import Application
from chainmall.core.abci.envelope import carried_count, encode_envelope
from chainmall.core.abci.types import BlockRequest, CheckTxKind
from chainmall.core.constants import (
    PROPOSAL_TIME_TARGET_MS,
    PROPOSAL_TXS_MIN,
    PROPOSAL_TXS_START,
)
from chainmall.core.errors import TX_OK
from chainmall.core.node import producer
from chainmall.core.store import Store

CHAIN_SETUP = AppChain("proposal-cap-test", 12)
KEYS, GENESIS = CHAIN_SETUP.keys, CHAIN_SETUP.genesis


def transfer(index: int, nonce: int = 0) -> bytes:
    return CHAIN_SETUP.transfer(KEYS[index], nonce, 1)


def block(height: int, txs) -> BlockRequest:
    return request(height, txs, 10 * height)


@pytest.fixture
def app(tmp_path):
    with Store(tmp_path / "ledger") as store:
        yield Application(store, GENESIS)


class Recorder:
    """A sizer that records what it is told and caps at `cap`."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.seen: list[tuple[int, float]] = []

    def observe(self, txs: int, took_ms: float) -> None:
        self.seen.append((txs, took_ms))


def test_one_mechanism_for_both_engines(app: Application) -> None:
    assert producer.BlockSizer is block_sizer.BlockSizer
    sizer = app.proposal_sizer
    assert isinstance(sizer, block_sizer.BlockSizer)
    assert (sizer.cap, sizer.target_ms) == (PROPOSAL_TXS_START, PROPOSAL_TIME_TARGET_MS)
    for _ in range(20):  # slow blocks: down to the floor, not below
        sizer.observe(sizer.cap, 100 * PROPOSAL_TIME_TARGET_MS)
    assert sizer.cap == PROPOSAL_TXS_MIN


def test_sizer_floor_and_start_are_bounded() -> None:
    sizer = block_sizer.BlockSizer(50, 100.0, floor=10, start=5)
    assert sizer.cap == 10  # never starts below the floor
    assert block_sizer.BlockSizer(50, 100.0, floor=10, start=500).cap == 50
    with pytest.raises(ValueError):
        block_sizer.BlockSizer(50, 100.0, floor=0)


def test_carried_count_reads_the_header() -> None:
    assert carried_count(transfer(0)) == 1
    assert carried_count(encode_envelope([transfer(0), transfer(1), transfer(2)])) == 3
    assert carried_count(b"\xe1\x01") == 1  # malformed: one item, fails its checks later


def test_cap_counts_an_envelopes_carried_txs(app: Application) -> None:
    three = encode_envelope([transfer(0), transfer(1), transfer(2)])
    other = encode_envelope([transfer(3), transfer(4), transfer(5)])
    plain = transfer(6)
    app.proposal_sizer = Recorder(4)
    assert app.proposal_txs == 4
    assert app.prepare_proposal(block(1, [three, other, plain])) == (three,)
    assert app.prepare_proposal(block(1, [plain, three, other])) == (plain, three)
    app.proposal_sizer = Recorder(6)
    assert app.prepare_proposal(block(1, [three, plain, other])) == (three, plain)


def test_the_first_valid_tx_is_taken_whatever_it_carries(app: Application) -> None:
    three = encode_envelope([transfer(0), transfer(1), transfer(2)])
    app.proposal_sizer = Recorder(2)
    assert app.prepare_proposal(block(1, [three, transfer(6)])) == (three,)
    # an invalid tx takes no room: the next valid one is still the first
    bad = encode_envelope([transfer(3), forged(transfer(4))])
    assert app.prepare_proposal(block(1, [bad, b"junk", three, transfer(6)])) == (three,)
    app.proposal_sizer = Recorder(4)
    assert app.prepare_proposal(block(1, [forged(transfer(7)), three, transfer(6)])) == \
        (three, transfer(6))


def test_process_proposal_accepts_more_than_our_cap(app: Application) -> None:
    txs = [encode_envelope([transfer(0), transfer(1), transfer(2)]), transfer(6), transfer(7)]
    app.proposal_sizer = Recorder(1)
    assert len(app.prepare_proposal(block(1, txs))) == 1
    assert app.process_proposal(block(1, txs))  # another validator's bigger proposal is valid


def test_finalize_and_commit_time_sizes_the_next_proposals(app: Application) -> None:
    recorder = Recorder(PROPOSAL_TXS_START)
    app.proposal_sizer = recorder
    txs = [encode_envelope([transfer(0), transfer(1), transfer(2)]), transfer(6)]
    app.finalize_block(block(1, txs))
    assert recorder.seen == []  # nothing until the block is durable
    app.commit()
    assert len(recorder.seen) == 1
    carried, took_ms = recorder.seen[0]
    assert carried == 4 and took_ms > 0
    app.finalize_block(block(2, []))
    app.commit()
    assert recorder.seen[1][0] == 0  # an empty block: the sizer ignores it


def test_arrivals_over_the_last_block_raise_the_cap(app: Application) -> None:
    app.proposal_sizer = Recorder(1)
    envelope = encode_envelope([transfer(0), transfer(1), transfer(2)])
    assert app.check_tx(envelope).code == TX_OK
    assert app.check_txs([transfer(6)])[0].code == TX_OK
    assert app.check_tx(transfer(7), CheckTxKind.RECHECK).code == TX_OK  # not an arrival
    assert app.check_txs([transfer(8)], arriving=False)[0].code == TX_OK  # nor a pre-check
    assert app.proposal_txs == 1  # counted over a whole block only
    app.finalize_block(block(1, []))
    app.commit()
    assert app.proposal_txs == 4
    txs = [envelope, transfer(6), transfer(8)]
    assert app.prepare_proposal(block(2, txs)) == (envelope, transfer(6))
    app.finalize_block(block(2, []))
    app.commit()
    assert app.proposal_txs == 1
