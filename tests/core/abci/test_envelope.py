"""Batch envelopes: the format, and the application taking them apart.

The in-process engine drives `Application` with plain txs; CometBFT drives it
with whatever its blocks hold, envelopes included. The same signed txs, plain
or enveloped, must give the same verdicts, results, record and app hash.
"""

from __future__ import annotations

import pytest
from app_chain import AppChain, block, forged
from chainmall.core.abci import convert
from chainmall.core.abci.app import Application
from chainmall.core.abci.envelope import (
    decode_envelope,
    decode_results,
    encode_envelope,
    flatten,
    group,
    is_envelope,
)
from chainmall.core.abci.types import CheckTxKind
from chainmall.core.constants import (
    BLOCK_TXS_MAX,
    ENVELOPE_TXS_MAX,
    TX_BYTES_MAX,
    TX_BYTES_MIN,
)
from chainmall.core.errors import TX_OK, BadSignature, DecodeError, EnvelopeError, NonceMismatch
from chainmall.core.node.cometbft_node import forwarded_txs
from chainmall.core.store import Store
from hypothesis import given, settings
from hypothesis import strategies as st

CHAIN_SETUP = AppChain("envelope-test", 8)
CHAIN, KEYS, GENESIS = CHAIN_SETUP.chain_id, CHAIN_SETUP.keys, CHAIN_SETUP.genesis
transfer = CHAIN_SETUP.transfer


# --- the format -------------------------------------------------------------------------

def test_round_trip_and_layout() -> None:
    txs = [transfer(KEYS[0], 0), transfer(KEYS[1], 0)]
    raw = encode_envelope(txs)
    assert raw[:4] == bytes([0xE1, 1, 0, 2]) and is_envelope(raw) and not is_envelope(txs[0])
    assert raw[4:6] == len(txs[0]).to_bytes(2, "big") and raw[6:6 + len(txs[0])] == txs[0]
    assert len(raw) == 4 + sum(2 + len(tx) for tx in txs)
    assert decode_envelope(raw) == txs
    assert issubclass(EnvelopeError, DecodeError)


@pytest.mark.parametrize("raw, message", [
    (b"", "shorter"), (b"\xe1\x01", "shorter"), (b"\x01\x01\x00\x01", "not an envelope"),
    (b"\xe1\x02\x00\x01", "version"), (b"\xe1\x01\x00\x00", "carries"),
    (b"\xe1\x01" + (ENVELOPE_TXS_MAX + 1).to_bytes(2, "big"), "carries"),
    (b"\xe1\x01\x00\x01", "inside the length"), (b"\xe1\x01\x00\x01\x00", "inside the length"),
    (b"\xe1\x01\x00\x01\x00\x05abcde", "outside"),
    (b"\xe1\x01\x00\x01" + TX_BYTES_MIN.to_bytes(2, "big") + b"x", "inside tx 0"),
])
def test_malformed_envelopes_are_refused(raw: bytes, message: str) -> None:
    with pytest.raises(EnvelopeError, match=message):
        decode_envelope(raw)
    flat, counts = flatten([raw])
    assert (flat, counts) == ([raw], [0])  # passed on whole: it fails its stateless checks


def test_trailing_bytes_and_encode_limits() -> None:
    raw = encode_envelope([transfer(KEYS[0], 0)])
    with pytest.raises(EnvelopeError, match="after"):
        decode_envelope(raw + b"\0")
    with pytest.raises(EnvelopeError):
        encode_envelope([])
    with pytest.raises(EnvelopeError):
        encode_envelope([b"x" * (TX_BYTES_MAX + 1)])
    with pytest.raises(EnvelopeError):
        encode_envelope([transfer(KEYS[0], 0)] * (ENVELOPE_TXS_MAX + 1))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(min_size=TX_BYTES_MIN, max_size=TX_BYTES_MIN + 40), min_size=1,
                max_size=20), st.data())
