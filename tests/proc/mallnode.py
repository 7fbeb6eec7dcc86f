"""A real node with the mall configured, and the `chainmall` CLI pointed at it.

`start_mall_node` writes a genesis with the mall section (a certifier, the IT
tax authority, arbitration parameters, short deadlines in block time), keys
for every named party in HOME/keys, initialises a data directory and starts
`chainmall node start` on free ports with empty blocks on (so deadlines fall
due while the chain is idle). `MallCli` runs `chainmall` commands in-process
against it (click's runner: no interpreter start per command) and parses
their JSON.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chainmall.cli.main import cli
from chainmall.core.genesis import MallParams, make_genesis, make_mall, write_genesis
from chainmall.core.keys import KeyPair
from chainmall.core.keystore import KeyStore
from chainmall.core.node.process import NodeProcess
from click.testing import CliRunner, Result
from nodeproc import cli as cli_process

CHAIN = "mall-cli"
FEE = 1
BALANCE = 10**9
BLOCK_INTERVAL_MS = 100
PARAMS = MallParams(
    merchant_bond_min=1_000, arbitrator_bond_min=500, commission_bps=100,
    tax_rate_max_bps=3_000, ship_timeout_ms=10_000, delivery_timeout_ms=300_000,
    confirm_timeout_ms=300_000, ruling_timeout_ms=300_000, panel_threshold=50_000,
    arbitration_fee_bps=300, slash_bps=2_000, dispute_rounds_max=3, fallback_buyer_bps=10_000)
POLL_DEADLINE_S = 60.0


def key(name: str) -> KeyPair:
    """A deterministic key per name."""
    return KeyPair.from_seed(name.encode().ljust(32, b".")[:32])


def start_mall_node(root: Path, names: list[str], certifier: str = "certifier",
                    authority: str = "agenzia") -> tuple[NodeProcess, Path]:
    """A running node whose genesis funds `names` (+ certifier, authority, validator); the
    HOME holding their keys."""
    home, data = root / "home", root / "data"
    everyone = sorted({*names, certifier, authority, "validator"})
    store = KeyStore(home / "keys")
    for name in everyone:
        store.import_seed(name, key(name).seed)
    mall = make_mall([(key(certifier).address, "Ufficio del saggio di Firenze")],
                     [("IT", key(authority).address, 2_200)], PARAMS)
    genesis = make_genesis(CHAIN, [(key(name).address, BALANCE) for name in everyone],
                           [(key("validator").public_key, 1)],
                           genesis_time_ms=time.time_ns() // 1_000_000 - 60_000, fee_min=FEE,
                           mall=mall)
    write_genesis(home / "genesis.json", genesis)
    result = cli_process(home, "init", "--data-dir", str(data), "--genesis",
                         str(home / "genesis.json"))
    assert result.returncode == 0, result.stderr
    node = NodeProcess(home, data, "--node-block-interval-ms", str(BLOCK_INTERVAL_MS),
                       "--node-empty-blocks", "true")
    node.ready()
    return node, home


class MallCli:
    """`chainmall` in-process, with HOME, the node address and the fee set."""

    def __init__(self, home: Path, node_address: str) -> None:
        self.home = home
        self.node_address = node_address
        self.runner = CliRunner(env={"CHAINMALL_HOME": str(home), "CHAINMALL_NODE": node_address,
                                     "CHAINMALL_FEE": str(FEE), "CHAINMALL_PASSPHRASE": ""})

    def run(self, *args: str) -> Result:
        return self.runner.invoke(cli, list(args))

    def json(self, *args: str) -> Any:
        """Run with --json; the parsed output (the command must succeed)."""
        result = self.run("--json", *args)
        assert result.exit_code == 0, (args, result.output)
        return json.loads(result.stdout)

    def text(self, *args: str) -> str:
        """Run; its standard output (the command must succeed)."""
        result = self.run(*args)
        assert result.exit_code == 0, (args, result.output)
        return result.stdout

    def error(self, *args: str, code: int = 1) -> str:
        """Run a command that must fail: exit `code`, one `error: ...` line on stderr."""
        result = self.run(*args)
        assert result.exit_code == code, (args, result.exit_code, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, result.stderr)
        return lines[0]

    def balance(self, name: str) -> int:
        return int(self.json("account", "show", name)["balance"])

    def poll(self, read: Callable[[], Any], until: Callable[[Any], bool],
             deadline_s: float = POLL_DEADLINE_S) -> Any:
        """Read until `until(value)` holds (AssertionError with the last value past the
        deadline): for what the chain does on its own (draws, time-outs)."""
        deadline = time.monotonic() + deadline_s
        while True:
            value = read()
            if until(value):
                return value
            assert time.monotonic() < deadline, f"not reached in {deadline_s} s: {value}"
            time.sleep(BLOCK_INTERVAL_MS / 1000)
