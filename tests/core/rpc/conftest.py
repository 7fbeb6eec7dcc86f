"""RPC fixtures: every in-process test body runs on asyncio and on uvloop (`loop_kind`)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from rpc_helpers import LOOP_KINDS, run_on


@pytest.fixture(params=LOOP_KINDS)
def loop_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def run(loop_kind: str) -> Callable[[Coroutine[Any, Any, Any]], Any]:
    """Run a coroutine on this test's loop kind."""
    return lambda coroutine: run_on(loop_kind, coroutine)
