"""An in-process mall chain for tests and benchmarks: sign, execute, commit, query, prove.

Runs the real `Application` with the mall module (its handlers, hook, supply
tables and query paths) over a real LMDB store, executing blocks as the
in-process engine does (`execute` then `commit`); keeps each key's next
nonce, advances block time, returns each block's per-tx codes and events, and
builds every mall payload from the codecs of `core/mall/`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chainmall.core import constants as C
from chainmall.core.abci.app import Application, Module, StateReader
from chainmall.core.abci.types import QueryRequest
from chainmall.core.address import address_from_public_key
from chainmall.core.constants import TX_TYPE_TRANSFER
from chainmall.core.genesis import Genesis, MallParams, make_genesis, make_mall
from chainmall.core.keys import KeyPair
from chainmall.core.mall import install, install_queries
from chainmall.core.mall.codec import NO_ID
from chainmall.core.mall.custody import Acceptance, HandoverRef, Proposal
from chainmall.core.mall.disputes import Evidence, Vote
from chainmall.core.mall.escrow import DeliveryNote
from chainmall.core.mall.events import ErrorDeclaration, TraceEvent
from chainmall.core.mall.keys import item_key
from chainmall.core.mall.order_record import OrderRef
from chainmall.core.mall.orders import Placement
from chainmall.core.mall.parties import Certification, PartyDetails, Unbond
from chainmall.core.mall.products import Listing, ProductRef, ProductUpdate
from chainmall.core.mall.tax import RateSetting
from chainmall.core.state.accounts import account_key, encode_transfer, unpack_account
from chainmall.core.state.machine import StateMachine, StateProof
from chainmall.core.state.root import decode_proof, verify_proof
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


def ok(result: BlockResult) -> None:
    """Every tx of the block succeeded (else: each code with its log)."""
    assert result.codes == [0] * len(result.codes), list(zip(result.codes, result.logs,
                                                             strict=True))


class MallChain:
    """A single-validator chain with the mall installed, driven block by block."""

    def __init__(self, path: Path, genesis: Genesis, map_size_bytes: int = 1 << 30) -> None:
        self.genesis = genesis
        self.store = Store(path, map_size_bytes=map_size_bytes)
        self.app = Application(self.store, genesis, modules=[
            Module("mall", install, install_queries)])
        self.machine: StateMachine = self.app.machine
        self.nonces: dict[bytes, int] = {}
        self.time_ms = genesis.genesis_time_ms

    def close(self) -> None:
        self.store.close()

    def tx(self, signer: KeyPair, tx_type: int, payload: bytes, fee: int = FEE) -> Tx:
        nonce = self.nonces.get(signer.public_key, 0)
        self.nonces[signer.public_key] = nonce + 1
        return sign_tx(signer, CHAIN, tx_type, nonce, fee, 2**63, payload)

    def resync_nonces(self) -> None:
        """Take every known key's next nonce from the committed state (after building txs
        only for their payloads, which advanced the local counters)."""
        with self.store.reader() as view:
            for public_key in list(self.nonces):
                raw = view.get_state(account_key(address_from_public_key(public_key)))
                self.nonces[public_key] = 0 if raw is None else unpack_account(raw)[1]

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

    # --- queries with proofs -------------------------------------------------------------

    def query(self, path: str, data: bytes) -> list[tuple[bytes, bytes | None]]:
        """`path` through the application, every entry's proof checked against the root."""
        result = self.app.query(QueryRequest(path, data, 0, True))
        assert result.code == 0, result.log
        assert result.root == self.root
        for entry in result.entries:
            assert verify_proof(result.root, entry.key, entry.value, decode_proof(entry.proof)), \
                f"entry {entry.key.hex()} does not prove against the root"
        return [(entry.key, entry.value) for entry in result.entries]

    # --- mall txs ---------------------------------------------------------------------------

    def register(self, signer: KeyPair, roles: int, bond: int = 0, jurisdiction: str = "",
                 name: str = "") -> Tx:
        details = PartyDetails(roles, bond, jurisdiction, name or "party", bytes(32))
        return self.tx(signer, C.TX_MALL_PARTY_REGISTER, details.encode())

    def update_party(self, signer: KeyPair, roles: int, bond_add: int = 0,
                     jurisdiction: str = "", name: str = "party") -> Tx:
        details = PartyDetails(roles, bond_add, jurisdiction, name, bytes(32))
        return self.tx(signer, C.TX_MALL_PARTY_UPDATE, details.encode())

    def unbond(self, signer: KeyPair, amount: int) -> Tx:
        return self.tx(signer, C.TX_MALL_PARTY_UNBOND, Unbond(amount).encode())

    def certify(self, certifier: KeyPair, merchant: bytes, brand: str) -> Tx:
        return self.tx(certifier, C.TX_MALL_CERTIFY, Certification(merchant, brand).encode())

    def revoke(self, certifier: KeyPair, merchant: bytes, brand: str) -> Tx:
        return self.tx(certifier, C.TX_MALL_REVOKE, Certification(merchant, brand).encode())

    def list_product(self, merchant: KeyPair, price: int, stock: int,
                     title: str = "Silver ring", category: str = "jewellery/rings") -> Tx:
        listing = Listing(price, stock, bytes(32), title, category)
        return self.tx(merchant, C.TX_MALL_PRODUCT_LIST, listing.encode())

    def update_product(self, merchant: KeyPair, product_id: bytes, price: int, stock: int) -> Tx:
        return self.tx(merchant, C.TX_MALL_PRODUCT_UPDATE,
                       ProductUpdate(product_id, price, stock, bytes(32)).encode())

    def delist(self, merchant: KeyPair, product_id: bytes) -> Tx:
        return self.tx(merchant, C.TX_MALL_PRODUCT_DELIST, ProductRef(product_id).encode())

    def record(self, signer: KeyPair, event: TraceEvent) -> Tx:
        return self.tx(signer, C.TX_MALL_TRACE_RECORD, event.encode())

    def declare(self, signer: KeyPair, declaration: ErrorDeclaration) -> Tx:
        return self.tx(signer, C.TX_MALL_TRACE_DECLARE_ERROR, declaration.encode())

    def propose(self, holder: KeyPair, uri: str, receiver: bytes, order_id: bytes = NO_ID) -> Tx:
        return self.tx(holder, C.TX_MALL_HANDOVER_PROPOSE,
                       Proposal(item_key(uri), receiver, order_id).encode())

    def accept(self, receiver: KeyPair, uri: str, biz_step: str = "receiving",
               disposition: str | None = "in_progress", read_point: str = "") -> Tx:
        acceptance = Acceptance(item_key(uri), self.time_ms, 60, biz_step, disposition,
                                read_point)
        return self.tx(receiver, C.TX_MALL_HANDOVER_ACCEPT, acceptance.encode())

    def reject(self, receiver: KeyPair, uri: str) -> Tx:
        return self.tx(receiver, C.TX_MALL_HANDOVER_REJECT,
                       HandoverRef(item_key(uri), receiver.address).encode())

    def cancel_handover(self, proposer: KeyPair, uri: str, receiver: bytes) -> Tx:
        return self.tx(proposer, C.TX_MALL_HANDOVER_CANCEL,
                       HandoverRef(item_key(uri), receiver).encode())

    def order(self, buyer: KeyPair, product_id: bytes, quantity: int, max_price: int,
              sealed: bytes = b"\x5a" * 60) -> Tx:
        return self.tx(buyer, C.TX_MALL_ORDER_PLACE,
                       Placement(product_id, quantity, max_price, sealed).encode())

    def cancel_order(self, merchant: KeyPair, order_id: bytes) -> Tx:
        return self.tx(merchant, C.TX_MALL_ORDER_CANCEL, OrderRef(order_id).encode())

    def deliver(self, carrier: KeyPair, order_id: bytes, read_point: str = "") -> Tx:
        note = DeliveryNote(order_id, self.time_ms, 60, read_point)
        return self.tx(carrier, C.TX_MALL_ESCROW_DELIVER, note.encode())

    def confirm(self, buyer: KeyPair, order_id: bytes) -> Tx:
        return self.tx(buyer, C.TX_MALL_ESCROW_CONFIRM, OrderRef(order_id).encode())

    def dispute(self, party: KeyPair, order_id: bytes, evidence: bytes = b"\xee" * 32) -> Tx:
        return self.tx(party, C.TX_MALL_DISPUTE_OPEN, Evidence(order_id, evidence).encode())

    def evidence(self, party: KeyPair, order_id: bytes, evidence: bytes) -> Tx:
        return self.tx(party, C.TX_MALL_DISPUTE_EVIDENCE, Evidence(order_id, evidence).encode())

    def vote(self, arbitrator: KeyPair, order_id: bytes, round_number: int,
             buyer_bps: int) -> Tx:
        return self.tx(arbitrator, C.TX_MALL_DISPUTE_VOTE,
                       Vote(order_id, round_number, buyer_bps).encode())

    def set_rate(self, authority: KeyPair, jurisdiction: str, rate_bps: int) -> Tx:
        return self.tx(authority, C.TX_MALL_TAX_RATE_SET,
                       RateSetting(jurisdiction, rate_bps).encode())
