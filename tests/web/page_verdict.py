"""What the page must conclude from a `mall.item_trace` answer: the Python reference of
`web/src/mall/trace.ts` (docs/page.md section 3), built from chainmall's own code.

`page_verdict(answer, pinned)` checks the anchor (header, commit certificate,
validator set), the state proofs, each step through the items' hash-chained
histories, whether each step's error declaration is shown or proven absent,
and completeness; it names every failure with a short code. The vectors
(generate_vectors.py) carry these verdicts; the TypeScript verifier must give
the same. Steps are keyed by event id (hex); listings by (item key hex, seq).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chainmall.core import constants
from chainmall.core.block import commit_sign_bytes, decode_commit, decode_header
from chainmall.core.constants import (
    HASH_BYTES,
    TABLE_MALL_DECLARATIONS,
    TABLE_MALL_EVENTS,
    TABLE_MALL_ITEM_EVENTS,
    TABLE_MALL_ITEMS,
)
from chainmall.core.errors import DecodeError
from chainmall.core.genesis import VALIDATOR_SET_KEY
from chainmall.core.hashing import digest
from chainmall.core.keys import verify_signature
from chainmall.core.mall import keys
from chainmall.core.mall.events import EventRecord, decode_event_record, event_id_of
from chainmall.core.mall.items import (
    EMPTY_HISTORY,
    Item,
    decode_index_entry,
    decode_item,
    next_history,
)
from chainmall.core.mall.vocab import (
    ACTION_ADD,
    ACTION_DELETE,
    KIND_AGGREGATION,
    KIND_ERROR_DECLARATION,
    KIND_TRANSFORMATION,
)
from chainmall.core.state.root import decode_proof, verify_proof

# Every code the page reports (docs/page.md section 3 lists them).
ANCHOR_CODES = ("malformed", "checked_by", "height", "pinned", "validator_set_mismatch",
                "other_block", "unknown_validator", "bad_signature", "insufficient_power")
STEP_CODES = ("anchor", "item_unproven", "beyond_count", "unanchored", "chain", "later_chain",
              "start_unproven", "record_unreadable", "record_id", "unfixed",
              "declaration_unproven", "unreadable_event")
LIST_CODES = ("root_unproven", "root_partial", "input_partial", "container_partial")
FAULT_CODES = ("proof", "index_entry", "marker")

_HEX = re.compile(r"(?:[0-9a-f]{2})*")
_KEY_LENGTHS = {TABLE_MALL_ITEMS: 1 + HASH_BYTES, TABLE_MALL_ITEM_EVENTS: 1 + HASH_BYTES + 4,
                TABLE_MALL_EVENTS: 1 + HASH_BYTES, TABLE_MALL_DECLARATIONS: 1 + HASH_BYTES}


@dataclass
class Verdict:
    """The page's conclusions; `anchor` is None when the anchor checked out."""

    ok: bool = False
    anchor: str | None = None
    faults: list[str] = field(default_factory=list)  # codes of entry or proof faults
    steps: dict[str, str] = field(default_factory=dict)  # event id -> "" (verified) or code
    lists: dict[str, str] = field(default_factory=dict)  # item key -> why its history fails

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "anchor": self.anchor, "faults": sorted(set(self.faults)),
                "steps": dict(sorted(self.steps.items())),
                "lists": dict(sorted(self.lists.items()))}


def decode_validator_set(data: bytes) -> list[tuple[bytes, int]]:
    """The strict validator set decoder docs/page.md section 3 asks of the browser."""
    if len(data) < 2:
        raise DecodeError("validator set: too short")
    count = struct.unpack_from(">H", data)[0]
    if not 1 <= count <= constants.GENESIS_VALIDATORS_MAX:
        raise DecodeError(f"validator set: {count} validators")
    if len(data) != 2 + 40 * count:
        raise DecodeError("validator set: wrong length")
    validators, seen = [], set()
    for index in range(count):
        key = data[2 + 40 * index : 34 + 40 * index]
        power = struct.unpack_from(">Q", data, 34 + 40 * index)[0]
        if key in seen or power == 0:
            raise DecodeError("validator set: repeated key or power 0")
        seen.add(key)
        validators.append((key, power))
    if sum(power for _, power in validators) > constants.U64_MAX:
        raise DecodeError("validator set: total power over u64")
    return validators


