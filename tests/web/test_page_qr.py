"""`chainmall mall product qr`: the tag's QR code, from a real node or offline with --vs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import segno
from chainmall.cli.mall_qr import qr_bytes, tag_link
from chainmall.cli.story import RINGS
from chainmall.core.mall import keys
from chainmall.core.node.process import NodeProcess
from story_ledger import StoryLedger, build_story_ledger


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[StoryLedger, str]]:
    root = tmp_path_factory.mktemp("page-qr")
    built = build_story_ledger(root / "home", root / "data", 0)
    node = NodeProcess(built.home, built.data)
    try:
        yield built, node.wait_for("node ready")["addresses"]["http"]
    finally:
        assert node.stop() == 0


def _qr(home: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "CHAINMALL_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "chainmall.cli", *args], capture_output=True,
                          env=env, stdin=subprocess.DEVNULL, timeout=120, check=False)


def test_svg_from_the_node_carries_the_validator_set(served, tmp_path: Path) -> None:
    built, http = served
    vs = built.genesis.validator_set_hash
    out = tmp_path / "ring.svg"
    result = _qr(built.home, "--json", "mall", "product", "qr", RINGS[0], "--node", http,
                 "--out", str(out))
    assert result.returncode == 0, result.stderr
    facts = json.loads(result.stdout)
    link = f"{http}/item/{RINGS[0]}?vs={vs.hex()}"
    assert facts["link"] == link and facts["validator_set_hash"] == vs.hex()
    svg = out.read_bytes()
    assert svg.startswith(b"<?xml") and f"<title>{link}</title>".encode() in svg
    assert svg == qr_bytes(link, "svg")
    by_key = _qr(built.home, "mall", "product", "qr", keys.item_key(RINGS[0]).hex(), "--node",
                 http, "--page-address", "https://shop.example/")
    assert by_key.returncode == 0, by_key.stderr
    assert by_key.stdout == qr_bytes(tag_link("https://shop.example", RINGS[0], vs), "svg")


def test_png_and_the_code_it_holds(served, tmp_path: Path) -> None:
    built, http = served
    out = tmp_path / "ring.png"
    result = _qr(built.home, "mall", "product", "qr", RINGS[1], "--png", "--node", http,
                 "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    link = tag_link(http, RINGS[1], built.genesis.validator_set_hash)
    assert result.stdout.decode().startswith(f"wrote {out} (PNG")
    assert out.read_bytes() == qr_bytes(link, "png")
    code = segno.make_qr(link, error="m")
    assert not code.is_micro and code.error == "M"


def test_offline_with_the_validator_set_given(tmp_path: Path) -> None:
    vs = "ab" * 32
    result = _qr(tmp_path, "mall", "product", "qr", RINGS[2], "--vs", vs, "--node",
                 "tcp://127.0.0.1:9")  # no node there: none is asked
    assert result.returncode == 0, result.stderr
    assert result.stdout == qr_bytes(tag_link("http://127.0.0.1:8646", RINGS[2],
                                              bytes.fromhex(vs)), "svg")


@pytest.mark.parametrize(("args", "message"), [
    (("not a uri",), "not an item URI"),
    ((RINGS[0], "--vs", "xyz"), "--vs"),
    (("urn:epc:id:sgtin:0.0.404",), "has been recorded"),
    ((RINGS[0], "--page-address", "ftp://x"), "--page-address"),
])
def test_bad_input_is_one_line(served, args: tuple[str, ...], message: str) -> None:
    built, http = served
    result = _qr(built.home, "mall", "product", "qr", *args, "--node", http)
    assert result.returncode == 1
    error = result.stderr.decode()
    assert error.startswith("error: ") and message in error and len(error.splitlines()) == 1


def test_an_unreachable_node_is_one_line(tmp_path: Path) -> None:
    result = _qr(tmp_path, "mall", "product", "qr", RINGS[0], "--node", "tcp://127.0.0.1:9")
    assert result.returncode == 1
    assert result.stderr.decode().startswith("error: cannot reach the node")
