"""docs/page.md says what the code does: its codes, paths, messages and switches."""

from __future__ import annotations

import re

from chainmall.cli.story import RINGS
from chainmall.core.mall.storefront import item_page_path
from chainmall.core.node.page import ALTER_EVENT_ENV, TEST_SWITCHES_ENV
from chainmall.core.rpc.http import PAGE_NOT_BUILT
from page_verdict import ANCHOR_CODES, FAULT_CODES, LIST_CODES, STEP_CODES
from web_tools import REPO, WEB

PAGE = (REPO / "docs" / "page.md").read_text(encoding="utf-8")


def test_every_code_the_page_reports_is_documented() -> None:
    documented = set(re.findall(r"`([a-z_]+)`", PAGE))
    for code in (*ANCHOR_CODES, *STEP_CODES, *LIST_CODES, *FAULT_CODES):
        assert code in documented, code
    trace_ts = (WEB / "src" / "mall" / "trace.ts").read_text(encoding="utf-8")
    for code in (*STEP_CODES, *LIST_CODES, *FAULT_CODES):
        if code != "anchor":
            assert re.search(rf"\b{code}: '", trace_ts), f"{code} has no words in trace.ts"


def test_paths_messages_and_switches() -> None:
    assert f"`{item_page_path(RINGS[0])}`" in PAGE
    assert item_page_path("https://id.example/01/1") in PAGE
    assert PAGE_NOT_BUILT.strip() in " ".join(PAGE.split())  # the 503 line, as wrapped
    assert f"`{ALTER_EVENT_ENV}=<event id>`" in PAGE and f"`{TEST_SWITCHES_ENV}=1`" in PAGE
