"""The state tree: roots against a naive reference, canonical shape, proofs, codecs, cost."""

from __future__ import annotations

import itertools
import math
import random
import re
from collections.abc import Mapping
from pathlib import Path

import blake3
import pytest
from chainmall.core.errors import DecodeError, InvalidInput, StorageError
from chainmall.core.state import root as sr
from chainmall.core.state.root import (
    EMPTY_ROOT,
    InternalNode,
    LeafNode,
    MemoryNodeStore,
    Proof,
    StateTree,
    TreeUpdate,
    decode_node,
    decode_proof,
    verify_proof,
)
from hypothesis import given, settings
from hypothesis import strategies as st

# --- an independent reference: the blake3 package and the recursive definition ---


def _key(context: str) -> bytes:
    return blake3.blake3(b"", derive_key_context=context).digest()


REF_PATH_KEY = _key("chainmall 2026-11 state path v1")
REF_VALUE_KEY = _key("chainmall 2026-11 state value v1")
REF_LEAF_KEY = _key("chainmall 2026-11 state leaf v1")
REF_NODE_KEY = _key("chainmall 2026-11 state node v1")


def _h(data: bytes, key: bytes) -> bytes:
    return blake3.blake3(data, key=key).digest()


def _ref_subtree(leaves: list[tuple[str, bytes, bytes]], depth: int) -> bytes:
    """Root of the canonical subtree at `depth` over (bit string, path, value hash) leaves."""
    if not leaves:
        return bytes(32)
    if len(leaves) == 1:
        _, path, hashed = leaves[0]
        return _h(path + hashed, REF_LEAF_KEY)
    left = [leaf for leaf in leaves if leaf[0][depth] == "0"]
    right = [leaf for leaf in leaves if leaf[0][depth] == "1"]
    return _h(_ref_subtree(left, depth + 1) + _ref_subtree(right, depth + 1), REF_NODE_KEY)


def ref_root(model: Mapping[bytes, bytes]) -> bytes:
    """The state root recomputed from scratch from the full map."""
    leaves = []
    for key in sorted(model):
        path = _h(key, REF_PATH_KEY)
        bits = format(int.from_bytes(path, "big"), "0256b")
        leaves.append((bits, path, _h(model[key], REF_VALUE_KEY)))
    return _ref_subtree(leaves, 0)


# --- helpers ----------------------------------------------------------------------


class CountingReader:
    """A NodeReader over a dict that counts reads; returns memoryviews, as LMDB buffers do."""

    def __init__(self, nodes: dict[bytes, bytes]) -> None:
        self.nodes = nodes
        self.reads = 0

    def get_node(self, node_hash: bytes) -> memoryview | None:
        self.reads += 1
        data = self.nodes.get(node_hash)
        return None if data is None else memoryview(data)


def build(model: Mapping[bytes, bytes], store: MemoryNodeStore | None = None) -> StateTree:
    """A tree holding `model`, built with one apply, its nodes written to `store`."""
    store = MemoryNodeStore() if store is None else store
    update = StateTree(store).apply(model)
    store.put_nodes(update.new_nodes)
    return StateTree(store, update.root)


def commit(
    tree: StateTree, store: MemoryNodeStore, changes: Mapping
) -> tuple[StateTree, TreeUpdate]:
    update = tree.apply(changes)
    store.put_nodes(update.new_nodes)
    return StateTree(store, update.root), update


def check_canonical(store: MemoryNodeStore, root: bytes, update: TreeUpdate | None = None) -> int:
    """Walk the whole tree: canonical shape, leaves on their paths; returns the entry count.

    With `update`, also: every new node is reachable from the root.
    """
    reachable: set[bytes] = set()

    def walk(node_hash: bytes, depth: int, prefix: str) -> int:
        if node_hash == EMPTY_ROOT:
            return 0
        reachable.add(node_hash)
        data = store.get_node(node_hash)
        assert data is not None, "reachable node missing from the store"
        node = decode_node(data)
        assert node.hash() == node_hash
        if isinstance(node, LeafNode):
            bits = format(int.from_bytes(node.path, "big"), "0256b")
            assert bits.startswith(prefix)
            return 1
        assert depth < 256
        count = walk(node.left, depth + 1, prefix + "0") + walk(node.right, depth + 1, prefix + "1")
        assert count >= 2, "an internal node must hold two or more entries"
        return count

    count = walk(root, 0, "")
    if update is not None:
        assert all(node_hash in reachable for node_hash in update.new_nodes)
    return count


