"""The cost of applying one block, by phase: instructions (callgrind) and thread CPU time.

Wall-clock rates on a shared machine move with the other tenants' load;
instruction counts do not. This tool applies ONE block of signed transfers
(the next block of a chain built beforehand) to a copy of a stored ledger,
stopping after a given phase, so the cost of each phase is the difference
between two stopping points:

    setup     open the store and the state machine, read the block's bytes
    decode    + decode_block
    check     + check_block_txs (stateless checks, signatures, tx root)
    finalize  + finalize_block (execution, state tree)
    commit    + commit (the LMDB write transaction, fsync)

Usage (from the repository root):

    .venv/bin/python bench/apply_cost.py prepare DIR   # build the chain (about a minute)
    .venv/bin/python bench/apply_cost.py report DIR    # instructions per tx by phase
    .venv/bin/python bench/apply_cost.py cpu DIR       # thread CPU µs per tx by phase

`report` runs `valgrind --tool=callgrind` once per stopping point (about a
minute each). Under valgrind, curve25519-dalek runs its AVX2 back end
(valgrind has no AVX-512), so the "check" row is the AVX2 signature cost;
the rest is the Python share this tool exists to measure. `cpu` replays the
block several times in-process and keeps each phase's fastest thread CPU
time (the main thread only: the signature threads of `check` are not in it).

Two more commands replay bench_apply.py's chain (its first CHAINMALL_BENCH_BLOCKS
blocks, default 30 here; from CHAINMALL_BENCH_CACHE when it holds them) serially
into a fresh ledger, every block's checks done before the clock starts:

    .venv/bin/python bench/apply_cost.py replay              # thread CPU µs/tx by phase
    .venv/bin/python bench/apply_cost.py compare /work/main  # against another checkout

`replay` prints the main thread's CPU per tx in execution, the state tree
update and the commit (the Python share bench_apply.py prints, without decode).
`compare DIR` runs `replay` in CHAINMALL_COST_ROUNDS (3) interleaved rounds
with this checkout's interpreter and with DIR/.venv's (whose package is DIR's
code: the same script, the other build), alternating which goes first, and
prints each round, the medians, the ratios and the load average.

The import path's CPU, thread by thread (bench_apply.py's pipelined replay and
its CPU account, on the same blocks):

    .venv/bin/python bench/apply_cost.py threads               # one pipelined replay
    .venv/bin/python bench/apply_cost.py compare-threads /work/main

`threads` prints the rate and the CPU per tx of every thread (the main thread,
the check workers, the OpenMP signature threads, the process in total and its
system time), the main thread's run delay per tx (runnable, waiting for a core)
and the share of the machine's CPU time left idle during the replay;
`compare-threads DIR` runs it in interleaved rounds against DIR's build as
`compare` does (the rate moves with the load; the CPU per tx much less).
Sizes: CHAINMALL_BENCH_TXS (10,000), CHAINMALL_BENCH_SENDERS (2,000),
CHAINMALL_COST_BASE_BLOCKS (blocks already in the ledger, 5);
CHAINMALL_BENCH_MODULES=default installs the modules a node runs (validators,
mall, trust), for `prepare` and the runs alike (prepare a directory per
setting).
"""

from __future__ import annotations

import itertools
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

STAGES = ("setup", "decode", "check", "finalize", "commit")
BASE_BLOCKS = int(os.environ.get("CHAINMALL_COST_BASE_BLOCKS", "5"))
CPU_ROUNDS = 5


def prepare(directory: Path) -> None:
    """Commit BASE_BLOCKS blocks into DIR/base and keep the next one in DIR/block.bin."""
    os.environ["CHAINMALL_BENCH_BLOCKS"] = str(BASE_BLOCKS + 1)
    sys.path.insert(0, str(Path(__file__).parent))
    import bench_apply
    from chainmall.core.store import Store

    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory) as build:
        genesis, blocks = bench_apply.prebuild(bench_apply.keys(bench_apply.SENDERS), build)
    from chainmall.core.block import decode_block

    base = directory / "base"
    shutil.rmtree(base, ignore_errors=True)
    with Store(base) as store:
        machine = bench_apply.new_machine(store, genesis)
        for raw in blocks[:-1]:
            machine.finalize_block(decode_block(raw))
            machine.commit()
    (directory / "block.bin").write_bytes(blocks[-1])
    (directory / "genesis.pickle").write_bytes(pickle.dumps(genesis))
    print(f"{directory}: {BASE_BLOCKS} blocks in base/, block {BASE_BLOCKS + 1} in block.bin "
          f"({len(decode_block(blocks[-1]).txs):,} txs)")


