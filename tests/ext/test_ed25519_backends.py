"""Every curve25519-dalek back end this CPU can run gives the Ed25519 vectors' verdicts.

The `_verify` kernel links ext/ed25519 with all of curve25519-dalek's back ends
compiled in, and curve25519-dalek runs the best one the CPU has (AVX-512 IFMA,
else AVX2, else serial); nothing can make it run another. So this file builds
the same crate again, with the committed Cargo.lock and the install's recipe
(ext/ed25519/cargo_build.py), once for each other back end the CPU can run:
`simd` (AVX2 and serial compiled in: AVX2 runs on a CPU that has it) and
`serial` (with sha2's portable SHA-512 too, which sha2 would otherwise swap
for its AVX2 one at run time: what a CPU without AVX2 runs). Each is a shared
library (`cargo rustc --crate-type cdylib`, the install's static library
untouched) in its own target dir under build/cargo-backends/, built once per
session and reused by the next run, loaded with ctypes. For each, the library
must name its back end, and every case of tests/ext/test_ed25519_vectors.py
(RFC 8032, Wycheproof, speccheck row VVVVVVXXXVVV, ZIP 215's 196 small-order
cases) must get the same verdict from `cm_ed25519_verify` and from
`cm_ed25519_verify_batch` (each case at a random position among valid
signatures, and all of them shuffled together) as from the linked kernel and
the pure-Python reference. Without cargo these tests skip.
"""

from __future__ import annotations

import ctypes
import platform
import random
import runpy
import subprocess
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest
from chainmall.core import ed25519
from chainmall.core.constants import ED25519_BATCH_ITEMS
from test_ed25519_vectors import (
    ALL_CASES,
    FILLERS,
    KERNEL,
    ZEBRA_SPECCHECK_ROW,
    Case,
    _batch_path,
    _embed_each,
    _mismatches,
    _one_path,
    speccheck_cases,
)

ROOT = Path(__file__).resolve().parents[2]
TARGET_DIR = ROOT / "build" / "cargo-backends"
BUILD_TIMEOUT_S = 1200  # a fat-LTO release build: 25-40 s each on 2 busy cores

# The builds beside the install's `avx512` (values of --cfg curve25519_dalek_backend).
VARIANTS = ("simd", "serial")
# The SHA-512 of k = SHA-512(R || A || M) is run-time dispatched too (the sha2 crate:
# AVX2, else portable), so the serial build is what a CPU without AVX2 runs: both
# portable. (With AVX2, curve25519-dalek runs avx2 and sha2 AVX2: the simd build.)
EXTRA_CFGS = {"simd": (), "serial": ('sha2_backend="soft"',)}


# The install's own build recipe (not in a package: setup.py loads it by path too).
cargo_build = SimpleNamespace(**runpy.run_path(str(ROOT / "ext" / "ed25519" / "cargo_build.py")))


def _cpu_flags() -> set[str]:
    cpuinfo = Path("/proc/cpuinfo")
    return set(cpuinfo.read_text().split()) if cpuinfo.exists() else set()


X86_64 = platform.machine() in ("x86_64", "AMD64")
CPU_FLAGS = _cpu_flags()


def expected_backend(build: str) -> str:
    """The back end a build of ext/ed25519 with `--cfg curve25519_dalek_backend=<build>`
    runs on this CPU (the order curve25519-dalek and cm_ed25519_backend probe in)."""
    if not X86_64 or build == "serial":
        return "serial"
    if build == "avx512" and {"avx512ifma", "avx512vl"} <= CPU_FLAGS:
        return "avx512ifma"
    return "avx2" if "avx2" in CPU_FLAGS else "serial"


# What each build compiles in (cm_ed25519_compiled_backends), on x86_64.
COMPILED_BACKENDS = {"simd": "avx2,serial", "serial": "serial"}


# --- the library, through ctypes -----------------------------------------------------
_Pointers = ctypes.POINTER(ctypes.c_char_p)


