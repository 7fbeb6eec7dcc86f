"""Transfers in the transfer kernel with the trust rules installed (a node's modules):
the flow-back observer changes nothing but the speed.

The trust rules observe TRANSFER (money from a merchant back to a buyer whose
order it released voids the order, core/trust/signals.py) with a watched
entry, `releases(sender, recipient)`: a transfer with that entry executes one
by one with the observer, the others in the kernel's runs. The same blocks go
to four ledgers with the mall and the trust rules: runs on the kernel, runs
on the pure-Python reference, no runs (every tx one by one), and a strict
replay of the first ledger's records. After a few sales have left releases
(merchant -> buyer) in the state, hypothesis draws blocks of transfers
(flow-backs among them, some twice in a block: the first deletes the entry
the second would see), orders and listings; results, records, state roots
and the stored state must be identical on every ledger.
"""

from __future__ import annotations

import shutil
from contextlib import ExitStack
from pathlib import Path

import pytest
from chainmall.core.block import decode_block
from chainmall.core.constants import TABLE_TRUST_RELEASES, TX_TYPE_TRANSFER
from chainmall.core.mall.vocab import ROLE_MERCHANT
from chainmall.core.state import transfers
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kernel_runs import KERNEL, CountingKernel, transfer_functions
from mall_chain import VALIDATOR, key, ok
from trust_chain import TrustChain, sell, trust_genesis

NAMES = ["shop", "shop2", "alice", "bob", "carol", "dave", "erin"]
SIGNERS = [key(name) for name in NAMES] + [key("fresh-trust")]  # the last: no account
RELEASES = bytes([TABLE_TRUST_RELEASES])
# Per drawn block: (txs the kernel ran, flow-backs: releases entries the block removed).
SEEN: list[tuple[int, int]] = []


COUNTING = CountingKernel()


def setup_market(chain: TrustChain) -> dict[str, bytes]:
    """Two merchants with a listing each, and five sales released to their buyers: the
    releases entries a flow-back finds."""
    k = {name: key(name) for name in NAMES}
    ok(chain.block([chain.register(k["shop"], ROLE_MERCHANT, 10_000, "IT", "Argenteria"),
                    chain.register(k["shop2"], ROLE_MERCHANT, 10_000, "IT", "Catene")]))
    ring = chain.list_product(k["shop"], 20_000, 1_000, "Anello", "jewellery/rings")
    necklace = chain.list_product(k["shop2"], 5_000, 1_000, "Collana", "jewellery/necklaces")
    ok(chain.block([ring, necklace]))
    sell(chain, [(k["shop"], k["alice"], ring.tx_id, 20_000),
                 (k["shop"], k["bob"], ring.tx_id, 20_000),
                 (k["shop"], k["carol"], ring.tx_id, 20_000),
                 (k["shop2"], k["dave"], necklace.tx_id, 5_000),
                 (k["shop2"], k["alice"], necklace.tx_id, 5_000)])
    return {"ring": ring.tx_id, "necklace": necklace.tx_id}


def releases_count(chain: TrustChain) -> int:
    with chain.store.reader() as view:
        return sum(1 for _ in view.state_items(RELEASES))


def stored(chain: TrustChain) -> tuple:
    with chain.store.reader() as view:
        height = chain.machine.info()[0]
        return tuple(view.state_items()), chain.machine.info(), view.receipts(height)


# A transfer: (signer, recipient, amount); merchants paying buyers are the flow-backs.
transfer_steps = st.tuples(st.just("transfer"), st.sampled_from([0, 0, 1, 2, 3, 5, 7]),
                           st.integers(0, len(SIGNERS) - 1),
                           st.sampled_from([1, 0, 500, 2_000, 10**12]))
steps = st.one_of(
    transfer_steps, transfer_steps, transfer_steps,
    st.tuples(st.just("order"), st.sampled_from([2, 3, 4, 6]), st.sampled_from([0, 1]),
              st.just(0)),
    st.tuples(st.just("list"), st.sampled_from([0, 1]), st.just(0), st.just(0)),
)


def make_tx(chain: TrustChain, step: tuple, products: dict[str, bytes]):
    kind, signer, to, amount = step
    if kind == "transfer":
        return chain.transfer(SIGNERS[signer], SIGNERS[to].address, amount)
    if kind == "order":
        product = products["ring" if to == 0 else "necklace"]
        return chain.order(SIGNERS[signer], product, 1, 20_000)
    return chain.list_product(SIGNERS[signer], 1_000, 3, "Altro", "jewellery/other")


GENESIS = trust_genesis({name: 10**9 for name in NAMES})


