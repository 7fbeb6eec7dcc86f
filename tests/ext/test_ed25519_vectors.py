"""Official Ed25519 vectors through every verification path: one verdict everywhere.

Paths: the single-signature path (`core.keys.verify_signature`, PyNaCl and its
bundled libsodium), the kernel's `verify_batch` (system libsodium, OpenMP) with
one and two threads, and the reference `verify_batch`. Each must give the
expected verdict for RFC 8032 section 7.1, all 151 Wycheproof cases and the 12
ed25519-speccheck cases (libsodium row `XXXVXXXXXXXX`), case by case and as one
mixed batch. Sources and hashes: tests/vectors/SOURCES.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from chainmall import ext
from chainmall.core import verify as reference
from chainmall.core.keys import KeyPair, verify_signature

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
KERNEL = ext.load("_verify")
LIBSODIUM_SPECCHECK_ROW = "XXXVXXXXXXXX"


@dataclass(frozen=True)
class Case:
    """One (pk, msg, sig) with the verdict libsodium's strict rule must give."""

    name: str
    public_key: bytes
    message: bytes
    signature: bytes
    expected: bool


def _load(name: str) -> object:
    return json.loads((VECTORS / name).read_text())


def rfc8032_cases() -> list[Case]:
    data = _load("rfc8032_ed25519.json")
    return [
        Case(
            f"rfc8032 {v['name']}",
            bytes.fromhex(v["public_key"]),
            bytes.fromhex(v["message"]),
            bytes.fromhex(v["signature"]),
            True,
        )
        for v in data["vectors"]
    ]


def wycheproof_cases() -> list[Case]:
    data = _load("wycheproof_ed25519.json")
    cases = []
    for group in data["testGroups"]:
        public_key = bytes.fromhex(group["publicKey"]["pk"])
        for test in group["tests"]:
            assert test["result"] in ("valid", "invalid"), test  # no "acceptable" in this file
            cases.append(
                Case(
                    f"wycheproof tcId {test['tcId']}",
                    public_key,
                    bytes.fromhex(test["msg"]),
                    bytes.fromhex(test["sig"]),
                    test["result"] == "valid",
                )
            )
    assert len(cases) == data["numberOfTests"] == 151
    return cases


def speccheck_cases() -> list[Case]:
    row = _load("ed25519_speccheck_results.json")["results"]["LibSodium"]
    assert row == LIBSODIUM_SPECCHECK_ROW
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


SOURCES = {"rfc8032": rfc8032_cases, "wycheproof": wycheproof_cases, "speccheck": speccheck_cases}
ALL_CASES = [case for load in SOURCES.values() for case in load()]

Verify = Callable[[list[Case]], list[bool]]


def _batch_path(impl: object, threads: int) -> Verify:
    def run(cases: list[Case]) -> list[bool]:
        items = [(c.public_key, c.message, c.signature) for c in cases]
        return reference.verify_signatures(items, batch=impl.verify_batch, threads=threads)

    return run


def _single_path(cases: list[Case]) -> list[bool]:
    return [verify_signature(c.public_key, c.message, c.signature) for c in cases]


_NO_KERNEL = pytest.mark.skipif(KERNEL is None, reason="chainmall.ext._verify is not built")
BATCH_PATHS = [
    pytest.param("kernel-1-thread", marks=_NO_KERNEL),
    pytest.param("kernel-2-threads", marks=_NO_KERNEL),
    pytest.param("reference", marks=[]),
]


def _path(name: str) -> Verify:
    if name == "single":
        return _single_path
    if name == "reference":
        return _batch_path(reference, 1)
    return _batch_path(KERNEL, 1 if name == "kernel-1-thread" else 2)


def _mismatches(cases: list[Case], verdicts: list[bool]) -> list[str]:
    return [f"{c.name}: got {v}" for c, v in zip(cases, verdicts, strict=True) if v != c.expected]


