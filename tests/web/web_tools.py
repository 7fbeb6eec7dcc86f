"""Finding Node.js, npm and the web/ build for the page's tests; skip reasons in one place."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WEB = REPO / "web"
STATIC = REPO / "core" / "rpc" / "static"


def node_or_skip() -> str:
    """The `node` executable; skips the test when Node.js is not installed."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed: the product page's tests need it")
    return node


def web_deps_or_skip() -> str:
    """`node`, with web/node_modules installed (fails with the fix when only that is missing)."""
    node = node_or_skip()
    if not (WEB / "node_modules" / "esbuild").exists():
        if shutil.which("npm") is None:
            pytest.skip("npm is not installed, so web/ has no dependencies (the page is not built)")
        pytest.fail("web/node_modules is missing: run `make web` (npm ci) first")
    return node
