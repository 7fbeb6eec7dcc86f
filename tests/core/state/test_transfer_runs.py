"""Runs of transfers through the transfer kernel change nothing but the speed.

Every block here is executed twice, on two ledgers from the same genesis:
once with `machine.transfer_runs` (the default: runs of transfers in the
kernel, the other txs one by one) and once without (every tx one by one,
docs/state.md section 4 as written). The blocks mix transfers that pass with
every way one can fail, other tx types whose handlers read and write the
same accounts, and block hooks that do too; the results (codes, logs,
events), the records, receipts, state roots, stored state and every error
raised must be identical.
"""

from __future__ import annotations

import dataclasses
import functools
from contextlib import ExitStack

import pytest
from chainmall import ext
from chainmall.core.abci.types import Event
from chainmall.core.block import make_block
from chainmall.core.constants import TX_TYPE_TRANSFER, U64_MAX
from chainmall.core.errors import ChainmallError, InvalidInput
from chainmall.core.genesis import make_genesis
from chainmall.core.keys import KeyPair
from chainmall.core.state import machine as machine_module
from chainmall.core.state import transfers
from chainmall.core.state.accounts import account_key, encode_transfer, pack_account, unpack_account
from chainmall.core.state.machine import StateMachine
from chainmall.core.store import Store
from chainmall.core.tx import sign_tx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

CHAIN = "runs-test"
KEYS = [KeyPair.from_seed(bytes([i]) * 32) for i in range(1, 6)]
STRANGERS = [KeyPair.from_seed(bytes([0x70 + i]) * 32) for i in range(2)]  # no account
VALIDATOR = KeyPair.from_seed(b"v" * 32)
BIG = (U64_MAX - 2 * 10**9) // 2  # two of these: near the top of the u64 range
GENESIS = make_genesis(CHAIN, [(KEYS[0].address, 1_000), (KEYS[1].address, 60),
                               (KEYS[2].address, 10**9), (KEYS[3].address, BIG),
                               (KEYS[4].address, BIG)],
                       [(VALIDATOR.public_key, 1)], genesis_time_ms=1_000, fee_min=2)
MOVE, FAIL, UNKNOWN, MARK = 900, 901, 902, 903  # test tx types (UNKNOWN has no handler)
JUNK = account_key(STRANGERS[1].address)
WATCH = bytes([0x38])  # the watched entries' prefix (any state table but the accounts)
ACTED: list[int] = []  # transfers whose watched observer found its entry (not vacuous)


def move(state, ctx) -> None:
    """Tx type MOVE: like a transfer, written with the state API, with an event."""
    recipient, amount = ctx.tx.payload[:20], int.from_bytes(ctx.tx.payload[20:28], "big")
    source = account_key(ctx.sender)
    balance, nonce = unpack_account(state.get(source))
    if balance < amount:
        raise InvalidInput(f"move: {balance} < {amount}")
    state.set(source, pack_account(balance - amount, nonce))
    target = state.get(account_key(recipient))
    to_balance, to_nonce = (0, 0) if target is None else unpack_account(target)
    state.set(account_key(recipient), pack_account(to_balance + amount, to_nonce))
    ctx.events.append(Event("move", (("amount", str(amount)),)))


def fail(state, ctx) -> None:
    state.set(account_key(ctx.sender), pack_account(0, 0))  # dropped with the failure
    raise InvalidInput("fail: always")


def mark(state, ctx) -> None:
    """Tx type MARK: sets the watched entries of (every key, recipient) mid-block: a
    counter, the payload's amount mod 3 (0 makes the next observed transfer fail)."""
    recipient, amount = ctx.tx.payload[:20], int.from_bytes(ctx.tx.payload[20:28], "big")
    for signer in KEYS:
        state.set(WATCH + signer.address + recipient, bytes([amount % 3]))


