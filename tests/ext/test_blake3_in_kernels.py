"""Every kernel that hashes with BLAKE3 gives the same hashes on every back end the CPU has.

Each kernel module compiles its own copy of ext/csrc (setup.py), so each has its
own back end choice: `_blake3` and `_merkle` can be told which to use
(`set_backend`, and tests/ext/test_blake3.py and test_merkle.py run every one),
the others (`_verify` and `_txwire`: tx ids; `_transfer`: addresses; `_tree`:
state tree nodes) always run the best one, so their own tests reach only that.
Here each module's copy is forced to each back end through its exported C
function `cm_blake3_set_backend` (dlopen of the module's file returns the
handle Python already loaded, so the call reaches that module's copy; the
modules that name their back end confirm it), and the module's outputs are
compared with the blake3 package or the pure-Python reference.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from types import ModuleType

import blake3
import pytest
from chainmall import ext
from chainmall.core.address import address_from_public_key
from chainmall.core.hashing import ADDRESS_KEY
from chainmall.core.state import transfers
from chainmall.core.state.root import EMPTY_ROOT, MemoryNodeStore, TreeUpdate
from chainmall.core.state.root import tree as tree_module
from chainmall.core.state.root.nodes import _corrupt, _parse_node, _sorted_changes
from chainmall.core.tx import encode_body

BACKENDS = ("portable", "sse41", "avx2")  # the enum's order after CM_BLAKE3_AUTO = 0
AUTO = 0
MODULES = ("_blake3", "_merkle", "_verify", "_txwire", "_transfer", "_tree", "_mall")
CHAIN_ID = "b3-test"


def _c_dispatch(module: ModuleType) -> ctypes.CDLL:
    """The module's own copy of ext/csrc/blake3_dispatch.c."""
    handle = ctypes.CDLL(module.__file__)
    for name in ("cm_blake3_set_backend", "cm_blake3_backend", "cm_blake3_best_backend"):
        function = getattr(handle, name)  # AttributeError if the module stops exporting it
        function.restype = ctypes.c_int
    handle.cm_blake3_set_backend.argtypes = [ctypes.c_int]
    handle.cm_blake3_backend.argtypes = handle.cm_blake3_best_backend.argtypes = []
    return handle


LOADED = {name: module for name in MODULES if (module := ext.load(name)) is not None}


def _supported() -> list[str]:
    if "_blake3" not in LOADED:
        return []
    best = LOADED["_blake3"].best_backend()
    return list(BACKENDS[: BACKENDS.index(best) + 1])


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """Force one back end in every kernel module's copy for the test, then restore "auto"."""
    if request.param not in _supported():
        pytest.skip(f"this CPU (or build) lacks the {request.param} back end")
    handles = [_c_dispatch(module) for module in LOADED.values()]
    value = BACKENDS.index(request.param) + 1
    try:
        for handle in handles:
            assert handle.cm_blake3_set_backend(value) == 0
            assert handle.cm_blake3_backend() == value
        yield request.param
    finally:
        for handle in handles:
            handle.cm_blake3_set_backend(AUTO)


def test_every_kernel_module_has_its_own_switchable_copy() -> None:
    if len(LOADED) < len(MODULES):
        pytest.skip(f"kernels not built: {sorted(set(MODULES) - set(LOADED))}")
    supported = _supported()
    for name, module in LOADED.items():
        handle = _c_dispatch(module)
        assert BACKENDS[handle.cm_blake3_best_backend() - 1] == supported[-1], name
    # Forcing one module's copy leaves the others on theirs, and the modules that
    # name their back end see the forced one: the handle is the loaded module's.
    verify, merkle = _c_dispatch(LOADED["_verify"]), _c_dispatch(LOADED["_merkle"])
    try:
        assert verify.cm_blake3_set_backend(1) == 0
        assert LOADED["_verify"].blake3_backend() == "portable"
        assert LOADED["_txwire"].describe().endswith(f"tx ids on BLAKE3 {supported[-1]}")
        assert LOADED["_merkle"].backend() == supported[-1]
        assert _c_dispatch(LOADED["_txwire"]).cm_blake3_set_backend(1) == 0
        assert LOADED["_txwire"].describe().endswith("tx ids on BLAKE3 portable")
        assert merkle.cm_blake3_set_backend(1) == 0
        assert LOADED["_merkle"].backend() == "portable"
    finally:
        for module in ("_verify", "_merkle", "_txwire"):
            _c_dispatch(LOADED[module]).cm_blake3_set_backend(AUTO)
    assert LOADED["_verify"].blake3_backend() == supported[-1]


