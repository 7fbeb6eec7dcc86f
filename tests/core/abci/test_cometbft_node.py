"""A real CometBFT v0.38.26 validator in front of the ABCI server and a key-value app.

Proves, on 127.0.0.1 with free ports: the handshake (Info, then InitChain at
height 0 with the genesis chain id, validators and app state), txs sent
through CometBFT's RPC `broadcast_tx_sync` committed through FinalizeBlock and
Commit, Query through `abci_query`, and the restart contract of
docs/cometbft.md: Info returns the last committed height and app hash, an app
at the same height gets no replay, an app one or two blocks behind gets those
blocks replayed, an app at height 0 gets InitChain and every block, and an app
ahead of the block store or with another app hash at the same height makes
CometBFT refuse to start. An application
failure in a block call stops the server and then CometBFT.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from abci_harness import CometNode, ServerThread, cometbft_binary, poll
from abci_kv_app import BAD_TX_CODE, KvApp, Snapshot, state_hash
from chainmall.core.abci import convert
from chainmall.core.abci.types import ProvenEntry, ValidatorUpdate
from chainmall.core.errors import AbciAppFailed

pytestmark = pytest.mark.slow


@contextlib.contextmanager
def running(app: KvApp, node_home: Path | None, address: str, *,
            node: CometNode | None = None,
            app_state: dict[str, str] | None = None) -> Iterator[tuple[ServerThread, CometNode]]:
    """The app served at `address` and a CometBFT node in front of it; both stopped after
    (CometBFT first, as the notes require). A new node is made in `node_home`."""
    executor = ThreadPoolExecutor(1, thread_name_prefix="abci-app")
    server = ServerThread(app, address, executor)
    try:
        if node is None:
            assert node_home is not None
            node = CometNode(cometbft_binary(), node_home, server.address, app_state)
        node.start()
        try:
            yield server, node
        except BaseException:
            print(f"--- cometbft log ---\n{node.log_tail(60)}")
            raise
        finally:
            node.stop()
    finally:
        server.close()
        executor.shutdown()


def wait_ready(node: CometNode) -> None:
    """CometBFT serves RPC only after its ABCI handshake (Info, InitChain, replay) is done."""
    poll(lambda: node.rpc_ready() or not node.alive(), "CometBFT's RPC")
    assert node.alive(), node.log_tail()


def submit(node: CometNode, tx: bytes) -> dict:
    return node.rpc("broadcast_tx_sync", tx="0x" + tx.hex())


def committed_height(node: CometNode, tx: bytes) -> int:
    """The height of the block holding `tx`, once CometBFT has indexed it (0 until then)."""
    try:
        found = node.rpc("tx", hash="0x" + hashlib.sha256(tx).hexdigest())
    except AssertionError:  # "tx not found" until it is committed
        return 0
    assert found["tx_result"]["code"] == 0, found
    return int(found["height"])


def wait_committed(node: CometNode, tx: bytes) -> int:
    return poll(lambda: committed_height(node, tx), f"tx {tx!r} to be committed")


def wait_idle(app: KvApp, node: CometNode, above: int) -> int:
    """After a block that changed the app hash, CometBFT makes one more block to commit that
    hash, then none (create_empty_blocks = false). Wait until the app has committed it."""
    def settled() -> int:
        height = node.height()
        return height if height > above and app.saved.height == height else 0
    return poll(settled, f"a committed block above {above}")


def rewound(app: KvApp, height: int) -> KvApp:
    """A fresh app whose durable state is `app`'s at `height` (as if it crashed there)."""
    saved = app.history[height]
    return KvApp(saved=saved, history={h: s for h, s in app.history.items() if h <= height})


def test_handshake_txs_and_query(tmp_path: Path) -> None:
    app = KvApp()
    with running(app, tmp_path / "node", "tcp://127.0.0.1:0",
                 app_state={"greeting": "hello"}) as (server, node):
        wait_ready(node)
        assert app.names()[:2] == ["info", "init_chain"]
        request = app.init_chain_requests[0]
        genesis_validator = node.genesis["validators"][0]
        assert request.chain_id == node.genesis["chain_id"]
        assert request.validators == (ValidatorUpdate(
            base64.b64decode(genesis_validator["pub_key"]["value"]),
            int(genesis_validator["power"])),)
        assert json.loads(request.app_state_bytes) == {"greeting": "hello"}
        assert server.server.connection_count == 4

        txs = [b"k%d=v%d" % (i, i) for i in range(5)]
        for tx in txs:
            accepted = submit(node, tx)
            assert accepted["code"] == 0
            assert bytes.fromhex(accepted["hash"]) == hashlib.sha256(tx).digest()
            assert bytes.fromhex(accepted["data"]) == hashlib.sha256(tx).digest()  # tx id
        refused = submit(node, b"no equals sign")
        assert refused["code"] == BAD_TX_CODE and refused["log"] == "not key=value"
        heights = [wait_committed(node, tx) for tx in txs]
        tip = wait_idle(app, node, max(heights))

        assert app.entries == {b"greeting": b"hello",
                               **{b"k%d" % i: b"v%d" % i for i in range(5)}}
        assert app.names().count("commit") == tip
        for height in range(1, tip + 1):  # every block went FinalizeBlock -> Commit
            assert [n for n, h in app.calls if h == height and n in ("finalize_block", "commit")] \
                == ["finalize_block", "commit"]
        # The header after a block carries the app hash FinalizeBlock returned for it,
        # and the app saw the header's time, to the millisecond.
        block = node.rpc("block", height=tip)["block"]
        assert bytes.fromhex(block["header"]["app_hash"]) == app.history[tip - 1].app_hash
        assert app.blocks[tip].hash == bytes.fromhex(node.rpc("block", height=tip)
                                                     ["block_id"]["hash"])
        results = node.rpc("block_results", height=heights[0])
        assert results["finalize_block_events"][0]["type"] == "block"
        assert results["txs_results"][0]["events"][0]["attributes"][0] == \
            {"key": "key", "value": "k0", "index": True}

        answer = node.rpc("abci_query", path='"/key"', data="0x" + b"k3".hex(), prove="true")
        response = answer["response"]
        assert base64.b64decode(response["value"]) == b"v3"
        assert int(response["height"]) == tip
        [op] = response["proofOps"]["ops"]
        assert op["type"] == "chainmall/entry"
        assert convert.decode_query_entry(base64.b64decode(op["key"]),
                                          base64.b64decode(op["data"])) == \
            ProvenEntry(b"k3", b"v3", b"proof:k3")
        assert json.loads(response["info"]) == {"root": app.saved.app_hash.hex()}


