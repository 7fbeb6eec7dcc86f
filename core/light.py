"""A CometBFT light client in Python: headers, commits, validator sets and state proofs.

What `chainmall verify` (and anyone holding a query answer) uses to check a
state entry without running a node (docs/cometbft.md section 8):

* the **header hash**: CometBFT's Merkle root (RFC 6962 shape over SHA-256,
  split at the largest power of two) of the header's fields, each encoded as
  CometBFT encodes it (the version and last block id as protobuf messages,
  the time as a Timestamp, the rest in protobuf wrapper messages);
* the **vote sign bytes**: the varint-length-prefixed `CanonicalVote` (type
  PRECOMMIT, height and round as sfixed64, the block id, the vote's time,
  the chain id) each validator signs, built with the generated protobuf
  classes; signatures are checked with `keys.verify_signature`;
* **commit verification** as CometBFT's light package does it: an adjacent
  header must carry the trusted header's next validators and be signed by
  more than 2/3 of its own set's power; a non-adjacent one must be signed
  by more than the trust level (1/3) of the trusted set's power and more than
  2/3 of its own; headers must advance in height and time, not come from
  the future (beyond the clock drift), and the trusted header must be within
  the trusting period;
* **state proofs**: every entry of a query answer at height h verifies
  against the app hash in the header at h + 1.

Inputs are the JSON CometBFT's RPC serves (`/commit`, `/validators`,
`/genesis`), parsed strictly into the generated protobuf messages. Every
fault is a `LightClientError` (or `InvalidProof` for a state proof) naming
what failed. Nothing here trusts the server that supplied the data.
"""

from __future__ import annotations

import base64
import calendar
import datetime
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf import wrappers_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from .abci.framing import encode_frame
from .abci.proto.tendermint.crypto import keys_pb2
from .abci.proto.tendermint.types import canonical_pb2, types_pb2, validator_pb2
from .abci.types import ProvenEntry
from .constants import (
    HASH_BYTES,
    LIGHT_CLOCK_DRIFT_MS_DEFAULT,
    LIGHT_TRUST_DENOMINATOR,
    LIGHT_TRUST_NUMERATOR,
    LIGHT_TRUSTING_PERIOD_MS_DEFAULT,
    PUBLIC_KEY_BYTES,
    SIGNATURE_BYTES,
    VALIDATORS_MAX,
)
from .errors import (
    InvalidProof,
    LightClientError,
    NotEnoughVotingPower,
    TrustedHeaderExpired,
    ValidatorSetNotTrusted,
)
from .keys import verify_signature
from .state.root import decode_proof, verify_proof

BLOCK_PROTOCOL = 11  # CometBFT v0.38's block protocol version (Header.Version.Block)
ADDRESS_BYTES = 20  # CometBFT validator address: SHA-256(public key)[:20]
ED25519_KEY_TYPE = "tendermint/PubKeyEd25519"
FLAG_ABSENT = validator_pb2.BLOCK_ID_FLAG_ABSENT
FLAG_COMMIT = validator_pb2.BLOCK_ID_FLAG_COMMIT
FLAG_NIL = validator_pb2.BLOCK_ID_FLAG_NIL
NANOS_PER_MS = 1_000_000
_INT64_MAX = 2**63 - 1


# --- Merkle (CometBFT crypto/merkle, RFC 6962 shape) --------------------------------


def _leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def _inner_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """CometBFT's `merkle.HashFromByteSlices`: SHA-256 of "" for no leaves, else split
    at the largest power of two below the count."""
    count = len(leaves)
    if count == 0:
        return hashlib.sha256(b"").digest()
    if count == 1:
        return _leaf_hash(leaves[0])
    split = 1 << ((count - 1).bit_length() - 1)
    return _inner_hash(merkle_root(leaves[:split]), merkle_root(leaves[split:]))


# --- values --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LightValidator:
    """A validator as a light client sees it: CometBFT address, Ed25519 key, power."""

    address: bytes
    public_key: bytes
    voting_power: int


@dataclass(frozen=True, slots=True)
class LightBlock:
    """A signed header (header and the commit for it) and the validator set of its height."""

    header: types_pb2.Header
    commit: types_pb2.Commit
    validators: tuple[LightValidator, ...]

    @property
    def height(self) -> int:
        return self.header.height

    @property
    def time_ns(self) -> int:
        return timestamp_ns(self.header.time)

    def hash(self) -> bytes:
        """The header's hash (its block id hash)."""
        return header_hash(self.header)


