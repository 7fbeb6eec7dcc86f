"""docs/page.md's worked examples are what the code produces."""

from __future__ import annotations

import re

from web_chain import key_of
from web_layout import TraceEvent, decode_event, trace_key
from web_tools import REPO

PAGE = (REPO / "docs" / "page.md").read_text(encoding="utf-8")


def test_trace_key_examples() -> None:
    assert f"`trace_key(\"ring-0001\", 3)` = `{trace_key('ring-0001', 3).hex()}`" in PAGE
    for seq in (0, 8):
        assert f'"key": "{trace_key("ring-0001", seq).hex()}"' in PAGE


def test_correction_example() -> None:
    event = TraceEvent("correction", 1_776_247_200_000, "-06:00", 121,
                       key_of("assay").public_key, "inspecting", read_point="Assay lab",
                       corrects=bytes(range(32)), details="typo")
    block = PAGE.split("and details \"typo\"", 1)[1].split("## 6.", 1)[0]
    shown = "".join(re.findall(r"^    ([0-9a-f ]+)$", block, flags=re.MULTILINE)).replace(" ", "")
    assert shown == event.encode().hex()
    assert decode_event(bytes.fromhex(shown)) == event
    assert f"{len(event.encode())} bytes, id `{event.event_id().hex()}`" in PAGE
