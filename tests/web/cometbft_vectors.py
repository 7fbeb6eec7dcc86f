"""Vectors for the page's check of a CometBFT anchor (docs/page.md section 3.6), written from
the light client's Python (`core/light.py`: header hash, validator set hash, vote sign bytes
and `verify_commit`, built on CometBFT's generated protobuf classes).

    python tests/web/cometbft_vectors.py          # rewrites tests/web/vectors/cometbft_vectors.json

Needs `chainmall.core.light` (the cluster work); tests/web/test_web_verifier.py checks the
file is fresh where it is installed. Every case is deterministic: keys from labels, Ed25519's
deterministic signatures. The valid trace case re-anchors the ring's history of
trace_vectors.json on a CometBFT header whose app hash is that history's state root.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

from chainmall.core import light
from chainmall.core.abci.proto.tendermint.crypto import keys_pb2
from chainmall.core.abci.proto.tendermint.types import types_pb2, validator_pb2
from chainmall.core.block import decode_header
from chainmall.core.errors import ChainmallError
from chainmall.core.keys import KeyPair

HERE = Path(__file__).resolve().parent
OUT = HERE / "vectors" / "cometbft_vectors.json"
TRACE = HERE / "vectors" / "trace_vectors.json"
CHAIN = "page-cometbft"
POWERS = (40, 30, 20, 10)
FLAG_ABSENT, FLAG_COMMIT, FLAG_NIL = light.FLAG_ABSENT, light.FLAG_COMMIT, light.FLAG_NIL


def _key(label: str) -> KeyPair:
    return KeyPair.from_seed(hashlib.sha256(b"page cometbft vectors: " + label.encode()).digest())


KEYS = {light.sorted_validators([(_key(str(i)).public_key, p)])[0].address: _key(str(i))
        for i, p in enumerate(POWERS)}
VALIDATORS = light.sorted_validators(
    [(_key(str(i)).public_key, p) for i, p in enumerate(POWERS)])


def _header(height: int, app_hash: bytes, validators=VALIDATORS) -> types_pb2.Header:
    header = types_pb2.Header(chain_id=CHAIN, height=height, app_hash=app_hash)
    header.version.block = light.BLOCK_PROTOCOL
    header.version.app = 1
    header.time.seconds = 1_775_030_400 + height
    header.time.nanos = 123_456_789
    header.last_block_id.hash = hashlib.sha256(b"block %d" % (height - 1)).digest()
    header.last_block_id.part_set_header.total = 1
    header.last_block_id.part_set_header.hash = hashlib.sha256(b"parts").digest()
    for name in ("last_commit_hash", "data_hash", "consensus_hash", "last_results_hash",
                 "evidence_hash"):
        setattr(header, name, hashlib.sha256(name.encode()).digest())
    header.validators_hash = light.validator_set_hash(validators)
    header.next_validators_hash = header.validators_hash
    header.proposer_address = validators[0].address
    return header


def _commit(header: types_pb2.Header, flags: tuple[int, ...], round_number: int = 0,
            validators=VALIDATORS) -> types_pb2.Commit:
    commit = types_pb2.Commit(height=header.height, round=round_number)
    commit.block_id.hash = light.header_hash(header)
    commit.block_id.part_set_header.total = 1
    commit.block_id.part_set_header.hash = hashlib.sha256(b"parts %d" % header.height).digest()
    for index, flag in enumerate(flags):
        signature = commit.signatures.add(block_id_flag=flag)
        if flag == FLAG_ABSENT:
            signature.timestamp.seconds = -62135596800
            continue
        signature.validator_address = validators[index].address
        signature.timestamp.seconds = header.time.seconds + 1
        signature.timestamp.nanos = 1_000 * index
    for index, flag in enumerate(flags):
        if flag != FLAG_ABSENT:
            key = KEYS[validators[index].address]
            commit.signatures[index].signature = key.sign(
                light.vote_sign_bytes(CHAIN, commit, index))
    return commit


def _validator_set(validators=VALIDATORS) -> bytes:
    encoded = validator_pb2.ValidatorSet()
    for validator in validators:
        encoded.validators.add(address=validator.address,
                               pub_key=keys_pb2.PublicKey(ed25519=validator.public_key),
                               voting_power=validator.voting_power, proposer_priority=-5)
    encoded.proposer.CopyFrom(encoded.validators[0])
    encoded.total_voting_power = sum(v.voting_power for v in validators)
    return encoded.SerializeToString()


def _anchor(height: int, header: types_pb2.Header, commit: types_pb2.Commit,
            validators: bytes) -> dict[str, Any]:
    return {"checked_by": "light-client", "height": height,
            "header": header.SerializeToString().hex(), "commit": commit.SerializeToString().hex(),
            "validators": validators.hex(),
            "trusted": {"height": 1, "hash": hashlib.sha256(b"trusted").hexdigest()}}


def _light_verdict(header: types_pb2.Header, commit: types_pb2.Commit) -> bool:
    try:
        block = light.LightBlock(header, commit, VALIDATORS)
        light.check_signed_header(block, CHAIN)
        light.verify_commit(CHAIN, VALIDATORS, block)
    except ChainmallError:
        return False
    return True


def anchor_cases(root: bytes, height: int) -> list[dict[str, Any]]:
    """(name, anchor, what the page must say): one valid anchor and its alterations."""
    header = _header(height + 1, root)
    good = _commit(header, (FLAG_COMMIT, FLAG_COMMIT, FLAG_ABSENT, FLAG_COMMIT))
    validators = _validator_set()
    cases = []

    def case(name: str, anchor: dict[str, Any], code: str | None, light_ok: bool | None,
             pinned: str | None = None, signed: types_pb2.Header = header) -> None:
        cases.append({"name": name, "anchor": anchor, "pinned": pinned, "code": code,
                      "light_client_accepts": light_ok,
                      "validator_set_hash": signed.validators_hash.hex(),
                      "header_hash": light.header_hash(signed).hex(),
                      "state_root": signed.app_hash.hex()})

    case("three of four sign (90 of 100 power)", _anchor(height, header, good, validators), None,
         _light_verdict(header, good))
    case("pinned to its own set", _anchor(height, header, good, validators), None, True,
         pinned=header.validators_hash.hex())
    case("pinned to another set", _anchor(height, header, good, validators), "pinned", True,
         pinned="00" * 32)
    round_two = _commit(header, (FLAG_COMMIT, FLAG_NIL, FLAG_COMMIT, FLAG_COMMIT), 2)
    case("round 2, a nil vote, 70 of 100 signed", _anchor(height, header, round_two, validators),
         None, _light_verdict(header, round_two))
    short = _commit(header, (FLAG_ABSENT, FLAG_COMMIT, FLAG_COMMIT, FLAG_COMMIT))
    case("60 of 100 power is not more than 2/3", _anchor(height, header, short, validators),
         "insufficient_power", _light_verdict(header, short))
    bad_sig = copy.deepcopy(good)
    raw = bytearray(bad_sig.signatures[1].signature)
    raw[5] ^= 1
    bad_sig.signatures[1].signature = bytes(raw)
    case("one signature altered", _anchor(height, header, bad_sig, validators), "bad_signature",
         _light_verdict(header, bad_sig))
    other_root = copy.deepcopy(header)
    other_root.app_hash = bytes(32)
    case("the header's app hash altered after signing", _anchor(height, other_root, good,
                                                                validators),
         "other_block", _light_verdict(other_root, good), signed=other_root)
    case("the state height is not the header's minus one", _anchor(height + 1, header, good,
                                                                   validators),
         "height", None)
    others = light.sorted_validators([(_key(f"other {i}").public_key, p)
                                      for i, p in enumerate(POWERS)])
    case("a validator set the header does not name", _anchor(height, header, good,
                                                             _validator_set(others)),
         "validator_set_mismatch", None)
    moved = copy.deepcopy(good)
    moved.signatures[0].validator_address = VALIDATORS[1].address
    case("a signature under another validator's address", _anchor(height, header, moved,
                                                                  validators),
         "unknown_validator", None)
    broken = _anchor(height, header, good, validators)
    broken["header"] = broken["header"][:-4]
    case("a header cut short", broken, "malformed", None)
    return cases


def main() -> None:
    trace = json.loads(TRACE.read_text())
    ring = trace["cases"][0]["answer"]
    chainmall_header = decode_header(bytes.fromhex(ring["anchor"]["header"]))
    height, root = chainmall_header.height, chainmall_header.state_root
    anchors = anchor_cases(root, height)
    good = anchors[0]["anchor"]
    answer = {**ring, "anchor": good}
    vectors = {
        "source": "tests/web/cometbft_vectors.py from core/light.py (CometBFT's header hash, "
                  "validator set hash and vote sign bytes over its generated protobuf classes) "
                  "and the ring's history of trace_vectors.json",
        "chain_id": CHAIN,
        "merkle": [{"leaves": [hashlib.sha256(bytes([n])).digest()[:n % 7].hex()
                               for n in range(count)],
                    "root": light.merkle_root([hashlib.sha256(bytes([n])).digest()[:n % 7]
                                               for n in range(count)]).hex()}
                   for count in (0, 1, 2, 3, 4, 5, 7, 8, 9, 16)],
        "anchors": anchors,
        "trace": {"answer": answer, "steps": 11},
    }
    OUT.write_text(json.dumps(vectors, indent=1, sort_keys=True) + "\n")
    print(f"wrote {OUT} ({len(anchors)} anchors)")


if __name__ == "__main__":
    main()
