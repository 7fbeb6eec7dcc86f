"""The ledger state machine: the single place where transactions change state.

Shaped as an ABCI 2.0 application (docs/state.md) so the single-validator
producer and a consensus engine drive it the same way:

* `check_tx(tx_bytes)`: stateless checks, then admission against committed state;
* `finalize_block(block)`: validate and execute a block in memory, return the
  per-tx results and the new app hash (the state root); nothing durable yet;
* `commit()`: write the pending block in ONE LMDB write transaction.

No I/O or clock of its own except through the store; time comes from headers.
Tx types plug in through the handler table (`register`), so `state/` never
imports the mall modules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from .. import accel
from ..address import address_from_public_key
from ..block import Block, Header, decode_block, make_block
from ..constants import HASH_BYTES, TABLE_ACCOUNTS, TX_TYPE_TRANSFER, U64_MAX
from ..errors import (
    TX_OK,
    BlockTooLarge,
    FeeTooLow,
    InsufficientFee,
    InvalidBlock,
    InvalidInput,
    InvalidTx,
    NonceMismatch,
    UnknownSender,
    UnknownTxType,
)
from ..genesis import Genesis
from ..store import BlockCommit, ChainTip, Store, StoreView
from ..tx import Tx, decode_tx, pack_txs
from .accounts import (
    FEE_POOL_KEY,
    Account,
    StateAccess,
    account_key,
    apply_transfer,
    decode_fee_pool,
    encode_fee_pool,
    invariant,
    pack_account,
    unpack_account,
)
from .receipts import encode_receipts
from .root import MemoryNodeStore, Proof, StateTree, verify_proof

__all__ = [
    "CheckTxResult",
    "CheckedTxs",
    "ExecContext",
    "FinalizeResult",
    "StateMachine",
    "StateProof",
    "TxHandler",
    "TxResult",
    "genesis_state",
    "verify_proof",
]


class ExecContext(NamedTuple):
    """What a tx handler sees: the block's height and time, the tx, its sender address.

    A NamedTuple: one is built per executed tx.
    """

    height: int
    timestamp_ms: int
    tx: Tx
    sender: bytes  # 20-byte address of tx.sender


# A handler executes one tx's payload after the fee is paid; it raises an
# InvalidInput subclass to fail the tx (its writes are then discarded).
TxHandler = Callable[[StateAccess, ExecContext], None]


def _transfer(state: StateAccess, ctx: ExecContext) -> None:
    apply_transfer(state, ctx.sender, ctx.tx.payload)


DEFAULT_HANDLERS: Mapping[int, TxHandler] = {TX_TYPE_TRANSFER: _transfer}


@dataclass(frozen=True, slots=True)
class CheckTxResult:
    """ABCI CheckTx: code 0 admits the tx; otherwise the error's code and a log line."""

    code: int
    log: str = ""


@dataclass(frozen=True, slots=True)
class TxResult:
    """One executed tx: its result code (the receipt) and a log line."""

    code: int
    log: str = ""


_TX_SUCCESS = TxResult(TX_OK)


@dataclass(frozen=True, slots=True)
class FinalizeResult:
    """ABCI FinalizeBlock: per-tx results in block order and the new app hash."""

    tx_results: tuple[TxResult, ...]
    app_hash: bytes


@dataclass(frozen=True, slots=True)
class StateProof:
    """A committed state entry (value None: absent) and its proof against `root`."""

    height: int
    root: bytes
    key: bytes
    value: bytes | None
    proof: Proof

    def verify(self, root: bytes | None = None) -> bool:
        """Whether the proof holds against `root` (default: the root it was made at)."""
        return verify_proof(self.root if root is None else root, self.key, self.value, self.proof)


_ABSENT = object()  # "not in this mapping", distinct from a deleted entry (None)


