"""Test helper: signed headers made in Python (honest ones and forgeries) for light clients.

`sign_block` builds a CometBFT header and the commit of a given validator set
over it, signing each precommit's canonical bytes (`core/light.vote_sign_bytes`)
with the validators' keys; the tests feed the result, as CometBFT's JSON, to
both chainmall's light client and CometBFT's own (tests/cluster/lightcheck).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from chainmall.core import light
from chainmall.core.abci.proto.tendermint.types import types_pb2
from chainmall.core.keys import KeyPair


def validators_of(keys: Sequence[KeyPair], power: int = 10) -> tuple[light.LightValidator, ...]:
    """The set of `keys` at one power, in CometBFT's order."""
    return light.sorted_validators((key.public_key, power) for key in keys)


def sign_block(chain_id: str, height: int, time_s: int, keys: Sequence[KeyPair],
               validators: Sequence[light.LightValidator],
               next_validators: Sequence[light.LightValidator] | None = None,
               app_hash: bytes = b"\x11" * 32, signers: Sequence[KeyPair] | None = None,
               last_block_hash: bytes = b"") -> light.LightBlock:
    """A header at `height` for `validators` and a commit signed by `signers` (default:
    every key of the set); validators outside `signers` are absent."""
    by_key = {key.public_key: key for key in keys}
    signing = {k.public_key for k in (keys if signers is None else signers)}
    header = types_pb2.Header(chain_id=chain_id, height=height)
    header.version.block = light.BLOCK_PROTOCOL
    header.time.seconds = time_s
    if last_block_hash:
        header.last_block_id.hash = last_block_hash
        header.last_block_id.part_set_header.total = 1
        header.last_block_id.part_set_header.hash = hashlib.sha256(last_block_hash).digest()
    header.validators_hash = light.validator_set_hash(validators)
    header.next_validators_hash = light.validator_set_hash(next_validators or validators)
    for name in ("last_commit_hash", "data_hash", "consensus_hash", "last_results_hash",
                 "evidence_hash"):
        setattr(header, name, hashlib.sha256(name.encode()).digest())
    header.app_hash = app_hash
    header.proposer_address = validators[0].address
    commit = types_pb2.Commit(height=height, round=0)
    commit.block_id.hash = light.header_hash(header)
    commit.block_id.part_set_header.total = 1
    commit.block_id.part_set_header.hash = hashlib.sha256(commit.block_id.hash).digest()
    for validator in validators:
        signature = commit.signatures.add()
        if validator.public_key not in signing:
            signature.block_id_flag = light.FLAG_ABSENT
            signature.timestamp.seconds = -62135596800  # Go's zero time
            continue
        signature.block_id_flag = light.FLAG_COMMIT
        signature.validator_address = validator.address
        signature.timestamp.seconds = time_s + 1
    for index, validator in enumerate(validators):
        if validator.public_key in signing:
            message = light.vote_sign_bytes(chain_id, commit, index)
            commit.signatures[index].signature = by_key[validator.public_key].sign(message)
    return light.LightBlock(header, commit, tuple(validators))


def to_json(block: light.LightBlock) -> dict:
    """The block as CometBFT's RPC serves it (for the Go checker)."""
    return {"signed_header": light.signed_header_to_json(block.header, block.commit),
            "validators": light.validators_to_json(block.validators)}
