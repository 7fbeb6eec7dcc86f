"""DecodedTxs: a CometBFT tx's carried txs decoded once per node, never a verdict."""

from __future__ import annotations

import pytest
from app_chain import AppChain, block, forged
from chainmall.core.abci.app import Application
from chainmall.core.abci.decoded import DecodedTxs
from chainmall.core.abci.envelope import encode_envelope, flatten
from chainmall.core.errors import TX_OK, BadSignature
from chainmall.core.store import Store
from chainmall.core.tx import Tx, decode_tx

CHAIN = AppChain("decoded-test", 12)
KEYS = CHAIN.keys


def _wires(flat: list[Tx | bytes]) -> list[bytes]:
    return [item.encode() if isinstance(item, Tx) else item for item in flat]


def test_flatten_gives_what_envelope_flatten_gives() -> None:
    txs = [CHAIN.transfer(key, 0) for key in KEYS[:6]]
    raws = [encode_envelope(txs[:3]), txs[3], encode_envelope(txs[4:]), b"\xe1junk", b"junk"]
    cache = DecodedTxs()
    cache.remember(raws[0], [decode_tx(tx) for tx in txs[:3]], 3)
    cache.remember(raws[1], [decode_tx(txs[3])], 0)
    flat, counts = cache.flatten(raws)
    expected_flat, expected_counts = flatten(raws)
    assert counts == expected_counts == [3, 0, 2, 0, 0]
    assert _wires(flat) == expected_flat
    assert [isinstance(item, Tx) for item in flat] == [True] * 4 + [False] * 4
    assert (cache.hits, cache.misses) == (2, 3)


def test_bounded_oldest_first_and_forgotten() -> None:
    txs = [CHAIN.transfer(key, 0) for key in KEYS[:6]]
    cache = DecodedTxs(limit=4)
    for tx in txs[:4]:
        cache.remember(tx, [decode_tx(tx)], 0)
    assert cache.carried == 4
    envelope = encode_envelope(txs[4:])
    cache.remember(envelope, [decode_tx(tx) for tx in txs[4:]], 2)
    assert cache.carried == 4 and len(cache) == 3  # the two oldest went
    cache.flatten(txs[:2])
    assert cache.hits == 0
    cache.forget([envelope, txs[3]])
    assert cache.carried == 1
    cache.remember(b"x", [None], 0)  # something that did not decode is not kept
    cache.remember(encode_envelope(txs), [decode_tx(tx) for tx in txs], 6)  # over the limit
    assert cache.carried == 1


@pytest.fixture
def apps(tmp_path):
    with Store(tmp_path / "a") as one, Store(tmp_path / "b") as two:
        yield Application(one, CHAIN.genesis), Application(two, CHAIN.genesis)


def test_checked_txs_are_decoded_once_and_the_block_is_the_same(apps) -> None:
    seen, fresh = apps  # `seen` had the txs by CheckTx first, `fresh` only by the block
    txs = [CHAIN.transfer(key, 0) for key in KEYS[:10]]
    raws = (encode_envelope(txs[:4]), txs[4], encode_envelope(txs[5:]))
    assert all(result.code == TX_OK for result in seen.check_txs(raws))
    assert seen.decoded.carried == 10
    request = block(1, raws)
    assert seen.prepare_proposal(request) == raws
    assert seen.process_proposal(request) and fresh.process_proposal(request)
    assert seen.decoded.misses == 0 and fresh.decoded.misses == 3
    assert fresh.decoded.carried == 10  # kept for FinalizeBlock
    results = [app.finalize_block(request) for app in (seen, fresh)]
    assert results[0] == results[1] and results[0].app_hash
    assert seen.decoded.carried == fresh.decoded.carried == 0  # decided: forgotten
    for app in apps:
        app.commit()
    assert seen.info() == fresh.info()


def test_a_kept_tx_is_still_checked(apps) -> None:
    app, _ = apps
    good = CHAIN.transfer(KEYS[0], 0)
    bad = forged(CHAIN.transfer(KEYS[1], 0))
    assert app.check_txs([bad])[0].code == BadSignature.code
    assert app.decoded.carried == 0  # refused: not kept
    app.decoded.remember(bad, [decode_tx(bad)], 0)  # kept anyway: still no verdict
    assert not app.process_proposal(block(1, [good, bad]))
    result = app.finalize_block(block(1, [good, bad]))
    assert [r.code for r in result.tx_results] == [TX_OK, BadSignature.code]
