"""Reads of committed state served by reader processes, off the node's GIL (issue 12).

The in-process node (`Node`, node.py) with `node.read_processes` N > 0 answers its
reads of committed state here: `query` (and so `account` and the stored
`tx_status`), `block`, `block_by_hash` and the product page's reads
(`PageReader`'s `info`, `products`, `product`, `item_trace`). Each of N reader
processes opens the node's ledger read-only (its own LMDB environment: an
environment is opened once per process, so a reader is a fresh interpreter,
never a fork of the node) and builds the same `Application` over it (the
default modules, as `chainmall node start` runs), then answers requests one
after another from a socketpair. A read there is the same code as in a read
thread, on the store's committed tip at the moment of the read, so the answers
are the thread path's, error codes included; only the GIL differs.

The node's side is one asyncio protocol per reader on the event loop (no
thread per call): a request is one frame (u32 length, then the bytes below),
the answers come back in order, so each reader's in-flight requests are a FIFO.
A request goes to the ready reader with the fewest in flight; with none ready
(the readers start at the first read, in the background, and take about a
second to import) it is answered in the node's read threads by the same
`ReadServer`, so callers never wait for a start.

Frames (all integers big-endian):

* query  `Q` || prove u8 || height u64 || path length u16 || path || data;
  answer `0` || code i64 || height u64 || log length u32 || root length u32 ||
  entry count u32 || log || root || per entry (key length u32, value length
  u32 (0xFFFFFFFF: absent), proof length u32, key, value, proof);
* block  `B` || height u64 || block hash (0 or 32 bytes); answer `0` ||
  block length u32 || block || receipts, or `0` alone (no such block);
* page   `P` || pickle of (method name, args, alter_event); answer `0` || pickle;
* any failure: `1` || pickle of the exception (re-raised in the node).

Failures: a reader that ends (crash, kill) is replaced; each request it held is
sent once more (to another reader, or to the read threads), and a request
whose second attempt is lost too is a StorageError. A reader that dies before
it is ready three times in a row stops the replacing: the read threads serve.
Readers run at a lower priority (READER_NICE) than the node, so they take idle
cores but leave busy ones to the write path. A reader exits when its socket
reaches EOF (the node closed it, or died) and is killed by the kernel when the
node's thread that started it ends (PR_SET_PDEATHSIG), so `kill -9` of the
node leaves no reader behind.
`ReadPool.close` ends them; the node then clears LMDB's reader slots of any
reader that was killed with a snapshot open.

Map growth: the node's store doubles its map when full; a reader whose map is
then smaller than the data sees MDB_MAP_RESIZED at its next snapshot and takes
the new size (`Store(follow_map=True)`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import signal
import socket
import struct
import subprocess
import sys
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..abci.app import Application
from ..abci.types import ProvenEntry, QueryRequest, QueryResult
from ..errors import StorageError
from ..genesis import Genesis
from ..osproc import die_with_parent, name_os_thread
from ..store import Store
from .finality import CommittedBlock
from .reads import committed_block, stored_block_records

log = logging.getLogger("chainmall.node.read_pool")

READER_NAME = "cm-reader"  # the reader processes' name in the OS (ps, top, /proc/PID/comm)
READER_START_FAILURES_MAX = 3  # readers in a row that die before ready: replacing stops
READER_STOP_TIMEOUT_S = 5.0  # `close` waits this long for a reader to exit, then kills it
# Readers yield the cores to the node's write path when both want them (measured on a busy
# host, bench/README.md "Reads in reader processes": at equal priority the readers slowed
# the write path's p50; at this, not), and take idle cores whole.
READER_NICE = 10
PAGE_METHODS = frozenset({"info", "products", "product", "item_trace"})

_OP_QUERY = 0x51  # b"Q"
_OP_BLOCK = 0x42  # b"B"
_OP_PAGE = 0x50  # b"P"
_OK = b"\x00"
_FAILED = b"\x01"
_LENGTH = struct.Struct(">I")  # a frame's length
_QUERY_HEAD = struct.Struct(">BBQH")  # op, prove, height, path length
_ANSWER_HEAD = struct.Struct(">qQIII")  # code, height, log length, root length, entries
_ENTRY_HEAD = struct.Struct(">III")  # key length, value length, proof length
_BLOCK_HEAD = struct.Struct(">BQ")  # op, height
_ABSENT = 0xFFFFFFFF
_RECV_BYTES = 1 << 16
U64_LIMIT = 1 << 64
_PATH_BYTES_MAX = 0xFFFF


# --- the frames ----------------------------------------------------------------------------


def encode_query(request: QueryRequest) -> bytes | None:
    """A query's request frame; None for a request the frame cannot carry (a height
    outside u64, a path over 64 KiB, wrong types): the read threads answer those."""
    path, data, height, prove = request.path, request.data, request.height, request.prove
    if (type(path) is not str or type(height) is not int or not 0 <= height < U64_LIMIT
            or type(prove) is not bool or not isinstance(data, bytes | bytearray)):
        return None
    raw_path = path.encode("utf-8", "surrogatepass")
    if len(raw_path) > _PATH_BYTES_MAX:
        return None
    return _QUERY_HEAD.pack(_OP_QUERY, prove, height, len(raw_path)) + raw_path + bytes(data)


def _decode_query_request(frame: bytes) -> QueryRequest:
    _, prove, height, path_length = _QUERY_HEAD.unpack_from(frame)
    start = _QUERY_HEAD.size
    path = frame[start:start + path_length].decode("utf-8", "surrogatepass")
    return QueryRequest(path, frame[start + path_length:], height, bool(prove))


def _encode_query_answer(result: QueryResult) -> bytes:
    raw_log = result.log.encode("utf-8", "surrogatepass")
    parts = [_OK, _ANSWER_HEAD.pack(result.code, result.height, len(raw_log), len(result.root),
                                    len(result.entries)), raw_log, result.root]
    for entry in result.entries:
        value = entry.value
        parts.append(_ENTRY_HEAD.pack(len(entry.key), _ABSENT if value is None else len(value),
                                      len(entry.proof)))
        parts.append(entry.key)
        if value is not None:
            parts.append(value)
        parts.append(entry.proof)
    return b"".join(parts)


def decode_query_answer(frame: bytes) -> QueryResult:
    """The `QueryResult` a query's answer frame carries (its failure raised)."""
    if frame[:1] != _OK:
        raise _failure(frame)
    code, height, log_length, root_length, count = _ANSWER_HEAD.unpack_from(frame, 1)
    at = 1 + _ANSWER_HEAD.size
    text = frame[at:at + log_length].decode("utf-8", "surrogatepass")
    at += log_length
    root = frame[at:at + root_length]
    at += root_length
    entries = []
    for _ in range(count):
        key_length, value_length, proof_length = _ENTRY_HEAD.unpack_from(frame, at)
        at += _ENTRY_HEAD.size
        key = frame[at:at + key_length]
        at += key_length
        if value_length == _ABSENT:
            value = None
        else:
            value = frame[at:at + value_length]
            at += value_length
        proof = frame[at:at + proof_length]
        at += proof_length
        entries.append(ProvenEntry(key, value, proof))
    if at != len(frame):
        raise StorageError(f"a reader's query answer has {len(frame) - at} bytes too many")
    return QueryResult(code, text, height, root, tuple(entries))


