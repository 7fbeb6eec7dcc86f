"""The in-process single-validator engine: one block, from txs to a durable commit.

Drives the ABCI `Application` the way a consensus engine would, for a chain
whose only validator is this node: FinalizeBlock with the block's height,
time and txs; the validator's signature over the record's hash
(`commit_sign_bytes`) as the block's commit certificate (`attach_commit`);
Commit. Then it reads the committed block back and checks it is the one it
signed. Synchronous and CPU-bound: the producer runs it in a worker thread.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..abci.app import Application
from ..abci.types import BlockRequest, FinalizeBlockResult, QueryRequest, validator_address
from ..block import Block, CommitCert, CommitSig, commit_sign_bytes
from ..errors import InvalidConfig, StorageError
from ..keys import KeyPair
from ..tx import Tx

_U64 = struct.Struct(">Q")
COMMIT_ROUND = 0  # one validator: every block is decided in round 0


@dataclass(frozen=True, slots=True)
class ProducedBlock:
    """A committed block: the stored record (with its certificate), the FinalizeBlock result
    (one entry per requested tx, in request order), the receipt of each recorded tx, how
    long execution and the commit took, and the state entries the block changed (key ->
    new value, None: deleted; what the mempool's recheck needs of the new state)."""

    block: Block
    result: FinalizeBlockResult
    receipts: tuple[int, ...]
    finalize_ms: float
    commit_ms: float
    changes: Mapping[bytes, bytes | None] = field(default_factory=dict)


class SingleValidatorEngine:
    """Makes blocks for a chain whose genesis names exactly one validator: `validator`."""

    def __init__(self, app: Application, validator: KeyPair) -> None:
        validators = app.genesis.validators
        if len(validators) != 1:
            raise InvalidConfig(f"the in-process engine runs a single-validator chain; "
                                f"genesis.json names {len(validators)} validators")
        if validators[0].public_key != validator.public_key:
            raise InvalidConfig(f"key {validator.public_key.hex()} is not genesis.json's "
                                f"validator {validators[0].public_key.hex()}")
        self.app = app
        self._key = validator
        self._validator_index = 0
        self._proposer = validator_address(validator.public_key)
        self._chain_id = app.genesis.chain_id

    @property
    def public_key(self) -> bytes:
        """The validator's public key."""
        return self._key.public_key

    def make_block(self, txs: Sequence[bytes], now_ms: int,
                   decoded: Sequence[Tx] | None = None) -> ProducedBlock:
        """Execute, sign and commit the next block of `txs` (raw, in order) at wall-clock
        time `now_ms` (the block time never goes below the previous block's); `decoded`,
        when given, is `txs` decoded already (the mempool's), not decoded again."""
        app = self.app
        height = app.info().last_block_height + 1
        time_ms = max(now_ms, app.machine.last_time_ms)
        started = time.perf_counter()
        result = app.finalize_block(BlockRequest(height, time_ms, tuple(txs), self._proposer),
                                    decoded)
        signature = self._key.sign(commit_sign_bytes(self._chain_id, height, COMMIT_ROUND,
                                                     result.block_hash))
        commit = CommitCert(height, COMMIT_ROUND, result.block_hash,
                            (CommitSig(self._validator_index, signature),))
        block = app.attach_commit(commit)
        changes = app.machine.pending_changes  # a view that outlives the commit
        finalized = time.perf_counter()
        app.commit()
        committed = time.perf_counter()
        self._read_back(height, block)
        results = result.tx_results
        if len(results) == len(block.txs):  # every tx recorded, in request order
            receipts = tuple(r.code for r in results)
        else:
            by_id = {r.tx_id: r.code for r in results}
            receipts = tuple(by_id[tx.tx_id] for tx in block.txs)
        return ProducedBlock(block, result, receipts, (finalized - started) * 1000.0,
                             (committed - finalized) * 1000.0, changes)

    def _read_back(self, height: int, block: Block) -> None:
        """StorageError unless the committed block, as stored, is byte for byte the block
        just signed (its encoding is kept from execution: no decode of the stored copy)."""
        raw = self.app.query(QueryRequest("/block", _U64.pack(height))).value
        if not raw:
            raise StorageError(f"block {height} is not stored after its commit")
        if raw != block.encode():
            raise StorageError(f"the stored block {height} is not the block just committed")
