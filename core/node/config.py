"""The node's configuration: `config.toml`, flags and `CHAINMALL_*` variables -> a frozen Config.

One table of settings (`SETTINGS`) is the single source of every key: its
type, default, bounds and the comment `init` writes above it in the data
dir's `config.toml`. Each key `section.name` can also be given as the flag
`--section-name` (underscores become dashes) and as the variable
`CHAINMALL_SECTION_NAME`. Precedence: flag, then variable, then the file,
then the default; `Config.sources` says where each value came from, which
`chainmall node config` prints.

The RPC's per-connection limits (`[rpc.limits]`) are the fields of the RPC
layer's `RpcLimits`, with its defaults, so the node never keeps a second copy
of those numbers.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..constants import (
    ADMISSION_VERIFY_THREADS_DEFAULT,
    ADMISSION_WINDOW_MS_DEFAULT,
    ADMISSION_WINDOW_MS_MAX,
    BLOCK_INTERVAL_MS_DEFAULT,
    BLOCK_INTERVAL_MS_MAX,
    BLOCK_TXS_MAX,
    COMETBFT_PENDING_TXS_MAX,
    COMETBFT_RESUBMIT_MS,
    COMETBFT_SUBMIT_BURST_MAX,
    COMETBFT_SUBMIT_RATE_PER_S,
    MEMPOOL_BYTES_DEFAULT,
    MEMPOOL_BYTES_MAX,
    MEMPOOL_SENDER_TXS_DEFAULT,
    MEMPOOL_TXS_DEFAULT,
    MEMPOOL_TXS_MAX,
    PRUNE_RETAIN_HEIGHTS_DEFAULT,
    PRUNE_RETAIN_HEIGHTS_MAX,
    SWITCH_INTERVAL_US_DEFAULT,
    SWITCH_INTERVAL_US_MAX,
    SWITCH_INTERVAL_US_MIN,
    TX_BYTES_MAX,
    U32_MAX,
    VERIFY_THREADS_MAX,
)
from ..errors import InvalidConfig
from ..rpc.config import RpcLimits  # the RPC layer owns these limits and their defaults

# node.read_processes (core/node/read_pool.py): reader processes; 0 = read threads only.
# 2: one per closed-loop reader of loadgen.py; niced, they lowered its p50 in 9 of 10
# interleaved pairs (bench/README.md "Reads in reader processes").
READ_PROCESSES_DEFAULT = 2
READ_PROCESSES_MAX = 64

CONFIG_FILE = "config.toml"
CONFIG_FILE_BYTES_MAX = 1 << 20
ENV_PREFIX = "CHAINMALL_"
RPC_TCP_LISTEN_DEFAULT = "127.0.0.1:8645"
RPC_HTTP_LISTEN_DEFAULT = "127.0.0.1:8646"  # also serves the product page
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")
BLOCK_WRITERS = ("thread", "process")
NODE_BLOCK_WRITERS = ("inline", *BLOCK_WRITERS)
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def parse_listen(text: str) -> tuple[str, int] | None:
    """`HOST:PORT` (IPv6 as `[::1]:PORT`) as (host, port); "" is None (listener off).

    InvalidConfig for anything else, or a port outside 0-65535 (0: any free port).
    """
    if text == "":
        return None
    host, separator, port = text.rpartition(":")
    if not separator or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise InvalidConfig(f"listen address {text!r}: expected HOST:PORT (port 0-65535)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise InvalidConfig(f"listen address {text!r}: bad IPv6 address") from None
    elif ":" in host:
        raise InvalidConfig(f"listen address {text!r}: write an IPv6 host as [ADDRESS]:PORT")
    return host, int(port)


def _check_listen(value: object) -> None:
    assert isinstance(value, str)
    parse_listen(value)


def _check_unix(value: object) -> None:
    assert isinstance(value, str)
    if "\x00" in value:
        raise InvalidConfig("rpc.unix: a socket path may not hold a NUL byte")


@dataclass(frozen=True, slots=True)
class Setting:
    """One configuration key: its type, default, bounds and the comment that documents it."""

    key: str
    kind: type
    default: Any
    doc: str
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()
    check: Callable[[object], None] | None = None
    secret: bool = False

    @property
    def env(self) -> str:
        """The environment variable that sets this key."""
        return ENV_PREFIX + self.key.upper().replace(".", "_")

    @property
    def flag(self) -> str:
        """The command-line flag that sets this key."""
        return "--" + self.key.replace(".", "-").replace("_", "-")

    def validate(self, value: object, where: str) -> Any:
        """`value` if it has this key's type and range; InvalidConfig naming `where` if not."""
        if self.kind is int and (type(value) is not int):
            raise InvalidConfig(f"{where}: {self.key} must be an integer, got {value!r}")
        if self.kind is bool and type(value) is not bool:
            raise InvalidConfig(f"{where}: {self.key} must be true or false, got {value!r}")
        if self.kind is str and type(value) is not str:
            raise InvalidConfig(f"{where}: {self.key} must be a string, got {value!r}")
        if self.minimum is not None and value < self.minimum:  # type: ignore[operator]
            raise InvalidConfig(f"{where}: {self.key} = {value} is below {self.minimum}")
        if self.maximum is not None and value > self.maximum:  # type: ignore[operator]
            raise InvalidConfig(f"{where}: {self.key} = {value} is above {self.maximum}")
        if self.choices and value not in self.choices:
            raise InvalidConfig(f"{where}: {self.key} must be one of "
                                f"{', '.join(self.choices)}, got {value!r}")
        if self.check is not None:
            try:
                self.check(value)
            except InvalidConfig as exc:
                raise InvalidConfig(f"{where}: {self.key}: {exc}") from None
        return value

    def parse_text(self, text: str, where: str) -> Any:
        """A flag's or variable's text as this key's type, validated."""
        value: object = text
        if self.kind is int:
            try:
                value = int(text.strip(), 10)
            except ValueError:
                raise InvalidConfig(f"{where}: {self.key} must be an integer, "
                                    f"got {text!r}") from None
        elif self.kind is bool:
            lowered = text.strip().lower()
            if lowered not in _TRUE + _FALSE:
                raise InvalidConfig(f"{where}: {self.key} must be true or false, got {text!r}")
            value = lowered in _TRUE
        return self.validate(value, where)


