"""The `chainmall` command end to end: real processes for exit codes, CliRunner for output."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from chainmall.cli.main import cli, package_version
from click.testing import CliRunner
from terminal import run_on_terminal


def run(home: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the installed CLI in a child process, as a user would."""
    inherited = {k: v for k, v in os.environ.items() if k != "CHAINMALL_PASSPHRASE"}
    full_env = {**inherited, "CHAINMALL_HOME": str(home), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "chainmall.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


@pytest.fixture
def runner(tmp_path: Path) -> CliRunner:
    return CliRunner(env={"CHAINMALL_HOME": str(tmp_path), "CHAINMALL_PASSPHRASE": ""})


def test_version(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert package_version() in result.output


def test_every_command_has_help(runner: CliRunner) -> None:
    for args in (["--help"], ["keys", "--help"], ["keys", "new", "--help"], ["doctor", "--help"],
                 ["demo", "--help"]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, args
        assert "Usage:" in result.output


def test_keys_new_show_list(tmp_path: Path, runner: CliRunner) -> None:
    created = runner.invoke(cli, ["--json", "keys", "new", "alice"])
    assert created.exit_code == 0, created.output
    alice = json.loads(created.output)
    assert alice["address"].startswith("cm1") and not alice["encrypted"]
    key_files = list((tmp_path / "keys").iterdir())
    assert len(key_files) == 1
    assert stat.S_IMODE(key_files[0].stat().st_mode) == 0o600

    shown = json.loads(runner.invoke(cli, ["--json", "keys", "show", "alice"]).output)
    assert shown == alice
    assert runner.invoke(cli, ["keys", "new", "bob"]).exit_code == 0
    listed = json.loads(runner.invoke(cli, ["--json", "keys", "list"]).output)
    assert [k["name"] for k in listed] == ["alice", "bob"]
    human = runner.invoke(cli, ["keys", "list"]).output
    assert "alice" in human and alice["address"] in human


def test_encrypted_key_with_passphrase_file(tmp_path: Path, runner: CliRunner) -> None:
    secret = tmp_path / "pass.txt"
    secret.write_text("correct horse battery staple\n")
    args = ["--json", "keys", "new", "vault", "--passphrase-file", str(secret)]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["encrypted"] is True
    key_text = next((tmp_path / "keys").iterdir()).read_text()
    assert "correct horse" not in key_text


def test_errors_are_one_line_with_nonzero_exit(tmp_path: Path) -> None:
    missing = run(tmp_path, "keys", "show", "nobody")
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: ")
    assert len(missing.stderr.strip().splitlines()) == 1
    assert "Traceback" not in missing.stderr

    assert run(tmp_path, "keys", "new", "carol").returncode == 0
    taken = run(tmp_path, "keys", "new", "carol")
    assert taken.returncode == 1 and len(taken.stderr.strip().splitlines()) == 1

    bad_name = run(tmp_path, "keys", "new", "Not A Name!")
    assert bad_name.returncode == 1 and bad_name.stderr.startswith("error: ")

    no_tty = run(tmp_path, "keys", "new", "dave", "--encrypt")
    assert no_tty.returncode == 1 and "passphrase" in no_tty.stderr



@pytest.mark.parametrize("args", [
    ("keys", "frobnicate"),          # no such command
    ("doctor", "--jsn"),             # no such option
    ("keys", "show"),                # missing argument
    ("demo", "--txs", "0"),          # a value click refuses
    ("--home",),                     # a root option without its value
])
def test_usage_errors_are_one_line_with_exit_2(tmp_path: Path, args: tuple[str, ...]) -> None:
    # The README: a usage error is one line on stderr and exit status 2 (click's convention).
    result = run(tmp_path, *args)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr


def test_json_is_accepted_after_the_sub_command(tmp_path: Path) -> None:
    before = run(tmp_path, "--json", "doctor")
    after = run(tmp_path, "doctor", "--json")
    assert after.returncode == 0, after.stderr
    assert json.loads(after.stdout)["checks"] == json.loads(before.stdout)["checks"]
    assert run(tmp_path, "keys", "new", "erin").returncode == 0
    listed = run(tmp_path, "keys", "list", "--json")
    assert [k["name"] for k in json.loads(listed.stdout)] == ["erin"]
    missing = run(tmp_path, "db", "info", "--json")  # the error stays one line
    assert missing.returncode == 1 and len(missing.stderr.strip().splitlines()) == 1


def test_debug_shows_traceback(tmp_path: Path) -> None:
    result = run(tmp_path, "--debug", "keys", "show", "nobody")
    assert result.returncode != 0
    assert "Traceback" in result.stderr


@pytest.mark.parametrize("pure", ["0", "1"], ids=["kernels", "pure-python"])
def test_doctor_passes_on_both_paths(tmp_path: Path, pure: str) -> None:
    result = run(tmp_path, "--json", "doctor", env={"CHAINMALL_PURE": pure})
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert set(report["checks"].values()) == {"ok"}
    in_use = {k["name"]: k["in_use"] for k in report["kernels"]}
    if pure == "1":
        assert set(in_use.values()) == {"reference"}
    else:
        assert all(k["compiled"] for k in report["kernels"]), report["kernels"]
        assert set(in_use.values()) == {"kernel"}


@pytest.mark.parametrize("pure", ["0", "1"], ids=["kernels", "pure-python"])
def test_demo_builds_validates_and_proves(tmp_path: Path, pure: str) -> None:
    args = ("--json", "demo", "--txs", "64", "--blocks", "2")
    result = run(tmp_path, *args, env={"CHAINMALL_PURE": pure})
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["accepted"] == 64
    assert report["height"] == 2
    assert report["last_block_successful_txs"] == 64
    assert report["account_proof_verifies"] is True
    assert report["rejected"] == {"BadSignature": 1, "TxExpired": 1, "WrongChain": 1}
    assert report["proof_verifies"] is True
    assert report["tampered_proof_verifies"] is False
    assert report["block_round_trip"] is True
    assert report["forged_balance_verifies"] is False
    assert report["passed"] is True and set(report["steps"].values()) == {True}
    # Run again: the demo recreates its own data directory and reaches the same state.
    again = json.loads(run(tmp_path, *args, env={"CHAINMALL_PURE": pure}).stdout)
    assert again["state_root"] == report["state_root"]


def test_demo_with_one_tx_tampers_with_what_matters(tmp_path: Path) -> None:
    # A one-tx block's Merkle proof is empty: flipping a proof hash is impossible, so the
    # demo forges the tx id instead, and that must be rejected.
    result = run(tmp_path, "--json", "demo", "--txs", "1", "--blocks", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["proof_length"] == 0 and report["tampered"] == ["tx id"]
    assert report["proof_verifies"] is True and report["tampered_proof_verifies"] is False
    two = json.loads(run(tmp_path, "--json", "demo", "--txs", "2", "--blocks", "1").stdout)
    assert two["tampered"] == ["proof hash", "tx id"] and not two["tampered_proof_verifies"]


def test_demo_says_what_it_proves_where_its_data_is_and_what_to_run_next(
        tmp_path: Path) -> None:
    result = run(tmp_path, "demo", "--txs", "4", "--blocks", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert "faulty on purpose" in result.stdout
    assert sum(line.strip().startswith("proves: ") for line in lines) == 6
    assert lines[-3] == ("passed: all 6 steps (genesis, validation, execution, round trip, "
                         "tx proof, state proof)")
    assert lines[-2].startswith(f"data: {tmp_path / 'chainmall-demo'} ")
    assert lines[-1].startswith("next: chainmall db info ")
    # The command it suggests, as a newcomer types it, works and shows the demo's chain.
    info = run(tmp_path, "--json", "db", "info")
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["chain_id"] == "chainmall-demo"
    assert json.loads(info.stdout)["height"] == 2
    assert run(tmp_path, "db", "check").returncode == 0
    # With another chain beside it, the demo names its own.
    assert run(tmp_path, "init", "--chain-id", "shop").returncode == 0
    again = run(tmp_path, "demo", "--txs", "4", "--blocks", "1")
    assert again.stdout.strip().splitlines()[-1].startswith(
        "next: chainmall db info --chain-id chainmall-demo")
    ambiguous = run(tmp_path, "db", "info")
    assert ambiguous.returncode == 1 and "--chain-id" in ambiguous.stderr
    elsewhere = run(tmp_path, "demo", "--txs", "4", "--blocks", "1", "--data-dir",
                    str(tmp_path / "d"))
    suggested = elsewhere.stdout.strip().splitlines()[-1]
    assert suggested.startswith(f"next: chainmall db info --data-dir {tmp_path / 'd'}")


def test_demo_shows_progress_on_a_terminal_only(tmp_path: Path) -> None:
    shown = run_on_terminal(tmp_path, "demo", "--txs", "16", "--blocks", "3")
    assert shown.returncode == 0, shown.terminal
    assert "demo: blocks" in shown.terminal and " blocks/s]" in shown.terminal
    assert "passed: all 6 steps" in shown.stdout
    quiet = run_on_terminal(tmp_path, "--json", "demo", "--txs", "16", "--blocks", "3")
    assert quiet.returncode == 0 and quiet.terminal == ""
    assert json.loads(quiet.stdout)["passed"] is True


def test_demo_refuses_a_data_dir_that_is_not_demo_data(tmp_path: Path) -> None:
    assert run(tmp_path, "init", "--chain-id", "mine").returncode == 0
    result = run(tmp_path, "demo", "--txs", "8", "--blocks", "1",
                 "--data-dir", str(tmp_path / "mine"))
    assert result.returncode == 1 and "not demo data" in result.stderr
    assert (tmp_path / "mine" / "genesis.json").is_file()


def test_init_creates_a_ledger_once(tmp_path: Path) -> None:
    first = run(tmp_path, "--json", "init")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["height"] == 0 and report["chain_id"] == "local"
    assert (tmp_path / "local" / "ledger" / "data.mdb").is_file()
    again = run(tmp_path, "init")
    assert again.returncode == 1 and "already initialised" in again.stderr
    bad = run(tmp_path, "init", "--chain-id", "other", "--balance", "cm1nope=5")
    assert bad.returncode == 1 and bad.stderr.startswith("error: ")
    assert not (tmp_path / "other" / "genesis.json").exists()


BLOCK_KERNEL_IMPORT = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "chainmall.ext._merkle":
            raise ImportError("simulated: extension not built")
        return None
sys.meta_path.insert(0, Block())
sys.argv = ["chainmall", "--json", "doctor"]
from chainmall.cli.main import cli
cli()
"""


def test_doctor_reports_a_missing_kernel_and_the_fallback_works(tmp_path: Path) -> None:
    env = {**os.environ, "CHAINMALL_HOME": str(tmp_path), "CHAINMALL_PURE": "0"}
    result = subprocess.run(
        [sys.executable, "-c", BLOCK_KERNEL_IMPORT],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    merkle_kernel = next(k for k in report["kernels"] if k["name"] == "_merkle")
    assert merkle_kernel == {
        "name": "_merkle",
        "compiled": False,
        "in_use": "reference",
        "detail": "extension not built: pure-Python reference in use (run `make setup`)",
    }
    assert report["checks"]["merkle"] == "ok"
