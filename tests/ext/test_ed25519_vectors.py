"""Official and ZIP 215 Ed25519 vectors through every verification path: one verdict everywhere.

Paths: the single-signature path (`core.keys.verify_signature`, which runs
whatever `core.kernels` chose), the kernel's `verify_one` and the reference's
(`core.ed25519`), the kernel's `verify_batch` (batch equations of
ED25519_BATCH_ITEMS, OpenMP) with one and two threads, the reference
`verify_batch`, and every case placed at a random position in a batch of valid
signatures. Cases: RFC 8032 section 7.1, all 151 Wycheproof cases with their
ZIP 215 verdicts, the 12 ed25519-speccheck cases (Zebra row `VVVVVVXXXVVV`) and
ZIP 215's 196 small-order cases. Sources: tests/vectors/SOURCES.md.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nacl.bindings
import nacl.exceptions
import nacl.signing
import pytest
from chainmall import ext
from chainmall.core import ed25519, kernels
from chainmall.core import verify as reference
from chainmall.core.constants import ED25519_BATCH_ITEMS
from chainmall.core.keys import KeyPair, verify_signature
from hypothesis import given, settings
from hypothesis import strategies as st

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
KERNEL = ext.load("_verify")
ZEBRA_SPECCHECK_ROW = "VVVVVVXXXVVV"
LIBSODIUM_SPECCHECK_ROW = "XXXVXXXXXXXX"  # the old rule (protocol version 1)


@dataclass(frozen=True)
class Case:
    """One (pk, msg, sig) with the verdict ZIP 215 must give."""

    name: str
    public_key: bytes
    message: bytes
    signature: bytes
    expected: bool


def _load(name: str) -> dict:
    return json.loads((VECTORS / name).read_text())


ZIP215 = _load("ed25519_zip215.json")


def rfc8032_cases() -> list[Case]:
    verdicts = {row["name"]: row["zip215"] == "valid" for row in ZIP215["rfc8032"]}
    return [
        Case(
            f"rfc8032 {v['name']}",
            bytes.fromhex(v["public_key"]),
            bytes.fromhex(v["message"]),
            bytes.fromhex(v["signature"]),
            verdicts[v["name"]],
        )
        for v in _load("rfc8032_ed25519.json")["vectors"]
    ]


def wycheproof_cases() -> list[Case]:
    data = _load("wycheproof_ed25519.json")
    verdicts = {row["tcId"]: row["zip215"] == "valid" for row in ZIP215["wycheproof"]}
    cases = []
    for group in data["testGroups"]:
        public_key = bytes.fromhex(group["publicKey"]["pk"])
        for test in group["tests"]:
            cases.append(
                Case(
                    f"wycheproof tcId {test['tcId']}",
                    public_key,
                    bytes.fromhex(test["msg"]),
                    bytes.fromhex(test["sig"]),
                    verdicts[test["tcId"]],
                )
            )
    assert len(cases) == data["numberOfTests"] == 151
    return cases


def speccheck_cases() -> list[Case]:
    row = _load("ed25519_speccheck_results.json")["results"]["Zebra"]
    assert row == ZEBRA_SPECCHECK_ROW
    return [
        Case(
            f"speccheck case {i}",
            bytes.fromhex(c["pub_key"]),
            bytes.fromhex(c["message"]),
            bytes.fromhex(c["signature"]),
            row[i] == "V",
        )
        for i, c in enumerate(_load("ed25519_speccheck_cases.json"))
    ]


def small_order_cases() -> list[Case]:
    block = ZIP215["small_order"]
    encodings = [bytes.fromhex(e["encoding"]) for e in block["encodings"]]
    message, s = bytes.fromhex(block["message"]), bytes.fromhex(block["s"])
    return [
        Case(f"small order A#{a} R#{r}", encodings[a], message, encodings[r] + s, True)
        for a in range(len(encodings))
        for r in range(len(encodings))
    ]


SOURCES = {
    "rfc8032": rfc8032_cases,
    "wycheproof": wycheproof_cases,
    "speccheck": speccheck_cases,
    "small-order": small_order_cases,
}
ALL_CASES = [case for load in SOURCES.values() for case in load()]

Verify = Callable[[list[Case]], list[bool]]


def _batch_path(impl: object, threads: int) -> Verify:
    def run(cases: list[Case]) -> list[bool]:
        items = [(c.public_key, c.message, c.signature) for c in cases]
        return reference.verify_signatures(items, batch=impl.verify_batch, threads=threads)

    return run


def _one_path(verify_one: Callable[[bytes, bytes, bytes], bool]) -> Verify:
    def run(cases: list[Case]) -> list[bool]:
        # verify_one takes 32-byte keys and 64-byte signatures only (ValueError else).
        return [
            len(c.public_key) == 32 and len(c.signature) == 64
            and verify_one(c.public_key, c.message, c.signature)
            for c in cases
        ]

    return run


def _single_path(cases: list[Case]) -> list[bool]:
    return [verify_signature(c.public_key, c.message, c.signature) for c in cases]


_NO_KERNEL = pytest.mark.skipif(KERNEL is None, reason="chainmall.ext._verify is not built")
PATHS = [
    pytest.param("single", marks=[]),
    pytest.param("reference-one", marks=[]),
    pytest.param("reference-batch", marks=[]),
    pytest.param("kernel-one", marks=_NO_KERNEL),
    pytest.param("kernel-batch-1-thread", marks=_NO_KERNEL),
    pytest.param("kernel-batch-2-threads", marks=_NO_KERNEL),
]


def _path(name: str) -> Verify:
    if name == "single":
        return _single_path
    if name == "reference-one":
        return _one_path(ed25519.verify_one)
    if name == "reference-batch":
        return _batch_path(reference, 1)
    if name == "kernel-one":
        return _one_path(KERNEL.verify_one)
    return _batch_path(KERNEL, 1 if name == "kernel-batch-1-thread" else 2)


def _mismatches(cases: list[Case], verdicts: list[bool]) -> list[str]:
    return [f"{c.name}: got {v}" for c, v in zip(cases, verdicts, strict=True) if v != c.expected]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("source", list(SOURCES))
def test_each_case_alone(source: str, path: str) -> None:
    verify = _path(path)
    cases = SOURCES[source]()
    verdicts = [verify([case])[0] for case in cases]
    assert _mismatches(cases, verdicts) == []


@pytest.mark.parametrize("path", PATHS)
def test_all_cases_as_one_mixed_batch(path: str) -> None:
    # Valid and invalid items side by side: catches state leaking between items
    # (offsets, per-thread buffers, batch fallback) that one-item batches cannot show.
    verdicts = _path(path)(ALL_CASES)
    assert _mismatches(ALL_CASES, verdicts) == []
    reversed_verdicts = _path(path)(ALL_CASES[::-1])
    assert reversed_verdicts == verdicts[::-1]


@pytest.mark.parametrize("path", PATHS)
def test_speccheck_row_is_zebra(path: str) -> None:
    verdicts = _path(path)(speccheck_cases())
    row = "".join("V" if v else "X" for v in verdicts)
    assert row == ZEBRA_SPECCHECK_ROW


# --- every case at random positions in batches of valid signatures ---------------------
def _valid_fillers(count: int) -> list[Case]:
    keys = [nacl.signing.SigningKey(bytes([i + 1]) * 32) for i in range(16)]
    fillers = []
    for i in range(count):
        key = keys[i % len(keys)]
        message = b"filler %d" % i
        fillers.append(Case(f"filler {i}", bytes(key.verify_key), message,
                            key.sign(message).signature, True))
    return fillers


FILLERS = _valid_fillers(2 * ED25519_BATCH_ITEMS)


def _embed_each(cases: list[Case], seed: int) -> list[tuple[list[Case], int]]:
    """One full batch per case: valid fillers with the case at a seeded random position."""
    rng = random.Random(seed)
    batches = []
    for case in cases:
        batch = rng.sample(FILLERS, ED25519_BATCH_ITEMS - 1)
        position = rng.randrange(ED25519_BATCH_ITEMS)
        batch.insert(position, case)
        batches.append((batch, position))
    return batches


@_NO_KERNEL
@pytest.mark.parametrize("threads", [1, 2])
def test_each_case_in_a_batch_of_valid_signatures(threads: int) -> None:
    # The kernel's batch equation sees the case among ED25519_BATCH_ITEMS - 1 valid
    # signatures: its verdict, and every filler's, must be those of the single check.
    verify = _batch_path(KERNEL, threads)
    mismatches = []
    for batch, position in _embed_each(ALL_CASES, seed=215 + threads):
        verdicts = verify(batch)
        mismatches += _mismatches(batch, verdicts)
        assert len(verdicts) == ED25519_BATCH_ITEMS, batch[position].name
    assert mismatches == []


def test_all_cases_shuffled_among_valid_signatures() -> None:
    # Every path on one long list: all cases and fillers in a seeded random order, so
    # batch boundaries fall in different places and a batch may hold several bad items.
    items = ALL_CASES + FILLERS[:100]
    random.Random(8032).shuffle(items)
    paths = ["single", "reference-batch"] + (
        ["kernel-one", "kernel-batch-1-thread", "kernel-batch-2-threads"] if KERNEL else []
    )
    for name in paths:
        assert _mismatches(items, _path(name)(items)) == [], name


def test_paths_agree_item_for_item() -> None:
    paths = ["single", "reference-one", "reference-batch"] + (
        ["kernel-one", "kernel-batch-1-thread", "kernel-batch-2-threads"] if KERNEL else []
    )
    verdicts = {name: _path(name)(ALL_CASES) for name in paths}
    assert all(v == verdicts["single"] for v in verdicts.values()), verdicts


# --- the vector files themselves -------------------------------------------------------
def test_zip215_file_is_what_its_generator_writes() -> None:
    generator = VECTORS / "generate_ed25519_zip215.py"
    result = subprocess.run([sys.executable, str(generator), "--check"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_small_order_set_is_zip215s() -> None:
    encodings = ZIP215["small_order"]["encodings"]
    assert [e["kind"] for e in encodings] == ["canonical"] * 8 + ["non-canonical"] * 6
    assert sorted(e["order"] for e in encodings[:8]) == [1, 2, 4, 4, 8, 8, 8, 8]
    assert bytes.fromhex(ZIP215["small_order"]["message"]) == b"Zcash"
    assert len(small_order_cases()) == 196
    # Each decodes, under the reference's relaxed rule, to a point P with [8]P = 0;
    # the canonical ones re-encode to themselves, the others do not.
    for entry in encodings:
        encoding = bytes.fromhex(entry["encoding"])
        point = ed25519.decode_point(encoding)
        assert point is not None, entry
        eighth = point
        for _ in range(3):
            eighth = ed25519.point_double(eighth)
        assert ed25519.is_identity(eighth), entry
        assert (ed25519.encode_point(point) == encoding) == (entry["kind"] == "canonical")


def test_zip215_differs_from_wycheproof_only_where_recorded() -> None:
    rows = ZIP215["wycheproof"]
    assert [r["tcId"] for r in rows] == [int(c.name.split()[-1]) for c in wycheproof_cases()]
    differing = {r["tcId"] for r in rows if r["zip215"] != r["wycheproof"]}
    assert differing == {151}
    assert sum(r["zip215"] == "valid" for r in rows) == 89  # Wycheproof's 88 valid + tcId 151


def test_rfc8032_keys_and_signatures_reproduce() -> None:
    # Seed -> public key and deterministic signing (libsodium) give the published bytes.
    for vector in _load("rfc8032_ed25519.json")["vectors"]:
        keypair = KeyPair.from_seed(bytes.fromhex(vector["secret_key"]))
        assert keypair.public_key.hex() == vector["public_key"], vector["name"]
        assert keypair.sign(bytes.fromhex(vector["message"])).hex() == vector["signature"]


def _libsodium_verdict(case: Case) -> bool:
    try:
        nacl.bindings.crypto_sign_open(case.signature + case.message, case.public_key)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError):
        return False
    return True


def test_libsodium_gives_no_verdict_any_more() -> None:
    # The old rule (protocol version 1) and the new one part ways on exactly the
    # edge cases: where they differ, chainmall follows ZIP 215 on every path.
    cases = speccheck_cases()
    old_row = "".join("V" if _libsodium_verdict(c) else "X" for c in cases)
    assert old_row == LIBSODIUM_SPECCHECK_ROW
    assert "".join("V" if v else "X" for v in _single_path(cases)) == ZEBRA_SPECCHECK_ROW
    small = small_order_cases()
    assert sum(_libsodium_verdict(c) for c in small) < len(small)
    assert all(_single_path(small))


WRONG_LENGTH = [c for c in wycheproof_cases() if len(c.signature) != 64]


def test_wycheproof_has_twelve_wrong_length_signatures() -> None:
    assert len(WRONG_LENGTH) == 12


@pytest.mark.parametrize("case", WRONG_LENGTH, ids=lambda c: c.name)
def test_wrong_length_signature_rejected_on_every_path(case: Case) -> None:
    # Single path: a signature that is not 64 bytes is not valid.
    assert verify_signature(case.public_key, case.message, case.signature) is False
    # Batch path: verify_signatures answers False without packing the item.
    calls: list[int] = []

    def spy(public_keys, messages, offsets, signatures, threads=0):  # type: ignore[no-untyped-def]
        calls.append(len(offsets) - 1)
        return reference.verify_batch(public_keys, messages, offsets, signatures, threads)

    item = (case.public_key, case.message, case.signature)
    assert reference.verify_signatures([item], batch=spy) == [False]
    assert calls == [0]
    # The packed API and verify_one refuse a signature that is not 64 bytes.
    impls = [reference] + ([KERNEL] if KERNEL is not None else [])
    for impl in impls:
        with pytest.raises(ValueError):
            impl.verify_batch(case.public_key, case.message, [0, len(case.message)],
                              case.signature)
    for verify_one in [ed25519.verify_one] + ([KERNEL.verify_one] if KERNEL else []):
        with pytest.raises(ValueError):
            verify_one(case.public_key, case.message, case.signature)


@pytest.mark.parametrize("path", PATHS)
def test_rfc8032_byte_flips_rejected(path: str) -> None:
    # One flipped bit anywhere in R, S, the message or the key must fail.
    verify = _path(path)
    flipped = []
    for case in rfc8032_cases():
        for field in ("signature", "message", "public_key"):
            data = bytearray(getattr(case, field))
            if not data:
                continue
            for position in (0, len(data) // 2, len(data) - 1):
                changed = bytearray(data)
                changed[position] ^= 0x01
                values = {
                    "public_key": case.public_key,
                    "message": case.message,
                    "signature": case.signature,
                    field: bytes(changed),
                }
                flipped.append(Case(f"{case.name} {field}[{position}]", **values, expected=False))
    assert _mismatches(flipped, verify(flipped)) == []


def test_single_path_runs_the_chosen_verifier() -> None:
    expected = ed25519.verify_one if KERNEL is None or kernels.PURE else KERNEL.verify_one
    assert kernels.verify_one is expected


@_NO_KERNEL
def test_kernel_names_its_library_and_back_end() -> None:
    version = KERNEL.ed25519_version()
    assert version.startswith("ed25519-zebra 5.")
    assert ", curve25519-dalek 5." in version
    backend = KERNEL.ed25519_backend()
    compiled = KERNEL.ed25519_compiled_backends().split(",")
    assert backend in compiled and compiled[-1] == "serial"
    assert set(compiled) <= {"avx512ifma", "avx2", "serial"}
    words = set(Path("/proc/cpuinfo").read_text().split()) if Path("/proc/cpuinfo").exists() \
        else set()
    if "avx512ifma" in compiled and {"avx512ifma", "avx512vl"} <= words:
        assert backend == "avx512ifma"
    elif "avx2" in compiled and "avx2" in words:
        assert backend == "avx2"
    text = KERNEL.describe()
    assert text.startswith(f"ZIP 215 via {version}, back end {backend}")
    assert f"batches of {ED25519_BATCH_ITEMS}" in text


def test_locked_crate_versions_are_the_ones_linked() -> None:
    lock = (Path(__file__).resolve().parents[2] / "ext" / "ed25519" / "Cargo.lock").read_text()
    blocks = {block.split('"')[1]: block for block in lock.split("[[package]]")[1:]}
    zebra = blocks["ed25519-zebra"].split('version = "')[1].split('"')[0]
    dalek = blocks["curve25519-dalek"].split('version = "')[1].split('"')[0]
    assert zebra.startswith("5.") and dalek.startswith("5.")
    if KERNEL is not None:
        assert KERNEL.ed25519_version() == f"ed25519-zebra {zebra}, curve25519-dalek {dalek}"


# --- hypothesis: kernel and reference on edge-heavy inputs ------------------------------
_SMALL_ORDER = [bytes.fromhex(e["encoding"]) for e in ZIP215["small_order"]["encodings"]]
_SIGNER = nacl.signing.SigningKey(b"\x07" * 32)
_points = st.one_of(
    st.sampled_from(_SMALL_ORDER),                     # small order, canonical or not
    st.just(bytes(_SIGNER.verify_key)),                # a real key
    st.binary(min_size=32, max_size=32),               # anything (about half decode)
    st.integers(0, 2**255 - 1).map(lambda y: (y | (1 << 255)).to_bytes(32, "little")),
)
_scalars = st.one_of(
    st.just(0),
    st.integers(0, ed25519.L - 1),
    st.integers(ed25519.L, 2**256 - 1),               # not canonical: always rejected
    st.just(ed25519.L),
)


@_NO_KERNEL
@settings(max_examples=150, deadline=None)
@given(_points, _points, _scalars, st.binary(max_size=40), st.booleans())
def test_kernel_equals_reference_on_edge_encodings(public_key: bytes, r: bytes, s: int,
                                                    message: bytes, honest: bool) -> None:
    if honest:  # half the time a real signature, with one part swapped for an edge value
        signature = _SIGNER.sign(message).signature
        public_key, r = bytes(_SIGNER.verify_key), (r if s % 3 == 0 else signature[:32])
        s = int.from_bytes(signature[32:], "little") if s % 2 == 0 else s
    signature = r + s.to_bytes(32, "little")
    expected = ed25519.verify_one(public_key, message, signature)
    assert KERNEL.verify_one(public_key, message, signature) is expected
    batch = KERNEL.verify_batch(public_key * 3, message * 3,
                                [0, len(message), 2 * len(message), 3 * len(message)],
                                signature * 3, 1)
    assert batch == [expected] * 3
