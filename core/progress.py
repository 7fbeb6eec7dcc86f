"""The progress callback that long core work takes; the CLI draws it (cli/progress.py).

Core code never imports the CLI. A long operation takes a `ProgressCallback`
and calls it as `progress(what, done, total)`: `what` names the items in the
plural ("blocks", "tree nodes"), `done` counts those finished so far, `total`
is how many there will be (0 if unknown). A new `what` starts a new phase.
"""

from __future__ import annotations

from collections.abc import Callable

ProgressCallback = Callable[[str, int, int], None]


def no_progress(what: str, done: int, total: int) -> None:
    """The default callback: reports nothing."""
