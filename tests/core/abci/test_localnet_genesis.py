"""CometBFT's genesis for a localnet: chainmall's chain id, time and validators, and
consensus parameters CometBFT accepts for any block size the settings allow."""

from __future__ import annotations

from chainmall.core.abci.localnet import cometbft_address, cometbft_genesis
from chainmall.core.genesis import make_genesis
from chainmall.core.keys import KeyPair

# The consensus parameters `cometbft init` v0.38.26 writes (the parts read here).
TEMPLATE = {"consensus_params": {
    "block": {"max_bytes": "22020096", "max_gas": "-1"},
    "evidence": {"max_age_num_blocks": "100000", "max_age_duration": "172800000000000",
                 "max_bytes": "1048576"},
    "validator": {"pub_key_types": ["ed25519"]}, "version": {"app": "0"}}}
KEYS = [KeyPair.from_seed(bytes([i]) * 32) for i in range(1, 4)]


def test_same_chain_time_and_validators() -> None:
    genesis = make_genesis("local-1", [], [(k.public_key, 10) for k in KEYS],
                           genesis_time_ms=1_767_225_600_123)
    made = cometbft_genesis(TEMPLATE, genesis, 1024 * 1024)
    assert made["chain_id"] == "local-1"
    assert made["genesis_time"] == "2026-01-01T00:00:00.123Z"
    assert sorted(v["address"] for v in made["validators"]) == sorted(
        cometbft_address(k.public_key).hex().upper() for k in KEYS)
    assert made["consensus_params"]["block"]["max_bytes"] == str(1024 * 1024)
    assert TEMPLATE["consensus_params"]["block"]["max_bytes"] == "22020096"  # not changed


def test_evidence_never_exceeds_a_small_block() -> None:
    # CometBFT refuses a genesis whose evidence cap is above the block's (found by
    # `bench/cluster/cluster_bench.py --block-kib 256`).
    genesis = make_genesis("local-1", [], [(KEYS[0].public_key, 10)], genesis_time_ms=1)
    params = cometbft_genesis(TEMPLATE, genesis, 256 * 1024)["consensus_params"]
    assert params["block"]["max_bytes"] == str(256 * 1024)
    assert int(params["evidence"]["max_bytes"]) <= 256 * 1024
