"""JSON-RPC 2.0 envelopes: error codes, faults, responses and notifications as bytes.

Protocol faults use JSON-RPC's codes; domain faults use chainmall's error
codes (core/errors.py) with the class name in `data.class`, so a client can
map a code back to the same exception class.
"""

from __future__ import annotations

import json
from typing import Any

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
    return _ENCODER.encode(value).encode("ascii")


def result_response(request_id: RequestId, result: Any) -> dict[str, Any]:
    """A success response object."""
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def error_response(request_id: RequestId, fault: RpcFault) -> dict[str, Any]:
    """An error response object."""
    return {"jsonrpc": "2.0", "id": request_id, "error": fault.error_object()}


def notification(method: str, params: dict[str, Any]) -> bytes:
    """A server-to-client notification (no id), encoded."""
    return encode_json({"jsonrpc": "2.0", "method": method, "params": params})
