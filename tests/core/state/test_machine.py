"""The state machine: transfers, fees, bad blocks, determinism, proofs, supply."""

from __future__ import annotations

import dataclasses

import pytest
from chainmall.core.block import Block, decode_block, make_block
from chainmall.core.constants import TABLE_ACCOUNTS, TX_TYPE_TRANSFER
from chainmall.core.encoding import Writer
from chainmall.core.errors import (
    TX_OK,
    BalanceOverflow,
    DecodeError,
    FeeTooLow,
    InsufficientBalance,
    InsufficientFee,
    InvalidBlock,
    MalformedPayload,
    NonceMismatch,
    StoreChainMismatch,
    UnknownSender,
    UnknownTxType,
)
from chainmall.core.genesis import make_genesis
from chainmall.core.keys import KeyPair
from chainmall.core.state.accounts import (
    FEE_POOL_KEY,
    Account,
    account_key,
    credit,
    decode_account,
    decode_fee_pool,
    decode_transfer,
    encode_fee_pool,
    encode_transfer,
)
from chainmall.core.state.machine import SignatureCache, StateMachine, verify_proof
from chainmall.core.state.receipts import decode_receipts, encode_receipts
from chainmall.core.state.root import MemoryNodeStore, StateTree
from chainmall.core.store import Store
from chainmall.core.tx import sign_tx
from hypothesis import given, settings
from hypothesis import strategies as st

CHAIN = "mall-test"
KEYS = [KeyPair.from_seed(bytes([i]) * 32) for i in range(1, 6)]
STRANGER = KeyPair.from_seed(b"\x99" * 32)
VALIDATOR = KeyPair.from_seed(b"v" * 32)
BALANCE = 1_000_000
GENESIS = make_genesis(CHAIN, [(k.address, BALANCE) for k in KEYS], [(VALIDATOR.public_key, 1)],
                       genesis_time_ms=1_000, fee_min=2)
SUPPLY = GENESIS.total_supply


def transfer(key: KeyPair, nonce: int, to: KeyPair | bytes, amount: int, fee: int = 2,
             tx_type: int = TX_TYPE_TRANSFER, payload: bytes | None = None):
    recipient = to if isinstance(to, bytes) else to.address
    if payload is None:
        payload = encode_transfer(recipient, amount)
    return sign_tx(key, CHAIN, tx_type, nonce, fee, 1_000_000, payload)


@pytest.fixture
def machine(tmp_path):
    with Store(tmp_path / "data") as store:
        yield StateMachine(store, GENESIS)


def account(machine: StateMachine, key: KeyPair):
    with machine.store.reader() as view:
        raw = view.get_state(account_key(key.address))
    return None if raw is None else decode_account(raw)


def fee_pool(machine: StateMachine) -> int:
    with machine.store.reader() as view:
        return decode_fee_pool(view.get_state(FEE_POOL_KEY))


def total_supply(machine: StateMachine) -> int:
    with machine.store.reader() as view:
        balances = sum(decode_account(v).balance
                       for _, v in view.state_items(bytes([TABLE_ACCOUNTS])))
        return balances + decode_fee_pool(view.get_state(FEE_POOL_KEY))


def run(machine: StateMachine, txs, timestamp_ms: int = 2_000) -> Block:
    block = machine.build_block(txs, timestamp_ms, VALIDATOR.public_key)
    machine.finalize_block(block)
    machine.commit()
    return block


def test_transfers_and_fees(machine: StateMachine) -> None:
    block = run(machine, [transfer(KEYS[0], 0, KEYS[1], 100, fee=3),
                          transfer(KEYS[0], 1, STRANGER, 50, fee=2)])
    assert block.header.tx_count == 2
    assert account(machine, KEYS[0]).balance == BALANCE - 155
    assert account(machine, KEYS[0]).nonce == 2
    assert account(machine, KEYS[1]).balance == BALANCE + 100
    assert account(machine, STRANGER).balance == 50 and account(machine, STRANGER).nonce == 0
    assert fee_pool(machine) == 5
    assert total_supply(machine) == SUPPLY
    with machine.store.reader() as view:
        assert decode_receipts(view.receipts(1)) == (TX_OK, TX_OK)
        assert view.tx_location(block.txs[1].tx_id) == (1, 1)
        assert view.height_of(block.hash()) == 1
        assert decode_block(view.block(1)) == block
        assert view.root(1) == block.header.state_root
    assert machine.info() == (1, block.header.state_root)


