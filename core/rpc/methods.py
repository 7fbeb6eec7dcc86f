"""The method table: every RPC method, its typed parameters and its handler, for all transports.

A method declares its parameters in order (so a request may pass them by
position or by name) with a parser each; binding fails with "invalid params"
(-32602) naming the parameter. Handlers get a `Call` (the node's services,
the session, the limits) and return JSON-ready values (core/rpc/codec.py).
Domain modules add methods with `MethodTable.add`; state reads of their
objects go through `query` with their own paths.

A method may also have a `batch` handler, which answers several calls of it
(or of methods sharing that handler) from one JSON-RPC batch at once: the tx
submits hand all of a batch's txs to the node in one step and wait for them
with one waiter, instead of one task, one admission hand-off and one waiter
per tx. It answers exactly what the calls one by one would.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..abci.types import QueryRequest
from ..constants import (
    HASH_BYTES,
    RPC_QUERY_DATA_BYTES_MAX,
    RPC_QUERY_PATH_CHARS_MAX,
    RPC_SUBSCRIPTION_ID_CHARS_MAX,
    RPC_TOKEN_CHARS_MAX,
    STATE_KEY_BYTES_MAX,
    TX_BYTES_MAX,
)
from ..errors import (
    ChainmallError,
    InvalidInput,
    NotFinal,
    NotFound,
    TxTooLarge,
    Unauthorized,
    error_class,
)
from . import codec
from .config import RpcLimits
from .jsonrpc import INVALID_PARAMS, RpcFault, domain_fault
from .services import NodeServices, SubmitResult, TxInfo, TxState
from .session import Session

TOPICS = ("blocks", "tx", "events")

_REQUIRED = object()


@dataclass(frozen=True, slots=True)
class Call:
    """What a handler may use: the node, the caller's session, the limits, the table."""

    services: NodeServices
    session: Session
    limits: RpcLimits
    token: str
    methods: MethodTable


@dataclass(frozen=True, slots=True)
class Param:
    """A parameter: its name, its parser (value, name) -> value, and its default."""

    name: str
    parse: Callable[[Any, str], Any]
    default: Any = _REQUIRED

    @property
    def required(self) -> bool:
        """Whether a request must give it."""
        return self.default is _REQUIRED


Handler = Callable[..., Awaitable[Any]]
# (call, [(method name, bound arguments), ...]) -> one result or RpcFault per call, in order
BatchHandler = Callable[["Call", list[tuple[str, dict[str, Any]]]], Awaitable[list[Any]]]


@dataclass(frozen=True, slots=True)
class Method:
    """A method: its name, parameters in positional order, handler and one-line summary;
    optionally a handler for many calls of one batch at once (see the module docstring)."""

    name: str
    handler: Handler
    params: tuple[Param, ...] = ()
    summary: str = ""
    needs_auth: bool = True
    batch: BatchHandler | None = None
    param_names: frozenset[str] = field(init=False, repr=False, compare=False)
    # (name, parser, required, default) of each param: what bind_params reads per call
    param_specs: tuple[tuple[str, Callable[[Any, str], Any], bool, Any], ...] = field(
        init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "param_names", frozenset(p.name for p in self.params))
        object.__setattr__(self, "param_specs", tuple(
            (p.name, p.parse, p.required, p.default) for p in self.params))


class MethodTable:
    """Method name -> Method; one table serves every transport."""

    def __init__(self) -> None:
        self._methods: dict[str, Method] = {}

    def add(self, method: Method) -> None:
        """Register a method (a name may be registered once)."""
        if method.name in self._methods:
            raise ValueError(f"rpc method {method.name!r} is already registered")
        self._methods[method.name] = method

    def get(self, name: str) -> Method | None:
        """The method called `name`, None if there is none."""
        return self._methods.get(name)

    @property
    def lookup(self) -> Callable[[str], Method | None]:
        """`get` as the table's own dict lookup (one C call; sees methods added later)."""
        return self._methods.get

    def names(self) -> list[str]:
        """Every method name, sorted."""
        return sorted(self._methods)


