"""The CometBFT binary helper: one pinned version everywhere, lookup order, config rewriting."""

from __future__ import annotations

import json
import os
import re
import stat
import tomllib
from pathlib import Path

import pytest
from abci_harness import cometbft_binary
from chainmall.cli.main import cli
from chainmall.core.abci import cometbft
from chainmall.core.abci.proto import generate
from chainmall.core.errors import CometBFTMissing
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[3]


def test_one_pinned_version_everywhere() -> None:
    makefile = (ROOT / "Makefile").read_text()
    pinned = re.search(r"^COMETBFT_VERSION := (\S+)$", makefile, re.MULTILINE)
    assert pinned is not None
    assert pinned.group(1) == f"v{cometbft.COMETBFT_VERSION}" == generate.COMETBFT_VERSION
    assert "cometbft@$(COMETBFT_VERSION)" in makefile  # never @latest
    header = (ROOT / "core/abci/proto/tendermint/abci/types_pb2.py").read_text()[:300]
    assert f"CometBFT {generate.COMETBFT_VERSION}" in header
    assert f"grpcio-tools {generate.GRPCIO_TOOLS_VERSION}" in header


def test_generated_imports_stay_under_chainmall() -> None:
    folder = ROOT / "core/abci/proto"
    for path in folder.rglob("*_pb2.py*"):
        text = path.read_text()
        assert not re.search(r"^(from|import) (tendermint|gogoproto)\b", text, re.MULTILINE), path
    assert generate.rewrite_imports(
        "from tendermint.crypto import proof_pb2 as x\n"
        "_builder.BuildTopDescriptorsAndMessages(DESCRIPTOR, 'tendermint.abci.types_pb2', g)\n"
        "from google.protobuf import timestamp_pb2\n"
    ) == (
        "from chainmall.core.abci.proto.tendermint.crypto import proof_pb2 as x\n"
        "_builder.BuildTopDescriptorsAndMessages(DESCRIPTOR, "
        "'chainmall.core.abci.proto.tendermint.abci.types_pb2', g)\n"
        "from google.protobuf import timestamp_pb2\n"
    )


def test_installed_binary_is_the_pinned_version() -> None:
    binary = cometbft_binary()
    assert cometbft.cometbft_version(binary) == cometbft.COMETBFT_VERSION


