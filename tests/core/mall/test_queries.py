"""The /mall/... query paths through the Application: what each returns, every entry
proven against the state root, bad request data answered with QueryError's code."""

from __future__ import annotations

import pytest
from chainmall.core.abci.types import QueryRequest
from chainmall.core.errors import QueryError
from chainmall.core.mall import keys
from chainmall.core.mall.events import TraceEvent
from chainmall.core.mall.queries import QUERIES
from chainmall.core.mall.vocab import ACTION_ADD, KIND_OBJECT, ROLE_ARBITRATOR, ROLE_MERCHANT
from mall_chain import MallChain, key, mall_genesis

NAMES = ["merchant", "buyer", "agenzia", "arb", "certifier"]
K = {name: key(name) for name in NAMES}
ITEM = "urn:epc:id:sgtin:4.4.4"


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    chain = MallChain(tmp_path_factory.mktemp("queries") / "data",
                      mall_genesis({name: 10**9 for name in NAMES}, certifiers=("certifier",)))
    assert chain.block([chain.register(K["merchant"], ROLE_MERCHANT, 1_000, "IT"),
                        chain.register(K["arb"], ROLE_ARBITRATOR, 500)]).codes == [0, 0]
    listing = chain.list_product(K["merchant"], 500, 3)
    assert chain.block([listing, chain.certify(K["certifier"], K["merchant"].address, "B"),
                        chain.record(K["merchant"], TraceEvent(
                            KIND_OBJECT, ACTION_ADD, chain.time_ms, 0, "commissioning",
                            epcs=(ITEM,))),
                        chain.set_rate(K["agenzia"], "IT", 1_000)]).codes == [0] * 4
    order = chain.order(K["buyer"], listing.tx_id, 1, 500)
    assert chain.block([order, chain.propose(K["merchant"], ITEM, K["buyer"].address,
                                             order.tx_id)]).codes == [0, 0]
    chain.product_id, chain.order_id = listing.tx_id, order.tx_id
    yield chain
    chain.close()


def test_each_path_returns_its_objects_with_proofs(chain) -> None:
    m, item = K["merchant"].address, keys.item_key(ITEM)
    tables = lambda entries: [k[0] for k, _ in entries]  # noqa: E731
    assert tables(chain.query("/mall/party", m)) == [0x10, 0x14]
    assert tables(chain.query("/mall/parties", bytes([0]))) == [0x11, 0x10]
    assert tables(chain.query("/mall/parties", bytes([5]))) == [0x11, 0x10]
    assert chain.query("/mall/product", chain.product_id)[0][0] == keys.product(chain.product_id)
    assert tables(chain.query("/mall/products", m)) == [0x16, 0x15]
    assert tables(chain.query("/mall/order", chain.order_id)) == [0x1C, 0x1D]
    assert tables(chain.query("/mall/orders", K["buyer"].address + b"\x01")) == [0x1E, 0x1C,
                                                                                 0x1D]
    assert chain.query("/mall/orders", K["buyer"].address + b"\x02") == []
    assert chain.query("/mall/handovers", item)[0][0] == keys.handover(item, K["buyer"].address)
    assert chain.query("/mall/seats", K["arb"].address) == []
    assert sorted(tables(chain.query("/mall/trace", item))) == [0x17, 0x18, 0x19]
    assert chain.query("/mall/trace", ITEM.encode()) == chain.query("/mall/trace", item)
    assert chain.query("/mall/tax_rate", b"IT")[0][1][1:3] == (1_000).to_bytes(2, "big")
    report = bytes([2]) + b"IT" + bytes(8) + (2**64 - 1).to_bytes(8, "big")
    assert chain.query("/mall/tax_report", report) == []  # nothing settled yet


def test_every_path_is_registered_with_the_application(chain) -> None:
    for path in QUERIES:
        result = chain.app.query(QueryRequest(path, b"\xff" * 33))  # no path takes this
        assert result.code == QueryError.code and "unknown query path" not in result.log, path


def test_merchants_lists_each_merchant_whole_and_pages_by_address(chain) -> None:
    m = K["merchant"].address
    entries = chain.query("/mall/merchants", b"")
    assert [k[0] for k, _ in entries] == [0x11, 0x10, 0x14]  # index, party, certification
    assert entries[1][0] == keys.party(m) and entries[2][0][1:21] == m
    assert chain.query("/mall/merchants", m) == []  # nothing after the only merchant
    assert chain.query("/mall/merchants", b"\x00" * 20) == entries


@pytest.mark.parametrize("path,data", [
    ("/mall/party", b"\x01" * 19), ("/mall/parties", b"\x09"), ("/mall/product", b""),
    ("/mall/orders", b"\x01" * 20 + b"\x03"), ("/mall/trace", b"\xff\xfe"),
    ("/mall/trace", b"no-scheme"), ("/mall/tax_report", b"\x02IT"),
    ("/mall/tax_report", bytes([2]) + b"IT" + (5).to_bytes(8, "big") + bytes(8)),
    ("/mall/tax_rate", b"it"), ("/mall/merchants", b"\x01" * 21),
])
def test_bad_request_data_is_a_query_error(chain, path: str, data: bytes) -> None:
    result = chain.app.query(QueryRequest(path, data))
    assert result.code == QueryError.code, result.log


def test_an_unknown_item_is_a_query_error_too(chain) -> None:
    result = chain.app.query(QueryRequest("/mall/trace", b"\x09" * 32))
    assert result.code != 0 and "no item" in result.log
