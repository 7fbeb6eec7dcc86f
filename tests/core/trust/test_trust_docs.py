"""docs/trust.md is normative: its tables, parameters, layouts and codes are the code's."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

from chainmall.core import constants
from chainmall.core.encoding import Writer
from chainmall.core.errors import registry
from chainmall.core.genesis import _TRUST_PARAM_RULES, TrustGenesis, TrustParams
from chainmall.core.trust import records
from chainmall.core.trust.install import HANDLERS, OBSERVERS
from chainmall.core.trust.queries import QUERIES

DOC = (Path(__file__).resolve().parents[3] / "docs" / "trust.md").read_text()


def rows(pattern: str) -> list:
    return re.findall(pattern, DOC, re.MULTILINE)


def test_the_tx_type_table_is_the_handler_table() -> None:
    documented = {int(number, 16): name for number, name in
                  rows(r"^\| (0x02[0-9A-F]{2}) \| ([A-Z_]+) \|")}
    for number, name in documented.items():
        assert getattr(constants, f"TX_TRUST_{name}") == number, name
    assert set(documented) == set(HANDLERS)
    assert {constants.TX_TYPE_TRANSFER, constants.TX_MALL_PRODUCT_LIST,
            constants.TX_MALL_PRODUCT_DELIST, constants.TX_MALL_ORDER_PLACE} == set(OBSERVERS)


def test_the_state_table_list_is_trust_tables() -> None:
    documented = {int(number, 16): name for number, name in
                  rows(r"^\| (0x3[0-9A-F]) \| (trust_\w+) \|")}
    assert documented == constants.TRUST_TABLES


def test_the_parameter_table_is_the_genesis_rules_in_order() -> None:
    table = DOC[DOC.index("| parameter | default |"):]
    table = table[:table.index("\n\n")]
    documented = []
    for names, default in re.findall(r"^\| ([a-z_, ]+) \| ([0-9, ]+)(?: \([^)]*\))? \|",
                                     table, re.MULTILINE):
        defaults = [int(d) for d in default.split(", ")]
        for name, value in zip(names.split(", "), defaults * len(names.split(", ")),
                               strict=False):
            documented.append((name, value))
    assert [name for name, _ in documented] == [name for name, *_ in _TRUST_PARAM_RULES]
    assert [f.name for f in fields(TrustParams)] == [name for name, *_ in _TRUST_PARAM_RULES]
    for name, value in documented:
        assert getattr(TrustParams(), name) == value, name
    writer = Writer()
    TrustGenesis().encode(writer)
    assert f"encodes as the {len(writer.getvalue())} bytes" in DOC
    widths = {name: width for name, width, *_ in _TRUST_PARAM_RULES}
    block = DOC[DOC.index("u64: review_window_ms"):DOC.index("u16: the others")]
    for width, label in ((8, "u64:"), (1, "u8:")):
        part = block[block.index(label) + len(label):]
        part = part[:part.index("u8:")] if label == "u64:" else part
        listed = re.findall(r"[a-z_]+", part)
        assert listed == [name for name, w in widths.items() if w == width], label


def test_the_query_table_is_the_code_s() -> None:
    assert set(rows(r"^\| `(/trust/\w+)` \|")) == set(QUERIES)


def test_record_layouts_and_sizes_are_documented() -> None:
    for layout in ("_ORDER", "_MERCHANT", "_PRODUCT", "_EPOCH", "_ACCOUNT"):
        struct = getattr(records, layout)
        assert f"`{struct.format}`, {struct.size} bytes" in DOC, layout


def test_every_error_named_with_a_code_has_that_code() -> None:
    codes = {cls.__name__: code for code, cls in registry().items()}
    mentioned = rows(r"`(\w+)` \(?(\d{3})\)?")
    assert len(mentioned) > 20
    for name, code in mentioned:
        if name in codes:
            assert codes[name] == int(code), (name, code)
