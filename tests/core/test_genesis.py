"""Genesis files: the strict loader refuses every bad field; the hash is of the binary form."""

from __future__ import annotations

import copy
import json

import pytest
from chainmall.core.address import encode_address
from chainmall.core.constants import U64_MAX
from chainmall.core.errors import InvalidGenesis
from chainmall.core.genesis import load_genesis, make_genesis, parse_genesis, write_genesis
from chainmall.core.keys import KeyPair

KEYS = [KeyPair.from_seed(bytes([i]) * 32) for i in range(1, 4)]
ADDR = [encode_address(k.address) for k in KEYS]


def _good() -> dict:
    return {
        "chain_id": "mall-1",
        "genesis_time_ms": 1_700_000_000_000,
        "initial_balances": [{"address": ADDR[0], "amount": 1000},
                             {"address": ADDR[1], "amount": 5}],
        "validators": [{"public_key": KEYS[2].public_key.hex(), "power": 10}],
        "params": {"fee_min": 1},
    }


def _parse(data: object) -> object:
    return parse_genesis(json.dumps(data))


def test_good_genesis_round_trips(tmp_path) -> None:
    genesis = _parse(_good())
    assert genesis.total_supply == 1005 and genesis.fee_min == 1
    path = tmp_path / "genesis.json"
    write_genesis(path, genesis)
    assert load_genesis(path) == genesis
    assert load_genesis(path).hash() == genesis.hash()


def test_hash_is_of_the_binary_form_not_the_text() -> None:
    data = _good()
    reordered = dict(reversed(list(data.items())))
    reordered["initial_balances"] = list(reversed(data["initial_balances"]))
    assert parse_genesis(json.dumps(reordered, indent=4)).hash() == _parse(data).hash()
    changed = _good()
    changed["params"]["fee_min"] = 2
    assert _parse(changed).hash() != _parse(data).hash()


def _mutate(path: str, value: object) -> dict:
    data = _good()
    *parents, last = path.split(".")
    target = data
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    if value is _DELETE:
        del target[int(last) if last.isdigit() else last]
    elif isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return data


_DELETE = object()

BAD = [
    ("unknown top field", "extra", 1, "unknown field 'extra'"),
    ("missing top field", "params", _DELETE, "missing field 'params'"),
    ("unknown balance field", "initial_balances.0.memo", "x", "unknown field 'memo'"),
    ("missing amount", "initial_balances.0.amount", _DELETE, "missing field 'amount'"),
    ("unknown params field", "params.fee_max", 1, "unknown field 'fee_max'"),
    ("bool amount", "initial_balances.0.amount", True, r"initial_balances\[0\].amount"),
    ("string amount", "initial_balances.0.amount", "5", r"initial_balances\[0\].amount"),
    ("negative amount", "initial_balances.0.amount", -1, r"initial_balances\[0\].amount"),
    ("amount > u64", "initial_balances.0.amount", U64_MAX + 1, r"initial_balances\[0\].amount"),
    ("bool time", "genesis_time_ms", False, "genesis_time_ms"),
    ("negative fee_min", "params.fee_min", -3, "params.fee_min"),
    ("bad chain id", "chain_id", "Mall_1", "chain_id"),
    ("empty chain id", "chain_id", "", "chain_id"),
    ("chain id not a string", "chain_id", 7, "chain_id"),
    ("bad checksum", "initial_balances.0.address", ADDR[0][:-1] + ("q" if ADDR[0][-1] != "q"
                                                                  else "p"), "checksum"),
    ("address not a string", "initial_balances.0.address", 5, "address"),
    ("duplicate address", "initial_balances.1.address", ADDR[0], "duplicate address"),
    ("empty validators", "validators", [], "validator set is empty"),
    ("validators not a list", "validators", {}, "validators: expected a list"),
    ("zero power", "validators.0.power", 0, r"validators\[0\].power"),
    ("short key", "validators.0.public_key", "ab", r"validators\[0\].public_key"),
    ("non-hex key", "validators.0.public_key", "zz" * 32, "not hex"),
    ("upper-case key", "validators.0.public_key", KEYS[2].public_key.hex().upper(),
     "lower-case"),
    ("params not an object", "params", [], "params: expected an object"),
]


