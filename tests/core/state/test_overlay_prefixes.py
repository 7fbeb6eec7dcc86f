"""BlockState.prefixes_in_use (which senders have any watched entry, core/state/overlay.py)
against a brute-force answer over random committed entries and block writes."""

from __future__ import annotations

import bisect

from chainmall.core.state.overlay import BlockState
from hypothesis import given, settings
from hypothesis import strategies as st

TABLE = b"\x38"
END = b"\x39"
groups = st.sampled_from([TABLE + bytes([a, b]) for a in (0, 7, 255) for b in (0, 1, 254)])
keys = st.builds(lambda group, tail: group + tail, groups, st.binary(min_size=0, max_size=3))


def block_state(committed: dict[bytes, bytes], reads: list[tuple[bytes, bytes]]) -> BlockState:
    ordered = sorted(committed)

    def read_range(start: bytes, end: bytes):
        reads.append((start, end))
        at = bisect.bisect_left(ordered, start)
        while at < len(ordered) and ordered[at] < end:
            yield ordered[at], committed[ordered[at]]
            at += 1

    return BlockState(committed.get, read_range)


@settings(max_examples=300)
@given(committed=st.lists(keys, max_size=12), written=st.lists(keys, max_size=4),
       deleted=st.lists(keys, max_size=3), asked=st.lists(groups, max_size=9))
def test_prefixes_in_use_are_those_holding_a_key(committed, written, deleted, asked) -> None:
    reads: list[tuple[bytes, bytes]] = []
    state = block_state(dict.fromkeys(committed, b"v"), reads)
    for key in written:
        state.set(key, b"w")
    for key in deleted:
        state.delete(key)
    prefixes = sorted(set(asked))
    held = set(committed) | set(written) | set(deleted)
    expected = [prefix for prefix in prefixes if any(key.startswith(prefix) for key in held)]
    assert state.prefixes_in_use(prefixes, END) == expected
    # At most one committed read per prefix asked, plus one, and fewer when committed
    # keys are few: each read lands on a committed key's group, at most two per group.
    groups_held = {key[:3] for key in committed}
    assert len(reads) <= min(len(prefixes), 2 * len(groups_held)) + 1


def test_no_prefixes_no_reads() -> None:
    reads: list[tuple[bytes, bytes]] = []
    assert block_state({}, reads).prefixes_in_use([], END) == []
    assert reads == []
