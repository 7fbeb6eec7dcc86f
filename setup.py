"""Build chainmall: map the top-level folders into one package and compile ext/.

`core/`, `ext/` and `cli/` install as `chainmall.core`, `chainmall.ext` and
`chainmall.cli`. The Cython kernels in `ext/` are compiled with -O3. The
verification kernel `_verify` links OpenMP and the static library of
`ext/ed25519/` (ZIP 215 Ed25519 on ed25519-zebra), which this script builds
first with the machine's cargo (`cargo build --release --locked`, Rust >= 1.89;
the recipe is `ext/ed25519/cargo_build.py`, which the tests share).
The benchmark baseline `_sodium_bench` links the system libsodium and is built
only when libsodium's headers are found.

Environment:
  CHAINMALL_DEBUG=1     build the kernels with -O0 -g and Cython bounds checks on
                        (for debugging a kernel against its reference)
  CHAINMALL_KERNELS=a,b build only these kernels (e.g. `_blake3,_merkle`)
  CHAINMALL_ED25519_BACKEND=avx512|simd|serial
                        curve25519-dalek back ends to compile in (x86_64): `avx512`
                        (default) has AVX-512 IFMA, AVX2 and serial, chosen at run
                        time; `simd` leaves IFMA out (to measure an AVX2-only CPU),
                        `serial` leaves out both
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from types import ModuleType

from setuptools import Extension, find_packages, setup

CARGO_HELP = (
    "cargo (Rust >= 1.89) was not found; it builds ext/ed25519, the Ed25519 verifier.\n"
    "Install a current stable Rust with rustup (https://rustup.rs; distribution\n"
    "packages are usually older than 1.89), then make sure `cargo` is on PATH\n"
    "(rustup puts it in ~/.cargo/bin, which this build also looks in)."
)

ED25519_CRATE = "ext/ed25519"
ED25519_TARGET_DIR = os.path.join("build", "cargo")


def _load_cargo_build() -> ModuleType:
    """ext/ed25519/cargo_build.py, the build recipe the tests share (not a package: by path)."""
    path = os.path.join(ED25519_CRATE, "cargo_build.py")
    spec = importlib.util.spec_from_file_location("chainmall_ed25519_cargo_build", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cargo_build = _load_cargo_build()
ED25519_LIBRARY = cargo_build.library_path(ED25519_TARGET_DIR)
# What a Rust static library needs from the C side on Linux (`--print native-static-libs`).
RUST_NATIVE_LIBS = ["-lpthread", "-ldl", "-lm", "-lrt", "-lutil", "-lgcc_s"]
ED25519_BACKENDS = cargo_build.BACKENDS

BLAKE3_C_SOURCES = [
    "ext/csrc/blake3_portable.c",
    "ext/csrc/blake3_sse41.c",
    "ext/csrc/blake3_avx2.c",
    "ext/csrc/blake3_dispatch.c",
]

DEBUG = os.environ.get("CHAINMALL_DEBUG") == "1"


def _pkg_config(*args: str) -> list[str]:
    if shutil.which("pkg-config") is None:
        return []
    result = subprocess.run(
        ["pkg-config", *args, "libsodium"], capture_output=True, text=True, check=False
    )
    return result.stdout.split() if result.returncode == 0 else []


def _build_ed25519() -> str:
    """Build ext/ed25519 with cargo (Cargo.lock as committed); the static library's path."""
    cargo = cargo_build.find_cargo()
    if cargo is None:
        sys.stderr.write("\nerror: " + CARGO_HELP + "\n\n")
        raise SystemExit(1)
    backend = os.environ.get("CHAINMALL_ED25519_BACKEND", "avx512")
    if backend not in ED25519_BACKENDS:
        sys.stderr.write(f"\nerror: CHAINMALL_ED25519_BACKEND must be one of "
                         f"{', '.join(ED25519_BACKENDS)}, got {backend!r}\n\n")
        raise SystemExit(1)
    env = cargo_build.cargo_env(cargo, backend)
    command = cargo_build.cargo_command(cargo, ED25519_TARGET_DIR,
                                        os.path.join(ED25519_CRATE, "Cargo.toml"))
    print("building ext/ed25519:", " ".join(command), flush=True)
    if subprocess.run(command, env=env, check=False).returncode != 0:
        sys.stderr.write("\nerror: `cargo build` of ext/ed25519 failed (see above); it needs "
                         "Rust >= 1.89 and crates.io (or a filled cargo cache)\n\n")
        raise SystemExit(1)
    return ED25519_LIBRARY


