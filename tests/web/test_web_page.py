"""The product page in headless Chromium, against mock nodes serving the silver-jewellery story.

Three mock nodes (tests/web/mock_node.py, real processes on free loopback
ports): one as served, one with one altered event, one with an altered
commit signature. web/browser/check.mjs drives Debian's Chromium through
them with playwright-core and reports what the page showed; the tests
below assert on that report. Screenshots at phone and desktop width are
written to build/test-artefacts/web/ (or $CHAINMALL_ARTEFACTS).

Needs Node.js with web/node_modules, the built page (`make web`) and
Debian's chromium (`make test-browser` installs it); skipped with the
reason when one is missing, unless CHAINMALL_REQUIRE_BROWSER=1 (CI).
"""

from __future__ import annotations

import json
import os
import selectors
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from web_tools import REPO, STATIC, WEB, web_deps_or_skip

CHROMIUM = Path(os.environ.get("CHAINMALL_CHROMIUM", "/usr/bin/chromium"))
ARTEFACTS = Path(os.environ.get("CHAINMALL_ARTEFACTS", REPO / "build" / "test-artefacts" / "web"))
MOCK = Path(__file__).resolve().parent / "mock_node.py"
START_TIMEOUT_S = 60
CHECK_TIMEOUT_S = 300
LARGE_ITEM_TARGET_MS = 1000
RED = "rgb(179, 21, 27)"  # --bad in web/static/style.css
TAMPERED_STEP = ("ring-0001", 3)


def _missing(reason: str) -> None:
    if os.environ.get("CHAINMALL_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (CHAINMALL_REQUIRE_BROWSER=1)")
    pytest.skip(reason)


