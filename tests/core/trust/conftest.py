"""Tests of the trust rules import their helpers (the mall's chain harness and the trust
chain built on it) from this folder and the mall's; `market` is a small shop shared by the
rule tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "mall"))
sys.path.insert(0, str(HERE))

from mall_chain import key, ok  # noqa: E402
from trust_chain import TrustChain, trust_genesis  # noqa: E402

NAMES = ["shop", "shop2", "alice", "bob", "carol", "dave", "erin", "attester", "reporter",
         "arb1", "arb2", "arb3", "arb4", "agenzia", "assay-office"]


@pytest.fixture
def market(tmp_path):
    """A chain with two merchants (each one listing), four arbitrators and funded buyers:
    (chain, keys by name, {"ring": product of shop, "chain": product of shop2})."""
    from chainmall.core.mall.vocab import ROLE_ARBITRATOR, ROLE_MERCHANT

    chain = TrustChain(tmp_path / "data", trust_genesis({name: 10**9 for name in NAMES}))
    k = {name: key(name) for name in NAMES}
    ok(chain.block([chain.register(k["shop"], ROLE_MERCHANT, 10_000, "IT", "Argenteria"),
                    chain.register(k["shop2"], ROLE_MERCHANT, 10_000, "IT", "Catene")]
                   + [chain.register(k[f"arb{i}"], ROLE_ARBITRATOR, 500, name=f"Arbitro {i}")
                      for i in range(1, 5)]))
    ring = chain.list_product(k["shop"], 20_000, 1_000, "Anello in argento 925",
                              "jewellery/rings")
    necklace = chain.list_product(k["shop2"], 5_000, 1_000, "Silver chain necklace",
                                  "jewellery/necklaces")
    ok(chain.block([ring, necklace]))
    yield chain, k, {"ring": ring.tx_id, "chain": necklace.tx_id}
    chain.close()
