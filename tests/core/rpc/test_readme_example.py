"""The README's integrator example runs as printed against a node (a fake one here)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from chainmall.core.keystore import KeyStore
from rpc_helpers import node_process

README = Path(__file__).resolve().parents[3] / "README.md"


def test_readme_client_example(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.DOTALL)
    example = next(block for block in blocks if "RpcClient.connect" in block)
    shop = KeyStore(tmp_path / "keys").create("shop")
    with node_process(["--tcp", "127.0.0.1:0", "--balance",
                       f"{shop.address_text}=100000"]) as node:
        code = example.replace("/home/me/.chainmall/keys", str(tmp_path / "keys"))
        code = code.replace("tcp://127.0.0.1:8645", node.addresses["tcp"])
        exec(compile(code, str(README), "exec"), {"__name__": "__main__"})
    printed = capsys.readouterr().out
    assert "final at height 1, code 0" in printed
    assert "('amount', '250')" in printed
