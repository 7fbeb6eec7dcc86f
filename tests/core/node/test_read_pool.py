"""The node's reader processes (core/node/read_pool.py): the same answers as the read threads,
a killed reader replaced, no reader outliving the node, the readers following map growth."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from chainmall.core.abci.app import Application
from chainmall.core.abci.types import QueryRequest
from chainmall.core.errors import InvalidConfig
from chainmall.core.genesis import write_genesis
from chainmall.core.keystore import KeyStore
from chainmall.core.node.config import config_template, load_config
from chainmall.core.node.node import Node
from chainmall.core.node.page import PageReader
from chainmall.core.node.process import NodeProcess
from chainmall.core.node.read_pool import READER_START_FAILURES_MAX, ReadPool, reader_pids_of
from chainmall.core.node.reads import LedgerReads
from chainmall.core.rpc.client import RpcClient
from chainmall.core.state.accounts import account_key
from chainmall.core.store import Store
from nodeutil import BLOCK_WRITERS, KEYS, VALIDATOR, config, genesis, run, running_node, transfer

DEADLINE_S = 60.0


async def _until(condition: Callable[[], Any], what: str, deadline_s: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def _pool(node: Node) -> ReadPool:
    pool = node.read_pool()
    assert pool is not None
    return pool


async def _ready(node: Node) -> ReadPool:
    """Start the node's readers (a first read) and wait until all answer."""
    await node.account(KEYS[0].address)
    pool = _pool(node)
    await _until(lambda: pool.ready_count() == pool.processes, "the readers to be ready")
    return pool


async def _outcome(read: Awaitable[Any]) -> tuple[str, Any]:
    """A read's answer, or its error's class and message (so both paths compare)."""
    try:
        return "ok", await read
    except Exception as error:
        return type(error).__name__, str(error)


async def _blocks_of_transfers(node: Node, rounds: int) -> list[bytes]:
    tx_ids = []
    for nonce in range(rounds):
        for key in KEYS[:4]:
            admitted, status = await node.submit_wait(transfer(key, nonce, to=KEYS[5].address),
                                                      10.0)
            assert status.state.value == "final", status
            tx_ids.append(admitted.tx_id)
    return tx_ids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_readers_answer_as_the_read_threads(tmp_path: Path) -> None:
    """Every kind of read, good and bad, on a node with blocks: the reader processes' answer
    is the read threads' (the thread path called on the same node, at the same tip)."""

    async def body() -> None:
        async with running_node(tmp_path / "ledger", config(node__read_processes="2")) as node:
            tx_ids = await _blocks_of_transfers(node, 3)
            pool = await _ready(node)
            tip = node.status().height
            assert tip >= 2
            local_before = pool.served_local
            thread = LedgerReads  # the read threads' path, on the same node
            requests = [QueryRequest("/account", key.address, height, prove)
                        for key in (KEYS[0], KEYS[5], KEYS[7]) for height in (0, tip)
                        for prove in (False, True)]
            requests += [
                QueryRequest("/account", KEYS[0].address, tip + 1, True),  # above the tip
                QueryRequest("/account", KEYS[0].address, 1, True),  # not the latest
                QueryRequest("/account", b"\x01" * 19),  # a bad address
                QueryRequest("/state", account_key(KEYS[1].address), 0, True),
                QueryRequest("/state", b""),  # no key
                QueryRequest("/nowhere", b"x"),  # an unknown path
                QueryRequest("/tx", tx_ids[0]), QueryRequest("/tx", b"\x00" * 32),
                QueryRequest("/tx", b"short"),
                QueryRequest("/block", (1).to_bytes(8, "big")),
                QueryRequest("/block", (tip + 5).to_bytes(8, "big")),
                QueryRequest("/mall/product", b"\x00" * 32, 0, True),
            ]
            for request in requests:
                from_reader = await _outcome(node._read_query(request))
                from_thread = await _outcome(thread._read_query(node, request))
                assert from_reader == from_thread, request
                public = await _outcome(node.query(request))
                assert public == from_reader, request
            for height in range(1, tip + 2):
                from_reader = await _outcome(node._read_block(height, None))
                assert from_reader == await _outcome(thread._read_block(node, height, None))
                assert await _outcome(node.block(height)) == from_reader
                if height <= tip:
                    block_hash = from_reader[1].block.header.hash()
                    assert await _outcome(node.block_by_hash(block_hash)) == from_reader
            assert await _outcome(node.block_by_hash(b"\x09" * 32)) == ("ok", None)
            for key in KEYS:
                for prove in (False, True):
                    from_reader = await _outcome(node.account(key.address, 0, prove))
                    assert from_reader[0] == "ok"
                    assert from_reader == await _outcome(node.account(key.address, 0, prove))
            assert (await _outcome(node.account(KEYS[0].address, tip + 1)))[0] == "QueryError"
            for tx_id in tx_ids:  # the stored statuses (not the recent ones in memory)
                from_reader = await _outcome(node._read_query(QueryRequest("/tx", tx_id)))
                assert from_reader == await _outcome(thread._read_query(
                    node, QueryRequest("/tx", tx_id)))
            page = PageReader(node.app)
            for method, args in (("info", ()), ("products", ("", 5)), ("products", ("ring", 5)),
                                 ("product", (b"\x00" * 32,)), ("item_trace", ("no-such",))):
                function = getattr(page, method)
                from_reader = await _outcome(node.read(function, *args))
                assert from_reader == await _outcome(node._read(function, *args)), method
            assert pool.served_local == local_before  # all of the above came from readers
            assert pool.replaced == 0

    run(body())


