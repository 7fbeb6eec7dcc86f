"""ABCI FinalizeBlock on the state machine: decided blocks, recorded txs, hooks,
the signature cache, commit certificates, and the state overlay's range reads."""

from __future__ import annotations

import dataclasses

import pytest
from chainmall.core import accel
from chainmall.core.abci.types import Event, ValidatorUpdate
from chainmall.core.block import CommitCert, CommitSig, commit_sign_bytes, decode_block
from chainmall.core.constants import TX_TYPE_TRANSFER
from chainmall.core.errors import (
    TX_OK,
    BadSignature,
    DecodeError,
    InsufficientBalance,
    InvalidBlock,
    InvalidInput,
    NonceMismatch,
    StorageError,
    TxExpired,
    UnknownSender,
)
from chainmall.core.genesis import make_genesis
from chainmall.core.keys import KeyPair
from chainmall.core.state import machine as machine_module
from chainmall.core.state.accounts import account_key, encode_transfer, pack_account
from chainmall.core.state.machine import StateMachine
from chainmall.core.state.overlay import BlockState, TxScratch
from chainmall.core.state.receipts import decode_receipts
from chainmall.core.store import Store
from chainmall.core.tx import sign_tx

CHAIN = "exec-test"
KEYS = [KeyPair.from_seed(bytes([i]) * 32) for i in range(1, 5)]
STRANGER = KeyPair.from_seed(b"\x77" * 32)
VALIDATOR = KeyPair.from_seed(b"v" * 32)
BALANCE = 1_000_000
GENESIS = make_genesis(CHAIN, [(k.address, BALANCE) for k in KEYS], [(VALIDATOR.public_key, 1)],
                       genesis_time_ms=1_000, fee_min=2)


def transfer(key: KeyPair, nonce: int, to: KeyPair, amount: int, fee: int = 2,
             expiry_height: int = 1_000_000):
    return sign_tx(key, CHAIN, TX_TYPE_TRANSFER, nonce, fee, expiry_height,
                   encode_transfer(to.address, amount))


def forged(tx):
    signature = bytearray(tx.signature)
    signature[3] ^= 1
    return dataclasses.replace(tx, signature=bytes(signature))


@pytest.fixture
def machine(tmp_path):
    with Store(tmp_path / "data") as store:
        yield StateMachine(store, GENESIS)


def test_a_decided_block_records_only_the_txs_it_charges(machine: StateMachine,
                                                         tmp_path) -> None:
    good = transfer(KEYS[0], 0, KEYS[1], 10)
    items = [
        forged(transfer(KEYS[1], 0, KEYS[2], 5)).encode(),  # bad signature
        b"\x01garbage",  # does not decode
        good.encode(),
        transfer(KEYS[0], 5, KEYS[1], 1).encode(),  # nonce gap
        transfer(STRANGER, 0, KEYS[1], 1).encode(),  # no account
        transfer(KEYS[2], 0, KEYS[1], BALANCE).encode(),  # recorded, fails in its handler
        good.encode(),  # the same tx again: its nonce is used
    ]
    result = machine.execute(1, 2_000, VALIDATOR.public_key, items)
    assert [r.code for r in result.tx_results] == [
        BadSignature.code, DecodeError.code, TX_OK, NonceMismatch.code, UnknownSender.code,
        InsufficientBalance.code, NonceMismatch.code]
    assert [r.recorded for r in result.tx_results] == [
        False, False, True, False, False, True, False]
    record = result.block
    assert [tx.tx_id for tx in record.txs] == [good.tx_id, result.tx_results[5].tx_id]
    assert record.header.state_root == result.app_hash
    assert record.header.proposer == VALIDATOR.public_key
    machine.commit()
    with machine.store.reader() as view:
        assert decode_receipts(view.receipts(1)) == (TX_OK, InsufficientBalance.code)
        assert decode_block(view.block(1)) == record
    # A second node replays the record and reaches the same root.
    with Store(tmp_path / "replica") as store:
        replica = StateMachine(store, GENESIS)
        assert replica.finalize_block(record).app_hash == result.app_hash
        replica.commit()
        assert replica.info() == machine.info()


def test_execute_refuses_a_wrong_height_or_an_earlier_time(machine: StateMachine) -> None:
    with pytest.raises(InvalidBlock, match="expected 1"):
        machine.execute(2, 2_000, VALIDATOR.public_key, [])
    with pytest.raises(InvalidBlock, match="before the previous"):
        machine.execute(1, 999, VALIDATOR.public_key, [])


