"""Benchmark `trace(item)` with proofs: an item with 1,000 events through three levels of
transformation.

Run: .venv/bin/pytest bench/bench_mall_trace.py --benchmark-only -s -q

Issue target ("The chain mall"): "`trace` of an item with 1,000 events through
three levels of transformation, proofs included: <= 50 ms."

The history: four raw lots are commissioned (level 0); pairs of them are
transformed into two intermediate lots (level 1), each of those into a
sub-assembly (level 2), and the two sub-assemblies into the final item
(level 3). Observation events are spread over all nine items before each is
consumed, so the final item's trace holds exactly 1,000 events. The chain
also holds CHAINMALL_BENCH_TRACE_ACCOUNTS other accounts (default 100,000), so
the state tree is as deep as a busy chain's.

Measured (docs/mall.md 6.5):

* judged against the target: what a node does to answer the trace with its
  proofs: the trace walk (every entry: items, index entries, event records)
  and the state proofs of its anchors, the few entries whose history hashes
  fix all the others; then, for the client, checking those proofs and
  `verify_trace` (hashing every record into the item histories);
* for reference, the two query paths the application serves today:
  `/mall/trace` with a proof of every entry (a product page marking each step
  on its own), and `/mall/trace` without proofs plus `/mall/trace_anchors`
  with proofs (each query walks the history again).
"""

from __future__ import annotations

import functools
import os
import statistics
import tempfile
import time
from typing import Any

from benchutil import machine, verdict
from chainmall.core import constants as C
from chainmall.core.abci.app import Application, Module, StateReader
from chainmall.core.abci.types import QueryRequest
from chainmall.core.genesis import make_genesis, make_mall
from chainmall.core.keys import KeyPair
from chainmall.core.mall import install, install_queries
from chainmall.core.mall.events import Quantity, TraceEvent
from chainmall.core.mall.history import trace, verify_trace
from chainmall.core.mall.keys import item_key
from chainmall.core.mall.parties import PartyDetails
from chainmall.core.mall.vocab import (
    ACTION_ADD,
    ACTION_NONE,
    ACTION_OBSERVE,
    KIND_OBJECT,
    KIND_TRANSFORMATION,
    ROLE_PROCESSOR,
)
from chainmall.core.state.root import StateTree, decode_proof, verify_proof
from chainmall.core.store import Store
from chainmall.core.tx import sign_tx

EVENTS = 1_000
ACCOUNTS = int(os.environ.get("CHAINMALL_BENCH_TRACE_ACCOUNTS", "100000"))
RUNS = int(os.environ.get("CHAINMALL_BENCH_TRACE_RUNS", "15"))
TARGET_MS = 50.0
CHAIN_ID = "chainmall-bench-trace"
START_MS = 1_767_225_600_000
PER_BLOCK = 200

RAW = [f"urn:epc:class:lgtin:8.1.RAW{n}" for n in range(4)]
MID = [f"urn:epc:class:lgtin:8.2.MID{n}" for n in range(2)]
SUB = [f"urn:epc:id:sgtin:8.3.{n}" for n in range(2)]
FINAL = "urn:epc:id:sgtin:8.4.1"


def _history() -> list[TraceEvent]:
    """Every event, in the order it must be recorded; the final item's trace is all of it."""
    clock = iter(range(START_MS, START_MS + 10**9))
    events: list[TraceEvent] = []

    def observe(uri: str, is_class: bool, count: int) -> None:
        for _ in range(count):
            events.append(TraceEvent(
                KIND_OBJECT, ACTION_OBSERVE, next(clock), 60, "storing", "active",
                epcs=() if is_class else (uri,),
                quantities=(Quantity(uri),) if is_class else ()))

    def transform(inputs: list[str], output: str, output_is_class: bool) -> None:
        events.append(TraceEvent(
            KIND_TRANSFORMATION, ACTION_NONE, next(clock), 60, "commissioning",
            quantities=tuple(Quantity(uri, 10, "KGM") if "class" in uri else Quantity(uri)
                             for uri in inputs if "class" in uri),
            epcs=tuple(uri for uri in inputs if "class" not in uri),
            out_quantities=(Quantity(output, 20, "KGM"),) if output_is_class else (),
            out_epcs=() if output_is_class else (output,)))

    for uri in RAW:
        events.append(TraceEvent(KIND_OBJECT, ACTION_ADD, next(clock), 60, "commissioning",
                                 "active", quantities=(Quantity(uri, 100, "KGM"),),
                                 ilmd=(("cbvmda:lotNumber", uri[-4:]),)))
    structural = len(RAW) + len(MID) + len(SUB) + 1  # commissions and transformations
    spread = EVENTS - structural
    per_item = spread // 9
    extra = spread - per_item * 9
    for uri in RAW:
        observe(uri, True, per_item)
    transform(RAW[:2], MID[0], True)
    transform(RAW[2:], MID[1], True)
    for uri in MID:
        observe(uri, True, per_item)
    transform([MID[0]], SUB[0], False)
    transform([MID[1]], SUB[1], False)
    for uri in SUB:
        observe(uri, False, per_item)
    transform(SUB, FINAL, False)
    observe(FINAL, False, per_item + extra)
    assert len(events) == EVENTS
    return events


