"""The node process's interpreter settings (core/node/app.py)."""

from __future__ import annotations

import gc
import sys

from chainmall.core.node.app import GC_THRESHOLDS, SWITCH_INTERVAL_S, tune_interpreter


def test_tune_interpreter_sets_the_collector_and_the_switch_interval() -> None:
    thresholds, interval = gc.get_threshold(), sys.getswitchinterval()
    try:
        gc.set_threshold(700, 10, 10)
        sys.setswitchinterval(0.005)
        tune_interpreter()
        assert gc.get_threshold() == GC_THRESHOLDS
        assert abs(sys.getswitchinterval() - SWITCH_INTERVAL_S) < 1e-9
        assert SWITCH_INTERVAL_S < 0.005  # shorter than Python's default
    finally:
        gc.set_threshold(*thresholds)
        sys.setswitchinterval(interval)
