"""Application.defer_commits: a block's durable write on the writer thread (core/abci/app.py)."""

from __future__ import annotations

import threading

import pytest
from app_chain import AppChain, block
from chainmall.core.abci.app import Application
from chainmall.core.errors import TX_OK
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


def test_a_deferred_chain_is_the_same_chain(tmp_path) -> None:
    with Store(tmp_path / "a") as plain_store, Store(tmp_path / "b") as deferred_store:
        plain = Application(plain_store, GENESIS)
        deferred = Application(deferred_store, GENESIS)
        deferred.defer_commits()
        try:
            assert run_chain(deferred) == run_chain(plain)
            for height in range(1, len(BLOCKS) + 1):
                assert stored_block(deferred_store, height) == stored_block(plain_store, height)
            assert deferred.info() == plain.info()
            assert deferred.committed_block() == plain.committed_block()
        finally:
            deferred.close()


def test_the_next_proposal_is_made_while_the_write_runs(tmp_path) -> None:
    with Store(tmp_path / "ledger") as store:
        app = Application(store, GENESIS)
        app.defer_commits()
        release, writing, told = threading.Event(), threading.Event(), []
        write = app.machine.commit

        def held_write() -> int:
            writing.set()
            assert release.wait(60)
            return write()

        app.machine.commit = held_write  # type: ignore[method-assign]
        try:
            app.finalize_block(block(1, BLOCKS[0], time_ms=10))
            app.commit(lambda kept: told.append((threading.current_thread().name, kept)))
            assert writing.wait(60)
            # the write is held: the store is still at 0, the next height's proposal is made
            assert store.last().height == 0 and not told
            nxt = [transfer(KEYS[0], 1)]
            assert app.prepare_proposal(block(2, nxt, time_ms=20)) == tuple(nxt)
            assert app.process_proposal(block(2, nxt, time_ms=20))
            release.set()
            assert app.info().last_block_height == 1  # waits for the write
            assert told and told[0][0].startswith("app-commit")
            assert told[0][1][0].header.height == 1
            result = app.finalize_block(block(2, nxt, time_ms=20))
            assert [r.code for r in result.tx_results] == [TX_OK]
            app.commit()
        finally:
            release.set()
            app.close()
        assert store.last().height == 2  # close finished the write in hand


def test_a_failed_write_fails_every_later_call(tmp_path) -> None:
    with Store(tmp_path / "ledger") as store:
        app = Application(store, GENESIS)
        app.defer_commits()

        def broken_write() -> int:
            raise OSError("disk full")

        app.machine.commit = broken_write  # type: ignore[method-assign]
        app.finalize_block(block(1, BLOCKS[0], time_ms=10))
        app.commit()  # returns: the write fails on the writer thread
        with pytest.raises(OSError, match="disk full"):
            app.finalize_block(block(2, [], time_ms=20))
        with pytest.raises(OSError, match="disk full"):
            app.check_tx(transfer(KEYS[2], 0))
        with pytest.raises(OSError, match="disk full"):
            app.close()
        assert store.last().height == 0
