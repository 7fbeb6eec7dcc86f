"""core/osproc.py: the malloc setting the node applies at start."""

from __future__ import annotations

import os
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

    def mapped_bytes():  # every mapping's size but the heap's (which grows in place)
        total = 0
        with open("/proc/self/maps") as maps:
            for line in maps:
                if "[heap]" not in line:
                    low, high = line.split()[0].split("-")
                    total += int(high, 16) - int(low, 16)
        return total

    pinned = sys.argv[1] == "pin"
    if pinned and not fix_malloc_mmap_threshold():
        print("no-mallopt")
        raise SystemExit
    big = bytearray(16 << 20)
    del big
    before = mapped_bytes()
    buffer = bytearray(2 << 20)
    # (a new 1 MiB arena of Python's small-object allocator stays under the 2 MiB asked)
    print("own-mapping" if mapped_bytes() - before >= 2 << 20 else "heap")
""")


def _where_two_mebibytes_go(mode: str) -> str:
    env = {name: value for name, value in os.environ.items() if not name.startswith("MALLOC_")}
    run = subprocess.run([sys.executable, "-c", _CHILD, mode], capture_output=True, text=True,
                         check=True, timeout=60, env=env)
    return run.stdout.strip()


def test_a_pinned_threshold_keeps_large_blocks_in_their_own_mappings() -> None:
    pinned = _where_two_mebibytes_go("pin")
    if pinned == "no-mallopt":
        pytest.skip("no glibc mallopt here")
    assert pinned == "own-mapping"
    assert _where_two_mebibytes_go("default") == "heap"  # what the pin prevents
