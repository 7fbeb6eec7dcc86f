"""Stateless checks ahead of execution: `check_block_txs`, `finalize_block(checked=)`, and
the worker pipeline that imports use (`core/state/pipeline.py`)."""

from __future__ import annotations

import threading

import pytest
from chainmall.core.block import Block, decode_block
from chainmall.core.errors import InvalidBlock
from chainmall.core.genesis import make_genesis
from chainmall.core.keys import KeyPair
from chainmall.core.state import pipeline as pipeline_module
from chainmall.core.state.accounts import encode_transfer
from chainmall.core.state.machine import CheckedTxs, StateMachine
from chainmall.core.state.pipeline import checked_ahead, verify_threads
from chainmall.core.store import Store
from chainmall.core.tx import sign_tx

CHAIN = "mall-pipe"
KEYS = [KeyPair.from_seed(bytes([i]) * 32) for i in range(1, 4)]
VALIDATOR = KeyPair.from_seed(b"v" * 32)
GENESIS = make_genesis(CHAIN, [(k.address, 10_000) for k in KEYS], [(VALIDATOR.public_key, 1)],
                       genesis_time_ms=0, fee_min=1)


def _chain(tmp_path, blocks: int) -> list[bytes]:
    """`blocks` encoded blocks of a few transfers each, built and committed in a scratch store."""
    encoded = []
    with Store(tmp_path / "build") as store:
        machine = StateMachine(store, GENESIS)
        for height in range(1, blocks + 1):
            txs = [sign_tx(key, CHAIN, 1, height - 1, 1, 1_000,
                           encode_transfer(KEYS[(i + 1) % len(KEYS)].address, height))
                   for i, key in enumerate(KEYS)]
            block = machine.build_block(txs, height * 1_000, VALIDATOR.public_key)
            machine.finalize_block(block)
            machine.commit()
            encoded.append(block.encode())
    return encoded


def _forge_signature(raw: bytes) -> bytes:
    """The block with the last byte of its first tx's signature flipped (its root unchanged)."""
    block = decode_block(raw)
    first = block.txs[0].encode()
    at = raw.index(first) + len(first) - 1
    return raw[:at] + bytes([raw[at] ^ 1]) + raw[at + 1 :]


def test_pipelined_import_matches_the_plain_loop(tmp_path) -> None:
    blocks = _chain(tmp_path, 6)
    roots = {}
    for mode in ("plain", "pipelined"):
        with Store(tmp_path / mode) as store:
            machine = StateMachine(store, GENESIS)
            if mode == "plain":
                for raw in blocks:
                    machine.finalize_block(decode_block(raw))
                    machine.commit()
            else:
                def prepare(raw: bytes, machine: StateMachine = machine) -> CheckedTxs:
                    return machine.check_block_txs(decode_block(raw))

                heights = []
                for raw, checked in checked_ahead(blocks, prepare):
                    assert checked.block.encode() == raw
                    machine.finalize_block(checked.block, checked)
                    heights.append(machine.commit())
                assert heights == list(range(1, 7))
            roots[mode] = machine.info()
    assert roots["plain"] == roots["pipelined"]


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_items_are_prepared_in_workers_ahead_and_yielded_in_order(depth: int) -> None:
    seen: list[tuple[str, int]] = []
    consumer = threading.get_ident()

    def prepare(item: int) -> CheckedTxs:
        assert threading.get_ident() != consumer
        seen.append(("prepare", item))
        return item * 10  # type: ignore[return-value]

    consumed = []
    for item, prepared in checked_ahead(range(7), prepare, depth=depth):
        assert prepared == item * 10
        # Never more than `depth` items beyond the one handed over are prepared.
        assert max(prepared_item for _, prepared_item in seen) <= item + depth
        consumed.append(item)
    assert consumed == list(range(7))
    assert sorted(item for _, item in seen) == list(range(7))


def test_depth_and_workers_must_be_positive() -> None:
    with pytest.raises(ValueError, match="depth"):
        next(checked_ahead(range(3), lambda item: item, depth=0))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="workers"):
        next(checked_ahead(range(3), lambda item: item, workers=0))  # type: ignore[arg-type]


