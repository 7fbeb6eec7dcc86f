"""Progress bars for long work: drawn with tqdm on a terminal, silent everywhere else.

Every command and benchmark that runs for more than a moment reports its
progress through this one module. A bar shows the count, the rate and the
time left, on standard error, and only when standard error is a terminal:
with `--json`, in a pipe, a log file or a test, nothing is drawn.

Core code never imports the CLI: it takes a `ProgressCallback`
(`core/archive.py`), a plain function called as `callback(what, done,
total)`, and `Progress` is one. Each new `what` (a plural noun: "blocks",
"tree nodes") closes the previous bar and opens the next.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from tqdm import tqdm

ACTIVITY_DELAY_S = 0.5  # an `activity` shorter than this draws nothing
REDRAW_MIN_S = 0.2  # a bar is redrawn at most this often
_REFRESH_S = 0.5  # how often an `activity` redraws its elapsed time
_FALLBACK_SIZE = (80, 24)  # columns, lines


def on_terminal(stream: TextIO | None = None) -> bool:
    """Whether `stream` (default: standard error, where bars go) is a terminal."""
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Progress:
    """A ProgressCallback that draws one bar per phase, or nothing when disabled.

    Use as a context manager so the last bar is closed (and erased) before
    the command prints its result.
    """

    def __init__(self, title: str, enabled: bool, stream: TextIO | None = None) -> None:
        self.title = title
        self.enabled = enabled
        self._stream = sys.stderr if stream is None else stream
        self._what: str | None = None
        self._bar: tqdm | None = None

    def __call__(self, what: str, done: int, total: int) -> None:
        """`done` of `total` `what` are finished (total 0: unknown)."""
        if not self.enabled:
            return
        if what != self._what or self._bar is None:
            self.close()
            self._what = what
            self._bar = _bar(self._stream, f"{self.title}: {what}", total or None, f" {what}")
        bar = self._bar
        if total and bar.total != total:
            bar.total = total
        if done > bar.n:
            bar.update(done - bar.n)

    def close(self) -> None:
        """Close the open bar, if any."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
            self._what = None

    @contextmanager
    def activity(self, what: str) -> Iterator[None]:
        """A step with nothing to count (one opaque call): its elapsed time, redrawn.

        Drawn only once the step has taken ACTIVITY_DELAY_S, so quick ones stay silent.
        """
        if not self.enabled:
            yield
            return
        self.close()
        bar = _bar(self._stream, f"{self.title}: {what}", None, "", counter=False)
        stop = threading.Event()

        def redraw() -> None:
            if stop.wait(ACTIVITY_DELAY_S):
                return
            bar.refresh()
            while not stop.wait(_REFRESH_S):
                bar.refresh()

        thread = threading.Thread(target=redraw, name="chainmall-progress", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _bar(stream: TextIO, description: str, total: int | None, unit: str,
         counter: bool = True) -> tqdm:
    """A tqdm bar on `stream` that is erased when closed."""
    options: dict[str, object] = {}
    if not counter:  # drawn by `activity`'s own thread, after its delay
        options["bar_format"] = "{desc} [{elapsed}]"
        options["delay"] = ACTIVITY_DELAY_S
    # Follow the terminal's size; one that reports none (a bare pty) gets 80 x 24, where
    # tqdm would otherwise draw nothing at all.
    if all(_terminal_size(stream)):
        options["dynamic_ncols"] = True
    else:
        options["ncols"], options["nrows"] = _FALLBACK_SIZE
    return tqdm(total=total, desc=description, unit=unit, file=stream, leave=False,
                mininterval=REDRAW_MIN_S, **options)


def _terminal_size(stream: TextIO) -> tuple[int, int]:
    """(columns, lines) of the terminal `stream` is, zeros if it reports none."""
    try:
        size = os.get_terminal_size(stream.fileno())
    except (OSError, ValueError):
        return 0, 0
    return size.columns, size.lines


def progress(title: str, json_output: bool = False, stream: TextIO | None = None) -> Progress:
    """The progress reporter of a command: bars on `stream` (default: standard error),
    enabled when that is a terminal and there is no --json."""
    stream = sys.stderr if stream is None else stream
    return Progress(title, not json_output and on_terminal(stream), stream)