def test_an_admitted_tx_is_not_verified_again(machine: StateMachine, monkeypatch) -> None:
    admitted = transfer(KEYS[0], 0, KEYS[1], 10)
    assert machine.check_tx(admitted.encode()).code == TX_OK
    fresh = transfer(KEYS[1], 0, KEYS[2], 10)
    seen: list[int] = []
    real = accel.validate_batch

    def counting(data, offsets, chain_id, height, *args):
        seen.append(len(offsets) - 1)
        return real(data, offsets, chain_id, height, *args)

    monkeypatch.setattr(machine_module.accel, "validate_batch", counting)
    result = machine.execute(1, 2_000, VALIDATOR.public_key, [admitted.encode(), fresh.encode()])
    assert [r.code for r in result.tx_results] == [TX_OK, TX_OK]
    assert seen == [1]  # only the tx that was not admitted went to the validator


def test_a_cached_tx_still_expires(machine: StateMachine) -> None:
    tx = transfer(KEYS[0], 0, KEYS[1], 10, expiry_height=1)
    assert machine.check_tx(tx.encode()).code == TX_OK
    machine.execute(1, 2_000, VALIDATOR.public_key, [])
    machine.commit()
    result = machine.execute(2, 3_000, VALIDATOR.public_key, [tx.encode()])
    assert result.tx_results[0].code == TxExpired.code


def test_the_signature_cache_is_bounded() -> None:
    cache = machine_module.SignatureCache(limit=2)
    txs = [transfer(KEYS[0], nonce, KEYS[1], 1) for nonce in range(3)]
    for tx in txs:
        cache.add(tx)
    assert len(cache) == 2
    assert txs[0] not in cache and txs[1] in cache and txs[2] in cache
    assert forged(txs[2]) not in cache  # the signature is part of the key
    cache.add(txs[1])  # added again: the newest, so txs[2] is the next to go
    cache.add(txs[0])
    assert txs[1] in cache and txs[0] in cache and txs[2] not in cache


def test_hooks_run_around_the_txs_and_their_output_is_returned(machine: StateMachine) -> None:
    order: list[str] = []
    marker = account_key(STRANGER.address)

    def begin(state, block):
        order.append("begin")
        assert state.get(marker) is None
        block.events.append(Event("begin", (("height", str(block.height)),)))

    def end(state, block):
        order.append("end")
        block.validator_updates.append(ValidatorUpdate(VALIDATOR.public_key, 5))

    def handler(state, ctx):
        order.append("tx")
        ctx.events.append(Event("seen", (("sender", ctx.sender.hex()),)))

    machine.register_block_hook(begin, "begin")
    machine.register_block_hook(end, "end")
    machine.register(900, handler)
    tx = sign_tx(KEYS[0], CHAIN, 900, 0, 2, 10, b"")
    result = machine.execute(1, 2_000, VALIDATOR.public_key, [tx])
    assert order == ["begin", "tx", "end"]
    assert result.events == (Event("begin", (("height", "1"),)),)
    assert result.validator_updates == (ValidatorUpdate(VALIDATOR.public_key, 5),)
    assert result.tx_results[0].events == (Event("seen", (("sender", KEYS[0].address.hex()),)),)
    with pytest.raises(ValueError, match="phase"):
        machine.register_block_hook(end, "middle")


def test_a_failed_tx_drops_its_events(machine: StateMachine) -> None:
    def handler(state, ctx):
        ctx.events.append(Event("never"))
        raise InvalidInput("no")

    machine.register(901, handler)
    result = machine.execute(1, 2_000, VALIDATOR.public_key,
                             [sign_tx(KEYS[0], CHAIN, 901, 0, 2, 10, b"")])
    assert result.tx_results[0].code == InvalidInput.code
    assert result.tx_results[0].events == ()


