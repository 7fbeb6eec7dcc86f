"""BlockState.pending_in keeps a sorted index of the block's written keys: it must give
exactly what a pass over every write gives, however writes and scans interleave."""

from __future__ import annotations

from chainmall.core.state.overlay import BlockState, TxScratch
from hypothesis import given
from hypothesis import strategies as st

KEYS = st.binary(min_size=1, max_size=3)
STEPS = st.lists(st.tuples(st.sampled_from(["set", "delete", "scan"]), KEYS, KEYS),
                 max_size=80)


@given(STEPS)
def test_pending_in_matches_a_full_pass(steps: list[tuple[str, bytes, bytes]]) -> None:
    state = BlockState(lambda key: None, lambda start, end: iter(()))
    for action, first, second in steps:
        if action == "set":
            state.set(first, second)
        elif action == "delete":
            state.delete(first)
        else:
            start, end = min(first, second), max(first, second)
            expected = {key: value for key, value in state.writes.items()
                        if start <= key < end}
            got = state.pending_in(start, end)
            assert got == expected and list(got) == sorted(expected)


@given(STEPS, STEPS)
def test_a_tx_scan_sees_the_block_and_its_own_writes(block_steps, tx_steps) -> None:
    committed = {b"\x05": b"c", b"\x05\x01": b"d"}

    def read_range(start: bytes, end: bytes):
        return iter(sorted((k, v) for k, v in committed.items() if start <= k < end))

    block = BlockState(committed.get, read_range)
    scratch = TxScratch(block)
    for steps, target in ((block_steps, block), (tx_steps, scratch)):
        for action, first, second in steps:
            if action == "set":
                target.set(first, second)
            elif action == "delete":
                target.delete(first)
            elif first[0] == second[0] and first != second:  # a scan stays in one table
                start, end = min(first, second), max(first, second)
                merged = {**committed, **block.writes,
                          **(scratch.writes if target is scratch else {})}
                expected = sorted((k, v) for k, v in merged.items()
                                  if start <= k < end and v is not None)
                assert target.scan(start, end) == expected


@given(STEPS, st.lists(KEYS, max_size=20), st.booleans())
def test_get_many_is_get_of_each_key(steps, keys, batched) -> None:
    committed = {b"\x05": b"c", b"\x05\x01": b"d", b"\x06": b"e"}
    reads: list[list[bytes]] = []

    def read_many(wanted: list[bytes]) -> list[bytes | None]:
        reads.append(wanted)
        return [committed.get(key) for key in wanted]

    state = BlockState(committed.get, lambda start, end: iter(()),
                       read_many if batched else None)
    for action, first, second in steps:
        if action == "set":
            state.set(first, second)
        elif action == "delete":
            state.delete(first)
    expected = [state.get(key) for key in keys]
    fresh = BlockState(committed.get, lambda start, end: iter(()),
                       read_many if batched else None)
    fresh.writes.update(state.writes)
    assert fresh.get_many(keys) == expected
    assert fresh.get_many(keys) == expected  # the committed values are kept: no read again
    assert len(reads) <= (1 if batched else 0) and all(reads)
    assert all(fresh.committed[key] == committed.get(key)
               for key in keys if key not in state.writes)
