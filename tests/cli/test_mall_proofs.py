"""The CLI's client-side checks (cli/proven.py) against an honest and a lying node.

The "node" is the real Application of an in-process mall chain answering
queries (tests/core/mall/mall_chain.py); a lying one changes a value, drops a
proof or an entry, or claims a present key is absent. Every lie must end in
InvalidProof, never in a result shown to the user.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from chainmall.cli.mall_trace import _holder
from chainmall.cli.proven import EntryState, fetch_trace, prove_absent, proven_query
from chainmall.core.abci.types import QueryRequest, QueryResult
from chainmall.core.errors import InvalidProof, error_class
from chainmall.core.mall import keys
from chainmall.core.mall.codec import NO_ID
from chainmall.core.mall.events import TraceEvent
from chainmall.core.mall.history import trace
from chainmall.core.mall.items import EMPTY_HISTORY, ITEM_INSTANCE, Item
from chainmall.core.mall.vocab import ACTION_ADD, ACTION_OBSERVE, KIND_OBJECT, ROLE_MERCHANT

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core" / "mall"))
from mall_chain import MallChain, key, mall_genesis, ok

ITEM = "urn:epc:id:sgtin:4012345.011111.7"
NAMES = ["merchant", "buyer", "agenzia"]
Tamper = Callable[[str, bool, QueryResult], QueryResult]


class AppClient:
    """The part of BlockingClient that cli/proven.py uses, served by an Application."""

    def __init__(self, chain: MallChain, tamper: Tamper | None = None) -> None:
        self.chain = chain
        self.tamper = tamper
        self.queries = 0

    def query(self, path: str, data: bytes = b"", height: int = 0,
              prove: bool = False) -> QueryResult:
        self.queries += 1
        result = self.chain.app.query(QueryRequest(path, data, height, prove))
        if result.code:
            raise error_class(result.code)(result.log)
        return self.tamper(path, prove, result) if self.tamper else result


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MallChain]:
    chain = MallChain(tmp_path_factory.mktemp("proofs") / "data",
                      mall_genesis({name: 10**9 for name in NAMES}))
    merchant, buyer = key("merchant"), key("buyer")
    ok(chain.block([chain.register(merchant, ROLE_MERCHANT, 1_000, "IT", "Argenteria")]))
    ok(chain.block([chain.record(merchant, TraceEvent(
        KIND_OBJECT, ACTION_ADD, chain.time_ms, 60, "commissioning", "active", epcs=(ITEM,)))]))
    ok(chain.block([chain.record(merchant, TraceEvent(
        KIND_OBJECT, ACTION_OBSERVE, chain.time_ms, 60, "storing", epcs=(ITEM,)))]))
    ok(chain.block([chain.propose(merchant, ITEM, buyer.address)]))
    ok(chain.block([chain.accept(buyer, ITEM, "accepting")]))
    yield chain
    chain.close()


def flip_value(target: bytes) -> Tamper:
    """A node that changes one byte of the entry `target` (wherever it is served)."""
    def tamper(path: str, prove: bool, result: QueryResult) -> QueryResult:
        entries = tuple(
            replace(entry, value=entry.value[:-1] + bytes([entry.value[-1] ^ 1]))
            if entry.key == target and entry.value else entry for entry in result.entries)
        return replace(result, entries=entries)
    return tamper


def test_an_honest_answer_is_proven(chain: MallChain) -> None:
    proven = proven_query(AppClient(chain), "/mall/party", key("merchant").address)
    assert proven.get(keys.party(key("merchant").address)) is not None
    assert proven.root == chain.root and proven.json()["verified"]


def test_a_changed_value_is_refused(chain: MallChain) -> None:
    client = AppClient(chain, flip_value(keys.party(key("merchant").address)))
    with pytest.raises(InvalidProof, match="does not prove"):
        proven_query(client, "/mall/party", key("merchant").address)


def test_an_answer_without_proofs_is_refused(chain: MallChain) -> None:
    def strip(path: str, prove: bool, result: QueryResult) -> QueryResult:
        return replace(result, entries=tuple(replace(e, proof=b"") for e in result.entries))
    with pytest.raises(InvalidProof, match="no proof"):
        proven_query(AppClient(chain, strip), "/mall/party", key("merchant").address)


def test_absence_is_proven_and_a_hidden_entry_is_caught(chain: MallChain) -> None:
    absent = prove_absent(AppClient(chain), keys.party(key("buyer").address))
    assert absent.entries[0][1] is None
    present = keys.party(key("merchant").address)

    def hide(path: str, prove: bool, result: QueryResult) -> QueryResult:
        return replace(result, entries=tuple(replace(e, value=None) for e in result.entries))
    with pytest.raises(InvalidProof):
        prove_absent(AppClient(chain, hide), present)


def test_a_trace_is_checked_against_its_proven_anchors(chain: MallChain) -> None:
    checked = fetch_trace(AppClient(chain), ITEM)
    with chain.reader() as state:
        expected = trace(state, ITEM)
    assert [s.event_id for s in checked.trace.steps] == [s.event_id for s in expected.steps]
    assert len(checked.trace.steps) == 3
    assert 0 < len(checked.anchors) < checked.entries_checked


def test_a_changed_event_record_in_the_unproven_trace_is_refused(chain: MallChain) -> None:
    with chain.reader() as state:
        record_key = next(k for k in trace(state, ITEM).entries if k[0] == keys.event(
            bytes(32))[0])
    client = AppClient(chain, flip_value(record_key))
    with pytest.raises(InvalidProof, match="does not check"):
        fetch_trace(client, ITEM)
    assert client.queries == 2 * 3  # read again before calling it invalid


def test_a_trace_with_an_event_left_out_is_refused(chain: MallChain) -> None:
    def drop(path: str, prove: bool, result: QueryResult) -> QueryResult:
        if path != "/mall/trace":
            return result
        index = [e for e in result.entries if e.key[0] == keys.item_event(bytes(32), 0)[0]]
        return replace(result, entries=tuple(e for e in result.entries if e is not index[0]))
    with pytest.raises(InvalidProof):
        fetch_trace(AppClient(chain, drop), ITEM)


@pytest.mark.parametrize("limit", [None, 1, 2, 100])
def test_entry_state_scans_like_the_store(chain: MallChain, limit: int | None) -> None:
    with chain.reader() as state:
        entries = trace(state, ITEM).entries
        start, end = keys.prefix_range(keys.item_events_of(keys.item_key(ITEM)))
        expected = state.scan(start, end, limit)
    assert EntryState(entries).scan(start, end, limit) == expected
    assert EntryState(entries).get(b"\x00") is None


def _item(uri: str, holder: bytes, parent: bytes = NO_ID) -> bytes:
    return Item(ITEM_INSTANCE, holder, parent, 1, 1, 0, EMPTY_HISTORY, uri).encode()


def test_the_holder_shown_is_the_outermost_container_s_or_unknown() -> None:
    ring, case, pallet = (keys.item_key(f"urn:epc:id:sgtin:1.1.{n}") for n in range(3))
    shop, carrier = b"\x01" * 20, b"\x02" * 20
    alone = {keys.item(ring): _item("urn:epc:id:sgtin:1.1.0", shop)}
    assert _holder(EntryState(alone), ring) == shop
    packed = {keys.item(ring): _item("urn:epc:id:sgtin:1.1.0", shop, case),
              keys.item(case): _item("urn:epc:id:sgtin:1.1.1", shop, pallet),
              keys.item(pallet): _item("urn:epc:id:sgtin:1.1.2", carrier)}
    assert _holder(EntryState(packed), ring) == carrier
    del packed[keys.item(pallet)]  # the container's entry was not among the checked ones
    assert _holder(EntryState(packed), ring) is None
