"""Localnets: N CometBFT validators (and full nodes) on 127.0.0.1, one directory.

`init_localnet` lays out (docs/cometbft.md section 6):

    DIR/net.json              the net: chain id, settings, and per node its ports and ids
    DIR/genesis.json          chainmall's genesis (every node's copy is the same file)
    DIR/keys/                 operator keys of the validators, the governance
                              authority and the faucet (unencrypted: development only)
    DIR/nodeI/                node I's chainmall data directory:
        genesis.json, ledger/,  chainmall's (`chainmall init` layout; the node's
        config.toml             JSON-RPC on its own port)
        cometbft/               its CometBFT home: config.toml, genesis.json (CometBFT's,
                                same validators), node_key.json, priv_validator_key.json

Node I's ports are BASE + 10 * I + (0 P2P, 1 CometBFT RPC, 2 ABCI, 3 chainmall RPC).
Every node lists every other as a persistent peer; PEX is off. Keys come from
a seed (`--seed`), so a localnet made twice with one seed is the same net.
The consensus settings (`LocalnetSettings`) are those measured for sub-second
finality among validators sharing one host (../shared/notes/cometbft.md).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..constants import (
    BLOCK_BYTES_MAX,
    LOCALNET_NODES_MAX,
    LOCALNET_PORT_STRIDE,
    U16_MAX,
)
from ..datadir import create_data_dir
from ..errors import LocalnetError
from ..genesis import (
    Genesis,
    GovernanceParams,
    MallGenesis,
    make_genesis,
    make_governance,
    write_genesis,
)
from ..keys import KeyPair
from ..keystore import KeyStore
from ..node.config import CONFIG_FILE, config_template
from .cometbft import configure_home, init_home, set_config_values

NET_FILE = "net.json"
NET_FORMAT_VERSION = 1
GENESIS_FILE = "genesis.json"
LEDGER_DIR = "ledger"
COMETBFT_DIR = "cometbft"
KEYS_DIR = "keys"
PORT_OFFSETS = {"p2p": 0, "rpc": 1, "abci": 2, "api": 3}
ED25519_PUB = "tendermint/PubKeyEd25519"
ED25519_PRIV = "tendermint/PrivKeyEd25519"
OPERATOR_BALANCE = 10**12
FAUCET_BALANCE = 10**15
VALIDATOR_POWER = 10
VALIDATOR_BOND = 10_000


@dataclass(frozen=True, slots=True)
class LocalnetSettings:
    """CometBFT settings of every node of a localnet (durations in milliseconds).

    The defaults are for validators sharing one host: a 10 ms flush throttle (100 ms
    took the 4-validator p50 from 137 ms to 817 ms), short propose and vote timeouts
    (a down proposer costs `timeout_propose` plus a round at each height it should
    propose: 250 ms measured better than 400 ms with one of 4 killed, and 1 s did
    not save enough failed rounds under load to pay for itself; CometBFT waits out
    the vote timeouts after +2/3 of any votes even when every live validator has
    voted, which every failed round, a down proposer's included, paid in full at 100
    ms), a 10 ms sleep of the gossip routines when they have nothing to send a peer
    (CometBFT's 100 ms made each vote and the proposal's parts wait up to that long
    per hop: the prevote and precommit steps took 75-100 ms against 20-65 ms at 10
    ms, bench/README.md), a 20 ms `timeout_commit` (it is added to every block; 100
    ms measured worse under load: bench/README.md, "Proposal cap"), blocks of at
    most 1 MiB (about 5,000 transfers: a block must travel and execute within the
    timeouts, or rounds fail one after another under a backlog), a mempool sized
    above the bursts a client sends without rechecking it after every block (a tx
    gone stale fails in its block without being recorded), batched JSON-RPC allowed,
    and an empty block after a second without txs: deadlines (escrow time-outs,
    dispute rounds) fall due in block time, so an idle net must still make blocks
    (the app hash does not change on an empty block, so this costs one block a
    second, not a stream of them).
    """

    timeout_propose_ms: int = 250
    timeout_propose_delta_ms: int = 100
    timeout_vote_ms: int = 30
    timeout_vote_delta_ms: int = 100
    timeout_commit_ms: int = 20
    flush_throttle_ms: int = 10
    peer_gossip_sleep_ms: int = 10
    empty_blocks_interval_ms: int = 1_000  # -1: blocks for txs only; 0: always; N: idle
    mempool_size: int = 50_000
    mempool_cache_size: int = 100_000
    mempool_recheck: bool = False
    mempool_broadcast: bool = True  # gossip txs to peers (off: only their node proposes them)
    tx_indexer: str = "kv"
    block_bytes_max: int = 1024 * 1024  # CometBFT's consensus block.max_bytes
    rpc_batch_max: int = 2_000
    rpc_body_bytes_max: int = 64 * 1024 * 1024
    p2p_rate_bytes: int = 64 * 1024 * 1024
    log_level: str = "info"

    def config_values(self) -> dict[str, dict[str, str | int | bool]]:
        """The config.toml values these settings make (ports and peers aside)."""
        ms = "{}ms".format
        return {
            "": {"log_level": self.log_level},
            "rpc": {"max_request_batch_size": self.rpc_batch_max,
                    "max_body_bytes": self.rpc_body_bytes_max,
                    "max_open_connections": 900},
            "p2p": {"pex": False, "allow_duplicate_ip": True, "addr_book_strict": False,
                    "flush_throttle_timeout": ms(self.flush_throttle_ms),
                    "send_rate": self.p2p_rate_bytes, "recv_rate": self.p2p_rate_bytes,
                    "handshake_timeout": "5s", "dial_timeout": "1s"},
            "mempool": {"size": self.mempool_size, "cache_size": self.mempool_cache_size,
                        "max_txs_bytes": self.mempool_size * 2048,
                        "recheck": self.mempool_recheck, "broadcast": self.mempool_broadcast},
            "consensus": {
                "timeout_propose": ms(self.timeout_propose_ms),
                "timeout_propose_delta": ms(self.timeout_propose_delta_ms),
                "timeout_prevote": ms(self.timeout_vote_ms),
                "timeout_prevote_delta": ms(self.timeout_vote_delta_ms),
                "timeout_precommit": ms(self.timeout_vote_ms),
                "timeout_precommit_delta": ms(self.timeout_vote_delta_ms),
                "timeout_commit": ms(self.timeout_commit_ms),
                "peer_gossip_sleep_duration": ms(self.peer_gossip_sleep_ms),
                "create_empty_blocks": self.empty_blocks_interval_ms >= 0,
                "create_empty_blocks_interval": ms(max(self.empty_blocks_interval_ms, 0)),
            },
            "tx_index": {"indexer": self.tx_indexer},
            "instrumentation": {"prometheus": False},
        }


@dataclass(frozen=True, slots=True)
class LocalnetNode:
    """One node of a localnet: its ports, CometBFT node id and consensus key."""

    index: int
    name: str
    validator: bool
    p2p_port: int
    rpc_port: int
    abci_port: int
    api_port: int
    node_id: str
    public_key: bytes  # its CometBFT consensus key (Ed25519)

    @property
    def rpc_url(self) -> str:
        """CometBFT's RPC of this node."""
        return f"http://127.0.0.1:{self.rpc_port}"

    @property
    def abci_address(self) -> str:
        return f"tcp://127.0.0.1:{self.abci_port}"

    @property
    def p2p_address(self) -> str:
        return f"{self.node_id}@127.0.0.1:{self.p2p_port}"