@pytest.mark.parametrize(("tx_args", "code"), [
    (dict(amount=BALANCE), InsufficientBalance.code),
    (dict(amount=1, tx_type=77), UnknownTxType.code),
    (dict(amount=1, payload=b"\x00" * 27), MalformedPayload.code),
    (dict(amount=1, payload=encode_transfer(b"\x01" * 20, 1) + b"\x00"), MalformedPayload.code),
])
def test_failed_tx_pays_fee_and_bumps_nonce(machine: StateMachine, tx_args, code: int) -> None:
    tx = transfer(KEYS[0], 0, KEYS[1], fee=4, **tx_args)
    block = machine.build_block([tx], 2_000, VALIDATOR.public_key)
    result = machine.finalize_block(block)
    assert [r.code for r in result.tx_results] == [code]
    machine.commit()
    assert account(machine, KEYS[0]) == dataclasses.replace(account(machine, KEYS[0]),
                                                           balance=BALANCE - 4, nonce=1)
    assert account(machine, KEYS[1]).balance == BALANCE
    assert fee_pool(machine) == 4
    assert total_supply(machine) == SUPPLY


def test_supply_at_u64_max_and_credit_overflow(tmp_path) -> None:
    genesis = make_genesis(CHAIN, [(KEYS[0].address, 10), (KEYS[1].address, 2**64 - 11)],
                           [(VALIDATOR.public_key, 1)], fee_min=0)
    assert genesis.total_supply == 2**64 - 1
    with Store(tmp_path / "d") as store:
        machine = StateMachine(store, genesis)
        block = machine.build_block([transfer(KEYS[0], 0, KEYS[1], 9, fee=1)], 1,
                                    VALIDATOR.public_key)
        assert [r.code for r in machine.finalize_block(block).tx_results] == [TX_OK]
        machine.commit()
        assert account(machine, KEYS[1]).balance == 2**64 - 2
    # Balances can never pass the supply; the checked add refuses to wrap anyway.
    with pytest.raises(BalanceOverflow):
        credit(2**64 - 1, 1)


def test_check_tx(machine: StateMachine) -> None:
    assert machine.check_tx(transfer(KEYS[0], 0, KEYS[1], 1).encode()).code == TX_OK
    assert machine.check_tx(transfer(KEYS[0], 5, KEYS[1], 1).encode()).code == TX_OK
    assert machine.check_tx(transfer(STRANGER, 0, KEYS[1], 1).encode()).code == UnknownSender.code
    assert machine.check_tx(transfer(KEYS[0], 0, KEYS[1], 1, fee=1).encode()).code == \
        FeeTooLow.code
    assert machine.check_tx(transfer(KEYS[0], 0, KEYS[1], 1, fee=BALANCE + 1).encode()).code == \
        InsufficientFee.code
    assert machine.check_tx(b"\x01garbage").code == 101
    bad = bytearray(transfer(KEYS[0], 0, KEYS[1], 1).encode())
    bad[-1] ^= 1
    assert machine.check_tx(bytes(bad)).code == 113
    run(machine, [transfer(KEYS[0], 0, KEYS[1], 1)])
    assert machine.check_tx(transfer(KEYS[0], 0, KEYS[1], 1).encode()).code == NonceMismatch.code


def _resign(block: Block, **header_changes) -> Block:
    return Block(dataclasses.replace(block.header, **header_changes), block.txs)


def _assert_nothing_stored(machine: StateMachine, before) -> None:
    assert machine.info() == before
    assert machine.store.last().height == before[0]
    assert machine.store.last().app_hash == before[1]
    with machine.store.reader() as view:
        assert view.block(before[0] + 1) is None
    with pytest.raises(InvalidBlock, match="without a finalized block"):
        machine.commit()


