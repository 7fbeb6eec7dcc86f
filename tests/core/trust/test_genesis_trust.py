"""The genesis trust section: defaults, JSON round trip, hash coverage, and a one-line
InvalidGenesis naming the field for every bad value."""

from __future__ import annotations

import copy
import json
from dataclasses import fields

import pytest
from chainmall.core.address import encode_address
from chainmall.core.errors import InvalidGenesis
from chainmall.core.genesis import TrustGenesis, TrustParams, make_genesis, parse_genesis
from chainmall.core.keys import KeyPair

KEYS = [KeyPair.from_seed(bytes([i]) * 32) for i in range(1, 5)]
ADDR = [encode_address(k.address) for k in KEYS]


def good() -> dict:
    return {"chain_id": "mall-1", "genesis_time_ms": 1, "params": {"fee_min": 1},
            "initial_balances": [{"address": ADDR[0], "amount": 10}],
            "validators": [{"public_key": KEYS[3].public_key.hex(), "power": 1}],
            "trust": {"attesters": [ADDR[2], ADDR[1]],
                      "params": {f.name: getattr(TrustParams(), f.name)
                                 for f in fields(TrustParams)}}}


def test_the_section_parses_sorts_and_round_trips() -> None:
    genesis = parse_genesis(json.dumps(good()))
    assert list(genesis.trust.attesters) == sorted([KEYS[1].address, KEYS[2].address])
    assert genesis.trust.is_attester(KEYS[1].address)
    assert not genesis.trust.is_attester(KEYS[0].address)
    assert parse_genesis(json.dumps(genesis.to_json())) == genesis
    assert genesis.encode()[0] == 3


def test_the_section_is_optional_and_defaults() -> None:
    data = good()
    del data["trust"]
    genesis = parse_genesis(json.dumps(data))
    assert genesis.trust == TrustGenesis()
    plain = make_genesis("mall-1", [(KEYS[0].address, 10)], [(KEYS[3].public_key, 1)],
                         genesis_time_ms=1, fee_min=1)
    assert plain.hash() == genesis.hash()


def test_the_hash_covers_every_field() -> None:
    base = parse_genesis(json.dumps(good())).hash()
    hashes = {base}
    for field in fields(TrustParams):
        data = good()
        value = data["trust"]["params"][field.name]
        data["trust"]["params"][field.name] = value + 1 if field.name != "report_seats" else 1
        if field.name in ("prior_rating_milli",) and value == 5000:
            continue
        hashes.add(parse_genesis(json.dumps(data)).hash())
    data = good()
    data["trust"]["attesters"] = [ADDR[1]]
    hashes.add(parse_genesis(json.dumps(data)).hash())
    assert len(hashes) == len(fields(TrustParams)) + 2


@pytest.mark.parametrize("change, message", [
    (("attesters", [ADDR[1], ADDR[1]]), "trust.attesters[1]: duplicate"),
    (("attesters", ["cm1bad"]), "trust.attesters[0]"),
    (("attesters", [ADDR[0]] * 17), "trust.attesters"),
    (("params.half_life_blocks", 63), "trust.params.half_life_blocks"),
    (("params.report_seats", 2), "trust.params.report_seats"),
    (("params.burst_first_orders", 17), "trust.params.burst_first_orders"),
    (("params.pool_share_bps", 10_001), "trust.params.pool_share_bps"),
    (("params.prior_rating_milli", 999), "trust.params.prior_rating_milli"),
    (("params.epoch_ms", 0), "trust.params.epoch_ms"),
    (("params.review_points", 2**32 + 1), "trust.params.review_points"),
    (("params.reporter_reward_bps", 9_500), "reporter_reward_bps + report_fee_bps"),
    (("params.rep_weight_quality", True), "trust.params.rep_weight_quality"),
    (("params.issuance_max", 2**64 - 1), "trust.params.issuance_max"),
    (("params.unknown", 1), "trust.params: unknown field"),
    (("extra", 1), "trust: unknown field"),
])
def test_bad_values_are_refused_with_the_field_named(change, message) -> None:
    data = copy.deepcopy(good())
    path, value = change
    target = data["trust"]
    *parents, last = path.split(".")
    for part in parents:
        target = target[part]
    target[last] = value
    with pytest.raises(InvalidGenesis, match=message.replace("[", r"\[").replace("+", r"\+")):
        parse_genesis(json.dumps(data))


def test_rank_and_reputation_weights_may_not_all_be_zero() -> None:
    with pytest.raises(InvalidGenesis, match="reputation weights"):
        TrustParams(rep_weight_quality=0, rep_weight_service=0, rep_weight_volume=0)
    with pytest.raises(InvalidGenesis, match="rank weights"):
        TrustParams(rank_weight_quality=0, rank_weight_service=0, rank_weight_sales=0,
                    rank_weight_reputation=0)