def watcher(state, ctx) -> None:
    """A watched TRANSFER observer: nothing unless WATCH || sender || recipient exists;
    then it fails the transfer (counter 0), or moves one more unit from the sender to
    the recipient (reading the accounts the runs before it changed), counts down (the
    entry goes at 0) and appends an event."""
    recipient = ctx.tx.payload[:20]
    key = WATCH + ctx.sender + recipient
    raw = state.get(key)
    if raw is None:
        return
    ACTED.append(1)
    if raw == b"\x00":
        raise InvalidInput("watched: counter at zero")
    source, target = account_key(ctx.sender), account_key(recipient)
    balance, nonce = unpack_account(state.get(source))
    if balance and source != target:
        state.set(source, pack_account(balance - 1, nonce))
        to_balance, to_nonce = unpack_account(state.get(target))
        state.set(target, pack_account(to_balance + 1, to_nonce))
    if raw == b"\x01":
        state.delete(key)
    else:
        state.set(key, bytes([raw[0] - 1]))
    ctx.events.append(Event("watched", (("left", str(raw[0] - 1)),)))


def rewatch(state, block) -> None:
    """Begin hook, block 2: one watched entry set, one from genesis deleted (the runs read
    the watched entries after the begin hooks)."""
    if block.height == 2:
        state.set(WATCH + KEYS[1].address + RECIPIENTS[2], b"\x02")
        state.delete(WATCH + KEYS[0].address + RECIPIENTS[0])


def shift(state, block) -> None:
    """Begin hook: one unit from KEYS[4] to KEYS[3] (the supply stays)."""
    source, target = account_key(KEYS[4].address), account_key(KEYS[3].address)
    balance, nonce = unpack_account(state.get(source))
    if balance:
        state.set(source, pack_account(balance - 1, nonce))
        to_balance, to_nonce = unpack_account(state.get(target))
        state.set(target, pack_account(to_balance + 1, to_nonce))


def junk(state, block) -> None:
    """Begin hook, some blocks: an account value nobody can read (the block then fails
    its supply check, the same way on both paths)."""
    state.set(JUNK, b"\x07junk")


@dataclasses.dataclass
class Plan:
    """One tx to make: who signs, its type, nonce offset, fee, recipient, amount."""

    signer: int
    tx_type: int
    nonce_shift: int
    fee: int
    to: int
    amount: int
    payload_cut: bool
    expired: bool


RECIPIENTS = [k.address for k in KEYS] + [s.address for s in STRANGERS]
plans = st.builds(
    Plan,
    signer=st.sampled_from([0, 0, 1, 2, 3, 4, 5]),  # 5: a stranger (no account)
    tx_type=st.sampled_from([TX_TYPE_TRANSFER] * 6 + [MOVE, FAIL, UNKNOWN, MARK, MARK]),
    nonce_shift=st.sampled_from([0] * 8 + [1, -1]),
    fee=st.sampled_from([2, 2, 3, 1, 900]),
    to=st.integers(0, len(RECIPIENTS) - 1),
    amount=st.sampled_from([0, 1, 5, 100, 59, 10**8, BIG, U64_MAX]),
    payload_cut=st.sampled_from([False] * 12 + [True]),
    expired=st.sampled_from([False] * 15 + [True]),
)


def make_txs(block_plans: list[Plan], nonces: dict[int, int], height: int) -> list[bytes]:
    txs = []
    for plan in block_plans:
        key = STRANGERS[0] if plan.signer == 5 else KEYS[plan.signer]
        nonce = max(0, nonces.get(plan.signer, 0) + plan.nonce_shift)
        nonces[plan.signer] = nonce + 1
        payload = encode_transfer(RECIPIENTS[plan.to], plan.amount)
        if plan.payload_cut:
            payload = payload[:-1]
        expiry = height - 1 if plan.expired else 10_000
        txs.append(sign_tx(key, CHAIN, plan.tx_type, nonce, plan.fee, expiry, payload).encode())
    return txs


def outcome(call):
    try:
        return call()
    except ChainmallError as error:
        return (type(error), str(error))


