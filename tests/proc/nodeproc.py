"""Real node processes for the tests: a funded chain, `chainmall node start`, its address.

`make_chain` writes a genesis funding `ACCOUNTS` keys and initialises a data
directory with `chainmall init` (the validator key goes to HOME/keys).
`NodeProcess` (core/node/process.py) runs `chainmall node start` on a free
port.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from chainmall.core.constants import TX_TYPE_TRANSFER
from chainmall.core.genesis import make_genesis, write_genesis
from chainmall.core.keys import KeyPair
from chainmall.core.keystore import KeyStore
from chainmall.core.node.process import NodeProcess
from chainmall.core.state.accounts import encode_transfer
from chainmall.core.tx import Tx, sign_tx

CHAIN = "proc-node"
ACCOUNTS = 40
VALIDATOR_SEED = b"\x07" * 32


def keys() -> list[KeyPair]:
    return [KeyPair.from_seed(i.to_bytes(32, "big")) for i in range(1, ACCOUNTS + 1)]


def cli(home: Path, *args: str, timeout_s: float = 300.0) -> subprocess.CompletedProcess:
    """Run the installed CLI in a child process."""
    env = {**os.environ, "CHAINMALL_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "chainmall.cli", *args], capture_output=True,
                          text=True, env=env, stdin=subprocess.DEVNULL, timeout=timeout_s)


def make_chain(home: Path, data: Path) -> None:
    """A data directory whose genesis funds `keys()` and whose validator key is in HOME."""
    validator = KeyPair.from_seed(VALIDATOR_SEED)
    KeyStore(home / "keys").import_seed("validator", validator.seed)
    genesis = make_genesis(CHAIN, [(k.address, 10**12) for k in keys()],
                           [(validator.public_key, 1)], genesis_time_ms=1_000, fee_min=1)
    home.mkdir(parents=True, exist_ok=True)
    write_genesis(home / "genesis.json", genesis)
    result = cli(home, "init", "--data-dir", str(data), "--genesis", str(home / "genesis.json"))
    assert result.returncode == 0, result.stderr


def transfers(count: int, start_nonce: int = 0, senders: int = ACCOUNTS) -> list[Tx]:
    """`count` signed transfers, round-robin over the first `senders` keys."""
    pairs = keys()
    txs = []
    for i in range(count):
        sender = pairs[i % senders]
        to = pairs[(i + 1) % len(pairs)].address
        txs.append(sign_tx(sender, CHAIN, TX_TYPE_TRANSFER, start_nonce + i // senders, 1,
                           10**9, encode_transfer(to, 1 + i % 7)))
    return txs


__all__ = ["ACCOUNTS", "CHAIN", "NodeProcess", "cli", "keys", "make_chain", "transfers"]