def apply_to_model(model: dict[bytes, bytes], changes: Mapping[bytes, bytes | None]) -> None:
    for key, value in changes.items():
        if value is None:
            model.pop(key, None)
        else:
            model[key] = value


keys = st.binary(min_size=0, max_size=5)
values = st.binary(min_size=0, max_size=8)
changes_st = st.dictionaries(keys, st.none() | values, max_size=25)
models = st.dictionaries(keys, values, max_size=40)


# --- the worked example of docs/state-root.md -----------------------------------------

EXAMPLE = {b"alice": b"100", b"bob": b"250", b"carol": b"7"}
EXAMPLE_ROOT = "4c3b185e1551f3b8db2603e2b5f7c4bec37e60994d5dff42d42d621d6ede0d97"
EXAMPLE_NODES = {
    # alice leaf, bob leaf, N2 = node(alice, bob), N1 = node(Empty, N2), carol leaf, root
    "bdfd2ed56046f79b305a6962e9cda0afa88cce2741d2e3c57392ad300d4e5ce8",
    "47582614a31c9b5cc7a0ede4b8b509a9aa69ed757799adf3eda2976ff7cee7db",
    "a07d37aa18fb1745848c5be4fc8b30b82ed61cf1172f51d249a2c7c8337d73c4",
    "e931e99abc2c8b88863d21123f2199d373d7e352e35f7f1e100003175cb89c53",
    "b07b46b75298b81ab57a083aa80a8b27504777a40152ef438b3bf3168e595c2e",
    EXAMPLE_ROOT,
}
EXAMPLE_PROOF_BOB = (
    "0101672e79dddc8939699a4db68f8fc12efb4fce7f41519c0f7e14043bcfe2d139e9"
    "c221919b55dcf4dce8b066d2250ca3648cc3eeeedac4e72c4dc57648a85ece45"
    "0003b07b46b75298b81ab57a083aa80a8b27504777a40152ef438b3bf3168e595c2e"
    "0000000000000000000000000000000000000000000000000000000000000000"
    "bdfd2ed56046f79b305a6962e9cda0afa88cce2741d2e3c57392ad300d4e5ce8"
)
EXAMPLE_PROOF_GRACE = (
    "01000002b07b46b75298b81ab57a083aa80a8b27504777a40152ef438b3bf3168e595c2e"
    "a07d37aa18fb1745848c5be4fc8b30b82ed61cf1172f51d249a2c7c8337d73c4"
)
EXAMPLE_PROOF_ERIN = (
    "0101e6c0a0480634d3ee334d1bf2ffba67744ba6ad2ef428bf4109243205d3916047"
    "8afaec8e03d0cda323d7756321393faa0521868e12f9a21cbe152c5f2af6bf3a"
    "0001e931e99abc2c8b88863d21123f2199d373d7e352e35f7f1e100003175cb89c53"
)
EXAMPLE_ROOT_WITHOUT_CAROL = "dbe7d206da66cff96e7ae0a5c210d5cfafa9074b6c1eea638c65b1d4b39769bb"


def test_domain_keys_match_the_contexts() -> None:
    assert sr.STATE_PATH_KEY == REF_PATH_KEY
    assert sr.STATE_VALUE_KEY == REF_VALUE_KEY
    assert sr.STATE_LEAF_KEY == REF_LEAF_KEY
    assert sr.STATE_NODE_KEY == REF_NODE_KEY
    assert sr.STATE_NODE_KEY.hex().startswith("e1929d94")


DOC = Path(__file__).resolve().parents[3] / "docs" / "state-root.md"


def test_doc_matches_the_code() -> None:
    """docs/state-root.md: its key table, example hashes and blake3-only snippet."""
    text = DOC.read_text()
    for name in ("PATH", "VALUE", "LEAF", "NODE"):
        key = getattr(sr, f"STATE_{name}_KEY").hex()
        assert f"| `STATE_{name}_KEY` |" in text and key in text
    for value in (EXAMPLE_ROOT, EXAMPLE_ROOT_WITHOUT_CAROL, *EXAMPLE_NODES):
        assert value in text
    snippets = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    assert len(snippets) == 1
    exec(compile(snippets[0], str(DOC), "exec"), {})