@dataclass(frozen=True, slots=True)
class Localnet:
    """A localnet directory as `net.json` describes it."""

    root: Path
    chain_id: str
    nodes: tuple[LocalnetNode, ...]
    settings: LocalnetSettings = field(default_factory=LocalnetSettings)

    def node_dir(self, index: int) -> Path:
        """Node `index`'s chainmall data directory."""
        return self.root / self.nodes[index].name

    def cometbft_home(self, index: int) -> Path:
        return self.node_dir(index) / COMETBFT_DIR

    @property
    def validators(self) -> tuple[LocalnetNode, ...]:
        return tuple(node for node in self.nodes if node.validator)

    def keys(self) -> KeyStore:
        """The localnet's operator, authority and faucet keys."""
        return KeyStore(self.root / KEYS_DIR)


def derive_seed(seed: bytes, role: str, index: int) -> bytes:
    """A 32-byte key seed for `role` number `index` of the localnet made from `seed`."""
    return hashlib.sha256(b"chainmall localnet v1\x00" + seed + role.encode() + b"\x00"
                          + index.to_bytes(4, "big")).digest()


def cometbft_address(public_key: bytes) -> bytes:
    """CometBFT's address of an Ed25519 key: SHA-256(key)[:20]."""
    return hashlib.sha256(public_key).digest()[:20]


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(temporary, path)


