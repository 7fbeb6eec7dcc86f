"""ext/_transfer == core/state/transfers: the same plans, tables, runs, results and errors."""

from __future__ import annotations

import gc

import pytest
from chainmall import ext
from chainmall.core import constants
from chainmall.core.address import address_from_public_key
from chainmall.core.hashing import ADDRESS_KEY
from chainmall.core.state import transfers
from chainmall.core.state.accounts import pack_account
from chainmall.core.state.machine import TxResult
from chainmall.core.tx import encode_body
from hypothesis import given, settings
from hypothesis import strategies as st

KERNEL = ext.load("_transfer")
pytestmark = pytest.mark.skipif(KERNEL is None, reason="chainmall.ext._transfer is not built")
U64_MAX = constants.U64_MAX


def test_kernel_numbers_equal_core() -> None:
    assert KERNEL.TX_TYPE_TRANSFER == constants.TX_TYPE_TRANSFER
    assert KERNEL.ADDRESS_BYTES == constants.ADDRESS_BYTES
    assert KERNEL.ACCOUNT_VERSION == constants.ACCOUNT_VERSION
    assert len(pack_account(0, 0)) == KERNEL.ACCOUNT_BYTES
    assert KERNEL.U64_MAX == U64_MAX
    assert KERNEL.BATCH_ITEMS_MAX == constants.BATCH_ITEMS_MAX
    assert KERNEL.STATE_KEY_BYTES_MAX == constants.STATE_KEY_BYTES_MAX
    for name in ("NO_SLOT", "WATCH_PREFIX_BYTES_MAX", "ENTRY_ABSENT", "ENTRY_ACCOUNT",
                 "ENTRY_UNREADABLE", "ENTRY_BYTES", "PLAN_BYTES", "RESULT_FIELDS"):
        assert getattr(KERNEL, name) == getattr(transfers, name), name
    assert set(TxResult.__slots__) == set(transfers.RESULT_FIELDS)


def outcome(function, *args):
    try:
        return function(*args)
    except (TypeError, ValueError) as error:
        return (type(error), str(error))


def both(name: str, *args, mutable: int | None = None) -> object:
    """Call the kernel and the reference; with `mutable`, argument `mutable` is a bytearray
    each gets its own copy of, and the copies must end up equal too."""
    kernel_args, reference_args = list(args), list(args)
    if mutable is not None:
        kernel_args[mutable] = bytearray(args[mutable])
        reference_args[mutable] = bytearray(args[mutable])
    kernel = outcome(getattr(KERNEL, name), *kernel_args)
    reference = outcome(getattr(transfers, name), *reference_args)
    assert kernel == reference
    if mutable is not None:
        assert kernel_args[mutable] == reference_args[mutable]
        args[mutable][:] = kernel_args[mutable]
    return kernel


KEYS = [bytes([i]) * 32 for i in range(1, 5)]
ADDRESSES = [bytes([0x40 + i]) * 20 for i in range(3)]
u64_edge = st.one_of(st.integers(0, 50), st.integers(U64_MAX - 50, U64_MAX),
                     st.integers(0, U64_MAX))


@st.composite
def wire_tx(draw) -> bytes:
    tx_type = draw(st.sampled_from([1, 1, 1, 2]))
    if draw(st.booleans()):
        payload = draw(st.sampled_from(ADDRESSES)) + draw(u64_edge).to_bytes(8, "big")
    else:
        payload = draw(st.binary(max_size=40))
    body = encode_body("run-test", tx_type, draw(st.sampled_from(KEYS)), draw(u64_edge),
                       draw(u64_edge), 5, payload)
    tx = body + bytes(64)
    if draw(st.integers(0, 9)) == 0:  # sometimes not a well-formed tx at all
        tx = tx[: draw(st.integers(0, len(tx) - 1))]
    return tx


def pack(items: list[bytes]) -> tuple[bytes, list[int]]:
    offsets = [0]
    for item in items:
        offsets.append(offsets[-1] + len(item))
    return b"".join(items), offsets


account_values = st.one_of(
    st.none(),
    st.builds(pack_account, u64_edge, u64_edge),
    st.binary(max_size=20),  # unreadable: wrong length or version
)


def account_value(data: st.DataObject, address: bytes, senders: dict[bytes, bytes]) -> object:
    """Mostly a readable account (always one for a sender), sometimes none or junk."""
    choice = data.draw(st.integers(0, 15))  # small draws (what hypothesis shrinks to) pass
    if choice == 15:  # a run stops at a sender or recipient without an account
        return None
    if choice == 14:
        return data.draw(st.binary(max_size=20))
    if address in senders:
        return pack_account(data.draw(st.sampled_from([1000, 0, 3, U64_MAX - 5, U64_MAX])),
                            data.draw(st.sampled_from([0, 0, 0, 7, U64_MAX])))
    return pack_account(data.draw(st.sampled_from([5, 0, 1000, U64_MAX - 5, U64_MAX])),
                        data.draw(u64_edge))


