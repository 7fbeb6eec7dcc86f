"""The ABCI 2.0 socket server: CometBFT's connections in front of one `AbciApplication`.

CometBFT opens four connections (consensus, mempool, info/query, snapshot)
to the address in its `proxy_app` setting (`tcp://HOST:PORT` or
`unix:///PATH`). On each, requests arrive as varint-framed protobuf
`Request`s (`framing.py`), possibly many per read and split anywhere, and the
responses must come back in request order. This server reads whole frames,
answers them in order, and writes the answers of one read in one go; a Flush
is answered in its place, after everything before it, so it is honoured.

Application calls are serialised across all connections (one at a time,
like CometBFT's own local client). They run inline on the event loop, or,
given an `executor`, in it (a batch of requests per hop), so a long
FinalizeBlock or Commit does not stall other work on the loop, e.g. the
node's own RPC. `call` runs any other app call under the same serialisation.

Errors: CheckTx and Query have a code, and an exception there becomes a
non-zero code (the error's own `code` for a `ChainmallError`). The other
calls (Info, InitChain, PrepareProposal, ProcessProposal, FinalizeBlock,
Commit) have no error field, and any answer made up for them could fork the
node, so an exception there is fatal: the server closes every connection and
its listener (CometBFT then stops) and `wait_closed` raises `AbciAppFailed`.
`ResponseException` is never sent: CometBFT treats it as fatal without
telling us. State sync is not supported (no snapshots offered; offers and
chunks are aborted).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import stat
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from typing import TypeVar

from google.protobuf.message import DecodeError as ProtobufDecodeError

from ..constants import (
    ABCI_BATCH_REQUESTS_MAX,
    ABCI_CONNECTIONS_MAX,
    ABCI_READ_BYTES_MAX,
    ABCI_REQUEST_BYTES_MAX,
)
from ..errors import AbciAppFailed, AbciError, AbciFrameError, ChainmallError
from . import convert
from .framing import FrameDecoder, append_frame
from .proto.tendermint.abci import types_pb2 as abci
from .types import AbciApplication, CheckTxKind

log = logging.getLogger("chainmall.abci")

T = TypeVar("T")

# Requests answered without the application.
_LOCAL_REQUESTS = frozenset({
    "echo", "flush", "list_snapshots", "offer_snapshot", "load_snapshot_chunk",
    "apply_snapshot_chunk", "extend_vote", "verify_vote_extension",
})
# App failures in these calls become a code in the response; in any other, serving stops.
_CODED_REQUESTS = frozenset({"check_tx", "query"})
# Batches of only these wait behind any batch with a block call (consensus goes first).
_BACKGROUND_REQUESTS = _LOCAL_REQUESTS | _CODED_REQUESTS
INTERNAL_ERROR_CODE = ChainmallError.code
# CHAINMALL_ABCI_CPU_FILE=PATH: the server writes its CPU by request kind there (JSON,
# rewritten after every Commit and at stop) for bench/cluster, and the process's CPU by
# thread (`thread_cpu`) under "thread NAME" keys.
CPU_FILE_ENV = "CHAINMALL_ABCI_CPU_FILE"
_NEW, _RECHECK = CheckTxKind.NEW, CheckTxKind.RECHECK
assert abci.NEW == _NEW and abci.RECHECK == _RECHECK


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def thread_cpu() -> dict[str, float]:
    """This process's CPU seconds (utime + stime) by thread, named by Python's thread name
    (pool threads by their prefix, e.g. "abci-app"), other native threads (OpenMP's, the
    signature kernel's) by "native " and their command name; threads of one name summed.
    Threads that ended are not counted (their CPU stays in the process's total)."""
    names = {thread.native_id: thread.name for thread in threading.enumerate()}
    found: dict[str, float] = {}
    with contextlib.suppress(OSError):
        for tid in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{tid}/stat") as handle:
                    text = handle.read()
            except OSError:
                continue
            head, _, tail = text.rpartition(")")
            fields = tail.split()
            seconds = (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
            name = names.get(int(tid))
            if name is None:
                name = "native " + head.partition("(")[2]
            else:
                name = name.rstrip("0123456789").rstrip("_")  # a pool's threads together
            found[name] = found.get(name, 0.0) + seconds
    return found


def parse_address(address: str) -> tuple[str, str, int]:
    """Split `tcp://HOST:PORT` into ("tcp", HOST, PORT), `unix:///PATH` into ("unix", PATH, 0)."""
    scheme, sep, rest = address.partition("://")
    if not sep or not rest:
        raise ValueError(f"ABCI address {address!r}: expected tcp://HOST:PORT or unix:///PATH")
    if scheme == "unix":
        return "unix", rest, 0
    if scheme == "tcp":
        host, colon, port = rest.rpartition(":")
        if not colon or not host or not port.isdigit() or int(port) > 65535:
            raise ValueError(f"ABCI address {address!r}: expected tcp://HOST:PORT")
        return "tcp", host.strip("[]"), int(port)
    raise ValueError(f"ABCI address {address!r}: the scheme must be tcp or unix")


class _AppLock:
    """Serialises application calls, FIFO, except that a batch holding a block call (the
    consensus connection's) goes before batches of CheckTx and Query waiting then: under a
    stream of CheckTx a block is not kept waiting behind it."""

    def __init__(self) -> None:
        self._busy = False
        self._urgent = 0
        self._condition = asyncio.Condition()

    @contextlib.asynccontextmanager
    async def hold(self, urgent: bool) -> AsyncIterator[None]:
        async with self._condition:
            self._urgent += urgent
            try:
                await self._condition.wait_for(
                    lambda: not self._busy and (urgent or not self._urgent))
            finally:
                self._urgent -= urgent
            self._busy = True
        try:
            yield
        finally:
            async with self._condition:
                self._busy = False
                self._condition.notify_all()


class AbciServer:
    """Serves one `AbciApplication` to CometBFT over a TCP or Unix socket.

    `start(address)` listens (a TCP port 0 picks a free port: see `address`);
    `stop()` closes the listener and every connection and returns once no
    application call is running; `wait_closed()` returns after `stop()` and
    raises `AbciAppFailed` as soon as serving stops because the application
    failed (the connections are then closing: `stop()` waits for them).
    """

    def __init__(
        self,
        app: AbciApplication,
        *,
        executor: Executor | None = None,
        request_bytes_max: int = ABCI_REQUEST_BYTES_MAX,
        info_data: str = "chainmall",
    ) -> None:
        self._app = app
        self._executor = executor
        self._request_bytes_max = request_bytes_max
        self._info_data = info_data
        self._server: asyncio.Server | None = None
        self._unix_path: str | None = None
        self._address = ""
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._app_lock = _AppLock()
        self._check_txs = getattr(app, "check_txs", None)
        self._closed: asyncio.Future[None] | None = None
        self._closing = False
        self._close_task: asyncio.Task[None] | None = None
        # Thread CPU seconds and requests by kind ("decode": protobuf parsing on the loop;
        # "recheck_tx" apart from "check_tx"); see `cpu_by_kind`.
        self._cpu: dict[str, list[float]] = {}
        self._cpu_file = os.environ.get(CPU_FILE_ENV, "")
        self._handlers: dict[str, Callable[[abci.Request], abci.Response]] = {
            "echo": self._echo,
            "flush": self._flush,
            "info": self._info,
            "init_chain": self._init_chain,
            "query": self._query,
            "check_tx": self._check_tx,
            "commit": self._commit,
            "list_snapshots": self._list_snapshots,
            "offer_snapshot": self._offer_snapshot,
            "load_snapshot_chunk": self._load_snapshot_chunk,
            "apply_snapshot_chunk": self._apply_snapshot_chunk,
            "prepare_proposal": self._prepare_proposal,
            "process_proposal": self._process_proposal,
            "extend_vote": self._extend_vote,
            "verify_vote_extension": self._verify_vote_extension,
            "finalize_block": self._finalize_block,
        }

    # --- lifecycle -------------------------------------------------------------

    @property
    def address(self) -> str:
        """The address being served, in CometBFT's `proxy_app` form (real port if 0 was asked)."""
        return self._address

    @property
    def connection_count(self) -> int:
        """Connections open now (CometBFT holds four)."""
        return len(self._connections)

    async def start(self, address: str) -> None:
        """Listen on `address` (`tcp://HOST:PORT` or `unix:///PATH`)."""
        if self._server is not None:
            raise RuntimeError("the ABCI server is already started")
        scheme, host, port = parse_address(address)
        self._closed = asyncio.get_running_loop().create_future()
        if scheme == "unix":
            with contextlib.suppress(FileNotFoundError):  # a stale socket of a dead server
                if stat.S_ISSOCK(os.stat(host).st_mode):
                    os.unlink(host)
            self._server = await asyncio.start_unix_server(self._serve_connection, path=host)
            self._unix_path = host
            self._address = f"unix://{host}"
        else:
            self._server = await asyncio.start_server(self._serve_connection, host, port)
            bound = self._server.sockets[0].getsockname()
            self._address = f"tcp://{host}:{bound[1]}" if ":" not in host else \
                f"tcp://[{host}]:{bound[1]}"
        log.info("ABCI server listening on %s", self._address)

    async def stop(self) -> None:
        """Stop serving: close the listener and every connection, wait for running calls."""
        await self._begin_close()
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)

    async def wait_closed(self) -> None:
        """Wait until serving stops; raise `AbciAppFailed` if the application failed."""
        if self._closed is None:
            raise RuntimeError("the ABCI server was not started")
        await asyncio.shield(self._closed)

    async def call(self, function: Callable[..., T], *args: object) -> T:
        """Run `function(*args)` serialised with the ABCI calls (and in the executor, if any),
        for callers in the same process that share the application (e.g. the node's RPC)."""
        if self._executor is None:
            return function(*args)
        async with self._app_lock.hold(urgent=False):
            return await asyncio.get_running_loop().run_in_executor(
                self._executor, function, *args
            )

    @property
    def cpu_by_kind(self) -> dict[str, tuple[float, int]]:
        """Thread CPU seconds spent answering each kind of request, and how many were
        answered (protobuf decoding counted apart as "decode", rechecks as "recheck_tx")."""
        return {kind: (seconds, int(count)) for kind, (seconds, count) in self._cpu.items()}

    def _count_cpu(self, kind: str, seconds: float, count: int) -> None:
        entry = self._cpu.get(kind)
        if entry is None:
            self._cpu[kind] = [seconds, count]
        else:
            entry[0] += seconds
            entry[1] += count

    def _dump_cpu(self) -> None:
        if not self._cpu_file:
            return
        with contextlib.suppress(OSError):
            temporary = self._cpu_file + ".tmp"
            with open(temporary, "w") as out:
                json.dump({**self.cpu_by_kind,
                           **{f"thread {name}": (seconds, 0)
                              for name, seconds in thread_cpu().items()}}, out)
            os.replace(temporary, self._cpu_file)

    def _begin_close(self) -> asyncio.Task[None]:
        """Start closing (once): no new requests are read from here on."""
        if self._close_task is None:
            self._closing = True
            self._close_task = asyncio.get_running_loop().create_task(self._close_all())
        return self._close_task

    async def _close_all(self) -> None:
        self._dump_cpu()
        if self._server is not None:
            self._server.close()
        for writer in self._connections.values():
            writer.close()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
        if self._unix_path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._unix_path)
            self._unix_path = None
        log.info("ABCI server on %s stopped", self._address)

    def _fail(self, error: AbciAppFailed) -> None:
        """Stop serving because the application failed; `wait_closed` raises `error`."""
        log.error("%s; closing the ABCI connections", error)
        if self._closed is not None and not self._closed.done():
            self._closed.set_exception(error)
            self._closed.exception()  # retrieved: the owner sees it through wait_closed()
        self._begin_close()

    # --- one connection ----------------------------------------------------------

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        if self._closing or len(self._connections) >= ABCI_CONNECTIONS_MAX:
            log.warning("refusing an ABCI connection: %s", "stopping" if self._closing else
                        f"already {len(self._connections)} open")
            writer.close()
            return
        self._connections[task] = writer
        decoder = FrameDecoder(self._request_bytes_max)
        try:
            while not self._closing:
                data = await reader.read(ABCI_READ_BYTES_MAX)
                if not data:
                    break
                frames = decoder.feed(data)
                for start in range(0, len(frames), ABCI_BATCH_REQUESTS_MAX):
                    answers = await self._answer(frames[start:start + ABCI_BATCH_REQUESTS_MAX])
                    if self._closing:
                        return
                    writer.write(answers)
                    await writer.drain()
        except AbciAppFailed as error:
            self._fail(error)
        except AbciError as error:
            log.error("closing an ABCI connection: %s", error)
        except (ConnectionError, OSError) as error:
            log.debug("ABCI connection lost: %s", error)
        finally:
            del self._connections[task]
            writer.close()

    async def _answer(self, frames: list[bytes]) -> bytes:
        """The framed responses to `frames`, in order."""
        began = time.thread_time()
        requests = []
        for frame in frames:
            try:
                requests.append(abci.Request.FromString(frame))
            except ProtobufDecodeError as error:
                raise AbciFrameError(f"an ABCI request that is not a protobuf Request: {error}") \
                    from None
        self._count_cpu("decode", time.thread_time() - began, len(frames))
        kinds = [r.WhichOneof("value") for r in requests]
        if self._executor is None or all(kind in _LOCAL_REQUESTS for kind in kinds):
            return self._answer_batch(requests)
        urgent = any(kind not in _BACKGROUND_REQUESTS for kind in kinds)
        async with self._app_lock.hold(urgent):
            return await asyncio.get_running_loop().run_in_executor(
                self._executor, self._answer_batch, requests
            )

    def _answer_batch(self, requests: list[abci.Request]) -> bytes:
        out = bytearray()
        index = 0
        while index < len(requests):
            end, recheck = index, 0
            if requests[index].WhichOneof("value") == "check_tx":
                recheck = requests[index].check_tx.type
                while (end < len(requests) and requests[end].WhichOneof("value") == "check_tx"
                       and requests[end].check_tx.type == recheck):
                    end += 1
            began = time.thread_time()
            if end - index > 1 and self._check_txs is not None:
                for response in self._check_tx_run(requests[index:end]):
                    append_frame(out, response.SerializeToString())
                kind = "recheck_tx" if recheck else "check_tx"
                self._count_cpu(kind, time.thread_time() - began, end - index)
                index = end
                continue
            request = requests[index]
            append_frame(out, self._answer_one(request).SerializeToString())
            kind = request.WhichOneof("value") or ""
            if kind == "check_tx" and request.check_tx.type:
                kind = "recheck_tx"
            self._count_cpu(kind, time.thread_time() - began, 1)
            if kind == "commit":
                self._dump_cpu()
            index += 1
        return bytes(out)

    def _check_tx_run(self, requests: list[abci.Request]) -> list[abci.Response]:
        """Consecutive CheckTx requests of one kind (new or recheck) answered by one
        `check_txs(txs, kind)` call (the app checks their signatures in one batch); one at a
        time if that call fails."""
        kind = _RECHECK if requests[0].check_tx.type else _NEW
        try:
            results = self._check_txs([request.check_tx.tx for request in requests], kind)
        except Exception:  # each request then gets its own verdict or error code
            return [self._answer_one(request) for request in requests]
        if len(results) != len(requests):
            raise AbciAppFailed(f"check_txs returned {len(results)} results for "
                                f"{len(requests)} txs")
        responses = []
        for result in results:
            response = abci.Response()
            response.check_tx.SetInParent()
            convert.check_tx_result_to_proto(result, response.check_tx)
            responses.append(response)
        return responses

    def _answer_one(self, request: abci.Request) -> abci.Response:
        kind = request.WhichOneof("value")
        handler = self._handlers.get(kind) if kind else None
        if handler is None:
            raise AbciFrameError(f"an ABCI request of unknown type {kind or '(empty)'}")
        try:
            return handler(request)
        except AbciAppFailed:
            raise
        except Exception as error:
            if kind in _CODED_REQUESTS:
                return self._coded_failure(kind, error)
            raise AbciAppFailed(f"the application failed in {kind}: "
                                f"{type(error).__name__}: {error}") from error

    @staticmethod
    def _coded_failure(kind: str, error: Exception) -> abci.Response:
        if isinstance(error, ChainmallError):
            log.debug("%s refused: %s", kind, error)
            code, text = error.code, f"{type(error).__name__}: {error}"
        else:
            log.exception("the application failed in %s", kind)
            code, text = INTERNAL_ERROR_CODE, f"internal error: {type(error).__name__}: {error}"
        if kind == "check_tx":
            return abci.Response(check_tx=abci.ResponseCheckTx(code=code, log=text))
        return abci.Response(query=abci.ResponseQuery(code=code, log=text))

    # --- handlers: one per request type ----------------------------------------------

    def _echo(self, request: abci.Request) -> abci.Response:
        return abci.Response(echo=abci.ResponseEcho(message=request.echo.message))

    def _flush(self, request: abci.Request) -> abci.Response:
        return abci.Response(flush=abci.ResponseFlush())

    def _info(self, request: abci.Request) -> abci.Response:
        result = self._app.info()
        return abci.Response(info=convert.info_result_to_proto(result, self._info_data))

    def _init_chain(self, request: abci.Request) -> abci.Response:
        result = self._app.init_chain(convert.init_chain_request_from_proto(request.init_chain))
        return abci.Response(init_chain=convert.init_chain_result_to_proto(result))

    def _query(self, request: abci.Request) -> abci.Response:
        result = self._app.query(convert.query_request_from_proto(request.query))
        return abci.Response(query=convert.query_result_to_proto(result))

    # The hot paths (a CheckTx per tx per node, an ExecTxResult per tx) fill the Response
    # in place: wrapping a finished sub-message copies it.
    def _check_tx(self, request: abci.Request) -> abci.Response:
        message = request.check_tx
        result = self._app.check_tx(message.tx, _RECHECK if message.type else _NEW)
        response = abci.Response()
        response.check_tx.SetInParent()
        convert.check_tx_result_to_proto(result, response.check_tx)
        return response

    def _prepare_proposal(self, request: abci.Request) -> abci.Response:
        txs = self._app.prepare_proposal(
            convert.block_request_from_proto(request.prepare_proposal)
        )
        return abci.Response(prepare_proposal=abci.ResponsePrepareProposal(txs=txs))

    def _process_proposal(self, request: abci.Request) -> abci.Response:
        accepted = self._app.process_proposal(
            convert.block_request_from_proto(request.process_proposal)
        )
        status = abci.ResponseProcessProposal.ACCEPT if accepted else \
            abci.ResponseProcessProposal.REJECT
        return abci.Response(process_proposal=abci.ResponseProcessProposal(status=status))

    def _finalize_block(self, request: abci.Request) -> abci.Response:
        block = convert.block_request_from_proto(request.finalize_block)
        result = self._app.finalize_block(block)
        counts = result.envelopes
        expected = sum(count or 1 for count in counts) if counts else len(block.txs)
        if (counts and len(counts) != len(block.txs)) or len(result.tx_results) != expected:
            raise AbciAppFailed(
                f"the application returned {len(result.tx_results)} tx results for the "
                f"{len(block.txs)} txs of block {block.height}"
            )
        response = abci.Response()
        response.finalize_block.SetInParent()
        convert.finalize_block_result_to_proto(result, response.finalize_block)
        return response

    def _commit(self, request: abci.Request) -> abci.Response:
        return abci.Response(commit=convert.commit_result_to_proto(self._app.commit()))

    # No vote extensions: an empty one is the only valid one.
    def _extend_vote(self, request: abci.Request) -> abci.Response:
        return abci.Response(extend_vote=abci.ResponseExtendVote())

    def _verify_vote_extension(self, request: abci.Request) -> abci.Response:
        empty = not request.verify_vote_extension.vote_extension
        status = abci.ResponseVerifyVoteExtension.ACCEPT if empty else \
            abci.ResponseVerifyVoteExtension.REJECT
        return abci.Response(verify_vote_extension=abci.ResponseVerifyVoteExtension(status=status))

    # State sync is not supported: nothing offered, anything offered aborted.
    def _list_snapshots(self, request: abci.Request) -> abci.Response:
        return abci.Response(list_snapshots=abci.ResponseListSnapshots())

    def _offer_snapshot(self, request: abci.Request) -> abci.Response:
        return abci.Response(
            offer_snapshot=abci.ResponseOfferSnapshot(result=abci.ResponseOfferSnapshot.ABORT)
        )

    def _load_snapshot_chunk(self, request: abci.Request) -> abci.Response:
        return abci.Response(load_snapshot_chunk=abci.ResponseLoadSnapshotChunk())

    def _apply_snapshot_chunk(self, request: abci.Request) -> abci.Response:
        return abci.Response(apply_snapshot_chunk=abci.ResponseApplySnapshotChunk(
            result=abci.ResponseApplySnapshotChunk.ABORT
        ))