def bind_params(method: Method, params: object) -> dict[str, Any]:
    """Keyword arguments for the handler from JSON-RPC params (array, object or absent)."""
    declared = method.params
    given: Mapping[str, Any]
    if type(params) is dict:  # the usual case, first: no ABC check
        if not method.param_names.issuperset(params):
            unknown = sorted(name for name in params if name not in method.param_names)
            raise RpcFault(INVALID_PARAMS, f"{method.name}: unknown param {unknown[0][:64]!r}")
        given = params
    elif params is None:
        given = {}
    elif isinstance(params, list):
        if len(params) > len(declared):
            raise RpcFault(INVALID_PARAMS, f"{method.name} takes at most {len(declared)} params,"
                                           f" got {len(params)}")
        given = {param.name: value for param, value in zip(declared, params, strict=False)}
    elif isinstance(params, Mapping):
        names = method.param_names
        if not names.issuperset(params):
            unknown = sorted(name for name in params if name not in names)
            raise RpcFault(INVALID_PARAMS, f"{method.name}: unknown param {unknown[0][:64]!r}")
        given = params
    else:
        raise RpcFault(INVALID_PARAMS, "params must be an array or an object")
    arguments: dict[str, Any] = {}
    for name, parse, required, default in method.param_specs:
        value = given.get(name, _REQUIRED)  # one lookup (no JSON value is _REQUIRED)
        if value is _REQUIRED:
            if required:
                raise RpcFault(INVALID_PARAMS, f"{method.name}: missing param {name!r}")
            arguments[name] = default
            continue
        try:
            arguments[name] = parse(value, name)
        except InvalidInput as error:
            raise RpcFault(INVALID_PARAMS, str(error), {"param": name}) from None
    return arguments


# --- parameter parsers ---------------------------------------------------------------


def _hash(value: Any, name: str) -> bytes:
    return codec.parse_hex(value, name, HASH_BYTES)


def _optional(parse: Callable[[Any, str], Any]) -> Callable[[Any, str], Any]:
    def parse_optional(value: Any, name: str) -> Any:
        return None if value is None else parse(value, name)
    return parse_optional


def _height(value: Any, name: str) -> int:
    return codec.parse_count(value, name)


def _state_key(value: Any, name: str) -> bytes:
    return codec.parse_hex(value, name, length_max=STATE_KEY_BYTES_MAX)


def _query_data(value: Any, name: str) -> bytes:
    return codec.parse_hex(value, name, length_max=RPC_QUERY_DATA_BYTES_MAX)


def _query_path(value: Any, name: str) -> str:
    path = codec.parse_text(value, name, RPC_QUERY_PATH_CHARS_MAX)
    if not path.startswith("/"):
        raise InvalidInput(f"{name}: a query path starts with '/'")
    return path


def _token(value: Any, name: str) -> str:
    return codec.parse_text(value, name, RPC_TOKEN_CHARS_MAX)


def _topic(value: Any, name: str) -> str:
    if value not in TOPICS:
        raise InvalidInput(f"{name}: expected one of {', '.join(TOPICS)}")
    return str(value)


def _subscription_id(value: Any, name: str) -> str:
    return codec.parse_text(value, name, RPC_SUBSCRIPTION_ID_CHARS_MAX)


# --- handlers ----------------------------------------------------------------------------


def _refusal(code: int, log: str, tx_id: bytes) -> RpcFault:
    try:
        cls = error_class(code)
    except KeyError:
        cls = InvalidInput
    return RpcFault(code, log or f"tx refused ({cls.__name__})",
                    {"class": cls.__name__, "tx_id": tx_id.hex()})


def _check_tx_size(tx: bytes) -> None:
    if len(tx) > TX_BYTES_MAX:
        raise TxTooLarge(f"tx is {len(tx)} bytes, limit {TX_BYTES_MAX}")


async def _status(call: Call) -> Any:
    return codec.status_json(await call.services.status())


def _submitted(result: SubmitResult) -> Any:
    """The answer to a tx_submit: the tx's id once admitted, its refusal otherwise."""
    if result.code != 0:
        raise _refusal(result.code, result.log, result.tx_id)
    return codec.submit_json(result)


def _check_wait_ms(limits: RpcLimits, timeout_ms: int) -> None:
    if timeout_ms > limits.wait_ms_max:
        raise RpcFault(INVALID_PARAMS, f"timeout_ms: at most {limits.wait_ms_max}",
                       {"param": "timeout_ms"})


