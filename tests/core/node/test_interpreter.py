"""The node process's interpreter settings (core/node/app.py)."""

from __future__ import annotations

import gc
import sys

from chainmall.core.constants import SWITCH_INTERVAL_US_DEFAULT
from chainmall.core.node.app import GC_THRESHOLDS, tune_interpreter
from chainmall.core.node.config import load_config


def test_tune_interpreter_sets_the_collector_and_the_switch_interval() -> None:
    thresholds, interval = gc.get_threshold(), sys.getswitchinterval()
    try:
        gc.set_threshold(700, 10, 10)
        sys.setswitchinterval(0.005)
        tune_interpreter()
        assert gc.get_threshold() == GC_THRESHOLDS
        assert abs(sys.getswitchinterval() - SWITCH_INTERVAL_US_DEFAULT / 1e6) < 1e-9
        assert SWITCH_INTERVAL_US_DEFAULT < 5_000  # shorter than Python's default
        config = load_config(environ={"CHAINMALL_NODE_SWITCH_INTERVAL_US": "2000"})
        assert config.sources["node.switch_interval_us"].startswith("env ")
        tune_interpreter(config.node.switch_interval_us)
        assert abs(sys.getswitchinterval() - 0.002) < 1e-9
    finally:
        gc.set_threshold(*thresholds)
        sys.setswitchinterval(interval)