_BASE_SETTINGS = (
    Setting("node.validator_key", str, "validator",
            "Name of the validator's key in HOME/keys. Its public key must be the single "
            "validator of genesis.json (the in-process engine signs every block with it)."),
    Setting("node.block_interval_ms", int, BLOCK_INTERVAL_MS_DEFAULT,
            "A block is made this many milliseconds after the previous one while txs wait "
            "(sooner when a block is full).", 1, BLOCK_INTERVAL_MS_MAX),
    Setting("node.empty_blocks", bool, False,
            "Make a block every interval even when no tx waits (off: the chain only grows "
            "with txs)."),
    Setting("node.block_txs_max", int, BLOCK_TXS_MAX,
            "A block holds at most this many txs; it is made at once when the producer's "
            "cap (what fits in 1.5 intervals, by the last blocks' cost) is ready.",
            1, BLOCK_TXS_MAX),
    Setting("node.switch_interval_us", int, SWITCH_INTERVAL_US_DEFAULT,
            "How long one thread of the node process may hold Python's GIL while another "
            "waits for it, in microseconds (Python's own default: 5000). Shorter lets the "
            "block thread, which hands the GIL away at every ledger read, get it back "
            "sooner.", SWITCH_INTERVAL_US_MIN, SWITCH_INTERVAL_US_MAX),
    Setting("node.read_processes", int, READ_PROCESSES_DEFAULT,
            "Reader processes that answer reads of committed state (accounts, proofs, "
            "queries, blocks, the product page), each with its own GIL and a read-only "
            "handle on the ledger, started at the first read; 0 answers them in the node "
            "process's read threads.", 0, READ_PROCESSES_MAX),
    Setting("node.block_writer", str, "process",
            "Where a block's durable write runs: process (a writer process with its own "
            "GIL: the next block is reaped and executed while it runs), thread (a writer "
            "thread, likewise, sharing the GIL) or inline (on the block thread, before the "
            "next block). Either way a tx is told final only once its block is written.",
            choices=NODE_BLOCK_WRITERS),
    Setting("mempool.txs_max", int, MEMPOOL_TXS_DEFAULT,
            "Pending txs kept, all senders together; when full, a tx with a higher fee "
            "evicts the lowest-fee one.", 1, MEMPOOL_TXS_MAX),
    Setting("mempool.bytes_max", int, MEMPOOL_BYTES_DEFAULT,
            "Pending txs' wire bytes kept, all senders together.", TX_BYTES_MAX,
            MEMPOOL_BYTES_MAX),
    Setting("mempool.sender_txs_max", int, MEMPOOL_SENDER_TXS_DEFAULT,
            "Pending txs of one sender (and how far ahead of its account nonce a tx may "
            "be).", 1, MEMPOOL_TXS_MAX),
    Setting("mempool.admission_window_ms", int, ADMISSION_WINDOW_MS_DEFAULT,
            "Submits arriving within this many milliseconds are checked together (one "
            "batch of signature checks).", 0, ADMISSION_WINDOW_MS_MAX),
    Setting("mempool.admission_verify_threads", int, ADMISSION_VERIFY_THREADS_DEFAULT,
            "Threads one admission batch's signature checks may use, 0 for every core. "
            "A batch of 128 txs or fewer always runs on one (no thread team to wake); "
            "1 keeps a backlog's large batches on one too (less CPU, longer batches).",
            0, VERIFY_THREADS_MAX),
    Setting("rpc.tcp", str, RPC_TCP_LISTEN_DEFAULT,
            "JSON-RPC over TCP (newline-delimited frames): HOST:PORT, \"\" for off. A host "
            "other than loopback needs rpc.token.", check=_check_listen),
    Setting("rpc.unix", str, "",
            "JSON-RPC over a Unix socket (created mode 0600): a path, \"\" for off.",
            check=_check_unix),
    Setting("rpc.http", str, RPC_HTTP_LISTEN_DEFAULT,
            "JSON-RPC over HTTP POST and WebSocket (/ws), and the product page: HOST:PORT, "
            "\"\" for off. A host other than loopback needs rpc.token.",
            check=_check_listen),
    Setting("rpc.token", str, "",
            "Bearer token required from every client (needed for a non-loopback listener). "
            "Better given as CHAINMALL_RPC_TOKEN than written here.", secret=True),
    Setting("pruning.retain_heights", int, PRUNE_RETAIN_HEIGHTS_DEFAULT,
            "State-tree nodes only older heights use are deleted: the state at each of the "
            "last this-many heights stays provable. 0 keeps every height (an archive node).",
            0, PRUNE_RETAIN_HEIGHTS_MAX),
    Setting("cometbft.submit_rate_per_s", int, COMETBFT_SUBMIT_RATE_PER_S,
            "(engine cometbft) Submits this node admits per second, all clients together; "
            "more are refused at once (RateLimited), never dropped later.", 1, U32_MAX),
    Setting("cometbft.submit_burst", int, COMETBFT_SUBMIT_BURST_MAX,
            "(engine cometbft) Submits admitted at once above the rate (the token bucket's "
            "size).", 1, U32_MAX),
    Setting("cometbft.pending_txs_max", int, COMETBFT_PENDING_TXS_MAX,
            "(engine cometbft) Txs this node forwarded that are not final yet; more are "
            "refused (MempoolFull). Keep the nodes' sum below CometBFT's mempool size.",
            1, MEMPOOL_TXS_MAX),
    Setting("cometbft.resubmit_ms", int, COMETBFT_RESUBMIT_MS,
            "(engine cometbft) A forwarded tx not final this long after it was last sent is "
            "sent again (CometBFT may drop a tx it acknowledged).", 100, U32_MAX),
    Setting("cometbft.block_writer", str, "thread",
            "(engine cometbft) Where a block's durable write runs while the next height "
            "goes on: thread (a writer thread of the node process) or process (a writer "
            "process with its own GIL). Either way a tx is told final only once its block "
            "is written.", choices=BLOCK_WRITERS),
    Setting("log.level", str, "info", "Least severe log lines written.", choices=LOG_LEVELS),
    Setting("log.format", str, "text",
            "text: one human line per event; json: one JSON object per line.",
            choices=LOG_FORMATS),
)


