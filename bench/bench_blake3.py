"""Benchmark the BLAKE3 batch kernel against a Python loop over the blake3 package.

Run: .venv/bin/pytest bench/bench_blake3.py --benchmark-only -s

Cases: 10^6 messages of 64 bytes and of 256 bytes, hashed by
`hash_many_fixed` (best back end) and, as the baseline measured in the same
run, by `[blake3.blake3(m).digest() for m in messages]`. Targets: the kernel
is >= 10x the loop, and hashes >= 5 * 10^6 64-byte messages per second on one
core (the kernel is single-threaded). Each back end (portable, sse41, avx2) is
also timed on the 64-byte case. Rates use the best of a few rounds, for the
baseline and the kernel alike. A table is printed at the end of the module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import blake3
import pytest
from benchutil import machine, verdict
from chainmall import ext

KERNEL = ext.load("_blake3")
pytestmark = pytest.mark.skipif(KERNEL is None, reason="the _blake3 extension is not built")

MESSAGES = 1_000_000
SIZES = (64, 256)
RATIO_TARGET = 10.0
RATE_64_TARGET = 5_000_000  # 64-byte hashes per second per core
ROUNDS_BASELINE = 2
ROUNDS_KERNEL = 5
BACKENDS = ("portable", "sse41", "avx2")

# (case, size) -> hashes per second, filled by the benchmarks below.
RATES: dict[tuple[str, int], float] = {}


def _packed(size: int) -> bytes:
    """MESSAGES deterministic messages of `size` bytes, back to back."""
    return blake3.blake3(b"chainmall bench %d" % size).digest(length=MESSAGES * size)


def _run(benchmark, function: Callable[[], object], rounds: int, label: tuple[str, int]) -> None:
    benchmark.pedantic(function, rounds=rounds, iterations=1, warmup_rounds=0)
    RATES[label] = MESSAGES / benchmark.stats.stats.min


def _report() -> str:
    lines = [
        f"BLAKE3 batch hashing, {MESSAGES:,} messages per case; rates in hashes/s "
        "(best round)",
        f"machine: {machine()}",
        f"kernel: {KERNEL.describe()}",
        "",
        f"{'case':<22}{'baseline':>14}{'kernel':>14}{'ratio':>9}  {'target':<26}"
        f"{'result':<9}backend",
    ]
    best = KERNEL.best_backend()
    for size in SIZES:
        base = RATES.get(("loop", size))
        kernel = RATES.get(("kernel", size))
        if base is None or kernel is None:
            continue
        ratio = kernel / base
        target = f">= {RATIO_TARGET:.0f}x loop"
        met = ratio >= RATIO_TARGET
        if size == 64:
            target += f", >= {RATE_64_TARGET / 1e6:.0f}M/s"
            met = met and kernel >= RATE_64_TARGET
        lines.append(
            f"{f'{size}-byte x {MESSAGES:,}':<22}{base:>14,.0f}{kernel:>14,.0f}{ratio:>8.1f}x  "
            f"{target:<26}{verdict(met):<9}{best}"
        )
    base_64 = RATES.get(("loop", 64))
    for name in BACKENDS:
        rate = RATES.get((name, 64))
        if rate is None:
            continue
        ratio = f"{rate / base_64:>8.1f}x" if base_64 else f"{'-':>9}"
        base = f"{base_64:>14,.0f}" if base_64 else f"{'-':>14}"
        lines.append(
            f"{'64-byte, ' + name:<22}{base}{rate:>14,.0f}{ratio}  "
            f"{'>= ' + str(RATE_64_TARGET // 10**6) + 'M/s (per core)':<26}"
            f"{verdict(rate >= RATE_64_TARGET):<9}{name}"
        )
    return "\n".join(lines)


@pytest.fixture(scope="module", autouse=True)
def report() -> Iterator[None]:
    """Print the results table once every benchmark in this module has run."""
    yield
    if RATES:
        print("\n\n" + _report() + "\n")


@pytest.fixture(scope="module", params=SIZES, ids=[f"{size}B" for size in SIZES])
def workload(request: pytest.FixtureRequest) -> tuple[int, bytes]:
    size = request.param
    return size, _packed(size)


def test_loop_baseline(benchmark, workload: tuple[int, bytes]) -> None:
    size, data = workload
    messages = [data[i : i + size] for i in range(0, len(data), size)]
    hash_one = blake3.blake3

    def loop() -> list[bytes]:
        return [hash_one(m).digest() for m in messages]

    _run(benchmark, loop, ROUNDS_BASELINE, ("loop", size))
    assert b"".join(loop()[:8]) == KERNEL.hash_many_fixed(data[: 8 * size], size)


def test_kernel(benchmark, workload: tuple[int, bytes]) -> None:
    size, data = workload
    KERNEL.set_backend("auto")
    _run(benchmark, lambda: KERNEL.hash_many_fixed(data, size), ROUNDS_KERNEL, ("kernel", size))


@pytest.mark.parametrize("name", BACKENDS)
def test_backend_64(benchmark, name: str) -> None:
    try:
        KERNEL.set_backend(name)
    except ValueError:
        pytest.skip(f"this CPU lacks the {name} back end")
    data = _packed(64)
    try:
        _run(benchmark, lambda: KERNEL.hash_many_fixed(data, 64), ROUNDS_KERNEL, (name, 64))
    finally:
        KERNEL.set_backend("auto")
