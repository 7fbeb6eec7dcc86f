"""The node's own CPU per tx, by thread, with no sockets and no other process in the way.

Run:

    .venv/bin/python bench/node_overhead.py                  # 40,000 txs at 3,000 tx/s
    .venv/bin/python bench/node_overhead.py --rate 5000 --count 60000
    .venv/bin/python bench/node_overhead.py --profile-loop 40     # the event loop's costliest
    .venv/bin/python bench/node_overhead.py --rpc-only            # the RPC layer alone

A `Node` (admission, mempool, engine, finality) and the RPC's `Dispatcher`
run in this process; JSON-RPC batch frames of `tx_submit_wait` (the load
generator's, pre-encoded) are handed to the dispatcher at `--rate`, paced
as loadgen.py paces them, and every answer is encoded as the server would
send it. What is measured is CPU time per final tx of each thread (the event
loop: JSON decode, dispatch, admission bookkeeping, the mempool, finality,
the answers; the admission thread: stateless checks and signatures; the
block thread: execution, tree, commit), read from the threads' own clocks.
Thread CPU time does not count the time other processes hold the cores, so
these figures stay comparable on a shared machine where loadgen.py's rates
and latencies do not (caches and frequency still move them by some 10-20%).

Left out: the sockets (reads, writes, framing) and the load generator, which
loadgen.py measures with the rest.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, cast

import uvloop
from benchutil import machine
from chainmall.core.abci.app import Application
from chainmall.core.constants import SWITCH_INTERVAL_US_DEFAULT
from chainmall.core.genesis import make_genesis
from chainmall.core.keys import KeyPair
from chainmall.core.node.app import tune_interpreter
from chainmall.core.node.config import load_config
from chainmall.core.node.node import Node
from chainmall.core.node.services import NodeRpcServices
from chainmall.core.rpc.config import RpcConfig, RpcLimits
from chainmall.core.rpc.server import RpcServer
from chainmall.core.rpc.services import NodeServices, SubmitResult, TxInfo, TxState
from chainmall.core.rpc.session import Session
from chainmall.core.store import Store
from loadgen import CHAIN, _addresses, request_lines, signed_transfers, thread_cpu_seconds


class _Sink(Session):
    """A session whose answers are counted, not sent."""

    def __init__(self, limits: RpcLimits) -> None:
        super().__init__(limits, "bench", authenticated=True)
        self.answers = 0

    def send(self, payload: bytes) -> None:
        self.answers += 1

    def close(self, reason: str = "") -> None:
        self.closed = True


async def _run(frames: list[bytes], batch: int, rate: float, sessions: int,
               accounts: int, data: Path, settings: dict[str, str],
               loop_profiler: cProfile.Profile | None = None) -> dict[str, Any]:
    validator = KeyPair.from_seed(b"\x07" * 32)
    genesis = make_genesis(CHAIN, [(address, 10**15) for address in _addresses(accounts)],
                           [(validator.public_key, 1)], genesis_time_ms=0, fee_min=1)
    config = load_config(environ={}, flags={"node.block_interval_ms": "250", **settings})
    limits = RpcLimits(requests_per_s_max=10**6, requests_burst_max=10**6)
    with Store(data) as store:
        app = Application(store, genesis, version="bench")
        node = Node(app, validator, config, version="bench")
        blocks_seen: list[tuple[int, float, float]] = []  # (txs, finalize ms, commit ms)
        node.add_block_listener(lambda produced: blocks_seen.append(
            (len(produced.block.txs), produced.finalize_ms, produced.commit_ms)))
        await node.start()
        # As run_node does once the node serves: what it holds now is never scanned again.
        gc.collect()
        gc.freeze()
        dispatcher = RpcServer(NodeRpcServices(node), RpcConfig(limits=limits)).dispatcher
        sinks = [_Sink(limits) for _ in range(sessions)]
        loop = asyncio.get_running_loop()
        pending: set[asyncio.Task[None]] = set()

        latencies: list[float] = []  # frame handed over -> its answer (submit -> final)

        async def answer(sink: _Sink, frame: bytes) -> None:
            began = time.perf_counter()
            response = await dispatcher.handle_frame(sink, frame)
            if response is not None:
                sink.send(response)
            latencies.append(time.perf_counter() - began)

        threads_before = thread_cpu_seconds(os.getpid())
        if loop_profiler is not None:
            loop_profiler.enable()
        loop_before, started = time.thread_time(), time.perf_counter()
        sent = 0
        for index, frame in enumerate(frames):
            due = started + sent / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = loop.create_task(answer(sinks[index % sessions], frame))
            pending.add(task)
            task.add_done_callback(pending.discard)
            sent += batch
        await asyncio.gather(*pending)
        elapsed = time.perf_counter() - started
        loop_cpu = time.thread_time() - loop_before
        if loop_profiler is not None:
            loop_profiler.disable()
        by_thread = thread_cpu_seconds(os.getpid())
        by_thread.subtract(threads_before)
        blocks = node.app.info().last_block_height
        await node.stop()
    return {"loop_cpu_s": loop_cpu, "by_thread": by_thread, "elapsed_s": elapsed,
            "blocks": blocks, "answers": sum(sink.answers for sink in sinks),
            "blocks_seen": blocks_seen, "latencies": sorted(latencies)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=3_000, help="offered tx/s")
    parser.add_argument("--count", type=int, default=40_000, help="txs")
    parser.add_argument("--batch", type=int, default=20, help="txs per JSON-RPC batch")
    parser.add_argument("--sessions", type=int, default=16)
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--senders", type=int, default=5_000)
    parser.add_argument("--signed-cache", type=Path, default=None,
                        help="as loadgen.py's: reuse the signed txs of an earlier run")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a node setting (config.toml key), e.g. "
                             "mempool.admission_window_ms=10")
    parser.add_argument("--profile-block", type=int, default=0, metavar="N",
                        help="profile the block thread by thread CPU (cProfile) and print "
                             "its N costliest functions")
    parser.add_argument("--profile-loop", type=int, default=0, metavar="N",
                        help="profile the event loop's thread (RPC decoding, dispatch, "
                             "admission's bookkeeping, the mempool, finality) by thread CPU "
                             "and print its N costliest functions")
    parser.add_argument("--rpc-only", action="store_true",
                        help="time only the RPC layer (JSON decode, dispatch, params, "
                             "answers, encode) against stub services that admit every tx "
                             "and make it final at once: the per-tx Python that a front "
                             "process decoding the RPC could take off the node's loop")
    parser.add_argument("--switch-interval-ms", type=float, default=None,
                        help="the interpreter's thread switch interval (default: the node "
                             "process's: node.switch_interval_us)")
    args = parser.parse_args(argv)
    # As the node process (core/node/app.py); `--set node.switch_interval_us=N` or
    # `--switch-interval-ms` change the switch interval as the setting does.
    interval_us = int(dict(item.split("=", 1) for item in args.set).get(
        "node.switch_interval_us", SWITCH_INTERVAL_US_DEFAULT))
    if args.switch_interval_ms is not None:
        interval_us = round(args.switch_interval_ms * 1000)
    tune_interpreter(interval_us)
    wires = signed_transfers(args.count, args.senders, args.accounts, args.signed_cache)
    frames = [line.rstrip(b"\n") for line in request_lines(wires, args.batch)]
    if args.rpc_only:
        return _rpc_only(frames, len(wires))
    profiler = _profile_block_thread() if args.profile_block else None
    loop_profiler = cProfile.Profile(time.thread_time) if args.profile_loop else None
    with tempfile.TemporaryDirectory(prefix="chainmall-overhead-") as temp:
        found = _run_in_uvloop(frames, args, Path(temp) / "ledger", loop_profiler)
    count = len(wires)
    per_tx = {name: round(1e6 * seconds / count, 1)
              for name, seconds in Counter(found["by_thread"]).most_common() if seconds > 0}
    result = {"machine": machine(), "load_average": os.getloadavg(), "txs": count,
              "offered_tx_per_s": args.rate, "blocks": found["blocks"],
              "elapsed_s": round(found["elapsed_s"], 1),
              "loop_us_per_tx": round(1e6 * found["loop_cpu_s"] / count, 1),
              "us_per_tx_by_thread": per_tx,
              "node_us_per_tx": round(sum(per_tx.values()), 1)}
    print(f"machine: {result['machine']}; load average {result['load_average'][0]:.1f}")
    print(f"{count:,} txs offered at {args.rate:.0f} tx/s in batches of {args.batch} over "
          f"{args.sessions} sessions: {found['blocks']} blocks in {result['elapsed_s']} s")
    print(f"node CPU per tx (thread clocks, sockets left out): {result['node_us_per_tx']} us; "
          f"by thread {per_tx}")
    latencies = found["latencies"]
    if latencies:
        result["p50_s"] = round(latencies[len(latencies) // 2], 3)
        result["p99_s"] = round(latencies[min(len(latencies) - 1, len(latencies) * 99 // 100)], 3)
        print(f"submit -> final (no sockets): p50 {result['p50_s']} s, p99 {result['p99_s']} s "
              f"(loadgen.py's targets: p50 <= 0.5 s, p99 <= 1 s)")
    print(f"event loop CPU per tx: {result['loop_us_per_tx']} us "
          f"(5,000 tx/s on 2 cores leaves 400 us per tx for everything, generator included)")
    seen = [entry for entry in found["blocks_seen"] if entry[0]]
    if seen:
        walls = [(finalize + commit) / txs * 1000 for txs, finalize, commit in seen]
        result["block_txs_median"] = statistics.median(txs for txs, _, _ in seen)
        result["block_wall_us_per_tx_median"] = round(statistics.median(walls), 1)
        result["block_wall_ms_max"] = round(max(f + c for _, f, c in seen), 1)
        print(f"blocks: median {result['block_txs_median']} txs, make + commit "
              f"{result['block_wall_us_per_tx_median']} us per tx (wall, median), longest "
              f"{result['block_wall_ms_max']} ms; switch interval "
              f"{sys.getswitchinterval() * 1000:g} ms")
    if profiler is not None:
        print(f"block thread, by thread CPU (cProfile, {args.profile_block} costliest):")
        stats = pstats.Stats(profiler)
        stats.sort_stats("tottime").print_stats(args.profile_block)
        stats.sort_stats("cumulative").print_stats(args.profile_block)
    if loop_profiler is not None:
        print(f"event loop, by thread CPU (cProfile, {args.profile_loop} costliest):")
        stats = pstats.Stats(loop_profiler)
        stats.sort_stats("tottime").print_stats(args.profile_loop)
        stats.sort_stats("cumulative").print_stats(args.profile_loop)
    return result


class _StubServices:
    """Services that admit every tx (its first 32 bytes as its id) and answer it final."""

    async def submit_txs(self, txs: list[bytes]) -> list[SubmitResult]:
        return [SubmitResult(tx[:32], 0, "") for tx in txs]

    async def wait_txs(self, tx_ids: list[bytes], timeout_s: float) -> list[TxInfo]:
        return [TxInfo(tx_id, TxState.FINAL, 1, index) for index, tx_id in enumerate(tx_ids)]


def _rpc_only(frames: list[bytes], count: int, rounds: int = 7) -> dict[str, Any]:
    """The RPC layer's thread CPU per tx over every frame, `rounds` times (median, best)."""
    limits = RpcLimits(requests_per_s_max=10**9, requests_burst_max=10**9)

    async def run() -> list[float]:
        services = cast(NodeServices, _StubServices())
        dispatcher = RpcServer(services, RpcConfig(limits=limits)).dispatcher
        sink = _Sink(limits)
        per_tx = []
        for _ in range(rounds):
            began = time.thread_time()
            for frame in frames:
                answer = await dispatcher.handle_frame(sink, frame)
                assert answer is not None and b'"final"' in answer
            per_tx.append(1e6 * (time.thread_time() - began) / count)
        return per_tx

    per_tx = uvloop.run(run())
    result = {"machine": machine(), "load_average": os.getloadavg(), "txs": count,
              "rpc_us_per_tx_median": round(statistics.median(per_tx), 2),
              "rpc_us_per_tx_best": round(min(per_tx), 2)}
    print(f"machine: {result['machine']}; load average {result['load_average'][0]:.1f}")
    print(f"RPC layer alone (stub services), {count:,} tx_submit_wait in batches: "
          f"{result['rpc_us_per_tx_median']} us per tx (median of {rounds}; best "
          f"{result['rpc_us_per_tx_best']}); 5,000 tx/s on 2 cores leaves 400 us per tx")
    return result


def _profile_block_thread() -> cProfile.Profile:
    """Run every block (`producer._make_block`) under one cProfile by thread CPU time."""
    from chainmall.core.node import producer

    profiler = cProfile.Profile(time.thread_time)
    make_block = producer._make_block

    def profiled(*args: Any) -> Any:
        return profiler.runcall(make_block, *args)

    producer._make_block = profiled  # type: ignore[assignment]
    return profiler


def _run_in_uvloop(frames: list[bytes], args: argparse.Namespace, data: Path,
                   loop_profiler: cProfile.Profile | None = None) -> dict[str, Any]:
    settings = dict(item.split("=", 1) for item in args.set)
    return uvloop.run(_run(frames, args.batch, args.rate, args.sessions, args.accounts, data,
                           settings, loop_profiler))


if __name__ == "__main__":
    main()
