"""One JSON-RPC 2.0 frame in, its response frame out: the rules every transport shares.

Order of checks for each request (the first failure answers it): a valid
envelope (-32600), the connection's rate (RateLimited), authentication
(Unauthorized), a known method (-32601), its params (-32602); then the
handler, whose chainmall errors become domain errors and anything else an
internal error (-32603, logged, no detail sent). A batch is checked as a
whole first (not empty, at most `batch_items_max` items); its items start in
order and run concurrently, and the response holds one entry per request
with an id. Notifications (no id) get no response, even on error. A batch's
calls of methods that share a batch handler (the tx submits) are answered
by one call of that handler, started where the first of them stands.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

from ..constants import RPC_METHOD_CHARS_MAX
from ..errors import ChainmallError, RateLimited, Unauthorized
from .config import RpcLimits
from .jsonrpc import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    RpcFault,
    decode_request,
    domain_fault,
    encode_json,
    error_response,
    result_response,
)
from .methods import BatchHandler, Call, Method, MethodTable, bind_params
from .services import NodeServices
from .session import Session

LOG = logging.getLogger("chainmall.rpc")
_NO_ID = object()


class Dispatcher:
    """Answers frames for sessions from one method table and one node."""

    def __init__(self, methods: MethodTable, services: NodeServices, limits: RpcLimits,
                 token: str) -> None:
        self.methods = methods
        self._method_named = methods.lookup
        self.services = services
        self.limits = limits
        self.token = token

    async def handle_frame(self, session: Session, frame: bytes | str) -> bytes | None:
        """The encoded response to one frame, None when nothing is to be sent."""
        try:
            payload = decode_request(frame)
        except RecursionError:
            return _encoded_error(None, RpcFault(PARSE_ERROR, "parse error: nested too deeply"))
        except (ValueError, UnicodeDecodeError) as error:
            return _encoded_error(None, RpcFault(PARSE_ERROR, f"parse error: {_short(error)}"))
        if isinstance(payload, list):
            return await self._batch(session, payload)
        if not session.take_requests(1):
            return _encoded_error(_request_id(payload), domain_fault(
                RateLimited(f"over {self.limits.requests_per_s_max} requests per second")))
        response = await self._one(session, payload)
        return None if response is None else encode_json(response)

    async def _batch(self, session: Session, items: list[Any]) -> bytes | None:
        if not items:
            return _encoded_error(None, RpcFault(INVALID_REQUEST, "empty batch"))
        if len(items) > self.limits.batch_items_max:
            return _encoded_error(None, RpcFault(
                INVALID_REQUEST,
                f"batch of {len(items)} requests, limit {self.limits.batch_items_max}"))
        if not session.take_requests(len(items)):
            return _encoded_error(None, domain_fault(RateLimited(
                f"batch of {len(items)} is over {self.limits.requests_per_s_max} requests "
                "per second")))
        responses: list[dict[str, Any] | None] = [None] * len(items)
        work: list[Awaitable[None]] = []  # in the order of the items they start at
        grouped: dict[BatchHandler, list[tuple[int, Any, bool, str, dict[str, Any]]]] = {}
        for index, item in enumerate(items):
            prepared = self._prepare(session, item)
            if isinstance(prepared, dict):  # refused before any work
                responses[index] = prepared
                continue
            if prepared is None:  # a notification refused before any work
                continue
            request_id, notify, method, arguments = prepared
            if method.batch is None:
                work.append(self._answer_into(responses, index, session, request_id, notify,
                                              method, arguments))
                continue
            group = grouped.get(method.batch)
            if group is None:
                group = grouped[method.batch] = []
                work.append(self._answer_group(responses, session, method.batch, group))
            group.append((index, request_id, notify, method.name, arguments))
        # The decoded requests are not read again (ids and bound arguments are kept above);
        # a batch of tx_submit_wait waits a block or two, so letting them go here keeps
        # the node's memory per tx in flight at what the answers need (the soak, issue 12).
        items.clear()
        if len(work) == 1:
            await work[0]
        elif work:
            await asyncio.gather(*work)
        answered = [response for response in responses if response is not None]
        return encode_json(answered) if answered else None

    async def _one(self, session: Session, request: Any) -> dict[str, Any] | None:
        """The response object to one request (None for a notification)."""
        prepared = self._prepare(session, request)
        if prepared is None or isinstance(prepared, dict):
            return prepared
        request_id, notify, method, arguments = prepared
        try:
            result = await self._call(session, method, arguments)
        except RpcFault as fault:
            return None if notify else error_response(request_id, fault)
        return None if notify else result_response(request_id, result)

    def _prepare(self, session: Session, request: Any
                 ) -> tuple[Any, bool, Method, dict[str, Any]] | dict[str, Any] | None:
        """A request's checks before its method runs, in the documented order: (id, whether
        it is a notification, the method, its arguments), or the error response (None for
        a notification) that answers it."""
        # _request_id's rules inline (this runs for every request of every batch)
        request_id = request.get("id") if isinstance(request, dict) else _NO_ID
        if not (request_id is None or type(request_id) is str or type(request_id) is int):
            return error_response(None, RpcFault(INVALID_REQUEST, "invalid request: expected "
                                                 'an object with "jsonrpc": "2.0", "method" '
                                                 'and an id that is a string, integer or null'))
        method_name = request.get("method")
        if request.get("jsonrpc") != "2.0" or type(method_name) is not str:
            return error_response(request_id, RpcFault(
                INVALID_REQUEST, 'invalid request: needs "jsonrpc": "2.0" and a string "method"'))
        notify = "id" not in request
        try:
            method = self._method_named(method_name)
            if method is None:
                raise RpcFault(METHOD_NOT_FOUND,
                               f"no method {method_name[:RPC_METHOD_CHARS_MAX]!r}")
            if method.needs_auth and not session.authenticated:
                raise domain_fault(Unauthorized("this connection must call auth with the "
                                                "token first"))
            arguments = bind_params(method, request.get("params"))
        except RpcFault as fault:
            return None if notify else error_response(request_id, fault)
        return request_id, notify, method, arguments

    def _context(self, session: Session) -> Call:
        return Call(self.services, session, self.limits, self.token, self.methods)

    async def _call(self, session: Session, method: Method, arguments: dict[str, Any]) -> Any:
        try:
            return await method.handler(self._context(session), **arguments)
        except RpcFault:
            raise
        except ChainmallError as error:
            raise domain_fault(error) from None
        except Exception:
            LOG.exception("rpc method %s failed", method.name)
            raise RpcFault(INTERNAL_ERROR, "internal error") from None

    async def _answer_into(self, responses: list[dict[str, Any] | None], index: int,
                           session: Session, request_id: Any, notify: bool, method: Method,
                           arguments: dict[str, Any]) -> None:
        try:
            result = await self._call(session, method, arguments)
        except RpcFault as fault:
            if not notify:
                responses[index] = error_response(request_id, fault)
            return
        if not notify:
            responses[index] = result_response(request_id, result)

    async def _answer_group(self, responses: list[dict[str, Any] | None], session: Session,
                            handler: BatchHandler,
                            group: list[tuple[int, Any, bool, str, dict[str, Any]]]) -> None:
        """Answer a batch's calls that share `handler` with one call of it."""
        try:
            try:
                results = await handler(self._context(session),
                                        [(name, arguments) for _, _, _, name, arguments in group])
            except RpcFault:
                raise
            except ChainmallError as error:
                raise domain_fault(error) from None
            except Exception:
                LOG.exception("rpc batch of %s failed", group[0][3])
                raise RpcFault(INTERNAL_ERROR, "internal error") from None
        except RpcFault as fault:
            results = [fault] * len(group)
        for (index, request_id, notify, _, _), result in zip(group, results, strict=True):
            if notify:
                continue
            responses[index] = (error_response(request_id, result)
                                if isinstance(result, RpcFault)
                                else result_response(request_id, result))


def _request_id(request: Any) -> Any:
    """The request's id if it is a valid one (str, int, null or absent), else _NO_ID."""
    if not isinstance(request, dict):
        return None
    request_id = request.get("id")
    if request_id is None or isinstance(request_id, str) or (
            type(request_id) is int):
        return request_id
    return _NO_ID


def _encoded_error(request_id: Any, fault: RpcFault) -> bytes:
    return encode_json(error_response(None if request_id is _NO_ID else request_id, fault))


def _short(error: Exception) -> str:
    return str(error).splitlines()[0][:200] if str(error) else type(error).__name__
