"""How ext/ed25519 is built with cargo: the one recipe setup.py and the tests share.

setup.py builds the static library the `_verify` kernel links (the back ends
`avx512`: IFMA, AVX2 and serial, chosen at run time by curve25519-dalek).
tests/ext/test_ed25519_backends.py builds the same crate, with the same
Cargo.lock and flags, for the other back ends (`simd`, `serial`) as shared
libraries it loads with ctypes, so every back end the CPU can run passes the
vectors. Loaded by file path (this folder is not a package); standard library
only, since setup.py imports it before anything is installed.
"""

from __future__ import annotations

import os
import platform
import shutil
from collections.abc import Mapping

CRATE_DIR = os.path.dirname(os.path.abspath(__file__))
# The values of `--cfg curve25519_dalek_backend=...`: which back ends are compiled in.
BACKENDS = ("avx512", "simd", "serial")
LIBRARY_NAME = "chainmall_ed25519"


def find_cargo() -> str | None:
    """cargo on PATH, or where rustup installs it."""
    found = shutil.which("cargo")
    if found:
        return found
    homes = [os.environ.get("CARGO_HOME", ""), os.path.expanduser("~/.cargo")]
    for home in homes:
        candidate = os.path.join(home, "bin", "cargo") if home else ""
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def cargo_env(cargo: str, backend: str, environ: Mapping[str, str] | None = None,
              extra_cfgs: tuple[str, ...] = ()) -> dict[str, str]:
    """The environment of the build: cargo's folder on PATH, the back ends to compile in.

    `extra_cfgs` (tests only) adds `--cfg` values, e.g. `sha2_backend="soft"`.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    env = dict(os.environ if environ is None else environ)
    env["PATH"] = os.path.dirname(cargo) + os.pathsep + env.get("PATH", "")
    # Compile the IFMA (and AVX2) back ends in; curve25519-dalek picks one at run time.
    cfgs = [f'curve25519_dalek_backend="{backend}"'] if platform.machine() in (
        "x86_64", "AMD64") else []
    cfgs += extra_cfgs
    if cfgs:
        # CARGO_ENCODED_RUSTFLAGS wins over RUSTFLAGS and config files: keep the user's too.
        flags = [f for f in env.get("CARGO_ENCODED_RUSTFLAGS", "").split("\x1f") if f]
        flags += env.get("RUSTFLAGS", "").split()
        for cfg in cfgs:
            flags += ["--cfg", cfg]
        env["CARGO_ENCODED_RUSTFLAGS"] = "\x1f".join(flags)
    return env


def cargo_command(cargo: str, target_dir: str, manifest_path: str | None = None,
                  crate_type: str | None = None) -> list[str]:
    """The cargo command: `cargo build` of the crate as Cargo.toml has it (a static
    library), or with `crate_type` (e.g. "cdylib") `cargo rustc --crate-type` of it."""
    manifest = manifest_path or os.path.join(CRATE_DIR, "Cargo.toml")
    head = [cargo, "build"] if crate_type is None else [cargo, "rustc"]
    command = [*head, "--release", "--locked", "--manifest-path", manifest,
               "--target-dir", target_dir]
    if crate_type is not None:
        command += ["--crate-type", crate_type]
    return command


def library_path(target_dir: str, crate_type: str | None = None) -> str:
    """Where the build puts the library (Linux names)."""
    suffix = {None: "a", "staticlib": "a", "cdylib": "so"}[crate_type]
    return os.path.join(target_dir, "release", f"lib{LIBRARY_NAME}.{suffix}")
