"""chainmall's own `Application` behind the ABCI server, driven by a real CometBFT node.

One validator whose key is CometBFT's own, in both genesis files: InitChain
checks them against each other; signed transfers sent through CometBFT's RPC
are checked (a forged signature is refused with its code), committed and
executed; a batch envelope of two transfers is one CometBFT tx whose carried
txs are executed, indexed and reported one by one (one with a forged carried
tx is refused whole); an account read through `abci_query` comes with a state
proof that verifies against the app hash in CometBFT's header; and the empty
block that commits that hash leaves it alone, so blocks stop when txs do.
"""

from __future__ import annotations

import base64
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from abci_harness import CometNode, ServerThread, cometbft_binary, poll
from chainmall.core.abci import convert
from chainmall.core.abci.app import Application
from chainmall.core.abci.envelope import decode_results, encode_envelope
from chainmall.core.constants import TX_TYPE_TRANSFER
from chainmall.core.errors import BadSignature
from chainmall.core.genesis import make_genesis
from chainmall.core.keys import KeyPair
from chainmall.core.state.accounts import account_key, encode_transfer, unpack_account
from chainmall.core.state.root import decode_proof, verify_proof
from chainmall.core.store import Store
from chainmall.core.tx import decode_tx, sign_tx
from test_cometbft_node import committed_height, submit, wait_ready

pytestmark = pytest.mark.slow

CHAIN = "cometbft-app-test"
KEYS = [KeyPair.from_seed(bytes([i]) * 32) for i in range(1, 4)]
FEE = 1


def transfer(sender: KeyPair, nonce: int, amount: int) -> bytes:
    return sign_tx(sender, CHAIN, TX_TYPE_TRANSFER, nonce, FEE, 1_000,
                   encode_transfer(KEYS[2].address, amount)).encode()


def test_chainmall_application_under_cometbft(tmp_path: Path) -> None:
    binary = cometbft_binary()
    executor = ThreadPoolExecutor(1, thread_name_prefix="abci-app")
    with Store(tmp_path / "ledger") as store:
        # The app needs CometBFT's validator key in its genesis: make the node home
        # first (its proxy_app is fixed below, before CometBFT starts).
        socket_path = tmp_path / "abci.sock"
        node = CometNode(binary, tmp_path / "node", f"unix://{socket_path}", chain_id=CHAIN)
        genesis = make_genesis(CHAIN, [(k.address, 1_000) for k in KEYS],
                               [(node.validator_key, int(node.genesis["validators"][0]["power"]))],
                               fee_min=FEE)
        app = Application(store, genesis, version="cometbft-test")
        server = ServerThread(app, f"unix://{socket_path}", executor)
        try:
            node.start()
            wait_ready(node)
            txs = [transfer(KEYS[0], nonce, 10 + nonce) for nonce in range(3)]
            for tx in txs:
                assert submit(node, tx)["code"] == 0
            forged = bytearray(transfer(KEYS[1], 0, 5))
            forged[-1] ^= 1
            assert submit(node, bytes(forged))["code"] == BadSignature.code
            carried = [transfer(KEYS[1], 0, 5), transfer(KEYS[1], 1, 6)]
            envelope = encode_envelope(carried)
            assert submit(node, envelope)["code"] == 0
            refused = submit(node, encode_envelope([transfer(KEYS[0], 3, 1), bytes(forged)]))
            assert refused["code"] == BadSignature.code and "envelope tx 1" in refused["log"]

            heights = [poll(lambda tx=tx: committed_height(node, tx), "a transfer to commit")
                       for tx in [*txs, envelope]]
            results = node.rpc("block_results", height=heights[-1])["txs_results"]
            block_txs = node.rpc("block", height=heights[-1])["block"]["data"]["txs"]
            result = results[block_txs.index(base64.b64encode(envelope).decode())]
            ids = [decode_tx(tx).tx_id for tx in carried]
            assert decode_results(base64.b64decode(result["data"])) == [(i, 0) for i in ids]
            for tx_id in ids:  # each carried tx is in the app's own tx index
                found = node.rpc("abci_query", path='"/tx"', data="0x" + tx_id.hex())["response"]
                assert int.from_bytes(base64.b64decode(found["value"])[:8], "big") == heights[-1]
            # One more block commits the new app hash; then the app hash stands still.
            tip = poll(lambda: node.height() if node.height() > max(heights)
                       and app.info().last_block_height == node.height() else 0,
                       "the block that commits the app hash")
            header = node.rpc("block", height=tip)["block"]["header"]
            app_hash = app.info().last_block_app_hash
            assert bytes.fromhex(header["app_hash"]) == app_hash  # the empty block changed nothing

            answer = node.rpc("abci_query", path='"/account"', data="0x" + KEYS[2].address.hex(),
                              prove="true")["response"]
            assert answer["code"] == 0 and int(answer["height"]) == tip
            assert json.loads(answer["info"]) == {"root": app_hash.hex()}
            [op] = answer["proofOps"]["ops"]
            entry = convert.decode_query_entry(base64.b64decode(op["key"]),
                                               base64.b64decode(op["data"]))
            assert entry.key == account_key(KEYS[2].address)
            assert unpack_account(entry.value)[0] == 1_000 + 10 + 11 + 12 + 5 + 6
            assert verify_proof(app_hash, entry.key, entry.value, decode_proof(entry.proof))
            flipped = entry.value[:-1] + bytes([entry.value[-1] ^ 1])
            assert not verify_proof(app_hash, entry.key, flipped, decode_proof(entry.proof))
        except BaseException:
            print(f"--- cometbft log ---\n{node.log_tail(60)}")
            raise
        finally:
            node.stop()
            server.close()
            executor.shutdown()