def _waited(submit: SubmitResult, info: TxInfo, timeout_ms: int) -> Any:
    """The answer to a tx_submit_wait: the final tx, else NotFinal (or the refusal)."""
    if submit.code != 0:
        raise _refusal(submit.code, submit.log, submit.tx_id)
    if info.state is not TxState.FINAL:
        state = info.state.value
        detail = "still pending" if info.state is TxState.PENDING else "dropped"
        raise domain_fault(NotFinal(f"tx {submit.tx_id.hex()} is not final after "
                                    f"{timeout_ms} ms ({detail})"),
                           tx_id=submit.tx_id.hex(), status=state)
    return codec.tx_json(info)


async def _tx_submit(call: Call, tx: bytes) -> Any:
    _check_tx_size(tx)
    return _submitted(await call.services.submit_tx(tx))


async def _tx_submit_wait(call: Call, tx: bytes, timeout_ms: int) -> Any:
    _check_tx_size(tx)
    _check_wait_ms(call.limits, timeout_ms)
    outcome = await call.services.submit_tx_wait(tx, timeout_ms / 1000)
    return _waited(outcome.submit, outcome.tx, timeout_ms)


def _answer(render: Callable[..., Any], *args: Any) -> Any:
    """`render(*args)`, or the RpcFault it raises (as a value)."""
    try:
        return render(*args)
    except RpcFault as fault:
        return fault


