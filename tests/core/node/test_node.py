"""The node in process: submit, finality, blocks, reads, subscriptions, stop."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
from chainmall.core.abci.app import Application
from chainmall.core.abci.types import QueryRequest
from chainmall.core.block import commit_sign_bytes
from chainmall.core.errors import (
    TX_OK,
    BadSignature,
    InsufficientBalance,
    NodeStopping,
    NonceMismatch,
    StorageError,
    TxAlreadyPending,
)
from chainmall.core.keys import verify_signature
from chainmall.core.node import engine as engine_module
from chainmall.core.node.engine import SingleValidatorEngine
from chainmall.core.node.finality import TxState
from chainmall.core.state.root import decode_proof, verify_proof
from chainmall.core.store import Store
from chainmall.core.tx import decode_tx
from nodeutil import (
    BALANCE,
    BLOCK_WRITERS,
    KEYS,
    VALIDATOR,
    block_writer,
    config,
    genesis,
    run,
    running_node,
    transfer,
)


@pytest.fixture(autouse=True, params=BLOCK_WRITERS)
def writer_mode(request: pytest.FixtureRequest) -> object:
    """Every test here runs with each block writer (node.block_writer)."""
    block_writer["mode"] = request.param
    yield request.param
    block_writer["mode"] = "thread"


def test_submit_and_wait_until_final(tmp_path: Path) -> None:
    async def main() -> None:
        async with running_node(tmp_path / "ledger") as node:
            wire = transfer(KEYS[0], 0, amount=70)
            admitted, status = await node.submit_wait(wire, 10.0)
            assert admitted.code == TX_OK and status.state is TxState.FINAL
            assert status.height == 1 and status.index == 0 and status.code == TX_OK
            assert status.tx_id == decode_tx(wire).tx_id
            block = await node.block(1)
            assert block is not None and block.receipts == (TX_OK,)
            assert [tx.encode() for tx in block.block.txs] == [wire]
            # The validator signed the record's hash: the stored certificate verifies.
            header, commit = block.block.header, block.block.commit
            assert commit is not None and commit.block_hash == header.hash()
            message = commit_sign_bytes(header.chain_id, header.height, 0, header.hash())
            assert verify_signature(VALIDATOR.public_key, message, commit.signatures[0].signature)
            assert await node.block_by_hash(header.hash()) == block
            assert await node.block(2) is None
            receiver = await node.account(KEYS[-1].address, prove=True)
            assert receiver.balance == BALANCE + 70 and receiver.exists
            assert verify_proof(receiver.state_root, b"\x01" + KEYS[-1].address,
                                (await node.query(QueryRequest(
                                    "/account", KEYS[-1].address))).value,
                                decode_proof(receiver.proof))
            assert (await node.tx_status(status.tx_id)).state is TxState.FINAL
            status_now = node.status()
            assert status_now.height == 1 and status_now.mempool_txs == 0
            assert status_now.validator == VALIDATOR.public_key

    run(main())


def test_refusals_carry_their_codes(tmp_path: Path) -> None:
    async def main() -> None:
        cfg = config(node__block_interval_ms="60000")
        async with running_node(tmp_path / "ledger", cfg) as node:
            # The first tx gets a block at once; nothing else commits during the test.
            assert (await node.submit_wait(transfer(KEYS[3], 0), 10.0))[1].height == 1
            wire = transfer(KEYS[0], 0)
            assert (await node.submit(wire)).code == TX_OK
            assert (await node.submit(wire)).code == TxAlreadyPending.code
            bad = bytearray(transfer(KEYS[1], 0))
            bad[-1] ^= 1
            assert (await node.submit(bytes(bad))).code == BadSignature.code
            assert (await node.submit(b"junk")).code != TX_OK
            assert (await node.tx_status(decode_tx(wire).tx_id)).state is TxState.PENDING

    run(main())


def test_a_batch_of_submits_from_many_senders(tmp_path: Path) -> None:
    async def main() -> None:
        async with running_node(tmp_path / "ledger") as node:
            wires = [transfer(key, nonce) for nonce in range(20) for key in KEYS[:6]]
            results = await asyncio.gather(*(node.submit_wait(w, 20.0) for w in wires))
            assert all(a.code == TX_OK and s.state is TxState.FINAL for a, s in results)
            heights = {s.height for _, s in results}
            assert node.status().height == max(heights)
            for key in KEYS[:6]:
                account = await node.account(key.address)
                assert account.nonce == 20
            # A replay of a committed tx is refused by its nonce.
            assert (await node.submit(wires[0])).code == NonceMismatch.code
            # Admission checked the signatures in batches, not one by one.
            assert node._admission is not None and node._admission.batches < len(wires)

    run(main())


def test_a_failing_transfer_is_final_with_its_code(tmp_path: Path) -> None:
    async def main() -> None:
        async with running_node(tmp_path / "ledger") as node:
            _, status = await node.submit_wait(transfer(KEYS[0], 0, amount=BALANCE * 2), 10.0)
            assert status.state is TxState.FINAL and status.code == InsufficientBalance.code
            assert (await node.account(KEYS[0].address)).nonce == 1

    run(main())


def test_no_empty_blocks_while_idle_unless_configured(tmp_path: Path) -> None:
    async def main(empty: bool) -> int:
        cfg = config(node__empty_blocks="true" if empty else "false")
        async with running_node(tmp_path / f"ledger-{empty}", cfg) as node:
            await asyncio.sleep(0.3)
            return node.status().height

    assert run(main(False)) == 0
    assert run(main(True)) >= 3


def test_a_full_block_is_made_at_once(tmp_path: Path) -> None:
    async def main() -> None:
        cfg = config(node__block_interval_ms="60000", node__block_txs_max="10")
        async with running_node(tmp_path / "ledger", cfg) as node:
            wires = [transfer(KEYS[0], nonce) for nonce in range(25)]
            results = await asyncio.gather(*(node.submit_wait(w, 1.0) for w in wires))
            # Two full blocks at once; the last five wait for the interval.
            states = [s.state for _, s in results]
            assert states.count(TxState.FINAL) == 20 and node.status().height == 2
            assert states[20:] == [TxState.PENDING] * 5

    run(main())


def test_block_times_never_go_backwards(tmp_path: Path) -> None:
    clock = iter([5_000, 4_000, 9_000, 9_000, 9_000])

    async def main() -> None:
        from chainmall.core.abci.app import Application
        from chainmall.core.node.node import Node
        from nodeutil import genesis

        with Store(tmp_path / "ledger") as store:
            node = Node(Application(store, genesis()), VALIDATOR, config(),
                        clock_ms=lambda: next(clock))
            await node.start()
            try:
                for nonce in range(3):
                    await node.submit_wait(transfer(KEYS[0], nonce), 10.0)
                times = [(await node.block(h)).block.header.timestamp_ms for h in (1, 2, 3)]
            finally:
                await node.stop()
        assert times == [5_000, 5_000, 9_000]

    run(main())


def test_subscriptions(tmp_path: Path) -> None:
    async def main() -> None:
        async with running_node(tmp_path / "ledger") as node:
            blocks = node.subscribe_blocks()
            wire = transfer(KEYS[0], 0)
            tx_id = decode_tx(wire).tx_id
            tx_sub = node.subscribe_tx(tx_id)
            await node.submit_wait(wire, 10.0)
            first = await asyncio.wait_for(blocks.__anext__(), 10.0)
            assert first.block.header.height == 1
            [final] = [status async for status in tx_sub]
            assert final.state is TxState.FINAL and final.height == 1
            # A tx that is already final: one item at once.
            [again] = [status async for status in node.subscribe_tx(tx_id)]
            assert again.height == 1
            await blocks.aclose()
            assert [b async for b in blocks] == []

    run(main())


def test_stop_commits_the_block_in_hand_and_refuses_new_submits(tmp_path: Path) -> None:
    async def main() -> None:
        async with running_node(tmp_path / "ledger") as node:
            waits = [asyncio.ensure_future(node.submit_wait(transfer(KEYS[1], n), 30.0))
                     for n in range(200)]
            while node.status().height == 0:
                await asyncio.sleep(0.005)
            await node.stop()
            outcomes = await asyncio.gather(*waits)
            assert (await node.submit(transfer(KEYS[2], 0))).code == NodeStopping.code
            height = node.status().height
            final = [s for _, s in outcomes if s.state is TxState.FINAL]
            assert final and all(s.height <= height for s in final)
            for admitted, status in outcomes:  # every answer is a definite one
                assert status.state in (TxState.FINAL, TxState.PENDING, TxState.UNKNOWN)
                assert admitted.code in (TX_OK, NodeStopping.code)

    run(main())


def test_a_failing_block_stops_the_node_with_status_1(tmp_path: Path) -> None:
    from chainmall.core.abci.app import Application
    from chainmall.core.errors import StorageError
    from chainmall.core.node.app import serve
    from chainmall.core.node.node import Node
    from nodeutil import genesis

    async def main() -> int:
        with Store(tmp_path / "ledger") as store:
            node = Node(Application(store, genesis()), VALIDATOR, config())

            def broken(*args: object) -> None:
                raise StorageError("disk on fire")

            node.engine.make_block = broken  # type: ignore[method-assign]

            async def submit_later(_: dict[str, str]) -> None:
                admitted = await node.submit(transfer(KEYS[0], 0))
                assert admitted.code == TX_OK

            ready: list[asyncio.Task[None]] = []
            status = await serve(node, [], lambda addresses: ready.append(
                asyncio.ensure_future(submit_later(addresses))))
            await asyncio.gather(*ready)
            # Nothing was committed; the tx went back to the pool before the node stopped.
            assert node.status().height == 0 and len(node.mempool) == 1
            return status

    assert run(main()) == 1


def test_submit_many_and_wait_many(tmp_path: Path) -> None:
    """A batch's submits in one hand-off: one verdict each, in order, as one by one; the
    waits end with each tx's state (final, or pending when the time runs out)."""
    async def main() -> None:
        cfg = config(node__block_interval_ms="60000")
        async with running_node(tmp_path / "ledger", cfg) as node:
            first = transfer(KEYS[0], 0)
            assert (await node.submit_wait(first, 10.0))[1].height == 1  # block 1 at once
            wires = [transfer(KEYS[1], nonce) for nonce in range(3)]
            bad = bytearray(transfer(KEYS[2], 0))
            bad[-1] ^= 1
            verdicts = await node.submit_many([*wires, first, bytes(bad), wires[0], b"junk"])
            assert [v.code for v in verdicts[:3]] == [TX_OK] * 3
            assert verdicts[3].code == NonceMismatch.code  # committed: a replay
            assert verdicts[4].code == BadSignature.code
            assert verdicts[5].code == TxAlreadyPending.code
            assert verdicts[6].code != TX_OK
            assert [v.tx_id for v in verdicts[:3]] == [decode_tx(w).tx_id for w in wires]
            ids = [v.tx_id for v in verdicts[:3]]
            # No block for 60 s: the wait runs out, the txs are still pending.
            statuses = await node.wait_many([*ids, decode_tx(first).tx_id], 0.05)
            assert [s.state for s in statuses] == [TxState.PENDING] * 3 + [TxState.FINAL]
            assert statuses[0].tx == wires[0]
            assert not node.finality._waiters  # the timed-out waits left nothing behind
            assert await node.submit_many([]) == []

    run(main())