def test_worked_example() -> None:
    store = MemoryNodeStore()
    update = StateTree(store).apply(EXAMPLE)
    assert update.root.hex() == EXAMPLE_ROOT == ref_root(EXAMPLE).hex()
    assert {node_hash.hex() for node_hash in update.new_nodes} == EXAMPLE_NODES
    store.put_nodes(update.new_nodes)
    tree = StateTree(store, update.root)
    assert tree.prove(b"bob").encode().hex() == EXAMPLE_PROOF_BOB
    assert tree.prove(b"grace").encode().hex() == EXAMPLE_PROOF_GRACE
    assert tree.prove(b"erin").encode().hex() == EXAMPLE_PROOF_ERIN
    assert verify_proof(update.root, b"bob", b"250", decode_proof(bytes.fromhex(EXAMPLE_PROOF_BOB)))
    for absent, proof in ((b"grace", EXAMPLE_PROOF_GRACE), (b"erin", EXAMPLE_PROOF_ERIN)):
        assert verify_proof(update.root, absent, None, decode_proof(bytes.fromhex(proof)))
    tree, update = commit(tree, store, {b"carol": None})
    assert update.root.hex() == EXAMPLE_ROOT_WITHOUT_CAROL
    assert len(update.new_nodes) == 1  # node(N1, Empty); N1 and N2 are reused
    tree, update = commit(tree, store, {b"bob": None})
    assert update.new_nodes == {}
    assert update.root == sr.leaf_hash(sr.key_path(b"alice"), sr.value_hash(b"100"))


# --- roots: reference, determinism, canonical shape -------------------------------------


def test_empty_tree() -> None:
    tree = StateTree(MemoryNodeStore())
    assert tree.root == EMPTY_ROOT == bytes(32) == ref_root({})
    update = tree.apply({})
    assert update == TreeUpdate(EMPTY_ROOT, {}, 0)
    assert tree.apply({b"absent": None}) == TreeUpdate(EMPTY_ROOT, {}, 0)
    assert tree.get_value_hash(b"x") is None


def test_one_entry_is_its_leaf() -> None:
    update = StateTree(MemoryNodeStore()).apply({b"k": b"v"})
    assert update.root == sr.leaf_hash(sr.key_path(b"k"), sr.value_hash(b"v"))
    assert list(update.new_nodes) == [update.root]


@settings(derandomize=True, deadline=None, max_examples=300)
@given(models)
def test_root_matches_reference(model: dict[bytes, bytes]) -> None:
    store = MemoryNodeStore()
    tree = build(model, store)
    assert tree.root == ref_root(model)
    assert check_canonical(store, tree.root) == len(model)
    for key, value in model.items():
        assert tree.get_value_hash(key) == sr.value_hash(value)


@settings(derandomize=True, deadline=None, max_examples=200)
@given(st.lists(changes_st, min_size=1, max_size=8))
def test_block_sequence_matches_reference(batches: list[dict]) -> None:
    """Inserts, updates and interleaved deletes, block by block, equal a rebuild each time."""
    store = MemoryNodeStore()
    tree = StateTree(store)
    model: dict[bytes, bytes] = {}
    for changes in batches:
        before = tree.root
        tree, update = commit(tree, store, changes)
        apply_to_model(model, changes)
        assert update.root == ref_root(model)
        assert check_canonical(store, update.root, update) == len(model)
        # History is kept: the previous root still reads back whole.
        check_canonical(store, before)
    # Deleting everything that is left gives the empty root and writes nothing.
    _, update = commit(tree, store, dict.fromkeys(model))
    assert update.root == EMPTY_ROOT
    assert update.new_nodes == {}


