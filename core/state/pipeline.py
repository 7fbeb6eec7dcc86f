"""Apply a sequence of blocks with the next block's stateless checks running ahead.

Signature checks are most of a block's cost, and they depend on nothing but
the block (`StateMachine.check_block_txs`). The batch kernel releases the
GIL, so while the calling thread executes and commits block N, worker
threads decode blocks N+1 and N+2 and check their signatures on the other
cores. The
result is the same as the plain loop `finalize_block(b); commit()` over the
blocks, in the same order, with the same errors; only the time differs.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

__all__ = ["checked_ahead"]

Item = TypeVar("Item")
Prepared = TypeVar("Prepared")  # CheckedTxs in an import; `db check` keeps its faults too


def checked_ahead(items: Iterable[Item], prepare: Callable[[Item], Prepared],
                  depth: int = 2) -> Iterator[tuple[Item, Prepared]]:
    """Yield `(item, prepare(item))` in order, preparing up to `depth` next items meanwhile.

    `prepare` (typically: decode a block, then `machine.check_block_txs`)
    runs in `depth` worker threads, ahead of the consumer. With two, one
    worker's GIL-free signature checks overlap the other's decoding, which
    holds the GIL. A `prepare` exception for an item is raised here when the
    consumer reaches that item, so every earlier item has been yielded (and,
    in an import, committed) first. Closing the generator early cancels what
    has not started and waits for what has.
    """
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    source = iter(items)
    ahead: deque[tuple[Item, Future[Prepared]]] = deque()
    with ThreadPoolExecutor(max_workers=depth, thread_name_prefix="chainmall-check") as workers:
        try:
            for item in itertools.islice(source, depth):
                ahead.append((item, workers.submit(prepare, item)))
            while ahead:
                item, future = ahead.popleft()
                for following in itertools.islice(source, 1):
                    ahead.append((following, workers.submit(prepare, following)))
                yield item, future.result()
        finally:
            for _, pending in ahead:
                pending.cancel()
