"""Test chains for the product page: a state tree, a header over it, and its commit certificate.

Everything comes from chainmall's real code (`core/state/root`, `core/block.py`,
`core/genesis.py`, `core/keys.py`), so what the browser verifies in the
tests is what a node will serve. Deterministic: keys from fixed seeds,
Ed25519 signing is deterministic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import blake3
from chainmall.core.block import CommitCert, CommitSig, Header, commit_sign_bytes
from chainmall.core.genesis import VALIDATOR_SET_KEY, Validator, encode_validators
from chainmall.core.hashing import digest
from chainmall.core.keys import KeyPair
from chainmall.core.merkle import EMPTY_ROOT as EMPTY_TX_ROOT
from chainmall.core.state.root import MemoryNodeStore, StateTree, build_tree


def seed_of(name: str) -> bytes:
    """A fixed 32-byte Ed25519 seed for a test identity."""
    return blake3.blake3(b"chainmall web test key " + name.encode()).digest()


def key_of(name: str) -> KeyPair:
    """The test key pair called `name`."""
    return KeyPair.from_seed(seed_of(name))


@dataclass(frozen=True)
class Anchor:
    """A committed header: what every proof of a response is checked against."""

    header: Header
    commit: CommitCert
    validators_encoded: bytes

    def to_json(self, checked_by: str = "commit") -> dict[str, str]:
        """The `anchor` object of docs/page.md."""
        return {
            "height": str(self.header.height),
            "header": self.header.encode().hex(),
            "commit": self.commit.encode().hex(),
            "validators": self.validators_encoded.hex(),
            "checked_by": checked_by,
        }


def make_anchor(
    chain_id: str,
    height: int,
    state_root: bytes,
    validators: Sequence[tuple[KeyPair, int]],
    signers: Sequence[int],
    round_number: int = 0,
    timestamp_ms: int = 1_780_000_000_000,
) -> Anchor:
    """A header at `height` over `state_root`, certified by the validators at `signers`."""
    encoded = encode_validators(Validator(pair.public_key, power) for pair, power in validators)
    header = Header(
        chain_id=chain_id,
        height=height,
        prev_hash=blake3.blake3(b"previous block %d" % height).digest(),
        timestamp_ms=timestamp_ms,
        proposer=validators[0][0].public_key,
        tx_count=0,
        tx_root=EMPTY_TX_ROOT,
        state_root=state_root,
        validator_set_hash=digest(encoded, VALIDATOR_SET_KEY),
        round=round_number,
    )
    message = commit_sign_bytes(chain_id, height, round_number, header.hash())
    signatures = tuple(
        CommitSig(index, validators[index][0].sign(message)) for index in sorted(signers)
    )
    commit = CommitCert(height, round_number, header.hash(), signatures)
    return Anchor(header, commit, encoded)


class ProvenState:
    """A set of state entries, its root, and proofs of presence or absence for any key."""

    def __init__(self, entries: Mapping[bytes, bytes]) -> None:
        update = build_tree(dict(entries))
        self.root = update.root
        self._tree = StateTree(MemoryNodeStore(update.new_nodes), update.root)

    def prove(self, key: bytes) -> bytes:
        """The encoded proof for `key` (inclusion if present, else non-inclusion)."""
        return self._tree.prove(key).encode()


def filler_entries(count: int) -> dict[bytes, bytes]:
    """`count` account-shaped entries so proofs have a realistic depth."""
    entries = {}
    for index in range(count):
        address = blake3.blake3(b"filler account %d" % index).digest()[:20]
        entries[b"\x01" + address] = b"\x01" + (1000 + index).to_bytes(8, "big") + bytes(8)
    return entries