def test_wait_many_ends_when_all_are_final(tmp_path: Path) -> None:
    async def main() -> None:
        async with running_node(tmp_path / "ledger") as node:
            wires = [transfer(key, nonce) for nonce in range(5) for key in KEYS[:4]]
            verdicts = await node.submit_many(wires)
            assert all(v.code == TX_OK for v in verdicts)
            statuses = await node.wait_many([v.tx_id for v in verdicts], 20.0)
            assert all(s.state is TxState.FINAL and s.code == TX_OK for s in statuses)
            assert sorted((s.height, s.index) for s in statuses) == sorted(
                {(s.height, s.index) for s in statuses})  # each its own place

    run(main())


def test_the_engine_refuses_a_stored_block_that_is_not_the_one_it_signed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writer_mode: str) -> None:
    """The read-back after the write compares the stored bytes with the signed block's; a
    difference fails the block's `written` (and the write: every later call fails)."""
    with Store(tmp_path / "ledger") as store:
        app = Application(store, genesis(), version="test")
        if writer_mode != "inline":
            app.defer_commits(process=writer_mode == "process")
        try:
            engine = SingleValidatorEngine(app, VALIDATOR)
            produced = engine.make_block([transfer(KEYS[0], 0)], 5_000)
            assert produced.written.result(30.0) >= 0.0
            assert produced.block.encode() == app.query(QueryRequest(
                "/block", (1).to_bytes(8, "big"))).value
            stored = engine_module.stored_block_bytes

            def altered(store: Store, height: int) -> bytes | None:
                value = bytearray(stored(store, height) or b"")
                value[-1] ^= 1
                return bytes(value)

            monkeypatch.setattr(engine_module, "stored_block_bytes", altered)
            with pytest.raises(StorageError, match="not the block just committed"):
                produced = engine.make_block([transfer(KEYS[0], 1)], 6_000)
                produced.written.result(30.0)
            if writer_mode != "inline":  # the machine's state is no longer trusted
                with pytest.raises(StorageError, match="not the block just committed"):
                    app.settle()
        finally:
            with pytest.raises(StorageError) if writer_mode != "inline" else \
                    contextlib.nullcontext():
                app.close()


