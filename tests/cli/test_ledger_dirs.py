"""Operators' data directories as real processes: inspection writes nothing, damage is one
line and never a signal, init says what it found, and one writer at a time."""

from __future__ import annotations

import json
import os
import re
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from chainmall.core.datadir import GENESIS_FILE, LEDGER_DIR, LOCK_FILE, WriterLock
from chainmall.core.genesis import write_genesis
from chainmall.core.store import DATA_FILE
from clirun import one_line_error, run, start
from ledgers import DAMAGES, GENESIS, RECOVERY_HINT, build_node, files

BLOCKS = 4
INSPECTIONS = {"info": ("db", "info"), "check": ("db", "check"), "export": ("db", "export")}
POLL_DEADLINE_S = 60.0


@pytest.fixture
def node(tmp_path: Path) -> Path:
    directory = tmp_path / "node"
    build_node(directory, BLOCKS)
    return directory


def inspect_all(home: Path, node: Path) -> dict[str, subprocess.CompletedProcess[str]]:
    """Run db info, check and export on `node` side by side; their results by name."""
    archive = home / "out.cma"
    running = {}
    for name, command in INSPECTIONS.items():
        extra = (str(archive),) if name == "export" else ()
        running[name] = start(home, *command, "--data-dir", str(node), *extra)
    results = {}
    for name, process in running.items():
        out, err = process.communicate(timeout=120)
        results[name] = subprocess.CompletedProcess(process.args, process.returncode, out, err)
    return results


@pytest.mark.parametrize("remove", [None, LOCK_FILE, f"{LEDGER_DIR}/lock.mdb"],
                         ids=["as-made", "no-LOCK", "no-lock.mdb"])
def test_inspection_of_a_healthy_directory_writes_nothing(tmp_path: Path, node: Path,
                                                          remove: str | None) -> None:
    if remove is not None:
        (node / remove).unlink()
    before = files(node)
    results = inspect_all(tmp_path, node)
    for name, result in results.items():
        assert result.returncode == 0, (name, result.stderr)
    assert f"ok: {BLOCKS} blocks verified" in results["check"].stdout
    assert files(node) == before


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_inspection_of_a_damaged_directory_is_one_line_and_writes_nothing(
        tmp_path: Path, node: Path, damage: str) -> None:
    make_damage, _, message = DAMAGES[damage]
    make_damage(node)
    before = files(node)
    for name, result in inspect_all(tmp_path, node).items():
        line = one_line_error(result)
        assert RECOVERY_HINT in line and re.search(message, line), (name, line)
    assert files(node) == before
    assert not (tmp_path / "out.cma").exists()


def test_half_made_directory_has_no_dead_end(tmp_path: Path) -> None:
    half = tmp_path / "half"
    half.mkdir()
    write_genesis(half / GENESIS_FILE, GENESIS)
    info = one_line_error(run(tmp_path, "db", "info", "--data-dir", str(half)))
    assert "is damaged: it has genesis.json but no ledger/" in info
    assert "chainmall init --data-dir NEW" in info
    init = one_line_error(run(tmp_path, "init", "--data-dir", str(half)))
    assert "half-made or damaged data directory (it has genesis.json but no ledger/" in init
    assert "already initialised" not in init
    fresh = run(tmp_path, "init", "--data-dir", str(tmp_path / "new"))
    assert fresh.returncode == 0, fresh.stderr
    assert sorted(os.listdir(half)) == [GENESIS_FILE]


def test_a_failed_init_leaves_nothing(tmp_path: Path) -> None:
    bad = run(tmp_path, "init", "--chain-id", "other", "--balance", "cm1nope=5")
    one_line_error(bad)
    assert not (tmp_path / "other").exists()
    assert not (tmp_path / "keys").exists()  # the balance is checked before a key is made


# --- damage gets a message, never a signal ---------------------------------------------------