@dataclass(frozen=True, slots=True)
class TrustOptions:
    """How long a verified header stays trusted, the clock drift allowed for a new
    header's time, and the share of a trusted set that must sign a non-adjacent header."""

    trusting_period_ms: int = LIGHT_TRUSTING_PERIOD_MS_DEFAULT
    clock_drift_ms: int = LIGHT_CLOCK_DRIFT_MS_DEFAULT
    trust_numerator: int = LIGHT_TRUST_NUMERATOR
    trust_denominator: int = LIGHT_TRUST_DENOMINATOR


DEFAULT_TRUST = TrustOptions()


def timestamp_ns(timestamp: Timestamp) -> int:
    """A Timestamp as integer nanoseconds since the Unix epoch."""
    return timestamp.seconds * 1_000_000_000 + timestamp.nanos


# --- hashes and sign bytes -------------------------------------------------------------


def _wrap_bytes(value: bytes) -> bytes:
    return wrappers_pb2.BytesValue(value=value).SerializeToString()


def header_hash(header: types_pb2.Header) -> bytes:
    """CometBFT's `Header.Hash()`: the Merkle root of the fields in header order
    (empty if the header has no validators hash, as CometBFT's is nil then)."""
    if not header.validators_hash:
        return b""
    last_block_id = types_pb2.BlockID()
    last_block_id.CopyFrom(header.last_block_id)
    last_block_id.part_set_header.SetInParent()  # gogoproto non-nullable: always encoded
    leaves = [
        header.version.SerializeToString(),
        wrappers_pb2.StringValue(value=header.chain_id).SerializeToString(),
        wrappers_pb2.Int64Value(value=header.height).SerializeToString(),
        header.time.SerializeToString(),
        last_block_id.SerializeToString(),
        _wrap_bytes(header.last_commit_hash),
        _wrap_bytes(header.data_hash),
        _wrap_bytes(header.validators_hash),
        _wrap_bytes(header.next_validators_hash),
        _wrap_bytes(header.consensus_hash),
        _wrap_bytes(header.app_hash),
        _wrap_bytes(header.last_results_hash),
        _wrap_bytes(header.evidence_hash),
        _wrap_bytes(header.proposer_address),
    ]
    return merkle_root(leaves)


def validator_set_hash(validators: Sequence[LightValidator]) -> bytes:
    """CometBFT's `ValidatorSet.Hash()`: the Merkle root of each `SimpleValidator`
    (Ed25519 public key, voting power), in the set's order."""
    leaves = []
    for validator in validators:
        simple = validator_pb2.SimpleValidator(
            pub_key=keys_pb2.PublicKey(ed25519=validator.public_key),
            voting_power=validator.voting_power)
        leaves.append(simple.SerializeToString())
    return merkle_root(leaves)


def sorted_validators(validators: Iterable[tuple[bytes, int]]) -> tuple[LightValidator, ...]:
    """A validator set from (public key, power) in CometBFT's order: power descending,
    then address ascending (how it orders a genesis set and every set after)."""
    made = [LightValidator(hashlib.sha256(key).digest()[:ADDRESS_BYTES], key, power)
            for key, power in validators]
    return tuple(sorted(made, key=lambda v: (-v.voting_power, v.address)))


def encode_validator_set(validators: Sequence[LightValidator], proposer: bytes) -> bytes:
    """The protobuf `tendermint.types.ValidatorSet` of `validators` in their order, with the
    validator at address `proposer` as its proposer (none if it is not among them)."""
    encoded = validator_pb2.ValidatorSet()
    for validator in validators:
        entry = encoded.validators.add(address=validator.address,
                                       pub_key=keys_pb2.PublicKey(ed25519=validator.public_key),
                                       voting_power=validator.voting_power)
        if validator.address == proposer:
            encoded.proposer.CopyFrom(entry)
    encoded.total_voting_power = sum(v.voting_power for v in validators)
    return encoded.SerializeToString()


