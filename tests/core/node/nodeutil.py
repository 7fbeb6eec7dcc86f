"""Shared set-up of the in-process node tests: a chain, keys, transfers, a started node."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from chainmall.core.abci.app import Application
from chainmall.core.constants import TX_TYPE_TRANSFER
from chainmall.core.genesis import Genesis, make_genesis
from chainmall.core.keys import KeyPair
from chainmall.core.node.config import Config, load_config
from chainmall.core.node.node import Node
from chainmall.core.state.accounts import encode_transfer
from chainmall.core.store import Store
from chainmall.core.tx import sign_tx

CHAIN = "node-test"
KEYS = [KeyPair.from_seed(bytes([i]) * 32) for i in range(1, 9)]
VALIDATOR = KeyPair.from_seed(b"v" * 32)
BALANCE = 10**9


def genesis(fee_min: int = 1) -> Genesis:
    return make_genesis(CHAIN, [(k.address, BALANCE) for k in KEYS],
                        [(VALIDATOR.public_key, 1)], genesis_time_ms=1_000, fee_min=fee_min)


def transfer(key: KeyPair, nonce: int, amount: int = 5, fee: int = 1, expiry: int = 10**6,
             to: bytes | None = None) -> bytes:
    payload = encode_transfer(KEYS[-1].address if to is None else to, amount)
    return sign_tx(key, CHAIN, TX_TYPE_TRANSFER, nonce, fee, expiry, payload).encode()


BLOCK_WRITERS = ("inline", "thread", "process")
# The block writer `config` sets unless told (the tests that run in every mode set it).
block_writer = {"mode": "thread"}


def config(**flags: str) -> Config:
    """A fast test configuration: 20 ms blocks, 1 ms admission window, the block writer
    `block_writer["mode"]`, plus `flags` (setting key with dots as '__' -> text)."""
    values = {"node.block_interval_ms": "20", "mempool.admission_window_ms": "1",
              "node.block_writer": block_writer["mode"]}
    values.update({key.replace("__", "."): text for key, text in flags.items()})
    return load_config(environ={}, flags=values)


@contextlib.asynccontextmanager
async def running_node(path: Path, cfg: Config | None = None,
                       chain: Genesis | None = None) -> AsyncIterator[Node]:
    """A started node over a store at `path`; stopped and closed on exit."""
    with Store(path) as store:
        app = Application(store, chain or genesis(), version="test")
        node = Node(app, VALIDATOR, cfg or config(), version="test")
        await node.start()
        try:
            yield node
        finally:
            await node.stop()


def run(coro: object) -> object:
    """Run a coroutine on a fresh event loop (the tests use no asyncio plugin)."""
    return asyncio.run(coro)  # type: ignore[arg-type]