@pytest.mark.parametrize(("cores", "share"), [(2, 1), (8, 4), (1, 1), (3, 1)])
def test_busy_workers_split_the_cores_for_their_signature_checks(
        monkeypatch: pytest.MonkeyPatch, cores: int, share: int) -> None:
    """Two workers preparing at once check on half the cores each (at least 1): about
    one signature thread per core in all."""
    monkeypatch.setattr(pipeline_module, "_usable_cores", lambda: cores)
    both_in, both_read = threading.Barrier(2, timeout=30), threading.Barrier(2, timeout=30)
    seen: dict[int, int] = {}

    def prepare(item: int) -> int:
        both_in.wait()  # both workers are inside `prepare` now
        seen[item] = verify_threads()
        both_read.wait()
        return item

    assert [item for item, _ in checked_ahead(range(2), prepare, depth=2, workers=2)] == [0, 1]
    assert seen == {0: share, 1: share}


def test_a_worker_alone_uses_every_core(monkeypatch: pytest.MonkeyPatch) -> None:
    """One worker (depth 1, or the last item) checks on every core; outside a worker
    `verify_threads` is 0, the kernels' "every core"."""
    monkeypatch.setattr(pipeline_module, "_usable_cores", lambda: 8)
    seen = [threads for _, threads in checked_ahead(range(4), lambda _: verify_threads(),
                                                    depth=1)]
    assert seen == [8, 8, 8, 8]
    assert verify_threads() == 0


def test_a_bad_block_fails_after_every_earlier_block_is_committed(tmp_path) -> None:
    blocks = _chain(tmp_path, 4)
    blocks[2] = _forge_signature(blocks[2])
    with Store(tmp_path / "import") as store:
        machine = StateMachine(store, GENESIS)

        def prepare(raw: bytes) -> CheckedTxs:
            return machine.check_block_txs(decode_block(raw))

        with pytest.raises(InvalidBlock, match="block 3: tx 0 fails its stateless checks"):
            for _, checked in checked_ahead(blocks, prepare):
                machine.finalize_block(checked.block, checked)
                machine.commit()
        assert machine.info()[0] == 2
        assert store.last().height == 2


def test_closing_early_waits_for_running_work_and_drops_the_rest() -> None:
    started = threading.Event()
    release = threading.Event()
    prepared: list[int] = []

    def prepare(item: int) -> CheckedTxs:
        prepared.append(item)
        if item == 1:
            started.set()
            assert release.wait(timeout=30)
        return item  # type: ignore[return-value]

    stream = checked_ahead(range(5), prepare, depth=1)
    assert next(stream) == (0, 0)
    assert started.wait(timeout=30)
    release.set()
    stream.close()  # returns once the worker's item 1 is done; item 2 is never prepared
    assert prepared == [0, 1]


def test_finalize_ignores_checks_made_for_another_block_object(tmp_path) -> None:
    blocks = _chain(tmp_path, 1)
    with Store(tmp_path / "import") as store:
        machine = StateMachine(store, GENESIS)
        good = decode_block(blocks[0])
        checked = machine.check_block_txs(good)
        # Same header, a forged signature: the checks of `good` must not vouch for it.
        forged = decode_block(_forge_signature(blocks[0]))
        assert forged.header == good.header
        with pytest.raises(InvalidBlock, match="fails its stateless checks"):
            machine.finalize_block(forged, checked)
        assert store.last().height == 0
        machine.finalize_block(good, checked)
        assert machine.commit() == 1


def test_check_block_txs_refuses_a_tx_count_mismatch(tmp_path) -> None:
    blocks = _chain(tmp_path, 1)
    with Store(tmp_path / "import") as store:
        machine = StateMachine(store, GENESIS)
        block = decode_block(blocks[0])
        short = object.__new__(Block)
        for name, value in (("header", block.header), ("txs", block.txs[:-1]),
                            ("commit", None), ("_encoded", None)):
            object.__setattr__(short, name, value)
        with pytest.raises(InvalidBlock, match="tx count does not match"):
            machine.check_block_txs(short)
