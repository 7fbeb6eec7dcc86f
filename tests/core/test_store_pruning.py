"""Pruning: the trees of the last `retain_heights` heights stay whole, older nodes go,
and a node that comes back (a value set to an earlier one) is never deleted while used."""

from __future__ import annotations

import random
from pathlib import Path

from chainmall.core.constants import STORE_FLUSH_SLICES, STORE_MERGE_BLOCKS, STORE_MID_SLICES
from chainmall.core.state.root import EMPTY_ROOT, InternalNode, StateTree, decode_node
from chainmall.core.store import BlockCommit, Store, StoreView

RETAIN = 8
KEYS = [b"\x01" + bytes([i]) for i in range(48)]
VALUES = [b"a", b"b", b"c"]  # few values: leaves and subtrees keep coming back


def tree_nodes(view: StoreView, root: bytes) -> set[bytes]:
    """Every node of the stored tree at `root` (AssertionError if one is missing)."""
    found: set[bytes] = set()
    todo = [root]
    while todo:
        node_hash = todo.pop()
        if node_hash == EMPTY_ROOT or node_hash in found:
            continue
        raw = view.get_node(node_hash)
        assert raw is not None, f"node {node_hash.hex()} of a retained tree is gone"
        found.add(node_hash)
        node = decode_node(raw)
        if isinstance(node, InternalNode):
            todo += [node.left, node.right]
    return found


def new_store(path: Path, retain: int) -> tuple[Store, list[bytes]]:
    """A store at height 0 holding KEYS, and its roots by height."""
    store = Store(path, retain_heights=retain)
    genesis = {key: b"a" for key in KEYS}
    update = StateTree(_Empty()).apply(genesis)
    store.init_genesis("prune", b"\x11" * 32, genesis, update.new_nodes, update.root)
    return store, [update.root]


def grow(store: Store, roots: list[bytes], blocks: int, rng: random.Random) -> None:
    """Commit `blocks` blocks of random changes to KEYS; after each merge, check that the
    trees of the retained heights are whole."""
    for height in range(len(roots), len(roots) + blocks):
        with store.reader() as view:
            current = dict(view.state_items())
            changes: dict[bytes, bytes | None] = {}
            for key in rng.sample(KEYS, rng.randint(1, 8)):
                value = rng.choice([*VALUES, None])
                if current.get(key) != value:
                    changes[key] = value
            update = StateTree(view, roots[-1]).apply(changes)
        store.commit_block(BlockCommit(
            height=height, block_hash=height.to_bytes(32, "big"), block_bytes=b"b%d" % height,
            tx_ids=[], receipts_bytes=b"", parent_app_hash=roots[-1], app_hash=update.root,
            state_changes=changes, new_nodes=update.new_nodes,
            stale_nodes=update.stale_nodes))
        roots.append(update.root)
        if height % STORE_MERGE_BLOCKS == 0:
            with store.reader() as view:
                first = max(0, height - store.retain_heights) if store.retain_heights else 0
                for kept in range(first, height + 1):
                    tree_nodes(view, roots[kept])


class _Empty:
    def get_node(self, node_hash: bytes) -> bytes | None:
        return None


def test_retained_trees_stay_whole_and_old_nodes_go(tmp_path: Path) -> None:
    blocks = STORE_MERGE_BLOCKS * STORE_FLUSH_SLICES * 2 + 5  # every slice pruned twice
    pruned, roots = new_store(tmp_path / "pruned", RETAIN)
    full, full_roots = new_store(tmp_path / "full", 0)
    with pruned, full:
        grow(pruned, roots, blocks, random.Random(5))
        grow(full, full_roots, blocks, random.Random(5))
        assert roots == full_roots
        assert pruned.pruned_nodes > 0 and full.pruned_nodes == 0
        with pruned.reader() as view, full.reader() as full_view:
            assert view.last() == full_view.last()
            assert view.entry_counts()["tree"] < full_view.entry_counts()["tree"] / 2
            tip = view.last().app_hash
            assert tree_nodes(view, tip) == tree_nodes(full_view, tip)
            # A record waits at most for its first byte's turn (every 256 blocks).
            oldest = blocks - RETAIN - STORE_MID_SLICES
            with pruned._env.begin() as txn:
                heights = [int.from_bytes(key[1:9], "big")
                           for key in txn.cursor(pruned._dbs["tree_stale"]).iternext(values=False)]
            assert heights and min(heights) > oldest, (min(heights), oldest)


def test_the_tree_table_stays_flat_while_the_chain_grows(tmp_path: Path) -> None:
    cycle = STORE_MERGE_BLOCKS * STORE_FLUSH_SLICES  # every slice is pruned once per cycle
    store, roots = new_store(tmp_path / "flat", RETAIN)
    rng = random.Random(9)
    sizes = []
    with store:
        for _ in range(3):
            grow(store, roots, cycle, rng)
            with store.reader() as view:
                sizes.append(view.entry_counts()["tree"])
    # Without pruning the table would grow by a cycle's stale nodes each time; with it,
    # it holds the live tree plus at most about a cycle's worth.
    assert max(sizes) < 1.5 * min(sizes), sizes


def test_db_check_accepts_a_pruned_store(tmp_path: Path) -> None:
    from chainmall.core.abci.app import ledger_machine
    from chainmall.core.check import check_store
    from chainmall.core.constants import TX_TYPE_TRANSFER
    from chainmall.core.genesis import make_genesis
    from chainmall.core.keys import KeyPair
    from chainmall.core.state.accounts import encode_transfer
    from chainmall.core.tx import sign_tx

    keys = [KeyPair.from_seed(bytes([i]) * 32) for i in range(1, 9)]
    validator = KeyPair.from_seed(b"v" * 32)
    genesis = make_genesis("pruned", [(k.address, 10**9) for k in keys],
                           [(validator.public_key, 1)], fee_min=1)
    blocks = 3 * STORE_MERGE_BLOCKS
    with Store(tmp_path / "ledger", retain_heights=2) as store:
        machine = ledger_machine(store, genesis)  # as db check replays: default modules
        for height in range(1, blocks + 1):
            txs = [sign_tx(key, "pruned", TX_TYPE_TRANSFER, height - 1, 1, 10**6,
                           encode_transfer(keys[(i + 1) % 8].address, height))
                   for i, key in enumerate(keys)]
            machine.execute(height, height, validator.public_key, txs)
            machine.commit()
        assert store.pruned_nodes > 0
        with store.reader() as view:
            assert view.pruned_height() > 0
            tip_root = view.last().app_hash
        assert check_store(store, genesis) == (blocks, [])
    # A node of a tree that must be whole is still held to it.
    with Store(tmp_path / "ledger", retain_heights=2) as store:
        with store._env.begin(write=True) as txn:
            for name in ("tree", "tree_mid", f"tree_recent_{tip_root[0] >> 4:x}"):
                txn.delete(tip_root, db=store._dbs[name])
        height, problems = check_store(store, genesis)
    assert height == blocks
    assert any(tip_root.hex() in line and "is missing" in line for line in problems), problems
