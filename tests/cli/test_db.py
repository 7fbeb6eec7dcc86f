"""`chainmall db`: check, export, import, info as real processes (exit codes, one-line errors)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import lmdb
import pytest
from chainmall.core.abci.app import ledger_machine
from chainmall.core.block import decode_block
from chainmall.core.genesis import make_genesis, write_genesis
from chainmall.core.keys import KeyPair
from chainmall.core.state.accounts import encode_transfer
from chainmall.core.store import Store, height_key
from chainmall.core.tx import sign_tx

CHAIN = "db-cli-test"
KEYS = [KeyPair.from_seed(bytes([i]) * 32) for i in range(1, 4)]
VALIDATOR = KeyPair.from_seed(b"v" * 32)
GENESIS = make_genesis(CHAIN, [(k.address, 1_000_000) for k in KEYS],
                       [(VALIDATOR.public_key, 1)], genesis_time_ms=1_000, fee_min=2)
BLOCKS = 4


def build_chain(path: Path) -> None:
    """BLOCKS blocks; block h holds one transfer per key."""
    with Store(path) as store:
        machine = ledger_machine(store, GENESIS)
        for height in range(1, BLOCKS + 1):
            txs = [sign_tx(key, CHAIN, 1, height - 1, 2, 1_000_000,
                           encode_transfer(KEYS[(i + 1) % len(KEYS)].address, 10 * height))
                   for i, key in enumerate(KEYS)]
            block = machine.build_block(txs, 2_000 + height, VALIDATOR.public_key)
            machine.finalize_block(block)
            machine.commit()


def run(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CHAINMALL_HOME": str(home)}
    env.pop("CHAINMALL_PASSPHRASE", None)
    return subprocess.run([sys.executable, "-m", "chainmall.cli", *args], capture_output=True,
                          text=True, env=env, stdin=subprocess.DEVNULL, timeout=120)


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "Traceback" not in result.stderr, result.stderr
    return last


@pytest.fixture
def node(tmp_path: Path) -> Path:
    directory = tmp_path / "node"
    directory.mkdir()
    write_genesis(directory / "genesis.json", GENESIS)
    build_chain(directory / "ledger")
    return directory


def test_info_check_export_import(tmp_path: Path, node: Path) -> None:
    info = run(tmp_path, "--json", "db", "info", "--data-dir", str(node))
    assert info.returncode == 0, info.stderr
    tip = json.loads(info.stdout)
    assert tip["chain_id"] == GENESIS.chain_id and tip["height"] == BLOCKS
    assert tip["map_size_bytes"] > 0

    check = run(tmp_path, "--json", "db", "check", "--data-dir", str(node))
    assert check.returncode == 0, check.stderr
    assert json.loads(check.stdout) == {"ok": True, "height": BLOCKS, "problems": []}

    archive = tmp_path / "chain.cma"
    exported = run(tmp_path, "db", "export", "--data-dir", str(node), str(archive))
    assert exported.returncode == 0, exported.stderr
    copy = tmp_path / "copy"
    imported = run(tmp_path, "--json", "db", "import", "--data-dir", str(copy), str(archive))
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout)["app_hash"] == tip["app_hash"]
    copied = json.loads(run(tmp_path, "--json", "db", "info", "--data-dir", str(copy)).stdout)
    assert copied == tip

    again = run(tmp_path, "db", "import", "--data-dir", str(copy), str(archive))
    assert "already initialised" in one_line_error(again)


def test_import_resumes_where_it_stopped(tmp_path: Path, node: Path) -> None:
    archive = tmp_path / "chain.cma"
    assert run(tmp_path, "db", "export", "--data-dir", str(node), str(archive)).returncode == 0
    # A data directory holding the first BLOCKS - 2 blocks (an import that stopped).
    partial = tmp_path / "partial"
    partial.mkdir()
    write_genesis(partial / "genesis.json", GENESIS)
    with Store(partial / "ledger") as store:
        machine = ledger_machine(store, GENESIS)
        with Store(node / "ledger") as source, source.reader() as view:
            for height in range(1, BLOCKS - 1):
                machine.finalize_block(decode_block(view.block(height)))
                machine.commit()
    refused = run(tmp_path, "db", "import", "--data-dir", str(partial), str(archive))
    assert "--resume" in one_line_error(refused)
    resumed = run(tmp_path, "--json", "db", "import", "--resume", "--data-dir", str(partial),
                  str(archive))
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["height"] == BLOCKS
    check = run(tmp_path, "--json", "db", "check", "--data-dir", str(partial))
    assert json.loads(check.stdout) == {"ok": True, "height": BLOCKS, "problems": []}


def test_import_of_a_corrupt_archive(tmp_path: Path, node: Path) -> None:
    archive = tmp_path / "chain.cma"
    assert run(tmp_path, "db", "export", "--data-dir", str(node), str(archive)).returncode == 0
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0x04
    archive.write_bytes(bytes(data))
    target = tmp_path / "copy"
    result = run(tmp_path, "db", "import", "--data-dir", str(target), str(archive))
    assert "trailer hash mismatch" in one_line_error(result)
    assert not target.exists()


def test_check_reports_a_tampered_block(tmp_path: Path, node: Path) -> None:
    env = lmdb.open(str(node / "ledger"), max_dbs=32, subdir=True)
    with env.begin(write=True) as txn:
        blocks = env.open_db(b"blocks", txn=txn)
        value = txn.get(height_key(2), db=blocks)
        txn.put(height_key(2), value[:-1] + bytes([value[-1] ^ 1]), db=blocks)
    env.close()
    human = run(tmp_path, "db", "check", "--data-dir", str(node))
    assert "block 2" in one_line_error(human)
    as_json = run(tmp_path, "--json", "db", "check", "--data-dir", str(node))
    assert as_json.returncode != 0
    report = json.loads(as_json.stdout)
    assert report["ok"] is False and report["height"] == BLOCKS and report["problems"]


def test_missing_data_dir_is_one_line_error(tmp_path: Path) -> None:
    result = run(tmp_path, "db", "check", "--data-dir", str(tmp_path / "nothing"))
    assert "no chain" in one_line_error(result)