@dataclass
class Library:
    """One build of ext/ed25519 as a shared library, with the packed API of the kernel
    (`verify_one`, `verify_batch`) so test_ed25519_vectors.py's paths can drive it."""

    build: str
    path: Path
    handle: ctypes.CDLL = field(init=False)
    settled: list[tuple[int, bool]] = field(default_factory=list)  # (items, batch equation)

    def __post_init__(self) -> None:
        self.handle = ctypes.CDLL(str(self.path))
        for name in ("cm_ed25519_backend", "cm_ed25519_compiled_backends",
                     "cm_ed25519_version"):
            function = getattr(self.handle, name)
            function.argtypes, function.restype = [], ctypes.c_char_p
        self.handle.cm_ed25519_verify.argtypes = [
            ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p]
        self.handle.cm_ed25519_verify.restype = ctypes.c_int
        self.handle.cm_ed25519_verify_batch.argtypes = [
            ctypes.c_size_t, _Pointers, _Pointers, ctypes.POINTER(ctypes.c_size_t), _Pointers,
            ctypes.POINTER(ctypes.c_uint8)]
        self.handle.cm_ed25519_verify_batch.restype = ctypes.c_int

    def text(self, name: str) -> str:
        return getattr(self.handle, name)().decode("ascii")

    def verify_one(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        """`cm_ed25519_verify`; ValueError for lengths the C ABI has no room for."""
        if len(public_key) != 32 or len(signature) != 64:
            raise ValueError("public_key must be 32 bytes and signature 64")
        return self.handle.cm_ed25519_verify(public_key, message, len(message), signature) == 1

    def verify_items(self, items: Sequence[tuple[bytes, bytes, bytes]]) -> list[bool]:
        """One `cm_ed25519_verify_batch` call over `items`, in their order."""
        n = len(items)
        keys = (ctypes.c_char_p * n)(*(pk for pk, _, _ in items))
        messages = (ctypes.c_char_p * n)(*(msg for _, msg, _ in items))
        lengths = (ctypes.c_size_t * n)(*(len(msg) for _, msg, _ in items))
        signatures = (ctypes.c_char_p * n)(*(sig for _, _, sig in items))
        ok = (ctypes.c_uint8 * n)()
        settled = self.handle.cm_ed25519_verify_batch(n, keys, messages, lengths, signatures, ok)
        verdicts = [bool(v) for v in ok]
        assert set(ok) <= {0, 1} and settled in (0, 1)
        self.settled.append((n, settled == 1))
        # The batch equation settles a batch exactly when every item in it is valid
        # (a batch of one is always checked alone).
        assert (settled == 1) == (n >= 2 and all(verdicts)), (n, settled, verdicts)
        return verdicts

    def verify_batch(self, public_keys: bytes, messages: bytes, offsets: Sequence[int],
                     signatures: bytes, threads: int = 0) -> list[bool]:
        """The kernel's packed API: batches of ED25519_BATCH_ITEMS in the given order
        (the kernel sorts by key first; here each case keeps its random position)."""
        n = len(offsets) - 1
        items = [(public_keys[32 * i:32 * i + 32], messages[offsets[i]:offsets[i + 1]],
                  signatures[64 * i:64 * i + 64]) for i in range(n)]
        chunks = [items[i:i + ED25519_BATCH_ITEMS] for i in range(0, n, ED25519_BATCH_ITEMS)]
        with ThreadPoolExecutor(max(threads, 1)) as pool:  # ctypes calls drop the GIL
            return [v for verdicts in pool.map(self.verify_items, chunks) for v in verdicts]


def _build(build: str) -> Library:
    cargo = cargo_build.find_cargo()
    if cargo is None:
        pytest.skip("cargo is not installed: the other curve25519-dalek back ends cannot be "
                    "built (README: Rust >= 1.89 from rustup)")
    target_dir = TARGET_DIR / build
    command = cargo_build.cargo_command(cargo, str(target_dir), crate_type="cdylib")
    try:
        result = subprocess.run(command, env=cargo_build.cargo_env(cargo, build,
                                                                   extra_cfgs=EXTRA_CFGS[build]),
                                capture_output=True, text=True, timeout=BUILD_TIMEOUT_S,
                                check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{' '.join(command)} took over {BUILD_TIMEOUT_S} s")
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stderr[-4000:]}"
    return Library(build, Path(cargo_build.library_path(str(target_dir), "cdylib")))


def _reason_to_skip(build: str) -> str | None:
    backend = expected_backend(build)
    if build == "simd" and backend != "avx2":
        return "this CPU lacks AVX2: a simd build would run serial, which the serial build tests"
    if KERNEL is not None and KERNEL.ed25519_backend() == backend:
        return (f"the linked kernel already runs {backend} on this CPU "
                "(tests/ext/test_ed25519_vectors.py)")
    return None


@pytest.fixture(scope="session", params=VARIANTS)
def library(request: pytest.FixtureRequest) -> Iterator[Library]:
    """A build of ext/ed25519 for one back end, made once per session (cargo reuses
    build/cargo-backends/<build> when nothing changed)."""
    reason = _reason_to_skip(request.param)
    if reason is not None:
        pytest.skip(reason)
    yield _build(request.param)


# --- what the linked kernel and the reference say --------------------------------------
@pytest.fixture(scope="module")
def verdicts_elsewhere() -> list[bool]:
    """Each case's verdict, the same from the reference, the linked kernel (single and
    batch) and the vector files."""
    expected = [case.expected for case in ALL_CASES]
    paths = {"reference": _one_path(ed25519.verify_one)(ALL_CASES)}
    if KERNEL is not None:
        paths["kernel-one"] = _one_path(KERNEL.verify_one)(ALL_CASES)
        paths["kernel-batch"] = _batch_path(KERNEL, 1)(ALL_CASES)
    for name, verdicts in paths.items():
        assert _mismatches(ALL_CASES, verdicts) == [], name
    return expected


# --- the tests ----------------------------------------------------------------------
def test_expected_backends_follow_the_cpu() -> None:
    # The linked kernel (built with `avx512`) runs what this file predicts, so the
    # other builds' predictions use the same probe.
    if KERNEL is None:
        pytest.skip("chainmall.ext._verify is not built")
    assert KERNEL.ed25519_backend() == expected_backend("avx512")
    assert {expected_backend(b) for b in VARIANTS} <= {"avx2", "serial"}


def test_library_names_its_back_end(library: Library) -> None:
    assert library.text("cm_ed25519_backend") == expected_backend(library.build)
    assert library.text("cm_ed25519_compiled_backends") == COMPILED_BACKENDS[library.build]
    version = library.text("cm_ed25519_version")
    assert version.startswith("ed25519-zebra 5.") and ", curve25519-dalek 5." in version
    if KERNEL is not None:
        assert version == KERNEL.ed25519_version()  # the same Cargo.lock
        assert library.text("cm_ed25519_backend") != KERNEL.ed25519_backend()


def test_each_case_alone(library: Library, verdicts_elsewhere: list[bool]) -> None:
    verdicts = _one_path(library.verify_one)(ALL_CASES)
    assert _mismatches(ALL_CASES, verdicts) == []
    assert verdicts == verdicts_elsewhere
    row = "".join("V" if v else "X" for v in _one_path(library.verify_one)(speccheck_cases()))
    assert row == ZEBRA_SPECCHECK_ROW


def test_each_case_in_a_batch_of_valid_signatures(library: Library,
                                                   verdicts_elsewhere: list[bool]) -> None:
    # One batch equation per case: the case at a seeded random position among
    # ED25519_BATCH_ITEMS - 1 valid signatures. Its verdict, and every filler's,
    # must be the single check's; the equation settles exactly the all-valid batches.
    verify = _batch_path(library, 1)
    library.settled.clear()
    mismatches, case_verdicts = [], []
    for batch, position in _embed_each(ALL_CASES, seed=25519):
        verdicts = verify(batch)
        mismatches += _mismatches(batch, verdicts)
        case_verdicts.append(verdicts[position])
    assert mismatches == []
    assert case_verdicts == verdicts_elsewhere
    # Every batch reached the library (wrong-length signatures are refused before it).
    well_formed = [len(c.public_key) == 32 and len(c.signature) == 64 for c in ALL_CASES]
    assert [n for n, _ in library.settled] == [
        ED25519_BATCH_ITEMS if ok else ED25519_BATCH_ITEMS - 1 for ok in well_formed]
    settled = [s for _, s in library.settled]
    assert settled == [ok or not good for ok, good in zip(verdicts_elsewhere, well_formed,
                                                          strict=True)]
    assert 0 < sum(settled) < len(settled)


def test_all_cases_shuffled_among_valid_signatures(library: Library) -> None:
    # Batch boundaries fall anywhere and a batch may hold several bad items; two
    # threads call the library at once (its key cache is shared between them).
    items: list[Case] = ALL_CASES + FILLERS[:100]
    random.Random(8032).shuffle(items)
    for threads in (1, 2):
        assert _mismatches(items, _batch_path(library, threads)(items)) == [], threads
        assert _mismatches(items[::-1], _batch_path(library, threads)(items[::-1])) == []


def test_install_recipe_is_cargo_build_locked() -> None:
    # setup.py's build (the static library `_verify` links) is the crate as Cargo.toml
    # has it, Cargo.lock as committed, with only curve25519-dalek's back ends chosen;
    # only these tests ask for a cdylib or more flags.
    assert cargo_build.cargo_command("cargo", "t") == [
        "cargo", "build", "--release", "--locked", "--manifest-path",
        str(Path(cargo_build.CRATE_DIR) / "Cargo.toml"), "--target-dir", "t"]
    env = cargo_build.cargo_env("/bin/cargo", "avx512", environ={"RUSTFLAGS": "-Cdebuginfo=1"})
    if X86_64:
        assert env["CARGO_ENCODED_RUSTFLAGS"].split("\x1f") == [
            "-Cdebuginfo=1", "--cfg", 'curve25519_dalek_backend="avx512"']
    else:
        assert "CARGO_ENCODED_RUSTFLAGS" not in env