def _work_copy(directory: Path) -> Path:
    work = directory / "work"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(directory / "base", work)
    return work


def run(directory: Path, upto: str, timings: dict[str, float] | None = None) -> int:
    """Apply DIR/block.bin to DIR/work up to the stage `upto`; the block's tx count.

    `timings`, when given, receives each phase's thread CPU seconds.
    """
    sys.path.insert(0, str(Path(__file__).parent))
    import bench_apply
    from chainmall.core.block import decode_block
    from chainmall.core.store import Store

    stop = STAGES.index(upto)
    clock = time.thread_time
    genesis = pickle.loads((directory / "genesis.pickle").read_bytes())
    with Store(directory / "work") as store:
        machine = bench_apply.new_machine(store, genesis)
        raw = (directory / "block.bin").read_bytes()
        count = 0
        if stop >= 1:
            t0 = clock()
            block = decode_block(raw)
            t1 = clock()
            count = len(block.txs)
        if stop >= 2:
            checked = machine.check_block_txs(block)
            t2 = clock()
        if stop >= 3:
            result = machine.finalize_block(block, checked)
            t3 = clock()
            assert result.app_hash == block.header.state_root
        if stop >= 4:
            machine.commit()
            t4 = clock()
        if timings is not None and stop == len(STAGES) - 1:
            for name, seconds in zip(STAGES[1:], (t1 - t0, t2 - t1, t3 - t2, t4 - t3),
                                     strict=True):
                timings[name] = seconds
    return count


def _instructions(directory: Path, upto: str) -> int:
    _work_copy(directory)
    with tempfile.TemporaryDirectory() as temp:
        out = Path(temp) / "callgrind.out"
        env = dict(os.environ, PYTHONHASHSEED="0")
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                        sys.executable, __file__, "run", str(directory), upto],
                       check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for line in out.read_text().splitlines():
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1])
    raise RuntimeError("callgrind wrote no totals")


def report(directory: Path) -> None:
    """Instructions per tx of each phase (callgrind, one run per stopping point)."""
    from benchutil import machine

    txs = run_count(directory)
    counts = {}
    for stage in STAGES:
        counts[stage] = _instructions(directory, stage)
        print(f"  {stage:<9} {counts[stage]:>16,} Ir", flush=True)
    print(f"machine: {machine('callgrind, AVX2 Ed25519 back end under valgrind')}")
    print(f"one block of {txs:,} transfers on a ledger of {BASE_BLOCKS} blocks")
    print(f"  {'phase':<10}{'Ir per tx':>12}")
    python_share = 0.0
    for before, stage in itertools.pairwise(STAGES):
        per_tx = (counts[stage] - counts[before]) / txs
        if stage != "check":
            python_share += per_tx
        print(f"  {stage:<10}{per_tx:>12,.0f}")
    print(f"  {'all but check':<10}{python_share:>12,.0f}")
    shutil.rmtree(directory / "work", ignore_errors=True)


def run_count(directory: Path) -> int:
    from chainmall.core.block import decode_block

    return len(decode_block((directory / "block.bin").read_bytes()).txs)


