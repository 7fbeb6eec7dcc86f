"""Where a tx's time goes in a real node under loadgen.py's load: a timeline per tx and per block.

Run (a short loadgen.py run; its options pass through after `--`):

    .venv/bin/python bench/node_timeline.py -- --rate 5000 --duration 20
    .venv/bin/python bench/node_timeline.py --node-python /work/main/.venv/bin/python -- ...

The node runs as `chainmall node start` in a child process started through
this file (`--host`), which wraps a few of the node's functions with time
stamps before the CLI starts (nothing in the node's own code changes; the
wrappers cost a few µs per request line and per block, and well under one
per tx for the ids they note). With
`--node-python` the child is another checkout's interpreter (main's, say), so
both codes are measured by the same probes. Per request line (the loadgen's
JSON-RPC batch of `tx_submit_wait`): received, handed to admission (JSON
parsed, params bound), its verdicts back (admitted: in the mempool), its
finality wait over, its answer queued and written. Per admission batch: the
worker's checks (wall and thread CPU). Per block: reaped, the block thread's
start, FinalizeBlock, Commit (the store's `commit_block` inside it), the end of
`make_block`, the event loop's settling of it (finality) begun and ended;
the block thread's CPU and its run-queue delay (schedstat: waiting for a
core), so that wall - CPU - run-queue delay is what it waited for otherwise
(the GIL, the disk's sync). A sampler on the event loop records how late a
1 ms timer fires (the loop busy or starved of the GIL).

Printed: each tx's path split into consecutive parts (median, p90, p99), which
part of the median submit -> final each takes, and the blocks' wall split.
With `--memory-every S` a thread in the child samples the node's private
resident memory against glibc's arenas (every thread's, `malloc_info`),
Python's pymalloc blocks and the collector's objects by type and largest
containers (issue 12's soak: what grows); `--tracemalloc DIR` also dumps a
tracemalloc snapshot there at each sample (started after the first period:
the node runs several times slower under it).
"""

from __future__ import annotations

import argparse
import atexit
import contextvars
import ctypes
import heapq
import itertools
import pickle
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from pathlib import Path
from typing import Any

HOST_FLAG = "--host"
LAG_PERIOD_S = 0.001
MEMORY_EVERY_ENV = "CHAINMALL_TIMELINE_MEMORY_S"  # the child's memory sampler's period
TRACEMALLOC_ENV = "CHAINMALL_TIMELINE_TRACEMALLOC"  # a directory: snapshots go there


# --- the child: the node with probes -------------------------------------------------------

class _Trace:
    """What the probes recorded (lists of tuples, pickled at exit)."""

    def __init__(self) -> None:
        self.frames: list[tuple[Any, ...]] = []  # one per request line
        self.checks: list[tuple[Any, ...]] = []  # one per admission batch
        self.reaps: list[tuple[Any, ...]] = []  # one per block
        self.blocks: list[dict[str, Any]] = []  # one per block (block thread)
        self.settles: list[tuple[Any, ...]] = []  # one per block (event loop)
        self.lags: list[tuple[float, float]] = []  # (when, how late) of the 1 ms timer
        self.loop_cpu: list[tuple[float, float]] = []  # (when, loop thread CPU) per second
        self.memory: list[dict[str, float]] = []  # one per MEMORY_EVERY_S (see _memory)


def _schedstat() -> tuple[int, int]:
    """(ns on a core, ns waiting in the run queue) of the calling thread."""
    with open(f"/proc/self/task/{threading.get_native_id()}/schedstat", encoding="ascii") as f:
        run, wait, _ = f.read().split()
    return int(run), int(wait)