def _rpc_limit_settings() -> tuple[Setting, ...]:
    """`[rpc.limits]`: one setting per field of the RPC layer's `RpcLimits`."""
    return tuple(
        Setting(f"rpc.limits.{item.name}", int, item.default,
                f"RPC limit {item.name} (see docs/rpc.md).", 1, U32_MAX)
        for item in dataclasses.fields(RpcLimits)
    )


SETTINGS: tuple[Setting, ...] = _BASE_SETTINGS + _rpc_limit_settings()
_BY_KEY = {setting.key: setting for setting in SETTINGS}
assert len(_BY_KEY) == len(SETTINGS)


# --- the frozen result -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NodeSettings:
    """`[node]`: the in-process engine."""

    validator_key: str
    block_interval_ms: int
    empty_blocks: bool
    block_txs_max: int
    switch_interval_us: int
    read_processes: int
    block_writer: str


@dataclass(frozen=True, slots=True)
class MempoolSettings:
    """`[mempool]`: admission and limits."""

    txs_max: int
    bytes_max: int
    sender_txs_max: int
    admission_window_ms: int
    admission_verify_threads: int


@dataclass(frozen=True, slots=True)
class RpcSettings:
    """`[rpc]`: listeners ("" is off), the bearer token, and `[rpc.limits]` by field name."""

    tcp: str
    unix: str
    http: str
    token: str
    limits: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class PruningSettings:
    """`[pruning]`."""

    retain_heights: int