@pytest.mark.parametrize("path", ["single", *BATCH_PATHS])
@pytest.mark.parametrize("source", list(SOURCES))
def test_each_case_alone(source: str, path: str) -> None:
    verify = _path(path)
    cases = SOURCES[source]()
    verdicts = [verify([case])[0] for case in cases]
    assert _mismatches(cases, verdicts) == []


@pytest.mark.parametrize("path", ["single", *BATCH_PATHS])
def test_all_cases_as_one_mixed_batch(path: str) -> None:
    # Valid and invalid items side by side: catches state leaking between items
    # (offsets, per-thread buffers) that one-item batches cannot show.
    verdicts = _path(path)(ALL_CASES)
    assert _mismatches(ALL_CASES, verdicts) == []
    reversed_verdicts = _path(path)(ALL_CASES[::-1])
    assert reversed_verdicts == verdicts[::-1]


@pytest.mark.parametrize("path", ["single", *BATCH_PATHS])
def test_speccheck_row_is_libsodium_strict(path: str) -> None:
    verdicts = _path(path)(speccheck_cases())
    row = "".join("V" if v else "X" for v in verdicts)
    assert row == LIBSODIUM_SPECCHECK_ROW  # only case 3 (mixed-order A and R) accepted


def test_paths_agree_item_for_item() -> None:
    paths = ["single", "reference"] + (
        ["kernel-1-thread", "kernel-2-threads"] if KERNEL is not None else []
    )
    verdicts = {name: _path(name)(ALL_CASES) for name in paths}
    assert all(v == verdicts["single"] for v in verdicts.values()), verdicts


def test_rfc8032_keys_and_signatures_reproduce() -> None:
    # Seed -> public key and deterministic signing give the published bytes.
    for vector in _load("rfc8032_ed25519.json")["vectors"]:
        keypair = KeyPair.from_seed(bytes.fromhex(vector["secret_key"]))
        assert keypair.public_key.hex() == vector["public_key"], vector["name"]
        assert keypair.sign(bytes.fromhex(vector["message"])).hex() == vector["signature"]


def test_rfc8032_counts_and_wycheproof_balance() -> None:
    assert len(rfc8032_cases()) == 5
    wycheproof = wycheproof_cases()
    assert sum(c.expected for c in wycheproof) == 88
    assert sum(len(c.signature) != 64 for c in wycheproof) == 12


WRONG_LENGTH = [c for c in wycheproof_cases() if len(c.signature) != 64]


@pytest.mark.parametrize("case", WRONG_LENGTH, ids=lambda c: c.name)
def test_wrong_length_signature_rejected_on_both_paths(case: Case) -> None:
    # Single path: PyNaCl's length check says no before libsodium runs.
    assert verify_signature(case.public_key, case.message, case.signature) is False
    # Batch path: verify_signatures answers False without packing the item.
    calls: list[int] = []

    def spy(public_keys, messages, offsets, signatures, threads=0):  # type: ignore[no-untyped-def]
        calls.append(len(offsets) - 1)
        return reference.verify_batch(public_keys, messages, offsets, signatures, threads)

    item = (case.public_key, case.message, case.signature)
    assert reference.verify_signatures([item], batch=spy) == [False]
    assert calls == [0]
    # The packed API itself refuses a signature area that is not n * 64 bytes.
    impls = [reference] + ([KERNEL] if KERNEL is not None else [])
    for impl in impls:
        with pytest.raises(ValueError):
            impl.verify_batch(case.public_key, case.message, [0, len(case.message)],
                              case.signature)


@pytest.mark.parametrize("path", ["single", *BATCH_PATHS])
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


@_NO_KERNEL
def test_kernel_names_its_libsodium() -> None:
    version = KERNEL.sodium_version()
    major, minor, *_ = (int(part) for part in version.split(".")[:3])
    assert (major, minor) == (1, 0)
    assert version in KERNEL.describe()
