"""A small blocking client for CometBFT's JSON-RPC over HTTP (status, blocks, commits, txs).

Used by `chainmall net status`, `chainmall verify` and the cluster tests:
the URI form (`GET /method?arg=value`) for reads, JSON-RPC POST (batches
allowed up to the node's `max_request_batch_size`) for submitting txs. Every
failure is a `NetworkError` naming the method; an RPC error object is a
`CometRpcError` carrying CometBFT's message.
"""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import Any

from ..constants import COMETBFT_RPC_TIMEOUT_S
from ..errors import CometRpcError, NetworkError


class CometRpc:
    """CometBFT's RPC at `url` (e.g. http://127.0.0.1:26657)."""

    def __init__(self, url: str, timeout_s: float = COMETBFT_RPC_TIMEOUT_S) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def call(self, method: str, **params: str | int | bool) -> dict[str, Any]:
        """One call in URI form; its `result`."""
        query = urllib.parse.urlencode(
            {k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in params.items()})
        url = f"{self.url}/{method}" + (f"?{query}" if query else "")
        return _result(method, self._fetch(method, urllib.request.Request(url)))

    def batch(self, calls: Sequence[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
        """Several calls in one JSON-RPC batch; each call's result or error object."""
        body = json.dumps([{"jsonrpc": "2.0", "id": i, "method": method, "params": params}
                           for i, (method, params) in enumerate(calls)]).encode()
        request = urllib.request.Request(self.url, data=body,
                                         headers={"Content-Type": "application/json"})
        answers = self._fetch("batch", request)
        if not isinstance(answers, list):
            raise NetworkError(f"CometBFT batch: {answers.get('error', answers)}")
        by_id = {answer.get("id"): answer for answer in answers}
        return [by_id.get(i, {"error": {"message": "no answer"}}) for i in range(len(calls))]

    def _fetch(self, method: str, request: urllib.request.Request) -> Any:
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:  # CometBFT sends RPC errors with status 500
            try:
                return json.loads(error.read())
            except ValueError:
                raise NetworkError(f"CometBFT {method}: HTTP {error.code}") from None
        except (OSError, ValueError) as error:
            raise NetworkError(f"CometBFT {method} at {self.url}: {error}") from None

    # --- reads ------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return self.call("status")

    def height(self) -> int:
        """The latest committed height."""
        return int(self.status()["sync_info"]["latest_block_height"])

    def block(self, height: int) -> dict[str, Any]:
        return self.call("block", height=height)

    def commit(self, height: int) -> dict[str, Any]:
        """`/commit`: the signed header of `height` (`signed_header`, `canonical`)."""
        return self.call("commit", height=height)

    def validators(self, height: int) -> list[dict[str, Any]]:
        """Every validator of the set at `height`, in the set's order (all pages)."""
        validators: list[dict[str, Any]] = []
        page = 1
        while True:
            answer = self.call("validators", height=height, page=page, per_page=100)
            validators += answer["validators"]
            if len(validators) >= int(answer["total"]) or not answer["validators"]:
                return validators
            page += 1

    def abci_query(self, path: str, data: bytes, height: int = 0,
                   prove: bool = False) -> dict[str, Any]:
        """`/abci_query` (its `response`)."""
        return self.call("abci_query", path=json.dumps(path), data="0x" + data.hex(),
                         height=height, prove=prove)["response"]

    def tx_height(self, tx: bytes) -> int:
        """The height of the block holding `tx` (0: not found yet)."""
        try:
            found = self.call("tx", hash="0x" + hashlib.sha256(tx).hexdigest())
        except CometRpcError:
            return 0
        return int(found["height"])

    def block_txs(self, height: int) -> list[bytes]:
        """The raw txs of the block at `height`."""
        txs = self.block(height)["block"]["data"]["txs"] or []
        return [base64.b64decode(tx) for tx in txs]


def _result(method: str, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise NetworkError(f"CometBFT {method}: unexpected answer")
    if "error" in body:
        error = body["error"]
        detail = error.get("data") or error.get("message") if isinstance(error, dict) else error
        raise CometRpcError(f"CometBFT {method}: {detail}")
    return body["result"]
