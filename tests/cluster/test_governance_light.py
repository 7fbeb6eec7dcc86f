"""A tax authority joins as a validator; light clients (ours and CometBFT's) agree on proofs.

Four validators and one full node, the tax authority's. The authority bonds to
its node's consensus key and a governance authority named in genesis gives it
power: the update comes back from FinalizeBlock at height h, CometBFT's set at
h + 2 has five validators and the new node signs commits, and chainmall's
record header at h + 2 carries the new set's hash (at h + 1 still the
genesis set's). Then an account is proven at height q against the header at
q + 1 by `chainmall verify` (from genesis, across the change), and
core/light.py and CometBFT's own light client (tests/cluster/lightcheck, Go)
give the same verdict on the same headers: honest ones (adjacent and skipping
across the change) and forgeries (app hash, signature, a header signed by
another set, a commit short of 2/3, an expired trusted header).
"""

from __future__ import annotations

import base64
import json
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from chainmall.core import light
from chainmall.core.abci.cometbft_rpc import CometRpc
from chainmall.core.address import encode_address
from chainmall.core.block import decode_block
from chainmall.core.constants import TX_TYPE_VALIDATOR_BOND, TX_TYPE_VALIDATOR_SET_POWER
from chainmall.core.genesis import Validator, load_genesis
from chainmall.core.keys import KeyPair
from chainmall.core.state.accounts import unpack_account
from chainmall.core.tx import sign_tx
from chainmall.core.validators.governance import encode_key_amount
from chainmall.core.validators.schedule import validator_set_hash
from cluster_harness import (
    Cluster,
    TransferLoad,
    cometbft_light_verdicts,
    dump_logs,
    lightcheck_binary,
    poll,
)
from light_forge import sign_block, to_json, validators_of

pytestmark = pytest.mark.slow
TAX = KeyPair.from_seed(b"\x71" * 32)  # the tax authority's account


def submit(rpc: CometRpc, key: KeyPair, chain_id: str, tx_type: int, payload: bytes,
           nonce: int = 0) -> bytes:
    tx = sign_tx(key, chain_id, tx_type, nonce, 1, 10**9, payload).encode()
    answer = rpc.call("broadcast_tx_sync", tx="0x" + tx.hex())
    assert answer["code"] == 0, answer
    return tx


