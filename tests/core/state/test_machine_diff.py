"""The block's diff against committed state (`machine._diff`): batched reads, one lookup
path or the other, the same changes."""

from __future__ import annotations

from chainmall.core.state.machine import _diff
from chainmall.core.state.overlay import BlockState

COMMITTED = {b"\x01a": b"1", b"\x01b": b"2", b"\x10x": b"3", b"\xffz": b"4"}


def _state(reads: list[bytes]) -> BlockState:
    def read(key: bytes) -> bytes | None:
        reads.append(key)
        return COMMITTED.get(key)

    state = BlockState(read, lambda start, end: iter(()))
    assert state.get(b"\x01b") == b"2"  # read by a tx: known before the diff
    for key, value in ((b"\x10x", b"3"), (b"\x01a", b"9"), (b"\x01c", None), (b"\x10y", b"5"),
                       (b"\xffz", None), (b"\xff\x00", b"6"), (b"\x01b", b"2")):
        if value is None:
            state.delete(key)
        else:
            state.set(key, value)
    return state


def test_the_diff_drops_writes_that_change_nothing_and_reads_each_key_once() -> None:
    expected = {b"\x01a": b"9", b"\x10y": b"5", b"\xff\x00": b"6", b"\xffz": None}
    calls: list[list[bytes]] = []
    reads: list[bytes] = []
    state = _state(reads)

    def read_many(keys: list[bytes]) -> list[bytes | None]:
        calls.append(list(keys))
        return [COMMITTED.get(key) for key in keys]

    changes = _diff(state, read_many)
    assert changes == expected and list(changes) == sorted(expected)
    assert calls == [[b"\x01a", b"\x01c"], [b"\x10x", b"\x10y"], [b"\xff\x00", b"\xffz"]]
    assert reads == [b"\x01b"]  # the tx's read; the rest in one call per table
    assert all(state.committed[key] == COMMITTED.get(key) for key in state.writes)

    one_by_one: list[bytes] = []
    assert _diff(_state(one_by_one), None) == expected
    assert sorted(one_by_one) == sorted(state.writes)
