"""RecentNodes: the last committed block's new nodes read before the store, same answers."""

from __future__ import annotations

import pytest
from chainmall.core.constants import TX_TYPE_TRANSFER
from chainmall.core.genesis import make_genesis
from chainmall.core.keys import KeyPair
from chainmall.core.state.accounts import encode_transfer
from chainmall.core.state.machine import StateMachine
from chainmall.core.state.root import MemoryNodeStore, StateTree
from chainmall.core.state.root.recent import RecentNodes
from chainmall.core.store import Store, StoreView
from chainmall.core.tx import sign_tx

CHAIN = "recent-nodes"
KEYS = [KeyPair.from_seed(bytes([i]) * 32) for i in range(1, 9)]
VALIDATOR = KeyPair.from_seed(b"r" * 32)
GENESIS = make_genesis(CHAIN, [(k.address, 10**9) for k in KEYS], [(VALIDATOR.public_key, 1)],
                       genesis_time_ms=1_000, fee_min=1)


class CountingReader:
    """A MemoryNodeStore that records what it is asked, with or without `get_nodes`."""

    def __init__(self, nodes: dict[bytes, bytes], batched: bool) -> None:
        self._store = MemoryNodeStore(nodes)
        self.asked: list[list[bytes]] = []
        if batched:
            self.get_nodes = self._get_nodes

    def get_node(self, node_hash: bytes) -> bytes | None:
        self.asked.append([node_hash])
        return self._store.get_node(node_hash)

    def _get_nodes(self, node_hashes: list[bytes]) -> list[bytes | None]:
        self.asked.append(list(node_hashes))
        return self._store.get_nodes(node_hashes)


def _two_trees() -> tuple[dict[bytes, bytes], dict[bytes, bytes]]:
    """The nodes of a tree, and the new nodes of one update of it."""
    old = StateTree(MemoryNodeStore()).apply({bytes([1, i]): bytes([i]) for i in range(40)})
    store = MemoryNodeStore(old.new_nodes)
    new = StateTree(store, old.root).apply({bytes([1, i]): b"x" for i in range(0, 40, 3)})
    return old.new_nodes, new.new_nodes


@pytest.mark.parametrize("batched", [True, False])
def test_answers_are_the_readers_and_only_the_missing_are_asked(batched: bool) -> None:
    stored, recent = _two_trees()
    reader = CountingReader(stored | recent, batched)
    nodes = RecentNodes(reader, recent)
    in_recent = list(recent)[:5]
    in_store = [h for h in stored if h not in recent][:5]
    asked = [in_store[0], *in_recent[:2], b"\x07" * 32, in_store[1], in_recent[2]]
    expected = [reader._store.get_node(h) for h in asked]
    reader.asked.clear()
    assert nodes.get_nodes(asked) == expected
    wanted = [in_store[0], b"\x07" * 32, in_store[1]]
    assert reader.asked == ([wanted] if batched else [[h] for h in wanted])
    reader.asked.clear()
    assert nodes.get_nodes(in_recent) == [recent[h] for h in in_recent]
    assert nodes.get_node(in_recent[0]) == recent[in_recent[0]]
    assert reader.asked == []
    assert nodes.get_node(in_store[2]) == stored[in_store[2]] and reader.asked == [[in_store[2]]]
    assert nodes.get_nodes([]) == []


def test_a_block_reads_the_last_blocks_nodes_from_memory(tmp_path, monkeypatch) -> None:
    asked: list[bytes] = []  # what the tree asked the store for (kernel or reference)
    get_node, get_nodes = StoreView.get_node, StoreView.get_nodes

    def counted(view: StoreView, node_hashes: list[bytes]) -> list[bytes | None]:
        asked.extend(node_hashes)
        return get_nodes(view, node_hashes)

    def counted_one(view: StoreView, node_hash: bytes) -> bytes | None:
        asked.append(node_hash)
        return get_node(view, node_hash)

    monkeypatch.setattr(StoreView, "get_nodes", counted)
    monkeypatch.setattr(StoreView, "get_node", counted_one)
    with Store(tmp_path / "data") as store:
        machine = StateMachine(store, GENESIS)
        news = []
        for height in (1, 2, 3):
            txs = [sign_tx(key, CHAIN, TX_TYPE_TRANSFER, height - 1, 1, 100,
                           encode_transfer(KEYS[(i + height) % len(KEYS)].address, 5))
                   for i, key in enumerate(KEYS)]
            block = machine.build_block(txs, 1_000 * height, VALIDATOR.public_key)
            machine.finalize_block(block)
            news.append(machine._pending.commit.new_nodes)
            machine.commit()
        # Every block rewrites every account (and the tree above them): nothing is read
        # from the store, and a second machine on the same store gets the same roots.
        assert asked == []
        monkeypatch.undo()
        root = machine.tip.app_hash
    with Store(tmp_path / "data") as store:
        again = StateMachine(store, GENESIS)
        assert again.tip.app_hash == root
        with store.reader() as view:
            for new in news:
                assert view.get_nodes(list(new)) == list(new.values())