class _BlockState:
    """The block's pending writes over the committed state.

    Remembers the committed value of every key it read through to the store,
    so the block's diff and supply check do not read them again.
    """

    __slots__ = ("_read_committed", "committed", "writes")

    def __init__(self, read_committed: Callable[[bytes], bytes | None]) -> None:
        self._read_committed = read_committed
        self.writes: dict[bytes, bytes | None] = {}
        self.committed: dict[bytes, bytes | None] = {}

    def get(self, key: bytes) -> bytes | None:
        value = self.writes.get(key, _ABSENT)
        return self.committed_value(key) if value is _ABSENT else value  # type: ignore[return-value]

    def set(self, key: bytes, value: bytes) -> None:
        assert isinstance(value, bytes)
        self.writes[key] = value

    def committed_value(self, key: bytes) -> bytes | None:
        """The value of `key` before this block."""
        value = self.committed.get(key, _ABSENT)
        if value is _ABSENT:
            value = self.committed[key] = self._read_committed(key)
        return value  # type: ignore[return-value]


class _Scratch:
    """One handler's writes over the block state; merged only if the handler succeeds."""

    __slots__ = ("_parent", "writes")

    def __init__(self, parent: _BlockState) -> None:
        self._parent = parent
        self.writes: dict[bytes, bytes | None] = {}

    def get(self, key: bytes) -> bytes | None:
        writes = self.writes
        if key in writes:
            return writes[key]
        return self._parent.get(key)

    def set(self, key: bytes, value: bytes) -> None:
        assert isinstance(value, bytes)
        self.writes[key] = value

    def delete(self, key: bytes) -> None:
        self.writes[key] = None


@dataclass(frozen=True, slots=True)
class CheckedTxs:
    """`StateMachine.check_block_txs` passed for `block`: its tx ids and its encoding."""

    block: Block
    tx_ids: list[bytes]
    block_bytes: bytes


@dataclass(slots=True)
class _Pending:
    """A finalized, not yet committed block."""

    block: Block
    commit: BlockCommit
    result: FinalizeResult


@dataclass(slots=True)
class _Execution:
    """The outcome of executing txs over the committed state."""

    txs: list[Tx]
    results: list[TxResult]
    changes: dict[bytes, bytes | None]
    app_hash: bytes
    new_nodes: dict[bytes, bytes]


def genesis_state(genesis: Genesis) -> dict[bytes, bytes]:
    """The state entries at height 0: one account per initial balance, and the fee pool."""
    state = {account_key(address): Account(amount, 0).encode()
             for address, amount in genesis.initial_balances}
    state[FEE_POOL_KEY] = encode_fee_pool(0)
    return state