def vote_sign_bytes(chain_id: str, commit: types_pb2.Commit, index: int) -> bytes:
    """What validator `index` of `commit` signed: CometBFT's `Commit.VoteSignBytes`, the
    varint-length-prefixed CanonicalVote of its precommit."""
    signature = commit.signatures[index]
    vote = canonical_pb2.CanonicalVote(
        type=types_pb2.SIGNED_MSG_TYPE_PRECOMMIT, height=commit.height, round=commit.round,
        chain_id=chain_id)
    if signature.block_id_flag == FLAG_COMMIT:  # a nil vote has no block id
        block_id = commit.block_id
        vote.block_id.hash = block_id.hash
        vote.block_id.part_set_header.total = block_id.part_set_header.total
        vote.block_id.part_set_header.hash = block_id.part_set_header.hash
        vote.block_id.part_set_header.SetInParent()
    vote.timestamp.CopyFrom(signature.timestamp)  # non-nullable: always encoded
    return encode_frame(vote.SerializeToString())


# --- basic checks ------------------------------------------------------------------------


def _check_hash(name: str, value: bytes) -> None:
    if len(value) not in (0, HASH_BYTES):
        raise LightClientError(f"header {name} is {len(value)} bytes, not 0 or 32")


def _block_id_is_zero(block_id: types_pb2.BlockID) -> bool:
    return not block_id.hash and not block_id.part_set_header.total \
        and not block_id.part_set_header.hash


def check_header(header: types_pb2.Header) -> None:
    """CometBFT's `Header.ValidateBasic`."""
    if header.version.block != BLOCK_PROTOCOL:
        raise LightClientError(f"header block protocol {header.version.block}, "
                               f"expected {BLOCK_PROTOCOL}")
    if len(header.chain_id) > 50:
        raise LightClientError("header chain id is longer than 50 bytes")
    if header.height <= 0:
        raise LightClientError(f"header height {header.height} is not positive")
    _check_hash("last block id hash", header.last_block_id.hash)
    _check_hash("last block id parts hash", header.last_block_id.part_set_header.hash)
    for name in ("last_commit_hash", "data_hash", "evidence_hash", "validators_hash",
                 "next_validators_hash", "consensus_hash", "last_results_hash"):
        _check_hash(name, getattr(header, name))
    if len(header.proposer_address) != ADDRESS_BYTES:
        raise LightClientError("header proposer address is not 20 bytes")


def check_commit(commit: types_pb2.Commit) -> None:
    """CometBFT's `Commit.ValidateBasic` (and every `CommitSig.ValidateBasic`)."""
    if commit.height < 0 or commit.round < 0:
        raise LightClientError("commit height or round is negative")
    if commit.height == 0:
        return
    if _block_id_is_zero(commit.block_id):
        raise LightClientError("commit is for a nil block")
    if not commit.signatures:
        raise LightClientError("commit has no signatures")
    for index, signature in enumerate(commit.signatures):
        _check_commit_sig(index, signature)


def _check_commit_sig(index: int, signature: types_pb2.CommitSig) -> None:
    flag = signature.block_id_flag
    if flag not in (FLAG_ABSENT, FLAG_COMMIT, FLAG_NIL):
        raise LightClientError(f"commit signature {index}: unknown block id flag {flag}")
    if flag == FLAG_ABSENT:
        if signature.validator_address or signature.signature \
                or timestamp_ns(signature.timestamp) != _ZERO_TIME_NS:
            raise LightClientError(f"commit signature {index}: an absent vote carries data")
        return
    if len(signature.validator_address) != ADDRESS_BYTES:
        raise LightClientError(f"commit signature {index}: address is not 20 bytes")
    if not signature.signature:
        raise LightClientError(f"commit signature {index}: signature is missing")
    if len(signature.signature) > SIGNATURE_BYTES:
        raise LightClientError(f"commit signature {index}: signature is too long")


def check_signed_header(block: LightBlock, chain_id: str) -> None:
    """CometBFT's `SignedHeader.ValidateBasic`: a valid header and commit of this chain,
    the commit for this very header."""
    check_header(block.header)
    check_commit(block.commit)
    if block.header.chain_id != chain_id:
        raise LightClientError(f"header belongs to chain {block.header.chain_id!r}, "
                               f"not {chain_id!r}")
    if block.commit.height != block.header.height:
        raise LightClientError(f"header height {block.header.height} but commit height "
                               f"{block.commit.height}")
    if block.hash() != block.commit.block_id.hash:
        raise LightClientError(f"the commit signs block {block.commit.block_id.hash.hex()}, "
                               f"the header is block {block.hash().hex()}")


# --- commit verification ------------------------------------------------------------------


