"""The ABCI application: every call, as both engines make it."""

from __future__ import annotations

import struct

import pytest
from app_chain import PROPOSER, VALIDATOR, AppChain, block
from chainmall.core.abci.app import Application
from chainmall.core.abci.types import (
    BlockRequest,
    CheckTxKind,
    InitChainRequest,
    QueryRequest,
    ValidatorUpdate,
)
from chainmall.core.errors import TX_OK, BadSignature, InvalidInput, NonceMismatch, QueryError
from chainmall.core.state.accounts import account_key, unpack_account
from chainmall.core.state.root import decode_proof, verify_proof
from chainmall.core.store import Store

CHAIN_SETUP = AppChain("app-test", 3)
CHAIN, KEYS, GENESIS = CHAIN_SETUP.chain_id, CHAIN_SETUP.keys, CHAIN_SETUP.genesis
transfer = CHAIN_SETUP.transfer


@pytest.fixture
def app(tmp_path):
    with Store(tmp_path / "ledger") as store:
        yield Application(store, GENESIS, version="test")


def test_info_and_init_chain(app: Application) -> None:
    info = app.info()
    assert info.last_block_height == 0 and info.version == "test"
    validators = (ValidatorUpdate(VALIDATOR.public_key, 3),)
    result = app.init_chain(InitChainRequest(CHAIN, 5, validators))
    assert result.app_hash == info.last_block_app_hash and result.validators == ()
    with pytest.raises(InvalidInput, match="chain id"):
        app.init_chain(InitChainRequest("other", 5))
    with pytest.raises(InvalidInput, match="validators"):
        app.init_chain(InitChainRequest(CHAIN, 5, (ValidatorUpdate(KEYS[0].public_key, 3),)))


def test_check_tx_reports_what_a_mempool_needs(app: Application) -> None:
    result = app.check_tx(transfer(KEYS[0], 4))
    assert result.code == TX_OK
    assert (result.sender, result.nonce, result.priority) == (KEYS[0].public_key, 4, 1)
    assert len(result.tx_id) == 32
    assert app.check_tx(transfer(KEYS[0], 4), CheckTxKind.RECHECK).code == TX_OK
    bad = bytearray(transfer(KEYS[1], 0))
    bad[-1] ^= 1
    assert app.check_tx(bytes(bad)).code == BadSignature.code


def test_proposals_keep_only_valid_txs_within_limits(app: Application) -> None:
    good = [transfer(KEYS[0], 0), transfer(KEYS[1], 0)]
    bad = bytearray(good[0])
    bad[-2] ^= 1
    proposal = app.prepare_proposal(block(1, [good[0], bytes(bad), b"junk", good[1]]))
    assert proposal == tuple(good)
    budget = BlockRequest(1, 10, tuple(good), PROPOSER, max_tx_bytes=len(good[0]))
    assert app.prepare_proposal(budget) == (good[0],)
    assert app.process_proposal(block(1, good))
    assert not app.process_proposal(block(1, [good[0], bytes(bad)]))


def test_finalize_commit_and_query_with_proofs(app: Application) -> None:
    txs = [transfer(KEYS[0], 0, 7), transfer(KEYS[0], 3)]
    result = app.finalize_block(block(1, txs))
    assert [r.code for r in result.tx_results] == [TX_OK, NonceMismatch.code]
    assert app.info().last_block_height == 0  # nothing durable before commit
    app.commit()
    info = app.info()
    assert (info.last_block_height, info.last_block_app_hash) == (1, result.app_hash)

    answer = app.query(QueryRequest("/account", KEYS[2].address, prove=True))
    assert answer.code == TX_OK and answer.height == 1 and answer.root == result.app_hash
    assert unpack_account(answer.value)[0] == 1_007
    assert verify_proof(result.app_hash, account_key(KEYS[2].address), answer.value,
                        decode_proof(answer.proof))
    absent = app.query(QueryRequest("/state", account_key(b"\x09" * 20), prove=True))
    assert absent.entries[0].value is None
    assert verify_proof(result.app_hash, absent.key, None, decode_proof(absent.proof))

    tx_id = result.tx_results[0].tx_id
    found = app.query(QueryRequest("/tx", tx_id))
    assert found.value == struct.pack(">QIH", 1, 0, TX_OK)
    assert app.query(QueryRequest("/tx", result.tx_results[1].tx_id)).entries[0].value is None
    stored = app.query(QueryRequest("/block", struct.pack(">Q", 1)))
    assert stored.value and stored.code == TX_OK


@pytest.mark.parametrize(("request_", "message"), [
    (QueryRequest("/nope"), "unknown query path"),
    (QueryRequest("/account", b"short"), "20-byte address"),
    (QueryRequest("/state", b""), "needs a state key"),
    (QueryRequest("/state", b"\x01" + bytes(20), height=9), "above the tip"),
    (QueryRequest("/tx", b"x"), "32-byte tx id"),
])
def test_bad_queries_get_a_code_not_an_exception(app: Application, request_, message) -> None:
    answer = app.query(request_)
    assert answer.code == QueryError.code and message in answer.log


def test_register_query_adds_a_proven_path(app: Application) -> None:
    app.register_query("/two", lambda state, data: [account_key(k.address) for k in KEYS[:2]])
    answer = app.query(QueryRequest("/two", prove=True))
    assert [e.key for e in answer.entries] == [account_key(k.address) for k in KEYS[:2]]
    for entry in answer.entries:
        assert verify_proof(answer.root, entry.key, entry.value, decode_proof(entry.proof))
    with pytest.raises(ValueError):
        app.register_query("/two", lambda state, data: [])


def test_committed_block_is_what_the_store_reads_back(app: Application) -> None:
    from chainmall.core.node.finality import CommittedBlock
    from chainmall.core.node.reads import stored_block

    assert app.committed_block() is None
    txs = [[transfer(KEYS[0], 0), transfer(KEYS[1], 0)],
           [transfer(KEYS[0], 1), transfer(KEYS[0], 5), transfer(KEYS[1], 1, amount=10**6)],
           []]
    for height, block_txs in enumerate(txs, start=1):
        app.finalize_block(block(height, block_txs, time_ms=10 * height))
        assert app.committed_block() is None or \
            app.committed_block()[0].header.height == height - 1
        app.commit()
        kept = app.committed_block()
        assert kept is not None and CommittedBlock(*kept) == stored_block(app.store, height)
    receipts = stored_block(app.store, 2).receipts
    assert len(receipts) == 2 and receipts[0] == TX_OK and receipts[1] != TX_OK  # nonce 5 left out
