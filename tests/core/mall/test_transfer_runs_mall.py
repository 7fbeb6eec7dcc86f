"""Transfers interleaved with mall txs in one block: the transfer kernel's runs change
nothing but the speed.

The same blocks go to four ledgers with the mall installed: runs on the
kernel, runs on the pure-Python reference (core/state/transfers.py), no runs
(every tx one by one), and a replay of the first ledger's records (strict,
through `decode_block` and `finalize_block`, as an import does). The blocks
mix transfers (that pass, that fail, that create accounts, from accounts
created in the same block) with mall txs that move balances into bonds and
escrows, in an order hypothesis draws; results, records, state roots and
the stored state must be identical, and the machine's supply check runs on
every block of every ledger.
"""

from __future__ import annotations

import dataclasses
from contextlib import ExitStack
from pathlib import Path

import pytest
from chainmall.core.block import decode_block
from chainmall.core.constants import TX_TYPE_TRANSFER
from chainmall.core.keys import KeyPair
from chainmall.core.mall.vocab import ROLE_MERCHANT
from chainmall.core.state import transfers
from chainmall.core.tx import Tx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kernel_runs import KERNEL, CountingKernel, transfer_functions
from mall_chain import VALIDATOR, MallChain, key, mall_genesis

NAMES = ("merchant", "buyer", "alice", "bob")
FRESH = [key(f"fresh-{n}") for n in range(3)]  # no account at genesis
BALANCES = {"merchant": 10_000, "buyer": 6_000, "alice": 10**6, "bob": 3_000}


COUNTING = CountingKernel()
# Per drawn block: (txs executed in runs, mall txs that passed).
MIXED: list[tuple[int, int]] = []


@dataclasses.dataclass(frozen=True)
class Step:
    """One tx: kind ("transfer", "order", "register", "list"), signer, recipient (for an
    order: which listing), amount (bond, price)."""

    kind: str
    signer: int  # index into SIGNERS
    to: int  # index into SIGNERS
    amount: int


SIGNERS: list[KeyPair] = [key(name) for name in NAMES] + FRESH
transfer_steps = st.builds(Step, st.just("transfer"), st.integers(0, len(SIGNERS) - 1),
                            st.integers(0, len(SIGNERS) - 1),
                            st.sampled_from([1, 0, 700, 2_500, 5_000, 20_000]))
steps = st.one_of(
    transfer_steps, transfer_steps, transfer_steps,
    st.builds(Step, st.just("order"), st.sampled_from([1, 2, 4, 5]), st.integers(0, 3),
              st.just(0)),
    st.builds(Step, st.just("register"), st.sampled_from([3, 4, 5, 6]), st.just(0),
              st.sampled_from([1_000, 2_000])),
    st.builds(Step, st.just("list"), st.sampled_from([0, 4, 5]), st.just(0),
              st.sampled_from([500, 1_000])),
)


def make_tx(chain: MallChain, step: Step, products: list[bytes]) -> Tx:
    signer = SIGNERS[step.signer]
    if step.kind == "transfer":
        return chain.transfer(signer, SIGNERS[step.to].address, step.amount)
    if step.kind == "order":
        return chain.order(signer, products[step.to % len(products)], 1, 1_000)
    if step.kind == "register":
        return chain.register(signer, ROLE_MERCHANT, step.amount, "IT")
    listing = chain.list_product(signer, step.amount, 3)
    products.append(listing.tx_id)  # later orders may buy it (if the listing succeeds)
    return listing


def execute(chain: MallChain, height: int, time_ms: int, txs: list[Tx]):
    result = chain.machine.execute(height, time_ms, VALIDATOR.public_key, txs)
    chain.machine.commit()
    return result


def stored(chain: MallChain) -> tuple:
    with chain.store.reader() as view:
        height = chain.machine.info()[0]
        return tuple(view.state_items()), chain.machine.info(), view.receipts(height)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(blocks=st.lists(st.lists(steps, min_size=1, max_size=12), min_size=1, max_size=3))
def test_transfers_between_mall_txs_execute_the_same_on_every_path(tmp_path_factory,
                                                                     blocks) -> None:
    directory: Path = tmp_path_factory.mktemp("runs-mall")
    genesis = mall_genesis(BALANCES)
    with ExitStack() as stack:
        chains = {}
        for name in ("kernel", "reference", "one-by-one", "replay"):
            chain = MallChain(directory / name, genesis)
            stack.callback(chain.close)
            chains[name] = chain
        chains["one-by-one"].machine.transfer_runs = False
        impls = {"kernel": COUNTING, "reference": transfers, "one-by-one": KERNEL}
        # A merchant with a listing, so orders have something to buy.
        first = chains["kernel"]
        setup = [[first.register(key("merchant"), ROLE_MERCHANT, 1_000, "IT")]]
        setup.append([first.list_product(key("merchant"), 1_000, 10)])
        products = [setup[1][0].tx_id]
        planned = [*setup, *[[make_tx(first, step, products) for step in block]
                             for block in blocks]]
        for height, txs in enumerate(planned, start=1):
            time_ms = genesis.genesis_time_ms + 1_000 * height
            results = {}
            before = COUNTING.executed
            for name, impl in impls.items():
                with transfer_functions(impl):
                    results[name] = execute(chains[name], height, time_ms, txs)
            with transfer_functions(KERNEL):
                record = decode_block(results["kernel"].block.encode())
                replayed = chains["replay"].machine.finalize_block(record)
                chains["replay"].machine.commit()
            expected = results["one-by-one"]
            for name, result in results.items():
                assert result.tx_results == expected.tx_results, name
                assert result.block.encode() == expected.block.encode(), name
            assert replayed.app_hash == expected.app_hash
            if height > len(setup):
                MIXED.append((COUNTING.executed - before, sum(
                    1 for tx, result in zip(txs, expected.tx_results, strict=True)
                    if result.code == 0 and tx.tx_type != TX_TYPE_TRANSFER)))
            states = {name: stored(chain) for name, chain in chains.items()}
            assert all(state == states["one-by-one"] for state in states.values())


def test_the_mixed_blocks_ran_transfers_in_the_kernel_between_mall_txs() -> None:
    """Not vacuous: many blocks above had both transfers run by the kernel and mall txs
    that passed."""
    if not MIXED:
        pytest.skip("runs after the test above (alone it has nothing to look at)")
    assert sum(1 for runs, mall in MIXED if runs and mall) >= len(MIXED) // 5
