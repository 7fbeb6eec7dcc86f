"""core/osproc.py: the malloc setting the node applies at start."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

# A child process frees a 16 MiB buffer (which, by glibc's default, lifts the mmap threshold
# to 16 MiB), then allocates 2 MiB: with the threshold pinned (1 MiB), those 2 MiB are a
# mapping of their own, returned to the kernel when freed; without it, they come from the heap.
_CHILD = textwrap.dedent("""
    import sys
    from chainmall.core.osproc import fix_malloc_mmap_threshold

    def mappings():  # address ranges, but the heap's (which grows in place)
        with open("/proc/self/maps") as maps:
            return {line.split()[0] for line in maps if "[heap]" not in line}

    pinned = sys.argv[1] == "pin"
    if pinned and not fix_malloc_mmap_threshold():
        print("no-mallopt")
        raise SystemExit
    big = bytearray(16 << 20)
    del big
    before = mappings()
    buffer = bytearray(2 << 20)
    print("own-mapping" if mappings() - before else "heap")
""")


def _where_two_mebibytes_go(mode: str) -> str:
    run = subprocess.run([sys.executable, "-c", _CHILD, mode], capture_output=True, text=True,
                         check=True, timeout=60)
    return run.stdout.strip()


def test_a_pinned_threshold_keeps_large_blocks_in_their_own_mappings() -> None:
    pinned = _where_two_mebibytes_go("pin")
    if pinned == "no-mallopt":
        pytest.skip("no glibc mallopt here")
    assert pinned == "own-mapping"
    assert _where_two_mebibytes_go("default") == "heap"  # what the pin prevents