def test_a_reader_killed_under_load_is_replaced_and_its_reads_answered(tmp_path: Path) -> None:
    """kill -9 of a reader while reads stream: every read still gets its right answer (a lost
    one is asked again), and a new reader takes its place."""

    async def body() -> None:
        async with running_node(tmp_path / "ledger", config(node__read_processes="2")) as node:
            await _blocks_of_transfers(node, 1)
            pool = await _ready(node)
            expected = {key.address: await node.account(key.address, 0, True) for key in KEYS}
            stop = asyncio.Event()
            answered = [0]

            async def reads(seed: int) -> None:
                index = seed
                while not stop.is_set():
                    address = KEYS[index % len(KEYS)].address
                    assert await node.account(address, 0, True) == expected[address]
                    answered[0] += 1
                    index += 1

            readers = [asyncio.get_running_loop().create_task(reads(i)) for i in range(6)]
            await _until(lambda: answered[0] >= 200, "reads before the kill")
            victim = pool.pids()[0]
            os.kill(victim, signal.SIGKILL)
            await _until(lambda: pool.replaced >= 1, "the reader to be replaced")
            await _until(lambda: pool.ready_count() == 2, "the replacement to be ready")
            assert victim not in pool.pids()
            after = answered[0]
            await _until(lambda: answered[0] >= after + 200, "reads after the replacement")
            stop.set()
            await asyncio.gather(*readers)  # none raised: every read was answered right
            await _until(lambda: not _alive(victim), "the killed reader to be reaped")

    run(body())


def test_node_stop_ends_its_readers(tmp_path: Path) -> None:
    async def body() -> None:
        async with running_node(tmp_path / "ledger", config(node__read_processes="2")) as node:
            pool = await _ready(node)
            pids = pool.pids()
            assert len(pids) == 2 and all(_alive(pid) for pid in pids)
        assert not any(_alive(pid) for pid in pids)  # stop waited for them

    run(body())


def test_no_reader_outlives_a_killed_node(tmp_path: Path) -> None:
    """A real `chainmall node start` with readers, killed with SIGKILL: its reader processes
    end too (the kernel's parent-death signal)."""
    home, data = tmp_path / "home", tmp_path / "data"
    home.mkdir()
    KeyStore(home / "keys").import_seed("validator", VALIDATOR.seed)
    write_genesis(home / "genesis.json", genesis())
    made = subprocess.run([sys.executable, "-m", "chainmall.cli", "init", "--data-dir",
                           str(data), "--genesis", str(home / "genesis.json")],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          env={**os.environ, "CHAINMALL_HOME": str(home)}, timeout=300)
    assert made.returncode == 0, made.stderr
    node = NodeProcess(home, data, "--node-read-processes", "2")
    try:
        address = node.ready()

        async def read() -> None:
            client = await RpcClient.connect(address)
            try:
                info = await client.account(KEYS[0].address, prove=True)
                assert info.balance > 0
            finally:
                await client.close()

        run(read())
        deadline = time.monotonic() + DEADLINE_S
        while len(reader_pids_of(node.proc.pid)) < 2:
            assert time.monotonic() < deadline, "the node's readers did not start"
            time.sleep(0.02)
        pids = reader_pids_of(node.proc.pid)
    finally:
        node.kill()
    deadline = time.monotonic() + DEADLINE_S
    while any(_alive(pid) for pid in pids):
        assert time.monotonic() < deadline, f"readers {pids} outlived the node"
        time.sleep(0.02)


