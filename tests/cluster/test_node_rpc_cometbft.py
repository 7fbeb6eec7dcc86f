"""The node's RPC in front of CometBFT (`chainmall node start --engine cometbft`).

A 4-validator localnet whose nodes run as `net start` runs them; clients use
chainmall's RPC client on each node's own port. Submit-and-wait returns once
the tx is final on the net (its block committed by the node's application),
with its place and receipt; a forged tx is refused up front with its code;
blocks, accounts (with a proof of the state root in the record header) and
tx status are served from the node's ledger. On node 1 the first txs it
forwards are lost on their way to CometBFT (a failpoint): submit-and-wait
still ends FINAL, because an unfinished tx is sent again. A burst above the
admission rate is refused up front (RateLimited), not dropped later. Txs
admitted together are forwarded as batch envelopes, each final on its own.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from chainmall.core.abci.cometbft_rpc import CometRpc
from chainmall.core.abci.envelope import decode_envelope, is_envelope
from chainmall.core.constants import TX_TYPE_TRANSFER
from chainmall.core.errors import BadSignature, ChainmallError, RateLimited
from chainmall.core.node.config import CONFIG_FILE
from chainmall.core.rpc.client import RpcClient
from chainmall.core.rpc.services import TxState
from chainmall.core.state.accounts import account_key, encode_transfer
from chainmall.core.state.root import decode_proof, verify_proof
from chainmall.core.tx import sign_tx
from cluster_harness import Cluster, dump_logs

pytestmark = pytest.mark.slow


def transfer(cluster: Cluster, sender: int, nonce: int, to: int = 0) -> bytes:
    return sign_tx(cluster.accounts[sender], cluster.chain_id, TX_TYPE_TRANSFER, nonce, 1,
                   10**9, encode_transfer(cluster.accounts[to].address, 5)).encode()


def test_rpc_in_front_of_cometbft(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path / "net", 4, seed=53, accounts=64)
    net = cluster.net
    # Node 2 admits 5 submits at once and 5 a second: a burst of 40 is mostly refused.
    config = net.node_dir(2) / CONFIG_FILE
    config.write_text(config.read_text().replace(
        "submit_burst = 10000", "submit_burst = 5").replace(
        "submit_rate_per_s = 5000", "submit_rate_per_s = 5"))
    try:
        cluster.start(0)
        cluster.start(1, env={"CHAINMALL_FAILPOINT": "node.forward.drop@3"})
        cluster.start(2)
        cluster.start(3)
        for index in range(4):
            cluster.wait_serving(index)
        asyncio.run(_exercise(cluster))
        lost = [int(line.split("failpoint: ")[1].split()[0]) for line in
                (net.node_dir(1) / "node.log").read_text().splitlines() if "failpoint: " in line]
        assert sum(lost) == 3
    except BaseException:
        dump_logs(cluster)
        raise
    finally:
        cluster.close()


async def _exercise(cluster: Cluster) -> None:
    net = cluster.net
    clients = [await RpcClient.connect(f"tcp://127.0.0.1:{node.api_port}")
               for node in net.nodes]
    try:
        status = await clients[0].status()
        assert status.chain_id == net.chain_id and status.validator == net.nodes[0].public_key

        # Final through node 0; the same tx again is the same final tx (idempotent).
        tx = transfer(cluster, 1, 0)
        final = await clients[0].submit_tx_wait(tx, 30)
        assert final.state is TxState.FINAL and final.code == 0 and final.height >= 1
        again = await clients[0].tx(final.tx_id)
        assert (again.state, again.height, again.index) == (TxState.FINAL, final.height,
                                                            final.index)
        block = await clients[0].block(final.height, txs=True)
        assert block.header.height == final.height

        # A forged signature is refused up front with its code.
        forged = bytearray(transfer(cluster, 2, 0))
        forged[-1] ^= 1
        with pytest.raises(ChainmallError) as refused:
            await clients[0].submit_tx(bytes(forged))
        assert refused.value.code == BadSignature.code

        # Node 1 loses its first forwards: the waits still end final, by resubmission.
        waits = [clients[1].submit_tx_wait(transfer(cluster, 3 + i, 0), 40) for i in range(3)]
        for outcome in await asyncio.gather(*waits):
            assert outcome.state is TxState.FINAL and outcome.code == 0

        # Txs admitted together travel as batch envelopes; each is final on its own.
        together = [transfer(cluster, 46 + i, 0) for i in range(18)]  # accounts no one uses
        outcomes = await asyncio.gather(*(clients[3].submit_tx_wait(tx, 40) for tx in together))
        assert all(o.state is TxState.FINAL and o.code == 0 for o in outcomes)
        rpc = CometRpc(net.nodes[3].rpc_url)
        carried = [tx for height in sorted({o.height for o in outcomes})
                   for tx in rpc.block_txs(height) if is_envelope(tx)]
        assert any(set(decode_envelope(e)) <= set(together) for e in carried)

        # Account with a proof against the state root of the record at that height.
        account = await clients[2].account(cluster.accounts[0].address, prove=True)
        assert account.exists and account.balance > 0
        assert verify_proof(account.state_root, account_key(cluster.accounts[0].address),
                            _account_value(account), decode_proof(account.proof))

        # A burst above node 2's admission rate: refused up front, the rest final.
        burst = [transfer(cluster, 6 + i, 0) for i in range(40)]
        results = await asyncio.gather(*(clients[2].submit_tx(tx) for tx in burst),
                                       return_exceptions=True)
        limited = [r for r in results if isinstance(r, ChainmallError)
                   and r.code == RateLimited.code]
        admitted = [r for r in results if isinstance(r, bytes)]
        assert limited and admitted and len(limited) + len(admitted) == len(burst)
        for tx_id in admitted:
            async def final(tx_id: bytes = tx_id) -> bool:
                return (await clients[2].tx(tx_id)).state is TxState.FINAL
            for _ in range(600):  # bounded: 60 s of polls
                if await final():
                    break
                await asyncio.sleep(0.1)  # back-off between polls
            else:
                raise AssertionError("an admitted tx of the burst never became final")
    finally:
        for client in clients:
            await client.close()


def _account_value(account) -> bytes:  # type: ignore[no-untyped-def]
    from chainmall.core.state.accounts import pack_account

    return pack_account(account.balance, account.nonce)
