"""A CometBFT node's light-client trust, kept in its data directory across restarts.

What is stored (`DATA/light-client.json`, docs/page.md section 3.6): the
latest header the node's light client verified, the commit for it and its
validator set (the protobuf messages, hex), the trust root it was verified
from (the genesis validators' header at height 1: height and hash), an id of
that trust root (chain id and the genesis set's hash) and a SHA-256 checksum
of all the rest. That is all `core/light.py` needs to verify the next header
without walking from genesis again.

The file is written whole through a temporary name, fsync and rename
(`core/diskio.write_file_atomic`), so a crash leaves the old file or the new
one, never half of one. Reading it checks everything before it is trusted:
size, JSON, version, checksum, trust root id (a file of another chain is
refused), the header's basic checks, the validator set's hash against the
header and the commit's signatures by more than 2/3 of that set. Any fault is
`LightStoreInvalid` naming it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf.message import DecodeError as ProtobufDecodeError

from .. import light
from ..abci.proto.tendermint.types import types_pb2, validator_pb2
from ..constants import LIGHT_STORE_BYTES_MAX
from ..diskio import write_file_atomic
from ..errors import LightClientError, LightStoreInvalid
from ..proof_bundle import TrustRoot

log = logging.getLogger("chainmall.node.light")

LIGHT_STORE_FILE = "light-client.json"
STORE_VERSION = 1


@dataclass(frozen=True, slots=True)
class TrustedState:
    """What the light client trusts: the latest verified block, and the trust root (the
    header its trust started from) that the page names as `trusted`."""

    root_height: int
    root_hash: bytes
    latest: light.LightBlock


def trust_id(trust: TrustRoot) -> str:
    """The id of a trust root: SHA-256 of its chain id, genesis set hash and trusted header."""
    identity = {"chain_id": trust.chain_id,
                "genesis_validators": light.validator_set_hash(trust.genesis_validators).hex()
                if trust.genesis_validators else "",
                "height": trust.height, "hash": trust.header_hash.hex()}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def _checksum(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def encode_state(state: TrustedState, trust: TrustRoot) -> bytes:
    """The file's bytes for `state` under `trust` (module docstring)."""
    latest = state.latest
    body = {"version": STORE_VERSION, "trust": trust_id(trust),
            "chain_id": latest.header.chain_id,
            "root": {"height": state.root_height, "hash": state.root_hash.hex()},
            "header": latest.header.SerializeToString().hex(),
            "commit": latest.commit.SerializeToString().hex(),
            "validators": light.encode_validator_set(
                latest.validators, latest.header.proposer_address).hex()}
    return json.dumps({**body, "checksum": _checksum(body)}, indent=1).encode() + b"\n"


def decode_state(data: bytes, trust: TrustRoot) -> TrustedState:
    """The state the file's bytes hold, every check passed; LightStoreInvalid if not."""
    if len(data) > LIGHT_STORE_BYTES_MAX:
        raise LightStoreInvalid(f"{len(data)} bytes, more than {LIGHT_STORE_BYTES_MAX}")
    try:
        stored = json.loads(data)
        if not isinstance(stored, dict):
            raise LightStoreInvalid("not a JSON object")
        body = {key: value for key, value in stored.items() if key != "checksum"}
        if stored.get("checksum") != _checksum(body):
            raise LightStoreInvalid("the checksum does not match (a damaged file)")
        if body["version"] != STORE_VERSION:
            raise LightStoreInvalid(f"version {body['version']!r}, expected {STORE_VERSION}")
        if body["trust"] != trust_id(trust) or body["chain_id"] != trust.chain_id:
            raise LightStoreInvalid(f"written for another chain than {trust.chain_id!r} and "
                                    "its genesis validators")
        header = types_pb2.Header.FromString(bytes.fromhex(body["header"]))
        commit = types_pb2.Commit.FromString(bytes.fromhex(body["commit"]))
        encoded = validator_pb2.ValidatorSet.FromString(bytes.fromhex(body["validators"]))
        validators = tuple(light.LightValidator(v.address, v.pub_key.ed25519, v.voting_power)
                           for v in encoded.validators)
        root_height, root_hash = int(body["root"]["height"]), bytes.fromhex(body["root"]["hash"])
    except LightStoreInvalid:
        raise
    except (ValueError, KeyError, TypeError, ProtobufDecodeError) as exc:
        raise LightStoreInvalid(f"malformed: {exc!r}") from None
    block = light.LightBlock(header, commit, validators)
    try:
        light.check_signed_header(block, trust.chain_id)
        if light.validator_set_hash(validators) != header.validators_hash:
            raise LightClientError("the stored validators are not the header's")
        light.verify_commit(trust.chain_id, validators, block)
    except LightClientError as exc:
        raise LightStoreInvalid(f"the stored header does not check out: {exc}") from None
    if not 1 <= root_height <= block.height or len(root_hash) != 32:
        raise LightStoreInvalid("the trust root is not a height up to the header's and a hash")
    return TrustedState(root_height, root_hash, block)


def save_state(path: Path, state: TrustedState, trust: TrustRoot) -> None:
    """Write `state` to `path` atomically (temporary file, fsync, rename, fsync of the
    directory)."""
    write_file_atomic(path, encode_state(state, trust))


def load_state(path: Path, trust: TrustRoot) -> TrustedState | None:
    """The state stored at `path` (None when there is none), every check passed;
    LightStoreInvalid naming the fault. Temporary files a crash left beside it are removed."""
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)
    try:
        with path.open("rb") as handle:
            data = handle.read(LIGHT_STORE_BYTES_MAX + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LightStoreInvalid(f"{path}: cannot be read: {exc}") from None
    try:
        return decode_state(data, trust)
    except LightStoreInvalid as exc:
        raise LightStoreInvalid(f"{path}: {exc}") from None
