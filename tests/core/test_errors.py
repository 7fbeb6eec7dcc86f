"""The error registry: unique append-only codes, documented in docs/errors.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from chainmall.core import errors

DOC = Path(__file__).resolve().parents[2] / "docs" / "errors.md"


def test_every_code_is_documented_exactly() -> None:
    rows = re.findall(r"^\| (\d+) \| `(\w+)` \| `(\w+)` \|", DOC.read_text(), re.MULTILINE)
    documented = {int(code): name for code, name, _ in rows}
    assert documented == {code: cls.__name__ for code, cls in errors.registry().items()}


def test_duplicate_code_is_refused() -> None:
    with pytest.raises(TypeError, match="taken"):

        class Clash(errors.ChainmallError):  # pragma: no cover - the class is refused
            code = errors.DecodeError.code


def test_subclass_must_define_its_code() -> None:
    with pytest.raises(TypeError, match="own code"):

        class NoCode(errors.InvalidInput):  # pragma: no cover - the class is refused
            pass


def test_input_errors_are_value_errors() -> None:
    assert issubclass(errors.DecodeError, ValueError)
    assert issubclass(errors.BadSignature, errors.InvalidTx)
    assert errors.error_class(113) is errors.BadSignature


def test_check_order_codes_are_distinct() -> None:
    codes = [cls.code for cls in errors.TX_CHECK_ORDER]
    assert len(set(codes)) == len(codes)
    assert errors.TX_OK not in codes
