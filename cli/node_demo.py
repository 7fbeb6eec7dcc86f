"""`chainmall node demo`: a local node with a demo chain, fed through the RPC client.

`make run`'s main job. It (re)creates the demo's data directory (never any
other chain's), with a genesis funding eight demo accounts and a demo
validator key, starts the node in this process (the in-process engine and
the JSON-RPC server), then plays the demo scenario through the RPC client,
as an integrator would: the node refuses a badly signed tx, then takes a
stream of transfers with a progress line, refuses the replay of a committed
one, and proves an account against the state root. Then it plays the
silver-jewellery story (cli/story.py: a traced lot, rings, an assay, a
certified merchant, orders shipped and delivered) and prints the product
page's address of the ring a buyer received. Then it keeps serving, with its
addresses printed, until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import uvloop
from chainmall.core.address import encode_address
from chainmall.core.constants import TX_TYPE_TRANSFER
from chainmall.core.errors import ChainmallError, StoreAlreadyInitialised
from chainmall.core.genesis import VALIDATOR_SET_KEY, encode_validators
from chainmall.core.hashing import digest
from chainmall.core.keys import KeyPair
from chainmall.core.keystore import KeyStore
from chainmall.core.mall.storefront import item_page_path
from chainmall.core.node.app import open_application, serve
from chainmall.core.node.config import CONFIG_FILE, load_config, write_default_config
from chainmall.core.node.logs import setup_logging
from chainmall.core.node.node import Node
from chainmall.core.state.accounts import Account, account_key, encode_transfer
from chainmall.core.state.root import decode_proof, verify_proof
from chainmall.core.tx import Tx, sign_tx

from .context import Context, package_version
from .datadir import create_data_dir
from .story import SilverStory, story_genesis

CHAIN_ID = "chainmall-node-demo"
VALIDATOR_KEY = "node-demo-validator"
ACCOUNTS = 8
INITIAL_BALANCE = 10**12
FEE = 10
WINDOW_TXS = 256  # transfers in flight at once
PROGRESS_EVERY_S = 0.2


def _demo_key(label: bytes) -> KeyPair:
    """A demo key from its label (deterministic, so the demo's chain is the same every run)."""
    return KeyPair.from_seed(hashlib.sha256(b"chainmall node demo: " + label).digest())


def _account(index: int) -> KeyPair:
    return _demo_key(b"account %d" % index)


def _prepare(obj: Context, directory: Path) -> None:
    """Recreate the demo's data directory (any other chain's is refused) with its genesis,
    ledger and config.toml; make sure the demo validator key exists."""
    keys = KeyStore(obj.home / "keys")
    validator = _demo_key(b"validator")
    try:
        known = keys.show(VALIDATOR_KEY).public_key
    except ChainmallError:
        known = keys.import_seed(VALIDATOR_KEY, validator.seed).public_key
    if known != validator.public_key:
        raise StoreAlreadyInitialised(f"HOME/keys/{VALIDATOR_KEY} is not the demo's key; "
                                      "remove it or use another --home")
    genesis = story_genesis(CHAIN_ID, validator.public_key,
                            tuple((_account(i).address, INITIAL_BALANCE)
                                  for i in range(ACCOUNTS)), genesis_time_ms=0, fee_min=1)
    store, _, _ = create_data_dir(directory, genesis, command="chainmall node demo",
                                  replace_chain_id=CHAIN_ID)
    store.close()
    write_default_config(directory)


def _transfers(count: int, start_nonce: int) -> list[Tx]:
    keys = [_account(i) for i in range(ACCOUNTS)]
    return [sign_tx(keys[i % ACCOUNTS], CHAIN_ID, TX_TYPE_TRANSFER,
                    start_nonce + i // ACCOUNTS, FEE, 10**9,
                    encode_transfer(keys[(i + 1 + i // ACCOUNTS) % ACCOUNTS].address, 1 + i % 50))
            for i in range(count)]


async def play(address: str, count: int, say: Callable[[str], None]) -> None:
    """The demo scenario, through the RPC client at `address`."""
    from chainmall.core.rpc.client import RpcClient

    async with await RpcClient.connect(address) as client:
        status = await client.status()
        say(f"node at {address}: chain {status.chain_id}, height {status.height}, validator "
            f"{status.validator.hex()[:16]}...")
        first, *rest = _transfers(count + ACCOUNTS, 0)
        bad = bytearray(first.encode())
        bad[-1] ^= 1
        try:
            await client.submit_tx(bytes(bad))
        except ChainmallError as exc:
            say(f"  a badly signed tx is refused: {type(exc).__name__} ({exc.code})")
        info = await client.submit_tx_wait(first.encode())
        say(f"  a transfer is final in block {info.height} (receipt code {info.code})")
        try:
            await client.submit_tx(first.encode())
        except ChainmallError as exc:
            say(f"  its replay is refused: {type(exc).__name__} ({exc.code})")
        await _stream(client, rest[:count], say)
        status = await client.status()
        owner = _account(0).address
        account = await client.account(owner, prove=True)
        value = Account(account.balance, account.nonce).encode()  # what the leaf commits to
        proven = verify_proof(account.state_root, account_key(owner), value,
                              decode_proof(account.proof))
        say(f"  account {encode_address(owner)}: balance {account.balance}, nonce "
            f"{account.nonce}; its proof against state root {account.state_root.hex()[:16]}... "
            f"at height {account.height} {'verifies' if proven else 'DOES NOT verify'}")
        if not proven:
            raise ChainmallError("the account's proof does not verify")
        await play_story(client, say)


async def play_story(client: Any, say: Callable[[str], None]) -> SilverStory:
    """The silver-jewellery story through the RPC client: each batch's txs submitted in
    order, all final and successful before the next batch."""
    story = SilverStory(CHAIN_ID)
    batches = story.blocks()
    count = 0
    for batch in batches:
        infos = await asyncio.gather(*(client.submit_tx_wait(tx.encode()) for tx in batch))
        for tx, info in zip(batch, infos, strict=True):
            if info.code != 0:
                raise ChainmallError(f"story tx {tx.tx_id.hex()[:16]}... failed with code "
                                     f"{info.code}: {info.log}")
        count += len(batch)
    say(f"  the silver-jewellery story: {count} mall txs final (a lot, 12 rings, an assay, "
        "a certified merchant, two orders delivered)")
    return story


async def _stream(client: Any, txs: list[Tx], say: Callable[[str], None]) -> None:
    """Submit `txs` with WINDOW_TXS in flight, one progress line updated in place."""
    started = time.perf_counter()
    final = 0
    last_height = 0
    window = asyncio.Semaphore(WINDOW_TXS)

    async def one(tx: Tx) -> None:
        nonlocal final, last_height
        async with window:
            info = await client.submit_tx_wait(tx.encode())
            final += 1
            last_height = max(last_height, info.height)

    def progress(end: str = "") -> None:
        elapsed = max(time.perf_counter() - started, 1e-9)
        sys.stdout.write(f"\r  transfers final {final}/{len(txs)}, height {last_height}, "
                         f"{final / elapsed:,.0f} tx/s{end}")
        sys.stdout.flush()

    tasks = [asyncio.ensure_future(one(tx)) for tx in txs]
    while not all(task.done() for task in tasks):
        progress()
        await asyncio.sleep(PROGRESS_EVERY_S)
    for task in tasks:
        task.result()  # a failed transfer fails the demo
    progress("\n")


@click.command("demo")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help=f"Demo data directory [default: HOME/{CHAIN_ID}], recreated each run.")
@click.option("--txs", type=click.IntRange(1, 1_000_000), default=4_000, show_default=True,
              help="Transfers the scenario sends.")
@click.option("--rpc-tcp", default="127.0.0.1:8645", show_default=True,
              help="Where the node serves JSON-RPC (HOST:PORT; port 0: any free port).")
@click.option("--rpc-http", default="127.0.0.1:8646", show_default=True,
              help="Where the node serves JSON-RPC over HTTP/WebSocket and the product page "
                   "(HOST:PORT; port 0: any free port; \"\" for off).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
              default="warning", show_default=True, help="The node's log lines (stderr).")
@click.pass_obj
def demo(obj: Context, data_dir: Path | None, txs: int, rpc_tcp: str, rpc_http: str,
         log_level: str) -> None:
    """Run a local node on a demo chain, feed it the demo through the RPC client, then keep
    serving until Ctrl-C."""
    from chainmall.core.node.services import rpc_frontend  # the node serves through the RPC

    directory = data_dir or obj.home / CHAIN_ID
    _prepare(obj, directory)
    config = load_config(directory, directory / CONFIG_FILE,
                         {"rpc.tcp": rpc_tcp, "rpc.http": rpc_http, "log.level": log_level,
                          "node.validator_key": VALIDATOR_KEY})
    setup_logging(config.log.level, config.log.format)
    app = open_application(directory, package_version(), config.pruning.retain_heights,
                           command="chainmall node demo")
    try:
        node = Node(app, KeyStore(obj.home / "keys").load(VALIDATOR_KEY), config,
                    version=package_version())
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            status = runner.run(_run(node, rpc_frontend(config)(node), txs))
    finally:
        app.store.close()
    sys.exit(status)


async def _run(node: Node, server: Any, txs: int) -> int:
    """Serve the node until Ctrl-C; the scenario runs once it is ready."""
    demo_done: list[asyncio.Task[None]] = []

    def ready(addresses: dict[str, str]) -> None:
        address = addresses["tcp"]
        page = addresses.get("http")

        async def scenario() -> None:
            try:
                await play(address, txs, click.echo)
            except Exception as exc:  # the node keeps serving; say what went wrong
                click.echo(f"\nerror: the demo scenario failed: {exc}", err=True)
                return
            if page:
                vs = digest(encode_validators(node.app.genesis.validators), VALIDATOR_SET_KEY)
                click.echo(f"\nThe ring's history, checked in your browser:\n  "
                           f"{page}{item_page_path(SilverStory.featured_item, vs)}")
            click.echo(f"\nThe node keeps serving at {address} (chain {CHAIN_ID}). In "
                       f"another terminal: chainmall status --node {address}\n"
                       "Press Ctrl-C to stop it.")

        demo_done.append(asyncio.get_running_loop().create_task(scenario()))

    return await serve(node, [server], ready)
