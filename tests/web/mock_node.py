"""A stand-in for the node's HTTP port: the built page plus the mall's JSON-RPC methods from mocks.

Serves `core/rpc/static/` (the build of web/) the way docs/page.md asks the
node to, and answers `mall.info`, `mall.products`, `mall.product` and
`mall.item_trace` from `web_fixture.build_mall`, whose data is made with
chainmall's real state tree, header and commit code. For looking at the page
now (`make web-mock`) and for the browser test; the real node replaces it.

    .venv/bin/python tests/web/mock_node.py [--port 8700] [--tamper event:ring-0001:3]

Prints one line `mock node: http://HOST:PORT/` once it listens, then serves
until interrupted. Loopback only.
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import signal
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from web_fixture import MockMall, build_mall

REPO = Path(__file__).resolve().parents[2]
STATIC_DEFAULT = REPO / "core" / "rpc" / "static"
RPC_PATH = "/rpc"
PAGE_PREFIXES = ("/product/", "/item/")
REQUEST_BYTES_MAX = 1 << 20
PRODUCTS_LIMIT_MAX = 100
NOT_FOUND = -32001  # the page shows the message whatever the code (docs/page.md section 2)


class RpcFault(Exception):
    """A JSON-RPC error object to send back."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _param(params: dict[str, Any], name: str, kind: type, default: Any = None) -> Any:
    value = params.get(name, default)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise RpcFault(-32602, f"invalid params: {name!r} must be a {kind.__name__}")
    return value


def dispatch(mall: MockMall, method: str, params: dict[str, Any]) -> Any:
    """The result of one call, or RpcFault."""
    if method == "mall.info":
        return mall.info
    if method == "mall.products":
        query = _param(params, "query", str, "").strip().casefold()
        limit = _param(params, "limit", int, 20)
        if not 1 <= limit <= PRODUCTS_LIMIT_MAX:
            raise RpcFault(-32602, f"invalid params: limit must be 1..{PRODUCTS_LIMIT_MAX}")
        found = [p for p in mall.products
                 if not query or query in p["title"].casefold() or query in p["category"]]
        ranking = "match" if query else mall.info["ranking"]
        return {"query": query, "ranking": ranking, "products": found[:limit]}
    if method == "mall.product":
        product_id = _param(params, "id", str)
        if product_id not in mall.product_pages:
            raise RpcFault(NOT_FOUND, f"no product {product_id!r}")
        return mall.product_pages[product_id]
    if method == "mall.item_trace":
        item = _param(params, "item", str)
        if item not in mall.traces:
            raise RpcFault(NOT_FOUND, f"no item {item!r}")
        return mall.traces[item]
    raise RpcFault(-32601, f"method not found: {method}")


def answer(mall: MockMall, body: bytes) -> dict[str, Any]:
    """The JSON-RPC response object for one request body (no batches: the page sends none)."""
    try:
        request = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "parse error"}}
    if (not isinstance(request, dict) or request.get("jsonrpc") != "2.0"
            or not isinstance(request.get("method"), str)):
        return {"jsonrpc": "2.0", "id": None,
                "error": {"code": -32600, "message": "invalid request"}}
    request_id = request.get("id")
    params = request.get("params", {})
    try:
        if not isinstance(params, dict):
            raise RpcFault(-32602, "invalid params: use named params (an object)")
        return {"jsonrpc": "2.0", "id": request_id,
                "result": dispatch(mall, request["method"], params)}
    except RpcFault as fault:
        return {"jsonrpc": "2.0", "id": request_id,
                "error": {"code": fault.code, "message": str(fault)}}


def make_handler(mall: MockMall, static: Path, verbose: bool) -> type[BaseHTTPRequestHandler]:
    files = {p.name: p for p in static.iterdir() if p.is_file()} if static.is_dir() else {}

    class Handler(BaseHTTPRequestHandler):
        server_version = "chainmall-mock"

        def log_message(self, format: str, *args: Any) -> None:
            if verbose:
                super().log_message(format, *args)

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-cache")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            path = unquote(urlsplit(self.path).path)
            if path == "/" or (path.startswith(PAGE_PREFIXES) and path.count("/") == 2):
                name = "index.html"
            elif path.startswith("/static/") and path[len("/static/"):] in files:
                name = path[len("/static/"):]
            else:
                self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain; charset=utf-8")
                return
            if name not in files:
                self._send(HTTPStatus.SERVICE_UNAVAILABLE,
                           b"the product page is not built: run `make web`\n",
                           "text/plain; charset=utf-8")
                return
            kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
            if kind.startswith("text/") or kind.endswith(("javascript", "svg+xml")):
                kind += "; charset=utf-8"
            self._send(HTTPStatus.OK, files[name].read_bytes(), kind)

        def do_POST(self) -> None:
            if urlsplit(self.path).path != RPC_PATH:
                self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain; charset=utf-8")
                return
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= REQUEST_BYTES_MAX:
                self._send(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, b"request too large\n",
                           "text/plain; charset=utf-8")
                return
            response = answer(mall, self.rfile.read(length))
            self._send(HTTPStatus.OK, json.dumps(response).encode(), "application/json")

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8700, help="0 picks a free port")
    parser.add_argument("--static", type=Path, default=STATIC_DEFAULT)
    parser.add_argument("--tamper", default=None,
                        help="event:ITEM:SEQ, commit or hide:ITEM (alter what is served)")
    parser.add_argument("--events", type=int, default=1000,
                        help="events of the large item 'bench-1000' (0: none)")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    try:
        mall = build_mall(tamper=args.tamper, big_item_events=args.events)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    server = ThreadingHTTPServer(("127.0.0.1", args.port),
                                 make_handler(mall, args.static, args.verbose))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"mock node: http://127.0.0.1:{server.server_address[1]}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
