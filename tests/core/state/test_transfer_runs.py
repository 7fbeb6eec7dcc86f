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
MOVE, FAIL, UNKNOWN = 900, 901, 902  # test tx types (UNKNOWN has no handler)
JUNK = account_key(STRANGERS[1].address)


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
    tx_type=st.sampled_from([TX_TYPE_TRANSFER] * 6 + [MOVE, FAIL, UNKNOWN]),
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
        machine = StateMachine(store, GENESIS)
        machine.transfer_runs = runs
        machine.register(MOVE, move)
        machine.register(FAIL, fail)
        machine.register_block_hook(shift, "begin")
        machine.register_block_hook(
            lambda state, block: junk(state, block) if block.height in junk_blocks else None,
            "begin")
        pair.append(machine)
    return pair


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
              "success_results")


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
        machine = StateMachine(store, GENESIS)
        machine.transfer_runs = runs
        txs = [sign_tx(KEYS[2], CHAIN, TX_TYPE_TRANSFER, n, 2, 99,
                       encode_transfer(KEYS[n % 5].address, n)) for n in range(50)]
        result = machine.execute(1, 1_001, VALIDATOR.public_key, txs)
    assert all(r.code == 0 for r in result.tx_results)
    assert len(calls) == (0 if runs else 50)