def encode_block(height: int, block_hash: bytes | None) -> bytes:
    """A block read's request frame: by height, or by hash (height 0)."""
    return _BLOCK_HEAD.pack(_OP_BLOCK, height) + (block_hash or b"")


def decode_block_answer(frame: bytes) -> CommittedBlock | None:
    """The committed block a block answer carries, None if there was none."""
    if frame[:1] != _OK:
        raise _failure(frame)
    if len(frame) == 1:
        return None
    size = _LENGTH.unpack_from(frame, 1)[0]
    at = 1 + _LENGTH.size
    return committed_block(frame[at:at + size], frame[at + size:])


def encode_page(method: str, args: tuple[Any, ...], alter_event: bytes | None) -> bytes:
    """A product page read's request frame: `PageReader.<method>(*args)`."""
    return bytes([_OP_PAGE]) + pickle.dumps((method, args, alter_event),
                                            protocol=pickle.HIGHEST_PROTOCOL)


def decode_page_answer(frame: bytes) -> Any:
    """A page read's answer (its failure raised)."""
    if frame[:1] != _OK:
        raise _failure(frame)
    return pickle.loads(frame[1:])


def _failure(frame: bytes) -> BaseException:
    if frame[:1] != _FAILED:
        return StorageError(f"a reader answered a frame of kind {frame[:1]!r}")
    error = pickle.loads(frame[1:])
    return error if isinstance(error, BaseException) else StorageError(repr(error))