def _tally(chain_id: str, validators: Sequence[LightValidator], commit: types_pb2.Commit,
           needed: int, by_index: bool) -> int:
    """CometBFT's `verifyCommitSingle`: checks commit signatures for the block until more
    than `needed` power has signed; the power counted (LightClientError on a bad one)."""
    by_address = {v.address: (i, v) for i, v in enumerate(validators)}
    seen: dict[int, int] = {}
    tallied = 0
    for index, signature in enumerate(commit.signatures):
        if signature.block_id_flag != FLAG_COMMIT:
            continue
        _check_commit_sig(index, signature)
        if by_index:
            validator = validators[index]
            if validator.address != signature.validator_address:
                raise LightClientError(f"commit signature {index} is from "
                                       f"{signature.validator_address.hex()}, the set has "
                                       f"{validator.address.hex()} there")
        else:
            found = by_address.get(signature.validator_address)
            if found is None:
                continue
            position, validator = found
            if position in seen:
                raise LightClientError(f"validator {validator.address.hex()} signed twice "
                                       f"({seen[position]} and {index})")
            seen[position] = index
        if not verify_signature(validator.public_key, vote_sign_bytes(chain_id, commit, index),
                                signature.signature):
            raise LightClientError(f"commit signature {index} (validator "
                                   f"{validator.address.hex()}) does not verify")
        tallied += validator.voting_power
        if tallied > needed:
            return tallied
    raise NotEnoughVotingPower(f"not enough voting power signed: {tallied}, more than "
                               f"{needed} needed")


def _total_power(validators: Sequence[LightValidator]) -> int:
    total = sum(v.voting_power for v in validators)
    if total > _INT64_MAX // 8:
        raise LightClientError("the validator set's total power is over CometBFT's cap")
    return total


