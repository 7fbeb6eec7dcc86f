"""4 CometBFT validators on this machine: throughput, submit-to-final latency, CPU per tx.

    .venv/bin/python bench/cluster/cluster_bench.py [--rate 2100] [--seconds 20]
        [--batch 200] [--envelope N] [--scenario steady|kill|both] [--setting NAME=INT]

A localnet (`core/abci/localnet.py`, the one-host settings) of 4 validators,
each a `chainmall net run-node` process (the application behind the ABCI
server, CometBFT as its child), and one client process (this one) offering
signed transfers at `--rate` tx/s in batches of `--batch`, spread over the
nodes: each batch goes as batch envelopes of `--envelope` txs (default: the
whole batch in one; docs/formats.md section 11) in one JSON-RPC call of
`broadcast_tx_async`, or with `--envelope 0` as one CometBFT tx per signed
tx. Every sender is a genesis account sending one transfer (nonce 0), so no
tx waits on another's nonce; every node checks every signature (CheckTx on
the envelope's arrival by gossip, ZIP 215), each tx on its own.

Finality is seen from the client: a watcher polls node 0 for new heights
(every POLL_S) and reads each block's txs (an envelope's carried txs and
their codes from its result); a tx's latency is the time from the start of
the batch call that submitted it to the moment the watcher saw the block
holding it (so the poll interval is included). Throughput is printed two
ways: "span", the txs committed with code 0 over the time from the first
submission to the last final block (a run offered exactly the target rate
reads below it, since the last tx's latency is added to the time), and
"steady window", the txs that became final inside the offered period after
its warm-up (from STEADY_FROM of the offer time, or from the first tx seen
final if that is later: a window that opens before any tx could be final
measures the latency, not the rate, to the offer's end; the txs of the block
that opens it, the backlog of the warm-up, are not counted) over that
window's length (what the net sustains while the load is on). The exit
status goes by the span figure. `kill` kills validator 3 (SIGKILL to its application and
CometBFT) half-way; its share of the load moves to the other nodes, and the txs it admitted
that are not final go again through a live node (`Resubmitter`: what an integrator's
"submit and wait" does when its node's connection breaks; latency still counts from the
first submission). After each scenario: what the slowest 1 % of txs waited through.

CPU: utime + stime of every CometBFT process and every node process (the
application, its ABCI server and the supervisor) over the run, per
committed tx, and the client's own; the idle net's own CPU rate (measured
for IDLE_S before the load) times the run's span, shown apart; and the
application's thread CPU per ABCI request kind, which each node's ABCI
server writes to a file (`CHAINMALL_ABCI_CPU_FILE`). The projection for 4
real servers assumes one node per server, the per-node CPU per tx measured
here, the application's single execution thread as one bound and the
server's cores as the other; network latency is not modelled. The machine
is shared: the load average is printed before and after; rerun before
drawing conclusions. `--setting` changes a `LocalnetSettings` field (e.g.
`mempool_broadcast=0`) to measure what a CometBFT setting does.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import itertools
import json
import os
import random
import signal
import socket
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from chainmall.cli.net import start_node
from chainmall.core.abci.cometbft import check_cometbft
from chainmall.core.abci.cometbft_rpc import CometRpc
from chainmall.core.abci.envelope import decode_results, encode_envelope, flatten
from chainmall.core.abci.localnet import LocalnetSettings, init_localnet
from chainmall.core.abci.server import CPU_FILE_ENV
from chainmall.core.constants import TX_TYPE_TRANSFER
from chainmall.core.errors import ChainmallError
from chainmall.core.keys import KeyPair
from chainmall.core.state.accounts import encode_transfer
from chainmall.core.tx import sign_tx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchutil import machine, verdict
from cluster.timeline import load as load_timeline
from cluster.timeline import report as timeline_text

TARGET_TPS = 2_000
TARGET_P50_S = 0.5
TARGET_P99_S = 1.0
TARGET_P99_KILL_S = 2.0
POLL_S = 0.02
# CometBFT's socket client flushes a CheckTx it sends on its own only after a 20 ms
# throttle, and a JSON-RPC batch runs its calls one after another: broadcast_tx_sync
# would wait up to 20 ms per tx. The async call returns once the tx is queued for CheckTx.
METHOD = "broadcast_tx_async"
DRAIN_S = 15.0
RESUBMIT_SWEEP_S = 0.1  # how often the client looks for admitted txs of a dead node
STEADY_FROM = 0.10  # the steady window: from this share of the offered period to its end
IDLE_S = 3.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
CHAIN = "bench-cluster"
# CometBFT's step entries (consensus, debug) and block execution (state, info) for
# `--timeline` (bench/cluster/timeline.py); they cost the nodes some CPU per block.
TIMELINE_LOG = "consensus:debug,state:info,*:error"
THREAD_PREFIX = "thread "  # the ABCI CPU file's per-thread entries (server.thread_cpu)


def settings(indexer: str, block_kib: int | None = None,
             overrides: dict[str, int] | None = None, timeline: bool = False) -> LocalnetSettings:
    """The localnet defaults with CometBFT's logs at error level (its info lines cost CPU
    per block and tell a benchmark nothing; BENCH_COMETBFT_LOG=info to look into a run;
    `--timeline` needs its consensus steps: TIMELINE_LOG), the tx indexer asked for and,
    if given, another cap on a block's bytes and other values of `LocalnetSettings`
    fields (`--setting`)."""
    extra: dict[str, int] = {} if block_kib is None else {"block_bytes_max": block_kib * 1024}
    extra.update(overrides or {})
    level = TIMELINE_LOG if timeline else os.environ.get("BENCH_COMETBFT_LOG", "error")
    return LocalnetSettings(log_level=level, tx_indexer=indexer, **extra)


def decode_envelope_txs(raw: bytes) -> list[bytes]:
    return flatten([raw])[0]


def abci_cpu(path: Path) -> dict[str, tuple[float, int]]:
    """A node's ABCI server CPU by request kind, as it last wrote it (empty if not yet)."""
    try:
        return {kind: (float(v[0]), int(v[1])) for kind, v in json.loads(path.read_text()).items()}
    except (OSError, ValueError):
        return {}