def test_restart_contract(tmp_path: Path) -> None:
    home = tmp_path / "node"
    socket_dir = tempfile.mkdtemp(prefix="cm-abci-")  # short: sun_path is 108 bytes
    address = f"unix://{socket_dir}/abci.sock"

    # 1. A fresh chain with one tx.
    first = KvApp()
    with running(first, home, address) as (_, node):
        wait_ready(node)
        submit(node, b"a=1")
        tip = wait_idle(first, node, wait_committed(node, b"a=1"))
    assert first.saved.height == tip

    # 2. Same height: Info says so, and nothing is replayed.
    same = rewound(first, tip)
    with running(same, None, address, node=node) as _:
        wait_ready(node)
        assert same.names()[0] == "info"
        assert not {"init_chain", "finalize_block"} & set(same.names())
        submit(node, b"b=2")
        tip = wait_idle(same, node, wait_committed(node, b"b=2"))
    assert same.entries == {b"a": b"1", b"b": b"2"}

    # 3. One block behind (the empty block that committed b=2's app hash): replayed.
    behind = rewound(same, tip - 1)
    with running(behind, None, address, node=node) as _:
        wait_ready(node)
        assert behind.names()[:3] == ["info", "finalize_block", "commit"]
        assert behind.calls[1] == ("finalize_block", tip)
        assert behind.saved == same.saved
        submit(node, b"c=3")
        c_height = wait_committed(node, b"c=3")
        tip = wait_idle(behind, node, c_height)

    # 4. Two blocks behind: the block with c=3 runs again, then the one after it.
    two_behind = rewound(behind, tip - 2)
    with running(two_behind, None, address, node=node) as _:
        wait_ready(node)
        replayed = [h for n, h in two_behind.calls if n == "finalize_block"]
        assert replayed == [tip - 1, tip]
        assert two_behind.blocks[c_height].txs == (b"c=3",)
        assert two_behind.saved == behind.saved

    # 5. From nothing: InitChain again and every block.
    empty = KvApp()
    with running(empty, None, address, node=node) as _:
        wait_ready(node)
        assert empty.names()[:2] == ["info", "init_chain"]
        assert [h for n, h in empty.calls if n == "finalize_block"] == list(range(1, tip + 1))
        assert empty.saved == behind.saved

    # 6. Ahead of CometBFT's block store: CometBFT refuses to start.
    entries = dict(behind.saved.entries) | {b"z": b"26"}
    ahead = KvApp(saved=Snapshot(tip + 1, state_hash(entries), tuple(sorted(entries.items()))))
    with running(ahead, None, address, node=node) as _:
        poll(lambda: not node.alive(), "CometBFT to refuse an app ahead of its blocks")
        assert ahead.names() == ["info"]
        assert node.process.returncode != 0

    # 7. Same height, another app hash: refused as well.
    forged = KvApp(saved=Snapshot(tip, state_hash(entries), tuple(sorted(entries.items()))))
    with running(forged, None, address, node=node) as _:
        poll(lambda: not node.alive(), "CometBFT to refuse an app hash it did not commit")
        assert forged.names() == ["info"]
        assert node.process.returncode != 0


def test_app_failure_stops_server_then_cometbft(tmp_path: Path) -> None:
    app = KvApp()
    with running(app, tmp_path / "node", "tcp://127.0.0.1:0") as (server, node):
        wait_ready(node)
        assert submit(node, b"fail=now")["code"] == 0  # CheckTx admits it
        failure = poll(server.failure, "the server to stop on the failed FinalizeBlock")
        assert isinstance(failure, AbciAppFailed) and "finalize_block" in str(failure)
        poll(lambda: not node.alive(), "CometBFT to stop without its app")
    failed_height = [h for n, h in app.calls if n == "finalize_block"][-1]
    assert app.saved.height == failed_height - 1  # the failed block was never committed
