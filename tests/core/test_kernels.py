"""core/kernels.py and core/accel.py: the kernel choice sits below its users, no import circle."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from chainmall import ext
from chainmall.core import accel, kernels, verify

MODULES = ["chainmall.core.tx", "chainmall.core.block", "chainmall.core.keys",
           "chainmall.core.verify", "chainmall.core.accel", "chainmall.core.kernels",
           "chainmall.core.state.machine"]


def _python(code: str, pure: str = "0") -> subprocess.CompletedProcess:
    env = {**os.environ, "CHAINMALL_PURE": pure}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=120)


@pytest.mark.parametrize("module", MODULES)
def test_each_module_imports_first_in_a_fresh_process(module: str) -> None:
    # With a circle, some first import finds a half-initialised module.
    result = _python(f"import {module}")
    assert result.returncode == 0, result.stderr


def test_kernels_does_not_import_the_modules_that_use_it() -> None:
    code = ("import sys, chainmall.core.kernels; "
            "print(sorted(m for m in sys.modules if m.startswith('chainmall.core.')))")
    loaded = set(eval(_python(code).stdout))
    assert not loaded & {"chainmall.core.tx", "chainmall.core.block", "chainmall.core.keys",
                         "chainmall.core.verify", "chainmall.core.accel"}


def test_accel_re_exports_every_choice() -> None:
    for name in ("hash_many", "hash_many_fixed", "digest_many", "digest_many_fixed",
                 "merkle_root", "merkle_proof", "merkle_verify", "verify_one"):
        assert getattr(accel, name) is getattr(kernels, name), name
    kernel = ext.load("_verify")
    if kernel is None or kernels.PURE:
        assert accel.validate_batch is verify.validate_batch
        assert accel.verify_batch is verify.verify_batch
    else:
        assert accel.validate_batch is kernel.validate_batch
        assert accel.verify_batch is kernel.verify_batch


def test_pure_forces_every_reference() -> None:
    code = (
        "from chainmall.core import accel, ed25519, kernels, merkle, verify, hashing\n"
        "assert kernels.verify_one is ed25519.verify_one\n"
        "assert accel.verify_batch is verify.verify_batch\n"
        "assert accel.validate_batch is verify.validate_batch\n"
        "assert accel.merkle_root is merkle.merkle_root\n"
        "assert accel.hash_many is hashing.hash_many\n"
        "assert {s.in_use for s in accel.status()} == {'reference'}\n"
        "assert accel.ed25519_backend() == 'pure Python'\n"
    )
    result = _python(code, pure="1")
    assert result.returncode == 0, result.stderr