def verify_commit(chain_id: str, validators: Sequence[LightValidator], block: LightBlock) -> int:
    """CometBFT's `VerifyCommitLight`: `validators` (the set of the block's height) signed
    the block with more than 2/3 of their power; the power counted."""
    commit = block.commit
    if not validators:
        raise LightClientError("empty validator set")
    if len(validators) != len(commit.signatures):
        raise LightClientError(f"the commit has {len(commit.signatures)} signatures for "
                               f"{len(validators)} validators")
    if commit.height != block.header.height:
        raise LightClientError("commit height is not the header's")
    return _tally(chain_id, validators, commit, _total_power(validators) * 2 // 3, True)


def verify_commit_trusting(chain_id: str, trusted: Sequence[LightValidator], block: LightBlock,
                           options: TrustOptions) -> int:
    """CometBFT's `VerifyCommitLightTrusting`: more than the trust level of the `trusted`
    set's power signed the block (validators found by address); the power counted."""
    if not trusted:
        raise LightClientError("empty trusted validator set")
    needed = _total_power(trusted) * options.trust_numerator // options.trust_denominator
    try:
        return _tally(chain_id, trusted, block.commit, needed, False)
    except NotEnoughVotingPower as exc:
        raise ValidatorSetNotTrusted(f"the trusted validators did not sign enough: {exc}") \
            from None


# --- header verification ----------------------------------------------------------------------


def _check_new_header(trusted: LightBlock, untrusted: LightBlock, now_ns: int,
                      options: TrustOptions) -> None:
    """CometBFT's `verifyNewHeaderAndVals`."""
    check_signed_header(untrusted, trusted.header.chain_id)
    if untrusted.height <= trusted.height:
        raise LightClientError(f"new header height {untrusted.height} is not above the "
                               f"trusted {trusted.height}")
    if untrusted.time_ns <= trusted.time_ns:
        raise LightClientError("new header time is not after the trusted header's")
    if untrusted.time_ns >= now_ns + options.clock_drift_ms * NANOS_PER_MS:
        raise LightClientError("new header has a time from the future")
    if validator_set_hash(untrusted.validators) != untrusted.header.validators_hash:
        raise LightClientError(f"the validators supplied for height {untrusted.height} are "
                               "not the header's validators")


def expires_ns(trusted: LightBlock, options: TrustOptions = DEFAULT_TRUST) -> int:
    """When `trusted` stops being trusted: its time plus the trusting period."""
    return trusted.time_ns + options.trusting_period_ms * NANOS_PER_MS


def check_not_expired(trusted: LightBlock, now_ns: int,
                      options: TrustOptions = DEFAULT_TRUST) -> None:
    """TrustedHeaderExpired when `trusted` is older than the trusting period at `now_ns`."""
    if expires_ns(trusted, options) <= now_ns:
        days = options.trusting_period_ms / 86_400_000
        raise TrustedHeaderExpired(
            f"the trusted header at height {trusted.height} (time "
            f"{format_time(trusted.header.time)}) has expired: it is older than the trusting "
            f"period ({days:g} days), so no newer header can be verified from it")


def verify(trusted: LightBlock, untrusted: LightBlock, now_ns: int,
           options: TrustOptions = DEFAULT_TRUST) -> None:
    """CometBFT's `light.Verify`: trust `untrusted` given `trusted` at time `now_ns`;
    LightClientError if not (ValidatorSetNotTrusted: a header in between may help)."""
    check_not_expired(trusted, now_ns, options)
    _check_new_header(trusted, untrusted, now_ns, options)
    chain_id = trusted.header.chain_id
    if untrusted.height == trusted.height + 1:
        if untrusted.header.validators_hash != trusted.header.next_validators_hash:
            raise LightClientError("the new header's validators are not the trusted header's "
                                   "next validators")
    else:
        verify_commit_trusting(chain_id, trusted.validators, untrusted, options)
    verify_commit(chain_id, untrusted.validators, untrusted)


def verify_backwards(trusted: LightBlock, untrusted: LightBlock) -> None:
    """CometBFT's `VerifyBackwards`: trust `untrusted`, the header just below `trusted`,
    because `trusted` names its hash as the last block id; also that the validators
    supplied are its set and signed its commit (they are served with it)."""
    check_signed_header(untrusted, trusted.header.chain_id)
    if untrusted.height != trusted.height - 1:
        raise LightClientError(f"header {untrusted.height} is not the one below the trusted "
                               f"{trusted.height}")
    if untrusted.time_ns >= trusted.time_ns:
        raise LightClientError("an older header's time is not before the trusted header's")
    if untrusted.hash() != trusted.header.last_block_id.hash:
        raise LightClientError(f"header {untrusted.height} is not the one the trusted header "
                               "names as its last block")
    if validator_set_hash(untrusted.validators) != untrusted.header.validators_hash:
        raise LightClientError(f"the validators supplied for height {untrusted.height} are "
                               "not the header's validators")
    verify_commit(trusted.header.chain_id, untrusted.validators, untrusted)


def verify_first(block: LightBlock, chain_id: str,
                 genesis_validators: Sequence[LightValidator]) -> None:
    """Trust the first header from the genesis validators: a valid signed header of
    `chain_id` at height 1, with the genesis set, signed by more than 2/3 of it."""
    check_signed_header(block, chain_id)
    if block.height != 1:
        raise LightClientError(f"the first header is at height {block.height}, not 1")
    if validator_set_hash(genesis_validators) != block.header.validators_hash:
        raise LightClientError("the header at height 1 does not carry the genesis validators")
    if validator_set_hash(block.validators) != block.header.validators_hash:
        raise LightClientError("the validators supplied for height 1 are not the header's")
    verify_commit(chain_id, block.validators, block)


def verify_chain(start: LightBlock, path: Sequence[LightBlock], now_ns: int,
                 options: TrustOptions = DEFAULT_TRUST) -> LightBlock:
    """Verify each block of `path` from the one before it (`start` first, already
    trusted); the last, now trusted."""
    trusted = start
    for block in path:
        verify(trusted, block, now_ns, options)
        trusted = block
    return trusted


# --- state proofs ----------------------------------------------------------------------------


def verify_entries(block: LightBlock, query_height: int, root: bytes,
                   entries: Sequence[ProvenEntry]) -> None:
    """Every entry of a query answer at `query_height` under `root` verifies, and `root`
    is the app hash the (verified) header at query_height + 1 commits to."""
    if block.height != query_height + 1:
        raise LightClientError(f"a proof at height {query_height} is checked against the "
                               f"header at {query_height + 1}, not {block.height}")
    if block.header.app_hash != root:
        raise LightClientError(f"the header at {block.height} commits to app hash "
                               f"{block.header.app_hash.hex()}, the proofs are under "
                               f"{root.hex()}")
    if not entries:
        raise InvalidProof("the answer has no entries")
    for entry in entries:
        if not entry.proof:
            raise InvalidProof(f"entry {entry.key.hex()} comes without a proof")
        if not verify_proof(root, entry.key, entry.value, decode_proof(entry.proof)):
            raise InvalidProof(f"the proof of {entry.key.hex()} does not lead to the root")


# --- CometBFT's JSON ----------------------------------------------------------------------------

_TIME_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?Z$")
_ZERO_TIME_NS = -62135596800 * 1_000_000_000  # Go's zero time, 0001-01-01T00:00:00Z
_EPOCH = datetime.datetime(1970, 1, 1)


def parse_time(text: object, into: Timestamp) -> None:
    """An RFC 3339 UTC time with up to nanoseconds, as CometBFT's JSON writes it."""
    match = _TIME_RE.match(text) if isinstance(text, str) else None
    if match is None:
        raise LightClientError(f"not an RFC 3339 UTC time: {text!r}")
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    fraction = match.group(7) or ""
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 60):
        raise LightClientError(f"not a valid time: {text!r}")
    into.seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    into.nanos = int(fraction.ljust(9, "0")) if fraction else 0


