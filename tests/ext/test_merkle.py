"""Merkle: the kernel (every BLAKE3 back end) == the reference == the split rule == vectors.

The reference is `chainmall.core.merkle` (bottom-up, lone last node promoted);
the kernel is `chainmall.ext._merkle` (the same, in cache blocks, on the SIMD
BLAKE3 kernel). This file also holds a third, top-down implementation of the
RFC 6962 / CometBFT split rule (`split_root`, `split_path`), so that
reference == split rule is the proof that the bottom-up form builds the
specified tree. Vectors: tests/vectors/merkle_vectors.json (SOURCES.md).
"""

from __future__ import annotations

import importlib.util
import json
import mmap
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType

import blake3
import pytest
from chainmall import ext
from chainmall.core import constants, hashing
from chainmall.core import merkle as reference
from hypothesis import given, settings
from hypothesis import strategies as st

KERNEL = ext.load("_merkle")
NO_KERNEL = "the _merkle extension is not built (setup.py build_ext --inplace)"
IMPLS = [
    pytest.param(reference, id="reference"),
    pytest.param(KERNEL, id="kernel", marks=pytest.mark.skipif(KERNEL is None, reason=NO_KERNEL)),
]
BACKENDS = ("portable", "sse41", "avx2")
VECTORS_DIR = Path(__file__).resolve().parents[1] / "vectors"
VECTORS = json.loads((VECTORS_DIR / "merkle_vectors.json").read_text())
DOCS = Path(__file__).resolve().parents[2] / "docs" / "merkle.md"

LEAF_KEY = hashing.MERKLE_LEAF_KEY
NODE_KEY = hashing.MERKLE_NODE_KEY


def make_leaves(count: int, seed: int = 0) -> list[bytes]:
    """`count` distinct deterministic 32-byte leaves."""
    return [blake3.blake3(b"merkle test leaf %d %d" % (seed, i)).digest() for i in range(count)]


LEAVES = make_leaves(5000)


def packed(count: int) -> bytes:
    return b"".join(LEAVES[:count])


# --- the split rule, top-down, from the text of docs/merkle.md -----------------


def leaf_node(value: bytes) -> bytes:
    return blake3.blake3(value, key=LEAF_KEY).digest()


def inner_node(left: bytes, right: bytes) -> bytes:
    return blake3.blake3(left + right, key=NODE_KEY).digest()


def split_point(count: int) -> int:
    """Largest power of two strictly below `count` > 1."""
    return 1 << ((count - 1).bit_length() - 1)


def split_root(values: list[bytes]) -> bytes:
    if not values:
        return blake3.blake3(b"", key=NODE_KEY).digest()
    if len(values) == 1:
        return leaf_node(values[0])
    k = split_point(len(values))
    return inner_node(split_root(values[:k]), split_root(values[k:]))


def split_path(index: int, values: list[bytes]) -> list[bytes]:
    if len(values) == 1:
        return []
    k = split_point(len(values))
    if index < k:
        return [*split_path(index, values[:k]), split_root(values[k:])]
    return [*split_path(index - k, values[k:]), split_root(values[:k])]


def path_shape(index: int, count: int) -> list[tuple[bool, int]]:
    """Per level: whether the node has a sibling, and which side it is on."""
    shape = []
    while count > 1:
        shape.append(((index ^ 1) < count, index & 1))
        index //= 2
        count = (count + 1) // 2
    return shape


