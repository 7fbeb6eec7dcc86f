"""An in-process chain with the mall and the trust rules: the mall harness plus trust txs.

`TrustChain` is `MallChain` (tests/core/mall/mall_chain.py) running both
modules, as `default_modules()` does, with builders for every trust payload
and small readers of trust records.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chainmall.core import constants as C
from chainmall.core.abci.app import Application, Module
from chainmall.core.genesis import (
    Genesis,
    MallParams,
    TrustParams,
    make_genesis,
    make_mall,
    make_trust,
)
from chainmall.core.keys import KeyPair
from chainmall.core.mall import install as mall_install
from chainmall.core.mall import install_queries as mall_queries
from chainmall.core.state.accounts import account_key, unpack_account
from chainmall.core.store import Store
from chainmall.core.trust import install, install_queries
from chainmall.core.trust import keys as trust_keys
from chainmall.core.trust.records import (
    decode_epoch,
    decode_order_trust,
    decode_product_stats,
    decode_reputation,
    decode_reward_account,
)
from chainmall.core.trust.reports import Filing, Verdict, decode_report
from chainmall.core.trust.reviews import ReplyDraft, ReviewDraft, TextPart, split_text
from chainmall.core.trust.rewards import Attestation
from mall_chain import CHAIN, GENESIS_TIME_MS, TEST_PARAMS, VALIDATOR, MallChain, key

TRUST_TEST_PARAMS = TrustParams(
    review_window_ms=7 * 86_400_000, half_life_blocks=100_000, epoch_ms=86_400_000,
    pool_share_bps=5_000, issuance_per_epoch=10_000, issuance_max=1_000_000,
    claim_epochs=4, point_value_unit=100, purchase_points_max=1_000, review_points=50,
    attest_points=10, attest_claims_max=3, report_deposit=2_000, report_seats=3,
    report_ruling_timeout_ms=3_600_000, report_rounds_max=2, fake_slash_bps=5_000,
    reporter_reward_bps=4_000, report_fee_bps=1_000, rank_sweep_per_block=16)


def trust_genesis(balances: dict[str, int], certifiers: tuple[str, ...] = ("assay-office",),
                  authorities: tuple[tuple[str, str, int], ...] = (("IT", "agenzia", 2_200),),
                  params: MallParams = TEST_PARAMS, trust: TrustParams = TRUST_TEST_PARAMS,
                  attesters: tuple[str, ...] = ("attester",)) -> Genesis:
    mall = make_mall([(key(name).address, name) for name in certifiers],
                     [(jurisdiction, key(name).address, rate)
                      for jurisdiction, name, rate in authorities], params)
    return make_genesis(CHAIN, [(key(name).address, amount) for name, amount in balances.items()],
                        [(VALIDATOR.public_key, 1)], genesis_time_ms=GENESIS_TIME_MS,
                        fee_min=1, mall=mall,
                        trust=make_trust([key(name).address for name in attesters], trust))


class TrustChain(MallChain):
    """A MallChain that runs the trust rules too."""

    def __init__(self, path: Path, genesis: Genesis, map_size_bytes: int = 1 << 30) -> None:
        # MallChain's attributes, with both modules installed (as default_modules does).
        self.genesis = genesis
        self.store = Store(path, map_size_bytes=map_size_bytes)
        self.app = Application(self.store, genesis, modules=[
            Module("mall", mall_install, mall_queries), Module("trust", install, install_queries)])
        self.machine = self.app.machine
        self.nonces: dict[bytes, int] = {}
        self.time_ms = genesis.genesis_time_ms

    # --- trust txs ----------------------------------------------------------------------

    def review(self, buyer: KeyPair, order_id: bytes, rating: int, text: str = "",
               version: int = 1) -> list[Any]:
        """REVIEW_ADD (and REVIEW_CONTINUE for the rest of a long text, as `version`)."""
        parts = split_text(text)
        declared = len(text.encode("utf-8"))
        txs = [self.tx(buyer, C.TX_TRUST_REVIEW_ADD,
                       ReviewDraft(order_id, rating, declared, parts[0]).encode())]
        return txs + [self.tx(buyer, C.TX_TRUST_REVIEW_CONTINUE,
                              TextPart(order_id, version, part).encode()) for part in parts[1:]]

    def review_raw(self, buyer: KeyPair, draft: ReviewDraft) -> Any:
        return self.tx(buyer, C.TX_TRUST_REVIEW_ADD, draft.encode())

    def continue_text(self, signer: KeyPair, order_id: bytes, target: int, part: bytes) -> Any:
        return self.tx(signer, C.TX_TRUST_REVIEW_CONTINUE,
                       TextPart(order_id, target, part).encode())

    def reply(self, merchant: KeyPair, order_id: bytes, text: str) -> list[Any]:
        parts = split_text(text)
        txs = [self.tx(merchant, C.TX_TRUST_REVIEW_REPLY,
                       ReplyDraft(order_id, len(text.encode()), parts[0]).encode())]
        return txs + [self.continue_text(merchant, order_id, 0, part) for part in parts[1:]]

    def report(self, reporter: KeyPair, merchant: bytes, orders: list[bytes],
               evidence: bytes = b"\x0e" * 32) -> Any:
        return self.tx(reporter, C.TX_TRUST_REPORT_FILE,
                       Filing(merchant, evidence, tuple(sorted(orders))).encode())

    def report_vote(self, arbitrator: KeyPair, report_id: bytes, round_number: int,
                    fake: bool) -> Any:
        return self.tx(arbitrator, C.TX_TRUST_REPORT_VOTE,
                       Verdict(report_id, round_number, int(fake)).encode())

    def claim(self, account: KeyPair) -> Any:
        return self.tx(account, C.TX_TRUST_REWARD_CLAIM, bytes([1]))

    def attest(self, attester: KeyPair, claims: list[tuple[bytes, int, bytes]]) -> Any:
        return self.tx(attester, C.TX_TRUST_REWARD_ATTEST, Attestation(tuple(claims)).encode())

    # --- reads ------------------------------------------------------------------------------

    def balance(self, who: KeyPair | bytes) -> int:
        address = who if isinstance(who, bytes) else who.address
        raw = self.get(account_key(address))
        return 0 if raw is None else unpack_account(raw)[0]

    def order_trust(self, order_id: bytes):
        return decode_order_trust(self.get(trust_keys.order(order_id)))

    def reputation(self, merchant: bytes):
        raw = self.get(trust_keys.merchant(merchant))
        return None if raw is None else decode_reputation(raw)

    def stats(self, product_id: bytes):
        raw = self.get(trust_keys.product(product_id))
        return None if raw is None else decode_product_stats(raw)

    def reward_account(self, address: bytes):
        raw = self.get(trust_keys.reward_account(address))
        return None if raw is None else decode_reward_account(raw)

    def epoch(self, number: int):
        raw = self.get(trust_keys.epoch(number))
        return None if raw is None else decode_epoch(raw)

    def issued(self) -> int:
        """Units issued so far (the total supply is the genesis total plus these)."""
        from chainmall.core.trust.records import decode_u64

        raw = self.get(trust_keys.META_ISSUED)
        return 0 if raw is None else decode_u64(raw, "issued")

    def report_record(self, report_id: bytes):
        return decode_report(self.get(trust_keys.report(report_id)))


def item_uri(label: str) -> str:
    return f"urn:epc:id:sgtin:8012345.000999.{label}"


def commission(chain: MallChain, merchant: KeyPair, uri: str) -> Any:
    """The merchant commissions one serialised item (it then holds it)."""
    from chainmall.core.mall.events import TraceEvent
    from chainmall.core.mall.vocab import ACTION_ADD, KIND_OBJECT

    event = TraceEvent(KIND_OBJECT, ACTION_ADD, chain.time_ms, 60, "commissioning", "active",
                       epcs=(uri,))
    return chain.record(merchant, event)


def sell(chain: TrustChain, sales: list[tuple[KeyPair, KeyPair, bytes, int]],
         confirm: bool = True, advance_ms: int = 1_000) -> list[bytes]:
    """Orders placed, delivered by hand-over to their buyers and confirmed, in four blocks:
    (merchant, buyer, product id, unit price) each; the order ids. Every tx must pass."""
    from mall_chain import ok

    labels = [f"{chain.time_ms}-{index}" for index in range(len(sales))]
    orders = [chain.order(buyer, product_id, 1, price) for _, buyer, product_id, price in sales]
    ok(chain.block([commission(chain, merchant, item_uri(label))
                    for (merchant, _, _, _), label in zip(sales, labels, strict=True)]
                   + orders, advance_ms))
    ids = [tx.tx_id for tx in orders]
    ok(chain.block([chain.propose(merchant, item_uri(label), buyer.address, order_id)
                    for (merchant, buyer, _, _), label, order_id
                    in zip(sales, labels, ids, strict=True)], advance_ms))
    ok(chain.block([chain.accept(buyer, item_uri(label), "accepting", "completeness_verified")
                    for (_, buyer, _, _), label in zip(sales, labels, strict=True)],
                   advance_ms))
    if confirm:
        ok(chain.block([chain.confirm(buyer, order_id)
                        for (_, buyer, _, _), order_id in zip(sales, ids, strict=True)],
                       advance_ms))
    return ids


def snapshot(chain: MallChain) -> dict[bytes, bytes]:
    """Every committed state entry."""
    with chain.store.reader() as view:
        return dict(view.state_items())


def refused(chain: TrustChain, tx: Any, code: int) -> None:
    """`tx` alone in a block fails with `code` and changes nothing but its sender's fee and
    nonce and the fee pool (and the trust rules' own per-block bookkeeping, none here)."""
    from chainmall.core.address import address_from_public_key
    from chainmall.core.state.accounts import FEE_POOL_KEY

    before = snapshot(chain)
    result = chain.block([tx])
    assert result.codes == [code], (result.codes, result.logs)
    after = snapshot(chain)
    sender = account_key(address_from_public_key(tx.sender))
    changed = {key for key in before.keys() | after.keys()
               if before.get(key) != after.get(key)} - {sender, FEE_POOL_KEY}
    assert not changed, sorted(key.hex()[:20] for key in changed)