def commit_verdict(header_bytes: bytes, commit_bytes: bytes, validators_bytes: bytes) -> dict:
    """docs/page.md section 3, in its order; the first failing check names the fault."""
    try:
        header = decode_header(header_bytes)
        commit = decode_commit(commit_bytes)
        validators = decode_validator_set(validators_bytes)
    except DecodeError:
        return {"decodes": False, "ok": False, "fault": None}
    verdict = {"decodes": True, "ok": False}
    if digest(validators_bytes, VALIDATOR_SET_KEY) != header.validator_set_hash:
        return {**verdict, "fault": "validator_set_mismatch"}
    if (commit.height, commit.round, commit.block_hash) != (header.height, header.round,
                                                             header.hash()):
        return {**verdict, "fault": "other_block"}
    if any(sig.validator_index >= len(validators) for sig in commit.signatures):
        return {**verdict, "fault": "unknown_validator"}
    message = commit_sign_bytes(header.chain_id, header.height, header.round, header.hash())
    signed = 0
    for sig in commit.signatures:
        key, power = validators[sig.validator_index]
        if not verify_signature(key, message, sig.signature):
            return {**verdict, "fault": "bad_signature"}
        signed += power
    total = sum(power for _, power in validators)
    if 3 * signed <= 2 * total:
        return {**verdict, "fault": "insufficient_power"}
    return {"decodes": True, "ok": True, "fault": None}


class Malformed(ValueError):
    """An answer that is not an item history at all."""


def _hex(text: Any, length: int | None = None) -> bytes:
    if not isinstance(text, str) or not _HEX.fullmatch(text):
        raise Malformed("not lower-case hex")
    data = bytes.fromhex(text)
    if length is not None and len(data) != length:
        raise Malformed("wrong length")
    return data


def _shape(answer: Any) -> tuple[dict[bytes, bytes], list[tuple[bytes, str]]]:
    """The entries (key -> value) and proofs (key, proof hex) of a well-shaped answer."""
    if not isinstance(answer, dict) or not isinstance(answer.get("item"), str) \
            or not isinstance(answer.get("anchor"), dict) \
            or not isinstance(answer.get("parties"), dict) \
            or not isinstance(answer.get("entries"), list) \
            or not isinstance(answer.get("proofs"), list):
        raise Malformed("shape")
    _hex(answer.get("key"), HASH_BYTES)
    anchor = answer["anchor"]
    if not all(isinstance(anchor.get(f), str) for f in ("checked_by", "header", "commit",
                                                        "validators")) \
            or type(anchor.get("height")) is not int:
        raise Malformed("anchor shape")
    for label in answer["parties"].values():
        if not isinstance(label, dict) or not isinstance(label.get("name"), str) \
                or not isinstance(label.get("role"), str):
            raise Malformed("party")
    entries: dict[bytes, bytes] = {}
    for entry in answer["entries"]:
        if not isinstance(entry, dict):
            raise Malformed("entry")
        key, value = _hex(entry.get("key")), _hex(entry.get("value"))
        if not key or _KEY_LENGTHS.get(key[0]) != len(key) or key in entries:
            raise Malformed("entry key")
        entries[key] = value
    proofs = []
    for proof in answer["proofs"]:
        if not isinstance(proof, dict) or not isinstance(proof.get("proof"), str):
            raise Malformed("proof")
        proofs.append((_hex(proof.get("key")), proof["proof"]))
    if len({key for key, _ in proofs}) != len(proofs):
        raise Malformed("proof repeated")
    return entries, proofs


def _anchor(anchor: dict[str, Any], pinned: bytes | None) -> tuple[str | None, bytes]:
    """(fault or None, state root) of docs/page.md section 3.1."""
    if anchor["checked_by"] != "commit":
        return "checked_by", b""
    try:
        header_bytes, commit_bytes, validators = (_hex(anchor[k]) for k in (
            "header", "commit", "validators"))
    except Malformed:
        return "malformed", b""
    verdict = commit_verdict(header_bytes, commit_bytes, validators)
    if not verdict["decodes"]:
        return "malformed", b""
    header = decode_header(header_bytes)
    if header.height != anchor["height"]:
        return "height", b""
    if pinned is not None and digest(validators, VALIDATOR_SET_KEY) != pinned:
        return "pinned", b""
    if not verdict["ok"]:
        return verdict["fault"], b""
    return None, header.state_root


AnchorCheck = Callable[[dict[str, Any], "bytes | None"], tuple["str | None", bytes]]


def page_verdict(answer: Any, pinned: bytes | None = None,
                 anchor_check: AnchorCheck | None = None) -> Verdict:
    """The page's verdict on `answer` (see the module docstring); `anchor_check` replaces
    the check of a `commit` anchor (a CometBFT anchor's check: (fault or None, root))."""
    verdict = Verdict()
    try:
        entries, proofs = _shape(answer)
    except Malformed:
        verdict.anchor = "malformed"
        return verdict
    fault, root = (anchor_check or _anchor)(answer["anchor"], pinned)
    verdict.anchor = fault
    records = {key[1:]: value for key, value in entries.items() if key[0] == TABLE_MALL_EVENTS}
    if fault is not None:
        verdict.steps = {event_id.hex(): "anchor" for event_id in records}
        return verdict
    proven: dict[bytes, bytes | None] = {}
    for key, proof_hex in proofs:
        try:
            proof = decode_proof(_hex(proof_hex))
        except (Malformed, DecodeError):
            verdict.faults.append("proof")
            continue
        value = entries.get(key)
        if verify_proof(root, key, value, proof):
            proven[key] = value
        else:
            verdict.faults.append("proof")

    def is_proven(key: bytes) -> bool:
        return key in entries and proven.get(key) == entries[key]

    checks: dict[bytes, list[str]] = {event_id: [] for event_id in records}
    decoded: dict[bytes, EventRecord | None] = {}
    for event_id, value in records.items():
        try:
            decoded[event_id] = decode_event_record(value, check_payload=False)
        except DecodeError:
            decoded[event_id] = None
    items: dict[bytes, Item | None] = {}
    for key, value in entries.items():
        if key[0] == TABLE_MALL_ITEMS:
            try:
                items[key[1:]] = decode_item(value) if is_proven(key) else None
            except DecodeError:
                items[key[1:]] = None
    listed: dict[bytes, dict[int, tuple[bytes, bytes]]] = {}  # item -> seq -> (id, history)
    claimed: dict[bytes, dict[int, bytes]] = {}  # item -> seq -> history (every index entry)
    for key, value in entries.items():
        if key[0] != TABLE_MALL_ITEM_EVENTS:
            continue
        item_key, seq = key[1:1 + HASH_BYTES], int.from_bytes(key[1 + HASH_BYTES:], "big")
        try:
            event_id, history = decode_index_entry(value)
        except DecodeError:
            verdict.faults.append("index_entry")
            continue
        claimed.setdefault(item_key, {})[seq] = history
        if event_id in records:
            listed.setdefault(item_key, {})[seq] = (event_id, history)
        elif not is_proven(key):
            verdict.faults.append("index_entry")
    tails: dict[bytes, set[int]] = {}
    for item_key, by_seq in listed.items():
        tails[item_key], broken = _check_runs(item_key, by_seq, claimed.get(item_key, {}),
                                              items.get(item_key), records, decoded,
                                              is_proven, checks)
        if broken:
            verdict.lists[item_key.hex()] = broken
    declared: dict[bytes, bytes] = {}
    for key, value in entries.items():
        if key[0] != TABLE_MALL_DECLARATIONS:
            continue
        if not is_proven(key) or len(value) != 1 + HASH_BYTES or value[0] != 1:
            verdict.faults.append("marker")
            continue
        declaration = value[1:]
        record = decoded.get(declaration)
        if record is None or event_id_of(record.recorder, record.payload) != declaration:
            verdict.faults.append("marker")
            continue
        declared[key[1:]] = declaration
        checks[declaration].append("")
    for event_id, found in checks.items():
        verdict.steps[event_id.hex()] = _step_code(
            event_id, found, decoded[event_id], listed, tails, is_proven, proven)
    for item_key, code in _completeness(answer, listed, items, decoded).items():
        verdict.lists.setdefault(item_key, code)
    verdict.ok = (not verdict.faults and bool(verdict.steps) and not verdict.lists
                  and all(code == "" for code in verdict.steps.values()))
    return verdict


def _step_code(event_id: bytes, found: list[str], record: EventRecord | None,
               listed: dict[bytes, dict[int, tuple[bytes, bytes]]],
               tails: dict[bytes, set[int]], is_proven: Any,
               proven: dict[bytes, bytes | None]) -> str:
    """A step is verified when one of its listings (or its marker) authenticated its record
    and it is readable and its error declaration is shown or proven absent; otherwise the
    code of its first real failure ("later_chain" only when there is no other)."""
    if "" not in found:
        failed = [code for code in found if code != "later_chain"] or found or ["unfixed"]
        return failed[0]
    if record is not None and record.kind != KIND_ERROR_DECLARATION:
        in_tail = any(event_id == by_seq[seq][0] for item_key, by_seq in listed.items()
                      for seq in tails[item_key])
        marker = keys.declaration(event_id)
        if not in_tail and not is_proven(marker) and not (
                marker in proven and proven[marker] is None):
            return "declaration_unproven"
    return "" if _readable(record) else "unreadable_event"


def _readable(record: EventRecord | None) -> bool:
    if record is None:
        return False
    try:
        record.declaration() if record.kind == KIND_ERROR_DECLARATION else record.event()
    except DecodeError:
        return False
    return True


def _check_runs(item_key: bytes, by_seq: dict[int, tuple[bytes, bytes]],
                claimed: dict[int, bytes], item: Item | None, records: dict[bytes, bytes],
                decoded: dict[bytes, EventRecord | None], is_proven: Any,
                checks: dict[bytes, list[str]]) -> tuple[set[int], str]:
    """Check each run of consecutive listed positions backwards from the proven entry that
    ends it; record a code per listing in `checks`. The positions of the run that ends at
    the item's last event (the tail), and the first failing listing's code ("" if none)."""
    if item is None:
        for event_id, _ in by_seq.values():
            checks[event_id].append("item_unproven")
        return set(), "item_unproven"
    codes: list[str] = []
    count = item.event_count
    runs: list[list[int]] = []
    for seq in sorted(by_seq):
        if seq >= count:
            checks[by_seq[seq][0]].append("beyond_count")
            codes.append("beyond_count")
        elif runs and runs[-1][-1] == seq - 1:
            runs[-1].append(seq)
        else:
            runs.append([seq])
    tail: set[int] = set()
    for run in runs:
        first, last = run[0], run[-1]
        if last == count - 1:
            expected = item.history
            tail = set(run)
        elif is_proven(keys.item_event(item_key, last)):
            expected = by_seq[last][1]
        else:
            for seq in run:
                checks[by_seq[seq][0]].append("unanchored")
            codes.append("unanchored")
            continue
        start: bytes | None = EMPTY_HISTORY
        if first > 0:
            before = keys.item_event(item_key, first - 1)
            start = claimed[first - 1] if is_proven(before) else None
        broken = False
        for seq in reversed(run):
            event_id, history = by_seq[seq]
            if broken:
                checks[event_id].append("later_chain")
                continue
            previous = start if seq == first else by_seq[seq - 1][1]
            code = ""
            if history != expected or (previous is not None and next_history(
                    previous, records[event_id]) != expected):
                code = "chain"
                broken = True
            elif previous is None:
                code = "start_unproven"
            elif decoded[event_id] is None:
                code = "record_unreadable"
            elif event_id_of(decoded[event_id].recorder, decoded[event_id].payload) != event_id:
                code = "record_id"
            checks[event_id].append(code)
            if code:
                codes.append(code)
            if previous is not None:
                expected = previous
    return tail, codes[0] if codes else ""


def _completeness(answer: dict[str, Any],
                  listed: dict[bytes, dict[int, tuple[bytes, bytes]]],
                  items: dict[bytes, Item | None],
                  decoded: dict[bytes, EventRecord | None]) -> dict[str, str]:
    """Item key (hex) -> why its history is not whole where the page needs it whole."""
    incomplete: dict[str, str] = {}
    root = bytes.fromhex(answer["key"])
    root_item = items.get(root)
    try:
        named = keys.item_key(answer["item"])
    except ValueError:
        named = b""
    if root_item is None or named != root or root_item.uri != answer["item"]:
        incomplete[root.hex()] = "root_unproven"
    elif sorted(listed.get(root, {})) != list(range(root_item.event_count)):
        incomplete[root.hex()] = "root_partial"
    for item_key, by_seq in listed.items():
        for event_id, _ in by_seq.values():
            event = _linking(decoded.get(event_id))
            if event is None:
                continue
            outputs = (*event.out_epcs, *(q.epc_class for q in event.out_quantities))
            if event.kind == KIND_TRANSFORMATION and any(
                    keys.item_key(uri) == item_key for uri in outputs):
                for uri in (*event.epcs, *(q.epc_class for q in event.quantities)):
                    source = keys.item_key(uri)
                    at = _seq_of(listed.get(source, {}), event_id)
                    if at is None or any(seq not in listed[source] for seq in range(at)):
                        incomplete.setdefault(source.hex(), "input_partial")
            elif event.kind == KIND_AGGREGATION and event.action == ACTION_ADD and any(
                    keys.item_key(uri) == item_key for uri in event.epcs):
                container = keys.item_key(event.parent)
                if not _packed_run(listed.get(container, {}), items.get(container), event_id,
                                   item_key, decoded):
                    incomplete.setdefault(container.hex(), "container_partial")
    return incomplete


def _linking(record: EventRecord | None) -> Any:
    if record is None or record.kind not in (KIND_TRANSFORMATION, KIND_AGGREGATION):
        return None
    try:
        return record.event()
    except DecodeError:
        return None


def _seq_of(by_seq: dict[int, tuple[bytes, bytes]], event_id: bytes) -> int | None:
    for seq, (listed_id, _) in by_seq.items():
        if listed_id == event_id:
            return seq
    return None


def _packed_run(by_seq: dict[int, tuple[bytes, bytes]], container: Item | None,
                event_id: bytes, item_key: bytes,
                decoded: dict[bytes, EventRecord | None]) -> bool:
    at = _seq_of(by_seq, event_id)
    if at is None or container is None:
        return False
    seq = at
    while seq < container.event_count - 1:
        seq += 1
        if seq not in by_seq:
            return False
        event = _linking(decoded.get(by_seq[seq][0]))
        if event is not None and event.kind == KIND_AGGREGATION and \
                event.action == ACTION_DELETE and any(
                    keys.item_key(uri) == item_key for uri in event.epcs):
            return True
    return True