def flip(value: bytes, bit: int) -> bytes:
    data = bytearray(value)
    data[bit // 8 % len(data)] ^= 1 << (bit % 8)
    return bytes(data)


@pytest.fixture(params=BACKENDS)
def kernel_backend(request: pytest.FixtureRequest):
    """The kernel forced onto each BLAKE3 back end the CPU has (then back to auto)."""
    if KERNEL is None:
        pytest.skip(NO_KERNEL)
    try:
        KERNEL.set_backend(request.param)
    except ValueError:
        pytest.skip(f"this CPU lacks the {request.param} back end")
    try:
        yield KERNEL
    finally:
        KERNEL.set_backend("auto")


# --- constants ------------------------------------------------------------------


def test_reference_constants() -> None:
    assert blake3.blake3(b"", key=NODE_KEY).digest() == reference.EMPTY_ROOT
    # The pure-Python BLAKE3 from the specification agrees with the package.
    assert hashing.blake3_hash(b"", NODE_KEY) == reference.EMPTY_ROOT
    assert hashing.blake3_derive_key(constants.MERKLE_LEAF_CONTEXT, b"") == LEAF_KEY
    assert hashing.blake3_derive_key(constants.MERKLE_NODE_CONTEXT, b"") == NODE_KEY
    assert LEAF_KEY != NODE_KEY


@pytest.mark.skipif(KERNEL is None, reason=NO_KERNEL)
def test_kernel_constants_match_core() -> None:
    assert KERNEL.HASH_BYTES == constants.HASH_BYTES
    assert KERNEL.MERKLE_LEAVES_MAX == constants.MERKLE_LEAVES_MAX
    assert KERNEL.MERKLE_LEAF_CONTEXT == constants.MERKLE_LEAF_CONTEXT
    assert KERNEL.MERKLE_NODE_CONTEXT == constants.MERKLE_NODE_CONTEXT
    assert KERNEL.MERKLE_LEAF_KEY == hashing.MERKLE_LEAF_KEY
    assert KERNEL.MERKLE_NODE_KEY == hashing.MERKLE_NODE_KEY
    assert KERNEL.EMPTY_ROOT == reference.EMPTY_ROOT


@pytest.mark.skipif(KERNEL is None, reason=NO_KERNEL)
def test_kernel_describe_names_backend() -> None:
    assert KERNEL.backend() in BACKENDS
    assert KERNEL.backend() in KERNEL.describe()
    with pytest.raises(ValueError):
        KERNEL.set_backend("neon")
    with pytest.raises(TypeError):
        KERNEL.set_backend(2)  # type: ignore[arg-type]


# --- roots ------------------------------------------------------------------------


def test_split_rule_equals_bottom_up() -> None:
    """The reference pairs bottom-up; the spec splits top-down: same roots and paths."""
    for count in range(301):
        assert reference.merkle_root(packed(count)) == split_root(LEAVES[:count]), count
    for count in range(1, 41):
        for index in range(count):
            assert reference.merkle_proof(packed(count), index) == split_path(
                index, LEAVES[:count]
            ), (count, index)


def test_small_roots_by_hand() -> None:
    a, b, c = LEAVES[:3]
    for impl in (reference, KERNEL) if KERNEL else (reference,):
        assert impl.merkle_root(b"") == reference.EMPTY_ROOT
        assert impl.merkle_root(a) == leaf_node(a)
        assert impl.merkle_root(a + b) == inner_node(leaf_node(a), leaf_node(b))
        # Three leaves: c is promoted, never paired with itself.
        assert impl.merkle_root(a + b + c) == inner_node(
            inner_node(leaf_node(a), leaf_node(b)), leaf_node(c)
        )


def test_kernel_roots_equal_reference(kernel_backend: ModuleType) -> None:
    for count in range(131):
        data = packed(count)
        assert kernel_backend.merkle_root(data) == reference.merkle_root(data), count


def test_kernel_roots_across_cache_blocks(kernel_backend: ModuleType) -> None:
    # The kernel reduces 2048-leaf blocks; check sizes around their edges.
    for count in (2047, 2048, 2049, 4095, 4096, 4097, 5000):
        data = packed(count)
        assert kernel_backend.merkle_root(data) == split_root(LEAVES[:count]), count


@pytest.mark.skipif(KERNEL is None, reason=NO_KERNEL)
@pytest.mark.parametrize("count", [10_000, 65_537])
def test_kernel_large_roots_equal_reference(count: int) -> None:
    data = b"".join(make_leaves(count, seed=count))
    assert KERNEL.merkle_root(data) == reference.merkle_root(data)


def test_duplicated_last_leaf_is_another_tree() -> None:
    """No CVE-2012-2459: [a, b, c] and [a, b, c, c] have different roots."""
    a, b, c = LEAVES[:3]
    for impl in (reference, KERNEL) if KERNEL else (reference,):
        assert impl.merkle_root(a + b + c) != impl.merkle_root(a + b + c + c)
        bitcoin_style = inner_node(
            inner_node(leaf_node(a), leaf_node(b)), inner_node(leaf_node(c), leaf_node(c))
        )
        assert impl.merkle_root(a + b + c) != bitcoin_style
        assert impl.merkle_root(a + b + c + c) == bitcoin_style


@pytest.mark.parametrize("impl", IMPLS)
def test_root_accepts_any_bytes_like(impl: ModuleType) -> None:
    data = packed(9)
    expected = reference.merkle_root(data)
    assert impl.merkle_root(bytearray(data)) == expected
    assert impl.merkle_root(memoryview(data)) == expected
    assert impl.merkle_root(memoryview(data).cast("B", (9, 32))) == expected
    assert reference.merkle_root_of(LEAVES[:9]) == expected
    assert reference.merkle_root_of([]) == reference.EMPTY_ROOT


@pytest.mark.parametrize("impl", IMPLS)
def test_root_rejects_bad_leaves(impl: ModuleType) -> None:
    for length in (1, 31, 33, 63, 65):
        with pytest.raises(ValueError):
            impl.merkle_root(bytes(length))
        with pytest.raises(ValueError):
            impl.merkle_proof(bytes(length), 0)
    for bad in ("00" * 32, 5, None, [LEAVES[0]], memoryview(packed(4))[::2]):
        with pytest.raises(TypeError):
            impl.merkle_root(bad)
        with pytest.raises(TypeError):
            impl.merkle_proof(bad, 0)
    with pytest.raises(ValueError):
        reference.merkle_root_of([LEAVES[0], LEAVES[1][:31]])


@pytest.mark.parametrize("impl", IMPLS)
def test_too_many_leaves(impl: ModuleType) -> None:
    # An anonymous map is reserved, not touched: the count is refused before reading.
    # (Not closed here: the raised errors' frames still hold views of it.)
    too_many = mmap.mmap(-1, (constants.MERKLE_LEAVES_MAX + 1) * constants.HASH_BYTES)
    with pytest.raises(ValueError, match="MERKLE_LEAVES_MAX"):
        impl.merkle_root(too_many)
    with pytest.raises(ValueError, match="MERKLE_LEAVES_MAX"):
        impl.merkle_proof(too_many, 0)


def test_kernel_releases_gil_and_is_thread_safe() -> None:
    if KERNEL is None:
        pytest.skip(NO_KERNEL)
    inputs = [b"".join(make_leaves(3000 + i, seed=i)) for i in range(8)]
    expected = [reference.merkle_root(data) for data in inputs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(KERNEL.merkle_root, inputs)) == expected


# --- proofs -------------------------------------------------------------------------


def test_every_proof_verifies_and_impls_agree() -> None:
    impls = [reference, KERNEL] if KERNEL else [reference]
    for count in range(1, 41):
        data = packed(count)
        root = reference.merkle_root(data)
        for index in range(count):
            proof = reference.merkle_proof(data, index)
            assert len(proof) == sum(has for has, _ in path_shape(index, count))
            for impl in impls:
                assert impl.merkle_proof(data, index) == proof, (count, index)
                assert impl.merkle_verify(root, LEAVES[index], index, count, proof)


def test_kernel_proofs_across_cache_blocks(kernel_backend: ModuleType) -> None:
    count = 5000
    data = packed(count)
    root = split_root(LEAVES[:count])
    for index in (0, 1, 2046, 2047, 2048, 4095, 4096, 4097, 4998, 4999):
        proof = kernel_backend.merkle_proof(data, index)
        assert proof == split_path(index, LEAVES[:count]), index
        assert kernel_backend.merkle_verify(root, LEAVES[index], index, count, proof)


@pytest.mark.parametrize("impl", IMPLS)
def test_proof_index_checks(impl: ModuleType) -> None:
    data = packed(5)
    for index in (-1, 5, 6, 2**70):
        with pytest.raises(ValueError):
            impl.merkle_proof(data, index)
    with pytest.raises(ValueError):
        impl.merkle_proof(b"", 0)
    for index in (1.0, "1", None):
        with pytest.raises(TypeError):
            impl.merkle_proof(data, index)
    assert impl.merkle_proof(LEAVES[0], 0) == []


# --- verification: everything else is False ---------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
def test_flipped_bits_do_not_verify(impl: ModuleType) -> None:
    count = 13
    data = packed(count)
    root = reference.merkle_root(data)
    for index in range(count):
        leaf = LEAVES[index]
        proof = reference.merkle_proof(data, index)
        for bit in range(0, 256, 7):
            assert not impl.merkle_verify(flip(root, bit), leaf, index, count, proof)
            assert not impl.merkle_verify(root, flip(leaf, bit), index, count, proof)
            for position in range(len(proof)):
                bad = list(proof)
                bad[position] = flip(bad[position], bit)
                assert not impl.merkle_verify(root, leaf, index, count, bad)


@pytest.mark.parametrize("impl", IMPLS)
def test_wrong_index_count_or_length_does_not_verify(impl: ModuleType) -> None:
    for count in (1, 2, 3, 5, 8, 13, 32, 33):
        data = packed(count)
        root = reference.merkle_root(data)
        for index in range(count):
            leaf = LEAVES[index]
            proof = reference.merkle_proof(data, index)
            for other in range(-1, count + 2):
                if other != index:
                    assert not impl.merkle_verify(root, leaf, other, count, proof)
            # The proof binds the count only through the path shape (docs/merkle.md):
            # any count giving another shape fails, one giving the same shape is the
            # same computation.
            for other in range(0, 2 * count + 3):
                if other != count:
                    same = other > index and path_shape(index, other) == path_shape(index, count)
                    assert impl.merkle_verify(root, leaf, index, other, proof) is same
            assert not impl.merkle_verify(root, leaf, index, count, [*proof, root])
            assert not impl.merkle_verify(root, leaf, index, count, [*proof, bytes(32)])
            if proof:
                assert not impl.merkle_verify(root, leaf, index, count, proof[:-1])
                assert not impl.merkle_verify(root, leaf, index, count, proof[1:])
            if len(proof) > 1:
                assert not impl.merkle_verify(root, leaf, index, count, proof[::-1])


@pytest.mark.parametrize("impl", IMPLS)
def test_verify_bad_values_are_false(impl: ModuleType) -> None:
    count, index = 6, 4
    data = packed(count)
    root = reference.merkle_root(data)
    leaf = LEAVES[index]
    proof = reference.merkle_proof(data, index)
    assert impl.merkle_verify(root, leaf, index, count, proof)
    assert impl.merkle_verify(bytearray(root), memoryview(leaf), index, count, tuple(proof))
    assert not impl.merkle_verify(root[:31], leaf, index, count, proof)
    assert not impl.merkle_verify(root + b"\0", leaf, index, count, proof)
    assert not impl.merkle_verify(root, leaf[:31], index, count, proof)
    assert not impl.merkle_verify(root, b"", index, count, proof)
    assert not impl.merkle_verify(root, leaf, index, count, [proof[0][:31], *proof[1:]])
    assert not impl.merkle_verify(root, leaf, index, count, [proof[0] + b"\0", *proof[1:]])
    assert not impl.merkle_verify(root, leaf, index, 0, proof)
    assert not impl.merkle_verify(root, leaf, -1, count, proof)
    assert not impl.merkle_verify(root, leaf, index, -5, proof)
    assert not impl.merkle_verify(root, leaf, 2**70, 2**71, proof)
    assert not impl.merkle_verify(root, leaf, index, constants.MERKLE_LEAVES_MAX + 1, proof)
    assert not impl.merkle_verify(root, leaf, index, count, [proof[0]] * 200)
    assert not impl.merkle_verify(reference.EMPTY_ROOT, leaf, 0, 0, [])
    one = reference.merkle_root(leaf)
    assert impl.merkle_verify(one, leaf, 0, 1, [])
    assert not impl.merkle_verify(one, leaf, 0, 1, [one])


@pytest.mark.parametrize("impl", IMPLS)
def test_verify_type_errors(impl: ModuleType) -> None:
    count, index = 6, 4
    data = packed(count)
    root = reference.merkle_root(data)
    leaf = LEAVES[index]
    proof = reference.merkle_proof(data, index)
    bad_calls = [
        (root.hex(), leaf, index, count, proof),
        (root, 7, index, count, proof),
        (root, None, index, count, proof),
        (root, leaf, 4.0, count, proof),
        (root, leaf, index, "6", proof),
        (root, leaf, index, count, b"".join(proof)),
        (root, leaf, index, count, [p.hex() for p in proof]),
        (root, leaf, index, count, [*proof[:-1], None]),
        (root, leaf, index, count, 5),
        # Type checks come first, even when the values could never verify.
        (root[:5], leaf, index, count, ["x"]),
    ]
    for args in bad_calls:
        with pytest.raises(TypeError):
            impl.merkle_verify(*args)


# --- domain separation ------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
def test_inner_node_cannot_pass_for_a_leaf(impl: ModuleType) -> None:
    a, b, c, d = LEAVES[:4]
    node_ab = inner_node(leaf_node(a), leaf_node(b))
    node_cd = inner_node(leaf_node(c), leaf_node(d))
    root = impl.merkle_root(a + b + c + d)
    assert root == inner_node(node_ab, node_cd)
    # A two-leaf tree whose "leaves" are the inner nodes has another root,
    assert impl.merkle_root(node_ab + node_cd) != root
    # and an inner node does not verify as a leaf of a shorter tree.
    assert not impl.merkle_verify(root, node_ab, 0, 2, [node_cd])
    assert not impl.merkle_verify(root, node_cd, 1, 2, [node_ab])


@pytest.mark.parametrize("impl", IMPLS)
def test_leaf_node_cannot_pass_for_an_inner_node(impl: ModuleType) -> None:
    a, b, c = LEAVES[:3]
    root = impl.merkle_root(a + b + c)
    # Leaf nodes handed in as if they were the tree's nodes (or its leaves) fail.
    node_ab = inner_node(leaf_node(a), leaf_node(b))
    assert not impl.merkle_verify(root, leaf_node(c), 2, 3, [node_ab])
    assert not impl.merkle_verify(root, leaf_node(a), 0, 3, impl.merkle_proof(a + b + c, 0))
    assert impl.merkle_root(leaf_node(a) + leaf_node(b) + leaf_node(c)) != root
    # The same 64 bytes hashed as a node and as two leaves' parent differ by key only.
    assert inner_node(a, b) != blake3.blake3(a + b, key=LEAF_KEY).digest()
    # One leaf: its root is the leaf node, never a node-keyed hash of it.
    assert impl.merkle_root(a) == leaf_node(a) != blake3.blake3(a, key=NODE_KEY).digest()


# --- properties ----------------------------------------------------------------------------


@settings(derandomize=True, max_examples=60, deadline=None)
@given(
    leaves=st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=150),
    data=st.data(),
)
def test_random_trees_prove_and_verify(leaves: list[bytes], data: st.DataObject) -> None:
    count = len(leaves)
    index = data.draw(st.integers(0, count - 1), label="index")
    packed_leaves = b"".join(leaves)
    root = reference.merkle_root(packed_leaves)
    proof = reference.merkle_proof(packed_leaves, index)
    assert root == split_root(leaves)
    assert reference.merkle_verify(root, leaves[index], index, count, proof)
    if KERNEL is not None:
        assert KERNEL.merkle_root(packed_leaves) == root
        assert KERNEL.merkle_proof(packed_leaves, index) == proof
        assert KERNEL.merkle_verify(root, leaves[index], index, count, proof)