def write_cometbft_keys(home: Path, node_key: KeyPair, validator_key: KeyPair) -> str:
    """Write a node key and a validator key in CometBFT's JSON files; the node id."""
    config = home / "config"
    _write_json(config / "node_key.json", {"priv_key": {
        "type": ED25519_PRIV,
        "value": base64.b64encode(node_key.seed + node_key.public_key).decode()}})
    write_validator_key(home, validator_key)
    return cometbft_address(node_key.public_key).hex()


def write_validator_key(home: Path, key: KeyPair) -> None:
    """`priv_validator_key.json` holding `key` (what the node signs votes with)."""
    _write_json(home / "config" / "priv_validator_key.json", {
        "address": cometbft_address(key.public_key).hex().upper(),
        "pub_key": {"type": ED25519_PUB, "value": base64.b64encode(key.public_key).decode()},
        "priv_key": {"type": ED25519_PRIV,
                     "value": base64.b64encode(key.seed + key.public_key).decode()}})


def read_validator_key(home: Path) -> bytes:
    """The public key in a CometBFT home's `priv_validator_key.json`."""
    data = json.loads((home / "config" / "priv_validator_key.json").read_text())
    return base64.b64decode(data["pub_key"]["value"])


def _rfc3339(time_ms: int) -> str:
    import datetime

    when = datetime.datetime(1970, 1, 1) + datetime.timedelta(milliseconds=time_ms)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{time_ms % 1000:03d}Z"


def cometbft_genesis(template: dict[str, Any], genesis: Genesis,
                     block_bytes_max: int) -> dict[str, Any]:
    """CometBFT's genesis.json for chainmall's `genesis`: same chain id, time and validators
    (consensus parameters from `template`, the file `cometbft init` wrote, with blocks of
    at most `block_bytes_max` bytes; the evidence a block may carry is capped at that too,
    as CometBFT refuses a genesis whose evidence cap exceeds the block's)."""
    params = json.loads(json.dumps(template["consensus_params"]))
    params["block"]["max_bytes"] = str(block_bytes_max)
    evidence = params["evidence"]
    evidence["max_bytes"] = str(min(int(evidence["max_bytes"]), block_bytes_max))
    return {
        "genesis_time": _rfc3339(genesis.genesis_time_ms),
        "chain_id": genesis.chain_id,
        "initial_height": "1",
        "consensus_params": params,
        "validators": [{
            "address": cometbft_address(v.public_key).hex().upper(),
            "pub_key": {"type": ED25519_PUB, "value": base64.b64encode(v.public_key).decode()},
            "power": str(v.power), "name": f"validator{i}"}
            for i, v in enumerate(genesis.validators)],
        "app_hash": "",
    }


