"""Apply a sequence of blocks with the next block's stateless checks running ahead.

Signature checks are most of a block's cost, and they depend on nothing but
the block (`StateMachine.check_block_txs`). The batch kernel releases the
GIL, so while the calling thread executes and commits block N, one worker
thread decodes block N+1 and checks its signatures on the other cores. The
result is the same as the plain loop `finalize_block(b); commit()` over the
blocks, in the same order, with the same errors; only the time differs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from .machine import CheckedTxs

__all__ = ["checked_ahead"]

Item = TypeVar("Item")


def checked_ahead(items: Iterable[Item],
                  prepare: Callable[[Item], CheckedTxs]) -> Iterator[tuple[Item, CheckedTxs]]:
    """Yield `(item, prepare(item))` in order, preparing the next item in a worker meanwhile.

    `prepare` (typically: decode a block, then `machine.check_block_txs`)
    runs in one worker thread, one item ahead of the consumer. Its exception
    for an item is raised here when the consumer reaches that item, so every
    earlier item has been yielded (and, in an import, committed) first.
    Closing the generator early waits for the worker and drops its result.
    """
    source = iter(items)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="chainmall-check") as worker:
        ahead: tuple[Item, Future[CheckedTxs]] | None = None
        for item in source:
            ahead = (item, worker.submit(prepare, item))
            break
        while ahead is not None:
            item, future = ahead
            ahead = None
            for following in source:
                ahead = (following, worker.submit(prepare, following))
                break
            try:
                checked = future.result()
            except BaseException:
                if ahead is not None:
                    ahead[1].cancel()
                raise
            yield item, checked