def install_probes(trace: _Trace) -> None:
    """Wrap the node's functions (see the module docstring)."""
    from chainmall.core.abci.app import Application
    from chainmall.core.node import admission as admission_module
    from chainmall.core.node.engine import SingleValidatorEngine
    from chainmall.core.node.node import Node
    from chainmall.core.node.producer import Producer
    from chainmall.core.rpc.server import StreamSession
    from chainmall.core.store import Store

    clock = time.perf_counter
    current: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar(
        "frame", default=None)

    serve = StreamSession._serve
    flush = StreamSession._flush

    async def traced_serve(self: Any, frame: bytes, received: float) -> None:
        # [received, task started, submit, admitted, wait begun, wait over, queued,
        #  written, tx ids]
        record: list[Any] = [received, clock(), 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, ()]
        current.set(record)
        try:
            await serve(self, frame)
        finally:
            record[6] = clock()
            pending = self.__dict__.setdefault("_timeline_pending", [])
            pending.append(record)

    def serve_now(self: Any, frame: bytes) -> Any:  # called in data_received: now = received
        return traced_serve(self, frame, clock())

    def traced_flush(self: Any) -> None:
        flush(self)
        pending = self.__dict__.get("_timeline_pending")
        if pending:
            now = clock()
            for record in pending:
                record[7] = now
                trace.frames.append(tuple(record))
            pending.clear()

    StreamSession._serve = serve_now  # type: ignore[method-assign]
    StreamSession._flush = traced_flush  # type: ignore[method-assign]

    submit_many = admission_module.Admission.submit_many

    async def traced_submit_many(self: Any, wires: Any) -> Any:
        record = current.get()
        if record is not None:
            record[2] = clock()
        verdicts = await submit_many(self, wires)
        if record is not None:
            record[3] = clock()
            record[8] = tuple(v.tx_id for v in verdicts if v.code == 0)
        return verdicts

    admission_module.Admission.submit_many = traced_submit_many  # type: ignore[method-assign]

    wait_many = Node.wait_many

    async def traced_wait_many(self: Any, tx_ids: Any, timeout_s: float) -> Any:
        record = current.get()
        if record is not None:
            record[4] = clock()
        statuses = await wait_many(self, tx_ids, timeout_s)
        if record is not None:
            record[5] = clock()
        return statuses

    Node.wait_many = traced_wait_many  # type: ignore[method-assign]

    check = admission_module.Admission._check
    last_check: list[Any] = [None]

    def traced_check(self: Any, wires: Any) -> Any:
        began, cpu = clock(), time.thread_time()
        checked = check(self, wires)
        last_check[0] = (began, clock(), time.thread_time() - cpu, len(wires))
        return checked

    admission_module.Admission._check = traced_check  # type: ignore[method-assign]

    admit = admission_module.Admission._admit

    async def traced_admit(self: Any, batch: Any) -> None:
        began = clock()
        await admit(self, batch)
        began_check, ended_check, cpu, count = last_check[0] or (began, began, 0.0, 0)
        trace.checks.append((began, began_check, ended_check, clock(), cpu, count))

    admission_module.Admission._admit = traced_admit  # type: ignore[method-assign]

    begin = Producer._begin

    def traced_begin(self: Any) -> Any:
        began = clock()
        in_hand = begin(self)
        if in_hand is not None:
            reaped = in_hand[0]
            trace.reaps.append((began, clock(), tuple(p.tx.tx_id for p in reaped),
                                self.block_txs, self._mempool.unreaped))
        return in_hand

    Producer._begin = traced_begin  # type: ignore[method-assign]

    block_state = threading.local()

    def stamp(name: str) -> None:
        record = getattr(block_state, "record", None)
        if record is not None:
            run, wait = _schedstat()
            record[name] = (clock(), time.thread_time(), run, wait)

    make_block = SingleValidatorEngine.make_block

    def traced_make_block(self: Any, txs: Any, now_ms: int, decoded: Any = None) -> Any:
        record: dict[str, Any] = {"txs": len(txs)}
        block_state.record = record
        stamp("start")
        try:
            produced = make_block(self, txs, now_ms, decoded)
        finally:
            stamp("end")
            block_state.record = None
        record["height"] = produced.block.header.height
        trace.blocks.append(record)
        return produced

    SingleValidatorEngine.make_block = traced_make_block  # type: ignore[method-assign]

    finalize_block = Application.finalize_block

    def traced_finalize(self: Any, request: Any, decoded: Any = None) -> Any:
        stamp("finalize_start")
        try:
            return finalize_block(self, request, decoded)
        finally:
            stamp("finalize_end")

    Application.finalize_block = traced_finalize  # type: ignore[method-assign]

    app_commit = Application.commit

    def traced_app_commit(self: Any) -> Any:
        stamp("commit_start")
        try:
            return app_commit(self)
        finally:
            stamp("commit_end")

    Application.commit = traced_app_commit  # type: ignore[method-assign]

    commit_block = Store.commit_block

    def traced_commit_block(self: Any, commit: Any) -> None:
        stamp("store_start")
        try:
            commit_block(self, commit)
        finally:
            stamp("store_end")

    Store.commit_block = traced_commit_block  # type: ignore[method-assign]

    on_block = Node._on_block

    async def traced_on_block(self: Any, produced: Any, reaped: Any, read: Any = None) -> None:
        began = clock()
        await on_block(self, produced, reaped, read)
        trace.settles.append((produced.block.header.height, began, clock()))

    Node._on_block = traced_on_block  # type: ignore[method-assign]

    start = Node.start

    async def traced_start(self: Any) -> None:
        await start(self)
        import asyncio

        loop = asyncio.get_running_loop()
        expected = [clock() + LAG_PERIOD_S]
        next_cpu = [clock() + 1.0]

        def tick() -> None:
            now = clock()
            trace.lags.append((now, now - expected[0]))
            if now >= next_cpu[0]:
                trace.loop_cpu.append((now, time.thread_time()))
                next_cpu[0] = now + 1.0
            expected[0] = now + LAG_PERIOD_S
            if not self._stopped:
                loop.call_later(LAG_PERIOD_S, tick)

        loop.call_later(LAG_PERIOD_S, tick)

    Node.start = traced_start  # type: ignore[method-assign]


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def _memory(started: float) -> dict[str, float]:
    """The process's private resident memory against what its allocators hold: glibc's
    heap (`mallinfo2`: in use, free inside the arenas, mapped chunks) and Python's
    (pymalloc blocks, tracemalloc's traced bytes when it runs), so that growth of the
    first can be put on the allocator that holds it."""
    import gc
    import tracemalloc

    found: dict[str, float] = {"t": time.perf_counter() - started}
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(("RssAnon:", "RssFile:")):
                found[line.split(":")[0]] = int(line.split()[1]) * 1024
    info = ctypes.CDLL(None).mallinfo2
    info.restype = _MallInfo2
    got = info()
    found.update(heap_in_use=got.uordblks, heap_free=got.fordblks, heap_mapped=got.hblkhd,
                 heap_arena=got.arena)
    found.update(_malloc_arenas())
    found["py_blocks"] = sys.getallocatedblocks()
    objects = gc.get_objects()
    found["gc_objects"] = len(objects)
    # What the collector tracks, by type, and the biggest containers (with their type):
    # a structure that keeps growing shows up in one of the two.
    found["types"] = Counter(type(o).__qualname__ for o in objects).most_common(12)
    sized = []
    for o in objects:
        if isinstance(o, (dict, list, set, deque)):
            sized.append((len(o), type(o).__qualname__))
    found["largest"] = heapq.nlargest(8, sized)
    del objects, sized
    if tracemalloc.is_tracing():
        found["traced"] = tracemalloc.get_traced_memory()[0]
    return found


