"""Node configuration: the commented file, precedence, sources, and bad values."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from chainmall.cli.main import cli
from chainmall.core.errors import InvalidConfig
from chainmall.core.node.config import (
    CONFIG_FILE,
    SETTINGS,
    config_template,
    load_config,
    parse_listen,
    write_default_config,
)
from click.testing import CliRunner


def test_the_template_is_commented_toml_with_every_default(tmp_path: Path) -> None:
    text = config_template()
    parsed = tomllib.loads(text)
    for setting in SETTINGS:
        table = parsed
        *sections, name = setting.key.split(".")
        for section in sections:
            table = table[section]
        assert table[name] == setting.default, setting.key
    assert text.count("\n# ") >= len(SETTINGS)  # a comment above every key
    path = write_default_config(tmp_path)
    assert path == tmp_path / CONFIG_FILE and path.read_text() == text
    with pytest.raises(FileExistsError):
        write_default_config(tmp_path)
    config = load_config(tmp_path, environ={})
    assert config.file == path
    assert all(source == f"file {path}" for source in config.sources.values())


def test_flag_beats_variable_beats_file_beats_default(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE).write_text(
        "[node]\nblock_interval_ms = 400\nempty_blocks = true\n[log]\nlevel = \"debug\"\n")
    env = {"CHAINMALL_NODE_BLOCK_INTERVAL_MS": "300", "CHAINMALL_LOG_LEVEL": "warning"}
    config = load_config(tmp_path, environ=env, flags={"node.block_interval_ms": "200"})
    assert config.node.block_interval_ms == 200
    assert config.sources["node.block_interval_ms"] == "flag --node-block-interval-ms"
    assert config.log.level == "warning"
    assert config.sources["log.level"] == "env CHAINMALL_LOG_LEVEL"
    assert config.node.empty_blocks is True
    assert config.sources["node.empty_blocks"] == f"file {tmp_path / CONFIG_FILE}"
    assert config.mempool.txs_max == 100_000 and config.sources["mempool.txs_max"] == "default"


@pytest.mark.parametrize(("text", "message"), [
    ("[node]\nblock_interval = 5\n", "unknown key 'node.block_interval'"),
    ("[node]\nblock_interval_ms = \"fast\"\n", "must be an integer"),
    ("[node]\nblock_interval_ms = 0\n", "below 1"),
    ("[node]\nempty_blocks = 1\n", "true or false"),
    ("[log]\nformat = \"xml\"\n", "one of text, json"),
    ("[rpc]\ntcp = \"localhost\"\n", "HOST:PORT"),
    ("[node\n", "not valid TOML"),
])
def test_bad_files_are_refused_with_the_key_named(tmp_path: Path, text: str,
                                                  message: str) -> None:
    (tmp_path / CONFIG_FILE).write_text(text)
    with pytest.raises(InvalidConfig, match=message):
        load_config(tmp_path, environ={})


def test_bad_variables_and_flags_name_where_they_came_from(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfig, match="CHAINMALL_NODE_EMPTY_BLOCKS"):
        load_config(tmp_path, environ={"CHAINMALL_NODE_EMPTY_BLOCKS": "maybe"})
    with pytest.raises(InvalidConfig, match="--mempool-txs-max"):
        load_config(tmp_path, environ={}, flags={"mempool.txs_max": "10000000"})
    with pytest.raises(InvalidConfig, match="does not exist"):
        load_config(tmp_path, tmp_path / "missing.toml", environ={})


def test_listen_addresses() -> None:
    assert parse_listen("127.0.0.1:8645") == ("127.0.0.1", 8645)
    assert parse_listen("[::1]:0") == ("::1", 0)
    assert parse_listen("") is None
    for bad in ("::1:80", "host", "h:70000", ":80", "[zz]:1"):
        with pytest.raises(InvalidConfig):
            parse_listen(bad)


def test_node_config_command_prints_values_and_sources(tmp_path: Path) -> None:
    runner = CliRunner(env={"CHAINMALL_HOME": str(tmp_path), "CHAINMALL_LOG_FORMAT": "json",
                            "CHAINMALL_RPC_TOKEN": "a-secret-token-of-some-length"})
    data = tmp_path / "data"
    data.mkdir()
    write_default_config(data)
    result = runner.invoke(cli, ["node", "config", "--data-dir", str(data),
                                 "--node-block-interval-ms", "500"])
    assert result.exit_code == 0, result.output
    assert "node.block_interval_ms = 500" in result.output
    assert "flag --node-block-interval-ms" in result.output
    assert "env CHAINMALL_LOG_FORMAT" in result.output
    assert "a-secret-token" not in result.output  # secrets are masked
    result = runner.invoke(cli, ["--json", "node", "config", "--data-dir", str(data)])
    shown = json.loads(result.output)
    assert shown["file"] == str(data / CONFIG_FILE)
    assert shown["settings"]["pruning.retain_heights"] == {
        "value": 10_000, "source": f"file {data / CONFIG_FILE}"}
    assert shown["settings"]["rpc.token"]["value"] == "<set>"
    result = runner.invoke(cli, ["node", "config", "--data-dir", str(data),
                                 "--log-level", "loud"])
    assert result.exit_code == 1
    assert result.output.startswith("error: --log-level: log.level must be one of")


def test_docs_list_every_setting() -> None:
    doc = (Path(__file__).resolve().parents[3] / "docs" / "node.md").read_text()
    for setting in SETTINGS:
        key = "rpc.limits.*" if setting.key.startswith("rpc.limits.") else setting.key
        assert f"| `{key}` |" in doc, setting.key


def test_the_node_s_block_writer_is_inline_thread_or_process(tmp_path: Path) -> None:
    assert load_config(tmp_path, environ={}).node.block_writer == "process"
    config = load_config(tmp_path, environ={"CHAINMALL_NODE_BLOCK_WRITER": "inline"})
    assert config.node.block_writer == "inline"
    assert config.sources["node.block_writer"] == "env CHAINMALL_NODE_BLOCK_WRITER"
    assert load_config(tmp_path, environ={}, flags={"node.block_writer": "thread"}
                       ).node.block_writer == "thread"
    with pytest.raises(InvalidConfig, match="must be one of inline, thread, process"):
        load_config(tmp_path, environ={}, flags={"node.block_writer": "fork"})


def test_the_block_writer_is_thread_or_process(tmp_path: Path) -> None:
    assert load_config(tmp_path, environ={}).cometbft.block_writer == "thread"
    config = load_config(tmp_path, environ={"CHAINMALL_COMETBFT_BLOCK_WRITER": "process"})
    assert config.cometbft.block_writer == "process"
    assert config.sources["cometbft.block_writer"] == "env CHAINMALL_COMETBFT_BLOCK_WRITER"
    with pytest.raises(InvalidConfig, match="must be one of thread, process"):
        load_config(tmp_path, environ={}, flags={"cometbft.block_writer": "fork"})
