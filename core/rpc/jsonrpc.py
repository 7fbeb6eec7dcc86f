"""JSON-RPC 2.0 envelopes: error codes, faults, responses and notifications as bytes.

Protocol faults use JSON-RPC's codes; domain faults use chainmall's error
codes (core/errors.py) with the class name in `data.class`, so a client can
map a code back to the same exception class.

JSON text is parsed and written by orjson (several times faster than the
standard library's json, which was a large share of the RPC's cost per
request). Where orjson refuses what the standard library accepts (UTF-16
text, lone surrogates, NaN, nesting past its depth), reads a number
otherwise (an integer beyond 64 bits becomes a float), or would write other
bytes (non-ASCII text, which `json` escapes; integers beyond 64 bits), the
standard library handles that frame or value, so requests read and
responses written are exactly the standard library's.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from ..errors import ChainmallError

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
PROTOCOL_CODES = (PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL_ERROR)

RequestId = str | int | None

_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, check_circular=False,
                            allow_nan=False)


class RpcFault(Exception):
    """A JSON-RPC error to answer with: a code, a message and optional data."""

    def __init__(self, code: int, message: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def error_object(self) -> dict[str, Any]:
        """The `error` member of a response."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


def domain_fault(error: ChainmallError, **data: Any) -> RpcFault:
    """The fault for a chainmall error: its code, its message, its class name in `data`."""
    message = str(error) or type(error).__name__
    return RpcFault(type(error).code, message, {"class": type(error).__name__, **data})


def encode_json(value: Any) -> bytes:
    """Compact ASCII JSON (no raw newline can appear, so it is a valid frame payload)."""
    try:
        encoded = orjson.dumps(value)
    except TypeError:  # an integer beyond 64 bits, a key that is not a string, ...
        return _ENCODER.encode(value).encode("ascii")
    if encoded.isascii():
        return encoded
    return _ENCODER.encode(value).encode("ascii")  # non-ASCII text: escaped, as json does


def decode_request(frame: bytes | str) -> Any:
    """One frame's JSON value as `json.loads` gives it, as far as the RPC looks at it (each
    request's id and top-level params), and its errors when it fails (ValueError,
    UnicodeDecodeError, RecursionError)."""
    try:
        payload = orjson.loads(frame)
    except orjson.JSONDecodeError:
        return json.loads(frame)  # what orjson refuses: the standard library decides
    if _has_float(payload):  # maybe an integer past 64 bits, which json keeps exact
        return json.loads(frame)
    return payload


def _has_float(payload: Any) -> bool:
    """Whether a request (or a batch's requests) has a float id or top-level param."""
    for request in payload if type(payload) is list else (payload,):
        if type(request) is not dict:
            continue
        if type(request.get("id")) is float:
            return True
        params = request.get("params")
        values = params.values() if type(params) is dict else (
            params if type(params) is list else ())
        for value in values:
            if type(value) is float:
                return True
    return False


def result_response(request_id: RequestId, result: Any) -> dict[str, Any]:
    """A success response object."""
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def error_response(request_id: RequestId, fault: RpcFault) -> dict[str, Any]:
    """An error response object."""
    return {"jsonrpc": "2.0", "id": request_id, "error": fault.error_object()}


def notification(method: str, params: dict[str, Any]) -> bytes:
    """A server-to-client notification (no id), encoded."""
    return encode_json({"jsonrpc": "2.0", "method": method, "params": params})
