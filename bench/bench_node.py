"""The node under load, as part of `make bench`: bench/loadgen.py's target run (and its soak).

Run: .venv/bin/pytest bench/bench_node.py --benchmark-only -s -q

The target run offers 5,250 tx/s (5% above the 5,000 it judges) for 60 s over
16 connections (JSON-RPC batches of 20 submits) to a node process it starts on
a fresh chain (about 2 minutes with the signing); the soak (10 minutes at
3,000 tx/s, pruning on) runs only with CHAINMALL_BENCH_SOAK=1. Both print their
targets beside the figures; see loadgen.py's docstring for what is measured.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from loadgen import main


def test_node_under_load(benchmark: Any) -> None:
    result = benchmark.pedantic(main, args=([],), rounds=1, iterations=1)
    assert result["node_exit"] == 0
    assert result["final"] > 0


@pytest.mark.skipif(os.environ.get("CHAINMALL_BENCH_SOAK") != "1",
                    reason="the 10-minute soak runs with CHAINMALL_BENCH_SOAK=1")
def test_node_soak(benchmark: Any) -> None:
    result = benchmark.pedantic(main, args=(["--soak"],), rounds=1, iterations=1)
    assert result["node_exit"] == 0