def _start_mock(*args: str) -> tuple[subprocess.Popen[str], str]:
    """A mock node on a free port; returns the process and its base URL."""
    process = subprocess.Popen(
        [sys.executable, str(MOCK), "--port", "0", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if selector.select(timeout=0.5):
            line = process.stdout.readline()
            if line.startswith("mock node: "):
                return process, line.split(": ", 1)[1].strip().rstrip("/")
            if not line and process.poll() is not None:
                break
    process.kill()
    _, errors = process.communicate(timeout=10)
    raise AssertionError(f"mock node {args} did not start: {errors[-2000:]}")


def _stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def seen() -> Iterator[dict[str, Any]]:
    """What the page showed in Chromium, as web/browser/check.mjs reports it."""
    node = web_deps_or_skip()
    if not (STATIC / "app.js").exists():
        pytest.fail("the product page is not built (core/rpc/static/): run `make web`")
    if not CHROMIUM.exists():
        _missing(f"Debian's chromium is not installed at {CHROMIUM}: run `make test-browser`")
    mocks = []
    try:
        item, seq = TAMPERED_STEP
        for args in ((), ("--tamper", f"event:{item}:{seq}"), ("--tamper", "commit")):
            mocks.append(_start_mock(*args))
        (_, base), (_, tampered), (_, commit_tampered) = mocks
        command = [node, "browser/check.mjs", "--base", base, "--tampered", tampered,
                   "--commit-tampered", commit_tampered, "--out", str(ARTEFACTS),
                   "--chromium", str(CHROMIUM)]
        result = subprocess.run(command, cwd=WEB, capture_output=True, text=True,
                                timeout=CHECK_TIMEOUT_S, check=False)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
        yield json.loads(result.stdout.strip().splitlines()[-1])
    finally:
        for process, _ in mocks:
            _stop(process)


def test_home_lists_the_ring_and_search_finds(seen: dict[str, Any]) -> None:
    assert seen["home"]["errors"] == []
    assert "silver-ring-925" in seen["home"]["products"]
    assert seen["home"]["heading"] == "Top products by sales"
    assert seen["search"] == ["silver-earrings-leaf"]


def test_product_page_names_the_certifier_and_shows_reviews(seen: dict[str, Any]) -> None:
    product = seen["product"]
    assert product["title"].startswith("Sterling silver ring")
    assert any("Certified by Silver Guild Certification" in b for b in product["badges"])
    assert product["reviews"] == 3
    assert len(product["replies"]) == 2
    assert all(reply.startswith("Reply from Luna Jewellery") for reply in product["replies"])
    assert "/item/ring-0001" in product["items"]
    assert seen["uncertified_badges"] == ["not certified"]


def test_item_page_shows_every_step_verified(seen: dict[str, Any]) -> None:
    item = seen["item"]
    assert item["state"] == "done" and item["errors"] == []
    assert len(item["steps"]) == 11  # 4 of the silver lot, 8 of the ring, one shared
    assert all(step["mark"] == "verified" for step in item["steps"])
    assert all(step["text"].endswith("verified") and "not" not in step["text"]
               for step in item["steps"])
    assert item["verdict"] == "true"
    assert item["corrections"] == 1 and item["erroneous"] == 1  # shown as such, not hidden
    assert item["steps"][0]["item"].startswith("lot-")  # raw material first


def test_altered_event_is_not_verified_in_red(seen: dict[str, Any]) -> None:
    tampered = seen["tampered"]
    bad = [step for step in tampered["steps"] if step["mark"] != "verified"]
    assert [(step["item"], step["seq"]) for step in bad] == [TAMPERED_STEP]
    assert bad[0]["text"].endswith("not verified") and bad[0]["colour"] == RED
    assert "does not match the ledger" in bad[0]["why"]
    assert tampered["verdict"] == "false"
    assert "Not verified" in tampered["verdict_text"]


def test_altered_commit_leaves_no_step_verified(seen: dict[str, Any]) -> None:
    commit_tampered = seen["commit_tampered"]
    assert commit_tampered["steps"]
    assert all(step["mark"] == "not-verified" and step["colour"] == RED
               for step in commit_tampered["steps"])
    assert "signature of validator 0 does not verify" in commit_tampered["verdict_text"]


def test_unknown_item_says_so(seen: dict[str, Any]) -> None:
    assert seen["missing_item"]["state"] == "error"
    assert "no item 'no-such-item'" in seen["missing_item"]["text"]


def test_screenshots_at_phone_and_desktop_width_are_not_blank(seen: dict[str, Any]) -> None:
    names = {shot["name"] for shot in seen["shots"]}
    for page in ("home", "product", "item", "item-tampered"):
        assert {f"{page}-phone", f"{page}-desktop"} <= names
    for shot in seen["shots"]:
        assert Path(shot["path"]).stat().st_size == shot["bytes"] > 10_000, shot
        width = 390 if shot["name"].endswith("phone") else 1280
        assert shot["width"] == width, shot
        assert shot["colours"] > 50 and shot["non_dominant"] > 0.05, shot


def test_page_loads_nothing_from_elsewhere(seen: dict[str, Any]) -> None:
    assert seen["foreign_requests"] == []


def test_large_item_verifies_and_its_time_is_printed(seen: dict[str, Any],
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    runs = seen["large"]
    assert all(run["state"] == "done" and run["verdict"] == "true" for run in runs)
    assert all(run["steps"] == run["verified"] == 1000 for run in runs)
    verify_ms = statistics.median(run["timing"]["verify_ms"] for run in runs)
    total_ms = statistics.median(sum(run["timing"][k] for k in ("fetch_ms", "verify_ms",
                                                                 "render_ms")) for run in runs)
    from chainmall.cli.doctor import cpu_model

    line = (f"web: 1,000-event item verified in {verify_ms:.0f} ms (median of {len(runs)}; "
            f"target <= {LARGE_ITEM_TARGET_MS} ms), fetch + verify + render {total_ms:.0f} ms, "
            f"Chromium {seen['browser']}, {cpu_model()}, load average {os.getloadavg()[0]:.1f}")
    (ARTEFACTS / "timing.txt").write_text(line + "\n")
    with capsys.disabled():
        print("\n" + line)
