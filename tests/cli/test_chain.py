"""`chainmall tx|account|block|status` against a fake node running in its own process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chainmall.cli.main import cli
from chainmall.core.keystore import KeyStore
from click.testing import CliRunner, Result

BALANCE = 10**9


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with keys alice (plain, funded), bob (plain) and carol (encrypted)."""
    path = tmp_path_factory.mktemp("home")
    store = KeyStore(path / "keys")
    store.create("alice")
    store.create("bob")
    store.create("carol", passphrase="hunter2")
    return path


@pytest.fixture(scope="module")
def node(home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A fake node (TCP, Unix, HTTP) where alice and carol have BALANCE."""
    store = KeyStore(home / "keys")
    socket_path = tmp_path_factory.mktemp("node") / "node.sock"
    args = [sys.executable, "-m", "chainmall.core.rpc.testing", "--tcp", "127.0.0.1:0",
            "--unix", str(socket_path), "--http", "127.0.0.1:0", "--block-ms", "30"]
    for name in ("alice", "carol"):
        args += ["--balance", f"{store.show(name).address_text}={BALANCE}"]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    addresses = json.loads(process.stdout.readline())
    yield addresses
    process.terminate()
    process.wait(10)
    process.stdout.close()


def invoke(home: Path, node: dict[str, Any], *args: str, transport: str = "tcp",
           env: dict[str, str] | None = None) -> Result:
    runner = CliRunner(env={"CHAINMALL_HOME": str(home), "CHAINMALL_PASSPHRASE": "",
                            "CHAINMALL_NODE": node[transport], **(env or {})})
    return runner.invoke(cli, list(args))


def invoke_json(home: Path, node: dict[str, Any], *args: str, **kwargs: Any) -> Any:
    result = invoke(home, node, "--json", *args, **kwargs)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def address(home: Path, name: str) -> str:
    return KeyStore(home / "keys").show(name).address_text


@pytest.mark.parametrize("transport", ["tcp", "unix", "http"])
def test_send_and_read_back(home: Path, node: dict[str, Any], transport: str) -> None:
    before = invoke_json(home, node, "account", "show", "bob", transport=transport)
    sent = invoke_json(home, node, "tx", "send", "--from", "alice", "--to", "bob",
                       "--amount", "250", "--fee", "3", transport=transport)
    assert sent["status"] == "final" and sent["code"] == 0
    assert sent["decoded"]["transfer"] == {"to": address(home, "bob"), "amount": "250"}
    after = invoke_json(home, node, "account", "show", address(home, "bob"), transport=transport)
    assert int(after["balance"]) == int(before["balance"]) + 250
    shown = invoke_json(home, node, "block", "show", str(sent["height"]), "--txs",
                        transport=transport)
    assert sent["tx_id"] in shown["tx_ids"] and shown["commit"]["signatures"]
    by_hash = invoke_json(home, node, "block", "show", shown["hash"], transport=transport)
    assert by_hash["height"] == shown["height"]
    looked_up = invoke_json(home, node, "tx", "show", sent["tx_id"], transport=transport)
    assert looked_up["height"] == sent["height"]
    status = invoke_json(home, node, "status", transport=transport)
    assert status["chain_id"] == "test-chain" and status["height"] >= sent["height"]


def test_human_output(home: Path, node: dict[str, Any]) -> None:
    sent = invoke(home, node, "tx", "send", "--from", "alice", "--to", "bob", "--amount", "1")
    assert sent.exit_code == 0, sent.output
    assert sent.output.startswith("tx ") and ": ok" in sent.output
    assert "balance:" in invoke(home, node, "account", "show", "alice").output
    assert "commit:      1 signature(s)" in invoke(home, node, "block", "show").output
    assert "chain id:   test-chain" in invoke(home, node, "status").output


def test_no_wait_and_explicit_nonce(home: Path, node: dict[str, Any]) -> None:
    nonce = int(invoke_json(home, node, "account", "show", "alice")["nonce"])
    first = invoke_json(home, node, "tx", "send", "--from", "alice", "--to", "bob",
                        "--amount", "1", "--no-wait")
    assert first["status"] == "pending" and first["decoded"]["nonce"] == str(nonce)
    second = invoke_json(home, node, "tx", "send", "--from", "alice", "--to", "bob",
                         "--amount", "1", "--nonce", str(nonce + 1))
    assert second["status"] == "final"
    replay = invoke(home, node, "tx", "send", "--from", "alice", "--to", "bob", "--amount", "1",
                    "--nonce", str(nonce))
    assert replay.exit_code == 1 and replay.output.startswith("error: ")


def test_failed_transfer_is_final_but_exits_1(home: Path, node: dict[str, Any]) -> None:
    result = invoke(home, node, "--json", "tx", "send", "--from", "alice", "--to", "bob",
                    "--amount", str(BALANCE * 10))
    assert result.exit_code == 1
    printed, error = result.output.rsplit("}\n", 1)
    assert json.loads(printed + "}")["error"] == "InsufficientBalance"
    assert error.startswith("error: tx ") and "InsufficientBalance" in error


def test_encrypted_key_needs_its_passphrase(home: Path, node: dict[str, Any]) -> None:
    args = ("tx", "send", "--from", "carol", "--to", "bob", "--amount", "5")
    assert "passphrase is needed" in invoke(home, node, *args).output
    result = invoke(home, node, "--json", *args, env={"CHAINMALL_PASSPHRASE": "hunter2"})
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["status"] == "final"


def test_bad_input_is_one_line(home: Path, node: dict[str, Any]) -> None:
    for args in (("account", "show", "cm1notanaddress"), ("account", "show", "nobody"),
                 ("block", "show", "99999"), ("block", "show", "zz"), ("tx", "show", "12"),
                 ("tx", "send", "--from", "nobody", "--to", "bob", "--amount", "1")):
        result = invoke(home, node, *args)
        assert result.exit_code == 1, args
        assert result.output.startswith("error: ") and result.output.count("\n") == 1, args


def test_unreachable_node_as_a_user_sees_it(home: Path, tmp_path: Path) -> None:
    environment = {**os.environ, "CHAINMALL_HOME": str(home),
                   "CHAINMALL_NODE": f"unix:{tmp_path}/absent.sock"}
    for args in (["status"], ["account", "show", "alice", "--node", "tcp://127.0.0.1:1"],
                 ["block", "show", "--node", "http://127.0.0.1:1"]):
        result = subprocess.run([sys.executable, "-m", "chainmall.cli", *args],
                                capture_output=True, text=True, env=environment, timeout=60)
        assert result.returncode == 1
        assert result.stderr.startswith("error: cannot reach the node at "), result.stderr
        assert result.stderr.count("\n") == 1 and result.stdout == ""


def test_help(home: Path, node: dict[str, Any]) -> None:
    for args in (["tx", "send", "--help"], ["account", "show", "--help"],
                 ["block", "show", "--help"], ["status", "--help"], ["tx", "show", "--help"]):
        result = invoke(home, node, *args)
        assert result.exit_code == 0 and "--node" in result.output