def init_localnet(root: Path, validators: int, *, full_nodes: int = 0,
                  base_port: int = 26600, chain_id: str = "localnet", seed: bytes | None = None,
                  settings: LocalnetSettings | None = None, genesis_time_ms: int,
                  balances: Iterable[tuple[bytes, int]] = (),
                  governance_params: GovernanceParams | None = None,
                  mall: MallGenesis | None = None, fee_min: int = 0,
                  binary: Path) -> Localnet:
    """Make a localnet in `root` (which must not exist or be empty); module docstring.
    `mall` is the genesis's mall section (None: the default, no certifiers or tax
    authorities)."""
    if not 1 <= validators <= LOCALNET_NODES_MAX or full_nodes < 0 \
            or validators + full_nodes > LOCALNET_NODES_MAX:
        raise LocalnetError(f"a localnet has 1 to {LOCALNET_NODES_MAX} nodes, validators "
                            "first")
    count = validators + full_nodes
    top = base_port + LOCALNET_PORT_STRIDE * (count - 1) + max(PORT_OFFSETS.values())
    if base_port < 1024 or top > U16_MAX:
        raise LocalnetError(f"ports {base_port}..{top} are outside 1024..65535")
    if root.exists() and any(root.iterdir()):
        raise LocalnetError(f"{root} is not empty")
    settings = settings or LocalnetSettings()
    if not 1024 <= settings.block_bytes_max <= BLOCK_BYTES_MAX:
        raise LocalnetError(f"block_bytes_max must be within 1024..{BLOCK_BYTES_MAX}")
    seed = os.urandom(32) if seed is None else seed
    root.mkdir(parents=True, exist_ok=True)
    keys = KeyStore(root / KEYS_DIR)
    operators = [KeyPair.from_seed(derive_seed(seed, "operator", i)) for i in range(validators)]
    authority = KeyPair.from_seed(derive_seed(seed, "authority", 0))
    faucet = KeyPair.from_seed(derive_seed(seed, "faucet", 0))
    for i, key in enumerate(operators):
        keys.import_seed(f"operator{i}", key.seed)
    keys.import_seed("authority", authority.seed)
    keys.import_seed("faucet", faucet.seed)

    nodes = []
    for index in range(count):
        name = f"node{index}"
        validator_key = KeyPair.from_seed(derive_seed(seed, "validator", index))
        node_key = KeyPair.from_seed(derive_seed(seed, "node", index))
        node_id = cometbft_address(node_key.public_key).hex()
        port = base_port + LOCALNET_PORT_STRIDE * index
        nodes.append(LocalnetNode(index, name, index < validators, port + PORT_OFFSETS["p2p"],
                                  port + PORT_OFFSETS["rpc"], port + PORT_OFFSETS["abci"],
                                  port + PORT_OFFSETS["api"], node_id, validator_key.public_key))
    genesis = make_genesis(
        chain_id,
        [*((k.address, OPERATOR_BALANCE) for k in (*operators, authority)),
         (faucet.address, FAUCET_BALANCE), *balances],
        [(node.public_key, VALIDATOR_POWER) for node in nodes if node.validator],
        genesis_time_ms=genesis_time_ms, fee_min=fee_min, mall=mall,
        governance=make_governance(
            [authority.address],
            [(node.public_key, operators[node.index].address, VALIDATOR_BOND)
             for node in nodes if node.validator],
            governance_params))
    write_genesis(root / GENESIS_FILE, genesis)
    net = Localnet(root, chain_id, tuple(nodes), settings)
    comet_genesis: dict[str, Any] | None = None
    for node in nodes:
        data_dir = net.node_dir(node.index)
        # chainmall's data directory first (genesis state at height 0, its node config with
        # the RPC on the node's port), then CometBFT's home inside it.
        store, _, _ = create_data_dir(data_dir, genesis, command="chainmall net init",
                                      extra_files={CONFIG_FILE: node_config(node)})
        store.close()
        home = data_dir / COMETBFT_DIR
        init_home(binary, home)
        write_cometbft_keys(home, KeyPair.from_seed(derive_seed(seed, "node", node.index)),
                            KeyPair.from_seed(derive_seed(seed, "validator", node.index)))
        if comet_genesis is None:
            template = json.loads((home / "config" / GENESIS_FILE).read_text())
            comet_genesis = cometbft_genesis(template, genesis, settings.block_bytes_max)
        _write_json(home / "config" / GENESIS_FILE, comet_genesis)
        configure_node(net, node.index)
    _write_json(root / NET_FILE, _net_to_json(net))
    return net