def test_any_change_is_refused_or_decodes_canonically(txs, data) -> None:
    raw = encode_envelope(txs)
    assert decode_envelope(raw) == txs
    mutated = bytearray(raw)
    position = data.draw(st.integers(0, len(raw) - 1))
    mutated[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    for candidate in (bytes(mutated), raw[:cut]):
        try:
            inner = decode_envelope(candidate)
        except EnvelopeError:
            continue
        assert encode_envelope(inner) == candidate  # one encoding per value


def test_flatten_and_group() -> None:
    a, b, c = (transfer(KEYS[i], 0) for i in range(3))
    flat, counts = flatten([a, encode_envelope([b, c]), b"junk"])
    assert flat == [a, b, c, b"junk"] and counts == [0, 2, 0]
    assert group(counts, [1, 2, 3, 4]) == [[1], [2, 3], [4]]
    with pytest.raises(ValueError):
        group(counts, [1, 2, 3])


def test_forwarded_txs_envelope_all_but_a_single_tx() -> None:
    txs = [transfer(KEYS[0], n) for n in range(3)] * (ENVELOPE_TXS_MAX // 3 + 1)
    assert forwarded_txs(txs[:1]) == txs[:1]
    sent = forwarded_txs(txs)
    assert len(sent) == 2 and all(is_envelope(s) for s in sent)
    assert decode_envelope(sent[0]) + decode_envelope(sent[1]) == txs


# --- the application ----------------------------------------------------------------------

@pytest.fixture
def apps(tmp_path):
    with Store(tmp_path / "plain") as plain, Store(tmp_path / "wrapped") as wrapped:
        yield Application(plain, GENESIS), Application(wrapped, GENESIS)


def test_envelope_checked_like_its_txs(apps) -> None:
    app, _ = apps
    good = [transfer(KEYS[0], 0), transfer(KEYS[1], 0)]
    assert app.check_tx(encode_envelope(good)).code == TX_OK
    assert app.check_tx(encode_envelope(good), CheckTxKind.RECHECK).code == TX_OK
    refused = app.check_tx(encode_envelope([good[0], forged(good[1])]))
    assert refused.code == BadSignature.code and "envelope tx 1" in refused.log
    results = app.check_txs([good[0], encode_envelope(good), b"\xe1junk"])
    assert [r.code for r in results[:2]] == [TX_OK, TX_OK] and results[2].code != TX_OK


def test_proposals_take_envelopes_whole(apps) -> None:
    app, _ = apps
    good = encode_envelope([transfer(KEYS[0], 0), transfer(KEYS[1], 0)])
    bad = encode_envelope([transfer(KEYS[2], 0), forged(transfer(KEYS[3], 0))])
    plain = transfer(KEYS[4], 0)
    assert app.prepare_proposal(block(1, [good, bad, b"\xe1\x01", plain])) == (good, plain)
    assert app.process_proposal(block(1, [good, plain]))
    assert not app.process_proposal(block(1, [good, bad]))
    assert not app.process_proposal(block(1, [b"\xe1\x01\x00\x01"]))
    too_many = [encode_envelope([transfer(KEYS[0], n)] * ENVELOPE_TXS_MAX)
                for n in range(BLOCK_TXS_MAX // ENVELOPE_TXS_MAX + 1)]
    assert not app.process_proposal(block(1, too_many))


def test_same_txs_plain_or_enveloped_same_chain(apps) -> None:
    plain_app, wrapped_app = apps
    heights = [
        [transfer(KEYS[0], 0), transfer(KEYS[1], 0), transfer(KEYS[2], 0)],
        # a failing tx inside an envelope fails alone (nonce 0 is used), the rest execute
        [transfer(KEYS[0], 1), transfer(KEYS[1], 0, 7), transfer(KEYS[3], 0)],
    ]
    for height, txs in enumerate(heights, start=1):
        expected = plain_app.finalize_block(block(height, txs, 10 * height))
        wrapped = [txs[0], encode_envelope(txs[1:])]
        result = wrapped_app.finalize_block(block(height, wrapped, 10 * height))
        assert result.app_hash == expected.app_hash
        assert result.block_hash == expected.block_hash
        assert result.tx_results == expected.tx_results
        assert result.envelopes == (0, len(txs) - 1) and expected.envelopes == ()
        plain_app.commit()
        wrapped_app.commit()
        message = convert.finalize_block_result_to_proto(result)
        assert len(message.tx_results) == 2
        assert message.tx_results[0].data == expected.tx_results[0].tx_id
        carried = decode_results(message.tx_results[1].data)
        assert carried == [(r.tx_id, r.code) for r in expected.tx_results[1:]]
    assert [code for _, code in carried] == [NonceMismatch.code, TX_OK]
    assert plain_app.info() == wrapped_app.info()