async def _tx_submits(call: Call, calls: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    """tx_submit and tx_submit_wait calls of one batch: their txs go to the node in one
    `submit_txs`, in the batch's order, and the admitted ones that wait are waited for
    together (one `wait_txs` per distinct time-out)."""
    answers: list[Any] = [None] * len(calls)
    txs: list[bytes] = []
    slots: list[int] = []
    wait_ms_max = call.limits.wait_ms_max
    for slot, (name, arguments) in enumerate(calls):
        tx = arguments["tx"]
        # _check_tx_size and _check_wait_ms, their passing case inline (one per tx)
        if len(tx) > TX_BYTES_MAX or (name == "tx_submit_wait"
                                      and arguments["timeout_ms"] > wait_ms_max):
            try:
                _check_tx_size(tx)
                _check_wait_ms(call.limits, arguments["timeout_ms"])
            except ChainmallError as error:
                answers[slot] = domain_fault(error)
            except RpcFault as fault:
                answers[slot] = fault
            continue
        txs.append(tx)
        slots.append(slot)
    results = await call.services.submit_txs(txs) if txs else []
    waiting: dict[int, list[tuple[int, SubmitResult]]] = {}  # time-out -> (slot, verdict)
    for slot, result in zip(slots, results, strict=True):
        name, arguments = calls[slot]
        if name == "tx_submit" or result.code != 0:
            answers[slot] = _answer(_submitted, result)
        else:
            group = waiting.get(arguments["timeout_ms"])
            if group is None:
                waiting[arguments["timeout_ms"]] = [(slot, result)]
            else:
                group.append((slot, result))
    if not waiting:
        return answers
    groups = list(waiting.items())
    if len(groups) == 1:  # the usual case (one time-out in the batch): no task for the wait
        timeout_ms, group = groups[0]
        infos = [await call.services.wait_txs([result.tx_id for _, result in group],
                                              timeout_ms / 1000)]
    else:
        infos = await asyncio.gather(*(
            call.services.wait_txs([result.tx_id for _, result in group], timeout_ms / 1000)
            for timeout_ms, group in groups))
    final = TxState.FINAL
    tx_json = codec.tx_json
    for (timeout_ms, group), found in zip(groups, infos, strict=True):
        for (slot, result), info in zip(group, found, strict=True):
            # _waited's usual case (admitted, then final) without the wrappers
            answers[slot] = (tx_json(info) if info.state is final
                             else _answer(_waited, result, info, timeout_ms))
    return answers


async def _tx_get(call: Call, tx_id: bytes) -> Any:
    return codec.tx_json(await call.services.tx_status(tx_id))


async def _block_get(call: Call, height: int | None, hash: bytes | None, txs: bool) -> Any:
    if height is not None and hash is not None:
        raise RpcFault(INVALID_PARAMS, "block_get: give height or hash, not both")
    if hash is not None:
        info = await call.services.block_by_hash(hash)
    else:
        if height is None or height == 0:
            height = (await call.services.status()).height
            if height == 0:
                raise NotFound("no block has been committed yet")
        info = await call.services.block(height)
    return codec.block_json(info, txs)


async def _account_get(call: Call, address: bytes, height: int, prove: bool) -> Any:
    return codec.account_json(await call.services.account(address, height, prove))


async def _run_query(call: Call, request: QueryRequest) -> Any:
    result = await call.services.query(request)
    if result.code != 0:
        try:
            cls = error_class(result.code)
        except KeyError:
            cls = InvalidInput
        raise RpcFault(result.code, result.log or f"query {request.path} failed",
                       {"class": cls.__name__})
    return codec.query_json(result)


async def _state_get(call: Call, key: bytes, height: int, prove: bool) -> Any:
    return await _run_query(call, QueryRequest("/state", key, height, prove))


async def _query(call: Call, path: str, data: bytes, height: int, prove: bool) -> Any:
    return await _run_query(call, QueryRequest(path, data, height, prove))


async def _subscribe(call: Call, topic: str, tx_id: bytes | None, address: bytes | None) -> Any:
    services = call.services
    if topic == "blocks":
        if tx_id is not None or address is not None:
            raise RpcFault(INVALID_PARAMS, "subscribe blocks: takes no tx_id or address")
        return call.session.subscribe(services.subscribe_blocks(),
                                      lambda info: codec.block_json(info, False))
    if topic == "tx":
        if tx_id is None or address is not None:
            raise RpcFault(INVALID_PARAMS, "subscribe tx: needs tx_id (and no address)")
        return call.session.subscribe(services.subscribe_tx(tx_id), codec.tx_json)
    if address is None or tx_id is not None:
        raise RpcFault(INVALID_PARAMS, "subscribe events: needs address (and no tx_id)")
    return call.session.subscribe(services.subscribe_events(address), codec.address_event_json)


async def _unsubscribe(call: Call, subscription: str) -> Any:
    return call.session.unsubscribe(subscription)


async def _auth(call: Call, token: str) -> Any:
    if not call.token:
        return True  # no token configured: nothing to prove
    if not hmac.compare_digest(token.encode(), call.token.encode()):
        call.session.close_after_response = True
        raise Unauthorized("wrong token")
    call.session.authenticated = True
    return True


async def _rpc_methods(call: Call) -> Any:
    return call.methods.names()


def default_methods(wait_ms_default: int) -> MethodTable:
    """The node's methods (docs/rpc.md section 4)."""
    table = MethodTable()
    for method in (
        Method("status", _status, (), "height, app hash, mempool, version, validator"),
        Method("tx_submit", _tx_submit, (Param("tx", codec.parse_hex),),
               "offer a raw tx to the mempool; its id", batch=_tx_submits),
        Method("tx_submit_wait", _tx_submit_wait,
               (Param("tx", codec.parse_hex),
                Param("timeout_ms", codec.parse_count, wait_ms_default)),
               "offer a raw tx and answer when it is final", batch=_tx_submits),
        Method("tx_get", _tx_get, (Param("tx_id", _hash),), "a tx's status and receipt"),
        Method("block_get", _block_get,
               (Param("height", _optional(_height), None), Param("hash", _optional(_hash), None),
                Param("txs", codec.parse_bool, False)),
               "a block by height or hash (latest by default), with its commit"),
        Method("account_get", _account_get,
               (Param("address", codec.parse_address), Param("height", _height, 0),
                Param("prove", codec.parse_bool, False)),
               "an account's balance and nonce, with a state proof when asked"),
        Method("state_get", _state_get,
               (Param("key", _state_key), Param("height", _height, 0),
                Param("prove", codec.parse_bool, False)),
               "a state entry by key, with a state proof when asked"),
        Method("query", _query,
               (Param("path", _query_path), Param("data", _query_data, b""),
                Param("height", _height, 0), Param("prove", codec.parse_bool, False)),
               "an ABCI query by path (docs/abci.md and domain paths)"),
        Method("subscribe", _subscribe,
               (Param("topic", _topic), Param("tx_id", _optional(_hash), None),
                Param("address", _optional(codec.parse_address), None)),
               "push new blocks, one tx's finality, or an address's events"),
        Method("unsubscribe", _unsubscribe, (Param("subscription", _subscription_id),),
               "stop a subscription"),
        Method("auth", _auth, (Param("token", _token),), "present the bearer token",
               needs_auth=False),
        Method("rpc_methods", _rpc_methods, (), "the method names"),
    ):
        table.add(method)
    return table
