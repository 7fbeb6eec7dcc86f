"""Type stubs of chainmall.ext._tree: one batch update of the state tree, in C."""

from collections.abc import Callable
from typing import Any, Protocol

HASH_BYTES: int
STATE_PATH_BITS: int
STATE_NODE_VERSION: int
STATE_LEAF_CONTEXT: str
STATE_NODE_CONTEXT: str
STATE_LEAF_KEY: bytes
STATE_NODE_KEY: bytes
KIND_LEAF: int
KIND_INTERNAL: int
NODE_BYTES: int
EMPTY_ROOT: bytes

class _Reader(Protocol):
    def get_node(self, node_hash: bytes) -> bytes | bytearray | memoryview | None: ...

def describe() -> str:
    """What this kernel is, for `chainmall doctor`."""

def hash_order(hashes: bytes) -> list[int]:
    """The indexes of the packed 32-byte hashes in their byte order (core/store.py)."""

class Apply:
    """One batch update (core/state/root/tree.py `_Apply`, same methods and results).

    `changes` is `_sorted_changes`' list; `result_class` builds the result
    (TreeUpdate), `corrupt` makes a store fault's error from its message and
    `parse_node` raises the DecodeError that says what is wrong with a node.
    """

    nodes_read: int

    def __init__(
        self,
        reader: _Reader,
        changes: list[tuple[int, bytes, bytes | None]],
        result_class: Callable[..., Any],
        corrupt: Callable[[str], BaseException],
        parse_node: Callable[[object], object],
    ) -> None: ...
    def update(self, node_hash: bytes, depth: int, lo: int, hi: int) -> tuple[int | bytes, int]:
        """Apply changes[lo:hi] to the stored subtree `node_hash` at `depth`: (ref, kind)."""
    def check_reads(self) -> None:
        """`corrupt(...)` unless every node read hashes to the hash it was read under."""
    def finish(self, root: int | bytes) -> Any:
        """Check the reads, hash the new nodes and return `result_class(...)`."""