class StateMachine:
    """Executes blocks over a Store; the only writer of ledger state.

    On a store with no chain, the genesis state is written first (as ABCI
    InitChain); on one that has a chain, it must be the genesis's chain.
    """

    def __init__(self, store: Store, genesis: Genesis,
                 handlers: Mapping[int, TxHandler] | None = None) -> None:
        self.store = store
        self.genesis = genesis
        self._chain_id_bytes = genesis.chain_id.encode("ascii")
        self._handlers: dict[int, TxHandler] = dict(DEFAULT_HANDLERS)
        for tx_type, handler in (handlers or {}).items():
            self.register(tx_type, handler)
        self._genesis_hash = genesis.hash()
        if not store.is_initialised():
            state = genesis_state(genesis)
            update = StateTree(MemoryNodeStore()).apply(state)
            store.init_genesis(genesis.chain_id, self._genesis_hash, state, update.new_nodes,
                               update.root)
        self._tip = store.check_chain(genesis.chain_id, self._genesis_hash)
        self._last_time_ms = self._read_last_time_ms(self._tip)
        self._pending: _Pending | None = None

    # --- handler table -------------------------------------------------------------

    def register(self, tx_type: int, handler: TxHandler) -> None:
        """Register the handler for `tx_type` (u16); a type is registered once."""
        if type(tx_type) is not int or not 0 <= tx_type <= 0xFFFF:
            raise ValueError(f"tx type must be a u16, got {tx_type!r}")
        if tx_type in self._handlers:
            raise ValueError(f"tx type {tx_type} already has a handler")
        self._handlers[tx_type] = handler

    # --- ABCI: Info ----------------------------------------------------------------

    def info(self) -> tuple[int, bytes]:
        """(last committed height, its app hash)."""
        return self._tip.height, self._tip.app_hash

    def _read_last_time_ms(self, tip: ChainTip) -> int:
        if tip.height == 0:
            return self.genesis.genesis_time_ms
        with self.store.reader() as view:
            raw = view.block(tip.height)
        invariant(raw is not None, f"the tip block {tip.height} is not stored")
        assert raw is not None
        header = decode_block(raw).header
        invariant(header.hash() == tip.block_hash, "the tip block does not hash to meta's hash")
        return header.timestamp_ms

    # --- ABCI: CheckTx -------------------------------------------------------------

    def check_tx(self, tx_bytes: bytes) -> CheckTxResult:
        """Admission of one tx against the committed state (nothing changes)."""
        height = self._tip.height + 1
        data, offsets = pack_txs([bytes(tx_bytes)])
        codes, _ = accel.validate_batch(data, offsets, self._chain_id_bytes, height)
        if codes[0] != TX_OK:
            return CheckTxResult(codes[0], "stateless check failed")
        tx = decode_tx(tx_bytes)
        sender = address_from_public_key(tx.sender)
        with self.store.reader() as view:
            raw = view.get_state(account_key(sender))
        try:
            self._admit(raw, tx, exact_nonce=False)
        except InvalidTx as exc:
            return CheckTxResult(exc.code, str(exc))
        return CheckTxResult(TX_OK)

    def _admit(self, raw: bytes | None, tx: Tx, exact_nonce: bool) -> tuple[int, int]:
        """The sender's (balance, nonce) if `tx` may be included; the first failing rule if not.

        `raw` is the sender's account value (None: no account).
        """
        if raw is None:
            raise UnknownSender("the sender has no account")
        balance, nonce = unpack_account(raw)
        if tx.nonce != nonce:
            if exact_nonce:
                raise NonceMismatch(f"nonce {tx.nonce}, expected {nonce}")
            if tx.nonce < nonce:
                raise NonceMismatch(f"nonce {tx.nonce} is below the account's {nonce}")
        if nonce == U64_MAX:
            raise NonceMismatch("the account's nonce is exhausted")
        if tx.fee < self.genesis.fee_min:
            raise FeeTooLow(f"fee {tx.fee} is below fee_min {self.genesis.fee_min}")
        if balance < tx.fee:
            raise InsufficientFee(f"balance {balance} cannot pay the fee {tx.fee}")
        return balance, nonce

    # --- execution -------------------------------------------------------------------

    def _execute(self, view: StoreView, txs: Iterable[Tx], height: int, timestamp_ms: int,
                 skip_inadmissible: bool) -> _Execution:
        """Run `txs` in order over the committed state (docs/state.md section 4).

        Per tx: admission (an inadmissible tx makes the block invalid, or is
        skipped when building one), then fee and nonce, then the handler over
        a scratch copy kept only on success. The block's fees are credited to
        the fee pool once, after its last tx.
        """
        state = _BlockState(view.get_state)
        handlers = self._handlers
        admit = self._admit
        kept: list[Tx] = []
        results: list[TxResult] = []
        fees = 0
        # A block has far fewer senders than txs: hash each public key once.
        senders: dict[bytes, tuple[bytes, bytes]] = {}  # public key -> (address, state key)
        for index, tx in enumerate(txs):
            known = senders.get(tx.sender)
            if known is None:
                address = address_from_public_key(tx.sender)
                known = senders[tx.sender] = (address, account_key(address))
            sender, sender_key = known
            try:
                balance, nonce = admit(state.get(sender_key), tx, True)
            except InvalidTx as exc:
                if skip_inadmissible:
                    continue
                raise InvalidBlock(f"block {height}: tx {index} is not admissible: {exc}") from exc
            state.writes[sender_key] = pack_account(balance - tx.fee, nonce + 1)
            fees += tx.fee
            kept.append(tx)
            handler = handlers.get(tx.tx_type)
            if handler is None:
                results.append(TxResult(UnknownTxType.code,
                                        f"no handler for tx type {tx.tx_type}"))
                continue
            scratch = _Scratch(state)
            try:
                handler(scratch, ExecContext(height, timestamp_ms, tx, sender))
            except InvalidInput as exc:
                results.append(TxResult(exc.code, str(exc)))
                continue
            state.writes.update(scratch.writes)
            results.append(_TX_SUCCESS)
        if fees:
            pool = state.get(FEE_POOL_KEY)
            total = (0 if pool is None else decode_fee_pool(pool)) + fees
            invariant(total <= U64_MAX, "the fee pool overflows u64")
            state.set(FEE_POOL_KEY, encode_fee_pool(total))
        # The diff against committed state (a key written back to its old value is no change).
        changes = {key: value for key, value in sorted(state.writes.items())
                   if value != state.committed_value(key)}
        update = StateTree(view, self._tip.app_hash).apply(changes)
        self._check_supply(state.committed, changes)
        return _Execution(kept, results, changes, update.root, update.new_nodes)

    def _check_supply(self, committed: Mapping[bytes, bytes | None],
                      changes: Mapping[bytes, bytes | None]) -> None:
        """Safety invariant: the changed entries keep the sum of balances + fee pool.

        `committed` holds the committed value of every changed key.
        """
        before = after = 0
        for key, value in changes.items():
            before += _amount_of(key, committed[key])
            after += _amount_of(key, value)
        invariant(before == after, f"supply changed by {after - before} in one block")

    # --- ABCI: FinalizeBlock ---------------------------------------------------------

    def _check_header(self, header: Header) -> None:
        """Header against the committed tip, in a fixed order; InvalidBlock on the first fault."""
        tip = self._tip
        if header.chain_id != self.genesis.chain_id:
            raise InvalidBlock(f"block is for chain {header.chain_id!r}, "
                               f"expected {self.genesis.chain_id!r}")
        if header.height != tip.height + 1:
            raise InvalidBlock(f"block height {header.height}, expected {tip.height + 1}")
        if header.prev_hash != tip.block_hash:
            raise InvalidBlock(f"block {header.height}: prev hash does not match the tip")
        if header.timestamp_ms < self._last_time_ms:
            raise InvalidBlock(f"block {header.height}: timestamp {header.timestamp_ms} ms is "
                               f"before the previous {self._last_time_ms} ms")
        if header.validator_set_hash != self.genesis.validator_set_hash:
            raise InvalidBlock(f"block {header.height}: unknown validator set hash")

    def check_block_txs(self, block: Block) -> CheckedTxs:
        """The stateless checks of `block`'s txs (InvalidBlock on the first fault).

        Tx count against the header, the batch checks of every tx at the
        block's height (decode, chain id, expiry, signature), the tx root,
        no tx twice, the block's size. Depends on nothing but the block and
        the chain id, so it may run ahead of `finalize_block`, in another
        thread (the batch kernel releases the GIL): `core/state/pipeline.py`.
        """
        header = block.header
        if len(block.txs) != header.tx_count:
            raise InvalidBlock(f"block {header.height}: tx count does not match its txs")
        # One batch call gives the stateless verdicts and the tx ids; the tx
        # root is then the Merkle root of those ids (as Block.check_tx_root).
        tx_ids: list[bytes] = []
        if block.txs:
            data, offsets = pack_txs([tx.encode() for tx in block.txs])
            codes, ids = accel.validate_batch(data, offsets, self._chain_id_bytes, header.height)
            tx_ids = [ids[i : i + HASH_BYTES] for i in range(0, len(ids), HASH_BYTES)]
            if accel.merkle_root(ids) != header.tx_root:
                raise InvalidBlock(f"block {header.height}: tx root does not match its txs")
            for index, code in enumerate(codes):
                if code != TX_OK:
                    raise InvalidBlock(f"block {header.height}: tx {index} fails its stateless "
                                       f"checks (code {code})")
        else:
            block.check_tx_root()
        try:
            block_bytes = block.encode()
        except BlockTooLarge as exc:
            raise InvalidBlock(f"block {header.height}: {exc}") from exc
        if len(set(tx_ids)) != len(tx_ids):
            raise InvalidBlock(f"block {header.height}: a tx appears twice")
        return CheckedTxs(block, tx_ids, block_bytes)

    def finalize_block(self, block: Block, checked: CheckedTxs | None = None) -> FinalizeResult:
        """Validate and execute `block` over committed state; keep the result pending.

        InvalidBlock (nothing pending, nothing stored) for a bad header, any
        fault `check_block_txs` finds, any tx failing admission, or a state
        root other than the one execution gives. `checked`, when given, is
        `check_block_txs(block)` for this very block object, run earlier; it
        is not repeated. A second call before `commit` replaces the pending
        result.
        """
        self._pending = None
        header = block.header
        self._check_header(header)
        if checked is None or checked.block is not block:
            checked = self.check_block_txs(block)
        tx_ids, block_bytes = checked.tx_ids, checked.block_bytes
        with self.store.reader() as view:
            invariant(view.last() == self._tip, "the store moved under the state machine")
            run = self._execute(view, block.txs, header.height, header.timestamp_ms,
                                skip_inadmissible=False)
        assert len(run.results) == len(block.txs)
        if header.state_root != run.app_hash:
            raise InvalidBlock(f"block {header.height}: state root does not match the state "
                               "after its txs")
        result = FinalizeResult(tuple(run.results), run.app_hash)
        commit = BlockCommit(
            height=header.height,
            block_hash=header.hash(),
            block_bytes=block_bytes,
            tx_ids=tx_ids,
            receipts_bytes=encode_receipts([r.code for r in run.results]),
            parent_app_hash=self._tip.app_hash,
            app_hash=run.app_hash,
            state_changes=run.changes,
            new_nodes=run.new_nodes,
        )
        self._pending = _Pending(block, commit, result)
        return result

    # --- ABCI: Commit ----------------------------------------------------------------

    def commit(self) -> int:
        """Make the pending block durable (one LMDB write txn); the new height."""
        pending = self._pending
        if pending is None:
            raise InvalidBlock("commit without a finalized block")
        self.store.commit_block(pending.commit)
        self._pending = None
        header = pending.block.header
        self._tip = ChainTip(self._tip.chain_id, self._tip.genesis_hash, header.height,
                             pending.commit.app_hash, pending.commit.block_hash)
        self._last_time_ms = header.timestamp_ms
        invariant(self.store.last() == self._tip, "the store's tip is not the committed block")
        return header.height

    # --- the single-validator producer -------------------------------------------------

    def build_block(self, txs: Iterable[Tx | bytes], timestamp_ms: int,
                    proposer: bytes) -> Block:
        """A valid next block of the admissible txs among `txs` (others dropped), in order.

        Does not change anything: the caller runs `finalize_block` and `commit`.
        """
        height = self._tip.height + 1
        timestamp_ms = max(timestamp_ms, self._last_time_ms)
        items = list(txs)
        candidates = [tx if isinstance(tx, Tx) else None for tx in items]
        raw = [tx.encode() if isinstance(tx, Tx) else bytes(tx) for tx in items]
        valid: list[Tx] = []
        if raw:
            data, offsets = pack_txs(raw)
            codes, _ = accel.validate_batch(data, offsets, self._chain_id_bytes, height)
            for code, tx, tx_bytes in zip(codes, candidates, raw, strict=True):
                if code == TX_OK:
                    valid.append(tx if tx is not None else decode_tx(tx_bytes))
        with self.store.reader() as view:
            run = self._execute(view, valid, height, timestamp_ms, skip_inadmissible=True)
        return make_block(self.genesis.chain_id, height, self._tip.block_hash, timestamp_ms,
                          proposer, run.txs, run.app_hash, self.genesis.validator_set_hash)

    # --- proofs ------------------------------------------------------------------------

    def prove(self, key: bytes) -> StateProof:
        """The committed value of `key` and its proof against the committed state root."""
        with self.store.reader() as view:
            tip = view.last()
            value = view.get_state(key)
            proof = StateTree(view, tip.app_hash).prove(key)
        return StateProof(tip.height, tip.app_hash, key, value, proof)

    def prove_account(self, address: bytes) -> StateProof:
        return self.prove(account_key(address))


def _amount_of(key: bytes, value: bytes | None) -> int:
    """The supply an entry holds: an account's balance, the fee pool; 0 otherwise."""
    if value is None:
        return 0
    if key[0] == TABLE_ACCOUNTS:
        return unpack_account(value)[0]
    if key == FEE_POOL_KEY:
        return decode_fee_pool(value)
    return 0

