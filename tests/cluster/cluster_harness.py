"""Test harness for localnets of real processes on 127.0.0.1.

`Cluster` makes a localnet (core/abci/localnet.py) on free ports in a temp
directory and starts, stops, kills (SIGKILL to a node's whole process group:
its application and its CometBFT, as a crash would) and wipes nodes, each
node being a `chainmall net run-node` process as `chainmall net start` runs
it. `AgreementChecker` watches every node in a thread and records, for every
height any node has committed, each node's block hash and app hash: two
nodes that differ at one height fail the test. `TransferLoad` keeps seeded
transfers flowing at a low rate through whichever nodes are up, resubmitting
a tx that is not committed in time (the same bytes: idempotent by tx id and
nonce).

Nothing sleeps to wait for a condition: `poll` retries until a deadline.
Failures print each node's log tail.
"""

from __future__ import annotations

import base64
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pytest
from chainmall.cli.net import LOG_FILE, PID_FILE, start_node, stop_node
from chainmall.core.abci.app import ledger_machine
from chainmall.core.abci.cometbft import find_cometbft
from chainmall.core.abci.cometbft_rpc import CometRpc
from chainmall.core.abci.localnet import (
    COMETBFT_DIR,
    LEDGER_DIR,
    Localnet,
    LocalnetSettings,
    init_localnet,
)
from chainmall.core.constants import TX_TYPE_TRANSFER
from chainmall.core.errors import ChainmallError, CometBFTMissing
from chainmall.core.genesis import GovernanceParams, MallGenesis, load_genesis
from chainmall.core.keys import KeyPair
from chainmall.core.state.accounts import encode_transfer, unpack_account
from chainmall.core.store import Store
from chainmall.core.tx import sign_tx

T = TypeVar("T")
DEADLINE_S = 90.0
REQUIRE_ENV = "CHAINMALL_REQUIRE_COMETBFT"
LONG_ENV = "CHAINMALL_CLUSTER_LONG"  # `make test-cluster` runs the long fault schedules
TEST_BALANCE = 10**9


def poll(condition: Callable[[], T], what: str, deadline_s: float = DEADLINE_S) -> T:
    """Call `condition` until it returns something truthy; fail after `deadline_s`."""
    end = time.monotonic() + deadline_s
    delay = 0.01
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {deadline_s} s waiting for {what}")
        time.sleep(delay)  # back-off between checks, not a wait for the condition
        delay = min(delay * 2, 0.2)


def cometbft_binary() -> Path:
    try:
        return find_cometbft()
    except CometBFTMissing as error:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(str(error))
        pytest.skip(str(error))


def long_schedules_only() -> pytest.MarkDecorator:
    """Skip unless `make test-cluster` (CHAINMALL_CLUSTER_LONG=1) runs the test."""
    return pytest.mark.skipif(os.environ.get(LONG_ENV) != "1",
                              reason=f"a long fault schedule: `make test-cluster` ({LONG_ENV}=1)")


