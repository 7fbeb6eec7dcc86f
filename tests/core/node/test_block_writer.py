"""The node's deferred block write (node.block_writer): final only once written, the pipeline's
order, a failed write, restart."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from chainmall.core.abci.app import Application
from chainmall.core.errors import TX_OK, NonceMismatch, StorageError
from chainmall.core.node.app import serve
from chainmall.core.node.finality import TxState
from chainmall.core.node.node import Node
from chainmall.core.store import Store
from chainmall.core.tx import decode_tx
from nodeutil import BLOCK_WRITERS, KEYS, VALIDATOR, config, genesis, run, transfer

DEFERRED = ("thread", "process")
DEADLINE_S = 30.0


async def until(condition: Callable[[], bool], what: str) -> None:
    """Poll `condition` on the event loop until it holds (AssertionError after DEADLINE_S)."""
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"not reached in {DEADLINE_S} s: {what}"
        await asyncio.sleep(0.002)


def hold_writes(app: Application) -> threading.Event:
    """Make the machine's writer (thread or process alike) wait for the returned event
    before each block's write."""
    machine = app.machine
    write = machine._write
    gate = threading.Event()

    def held(*args: object) -> bool:
        assert gate.wait(DEADLINE_S), "the test never released the write"
        return write(*args)  # type: ignore[arg-type]

    machine._write = held  # type: ignore[method-assign]
    return gate


def record_finalized(app: Application) -> list[int]:
    """The heights FinalizeBlock ran for, in order (appended when it returns)."""
    heights: list[int] = []
    finalize = app.finalize_block

    def recorded(request, decoded=None):  # type: ignore[no-untyped-def]
        result = finalize(request, decoded)
        heights.append(request.height)
        return result

    app.finalize_block = recorded  # type: ignore[method-assign]
    return heights


@pytest.mark.parametrize("mode", DEFERRED)
def test_nothing_is_final_until_its_block_is_written(tmp_path: Path, mode: str) -> None:
    """With the writer held: block 1 is committed and its txs leave the pool, the next
    block executes, admission sees block 1's nonces; but no waiter, subscriber, block
    listener or `status` hears of block 1 until its write is released."""
    async def main() -> None:
        with Store(tmp_path / "ledger") as store:
            app = Application(store, genesis(), version="test")
            node = Node(app, VALIDATOR, config(node__block_writer=mode), version="test")
            await node.start()
            try:
                gate = hold_writes(app)
                finalized = record_finalized(app)
                heard: list[int] = []
                node.add_block_listener(lambda p: heard.append(p.block.header.height))
                blocks = node.subscribe_blocks()
                first = transfer(KEYS[0], 0)
                assert (await node.submit(first)).code == TX_OK
                wait_first = asyncio.ensure_future(
                    node.finality.wait(decode_tx(first).tx_id, DEADLINE_S))
                # Block 1 committed (unwritten): the pool dropped its tx and was rechecked.
                await until(lambda: node.mempool.height == 1, "block 1 committed")
                assert app.machine.tip.height == 1 and len(node.mempool) == 0
                # Admission reads the committed state with the unwritten block: a replay of
                # nonce 0 is refused, nonce 1 taken (the sender is not in the pool any more).
                replay = await node.submit(transfer(KEYS[0], 0, amount=9))
                assert replay.code == NonceMismatch.code
                second = transfer(KEYS[0], 1)
                assert (await node.submit(second)).code == TX_OK
                # Block 2 executes while block 1's write is held.
                await until(lambda: finalized == [1, 2], "block 2 executed")
                assert not wait_first.done() and heard == []
                assert node.status().height == 0
                assert node.finality.recent(decode_tx(first).tx_id) is None
                # Reads answer what is written, at once: the tx is pending, the sender's
                # account as at height 0.
                pending = await node.tx_status(decode_tx(first).tx_id)
                assert pending.state is TxState.PENDING and pending.tx == first
                account = await asyncio.wait_for(node.account(KEYS[0].address), 1.0)
                assert account.height == 0 and account.nonce == 0
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(blocks.__anext__(), 0.05)
                gate.set()
                status = await wait_first
                assert status is not None and status.state is TxState.FINAL
                assert status.height == 1
                second_status = await node.finality.wait(decode_tx(second).tx_id, DEADLINE_S)
                assert second_status is not None and second_status.state is TxState.FINAL
                assert second_status.height == 2
                await until(lambda: heard == [1, 2], "both blocks told")
                assert node.status().height == 2
                assert node.status().app_hash == app.machine.tip.app_hash
                # Block 2 holds only its own tx (never block 1's, reaped before it).
                stored = await node.block(2)
                assert stored is not None
                assert [tx.encode() for tx in stored.block.txs] == [second]
                assert (await blocks.__anext__()).block.header.height == 1
                account = await node.account(KEYS[0].address)
                assert account.height == 2 and account.nonce == 2
                assert (await node.tx_status(decode_tx(first).tx_id)).height == 1
            finally:
                await node.stop()

    run(main())


