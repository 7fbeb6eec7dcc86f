"""The mempool: admitted txs waiting for a block, bounded, ordered by sender nonce and fee.

Pure bookkeeping, owned by the event loop's thread (no locks, no I/O): the
admission batcher (`admission.py`) runs the stateless checks and reads the
committed accounts, then calls `add`; the producer `reap`s a block's txs and,
after the commit, `remove`s them and `recheck`s what is left against the new
committed state.

Rules (docs/node.md):

* a tx is admitted against its sender's committed account plus the sender's
  pending txs: nonce at least the account's (a replay of a committed tx is
  below it), not taken by another pending tx, at most `sender_txs_max` ahead;
  fee at least the chain's `fee_min`; the committed balance covers the fees of
  all the sender's pending txs and this one;
* the pool holds at most `txs_max` txs and `bytes_max` wire bytes; when full,
  a tx whose fee beats the lowest pending fee evicts that tx (and the same
  sender's txs above it, which could no longer run); otherwise MempoolFull;
* a block takes, per sender, the run of consecutive nonces that starts at the
  account's nonce, and across senders the highest fee first (arrival order
  breaks ties);
* after each commit, txs whose nonce was used, whose fees the balance no
  longer covers, or that expired, are dropped.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from ..address import address_from_public_key
from ..errors import (
    FeeTooLow,
    InsufficientFee,
    MempoolFull,
    NonceMismatch,
    NonceTaken,
    SenderLimit,
    TxAlreadyPending,
    TxExpired,
    UnknownSender,
)
from ..state.accounts import account_key, unpack_account
from ..tx import Tx

Account = tuple[int, int]  # committed (balance, next nonce)
_UNCHANGED = object()  # recheck_changed: the block left the entry as it was
_NO_EXPIRY = 1 << 64  # above every u64 expiry height


@dataclass(frozen=True, slots=True)
class MempoolLimits:
    """Bounds of the pool (config `[mempool]`)."""

    txs_max: int
    bytes_max: int
    sender_txs_max: int

    def __post_init__(self) -> None:
        for name in ("txs_max", "bytes_max", "sender_txs_max"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ValueError(f"mempool {name} must be a positive integer, got {value!r}")


class PendingTx:
    """A tx in the pool: the decoded tx, its wire bytes and its arrival number."""

    __slots__ = ("in_block", "seq", "tx", "wire")

    def __init__(self, tx: Tx, wire: bytes, seq: int) -> None:
        self.tx = tx
        self.wire = wire
        self.seq = seq
        self.in_block = False  # reaped into the block being made


@dataclass(frozen=True, slots=True)
class Dropped:
    """A pending tx that left the pool without being committed, and why."""

    pending: PendingTx
    code: int
    log: str


class _Sender:
    """One sender's committed account and pending txs by nonce."""

    __slots__ = ("balance", "expiry_min", "fees", "gone", "in_block", "nonce", "state_key",
                 "txs")

    def __init__(self, state_key: bytes, account: Account) -> None:
        self.state_key = state_key  # the account's state key (for the recheck)
        self.balance, self.nonce = account
        self.txs: dict[int, PendingTx] = {}
        self.fees = 0  # sum of the pending txs' fees
        self.in_block = 0  # how many of the lowest nonces are in the block being made
        # At most the lowest expiry height of the pending txs (lowered as txs come, made
        # exact by each full recheck of the sender): no tx can have expired above it.
        self.expiry_min = _NO_EXPIRY
        self.gone = False  # the last recheck found no account