def ephemeral_low() -> int:
    """The first port the kernel hands out to outgoing connections: a range below it is not
    taken by another process's connection between the probe and the nodes' bind."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def free_port_range(count: int, rng: random.Random) -> int:
    """A base port with `count` free ports from it, on 127.0.0.1, below the ephemeral range."""
    for _ in range(200):
        base = rng.randrange(20_000, max(ephemeral_low(), 20_000 + 10 * count) - count, 10)
        sockets = []
        try:
            for port in range(base, base + count):
                probe = socket.socket()
                sockets.append(probe)
                probe.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for probe in sockets:
                probe.close()
    raise AssertionError("no free port range")


def test_keys(seed: int, count: int) -> list[KeyPair]:
    """`count` seeded accounts the tests fund in genesis."""
    return [KeyPair.from_seed(random.Random(f"{seed}/{i}").randbytes(32)) for i in range(count)]


class Cluster:
    """A localnet of `run-node` processes (module docstring)."""

    def __init__(self, root: Path, validators: int = 4, *, full_nodes: int = 0, seed: int = 1,
                 settings: LocalnetSettings | None = None, accounts: int = 16,
                 governance: GovernanceParams | None = None,
                 extra_balances: tuple[tuple[bytes, int], ...] = (),
                 mall: MallGenesis | None = None, fee_min: int = 0) -> None:
        self.rng = random.Random(seed)
        self.binary = cometbft_binary()
        count = validators + full_nodes
        base = free_port_range(10 * count, self.rng)
        self.accounts = test_keys(seed, accounts)
        self.net: Localnet = init_localnet(
            root, validators, full_nodes=full_nodes, base_port=base, chain_id="cluster-test",
            seed=self.rng.randbytes(32), settings=settings or LocalnetSettings(),
            genesis_time_ms=time.time_ns() // 1_000_000 - 1_000,
            balances=[(k.address, TEST_BALANCE) for k in self.accounts] + list(extra_balances),
            governance_params=governance, mall=mall, fee_min=fee_min, binary=self.binary)
        self.up: set[int] = set()
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def chain_id(self) -> str:
        return self.net.chain_id

    def rpc(self, index: int, timeout_s: float = 5.0) -> CometRpc:
        return CometRpc(self.net.nodes[index].rpc_url, timeout_s=timeout_s)

    def start(self, index: int, restart: bool = True, env: dict[str, str] | None = None) -> None:
        """Start node `index` (a background run-node process in its own session)."""
        assert index not in self.up, f"node {index} is already running"
        self.processes[index] = start_node(self.net, index, restart, env)
        self.up.add(index)

    def start_all(self) -> None:
        for index in range(len(self.net.nodes)):
            self.start(index)
        for index in range(len(self.net.nodes)):
            self.wait_serving(index)

    def wait_serving(self, index: int) -> None:
        poll(lambda: self.height(index) is not None or not self._running(index),
             f"node {index}'s CometBFT RPC")
        assert self._running(index), f"node {index} exited:\n{self.log_tail(index)}"

    def _running(self, index: int) -> bool:
        process = self.processes.get(index)
        return process is not None and process.poll() is None

    def kill(self, index: int) -> None:
        """SIGKILL node `index`'s process group: its application and CometBFT at once."""
        process = self.processes.pop(index)
        self.up.discard(index)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        poll(lambda: not _group_alive(process.pid), f"node {index}'s processes to exit")
        (self.net.node_dir(index) / PID_FILE).unlink(missing_ok=True)

    def stop(self, index: int) -> None:
        """Stop node `index` as `net stop` does (SIGTERM: CometBFT first, then the app)."""
        stop_node(self.net, index)
        self.processes.pop(index).wait()
        self.up.discard(index)

    def wipe(self, index: int) -> None:
        """Delete node `index`'s ledger and CometBFT data (its keys, config and the
        double-sign guard file `priv_validator_state.json` stay)."""
        assert index not in self.up
        node_dir = self.net.node_dir(index)
        shutil.rmtree(node_dir / LEDGER_DIR)
        genesis = load_genesis(node_dir / "genesis.json")
        with Store(node_dir / LEDGER_DIR) as store:
            ledger_machine(store, genesis)  # the genesis state at height 0, as init leaves it
        data = node_dir / COMETBFT_DIR / "data"
        for entry in data.iterdir():
            if entry.name != "priv_validator_state.json":
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()

    def height(self, index: int) -> int | None:
        """Node `index`'s latest committed height (None: not answering)."""
        try:
            return self.rpc(index, timeout_s=2).height()
        except ChainmallError:
            return None

    def heights(self) -> dict[int, int]:
        found = {i: self.height(i) for i in sorted(self.up)}
        return {i: h for i, h in found.items() if h is not None}

    def wait_height(self, height: int, nodes: set[int] | None = None,
                    deadline_s: float = DEADLINE_S) -> None:
        """Until every node of `nodes` (default: those up) has committed `height`."""
        chosen = set(self.up) if nodes is None else nodes

        def reached() -> bool:
            return all((self.height(i) or 0) >= height for i in chosen)
        poll(reached, f"nodes {sorted(chosen)} at height {height}", deadline_s)

    def max_height(self) -> int:
        return max(self.heights().values(), default=0)

    def log_tail(self, index: int, lines: int = 25) -> str:
        out = []
        for name in (LOG_FILE, "cometbft.log"):
            path = self.net.node_dir(index) / name
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- node{index} {name} ---\n" + "\n".join(text))
        return "\n".join(out)

    def close(self) -> None:
        """Stop every node still running (SIGTERM to its group, SIGKILL past a deadline)."""
        for index in list(self.processes):
            process = self.processes.pop(index)
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            try:
                poll(lambda p=process.pid: not _group_alive(p), "a node to stop", 30)
            except AssertionError:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        self.up.clear()