@st.composite
def likely_transfer(draw, nonces: dict[bytes, int]) -> bytes:
    """A transfer that often passes: the sender's next nonce, a small fee and amount."""
    key = draw(st.sampled_from(KEYS))
    nonce = nonces.get(key, 0) if draw(st.integers(0, 4)) < 4 else draw(u64_edge)
    nonces[key] = min(nonce + 1, U64_MAX)  # a nonce is a u64: the edge repeats, never wraps
    recipient = draw(st.sampled_from(ADDRESSES + [address_from_public_key(k) for k in KEYS]))
    amount = draw(st.sampled_from([1, 0, 2, 300, U64_MAX]))
    body = encode_body("run-test", 1, key, nonce, draw(st.sampled_from([1, 0, 2, U64_MAX])), 5,
                       recipient + amount.to_bytes(8, "big"))
    return body + bytes(64)


@settings(max_examples=200)
@given(data=st.data())
def test_plans_and_runs_agree(data: st.DataObject) -> None:
    nonces: dict[bytes, int] = {}
    count = data.draw(st.integers(0, 14))
    items = [data.draw(st.one_of(likely_transfer(nonces), likely_transfer(nonces), wire_tx()))
             for _ in range(count)]
    data_bytes, offsets = pack(items)
    eligible = bytes(data.draw(st.lists(st.sampled_from([1, 1, 1, 0, 2]), min_size=count,
                                        max_size=count)))
    addresses, plan = both("plan_transfers", data_bytes, offsets, eligible, ADDRESS_KEY)
    prefix = data.draw(st.sampled_from([b"\x38", b"\x10\x01", bytes(range(88))]))
    keys = both("watch_keys", plan, addresses, prefix)
    assert len(keys) == count
    senders = {address_from_public_key(key): key for key in KEYS}
    slots = len(addresses) // 20
    values = [account_value(data, addresses[20 * i : 20 * (i + 1)], senders)
              for i in range(slots)]
    table = both("load_accounts", values)
    fee_min = data.draw(st.sampled_from([1, 0, 2, U64_MAX]))
    index = executed = 0
    while index < count:  # runs to the end, skipping the tx each run stops at
        room = count + 1 - data.draw(st.integers(0, count + 1))
        done, _ = both("run_transfers", plan, table, index, count, fee_min, room, mutable=1)
        executed += done - index
        both("take_dirty", table, mutable=0)
        if done < count and slots:
            slot = data.draw(st.integers(0, slots - 1))
            address = addresses[20 * slot : 20 * (slot + 1)]
            both("set_account", table, slot, account_value(data, address, senders), mutable=0)
        index = done + 1
    RUNS.append(executed)


RUNS: list[int] = []


def test_the_random_runs_executed_transfers() -> None:
    """The generator above is not vacuous: many of its examples execute transfers."""
    if not RUNS:
        test_plans_and_runs_agree()
    assert sum(1 for executed in RUNS if executed) > len(RUNS) // 8


def test_a_run_spends_and_credits() -> None:
    tx = encode_body("run-test", 1, KEYS[0], 0, 2, 5, ADDRESSES[0] + (30).to_bytes(8, "big"))
    data, offsets = pack([tx + bytes(64)] * 2)
    addresses, plan = both("plan_transfers", data, offsets, b"\x01\x01", ADDRESS_KEY)
    assert addresses[20:] == ADDRESSES[0]
    table = both("load_accounts", [pack_account(100, 0), pack_account(4, 7)])
    assert both("run_transfers", plan, table, 0, 2, 1, 5, mutable=1) == (1, 2)  # nonce 0 only
    assert both("take_dirty", table, mutable=0) == (
        [0, 1], pack_account(68, 1) + pack_account(34, 7))
    assert both("take_dirty", table, mutable=0) == ([], b"")


def test_a_run_stops_at_a_transfer_that_creates_an_account() -> None:
    """Creating an account also writes its creator record (accounts.apply_transfer): the
    tx-by-tx path does it, so a run stops there and changes nothing."""
    tx = encode_body("run-test", 1, KEYS[0], 0, 2, 5, ADDRESSES[0] + (30).to_bytes(8, "big"))
    data, offsets = pack([tx + bytes(64)])
    _, plan = both("plan_transfers", data, offsets, b"\x01", ADDRESS_KEY)
    table = both("load_accounts", [pack_account(100, 0), None])
    assert both("run_transfers", plan, table, 0, 1, 1, 5, mutable=1) == (0, 0)
    assert both("take_dirty", table, mutable=0) == ([], b"")