def cpu(directory: Path) -> None:
    """Fastest thread CPU µs per tx of each phase over CPU_ROUNDS in-process replays."""
    from benchutil import machine

    best: dict[str, float] = {}
    txs = 0
    for _ in range(CPU_ROUNDS):
        _work_copy(directory)
        timings: dict[str, float] = {}
        txs = run(directory, "commit", timings)
        for name, seconds in timings.items():
            best[name] = min(best.get(name, seconds), seconds)
    shutil.rmtree(directory / "work", ignore_errors=True)
    print(f"machine: {machine('main thread CPU time, best of ' + str(CPU_ROUNDS))}")
    print(f"one block of {txs:,} transfers on a ledger of {BASE_BLOCKS} blocks")
    for name, seconds in best.items():
        note = " (main thread only)" if name == "check" else ""
        print(f"  {name:<10}{seconds * 1e6 / txs:>8.2f} µs/tx{note}")
    share = sum(s for n, s in best.items() if n != "check")
    print(f"  {'all but check':<10}{share * 1e6 / txs:>8.2f} µs/tx")


REPLAY_PHASES = ("execute", "root", "commit")


def replay() -> dict[str, float]:
    """Replay bench_apply's first blocks serially; thread CPU µs per tx of each phase."""
    os.environ.setdefault("CHAINMALL_BENCH_BLOCKS", "30")
    sys.path.insert(0, str(Path(__file__).parent))
    import bench_apply
    from chainmall.core.block import decode_block
    from chainmall.core.state.root import StateTree
    from chainmall.core.store import Store

    clock = time.thread_time
    spent = dict.fromkeys(REPLAY_PHASES, 0.0)
    tree_apply = StateTree.apply

    def timed_apply(tree: Any, changes: Any) -> Any:
        start = clock()
        try:
            return tree_apply(tree, changes)
        finally:
            spent["root"] += clock() - start

    with tempfile.TemporaryDirectory(prefix="chainmall-replay-") as directory:
        genesis, blocks, _ = bench_apply.prebuilt(directory)
        StateTree.apply = timed_apply  # type: ignore[method-assign]
        try:
            with Store(Path(directory) / "replay") as store:
                machine = bench_apply.new_machine(store, genesis)
                checked = []
                for raw in blocks:
                    block = decode_block(raw)
                    checked.append((block, machine.check_block_txs(block)))
                for block, ahead in checked:
                    t0 = clock()
                    machine.finalize_block(block, ahead)
                    t1 = clock()
                    machine.commit()
                    spent["execute"] += t1 - t0
                    spent["commit"] += clock() - t1
        finally:
            StateTree.apply = tree_apply  # type: ignore[method-assign]
    txs = sum(len(block.txs) for block, _ in checked)
    spent["execute"] -= spent["root"]
    return {phase: seconds * 1e6 / txs for phase, seconds in spent.items()}


def _interleaved(baseline: Path, command: str, names: tuple[str, ...],
                 describe: Callable[[dict[str, float]], str],
                 ) -> tuple[dict[str, list[dict[str, float]]], list[float]]:
    """Run this script's `command` with this build and `baseline`'s in interleaved rounds
    (CHAINMALL_COST_ROUNDS, default 3), each printing `names` last on its output; every
    round's figures by build, and the 1-minute load average before and after each run."""
    rounds = int(os.environ.get("CHAINMALL_COST_ROUNDS", "3"))
    builds = {"this": sys.executable, "baseline": str(baseline / ".venv" / "bin" / "python")}
    figures: dict[str, list[dict[str, float]]] = {name: [] for name in builds}
    loads = [os.getloadavg()[0]]
    for number in range(rounds):
        order = list(builds) if number % 2 == 0 else list(reversed(builds))
        for name in order:
            out = subprocess.run([builds[name], __file__, command], check=True,
                                 capture_output=True, text=True).stdout
            result = dict(zip(names, map(float, out.split()[-len(names):]), strict=True))
            figures[name].append(result)
            loads.append(os.getloadavg()[0])
            print(f"round {number + 1} {name:<8}: {describe(result)} (load {loads[-1]:.1f})",
                  flush=True)
    return figures, loads


