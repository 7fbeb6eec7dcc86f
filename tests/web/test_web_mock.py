"""The mock node and its data: the proofs it serves verify in Python, its switches alter them,
its JSON-RPC answers bad requests with error objects, and `chainmall doctor` sees the page."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from chainmall.cli import doctor
from chainmall.core.block import decode_commit, decode_header
from chainmall.core.state.root import decode_proof, verify_proof
from generate_vectors import commit_verdict
from mock_node import answer, make_handler
from web_fixture import MockMall, build_mall
from web_layout import decode_event, trace_key


@pytest.fixture(scope="module")
def mall() -> MockMall:
    return build_mall(big_item_events=40, filler=300)


def _entries(trace: dict) -> Iterator[tuple[str, int, dict]]:
    for listed in trace["lists"]:
        for entry in listed["events"]:
            yield listed["item"], entry["seq"], entry


def _verifies(trace: dict, item: str, seq: int, entry: dict) -> bool:
    root = decode_header(bytes.fromhex(trace["anchor"]["header"])).state_root
    key = trace_key(item, seq)
    return entry["key"] == key.hex() and verify_proof(
        root, key, bytes.fromhex(entry["value"]), decode_proof(bytes.fromhex(entry["proof"])))


def test_served_traces_verify_in_python(mall: MockMall) -> None:
    for trace in mall.traces.values():
        anchor = trace["anchor"]
        verdict = commit_verdict(*(bytes.fromhex(anchor[k]) for k in ("header", "commit",
                                                                       "validators")))
        assert verdict["ok"], verdict
        assert decode_commit(bytes.fromhex(anchor["commit"])).height == int(anchor["height"])
        root = decode_header(bytes.fromhex(anchor["header"])).state_root
        for item, seq, entry in _entries(trace):
            assert _verifies(trace, item, seq, entry), (item, seq)
            decode_event(bytes.fromhex(entry["value"]))
        for listed in trace["lists"]:
            end = listed["end"]
            key = trace_key(listed["item"], end["seq"])
            assert verify_proof(root, key, None, decode_proof(bytes.fromhex(end["proof"])))


def test_story_has_the_ring_history_from_the_lot(mall: MockMall) -> None:
    trace = mall.traces["ring-0001"]
    assert [listed["item"] for listed in trace["lists"]] == ["ring-0001", "lot-ag-2026-0042"]
    kinds = [decode_event(bytes.fromhex(e["value"])).kind for _, _, e in _entries(trace)]
    assert kinds.count("correction") == 1 and kinds.count("transformation") == 2
    assert mall.traces["bench-1000"]["lists"][0]["item"] == "bench-1000"


def test_tamper_switches_break_exactly_what_they_name() -> None:
    altered = build_mall(tamper="event:ring-0001:3", big_item_events=0, filler=50)
    trace = altered.traces["ring-0001"]
    failing = [(i, s) for i, s, e in _entries(trace) if not _verifies(trace, i, s, e)]
    assert failing == [("ring-0001", 3)]
    decode_event(bytes.fromhex(trace["lists"][0]["events"][3]["value"]))  # still readable
    anchor = build_mall(tamper="commit", big_item_events=0, filler=50).traces["ring-0001"]["anchor"]
    verdict = commit_verdict(*(bytes.fromhex(anchor[k]) for k in ("header", "commit",
                                                                   "validators")))
    assert verdict["fault"] == "bad_signature"
    hidden = build_mall(tamper="hide:ring-0001", big_item_events=0, filler=50)
    listed = hidden.traces["ring-0001"]["lists"][0]
    root = decode_header(bytes.fromhex(hidden.traces["ring-0001"]["anchor"]["header"])).state_root
    key = trace_key("ring-0001", listed["end"]["seq"])
    assert not verify_proof(root, key, None, decode_proof(bytes.fromhex(listed["end"]["proof"])))
    with pytest.raises(ValueError, match="unknown tamper mode"):
        build_mall(tamper="nonsense", big_item_events=0, filler=10)


@pytest.mark.parametrize(("body", "code"), [
    (b"{not json", -32700),
    (b"[]", -32600),
    (b'{"jsonrpc": "2.0", "id": 1}', -32600),
    (b'{"jsonrpc": "2.0", "id": 1, "method": "mall.nothing"}', -32601),
    (b'{"jsonrpc": "2.0", "id": 1, "method": "mall.product", "params": [1]}', -32602),
    (b'{"jsonrpc": "2.0", "id": 1, "method": "mall.product", "params": {"id": 7}}', -32602),
    (b'{"jsonrpc": "2.0", "id": 1, "method": "mall.products", "params": {"limit": 0}}', -32602),
    (b'{"jsonrpc": "2.0", "id": 1, "method": "mall.item_trace", "params": {"item": "x"}}',
     -32001),
])
def test_bad_requests_get_error_objects(mall: MockMall, body: bytes, code: int) -> None:
    response = answer(mall, body)
    assert response["error"]["code"] == code
    assert "result" not in response


def test_search_and_listing(mall: MockMall) -> None:
    found = answer(mall, json.dumps({"jsonrpc": "2.0", "id": 3, "method": "mall.products",
                                     "params": {"query": "Chain"}}).encode())
    assert found["id"] == 3
    assert [p["id"] for p in found["result"]["products"]] == ["silver-chain-45"]
    assert found["result"]["ranking"] == "match"


@pytest.fixture
def server(mall: MockMall, tmp_path: Path) -> Iterator[str]:
    (tmp_path / "index.html").write_text("<!doctype html><title>t</title>")
    (tmp_path / "app.js").write_text("export {};")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(mall, tmp_path, False))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def _get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def test_page_routes_and_static_files(server: str) -> None:
    for path in ("/", "/item/ring-0001", "/product/silver-ring-925", "/item/a%20b"):
        status, kind, body = _get(server + path)
        assert (status, kind) == (200, "text/html; charset=utf-8") and body.startswith(b"<!doc")
    assert _get(server + "/static/app.js")[:2] == (200, "text/javascript; charset=utf-8")
    for path in ("/static/../setup.py", "/static/missing.js", "/item/a/b", "/rpc", "/x"):
        assert _get(server + path)[0] == 404, path
    request = urllib.request.Request(server + "/rpc", data=b'{"jsonrpc": "2.0", "id": 1, '
                                     b'"method": "mall.info"}', method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.loads(response.read())["result"]["chain_id"] == "chainmall-demo"


def test_doctor_reports_the_page(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    package = tmp_path / "core"
    (package / "rpc" / "static").mkdir(parents=True)
    monkeypatch.setattr(doctor.resources, "files", lambda name: package)
    built, detail = doctor.web_page_status()
    assert not built and "make web" in detail and "app.js" in detail
    for name in ("index.html", "app.js", "style.css"):
        (package / "rpc" / "static" / name).write_text("x" * 600)
    built, detail = doctor.web_page_status()
    assert built and detail.startswith("built (1 KiB")
