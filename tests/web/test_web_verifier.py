"""The browser's verifier (web/src) against chainmall's Python code, through Node's test runner.

The vectors (tests/web/vectors/) are written by generate_vectors.py from
the real Python code; `node --test` checks that the TypeScript verifier
gives the same verdict on every one (web/test/*.test.ts).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from generate_vectors import main as generate_vectors
from web_tools import REPO, WEB, web_deps_or_skip


def test_vectors_are_fresh() -> None:
    """The committed vectors are what the generator writes from today's code."""
    assert generate_vectors([sys.argv[0], "--check"]) == 0


def test_cometbft_vectors_are_fresh(tmp_path: Path) -> None:
    """cometbft_vectors.json is what cometbft_vectors.py writes from the light client."""
    if importlib.util.find_spec("chainmall.core.light") is None:
        pytest.skip("the CometBFT light client (core/light.py) is not installed: the vectors "
                    "were written from it where it is")
    import cometbft_vectors

    committed = cometbft_vectors.OUT.read_text()
    out = tmp_path / "cometbft_vectors.json"
    original = cometbft_vectors.OUT
    cometbft_vectors.OUT = out
    try:
        cometbft_vectors.main()
    finally:
        cometbft_vectors.OUT = original
    assert out.read_text() == committed, (
        f"run {sys.executable} {REPO / 'tests/web/cometbft_vectors.py'}")


def _run(command: list[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=WEB, capture_output=True, text=True, timeout=timeout_s,
                          check=False)


def test_typescript_verifier_gives_python_verdicts() -> None:
    node = web_deps_or_skip()
    built = _run([node, "build.mjs", "test"], 120)
    assert built.returncode == 0, built.stdout + built.stderr
    result = _run([node, "--test", ".build/test/"], 300)
    summary = [line for line in result.stdout.splitlines() if line.startswith("# ")]
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "# fail 0" in summary, summary
    passed = int(next(line for line in summary if line.startswith("# pass")).split()[-1])
    assert passed >= 400, summary  # every vector ran


def test_typescript_type_checks() -> None:
    node = web_deps_or_skip()
    result = _run([node, "node_modules/typescript/bin/tsc", "--noEmit", "-p", "."], 300)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr
