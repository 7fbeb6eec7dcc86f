"""State proofs a light client checks on its own: fetch them from a node, keep them, verify.

A *bundle* (JSON) holds a query answer (path, data, the height h it was
read at, the root, every entry with its proof) and the light blocks from a
trusted start to the header that commits to that root: the header at h + 1
(docs/cometbft.md section 8). The start is trusted from outside the bundle:
the genesis validators (the first header must carry them and be signed by
more than 2/3 of them) or a header hash the user already trusts. Every later
block is verified from the one before it as CometBFT's light client does
(skipping when more than 1/3 of the trusted power signed; `fetch_bundle`
bisects when it did not), then every entry against the last header's app
hash. Nothing the serving node says is believed without a check.

When the chain is idle, the header at h + 1 may not exist for a while
(blocks are made for txs); `fetch_bundle` then uses the header at h if it
commits to the same root: the entries are then proven at height h - 1, the
state header h commits to, and the verdict says so.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from . import light
from .abci import convert
from .abci.cometbft_rpc import CometRpc
from .abci.types import ProvenEntry
from .constants import LIGHT_BLOCKS_MAX
from .errors import LightClientError, ValidatorSetNotTrusted
from .genesis import Genesis

BUNDLE_VERSION = 1
ENTRY_PROOF_TYPE = "chainmall/entry"


@dataclass(frozen=True, slots=True)
class TrustRoot:
    """Where trust starts: the genesis validators, or a header (height, hash) known good."""

    chain_id: str
    genesis_validators: tuple[light.LightValidator, ...] = ()
    height: int = 0
    header_hash: bytes = b""

    @classmethod
    def from_genesis(cls, genesis: Genesis) -> TrustRoot:
        return cls(genesis.chain_id, light.sorted_validators(
            (v.public_key, v.power) for v in genesis.validators))

    @classmethod
    def from_header(cls, chain_id: str, height: int, header_hash: bytes) -> TrustRoot:
        if height < 1 or len(header_hash) != 32:
            raise LightClientError("a trusted header is a height >= 1 and a 32-byte hash")
        return cls(chain_id, (), height, header_hash)

    @property
    def start_height(self) -> int:
        return self.height if self.height else 1


@dataclass(frozen=True, slots=True)
class Bundle:
    """A query answer and the light blocks that prove it (module docstring)."""

    path: str
    data: bytes
    height: int  # the query's height: the entries are the state after this block
    root: bytes
    entries: tuple[ProvenEntry, ...]
    blocks: tuple[dict[str, Any], ...]  # {"signed_header": ..., "validators": [...]} JSON

    def to_json(self) -> dict[str, Any]:
        return {"version": BUNDLE_VERSION, "path": self.path, "data": self.data.hex(),
                "height": self.height, "root": self.root.hex(),
                "entries": [{"key": e.key.hex(),
                             "value": None if e.value is None else e.value.hex(),
                             "proof": e.proof.hex()} for e in self.entries],
                "blocks": list(self.blocks)}

    @classmethod
    def from_json(cls, data: Any) -> Bundle:
        try:
            if data["version"] != BUNDLE_VERSION:
                raise LightClientError(f"bundle version {data['version']}, expected "
                                       f"{BUNDLE_VERSION}")
            entries = tuple(ProvenEntry(bytes.fromhex(e["key"]),
                                        None if e["value"] is None else bytes.fromhex(e["value"]),
                                        bytes.fromhex(e["proof"])) for e in data["entries"])
            blocks = tuple(data["blocks"])
            if not 1 <= len(blocks) <= LIGHT_BLOCKS_MAX:
                raise LightClientError(f"a bundle has 1 to {LIGHT_BLOCKS_MAX} blocks")
            return cls(str(data["path"]), bytes.fromhex(data["data"]), int(data["height"]),
                       bytes.fromhex(data["root"]), entries, blocks)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, LightClientError):
                raise
            raise LightClientError(f"malformed bundle: {exc!r}") from None


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a verified bundle proves: the entries as of `state_height`, under `root`,
    committed in the header at `header_height` signed by `signed_power` of `total_power`."""

    state_height: int
    root: bytes
    entries: tuple[ProvenEntry, ...]
    header_height: int
    header_hash: bytes
    signed_power: int
    total_power: int
    validators: int
    steps: int


def _block(item: dict[str, Any]) -> light.LightBlock:
    if not isinstance(item, dict):
        raise LightClientError("a bundle block is an object")
    return light.light_block_from_json(item.get("signed_header", {}), item.get("validators"))


def _trust_start(trust: TrustRoot, block: light.LightBlock) -> None:
    if trust.height:
        if block.height != trust.height or block.hash() != trust.header_hash:
            raise LightClientError(f"the first block is not the trusted header "
                                   f"{trust.height}/{trust.header_hash.hex()}")
        light.check_signed_header(block, trust.chain_id)
        if light.validator_set_hash(block.validators) != block.header.validators_hash:
            raise LightClientError("the trusted header's validators are not the ones supplied")
    else:
        light.verify_first(block, trust.chain_id, trust.genesis_validators)


def verify_bundle(bundle: Bundle, trust: TrustRoot, now_ns: int,
                  options: light.TrustOptions = light.DEFAULT_TRUST) -> Verdict:
    """Check `bundle` from `trust` at wall time `now_ns`; LightClientError or InvalidProof
    naming the first fault."""
    blocks = [_block(item) for item in bundle.blocks]
    _trust_start(trust, blocks[0])
    last = light.verify_chain(blocks[0], blocks[1:], now_ns, options)
    state_height = last.height - 1
    if state_height not in (bundle.height, bundle.height - 1):
        raise LightClientError(f"the last header is at {last.height}: it does not commit the "
                               f"state of height {bundle.height}")
    light.verify_entries(last, state_height, bundle.root, bundle.entries)
    return Verdict(state_height, bundle.root, bundle.entries, last.height, last.hash(),
                   _signed_power(last), sum(v.voting_power for v in last.validators),
                   len(last.validators), len(blocks) - 1)


def _signed_power(block: light.LightBlock) -> int:
    by_address = {v.address: v.voting_power for v in block.validators}
    return sum(by_address.get(s.validator_address, 0) for s in block.commit.signatures
               if s.block_id_flag == light.FLAG_COMMIT)


def query_entries(answer: dict[str, Any]) -> tuple[int, bytes, tuple[ProvenEntry, ...]]:
    """(height, root, entries) of an `abci_query` response with proofs."""
    if answer.get("code", 0) != 0:
        raise LightClientError(f"the query failed: code {answer['code']}: {answer.get('log')}")
    try:
        root = bytes.fromhex(json.loads(answer["info"])["root"])
        ops = (answer.get("proofOps") or {}).get("ops") or []
        entries = tuple(convert.decode_query_entry(base64.b64decode(op["key"]),
                                                   base64.b64decode(op["data"]))
                        for op in ops if op["type"] == ENTRY_PROOF_TYPE)
        return int(answer["height"]), root, entries
    except (KeyError, ValueError, TypeError) as exc:
        raise LightClientError(f"the query answer carries no proofs: {exc!r}") from None


def fetch_light_block(rpc: CometRpc, height: int) -> dict[str, Any]:
    """The signed header and validator set of `height`, as the node serves them."""
    return {"signed_header": rpc.commit(height)["signed_header"],
            "validators": rpc.validators(height)}


def fetch_bundle(rpc: CometRpc, trust: TrustRoot, path: str, data: bytes, now_ns: int,
                 wait_s: float = 5.0, options: light.TrustOptions = light.DEFAULT_TRUST,
                 clock: Callable[[], float] = time.monotonic) -> Bundle:
    """Query `path`/`data` with proofs at the node's latest height h and collect the light
    blocks from `trust` to the header at h + 1 (bisecting as needed), each verified as it
    comes; the bundle (verify it again with `verify_bundle` anywhere)."""
    height, root, entries = query_entries(rpc.abci_query(path, data, prove=True))
    target = height + 1
    end = clock() + wait_s
    while rpc.height() < target:
        if clock() > end:
            break
        time.sleep(0.05)  # the next block is made on its own schedule
    if rpc.height() < target:
        target = height  # idle chain: the header at h, if it commits the same root
    start_json = fetch_light_block(rpc, trust.start_height)
    start = _block(start_json)
    _trust_start(trust, start)
    path_json = _bisect(rpc, start, target, now_ns, options)
    bundle = Bundle(path, data, height, root, entries, (start_json, *path_json))
    verify_bundle(bundle, trust, now_ns, options)
    return bundle


def trusted_start(rpc: CometRpc, trust: TrustRoot) -> light.LightBlock:
    """The light block where `trust` starts, fetched from `rpc` and checked against it."""
    start = _block(fetch_light_block(rpc, trust.start_height))
    _trust_start(trust, start)
    return start


def advance(rpc: CometRpc, trusted: light.LightBlock, target: int, now_ns: int,
            options: light.TrustOptions = light.DEFAULT_TRUST) -> light.LightBlock:
    """The light block of `target` (above `trusted`), fetched from `rpc` and verified from
    `trusted` as CometBFT's light client does (bisecting as needed)."""
    if target <= trusted.height:
        raise LightClientError(f"height {target} is not above the trusted {trusted.height}")
    return _block(_bisect(rpc, trusted, target, now_ns, options)[-1])


def retreat(rpc: CometRpc, trusted: light.LightBlock, target: int) -> light.LightBlock:
    """The light block of `target` (below `trusted`), fetched from `rpc` and verified
    backwards as CometBFT's light client does: each header is the one the header above it
    names as its last block (at most LIGHT_BLOCKS_MAX headers down)."""
    if not 1 <= target < trusted.height:
        raise LightClientError(f"height {target} is not below the trusted {trusted.height}")
    if trusted.height - target > LIGHT_BLOCKS_MAX:
        raise LightClientError(f"more than {LIGHT_BLOCKS_MAX} headers to verify backwards")
    block = trusted
    for height in range(trusted.height - 1, target - 1, -1):
        below = _block(fetch_light_block(rpc, height))
        light.verify_backwards(block, below)
        block = below
    return block


def _bisect(rpc: CometRpc, trusted: light.LightBlock, target: int, now_ns: int,
            options: light.TrustOptions) -> Sequence[dict[str, Any]]:
    """Light blocks from `trusted` (excluded) to `target`, each verifiable from the one
    before (CometBFT's bisection)."""
    path: list[dict[str, Any]] = []
    pending = [target] if target > trusted.height else []
    fetched = 0
    while pending:
        height = pending[-1]
        fetched += 1
        if fetched > LIGHT_BLOCKS_MAX:
            raise LightClientError(f"more than {LIGHT_BLOCKS_MAX} headers to verify")
        item = fetch_light_block(rpc, height)
        block = _block(item)
        try:
            light.verify(trusted, block, now_ns, options)
        except ValidatorSetNotTrusted:
            middle = (trusted.height + height) // 2
            if middle <= trusted.height:
                raise
            pending.append(middle)
            continue
        path.append(item)
        trusted = block
        pending.pop()
    return path
