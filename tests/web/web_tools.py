"""Finding Node.js, npm and the web/ build for the page's tests; skip reasons in one place."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WEB = REPO / "web"
STATIC = REPO / "core" / "rpc" / "static"


def _missing(reason: str) -> None:
    """Skip, or fail where the page must be tested (CHAINMALL_REQUIRE_BROWSER=1: CI)."""
    if os.environ.get("CHAINMALL_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (CHAINMALL_REQUIRE_BROWSER=1)")
    pytest.skip(reason)


def node_or_skip() -> str:
    """The `node` executable; skips the test when Node.js is not installed."""
    node = shutil.which("node")
    if node is None:
        _missing("Node.js is not installed: the product page's tests need it")
    assert node is not None
    return node


def web_deps_or_skip() -> str:
    """`node`, with web/node_modules installed (fails with the fix when only that is missing)."""
    node = node_or_skip()
    if not (WEB / "node_modules" / "esbuild").exists():
        if shutil.which("npm") is None:
            _missing("npm is not installed, so web/ has no dependencies (the page is not built)")
        pytest.fail("web/node_modules is missing: run `make web` (npm ci) first")
    return node