@pytest.fixture(scope="module")
def market(tmp_path_factory) -> tuple[Path, dict[str, bytes], int]:
    """The market after its sales, made once (with runs and without: the same state), for
    the drawn blocks to start from copies of: (its directory, products, clock)."""
    directory = tmp_path_factory.mktemp("market")
    made = []
    for runs in (True, False):
        chain = TrustChain(directory / f"runs-{runs}", GENESIS)
        chain.machine.transfer_runs = runs
        try:
            products = setup_market(chain)
            made.append((stored(chain), chain.time_ms))
        finally:
            chain.close()
    assert made[0] == made[1]
    return directory / "runs-True", products, made[0][1]


def open_copy(market: tuple[Path, dict[str, bytes], int], target: Path) -> TrustChain:
    source, _, time_ms = market
    shutil.copytree(source, target)
    chain = TrustChain(target, GENESIS)
    chain.time_ms = time_ms
    chain.nonces = {signer.public_key: 0 for signer in SIGNERS}
    chain.resync_nonces()
    return chain


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(blocks=st.lists(st.lists(steps, min_size=1, max_size=14), min_size=1, max_size=3))
def test_transfers_with_the_trust_rules_execute_the_same_on_every_path(tmp_path_factory, market,
                                                                       blocks) -> None:
    directory: Path = tmp_path_factory.mktemp("runs-trust")
    products = market[1]
    with ExitStack() as stack:
        chains = {}
        for name in ("kernel", "reference", "one-by-one", "replay"):
            chain = open_copy(market, directory / name)
            stack.callback(chain.close)
            chains[name] = chain
        chains["one-by-one"].machine.transfer_runs = False
        impls = {"kernel": COUNTING, "reference": transfers, "one-by-one": KERNEL}
        first = chains["kernel"]
        assert releases_count(first) == 5
        for block_steps in blocks:
            txs = [make_tx(first, step, products) for step in block_steps]
            height = first.machine.info()[0] + 1
            time_ms = first.time_ms + 1_000
            results = {}
            before, releases_before = COUNTING.executed, releases_count(first)
            for name, impl in impls.items():
                with ExitStack() as inner:
                    inner.enter_context(transfer_functions(impl))
                    chain = chains[name]
                    results[name] = chain.machine.execute(height, time_ms,
                                                          VALIDATOR.public_key, txs)
                    chain.machine.commit()
                    chain.time_ms = time_ms
            with ExitStack() as inner:
                inner.enter_context(transfer_functions(KERNEL))
                replay = chains["replay"]
                replayed = replay.machine.finalize_block(
                    decode_block(results["kernel"].block.encode()))
                replay.machine.commit()
                replay.time_ms = time_ms
            expected = results["one-by-one"]
            for name, result in results.items():
                assert result.tx_results == expected.tx_results, name
                assert result.events == expected.events, name
                assert result.block.encode() == expected.block.encode(), name
            assert replayed.app_hash == expected.app_hash
            assert replayed.tx_results == tuple(r for r in expected.tx_results if r.recorded)
            states = {name: stored(chain) for name, chain in chains.items()}
            assert all(state == states["one-by-one"] for state in states.values())
            SEEN.append((COUNTING.executed - before, releases_before - releases_count(first)))


def test_the_blocks_had_flow_backs_beside_kernel_runs() -> None:
    """Not vacuous: some drawn blocks voided orders by flow-back (their transfers went one
    by one) while the kernel ran other transfers of the same block."""
    if not SEEN:
        pytest.skip("runs after the test above (alone it has nothing to look at)")
    assert sum(1 for executed, flowbacks in SEEN if executed and flowbacks) >= 2


def test_a_flow_back_leaves_the_kernel_for_one_transfer(tmp_path, market) -> None:
    """One block: transfers around a flow-back. The flow-back voids the order (its entry
    goes); the second payment to the same buyer, and every other transfer, run in the
    kernel."""
    chain = open_copy(market, tmp_path / "data")
    try:
        shop, alice, bob = key("shop"), key("alice"), key("bob")
        executed_before = COUNTING.executed
        with ExitStack() as inner:
            inner.enter_context(transfer_functions(COUNTING))
            txs = [chain.transfer(bob, alice.address, 5),
                   chain.transfer(shop, alice.address, 700),  # the flow-back
                   chain.transfer(shop, alice.address, 700),  # the entry is gone
                   chain.transfer(alice, shop.address, 5)]
            ok(chain.block(txs))
        assert COUNTING.executed - executed_before == 3
        assert releases_count(chain) == 4
        with chain.store.reader() as view:
            assert view.get_state(RELEASES + shop.address + alice.address) is None
    finally:
        chain.close()


def test_the_trust_rules_watch_their_releases() -> None:
    """What makes the above hold: the flow-back observer is registered with its watch."""
    from chainmall.core.trust import keys
    from chainmall.core.trust.install import WATCHES

    assert {TX_TYPE_TRANSFER: keys.releases_prefix()} == WATCHES
    assert keys.releases(b"m" * 20, b"b" * 20) == keys.releases_prefix() + b"m" * 20 + b"b" * 20