def machines(stack: ExitStack, directory, name: str, junk_blocks: set[int]):
    """A ledger with runs and one without, the same handlers and hooks."""
    pair = []
    for runs in (True, False):
        store = stack.enter_context(Store(directory / f"{name}-{runs}"))
        machine = StateMachine(store, GENESIS, genesis_entries=WATCHED_AT_GENESIS)
        machine.transfer_runs = runs
        machine.register(MOVE, move)
        machine.register(FAIL, fail)
        machine.register(MARK, mark)
        machine.register_tx_observer(TX_TYPE_TRANSFER, watcher, watch=WATCH)
        machine.register_block_hook(shift, "begin")
        machine.register_block_hook(rewatch, "begin")
        machine.register_block_hook(
            lambda state, block: junk(state, block) if block.height in junk_blocks else None,
            "begin")
        pair.append(machine)
    return pair


# Entries the observer finds from the start: a third of the pairs, a few uses each.
WATCHED_AT_GENESIS = {WATCH + sender.address + recipient: bytes([1 + (at % 4)])
                      for at, (sender, recipient) in enumerate(
                          (sender, recipient) for sender in KEYS for recipient in RECIPIENTS)
                      if at % 3 == 0}


def state_of(machine: StateMachine) -> tuple:
    with machine.store.reader() as view:
        return tuple(view.state_items()), machine.info(), view.receipts(machine.info()[0])


KERNEL = ext.load("_transfer")
IMPLS = [
    pytest.param(KERNEL, id="kernel", marks=pytest.mark.skipif(
        KERNEL is None, reason="chainmall.ext._transfer is not built")),
    pytest.param(transfers, id="reference"),
]
_FUNCTIONS = ("plan_transfers", "load_accounts", "run_transfers", "take_dirty", "set_account",
              "success_results", "watch_keys")


def use(stack: ExitStack, impl) -> None:
    """Run the machine's transfer runs on `impl` (the kernel or the reference)."""
    patch = stack.enter_context(pytest.MonkeyPatch.context())
    for name in _FUNCTIONS:
        patch.setattr(machine_module.accel, name, getattr(impl, name))


@pytest.mark.parametrize("impl", IMPLS)
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(blocks=st.lists(st.lists(plans, max_size=14), min_size=1, max_size=3),
       junk_blocks=st.sets(st.integers(1, 3), max_size=1))
def test_blocks_execute_the_same_with_and_without_runs(tmp_path_factory, impl, blocks,
                                                       junk_blocks) -> None:
    directory = tmp_path_factory.mktemp("runs")
    nonces: dict[int, int] = {}
    with ExitStack() as stack:
        use(stack, impl)
        fast, slow = machines(stack, directory, "execute", junk_blocks)
        replay_fast, replay_slow = machines(stack, directory, "replay", junk_blocks)
        for height, block_plans in enumerate(blocks, start=1):
            txs = make_txs(block_plans, nonces, height)
            args = (height, 1_000 + height, VALIDATOR.public_key, txs)
            result = outcome(functools.partial(fast.execute, *args))
            expected = outcome(functools.partial(slow.execute, *args))
            assert result == expected
            if isinstance(result, tuple):  # both refused the block the same way
                return
            assert result.block.encode() == expected.block.encode()
            # A replay of the record, strict: the same on both paths too.
            replayed = outcome(functools.partial(replay_fast.finalize_block, result.block))
            assert replayed == outcome(functools.partial(replay_slow.finalize_block,
                                                         result.block))
            assert replayed.app_hash == result.app_hash
            for machine in (fast, slow, replay_fast, replay_slow):
                machine.commit()
            assert state_of(fast) == state_of(slow) == state_of(replay_fast)


def test_an_inadmissible_tx_in_a_record_fails_the_same_way(tmp_path) -> None:
    good = sign_tx(KEYS[0], CHAIN, TX_TYPE_TRANSFER, 0, 2, 99,
                   encode_transfer(KEYS[1].address, 5))
    stale = sign_tx(KEYS[0], CHAIN, TX_TYPE_TRANSFER, 0, 2, 99,
                    encode_transfer(KEYS[2].address, 5))  # the nonce good used
    with ExitStack() as stack:
        fast, slow = machines(stack, tmp_path, "bad", set())
        record = make_block(CHAIN, 1, GENESIS.hash(), 1_001, VALIDATOR.public_key,
                            [good, stale], bytes(32), GENESIS.validator_set_hash)
        failure = outcome(lambda: fast.finalize_block(record))
        assert failure == outcome(lambda: slow.finalize_block(record))
        assert failure[1].startswith("block 1: tx 1 is not admissible: nonce 0, expected 1")