@settings(derandomize=True, deadline=None, max_examples=150)
@given(models, st.data())
def test_root_is_independent_of_history(model: dict[bytes, bytes], data: st.DataObject) -> None:
    """Same final set via other orders, batchings and deleted extra keys: same root."""
    expected = build(model).root
    items = sorted(model.items())
    rng = random.Random(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    rng.shuffle(items)
    extra = data.draw(st.dictionaries(keys.filter(lambda k: k not in model), values, max_size=10))
    store = MemoryNodeStore()
    tree = StateTree(store)
    pending = items + sorted(extra.items())
    rng.shuffle(pending)
    while pending:
        size = rng.randint(1, 6)
        batch, pending = dict(pending[:size]), pending[size:]
        tree, _ = commit(tree, store, batch)
        # Sometimes overwrite a key with junk first; it is set right in a later batch.
        if pending and rng.random() < 0.3:
            junk_key = pending[0][0]
            tree, _ = commit(tree, store, {junk_key: b"junk"})
    tree, _ = commit(tree, store, dict.fromkeys(extra))
    assert tree.root == expected


def test_two_stores_fed_the_same_blocks_agree() -> None:
    """Seeded blocks on a few thousand entries: one store per block vs. a rebuild each time."""
    rng = random.Random(7)
    store = MemoryNodeStore()
    tree = StateTree(store)
    model: dict[bytes, bytes] = {}
    for block in range(25):
        changes: dict[bytes, bytes | None] = {}
        for _ in range(rng.randint(1, 400)):
            key = b"key %d" % rng.randrange(3_000)
            changes[key] = None if rng.random() < 0.25 else rng.randbytes(rng.randrange(20))
        tree, update = commit(tree, store, changes)
        apply_to_model(model, changes)
        other = build(model)  # a second store, fed the whole state at once
        assert update.root == other.root == ref_root(model), block
    assert check_canonical(store, tree.root) == len(model)


def test_no_op_changes_write_nothing() -> None:
    model = {bytes([i]): bytes([i]) * 3 for i in range(50)}
    store = MemoryNodeStore()
    tree = build(model, store)
    update = tree.apply({b"\x05": b"\x05" * 3, b"absent": None, b"\x07": b"\x07" * 3})
    assert update.root == tree.root
    assert update.new_nodes == {}


def test_apply_does_not_change_the_tree() -> None:
    store = MemoryNodeStore()
    tree = build(EXAMPLE, store)
    root = tree.root
    update = tree.apply({b"dave": b"1"})
    assert tree.root == root and update.root != root
    assert tree.get_value_hash(b"dave") is None


def _long_prefix_keys(count: int, bits_min: int) -> tuple[bytes, bytes]:
    """Two keys whose paths share at least `bits_min` leading bits (birthday search)."""
    candidates = sorted((sr.key_path(b"k%d" % i), b"k%d" % i) for i in range(count))
    best = max(
        (
            (256 - (int.from_bytes(a[0], "big") ^ int.from_bytes(b[0], "big")).bit_length(), a, b)
            for a, b in itertools.pairwise(candidates)
        ),
        key=lambda item: item[0],
    )
    assert best[0] >= bits_min
    return best[1][1], best[2][1]


def test_long_shared_prefix_builds_and_collapses_a_chain() -> None:
    key_a, key_b = _long_prefix_keys(20_000, 24)
    shared = 256 - (
        int.from_bytes(sr.key_path(key_a), "big") ^ int.from_bytes(sr.key_path(key_b), "big")
    ).bit_length()
    store = MemoryNodeStore()
    model = {key_a: b"a", key_b: b"b", b"other": b"c"}
    tree = build(model, store)
    assert tree.root == ref_root(model)
    check_canonical(store, tree.root)
    proof = tree.prove(key_a)
    assert len(proof.siblings) == shared + 1
    assert verify_proof(tree.root, key_a, b"a", proof)
    tree, update = commit(tree, store, {b"other": None})
    assert update.root == ref_root({key_a: b"a", key_b: b"b"})
    assert check_canonical(store, update.root, update) == 2
    # The root is now a chain of `shared` one-child nodes: a key that leaves
    # the chain ends at an Empty inside it.
    probe = tree.prove(b"probe")
    assert probe.leaf is None and 1 <= len(probe.siblings) <= shared
    assert verify_proof(tree.root, b"probe", None, probe)
    tree, update = commit(tree, store, {key_a: None})
    assert update.root == sr.leaf_hash(sr.key_path(key_b), sr.value_hash(b"b"))
    assert update.new_nodes == {}


# --- proofs -----------------------------------------------------------------------------


@settings(derandomize=True, deadline=None, max_examples=150)
@given(models.filter(bool), st.lists(keys, max_size=10))
def test_proofs_for_every_key(model: dict[bytes, bytes], probes: list[bytes]) -> None:
    tree = build(model)
    root = tree.root
    other_root = build({**model, b"extra key": b"x"}).root
    for key, value in sorted(model.items()):
        proof = tree.prove(key)
        assert decode_proof(proof.encode()) == proof
        assert verify_proof(root, key, value, proof)
        assert not verify_proof(root, key, value + b"!", proof)
        assert not verify_proof(root, key, None, proof)
        assert not verify_proof(other_root, key, value, proof)
        assert not verify_proof(root, key + b"?", value, proof)
    for key in probes:
        if key in model:
            continue
        proof = tree.prove(key)
        assert decode_proof(proof.encode()) == proof
        assert verify_proof(root, key, None, proof)
        assert not verify_proof(root, key, b"", proof)
        assert not verify_proof(other_root, key, None, proof)
        for present in sorted(model)[:3]:
            assert not verify_proof(root, present, None, proof)


def test_proofs_end_at_all_three_places() -> None:
    """Over a fixed map: absence ends at Empty and at other leaves; presence at the leaf."""
    model = {b"entry %d" % i: b"%d" % i for i in range(300)}
    tree = build(model)
    ends = {"empty": 0, "other leaf": 0}
    for i in range(300):
        key = b"absent %d" % i
        proof = tree.prove(key)
        assert verify_proof(tree.root, key, None, proof)
        ends["empty" if proof.leaf is None else "other leaf"] += 1
    assert ends["empty"] > 20 and ends["other leaf"] > 20


def _flipped(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


@pytest.mark.parametrize("key", [b"bob", b"grace", b"erin", b"alice"])
def test_every_bit_flip_breaks_a_proof(key: bytes) -> None:
    tree = build(EXAMPLE)
    value = EXAMPLE.get(key)
    encoded = tree.prove(key).encode()
    assert verify_proof(tree.root, key, value, decode_proof(encoded))
    for bit in range(len(encoded) * 8):
        try:
            proof = decode_proof(_flipped(encoded, bit))
        except DecodeError:
            continue
        assert not verify_proof(tree.root, key, value, proof), bit
    for bit in range(256):
        assert not verify_proof(_flipped(tree.root, bit), key, value, decode_proof(encoded))


@settings(derandomize=True, deadline=None, max_examples=80)
@given(models.filter(lambda m: len(m) >= 2), st.data())
def test_tampered_siblings_fail(model: dict[bytes, bytes], data: st.DataObject) -> None:
    tree = build(model)
    key = data.draw(st.sampled_from(sorted(model)))
    proof = tree.prove(key)
    assert proof.siblings
    index = data.draw(st.integers(0, len(proof.siblings) - 1))
    bit = data.draw(st.integers(0, 255))
    siblings = list(proof.siblings)
    siblings[index] = _flipped(siblings[index], bit)
    assert not verify_proof(tree.root, key, model[key], Proof(tuple(siblings), proof.leaf))
    # Dropping or adding a sibling fails too.
    assert not verify_proof(tree.root, key, model[key], Proof(proof.siblings[:-1], proof.leaf))
    longer = Proof((*proof.siblings, bytes(32)), proof.leaf)
    assert not verify_proof(tree.root, key, model[key], longer)


def test_non_canonical_proofs_are_refused() -> None:
    tree = build(EXAMPLE)
    root = tree.root
    # Inclusion proof of alice with an Empty chain sibling appended: not canonical.
    proof = tree.prove(b"alice")
    padded = Proof((*proof.siblings, EMPTY_ROOT), proof.leaf)
    assert not verify_proof(root, b"alice", b"100", padded)
    # Absence "shown" by the key's own leaf, or by a leaf off the key's path.
    own = tree.prove(b"bob")
    assert not verify_proof(root, b"bob", None, own)
    erin = tree.prove(b"erin")
    assert erin.leaf is not None
    off_path = Proof(erin.siblings, LeafNode(sr.key_path(b"alice"), erin.leaf.value_hash))
    assert not verify_proof(root, b"erin", None, off_path)


def test_proofs_against_hand_made_non_canonical_roots_are_refused() -> None:
    """Roots no honest tree has: the hashes chain up, the shape rules still say no."""
    alice = LeafNode(sr.key_path(b"alice"), sr.value_hash(b"100"))  # path starts with 0
    carol = LeafNode(sr.key_path(b"carol"), sr.value_hash(b"7"))  # path starts with 1
    # One leaf under an internal node with an Empty sibling (should have moved up).
    lone = sr.internal_hash(alice.hash(), EMPTY_ROOT)
    assert not verify_proof(lone, b"alice", b"100", Proof((EMPTY_ROOT,), alice))
    # carol's leaf on the 0 side, off its own path: it proves nothing about grace (0...).
    swapped = sr.internal_hash(carol.hash(), alice.hash())
    assert not verify_proof(swapped, b"grace", None, Proof((alice.hash(),), carol))


def test_verify_proof_types_and_sizes() -> None:
    tree = build(EXAMPLE)
    proof = tree.prove(b"bob")
    with pytest.raises(TypeError):
        verify_proof(tree.root.hex(), b"bob", b"250", proof)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        verify_proof(tree.root, "bob", b"250", proof)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        verify_proof(tree.root, b"bob", 250, proof)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        verify_proof(tree.root, b"bob", b"250", proof.encode())  # type: ignore[arg-type]
    assert not verify_proof(tree.root[:31], b"bob", b"250", proof)
    assert not verify_proof(tree.root, b"b" * 129, b"250", proof)
    assert not verify_proof(tree.root, b"bob", bytes(64 * 1024 + 1), proof)
    short_sibling = Proof((*proof.siblings[:1], b"x"), proof.leaf)
    assert not verify_proof(tree.root, b"bob", b"250", short_sibling)
    assert verify_proof(EMPTY_ROOT, b"bob", None, Proof((), None))


def test_proof_of_absence_in_the_empty_tree() -> None:
    proof = StateTree(MemoryNodeStore()).prove(b"anything")
    assert proof == Proof((), None)
    assert proof.encode() == bytes.fromhex("01000000")
    assert verify_proof(EMPTY_ROOT, b"anything", None, proof)
    assert not verify_proof(EMPTY_ROOT, b"anything", b"", proof)


# --- codecs ------------------------------------------------------------------------------


def test_node_encoding_round_trip_and_layout() -> None:
    leaf = LeafNode(bytes(range(32)), bytes(range(32, 64)))
    internal = InternalNode(EMPTY_ROOT, bytes([7]) * 32)
    assert leaf.encode() == b"\x01\x01" + bytes(range(64))
    assert internal.encode() == b"\x01\x02" + bytes(32) + bytes([7]) * 32
    for node in (leaf, internal):
        assert decode_node(node.encode()) == node
        assert decode_node(bytearray(node.encode())) == node


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x01",
        b"\x01\x01" + bytes(63),  # short
        b"\x01\x01" + bytes(65),  # trailing byte
        b"\x02\x01" + bytes(64),  # version
        b"\x00\x01" + bytes(64),
        b"\x01\x00" + bytes(64),  # kind
        b"\x01\x03" + bytes(64),
        b"\x01\x02" + bytes(64),  # internal node over two Empty children
    ],
)
def test_node_decoding_is_strict(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_node(data)


def test_node_decoding_rejects_non_bytes() -> None:
    with pytest.raises(DecodeError):
        decode_node("01" * 33)  # type: ignore[arg-type]


@settings(derandomize=True, deadline=None, max_examples=300)
@given(st.binary(min_size=0, max_size=70) | st.binary(min_size=66, max_size=66).map(
    lambda d: bytes([1, 1 + d[1] % 2]) + d[2:]
))
def test_node_decoding_raises_decode_error_or_round_trips(data: bytes) -> None:
    try:
        node = decode_node(data)
    except DecodeError:
        return
    assert node.encode() == data


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x01",
        b"\x02\x00\x00\x00",  # version
        b"\x01\x02\x00\x00",  # has_leaf not 0/1
        b"\x01\x00\x00\x01" + bytes(31),  # short sibling
        b"\x01\x00\x00\x00\x00",  # trailing byte
        b"\x01\x01" + bytes(63) + b"\x00\x00",  # short leaf
        b"\x01\x00\x01\x01" + bytes(32 * 257),  # 257 siblings
    ],
)
def test_proof_decoding_is_strict(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_proof(data)


@settings(derandomize=True, deadline=None, max_examples=300)
@given(st.binary(max_size=200))
def test_proof_decoding_raises_decode_error_or_round_trips(data: bytes) -> None:
    try:
        proof = decode_proof(b"\x01" + data)
    except DecodeError:
        return
    assert proof.encode() == b"\x01" + data


def test_proof_with_256_siblings_round_trips() -> None:
    proof = Proof(tuple(bytes([i]) * 32 for i in range(256)), LeafNode(bytes(32), bytes(32)))
    assert decode_proof(proof.encode()) == proof
    with pytest.raises(ValueError):
        Proof((bytes(32),) * 257, None).encode()


# --- inputs and the store --------------------------------------------------------------


def test_input_limits() -> None:
    tree = StateTree(MemoryNodeStore())
    tree.apply({b"k" * 128: bytes(64 * 1024)})
    with pytest.raises(InvalidInput):
        tree.apply({b"k" * 129: b""})
    with pytest.raises(InvalidInput):
        tree.apply({b"k": bytes(64 * 1024 + 1)})
    with pytest.raises(TypeError):
        tree.apply({"k": b""})  # type: ignore[dict-item]
    with pytest.raises(TypeError):
        tree.apply({b"k": "v"})  # type: ignore[dict-item]
    with pytest.raises(TypeError):
        tree.apply([(b"k", b"v")])  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        StateTree(MemoryNodeStore(), b"short")
    with pytest.raises(InvalidInput):
        tree.prove(b"k" * 129)


def test_memory_store_checks_what_it_is_given() -> None:
    store = MemoryNodeStore()
    leaf = LeafNode(bytes(32), bytes(32))
    with pytest.raises(InvalidInput):
        store.put_nodes({bytes(32): leaf.encode()})
    with pytest.raises(DecodeError):
        store.put_nodes({leaf.hash(): leaf.encode() + b"\x00"})
    store.put_nodes({leaf.hash(): leaf.encode()})
    assert len(store) == 1


def test_a_damaged_store_is_a_storage_error() -> None:
    nodes = dict(StateTree(MemoryNodeStore()).apply(EXAMPLE).new_nodes)
    root = bytes.fromhex(EXAMPLE_ROOT)
    n2 = bytes.fromhex("a07d37aa18fb1745848c5be4fc8b30b82ed61cf1172f51d249a2c7c8337d73c4")
    missing = {h: d for h, d in nodes.items() if h != n2}
    tampered = {**nodes, n2: _flipped(nodes[n2], 100)}
    malformed = {**nodes, n2: nodes[n2][:-1]}
    for damaged in (missing, tampered, malformed):
        tree = StateTree(CountingReader(damaged), root)
        with pytest.raises(StorageError):
            tree.prove(b"alice")
        with pytest.raises(StorageError):
            tree.apply({b"bob": b"new"})
        assert tree.prove(b"carol").leaf is not None  # the undamaged side still reads


def test_a_non_canonical_store_is_a_storage_error() -> None:
    """A stored one-child node over a lone leaf (never built by apply) is caught on read."""
    alice = LeafNode(sr.key_path(b"alice"), sr.value_hash(b"100"))  # path starts with 0
    lone = InternalNode(alice.hash(), EMPTY_ROOT)
    store = MemoryNodeStore({alice.hash(): alice.encode(), lone.hash(): lone.encode()})
    with pytest.raises(StorageError):
        StateTree(store, lone.hash()).prove(b"alice")


# --- cost: O(touched * log n) ---------------------------------------------------------------


def test_update_reads_and_writes_are_bounded_by_touched_log_n() -> None:
    n = 10_000
    model = {b"account %d" % i: b"%d" % i for i in range(n)}
    update = StateTree(MemoryNodeStore()).apply(model)
    reader = CountingReader(update.new_nodes)
    tree = StateTree(reader, update.root)
    changes: dict[bytes, bytes | None] = {}
    changes.update({b"account %d" % i: b"updated" for i in (3, 1_000, 4_242, 9_999)})
    changes.update({b"new account %d" % i: b"fresh" for i in range(3)})
    changes.update({b"account %d" % i: None for i in (17, 5_000, 8_888)})
    result = tree.apply(changes)
    bound = len(changes) * 2 * (math.log2(n) + 8)
    assert result.nodes_read == reader.reads
    assert 0 < reader.reads <= bound
    assert 0 < len(result.new_nodes) <= bound
    apply_to_model(model, changes)
    assert result.root == ref_root(model)
    # A proof reads one node per level it walks, plus the one it ends at.
    reader.reads = 0
    proof = tree.prove(b"account 3")
    assert reader.reads == len(proof.siblings) + 1 <= math.log2(n) + 8
