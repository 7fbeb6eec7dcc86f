"""`chainmall tx|account|block|status`: talk to a running node over its RPC.

Every command takes `--node ADDRESS` (`tcp://HOST:PORT`, `unix:/PATH`,
`http://HOST:PORT`, `ws://HOST:PORT/ws`; default `$CHAINMALL_NODE`, else
tcp://127.0.0.1:8645) and `--token` (`$CHAINMALL_RPC_TOKEN`) for a node that
requires one. With the root `--json`, each prints the RPC's own JSON
(docs/rpc.md). A node that cannot be reached is one line:
`error: cannot reach the node at ...`.
"""

from __future__ import annotations

from typing import Any

import click
from chainmall.core.address import encode_address
from chainmall.core.constants import TX_TYPE_TRANSFER, U64_MAX
from chainmall.core.rpc import codec
from chainmall.core.state.accounts import encode_transfer

from .context import Context
from .node_client import (
    TxOptions,
    address_argument,
    connect,
    node_options,
    send_tx,
    tx_line,
    tx_options,
)

__all__ = ["account", "block", "node_options", "status", "tx"]  # node_options: see node_client


# --- status ----------------------------------------------------------------------------------


@click.command()
@node_options
@click.pass_obj
def status(obj: Context, node_address: str, token: str) -> None:
    """The node's height, app hash, mempool, version and validator."""
    with connect(node_address, token) as client:
        data = client.call("status")
    current = codec.status_from_json(data)
    validator = data["validator"]["address"] if data.get("validator") else "none"
    human = "\n".join([
        f"node:       {node_address}",
        f"chain id:   {current.chain_id}",
        f"height:     {current.height}",
        f"app hash:   {current.app_hash.hex()}",
        f"block hash: {current.block_hash.hex()}",
        f"mempool:    {current.mempool_txs} txs, {current.mempool_bytes} bytes",
        f"version:    {current.version}",
        f"validator:  {validator}",
    ])
    obj.emit(human, data)


# --- account -------------------------------------------------------------------------------


@click.group()
def account() -> None:
    """Read accounts from a node."""


@account.command("show")
@click.argument("address")
@click.option("--height", type=click.IntRange(0), default=0, show_default=True,
              help="Read at this committed height (0: the latest).")
@click.option("--prove", is_flag=True, help="Include the state proof of the account.")
@node_options
@click.pass_obj
def account_show(obj: Context, address: str, height: int, prove: bool, node_address: str,
                 token: str) -> None:
    """Balance and next nonce of ADDRESS (cm1... or a key name) at a height."""
    raw_address = address_argument(obj, address)
    with connect(node_address, token) as client:
        data = client.call("account_get", {"address": encode_address(raw_address),
                                           "height": height, "prove": prove})
    info = codec.account_from_json(data)
    lines = [
        f"address:    {encode_address(info.address)}",
        f"balance:    {info.balance}",
        f"nonce:      {info.nonce}",
        f"exists:     {'yes' if info.exists else 'no'}",
        f"height:     {info.height}",
        f"state root: {info.state_root.hex()}",
    ]
    if info.proof:
        lines.append(f"proof:      {info.proof.hex()}")
    obj.emit("\n".join(lines), data)


# --- block -----------------------------------------------------------------------------------


@click.group()
def block() -> None:
    """Read blocks from a node."""


@block.command("show")
@click.argument("which", required=False, metavar="[HEIGHT|HASH]")
@click.option("--txs", is_flag=True, help="Include the raw txs.")
@node_options
@click.pass_obj
def block_show(obj: Context, which: str | None, txs: bool, node_address: str,
               token: str) -> None:
    """A block by height or hash (the latest without either), with its commit."""
    params: dict[str, Any] = {"txs": txs}
    if which is not None:
        if which.isdigit() and len(which) < 20:
            params["height"] = int(which)
        else:
            codec.parse_hex(which.lower(), "block hash", 32)  # a clear error for a typo
            params["hash"] = which.lower()
    with connect(node_address, token) as client:
        data = client.call("block_get", params)
    view = codec.block_view_from_json(data)  # checks the header hashes to the claimed hash
    header = view.header
    signers = len(view.commit.signatures) if view.commit else 0
    lines = [
        f"height:      {header.height}",
        f"hash:        {view.hash.hex()}",
        f"prev hash:   {header.prev_hash.hex()}",
        f"time (ms):   {header.timestamp_ms}",
        f"proposer:    {header.proposer.hex()}",
        f"txs:         {header.tx_count}",
        f"tx root:     {header.tx_root.hex()}",
        f"state root:  {header.state_root.hex()}",
        f"commit:      {signers} signature(s)" if view.commit else "commit:      none",
    ]
    for tx_id, code in zip(view.tx_ids, view.receipts, strict=False):
        lines.append(f"  {tx_id.hex()}  {'ok' if code == 0 else codec.error_name(code)}")
    obj.emit("\n".join(lines), data)


# --- tx ------------------------------------------------------------------------------------------


@click.group()
def tx() -> None:
    """Send transactions to a node and look them up."""


@tx.command("send")
@click.option("--to", "recipient", required=True, metavar="ADDRESS",
              help="Recipient: cm1... address or a key name.")
@click.option("--amount", type=click.IntRange(0, U64_MAX), required=True,
              help="Amount in base units.")
@tx_options
@click.pass_obj
def tx_send(obj: Context, recipient: str, amount: int, tx: TxOptions) -> None:
    """Sign a transfer with key KEY and submit it; wait until it is final unless --no-wait."""
    to_address = address_argument(obj, recipient)
    send_tx(obj, tx, TX_TYPE_TRANSFER, encode_transfer(to_address, amount))


@tx.command("show")
@click.argument("tx_id")
@node_options
@click.pass_obj
def tx_show(obj: Context, tx_id: str, node_address: str, token: str) -> None:
    """A tx's status and, once final, its height, result and events."""
    raw_id = codec.parse_hex(tx_id.lower(), "tx id", 32)
    with connect(node_address, token) as client:
        data = client.call("tx_get", {"tx_id": raw_id.hex()})
    info = codec.tx_info_from_json(data)
    lines = [tx_line(info)]
    for event in info.events:
        attributes = " ".join(f"{key}={value}" for key, value in event.attributes)
        lines.append(f"  {event.type}: {attributes}")
    obj.emit("\n".join(lines), data)
