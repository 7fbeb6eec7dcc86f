"""`LightClientAnchors` (core/node/page_cometbft.py) over headers signed in Python.

A stand-in for CometBFT's RPC serves signed headers made by
`tests/light_forge.py` as CometBFT's JSON; a stand-in read snapshot names the
node's tip and root. The anchor is the header h + 1 its light client verified
from the genesis set, with the snapshot's root as its app hash; on an idle
chain the header h when it commits the same root (height h - 1); otherwise
NotFound; a header that commits another root is a StorageError and one that
does not verify is a LightClientError, never an anchor. The real node is
`tests/cluster/test_page_cometbft.py`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import pytest
from chainmall.core import light
from chainmall.core.abci.proto.tendermint.types import types_pb2, validator_pb2
from chainmall.core.errors import LightClientError, NotFound, StorageError
from chainmall.core.keys import KeyPair
from chainmall.core.node.page_cometbft import CHECKED_BY_LIGHT_CLIENT, LightClientAnchors
from chainmall.core.proof_bundle import TrustRoot
from light_forge import sign_block, to_json, validators_of

CHAIN = "page-light-test"
KEYS = [KeyPair.from_seed(bytes([0x70 + i]) * 32) for i in range(4)]
SET = validators_of(KEYS)
T0 = 1_700_000_000
NOW_NS = (T0 + 100) * 1_000_000_000


def root(height: int) -> bytes:
    """The app's state root after `height` in these tests."""
    return bytes([height]) * 32


class FakeRpc:
    """CometBFT's `/status` height, `/commit` and `/validators` over `blocks`."""

    def __init__(self, blocks: dict[int, light.LightBlock]) -> None:
        self.blocks = blocks
        self.fetched: list[int] = []

    def height(self) -> int:
        return max(self.blocks)

    def commit(self, height: int) -> dict[str, Any]:
        self.fetched.append(height)
        return {"signed_header": to_json(self.blocks[height])["signed_header"]}

    def validators(self, height: int) -> list[dict[str, Any]]:
        return to_json(self.blocks[height])["validators"]


@dataclass
class Tip:
    height: int
    app_hash: bytes


class View:
    def __init__(self, height: int, app_hash: bytes) -> None:
        self.tip = Tip(height, app_hash)

    def last(self) -> Tip:
        return self.tip


def chain(top: int, app_hashes: dict[int, bytes] | None = None) -> dict[int, light.LightBlock]:
    """Blocks 1..top, header h committing root(h - 1) unless `app_hashes` says otherwise."""
    app_hashes = app_hashes or {}
    return {h: sign_block(CHAIN, h, T0 + h, KEYS, SET, app_hash=app_hashes.get(h, root(h - 1)))
            for h in range(1, top + 1)}


def anchors(rpc: FakeRpc) -> LightClientAnchors:
    ticks = itertools.count(0, 10)  # each look at the clock is 10 s later: no waiting
    return LightClientAnchors(rpc, TrustRoot(CHAIN, SET), wait_ms=1_000,  # type: ignore[arg-type]
                              clock=lambda: float(next(ticks)), wall_ns=lambda: NOW_NS)


def test_the_anchor_is_header_h_plus_1_verified_from_genesis() -> None:
    rpc = FakeRpc(chain(6))
    source = anchors(rpc)
    anchor = source.anchor(View(5, root(5)))  # type: ignore[arg-type]
    assert (anchor.height, anchor.root, anchor.block.height) == (5, root(5), 6)
    served = anchor.to_json()
    assert served["checked_by"] == CHECKED_BY_LIGHT_CLIENT and served["height"] == 5
    assert served["trusted"] == {"height": 1, "hash": rpc.blocks[1].hash().hex()}
    header = types_pb2.Header.FromString(bytes.fromhex(served["header"]))
    assert light.header_hash(header) == rpc.blocks[6].hash() and header.app_hash == root(5)
    commit = types_pb2.Commit.FromString(bytes.fromhex(served["commit"]))
    encoded = validator_pb2.ValidatorSet.FromString(bytes.fromhex(served["validators"]))
    validators = tuple(light.LightValidator(v.address, v.pub_key.ed25519, v.voting_power)
                       for v in encoded.validators)
    assert validators == SET and encoded.total_voting_power == 40
    assert encoded.proposer.address == header.proposer_address
    light.verify_commit(CHAIN, validators, light.LightBlock(header, commit, validators))

    # A later tip: verified from the last header, not from genesis again.
    rpc.blocks.update(chain(9))
    rpc.fetched.clear()
    assert source.anchor(View(8, root(8))).block.height == 9  # type: ignore[arg-type]
    assert rpc.fetched == [9]
    # A request that raced a newer one: verified from the trusted start.
    assert source.anchor(View(6, root(6))).block.height == 7  # type: ignore[arg-type]


def test_an_idle_chain_uses_header_h_when_it_commits_the_same_root() -> None:
    rpc = FakeRpc(chain(5, {5: root(5)}))  # block 5 changed nothing: root(4) == root(5) here
    anchor = anchors(rpc).anchor(View(5, root(5)))  # type: ignore[arg-type]
    assert (anchor.height, anchor.block.height, anchor.root) == (4, 5, root(5))

    with pytest.raises(NotFound, match="no header after height 5"):
        anchors(FakeRpc(chain(5))).anchor(View(5, root(5)))  # type: ignore[arg-type]


def test_a_header_of_another_state_is_never_an_anchor() -> None:
    with pytest.raises(StorageError, match="commits app hash"):
        anchors(FakeRpc(chain(6, {6: b"\x99" * 32}))).anchor(  # type: ignore[arg-type]
            View(5, root(5)))
    forged = chain(6)
    forged[6].commit.signatures[0].signature = bytes(64)
    with pytest.raises(LightClientError):
        anchors(FakeRpc(forged)).anchor(View(5, root(5)))  # type: ignore[arg-type]
    with pytest.raises(NotFound, match="no block"):
        anchors(FakeRpc(chain(1))).anchor(View(0, bytes(32)))  # type: ignore[arg-type]