@dataclass(frozen=True, slots=True)
class CometbftSettings:
    """`[cometbft]`: what a node with CometBFT as its engine admits and resends."""

    submit_rate_per_s: int
    submit_burst: int
    pending_txs_max: int
    resubmit_ms: int
    block_writer: str


@dataclass(frozen=True, slots=True)
class LogSettings:
    """`[log]`."""

    level: str
    format: str


@dataclass(frozen=True, slots=True)
class Config:
    """The effective node configuration and where each value came from.

    `sources[key]` is "default", "file PATH", "env NAME" or "flag --NAME";
    `file` is the config file read (None: none was).
    """

    node: NodeSettings
    mempool: MempoolSettings
    rpc: RpcSettings
    pruning: PruningSettings
    cometbft: CometbftSettings
    log: LogSettings
    values: Mapping[str, Any]
    sources: Mapping[str, str]
    file: Path | None

    def describe(self) -> list[tuple[str, str, str]]:
        """(key, value as TOML text, source) of every setting; secrets are masked."""
        rows = []
        for setting in SETTINGS:
            value = self.values[setting.key]
            text = ("<set>" if value else '""') if setting.secret else toml_value(value)
            rows.append((setting.key, text, self.sources[setting.key]))
        return rows


def _sections(values: Mapping[str, Any]) -> dict[str, Any]:
    def pick(cls: type, section: str) -> Any:
        return cls(**{item.name: values[f"{section}.{item.name}"]
                      for item in dataclasses.fields(cls) if item.name != "limits"})

    limits = {key.rsplit(".", 1)[1]: value for key, value in values.items()
              if key.startswith("rpc.limits.")}
    rpc = RpcSettings(values["rpc.tcp"], values["rpc.unix"], values["rpc.http"],
                      values["rpc.token"], MappingProxyType(limits))
    return {"node": pick(NodeSettings, "node"), "mempool": pick(MempoolSettings, "mempool"),
            "rpc": rpc, "pruning": pick(PruningSettings, "pruning"),
            "cometbft": pick(CometbftSettings, "cometbft"), "log": pick(LogSettings, "log")}


def _flatten(table: Mapping[str, Any], prefix: str, where: str) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for name, value in table.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict):
            flat.update(_flatten(value, key + ".", where))
        elif key not in _BY_KEY:
            raise InvalidConfig(f"{where}: unknown key {key!r}")
        else:
            flat[key] = value
    return flat


