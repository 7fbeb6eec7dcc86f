"""Full disks, for real: the CLI on a small tmpfs that is (nearly) full.

Each test runs tests/cli/full_disk_driver.py in a new user and mount
namespace (`unshare -rm`, no privileges needed where unprivileged user
namespaces are allowed, as on Debian 12), over a fresh tmpfs that it fills
to the free space under test. So the failures are the kernel's own ENOSPC
and short writes (which LMDB reports as EIO), not injected ones. Where
namespaces are not allowed (some containers), the tests are skipped and
say so.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from clirun import run
from ledgers import build_node

DRIVER = Path(__file__).with_name("full_disk_driver.py")
TMPFS_BYTES = 4 << 20
ARCHIVE_BLOCKS = 60
MOUNT_SCRIPT = 'mount -t tmpfs -o size="$1" tmpfs "$2" && exec "$3" "$4" "$2" "$5"'


def _namespaces_work(mount: Path) -> str | None:
    """None if a tmpfs can be mounted in a new user+mount namespace, else why not."""
    if shutil.which("unshare") is None:
        return "no unshare(1) on this machine"
    mount.mkdir(exist_ok=True)
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", 'mount -t tmpfs tmpfs "$1"', "sh",
                            str(mount)], capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        return f"cannot mount a tmpfs in a user namespace here: {probe.stderr.strip()}"
    return None


@pytest.fixture
def small_disk(tmp_path: Path):
    """Run driver steps on a fresh 4 MiB tmpfs; returns the runs' reports."""
    mount = tmp_path / "disk"
    reason = _namespaces_work(mount)
    if reason is not None:
        pytest.skip(reason)

    def on_small_disk(steps: list[dict[str, object]]) -> list[dict[str, object]]:
        done = subprocess.run(
            ["unshare", "-rm", "sh", "-c", MOUNT_SCRIPT, "sh", str(TMPFS_BYTES), str(mount),
             sys.executable, str(DRIVER), json.dumps(steps)],
            capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)["runs"]

    on_small_disk.home = mount / "home"  # type: ignore[attr-defined]
    return on_small_disk


def _last_line(report: dict[str, object]) -> str:
    return str(report["stderr"]).strip().splitlines()[-1]


@pytest.mark.parametrize("free", [0, 4096, 16384, 65536])
def test_init_on_a_full_disk_says_so_and_leaves_nothing(small_disk, free: int) -> None:
    home = small_disk.home
    failed, succeeded = small_disk([{"fill": free}, {"run": ["init"]}, {"unfill": True},
                                    {"run": ["init"]}])
    assert failed["code"] == 1, failed
    line = _last_line(failed)
    assert line.startswith("error: no space left on device: cannot "), line
    assert str(home) in line, line
    assert ".new" not in line  # the user's path, not the temporary one
    assert not [f for f in failed["files"] if not f.startswith("keys")], failed["files"]
    assert not [f for f in failed["files"] if f.endswith(".tmp")]  # no half-written key
    assert "Traceback" not in failed["stderr"]
    # With space back, init works (the first run left no half-made directory in its way).
    assert succeeded["code"] == 0, succeeded["stderr"]
    assert {"local/genesis.json", "local/ledger/data.mdb", "local/LOCK"} <= set(
        succeeded["files"])


def test_a_new_key_on_a_full_disk(small_disk) -> None:
    (report,) = small_disk([{"fill": 0}, {"run": ["keys", "new", "alice"]}])
    line = _last_line(report)
    assert line == ("error: no space left on device: cannot write "
                    f"{small_disk.home / 'keys' / 'alice.json'}"), report
    assert report["files"] in ([], ["keys"])


def test_an_import_that_fills_the_disk_can_be_resumed(small_disk, tmp_path: Path) -> None:
    node = tmp_path / "node"
    build_node(node, ARCHIVE_BLOCKS)
    archive = tmp_path / "chain.cma"
    assert run(tmp_path, "db", "export", "--data-dir", str(node), str(archive)).returncode == 0
    copy = str(small_disk.home / "copy")
    failed, checked, resumed, final = small_disk([
        {"fill": 300_000},
        {"run": ["db", "import", "--data-dir", copy, str(archive)]},
        {"unfill": True},
        {"run": ["--json", "db", "check", "--data-dir", copy]},
        {"run": ["db", "import", "--resume", "--data-dir", copy, str(archive)]},
        {"run": ["--json", "db", "check", "--data-dir", copy]},
    ])
    assert failed["code"] == 1
    assert _last_line(failed).startswith(
        f"error: no space left on device: cannot write {copy}/ledger/data.mdb"), failed
    part = json.loads(str(checked["stdout"]))
    assert part["ok"] is True and 0 <= part["height"] < ARCHIVE_BLOCKS, checked
    assert resumed["code"] == 0, resumed["stderr"]
    assert json.loads(str(final["stdout"])) == {"ok": True, "height": ARCHIVE_BLOCKS,
                                                "problems": []}