def _failed(error: BaseException) -> bytes:
    try:
        raw = pickle.dumps(error, protocol=pickle.HIGHEST_PROTOCOL)
        pickle.loads(raw)
    except Exception:
        raw = pickle.dumps(StorageError(f"a reader failed: {type(error).__name__}: {error}"))
    return _FAILED + raw


# --- answering (in a reader process, or in the node's read threads) -------------------------


class ReadServer:
    """Answers request frames against an `Application`: the reader processes' loop and the
    node's fallback in its read threads run the same code."""

    def __init__(self, app: Application) -> None:
        self.app = app
        self._pages: dict[bytes | None, Any] = {}

    def answer(self, frame: bytes) -> bytes:
        """The answer frame to one request frame (a failure is an answer too)."""
        try:
            op = frame[0]
            if op == _OP_QUERY:
                return _encode_query_answer(self.app.query(_decode_query_request(frame)))
            if op == _OP_BLOCK:
                return self._block(frame)
            if op == _OP_PAGE:
                method, args, alter_event = pickle.loads(frame[1:])
                if method not in PAGE_METHODS:
                    raise StorageError(f"a reader has no page method {method!r}")
                answer = getattr(self._page(alter_event), method)(*args)
                return _OK + pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
            raise StorageError(f"a reader has no request kind {op}")
        except Exception as error:
            return _failed(error)

    def _block(self, frame: bytes) -> bytes:
        height = _BLOCK_HEAD.unpack_from(frame)[1]
        records = stored_block_records(self.app.store, height, frame[_BLOCK_HEAD.size:] or None)
        if records is None:
            return _OK
        raw, receipts = records
        return b"".join((_OK, _LENGTH.pack(len(raw)), raw, receipts))

    def _page(self, alter_event: bytes | None) -> Any:
        page = self._pages.get(alter_event)
        if page is None:
            from .page import PageReader  # the page's modules only when a page is read

            page = self._pages[alter_event] = PageReader(self.app, alter_event=alter_event)
        return page


# --- the reader process --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReaderSetup:
    """What a reader process needs to open the node's ledger as the node has it."""

    store_path: str
    map_size_bytes: int
    genesis: Genesis
    version: str


def reader_main(fd: int, parent_pid: int) -> None:
    """A reader process: die with the node, open the ledger read-only, answer frames from
    socket `fd` until EOF."""
    name_os_thread(READER_NAME)
    if not die_with_parent(parent_pid):  # the node ended before the reader could ask
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the node; the node stops us
    os.nice(READER_NICE)
    sock = socket.socket(fileno=fd)
    frames = _frames(sock)
    try:
        setup: ReaderSetup = pickle.loads(next(frames))
        store = Store(setup.store_path, map_size_bytes=setup.map_size_bytes, readonly=True,
                      create=False, follow_map=True)
    except (StopIteration, OSError):
        return  # the node ended before it sent the set-up
    except Exception as error:
        with contextlib.suppress(OSError):
            _send(sock, _failed(error))
        return
    try:
        server = ReadServer(Application(store, setup.genesis, version=setup.version))
        import gc

        gc.collect()
        gc.freeze()  # the application's own objects: never scanned again
        answer = server.answer
        _send(sock, _OK)
        for frame in frames:
            _send(sock, answer(frame))
    except Exception as error:
        with contextlib.suppress(OSError):
            _send(sock, _failed(error))
    finally:
        store.close()


def _frames(sock: socket.socket) -> Iterator[bytes]:
    """The frames that arrive on `sock` until EOF (or a broken socket): usually one
    `recv` per request."""
    buffer = b""
    while True:
        while len(buffer) >= 4:
            size = _LENGTH.unpack_from(buffer)[0]
            if len(buffer) - 4 < size:
                break
            yield buffer[4:4 + size]
            buffer = buffer[4 + size:]
        try:
            chunk = sock.recv(_RECV_BYTES)
        except OSError:
            return
        if not chunk:
            return
        buffer = buffer + chunk if buffer else chunk


def _send(sock: socket.socket, frame: bytes) -> None:
    sock.sendall(_LENGTH.pack(len(frame)) + frame)


# --- the node's side ----------------------------------------------------------------------


@dataclass(slots=True)
class _Request:
    frame: bytes
    future: asyncio.Future[bytes]
    attempts: int = 1


@dataclass(eq=False, slots=True)
class _Reader:
    process: subprocess.Popen[bytes]
    protocol: _ReaderProtocol | None = None
    ready: bool = False
    in_flight: deque[_Request] = field(default_factory=deque)


