"""A writer process: `Store.commit_block` run in a process of its own, with its own GIL.

`StateMachine.defer_writes(process=True)`: the machine's writer thread pickles
each block's `BlockCommit` to this process and waits for its answer, so the
executing thread shares the GIL only with that pickling, not with the
commit's Python work and py-lmdb's GIL hand-over around every single put
(bench/README.md, issue 13, "mall").

The process opens the same store (LMDB serialises writers across processes;
the executing process only reads). It never grows the map: a full map is
answered "full" (nothing written), the executing process writes that block
itself, growing its map, and tells the writer the new size (`adopt`), so no
snapshot of either process is ever open across a growth. A failure in the
process is raised here, and the process's end (killed, crashed) is a
StorageError. When the executing process stops the writer (`close`), or only
closes the pipe, the writer exits after the transaction in hand. When the
executing process dies (kill -9, a crash), the kernel kills the writer with it
(PR_SET_PDEATHSIG): the transaction in hand is aborted, as the executing
process's own would be (a block is written whole or not at all), so no write of
a dead node's writer can land under a node restarted on the same data dir. The
parent-death signal follows the thread that started the process: make the
`WriterProcess` in a thread that outlives it (the main thread, in every caller).
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
import pickle
import signal
from typing import Any

from ..errors import StorageError
from ..osproc import die_with_parent
from ..store import BlockCommit, Store

__all__ = ["WriterProcess"]

_FIELDS = tuple(field.name for field in dataclasses.fields(BlockCommit))
_START_TIMEOUT_S = 120.0


def _serve(path: str, map_size_bytes: int, retain_heights: int, connection: Any,
           parent_pid: int) -> None:
    """The writer process: answer each message until "stop" or the pipe closes. It dies
    with the executing process (`die_with_parent`) and ignores SIGINT and SIGTERM (a terminal's
    Ctrl-C reaches the whole process group): the executing process decides when it stops."""
    if not die_with_parent(parent_pid):
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with Store(path, map_size_bytes=map_size_bytes, create=False,
               retain_heights=retain_heights) as store:
        connection.send_bytes(pickle.dumps(("ready",)))
        while True:
            try:
                message = pickle.loads(connection.recv_bytes())
            except (EOFError, OSError):
                return  # the executing process is gone
            kind = message[0]
            try:
                if kind == "write":
                    answer: tuple[Any, ...] = (
                        "written", store.commit_block(BlockCommit(*message[1]), grow=False))
                elif kind == "adopt":
                    store.adopt_map_size(message[1])
                    answer = ("adopted",)
                else:
                    return
            except Exception as error:
                answer = ("failed", _picklable(error))
            connection.send_bytes(pickle.dumps(answer))


def _picklable(error: Exception) -> Exception:
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return StorageError(f"the writer process failed: {type(error).__name__}: {error}")
    return error


class WriterProcess:
    """The writer process of `store` (spawned here), and the pipe to it."""

    def __init__(self, store: Store) -> None:
        context = multiprocessing.get_context("spawn")
        self._connection, theirs = context.Pipe()
        self._process = context.Process(
            target=_serve, name="chainmall-writer", daemon=True,
            args=(str(store.path), store.map_size_bytes, store.retain_heights, theirs,
                  os.getpid()))
        self._process.start()
        theirs.close()
        if not self._connection.poll(_START_TIMEOUT_S):
            self.close()
            raise StorageError("the writer process did not start")
        self._answer("ready")

    def write(self, commit: BlockCommit) -> bool:
        """`commit_block(commit, grow=False)` in the writer process: True once written,
        False for a full map (nothing written)."""
        self._send(("write", tuple(getattr(commit, name) for name in _FIELDS)))
        return bool(self._answer("written")[1])

    def adopt(self, map_size_bytes: int) -> None:
        """Tell the writer the map's new size (this process grew it between writes)."""
        self._send(("adopt", map_size_bytes))
        self._answer("adopted")

    def close(self) -> None:
        """Stop the writer process (after the write in hand) and wait for it."""
        with contextlib.suppress(StorageError):
            self._send(("stop",))
        self._connection.close()
        self._process.join(_START_TIMEOUT_S)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()

    def _send(self, message: tuple[Any, ...]) -> None:
        try:
            self._connection.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))
        except (OSError, ValueError) as exc:
            raise StorageError(f"the writer process is gone: {exc}") from exc

    def _answer(self, expected: str) -> tuple[Any, ...]:
        try:
            answer = pickle.loads(self._connection.recv_bytes())
        except (EOFError, OSError) as exc:
            raise StorageError(f"the writer process ended (exit code "
                               f"{self._process.exitcode})") from exc
        if answer[0] == "failed":
            raise answer[1]
        if answer[0] != expected:
            raise StorageError(f"the writer process answered {answer[0]!r}, not {expected!r}")
        return answer
