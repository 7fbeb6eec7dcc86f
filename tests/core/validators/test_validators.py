"""Validators in state: genesis records, governance txs, the H+2 schedule, slashing.

Drives chainmall's `Application` directly, as CometBFT would (FinalizeBlock,
then Commit), and checks what CometBFT is told (validator updates), what the
record headers say (the hash of the set that signs each height), and what
the state holds (records, bonds in the supply, the fee pool).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import pytest
from chainmall.core.abci.app import Application, ledger_machine
from chainmall.core.abci.types import (
    BlockRequest,
    Misbehavior,
    MisbehaviorKind,
    QueryRequest,
    ValidatorUpdate,
    validator_address,
)
from chainmall.core.archive import export_chain, import_chain
from chainmall.core.block import decode_block
from chainmall.core.constants import (
    TABLE_VALIDATORS,
    TX_TYPE_TRANSFER,
    TX_TYPE_VALIDATOR_BOND,
    TX_TYPE_VALIDATOR_SET_POWER,
    TX_TYPE_VALIDATOR_UNBOND,
    TX_TYPE_VALIDATOR_VOTE,
)
from chainmall.core.errors import (
    TX_OK,
    InsufficientBalance,
    MalformedPayload,
    NotAuthorised,
    UnbondRefused,
    UnknownValidator,
    ValidatorAlreadyVoted,
    ValidatorBondTooLow,
    ValidatorSetLimit,
)
from chainmall.core.genesis import (
    GovernanceParams,
    Validator,
    make_genesis,
    make_governance,
)
from chainmall.core.keys import KeyPair
from chainmall.core.state.accounts import (
    FEE_POOL_KEY,
    account_key,
    decode_fee_pool,
    encode_transfer,
    unpack_account,
)
from chainmall.core.store import Store
from chainmall.core.tx import sign_tx
from chainmall.core.validators import records, schedule
from chainmall.core.validators.governance import encode_key_amount, encode_vote
from chainmall.core.validators.slashing import slash_cuts

CHAIN = "validators-test"
VALIDATORS = [KeyPair.from_seed(bytes([0x10 + i]) * 32) for i in range(4)]
OPERATORS = [KeyPair.from_seed(bytes([0x20 + i]) * 32) for i in range(4)]
AUTHORITY = KeyPair.from_seed(b"\x30" * 32)
TAX = KeyPair.from_seed(b"\x31" * 32)  # the tax authority's account
TAX_NODE = KeyPair.from_seed(b"\x32" * 32)  # its node's consensus key
BOND = 5_000
BALANCE = 1_000_000
PARAMS = GovernanceParams(bond_min=1_000, double_sign_slash_bps=1_000, unbond_delay_ms=100)
GENESIS = make_genesis(
    CHAIN,
    [(k.address, BALANCE) for k in (*OPERATORS, AUTHORITY, TAX)],
    [(v.public_key, 10) for v in VALIDATORS],
    genesis_time_ms=1_000, fee_min=1,
    governance=make_governance(
        [AUTHORITY.address],
        [(v.public_key, o.address, BOND) for v, o in zip(VALIDATORS, OPERATORS, strict=True)],
        PARAMS))


class Chain:
    """An Application driven block by block; remembers nonces and results."""

    def __init__(self, app: Application) -> None:
        self.app = app
        self.nonces: dict[bytes, int] = {}
        self.time_ms = 2_000
        self.results: dict[int, object] = {}

    @property
    def height(self) -> int:
        return self.app.info().last_block_height

    def tx(self, key: KeyPair, tx_type: int, payload: bytes) -> bytes:
        nonce = self.nonces.get(key.public_key, 0)
        self.nonces[key.public_key] = nonce + 1
        return sign_tx(key, CHAIN, tx_type, nonce, 1, 10_000, payload).encode()

    def block(self, txs: list[bytes] = (), proposer: KeyPair = VALIDATORS[0],
              misbehavior: tuple[Misbehavior, ...] = ()):
        self.time_ms += 100
        height = self.height + 1
        result = self.app.finalize_block(BlockRequest(
            height, self.time_ms, tuple(txs), validator_address(proposer.public_key),
            misbehavior=misbehavior))
        self.app.commit()
        self.results[height] = result
        return result

    def read(self, key: bytes) -> bytes | None:
        with self.app.store.reader() as view:
            return view.get_state(key)

    def record(self, key: KeyPair) -> records.ValidatorRecord | None:
        raw = self.read(records.record_key(key.public_key))
        return None if raw is None else records.decode_record(raw)

    def balance(self, key: KeyPair) -> int:
        raw = self.read(account_key(key.address))
        return 0 if raw is None else unpack_account(raw)[0]

    def header(self, height: int):
        with self.app.store.reader() as view:
            return decode_block(view.block(height)).header

    def supply(self) -> int:
        total = 0
        with self.app.store.reader() as view:
            for _key, value in view.state_items(bytes([0x01])):
                total += unpack_account(value)[0]
            total += decode_fee_pool(view.get_state(FEE_POOL_KEY))
            for _key, value in view.state_items(bytes([TABLE_VALIDATORS])):
                total += records.decode_record(value).bond
        return total


@pytest.fixture
def chain(tmp_path) -> Iterator[Chain]:
    with Store(tmp_path / "ledger") as store:
        yield Chain(Application(store, GENESIS))


def codes(result) -> list[int]:
    return [r.code for r in result.tx_results]


def set_hash(*validators: tuple[KeyPair, int]) -> bytes:
    return schedule.validator_set_hash(tuple(Validator(k.public_key, p) for k, p in validators))


def test_genesis_records_bonds_and_set(chain: Chain) -> None:
    assert GENESIS.total_supply == 6 * BALANCE + 4 * BOND
    assert chain.supply() == GENESIS.total_supply
    for validator, operator in zip(VALIDATORS, OPERATORS, strict=True):
        assert chain.record(validator) == records.ValidatorRecord(10, BOND, operator.address)
    chain.block()
    assert chain.header(1).validator_set_hash == GENESIS.validator_set_hash
    assert chain.header(1).proposer == VALIDATORS[0].public_key


def test_a_tax_authority_joins_as_a_validator(chain: Chain) -> None:
    # The tax authority bonds to its node's consensus key: that makes a record with
    # power 0 (no update yet) and the node's address known to the proposer lookup.
    bond = chain.tx(TAX, TX_TYPE_VALIDATOR_BOND, encode_key_amount(TAX_NODE.public_key, 2_000))
    result = chain.block([bond])
    assert codes(result) == [TX_OK] and result.validator_updates == ()
    assert chain.record(TAX_NODE) == records.ValidatorRecord(0, 2_000, TAX.address, 2_100)
    assert chain.balance(TAX) == BALANCE - 1 - 2_000
    assert chain.app.proposer_key(validator_address(TAX_NODE.public_key)) == \
        TAX_NODE.public_key

    # Only a governance authority sets power.
    refused = chain.tx(TAX, TX_TYPE_VALIDATOR_SET_POWER, encode_key_amount(TAX_NODE.public_key, 5))
    granted = chain.tx(AUTHORITY, TX_TYPE_VALIDATOR_SET_POWER,
                       encode_key_amount(TAX_NODE.public_key, 5))
    result = chain.block([refused, granted])
    h = chain.height
    assert codes(result) == [NotAuthorised.code, TX_OK]
    assert result.validator_updates == (ValidatorUpdate(TAX_NODE.public_key, 5),)
    assert any(e.type == "validator_set" and e.attribute("height") == str(h + 2)
               for e in result.events)
    # CometBFT's rule: the set of h + 1 is fixed; the new one signs from h + 2.
    old = GENESIS.validator_set_hash
    new = set_hash(*[(v, 10) for v in VALIDATORS], (TAX_NODE, 5))
    chain.block()
    chain.block([], proposer=TAX_NODE)
    assert [chain.header(x).validator_set_hash for x in (h, h + 1, h + 2)] == [old, old, new]
    assert chain.header(h + 2).proposer == TAX_NODE.public_key
    assert chain.supply() == GENESIS.total_supply


def test_votes_of_more_than_two_thirds_change_the_set(chain: Chain) -> None:
    bond = chain.tx(TAX, TX_TYPE_VALIDATOR_BOND, encode_key_amount(TAX_NODE.public_key, 1_000))
    chain.block([bond])

    def vote(i: int, power: int = 7) -> bytes:
        return chain.tx(OPERATORS[i], TX_TYPE_VALIDATOR_VOTE,
                        encode_vote(TAX_NODE.public_key, power, VALIDATORS[i].public_key))

    # Two of four (20 of 40) is not more than 2/3; a repeated vote, a vote for a voter
    # the sender does not operate, and a voter outside the signing set are refused.
    txs = [vote(0), vote(1), vote(0)]
    txs.append(chain.tx(OPERATORS[1], TX_TYPE_VALIDATOR_VOTE,
                        encode_vote(TAX_NODE.public_key, 7, VALIDATORS[2].public_key)))
    txs.append(chain.tx(TAX, TX_TYPE_VALIDATOR_VOTE,
                        encode_vote(TAX_NODE.public_key, 7, TAX_NODE.public_key)))
    result = chain.block(txs)
    assert codes(result) == [TX_OK, TX_OK, ValidatorAlreadyVoted.code, NotAuthorised.code,
                             NotAuthorised.code]
    assert result.validator_updates == ()
    key = records.proposal_key(records.proposal_id(TAX_NODE.public_key, 7))
    assert records.decode_proposal(chain.read(key)).voters == tuple(
        sorted(v.public_key for v in VALIDATORS[:2]))
    # A vote for another power is another proposal.
    result = chain.block([vote(2, power=8)])
    assert result.validator_updates == ()
    # The third vote for power 7 makes 30 of 40: applied, and the proposal closes.
    result = chain.block([vote(2)])
    assert codes(result) == [TX_OK]
    assert result.validator_updates == (ValidatorUpdate(TAX_NODE.public_key, 7),)
    assert chain.read(key) is None
    assert chain.record(TAX_NODE).power == 7


def test_power_rules_and_removal(chain: Chain) -> None:
    def set_power(key: KeyPair, power: int) -> bytes:
        return chain.tx(AUTHORITY, TX_TYPE_VALIDATOR_SET_POWER,
                        encode_key_amount(key.public_key, power))

    small = chain.tx(TAX, TX_TYPE_VALIDATOR_BOND, encode_key_amount(TAX_NODE.public_key, 999))
    short = chain.tx(TAX, TX_TYPE_VALIDATOR_SET_POWER, b"\x00" * 39)
    unknown = set_power(TAX_NODE, 5)
    result = chain.block([small, short, unknown])
    assert codes(result) == [ValidatorBondTooLow.code, MalformedPayload.code, UnknownValidator.code]
    # Removing three of four is fine; removing the fourth would leave the set empty.
    result = chain.block([set_power(v, 0) for v in VALIDATORS])
    assert codes(result) == [TX_OK, TX_OK, TX_OK, ValidatorSetLimit.code]
    assert result.validator_updates == tuple(
        sorted((ValidatorUpdate(v.public_key, 0) for v in VALIDATORS[:3]),
               key=lambda u: u.public_key))
    h = chain.height
    chain.block()
    chain.block([], proposer=VALIDATORS[3])
    assert chain.header(h + 2).validator_set_hash == set_hash((VALIDATORS[3], 10))
    # A removed validator still has its record (and bond); a change back is an update.
    assert chain.record(VALIDATORS[0]).power == 0
    result = chain.block([set_power(VALIDATORS[0], 3)])
    assert result.validator_updates == (ValidatorUpdate(VALIDATORS[0].public_key, 3),)


def test_unbond_waits_for_power_zero_and_the_delay(chain: Chain) -> None:
    def unbond(amount: int) -> bytes:
        return chain.tx(OPERATORS[0], TX_TYPE_VALIDATOR_UNBOND,
                        encode_key_amount(VALIDATORS[0].public_key, amount))

    result = chain.block([unbond(1)])
    assert codes(result) == [UnbondRefused.code]
    remove = chain.tx(AUTHORITY, TX_TYPE_VALIDATOR_SET_POWER,
                      encode_key_amount(VALIDATORS[0].public_key, 0))
    result = chain.block([remove, unbond(1)])  # the delay (100 ms of block time) runs
    assert codes(result) == [TX_OK, UnbondRefused.code]
    stranger = chain.tx(TAX, TX_TYPE_VALIDATOR_UNBOND,
                        encode_key_amount(VALIDATORS[0].public_key, 1))
    result = chain.block([stranger, unbond(BOND + 1), unbond(1_000)])
    assert codes(result) == [NotAuthorised.code, UnbondRefused.code, TX_OK]
    assert chain.record(VALIDATORS[0]).bond == BOND - 1_000
    before = chain.balance(OPERATORS[0])
    result = chain.block([unbond(BOND - 1_000)])
    assert codes(result) == [TX_OK]
    assert chain.record(VALIDATORS[0]) is None
    assert chain.read(records.address_key_of(VALIDATORS[0].public_key)) is None
    assert chain.balance(OPERATORS[0]) == before - 1 + BOND - 1_000
    assert chain.supply() == GENESIS.total_supply


def test_a_bond_needs_the_balance_and_the_operator(chain: Chain) -> None:
    poor = KeyPair.from_seed(b"\x40" * 32)
    fund = chain.tx(TAX, TX_TYPE_TRANSFER, encode_transfer(poor.address, 500))
    chain.block([fund])
    too_much = chain.tx(poor, TX_TYPE_VALIDATOR_BOND,
                        encode_key_amount(TAX_NODE.public_key, 1_000))
    not_operator = chain.tx(TAX, TX_TYPE_VALIDATOR_BOND,
                            encode_key_amount(VALIDATORS[1].public_key, 1_000))
    by_operator = chain.tx(OPERATORS[1], TX_TYPE_VALIDATOR_BOND,
                           encode_key_amount(VALIDATORS[1].public_key, 1_000))
    result = chain.block([too_much, not_operator, by_operator])
    assert codes(result) == [InsufficientBalance.code, NotAuthorised.code, TX_OK]
    assert chain.record(VALIDATORS[1]).bond == BOND + 1_000
    assert result.validator_updates == ()  # a bond alone changes no power


def duplicate_vote(key: KeyPair, height: int) -> Misbehavior:
    return Misbehavior(MisbehaviorKind.DUPLICATE_VOTE, validator_address(key.public_key), 10,
                       height, 0, 40)


def test_a_duplicate_vote_slashes_bond_and_power(chain: Chain) -> None:
    chain.block()
    chain.block()
    offender = VALIDATORS[2]
    unknown = Misbehavior(MisbehaviorKind.DUPLICATE_VOTE, bytes(20), 1, 1, 0, 40)
    result = chain.block([], misbehavior=(duplicate_vote(offender, 2), unknown))
    assert slash_cuts(BOND, 10, 1_000) == (500, 1)
    assert chain.record(offender) == records.ValidatorRecord(9, BOND - 500,
                                                             OPERATORS[2].address, 0, 2)
    assert result.validator_updates == (ValidatorUpdate(offender.public_key, 9),)
    [slash] = [e for e in result.events if e.type == "slash"]
    assert dict(slash.attributes) == {
        "validator": offender.public_key.hex(), "kind": "duplicate_vote",
        "infraction_height": "2", "bond_cut": "500", "bond": str(BOND - 500), "power": "9",
        "previous_power": "10"}
    with chain.app.store.reader() as view:
        assert decode_fee_pool(view.get_state(FEE_POOL_KEY)) >= 500
    assert chain.supply() == GENESIS.total_supply
    # The same infraction (or an older one) is not slashed twice; a later one is.
    result = chain.block([], misbehavior=(duplicate_vote(offender, 2),
                                          duplicate_vote(offender, 1)))
    assert result.validator_updates == () and chain.record(offender).power == 9
    result = chain.block([], misbehavior=(duplicate_vote(offender, 4),))
    assert chain.record(offender).power == 8 and chain.record(offender).bond == 4_050


def test_slashing_never_removes_the_last_validator(tmp_path) -> None:
    single = make_genesis(CHAIN, [(OPERATORS[0].address, BALANCE)],
                          [(VALIDATORS[0].public_key, 1)],
                          governance=make_governance(
                              (), [(VALIDATORS[0].public_key, OPERATORS[0].address, BOND)],
                              GovernanceParams(double_sign_slash_bps=10_000)))
    with Store(tmp_path / "ledger") as store:
        chain = Chain(Application(store, single))
        chain.block()
        result = chain.block([], misbehavior=(duplicate_vote(VALIDATORS[0], 1),))
        assert chain.record(VALIDATORS[0]).power == 1 and chain.record(VALIDATORS[0]).bond == 0
        assert result.validator_updates == ()


def test_queries_and_replay_of_records(chain: Chain, tmp_path) -> None:
    bond = chain.tx(TAX, TX_TYPE_VALIDATOR_BOND, encode_key_amount(TAX_NODE.public_key, 2_000))
    grant = chain.tx(AUTHORITY, TX_TYPE_VALIDATOR_SET_POWER,
                     encode_key_amount(TAX_NODE.public_key, 5))
    chain.block([bond])
    chain.block([grant])
    for _ in range(3):
        chain.block()
    answer = chain.app.query(QueryRequest("/validators/set", struct.pack(">Q", chain.height),
                                          prove=True))
    assert answer.code == TX_OK
    index, current = answer.entries
    assert records.decode_index(index.value) == (1, 4)
    assert records.decode_set(current.value)[-1] == Validator(TAX_NODE.public_key, 5)
    answer = chain.app.query(QueryRequest("/validators/set", struct.pack(">Q", 3)))
    assert len(records.decode_set(answer.entries[1].value)) == 4
    answer = chain.app.query(QueryRequest("/validators/record", TAX_NODE.public_key))
    assert records.decode_record(answer.value).power == 5
    assert chain.app.query(QueryRequest("/validators/record", b"x")).code != TX_OK

    # The stored records replay (import re-executes every block and compares roots and
    # the validator set hash of every header).
    archive = tmp_path / "chain.cma"
    export_chain(chain.app.store, GENESIS, archive)
    with Store(tmp_path / "imported") as store:
        assert import_chain(archive, store) == chain.height
        assert ledger_machine(store, GENESIS).info() == chain.app.machine.info()


def test_record_encodings_are_strict() -> None:
    record = records.ValidatorRecord(3, 4, bytes(20), 5, 6)
    raw = record.encode()
    assert records.decode_record(raw) == record
    for bad in (raw[:-1], raw + b"\x00", b"\x02" + raw[1:]):
        with pytest.raises(ValueError):
            records.decode_record(bad)
    validators = (Validator(b"\x01" * 32, 1), Validator(b"\x02" * 32, 2))
    assert records.decode_set(records.encode_set(validators)) == validators
    for bad in (records.encode_set(validators + validators[:1]),
                records.encode_set((Validator(b"\x01" * 32, 1),))[:-1]):
        with pytest.raises(ValueError):
            records.decode_set(bad)
    with pytest.raises(ValueError):
        records.decode_index(records.encode_index((3, 2)))
    with pytest.raises(ValueError):
        records.decode_pending(records.encode_pending((b"\x02" * 32, b"\x01" * 32)))