def _chain(directory: str) -> tuple[Application, Store]:
    recorder = KeyPair.from_seed(b"recorder".ljust(32, b"."))
    others = [KeyPair.from_seed(i.to_bytes(4, "big") * 8).address for i in range(ACCOUNTS)]
    genesis = make_genesis(CHAIN_ID, [(recorder.address, 10**12)] + [(a, 1) for a in others],
                           [(recorder.public_key, 1)], genesis_time_ms=START_MS, fee_min=1,
                           mall=make_mall([], [("IT", recorder.address, 0)]))
    store = Store(os.path.join(directory, "data"))
    app = Application(store, genesis, modules=[Module("mall", install, install_queries)])
    txs = [sign_tx(recorder, CHAIN_ID, C.TX_MALL_PARTY_REGISTER, 0, 1, 2**62, PartyDetails(
        ROLE_PROCESSOR, 0, "", "recorder", bytes(32)).encode())]
    txs += [sign_tx(recorder, CHAIN_ID, C.TX_MALL_TRACE_RECORD, n + 1, 1, 2**62, event.encode())
            for n, event in enumerate(_history())]
    for start in range(0, len(txs), PER_BLOCK):
        height = app.machine.info()[0] + 1
        result = app.machine.execute(height, START_MS + height * 1_000, recorder.public_key,
                                     txs[start:start + PER_BLOCK])
        failed = [(r.code, r.log) for r in result.tx_results if r.code]
        assert not failed, failed[:3]
        app.machine.commit()
    return app, store


def _timed(run: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = run()
    return (time.perf_counter() - start) * 1_000, result


def _node_side(store: Store) -> tuple[dict[bytes, bytes], dict[bytes, Any], Any]:
    """The trace walk and the proofs of its anchors, over one read snapshot."""
    with store.reader() as view:
        history = trace(StateReader(view), FINAL)
        tree = StateTree(view, view.last().app_hash)
        proofs = {key: tree.prove(key) for key in history.anchors}
    return history.entries, proofs, history


def _client_side(root: bytes, entries: dict[bytes, bytes], proofs: dict[bytes, Any]) -> None:
    anchors = {key: entries[key] for key in proofs}
    for key, proof in proofs.items():
        assert verify_proof(root, key, anchors[key], proof)
    verify_trace(anchors, entries, item_key(FINAL))


def _median(values: list[float]) -> str:
    return f"best {min(values):.1f} ms, median {statistics.median(values):.1f} ms"


def test_trace_with_proofs(benchmark: Any) -> None:
    with tempfile.TemporaryDirectory(prefix="chainmall-bench-trace-") as directory:
        t0 = time.perf_counter()
        app, store = _chain(directory)
        build_s = time.perf_counter() - t0
        root = app.machine.info()[1]
        key = item_key(FINAL)
        node_ms, client_ms, every_ms, two_ms = [], [], [], []
        for _ in range(RUNS):
            ms, (entries, proofs, history) = _timed(lambda: _node_side(store))
            node_ms.append(ms)
            ms, _ = _timed(functools.partial(_client_side, root, entries, proofs))
            client_ms.append(ms)
            ms, every = _timed(lambda: app.query(QueryRequest("/mall/trace", key, 0, True)))
            every_ms.append(ms)
            ms, _ = _timed(lambda: (app.query(QueryRequest("/mall/trace", key, 0, False)),
                                    app.query(QueryRequest("/mall/trace_anchors", key, 0,
                                                           True))))
            two_ms.append(ms)
        benchmark.pedantic(lambda: _node_side(store), rounds=3, iterations=1)
        assert every.code == 0 and all(
            verify_proof(every.root, e.key, e.value, decode_proof(e.proof))
            for e in every.entries)
        with store.reader() as view:
            state_entries = view.entry_counts()["state"]
        store.close()
    assert len(history.steps) == EVENTS, len(history.steps)
    median = statistics.median(node_ms)
    print()
    print(f"machine: {machine('one thread')}")
    print(f"history: {len(history.steps):,} events over {len(history.items)} items, 3 levels "
          f"of transformation; state: {state_entries:,} entries (set-up {build_s:.1f} s, "
          "not measured)")
    print(f"entries in the trace: {len(entries):,}; anchors proven: {len(proofs)}")
    print(f"client: check the {len(proofs)} proofs and hash the records: {_median(client_ms)}")
    print(f"reference, /mall/trace with every entry proven ({len(every.entries):,} proofs): "
          f"{_median(every_ms)}")
    print(f"reference, /mall/trace + /mall/trace_anchors (two walks): {_median(two_ms)}")
    print(f"node: trace walk + anchor proofs ({RUNS} runs): {_median(node_ms)}; "
          f"target <= {TARGET_MS:.0f} ms: {verdict(median <= TARGET_MS)}")