def read_config_file(path: Path) -> dict[str, Any]:
    """The settings a TOML file gives, validated (InvalidConfig for unknown keys, wrong
    types, values out of range, or a file that is not TOML)."""
    try:
        size = path.stat().st_size
        if size > CONFIG_FILE_BYTES_MAX:
            raise InvalidConfig(f"{path}: {size} bytes, limit {CONFIG_FILE_BYTES_MAX}")
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise InvalidConfig(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise InvalidConfig(f"{path}: not UTF-8 text") from None
    flat = _flatten(table, "", str(path))
    return {key: _BY_KEY[key].validate(value, str(path)) for key, value in flat.items()}


def load_config(data_dir: Path | None = None, config_file: Path | None = None,
                flags: Mapping[str, str | None] | None = None,
                environ: Mapping[str, str] | None = None) -> Config:
    """The effective configuration.

    The file is `config_file` if given (it must exist), else `DATA/config.toml`
    when present. `flags` maps setting keys to flag text (None: not given);
    `environ` defaults to `os.environ`.
    """
    values = {setting.key: setting.default for setting in SETTINGS}
    sources = dict.fromkeys(values, "default")
    path: Path | None = None
    if config_file is not None:
        if not config_file.is_file():
            raise InvalidConfig(f"config file {config_file} does not exist")
        path = config_file
    elif data_dir is not None and (data_dir / CONFIG_FILE).is_file():
        path = data_dir / CONFIG_FILE
    if path is not None:
        for key, value in read_config_file(path).items():
            values[key], sources[key] = value, f"file {path}"
    environ = os.environ if environ is None else environ
    for setting in SETTINGS:
        text = environ.get(setting.env)
        if text is not None:
            values[setting.key] = setting.parse_text(text, setting.env)
            sources[setting.key] = f"env {setting.env}"
    for key, text in (flags or {}).items():
        if text is None:
            continue
        setting = _BY_KEY.get(key)
        if setting is None:
            raise InvalidConfig(f"unknown setting {key!r}")
        values[key] = setting.parse_text(text, setting.flag)
        sources[key] = f"flag {setting.flag}"
    return Config(**_sections(values), values=MappingProxyType(values),
                  sources=MappingProxyType(sources), file=path)


# --- config.toml -------------------------------------------------------------------


def toml_value(value: object) -> str:
    """A setting's value as TOML text."""
    if type(value) is bool:
        return "true" if value else "false"
    if type(value) is int:
        return str(value)
    assert isinstance(value, str)
    return json.dumps(value)  # a JSON string of printable text is a TOML basic string


_HEADER = """\
# chainmall node configuration.
#
# Every key can also be given as a flag of `chainmall node start` (`--section-key`,
# e.g. --node-block-interval-ms 500) or as an environment variable
# (CHAINMALL_SECTION_KEY, e.g. CHAINMALL_NODE_BLOCK_INTERVAL_MS=500). A flag wins over a
# variable, a variable over this file, and this file over the built-in default.
# `chainmall node config` prints the effective value of every key and where it came from."""


def _comment(text: str, width: int = 88) -> list[str]:
    lines, line = [], "#"
    for word in text.split():
        if len(line) + 1 + len(word) > width:
            lines.append(line)
            line = "#"
        line += " " + word
    lines.append(line)
    return lines


def config_template() -> str:
    """The commented `config.toml` with every key at its default."""
    out = [_HEADER]
    section = None
    for setting in SETTINGS:
        table, name = setting.key.rsplit(".", 1)
        if table != section:
            out.append(f"\n[{table}]")
            section = table
        out.extend(_comment(setting.doc))
        out.append(f"{name} = {toml_value(setting.default)}")
    return "\n".join(out) + "\n"


def write_default_config(data_dir: Path) -> Path:
    """Write the commented default `config.toml` into `data_dir` (atomically: a temporary
    file renamed into place); FileExistsError if there is one already."""
    path = data_dir / CONFIG_FILE
    if path.exists():
        raise FileExistsError(f"{path} already exists")
    temp = data_dir / f".{CONFIG_FILE}.tmp"
    with temp.open("w", encoding="utf-8") as out:
        out.write(config_template())
        out.flush()
        os.fsync(out.fileno())
    os.replace(temp, path)
    return path