def _malloc_arenas() -> dict[str, float]:
    """glibc's `malloc_info` summed over every arena (mallinfo2 sees the main one only):
    the bytes its arenas hold from the system, the free bytes inside them, and the
    chunks it mapped whole (large allocations)."""
    import re
    import tempfile as temp_module

    libc = ctypes.CDLL(None)
    libc.fopen.restype = ctypes.c_void_p
    libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    with temp_module.NamedTemporaryFile(suffix=".xml") as out:
        handle = libc.fopen(out.name.encode(), b"w")
        libc.malloc_info(0, handle)
        libc.fclose(handle)
        xml = Path(out.name).read_text()
    tail = xml[xml.rfind("</heap>"):]  # the totals over every arena follow the last heap
    free = sum(int(size) for size in re.findall(r'<total type="(?:fast|rest)" count="\d+" '
                                                 r'size="(\d+)"', tail))
    system = re.search(r'<system type="current" size="(\d+)"', tail)
    mapped = re.search(r'<total type="mmap" count="\d+" size="(\d+)"', tail)
    return {"arenas_system": int(system.group(1)) if system else 0,
            "arenas_free": free, "arenas_mmap": int(mapped.group(1)) if mapped else 0,
            "arenas": xml.count("<heap nr=")}


def _sample_memory(trace: _Trace, every_s: float, snapshots: Path | None) -> None:
    """The child's memory sampler thread (and tracemalloc's snapshots, if asked)."""
    import tracemalloc

    started = time.perf_counter()
    index = 0
    while True:
        time.sleep(every_s)
        if snapshots is not None and not tracemalloc.is_tracing():
            tracemalloc.start(3)  # after start-up (the genesis' tree under it is too slow)
        trace.memory.append(_memory(started))
        if snapshots is not None:
            tracemalloc.take_snapshot().dump(str(snapshots / f"snapshot-{index:04d}.bin"))
        index += 1


