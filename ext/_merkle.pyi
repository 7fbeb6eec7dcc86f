"""Type stubs of chainmall.ext._merkle: Merkle root, proof and verify over BLAKE3 in C."""

from collections.abc import Sequence

_Buffer = bytes | bytearray | memoryview

HASH_BYTES: int
MERKLE_LEAVES_MAX: int
MERKLE_LEAF_CONTEXT: str
MERKLE_NODE_CONTEXT: str
MERKLE_LEAF_KEY: bytes
MERKLE_NODE_KEY: bytes
EMPTY_ROOT: bytes

def merkle_root(leaves: _Buffer) -> bytes:
    """The Merkle root of the packed 32-byte `leaves` (ValueError if malformed)."""

def merkle_proof(leaves: _Buffer, index: int) -> list[bytes]:
    """Sibling hashes, bottom-up, proving leaf `index` of the packed `leaves`."""

def merkle_verify(
    root: bytes, leaf: bytes, index: int, count: int, proof: Sequence[bytes]
) -> bool:
    """Whether `proof` shows `leaf` at `index` among `count` leaves under `root`."""

def backend() -> str:
    """Name of the BLAKE3 back end this kernel hashes with."""

def set_backend(name: str) -> None:
    """Force this kernel's BLAKE3 back end ("auto" for the CPU's best)."""

def describe() -> str:
    """One line naming the BLAKE3 back end, e.g. "Merkle over BLAKE3 avx2 (...)"."""
