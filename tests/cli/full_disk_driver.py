"""Run CLI steps on a small file system that is (nearly) full; print what happened as JSON.

Usage (inside a mount namespace, over a fresh tmpfs at MOUNT):
    python full_disk_driver.py MOUNT STEPS_JSON

STEPS_JSON is a list of steps: {"fill": N} fills the file system up to N free
bytes, {"unfill": true} removes the filler, {"run": [args...]} runs
`python -m chainmall.cli args...` with CHAINMALL_HOME=MOUNT/home. The output
is one JSON object with a list "runs": per run, its exit code, stdout and
stderr, the free bytes before it, and every path under MOUNT/home after it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

FILL_CHUNK_BYTES = 1 << 20


def free_bytes(mount: Path) -> int:
    stats = os.statvfs(mount)
    return stats.f_bavail * stats.f_frsize


def fill(mount: Path, leave: int) -> None:
    with (mount / "filler").open("ab") as out:
        while (excess := free_bytes(mount) - leave) > 0:
            try:
                out.write(b"\0" * min(excess, FILL_CHUNK_BYTES))
                out.flush()
            except OSError:
                break


def main(mount_text: str, steps_text: str) -> int:
    mount = Path(mount_text)
    home = mount / "home"
    home.mkdir(exist_ok=True)
    env = {**os.environ, "CHAINMALL_HOME": str(home)}
    env.pop("CHAINMALL_PASSPHRASE", None)
    runs: list[dict[str, object]] = []
    for step in json.loads(steps_text):
        if "fill" in step:
            fill(mount, step["fill"])
        elif "unfill" in step:
            (mount / "filler").unlink(missing_ok=True)
        else:
            free = free_bytes(mount)
            done = subprocess.run([sys.executable, "-m", "chainmall.cli", *step["run"]],
                                  capture_output=True, text=True, env=env,
                                  stdin=subprocess.DEVNULL, timeout=300)
            runs.append({"code": done.returncode, "stdout": done.stdout,
                         "stderr": done.stderr, "free": free,
                         "files": sorted(str(p.relative_to(home)) for p in home.rglob("*"))})
    print(json.dumps({"runs": runs}))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
