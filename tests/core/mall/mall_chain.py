"""An in-process mall chain for tests and benchmarks: sign, execute, commit, prove.

Drives the real `StateMachine` with the mall installed, over a real LMDB
store, as the in-process engine does (`execute` then `commit`); keeps each
key's next nonce, advances block time, and returns each block's per-tx codes
and events.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chainmall.core.abci.app import StateReader
from chainmall.core.constants import TX_TYPE_TRANSFER
from chainmall.core.genesis import Genesis, MallParams, make_genesis, make_mall
from chainmall.core.keys import KeyPair
from chainmall.core.mall import install
from chainmall.core.state.accounts import encode_transfer
from chainmall.core.state.machine import StateMachine, StateProof
from chainmall.core.store import Store
from chainmall.core.tx import Tx, sign_tx

CHAIN = "mall-test"
FEE = 1
GENESIS_TIME_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
VALIDATOR = KeyPair.from_seed(b"V" * 32)


def key(name: str) -> KeyPair:
    """A deterministic key per name."""
    return KeyPair.from_seed(name.encode().ljust(32, b".")[:32])


TEST_PARAMS = MallParams(
    merchant_bond_min=1_000, arbitrator_bond_min=500, commission_bps=100,
    tax_rate_max_bps=3_000, ship_timeout_ms=3_600_000, delivery_timeout_ms=7_200_000,
    confirm_timeout_ms=3_600_000, ruling_timeout_ms=1_800_000, panel_threshold=50_000,
    arbitration_fee_bps=300, slash_bps=2_000, dispute_rounds_max=3,
    fallback_buyer_bps=10_000)


def mall_genesis(balances: dict[str, int], certifiers: tuple[str, ...] = ("assay-office",),
                 authorities: tuple[tuple[str, str, int], ...] = (("IT", "agenzia", 2_200),),
                 params: MallParams = TEST_PARAMS) -> Genesis:
    mall = make_mall([(key(name).address, name) for name in certifiers],
                     [(jurisdiction, key(name).address, rate)
                      for jurisdiction, name, rate in authorities], params)
    return make_genesis(CHAIN, [(key(name).address, amount) for name, amount in balances.items()],
                        [(VALIDATOR.public_key, 1)], genesis_time_ms=GENESIS_TIME_MS,
                        fee_min=FEE, mall=mall)


@dataclass(frozen=True, slots=True)
class BlockResult:
    height: int
    time_ms: int
    codes: list[int]
    logs: list[str]
    events: list[list[Any]]
    block_events: list[Any]


class MallChain:
    """A single-validator chain with the mall installed, driven block by block."""

    def __init__(self, path: Path, genesis: Genesis, map_size_bytes: int = 1 << 30) -> None:
        self.genesis = genesis
        self.store = Store(path, map_size_bytes=map_size_bytes)
        self.machine = StateMachine(self.store, genesis)
        install(self.machine, genesis)
        self.nonces: dict[bytes, int] = {}
        self.time_ms = genesis.genesis_time_ms

    def close(self) -> None:
        self.store.close()

    def tx(self, signer: KeyPair, tx_type: int, payload: bytes, fee: int = FEE) -> Tx:
        nonce = self.nonces.get(signer.public_key, 0)
        self.nonces[signer.public_key] = nonce + 1
        return sign_tx(signer, CHAIN, tx_type, nonce, fee, 2**63, payload)

    def transfer(self, signer: KeyPair, to: bytes, amount: int) -> Tx:
        return self.tx(signer, TX_TYPE_TRANSFER, encode_transfer(to, amount))

    def block(self, txs: list[Tx], advance_ms: int = 1_000) -> BlockResult:
        """Execute and commit a block of `txs` at the clock + advance_ms."""
        self.time_ms += advance_ms
        height = self.machine.info()[0] + 1
        result = self.machine.execute(height, self.time_ms, VALIDATOR.public_key, txs)
        assert all(r.recorded for r in result.tx_results), \
            [r.log for r in result.tx_results if not r.recorded]
        self.machine.commit()
        return BlockResult(height, self.time_ms, [r.code for r in result.tx_results],
                           [r.log for r in result.tx_results],
                           [list(r.events) for r in result.tx_results], list(result.events))

    def run(self, signer: KeyPair, tx_type: int, payload: bytes,
            advance_ms: int = 1_000) -> int:
        """One tx in its own block; its result code."""
        return self.block([self.tx(signer, tx_type, payload)], advance_ms).codes[0]

    def get(self, key_bytes: bytes) -> bytes | None:
        with self.store.reader() as view:
            return view.get_state(key_bytes)

    @contextmanager
    def reader(self) -> Iterator[StateReader]:
        """Committed state at the tip, as query handlers read it (get / scan)."""
        with self.store.reader() as view:
            yield StateReader(view)

    def total_supply(self) -> int:
        """Balances + fee pool + party bonds + escrows at the tip."""
        supply = self.machine._supply  # the registered supply functions
        total = 0
        with self.store.reader() as view:
            for key, value in view.state_items():
                amount_of = supply.get(key[0])
                total += 0 if amount_of is None else amount_of(key, value)
        return total

    def prove(self, key_bytes: bytes) -> StateProof:
        return self.machine.prove(key_bytes)

    @property
    def root(self) -> bytes:
        return self.machine.info()[1]
