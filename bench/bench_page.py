"""Benchmark the product page: an item with 1,000 events checked in headless Chromium.

Run: .venv/bin/pytest bench/bench_page.py --benchmark-only -s -q

Issue target ("The product page"): "An item with 1,000 events verifies in
<= 1 s in headless Chromium."

The silver-jewellery story's ledger plus an item with 1,000 events over four
items (tests/web/story_ledger.py) is built in process, a real `chainmall node
start` serves it on a free loopback port, and web/browser/check.mjs
(`--only-large`) opens the item's page in Debian's headless Chromium
CHAINMALL_BENCH_PAGE_RUNS times (default 7), each a fresh page. The page
itself times its three phases (web/src/page/item.ts: `window.chainmall.timing`):

* verify (judged against the target): decoding the anchor, the commit
  certificate's Ed25519 signatures against the validator keys, the state
  proofs against the header's state root, and hashing every record into the
  hash-chained histories (docs/page.md section 3), all in the browser;
* fetch: the node's `mall.item_trace` answer over HTTP (0.7 MB of JSON);
* render: drawing the 1,000 steps.

The whole page load (navigation to the page's "done" state) is printed too.
Needs Node.js with web/node_modules, the built page and /usr/bin/chromium
(`make test-browser`); skipped with the reason otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from benchutil import machine, verdict

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "web"))  # the story ledger the browser tests use

from chainmall.core.node.process import NodeProcess  # noqa: E402
from story_ledger import build_story_ledger  # noqa: E402

EVENTS = 1_000
TARGET_MS = 1_000
RUNS = int(os.environ.get("CHAINMALL_BENCH_PAGE_RUNS", "7"))
CHROMIUM = Path(os.environ.get("CHAINMALL_CHROMIUM", "/usr/bin/chromium"))
WEB = REPO / "web"
TIMEOUT_S = 600


def _requirements() -> str:
    node = shutil.which("node")
    if node is None or not (WEB / "node_modules" / "playwright-core").exists():
        pytest.skip("Node.js with web/node_modules is needed: run `make web`")
    if not (REPO / "core" / "rpc" / "static" / "app.js").exists():
        pytest.skip("the product page is not built: run `make web`")
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: run `make browser-deps`")
    return node


def _ms(values: list[float]) -> str:
    return (f"median {statistics.median(values):.0f} ms (min {min(values):.0f}, "
            f"max {max(values):.0f})")


def test_thousand_event_item_in_chromium(benchmark: Any) -> None:
    node = _requirements()
    with tempfile.TemporaryDirectory(prefix="chainmall-bench-page-") as root:
        ledger = build_story_ledger(Path(root) / "home", Path(root) / "data", EVENTS)
        process = NodeProcess(ledger.home, ledger.data)
        try:
            base = process.wait_for("node ready")["addresses"]["http"]
            command = [node, "browser/check.mjs", "--only-large", "--base", base,
                       "--large", ledger.long_item, "--timing-runs", str(RUNS),
                       "--chromium", str(CHROMIUM)]

            def run() -> dict[str, Any]:
                done = subprocess.run(command, cwd=WEB, capture_output=True, text=True,
                                      timeout=TIMEOUT_S, check=False)
                assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
                return json.loads(done.stdout.strip().splitlines()[-1])

            report = benchmark.pedantic(run, rounds=1, iterations=1)
        finally:
            assert process.stop() == 0, "".join(process.log[-20:])
    runs = report["large"]
    assert all(r["state"] == "done" and r["verdict"] == "true" for r in runs), runs
    assert all(r["steps"] == r["verified"] == EVENTS for r in runs), runs
    verify = [r["timing"]["verify_ms"] for r in runs]
    fetch = [r["timing"]["fetch_ms"] for r in runs]
    render = [r["timing"]["render_ms"] for r in runs]
    load = [r["load_ms"] for r in runs]
    median = statistics.median(verify)
    print()
    print(f"machine: {machine()}, load average {os.getloadavg()[0]:.1f}; "
          f"Chromium {report['browser']} (headless)")
    print(f"item: {EVENTS:,} events over 4 items, every step verified; {len(runs)} page loads")
    print(f"verify in the browser: {_ms(verify)}; target <= {TARGET_MS} ms: "
          f"{verdict(median <= TARGET_MS)}")
    print(f"the node's answer: {_ms(fetch)}; drawing the steps: {_ms(render)}")
    print(f"whole page load: {_ms(load)}")
