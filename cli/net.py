"""`chainmall net init|start|stop|status|run-node`: a CometBFT localnet on 127.0.0.1.

`init` lays out the net (core/abci/localnet.py); `start` runs every node (or
those named) as a background `run-node` process, its output in
`DIR/nodeI/node.log` and its pid in `DIR/nodeI/node.pid`, and waits until
each node's CometBFT answers; `stop` stops them (SIGTERM, SIGKILL after a
deadline); `status` shows each node's height, app hash and peers and whether
the nodes agree on the block hash; `run-node` runs one node in the
foreground: the application behind the ABCI server and CometBFT as its
supervised child (core/abci/supervisor.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click
from chainmall.core.abci.cometbft import check_cometbft
from chainmall.core.abci.cometbft_rpc import CometRpc
from chainmall.core.abci.localnet import (
    Localnet,
    LocalnetSettings,
    describe,
    init_localnet,
    load_localnet,
)
from chainmall.core.abci.supervisor import last_log_line
from chainmall.core.constants import LOCALNET_NODES_MAX
from chainmall.core.errors import ChainmallError, LocalnetError, NetworkError
from chainmall.core.node.cometbft_node import run_cometbft_node
from chainmall.core.node.config import load_config

from .context import Context, package_version

PID_FILE = "node.pid"
LOG_FILE = "node.log"
START_DEADLINE_S = 60.0
STOP_DEADLINE_S = 30.0
POLL_S = 0.05  # between checks of a condition with a deadline
# Nodes share the host's cores: OpenMP threads that finished a batch sleep instead of
# busy-waiting for the next one (the caller's environment may say otherwise).
NODE_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}


def default_net_dir(obj: Context) -> Path:
    return obj.home / "localnet"


def _dir_option(function: Any) -> Any:
    return click.option("--dir", "net_dir", type=click.Path(file_okay=False, path_type=Path),
                        default=None, help="Localnet directory [default: HOME/localnet].")(function)


def _nodes_option(function: Any) -> Any:
    return click.option("--nodes", "node_names", default="",
                        help="Comma-separated node names or indexes [default: all].")(function)


def _select(net: Localnet, names: str) -> list[int]:
    if not names:
        return list(range(len(net.nodes)))
    chosen = []
    by_name = {node.name: node.index for node in net.nodes}
    for item in names.split(","):
        item = item.strip()
        index = by_name.get(item, by_name.get(f"node{item}"))
        if index is None:
            raise LocalnetError(f"no node {item!r} in this localnet")
        chosen.append(index)
    return sorted(set(chosen))


@click.group()
def net() -> None:
    """A localnet of CometBFT validators on 127.0.0.1, for development."""


@net.command("init")
@_dir_option
@click.option("--validators", type=click.IntRange(1, LOCALNET_NODES_MAX), default=4,
              show_default=True, help="Number of validators.")
@click.option("--full-nodes", type=click.IntRange(0, LOCALNET_NODES_MAX), default=0,
              show_default=True, help="Number of non-validating nodes (after the validators).")
@click.option("--base-port", type=click.IntRange(1024, 65535), default=26600, show_default=True,
              help="Node I uses BASE + 10 I + (0 P2P, 1 CometBFT RPC, 2 ABCI, 3 RPC).")
@click.option("--chain-id", default="localnet", show_default=True)
@click.option("--seed", default=None, help="64 hex digits: the same seed makes the same keys.")
@click.option("--timeout-commit-ms", type=click.IntRange(0), default=None,
              help="CometBFT timeout_commit [default: 20].")
@click.option("--timeout-propose-ms", type=click.IntRange(1), default=None,
              help="CometBFT timeout_propose [default: 250].")
@click.option("--empty-blocks-interval-ms", type=click.IntRange(-1), default=None,
              help="-1: blocks only for txs; 0: always; N: an empty block after N ms idle "
                   "(so deadlines fall due on an idle net) [default: 1000].")
@click.option("--log-level", default=None, help="CometBFT log level [default: info].")
@click.pass_obj
def init_command(obj: Context, net_dir: Path | None, validators: int, full_nodes: int,
                 base_port: int, chain_id: str, seed: str | None,
                 timeout_commit_ms: int | None, timeout_propose_ms: int | None,
                 empty_blocks_interval_ms: int | None, log_level: str | None) -> None:
    """Create a localnet: keys, both genesis files, and each node's CometBFT config."""
    root = net_dir or default_net_dir(obj)
    binary, _ = check_cometbft()
    raw_seed = None
    if seed is not None:
        try:
            raw_seed = bytes.fromhex(seed)
        except ValueError:
            raw_seed = b""
        if len(raw_seed) != 32:
            raise click.BadParameter("expected 64 hex digits", param_hint="--seed")
    overrides = {name: value for name, value in (
        ("timeout_commit_ms", timeout_commit_ms), ("timeout_propose_ms", timeout_propose_ms),
        ("empty_blocks_interval_ms", empty_blocks_interval_ms), ("log_level", log_level))
        if value is not None}
    localnet = init_localnet(root, validators, full_nodes=full_nodes, base_port=base_port,
                             chain_id=chain_id, seed=raw_seed,
                             settings=LocalnetSettings(**overrides),
                             genesis_time_ms=time.time_ns() // 1_000_000, binary=binary)
    obj.emit("\n".join([f"localnet {chain_id} in {root}", *describe(localnet)]),
             {"dir": str(root), "chain_id": chain_id,
              "nodes": [{"name": n.name, "validator": n.validator, "rpc_port": n.rpc_port,
                         "p2p_port": n.p2p_port, "abci_port": n.abci_port,
                         "api_port": n.api_port, "public_key": n.public_key.hex()}
                        for n in localnet.nodes]})


def _pid_of(net: Localnet, index: int) -> int | None:
    """The pid of node `index`'s run-node process, None if it is not running."""
    path = net.node_dir(index) / PID_FILE
    try:
        pid = int(path.read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    if b"run-node" not in cmdline or str(net.node_dir(index)).encode() not in b" ".join(cmdline):
        return None  # a stale pid file (the pid went to another process)
    return pid


def _wait(condition: Any, deadline_s: float) -> bool:
    end = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(POLL_S)
    return True


def start_node(net: Localnet, index: int, restart: bool,
               env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start node `index` as a background run-node process (in a session of its own)."""
    node_dir = net.node_dir(index)
    command = [sys.executable, "-m", "chainmall.cli", "net", "run-node", "--dir", str(net.root),
               "--node", net.nodes[index].name, "--data-dir", str(node_dir)]
    if restart:
        command.append("--restart")
    with (node_dir / LOG_FILE).open("ab") as log:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True,
                                   env={**NODE_ENV, **os.environ, **(env or {})})
    (node_dir / PID_FILE).write_text(f"{process.pid}\n")
    return process


def _rpc_ready(net: Localnet, index: int) -> bool:
    try:
        CometRpc(net.nodes[index].rpc_url, timeout_s=2).call("health")
    except NetworkError:
        return False
    return True


@net.command("start")
@_dir_option
@_nodes_option
@click.option("--restart/--no-restart", default=True, show_default=True,
              help="Restart a node's application and CometBFT when either dies.")
@click.pass_obj
def start_command(obj: Context, net_dir: Path | None, node_names: str, restart: bool) -> None:
    """Start the localnet's nodes in the background and wait until they serve."""
    localnet = load_localnet(net_dir or default_net_dir(obj))
    check_cometbft()
    chosen = _select(localnet, node_names)
    started = []
    for index in chosen:
        if _pid_of(localnet, index) is not None:
            continue
        start_node(localnet, index, restart)
        started.append(index)
    for index in started:
        if not _wait(lambda i=index: _rpc_ready(localnet, i) or _pid_of(localnet, i) is None,
                     START_DEADLINE_S) or _pid_of(localnet, index) is None:
            line = last_log_line(localnet.node_dir(index) / LOG_FILE)
            raise LocalnetError(f"{localnet.nodes[index].name} did not start: {line}")
    names = [localnet.nodes[i].name for i in started]
    obj.emit(f"started {', '.join(names) or 'nothing (all running)'}",
             {"started": names})


def stop_node(net: Localnet, index: int, deadline_s: float = STOP_DEADLINE_S) -> bool:
    """Stop node `index` (SIGTERM; SIGKILL after the deadline); whether it was running."""
    pid = _pid_of(net, index)
    if pid is None:
        (net.node_dir(index) / PID_FILE).unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    if not _wait(lambda: _pid_of(net, index) is None or not _alive(pid), deadline_s):
        os.kill(pid, signal.SIGKILL)
        _wait(lambda: not _alive(pid), deadline_s)
    (net.node_dir(index) / PID_FILE).unlink(missing_ok=True)
    return True


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@net.command("stop")
@_dir_option
@_nodes_option
@click.pass_obj
def stop_command(obj: Context, net_dir: Path | None, node_names: str) -> None:
    """Stop the localnet's nodes (CometBFT first, then the application)."""
    localnet = load_localnet(net_dir or default_net_dir(obj))
    stopped = [localnet.nodes[i].name for i in _select(localnet, node_names)
               if stop_node(localnet, i)]
    obj.emit(f"stopped {', '.join(stopped) or 'nothing (none running)'}", {"stopped": stopped})


def node_status(net: Localnet, index: int) -> dict[str, Any]:
    """What `net status` shows of one node."""
    node = net.nodes[index]
    info: dict[str, Any] = {"name": node.name, "validator": node.validator,
                            "pid": _pid_of(net, index)}
    try:
        rpc = CometRpc(node.rpc_url, timeout_s=2)
        status = rpc.status()
        sync = status["sync_info"]
        info.update(height=int(sync["latest_block_height"]),
                    block_hash=sync["latest_block_hash"].lower(),
                    app_hash=sync["latest_app_hash"].lower(),
                    catching_up=bool(sync["catching_up"]),
                    peers=int(rpc.call("net_info")["n_peers"]),
                    voting_power=int(status["validator_info"]["voting_power"]))
    except (ChainmallError, KeyError, ValueError) as exc:
        info["error"] = str(exc).splitlines()[0]
    return info


def agreement(net: Localnet, infos: list[dict[str, Any]]) -> dict[str, Any]:
    """The highest height every answering node has, and whether they agree on its block."""
    heights = [info["height"] for info in infos if "height" in info]
    if not heights or min(heights) == 0:
        return {"height": 0, "agree": True}
    common = min(heights)
    hashes = set()
    for info in infos:
        if "height" in info:
            try:
                block = CometRpc(net.nodes[[n.name for n in net.nodes].index(info["name"])]
                                 .rpc_url, timeout_s=2).commit(common)
                hashes.add(block["signed_header"]["commit"]["block_id"]["hash"])
            except ChainmallError:
                continue
    return {"height": common, "agree": len(hashes) <= 1}


@net.command("status")
@_dir_option
@click.pass_obj
def status_command(obj: Context, net_dir: Path | None) -> None:
    """Each node's process, height, app hash and peers; whether the nodes agree."""
    localnet = load_localnet(net_dir or default_net_dir(obj))
    infos = [node_status(localnet, i) for i in range(len(localnet.nodes))]
    common = agreement(localnet, infos)
    lines = []
    for info in infos:
        state = "running" if info["pid"] else "stopped"
        if "error" in info:
            lines.append(f"{info['name']}: {state}, CometBFT not answering")
        else:
            lines.append(f"{info['name']}: {state}, height {info['height']}, app hash "
                         f"{info['app_hash'][:16]}, {info['peers']} peers, power "
                         f"{info['voting_power']}" + (", catching up" if info["catching_up"]
                                                       else ""))
    verdict = "agree" if common["agree"] else "DISAGREE"
    lines.append(f"all answering nodes {verdict} on the block at height {common['height']}")
    obj.emit("\n".join(lines), {"nodes": infos, **common})


@net.command("run-node")
@_dir_option
@click.option("--node", "node_name", required=True, help="The node to run (name or index).")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="(for `net start`: identifies the process) the node's directory.")
@click.option("--restart/--no-restart", default=False, show_default=True,
              help="Restart the application and CometBFT when either dies.")
@click.pass_obj
def run_node_command(obj: Context, net_dir: Path | None, node_name: str,
                     data_dir: Path | None, restart: bool) -> None:
    """Run one node in the foreground until SIGINT/SIGTERM (what `net start` runs): as
    `chainmall node start --engine cometbft --data-dir DIR/NODE`."""
    localnet = load_localnet(net_dir or default_net_dir(obj))
    [index] = _select(localnet, node_name)
    node_dir = localnet.node_dir(index)
    run_cometbft_node(node_dir, load_config(node_dir), version=package_version(),
                      restart=restart, command=f"chainmall net run-node {node_name}")
