"""The node process: lock the data dir, open the ledger, run the node on uvloop until a signal.

`run_node` is what `chainmall node start` runs in the foreground:

1. structured logs as configured (`log.level`, `log.format`);
2. the data directory's writers' lock (core/datadir.py: a second node, or any
   other writer, on the same directory is refused with a clear error);
3. the ledger (LMDB, mapped large from the start, with the configured
   pruning window), the ABCI `Application`, the validator's key;
4. on a uvloop event loop: the `Node`, then its front ends (the JSON-RPC
   server), until SIGINT or SIGTERM; the garbage collector tuned for a
   process with many live objects and few cycles (`GC_THRESHOLDS`), the GIL's
   switch interval shortened for the block thread (`node.switch_interval_us`);
5. a clean stop: no new submits, the block in hand is committed and its
   txs reported final, in-flight requests are answered, the front ends
   close, then LMDB is closed and the lock released.

A block that fails to commit (a full disk, a broken invariant) stops the
node the same way, with exit status 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

import uvloop

from ..abci.app import Application
from ..constants import NODE_MAP_SIZE_BYTES, SWITCH_INTERVAL_US_DEFAULT
from ..datadir import open_ledger
from ..keys import KeyPair
from ..keystore import KeyStore
from ..osproc import fix_malloc_mmap_threshold
from .config import Config
from .logs import setup_logging
from .node import Node

log = logging.getLogger("chainmall.node.app")

# The cyclic garbage collector, tuned for a process that holds a million or more live
# objects (pending txs, recent final outcomes, blocks in hand) and makes almost no
# reference cycles. With Python's defaults (700, 10, 10), at 3,000 tx/s, the node ran 15
# full collections in 40 s (5.8 s, finding 36 objects) and its collector took ~135 us of
# CPU per tx, more than the block's execution; with these, and what the node holds once
# it serves frozen out of every scan (gc.freeze), the node's CPU per tx fell ~35%
# (294 -> 186 us, same machine and load). Young garbage is still collected every
# GC_THRESHOLDS[0] allocations, so a cycle does not live long.
GC_THRESHOLDS = (200_000, 10, 100)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Frontend(Protocol):
    """Something that serves a running node (the JSON-RPC server): started after the node,
    stopped before it closes; `addresses` names where it listens."""

    addresses: Mapping[str, str]

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


FrontendFactory = Callable[[Node], Frontend]


def tune_interpreter(switch_interval_us: int = SWITCH_INTERVAL_US_DEFAULT) -> None:
    """The node process's interpreter settings: the collector's thresholds
    (`GC_THRESHOLDS`), the GIL's switch interval (`node.switch_interval_us`) and a fixed
    malloc mmap threshold (`fix_malloc_mmap_threshold`).

    The block thread hands the GIL away at every LMDB call (several per tx) and
    waits to get it back while the event loop or admission runs Python: up to
    a whole switch interval each time (Python's default, 5 ms). Shorter slices
    bound that wait; the other threads pay a few more switches per second."""
    gc.set_threshold(*GC_THRESHOLDS)
    sys.setswitchinterval(switch_interval_us / 1e6)
    fix_malloc_mmap_threshold()


def open_application(data_dir: Path, version: str, retain_heights: int = 0,
                     command: str = "chainmall node start") -> Application:
    """The ABCI application over an initialised data directory, holding its writers' lock
    (DataDirInUse, naming the holder, when another process has it) until `app.store` is
    closed. The store is mapped at NODE_MAP_SIZE_BYTES and prunes trees older than
    `retain_heights` heights (0: none)."""
    store, genesis, _ = open_ledger(
        data_dir, write=True, command=command,
        store_options={"map_size_bytes": NODE_MAP_SIZE_BYTES, "retain_heights": retain_heights})
    try:
        return Application(store, genesis, version=version)
    except BaseException:
        store.close()
        raise


def load_validator(home: Path, name: str, passphrase: str | None) -> KeyPair:
    """The validator's key pair from HOME/keys."""
    return KeyStore(home / "keys").load(name, passphrase)


async def serve(node: Node, frontends: Sequence[Frontend],
                on_ready: Callable[[dict[str, str]], None] | None = None,
                stop: asyncio.Event | None = None) -> int:
    """Run `node` and its front ends until `stop` is set (default: SIGINT/SIGTERM) or a block
    fails; then stop them in order. 0 after a requested stop, 1 after a failure."""
    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stop.set)
    started: list[Frontend] = []
    failed = False
    try:
        await node.start()
        for frontend in frontends:
            await frontend.start()
            started.append(frontend)
        addresses = {kind: address for frontend in started
                     for kind, address in frontend.addresses.items()}
        log.info("node ready", extra={"fields": {"addresses": addresses,
                                                 "height": node.status().height}})
        if on_ready is not None:
            on_ready(addresses)
        stopping = loop.create_task(stop.wait())
        await asyncio.wait({stopping, node.producer_task}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if node.producer_task.done() and not node.producer_task.cancelled():
            error = node.producer_task.exception()
            if error is not None:
                failed = True
                log.error("block production failed; stopping",
                          exc_info=(type(error), error, error.__traceback__))
        log.info("stopping", extra={"fields": {"height": node.status().height}})
    finally:
        await node.stop()
        for frontend in reversed(started):
            with contextlib.suppress(Exception):
                await frontend.stop()
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)
    return 1 if failed else 0


def run_node(data_dir: Path, config: Config, home: Path, *, version: str,
             passphrase: str | None = None, frontends: Sequence[FrontendFactory] = (),
             on_ready: Callable[[dict[str, str]], None] | None = None) -> int:
    """`chainmall node start`: run a node over `data_dir` in the foreground until SIGINT or
    SIGTERM; the exit status (see the module docstring)."""
    setup_logging(config.log.level, config.log.format)
    app = open_application(data_dir, version, config.pruning.retain_heights)
    try:
        validator = load_validator(home, config.node.validator_key, passphrase)
        node = Node(app, validator, config, version=version)
        servers = [factory(node) for factory in frontends]

        def ready(addresses: dict[str, str]) -> None:
            gc.collect()
            gc.freeze()  # the process's own objects: never scanned again
            if on_ready is not None:
                on_ready(addresses)

        tune_interpreter(config.node.switch_interval_us)
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(serve(node, servers, ready))
    finally:
        app.store.close()  # releases the data directory's lock
        log.info("ledger closed", extra={"fields": {"data_dir": str(data_dir)}})