def _libsodium_found(include_dirs: list[str], library_dirs: list[str]) -> bool:
    """Whether a one-line program compiles and links against libsodium."""
    compiler = os.environ.get("CC", "cc")
    source = "#include <sodium.h>\nint main(void){return sodium_init() < 0;}\n"
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "probe.c")
        with open(path, "w") as handle:
            handle.write(source)
        command = [compiler, path, "-o", os.path.join(tmp, "probe")]
        command += [f"-I{d}" for d in include_dirs] + [f"-L{d}" for d in library_dirs]
        command += ["-lsodium"]
        try:
            return subprocess.run(command, capture_output=True, check=False).returncode == 0
        except OSError:
            return False


def _extensions() -> list[Extension]:
    from Cython.Build import cythonize

    compile_args = ["-O0", "-g"] if DEBUG else ["-O3"]
    compile_args += ["-std=c11", "-fno-strict-aliasing"]
    only = {k for k in os.environ.get("CHAINMALL_KERNELS", "").split(",") if k}

    def wanted(name: str) -> bool:
        return not only or name in only

    def kernel(name: str, extra_sources: list[str], **kwargs) -> Extension:
        return Extension(
            f"chainmall.ext.{name}",
            [f"ext/{name}.pyx", *extra_sources],
            include_dirs=["ext/csrc", *kwargs.pop("include_dirs", [])],
            extra_compile_args=compile_args + kwargs.pop("extra_compile_args", []),
            extra_link_args=kwargs.pop("extra_link_args", []),
            **kwargs,
        )

    extensions = [
        kernel("_blake3", BLAKE3_C_SOURCES),
        kernel("_merkle", BLAKE3_C_SOURCES),
        kernel("_txwire", BLAKE3_C_SOURCES),
        kernel("_transfer", BLAKE3_C_SOURCES),
        kernel("_tree", BLAKE3_C_SOURCES),
        kernel("_mall", BLAKE3_C_SOURCES),
    ]
    if wanted("_verify"):
        extensions.append(kernel(
            "_verify",
            BLAKE3_C_SOURCES,
            include_dirs=[ED25519_CRATE],
            extra_objects=[_build_ed25519()],
            depends=[ED25519_LIBRARY],
            extra_compile_args=["-fopenmp"],
            # Keep the Rust runtime's symbols inside this module.
            extra_link_args=["-fopenmp", "-Wl,--exclude-libs,ALL", *RUST_NATIVE_LIBS],
        ))
    sodium_includes = [a[2:] for a in _pkg_config("--cflags-only-I") if a.startswith("-I")]
    sodium_libdirs = [a[2:] for a in _pkg_config("--libs-only-L") if a.startswith("-L")]
    if wanted("_sodium_bench") and _libsodium_found(sodium_includes, sodium_libdirs):
        extensions.append(kernel(
            "_sodium_bench", [],
            include_dirs=sodium_includes,
            library_dirs=sodium_libdirs,
            libraries=["sodium"],
        ))
    extensions = [
        ext for ext in extensions
        if os.path.exists(ext.sources[0]) and wanted(ext.name.rsplit(".", 1)[1])
    ]
    directives = {
        "language_level": "3",
        "boundscheck": DEBUG,
        "wraparound": DEBUG,
        "initializedcheck": DEBUG,
        "cdivision": True,
        "embedsignature": True,
    }
    return cythonize(extensions, compiler_directives=directives, quiet=True)


TOP_LEVEL = {"core": "chainmall.core", "ext": "chainmall.ext", "cli": "chainmall.cli"}


def _packages() -> tuple[list[str], dict[str, str]]:
    """Each top-level folder and its sub-packages, mapped under `chainmall.`."""
    packages, package_dir = [], {}
    for folder, name in TOP_LEVEL.items():
        for sub in ["", *find_packages(folder)]:
            dotted = f"{name}.{sub}" if sub else name
            packages.append(dotted)
            package_dir[dotted] = os.path.join(folder, *sub.split(".")) if sub else folder
    return packages, package_dir


PACKAGES, PACKAGE_DIR = _packages()

setup(
    packages=PACKAGES,
    package_dir=PACKAGE_DIR,
    package_data={
        "chainmall.ext": ["*.pyi", "*.pxd", "py.typed"],
        # The product page, built from web/ by `make web` (absent without npm).
        "chainmall.core": ["rpc/static/*"],
    },
    ext_modules=_extensions(),
    include_package_data=False,  # csrc/ is compiled in, not shipped as package data
    zip_safe=False,
)
