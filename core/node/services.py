"""The node as the RPC sees it: `NodeServices` over a `Node`, and the RPC front end.

The RPC layer (`core/rpc/`) defines what it needs from a node and never
imports `node/`; this adapter turns the node's own values into the RPC's
(`core/rpc/services.py`) and its "not there" answers into NotFound.
`rpc_frontend(config)` builds the JSON-RPC server that `node start` runs, with the
product page's methods (`core/rpc/page_methods.py`, answered by `core/node/page.py`)
and its files on the HTTP port.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Generic, TypeVar

from ..abci.app import Application
from ..abci.cometbft_rpc import CometRpc
from ..abci.types import QueryRequest, QueryResult
from ..constants import RPC_WAIT_MS_DEFAULT
from ..errors import LimitExceeded, NotFound, QueryError, SubscriberLagged
from ..proof_bundle import TrustRoot
from ..rpc.config import RpcConfig, RpcLimits
from ..rpc.methods import MethodTable, default_methods
from ..rpc.page_methods import add_page_methods
from ..rpc.server import RpcServer
from ..rpc.services import (
    AccountInfo,
    AddressEvent,
    BlockInfo,
    NodeStatus,
    SubmitResult,
    TxInfo,
    WaitResult,
)
from . import finality
from .app import Frontend, FrontendFactory
from .config import Config, parse_listen
from .node import Node
from .page import PageReader, alteration_from_env
from .page_cometbft import LightClientAnchors

S = TypeVar("S")
T = TypeVar("T")


def _tx_info(status: finality.TxStatus) -> TxInfo:
    """The node's tx status is the RPC's TxInfo (finality.py): no copy."""
    return status


def _block_info(block: finality.CommittedBlock) -> BlockInfo:
    return BlockInfo(block.block, block.receipts)


def _address_event(item: finality.AddressEvent) -> AddressEvent:
    return AddressEvent(item.height, item.tx_id, item.index, item.event)


class _Converted(Generic[S, T]):
    """A node subscription whose items are converted for the RPC; `aclose` unsubscribes.

    A subscriber the node ended for falling behind gets LimitExceeded, as the
    RPC expects."""

    def __init__(self, source: finality.Subscription[S], convert: Callable[[S], T]) -> None:
        self._source = source
        self._convert = convert

    def __aiter__(self) -> _Converted[S, T]:
        return self

    async def __anext__(self) -> T:
        try:
            item = await self._source.__anext__()
        except SubscriberLagged as exc:
            raise LimitExceeded(str(exc)) from None
        return self._convert(item)

    async def aclose(self) -> None:
        await self._source.aclose()


class NodeRpcServices:
    """`core/rpc/services.NodeServices` implemented by a running `Node`, and the page's
    `PageServices` when given a `PageReader`."""

    def __init__(self, node: Node, page: PageReader | None = None) -> None:
        self.node = node
        self.page = page or PageReader(node.app)

    # The node's verdicts and statuses are the RPC's values (admission.Admitted is
    # SubmitResult, finality.TxStatus is TxInfo): handed over as they are, no copy per tx.

    async def submit_tx(self, tx: bytes) -> SubmitResult:
        return await self.node.submit(tx)

    async def submit_tx_wait(self, tx: bytes, timeout_s: float) -> WaitResult:
        admitted, status = await self.node.submit_wait(tx, timeout_s)
        return WaitResult(admitted, status)

    async def submit_txs(self, txs: Sequence[bytes]) -> list[SubmitResult]:
        return await self.node.submit_many(txs)

    async def wait_txs(self, tx_ids: Sequence[bytes], timeout_s: float) -> list[TxInfo]:
        return await self.node.wait_many(tx_ids, timeout_s)

    async def tx_status(self, tx_id: bytes) -> TxInfo:
        return _tx_info(await self.node.tx_status(tx_id))

    async def block(self, height: int) -> BlockInfo:
        found = await self.node.block(height)
        if found is None:
            raise NotFound(f"no block at height {height} (the tip is "
                           f"{self.node.status().height})")
        return _block_info(found)

    async def block_by_hash(self, block_hash: bytes) -> BlockInfo:
        found = await self.node.block_by_hash(block_hash)
        if found is None:
            raise NotFound(f"no block with hash {block_hash.hex()}")
        return _block_info(found)

    async def account(self, address: bytes, height: int = 0, prove: bool = False) -> AccountInfo:
        try:
            return await self.node.account(address, height, prove)
        except QueryError as exc:  # a height above the tip, or one not served
            raise NotFound(str(exc)) from None

    async def status(self) -> NodeStatus:
        return self.node.status()

    async def query(self, request: QueryRequest) -> QueryResult:
        return await self.node.query(request)

    def subscribe_blocks(self) -> _Converted[finality.CommittedBlock, BlockInfo]:
        return _Converted(self.node.subscribe_blocks(), _block_info)

    def subscribe_tx(self, tx_id: bytes) -> _Converted[finality.TxStatus, TxInfo]:
        return _Converted(self.node.subscribe_tx(tx_id), _tx_info)

    def subscribe_events(self, address: bytes) -> _Converted[finality.AddressEvent, AddressEvent]:
        return _Converted(self.node.subscribe_events(address), _address_event)

    # --- the product page (core/rpc/page_methods.PageServices) ---------------------------

    async def mall_info(self) -> dict[str, Any]:
        return await self.node.read(self.page.info)

    async def mall_products(self, query: str, limit: int) -> dict[str, Any]:
        return await self.node.read(self.page.products, query, limit)

    async def mall_product(self, product_id: bytes) -> dict[str, Any]:
        return await self.node.read(self.page.product, product_id)

    async def mall_item_trace(self, item: str) -> dict[str, Any]:
        return await self.node.read(self.page.item_trace, item)


def page_files() -> Any:
    """Where the built product page lives: package data of chainmall.core (`make web`)."""
    return resources.files("chainmall.core").joinpath("rpc", "static")


def page_methods() -> MethodTable:
    """The node's JSON-RPC methods with the page's."""
    return add_page_methods(default_methods(RPC_WAIT_MS_DEFAULT))


def page_reader_over_cometbft(app: Application, cometbft_rpc_url: str,
                              light_store: Path | None = None,
                              alter_event: bytes | None = None) -> PageReader:
    """The page's reads on a CometBFT node: item histories anchored on the headers its light
    client verified from the genesis validators, its trust kept in `light_store` across
    restarts (docs/page.md section 3.6); `alter_event` the test-only switch
    (`alteration_from_env`)."""
    anchors = LightClientAnchors(CometRpc(cometbft_rpc_url), TrustRoot.from_genesis(app.genesis),
                                 store=light_store)
    return PageReader(app, alter_event=alter_event, anchors=anchors)


def rpc_config(config: Config) -> RpcConfig:
    """The RPC server's settings from the node's `[rpc]` section."""
    return RpcConfig(tcp=parse_listen(config.rpc.tcp), unix=config.rpc.unix or None,
                     http=parse_listen(config.rpc.http), token=config.rpc.token,
                     limits=RpcLimits.from_mapping(dict(config.rpc.limits)))


def rpc_frontend(config: Config) -> FrontendFactory:
    """The JSON-RPC server over a node, as `run_node` takes front ends."""
    settings = rpc_config(config)
    settings.check()  # a bad listener or a missing token stops `node start` before anything
    alter_event = alteration_from_env()  # a test-only switch: refused unless tests enable it

    def make(node: Node) -> Frontend:
        services = NodeRpcServices(node, PageReader(node.app, alter_event=alter_event))
        return RpcServer(services, settings, page_methods(), static_root=page_files())

    return make
