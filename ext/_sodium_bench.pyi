"""Type stubs of chainmall.ext._sodium_bench: libsodium's verify loop, the benchmark baseline."""

from collections.abc import Sequence

_Buffer = bytes | bytearray | memoryview

def verify_batch(
    public_keys: _Buffer, messages: _Buffer, offsets: Sequence[int], signatures: _Buffer
) -> list[bool]:
    """libsodium's verdict on n packed signatures, one thread (benchmark use only)."""

def sodium_version() -> str:
    """Version of the linked libsodium."""
