"""BLAKE3: the kernel (every SIMD back end) == the reference == the blake3 package.

The reference is `chainmall.core.hashing`; the kernel is `chainmall.ext._blake3`.
Both are checked against the `blake3` package and against the official
BLAKE3 vectors (tests/vectors/blake3_test_vectors.json, see SOURCES.md), for
every input length 0..2048, batch sizes that leave every lane remainder,
mixed-length batches, and random batches. Bad arguments must raise the same
exception type from both.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from array import array
from collections.abc import Callable, Iterator
from itertools import pairwise
from pathlib import Path
from types import ModuleType

import blake3
import pytest
from chainmall import ext
from chainmall.core import constants, hashing
from hypothesis import given, settings
from hypothesis import strategies as st

KERNEL = ext.load("_blake3")
NO_KERNEL = "the _blake3 extension is not built (setup.py build_ext --inplace)"
VECTORS = json.loads(
    (Path(__file__).resolve().parents[1] / "vectors" / "blake3_test_vectors.json").read_text()
)
VECTOR_KEY = VECTORS["key"].encode()
VECTOR_CONTEXT = VECTORS["context_string"]
BACKENDS = ("portable", "sse41", "avx2")  # narrowest first
LENGTH_MAX = 2048
KEY = bytes(range(100, 132))
# Lane widths are 8 (AVX2) and 4 (SSE4.1): these counts leave every remainder.
BATCH_COUNTS = [*range(18), 31, 33, 63, 101, 257]


def _supported_backends() -> list[str]:
    if KERNEL is None:
        return []
    return list(BACKENDS[: BACKENDS.index(KERNEL.best_backend()) + 1])


# Pseudo-random bytes to cut test messages from (BLAKE3 extended output).
_POOL = blake3.blake3(b"chainmall blake3 test pool").digest(length=1 << 16)


def _message(length: int, seed: int = 0) -> bytes:
    """Deterministic bytes; the start depends on (length, seed), so batches differ."""
    if length > len(_POOL) // 2:
        return (_POOL * (length // len(_POOL) + 1))[:length]
    start = (length * 131 + seed * 1009) % (len(_POOL) - length)
    return _POOL[start : start + length]


def _vector_input(length: int) -> bytes:
    return bytes(i % 251 for i in range(length))


def _package(message: bytes, key: bytes | None) -> bytes:
    return blake3.blake3(message, key=key).digest()


def _packed(messages: list[bytes]) -> tuple[bytes, list[int]]:
    offsets = [0]
    for message in messages:
        offsets.append(offsets[-1] + len(message))
    return b"".join(messages), offsets


@pytest.fixture(
    params=[
        pytest.param("kernel", marks=pytest.mark.skipif(KERNEL is None, reason=NO_KERNEL)),
        "reference",
    ]
)
def impl(request: pytest.FixtureRequest) -> ModuleType:
    """The module under test: the compiled kernel or the pure-Python reference."""
    return KERNEL if request.param == "kernel" else hashing


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """Force one kernel back end for the test, then restore "auto"."""
    if KERNEL is None:
        pytest.skip(NO_KERNEL)
    if request.param not in _supported_backends():
        pytest.skip(f"this CPU lacks the {request.param} back end")
    KERNEL.set_backend(request.param)
    try:
        yield request.param
    finally:
        KERNEL.set_backend("auto")


# --- the reference ----------------------------------------------------------------


@pytest.mark.parametrize("key", [None, KEY], ids=["plain", "keyed"])
def test_reference_every_length(key: bytes | None) -> None:
    for length in range(LENGTH_MAX + 1):
        message = _message(length)
        assert hashing.blake3_hash(message, key) == _package(message, key), length


def test_reference_multi_level_tree() -> None:
    # 17 chunks plus a byte: five levels, a lone right-hand chunk at the end.
    for length in (16 * 1024, 16 * 1024 + 1, 17 * 1024 + 1):
        message = _message(length)
        assert hashing.blake3_hash(message) == _package(message, None), length


def test_reference_derive_key() -> None:
    for context, material in [("", b""), ("chainmall test", b"x" * 1025), ("ctx", b"abc")]:
        expected = blake3.blake3(material, derive_key_context=context).digest()
        assert hashing.blake3_derive_key(context, material) == expected


# --- official vectors ------------------------------------------------------------


@pytest.mark.parametrize("case", VECTORS["cases"], ids=lambda case: str(case["input_len"]))
def test_official_vectors_reference(case: dict) -> None:
    message = _vector_input(case["input_len"])
    assert hashing.blake3_hash(message).hex() == case["hash"][:64]
    assert hashing.blake3_hash(message, VECTOR_KEY).hex() == case["keyed_hash"][:64]
    assert hashing.blake3_derive_key(VECTOR_CONTEXT, message).hex() == case["derive_key"][:64]


def test_official_vectors_kernel(backend: str) -> None:
    for case in VECTORS["cases"]:
        length = case["input_len"]
        message = _vector_input(length)
        for key, field in [(None, "hash"), (VECTOR_KEY, "keyed_hash")]:
            expected = bytes.fromhex(case[field][:64])
            assert KERNEL.hash_many(message, [0, length], key) == expected, (length, field)
            if length > 0:
                # Nine copies: a full AVX2 group plus a remainder.
                got = KERNEL.hash_many_fixed(message * 9, length, key)
                assert got == expected * 9, (length, field)
    # All official inputs in one mixed batch (single- and multi-chunk together).
    messages = [_vector_input(case["input_len"]) for case in VECTORS["cases"]]
    data, offsets = _packed(messages)
    expected = b"".join(bytes.fromhex(case["hash"][:64]) for case in VECTORS["cases"])
    assert KERNEL.hash_many(data, offsets) == expected


def test_official_derive_key_and_domain_key() -> None:
    empty = next(case for case in VECTORS["cases"] if case["input_len"] == 0)
    assert hashing.domain_key(VECTOR_CONTEXT).hex() == empty["derive_key"][:64]
    assert hashing.blake3_derive_key(VECTOR_CONTEXT, b"").hex() == empty["derive_key"][:64]


def test_domain_keys_match_the_reference() -> None:
    pairs = [
        (hashing.MERKLE_LEAF_KEY, constants.MERKLE_LEAF_CONTEXT),
        (hashing.MERKLE_NODE_KEY, constants.MERKLE_NODE_CONTEXT),
        (hashing.ADDRESS_KEY, constants.ADDRESS_CONTEXT),
        (hashing.BLOCK_HASH_KEY, constants.BLOCK_HASH_CONTEXT),
    ]
    for key, context in pairs:
        assert len(key) == constants.HASH_BYTES
        assert key == hashing.blake3_derive_key(context, b"")
    assert len({key for key, _ in pairs}) == len(pairs)


def test_digest_helper() -> None:
    message = _message(3000)
    assert hashing.digest(message) == hashing.blake3_hash(message)
    assert hashing.digest(message, KEY) == hashing.blake3_hash(message, KEY)


# --- the kernel, every length, every back end ------------------------------------------


@pytest.mark.parametrize("key", [None, KEY], ids=["plain", "keyed"])
def test_kernel_every_length(backend: str, key: bytes | None) -> None:
    messages = [_message(length) for length in range(LENGTH_MAX + 1)]
    expected = [_package(message, key) for message in messages]
    data, offsets = _packed(messages)
    assert KERNEL.hash_many(data, offsets, key) == b"".join(expected)
    for length in range(1, LENGTH_MAX + 1):
        # Eleven different messages: 8 + 3 lanes on AVX2, 4 + 4 + 3 on SSE4.1.
        group = [_message(length, seed) for seed in range(11)]
        got = KERNEL.hash_many_fixed(b"".join(group), length, key)
        assert got == b"".join(_package(m, key) for m in group), length


# --- batch shapes -----------------------------------------------------------------


def _check_counts(impl: ModuleType, counts: list[int], lengths: list[int]) -> None:
    for length in lengths:
        for count in counts:
            group = [_message(length, seed) for seed in range(count)]
            expected = b"".join(_package(m, KEY) for m in group)
            data, offsets = _packed(group)
            assert impl.hash_many(data, offsets, KEY) == expected, (length, count)
            if length > 0:
                got = impl.hash_many_fixed(data, length, KEY)
                assert got == expected, (length, count)


def test_batch_counts_kernel(backend: str) -> None:
    _check_counts(KERNEL, BATCH_COUNTS, [0, 1, 64, 65, 200, 1024, 1025])


def test_batch_counts_reference() -> None:
    _check_counts(hashing, list(range(18)), [0, 1, 64, 65, 200])


def _mixed_batch() -> list[bytes]:
    """Lengths that share block counts and lengths that do not, plus multi-chunk ones."""
    lengths = [0, 1, 63, 64, 65, 127, 128, 129, 500, 1023, 1024, 1025, 2049, 5000]
    return [_message(lengths[(i * 5) % len(lengths)], i) for i in range(3 * len(lengths) + 5)]


def test_mixed_lengths_kernel(backend: str) -> None:
    messages = _mixed_batch()
    data, offsets = _packed(messages)
    for key in (None, KEY):
        expected = b"".join(_package(m, key) for m in messages)
        assert KERNEL.hash_many(data, offsets, key) == expected
        assert KERNEL.hash_many(data, offsets, key) == hashing.hash_many(data, offsets, key)


OFFSET_FORMS: list[tuple[str, Callable[[list[int]], object]]] = [
    ("list", list),
    ("tuple", tuple),
    ("array_Q", lambda values: array("Q", values)),
    ("array_q", lambda values: array("q", values)),
    ("array_I", lambda values: array("I", values)),
    ("memoryview_u64", lambda values: memoryview(array("Q", values))),
    ("range_like", lambda values: iter(values)),
]
DATA_FORMS: list[tuple[str, Callable[[bytes], object]]] = [
    ("bytes", bytes),
    ("bytearray", bytearray),
    ("memoryview", memoryview),
    ("memoryview_slice", lambda data: memoryview(b"xx" + data)[2:]),
]


@pytest.mark.parametrize("offsets_form", OFFSET_FORMS, ids=lambda form: form[0])
@pytest.mark.parametrize("data_form", DATA_FORMS, ids=lambda form: form[0])
def test_argument_forms(impl: ModuleType, data_form: tuple, offsets_form: tuple) -> None:
    messages = [_message(length, 3) for length in (0, 5, 64, 100, 1100, 7)]
    data, offsets = _packed(messages)
    expected = b"".join(_package(m, None) for m in messages)
    assert impl.hash_many(data_form[1](data), offsets_form[1](offsets)) == expected
    fixed = b"".join(messages[1:3] * 5)[: 5 * 64]
    assert impl.hash_many_fixed(data_form[1](fixed), 64, bytearray(KEY)) == b"".join(
        _package(fixed[i : i + 64], KEY) for i in range(0, len(fixed), 64)
    )


def test_offsets_may_skip_and_share_bytes(impl: ModuleType) -> None:
    data = _message(300)
    offsets = [10, 10, 74, 74, 250, 300]
    expected = b"".join(_package(data[a:b], None) for a, b in pairwise(offsets))
    assert impl.hash_many(data, offsets) == expected
    assert impl.hash_many(data, [7]) == b""
    assert impl.hash_many_fixed(b"", 5) == b""
    assert impl.hash_many_fixed(b"", 2**70) == b""


def test_wide_items_use_the_tree(impl: ModuleType) -> None:
    data = b"".join(_message(3000, seed) for seed in range(3))
    assert impl.hash_many_fixed(data, 3000) == b"".join(
        _package(data[i : i + 3000], None) for i in range(0, 9000, 3000)
    )


# --- kernel == reference == package on random batches ---------------------------------

_batches = st.lists(st.binary(max_size=1100), max_size=20)
_keys = st.none() | st.binary(min_size=32, max_size=32)


@pytest.mark.skipif(KERNEL is None, reason=NO_KERNEL)
@settings(derandomize=True, max_examples=60, deadline=None)
@given(messages=_batches, key=_keys)
def test_random_batches_agree(messages: list[bytes], key: bytes | None) -> None:
    data, offsets = _packed(messages)
    expected = b"".join(_package(m, key) for m in messages)
    assert hashing.hash_many(data, offsets, key) == expected
    for name in _supported_backends():
        KERNEL.set_backend(name)
        try:
            assert KERNEL.hash_many(data, offsets, key) == expected, name
        finally:
            KERNEL.set_backend("auto")


@pytest.mark.skipif(KERNEL is None, reason=NO_KERNEL)
@settings(derandomize=True, max_examples=40, deadline=None)
@given(
    item_bytes=st.integers(min_value=1, max_value=1100),
    count=st.integers(min_value=0, max_value=19),
    seed=st.integers(min_value=0, max_value=250),
    key=_keys,
)
def test_random_fixed_batches_agree(
    item_bytes: int, count: int, seed: int, key: bytes | None
) -> None:
    data = b"".join(_message(item_bytes, seed + i) for i in range(count))
    starts = range(0, len(data), item_bytes)
    expected = b"".join(_package(data[i : i + item_bytes], key) for i in starts)
    assert hashing.hash_many_fixed(data, item_bytes, key) == expected
    for name in _supported_backends():
        KERNEL.set_backend(name)
        try:
            assert KERNEL.hash_many_fixed(data, item_bytes, key) == expected, name
        finally:
            KERNEL.set_backend("auto")


# --- argument errors: same exception type from both -----------------------------------

DATA = _message(96)
FIXED_ERRORS = [
    ("key_31", (DATA, 32, b"k" * 31), ValueError),
    ("key_33", (DATA, 32, b"k" * 33), ValueError),
    ("key_empty", (DATA, 32, b""), ValueError),
    ("key_str", (DATA, 32, "k" * 32), TypeError),
    ("key_int", (DATA, 32, 7), TypeError),
    ("data_str", ("x" * 96, 32, None), TypeError),
    ("data_none", (None, 32, None), TypeError),
    ("data_list", ([1, 2, 3], 1, None), TypeError),
    ("data_strided", (memoryview(DATA)[::2], 16, None), ValueError),
    ("not_a_multiple", (DATA, 40, None), ValueError),
    ("item_zero", (DATA, 0, None), ValueError),
    ("item_zero_empty", (b"", 0, None), ValueError),
    ("item_negative", (DATA, -32, None), ValueError),
    ("item_huge", (DATA, 2**70, None), ValueError),
    ("item_huge_bad_key", (DATA, 2**70, b"k"), ValueError),
    ("item_float", (DATA, 32.0, None), TypeError),
    ("item_str", (DATA, "32", None), TypeError),
]
MANY_ERRORS = [
    ("key_31", (DATA, [0, 96], b"k" * 31), ValueError),
    ("key_str", (DATA, [0, 96], "k" * 32), TypeError),
    ("data_str", ("x" * 96, [0, 96], None), TypeError),
    ("offsets_empty", (DATA, [], None), ValueError),
    ("offsets_empty_array", (DATA, array("Q"), None), ValueError),
    ("offsets_negative", (DATA, [-1, 10], None), ValueError),
    ("offsets_negative_only", (DATA, [-5], None), ValueError),
    ("offsets_decreasing", (DATA, [0, 50, 40], None), ValueError),
    ("offsets_decreasing_u64", (DATA, array("Q", [0, 50, 40]), None), ValueError),
    ("offsets_past_end", (DATA, [0, 97], None), ValueError),
    ("offsets_past_end_u64", (DATA, array("Q", [0, 97]), None), ValueError),
    ("offsets_huge", (DATA, [0, 2**64], None), ValueError),
    ("offsets_u64_max", (DATA, array("Q", [0, 2**64 - 1]), None), ValueError),
    ("offsets_huge_negative", (DATA, [0, -(2**70)], None), ValueError),
    ("offsets_float", (DATA, [0, 1.0], None), TypeError),
    ("offsets_none_item", (DATA, [0, None], None), TypeError),
    ("offsets_none", (DATA, None, None), TypeError),
    ("offsets_int", (DATA, 5, None), TypeError),
    ("offsets_str", (DATA, "05", None), TypeError),
    ("offsets_2d", (DATA, memoryview(array("Q", [0, 1, 2, 3])).cast("B").cast("Q", (2, 2)), None),
     ValueError),
]


@pytest.mark.parametrize("args, error", [case[1:] for case in FIXED_ERRORS],
                         ids=[case[0] for case in FIXED_ERRORS])
def test_hash_many_fixed_errors(impl: ModuleType, args: tuple, error: type) -> None:
    with pytest.raises(error):
        impl.hash_many_fixed(*args)


@pytest.mark.parametrize("args, error", [case[1:] for case in MANY_ERRORS],
                         ids=[case[0] for case in MANY_ERRORS])
def test_hash_many_errors(impl: ModuleType, args: tuple, error: type) -> None:
    with pytest.raises(error):
        impl.hash_many(*args)


# --- back-end control ------------------------------------------------------------------


@pytest.mark.skipif(KERNEL is None, reason=NO_KERNEL)
def test_backend_control() -> None:
    best = KERNEL.best_backend()
    assert best in BACKENDS
    assert KERNEL.backend() == best
    assert KERNEL.describe() == f"BLAKE3 SIMD backend {best} (best: {best})"
    try:
        for name in _supported_backends():
            KERNEL.set_backend(name)
            assert KERNEL.backend() == name
            assert KERNEL.describe() == f"BLAKE3 SIMD backend {name} (best: {best})"
        for name in BACKENDS[len(_supported_backends()) :]:
            with pytest.raises(ValueError, match="does not support"):
                KERNEL.set_backend(name)
        with pytest.raises(ValueError, match="unknown"):
            KERNEL.set_backend("avx512")
        with pytest.raises(TypeError):
            KERNEL.set_backend(3)
    finally:
        KERNEL.set_backend("auto")
    assert KERNEL.backend() == best


# --- the GIL is released while hashing ------------------------------------------------


@pytest.mark.skipif(KERNEL is None, reason=NO_KERNEL)
def test_kernel_releases_the_gil() -> None:
    """The main thread runs Python code while another thread is inside the kernel.

    The switch interval is raised to 100 s, so a thread holding the GIL keeps it
    until it blocks or releases it. The worker signals `started` and enters the
    kernel at once; the main thread, woken by `started`, can only get the GIL
    before the worker sets `done` if the kernel released it. A kernel that ended
    before the main thread was scheduled is retried with a bigger batch.
    """
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(100.0)
    try:
        for attempt in range(4):
            data = bytes(64 * (1 << (18 + attempt)))
            started = threading.Event()
            state = {"done": False, "seen_while_running": False}

            def work(data: bytes = data, started: threading.Event = started,
                     state: dict = state) -> None:
                started.set()
                KERNEL.hash_many_fixed(data, 64)
                state["done"] = True

            worker = threading.Thread(target=work)
            worker.start()
            assert started.wait(timeout=30.0)
            state["seen_while_running"] = not state["done"]
            deadline = time.monotonic() + 60.0
            while worker.is_alive() and time.monotonic() < deadline:
                worker.join(timeout=0.05)
            assert not worker.is_alive()
            assert state["done"]
            if state["seen_while_running"]:
                return
        pytest.fail("the main thread never ran while the kernel was hashing")
    finally:
        sys.setswitchinterval(old_interval)
