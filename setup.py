"""Build chainmall: map the top-level folders into one package and compile ext/.

`core/`, `ext/` and `cli/` install as `chainmall.core`, `chainmall.ext` and
`chainmall.cli`. The Cython kernels in `ext/` are compiled with -O3; the
Ed25519 kernel links the system libsodium and OpenMP.

Environment:
  CHAINMALL_DEBUG=1     build the kernels with -O0 -g and Cython bounds checks on
                        (for debugging a kernel against its reference)
  CHAINMALL_KERNELS=a,b build only these kernels (e.g. `_blake3,_merkle`)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

from setuptools import Extension, find_packages, setup

LIBSODIUM_HELP = (
    "libsodium (headers and library) was not found. Install it with\n"
    "    sudo apt-get install -y libsodium-dev      # Debian/Ubuntu\n"
    "    sudo dnf install -y libsodium-devel        # Fedora/RHEL\n"
    "    brew install libsodium                     # macOS\n"
    "or run `make setup`, which installs it for you."
)

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


def _check_libsodium(include_dirs: list[str], library_dirs: list[str]) -> None:
    """Compile and link a one-line program against libsodium, or stop with a hint."""
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
            ok = subprocess.run(command, capture_output=True, check=False).returncode == 0
        except OSError:
            ok = False
    if not ok:
        sys.stderr.write("\nerror: " + LIBSODIUM_HELP + "\n\n")
        raise SystemExit(1)


def _extensions() -> list[Extension]:
    from Cython.Build import cythonize

    compile_args = ["-O0", "-g"] if DEBUG else ["-O3"]
    compile_args += ["-std=c11", "-fno-strict-aliasing"]
    sodium_includes = [a[2:] for a in _pkg_config("--cflags-only-I") if a.startswith("-I")]
    sodium_libdirs = [a[2:] for a in _pkg_config("--libs-only-L") if a.startswith("-L")]
    _check_libsodium(sodium_includes, sodium_libdirs)

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
        kernel(
            "_verify",
            BLAKE3_C_SOURCES,
            include_dirs=sodium_includes,
            library_dirs=sodium_libdirs,
            libraries=["sodium"],
            extra_compile_args=["-fopenmp"],
            extra_link_args=["-fopenmp"],
        ),
    ]
    only = {k for k in os.environ.get("CHAINMALL_KERNELS", "").split(",") if k}
    extensions = [
        ext for ext in extensions
        if os.path.exists(ext.sources[0]) and (not only or ext.name.rsplit(".", 1)[1] in only)
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
