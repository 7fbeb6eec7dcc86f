"""cli/progress.py: bars on a terminal only, one per phase, activities after their delay."""

from __future__ import annotations

import io
import sys
import time

import pytest
from chainmall.cli import progress as progress_module
from chainmall.cli.progress import ACTIVITY_DELAY_S, Progress, progress

DEADLINE_S = 10.0


class FakeTerminal(io.StringIO):
    """Standard error as a terminal that reports no size (as a bare pty)."""

    def isatty(self) -> bool:
        return True

    def fileno(self) -> int:
        raise io.UnsupportedOperation("no descriptor")


@pytest.fixture
def terminal() -> FakeTerminal:
    return FakeTerminal()


def test_enabled_only_on_a_terminal_and_without_json(terminal: FakeTerminal) -> None:
    assert progress("x", stream=terminal).enabled
    assert not progress("x", json_output=True, stream=terminal).enabled
    assert not progress("x", stream=io.StringIO()).enabled  # a file or a pipe
    assert progress("x").enabled == sys.stderr.isatty()


def test_a_disabled_reporter_writes_nothing(terminal: FakeTerminal) -> None:
    with Progress("quiet", enabled=False, stream=terminal) as bars:
        bars("blocks", 1, 2)
        with bars.activity("waiting"):
            pass
    assert terminal.getvalue() == ""


def test_one_bar_per_phase_with_count_rate_and_time_left(terminal: FakeTerminal,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress_module, "REDRAW_MIN_S", 0.0)  # draw every update
    with Progress("db check", enabled=True, stream=terminal) as bars:
        for done in range(4):
            bars("blocks", done, 3)
        bars("tree nodes", 10, 0)  # a new phase, total unknown
    text = terminal.getvalue()
    assert "db check: blocks" in text and "3/3" in text and " blocks/s]" in text
    assert "3/3 [00:00<00:00, " in text  # elapsed<remaining, then the rate
    assert "db check: tree nodes: 10 tree nodes [" in text


def test_an_activity_draws_its_elapsed_time_after_the_delay(terminal: FakeTerminal) -> None:
    bars = Progress("init", enabled=True, stream=terminal)
    with bars.activity("writing the genesis state"):
        deadline = time.monotonic() + DEADLINE_S
        while "init: writing the genesis state [" not in terminal.getvalue():
            assert time.monotonic() < deadline, terminal.getvalue()
            time.sleep(0.05)
    threads = [t.name for t in __import__("threading").enumerate()]
    assert "chainmall-progress" not in threads


def test_a_quick_activity_draws_nothing(terminal: FakeTerminal,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress_module, "ACTIVITY_DELAY_S", 60.0)
    with Progress("init", enabled=True, stream=terminal).activity("reading"):
        pass
    assert "reading" not in terminal.getvalue()
    assert ACTIVITY_DELAY_S < 60.0