def _bad_blocks(machine: StateMachine):
    good = machine.build_block([transfer(KEYS[0], 0, KEYS[1], 7)], 2_000, VALIDATOR.public_key)
    h = good.header
    forged = bytearray(good.txs[0].signature)
    forged[0] ^= 1
    bad_sig_tx = dataclasses.replace(good.txs[0], signature=bytes(forged))

    def same_header(txs):
        return make_block(CHAIN, h.height, h.prev_hash, h.timestamp_ms, h.proposer, txs,
                          h.state_root, h.validator_set_hash)

    return {
        "height": _resign(good, height=h.height + 1),
        "chain": _resign(good, chain_id="other"),
        "prev hash": _resign(good, prev_hash=b"\x00" * 32),
        "time": _resign(good, timestamp_ms=999),
        "validator set": _resign(good, validator_set_hash=b"\x00" * 32),
        "tx root": _resign(good, tx_root=b"\x00" * 32),
        "state root": _resign(good, state_root=b"\x00" * 32),
        "bad signature": same_header([bad_sig_tx]),
        "bad nonce": same_header([transfer(KEYS[0], 1, KEYS[1], 7)]),
        "fee too low": same_header([transfer(KEYS[0], 0, KEYS[1], 7, fee=1)]),
        "unknown sender": same_header([transfer(STRANGER, 0, KEYS[1], 7)]),
        "fee over balance": same_header([transfer(KEYS[0], 0, KEYS[1], 7, fee=BALANCE + 1)]),
        "duplicate tx": same_header([good.txs[0], good.txs[0]]),
    }, good


BAD_BLOCK_MESSAGES = {
    "height": "block height 3, expected 2",
    "chain": "for chain 'other'",
    "prev hash": "prev hash",
    "time": "before the previous",
    "validator set": "validator set",
    "tx root": "tx root",
    "state root": "state root",
    "bad signature": "tx 0 fails its stateless checks \\(code 113\\)",
    "bad nonce": "nonce 1, expected 0",
    "fee too low": "below fee_min",
    "unknown sender": "no account",
    "fee over balance": "cannot pay the fee",
    "duplicate tx": "twice",
}


@pytest.mark.parametrize("case", list(BAD_BLOCK_MESSAGES))
def test_bad_block_is_refused_and_nothing_stored(machine: StateMachine, case: str) -> None:
    run(machine, [])  # so prev hash, time and state are those of a real block
    before = machine.info()
    blocks, good = _bad_blocks(machine)
    with pytest.raises(InvalidBlock, match=BAD_BLOCK_MESSAGES[case]):
        machine.finalize_block(blocks[case])
    _assert_nothing_stored(machine, before)
    machine.finalize_block(good)  # the good block still goes through
    machine.commit()
    assert machine.info()[0] == before[0] + 1


def test_bad_signature_tx_is_never_included(machine: StateMachine) -> None:
    tx = transfer(KEYS[0], 0, KEYS[1], 7)
    forged = bytearray(tx.signature)
    forged[5] ^= 4
    block = machine.build_block([dataclasses.replace(tx, signature=bytes(forged)), tx,
                                 transfer(KEYS[0], 3, KEYS[1], 1)], 2_000, VALIDATOR.public_key)
    assert block.txs == (tx,)


def test_finalize_twice_replaces_pending(machine: StateMachine) -> None:
    first = machine.build_block([transfer(KEYS[0], 0, KEYS[1], 1)], 2_000, VALIDATOR.public_key)
    second = machine.build_block([transfer(KEYS[0], 0, KEYS[2], 9)], 2_000,
                                 VALIDATOR.public_key)
    machine.finalize_block(first)
    machine.finalize_block(second)
    machine.commit()
    assert machine.store.last().block_hash == second.hash()
    assert account(machine, KEYS[2]).balance == BALANCE + 9
    assert account(machine, KEYS[1]).balance == BALANCE