def test_the_recheck_works_from_the_block_s_changes_without_reads(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After a block, the pool is rechecked from the state entries the block changed: no
    account is read (neither in the block thread nor on the event loop), and the pool
    still sees the new nonces (a replay is refused, the next nonce is taken) and the new
    balance of a pending sender that only received in the block."""
    import threading

    from chainmall.core.node import admission as admission_module

    real = admission_module.read_accounts
    calls: list[tuple[str, int]] = []

    def counted(machine: object, senders: list[tuple[bytes, bytes]]) -> object:
        calls.append((threading.current_thread().name, len(senders)))
        return real(machine, senders)  # type: ignore[arg-type]

    monkeypatch.setattr(admission_module, "read_accounts", counted)

    async def main() -> None:
        async with running_node(tmp_path / "ledger") as node:
            first = await node.submit_many([transfer(KEYS[0], 0), transfer(KEYS[0], 1)])
            statuses = await node.wait_many([v.tx_id for v in first], 20.0)
            assert all(s.state is TxState.FINAL for s in statuses)
            # admission read KEYS[0]'s account once (a new sender), nothing read since
            assert [n for _, n in calls] == [1], calls
            assert node.mempool.height == statuses[0].height
            # the pool's cached account moved past the used nonces: a replay is refused,
            # the next nonce is taken
            admitted, _ = await node.submit_wait(transfer(KEYS[0], 1, amount=9), 10.0)
            assert admitted.code == NonceMismatch.code
            admitted, status = await node.submit_wait(transfer(KEYS[0], 2), 10.0)
            assert admitted.code == TX_OK and status.state is TxState.FINAL
            assert all(not name.startswith("cm-block") for name, _ in calls), calls

    run(main())


def test_the_engine_given_decoded_txs_makes_the_same_block(tmp_path: Path) -> None:
    """The mempool's decoded txs are not decoded again, and change nothing: the same
    block, results and app hash as from the raw bytes; a tx whose signature was never
    checked (not in the cache) is still checked in full and left out."""
    good = [transfer(KEYS[0], 0), transfer(KEYS[1], 0), transfer(KEYS[0], 1)]
    forged = bytearray(transfer(KEYS[2], 0))
    forged[-1] ^= 1  # the signature's last byte
    wires = [*good, bytes(forged)]
    made = []
    for name, decoded in (("raw", None), ("decoded", [decode_tx(w) for w in wires])):
        with Store(tmp_path / name) as store:
            app = Application(store, genesis(), version="test")
            produced = SingleValidatorEngine(app, VALIDATOR).make_block(wires, 5_000, decoded)
            made.append((produced.block.encode(), produced.result.tx_results,
                         produced.result.app_hash, produced.receipts))
    assert made[0] == made[1]
    _, results, _, receipts = made[1]
    assert [r.code for r in results][:3] == [TX_OK] * 3 and results[3].code != TX_OK
    assert receipts == (TX_OK,) * 3