@pytest.mark.parametrize("mode", BLOCK_WRITERS)
def test_blocks_under_load_hold_each_tx_once(tmp_path: Path, mode: str) -> None:
    """Many senders, many blocks back to back: every tx final once, in one block, each
    sender's nonces in order across blocks, the heights told in order."""
    async def main() -> None:
        with Store(tmp_path / "ledger") as store:
            app = Application(store, genesis(), version="test")
            node = Node(app, VALIDATOR, config(node__block_writer=mode,
                                               node__block_txs_max="7"), version="test")
            told: list[int] = []
            node.add_block_listener(lambda p: told.append(p.block.header.height))
            await node.start()
            try:
                wires = [transfer(key, nonce) for nonce in range(12) for key in KEYS[:6]]
                verdicts = await node.submit_many(wires)
                assert all(v.code == TX_OK for v in verdicts)
                statuses = await node.wait_many([v.tx_id for v in verdicts], DEADLINE_S)
                assert all(s.state is TxState.FINAL for s in statuses)
                height = node.status().height
                assert height >= len(wires) // 7 and told == list(range(1, height + 1))
                seen: list[bytes] = []
                for h in range(1, height + 1):
                    block = await node.block(h)
                    assert block is not None
                    seen += [tx.encode() for tx in block.block.txs]
                assert sorted(seen) == sorted(wires)  # each once
                for key in KEYS[:6]:
                    nonces = [decode_tx(w).nonce for w in seen
                              if decode_tx(w).sender == key.public_key]
                    assert nonces == list(range(12))
            finally:
                await node.stop()

    run(main())


@pytest.mark.parametrize("mode", BLOCK_WRITERS)
def test_restart_continues_height_and_app_hash(tmp_path: Path, mode: str) -> None:
    """Stop writes the block in hand: a new node on the same store starts at the height
    and app hash the stopped one reported, and goes on from there."""
    async def once(nonces: range) -> tuple[int, bytes]:
        with Store(tmp_path / "ledger") as store:
            app = Application(store, genesis(), version="test")
            node = Node(app, VALIDATOR, config(node__block_writer=mode), version="test")
            start = node.status().height
            await node.start()
            try:
                waits = [asyncio.ensure_future(node.submit_wait(transfer(KEYS[0], n),
                                                                DEADLINE_S))
                         for n in nonces]
                await until(lambda: node.status().height > start, "a block written")
            finally:
                await node.stop()
            outcomes = await asyncio.gather(*waits)
            status = node.status()
            final = [s for _, s in outcomes if s.state is TxState.FINAL]
            assert final and max(s.height for s in final) == status.height
            assert status.app_hash == app.machine.tip.app_hash
            assert store.last().height == status.height
            assert app.info().last_block_height == status.height
            return status.height, status.app_hash

    async def main() -> None:
        height, app_hash = await once(range(0, 40))
        with Store(tmp_path / "ledger") as store:
            info = Application(store, genesis(), version="test").info()
            assert (info.last_block_height, info.last_block_app_hash) == (height, app_hash)
        account_nonce = await next_nonce(tmp_path / "ledger")
        later, _ = await once(range(account_nonce, account_nonce + 10))
        assert later > height

    run(main())


async def next_nonce(path: Path) -> int:
    from chainmall.core.state.accounts import account_key, unpack_account

    with Store(path) as store, store.reader() as view:
        raw = view.get_state(account_key(KEYS[0].address))
    assert raw is not None
    return unpack_account(raw)[1]