def test_watched_observers_acted_in_the_random_blocks() -> None:
    """Not vacuous: the blocks above had transfers whose watched entry existed (set by a
    MARK earlier in the block or before), so they went one by one with the observer."""
    if not ACTED:
        pytest.skip("runs after the random blocks (alone it has nothing to look at)")
    assert len(ACTED) >= 20


def test_a_watch_is_checked_when_registered(tmp_path) -> None:
    with Store(tmp_path / "data") as store:
        machine = StateMachine(store, GENESIS)
        for tx_type, watch in ((MOVE, WATCH), (TX_TYPE_TRANSFER, b""),
                               (TX_TYPE_TRANSFER, b"\x01"),  # the accounts: the kernel's
                               (TX_TYPE_TRANSFER, b"\xee"),  # no state table
                               (TX_TYPE_TRANSFER, bytearray(WATCH)),
                               (TX_TYPE_TRANSFER, WATCH * 89)):
            with pytest.raises(ValueError):
                machine.register_tx_observer(tx_type, watcher, watch=watch)


@pytest.mark.parametrize("watched", [True, False])
def test_an_unwatched_transfer_observer_turns_the_runs_off(tmp_path, watched: bool,
                                                            monkeypatch) -> None:
    """Watched observers leave the runs on (the observer runs only where its entry exists,
    here for one transfer of 50); one without a watch sends every transfer one by one."""
    calls: list[int] = []
    real = machine_module.StateMachine._execute_tx

    def counted(self, *args, **kwargs):
        calls.append(1)
        return real(self, *args, **kwargs)

    seen: list[int] = []

    def plain(state, ctx) -> None:
        seen.append(1)

    monkeypatch.setattr(machine_module.StateMachine, "_execute_tx", counted)
    with Store(tmp_path / "data") as store:
        machine = StateMachine(store, GENESIS)
        machine.register(MARK, mark)
        machine.register_tx_observer(TX_TYPE_TRANSFER, watcher, watch=WATCH)
        if not watched:
            machine.register_tx_observer(TX_TYPE_TRANSFER, plain)
        txs = [sign_tx(KEYS[2], CHAIN, MARK, 0, 2, 99, encode_transfer(KEYS[3].address, 2))]
        txs += [sign_tx(KEYS[2], CHAIN, TX_TYPE_TRANSFER, n, 2, 99,
                        encode_transfer(KEYS[n % 5].address, n)) for n in range(1, 51)]
        result = machine.execute(1, 1_001, VALIDATOR.public_key, txs)
    assert all(r.code == 0 for r in result.tx_results)
    # The counter (2) lets two of KEYS[3]'s ten transfers from KEYS[2] be observed acting.
    assert [index for index, r in enumerate(result.tx_results) if r.events] == [3, 8]
    assert len(calls) == (1 + 2 if watched else 51)
    assert len(seen) == (0 if watched else 50)


@pytest.mark.parametrize("runs", [True, False])
def test_a_long_run_is_one_kernel_call(tmp_path, runs: bool, monkeypatch) -> None:
    """The point of the runs: a block of good transfers is executed by a few kernel calls,
    not tx by tx."""
    calls: list[int] = []
    real = machine_module.StateMachine._execute_tx

    def counted(self, *args, **kwargs):
        calls.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(machine_module.StateMachine, "_execute_tx", counted)
    with Store(tmp_path / "data") as store:
        machine = StateMachine(store, GENESIS, genesis_entries=WATCHED_AT_GENESIS)
        machine.transfer_runs = runs
        txs = [sign_tx(KEYS[2], CHAIN, TX_TYPE_TRANSFER, n, 2, 99,
                       encode_transfer(KEYS[n % 5].address, n)) for n in range(50)]
        result = machine.execute(1, 1_001, VALIDATOR.public_key, txs)
    assert all(r.code == 0 for r in result.tx_results)
    assert len(calls) == (0 if runs else 50)