def _chain(machine: StateMachine, blocks: int, seed: int) -> list[Block]:
    import random

    rng = random.Random(seed)
    nonces = [0] * len(KEYS)
    out = []
    for height in range(1, blocks + 1):
        txs = []
        for _ in range(rng.randrange(0, 8)):
            i = rng.randrange(len(KEYS))
            txs.append(transfer(KEYS[i], nonces[i], KEYS[rng.randrange(len(KEYS))],
                                rng.randrange(0, BALANCE // 3), fee=rng.randrange(2, 9)))
            nonces[i] += 1
        out.append(run(machine, txs, 2_000 + height))
    return out


def test_determinism_and_replay(tmp_path) -> None:
    with Store(tmp_path / "a") as store_a:
        a = StateMachine(store_a, GENESIS)
        blocks = _chain(a, 12, seed=7)
        with Store(tmp_path / "b") as store_b:
            b = StateMachine(store_b, GENESIS)
            for block in blocks:
                result = b.finalize_block(block)
                assert result.app_hash == block.header.state_root
                b.commit()
            assert b.info() == a.info()
            with store_a.reader() as va, store_b.reader() as vb:
                assert list(va.state_items()) == list(vb.state_items())
                for height in range(13):
                    assert va.root(height) == vb.root(height)
                    assert va.receipts(height) == vb.receipts(height)
        # Replay from genesis: a fresh store reproduces every stored root.
        with Store(tmp_path / "c") as store_c:
            c = StateMachine(store_c, GENESIS)
            with store_a.reader() as view:
                for height in range(1, 13):
                    c.finalize_block(decode_block(view.block(height)))
                    c.commit()
                    assert c.info()[1] == view.root(height)
            # The stored state rebuilt from scratch gives the stored root.
            with store_c.reader() as view:
                rebuilt = StateTree(MemoryNodeStore()).apply(dict(view.state_items())).root
                assert rebuilt == view.last().app_hash
        # Reopening the store continues where it left off.
        again = StateMachine(store_a, GENESIS)
        assert again.info() == a.info()
        run(again, [transfer(KEYS[0], 100, KEYS[1], 1)], 9_999)  # inadmissible nonce: dropped
        assert again.info()[0] == 13


def test_account_proofs_against_header(machine: StateMachine) -> None:
    block = run(machine, [transfer(KEYS[0], 0, STRANGER, 42)])
    root = block.header.state_root
    proof = machine.prove_account(STRANGER.address)
    assert proof.height == 1 and proof.root == root
    assert decode_account(proof.value).balance == 42
    assert verify_proof(root, account_key(STRANGER.address), proof.value, proof.proof)
    assert not verify_proof(root, account_key(STRANGER.address),
                            proof.value[:-1] + b"\x07", proof.proof)
    absent = machine.prove_account(b"\x42" * 20)
    assert absent.value is None and absent.verify(root)
    assert not machine.prove_account(KEYS[0].address).verify(machine.store.last().app_hash[::-1])


@settings(max_examples=100)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 5), st.integers(0, BALANCE),
                          st.integers(0, 20)), max_size=25),
       st.integers(1, 5))
def test_supply_is_conserved(tmp_path_factory, moves, per_block: int) -> None:
    with Store(tmp_path_factory.mktemp("supply")) as store:
        machine = StateMachine(store, GENESIS)
        nonces = [0] * len(KEYS)
        recipients = [*KEYS, STRANGER]
        txs = []
        for sender, to, amount, fee in moves:
            txs.append(transfer(KEYS[sender], nonces[sender], recipients[to], amount, fee=fee))
            nonces[sender] += 1
        for start in range(0, len(txs), per_block):
            run(machine, txs[start:start + per_block])
            assert total_supply(machine) == SUPPLY
        for key in recipients:
            found = account(machine, key)
            assert found is None or found.balance >= 0


# --- state encodings: round trips; any other bytes raise only DecodeError -----------


@given(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1))
def test_account_round_trip(balance: int, nonce: int) -> None:
    account_value = Account(balance, nonce)
    assert decode_account(account_value.encode()) == account_value
    assert account_value.encode() == Writer().u8(1).u64(balance).u64(nonce).getvalue()


@given(st.binary(max_size=40))
def test_state_decoders_are_strict(data: bytes) -> None:
    for decode, encode in ((decode_account, lambda v: v.encode()),
                           (decode_fee_pool, encode_fee_pool),
                           (decode_receipts, encode_receipts)):
        try:
            value = decode(data)
        except DecodeError:
            continue
        assert encode(value) == data
    try:
        recipient, amount = decode_transfer(data)
    except MalformedPayload:
        return
    assert encode_transfer(recipient, amount) == data


@given(st.lists(st.integers(0, 2**16 - 1), max_size=50))
def test_receipts_round_trip(codes: list[int]) -> None:
    assert decode_receipts(encode_receipts(codes)) == tuple(codes)