def _break_branch_pages(node: Path) -> int:
    """Give every branch page one key: LMDB's search asserts two and aborts (SIGABRT)."""
    data_file = node / LEDGER_DIR / DATA_FILE
    data = bytearray(data_file.read_bytes())
    page = struct.unpack_from("=I", data, 40)[0]
    broken = 0
    for number in range(2, len(data) // page):
        page_number, flags = struct.unpack_from("=Q2xH", data, number * page)
        if page_number == number and flags & 0x01:  # P_BRANCH
            struct.pack_into("=H", data, number * page + 12, 16 + 2)  # lower: one pointer
            broken += 1
    data_file.write_bytes(bytes(data))
    return broken


def test_a_page_that_crashes_lmdb_is_reported_in_one_line(tmp_path: Path) -> None:
    node = tmp_path / "node"
    build_node(node, 12)  # enough state-tree nodes for a two-level table
    assert _break_branch_pages(node) > 0
    result = run(tmp_path, "db", "check", "--data-dir", str(node))
    assert result.returncode == 1, result.stderr  # never killed by the signal itself
    last = result.stderr.strip().splitlines()[-1]  # LMDB prints its failed assertion first
    # py-lmdb's LMDB asserts (SIGABRT); a build without assertions may crash otherwise
    # or report the corruption itself.
    assert re.match(rf"error: (db check crashed \(SIG[A-Z]+\) while reading the ledger in "
                    rf"{re.escape(str(node))}: its file is corrupted|the ledger file in "
                    rf"{re.escape(str(node / LEDGER_DIR))} is corrupted)", last), last


GUARDED_CRASH = """
import os, signal, sys
from pathlib import Path
from chainmall.cli.crashguard import guard_ledger_reads
guard_ledger_reads(Path("/data"), "db export")
print("child runs", flush=True)
os.kill(os.getpid(), getattr(signal, sys.argv[1]))
"""


@pytest.mark.parametrize("name", ["SIGBUS", "SIGSEGV"])
def test_the_guard_turns_a_crash_into_one_line(name: str) -> None:
    result = subprocess.run([sys.executable, "-c", GUARDED_CRASH, name], capture_output=True,
                            text=True, timeout=60)
    assert result.stdout == "child runs\n"
    line = one_line_error(result)
    assert line.startswith(f"error: db export crashed ({name}) while reading the ledger in "
                           "/data: its file is corrupted")


def test_the_guard_passes_the_exit_code_and_output_through(tmp_path: Path, node: Path) -> None:
    result = run(tmp_path, "--json", "db", "info", "--data-dir", str(node))
    assert result.returncode == 0 and json.loads(result.stdout)["height"] == BLOCKS
    missing = run(tmp_path, "db", "info", "--data-dir", str(tmp_path / "absent"))
    assert "holds no chain" in one_line_error(missing)


# --- one writer at a time --------------------------------------------------------------------

def test_a_resumed_import_is_refused_while_another_writer_holds_the_dir(tmp_path: Path,
                                                                        node: Path) -> None:
    archive = tmp_path / "chain.cma"
    assert run(tmp_path, "db", "export", "--data-dir", str(node), str(archive)).returncode == 0
    partial = tmp_path / "partial"
    build_node(partial, 1)
    before = files(partial)
    with WriterLock.acquire(partial, "node start"):  # this test process is the other writer
        refused = run(tmp_path, "db", "import", "--resume", "--data-dir", str(partial),
                      str(archive))
        line = one_line_error(refused)
        assert f"in use by another writer (pid {os.getpid()}: node start)" in line
        assert files(partial)[LEDGER_DIR + "/" + DATA_FILE] == before[LEDGER_DIR + "/" + DATA_FILE]
    resumed = run(tmp_path, "--json", "db", "import", "--resume", "--data-dir", str(partial),
                  str(archive))
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["height"] == BLOCKS


def test_two_imports_into_one_new_directory(tmp_path: Path, node: Path) -> None:
    archive = tmp_path / "chain.cma"
    assert run(tmp_path, "db", "export", "--data-dir", str(node), str(archive)).returncode == 0
    target = tmp_path / "copy"
    imports = [start(tmp_path, "db", "import", "--data-dir", str(target), str(archive))
               for _ in range(2)]
    outcomes = []
    for process in imports:
        out, err = process.communicate(timeout=120)
        outcomes.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    assert sorted(o.returncode for o in outcomes) == [0, 1], outcomes
    line = one_line_error(next(o for o in outcomes if o.returncode == 1))
    assert any(reason in line for reason in (
        "already initialised", "filled by another process meanwhile", "in use by another "
        "writer")), line
    check = run(tmp_path, "--json", "db", "check", "--data-dir", str(target))
    assert json.loads(check.stdout) == {"ok": True, "height": BLOCKS, "problems": []}
    assert sorted(os.listdir(tmp_path)) == ["chain.cma", "copy", "node"]  # no temporaries


def _wait_for_lock_holder(directory: Path, pid: int, process: subprocess.Popen[str]) -> None:
    """Poll until DATA/LOCK names `pid` (the writer has its data directory in place)."""
    deadline = time.monotonic() + POLL_DEADLINE_S
    want = f"{pid} demo\n"
    while time.monotonic() < deadline:
        lock = directory / LOCK_FILE
        if lock.exists() and lock.read_text() == want:
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.005)
    raise AssertionError(f"{directory}/LOCK never named pid {pid}")


def test_a_second_demo_is_refused_and_leaves_the_first_ones_data(tmp_path: Path) -> None:
    directory = tmp_path / "demo"
    first = start(tmp_path, "--json", "demo", "--txs", "2000", "--blocks", "1000",
                  "--data-dir", str(directory))
    try:
        _wait_for_lock_holder(directory, first.pid, first)
        os.kill(first.pid, signal.SIGSTOP)  # hold it mid-run: the overlap is certain
        try:
            second = run(tmp_path, "demo", "--txs", "8", "--blocks", "1", "--data-dir",
                         str(directory))
        finally:
            os.kill(first.pid, signal.SIGCONT)
        line = one_line_error(second)
        assert f"in use by another writer (pid {first.pid}: demo)" in line
        assert (directory / LOCK_FILE).read_text() == f"{first.pid} demo\n"
    finally:
        first.kill()
        first.communicate(timeout=60)
    # The first demo's data is all there (up to where it was stopped), and consistent.
    check = run(tmp_path, "--json", "db", "check", "--data-dir", str(directory))
    assert json.loads(check.stdout)["ok"] is True, check.stdout + check.stderr
