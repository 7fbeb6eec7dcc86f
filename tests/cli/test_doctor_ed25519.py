"""`chainmall doctor` names the Ed25519 rule, the library and the back end on both paths."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from chainmall import ext
from chainmall.core.constants import PROTOCOL_VERSION


def _doctor(home: Path, pure: str) -> dict:
    env = {**os.environ, "CHAINMALL_HOME": str(home), "CHAINMALL_PURE": pure}
    result = subprocess.run([sys.executable, "-m", "chainmall.cli", "--json", "doctor"],
                            capture_output=True, text=True, env=env, timeout=120,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("pure", ["0", "1"], ids=["kernels", "pure-python"])
def test_doctor_reports_rule_and_back_end(tmp_path: Path, pure: str) -> None:
    report = _doctor(tmp_path, pure)
    signing = report["ed25519"]
    assert signing["rule"] == "ZIP 215"
    assert signing["protocol_version"] == PROTOCOL_VERSION
    assert report["checks"]["ed25519"] == "ok"
    kernel = ext.load("_verify")
    if pure == "1" or kernel is None:
        assert signing["backend"] == "pure Python"
    else:
        assert signing["backend"] == kernel.ed25519_backend()
        assert signing["library"] == kernel.ed25519_version()
        assert signing["backend"] in signing["compiled_backends"].split(",")
