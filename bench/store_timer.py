"""Time a replay's state-tree updates and store commits: `StateTree.apply` and
`Store.commit_block` wrapped with a clock while a `TreeAndCommitTimes` is entered."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from chainmall.core.state.root import StateTree, TreeUpdate
from chainmall.core.store import Store


class TreeAndCommitTimes:
    """Seconds in the state tree's updates (`tree_s`) and the store's commits (`commit_s`)
    by `clock` (wall by default; `time.thread_time` for the calling thread's CPU), the keys
    the updates changed and the blocks committed. Subclasses add figures in `observe`."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.tree_s = self.commit_s = 0.0
        self.changed_keys = self.blocks = 0

    def observe(self, changes: Mapping[bytes, bytes | None], update: TreeUpdate) -> None:
        """Called after each tree update (untimed): nothing here."""

    def __enter__(self) -> TreeAndCommitTimes:
        self._apply, self._commit = StateTree.apply, Store.commit_block
        times, clock, tree_apply, store_commit = self, self.clock, self._apply, self._commit

        def apply(tree: StateTree, changes: Any) -> Any:
            start = clock()
            update = tree_apply(tree, changes)
            times.tree_s += clock() - start
            times.changed_keys += len(changes)
            times.observe(changes, update)
            return update

        def commit(store: Store, block: Any, **options: Any) -> Any:
            start = clock()
            try:
                return store_commit(store, block, **options)
            finally:
                times.commit_s += clock() - start
                times.blocks += 1

        StateTree.apply = apply  # type: ignore[method-assign]
        Store.commit_block = commit  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc_info: object) -> None:
        StateTree.apply = self._apply  # type: ignore[method-assign]
        Store.commit_block = self._commit  # type: ignore[method-assign]