def host(argv: list[str]) -> None:
    """The child: `--host TRACE_FILE <chainmall CLI args>`."""
    import os

    out = Path(argv[0])
    trace = _Trace()
    install_probes(trace)
    every = float(os.environ.get(MEMORY_EVERY_ENV, "0") or 0)
    snapshots = os.environ.get(TRACEMALLOC_ENV)
    if every > 0:
        threading.Thread(target=_sample_memory, daemon=True, name="timeline-memory",
                         args=(trace, every, Path(snapshots) if snapshots else None)).start()

    def dump() -> None:
        out.write_bytes(pickle.dumps(trace.__dict__))

    atexit.register(dump)
    sys.argv = ["chainmall", *argv[1:]]
    from chainmall.cli.main import cli

    cli()


# --- the parent: loadgen.py's run, then the analysis ---------------------------------------

def _quantiles(values: list[float]) -> tuple[float, float, float]:
    if not values:
        return 0.0, 0.0, 0.0
    ordered = sorted(values)

    def at(fraction: float) -> float:
        return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]

    return at(0.5), at(0.9), at(0.99)


def analyse(data: dict[str, Any], skip_s: float = 2.0) -> dict[str, Any]:
    """Per-tx parts and per-block split from a trace (the first `skip_s` of load left out)."""
    frames = [f for f in data["frames"] if f[8] and f[5]]
    if not frames:
        return {}
    t0 = min(f[0] for f in frames) + skip_s
    frames = [f for f in frames if f[0] >= t0]
    reaped_at: dict[bytes, int] = {}
    for index, (_, _, ids, _, _) in enumerate(data["reaps"]):
        for tx_id in ids:
            reaped_at[tx_id] = index
    blocks = data["blocks"]
    settles = {height: (began, ended) for height, began, ended in data["settles"]}
    # The n-th reap is the n-th block made (the producer makes its reaps in order).
    parts: dict[str, list[float]] = {name: [] for name in PARTS}
    totals: list[float] = []
    for f in frames:
        received, started, submit, admitted, _wait_begun, wait_over, queued, written, ids = f
        last = max((reaped_at.get(tx_id, -1) for tx_id in ids), default=-1)
        if last < 0 or last >= len(blocks):
            continue
        reap = data["reaps"][last]
        block = blocks[last]
        settle = settles.get(block.get("height"))
        if settle is None:
            continue
        first = min(reaped_at.get(tx_id, last) for tx_id in ids)
        values = {
            "socket read -> task start": started - received,
            "task start -> submit (JSON, params)": submit - started,
            "submit -> admitted (queue, window, check, pool)": admitted - submit,
            "admitted -> first reap (mempool wait)": data["reaps"][first][0] - admitted,
            "first reap -> last reap (line split over blocks)": reap[0] - data["reaps"][first][0],
            "reap -> block thread start": block["start"][0] - reap[0],
            "block thread: FinalizeBlock": block["finalize_end"][0] - block["start"][0],
            "block thread: sign, attach": block["commit_start"][0] - block["finalize_end"][0],
            "block thread: Commit": block["commit_end"][0] - block["commit_start"][0],
            "block thread: read back": block["end"][0] - block["commit_end"][0],
            "block done -> loop settles it": settle[0] - block["end"][0],
            "settle (finality, recheck)": settle[1] - settle[0],
            "settled -> wait over": wait_over - settle[1],
            "wait over -> answer queued (JSON)": queued - wait_over,
            "answer queued -> written": written - queued,
        }
        for name, value in values.items():
            parts[name].append(value)
        totals.append(written - received)
    block_rows = []
    for block in blocks:
        start, end = block["start"], block["end"]
        wall = end[0] - start[0]
        cpu = end[1] - start[1]
        runq = (end[3] - start[3]) / 1e9
        commit_wall = block["commit_end"][0] - block["commit_start"][0]
        commit_cpu = block["commit_end"][1] - block["commit_start"][1]
        store_wall = block["store_end"][0] - block["store_start"][0]
        store_cpu = block["store_end"][1] - block["store_start"][1]
        fin_wall = block["finalize_end"][0] - block["finalize_start"][0]
        fin_cpu = block["finalize_end"][1] - block["finalize_start"][1]
        fin_runq = (block["finalize_end"][3] - block["finalize_start"][3]) / 1e9
        block_rows.append({"txs": block["txs"], "wall": wall, "cpu": cpu, "runq": runq,
                           "other_wait": wall - cpu - runq, "fin_wall": fin_wall,
                           "fin_cpu": fin_cpu, "fin_runq": fin_runq,
                           "commit_wall": commit_wall, "commit_cpu": commit_cpu,
                           "store_wall": store_wall, "store_cpu": store_cpu,
                           "start": start[0]})
    block_rows = [b for b in block_rows if b["start"] >= t0]
    lags = [lag for when, lag in data["lags"] if when >= t0]
    return {"parts": parts, "totals": totals, "blocks": block_rows, "lags": lags,
            "reaps": data["reaps"], "checks": [c for c in data["checks"] if c[0] >= t0]}


