"""One state size of a "flat cost" benchmark: a store bulk-initialised with a made-up state,
its machine, and empty blocks timed whole and inside one begin-block hook.

The flat-cost benchmarks (bench_trust_epochs, bench_mall_timeouts) build a state of n
entries with `build_tree` (the entries are the state, not the product of n signed txs),
then execute and commit empty blocks on a real machine over LMDB, timing the whole block
and the one hook whose cost must not grow with n.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

from chainmall.core.keys import KeyPair
from chainmall.core.state.machine import FinalizeResult, StateMachine
from chainmall.core.state.root import build_tree
from chainmall.core.store import Store

MAP_SIZE_BYTES = 1 << 34


class BulkState:
    """A store holding `state` at genesis, its machine with `install` applied, and the
    times of the blocks run so far (`block_s`) and of `hook` inside them (`hook_s`).

    `hook` is (module, name): the module attribute the machine calls each block, wrapped
    with a timer while a block runs.
    """

    def __init__(self, n: int, directory: str, genesis: Any, state: Mapping[bytes, bytes],
                 install: Callable[[StateMachine, Any], None],
                 hook: tuple[ModuleType, str]) -> None:
        self.n = n
        start = time.perf_counter()
        update = build_tree(state)
        self.store = Store(os.path.join(directory, f"n{n}"), map_size_bytes=MAP_SIZE_BYTES)
        self.store.init_genesis(genesis.chain_id, genesis.hash(), state, update.new_nodes,
                                update.root)
        del update
        self.machine = StateMachine(self.store, genesis)
        install(self.machine, genesis)
        self.build_s = time.perf_counter() - start
        self._hook = hook
        self.block_s: list[float] = []
        self.hook_s: list[float] = []

    def run_block(self, time_ms: int, proposer: KeyPair) -> FinalizeResult:
        """Execute and commit the next block, empty, at `time_ms`; record its times."""
        height = self.machine.info()[0] + 1
        module, name = self._hook
        hook = getattr(module, name)
        spent = 0.0

        def timed(*args: Any) -> None:
            nonlocal spent
            started = time.perf_counter()
            hook(*args)
            spent += time.perf_counter() - started

        setattr(module, name, timed)
        try:
            start = time.perf_counter()
            result = self.machine.execute(height, time_ms, proposer.public_key, [])
            self.machine.commit()
            self.block_s.append(time.perf_counter() - start)
        finally:
            setattr(module, name, hook)
        self.hook_s.append(spent)
        return result

    def next_height(self) -> int:
        """The height the next `run_block` executes."""
        return self.machine.info()[0] + 1
