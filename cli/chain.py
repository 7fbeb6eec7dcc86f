"""`chainmall tx|account|block|status`: talk to a running node over its RPC.

Every command takes `--node ADDRESS` (`tcp://HOST:PORT`, `unix:/PATH`,
`http://HOST:PORT`, `ws://HOST:PORT/ws`; default `$CHAINMALL_NODE`, else
tcp://127.0.0.1:8645) and `--token` (`$CHAINMALL_RPC_TOKEN`) for a node that
requires one. With the root `--json`, each prints the RPC's own JSON
(docs/rpc.md). A node that cannot be reached is one line:
`error: cannot reach the node at ...`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from chainmall.core.address import decode_address, encode_address
from chainmall.core.constants import RPC_WAIT_MS_DEFAULT, RPC_WAIT_MS_MAX, TX_TYPE_TRANSFER, U64_MAX
from chainmall.core.errors import ChainmallError, InvalidAddress, KeyStoreError, error_class
from chainmall.core.keystore import KeyStore
from chainmall.core.rpc import codec
from chainmall.core.rpc.client import BlockingClient
from chainmall.core.rpc.config import NODE_ADDRESS_DEFAULT
from chainmall.core.rpc.services import TxInfo, TxState
from chainmall.core.state.accounts import encode_transfer
from chainmall.core.tx import sign_tx

from .context import Context
from .keys import read_passphrase

NODE_ENV = "CHAINMALL_NODE"
TOKEN_ENV = "CHAINMALL_RPC_TOKEN"
TX_EXPIRY_BLOCKS_DEFAULT = 1_000  # a tx sent now may be included up to this many blocks ahead

F = TypeVar("F", bound=Callable[..., object])


def node_options(function: F) -> F:
    """`--node` and `--token`, shared by every command that talks to a node."""
    function = click.option(
        "--token", envvar=TOKEN_ENV, default="", show_default=False,
        help=f"Bearer token of a node that requires one [env: {TOKEN_ENV}].",
    )(function)
    return click.option(
        "--node", "node_address", envvar=NODE_ENV, default=NODE_ADDRESS_DEFAULT,
        show_default=True,
        help=f"Node RPC address: tcp://HOST:PORT, unix:/PATH, http://HOST:PORT [env: {NODE_ENV}].",
    )(function)


def _connect(node_address: str, token: str) -> BlockingClient:
    return BlockingClient(node_address, token)


def _address_argument(obj: Context, text: str) -> bytes:
    """`cm1...` text, or the name of a key in the key store."""
    try:
        return decode_address(text)
    except InvalidAddress as error:
        if text.startswith("cm1"):
            raise
        try:
            return decode_address(KeyStore(obj.home / "keys").show(text).address_text)
        except KeyStoreError:
            raise error from None


def _tx_line(info: TxInfo) -> str:
    tx_id = info.tx_id.hex()
    if info.state is not TxState.FINAL:
        return f"tx {tx_id}: {info.state.value}"
    outcome = "ok" if info.code == 0 else f"failed: {codec.error_name(info.code)} ({info.code})"
    return f"tx {tx_id}: final at height {info.height} (index {info.index}): {outcome}"


def _fail_if_failed(info: TxInfo) -> None:
    """A final tx whose receipt is an error ends the command with that error."""
    if info.state is TxState.FINAL and info.code != 0:
        try:
            cls = error_class(info.code)
        except KeyError:
            cls = ChainmallError
        raise cls(f"tx {info.tx_id.hex()} failed at height {info.height}: "
                  f"{codec.error_name(info.code)}: {info.log or 'no detail'}")


# --- status ----------------------------------------------------------------------------------


@click.command()
@node_options
@click.pass_obj
def status(obj: Context, node_address: str, token: str) -> None:
    """The node's height, app hash, mempool, version and validator."""
    with _connect(node_address, token) as client:
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
    raw_address = _address_argument(obj, address)
    with _connect(node_address, token) as client:
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
    with _connect(node_address, token) as client:
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
@click.option("--from", "sender", required=True, metavar="KEY",
              help="Name of the sending key in the key store.")
@click.option("--to", "recipient", required=True, metavar="ADDRESS",
              help="Recipient: cm1... address or a key name.")
@click.option("--amount", type=click.IntRange(0, U64_MAX), required=True,
              help="Amount in base units.")
@click.option("--fee", type=click.IntRange(0, U64_MAX), default=0, show_default=True,
              help="Fee in base units (at least the chain's fee_min).")
@click.option("--nonce", type=click.IntRange(0, U64_MAX), default=None,
              help="The sender's nonce [default: fetched from the node].")
@click.option("--expiry-height", type=click.IntRange(0, U64_MAX), default=None,
              help=f"Last height the tx may be included at [default: the node's height + "
                   f"{TX_EXPIRY_BLOCKS_DEFAULT}].")
@click.option("--no-wait", is_flag=True, help="Return once admitted, without waiting for finality.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(0.1, RPC_WAIT_MS_MAX / 1000),
              default=RPC_WAIT_MS_DEFAULT / 1000, show_default=True,
              help="Seconds to wait for finality.")
@click.option("--key-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Key directory [default: HOME/keys].")
@click.option("--passphrase-file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Passphrase of an encrypted key (else $CHAINMALL_PASSPHRASE or a prompt).")
@node_options
@click.pass_obj
def tx_send(obj: Context, sender: str, recipient: str, amount: int, fee: int, nonce: int | None,
            expiry_height: int | None, no_wait: bool, timeout_s: float, key_dir: Path | None,
            passphrase_file: Path | None, node_address: str, token: str) -> None:
    """Sign a transfer with key KEY and submit it; wait until it is final unless --no-wait."""
    store = KeyStore(key_dir or obj.home / "keys")
    passphrase = None
    if store.show(sender).encrypted:
        passphrase = read_passphrase(passphrase_file, confirm=False)
    keypair = store.load(sender, passphrase)
    to_address = _address_argument(obj, recipient)
    with _connect(node_address, token) as client:
        current = client.status()
        if nonce is None:
            nonce = client.account(keypair.address).nonce
        if expiry_height is None:
            expiry_height = min(U64_MAX, current.height + TX_EXPIRY_BLOCKS_DEFAULT)
        signed = sign_tx(keypair, current.chain_id, TX_TYPE_TRANSFER, nonce, fee, expiry_height,
                         encode_transfer(to_address, amount))
        if no_wait:
            tx_id = client.submit_tx(signed.encode())
            info = TxInfo(tx_id, TxState.PENDING, tx=signed.encode())
            obj.emit(f"tx {tx_id.hex()}: submitted (not waiting for finality)",
                     codec.tx_json(info))
            return
        info = client.submit_tx_wait(signed.encode(), timeout_s)
    obj.emit(_tx_line(info), codec.tx_json(info))
    _fail_if_failed(info)


@tx.command("show")
@click.argument("tx_id")
@node_options
@click.pass_obj
def tx_show(obj: Context, tx_id: str, node_address: str, token: str) -> None:
    """A tx's status and, once final, its height, result and events."""
    raw_id = codec.parse_hex(tx_id.lower(), "tx id", 32)
    with _connect(node_address, token) as client:
        data = client.call("tx_get", {"tx_id": raw_id.hex()})
    info = codec.tx_info_from_json(data)
    lines = [_tx_line(info)]
    for event in info.events:
        attributes = " ".join(f"{key}={value}" for key, value in event.attributes)
        lines.append(f"  {event.type}: {attributes}")
    obj.emit("\n".join(lines), data)