# --- workloads: many lengths and counts that leave every lane remainder -----------------
KEYS = [bytes([i]) * 32 for i in range(1, 38)]


def _bodies() -> list[bytes]:
    # 37 txs: payloads of 0..896 bytes (bodies of 1 to 15 BLAKE3 blocks), so the
    # lanes of 8 (AVX2) and 4 (SSE4.1) are filled by groups of one length and not.
    bodies = []
    for i, key in enumerate(KEYS):
        payload = bytes((i * 7 + j) % 251 for j in range((i * 131) % 897))
        bodies.append(encode_body(CHAIN_ID, 1 + i % 3, key, i, 1, 100, payload))
    bodies += [bodies[5]] * 9  # nine of one length: a full AVX2 group and one more
    return bodies


BODIES = _bodies()
TXS = [body + bytes([7]) * 64 for body in BODIES]
IDS = b"".join(blake3.blake3(body).digest() for body in BODIES)


def _packed(items: list[bytes]) -> tuple[bytes, list[int]]:
    offsets = [0]
    for item in items:
        offsets.append(offsets[-1] + len(item))
    return b"".join(items), offsets


def _needs(name: str) -> None:
    if name not in LOADED:
        pytest.skip(f"chainmall.ext.{name} is not built")


def test_verify_tx_ids(backend: str) -> None:
    _needs("_verify")
    data, offsets = _packed(TXS)
    codes, ids = LOADED["_verify"].validate_batch(data, offsets, CHAIN_ID.encode(), 1, 1)
    assert ids == IDS
    assert set(codes) == {113}  # decoded, right chain, not expired; the signatures are junk


def test_txwire_tx_ids(backend: str) -> None:
    _needs("_txwire")
    data, offsets = _packed(TXS)
    codes, ids = LOADED["_txwire"].check_wire(data, offsets)
    assert ids == IDS
    assert codes == [0] * len(TXS)


def test_transfer_addresses(backend: str) -> None:
    _needs("_transfer")
    transfers_txs = [
        encode_body(CHAIN_ID, 1, key, 0, 1, 100,
                    address_from_public_key(KEYS[-1 - i]) + (5).to_bytes(8, "big")) + bytes(64)
        for i, key in enumerate(KEYS)
    ]
    data, offsets = _packed(transfers_txs)
    eligible = b"\x01" * len(transfers_txs)
    kernel = LOADED["_transfer"].plan_transfers(data, offsets, eligible, ADDRESS_KEY)
    assert kernel == transfers.plan_transfers(data, offsets, eligible, ADDRESS_KEY)
    addresses = {address_from_public_key(key) for key in KEYS}
    assert {kernel[0][i:i + 20] for i in range(0, len(kernel[0]), 20)} == addresses


def test_tree_nodes(backend: str) -> None:
    _needs("_tree")

    def native(reader: object, changes: list) -> object:
        return LOADED["_tree"].Apply(reader, changes, TreeUpdate, _corrupt, _parse_node)

    store, root = MemoryNodeStore(), EMPTY_ROOT
    blocks = [
        {b"key %d" % i: b"value %d" % i * (1 + i % 5) for i in range(300)},
        {**{b"key %d" % i: None for i in range(0, 300, 7)},
         **{b"key %d" % i: b"changed" for i in range(1, 300, 3)}},
    ]
    for changes in blocks:
        batch = _sorted_changes(changes)
        expected = tree_module._apply_batch(store, root, batch, tree_module._Apply)
        got = tree_module._apply_batch(store, root, batch, native)
        assert got.root == expected.root
        assert list(got.new_nodes.items()) == list(expected.new_nodes.items())
        store.put_nodes(dict(expected.new_nodes))
        root = expected.root