def test_tx_observers_run_after_a_successful_handler_as_part_of_the_tx(
        machine: StateMachine) -> None:
    seen: list[tuple[str, int]] = []
    mark = b"\x02observed"  # an entry of a table that holds no supply

    def first(state, ctx):
        seen.append(("first", ctx.tx.nonce))
        recipient = ctx.tx.payload[:20]
        assert state.get(account_key(recipient)) is not None  # the handler's writes
        state.set(mark + bytes([ctx.tx.nonce]), b"x")
        ctx.events.append(Event("observed", (("nonce", str(ctx.tx.nonce)),)))

    def second(state, ctx):
        seen.append(("second", ctx.tx.nonce))
        if ctx.tx.payload[20:] == (7).to_bytes(8, "big"):
            raise InvalidInput("the observer refuses 7")

    machine.register_tx_observer(TX_TYPE_TRANSFER, first)
    machine.register_tx_observer(TX_TYPE_TRANSFER, second)
    machine.register_tx_observer(950, first)  # no handler: never runs
    txs = [transfer(KEYS[0], 0, KEYS[1], 5), transfer(KEYS[0], 1, KEYS[1], BALANCE),
           transfer(KEYS[0], 2, KEYS[1], 7), sign_tx(KEYS[1], CHAIN, 950, 0, 2, 10, b"")]
    result = machine.execute(1, 2_000, VALIDATOR.public_key, txs)
    assert [r.code for r in result.tx_results] == [
        TX_OK, InsufficientBalance.code, InvalidInput.code, 155]
    assert seen == [("first", 0), ("second", 0), ("first", 2), ("second", 2)]
    assert result.tx_results[0].events == (Event("observed", (("nonce", "0"),)),)
    assert result.tx_results[2].events == ()
    machine.commit()
    with machine.store.reader() as view:
        assert view.get_state(mark + b"\x00") == b"x"
        assert view.get_state(mark + b"\x02") is None  # the refused tx's writes are gone
        assert view.get_state(account_key(KEYS[1].address))[1:9] == \
            (BALANCE + 5 - 2).to_bytes(8, "big")  # less its own tx's fee
    with pytest.raises(ValueError, match="u16"):
        machine.register_tx_observer(-1, first)


def test_a_hook_that_creates_money_stops_the_block(machine: StateMachine) -> None:
    def mint(state, block):
        state.set(account_key(STRANGER.address), pack_account(1, 0))

    machine.register_block_hook(mint, "end")
    with pytest.raises(StorageError, match="supply changed by 1"):
        machine.execute(1, 2_000, VALIDATOR.public_key, [])


def test_attach_commit_stores_the_certificate(machine: StateMachine) -> None:
    result = machine.execute(1, 2_000, VALIDATOR.public_key, [transfer(KEYS[0], 0, KEYS[1], 1)])
    block_hash = result.block.hash()
    signature = VALIDATOR.sign(commit_sign_bytes(CHAIN, 1, 0, block_hash))
    with pytest.raises(InvalidBlock, match="not the pending"):
        machine.attach_commit(CommitCert(2, 0, block_hash, (CommitSig(0, signature),)))
    certified = machine.attach_commit(CommitCert(1, 0, block_hash, (CommitSig(0, signature),)))
    assert certified.commit is not None and certified.hash() == block_hash
    machine.commit()
    with machine.store.reader() as view:
        stored = decode_block(view.block(1))
    assert stored == certified
    assert machine.info()[0] == 1


def test_attach_commit_needs_a_pending_block(machine: StateMachine) -> None:
    with pytest.raises(InvalidBlock, match="without a finalized block"):
        machine.attach_commit(CommitCert(1, 0, bytes(32)))


def _overlay(committed: dict[bytes, bytes]) -> BlockState:
    def read_range(start: bytes, end: bytes):
        return iter(sorted((k, v) for k, v in committed.items() if start <= k < end))

    return BlockState(committed.get, read_range)


def test_scan_merges_committed_entries_with_pending_writes() -> None:
    state = _overlay({b"\x05a": b"1", b"\x05c": b"3", b"\x05e": b"5", b"\x06z": b"x"})
    state.set(b"\x05b", b"2")
    state.delete(b"\x05c")
    scratch = TxScratch(state)
    scratch.set(b"\x05d", b"4")
    scratch.delete(b"\x05e")
    scratch.set(b"\x05a", b"one")
    assert scratch.scan(b"\x05", b"\x06") == [(b"\x05a", b"one"), (b"\x05b", b"2"),
                                             (b"\x05d", b"4")]
    assert state.scan(b"\x05", b"\x06") == [(b"\x05a", b"1"), (b"\x05b", b"2"), (b"\x05e", b"5")]
    assert scratch.scan(b"\x05", b"\x06", limit=2) == [(b"\x05a", b"one"), (b"\x05b", b"2")]
    assert scratch.scan(b"\x05b", b"\x05d") == [(b"\x05b", b"2")]
    with pytest.raises(InvalidInput, match="one table"):
        state.scan(b"\x05", b"\x07")


def test_a_handler_scans_the_store_and_the_block(machine: StateMachine) -> None:
    seen: list[list[bytes]] = []

    def handler(state, ctx):
        seen.append([key for key, _ in state.scan(b"\x01", b"\x02")])

    machine.register(902, handler)
    first = transfer(KEYS[0], 0, STRANGER, 1)  # creates an account earlier in the block
    result = machine.execute(1, 2_000, VALIDATOR.public_key,
                             [first, sign_tx(KEYS[0], CHAIN, 902, 1, 2, 10, b"")])
    assert [r.code for r in result.tx_results] == [TX_OK, TX_OK]
    assert seen == [sorted(account_key(k.address) for k in [*KEYS, STRANGER])]
