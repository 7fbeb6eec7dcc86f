"""`chainmall db`: check, export, import, info as real processes (exit codes, one-line errors)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import threading
from pathlib import Path

import blake3
import lmdb
import pytest
from chainmall.core.abci.app import ledger_machine
from chainmall.core.block import decode_block
from chainmall.core.genesis import make_genesis, write_genesis
from chainmall.core.keys import KeyPair
from chainmall.core.state.accounts import encode_transfer
from chainmall.core.store import Store, height_key
from chainmall.core.tx import sign_tx
from ledgers import downgrade_to_format_3
from terminal import run_on_terminal

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
    assert copied == {**tip, "data_dir": str(copy)}

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


def test_migrate_upgrades_a_format_3_ledger(tmp_path: Path, node: Path) -> None:
    """A format-3 ledger: every command says to migrate, in one line; `db migrate` upgrades
    it, `db check` then passes; a second migrate has nothing to do."""
    downgrade_to_format_3(node / "ledger")
    for args in (("db", "check"), ("db", "info")):
        assert "chainmall db migrate" in one_line_error(run(tmp_path, *args, "--data-dir",
                                                            str(node)))
    result = run(tmp_path, "--json", "db", "migrate", "--data-dir", str(node))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"data_dir": str(node), "height": BLOCKS,
                                         "migrated_from": 3, "format_version": 4}
    assert run(tmp_path, "db", "check", "--data-dir", str(node)).returncode == 0
    again = run(tmp_path, "db", "migrate", "--data-dir", str(node))
    assert again.returncode == 0 and "nothing to do" in again.stdout


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


def _put(ledger: Path, table: bytes, key: bytes, change) -> None:
    """Change the value of `key` in `table` (for the tree: in its staging part if there)."""
    names = ([b"tree_recent_%x" % (key[0] >> 4), b"tree_mid", b"tree"] if table == b"tree"
             else [table])
    env = lmdb.open(str(ledger), max_dbs=32, subdir=True)
    try:
        with env.begin(write=True) as txn:
            for name in names:
                handle = env.open_db(name, txn=txn, create=False)
                value = txn.get(key, db=handle)
                if value is not None:
                    txn.put(key, change(value), db=handle)
                    return
        raise AssertionError(f"{key.hex()} is not in {table!r}")
    finally:
        env.close()


def _flip_last(value: bytes) -> bytes:
    return value[:-1] + bytes([value[-1] ^ 1])


def _flip_node(value: bytes) -> bytes:
    """Flip the last byte of a stored tree node (before its 8-byte height stamp)."""
    return value[:-9] + bytes([value[-9] ^ 1]) + value[-8:]


def test_check_lists_every_problem_past_a_corrupt_tip_block(tmp_path: Path, node: Path) -> None:
    # The tip block, the root node of height 1 (which no later root reaches: every account
    # changes in every block) and block 2's receipts are damaged; one run lists them all.
    with Store(node / "ledger") as store, store.reader() as view:
        old_root = view.root(1)
    _put(node / "ledger", b"blocks", height_key(BLOCKS), lambda b: b[:-1] + b"\x09")
    _put(node / "ledger", b"tree", old_root, _flip_node)
    _put(node / "ledger", b"receipts", height_key(2), _flip_last)
    result = run(tmp_path, "--json", "db", "check", "--data-dir", str(node))
    assert result.returncode == 1
    problems = json.loads(result.stdout)["problems"]
    assert problems[:3] == [
        "block 2: stored receipts are not the replayed ones",
        f"block {BLOCKS}: does not decode: block: commit flag must be 0 or 1, got 9",
        f"block {BLOCKS}: the replay stops here: its state root and receipts are not "
        "re-derived",
    ], problems
    assert problems[3] == (f"state tree: node {old_root.hex()} (under the root of height 1) "
                           "does not hash to its key")
    # Its children are reached from no other root now: one more line says so.
    assert problems[4].startswith("state tree: ") and "reached by no state root" in problems[4]
    assert len(problems) == 5
    human = run(tmp_path, "db", "check", "--data-dir", str(node))
    assert human.returncode == 1
    assert [line for line in human.stderr.splitlines() if line.startswith("problem: ")] == [
        f"problem: {p}" for p in problems]
    assert human.stderr.splitlines()[-1].startswith("error: 5 problem(s) found up to height 4")


def _archive(tmp_path: Path, node: Path) -> bytes:
    reference = tmp_path / "reference.cma"
    result = run(tmp_path, "db", "export", "--data-dir", str(node), str(reference))
    assert result.returncode == 0, result.stderr
    return reference.read_bytes()


def test_export_to_standard_output(tmp_path: Path, node: Path) -> None:
    expected = _archive(tmp_path, node)
    env = {**os.environ, "CHAINMALL_HOME": str(tmp_path)}
    for target in ("-", "/dev/stdout"):
        result = subprocess.run(
            [sys.executable, "-m", "chainmall.cli", "db", "export", "--data-dir", str(node),
             target], capture_output=True, env=env, stdin=subprocess.DEVNULL, timeout=120)
        assert result.returncode == 0, result.stderr
        assert result.stdout == expected, target
        assert b"exported 4 blocks to " in result.stderr  # the report is not in the archive


def test_export_to_dev_stdout_redirected_to_a_file_writes_that_file(tmp_path: Path,
                                                                     node: Path) -> None:
    expected = _archive(tmp_path, node)
    out = tmp_path / "redirected.cma"
    env = {**os.environ, "CHAINMALL_HOME": str(tmp_path)}
    with out.open("wb") as stdout:
        result = subprocess.run(
            [sys.executable, "-m", "chainmall.cli", "--json", "db", "export", "--data-dir",
             str(node), "/dev/stdout"], stdout=stdout, stderr=subprocess.PIPE, env=env,
            stdin=subprocess.DEVNULL, timeout=120)
    assert result.returncode == 0, result.stderr
    # The archive went to the file the shell opened, through that descriptor; the report,
    # which would follow it there, went to stderr.
    assert out.read_bytes() == expected
    assert json.loads(result.stderr)["blocks"] == BLOCKS


def test_export_follows_a_symlink_and_refuses_to_overwrite(tmp_path: Path, node: Path) -> None:
    expected = _archive(tmp_path, node)
    backups = tmp_path / "backups"
    backups.mkdir()
    target = backups / "chain.cma"
    link = tmp_path / "latest.cma"
    link.symlink_to(target)  # dangling: the export creates the target
    assert run(tmp_path, "db", "export", "--data-dir", str(node), str(link)).returncode == 0
    assert link.is_symlink() and target.read_bytes() == expected
    target.write_bytes(b"an older backup")
    refused = run(tmp_path, "db", "export", "--data-dir", str(node), str(link))
    assert one_line_error(refused) == f"error: {link} exists: pass --force to replace it"
    assert target.read_bytes() == b"an older backup"
    forced = run(tmp_path, "db", "export", "--force", "--data-dir", str(node), str(link))
    assert forced.returncode == 0, forced.stderr
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_bytes() == expected
    assert sorted(p.name for p in backups.iterdir()) == ["chain.cma"]  # no temp file left


def test_export_streams_into_a_pipe(tmp_path: Path, node: Path) -> None:
    expected = _archive(tmp_path, node)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = bytearray()

    def drain() -> None:
        with fifo.open("rb") as reader:
            received.extend(reader.read())

    reader = threading.Thread(target=drain)
    reader.start()
    result = run(tmp_path, "db", "export", "--data-dir", str(node), str(fifo))
    reader.join(timeout=120)
    assert result.returncode == 0, result.stderr
    assert bytes(received) == expected
    assert stat.S_ISFIFO(fifo.lstat().st_mode)  # still the pipe, not a file put in its place


def test_export_errors_name_the_users_path(tmp_path: Path, node: Path) -> None:
    full = run(tmp_path, "db", "export", "--data-dir", str(node), "/dev/full")
    assert one_line_error(full) == "error: [Errno 28] No space left on device: '/dev/full'"
    missing = tmp_path / "no" / "such" / "dir" / "chain.cma"
    result = run(tmp_path, "db", "export", "--data-dir", str(node), str(missing))
    line = one_line_error(result)
    assert line.endswith(f": '{missing}'") and ".tmp" not in line, line


def test_failed_import_says_what_the_directory_holds_and_how_to_go_on(tmp_path: Path,
                                                                       node: Path) -> None:
    archive = tmp_path / "chain.cma"
    assert run(tmp_path, "db", "export", "--data-dir", str(node), str(archive)).returncode == 0
    good = archive.read_bytes()
    # Block 3's recorded root is wrong (the trailer hash is made to fit): blocks 1-2 import.
    bad = bytearray(good)
    offset = 12
    offset += 4 + int.from_bytes(bad[offset : offset + 4], "big") + 32
    for _ in range(3):
        length = int.from_bytes(bad[offset : offset + 4], "big")
        offset += 4 + length + 32
    bad[offset - 1] ^= 1
    bad[-32:] = blake3.blake3(bytes(bad[:-32])).digest()
    broken = tmp_path / "broken.cma"
    broken.write_bytes(bytes(bad))
    target = tmp_path / "copy"
    result = run(tmp_path, "db", "import", "--data-dir", str(target), str(broken))
    line = one_line_error(result)
    assert "block 3: app hash" in line
    assert f"{target} holds the blocks verified so far, up to height 2" in line
    assert f"`chainmall db import --resume --data-dir {target} {broken}` continues" in line
    resumed = run(tmp_path, "--json", "db", "import", "--resume", "--data-dir", str(target),
                  str(archive))
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["height"] == BLOCKS


@pytest.mark.parametrize("command", ["check", "export", "import"])
def test_long_commands_show_progress_on_a_terminal_only(tmp_path: Path, node: Path,
                                                        command: str) -> None:
    archive = tmp_path / "chain.cma"
    if command != "export":
        assert run(tmp_path, "db", "export", "--data-dir", str(node), str(archive)).returncode == 0
    args = {"check": ["db", "check", "--data-dir", str(node)],
            "export": ["db", "export", "--data-dir", str(node), str(archive)],
            "import": ["db", "import", "--data-dir", str(tmp_path / "copy"), str(archive)]}
    shown = run_on_terminal(tmp_path, *args[command])
    assert shown.returncode == 0, shown.terminal
    assert f"db {command}: blocks" in shown.terminal and " blocks/s]" in shown.terminal
    shutil.rmtree(tmp_path / "copy", ignore_errors=True)
    archive.unlink(missing_ok=True) if command == "export" else None
    quiet = run_on_terminal(tmp_path, "--json", *args[command])
    assert quiet.returncode == 0, quiet.terminal
    assert "blocks/s" not in quiet.terminal and json.loads(quiet.stdout)
    shutil.rmtree(tmp_path / "copy", ignore_errors=True)
    archive.unlink(missing_ok=True) if command == "export" else None
    piped = run(tmp_path, *args[command])  # stderr is a pipe: nothing but the result
    assert piped.returncode == 0 and "blocks/s" not in piped.stderr, piped.stderr
