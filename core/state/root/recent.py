"""A NodeReader that answers from the last committed block's new nodes before the store.

Every block rewrites the nodes on each touched path, so the next block's
update walks mostly through nodes the last block made: with 10,000
transfers among a few thousand accounts, all of them. Those nodes are still
in memory (the committed block's `TreeUpdate.new_nodes`), so the tree reads
them from there, and only the others from the store (one `get_nodes` call
for what is left of each batch).

Nodes are content-addressed (hash -> encoding), so a node found here is the
node the store holds under that hash: the answers are the store's. The
tree checks every node it reads against its hash either way.
"""

from __future__ import annotations

from collections.abc import Mapping

from .nodes import NodeReader

__all__ = ["RecentNodes"]


class RecentNodes:
    """`reader` (a NodeReader), with `nodes` (hash -> encoding) looked up first."""

    __slots__ = ("_get", "_reader")

    def __init__(self, reader: NodeReader, nodes: Mapping[bytes, bytes]) -> None:
        self._reader = reader
        self._get = nodes.get

    def get_node(self, node_hash: bytes) -> bytes | None:
        """The encoding stored under `node_hash`, None if absent (NodeReader)."""
        found = self._get(node_hash)
        return self._reader.get_node(node_hash) if found is None else found

    def get_nodes(self, node_hashes: list[bytes]) -> list[bytes | None]:
        """`get_node` of each hash: the reader is asked once, for the hashes not here."""
        found = list(map(self._get, node_hashes))
        if None not in found:
            return found
        missing = [at for at, value in enumerate(found) if value is None]
        asked = [node_hashes[at] for at in missing]
        get_nodes = getattr(self._reader, "get_nodes", None)
        answers = (get_nodes(asked) if get_nodes is not None
                   else list(map(self._reader.get_node, asked)))
        for at, value in zip(missing, answers, strict=True):
            found[at] = value
        return found
