"""core/light.py: CometBFT's hashes and sign bytes (its own vectors), commit and header
verification on headers signed here, state proofs against a header's app hash.

The vectors come from CometBFT v0.38.26 (Apache-2.0): `crypto/merkle/tree_test.go`
(TestHashFromByteSlices), `types/block_test.go` (TestHeaderHash) and
`types/vote_test.go` (TestVoteSignBytesTestVectors). The comparison with
CometBFT's own light client on real headers is tests/cluster/test_light_client.py.
"""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
from chainmall.core import light
from chainmall.core.abci.proto.tendermint.types import types_pb2
from chainmall.core.abci.types import ProvenEntry
from chainmall.core.errors import (
    InvalidProof,
    LightClientError,
    NotEnoughVotingPower,
    ValidatorSetNotTrusted,
)
from chainmall.core.keys import KeyPair
from chainmall.core.state.root import MemoryNodeStore, StateTree
from light_forge import sign_block, validators_of

CHAIN = "light-test"
KEYS = [KeyPair.from_seed(bytes([0x50 + i]) * 32) for i in range(6)]
SET = validators_of(KEYS[:4])
T0 = 1_700_000_000
NOW_NS = (T0 + 100) * 1_000_000_000


@pytest.mark.parametrize(("leaves", "expected"), [
    ([], "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    ([b"\x01\x02\x03"], "054edec1d0211f624fed0cbca9d4f9400b0e491c43742af2c5b0abebf0c990d8"),
    ([b""], "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    ([b"\x01\x02\x03", b"\x04\x05\x06"],
     "82e6cfce00453804379b53962939eaa7906b39904be0813fcadd31b100773c4b"),
    ([b"\x01\x02", b"\x03\x04", b"\x05\x06", b"\x07\x08", b"\x09\x0a"],
     "f326493eceab4f2d9ffbc78c59432a0a005d6ea98392045c74df5d14a113be18"),
])
def test_merkle_root_matches_cometbft(leaves: list[bytes], expected: str) -> None:
    assert light.merkle_root(leaves).hex() == expected


def test_header_hash_matches_cometbft() -> None:
    sha = lambda text: hashlib.sha256(text.encode()).digest()  # noqa: E731
    header = types_pb2.Header(chain_id="chainId", height=3)
    header.version.block, header.version.app = 1, 2
    header.time.seconds = 1570983284  # 2019-10-13T16:14:44Z
    header.last_block_id.hash = bytes(32)
    header.last_block_id.part_set_header.total = 6
    header.last_block_id.part_set_header.hash = bytes(32)
    for name in ("last_commit_hash", "data_hash", "validators_hash", "next_validators_hash",
                 "consensus_hash", "app_hash", "last_results_hash", "evidence_hash"):
        setattr(header, name, sha(name))
    header.proposer_address = sha("proposer_address")[:20]
    assert light.header_hash(header).hex().upper() == \
        "F740121F553B5418C3EFBD343C2DBFE9E007BB67B0D020A0741374BAB65242A4"
    header.validators_hash = b""
    assert light.header_hash(header) == b""


def test_vote_sign_bytes_match_cometbft() -> None:
    zero_time = -62135596800
    commit = types_pb2.Commit(height=1, round=1)
    signature = commit.signatures.add(block_id_flag=light.FLAG_NIL)
    signature.timestamp.seconds = zero_time
    timestamp = bytes([0x2a, 0xb, 0x8, 0x80, 0x92, 0xb8, 0xc3, 0x98, 0xfe, 0xff, 0xff, 0xff, 0x1])
    fixed = bytes([0x11, 1, 0, 0, 0, 0, 0, 0, 0, 0x19, 1, 0, 0, 0, 0, 0, 0, 0])
    assert light.vote_sign_bytes("", commit, 0) == bytes([0x21, 0x8, 0x2]) + fixed + timestamp
    chain = b"test_chain_id"
    assert light.vote_sign_bytes("test_chain_id", commit, 0) == \
        bytes([0x30, 0x8, 0x2]) + fixed + timestamp + bytes([0x32, len(chain)]) + chain


def test_json_forms_round_trip() -> None:
    block = sign_block(CHAIN, 5, T0, KEYS[:4], SET, last_block_hash=b"\x22" * 32)
    back = light.light_block_from_json(light.signed_header_to_json(block.header, block.commit),
                                       light.validators_to_json(block.validators))
    assert back == block
    timestamp = types_pb2.Header().time
    light.parse_time("2026-11-28T21:44:43.41234Z", timestamp)
    assert (timestamp.seconds, timestamp.nanos) == (1795902283, 412340000)
    assert light.format_time(timestamp) == "2026-11-28T21:44:43.41234Z"
    for bad in ("2026-11-28 21:44:43Z", "2026-13-01T00:00:00Z", 5, "2026-11-28T21:44:43"):
        with pytest.raises(LightClientError):
            light.parse_time(bad, timestamp)


def test_adjacent_and_skipping_verification() -> None:
    first = sign_block(CHAIN, 1, T0, KEYS[:4], SET)
    light.verify_first(first, CHAIN, SET)
    second = sign_block(CHAIN, 2, T0 + 1, KEYS[:4], SET, last_block_hash=first.hash())
    light.verify(first, second, NOW_NS)
    # Skipping to height 9: more than 1/3 of the trusted set signed (3 of 4, then 2 of 4).
    ninth = sign_block(CHAIN, 9, T0 + 8, KEYS[:4], SET)
    light.verify(first, ninth, NOW_NS)
    # Only 2 of 4 signed: not more than 2/3 of the header's own set.
    half = sign_block(CHAIN, 9, T0 + 8, KEYS[:4], SET, signers=KEYS[:2])
    with pytest.raises(NotEnoughVotingPower):
        light.verify(first, half, NOW_NS)


def test_a_new_set_needs_a_third_of_the_trusted_one() -> None:
    first = sign_block(CHAIN, 1, T0, KEYS[:4], SET)
    # The set moved to keys 3..5 (one of the trusted four left): 1 of 4 trusted signed.
    moved = validators_of(KEYS[3:6])
    far = sign_block(CHAIN, 9, T0 + 8, KEYS, moved)
    with pytest.raises(ValidatorSetNotTrusted):
        light.verify(first, far, NOW_NS)
    # Adjacent, a header must carry the trusted header's next validators.
    with pytest.raises(LightClientError, match="next validators"):
        light.verify(first, sign_block(CHAIN, 2, T0 + 1, KEYS, moved), NOW_NS)
    # Announced as next validators, the new set is trusted adjacently.
    announcing = sign_block(CHAIN, 2, T0 + 1, KEYS[:4], SET, next_validators=moved)
    light.verify(first, announcing, NOW_NS)
    light.verify(announcing, sign_block(CHAIN, 3, T0 + 2, KEYS, moved), NOW_NS)


@pytest.mark.parametrize("fault", ["app hash", "signature", "chain", "time", "future",
                                   "expired", "validators", "address"])
def test_forgeries_are_refused(fault: str) -> None:
    first = sign_block(CHAIN, 1, T0, KEYS[:4], SET)
    block = sign_block(CHAIN, 2, T0 + 1, KEYS[:4], SET)
    now_ns = NOW_NS
    if fault == "app hash":
        block.header.app_hash = b"\x00" * 32
    elif fault == "signature":
        raw = bytearray(block.commit.signatures[1].signature)
        raw[5] ^= 1
        block.commit.signatures[1].signature = bytes(raw)
    elif fault == "chain":
        block = sign_block("other-chain", 2, T0 + 1, KEYS[:4], SET)
    elif fault == "time":
        block = sign_block(CHAIN, 2, T0, KEYS[:4], SET)
    elif fault == "future":
        now_ns = (T0 - 100) * 1_000_000_000
        first = sign_block(CHAIN, 1, T0 - 200, KEYS[:4], SET)
    elif fault == "expired":
        now_ns = (T0 + 8 * 24 * 3600) * 1_000_000_000
    elif fault == "validators":
        block = dataclasses.replace(block, validators=validators_of(KEYS[:4], power=11))
    elif fault == "address":
        block.commit.signatures[0].validator_address = b"\x01" * 20
    with pytest.raises(LightClientError):
        light.verify(first, block, now_ns)


def test_state_entries_against_the_next_header() -> None:
    store = MemoryNodeStore()
    update = StateTree(store).apply({b"\x01" + b"a" * 20: b"value", b"\x01" + b"b" * 20: b"other"})
    store.put_nodes(update.new_nodes)
    root = update.root
    tree = StateTree(store, root)
    present = ProvenEntry(b"\x01" + b"a" * 20, b"value", tree.prove(b"\x01" + b"a" * 20).encode())
    absent = ProvenEntry(b"\x01" + b"c" * 20, None, tree.prove(b"\x01" + b"c" * 20).encode())
    block = sign_block(CHAIN, 8, T0, KEYS[:4], SET, app_hash=root)
    light.verify_entries(block, 7, root, [present, absent])
    with pytest.raises(LightClientError, match="header at 9, not 8"):
        light.verify_entries(block, 8, root, [present])
    with pytest.raises(LightClientError, match="app hash"):
        light.verify_entries(block, 7, b"\x00" * 32, [present])
    with pytest.raises(InvalidProof):
        light.verify_entries(block, 7, root, [dataclasses.replace(present, value=b"forged")])
    with pytest.raises(InvalidProof):
        light.verify_entries(block, 7, root, [dataclasses.replace(present, proof=b"")])