@pytest.mark.parametrize("codes", [[-1], [2**16], [1.0], [True], [None]])
def test_receipts_refuse_a_code_that_is_not_a_u16(codes: list[object]) -> None:
    with pytest.raises(ValueError, match="u16"):
        encode_receipts(codes)  # type: ignore[arg-type]


def test_worked_examples_of_docs_state_md() -> None:
    address = bytes(range(1, 21))
    assert account_key(address).hex() == "01" + address.hex()
    assert Account(1000, 3).encode().hex() == "0100000000000003e80000000000000003"
    assert FEE_POOL_KEY.hex() == "026665655f706f6f6c"
    assert encode_fee_pool(7).hex() == "010000000000000007"
    assert encode_receipts([TX_OK, InsufficientBalance.code]).hex() == "01000000020000009a"
    validator = KeyPair.from_seed(b"\x07" * 32)
    genesis = make_genesis("mall-1", [(address, 1000)], [(validator.public_key, 10)],
                           genesis_time_ms=5, fee_min=1)
    assert genesis.hash().hex() == (
        "fa4d2ccfd7d64fdf70a85425458b598ea36d34615db24a03cd2f84026a6ef1ba")
    assert genesis.validator_set_hash.hex() == (
        "74c8b69405f531cfeb805360ee8e9794a00d956b39ac05f63bd76a60fe7d5f59")


def test_registered_handler_runs_and_failures_discard_its_writes(tmp_path) -> None:
    # The handler keeps its own entries in a state table that holds no supply (fee_pool's
    # table, under other keys than the pool's).
    def handler(state, ctx) -> None:
        state.set(b"\x02" + ctx.sender, ctx.tx.payload)
        if ctx.tx.payload == b"fail":
            raise MalformedPayload("told to fail")

    with Store(tmp_path / "h") as store:
        machine = StateMachine(store, GENESIS, handlers={900: handler})
        with pytest.raises(ValueError, match="already"):
            machine.register(900, handler)
        ok = transfer(KEYS[0], 0, KEYS[0], 0, tx_type=900, payload=b"keep")
        bad = transfer(KEYS[1], 0, KEYS[1], 0, tx_type=900, payload=b"fail")
        block = run(machine, [ok, bad])
        with store.reader() as view:
            assert decode_receipts(view.receipts(1)) == (TX_OK, MalformedPayload.code)
            assert view.get_state(b"\x02" + KEYS[0].address) == b"keep"
            assert view.get_state(b"\x02" + KEYS[1].address) is None
        assert block.header.state_root == machine.info()[1]
        assert total_supply(machine) == SUPPLY


def test_store_of_another_chain_is_refused(tmp_path) -> None:
    with Store(tmp_path / "x") as store:
        StateMachine(store, GENESIS)
        other = make_genesis(CHAIN, [(KEYS[0].address, 1)], [(VALIDATOR.public_key, 1)])
        with pytest.raises(StoreChainMismatch, match="genesis"):
            StateMachine(store, other)
        renamed = make_genesis("other-chain", [(KEYS[0].address, 1)], [(VALIDATOR.public_key, 1)])
        with pytest.raises(StoreChainMismatch, match="holds chain 'mall-test'"):
            StateMachine(store, renamed)


def test_signature_cache_add_many_is_add_one_after_another() -> None:
    # The same entries, and the same order of recency: the same ones go when more come.
    txs = [transfer(KEYS[0], nonce, KEYS[1], 1) for nonce in range(7)]
    sequence = [txs[0], txs[1], txs[2], txs[0], txs[3], txs[4], txs[5]]
    one, many = SignatureCache(4), SignatureCache(4)
    for tx in sequence:
        one.add(tx)
    many.add_many(sequence)
    assert [tx in many for tx in txs] == [True, False, False, True, True, True, False]
    assert many.contains_each(txs) == [tx in one for tx in txs]
    for tx in (txs[6], txs[1]):  # push the two oldest out, one at a time
        one.add(tx)
        many.add_many([tx])
        assert many.contains_each(txs) == [tx in one for tx in txs]
    assert [tx in many for tx in txs] == [False, True, False, False, True, True, True]