@pytest.mark.parametrize("mode", DEFERRED)
def test_a_failed_write_stops_the_node_with_status_1(tmp_path: Path, mode: str) -> None:
    """The block's write fails: nothing of it is told final, the node stops with status
    1, and the machine refuses every later call with the write's error."""
    async def main() -> int:
        with Store(tmp_path / "ledger") as store:
            app = Application(store, genesis(), version="test")
            node = Node(app, VALIDATOR, config(node__block_writer=mode), version="test")
            outcomes: list[object] = []

            async def submit_later(_: dict[str, str]) -> None:
                def broken(*args: object) -> bool:
                    raise StorageError("disk on fire")

                app.machine._write = broken  # type: ignore[method-assign]
                try:
                    outcomes.append(await node.submit_wait(transfer(KEYS[0], 0), DEADLINE_S))
                except StorageError as error:  # its status read after the stop: the error
                    outcomes.append(error)

            ready: list[asyncio.Task[None]] = []
            status = await serve(node, [], lambda addresses: ready.append(
                asyncio.ensure_future(submit_later(addresses))))
            await asyncio.gather(*ready)
            [outcome] = outcomes
            if not isinstance(outcome, StorageError):
                admitted, told = outcome  # type: ignore[misc]
                assert admitted.code == TX_OK and told.state is not TxState.FINAL
            assert node.status().height == 0
            with pytest.raises(StorageError, match="disk on fire"):
                app.info()
            return status

    assert run(main()) == 1


@pytest.mark.parametrize("mode", BLOCK_WRITERS)
def test_admission_s_reads_agree_with_the_tip_while_blocks_commit(tmp_path: Path,
                                                                   mode: str) -> None:
    """A thread reads the senders' committed accounts the way admission does while the
    block thread commits block after block: every read succeeds, at one height, with
    that height's nonce (each block holds the sender's next tx)."""
    from chainmall.core.node.admission import read_accounts
    from chainmall.core.node.engine import SingleValidatorEngine
    from chainmall.core.state.accounts import account_key

    with Store(tmp_path / "ledger") as store:
        app = Application(store, genesis(), version="test")
        if mode != "inline":
            app.defer_commits(process=mode == "process")
        engine = SingleValidatorEngine(app, VALIDATOR)
        sender = [(KEYS[0].public_key, account_key(KEYS[0].address))]
        stop = threading.Event()
        errors: list[BaseException] = []
        seen: list[int] = []

        def reader() -> None:
            while not stop.is_set():
                try:
                    height, accounts = read_accounts(app.machine, sender)
                    account = accounts[KEYS[0].public_key]
                    assert account is not None and account[1] == height
                    seen.append(height)
                except BaseException as error:
                    errors.append(error)
                    return

        thread = threading.Thread(target=reader)
        thread.start()
        try:
            for nonce in range(40):
                produced = engine.make_block([transfer(KEYS[0], nonce)], 5_000 + nonce)
            produced.written.result(DEADLINE_S)
        finally:
            stop.set()
            thread.join()
            app.close()
        assert not errors, errors[0]
        assert seen == sorted(seen) and seen[-1] >= 1


def test_the_writer_process_outlives_a_terminal_s_interrupt(tmp_path: Path) -> None:
    """Ctrl-C reaches the whole process group: the writer process ignores SIGINT and
    SIGTERM, the node goes on writing blocks and stops cleanly when told."""
    import multiprocessing
    import os
    import signal

    async def main() -> None:
        with Store(tmp_path / "ledger") as store:
            app = Application(store, genesis(), version="test")
            node = Node(app, VALIDATOR, config(node__block_writer="process"), version="test")
            await node.start()
            try:
                _, status = await node.submit_wait(transfer(KEYS[0], 0), DEADLINE_S)
                assert status.state is TxState.FINAL
                [writer] = multiprocessing.active_children()
                assert writer.pid is not None
                os.kill(writer.pid, signal.SIGINT)
                os.kill(writer.pid, signal.SIGTERM)
                _, status = await node.submit_wait(transfer(KEYS[0], 1), DEADLINE_S)
                assert status.state is TxState.FINAL and status.height == 2
                assert writer.is_alive()
            finally:
                await node.stop()
            assert not writer.is_alive() and writer.exitcode == 0
            assert store.last().height == 2

    run(main())