def fake_binary(folder: Path, version: str) -> Path:
    path = folder / "cometbft"
    path.write_text(f"#!/bin/sh\necho {version}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    on_path = fake_binary(tmp_path, cometbft.COMETBFT_VERSION)
    monkeypatch.setattr(cometbft, "TOOL_BINARY", tmp_path / "no-such-tool")
    monkeypatch.delenv(cometbft.COMETBFT_ENV, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert cometbft.find_cometbft() == on_path
    assert cometbft.check_cometbft() == (on_path, cometbft.COMETBFT_VERSION)

    (tmp_path / "env").mkdir()
    named = fake_binary(tmp_path / "env", "0.38.25")
    monkeypatch.setenv(cometbft.COMETBFT_ENV, str(named))
    assert cometbft.find_cometbft() == named
    with pytest.raises(CometBFTMissing, match=r"is CometBFT 0\.38\.25, chainmall needs 0\.38\.26"):
        cometbft.check_cometbft()

    monkeypatch.setenv(cometbft.COMETBFT_ENV, str(tmp_path / "missing"))
    with pytest.raises(CometBFTMissing, match="not an executable file"):
        cometbft.find_cometbft()

    monkeypatch.delenv(cometbft.COMETBFT_ENV)
    monkeypatch.setenv("PATH", str(tmp_path / "env-empty"))
    with pytest.raises(CometBFTMissing, match="make cometbft"):
        cometbft.find_cometbft()


def test_a_failing_binary_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "cometbft"
    path.write_text("#!/bin/sh\necho 'no such thing' >&2\nexit 3\n")
    path.chmod(0o755)
    with pytest.raises(CometBFTMissing, match="exited with 3: no such thing"):
        cometbft.cometbft_version(path)


SAMPLE = """# top comment
proxy_app = "tcp://127.0.0.1:26658"
moniker = "vm"

[rpc]
laddr = "tcp://127.0.0.1:26657"

[p2p]
# The address to listen on
laddr = "tcp://0.0.0.0:26656"
pex = true

[consensus]
timeout_commit = "1s"
create_empty_blocks = true
"""


def test_set_config_values_replaces_only_the_named_keys() -> None:
    text = cometbft.set_config_values(SAMPLE, {
        "": {"proxy_app": "unix:///tmp/a b.sock"},
        "p2p": {"laddr": "tcp://127.0.0.1:1", "pex": False},
        "consensus": {"timeout_commit": "50ms", "create_empty_blocks": False},
    })
    parsed = tomllib.loads(text)
    assert parsed["proxy_app"] == "unix:///tmp/a b.sock" and parsed["moniker"] == "vm"
    assert parsed["rpc"]["laddr"] == "tcp://127.0.0.1:26657"
    assert parsed["p2p"] == {"laddr": "tcp://127.0.0.1:1", "pex": False}
    assert parsed["consensus"] == {"timeout_commit": "50ms", "create_empty_blocks": False}
    assert "# The address to listen on" in text


def test_set_config_values_refuses_unknown_keys() -> None:
    with pytest.raises(KeyError, match=r"\[consensus\] timeout_comit"):
        cometbft.set_config_values(SAMPLE, {"consensus": {"timeout_comit": "1s"}})
    with pytest.raises(KeyError, match="pex"):
        cometbft.set_config_values(SAMPLE, {"": {"pex": False}})  # pex is under [p2p]


def test_configure_a_real_home(tmp_path: Path) -> None:
    binary = cometbft_binary()
    home = tmp_path / "home"
    cometbft.init_home(binary, home)
    cometbft.configure_home(home, {
        "": {"proxy_app": "unix:///tmp/x.sock"},
        "consensus": {"create_empty_blocks": False, "timeout_commit": "100ms"},
        "mempool": {"size": 20000},
    })
    config = tomllib.loads((home / "config" / "config.toml").read_text())
    assert config["proxy_app"] == "unix:///tmp/x.sock"
    assert config["consensus"]["create_empty_blocks"] is False
    assert config["mempool"]["size"] == 20000
    assert re.fullmatch(r"[0-9a-f]{40}", cometbft.node_id(binary, home))


def test_doctor_reports_cometbft(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    binary = fake_binary(tmp_path, cometbft.COMETBFT_VERSION)
    monkeypatch.setenv(cometbft.COMETBFT_ENV, str(binary))
    result = runner.invoke(cli, ["--home", str(tmp_path), "--json", "doctor"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["cometbft"] == {
        "version": cometbft.COMETBFT_VERSION, "path": str(binary)}
    text = runner.invoke(cli, ["--home", str(tmp_path), "doctor"]).output
    assert f"cometbft: {cometbft.COMETBFT_VERSION} ({binary})" in text

    monkeypatch.setenv(cometbft.COMETBFT_ENV, os.devnull + "-missing")
    missing = runner.invoke(cli, ["--home", str(tmp_path), "--json", "doctor"])
    assert missing.exit_code == 0  # the embedded engine needs no CometBFT
    assert "not an executable file" in json.loads(missing.output)["cometbft"]["error"]


def test_protobuf_runtime_is_in_the_supported_range() -> None:
    import google.protobuf

    major, minor = (int(part) for part in google.protobuf.__version__.split(".")[:2])
    assert (5, 29) <= (major, minor) < (8, 0), google.protobuf.__version__


def test_localnet_settings_fit_a_real_home(tmp_path: Path) -> None:
    # Every value LocalnetSettings writes is a key of CometBFT's own config.toml (a misspelt
    # one is refused), and the gossip routines' sleep is the one asked for.
    from chainmall.core.abci.localnet import LocalnetSettings

    home = tmp_path / "home"
    cometbft.init_home(cometbft_binary(), home)
    cometbft.configure_home(home, LocalnetSettings(peer_gossip_sleep_ms=7).config_values())
    config = tomllib.loads((home / "config" / "config.toml").read_text())
    assert config["consensus"]["peer_gossip_sleep_duration"] == "7ms"
    assert config["consensus"]["timeout_precommit"] == "30ms"