@pytest.mark.parametrize(("name", "path", "value", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_genesis_is_refused(name: str, path: str, value: object, message: str) -> None:
    with pytest.raises(InvalidGenesis, match=message) as info:
        _parse(_mutate(path, value))
    assert "\n" not in str(info.value)


def test_total_supply_over_u64() -> None:
    data = _good()
    data["initial_balances"][0]["amount"] = U64_MAX
    with pytest.raises(InvalidGenesis, match="total supply"):
        _parse(data)


def test_duplicate_validator() -> None:
    data = _good()
    data["validators"].append(copy.deepcopy(data["validators"][0]))
    with pytest.raises(InvalidGenesis, match="duplicate validator"):
        _parse(data)


@pytest.mark.parametrize("text", [
    '{"chain_id": "a", "chain_id": "b"}',
    json.dumps(_good()).replace('"amount": 5', '"amount": 5.0'),
    json.dumps(_good()).replace('"amount": 5', '"amount": NaN'),
    "[]",
    "{",
    b"\xff\xfe",
])
def test_not_strict_json_is_refused(text: str | bytes) -> None:
    with pytest.raises(InvalidGenesis):
        parse_genesis(text)


def test_missing_file(tmp_path) -> None:
    with pytest.raises(InvalidGenesis, match="cannot read"):
        load_genesis(tmp_path / "none.json")


def test_make_genesis_sorts_and_checks() -> None:
    genesis = make_genesis("mall-1", [(KEYS[1].address, 2), (ADDR[0], 1)],
                           [(KEYS[2].public_key, 1)])
    assert [a for a, _ in genesis.initial_balances] == sorted([KEYS[0].address, KEYS[1].address])
    with pytest.raises(InvalidGenesis, match="duplicate"):
        make_genesis("mall-1", [(ADDR[0], 1), (KEYS[0].address, 1)], [(KEYS[2].public_key, 1)])
    assert genesis.validator_set_hash != genesis.hash()


def _with_governance() -> dict:
    data = _good()
    data["governance"] = {
        "authorities": [ADDR[1]],
        "bonds": [{"public_key": KEYS[2].public_key.hex(), "operator": ADDR[0], "amount": 50}],
        "params": {"bond_min": 10, "double_sign_slash_bps": 500, "unbond_delay_ms": 7},
    }
    return data


def test_governance_section_round_trips_and_is_hashed(tmp_path) -> None:
    genesis = _parse(_with_governance())
    assert genesis.governance.authorities == (KEYS[1].address,)
    assert genesis.total_supply == 1005 + 50
    assert genesis.operator_of(KEYS[2].public_key) == KEYS[0].address
    assert genesis.hash() != _parse(_good()).hash()
    path = tmp_path / "genesis.json"
    write_genesis(path, genesis)
    assert load_genesis(path) == genesis
    # Left out, the section takes its defaults; a validator without a bond is operated
    # by the account of its own key.
    plain = _parse(_good())
    assert plain.governance.bonds == () and plain.governance.params.bond_min == 1_000
    assert plain.operator_of(KEYS[2].public_key) == KEYS[2].address


BAD_GOVERNANCE = [
    ("unknown field", "governance.extra", 1, "unknown field 'extra'"),
    ("authority not an address", "governance.authorities.0", "x", r"authorities\[0\]"),
    ("bond of a non-validator", "governance.bonds.0.public_key", KEYS[0].public_key.hex(),
     "not a genesis validator"),
    ("bond amount over u64", "governance.bonds.0.amount", U64_MAX + 1, r"bonds\[0\].amount"),
    ("bad operator", "governance.bonds.0.operator", 3, r"bonds\[0\].operator"),
    ("zero bond_min", "governance.params.bond_min", 0, "bond_min"),
    ("slash over 100%", "governance.params.double_sign_slash_bps", 10_001,
     "double_sign_slash_bps"),
    ("missing param", "governance.params.unbond_delay_ms", _DELETE, "unbond_delay_ms"),
]


@pytest.mark.parametrize(("name", "path", "value", "message"), BAD_GOVERNANCE,
                         ids=[b[0] for b in BAD_GOVERNANCE])
def test_bad_governance_is_refused(name: str, path: str, value: object, message: str) -> None:
    data = _with_governance()
    *parents, last = path.split(".")
    target = data
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    if value is _DELETE:
        del target[last]
    elif isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    with pytest.raises(InvalidGenesis, match=message):
        _parse(data)


def test_duplicate_authority_and_supply_with_bonds() -> None:
    data = _with_governance()
    data["governance"]["authorities"].append(ADDR[1])
    with pytest.raises(InvalidGenesis, match="duplicate authority"):
        _parse(data)
    data = _with_governance()
    data["initial_balances"][0]["amount"] = U64_MAX - 5
    with pytest.raises(InvalidGenesis, match="supply with bonds"):
        _parse(data)
