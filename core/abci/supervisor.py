"""Run one CometBFT node: chainmall's Application behind the ABCI server, CometBFT as a child.

The order is the restart contract's (docs/cometbft.md section 4): the ABCI
server listens first, then CometBFT starts (it connects, handshakes, replays
what the app lacks); to stop, CometBFT goes first (SIGTERM, SIGKILL after
SUPERVISOR_STOP_S), then the server, then the store closes. If either dies
on its own, the other is stopped and the supervisor says which died and why
(CometBFT's exit status and the last line of its log, or the application's
failing call); with `restart` it then opens the store again and starts the
pair again (at most SUPERVISOR_RESTARTS_MAX times in a row, with back-off).

CometBFT is started with the parent-death signal set (Linux), so a node
process killed outright takes its CometBFT with it, as a crashed machine
would. `CHAINMALL_FAILPOINT=abci.finalize_block@H` makes the application's
FinalizeBlock at height H fail once in this process (the tests' "kill only
the app"). The application defers each block's durable write past Commit
(docs/cometbft.md section 4).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..constants import SUPERVISOR_RESTARTS_MAX, SUPERVISOR_STOP_S
from ..errors import AbciAppFailed, SupervisedProcessFailed
from ..genesis import load_genesis
from ..store import Store
from .app import Application
from .server import AbciServer
from .types import AbciApplication, BlockRequest, FinalizeBlockResult

LOG = logging.getLogger("chainmall.supervisor")
FAILPOINT_ENV = "CHAINMALL_FAILPOINT"
FINALIZE_FAILPOINT = "abci.finalize_block@"
_PR_SET_PDEATHSIG = 1
RESTART_DELAY_S = 0.5
RESTART_DELAY_MAX_S = 5.0
STABLE_RUN_S = 60.0  # a pair that ran this long resets the restart count


class Frontend(Protocol):
    """A service started once the pair runs and stopped before it (e.g. the node's RPC)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class PairServices(Protocol):
    """What runs with each life of the pair (the node's submits, finality and RPC)."""

    def serve(self, app: Application) -> AbciApplication:
        """What the ABCI server serves in front of `app` (e.g. a wrapper that watches
        commits)."""
        ...

    def frontends(self, app: Application, server: AbciServer) -> Sequence[Frontend]:
        """The services to start once CometBFT runs, stopped (in reverse) before it."""
        ...


@dataclass(frozen=True, slots=True)
class NodePaths:
    """Where one node keeps its data: chainmall's data directory and CometBFT's home."""

    data_dir: Path  # genesis.json and ledger/
    cometbft_home: Path
    abci_address: str  # tcp://127.0.0.1:PORT or unix:///PATH, as config.toml's proxy_app

    @property
    def cometbft_log(self) -> Path:
        return self.data_dir / "cometbft.log"


class _Failpoint:
    """FinalizeBlock fails once at a height named by CHAINMALL_FAILPOINT (tests)."""

    fired = False

    def __init__(self, app: AbciApplication) -> None:
        self._app = app
        text = os.environ.get(FAILPOINT_ENV, "")
        self.height = int(text[len(FINALIZE_FAILPOINT):]) \
            if text.startswith(FINALIZE_FAILPOINT) else 0

    def __getattr__(self, name: str) -> object:
        return getattr(self._app, name)

    def finalize_block(self, request: BlockRequest) -> FinalizeBlockResult:
        if request.height == self.height and not _Failpoint.fired:
            _Failpoint.fired = True
            raise RuntimeError(f"failpoint {FINALIZE_FAILPOINT}{self.height}")
        return self._app.finalize_block(request)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def last_log_line(path: Path, limit_bytes: int = 16384) -> str:
    """The last non-empty line of a log file ("" if none)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - limit_bytes))
            lines = handle.read().decode(errors="replace").splitlines()
    except OSError:
        return ""
    for line in reversed(lines):
        if line.strip():
            return line.strip()
    return ""


class NodeSupervisor:
    """Runs the Application + ABCI server and a CometBFT child as one pair (module docstring).

    `run()` returns after `stop()`; it raises SupervisedProcessFailed when
    the pair failed and is not restarted. `open_app()` opens the application
    each time (default: the data directory's store, no lock); `services` are
    attached to each life of the pair.
    """

    def __init__(self, paths: NodePaths, binary: Path, *, restart: bool = False,
                 version: str = "", services: PairServices | None = None,
                 open_app: Callable[[], Application] | None = None,
                 restarts_max: int = SUPERVISOR_RESTARTS_MAX,
                 block_writer_process: bool = False) -> None:
        self.paths = paths
        self.block_writer_process = block_writer_process
        self.binary = binary
        self.restart = restart
        self.version = version
        self.services = services
        self.open_app = open_app or self._open_store
        self.restarts_max = restarts_max
        self.restarts = 0
        self._stop = asyncio.Event()
        self.app: Application | None = None
        self.cometbft: asyncio.subprocess.Process | None = None

    def stop(self) -> None:
        """Ask `run()` to stop the pair (CometBFT first) and return."""
        self._stop.set()

    async def run(self) -> None:
        """Run the pair until `stop()`; restart it after a failure when asked to."""
        failures = 0
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            failure = await self._run_once()
            if failure is None:
                return
            LOG.error("%s", failure)
            if loop.time() - started > STABLE_RUN_S:
                failures = 0
            failures += 1
            if not self.restart or failures > self.restarts_max:
                raise SupervisedProcessFailed(failure + ("" if not self.restart else
                                              f" (gave up after {self.restarts_max} restarts)"))
            self.restarts += 1
            delay = min(RESTART_DELAY_S * 2 ** (failures - 1), RESTART_DELAY_MAX_S)
            LOG.warning("restarting the application and CometBFT (restart %d)", self.restarts)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)  # a stop ends the back-off
            if self._stop.is_set():
                return

    def _open_store(self) -> Application:
        genesis = load_genesis(self.paths.data_dir / "genesis.json")
        store = Store(self.paths.data_dir / "ledger")
        try:
            return Application(store, genesis, version=self.version)
        except BaseException:
            store.close()
            raise

    async def _run_once(self) -> str | None:
        """One life of the pair: None after a requested stop, else what failed."""
        app = self.open_app()
        # The next height starts while a block's write runs (cometbft.block_writer).
        app.defer_commits(process=self.block_writer_process)
        store = app.store
        executor = ThreadPoolExecutor(1, thread_name_prefix="abci-app")
        server: AbciServer | None = None
        started: list[Frontend] = []
        try:
            self.app = app
            served: AbciApplication = app if self.services is None else self.services.serve(app)
            failpoint = _Failpoint(served)
            server = AbciServer(failpoint if failpoint.height else served, executor=executor)
            await server.start(self.paths.abci_address)
            self.cometbft = process = await self._start_cometbft()
            LOG.info("CometBFT started (pid %d), app at height %d", process.pid,
                     app.info().last_block_height)
            if self.services is not None:
                for frontend in self.services.frontends(app, server):
                    await frontend.start()
                    started.append(frontend)
            return await self._watch(server, process)
        finally:
            for frontend in reversed(started):
                with contextlib.suppress(Exception):
                    await frontend.stop()
            if self.cometbft is not None:
                await self._stop_cometbft(self.cometbft)
            if server is not None:
                with contextlib.suppress(Exception):
                    await server.stop()
            executor.shutdown(wait=True)
            try:
                app.close()  # the last block's write done before the store closes
            except Exception as error:  # the write failed: the store keeps the block before
                LOG.error("the last block's write failed: %s", error)
            finally:
                store.close()
            self.app = None

    async def _start_cometbft(self) -> asyncio.subprocess.Process:
        log = self.paths.cometbft_log.open("ab")
        try:
            return await asyncio.create_subprocess_exec(
                str(self.binary), "start", "--home", str(self.paths.cometbft_home),
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=asyncio.subprocess.STDOUT,
                preexec_fn=_die_with_parent)
        except OSError as exc:
            raise SupervisedProcessFailed(f"cannot start CometBFT ({self.binary}): {exc}") \
                from None
        finally:
            log.close()

    async def _watch(self, server: AbciServer, process: asyncio.subprocess.Process) -> str | None:
        stop = asyncio.ensure_future(self._stop.wait())
        exited = asyncio.ensure_future(process.wait())
        closed = asyncio.ensure_future(server.wait_closed())
        try:
            await asyncio.wait({stop, exited, closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (stop, exited, closed):
                task.cancel()
        if closed.done() and not closed.cancelled():
            error = closed.exception()
            reason = str(error) if isinstance(error, AbciAppFailed) else \
                f"the application's ABCI server stopped ({error or 'closed'})"
            return f"{reason}; stopping CometBFT"
        if exited.done() and not exited.cancelled():
            status = exited.result()
            how = (f"was killed by signal {-status}" if status < 0
                   else f"exited with status {status}")
            line = last_log_line(self.paths.cometbft_log)
            return f"CometBFT {how}" + (f" ({line})" if line else "") + "; stopping the application"
        return None

    async def _stop_cometbft(self, process: asyncio.subprocess.Process) -> None:
        self.cometbft = None
        if process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), SUPERVISOR_STOP_S)
        except TimeoutError:
            LOG.warning("CometBFT did not stop within %d s: killing it", SUPERVISOR_STOP_S)
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()


def run_supervised(paths: NodePaths, binary: Path, *, restart: bool, version: str,
                   services: PairServices | None = None,
                   open_app: Callable[[], Application] | None = None,
                   block_writer_process: bool = False) -> None:
    """Run a NodeSupervisor on a new event loop (uvloop when installed) until SIGINT or
    SIGTERM; SupervisedProcessFailed when the pair failed for good."""
    try:
        import uvloop
        loop_factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop is a dependency
        loop_factory = asyncio.new_event_loop

    async def main() -> None:
        supervisor = NodeSupervisor(paths, binary, restart=restart, version=version,
                                    services=services, open_app=open_app,
                                    block_writer_process=block_writer_process)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, supervisor.stop)
        await supervisor.run()

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(main())
