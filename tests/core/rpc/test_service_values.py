"""The RPC's per-tx values (SubmitResult, TxInfo): plain slotted values that compare and
hash by their fields, as the frozen dataclasses they replaced did."""

from __future__ import annotations

import pytest
from chainmall.core.rpc.services import SubmitResult, TxInfo, TxState


def test_submit_result_compares_and_hashes_by_value() -> None:
    a, b = SubmitResult(b"\x01" * 32, 0), SubmitResult(b"\x01" * 32, 0, "")
    assert a == b and hash(a) == hash(b)
    assert a != SubmitResult(b"\x01" * 32, 7, "refused")
    assert {a, b} == {a}


def test_tx_info_compares_and_hashes_by_value() -> None:
    final = TxInfo(b"\x02" * 32, TxState.FINAL, 5, 3, 0, "", ())
    assert final == TxInfo(b"\x02" * 32, TxState.FINAL, height=5, index=3)
    assert hash(final) == hash(TxInfo(b"\x02" * 32, TxState.FINAL, 5, 3))
    assert final != TxInfo(b"\x02" * 32, TxState.PENDING)
    assert TxInfo(b"\x03" * 32, TxState.UNKNOWN).tx == b""


@pytest.mark.parametrize("value", [SubmitResult(b"", 1), TxInfo(b"", TxState.UNKNOWN)])
def test_values_have_no_instance_dict(value: object) -> None:
    """Slotted: no per-object dict (memory per recent outcome) and no stray attributes."""
    assert not hasattr(value, "__dict__")
    with pytest.raises(AttributeError):
        value.extra = 1  # type: ignore[attr-defined]
