"""The genesis mall section: defaults, JSON round trip, hash coverage, and a one-line
InvalidGenesis naming the field for every bad value."""

from __future__ import annotations

import copy
import json

import pytest
from chainmall.core.address import encode_address
from chainmall.core.errors import InvalidGenesis
from chainmall.core.genesis import MallGenesis, MallParams, make_genesis, parse_genesis
from chainmall.core.keys import KeyPair

KEYS = [KeyPair.from_seed(bytes([i]) * 32) for i in range(1, 5)]
ADDR = [encode_address(k.address) for k in KEYS]


def good() -> dict:
    return {
        "chain_id": "mall-1", "genesis_time_ms": 1, "params": {"fee_min": 1},
        "initial_balances": [{"address": ADDR[0], "amount": 10}],
        "validators": [{"public_key": KEYS[3].public_key.hex(), "power": 1}],
        "mall": {
            "certifiers": [{"address": ADDR[1], "name": "Assay Office"}],
            "tax_authorities": [{"jurisdiction": "IT", "address": ADDR[2], "rate_bps": 2200},
                                {"jurisdiction": "DE-BY", "address": ADDR[2], "rate_bps": 1900}],
            "params": {name: getattr(MallParams(), name)
                       for name in MallParams.__dataclass_fields__},
        },
    }


def test_a_mall_section_parses_sorts_and_round_trips() -> None:
    genesis = parse_genesis(json.dumps(good()))
    assert [a.jurisdiction for a in genesis.mall.tax_authorities] == ["DE-BY", "IT"]
    assert genesis.mall.authority("IT").rate_bps == 2200
    assert genesis.mall.certifier(KEYS[1].address).name == "Assay Office"
    assert parse_genesis(json.dumps(genesis.to_json())) == genesis
    assert genesis.encode()[0] == 2  # genesis version 2


def test_the_section_is_optional_and_defaults() -> None:
    data = good()
    del data["mall"]
    genesis = parse_genesis(json.dumps(data))
    assert genesis.mall == MallGenesis()
    plain = make_genesis("mall-1", [(KEYS[0].address, 10)], [(KEYS[3].public_key, 1)],
                         genesis_time_ms=1, fee_min=1)
    assert plain.hash() == genesis.hash()


def test_the_hash_covers_every_mall_field() -> None:
    base = parse_genesis(json.dumps(good())).hash()
    changes = [("certifiers", 0, "name", "Other"), ("tax_authorities", 1, "rate_bps", 2100)]
    hashes = set()
    for section, index, field, value in changes:
        data = good()
        data["mall"][section][index][field] = value
        hashes.add(parse_genesis(json.dumps(data)).hash())
    for name in MallParams.__dataclass_fields__:
        data = good()
        value = data["mall"]["params"][name]
        data["mall"]["params"][name] = value + 1 if value == 0 else value - 1
        hashes.add(parse_genesis(json.dumps(data)).hash())
    assert base not in hashes and len(hashes) == 2 + len(MallParams.__dataclass_fields__)


BAD = [
    ("mall", [], "mall: expected an object"),
    ("mall.extra", 1, "mall: unknown field 'extra'"),
    ("mall.certifiers.0.address", "cm1xyz", "mall.certifiers[0].address"),
    ("mall.certifiers.0.name", "", "mall.certifiers[0].name: 1..64 bytes"),
    ("mall.certifiers.0.name", "a\nb", "control characters"),
    ("mall.certifiers.0.name", 7, "mall.certifiers[0].name: expected a string"),
    ("mall.tax_authorities.0.jurisdiction", "it", "use A-Z"),
    ("mall.tax_authorities.0.jurisdiction", "I", "2..16 characters"),
    ("mall.tax_authorities.1.jurisdiction", "IT", "duplicate jurisdiction IT"),
    ("mall.tax_authorities.0.rate_bps", 6000, "outside [0, tax_rate_max_bps = 5000]"),
    ("mall.tax_authorities.0.rate_bps", 1.5, "floats are not allowed"),
    ("mall.params.arbitrator_bond_min", 0, "mall.params.arbitrator_bond_min: 0 is outside"),
    ("mall.params.commission_bps", 10_001, "mall.params.commission_bps: 10001 is outside"),
    ("mall.params.commission_bps", 6_000, "commission_bps + tax_rate_max_bps exceeds 10000"),
    ("mall.params.ship_timeout_ms", 0, "mall.params.ship_timeout_ms: 0 is outside"),
    ("mall.params.dispute_rounds_max", 17, "dispute_rounds_max: 17 is outside [1, 16]"),
    ("mall.params.slash_bps", True, "slash_bps: expected an integer, got bool"),
    ("mall.params.panel_threshold", -1, "panel_threshold: -1 is outside"),
    ("mall.params.fee_pool", 1, "mall.params: unknown field 'fee_pool'"),
]


@pytest.mark.parametrize("path,value,message", BAD)
def test_every_bad_field_is_named_in_one_line(path: str, value, message: str) -> None:
    data = copy.deepcopy(good())
    *parents, last = path.split(".")
    target = data
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    target[int(last) if last.isdigit() else last] = value
    with pytest.raises(InvalidGenesis) as info:
        parse_genesis(json.dumps(data))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_duplicate_certifiers_are_refused() -> None:
    data = good()
    data["mall"]["certifiers"].append(dict(data["mall"]["certifiers"][0]))
    with pytest.raises(InvalidGenesis, match="duplicate certifier"):
        parse_genesis(json.dumps(data))
