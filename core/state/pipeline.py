"""Apply a sequence of blocks with the next blocks' stateless checks running ahead.

Signature checks are most of a block's cost, and they depend on nothing but
the block (`StateMachine.check_block_txs`). The batch kernel releases the
GIL, so while the calling thread executes and commits block N, worker
threads decode the next blocks and check their signatures on the other
cores. The result is the same as the plain loop `finalize_block(b);
commit()` over the blocks, in the same order, with the same errors; only
the time differs.

How the threads share the cores (bench/README.md, issue 17, "pipeline"):
`workers` threads (2) prepare items, each checking its block's signatures
on its share of the cores (`verify_threads`: the cores divided among the
workers preparing an item at that moment, at least 1), so the pipeline
runs about one signature thread per core beside the consuming thread,
instead of a thread team per worker (on 2 cores, 2 teams of 2 and the
consumer were 5 busy threads, and a team's members waited at its barrier
for a core the others held); a worker alone (the last item, or the others
idle) uses every core. One item more than there are workers is queued
(`depth` 3), so a worker that finishes a block starts the next at once
instead of waiting for the consumer to take one. With this split the
workers set the pace and the consumer mostly waits for them, so it needs
no priority over them (lowering the workers' priority was measured: it
only lost time against other programs of the same session).
"""

from __future__ import annotations

import itertools
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

__all__ = ["PIPELINE_DEPTH", "PIPELINE_WORKERS", "checked_ahead", "verify_threads"]

Item = TypeVar("Item")
Prepared = TypeVar("Prepared")  # CheckedTxs in an import; `db check` keeps its faults too

PIPELINE_WORKERS = 2  # threads preparing items: one decodes (GIL) while another verifies
PIPELINE_DEPTH = 3  # items prepared or queued ahead of the consumer

_worker = threading.local()  # .cores: the pipeline's _CoreShare (unset: not a worker)


class _CoreShare:
    """The usable cores, shared among the workers that are preparing an item."""

    def __init__(self, cores: int) -> None:
        self._cores = cores
        self._busy = 0
        self._lock = threading.Lock()

    def run(self, prepare: Callable[[Item], Prepared], item: Item) -> Prepared:
        """`prepare(item)`, counted among the busy workers while it runs."""
        with self._lock:
            self._busy += 1
        try:
            return prepare(item)
        finally:
            with self._lock:
                self._busy -= 1

    def threads(self) -> int:
        """This busy worker's share of the cores, at least 1."""
        return max(1, self._cores // max(1, self._busy))


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def verify_threads() -> int:
    """The threads a batch signature check made in this thread should use: in a
    `checked_ahead` worker its share of the cores (the usable cores divided among the
    workers preparing an item now, at least 1), elsewhere 0 (every core, the batch
    kernels' default)."""
    share: _CoreShare | None = getattr(_worker, "cores", None)
    return 0 if share is None else share.threads()


def _enter_worker(share: _CoreShare) -> None:
    _worker.cores = share


def checked_ahead(items: Iterable[Item], prepare: Callable[[Item], Prepared],
                  depth: int = PIPELINE_DEPTH,
                  workers: int = PIPELINE_WORKERS) -> Iterator[tuple[Item, Prepared]]:
    """Yield `(item, prepare(item))` in order, preparing up to `depth` next items meanwhile.

    `prepare` (typically: decode a block, then `machine.check_block_txs`)
    runs in `min(workers, depth)` worker threads, ahead of the consumer;
    in them `verify_threads()` gives each its share of the cores. With two,
    one worker's GIL-free signature checks overlap the other's decoding,
    which holds the GIL. A `prepare` exception for an item is raised here
    when the consumer reaches that item, so every earlier item has been
    yielded (and, in an import, committed) first. Closing the generator
    early cancels what has not started and waits for what has.
    """
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    share = _CoreShare(_usable_cores())
    source = iter(items)
    ahead: deque[tuple[Item, Future[Prepared]]] = deque()
    with ThreadPoolExecutor(max_workers=min(workers, depth), thread_name_prefix="chainmall-check",
                            initializer=_enter_worker, initargs=(share,)) as pool:
        try:
            for item in itertools.islice(source, depth):
                ahead.append((item, pool.submit(share.run, prepare, item)))
            while ahead:
                item, future = ahead.popleft()
                for following in itertools.islice(source, 1):
                    ahead.append((following, pool.submit(share.run, prepare, following)))
                yield item, future.result()
        finally:
            for _, pending in ahead:
                pending.cancel()