class _ReaderProtocol(asyncio.Protocol):
    """The node's end of one reader's socket: frames out, answers back in order."""

    def __init__(self, pool: ReadPool, reader: _Reader) -> None:
        self._pool = pool
        self._reader = reader
        self._buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, frame: bytes) -> None:
        assert self.transport is not None
        self.transport.write(_LENGTH.pack(len(frame)) + frame)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        if buffer:
            buffer += data
            data = bytes(buffer)
            buffer.clear()
        at, end = 0, len(data)
        while end - at >= 4:
            size = _LENGTH.unpack_from(data, at)[0]
            if end - at - 4 < size:
                break
            frame = data[at + 4:at + 4 + size] if at or size + 4 != end else data[4:]
            at += 4 + size
            self._pool._answered(self._reader, frame)
        if at < end:
            buffer += memoryview(data)[at:]

    def connection_lost(self, exc: Exception | None) -> None:
        self._pool._lost(self._reader)


class ReadPool:
    """N reader processes over the ledger at `store`'s path (see the module docstring);
    `local` answers a frame in the node's read threads when no reader is ready."""

    def __init__(self, app: Application, processes: int,
                 local: Callable[[bytes], Awaitable[bytes]]) -> None:
        if processes < 1:
            raise ValueError(f"a read pool has at least one process, got {processes}")
        self._store = app.store
        self._setup = ReaderSetup(str(app.store.path), app.store.map_size_bytes, app.genesis,
                                  app.version)
        self.processes = processes
        self._local = local
        self._readers: list[_Reader] = []
        self._ready: list[_Reader] = []
        self._started = False
        self._closed = False
        self._start_failures = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.replaced = 0  # readers that ended and were replaced (for tests and logs)
        self.served_local = 0  # requests answered in the read threads

    # --- requests -------------------------------------------------------------------

    async def query(self, request: QueryRequest, frame: bytes) -> QueryResult:
        """`app.query(request)` from a reader (`frame`: `encode_query(request)`)."""
        return decode_query_answer(await self.request(frame))

    async def block(self, height: int, block_hash: bytes | None) -> CommittedBlock | None:
        """The committed block at `height` (or with hash `block_hash`) and its receipts."""
        return decode_block_answer(await self.request(encode_block(height, block_hash)))

    async def page(self, method: str, args: tuple[Any, ...],
                   alter_event: bytes | None) -> Any:
        """`PageReader(app, alter_event=alter_event).<method>(*args)` from a reader."""
        return decode_page_answer(await self.request(encode_page(method, args, alter_event)))

    async def request(self, frame: bytes) -> bytes:
        """The answer frame to `frame`, from the ready reader with the fewest requests in
        flight, or from the read threads while none is ready."""
        if not self._started:
            self._start()
        ready = self._ready
        if not ready or self._closed:
            self.served_local += 1
            return await self._local(frame)
        reader = ready[0] if len(ready) == 1 else min(ready, key=_in_flight_count)
        request = _Request(frame, asyncio.get_running_loop().create_future())
        self._send(reader, request)
        return await request.future

    def _send(self, reader: _Reader, request: _Request) -> None:
        assert reader.protocol is not None
        reader.in_flight.append(request)
        reader.protocol.send(request.frame)

    def _answered(self, reader: _Reader, frame: bytes) -> None:
        if not reader.ready:  # the first frame: the reader's ledger is open
            self._on_ready(reader, frame)
            return
        request = reader.in_flight.popleft()
        if not request.future.done():  # its caller may have been cancelled
            request.future.set_result(frame)

    # --- the processes --------------------------------------------------------------

    def _start(self) -> None:
        self._started = True
        for _ in range(self.processes):
            self._spawn()

    def _spawn(self) -> None:
        if self._closed:
            return
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            code = ("from chainmall.core.node.read_pool import reader_main; "
                    f"reader_main({theirs.fileno()}, {os.getpid()})")
            process = subprocess.Popen([sys.executable, "-c", code], pass_fds=(theirs.fileno(),),
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        reader = _Reader(process)
        self._readers.append(reader)
        task = asyncio.get_running_loop().create_task(self._connect(reader, ours))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect(self, reader: _Reader, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        protocol = _ReaderProtocol(self, reader)
        try:
            await loop.create_unix_connection(lambda: protocol, sock=sock)
        except BaseException:
            sock.close()
            raise
        reader.protocol = protocol
        protocol.send(pickle.dumps(self._setup, protocol=pickle.HIGHEST_PROTOCOL))
        if self._closed:
            self._end(reader)

    def _on_ready(self, reader: _Reader, frame: bytes) -> None:
        if frame != _OK:
            log.error("a reader process could not open the ledger: %r", _failure(frame))
            self._end(reader)
            return
        reader.ready = True
        self._start_failures = 0
        self._ready.append(reader)
        log.debug("reader process ready", extra={"fields": {"pid": reader.process.pid}})

    def _lost(self, reader: _Reader) -> None:
        """A reader's socket closed: it ended (or `close` ended it). Its requests go once
        more to another reader (or the read threads); a replacement is started."""
        if reader in self._ready:
            self._ready.remove(reader)
        if reader in self._readers:
            self._readers.remove(reader)
        if not self._closed:  # its socket is gone: it is of no more use (`close` waits itself)
            with contextlib.suppress(ProcessLookupError):
                reader.process.kill()
            self._reap(reader)
        if not reader.ready:
            self._start_failures += 1
        pending, reader.in_flight = reader.in_flight, deque()
        for request in pending:
            if request.future.done():
                continue
            if request.attempts > 1:
                request.future.set_exception(StorageError(
                    "a reader process ended twice while answering this read"))
                continue
            request.attempts += 1
            self._retry(request)
        if self._closed:
            return
        self._forget_stale_snapshots()
        if self._start_failures >= READER_START_FAILURES_MAX:
            log.error("reader processes keep ending before they are ready; the read threads "
                      "serve reads")
            return
        log.warning("a reader process ended; starting another", extra={"fields": {
            "pid": reader.process.pid, "exit": reader.process.returncode}})
        self.replaced += 1
        self._spawn()

    def _retry(self, request: _Request) -> None:
        if self._ready and not self._closed:
            self._send(min(self._ready, key=_in_flight_count), request)
            return
        task = asyncio.get_running_loop().create_task(self._retry_local(request))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _retry_local(self, request: _Request) -> None:
        self.served_local += 1
        try:
            answer = await self._local(request.frame)
        except BaseException as error:
            if not request.future.done():
                request.future.set_exception(error)
            return
        if not request.future.done():
            request.future.set_result(answer)

    def _forget_stale_snapshots(self) -> None:
        """A reader killed with a read snapshot open leaves its slot in LMDB's lock file,
        pinning old pages; LMDB clears the slots of processes that are gone."""
        with contextlib.suppress(Exception):
            self._store.clear_stale_readers()

    def _reap(self, reader: _Reader) -> None:
        if reader.process.poll() is not None:
            return
        task = asyncio.get_running_loop().create_task(
            asyncio.to_thread(reader.process.wait))  # type: ignore[arg-type]
        self._tasks.add(task)  # type: ignore[arg-type]
        task.add_done_callback(self._tasks.discard)  # type: ignore[arg-type]

    def _end(self, reader: _Reader) -> None:
        if reader.protocol is not None and reader.protocol.transport is not None:
            reader.protocol.transport.close()  # EOF: the reader exits after its read in hand
        else:
            with contextlib.suppress(ProcessLookupError):
                reader.process.kill()

    def pids(self) -> list[int]:
        """The reader processes' ids (started or ready)."""
        return [reader.process.pid for reader in self._readers]

    def ready_count(self) -> int:
        """How many readers answer requests now."""
        return len(self._ready)

    async def close(self) -> None:
        """End every reader (EOF on its socket; killed after READER_STOP_TIMEOUT_S) and wait
        for them; requests still in flight get their retry in the read threads."""
        if self._closed:
            return
        self._closed = True
        readers = list(self._readers)
        for reader in readers:
            self._end(reader)
        for reader in readers:
            try:
                await asyncio.to_thread(reader.process.wait, READER_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                reader.process.kill()
                await asyncio.to_thread(reader.process.wait)
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        self._forget_stale_snapshots()


def _in_flight_count(reader: _Reader) -> int:
    return len(reader.in_flight)


def reader_pids_of(pid: int) -> list[int]:
    """The reader processes among the children of process `pid` (by their name)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            raw = (entry / "stat").read_text()
            name = raw[raw.index("(") + 1:raw.rindex(")")]
            fields = raw.rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and name == READER_NAME and fields[0] != "Z":
                found.append(int(entry.name))
    return found
