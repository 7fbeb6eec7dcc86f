"""The ABCI socket server against a raw wire client: order, Flush, errors, limits, shutdown.

Each test runs over TCP and a Unix socket, with application calls inline on
the loop and in a thread pool (whose calls must still come one at a time),
on asyncio's own event loop and on uvloop (which the node runs).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import uvloop
from abci_harness import RawClient, ServerThread, poll
from abci_kv_app import BAD_TX_CODE, KvApp, state_hash
from chainmall.core.abci import convert
from chainmall.core.abci.framing import encode_frame
from chainmall.core.abci.proto.tendermint.abci import types_pb2 as abci
from chainmall.core.abci.server import parse_address
from chainmall.core.abci.types import (
    BlockRequest,
    CheckTxResult,
    FinalizeBlockResult,
    InitChainRequest,
    ProvenEntry,
)
from chainmall.core.constants import ABCI_CONNECTIONS_MAX
from chainmall.core.errors import AbciAppFailed, ChainmallError
from test_abci_framing import request_stream

LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


@pytest.fixture(params=list(itertools.product(["tcp", "unix"], ["inline", "executor"], LOOPS)),
                ids=lambda p: "-".join(p))
def serve(request: pytest.FixtureRequest) -> Iterator[object]:
    """A factory: serve(app) -> ServerThread on a fresh address; all closed afterwards."""
    transport, mode, loop = request.param
    started: list[ServerThread] = []
    executor = ThreadPoolExecutor(4, thread_name_prefix="abci-app") if mode == "executor" \
        else None
    with tempfile.TemporaryDirectory(prefix="cm-abci-") as tmp:  # short: sun_path is 108 bytes
        def start(app: KvApp) -> ServerThread:
            address = f"unix://{tmp}/abci{len(started)}.sock" if transport == "unix" \
                else "tcp://127.0.0.1:0"
            server = ServerThread(app, address, executor, LOOPS[loop])
            started.append(server)
            return server
        yield start
        for server in started:
            server.close()
    if executor is not None:
        executor.shutdown()


def block_request(kind: type, height: int, txs: tuple[bytes, ...]) -> abci.Request:
    block = BlockRequest(height, 1_700_000_000_000 + height, txs, bytes(20), hash=bytes(32),
                         max_tx_bytes=10_000)
    message = convert.block_request_to_proto(block, kind)
    field = {abci.RequestPrepareProposal: "prepare_proposal",
             abci.RequestProcessProposal: "process_proposal",
             abci.RequestFinalizeBlock: "finalize_block"}[kind]
    return abci.Request(**{field: message})


def check_tx(tx: bytes, recheck: bool = False) -> abci.Request:
    return abci.Request(check_tx=abci.RequestCheckTx(tx=tx, type=abci.RECHECK if recheck
                                                     else abci.NEW))


FLUSH = abci.Request(flush=abci.RequestFlush())


def connect_fails(address: str) -> bool:
    try:
        RawClient(address).close()
    except OSError:
        return True
    return False


def test_every_call_answered_in_order(serve) -> None:
    app = KvApp()
    server = serve(app)
    client = RawClient(server.address)
    validator = convert.validator_update_to_proto(
        convert.ValidatorUpdate(bytes(range(32)), 10))
    requests = [
        abci.Request(echo=abci.RequestEcho(message="ping")),
        abci.Request(info=abci.RequestInfo(version="0.38.26")),
        abci.Request(init_chain=convert.init_chain_request_to_proto(InitChainRequest(
            "kv-chain", 1_000, (convert.validator_update_from_proto(validator),),
            b'{"a": "1"}', 1))),
        check_tx(b"b=2"),
        check_tx(b"nonsense"),
        check_tx(b"b=2", recheck=True),
        block_request(abci.RequestPrepareProposal, 1, (b"b=2", b"bad", b"c=3")),
        block_request(abci.RequestProcessProposal, 1, (b"b=2", b"c=3")),
        block_request(abci.RequestProcessProposal, 1, (b"bad",)),
        block_request(abci.RequestFinalizeBlock, 1, (b"b=2", b"bad")),
        abci.Request(commit=abci.RequestCommit()),
        abci.Request(query=abci.RequestQuery(path="/key", data=b"b", prove=True)),
        abci.Request(info=abci.RequestInfo()),
        FLUSH,
    ]
    responses = client.call(*requests)
    assert [r.WhichOneof("value") for r in responses] == [
        "echo", "info", "init_chain", "check_tx", "check_tx", "check_tx", "prepare_proposal",
        "process_proposal", "process_proposal", "finalize_block", "commit", "query", "info",
        "flush",
    ]
    echo, info0, init, ok, bad, recheck, prepare, accept, reject, final, commit, query, info1, _ \
        = responses
    assert echo.echo.message == "ping"
    assert (info0.info.last_block_height, info0.info.data) == (0, "chainmall")
    assert init.init_chain.app_hash == state_hash({b"a": b"1"})
    assert app.init_chain_requests[0].validators[0].public_key == bytes(range(32))
    assert (ok.check_tx.code, bad.check_tx.code, recheck.check_tx.code) == (0, BAD_TX_CODE, 0)
    assert [name for name, _ in app.calls if name == "check_tx"] == ["check_tx"] * 3
    assert [detail for name, detail in app.calls if name == "check_tx"][2] == 1  # RECHECK
    assert list(prepare.prepare_proposal.txs) == [b"b=2", b"c=3"]
    assert accept.process_proposal.status == abci.ResponseProcessProposal.ACCEPT
    assert reject.process_proposal.status == abci.ResponseProcessProposal.REJECT
    assert [r.code for r in final.finalize_block.tx_results] == [0, BAD_TX_CODE]
    assert final.finalize_block.tx_results[0].events[0].type == "kv"
    assert final.finalize_block.app_hash == state_hash({b"a": b"1", b"b": b"2"})
    assert commit.commit.retain_height == 0
    assert (query.query.code, query.query.value, query.query.height) == (0, b"2", 1)
    assert convert.query_result_from_proto(query.query).entries == \
        (ProvenEntry(b"b", b"2", b"proof:b"),)
    assert (info1.info.last_block_height, info1.info.last_block_app_hash) == \
        (1, final.finalize_block.app_hash)
    client.close()


def test_pipelined_stream_split_anywhere(serve) -> None:
    """A long stream of real requests written in random pieces; answers come in order."""
    app = KvApp()
    server = serve(app)
    client = RawClient(server.address)
    frames = request_stream(3)[:-1]  # without the empty request, which closes a connection
    kinds = [abci.Request.FromString(f).WhichOneof("value") for f in frames]
    stream = b"".join(encode_frame(f) for f in frames)
    rng = random.Random(3)
    position = 0
    while position < len(stream):
        size = rng.choice([1, 2, 3, 7, 100, 5000])
        client.send_raw(stream[position:position + size])
        position += size
    responses = client.receive(len(frames))
    expected = [{"echo": "echo", "flush": "flush"}.get(k, k) for k in kinds]
    assert [r.WhichOneof("value") for r in responses] == expected
    assert app.names() == [k for k in kinds if k not in ("echo", "flush")]
    client.close()


def test_flush_is_answered_in_place(serve) -> None:
    server = serve(KvApp())
    client = RawClient(server.address)
    responses = client.call(FLUSH, check_tx(b"a=1"), FLUSH, FLUSH)
    assert [r.WhichOneof("value") for r in responses] == ["flush", "check_tx", "flush", "flush"]
    # Without a Flush the answer still comes (the server writes after every read).
    assert client.call(check_tx(b"a=1"))[0].check_tx.code == 0
    client.close()


def test_check_tx_and_query_failures_become_codes(serve) -> None:
    app = KvApp()
    server = serve(app)
    client = RawClient(server.address)
    raised, query, after = client.call(
        check_tx(b"raise=1"),
        abci.Request(query=abci.RequestQuery(path="/nowhere")),
        check_tx(b"a=1"),
    )
    assert raised.check_tx.code == ChainmallError.code
    assert "internal error: RuntimeError" in raised.check_tx.log
    assert query.query.code == ChainmallError.code and "ValueError" in query.query.log
    assert after.check_tx.code == 0
    assert server.failure() is None


def test_chainmall_errors_keep_their_own_code(serve) -> None:
    from chainmall.core.errors import NonceMismatch

    class Refusing(KvApp):
        def check_tx(self, tx, kind=None):
            raise NonceMismatch("nonce 3, expected 4")

    server = serve(Refusing())
    response = RawClient(server.address).call(check_tx(b"a=1"))[0]
    assert response.check_tx.code == NonceMismatch.code
    assert response.check_tx.log == "NonceMismatch: nonce 3, expected 4"


def test_failure_in_a_block_call_stops_serving(serve) -> None:
    app = KvApp()
    server = serve(app)
    consensus, mempool = RawClient(server.address), RawClient(server.address)
    assert mempool.call(check_tx(b"a=1"))[0].check_tx.code == 0
    consensus.send(block_request(abci.RequestFinalizeBlock, 1, (b"fail=1",)), FLUSH)
    poll(consensus.closed_by_peer, "the consensus connection to close")
    poll(mempool.closed_by_peer, "the other connections to close too")
    failure = poll(server.failure, "wait_closed to raise")
    assert isinstance(failure, AbciAppFailed)
    assert "finalize_block" in str(failure) and "told to fail" in str(failure)
    poll(lambda: connect_fails(server.address), "the listener to close too")


def test_wrong_number_of_tx_results_stops_serving(serve) -> None:
    class Short(KvApp):
        def finalize_block(self, request: BlockRequest) -> FinalizeBlockResult:
            result = super().finalize_block(request)
            return FinalizeBlockResult(result.tx_results[1:], (), (), result.app_hash)

    server = serve(Short())
    client = RawClient(server.address)
    client.send(block_request(abci.RequestFinalizeBlock, 1, (b"a=1", b"b=2")), FLUSH)
    poll(client.closed_by_peer, "the connection to close")
    assert "1 tx results for the 2 txs of block 1" in str(server.failure())


def test_oversized_or_garbled_frames_close_only_that_connection(serve) -> None:
    server = serve(KvApp())
    healthy = RawClient(server.address)
    oversized = RawClient(server.address)
    oversized.send_raw(b"\xff\xff\xff\xff\x7f")  # a 34 GB frame
    poll(oversized.closed_by_peer, "the oversized frame's connection to close")
    garbled = RawClient(server.address)
    garbled.send_raw(encode_frame(b"\xff\xff\xff"))
    poll(garbled.closed_by_peer, "the garbled frame's connection to close")
    empty = RawClient(server.address)
    empty.send_raw(encode_frame(b""))  # a Request with no call in it
    poll(empty.closed_by_peer, "the empty request's connection to close")
    assert healthy.call(check_tx(b"a=1"))[0].check_tx.code == 0
    assert server.failure() is None


def test_snapshots_and_vote_extensions(serve) -> None:
    app = KvApp()
    server = serve(app)
    responses = RawClient(server.address).call(
        abci.Request(list_snapshots=abci.RequestListSnapshots()),
        abci.Request(offer_snapshot=abci.RequestOfferSnapshot(snapshot=abci.Snapshot(height=5))),
        abci.Request(load_snapshot_chunk=abci.RequestLoadSnapshotChunk(height=5)),
        abci.Request(apply_snapshot_chunk=abci.RequestApplySnapshotChunk(chunk=b"x")),
        abci.Request(extend_vote=abci.RequestExtendVote(height=2)),
        abci.Request(verify_vote_extension=abci.RequestVerifyVoteExtension()),
        abci.Request(verify_vote_extension=abci.RequestVerifyVoteExtension(vote_extension=b"x")),
    )
    listed, offered, loaded, applied, extended, empty_ok, other = responses
    assert list(listed.list_snapshots.snapshots) == []
    assert offered.offer_snapshot.result == abci.ResponseOfferSnapshot.ABORT
    assert loaded.load_snapshot_chunk.chunk == b""
    assert applied.apply_snapshot_chunk.result == abci.ResponseApplySnapshotChunk.ABORT
    assert extended.extend_vote.vote_extension == b""
    assert empty_ok.verify_vote_extension.status == abci.ResponseVerifyVoteExtension.ACCEPT
    assert other.verify_vote_extension.status == abci.ResponseVerifyVoteExtension.REJECT
    assert app.calls == []  # none of these reach the application


def test_connection_limit(serve) -> None:
    server = serve(KvApp())
    clients = [RawClient(server.address) for _ in range(ABCI_CONNECTIONS_MAX)]
    for client in clients:  # every one is served (and so registered)
        assert client.call(FLUSH)[0].WhichOneof("value") == "flush"
    extra = RawClient(server.address)
    poll(extra.closed_by_peer, "the connection over the limit to close")
    clients[0].close()
    poll(lambda: server.server.connection_count == ABCI_CONNECTIONS_MAX - 1,
         "the closed connection to be dropped")
    assert RawClient(server.address).call(FLUSH)[0].WhichOneof("value") == "flush"


class Overlap(KvApp):
    """Records any two application calls that ran at the same time."""

    def __init__(self) -> None:
        super().__init__()
        self.busy = threading.Lock()
        self.overlaps = 0

    def check_tx(self, tx, kind=None):
        if not self.busy.acquire(blocking=False):
            self.overlaps += 1
            return super().check_tx(tx)
        try:
            time.sleep(0.0005)  # widen the window an overlap would need
            return super().check_tx(tx)
        finally:
            self.busy.release()


def test_calls_from_all_connections_run_one_at_a_time(serve) -> None:
    app = Overlap()
    server = serve(app)
    clients = [RawClient(server.address) for _ in range(4)]
    for client in clients:
        client.send(*[check_tx(b"k%d=v" % i) for i in range(50)], FLUSH)
    for client in clients:
        assert [r.check_tx.code for r in client.receive(51)[:-1]] == [0] * 50
    assert app.overlaps == 0

    async def outside_call() -> CheckTxResult:
        return await server.server.call(app.check_tx, b"z=1")

    assert server.run(outside_call()).code == 0
    assert app.overlaps == 0


def test_stop_waits_for_a_running_call_and_removes_the_socket(serve) -> None:
    started, release = threading.Event(), threading.Event()

    class Slow(KvApp):
        def commit(self):
            started.set()
            release.wait(30)
            return super().commit()

    app = Slow()
    server = serve(app)
    client = RawClient(server.address)
    client.call(block_request(abci.RequestFinalizeBlock, 1, (b"a=1",)))
    client.send(abci.Request(commit=abci.RequestCommit()), FLUSH)
    if server.server._executor is None:
        # Inline calls hold the loop: nothing can interleave, stop simply follows.
        release.set()
    else:
        assert started.wait(30)
    stopping = threading.Thread(target=server.close)
    stopping.start()
    release.set()
    stopping.join(60)
    assert not stopping.is_alive()
    assert app.saved.height == 1  # the commit ran to its end
    _, path, _ = parse_address(server.address)
    if server.address.startswith("unix://"):
        assert not Path(path).exists()


@pytest.mark.parametrize(("address", "parsed"), [
    ("tcp://127.0.0.1:26658", ("tcp", "127.0.0.1", 26658)),
    ("tcp://[::1]:0", ("tcp", "::1", 0)),
    ("unix:///tmp/x.sock", ("unix", "/tmp/x.sock", 0)),
])
def test_parse_address(address: str, parsed: tuple[str, str, int]) -> None:
    assert parse_address(address) == parsed


@pytest.mark.parametrize("address", ["127.0.0.1:26658", "tcp://127.0.0.1", "tcp://:1",
                                     "tcp://h:99999", "http://x:1", "unix://"])
def test_parse_address_refuses(address: str) -> None:
    with pytest.raises(ValueError):
        parse_address(address)


def test_thread_cpu_names_the_threads() -> None:
    # The CPU file's per-thread entries (bench/cluster): a Python thread by its name, a
    # pool's threads under their prefix, this thread's CPU counted.
    from chainmall.core.abci.server import thread_cpu

    release = threading.Event()
    burnt = threading.Event()

    def burn() -> None:
        began = time.thread_time()
        while time.thread_time() - began < 0.05:  # CPU the kernel's clock ticks can see
            pass
        burnt.set()
        release.wait(30)

    with ThreadPoolExecutor(1, thread_name_prefix="cpu-burner") as pool:
        pool.submit(burn)
        assert burnt.wait(30)
        try:
            found = thread_cpu()
        finally:
            release.set()
    assert found["cpu-burner"] >= 0.02
    assert "MainThread" in found
    assert all(seconds >= 0 for seconds in found.values())