def node_config(node: LocalnetNode) -> str:
    """Node `node`'s chainmall config.toml: the defaults, with the JSON-RPC on its own
    loopback TCP port and no HTTP listener (a localnet gives each node four ports)."""
    return set_config_values(config_template(), {
        "rpc": {"tcp": f"127.0.0.1:{node.api_port}", "http": ""}})


def configure_node(net: Localnet, index: int, peers: Iterable[str] | None = None) -> None:
    """Write node `index`'s config.toml: its ports, its peers (default: every other
    node's P2P address) and the localnet settings."""
    node = net.nodes[index]
    values = net.settings.config_values()
    values[""].update({"proxy_app": node.abci_address, "moniker": node.name})
    values["rpc"]["laddr"] = f"tcp://127.0.0.1:{node.rpc_port}"
    listed = [other.p2p_address for other in net.nodes if other.index != index] \
        if peers is None else list(peers)
    values["p2p"].update({"laddr": f"tcp://127.0.0.1:{node.p2p_port}",
                          "persistent_peers": ",".join(listed)})
    configure_home(net.cometbft_home(index), values)


def _net_to_json(net: Localnet) -> dict[str, Any]:
    return {
        "version": NET_FORMAT_VERSION,
        "chain_id": net.chain_id,
        "settings": asdict(net.settings),
        "nodes": [{"name": n.name, "validator": n.validator, "p2p_port": n.p2p_port,
                   "rpc_port": n.rpc_port, "abci_port": n.abci_port, "api_port": n.api_port,
                   "node_id": n.node_id, "public_key": n.public_key.hex()} for n in net.nodes],
    }


def load_localnet(root: Path) -> Localnet:
    """The localnet in `root`; LocalnetError if there is none or net.json is malformed."""
    path = root / NET_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise LocalnetError(f"{root} holds no localnet (no {NET_FILE}): run "
                            "`chainmall net init` first") from None
    except (OSError, ValueError) as exc:
        raise LocalnetError(f"{path}: {exc}") from None
    try:
        if data["version"] != NET_FORMAT_VERSION:
            raise LocalnetError(f"{path}: format version {data['version']}, expected "
                                f"{NET_FORMAT_VERSION}")
        known = {f.name for f in fields(LocalnetSettings)}
        settings = LocalnetSettings(**{k: v for k, v in data["settings"].items() if k in known})
        nodes = tuple(LocalnetNode(i, n["name"], bool(n["validator"]), int(n["p2p_port"]),
                                   int(n["rpc_port"]), int(n["abci_port"]), int(n["api_port"]),
                                   str(n["node_id"]), bytes.fromhex(n["public_key"]))
                      for i, n in enumerate(data["nodes"]))
        return Localnet(root, str(data["chain_id"]), nodes, settings)
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, LocalnetError):
            raise
        raise LocalnetError(f"{path}: malformed ({exc})") from None


def describe(net: Localnet) -> list[str]:
    """One line per node: name, role, ports, key (for `net init` and `net status`)."""
    lines = []
    for node in net.nodes:
        role = "validator" if node.validator else "full node"
        lines.append(f"{node.name}: {role}, p2p {node.p2p_port}, cometbft rpc "
                     f"{node.rpc_port}, abci {node.abci_port}, rpc {node.api_port}, "
                     f"key {node.public_key.hex()[:16]}")
    return lines