def rfc3339(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def test_tax_authority_joins_and_light_clients_agree(tmp_path: Path) -> None:
    checker = lightcheck_binary(tmp_path)
    cluster = Cluster(tmp_path / "net", 4, full_nodes=1, seed=23,
                      extra_balances=((TAX.address, 10**9),))
    net = cluster.net
    rpc = cluster.rpc(0)
    try:
        cluster.start_all()
        genesis = load_genesis(net.root / "genesis.json")
        tax_node = net.nodes[4]
        with TransferLoad(cluster, rate=10):  # keeps blocks coming for h + 1, h + 2, ...
            cluster.wait_height(2)
            authority = net.keys().load("authority")
            bond = submit(rpc, TAX, net.chain_id, TX_TYPE_VALIDATOR_BOND,
                          encode_key_amount(tax_node.public_key, 2_000))
            poll(lambda: rpc.tx_height(bond), "the bond to commit")
            grant = submit(rpc, authority, net.chain_id, TX_TYPE_VALIDATOR_SET_POWER,
                           encode_key_amount(tax_node.public_key, 10))
            h = poll(lambda: rpc.tx_height(grant), "the power change to commit")
            results = rpc.call("block_results", height=h)
            assert [(base64.b64decode(u["pub_key"]["Sum"]["value"]["ed25519"]
                                      if "Sum" in u["pub_key"] else u["pub_key"]["value"]),
                     int(u["power"])) for u in results["validator_updates"]] == \
                [(tax_node.public_key, 10)]
            cluster.wait_height(h + 3)
            assert len(rpc.validators(h + 1)) == 4 and len(rpc.validators(h + 2)) == 5
            address = light.sorted_validators([(tax_node.public_key, 10)])[0].address

            def signed_by_tax_node() -> int:
                for height in range(h + 2, rpc.height() + 1):
                    signatures = rpc.commit(height)["signed_header"]["commit"]["signatures"]
                    if any(s["validator_address"] == address.hex().upper()
                           and s["block_id_flag"] == light.FLAG_COMMIT for s in signatures):
                        return height
                return 0
            poll(signed_by_tax_node, "the tax authority's node to sign a commit")

            # chainmall's own record headers follow the set that signs each height.
            def record(height: int):
                answer = rpc.abci_query("/block", struct.pack(">Q", height))
                return decode_block(base64.b64decode(answer["value"])).header
            joined = validator_set_hash((*genesis.validators, Validator(tax_node.public_key, 10)))
            assert record(h + 1).validator_set_hash == genesis.validator_set_hash
            assert record(h + 2).validator_set_hash == joined
            assert record(h + 2).validator_set_hash != record(h + 1).validator_set_hash

            # An account proven by `chainmall verify`, from genesis across the change.
            account = cluster.accounts[0]
            bundle_path = tmp_path / "bundle.json"
            done = subprocess.run(
                [sys.executable, "-m", "chainmall.cli", "--json", "verify", "--node",
                 net.nodes[1].rpc_url, "--genesis", str(net.root / "genesis.json"),
                 "--account", encode_address(account.address), "--save", str(bundle_path),
                 "--wait-s", "30"],
                capture_output=True, text=True, timeout=120, check=False)
            assert done.returncode == 0, done.stderr
            verdict = json.loads(done.stdout)
            q = verdict["state_height"]
            assert verdict["header_height"] == q + 1 and verdict["validators"] == 5
            assert verdict["signed_power"] * 3 > verdict["total_power"] * 2
            [entry] = verdict["entries"]
            assert unpack_account(bytes.fromhex(entry["value"]))[0] > 0
            tampered = json.loads(bundle_path.read_text())
            value = bytearray(bytes.fromhex(tampered["entries"][0]["value"]))
            value[-1] ^= 1
            tampered["entries"][0]["value"] = value.hex()
            bundle_path.write_text(json.dumps(tampered))
            refused = subprocess.run(
                [sys.executable, "-m", "chainmall.cli", "verify", "--bundle", str(bundle_path),
                 "--genesis", str(net.root / "genesis.json")],
                capture_output=True, text=True, timeout=120, check=False)
            assert refused.returncode == 1 and refused.stderr.startswith("error: "), \
                refused.stderr
            assert "does not lead to the root" in refused.stderr

            # The same headers through both light clients.
            def fetch(height: int) -> dict:
                return {"signed_header": rpc.commit(height)["signed_header"],
                        "validators": rpc.validators(height)}
            first, before, after, top = fetch(1), fetch(h), fetch(h + 1), fetch(q + 1)
            honest = light.light_block_from_json(top["signed_header"], top["validators"])
            forged_app = json.loads(json.dumps(top))
            forged_app["signed_header"]["header"]["app_hash"] = "00" * 32
            flipped = json.loads(json.dumps(top))
            signature = next(s for s in flipped["signed_header"]["commit"]["signatures"]
                             if s["block_id_flag"] == light.FLAG_COMMIT)
            raw = bytearray(base64.b64decode(signature["signature"]))
            raw[7] ^= 1
            signature["signature"] = base64.b64encode(bytes(raw)).decode()
            strangers = [KeyPair.from_seed(bytes([0x90 + i]) * 32) for i in range(5)]
            impostor = to_json(sign_block(
                net.chain_id, q + 1, honest.header.time.seconds, strangers,
                validators_of(strangers), app_hash=honest.header.app_hash))
            short = json.loads(json.dumps(top))
            signed = [s for s in short["signed_header"]["commit"]["signatures"]
                      if s["block_id_flag"] == light.FLAG_COMMIT]
            for item in signed[3:]:  # at most 3 of 5 (30 of 50 power) keep their votes
                item.update(block_id_flag=light.FLAG_ABSENT, validator_address="",
                            timestamp="0001-01-01T00:00:00Z", signature=None)
            now = time.time()
            cases = {
                "skipping from genesis across the change": (first, top, now, True),
                "adjacent into the new set": (before, after, now, True),
                "forged app hash": (first, forged_app, now, False),
                "flipped signature": (first, flipped, now, False),
                "signed by another set": (first, impostor, now, False),
                "signed by another set, adjacent": (fetch(q), impostor, now, False),
                "commit short of 2/3": (first, short, now, False),
                "trusted header expired": (first, top, now + 8 * 86400, False),
            }
            go = cometbft_light_verdicts(checker, [
                {"chain_id": net.chain_id, "now": rfc3339(when),
                 "trusting_period_ms": light.TrustOptions().trusting_period_ms,
                 "clock_drift_ms": light.TrustOptions().clock_drift_ms,
                 "trusted": trusted, "untrusted": untrusted}
                for trusted, untrusted, when, _ in cases.values()])
            for (name, (trusted, untrusted, when, expected)), theirs in zip(
                    cases.items(), go, strict=True):
                try:
                    light.verify(light.light_block_from_json(trusted["signed_header"],
                                                             trusted["validators"]),
                                 light.light_block_from_json(untrusted["signed_header"],
                                                             untrusted["validators"]),
                                 int(when * 1e9))
                    ours, why = True, ""
                except light.LightClientError as exc:
                    ours, why = False, str(exc)
                assert (ours, theirs["ok"]) == (expected, expected), \
                    f"{name}: chainmall {ours} ({why}), CometBFT {theirs}"
    except BaseException:
        dump_logs(cluster)
        raise
    finally:
        cluster.close()