def format_time(timestamp: Timestamp) -> str:
    """A Timestamp as CometBFT's JSON writes it (RFC 3339, trailing zero digits dropped)."""
    when = _EPOCH + datetime.timedelta(seconds=timestamp.seconds)
    text = (f"{when.year:04d}-{when.month:02d}-{when.day:02d}T{when.hour:02d}:"
            f"{when.minute:02d}:{when.second:02d}")
    if timestamp.nanos:
        text += "." + f"{timestamp.nanos:09d}".rstrip("0")
    return text + "Z"


def _field(data: Mapping[str, Any], name: str, what: str) -> Any:
    if not isinstance(data, Mapping) or name not in data:
        raise LightClientError(f"{what}: missing field {name!r}")
    return data[name]


def _int(data: Mapping[str, Any], name: str, what: str) -> int:
    value = _field(data, name, what)
    if isinstance(value, bool) or not isinstance(value, int | str) \
            or (isinstance(value, str) and not re.fullmatch(r"-?\d{1,19}", value)):
        raise LightClientError(f"{what}.{name}: not an integer: {value!r}")
    return int(value)


def _hex(data: Mapping[str, Any], name: str, what: str) -> bytes:
    value = _field(data, name, what)
    if not isinstance(value, str) or not re.fullmatch(r"([0-9A-Fa-f]{2})*", value):
        raise LightClientError(f"{what}.{name}: not hex: {value!r}")
    return bytes.fromhex(value)


def _base64(data: Mapping[str, Any], name: str, what: str) -> bytes:
    value = _field(data, name, what)
    if value is None:
        return b""
    try:
        return base64.b64decode(value, validate=True)
    except (TypeError, ValueError):
        raise LightClientError(f"{what}.{name}: not base64") from None


def _block_id(data: Mapping[str, Any], into: types_pb2.BlockID, what: str) -> None:
    into.hash = _hex(data, "hash", what)
    parts = _field(data, "parts", what)
    into.part_set_header.total = _int(parts, "total", f"{what}.parts")
    into.part_set_header.hash = _hex(parts, "hash", f"{what}.parts")


def header_from_json(data: Mapping[str, Any]) -> types_pb2.Header:
    """A header from CometBFT's JSON (`signed_header.header` of `/commit`)."""
    what = "header"
    header = types_pb2.Header()
    version = _field(data, "version", what)
    header.version.block = _int(version, "block", "header.version")
    header.version.app = _int(version, "app", "header.version") if "app" in version else 0
    chain_id = _field(data, "chain_id", what)
    if not isinstance(chain_id, str):
        raise LightClientError("header.chain_id: not a string")
    header.chain_id = chain_id
    header.height = _int(data, "height", what)
    parse_time(_field(data, "time", what), header.time)
    _block_id(_field(data, "last_block_id", what), header.last_block_id, "header.last_block_id")
    for name in ("last_commit_hash", "data_hash", "validators_hash", "next_validators_hash",
                 "consensus_hash", "app_hash", "last_results_hash", "evidence_hash",
                 "proposer_address"):
        setattr(header, name, _hex(data, name, what))
    return header