def test_the_same_argument_errors() -> None:
    data, offsets = pack([encode_body("e", 1, KEYS[0], 0, 1, 1, b"") + bytes(64)])
    good_plan = transfers.plan_transfers(data, offsets, b"\x01", ADDRESS_KEY)[1]
    table = transfers.load_accounts([None])
    cases = [
        ("plan_transfers", (data, offsets, b"", ADDRESS_KEY)),
        ("plan_transfers", (data, offsets, b"\x01", b"short")),
        ("plan_transfers", (data, [0, len(data) + 1], b"\x01", ADDRESS_KEY)),
        ("plan_transfers", ("text", offsets, b"\x01", ADDRESS_KEY)),
        ("load_accounts", (list(range(2 * constants.BATCH_ITEMS_MAX + 1)),)),
        ("run_transfers", (good_plan + b"x", bytearray(table), 0, 1, 0, 1)),
        ("run_transfers", (good_plan, bytes(table), 0, 1, 0, 1)),
        ("run_transfers", (good_plan, bytearray(table) + b"x", 0, 1, 0, 1)),
        ("run_transfers", (good_plan, bytearray(table), 0, 2, 0, 1)),
        ("run_transfers", (good_plan, bytearray(table), 1, 0, 0, 1)),
        ("run_transfers", (good_plan, bytearray(table), 0, 1, -1, 1)),
        ("run_transfers", (good_plan, bytearray(table), 0, 1, U64_MAX + 1, 1)),
        ("run_transfers", (good_plan, bytearray(table), 0, 1, 1.0, 1)),
        ("run_transfers", (good_plan, bytearray(table), 0, 1, 0, -1)),
        ("run_transfers", (good_plan, bytearray(), 0, 1, 0, 1)),  # a slot past the table
        ("set_account", (bytearray(table), 1, None)),
        ("set_account", (bytes(table), 0, None)),
        ("take_dirty", (bytearray(25),)),
        ("success_results", (TxResult, (b"x",), 0, 1)),
        ("success_results", (TxResult, [b"x"], 0, 2)),
        ("success_results", (TxResult, ["x"], 0, 1)),
        ("success_results", (int, [b"x"], 0, 1)),
        ("success_results", ("TxResult", [b"x"], 0, 1)),
        ("watch_keys", (good_plan + b"x", b"a" * 20, b"\x38")),
        ("watch_keys", (good_plan, b"a" * 21, b"\x38")),
        ("watch_keys", (good_plan, b"a" * 20, b"")),
        ("watch_keys", (good_plan, b"a" * 20, bytes(89))),
        ("watch_keys", (good_plan, b"a" * 20, "x")),
        ("watch_keys", (None, b"a" * 20, b"\x38")),
        ("watch_keys", (transfers._PLAN.pack(0, 1, 0, 0, 0), b"a" * 20, b"\x38")),
        ("watch_keys", (bytes(8) + bytes(24), b"", b"\x38")),  # slots past the addresses
    ]
    for name, args in cases:
        result = both(name, *args)
        assert isinstance(result, tuple) and result[0] in (TypeError, ValueError), (name, args)


def test_watch_keys_name_both_addresses() -> None:
    a, b = bytes([1]) * 20, bytes([2]) * 20
    plan = (transfers._PLAN.pack(0, 1, 0, 0, 0) + transfers._PLAN.pack(1, 1, 0, 0, 0)
            + transfers._PLAN.pack(0, transfers.NO_SLOT, 0, 0, 0)
            + transfers._PLAN.pack(transfers.NO_SLOT, transfers.NO_SLOT, 0, 0, 0))
    expected = [b"\x38" + a + b, b"\x38" + b + b, None, None]
    assert KERNEL.watch_keys(plan, a + b, b"\x38") == expected
    assert transfers.watch_keys(plan, a + b, b"\x38") == expected
    assert KERNEL.watch_keys(b"", b"", b"\x38") == []


def test_success_results_agree() -> None:
    ids = [bytes([i]) * 32 for i in range(5)]
    kernel = KERNEL.success_results(TxResult, ids, 1, 4)
    assert kernel == transfers.success_results(TxResult, ids, 1, 4)
    assert kernel == [TxResult(0, "", (), tx_id) for tx_id in ids[1:4]]
    assert all(type(r) is TxResult and r.recorded is True for r in kernel)
    assert KERNEL.success_results(TxResult, ids, 2, 2) == []


def test_results_are_left_out_of_the_cycle_collector() -> None:
    (result,) = KERNEL.success_results(TxResult, [b"i" * 32], 0, 1)
    assert not gc.is_tracked(result)
