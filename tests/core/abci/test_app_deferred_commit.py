"""Application.defer_commits: a block's durable write on the state machine's writer thread
or process (core/abci/app.py over `StateMachine.defer_writes`).

The calls that execute or admit (FinalizeBlock, CheckTx) read the unwritten block and do
not wait for its write; those that answer what is durable (Info, Query, committed_block)
and the node's finality (`then`) wait for it.
"""

from __future__ import annotations

import threading

import pytest
from app_chain import AppChain, block
from chainmall.core.abci.app import Application
from chainmall.core.abci.types import CheckTxKind, QueryRequest
from chainmall.core.errors import TX_OK, NonceMismatch, StorageError
from chainmall.core.node.finality import CommittedBlock
from chainmall.core.node.reads import stored_block
from chainmall.core.store import Store

CHAIN_SETUP = AppChain("deferred-test", 3)
KEYS, GENESIS = CHAIN_SETUP.keys, CHAIN_SETUP.genesis
transfer = CHAIN_SETUP.transfer
BLOCKS = [[transfer(KEYS[0], 0), transfer(KEYS[1], 0)],
          [transfer(KEYS[0], 1), transfer(KEYS[0], 5), transfer(KEYS[1], 1, amount=10**6)],
          [],
          [transfer(KEYS[2], 0)]]
DEADLINE_S = 60
ACCOUNT = QueryRequest("/account", KEYS[0].address)


def run_chain(app: Application) -> list[tuple[bytes, CommittedBlock | None]]:
    """Finalize and commit BLOCKS; per height the app hash and the block `then` was given."""
    out = []
    for height, txs in enumerate(BLOCKS, start=1):
        told: list[CommittedBlock | None] = []
        result = app.finalize_block(block(height, txs, time_ms=10 * height))
        app.commit(lambda kept, told=told: told.append(
            None if kept is None else CommittedBlock(*kept)))
        app.settle()
        out.append((result.app_hash, told[0] if told else None))
    return out


def hold_writes(store: Store) -> tuple[threading.Event, threading.Event]:
    """Make the store's writes (in this process) wait at their first failpoint: (the event
    set once a write waits there, the event that lets it go on)."""
    waiting, release = threading.Event(), threading.Event()
    original = store._failpoint

    def failpoint(name: str) -> None:
        if name == "store.commit.begin":
            waiting.set()
            assert release.wait(DEADLINE_S)
        original(name)

    store._failpoint = failpoint  # type: ignore[method-assign]
    return waiting, release


@pytest.mark.parametrize("process", [False, True], ids=["thread", "process"])
def test_a_deferred_chain_is_the_same_chain(tmp_path, process) -> None:
    with Store(tmp_path / "a") as plain_store, Store(tmp_path / "b") as deferred_store:
        plain = Application(plain_store, GENESIS)
        deferred = Application(deferred_store, GENESIS)
        deferred.defer_commits(process=process)
        try:
            assert run_chain(deferred) == run_chain(plain)
            for height in range(1, len(BLOCKS) + 1):
                assert stored_block(deferred_store, height) == stored_block(plain_store, height)
            assert deferred.info() == plain.info()
            assert deferred.committed_block() == plain.committed_block()
        finally:
            deferred.close()


def test_the_next_height_runs_while_the_write_is_held(tmp_path) -> None:
    """Block 1's write is held: the next proposal is made and checked, CheckTx admits and
    refuses against block 1's state, block 2 executes, and nobody is told block 1 is final;
    Info then waits for the write, and finality is told from the writer thread."""
    with Store(tmp_path / "ledger") as store, Store(tmp_path / "plain") as plain_store:
        app = Application(store, GENESIS)
        app.defer_commits()
        plain = Application(plain_store, GENESIS)
        waiting, release = hold_writes(store)
        told: list[tuple[str, int]] = []
        nxt = [transfer(KEYS[0], 1)]
        checks = [transfer(KEYS[0], 0), transfer(KEYS[0], 1), transfer(KEYS[1], 3),
                  transfer(KEYS[2], 0)]
        try:
            for each in (app, plain):
                each.finalize_block(block(1, BLOCKS[0], time_ms=10))
            app.commit(lambda kept: told.append((threading.current_thread().name,
                                                  kept[0].header.height)))
            plain.commit()
            assert waiting.wait(DEADLINE_S)
            # The write is held: the store is still at 0, and the next height goes on.
            assert store.last().height == 0
            assert app.prepare_proposal(block(2, nxt, time_ms=20)) == tuple(nxt)
            assert app.process_proposal(block(2, nxt, time_ms=20))
            answers = app.check_txs(checks, CheckTxKind.RECHECK)
            assert answers == plain.check_txs(checks, CheckTxKind.RECHECK)
            assert [a.code for a in answers] == [NonceMismatch.code, TX_OK, TX_OK, TX_OK]
            result = app.finalize_block(block(2, nxt, time_ms=20))
            expected = plain.finalize_block(block(2, nxt, time_ms=20))
            assert result.app_hash == expected.app_hash
            assert [r.code for r in result.tx_results] == [TX_OK]
            assert store.last().height == 0 and not told  # final only once written
            release.set()
            assert app.info().last_block_height == 1  # waits for the write
            assert told == [(told[0][0], 1)] and told[0][0].startswith("chainmall-write")
            app.commit()
            plain.commit()
            assert app.query(ACCOUNT).height == 2  # waits too
            assert app.committed_block() == plain.committed_block()
        finally:
            release.set()
            app.close()
        assert store.last() == plain_store.last()  # close finished the write in hand


def test_a_failed_write_fails_every_later_call(tmp_path) -> None:
    with Store(tmp_path / "ledger") as store:
        app = Application(store, GENESIS)
        app.defer_commits()
        told = []

        def broken(name: str) -> None:
            if name == "store.commit.before_nodes":
                raise StorageError("disk full")

        store._failpoint = broken  # type: ignore[method-assign]
        app.finalize_block(block(1, BLOCKS[0], time_ms=10))
        app.commit(told.append)  # returns: the write fails on the writer thread
        writing = app.machine._writing
        assert writing is not None and writing.exception(DEADLINE_S) is not None
        # The first call after the write ended raises its failure, even one that does
        # not wait for writes; so does every later one.
        with pytest.raises(StorageError, match="disk full"):
            app.check_tx(transfer(KEYS[2], 0))
        for call in (lambda: app.finalize_block(block(2, [], time_ms=20)),
                     lambda: app.check_tx(transfer(KEYS[2], 0)), app.info,
                     app.committed_block, lambda: app.query(ACCOUNT)):
            with pytest.raises(StorageError, match="disk full"):
                call()
        with pytest.raises(StorageError, match="disk full"):
            app.close()
        assert store.last().height == 0
        assert not told  # never told final
