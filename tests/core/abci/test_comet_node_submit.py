"""The CometBFT-engine node's submits, without CometBFT: what it forwards (a test hook
in place of CometBFT's RPC) and how it answers.

Submits that arrive together are checked in one batch on the application's thread and
forwarded together, in one batch envelope; a bad one among them is refused with its
code and left out; the same tx twice is admitted once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from app_chain import AppChain, forged
from chainmall.core.abci.app import Application
from chainmall.core.abci.envelope import decode_envelope, is_envelope
from chainmall.core.abci.server import AbciServer
from chainmall.core.errors import TX_OK, BadSignature, NodeStopping
from chainmall.core.node.cometbft_node import CometNode, CommitWatcher, forwarded_txs
from chainmall.core.store import Store

CHAIN_SETUP = AppChain("submit-test", 12)


class _Calls:
    """The application's batch checks, counted."""

    def __init__(self, app: Application) -> None:
        self.check, self.batches = app.check_txs, []
        app.check_txs = self.check_txs  # type: ignore[method-assign]

    def check_txs(self, wires: Sequence[bytes], *args: object, **kwargs: object) -> list:
        self.batches.append(len(wires))
        return self.check(wires, *args, **kwargs)


async def _submits_together(tmp_path: Path) -> tuple[list, list[list[bytes]], list[int],
                                                       list[bytes]]:
    forwarded: list[list[bytes]] = []
    with Store(tmp_path / "ledger") as store, ThreadPoolExecutor(1) as executor:
        app = Application(store, CHAIN_SETUP.genesis)
        calls = _Calls(app)
        server = AbciServer(app, executor=executor)
        node = CometNode(CommitWatcher(app), server, "http://127.0.0.1:9",
                         forward=lambda wires: forwarded.append(forwarded_txs(wires)))
        await node.start()
        try:
            good = [CHAIN_SETUP.transfer(key, 0) for key in CHAIN_SETUP.keys[:10]]
            bad = forged(CHAIN_SETUP.transfer(CHAIN_SETUP.keys[10], 0))
            wires = [*good[:5], bad, *good[5:], good[0]]
            answers = await asyncio.gather(*(node.submit(wire) for wire in wires))
        finally:
            await node.stop()
        return answers, forwarded, calls.batches, good


def test_submits_arriving_together_are_checked_and_forwarded_together(tmp_path: Path) -> None:
    answers, forwarded, batches, good = asyncio.run(_submits_together(tmp_path))
    assert [answer.code for answer in answers] == [TX_OK] * 5 + [BadSignature.code] \
        + [TX_OK] * 6
    assert answers[-1].log == "already admitted" and answers[-1].tx_id == answers[0].tx_id
    assert batches == [12]  # one batch of stateless checks for all of them
    assert len(forwarded) == 1 and len(forwarded[0]) == 1  # one envelope
    envelope = forwarded[0][0]
    assert is_envelope(envelope) and decode_envelope(envelope) == good


async def _submit_while_stopping(tmp_path: Path) -> int:
    with Store(tmp_path / "ledger") as store, ThreadPoolExecutor(1) as executor:
        app = Application(store, CHAIN_SETUP.genesis)
        node = CometNode(CommitWatcher(app), AbciServer(app, executor=executor),
                         "http://127.0.0.1:9", forward=lambda wires: None)
        await node.start()
        submit = asyncio.ensure_future(node.submit(CHAIN_SETUP.transfer(CHAIN_SETUP.keys[0], 0)))
        await asyncio.sleep(0)  # the submit is queued for its check, not checked yet
        await node.stop()
        return (await submit).code


def test_a_submit_queued_when_the_node_stops_is_answered(tmp_path: Path) -> None:
    assert asyncio.run(_submit_while_stopping(tmp_path)) == NodeStopping.code