@settings(derandomize=True, max_examples=80, deadline=None)
@given(
    count=st.integers(1, 300),
    data=st.data(),
)
def test_random_flips_break_proofs(count: int, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, count - 1), label="index")
    packed_leaves = packed(count)
    root = reference.merkle_root(packed_leaves)
    proof = reference.merkle_proof(packed_leaves, index)
    leaf = LEAVES[index]
    target = data.draw(st.integers(0, len(proof) + 1), label="target")  # root, leaf, siblings
    bit = data.draw(st.integers(0, 255), label="bit")
    if target == 0:
        root = flip(root, bit)
    elif target == 1:
        leaf = flip(leaf, bit)
    else:
        proof = [*proof]
        proof[target - 2] = flip(proof[target - 2], bit)
    assert not reference.merkle_verify(root, leaf, index, count, proof)
    if KERNEL is not None:
        assert not KERNEL.merkle_verify(root, leaf, index, count, proof)


# --- vectors ---------------------------------------------------------------------------------


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "generate_merkle", VECTORS_DIR / "generate_merkle.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("generate_merkle", module)
    spec.loader.exec_module(module)
    return module


def test_vector_file_is_what_the_generator_writes() -> None:
    generator = _generator()
    assert (VECTORS_DIR / "merkle_vectors.json").read_text() == generator.render()


