"""A real node running the mall and the trust rules, and a driver that builds its txs.

`start_trust_node` writes a genesis (the trust test parameters with a short
epoch, keys named as in tests/core/trust), initialises a data directory with
`chainmall init`, imports every named key into HOME/keys and starts
`chainmall node start` on free ports. `NodeDriver` is the trust chain
harness (tests/core/trust/trust_chain.py) with its payload builders, but its
`block` submits the txs to the node in order and waits until each is final.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
for _folder in (HERE.parent / "core" / "mall", HERE.parent / "core" / "trust",
                HERE.parent / "proc"):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

from chainmall.core.genesis import make_genesis, make_mall, make_trust, write_genesis  # noqa: E402
from chainmall.core.keys import KeyPair  # noqa: E402
from chainmall.core.keystore import KeyStore  # noqa: E402
from chainmall.core.node.process import NodeProcess  # noqa: E402
from chainmall.core.rpc.client import BlockingClient  # noqa: E402
from chainmall.core.rpc.services import TxState  # noqa: E402
from chainmall.core.tx import Tx, sign_tx  # noqa: E402
from mall_chain import TEST_PARAMS, BlockResult, key  # noqa: E402
from nodeproc import cli  # noqa: E402
from trust_chain import TRUST_TEST_PARAMS, TrustChain  # noqa: E402

CHAIN_ID = "trust-cli"
NAMES = ["shop", "shop2", "alice", "bob", "carol", "attester", "reporter", "arb1", "arb2",
         "arb3", "arb4", "agenzia", "assay-office"]
EPOCH_MS = 6_000  # short, so a test sees an epoch close


def start_trust_node(home: Path, data: Path, *flags: str,
                     **trust_params: Any) -> tuple[NodeProcess, Any]:
    """A started node over a fresh chain; (process, genesis). `flags`: more `node start`
    options; `trust_params`: trust parameters other than the tests' own."""
    validator = KeyPair.from_seed(b"\x07" * 32)
    store = KeyStore(home / "keys")
    store.import_seed("validator", validator.seed)
    for name in NAMES:
        store.import_seed(name, key(name).seed)
    mall = make_mall([(key("assay-office").address, "assay-office")],
                     [("IT", key("agenzia").address, 2_200)], TEST_PARAMS)
    params = dataclasses.replace(TRUST_TEST_PARAMS, **{"epoch_ms": EPOCH_MS, **trust_params})
    genesis = make_genesis(CHAIN_ID, [(key(name).address, 10**9) for name in NAMES],
                           [(validator.public_key, 1)],
                           genesis_time_ms=time.time_ns() // 1_000_000 - 1_000, fee_min=1,
                           mall=mall, trust=make_trust([key("attester").address], params))
    write_genesis(home / "genesis.json", genesis)
    result = cli(home, "init", "--data-dir", str(data), "--genesis", str(home / "genesis.json"))
    assert result.returncode == 0, result.stderr
    node = NodeProcess(home, data, "--node-block-interval-ms", "20", *flags)
    node.ready()
    return node, genesis


class NodeDriver(TrustChain):
    """The trust harness's payload builders, executed by a real node."""

    def __init__(self, client: BlockingClient, genesis: Any) -> None:  # no store of its own
        self.client = client
        self.genesis = genesis
        self.nonces: dict[bytes, int] = {}
        self.time_ms = time.time_ns() // 1_000_000

    def close(self) -> None:
        return None

    def tx(self, signer: KeyPair, tx_type: int, payload: bytes, fee: int = 1) -> Tx:
        if signer.public_key not in self.nonces:
            self.nonces[signer.public_key] = self.client.account(signer.address).nonce
        nonce = self.nonces[signer.public_key]
        self.nonces[signer.public_key] = nonce + 1
        return sign_tx(signer, CHAIN_ID, tx_type, nonce, fee, 10**9, payload)

    def block(self, txs: list[Tx], advance_ms: int = 0) -> BlockResult:
        """Submit every tx, in order, and wait until each is final."""
        infos = [self.client.submit_tx_wait(tx.encode(), 30.0) for tx in txs]
        assert all(info.state is TxState.FINAL for info in infos), infos
        self.time_ms = time.time_ns() // 1_000_000
        height = max((info.height for info in infos), default=0)
        return BlockResult(height, self.time_ms, [info.code for info in infos],
                           [info.log for info in infos], [list(info.events) for info in infos],
                           [])
