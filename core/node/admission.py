"""Admission: gather submitted txs for a few ms, check them in one batch, add them to the pool.

A submit waits in a queue; the batcher takes what arrived within the
admission window (at most ADMISSION_BATCH_TXS_MAX) and runs, in a worker
thread, one call of the state machine's stateless checks (decode, chain id,
expiry at the next height, signature: one kernel call that releases the GIL)
and one read snapshot of the senders' committed accounts. Passing txs go
into the machine's signature cache, so the block that executes them does not
verify them again. Back on the event loop, each tx goes through the mempool's
stateful rules in arrival order.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

from ..accel import digest_many_fixed
from ..address import address_from_public_key
from ..constants import (
    ADDRESS_BYTES,
    ADMISSION_BATCH_TXS_MAX,
    ADMISSION_QUEUE_TXS_MAX,
    ADMISSION_VERIFY_THREADS_DEFAULT,
    HASH_BYTES,
    PUBLIC_KEY_BYTES,
    TX_BYTES_MAX,
)
from ..errors import TX_OK, ChainmallError, MempoolFull, NodeStopping, TxTooLarge, error_class
from ..hashing import ADDRESS_KEY
from ..rpc.services import SubmitResult
from ..state.accounts import account_key, unpack_account
from ..state.machine import StateMachine
from ..tx import Tx
from .mempool import Account, Dropped, Mempool

log = logging.getLogger("chainmall.node.admission")


# The verdict on one submitted tx (code 0 admitted, else the code that refused it): the
# RPC's own value (core/rpc/services.py), so the RPC answers it without a copy per tx.
Admitted = SubmitResult


class _Ticket:
    """The verdicts of one submit (one tx, or a batch's txs), filled in as they come;
    its future is done when every slot has one."""

    __slots__ = ("future", "remaining", "verdicts")

    def __init__(self, future: asyncio.Future[list[Admitted]], count: int) -> None:
        self.future = future
        self.verdicts: list[Admitted] = [_UNDECIDED] * count
        self.remaining = count

    def decide(self, slot: int, verdict: Admitted) -> None:
        """Slot `slot`'s verdict (a slot is decided once)."""
        if self.verdicts[slot] is _UNDECIDED:
            self.verdicts[slot] = verdict
            self.remaining -= 1
            if not self.remaining and not self.future.done():
                self.future.set_result(self.verdicts)


@dataclass(slots=True)
class _Checked:
    """What the worker thread found for one batch."""

    codes: list[int]
    txs: list[Tx | None]
    height: int  # the committed height the accounts were read at
    accounts: dict[bytes, Account | None]
    state_keys: dict[bytes, bytes]  # sender public key -> its account's state key


_UNDECIDED = Admitted(b"", -1, "undecided")


def read_accounts(machine: StateMachine,
                  senders: list[tuple[bytes, bytes]]) -> tuple[int, dict[bytes, Account | None]]:
    """(committed height, {public key: (balance, nonce) or None}) from one read snapshot;
    `senders` are (public key, account state key) pairs. The committed state includes a
    block whose durable write still runs (`StateMachine.committed_view`): the mempool was
    rechecked against that block's changes already, so its senders must be read with them."""
    with machine.committed_view() as view:
        height = view.last().height
        # One call for every key (a C loop over one table), not one read call per sender.
        raws = view.get_states([state_key for _, state_key in senders])
        accounts: dict[bytes, Account | None] = {
            public_key: None if raw is None else unpack_account(raw)
            for (public_key, _), raw in zip(senders, raws, strict=True)}
    return height, accounts


def account_keys(public_keys: list[bytes]) -> list[bytes]:
    """`account_key(address_from_public_key(k))` of each of `public_keys` (32 bytes each),
    with one batch BLAKE3 call for the addresses (the blake3 package's keyed hasher
    costs some 2 us to set up per key; the batch kernel some 70 ns per key)."""
    addresses = digest_many_fixed(b"".join(public_keys), PUBLIC_KEY_BYTES, ADDRESS_KEY)
    return [account_key(addresses[at:at + ADDRESS_BYTES])
            for at in range(0, len(addresses), HASH_BYTES)]


def _refusal(code: int) -> str:
    try:
        return f"refused: {error_class(code).__name__}"
    except KeyError:
        return f"refused: code {code}"


class Admission:
    """The batcher in front of a Mempool (one per node; lives on the event loop)."""

    def __init__(self, machine: StateMachine, mempool: Mempool, executor: Executor,
                 window_ms: int, on_added: Callable[[], None],
                 on_dropped: Callable[[list[Dropped]], None],
                 verify_threads: int = ADMISSION_VERIFY_THREADS_DEFAULT) -> None:
        self._machine = machine
        self._verify_threads = verify_threads  # config mempool.admission_verify_threads
        self._mempool = mempool
        self._executor = executor
        self._window_s = window_ms / 1000.0
        self._on_added = on_added
        self._on_dropped = on_dropped
        self._queue: deque[tuple[bytes, _Ticket, int]] = deque()
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self.batches = 0  # batches checked so far (for status and tests)

    def start(self) -> None:
        """Start the batcher task on the running loop."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="admission")

    async def submit(self, wire: bytes) -> Admitted:
        """Queue one tx and wait for its verdict (never raises for a bad tx)."""
        return (await self.submit_many((wire,)))[0]

    async def submit_many(self, wires: Sequence[bytes]) -> list[Admitted]:
        """Queue txs in this order and wait for the verdict of each: what as many `submit`
        calls in a row would get, with one future for all of them."""
        future: asyncio.Future[list[Admitted]] = asyncio.get_running_loop().create_future()
        ticket = _Ticket(future, len(wires))
        queue = self._queue
        queued = 0
        for slot, wire in enumerate(wires):
            if self._stopping:
                ticket.decide(slot, Admitted(b"", NodeStopping.code, "the node is stopping"))
            elif len(wire) > TX_BYTES_MAX:
                ticket.decide(slot, Admitted(b"", TxTooLarge.code,
                                             f"tx is {len(wire)} bytes, limit {TX_BYTES_MAX}"))
            elif len(queue) >= ADMISSION_QUEUE_TXS_MAX:
                ticket.decide(slot, Admitted(b"", MempoolFull.code,
                                             "the admission queue is full; retry later"))
            else:
                queue.append((bytes(wire), ticket, slot))
                queued += 1
        if queued:
            self._wake.set()
        if not wires:
            return []
        return await future

    async def stop(self) -> None:
        """Refuse new submits; the batch being checked finishes, queued ones are refused."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
        while self._queue:
            _, ticket, slot = self._queue.popleft()
            ticket.decide(slot, Admitted(b"", NodeStopping.code, "the node is stopping"))

    async def _run(self) -> None:
        while not self._stopping:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                if self._stopping:
                    return
                if self._window_s:
                    await asyncio.sleep(self._window_s)
            batch = [self._queue.popleft()
                     for _ in range(min(len(self._queue), ADMISSION_BATCH_TXS_MAX))]
            if batch:
                try:
                    await self._admit(batch)
                except Exception as exc:  # a bug, not a bad tx: fail the batch, keep serving
                    log.exception("admission batch failed")
                    for _, ticket, _ in batch:
                        if not ticket.future.done():
                            ticket.future.set_exception(exc)

    def _check(self, wires: list[bytes]) -> _Checked:
        """Worker thread: stateless checks at the next height and the senders' accounts."""
        machine = self._machine
        # A batch of a few ms of submits is one batch equation: one thread, no team; only
        # a backlog's large batches are shared out (mempool.admission_verify_threads).
        codes, txs = machine.stateless_check(wires, machine.tip.height + 1,
                                             threads=self._verify_threads)
        passed = [tx for code, tx in zip(codes, txs, strict=True)
                  if code == TX_OK and tx is not None]
        machine.signatures.add_many(passed)
        keys: dict[bytes, bytes] = {}
        pooled = self._mempool.sender_known
        for tx in passed:
            sender = tx.sender
            # A sender with pending txs has its account cached in the pool (refreshed by
            # every recheck), which `Mempool.add` uses instead of this read.
            if sender not in keys and not pooled(sender):
                keys[sender] = b""
        if keys:
            keys = dict(zip(keys, account_keys(list(keys)), strict=True))
        height, accounts = read_accounts(machine, list(keys.items()))
        return _Checked(codes, txs, height, accounts, keys)

    async def _admit(self, batch: list[tuple[bytes, _Ticket, int]]) -> None:
        loop = asyncio.get_running_loop()
        wires = [wire for wire, _, _ in batch]
        checked = await loop.run_in_executor(self._executor, self._check, wires)
        self.batches += 1
        mempool = self._mempool
        accounts = checked.accounts
        state_keys = checked.state_keys
        if checked.height < mempool.height:  # a commit and recheck happened meanwhile
            _, accounts = read_accounts(self._machine, list(state_keys.items()))
        # Senders that had pending txs when the batch was checked (so not read) but left
        # the pool since (their txs final or dropped): read now, on the loop (rare).
        pooled = mempool.sender_known
        gone = {tx.sender for code, tx in zip(checked.codes, checked.txs, strict=True)
                if code == TX_OK and tx is not None and tx.sender not in state_keys
                and not pooled(tx.sender)}
        if gone:
            state_keys = dict(state_keys)
            state_keys.update((sender, account_key(address_from_public_key(sender)))
                              for sender in gone)
            accounts = dict(accounts)
            accounts.update(read_accounts(self._machine,
                                          [(sender, state_keys[sender]) for sender in gone])[1])
        added = 0
        evicted: list[Dropped] = []
        add, account_of, key_of = mempool.add, accounts.get, state_keys.get
        undecided = _UNDECIDED
        for (wire, ticket, slot), code, tx in zip(batch, checked.codes, checked.txs,
                                                  strict=True):
            future = ticket.future
            if future.done():  # the submitter went away
                continue
            if code != TX_OK or tx is None:
                ticket.decide(slot, Admitted(tx.tx_id if tx is not None else b"", code,
                                             _refusal(code)))
                continue
            tx_id = tx.tx_id
            sender = tx.sender
            try:
                made_room = add(tx, wire, account_of(sender), key_of(sender))
            except ChainmallError as exc:
                ticket.decide(slot, Admitted(tx_id, exc.code, str(exc)))
                continue
            if made_room:
                evicted += made_room
            added += 1
            # ticket.decide(slot, Admitted(tx_id, TX_OK)), inline (once per admitted tx)
            verdicts = ticket.verdicts
            if verdicts[slot] is undecided:
                verdicts[slot] = Admitted(tx_id, TX_OK)
                ticket.remaining -= 1
                if not ticket.remaining and not future.done():
                    future.set_result(verdicts)
        if evicted:
            self._on_dropped(evicted)
        if added:
            self._on_added()