@pytest.mark.parametrize("mode", BLOCK_WRITERS)
def test_readers_follow_the_map_as_it_grows(tmp_path: Path, mode: str) -> None:
    """The node's store starts with a small map and doubles it while readers are open: their
    next snapshots see MDB_MAP_RESIZED, take the new size and answer as the read threads.
    With every block writer: a deferred write that meets the full map is made at once on
    the block thread (growing the map), so every tx is final without a next block."""

    async def body() -> None:
        with Store(tmp_path / "ledger", map_size_bytes=1 << 20) as store:
            app = Application(store, genesis(), version="test")
            cfg = config(node__read_processes="1", node__block_writer=mode)
            node = Node(app, VALIDATOR, cfg, version="test")
            await node.start()
            try:
                pool = await _ready(node)
                start_size = store.map_size_bytes
                nonce = 0
                while store.map_size_bytes < 4 * start_size:  # data past the readers' map
                    wires = [transfer(key, nonce + n, to=KEYS[7].address)
                             for key in KEYS[:7] for n in range(20)]
                    for status in await node.wait_many(
                            [admitted.tx_id for admitted in await node.submit_many(wires)],
                            10.0):
                        assert status.state.value == "final", status
                    nonce += 20
                    assert nonce < 20_000, "the map never grew"
                local_before = pool.served_local
                for key in KEYS:
                    request = QueryRequest("/account", key.address, 0, True)
                    from_reader = await _outcome(node._read_query(request))
                    assert from_reader[0] == "ok"
                    assert from_reader == await _outcome(LedgerReads._read_query(node, request))
                tip = node.status().height
                assert (await _outcome(node.block(tip))) == \
                    await _outcome(LedgerReads._read_block(node, tip, None))
                assert pool.served_local == local_before and pool.replaced == 0
            finally:
                await node.stop()

    run(body())


def test_the_setting_and_its_default(tmp_path: Path) -> None:
    """`node.read_processes`: a flag, a variable and a config.toml key like every setting;
    0 keeps the read threads and starts no reader."""
    assert load_config(environ={}).node.read_processes == 2
    by_env = load_config(environ={"CHAINMALL_NODE_READ_PROCESSES": "3"})
    assert by_env.node.read_processes == 3
    assert by_env.sources["node.read_processes"] == "env CHAINMALL_NODE_READ_PROCESSES"
    by_flag = load_config(environ={}, flags={"node.read_processes": "1"})
    assert by_flag.sources["node.read_processes"] == "flag --node-read-processes"
    for bad in ("-1", "65", "two"):
        with pytest.raises(InvalidConfig):
            load_config(environ={"CHAINMALL_NODE_READ_PROCESSES": bad})
    assert "\nread_processes = 2\n" in config_template()

    async def body() -> None:
        async with running_node(tmp_path / "ledger", config(node__read_processes="0")) as node:
            assert node.read_pool() is None
            assert (await node.account(KEYS[0].address)).balance > 0

    run(body())


def test_readers_that_cannot_open_the_ledger_leave_the_reads_to_the_threads(
        tmp_path: Path) -> None:
    """Readers that end before they are ready (here: pointed at a directory without a ledger)
    are replaced READER_START_FAILURES_MAX times, then no more; every read is answered by
    the read threads meanwhile and after."""

    async def body() -> None:
        async with running_node(tmp_path / "ledger", config(node__read_processes="2")) as node:
            pool = _pool(node)
            pool._setup = dataclasses.replace(pool._setup, store_path=str(tmp_path / "none"))
            expected = await LedgerReads._read_query(
                node, QueryRequest("/account", KEYS[0].address, 0, True))
            assert await node.query(QueryRequest("/account", KEYS[0].address, 0, True)) \
                == expected  # the first read starts the readers; the threads answer it
            await _until(lambda: not pool.pids(), "the readers to stop being replaced")
            assert pool.ready_count() == 0 and pool.replaced == READER_START_FAILURES_MAX - 1
            local = pool.served_local
            assert await node.query(QueryRequest("/account", KEYS[0].address, 0, True)) \
                == expected
            assert pool.served_local == local + 1

    run(body())