def make_senders(count: int) -> list[KeyPair]:
    return [KeyPair.from_seed(hashlib.sha256(b"bench sender %d" % i).digest())
            for i in range(count)]


def ephemeral_low() -> int:
    """The first port the kernel hands out for outgoing connections: listeners below it
    are not taken from under us by another process's connections between probe and bind."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def free_port_base(count: int) -> int:
    """A base port with `count` free loopback ports from it (probed, not assumed)."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20_000, ephemeral_low() - count, 10)
        probes = []
        try:
            for port in range(base, base + count):
                probe = socket.socket()
                probes.append(probe)
                probe.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for probe in probes:
                probe.close()
    raise SystemExit("no free range of ports on 127.0.0.1")


def process_cpu_s(pid: int) -> float:
    """utime + stime of one process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


@dataclass
class Run:
    """What one scenario measured."""

    name: str
    submitted: dict[bytes, float] = field(default_factory=dict)  # tx hash -> submit time
    refused: int = 0
    final: dict[bytes, float] = field(default_factory=dict)  # tx hash -> time seen final
    failed_in_block: int = 0
    first_submit: float = 0.0
    last_final: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    blocks: int = 0
    cometbft_txs: int = 0
    app_kinds: dict[str, list[float]] = field(default_factory=dict)  # kind -> [cpu s, calls]
    idle_cpu_per_s: dict[str, float] = field(default_factory=dict)  # idle net, all nodes
    window_s: float = 0.0  # the span the CPU figures cover
    offer_began: float = 0.0  # when the submitters started
    offer_s: float = 0.0  # the offered period as scheduled (txs / rate)
    # per block seen: (height, carried txs, header time in ms, the round its commit was in)
    heights: list[tuple[int, int, int, int]] = field(default_factory=list)
    wall_minus_monotonic: float = 0.0  # time.time() - time.monotonic() at the start
    seen_at: dict[int, float] = field(default_factory=dict)  # height -> seen final
    tx_height: dict[bytes, int] = field(default_factory=dict)  # tx hash -> its height
    net_dir: Path | None = None
    sent_to: dict[bytes, int] = field(default_factory=dict)  # tx hash -> node last sent to
    raw: dict[bytes, bytes] = field(default_factory=dict)  # tx hash -> its signed bytes
    resubmitted: dict[bytes, float] = field(default_factory=dict)  # tx hash -> resent at
    killed_at: float = 0.0  # when validator 3 was killed (0: not)
    proposer: dict[int, str] = field(default_factory=dict)  # height -> proposer address
    node_address: dict[str, int] = field(default_factory=dict)  # validator address -> node


class Submitter(threading.Thread):
    """Sends its share of the txs to one node in JSON-RPC batches at a paced rate."""

    def __init__(self, run: Run, nodes: list[int], ports: dict[int, int], txs: list[bytes],
                 rate: float, batch: int, lock: threading.Lock, alive: set[int],
                 envelope: int) -> None:
        super().__init__(daemon=True)
        self.run_ = run
        self.nodes = nodes
        self.ports = ports
        self.txs = txs
        self.rate = rate
        self.batch = batch
        self.lock = lock
        self.alive = alive
        self.method = METHOD
        self.envelope = envelope
        self.connections: dict[int, http.client.HTTPConnection] = {}

    def _post(self, node: int, body: bytes) -> list[dict] | None:
        try:
            connection = self.connections.get(node)
            if connection is None:
                connection = self.connections[node] = http.client.HTTPConnection(
                    "127.0.0.1", self.ports[node], timeout=30)
            connection.request("POST", "/", body, {"Content-Type": "application/json"})
            answers = json.loads(connection.getresponse().read())
            # CometBFT answers a batch of one with a bare object
            return [answers] if isinstance(answers, dict) else answers
        except (OSError, http.client.HTTPException, ValueError):
            self.connections.pop(node, None)
            return None

    def run(self) -> None:
        start = time.monotonic()
        sent = 0
        turn = 0
        while sent < len(self.txs):
            due = start + sent / self.rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # pacing the offered load
            chunk = self.txs[sent:sent + self.batch]
            live = [n for n in self.nodes if n in self.alive] or sorted(self.alive)
            node = live[turn % len(live)]
            turn += 1
            sent_txs = chunk if not self.envelope else [
                encode_envelope(chunk[i:i + self.envelope])
                for i in range(0, len(chunk), self.envelope)]
            body = json.dumps([{"jsonrpc": "2.0", "id": i, "method": self.method,
                                "params": {"tx": base64.b64encode(tx).decode()}}
                               for i, tx in enumerate(sent_txs)]).encode()
            began = time.monotonic()
            answers = self._post(node, body)
            if answers is None:
                continue  # the node is gone: the same chunk goes to another
            sent += len(chunk)
            codes = {a.get("id"): (a.get("result") or {}).get("code", -1) for a in answers}
            width = self.envelope or 1
            with self.lock:
                if not self.run_.first_submit:
                    self.run_.first_submit = began
                for i, tx in enumerate(chunk):
                    if codes.get(i // width) == 0:
                        digest = hashlib.sha256(tx).digest()
                        self.run_.submitted[digest] = began
                        self.run_.sent_to[digest] = node
                        self.run_.raw[digest] = tx
                    else:
                        self.run_.refused += 1


class Resubmitter(Submitter):
    """What an integrator's "submit and wait" does when its node dies (its wait's
    connection breaks): the txs that node admitted and that are not final yet go again,
    the same bytes, through a live node (idempotent: a copy that an earlier gossip already
    put into a block fails there on its nonce, without effect). Swept every
    RESUBMIT_SWEEP_S, so admissions recorded just after a node's death are caught too.
    A tx's latency still counts from its first submission."""

    def __init__(self, run: Run, ports: dict[int, int], batch: int, lock: threading.Lock,
                 alive: set[int], envelope: int) -> None:
        super().__init__(run, [], ports, [], 1.0, batch, lock, alive, envelope)
        self.stop = threading.Event()

    def sweep(self) -> None:
        if all(node in self.alive for node in self.ports):
            return
        with self.lock:
            final, alive = self.run_.final, self.alive
            orphans = [d for d, node in self.run_.sent_to.items()
                       if node not in alive and d not in final]
            txs = [self.run_.raw[d] for d in orphans]
        live = sorted(self.alive)
        for start in range(0, len(txs), self.batch):
            chunk = txs[start:start + self.batch]
            for attempt in range(len(live)):
                node = live[(start // self.batch + attempt) % len(live)]
                sent = chunk if not self.envelope else [
                    encode_envelope(chunk[i:i + self.envelope])
                    for i in range(0, len(chunk), self.envelope)]
                body = json.dumps([{"jsonrpc": "2.0", "id": i, "method": self.method,
                                    "params": {"tx": base64.b64encode(tx).decode()}}
                                   for i, tx in enumerate(sent)]).encode()
                if self._post(node, body) is not None:
                    now = time.monotonic()
                    with self.lock:
                        for tx in chunk:
                            digest = hashlib.sha256(tx).digest()
                            self.run_.sent_to[digest] = node
                            self.run_.resubmitted[digest] = now
                    break

    def run(self) -> None:
        while not self.stop.wait(RESUBMIT_SWEEP_S):
            self.sweep()


class Watcher(threading.Thread):
    """Sees blocks become final on one node and marks their txs."""

    def __init__(self, run: Run, port: int, lock: threading.Lock) -> None:
        super().__init__(daemon=True)
        self.run_ = run
        self.rpc = CometRpc(f"http://127.0.0.1:{port}")
        self.lock = lock
        self.stop = threading.Event()
        self.height = self.rpc.height()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                tip = self.rpc.height()
                for height in range(self.height + 1, tip + 1):
                    block = self.rpc.block(height)["block"]
                    seen = time.monotonic()
                    results = self.rpc.call("block_results", height=height)["txs_results"] or []
                    raws = [base64.b64decode(t) for t in block["data"]["txs"] or []]
                    txs, outcomes = [], []
                    for raw, result, count in zip(raws, results, flatten(raws)[1], strict=True):
                        if count:  # an envelope: each carried tx's code is in `data`
                            carried = decode_results(base64.b64decode(result.get("data") or ""))
                            txs.extend(decode_envelope_txs(raw))
                            outcomes.extend({"code": code} for _, code in carried)
                        else:
                            txs.append(raw)
                            outcomes.append(result)
                    header = block["header"]
                    with self.lock:
                        self.run_.proposer[height] = header["proposer_address"].upper()
                        self.run_.heights.append((height, len(txs), header_time_ms(header["time"]),
                                                  -1))
                        if len(self.run_.heights) > 1 and self.run_.heights[-2][0] == height - 1:
                            last = self.run_.heights[-2]
                            self.run_.heights[-2] = (*last[:3],
                                                     int(block["last_commit"]["round"]))
                        self.run_.blocks += 1
                        self.run_.cometbft_txs += len(raws)
                        for tx, result in zip(txs, outcomes, strict=True):
                            digest = hashlib.sha256(tx).digest()
                            if result.get("code", 0) != 0:
                                self.run_.failed_in_block += 1
                            elif digest not in self.run_.final:
                                self.run_.final[digest] = seen
                                self.run_.last_final = seen
                                self.run_.tx_height[digest] = height
                        self.run_.seen_at[height] = seen
                    self.height = height
            except ChainmallError:
                pass
            self.stop.wait(POLL_S)


def run_scenario(name: str, rate: float, seconds: float, batch: int, kill: bool,
                 keep: Path | None, indexer: str, validators: int = 4,
                 block_kib: int | None = None, envelope: int = 0,
                 overrides: dict[str, int] | None = None, timeline: bool = False) -> Run:
    binary, _ = check_cometbft()
    count = int(rate * seconds * 1.05) + batch
    print(f"[{name}] preparing {count} senders and signed transfers ...", flush=True)
    senders = make_senders(count)
    root = Path(tempfile.mkdtemp(prefix="cm-bench-", dir=keep))
    base = free_port_base(10 * validators)
    net = init_localnet(root / "net", validators, base_port=base, chain_id=CHAIN,
                        settings=settings(indexer, block_kib, overrides, timeline),
                        genesis_time_ms=time.time_ns() // 1_000_000 - 1_000,
                        balances=[(k.address, 10**6) for k in senders], binary=binary)
    txs = [sign_tx(k, CHAIN, TX_TYPE_TRANSFER, 0, 1, 10**9,
                   encode_transfer(senders[(i + 1) % count].address, 1)).encode()
           for i, k in enumerate(senders)]
    nodes = range(validators)
    cpu_files = {i: net.node_dir(i) / "abci_cpu.json" for i in nodes}
    processes = {i: start_node(net, i, restart=False,
                               env={CPU_FILE_ENV: str(cpu_files[i])}) for i in nodes}
    run = Run(name, wall_minus_monotonic=time.time() - time.monotonic(), net_dir=root / "net")
    for i in nodes:
        key = json.loads((net.node_dir(i) / "cometbft" / "config" /
                          "priv_validator_key.json").read_text())
        run.node_address[key["address"].upper()] = i
    try:
        for i in nodes:
            rpc = CometRpc(net.nodes[i].rpc_url, timeout_s=2)
            deadline = time.monotonic() + 120
            while True:
                try:
                    if rpc.height() >= 1:
                        break
                except ChainmallError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit(f"node {i} did not start: see {net.node_dir(i)}")
                time.sleep(0.1)
        ports = {i: net.nodes[i].rpc_port for i in nodes}
        alive = set(nodes)
        lock = threading.Lock()
        cometbft = {i: [c for c in children(p.pid)] for i, p in processes.items()}

        def net_cpu() -> dict[tuple[str, int], float]:
            cpu = {("app", i): process_cpu_s(p.pid) for i, p in processes.items()}
            cpu.update({("cometbft", i): sum(process_cpu_s(c) for c in cs)
                        for i, cs in cometbft.items()})
            return cpu

        idle_from, idle_began = net_cpu(), time.monotonic()
        time.sleep(IDLE_S)  # the idle net's own CPU: what runs whatever the load
        cpu_before = net_cpu()
        idle_s = time.monotonic() - idle_began
        for (kind, _), after in cpu_before.items():
            run.idle_cpu_per_s[kind] = run.idle_cpu_per_s.get(kind, 0.0) + \
                (after - idle_from[(kind, _)]) / idle_s
        window_began = time.monotonic()
        client_before = sum(os.times()[:2])
        kinds_before = {i: abci_cpu(cpu_files[i]) for i in nodes}
        watcher = Watcher(run, ports[0], lock)
        watcher.start()
        shares = [txs[i::validators] for i in nodes]
        submitters = [Submitter(run, [i], ports, shares[i], rate / validators, batch, lock,
                                alive, envelope) for i in nodes]
        started = time.monotonic()
        run.offer_began, run.offer_s = started, len(txs) / rate
        resubmitter = Resubmitter(run, ports, batch, lock, alive, envelope)
        resubmitter.start()
        for submitter in submitters:
            submitter.start()
        killed_cpu: dict[tuple[str, int], float] = {}
        killed_kinds: dict[str, tuple[float, int]] = {}
        if kill:
            time.sleep(seconds / 2)  # the fault's moment in the schedule
            victim = processes[3]
            killed_cpu = {("app", 3): process_cpu_s(victim.pid),
                          ("cometbft", 3): sum(process_cpu_s(c) for c in cometbft[3])}
            killed_kinds = abci_cpu(cpu_files[3])
            with lock:
                alive.discard(3)
                run.killed_at = time.monotonic()
            os.killpg(victim.pid, signal.SIGKILL)
            victim.wait()
            for submitter in submitters:
                submitter.nodes = [n for n in submitter.nodes if n != 3] or [0, 1, 2]
            print(f"[{name}] killed validator 3 at {time.monotonic() - started:.1f} s",
                  flush=True)
        for submitter in submitters:
            submitter.join()
        offered_s = time.monotonic() - started
        end = time.monotonic() + DRAIN_S
        while time.monotonic() < end:
            with lock:
                if all(h in run.final for h in run.submitted):
                    break
            time.sleep(0.05)
        resubmitter.stop.set()
        resubmitter.join()
        watcher.stop.set()
        watcher.join()
        for (kind, i), before in cpu_before.items():
            if (kind, i) in killed_cpu:
                after = killed_cpu[(kind, i)]
            elif kind == "app":
                after = process_cpu_s(processes[i].pid)
            else:
                after = sum(process_cpu_s(c) for c in cometbft[i])
            run.cpu[kind] = run.cpu.get(kind, 0.0) + after - before
        run.cpu["client"] = sum(os.times()[:2]) - client_before
        run.window_s = time.monotonic() - window_began
        for i in nodes:
            after = killed_kinds if kill and i == 3 else abci_cpu(cpu_files[i])
            for kind, (seconds, count) in after.items():
                was = kinds_before[i].get(kind, (0.0, 0))
                total = run.app_kinds.setdefault(kind, [0.0, 0])
                total[0] += seconds - was[0]
                total[1] += count - was[1]
        print(f"[{name}] offered {len(txs)} txs in {offered_s:.1f} s", flush=True)
    finally:
        for process in processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(60)
            except Exception:
                os.killpg(process.pid, signal.SIGKILL)
    return run


def header_time_ms(text: str) -> int:
    """A CometBFT header time (RFC 3339, nanoseconds, UTC) in ms since the epoch."""
    date, _, rest = text.rstrip("Z").partition("T")
    clock, _, fraction = rest.partition(".")
    whole = datetime.fromisoformat(f"{date}T{clock}+00:00")
    return int(whole.timestamp()) * 1000 + int((fraction + "000")[:3])


def block_schedule(run: Run) -> str:
    """What the blocks seen looked like: carried txs per block, the header-time gap before
    each, and the heights decided in a round after 0 (a proposer that did not propose in
    time, e.g. a dead one) with the gap they cost."""
    rows = sorted(run.heights)
    gaps = [(b[0], b[2] - a[2], a[3]) for a, b in itertools.pairwise(rows) if b[0] == a[0] + 1]
    sizes = [txs for _, txs, _, _ in rows if txs]
    if not gaps or not sizes:
        return "blocks: too few seen"
    late = [gap for _, gap, rnd in gaps if rnd > 0]
    first = [gap for _, gap, rnd in gaps if rnd == 0]
    text = (f"blocks with txs {len(sizes)}: carried txs p50 {percentile(sizes, 0.5)}, max "
            f"{max(sizes)}; header-time gap p50 {percentile([g for _, g, _ in gaps], 0.5)} ms, "
            f"max {max(g for _, g, _ in gaps)} ms; heights decided after round 0: "
            f"{len(late)} of {len(gaps)}")
    if late:
        text += (f" (their gap mean {statistics.fmean(late):.0f} ms against "
                 f"{statistics.fmean(first) if first else 0:.0f} ms)")
    return text


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def steady_rate(run: Run) -> tuple[float, tuple[float, float]]:
    """The txs that became final inside the steady window (from STEADY_FROM of the offered
    period, or the first tx seen final if later, to the period's end) per second of it, and
    the window in seconds from the offer's start."""
    began = run.offer_began
    first_final = min((seen for h, seen in run.final.items() if h in run.submitted),
                      default=began + run.offer_s)
    start, end = max(STEADY_FROM * run.offer_s, first_final - began), run.offer_s
    if end <= start:
        return 0.0, (start, end)
    inside = sum(1 for h, seen in run.final.items()
                 if h in run.submitted and start < seen - began <= end)
    return inside / (end - start), (start, end)


def report(run: Run, kill: bool, nodes: int = 4) -> bool:
    latencies = [run.final[h] - t for h, t in run.submitted.items() if h in run.final]
    committed = len(latencies)
    lost = len(run.submitted) - committed
    span = (run.last_final - run.first_submit) if committed else float("inf")
    tps = committed / span if committed else 0.0
    steady_tps, window = steady_rate(run)
    p50, p99 = percentile(latencies, 0.50), percentile(latencies, 0.99)
    ok = tps >= TARGET_TPS and (p99 <= TARGET_P99_KILL_S if kill else
                                p50 <= TARGET_P50_S and p99 <= TARGET_P99_S)
    print(f"\n== {run.name}: {nodes} validators, "
          f"{'validator 3 killed half-way' if kill else 'all up'}")
    print(f"admitted {len(run.submitted)}, refused {run.refused}, committed {committed}, "
          f"admitted but not final after {DRAIN_S:.0f} s {lost}, failed in block "
          f"{run.failed_in_block}, blocks {run.blocks} ({committed / max(run.blocks, 1):.0f} "
          f"tx/block), CometBFT txs {run.cometbft_txs}")
    print(f"throughput, span (first send..last final, {span:.1f} s)          {tps:8.0f} tx/s   "
          f"target >= {TARGET_TPS}   {verdict(tps >= TARGET_TPS)}")
    print(f"throughput, steady window ({window[0]:.1f}..{window[1]:.1f} s of the offer) "
          f"{steady_tps:8.0f} tx/s   target >= {TARGET_TPS}   {verdict(steady_tps >= TARGET_TPS)}"
          f"   (the exit status goes by the span figure)")
    if kill:
        print(f"p99 submit->final {p99:6.3f} s  target <= {TARGET_P99_KILL_S} s  "
              f"{verdict(p99 <= TARGET_P99_KILL_S)}")
        print(f"p50 {p50:.3f} s (no target with a validator down)")
    else:
        print(f"p50 submit->final {p50:6.3f} s  target <= {TARGET_P50_S} s  "
              f"{verdict(p50 <= TARGET_P50_S)}")
        print(f"p99 submit->final {p99:6.3f} s  target <= {TARGET_P99_S} s  "
              f"{verdict(p99 <= TARGET_P99_S)}")
    print(block_schedule(run))
    print(f"latency p90 {percentile(latencies, 0.90):.3f} s, max {max(latencies):.3f} s, "
          f"mean {statistics.fmean(latencies):.3f} s")
    per_tx = {kind: seconds / committed * 1e6 for kind, seconds in run.cpu.items()}
    print(f"CPU per committed tx (all {nodes} nodes together): CometBFT "
          f"{per_tx['cometbft']:.0f} us, chainmall app {per_tx['app']:.0f} us, "
          f"client {per_tx['client']:.0f} us")
    idle = {kind: rate * run.window_s / committed * 1e6
            for kind, rate in run.idle_cpu_per_s.items()}
    print(f"of which the idle net's own CPU over the {run.window_s:.0f} s measured (idle rate "
          f"x time, all nodes): CometBFT {idle.get('cometbft', 0):.0f} us "
          f"({run.idle_cpu_per_s.get('cometbft', 0) * 100:.0f} % of a core), app "
          f"{idle.get('app', 0):.0f} us ({run.idle_cpu_per_s.get('app', 0) * 100:.0f} % of a core)")
    threads = sorted(((kind[len(THREAD_PREFIX):], seconds)
                      for kind, (seconds, _) in run.app_kinds.items()
                      if kind.startswith(THREAD_PREFIX)), key=lambda item: -item[1])
    kinds = sorted(((kind, v) for kind, v in run.app_kinds.items()
                    if not kind.startswith(THREAD_PREFIX)), key=lambda item: -item[1][0])
    accounted = sum(seconds for _, (seconds, _) in kinds)
    print("app CPU per committed tx by ABCI request kind (all nodes; thread CPU): " + ", ".join(
        f"{kind} {seconds / committed * 1e6:.1f} us ({int(calls)} calls)"
        for kind, (seconds, calls) in kinds))
    print(f"app CPU outside the ABCI calls (event loop, framing, sockets, our RPC, "
          f"supervisor): {(run.cpu['app'] - accounted) / committed * 1e6:.0f} us per tx")
    if threads:  # the nodes' own accounting, as of each node's last Commit
        print("app CPU per committed tx by thread (all nodes; MainThread is the event loop, "
              "abci-app the ABCI calls, chainmall-write the deferred block write): " + ", ".join(
                  f"{name} {seconds / committed * 1e6:.1f} us" for name, seconds in threads))
    node_cometbft = per_tx["cometbft"] / nodes
    node_app = per_tx["app"] / nodes
    print(f"per node per tx: CometBFT {node_cometbft:.0f} us + app {node_app:.0f} us = "
          f"{node_cometbft + node_app:.0f} us")
    marginal = (per_tx["cometbft"] + per_tx["app"] - sum(idle.values())) / nodes
    print(f"per node per tx without the idle share: {marginal:.0f} us; 2 idle cores would carry "
          f"about {2e6 / (nodes * marginal):,.0f} tx/s by CPU (the target needs "
          f"<= {2e6 / (nodes * TARGET_TPS):.0f} us)")
    for cores in (4, 8, 16):
        bound_cpu = cores * 1e6 / (node_cometbft + node_app)
        bound_app = 1e6 / node_app  # the application executes on one thread
        print(f"projection, 4 servers x {cores} cores (one node each): CPU bound "
              f"{min(bound_cpu, bound_app):,.0f} tx/s (cores {bound_cpu:,.0f}, app thread "
              f"{bound_app:,.0f}); network latency not modelled")
    return ok


def tail_report(run: Run, line: object | None = None) -> str:
    """What the slowest 1 % of txs (latency >= p99) waited through: the heights that
    made them final, each with its round, header-time gap, proposer (node), and with a
    timeline how far apart the nodes entered it; whether they went to the killed node
    first (resent by the client) and when they were sent against the kill."""
    latencies = {h: run.final[h] - t for h, t in run.submitted.items() if h in run.final}
    if not latencies:
        return "tail: no tx final"
    p99 = percentile(list(latencies.values()), 0.99)
    tail = [h for h, lat in latencies.items() if lat >= p99]
    rows = {h: (txs, ms, rnd) for h, txs, ms, rnd in run.heights}
    by_height: dict[int, int] = {}
    for digest in tail:
        height = run.tx_height.get(digest, -1)
        by_height[height] = by_height.get(height, 0) + 1
    resent = sum(1 for d in tail if d in run.resubmitted)
    text = [f"tail: {len(tail)} txs at or above p99 {p99:.3f} s, {resent} of them resent by "
            f"the client after their node died (all resent: {len(run.resubmitted)})"]
    if run.killed_at:
        sent = [run.submitted[d] - run.killed_at for d in tail]
        text.append(f"  sent against the kill: before {sum(1 for s in sent if s < 0)}, "
                    f"0-2 s after {sum(1 for s in sent if 0 <= s < 2)}, later "
                    f"{sum(1 for s in sent if s >= 2)}; the kill at "
                    f"{run.killed_at - run.offer_began:.1f} s of the offer")
    for height in sorted(by_height)[:12]:
        txs, ms, rnd = rows.get(height, (0, 0, -1))
        before = rows.get(height - 1)
        gap = f"{ms - before[1]} ms" if before else "?"
        node = run.node_address.get(run.proposer.get(height, ""), "?")
        skew = ""
        if line is not None:
            entries = [m[height].new_round for m in line.nodes.values()  # type: ignore[attr-defined]
                       if height in m and m[height].new_round is not None]
            rounds = max((m[height].commit_round for m in line.nodes.values()  # type: ignore[attr-defined]
                          if height in m), default=-1)
            skew = (f", nodes entered {(max(entries) - min(entries)) * 1e3:.0f} ms apart "
                    f"(highest round logged {rounds})") if entries else ""
        seen = run.seen_at.get(height)
        since_kill = (f", seen {seen - run.killed_at:+.2f} s from the kill"
                      if run.killed_at and seen else "")
        text.append(f"  height {height}: {by_height[height]} tail txs of {txs}; header gap "
                    f"{gap}, decided in round {rnd} (-1: not seen); "
                    f"proposer node {node}{skew}{since_kill}")
    return "\n".join(text)


def timeline_report(run: Run) -> None:
    """Where the blocks' time and a tx's latency went, from the nodes' CometBFT logs
    (`timeline.py`) and the client's clocks: a tx waits from its submission until the
    block that carries it is proposed (the first node holding the deciding round's
    complete block), then for the height's consensus and FinalizeBlock on node 0 (its
    "finalized block": CometBFT saves the results, which its RPC then serves, before our
    Commit), then for the watcher (polling node 0 every POLL_S, then reading the block
    and its results) to see it."""
    if run.net_dir is None:
        return
    line = load_timeline(run.net_dir)
    loaded = sorted(h for h, txs, _, _ in run.heights if txs)
    if not loaded:
        print("timeline: no block with txs seen")
        return
    print(timeline_text(line, heights=range(loaded[0], loaded[-1] + 1)))
    node0 = min(line.nodes, default="")
    offset = run.wall_minus_monotonic
    waits, heights_s, client = [], [], []
    for digest, submitted in run.submitted.items():
        height = run.tx_height.get(digest)
        if height is None:
            continue
        proposed, finalized = line.proposal_at(height), line.finalized_at(node0, height)
        seen = run.seen_at.get(height)
        if proposed is None or finalized is None or seen is None:
            continue
        waits.append(proposed - (submitted + offset))
        heights_s.append(finalized - proposed)
        client.append(seen + offset - finalized)
    if not waits:
        print("latency split: no tx with every mark")
        return
    parts = {"waiting for its block's proposal": waits,
             "the height (proposal -> node 0's FinalizeBlock done)": heights_s,
             "the client seeing it (poll, block and results read)": client}
    mean = sum(statistics.fmean(v) for v in parts.values())
    print(f"latency split over {len(waits)} txs (mean {mean:.3f} s; clocks of one host, log "
          f"stamps to the ms): " + ", ".join(
              f"{name} mean {statistics.fmean(v):.3f} s ({statistics.fmean(v) / mean * 100:.0f} "
              f"%), p50 {percentile(v, 0.5):.3f} s" for name, v in parts.items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # 5% above the 2,000 tx/s target: a run offered exactly the target cannot read it on
    # the span figure (the last tx's latency is in the time); the latency is judged at it.
    parser.add_argument("--rate", type=float, default=2_100,
                        help="offered tx/s (default 2,100: 5%% above the target)")
    parser.add_argument("--seconds", type=float, default=20, help="how long to offer load")
    parser.add_argument("--batch", type=int, default=200, help="txs per JSON-RPC batch")
    parser.add_argument("--scenario", choices=("steady", "kill", "both"), default="both")
    parser.add_argument("--validators", type=int, default=4,
                        help="validators (the targets are for 4; 1 isolates a node's costs)")
    parser.add_argument("--keep", type=Path, default=None, help="make the nets under here")
    parser.add_argument("--indexer", choices=("kv", "null"), default="null",
                        help="CometBFT's tx indexer (chainmall's RPC does not need it)")
    parser.add_argument("--block-kib", type=int, default=None,
                        help="cap on a block's bytes [default: the localnet's, 1024]")
    parser.add_argument("--envelope", type=int, default=None,
                        help="signed txs per batch envelope, one CometBFT tx each "
                             "(0: one CometBFT tx per signed tx) [default: --batch]")
    parser.add_argument("--timeline", action="store_true",
                        help="CometBFT's consensus steps logged (debug) and, after each "
                             "scenario, where the blocks' time and the latency went "
                             "(timeline.py; the nets are kept under --keep or the temp dir)")
    parser.add_argument("--setting", action="append", default=[], metavar="NAME=INT",
                        help="another value for a LocalnetSettings field, e.g. "
                             "flush_throttle_ms=20 or mempool_broadcast=0 (repeatable)")
    args = parser.parse_args()
    envelope = args.batch if args.envelope is None else args.envelope
    overrides = {name: int(value) for name, _, value in
                 (item.partition("=") for item in args.setting)}
    if overrides:
        print(f"settings changed: {overrides}")
    print(f"cluster benchmark on {machine()}; load average {os.getloadavg()}; "
          f"{envelope or 'no'} txs per envelope")
    ok = True
    for name, kill in (("steady", False), ("kill", True)):
        if args.scenario in (name, "both"):
            run = run_scenario(name, args.rate, args.seconds, args.batch, kill, args.keep,
                               args.indexer, args.validators, args.block_kib, envelope,
                               overrides, args.timeline)
            ok = report(run, kill, args.validators) and ok
            if args.timeline and run.net_dir is not None:
                timeline_report(run)
                print(tail_report(run, load_timeline(run.net_dir)))
            else:
                print(tail_report(run))
    print(f"\nload average after: {os.getloadavg()}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