def test_vector_constants_match_core() -> None:
    assert VECTORS["leaf_context"] == constants.MERKLE_LEAF_CONTEXT
    assert VECTORS["node_context"] == constants.MERKLE_NODE_CONTEXT
    assert bytes.fromhex(VECTORS["leaf_key"]) == hashing.MERKLE_LEAF_KEY
    assert bytes.fromhex(VECTORS["node_key"]) == hashing.MERKLE_NODE_KEY
    assert bytes.fromhex(VECTORS["empty_root"]) == reference.EMPTY_ROOT


def _vector_leaves(count: int) -> list[bytes]:
    return [
        blake3.blake3(b"chainmall merkle vector leaf " + i.to_bytes(4, "big")).digest()
        for i in range(count)
    ]


@pytest.mark.parametrize("impl", IMPLS)
def test_vectors(impl: ModuleType) -> None:
    leaves = _vector_leaves(max(v["count"] for v in VECTORS["roots"]))
    assert [x.hex() for x in leaves[: len(VECTORS["first_leaves"])]] == VECTORS["first_leaves"]
    for vector in VECTORS["roots"]:
        data = b"".join(leaves[: vector["count"]])
        assert impl.merkle_root(data).hex() == vector["root"], vector["count"]
    for vector in VECTORS["proofs"]:
        count, index = vector["count"], vector["index"]
        proof = [bytes.fromhex(x) for x in vector["proof"]]
        assert leaves[index].hex() == vector["leaf"]
        assert impl.merkle_proof(b"".join(leaves[:count]), index) == proof
        assert impl.merkle_verify(bytes.fromhex(vector["root"]), leaves[index], index, count, proof)