class Mempool:
    """Admitted txs by id and by sender (see the module docstring for the rules)."""

    def __init__(self, limits: MempoolLimits, fee_min: int) -> None:
        self.limits = limits
        self.fee_min = fee_min
        self._by_id: dict[bytes, PendingTx] = {}
        self._senders: dict[bytes, _Sender] = {}  # sender public key -> its pending txs
        self._bytes = 0
        self._seq = 0
        self._in_block = 0
        # Eviction candidates: (fee, -seq, tx id), lowest fee first and, among equal fees,
        # the latest arrival. Entries of txs that left are skipped when met (lazy). Made
        # from the pool the first time it is full (None until then, and again once the
        # pool is below half its bounds): a pool with room pushes nothing per tx.
        self._by_fee: list[tuple[int, int, bytes]] | None = None
        self.height = 0  # the committed height the cached accounts are at

    # --- reads -----------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, tx_id: bytes) -> bool:
        return tx_id in self._by_id

    @property
    def bytes_total(self) -> int:
        """Wire bytes of every pending tx."""
        return self._bytes

    @property
    def admitted_total(self) -> int:
        """Txs admitted since the pool was made (evicted and dropped ones included)."""
        return self._seq

    @property
    def unreaped(self) -> int:
        """Pending txs not in the block being made."""
        return len(self._by_id) - self._in_block

    def get(self, tx_id: bytes) -> PendingTx | None:
        """The pending tx with this id, None if it is not pending."""
        return self._by_id.get(tx_id)

    def account(self, sender: bytes) -> Account | None:
        """The committed account cached for a sender with pending txs (None: no such sender)."""
        known = self._senders.get(sender)
        return None if known is None else (known.balance, known.nonce)

    def has_sender(self, sender: bytes) -> bool:
        """Whether `sender` has an entry (pending txs, its account cached): one dict lookup,
        which admission's worker thread may make while the event loop changes the pool."""
        return sender in self._senders

    @property
    def sender_known(self) -> Callable[[bytes], bool]:
        """`has_sender` as the table's own C lookup (for loops over many txs)."""
        return self._senders.__contains__

    def senders(self) -> list[tuple[bytes, bytes]]:
        """(public key, account state key) of every sender with pending txs."""
        return [(key, sender.state_key) for key, sender in self._senders.items()]

    # --- admission ---------------------------------------------------------------------

    def add(self, tx: Tx, wire: bytes, account: Account | None,
            state_key: bytes | None = None) -> list[Dropped]:
        """Admit `tx` (its stateless checks passed) given its sender's committed account
        (None: no account), which is used only if the sender has no pending tx yet, and
        the account's state key (computed here when not given).

        Raises the first rule it breaks (InvalidTx or NodeError subclasses); returns
        the txs evicted to make room.
        """
        tx_id = tx.tx_id
        by_id = self._by_id
        if tx_id in by_id:
            raise TxAlreadyPending("the tx is already pending")
        public_key = tx.sender
        nonce_tx, fee = tx.nonce, tx.fee
        sender = self._senders.get(public_key)
        if sender is None:
            if account is None:
                raise UnknownSender("the sender has no account")
            balance, nonce = account
        else:
            balance, nonce = sender.balance, sender.nonce
        if nonce_tx < nonce:
            raise NonceMismatch(f"nonce {nonce_tx} is below the account's {nonce}")
        limits = self.limits
        limit = limits.sender_txs_max
        if nonce_tx - nonce >= limit:
            raise SenderLimit(f"nonce {nonce_tx} is {limit} or more ahead of the account's {nonce}")
        if sender is not None:
            if nonce_tx in sender.txs:
                raise NonceTaken(f"a pending tx of this sender already has nonce {nonce_tx}")
            if len(sender.txs) >= limit:
                raise SenderLimit(f"the sender already has {limit} pending txs")
        if fee < self.fee_min:
            raise FeeTooLow(f"fee {fee} is below fee_min {self.fee_min}")
        pending_fees = 0 if sender is None else sender.fees
        if balance < pending_fees + fee:
            raise InsufficientFee(f"balance {balance} cannot pay the fee {fee} after the "
                                  f"sender's pending fees {pending_fees}")
        size = len(wire)
        if len(by_id) < limits.txs_max and self._bytes + size <= limits.bytes_max:
            evicted: list[Dropped] = []  # room enough (the usual case): no eviction
        else:
            evicted = self._make_room(tx, size)
        if sender is None:
            sender = self._senders.get(public_key)  # eviction never removes a sender's entry
            if sender is None:
                key = state_key or account_key(address_from_public_key(public_key))
                sender = self._senders[public_key] = _Sender(key, (balance, nonce))
        self._seq = seq = self._seq + 1
        pending = PendingTx(tx, wire, seq)
        sender.txs[nonce_tx] = pending
        sender.fees += fee
        if tx.expiry_height < sender.expiry_min:
            sender.expiry_min = tx.expiry_height
        by_id[tx_id] = pending
        self._bytes += size
        if self._by_fee is not None:
            heapq.heappush(self._by_fee, (fee, -seq, tx_id))
        return evicted

    def _make_room(self, tx: Tx, size: int) -> list[Dropped]:
        """Evict lower-fee txs until `tx` fits; MempoolFull if it cannot."""
        limits = self.limits
        if size > limits.bytes_max:
            raise MempoolFull(f"a {size}-byte tx exceeds the mempool's {limits.bytes_max} bytes")
        if self._by_fee is None:
            self._by_fee = self._fee_heap()
        evicted: list[Dropped] = []
        while len(self._by_id) + 1 > limits.txs_max or self._bytes + size > limits.bytes_max:
            victim = self._lowest_evictable()
            if victim is None or victim.tx.fee >= tx.fee:
                for dropped in evicted:  # nothing was evicted after all: put them back
                    self._restore(dropped.pending)
                raise MempoolFull(f"the mempool is full ({len(self._by_id)} txs, "
                                  f"{self._bytes} bytes) and fee {tx.fee} does not beat the "
                                  "lowest pending fee")
            evicted.extend(self._evict(victim, f"evicted by a tx with fee {tx.fee}"))
        return evicted

    def _fee_heap(self) -> list[tuple[int, int, bytes]]:
        """The eviction candidates of every pending tx, as a heap."""
        heap = [(p.tx.fee, -p.seq, tx_id) for tx_id, p in self._by_id.items()]
        heapq.heapify(heap)
        return heap

    def _lowest_evictable(self) -> PendingTx | None:
        heap = self._by_fee
        assert heap is not None
        skipped = []
        found = None
        while heap:
            fee, _, tx_id = heap[0]
            pending = self._by_id.get(tx_id)
            if pending is None or pending.tx.fee != fee:
                heapq.heappop(heap)  # left the pool
                continue
            if pending.in_block:
                skipped.append(heapq.heappop(heap))
                continue
            found = pending
            break
        for entry in skipped:
            heapq.heappush(heap, entry)
        return found

    def _evict(self, victim: PendingTx, log: str) -> list[Dropped]:
        """Remove `victim` and the same sender's higher nonces (they could not run)."""
        sender = self._senders[victim.tx.sender]
        gone = [p for nonce, p in sender.txs.items() if nonce >= victim.tx.nonce]
        gone.sort(key=lambda p: p.tx.nonce)
        for pending in gone:
            self._discard(sender, pending)
        code = MempoolFull.code
        return [Dropped(victim, code, log)] + [
            Dropped(p, code, f"{log} (a lower nonce of its sender was evicted)")
            for p in gone if p is not victim]

    def _restore(self, pending: PendingTx) -> None:
        tx = pending.tx
        sender = self._senders.get(tx.sender)
        assert sender is not None
        sender.txs[tx.nonce] = pending
        sender.fees += tx.fee
        if tx.expiry_height < sender.expiry_min:
            sender.expiry_min = tx.expiry_height
        self._by_id[tx.tx_id] = pending
        self._bytes += len(pending.wire)
        if self._by_fee is not None:
            heapq.heappush(self._by_fee, (tx.fee, -pending.seq, tx.tx_id))

    def _discard(self, sender: _Sender, pending: PendingTx) -> None:
        """Forget one pending tx (its sender entry stays, even when empty: see `_prune`)."""
        tx = pending.tx
        del sender.txs[tx.nonce]
        sender.fees -= tx.fee
        del self._by_id[tx.tx_id]
        self._bytes -= len(pending.wire)
        if pending.in_block:
            pending.in_block = False
            sender.in_block -= 1
            self._in_block -= 1

    def _prune(self) -> None:
        """Drop sender entries without pending txs, and the fee heap's dead entries."""
        for key in [key for key, sender in self._senders.items() if not sender.txs]:
            del self._senders[key]
        heap = self._by_fee
        if heap is None:
            return
        limits = self.limits
        if 2 * len(self._by_id) < limits.txs_max and 2 * self._bytes < limits.bytes_max:
            self._by_fee = None  # far from full: made again when next needed
        elif len(heap) > 2 * len(self._by_id) + 1024:
            self._by_fee = self._fee_heap()

    # --- blocks --------------------------------------------------------------------------

    def reap(self, txs_max: int, bytes_max: int) -> list[PendingTx]:
        """The txs of the next block, marked as in it: each sender's consecutive nonces from
        its account's, the highest fee first across senders, within the limits."""
        # Candidates (-fee, arrival number, the tx, its sender): the arrival number is
        # unique, so the heap never compares the objects behind it. A sender's next tx in
        # a block already: only when a lower nonce of the sender failed in the block
        # before (its nonce did not move); that block's outcome settles it.
        heap = [(-pending.tx.fee, pending.seq, pending, sender)
                for sender in self._senders.values()
                if (pending := sender.txs.get(sender.nonce + sender.in_block)) is not None
                and not pending.in_block]
        heapq.heapify(heap)
        pop, push = heapq.heappop, heapq.heappush
        chosen: list[PendingTx] = []
        size = 0
        while heap and len(chosen) < txs_max:
            _, _, pending, sender = pop(heap)
            wire_bytes = len(pending.wire)
            if size + wire_bytes > bytes_max:
                break
            size += wire_bytes
            pending.in_block = True
            sender.in_block += 1
            chosen.append(pending)
            after = sender.txs.get(pending.tx.nonce + 1)
            if after is not None and not after.in_block:
                push(heap, (-after.tx.fee, after.seq, after, sender))
        self._in_block += len(chosen)
        return chosen

    def release(self, reaped: Iterable[PendingTx]) -> None:
        """Return reaped txs to the pool (their block was not made)."""
        for pending in reaped:
            sender = self._senders.get(pending.tx.sender)
            if pending.in_block and sender is not None and pending.tx.tx_id in self._by_id:
                pending.in_block = False
                sender.in_block -= 1
                self._in_block -= 1

    def remove(self, tx_ids: Iterable[bytes]) -> None:
        """Forget the txs of a committed block (those still pending)."""
        for tx_id in tx_ids:
            pending = self._by_id.get(tx_id)
            if pending is not None:
                self._discard(self._senders[pending.tx.sender], pending)

    def remove_reaped(self, reaped: Iterable[PendingTx]) -> None:
        """`remove` of a committed block's reaped txs (those still pending), without looking
        each up by id (`_discard` inlined: one pass, the totals updated once)."""
        by_id = self._by_id
        senders = self._senders
        removed_bytes = 0
        left_block = 0
        for pending in reaped:
            tx = pending.tx
            tx_id = tx.tx_id
            if by_id.get(tx_id) is pending:
                sender = senders[tx.sender]
                del sender.txs[tx.nonce]
                sender.fees -= tx.fee
                del by_id[tx_id]
                removed_bytes += len(pending.wire)
                if pending.in_block:
                    pending.in_block = False
                    sender.in_block -= 1
                    left_block += 1
        self._bytes -= removed_bytes
        self._in_block -= left_block

    def recheck(self, height: int, accounts: Mapping[bytes, Account | None]) -> list[Dropped]:
        """After the commit of `height`: refresh each sender's account from `accounts`
        (by public key; every sender with pending txs must be there) and drop what no
        longer passes (nonce used, fees not covered, expired at height + 1).

        Txs reaped into the next block, made while this runs (the producer starts it
        before the previous block's recheck), are left to that block's outcome: their
        fees count against the balance, but they are never dropped here."""
        self.height = height
        dropped: list[Dropped] = []
        for key, sender in self._senders.items():
            if sender.txs:
                self._recheck_sender(height, sender, accounts[key], dropped)
        self._prune()
        return dropped

    def recheck_changed(self, height: int, changes: Mapping[bytes, bytes | None]
                        ) -> list[Dropped]:
        """`recheck` after the commit of `height`, given the state entries that block
        changed (state key -> new value, None: deleted) instead of reads: a sender whose
        account entry the block did not change keeps its cached account, which is the
        committed one (cached accounts are at the previous recheck's height, or read
        by admission since, at a height no lower: the entry is the same at `height`).

        Such a sender's txs are not looked at unless one may have expired: with the
        account as it was, no nonce below it is pending (the last full recheck dropped
        them, admission refuses them) and the fees fit the balance (admission checks
        the sum; txs only left since), so expiry is the only rule that can drop one."""
        self.height = height
        dropped: list[Dropped] = []
        unchanged = _UNCHANGED
        for sender in self._senders.values():
            if not sender.txs:
                continue
            raw = changes.get(sender.state_key, unchanged)
            if raw is unchanged:
                if sender.gone:
                    account: Account | None = None
                elif sender.expiry_min > height:
                    continue
                else:
                    account = (sender.balance, sender.nonce)
            else:
                account = None if raw is None else unpack_account(raw)
            self._recheck_sender(height, sender, account, dropped)
        self._prune()
        return dropped

    def _recheck_sender(self, height: int, sender: _Sender, account: Account | None,
                        dropped: list[Dropped]) -> None:
        """One sender's part of `recheck`: its committed account is now `account`."""
        sender.gone = account is None
        if account is None:
            gone = [p for p in sender.txs.values() if not p.in_block]
            dropped += [Dropped(p, UnknownSender.code, "the sender's account is gone")
                        for p in gone]
            for pending in gone:
                self._discard(sender, pending)
            sender.expiry_min = min((p.tx.expiry_height for p in sender.txs.values()),
                                    default=_NO_EXPIRY)
            return
        sender.balance, sender.nonce = account
        fees = 0
        expiry_min = _NO_EXPIRY
        for nonce in sorted(sender.txs):
            pending = sender.txs[nonce]
            tx = pending.tx
            if pending.in_block:
                fees += tx.fee
                if tx.expiry_height < expiry_min:
                    expiry_min = tx.expiry_height
                continue
            reason = None
            if nonce < sender.nonce:
                reason = (NonceMismatch.code, f"nonce {nonce} was used by a committed tx")
            elif tx.expiry_height < height + 1:
                reason = (TxExpired.code, f"expired at height {tx.expiry_height}")
            elif fees + tx.fee > sender.balance:
                reason = (InsufficientFee.code, "the committed balance no longer covers "
                          "the sender's pending fees")
            if reason is None:
                fees += tx.fee
                if tx.expiry_height < expiry_min:
                    expiry_min = tx.expiry_height
                continue
            self._discard(sender, pending)
            dropped.append(Dropped(pending, *reason))
        sender.expiry_min = expiry_min
