"""docs/mall.md is normative: its tables and error codes are checked against the code."""

from __future__ import annotations

import re
from pathlib import Path

from chainmall.core import constants
from chainmall.core.errors import registry
from chainmall.core.mall.escrow import TRANSITIONS
from chainmall.core.mall.install import HANDLERS
from chainmall.core.mall.queries import QUERIES
from chainmall.core.mall.vocab import (
    BIZ_STEP_RULES,
    BIZ_STEPS,
    NO_STEP_RULE,
    ROLE_NAMES,
    TRACE_ROLES,
    index_of,
)

DOC = (Path(__file__).resolve().parents[3] / "docs" / "mall.md").read_text()


def rows(pattern: str) -> list[tuple[str, ...]]:
    return re.findall(pattern, DOC, re.MULTILINE)


def test_the_tx_type_table_is_the_handler_table() -> None:
    documented = {int(number, 16): name for number, name in
                  rows(r"^\| (0x01[0-9A-F]{2}) \| ([A-Z_]+) \|")}
    names = {getattr(constants, f"TX_MALL_{name}"): name for name in documented.values()
             if hasattr(constants, f"TX_MALL_{name}")}
    aliases = {"MERCHANT_CERTIFY": "CERTIFY", "MERCHANT_REVOKE": "REVOKE"}
    for number, name in documented.items():
        assert getattr(constants, f"TX_MALL_{aliases.get(name, name)}") == number, name
    assert set(documented) == set(HANDLERS)
    assert names  # the lookup above found constants


def test_the_state_table_list_is_state_tables() -> None:
    documented = {int(number, 16): name for number, name in
                  rows(r"^\| (0x[12][0-9A-F]) \| (mall_\w+) \|")}
    assert documented == constants.MALL_TABLES


def test_the_transition_table_is_the_code_s() -> None:
    documented = rows(r"^\| (funded|shipped|delivered|disputed) \| (.+?) \| (.+?) \| (\w+) \|$")
    assert [tuple(r) for r in documented] == [tuple(t) for t in TRANSITIONS]


def test_the_biz_step_table_is_the_code_s() -> None:
    by_name = {name: role for role, name in ROLE_NAMES.items()}
    seen = set()
    for steps, roles, custody in rows(r"^\| ([a-z_, ]+|\(none\)) \| ([a-z, ]+) \| (yes|no) \|$"):
        mask = TRACE_ROLES if roles == "any trace role" else sum(
            by_name[r] for r in roles.split(", "))
        for step in steps.split(", "):
            rule = NO_STEP_RULE if step == "(none)" else BIZ_STEP_RULES[index_of(BIZ_STEPS,
                                                                                  step)]
            assert (rule.roles, rule.custody) == (mask, custody == "yes"), step
            seen.add(step)
    assert seen == {*BIZ_STEPS, "(none)"}


def test_the_query_table_is_the_code_s() -> None:
    assert {path for (path,) in [(p,) for p in rows(r"^\| `(/mall/\w+)` \|")]} == set(QUERIES)


def test_every_error_named_with_a_code_has_that_code() -> None:
    codes = registry()
    mentioned = rows(r"`(\w+)` \(?(\d{3})\)?")
    mentioned += rows(r"\(`(\w+)` (\d{3})")
    assert mentioned
    for name, code in mentioned:
        if name in {cls.__name__ for cls in codes.values()}:
            assert codes[int(code)].__name__ == name, (name, code)
