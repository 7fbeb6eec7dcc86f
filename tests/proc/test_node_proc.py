"""Real node processes on 127.0.0.1: restart, clean shutdown and kill -9 under load, one
node per data directory. Driven through the JSON-RPC client, as integrators do."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from chainmall.core.errors import ChainmallError
from chainmall.core.node.services import page_files
from chainmall.core.rpc.client import RpcClient
from chainmall.core.rpc.services import TxInfo, TxState
from chainmall.core.store import Store
from chainmall.core.tx import Tx
from nodeproc import NodeProcess, cli, keys, make_chain, transfers

pytestmark = pytest.mark.slow
LOAD_SENDERS = 30  # the load uses these; later checks send from the others
FINALS_DEADLINE_S = 60.0


@pytest.fixture
def chain(tmp_path: Path) -> tuple[Path, Path]:
    home, data = tmp_path / "home", tmp_path / "data"
    make_chain(home, data)
    return home, data


async def submit_all(address: str, txs: list[Tx], connections: int = 4) -> dict[bytes, TxInfo]:
    """Submit every tx and wait for it over `connections` connections; the final ones."""
    finals: dict[bytes, TxInfo] = {}
    clients = [await RpcClient.connect(address) for _ in range(connections)]

    async def one(client: RpcClient, tx: Tx) -> None:
        with contextlib.suppress(ChainmallError):  # refused, not final, node gone
            info = await client.submit_tx_wait(tx.encode(), 30.0)
            if info.state is TxState.FINAL:
                finals[tx.tx_id] = info

    try:
        await asyncio.gather(*(one(clients[i % connections], tx) for i, tx in enumerate(txs)))
    finally:
        for client in clients:
            await client.close()
    return finals


async def load_then(address: str, txs: list[Tx], node: NodeProcess,
                    signum: int) -> dict[bytes, TxInfo]:
    """Run a load; once some txs are final, send `signum` to the node; the final ones."""
    finals: dict[bytes, TxInfo] = {}
    task = asyncio.ensure_future(submit_all(address, txs))
    deadline = time.monotonic() + FINALS_DEADLINE_S
    async with await RpcClient.connect(address) as client:
        while (await client.status()).height < 3:
            assert time.monotonic() < deadline, "no blocks under load"
            await asyncio.sleep(0.05)
    node.signal(signum)
    finals.update(await task)
    return finals


def assert_in_chain(data: Path, finals: dict[bytes, TxInfo]) -> None:
    """Every tx reported final is where the node said, in the stored chain."""
    with Store(data / "ledger") as store, store.reader() as view:
        for tx_id, info in finals.items():
            assert view.tx_location(tx_id) == (info.height, info.index), tx_id.hex()


def test_restart_with_the_same_data_dir_continues(chain: tuple[Path, Path]) -> None:
    home, data = chain
    txs = transfers(80)
    node = NodeProcess(home, data)
    address = node.ready()
    finals = asyncio.run(submit_all(address, txs[:40]))
    assert len(finals) == 40

    async def status_of(address: str) -> tuple[int, bytes]:
        async with await RpcClient.connect(address) as client:
            status = await client.status()
            return status.height, status.app_hash

    before = asyncio.run(status_of(address))
    assert node.stop() == 0
    node = NodeProcess(home, data)
    address = node.ready()
    assert asyncio.run(status_of(address)) == before
    later = asyncio.run(submit_all(address, txs[40:]))
    assert len(later) == 40 and min(info.height for info in later.values()) == before[0] + 1
    assert node.stop() == 0
    assert_in_chain(data, finals | later)


def test_clean_shutdown_under_load(chain: tuple[Path, Path]) -> None:
    home, data = chain
    node = NodeProcess(home, data, "--node-block-interval-ms", "50")
    address = node.ready()
    finals = asyncio.run(load_then(address, transfers(3_000, senders=LOAD_SENDERS), node,
                                   signal.SIGTERM))
    assert node.finish() == 0
    messages = [line for line in node.log if '"msg":"ledger closed"' in line]
    assert messages, "".join(node.log)
    assert finals
    assert_in_chain(data, finals)
    assert cli(home, "db", "check", "--data-dir", str(data)).returncode == 0


def test_kill_9_under_load_then_restart(chain: tuple[Path, Path]) -> None:
    home, data = chain
    node = NodeProcess(home, data, "--node-block-interval-ms", "50")
    address = node.ready()
    finals = asyncio.run(load_then(address, transfers(3_000, senders=LOAD_SENDERS), node,
                                   signal.SIGKILL))
    node.finish()
    assert finals
    assert_in_chain(data, finals)
    check = cli(home, "db", "check", "--data-dir", str(data))
    assert check.returncode == 0, check.stdout + check.stderr
    # The node resumes from what was committed.
    node = NodeProcess(home, data)
    address = node.ready()
    heights = [info.height for info in finals.values()]
    late = keys()[LOAD_SENDERS]
    tx = [t for t in transfers(LOAD_SENDERS + 1) if t.sender == late.public_key]
    resumed = asyncio.run(submit_all(address, tx))
    assert len(resumed) == 1 and next(iter(resumed.values())).height > max(heights)
    assert node.stop() == 0


def test_a_second_node_on_one_data_dir_is_refused(chain: tuple[Path, Path]) -> None:
    home, data = chain
    node = NodeProcess(home, data)
    node.ready()
    second = cli(home, "node", "start", "--data-dir", str(data), "--rpc-tcp", "127.0.0.1:0",
                 "--rpc-http", "127.0.0.1:0", timeout_s=60.0)
    assert second.returncode == 1
    assert second.stderr.startswith("error: ") and "in use" in second.stderr
    assert len(second.stderr.strip().splitlines()) == 1
    assert node.stop() == 0


def test_node_demo_plays_the_scenario_then_serves_until_interrupted(tmp_path: Path) -> None:
    env = {**os.environ, "CHAINMALL_HOME": str(tmp_path / "home")}
    demo = subprocess.Popen(
        [sys.executable, "-m", "chainmall.cli", "node", "demo", "--txs", "64", "--rpc-tcp",
         "127.0.0.1:0", "--rpc-http", "127.0.0.1:0", "--data-dir", str(tmp_path / "demo")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        stdin=subprocess.DEVNULL)
    try:
        assert demo.stdout is not None
        lines = []
        deadline = time.monotonic() + FINALS_DEADLINE_S
        while not any("keeps serving" in line for line in lines):
            assert time.monotonic() < deadline, "".join(lines)
            line = demo.stdout.readline()
            assert line, "".join(lines) + (demo.stderr.read() if demo.stderr else "")
            lines.append(line)
        text = "".join(lines)
        assert "BadSignature (113)" in text and "NonceMismatch (151)" in text
        assert "transfers final 64/64" in text and "verifies" in text
        assert "the silver-jewellery story" in text
        page = re.search(r"(http://\S+/item/\S+\?vs=[0-9a-f]{64})", text)
        assert page is not None, text
        built = page_files().joinpath("app.js").is_file()  # without npm: 503, "run make web"
        try:
            with urllib.request.urlopen(page.group(1), timeout=30) as response:
                status = response.status
        except urllib.error.HTTPError as error:
            status = error.code
        assert status == (200 if built else 503)
        address = re.search(r"serving at (\S+)", text).group(1)  # type: ignore[union-attr]

        async def height() -> int:
            async with await RpcClient.connect(address) as client:
                return (await client.status()).height

        assert asyncio.run(height()) >= 2
    finally:
        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=60) == 0