@pytest.mark.parametrize("impl", IMPLS)
def test_worked_example(impl: ModuleType) -> None:
    """The 3-leaf example of docs/merkle.md, checked with the spec BLAKE3 of core/hashing."""
    example = VECTORS["worked_example"]
    a, b, c = (bytes.fromhex(x) for x in example["leaves"])
    nodes = [hashing.blake3_hash(x, LEAF_KEY) for x in (a, b, c)]
    assert [x.hex() for x in nodes] == example["leaf_nodes"]
    node_ab = hashing.blake3_hash(nodes[0] + nodes[1], NODE_KEY)
    assert node_ab.hex() == example["node_01"]
    root = hashing.blake3_hash(node_ab + nodes[2], NODE_KEY)
    assert root.hex() == example["root"]
    assert impl.merkle_root(a + b + c) == root
    assert impl.merkle_proof(a + b + c, 2) == [node_ab]
    assert example["proof_of_2"] == [node_ab.hex()]
    assert impl.merkle_root(a + b + c + c).hex() == example["duplicated_last_leaf_root"]


def test_docs_show_the_vector_values() -> None:
    text = DOCS.read_text()
    example = VECTORS["worked_example"]
    for value in (
        VECTORS["leaf_key"],
        VECTORS["node_key"],
        VECTORS["empty_root"],
        *example["leaves"],
        *example["leaf_nodes"],
        example["node_01"],
        example["root"],
        example["duplicated_last_leaf_root"],
    ):
        assert value in text, value


def test_kernel_vectors_per_backend(kernel_backend: ModuleType) -> None:
    leaves = _vector_leaves(max(v["count"] for v in VECTORS["roots"]))
    for vector in VECTORS["roots"]:
        data = b"".join(leaves[: vector["count"]])
        assert kernel_backend.merkle_root(data).hex() == vector["root"], vector["count"]


def test_docs_python_example_runs() -> None:
    """The blake3-only check in docs/merkle.md section 4 runs as written."""
    text = DOCS.read_text()
    start = text.index("```python\n") + len("```python\n")
    exec(compile(text[start : text.index("```", start)], str(DOCS), "exec"), {})