PARTS = ("socket read -> task start", "task start -> submit (JSON, params)",
         "submit -> admitted (queue, window, check, pool)",
         "admitted -> first reap (mempool wait)",
         "first reap -> last reap (line split over blocks)", "reap -> block thread start",
         "block thread: FinalizeBlock", "block thread: sign, attach", "block thread: Commit",
         "block thread: read back", "block done -> loop settles it",
         "settle (finality, recheck)", "settled -> wait over",
         "wait over -> answer queued (JSON)", "answer queued -> written")


def report(found: dict[str, Any]) -> None:
    """Print the analysis."""
    if not found:
        print("no complete request lines traced")
        return
    totals = found["totals"]
    p50, p90, p99 = _quantiles(totals)
    print(f"request lines traced: {len(totals):,}; node-side received -> answer written: "
          f"p50 {p50 * 1e3:.0f} ms, p90 {p90 * 1e3:.0f} ms, p99 {p99 * 1e3:.0f} ms")
    mean_total = statistics.fmean(totals)
    print(f"{'part':52} {'median':>8} {'p90':>8} {'p99':>8} {'mean':>8} {'share':>6}  (ms)")
    for name in PARTS:
        values = found["parts"][name]
        a, b, c = _quantiles(values)
        mean = statistics.fmean(values) if values else 0.0
        print(f"{name:52} {a * 1e3:8.1f} {b * 1e3:8.1f} {c * 1e3:8.1f} {mean * 1e3:8.1f} "
              f"{100 * mean / mean_total:5.1f}%")
    blocks = found["blocks"]
    if blocks:
        def med(key: str) -> float:
            return statistics.median(b[key] for b in blocks)

        txs = statistics.median(b["txs"] for b in blocks)
        period = statistics.median(b2["start"] - b1["start"]
                                   for b1, b2 in itertools.pairwise(blocks)) \
            if len(blocks) > 1 else 0.0
        print(f"blocks: {len(blocks)}, median {txs:.0f} txs, median period "
              f"{period * 1e3:.0f} ms (start to start)")
        print(f"block thread per block (median ms): wall {med('wall') * 1e3:.1f} = CPU "
              f"{med('cpu') * 1e3:.1f} + run-queue delay {med('runq') * 1e3:.1f} + other "
              f"waits (GIL, disk) {med('other_wait') * 1e3:.1f}; FinalizeBlock wall "
              f"{med('fin_wall') * 1e3:.1f} (CPU {med('fin_cpu') * 1e3:.1f}, run queue "
              f"{med('fin_runq') * 1e3:.1f}); Commit wall {med('commit_wall') * 1e3:.1f} "
              f"(CPU {med('commit_cpu') * 1e3:.1f}; the store's commit_block wall "
              f"{med('store_wall') * 1e3:.1f}, CPU {med('store_cpu') * 1e3:.1f})")
        total_txs = sum(b["txs"] for b in blocks)
        print("block thread per tx (all blocks): wall "
              f"{1e6 * sum(b['wall'] for b in blocks) / total_txs:.1f} us, CPU "
              f"{1e6 * sum(b['cpu'] for b in blocks) / total_txs:.1f} us, run queue "
              f"{1e6 * sum(b['runq'] for b in blocks) / total_txs:.1f} us, other waits "
              f"{1e6 * sum(b['other_wait'] for b in blocks) / total_txs:.1f} us")
    lags = found["lags"]
    if lags:
        a, b, c = _quantiles(lags)
        print(f"event loop: a 1 ms timer fired late by median {a * 1e3:.2f} ms, p90 "
              f"{b * 1e3:.2f}, p99 {c * 1e3:.2f} ms ({len(lags):,} samples)")
    checks = found["checks"]
    if checks:
        sizes = [c[5] for c in checks]
        print(f"admission batches: {len(checks):,}, median {statistics.median(sizes):.0f} txs; "
              f"check wall median {statistics.median(c[2] - c[1] for c in checks) * 1e3:.1f} "
              f"ms, whole batch (loop) {statistics.median(c[3] - c[0] for c in checks) * 1e3:.1f}"
              " ms")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == HOST_FLAG:
        host(argv[1:])
        return {}
    if "--" in argv:
        split = argv.index("--")
        own, passed = argv[:split], argv[split + 1:]
    else:
        own, passed = argv, []
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--node-python", default=sys.executable,
                        help="the interpreter (and so the checkout) that runs the node")
    parser.add_argument("--trace", type=Path, default=None, help="keep the raw trace here")
    parser.add_argument("--skip-s", type=float, default=2.0,
                        help="leave out the first seconds of load (warm-up)")
    parser.add_argument("--memory-every", type=float, default=0.0, metavar="S",
                        help="sample the node's memory against its allocators (glibc's "
                             "heap, Python's blocks) every S seconds")
    parser.add_argument("--tracemalloc", type=Path, default=None, metavar="DIR",
                        help="run the node under tracemalloc and dump a snapshot into DIR "
                             "at each memory sample (slow: for finding what grows)")
    args = parser.parse_args(own)
    import os

    if args.memory_every > 0:
        os.environ[MEMORY_EVERY_ENV] = str(args.memory_every)
    if args.tracemalloc is not None:
        args.tracemalloc.mkdir(parents=True, exist_ok=True)
        os.environ[TRACEMALLOC_ENV] = str(args.tracemalloc.resolve())
    sys.path.insert(0, str(Path(__file__).parent))
    import loadgen

    with tempfile.TemporaryDirectory(prefix="chainmall-timeline-") as temp:
        trace_path = args.trace or Path(temp) / "trace.pickle"
        launcher = (args.node_python, str(Path(__file__).resolve()), HOST_FLAG, str(trace_path))

        import subprocess

        from chainmall.core.node import process as process_module

        popen = subprocess.Popen

        def traced_popen(command: list[str], *rest: Any, **options: Any) -> Any:
            # NodeProcess runs [python, "-m", "chainmall.cli", "node", "start", ...]
            if command[1:5] == ["-m", "chainmall.cli", "node", "start"]:
                command = [*launcher, *command[3:]]
            return popen(command, *rest, **options)

        process_module.subprocess.Popen = traced_popen  # type: ignore[attr-defined]
        result = loadgen.main(passed)
        data = pickle.loads(trace_path.read_bytes())
    found = analyse(data, args.skip_s)
    print(f"--- node timeline (node: {args.node_python}) ---")
    report(found)
    memory = data.get("memory") or []
    if memory:
        print("node memory against its allocators (MiB):")
        print("  RssAnon: the node's private resident memory; malloc: glibc's arenas (all "
              "threads') from the system, of it free, and its whole-mapped chunks; main "
              "arena in use (mallinfo2); Python's pymalloc blocks, gc objects, tracemalloc's "
              "traced bytes (when on)")
        print(f"{'t s':>6} {'RssAnon':>8} {'malloc':>8} {'free':>7} {'mmap':>7} {'arenas':>6} "
              f"{'main use':>9} {'py blocks':>10} {'gc objects':>11} {'traced':>8}")
        for m in memory:
            print(f"{m['t']:6.0f} {m.get('RssAnon', 0) / 2**20:8.1f} "
                  f"{m.get('arenas_system', 0) / 2**20:8.1f} "
                  f"{m.get('arenas_free', 0) / 2**20:7.1f} "
                  f"{m.get('arenas_mmap', 0) / 2**20:7.1f} {m.get('arenas', 0):6} "
                  f"{m['heap_in_use'] / 2**20:9.1f} {m['py_blocks']:10,} "
                  f"{m['gc_objects']:11,} {m.get('traced', 0) / 2**20:8.1f}")
    if memory:
        first, last = memory[len(memory) // 3], memory[-1]
        print(f"gc-tracked objects by type at t = {first['t']:.0f} s -> {last['t']:.0f} s:")
        was = dict(first["types"])
        for name, count in last["types"]:
            print(f"  {name:28} {was.get(name, 0):>10,} -> {count:>10,}")
        print("the largest containers (length, type) at each sample:")
        for m in memory:
            print(f"  t={m['t']:5.0f} " + ", ".join(f"{n:,} {k}" for n, k in m["largest"]))
    found["memory"] = memory
    return {"loadgen": result, "timeline": found}


if __name__ == "__main__":
    main()