def commit_from_json(data: Mapping[str, Any]) -> types_pb2.Commit:
    """A commit from CometBFT's JSON (`signed_header.commit` of `/commit`)."""
    what = "commit"
    commit = types_pb2.Commit(height=_int(data, "height", what), round=_int(data, "round", what))
    _block_id(_field(data, "block_id", what), commit.block_id, "commit.block_id")
    signatures = _field(data, "signatures", what)
    if not isinstance(signatures, list) or len(signatures) > VALIDATORS_MAX:
        raise LightClientError(f"commit.signatures: a list of at most {VALIDATORS_MAX}")
    for index, item in enumerate(signatures):
        where = f"commit.signatures[{index}]"
        signature = commit.signatures.add()
        signature.block_id_flag = _int(item, "block_id_flag", where)
        signature.validator_address = _hex(item, "validator_address", where)
        parse_time(_field(item, "timestamp", where), signature.timestamp)
        signature.signature = _base64(item, "signature", where)
    return commit


def validators_from_json(items: object) -> tuple[LightValidator, ...]:
    """A validator set from CometBFT's JSON (`validators` of `/validators`), in its order."""
    if not isinstance(items, list) or not 1 <= len(items) <= VALIDATORS_MAX:
        raise LightClientError(f"validators: a list of 1 to {VALIDATORS_MAX}")
    validators = []
    for index, item in enumerate(items):
        where = f"validators[{index}]"
        key = _field(item, "pub_key", where)
        if _field(key, "type", f"{where}.pub_key") != ED25519_KEY_TYPE:
            raise LightClientError(f"{where}.pub_key: only Ed25519 keys are supported")
        public_key = _base64(key, "value", f"{where}.pub_key")
        if len(public_key) != PUBLIC_KEY_BYTES:
            raise LightClientError(f"{where}.pub_key: not {PUBLIC_KEY_BYTES} bytes")
        address = _hex(item, "address", where)
        if address != hashlib.sha256(public_key).digest()[:ADDRESS_BYTES]:
            raise LightClientError(f"{where}.address is not its key's address")
        power = _int(item, "voting_power", where)
        if power <= 0:
            raise LightClientError(f"{where}.voting_power: not positive")
        validators.append(LightValidator(address, public_key, power))
    return tuple(validators)


def light_block_from_json(signed_header: Mapping[str, Any], validators: object) -> LightBlock:
    """A light block from `/commit`'s `signed_header` and `/validators`'s `validators`."""
    return LightBlock(header_from_json(_field(signed_header, "header", "signed_header")),
                      commit_from_json(_field(signed_header, "commit", "signed_header")),
                      validators_from_json(validators))


def validators_to_json(validators: Sequence[LightValidator]) -> list[dict[str, Any]]:
    """The `/validators` JSON form of a set (proposer priorities as 0: not checked)."""
    return [{"address": v.address.hex().upper(),
             "pub_key": {"type": ED25519_KEY_TYPE,
                         "value": base64.b64encode(v.public_key).decode()},
             "voting_power": str(v.voting_power), "proposer_priority": "0"}
            for v in validators]


def signed_header_to_json(header: types_pb2.Header, commit: types_pb2.Commit) -> dict[str, Any]:
    """The `/commit` JSON form of a signed header (what `header_from_json` and
    `commit_from_json` read back)."""
    def block_id(value: types_pb2.BlockID) -> dict[str, Any]:
        return {"hash": value.hash.hex().upper(),
                "parts": {"total": value.part_set_header.total,
                          "hash": value.part_set_header.hash.hex().upper()}}

    head: dict[str, Any] = {
        "version": {"block": str(header.version.block), "app": str(header.version.app)},
        "chain_id": header.chain_id, "height": str(header.height),
        "time": format_time(header.time), "last_block_id": block_id(header.last_block_id)}
    for name in ("last_commit_hash", "data_hash", "validators_hash", "next_validators_hash",
                 "consensus_hash", "app_hash", "last_results_hash", "evidence_hash",
                 "proposer_address"):
        head[name] = getattr(header, name).hex().upper()
    signatures = [{"block_id_flag": s.block_id_flag,
                   "validator_address": s.validator_address.hex().upper(),
                   "timestamp": format_time(s.timestamp),
                   "signature": base64.b64encode(s.signature).decode() if s.signature else None}
                  for s in commit.signatures]
    return {"header": head, "commit": {"height": str(commit.height), "round": commit.round,
                                       "block_id": block_id(commit.block_id),
                                       "signatures": signatures}}