def _group_alive(pgid: int) -> bool:
    """Whether any process of process group `pgid` is still running (zombies aside)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


@dataclass
class Observation:
    """What each node said about one height: block hash and the app hash in its header."""

    block_hash: dict[int, str] = field(default_factory=dict)
    app_hash: dict[int, str] = field(default_factory=dict)


class AgreementChecker:
    """Compares every node's block hash and header app hash at every height (a thread)."""

    def __init__(self, cluster: Cluster, interval_s: float = 0.2) -> None:
        self.cluster = cluster
        self.interval_s = interval_s
        self.seen: dict[int, Observation] = {}
        self.checked: dict[int, int] = {}  # node -> highest height compared
        self.conflicts: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="agreement", daemon=True)

    def __enter__(self) -> AgreementChecker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            for index in sorted(self.cluster.up):
                self._catch_up(index)

    def _catch_up(self, index: int) -> None:
        rpc = self.cluster.rpc(index, timeout_s=2)
        try:
            tip = rpc.height()
        except ChainmallError:
            return
        start = self.checked.get(index, 0) + 1
        for height in range(start, min(tip, start + 50) + 1):
            try:
                signed = rpc.commit(height)["signed_header"]
            except ChainmallError:
                return
            self._record(index, height, signed["commit"]["block_id"]["hash"],
                         signed["header"]["app_hash"])
            self.checked[index] = height

    def _record(self, index: int, height: int, block_hash: str, app_hash: str) -> None:
        seen = self.seen.setdefault(height, Observation())
        for kind, value, table in (("block hash", block_hash, seen.block_hash),
                                   ("app hash", app_hash, seen.app_hash)):
            for other, theirs in table.items():
                if theirs != value:
                    self.conflicts.append(f"height {height}: node{index} {kind} {value} != "
                                          f"node{other} {theirs}")
            table[index] = value

    def assert_agreement(self, min_height: int = 1) -> int:
        """No two nodes disagreed; every height up to `min_height` was compared between at
        least two nodes. The highest height compared."""
        assert not self.conflicts, "FORK:\n" + "\n".join(self.conflicts[:10])
        compared = [h for h, o in self.seen.items() if len(o.block_hash) >= 2]
        assert compared and max(compared) >= min_height, \
            f"only heights {sorted(compared)[-5:]} were compared between nodes"
        return max(compared)

    def caught_up(self, index: int, height: int) -> bool:
        return self.checked.get(index, 0) >= height


