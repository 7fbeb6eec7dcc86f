"""Benchmark the Merkle kernel against the pure-Python reference, in one run.

Run: .venv/bin/pytest bench/bench_merkle.py --benchmark-only -s

Main case: the root of 10^6 packed 32-byte leaves, by `chainmall.ext._merkle`
(best BLAKE3 back end, one thread) and, as the baseline measured in the same
run, by `chainmall.core.merkle` (a Python loop over the `blake3` package).
Targets: the kernel is >= 20x the reference and takes <= 0.3 s on one core.
The kernel is also timed on each BLAKE3 back end, and proof verification is
timed for both (no target). Times are the best round; the reference gets one
round because it takes seconds. A table with MET / NOT MET is printed at the
end of the module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import blake3
import pytest
from benchutil import machine, verdict
from chainmall import ext
from chainmall.core import merkle as reference

KERNEL = ext.load("_merkle")
pytestmark = pytest.mark.skipif(KERNEL is None, reason="the _merkle extension is not built")

LEAVES = 1_000_000
RATIO_TARGET = 20.0
SECONDS_TARGET = 0.3
ROUNDS_REFERENCE = 1
ROUNDS_KERNEL = 5
BACKENDS = ("portable", "sse41", "avx2")
VERIFY_COUNT = 2_000  # proofs checked per verification round

# label -> best time in seconds, filled by the benchmarks below.
SECONDS: dict[str, float] = {}


def _timed(benchmark, function: Callable[[], object], rounds: int, label: str) -> object:
    result = benchmark.pedantic(function, rounds=rounds, iterations=1, warmup_rounds=0)
    SECONDS[label] = benchmark.stats.stats.min
    return result


def _report() -> str:
    lines = [
        f"Merkle root of {LEAVES:,} 32-byte leaves (best round, seconds)",
        f"machine: {machine('1 thread used')}",
        f"kernel:  {KERNEL.describe()}",
        "",
        f"{'case':<26}{'seconds':>10}{'vs reference':>14}  {'target':<24}result",
    ]
    base = SECONDS.get("reference")
    if base is not None:
        lines.append(f"{'reference (Python)':<26}{base:>10.3f}{'1.0x':>14}  {'baseline':<24}-")
    kernel = SECONDS.get("kernel")
    if kernel is not None:
        ratio = base / kernel if base else float("nan")
        target = f">= {RATIO_TARGET:.0f}x, <= {SECONDS_TARGET} s"
        met = kernel <= SECONDS_TARGET and (base is None or ratio >= RATIO_TARGET)
        lines.append(
            f"{'kernel ' + KERNEL.backend():<26}{kernel:>10.3f}{ratio:>13.1f}x  "
            f"{target:<24}{verdict(met)}"
        )
    for name in BACKENDS:
        seconds = SECONDS.get(f"kernel {name}")
        if seconds is None:
            continue
        ratio = base / seconds if base else float("nan")
        met = seconds <= SECONDS_TARGET and (base is None or ratio >= RATIO_TARGET)
        lines.append(
            f"{'kernel, forced ' + name:<26}{seconds:>10.3f}{ratio:>13.1f}x  "
            f"{'same (informative)':<24}{verdict(met)}"
        )
    verify_ref = SECONDS.get("verify reference")
    verify_kernel = SECONDS.get("verify kernel")
    if verify_ref and verify_kernel:
        lines.append("")
        lines.append(
            f"verify, 20-sibling proofs of the 10^6 tree: "
            f"reference {VERIFY_COUNT / verify_ref:,.0f}/s, "
            f"kernel {VERIFY_COUNT / verify_kernel:,.0f}/s "
            f"({verify_ref / verify_kernel:.1f}x, no target)"
        )
    return "\n".join(lines)


@pytest.fixture(scope="module", autouse=True)
def report() -> Iterator[None]:
    """Print the results table once every benchmark in this module has run."""
    yield
    if SECONDS:
        print("\n\n" + _report() + "\n")


@pytest.fixture(scope="module")
def leaves() -> bytes:
    """LEAVES deterministic 32-byte leaves, packed."""
    return blake3.blake3(b"chainmall merkle bench").digest(length=LEAVES * 32)


@pytest.fixture(scope="module")
def expected_root(leaves: bytes) -> bytes:
    return KERNEL.merkle_root(leaves)


def test_reference_root(benchmark, leaves: bytes, expected_root: bytes) -> None:
    root = _timed(benchmark, lambda: reference.merkle_root(leaves), ROUNDS_REFERENCE, "reference")
    assert root == expected_root


def test_kernel_root(benchmark, leaves: bytes, expected_root: bytes) -> None:
    KERNEL.set_backend("auto")
    root = _timed(benchmark, lambda: KERNEL.merkle_root(leaves), ROUNDS_KERNEL, "kernel")
    assert root == expected_root


@pytest.mark.parametrize("name", BACKENDS)
def test_kernel_root_per_backend(benchmark, name: str, leaves: bytes, expected_root: bytes) -> None:
    try:
        KERNEL.set_backend(name)
    except ValueError:
        pytest.skip(f"this CPU lacks the {name} back end")
    try:
        root = _timed(benchmark, lambda: KERNEL.merkle_root(leaves), 2, f"kernel {name}")
    finally:
        KERNEL.set_backend("auto")
    assert root == expected_root


PROOFS_DISTINCT = 16


@pytest.fixture(scope="module")
def proofs(leaves: bytes) -> list[tuple[bytes, int, list[bytes]]]:
    """PROOFS_DISTINCT real (leaf, index, proof) triples from the 10^6-leaf tree."""
    step = LEAVES // PROOFS_DISTINCT
    return [
        (leaves[32 * index : 32 * index + 32], index, KERNEL.merkle_proof(leaves, index))
        for index in range(step // 3, LEAVES, step)
    ]


@pytest.mark.parametrize("impl", ["reference", "kernel"])
def test_verify(benchmark, impl: str, proofs, expected_root: bytes) -> None:
    verify = reference.merkle_verify if impl == "reference" else KERNEL.merkle_verify
    cases = [proofs[i % len(proofs)] for i in range(VERIFY_COUNT)]

    def run() -> bool:
        return all(
            verify(expected_root, leaf, index, LEAVES, proof) for leaf, index, proof in cases
        )

    assert _timed(benchmark, run, 3, f"verify {impl}")