def compare(baseline: Path) -> None:
    """`replay` with this build and with `baseline`'s, in interleaved rounds."""
    import statistics

    from benchutil import machine

    figures, loads = _interleaved(baseline, "replay", ("execute", "root", "commit", "total"),
                                  lambda result: ", ".join(
                                      f"{phase} {value:.2f}" for phase, value in result.items())
                                  + " µs/tx")
    print(f"machine: {machine('main thread CPU time, serial replay')}; load average (1 min) "
          f"{min(loads):.1f}-{max(loads):.1f}; baseline {baseline}")
    for phase in ("execute", "root", "commit", "total"):
        this = statistics.median(r[phase] for r in figures["this"])
        base = statistics.median(r[phase] for r in figures["baseline"])
        ratios = [t[phase] / b[phase] for t, b in zip(figures["this"], figures["baseline"],
                                                      strict=True)]
        print(f"  {phase:<8} this {this:6.2f}  baseline {base:6.2f} µs/tx  this/baseline "
              f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})")


THREAD_FIGURES = ("tx/s", "process", "main", "workers", "signature threads", "system",
                  "main run delay", "machine idle %")


def threads() -> dict[str, float]:
    """bench_apply.py's pipelined replay of its first blocks: the rate, and CPU µs per tx
    of each kind of thread (its CPU account) and of the process."""
    os.environ.setdefault("CHAINMALL_BENCH_BLOCKS", "30")
    sys.path.insert(0, str(Path(__file__).parent))
    import bench_apply

    with tempfile.TemporaryDirectory(prefix="chainmall-threads-") as directory:
        genesis, blocks, _ = bench_apply.prebuilt(directory)
        split = bench_apply._replay(genesis, blocks, directory, "threads", pipelined=True)
    txs = bench_apply.BLOCKS * bench_apply.TXS_PER_BLOCK
    per_tx = 1e6 / txs
    return {"tx/s": txs / split["total"], "process": split["process cpu"] * per_tx,
            "main": split["acct main"] * per_tx, "workers": split["acct workers"] * per_tx,
            "signature threads": split["acct signature threads"] * per_tx,
            "system": split["acct process system"] * per_tx,
            "main run delay": split.get("acct main delay", 0.0) * per_tx,
            "machine idle %": split.get("machine idle", 0.0) * 100}


def compare_threads(baseline: Path) -> None:
    """`threads` with this build and with `baseline`'s, in interleaved rounds."""
    import statistics

    from benchutil import machine

    figures, loads = _interleaved(baseline, "threads", THREAD_FIGURES,
                                  lambda result: f"{result['tx/s']:,.0f} tx/s; CPU µs/tx "
                                  + ", ".join(f"{kind} {result[kind]:.2f}"
                                              for kind in THREAD_FIGURES[1:]))
    print(f"machine: {machine('pipelined replay, CPU of every thread')}; load average "
          f"(1 min) {min(loads):.1f}-{max(loads):.1f}; baseline {baseline}")
    for kind in THREAD_FIGURES:
        this = statistics.median(r[kind] for r in figures["this"])
        base = statistics.median(r[kind] for r in figures["baseline"])
        ratios = [t[kind] / b[kind] if b[kind] else float("nan")
                  for t, b in zip(figures["this"], figures["baseline"], strict=True)]
        unit = {"tx/s": "tx/s", "machine idle %": "%"}.get(kind, "µs/tx")
        print(f"  {kind:<18} this {this:9,.2f}  baseline {base:9,.2f} {unit}  this/baseline "
              f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})")


def main(argv: list[str]) -> None:
    if argv == ["threads"]:
        figures = threads()
        print(" ".join(f"{figures[kind]:.4f}" for kind in THREAD_FIGURES))
        return
    if argv == ["replay"]:
        figures = replay()
        print(" ".join(f"{figures[phase]:.4f}" for phase in REPLAY_PHASES),
              f"{sum(figures.values()):.4f}")
        return
    command, directory = argv[0], Path(argv[1])
    if command == "prepare":
        prepare(directory)
    elif command == "run":
        run(directory, argv[2])
    elif command == "report":
        report(directory)
    elif command == "cpu":
        cpu(directory)
    elif command == "compare":
        compare(directory)
    elif command == "compare-threads":
        compare_threads(directory)
    else:
        raise SystemExit(f"unknown command {command!r}: prepare, run, report, cpu, replay, "
                         "compare, threads or compare-threads")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main(sys.argv[1:])