class TransferLoad:
    """Seeded transfers at about `rate` tx/s through the nodes that are up (a thread).

    Each account has one tx in flight: the next is signed once the account's
    nonce (read with `/account` through abci_query) shows the last committed;
    a tx not committed within `resubmit_s` is sent again (the same bytes).
    """

    def __init__(self, cluster: Cluster, rate: float = 20.0, resubmit_s: float = 4.0) -> None:
        self.cluster = cluster
        self.rate = rate
        self.resubmit_s = resubmit_s
        self.rng = random.Random(7)
        self.nonces = {k.public_key: 0 for k in cluster.accounts}
        self.in_flight: dict[bytes, tuple[bytes, float]] = {}
        self.sent = 0
        self.resent = 0
        self.committed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load", daemon=True)

    def __enter__(self) -> TransferLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _node(self) -> int | None:
        up = sorted(self.cluster.up)
        return self.rng.choice(up) if up else None

    def _committed_nonce(self, index: int, key: KeyPair) -> int | None:
        try:
            answer = self.cluster.rpc(index, timeout_s=2).abci_query("/account", key.address)
        except ChainmallError:
            return None
        if answer.get("code", 0) != 0 or not answer.get("value"):
            return None
        return unpack_account(base64.b64decode(answer["value"]))[1]

    def _run(self) -> None:
        period = 1.0 / self.rate
        while not self._stop.wait(period):
            index = self._node()
            if index is None:
                continue
            key = self.rng.choice(self.cluster.accounts)
            pending = self.in_flight.get(key.public_key)
            if pending is not None:
                nonce = self._committed_nonce(index, key)
                if nonce is None:
                    continue
                if nonce > self.nonces[key.public_key] - 1:
                    self.committed += 1
                    del self.in_flight[key.public_key]
                elif time.monotonic() - pending[1] > self.resubmit_s:
                    self._send(index, pending[0])
                    self.in_flight[key.public_key] = (pending[0], time.monotonic())
                    self.resent += 1
                    continue
                else:
                    continue
            nonce = self.nonces[key.public_key]
            to = self.rng.choice(self.cluster.accounts).address
            tx = sign_tx(key, self.cluster.chain_id, TX_TYPE_TRANSFER, nonce, 1, 10**9,
                         encode_transfer(to, self.rng.randrange(1, 100))).encode()
            if self._send(index, tx):
                self.nonces[key.public_key] = nonce + 1
                self.in_flight[key.public_key] = (tx, time.monotonic())
                self.sent += 1

    def _send(self, index: int, tx: bytes) -> bool:
        try:
            answer = self.cluster.rpc(index, timeout_s=2).call(
                "broadcast_tx_sync", tx="0x" + tx.hex())
        except ChainmallError as exc:
            return "already exists" in str(exc)  # in that node's mempool cache: sent
        return answer.get("code") == 0


def dump_logs(cluster: Cluster) -> None:
    for index in range(len(cluster.net.nodes)):
        print(cluster.log_tail(index), file=sys.stderr)


LIGHTCHECK_SOURCE = Path(__file__).resolve().parent / "lightcheck"
LIGHTCHECK_TOOL = Path(__file__).resolve().parents[2] / ".tools" / "bin" / "lightcheck"


def lightcheck_binary(build_dir: Path) -> Path:
    """CometBFT's own light client as a program (tests/cluster/lightcheck): the one
    `make lightcheck` built when it is newer than its sources, else built here with Go."""
    sources = [p.stat().st_mtime for p in LIGHTCHECK_SOURCE.iterdir()]
    if LIGHTCHECK_TOOL.exists() and LIGHTCHECK_TOOL.stat().st_mtime >= max(sources):
        return LIGHTCHECK_TOOL
    go = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists()
                                else None)
    if go is None:
        message = "Go is needed to build CometBFT's light client checker (make lightcheck)"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(message)
        pytest.skip(message)
    out = build_dir / "lightcheck"
    built = subprocess.run([go, "build", "-o", str(out), "."], cwd=LIGHTCHECK_SOURCE,
                           capture_output=True, text=True, timeout=900, check=False,
                           env={**os.environ, "GOFLAGS": "-mod=readonly"})
    assert built.returncode == 0, built.stderr
    return out


def cometbft_light_verdicts(binary: Path, cases: list[dict]) -> list[dict]:
    """Run CometBFT's light.Verify on `cases` (the JSON tests/cluster/lightcheck reads)."""
    import json

    done = subprocess.run([str(binary)], input=json.dumps(cases), capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
