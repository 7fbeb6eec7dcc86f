"""Admission's account reads: pooled senders use the pool's cached account, senders that
leave the pool between the batch check and the add are read again."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any

import pytest
from chainmall.core import accel
from chainmall.core.abci.app import Application
from chainmall.core.address import address_from_public_key
from chainmall.core.errors import TX_OK
from chainmall.core.node import admission as admission_module
from chainmall.core.node.admission import Admission
from chainmall.core.node.mempool import Mempool, MempoolLimits
from chainmall.core.state.accounts import account_key
from chainmall.core.store import Store
from chainmall.core.tx import decode_tx
from nodeutil import KEYS, genesis, run, transfer


class _InlineExecutor(Executor):
    """Runs each job at once in the caller's thread, then `after()` (a change the event
    loop would make while the worker thread ran)."""

    def __init__(self) -> None:
        self.after: Callable[[], None] | None = None

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        future.set_result(fn(*args, **kwargs))
        if self.after is not None:
            self.after()
        return future


def _admission(store: Store) -> tuple[Admission, Mempool, _InlineExecutor]:
    app = Application(store, genesis(), version="test")
    mempool = Mempool(MempoolLimits(1000, 1 << 20, 100), app.genesis.fee_min)
    executor = _InlineExecutor()
    return (Admission(app.machine, mempool, executor, 0, lambda: None, lambda dropped: None),
            mempool, executor)


def test_a_pooled_sender_is_not_read_again(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    read: list[bytes] = []
    real = admission_module.read_accounts

    def counting(machine: Any, senders: list[tuple[bytes, bytes]]) -> Any:
        read.extend(key for key, _ in senders)
        return real(machine, senders)

    monkeypatch.setattr(admission_module, "read_accounts", counting)

    async def main() -> None:
        with Store(tmp_path / "ledger") as store:
            admission, mempool, _ = _admission(store)
            admission.start()
            first = await admission.submit(transfer(KEYS[0], 0))
            assert first.code == TX_OK and read == [KEYS[0].public_key]
            second, other = await admission.submit_many([transfer(KEYS[0], 1),
                                                         transfer(KEYS[1], 0)])
            assert (second.code, other.code) == (TX_OK, TX_OK)
            assert read == [KEYS[0].public_key, KEYS[1].public_key]  # KEYS[0]: the pool's
            assert len(mempool) == 3
            await admission.stop()

    run(main())


def test_a_sender_that_left_the_pool_meanwhile_is_read_on_the_loop(tmp_path: Path) -> None:
    async def main() -> None:
        with Store(tmp_path / "ledger") as store:
            admission, mempool, executor = _admission(store)
            admission.start()
            wire = transfer(KEYS[0], 0)
            assert (await admission.submit(wire)).code == TX_OK
            first_id = decode_tx(wire).tx_id

            def leave() -> None:  # its tx final, the recheck prunes its entry
                mempool.remove([first_id])
                mempool.recheck(mempool.height, {})
                assert not mempool.has_sender(KEYS[0].public_key)

            executor.after = leave
            later = await admission.submit(transfer(KEYS[0], 1))
            # Checked while KEYS[0] was pooled (not read), added after it left: read then.
            assert later.code == TX_OK, later.log
            assert mempool.account(KEYS[0].public_key) is not None
            await admission.stop()

    asyncio.run(main())



@pytest.mark.parametrize("threads", [0, 1, 2])
def test_admission_verifies_on_the_configured_threads(tmp_path: Path, threads: int,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Admission's batches verify on mempool.admission_verify_threads (the count once
    landed in stateless_check's `remember` instead)."""
    seen: list[int] = []
    real = accel.validate_batch

    def counting(data: Any, offsets: Any, chain_id: bytes, height: int, threads: int) -> Any:
        seen.append(threads)
        return real(data, offsets, chain_id, height, threads)

    monkeypatch.setattr(accel, "validate_batch", counting)

    async def main() -> None:
        with Store(tmp_path / "ledger") as store:
            app = Application(store, genesis(), version="test")
            mempool = Mempool(MempoolLimits(1000, 1 << 20, 100), app.genesis.fee_min)
            admission = Admission(app.machine, mempool, _InlineExecutor(), 0, lambda: None,
                                  lambda dropped: None, verify_threads=threads)
            admission.start()
            verdicts = await admission.submit_many([transfer(KEYS[0], 0),
                                                    transfer(KEYS[1], 0)])
            assert [v.code for v in verdicts] == [TX_OK, TX_OK]
            await admission.stop()

    run(main())
    assert seen == [threads]


def test_account_keys_of_a_batch_are_each_senders_account_key() -> None:
    # One batch hash for a batch's new senders: the same keys as one by one, in order.
    public_keys = [bytes([i]) * 32 for i in range(7)] + [KEYS[0].public_key]
    assert admission_module.account_keys(public_keys) == [
        account_key(address_from_public_key(key)) for key in public_keys]
    assert admission_module.account_keys([]) == []
