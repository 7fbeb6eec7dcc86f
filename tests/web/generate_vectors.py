"""Generate the cross-language vectors of the browser's verifier (tests/web/vectors/).

Each case is run through chainmall's real Python code, and its verdict is
written next to it; `web/test/*.test.ts` checks that the TypeScript verifier
gives the same verdict on every one:

* `verify_vectors.json`: domain keys, addresses, state proofs of presence
  and absence and every kind of tampering (core/state/root: decode_proof,
  verify_proof), header encodings and block hashes (core/block.py), commit
  certificates (the rule of docs/page.md section 3, composed below from
  core/block.py, core/genesis.py and core/keys.py), tx Merkle proofs
  (core/merkle.py), and the mall's trace records (mall_vectors.py: vocabularies,
  item keys, event ids, history hashes, items, index entries, event records,
  event payloads and declarations, valid and broken, decoded by core/mall);
* `trace_vectors.json`: `mall.item_trace` answers of a node's ledger holding
  the silver-jewellery story (built deterministically), and altered copies,
  each with the verdict of page_verdict.py.

Signatures come from core/keys.py (libsodium). The browser verifies under
ZIP 215; on these cases (honest signatures and altered bytes) both rules
agree, and the speccheck test pins where they differ.

    .venv/bin/python tests/web/generate_vectors.py          # rewrite the files
    .venv/bin/python tests/web/generate_vectors.py --check  # exit 1 if stale

Regenerate only in a commit that says why.
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path
from typing import Any

import blake3

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from chainmall.core import constants  # noqa: E402
from chainmall.core.address import address_from_public_key, encode_address  # noqa: E402
from chainmall.core.block import decode_header  # noqa: E402
from chainmall.core.errors import DecodeError  # noqa: E402
from chainmall.core.hashing import BLOCK_HASH_KEY, digest, domain_key  # noqa: E402
from chainmall.core.merkle import merkle_proof, merkle_root, merkle_verify  # noqa: E402
from chainmall.core.state.root import (  # noqa: E402
    EMPTY_ROOT,
    decode_proof,
    internal_hash,
    key_path,
    leaf_hash,
    value_hash,
    verify_proof,
)
from mall_vectors import record_vectors, story_answers, trace_vectors  # noqa: E402
from page_verdict import commit_verdict  # noqa: E402
from web_chain import ProvenState, filler_entries, key_of, make_anchor  # noqa: E402

VECTORS = HERE / "vectors" / "verify_vectors.json"
TRACE_VECTORS = HERE / "vectors" / "trace_vectors.json"
SOURCE = "tests/web/generate_vectors.py (chainmall's Python code gives every verdict)"


def flip(data: bytes, index: int, mask: int = 0x01) -> bytes:
    """`data` with one byte changed (`index` may be negative)."""
    out = bytearray(data)
    out[index] ^= mask
    return bytes(out)


# --- state proofs -------------------------------------------------------------


def proof_verdict(root: bytes, key: bytes, value: bytes | None, proof: bytes) -> dict[str, bool]:
    """What Python says: whether the proof decodes, and whether it verifies."""
    try:
        decoded = decode_proof(proof)
    except DecodeError:
        return {"decodes": False, "valid": False}
    return {"decodes": True, "valid": verify_proof(root, key, value, decoded)}


def proof_case(name: str, root: bytes, key: bytes, value: bytes | None, proof: bytes) -> dict:
    return {"name": name, "root": root.hex(), "key": key.hex(),
            "value": None if value is None else value.hex(), "proof": proof.hex(),
            **proof_verdict(root, key, value, proof)}


def _proof_tamperings(name: str, root: bytes, key: bytes, value: bytes | None,
                      proof: bytes) -> list[dict]:
    """A valid case and each way of breaking it that applies to it."""
    decoded = decode_proof(proof)
    has_leaf = decoded.leaf is not None
    siblings_at = 4 + (64 if has_leaf else 0)
    count = len(decoded.siblings)
    cases = [proof_case(name, root, key, value, proof)]

    def add(what: str, *args: Any) -> None:
        cases.append(proof_case(f"{name}: {what}", *args))

    add("root flipped", flip(root, 0), key, value, proof)
    add("root flipped (last byte)", flip(root, -1, 0x80), key, value, proof)
    add("other key", root, key + b"x", value, proof)
    if value is not None:
        add("value byte flipped", root, key, flip(value, 0) if value else b"\x00", proof)
        add("claimed absent", root, key, None, proof)
    else:
        add("claimed present", root, key, b"", proof)
    if has_leaf:
        add("leaf path flipped", root, key, value, flip(proof, 2))
        add("leaf value hash flipped", root, key, value, flip(proof, 34 + 31))
    for position in sorted({0, count // 2, count - 1}) if count else []:
        at = siblings_at + 32 * position + 7
        add(f"sibling {position} flipped", root, key, value, flip(proof, at))
    if count:
        zeroed = bytearray(proof)
        zeroed[siblings_at + 32 * (count - 1) : siblings_at + 32 * count] = bytes(32)
        add("last sibling Empty (non-canonical)", root, key, value, bytes(zeroed))
        add("truncated by one sibling", root, key, value,
            proof[:siblings_at - 2] + struct.pack(">H", count - 1) + proof[siblings_at:-32])
        add("one sibling cut short", root, key, value, proof[:-1])
    add("trailing byte", root, key, value, proof + b"\x00")
    add("version 2", root, key, value, b"\x02" + proof[1:])
    add("has_leaf 2", root, key, value, proof[:1] + b"\x02" + proof[2:])
    add("count says one more", root, key, value,
        proof[:siblings_at - 2] + struct.pack(">H", count + 1) + proof[siblings_at:])
    add("extra Empty sibling above the root", root, key, value,
        proof[:siblings_at - 2] + struct.pack(">H", count + 1) + bytes(32) + proof[siblings_at:])
    return cases


def state_proof_cases() -> list[dict]:
    cases: list[dict] = []
    # The worked example of docs/state-root.md section 8.
    example = {b"alice": b"100", b"bob": b"250", b"carol": b"7"}
    state = ProvenState(example)
    for key, value in [(b"bob", b"250"), (b"alice", b"100"), (b"carol", b"7"),
                       (b"grace", None), (b"erin", None)]:
        kind = "present" if value is not None else "absent"
        cases += _proof_tamperings(f"example {key.decode()} {kind}", state.root, key, value,
                                   state.prove(key))
    # A larger state: random accounts, a maximal key and a large value.
    entries = filler_entries(300)
    long_key = b"\x07" * constants.STATE_KEY_BYTES_MAX
    big_value = bytes(range(256)) * 256
    entries[long_key] = b"long key"
    entries[b"big value"] = big_value
    entries[b"empty value"] = b""
    state = ProvenState(entries)
    for name, key, value in [
        ("300 entries: an account", next(iter(entries)), entries[next(iter(entries))]),
        ("300 entries: 128-byte key", long_key, b"long key"),
        ("300 entries: empty value", b"empty value", b""),
        ("300 entries: absent key", b"nobody", None),
    ]:
        cases += _proof_tamperings(name, state.root, key, value, state.prove(key))
    # 64 KiB: only the value-bound cases, to keep the file small.
    big_proof = state.prove(b"big value")
    cases.append(proof_case("64 KiB value", state.root, b"big value", big_value, big_proof))
    cases.append(proof_case("64 KiB value: last byte flipped", state.root, b"big value",
                            flip(big_value, -1), big_proof))
    proof = state.prove(long_key)
    cases.append(proof_case("129-byte key", state.root, long_key + b"\x07", None, proof))
    cases.append(proof_case("value over 64 KiB", state.root, b"big value", big_value + b"\x00",
                            big_proof))
    cases.append(proof_case("root of 31 bytes", state.root[:31], long_key, b"long key", proof))
    # One entry: the root is its leaf, proofs have no siblings; the empty state.
    single = ProvenState({b"only": b"one"})
    cases += _proof_tamperings("single entry", single.root, b"only", b"one", single.prove(b"only"))
    cases += _proof_tamperings("single entry, absent key", single.root, b"other", None,
                               single.prove(b"other"))
    cases += non_canonical_cases()
    empty_proof = bytes([1, 0, 0, 0])
    cases.append(proof_case("empty state, absent", bytes(32), b"any", None, empty_proof))
    cases.append(proof_case("empty state, claimed present", bytes(32), b"any", b"", empty_proof))
    return cases


def non_canonical_cases() -> list[dict]:
    """Roots of trees the state machine never builds, whose proofs hash correctly but
    break the shape rules of docs/state-root.md section 6 (so only those rules refuse them)."""
    key, value = b"lonely", b"leaf"
    path = key_path(key)
    leaf = leaf_hash(path, value_hash(value))
    left_first = path[0] < 0x80  # bit 0 of the key's path
    pair = (leaf, EMPTY_ROOT) if left_first else (EMPTY_ROOT, leaf)
    beside_empty = internal_hash(*pair)
    proof = bytes([1, 1]) + path + value_hash(value) + struct.pack(">H", 1) + EMPTY_ROOT
    cases = [proof_case("non-canonical: a leaf beside Empty", beside_empty, key, value, proof)]
    # Absence shown by a leaf that is not on the key's path: its path starts with the other bit.
    other_key = next(k for k in (b"other %d" % i for i in range(100))
                     if (key_path(k)[0] < 0x80) != left_first)
    other_path, other_value = key_path(other_key), value_hash(b"x")
    third = leaf_hash(key_path(b"third"), value_hash(b"y"))
    other_leaf = leaf_hash(other_path, other_value)
    root = internal_hash(other_leaf, third) if left_first else internal_hash(third, other_leaf)
    proof = bytes([1, 1]) + other_path + other_value + struct.pack(">H", 1) + third
    cases.append(proof_case("non-canonical: absence by a leaf off the key's path", root, key,
                            None, proof))
    return cases


# --- headers, validator sets, commit certificates ------------------------------


def commit_case(name: str, header: bytes, commit: bytes, validators: bytes) -> dict:
    return {"name": name, "header": header.hex(), "commit": commit.hex(),
            "validators": validators.hex(), **commit_verdict(header, commit, validators)}


HEADER_FIELDS = [  # (name, offset after the chain id, length) of docs/formats.md section 6
    ("height", 0, 8), ("prev_hash", 8, 32), ("timestamp_ms", 40, 8), ("proposer", 48, 32),
    ("tx_count", 80, 4), ("tx_root", 84, 32), ("state_root", 116, 32),
    ("validator_set_hash", 148, 32), ("round", 180, 4),
]


def commit_cases() -> list[dict]:
    chain = "chainmall-test"
    root = blake3.blake3(b"a state root").digest()
    four = [(key_of(f"validator-{i}"), 10) for i in range(4)]
    cases = []

    def anchor_bytes(validators, signers, **kwargs) -> tuple[bytes, bytes, bytes]:
        anchor = make_anchor(chain, kwargs.pop("height", 77), root, validators, signers, **kwargs)
        return anchor.header.encode(), anchor.commit.encode(), anchor.validators_encoded

    header, commit, validators = anchor_bytes(four, [0, 1, 3])
    cases.append(commit_case("3 of 4 equal validators", header, commit, validators))
    cases.append(commit_case("all 4 sign", *anchor_bytes(four, [0, 1, 2, 3])))
    cases.append(commit_case("2 of 4: exactly half", *anchor_bytes(four, [0, 2])))
    three = four[:3]
    cases.append(commit_case("2 of 3: exactly 2/3 is not enough", *anchor_bytes(three, [0, 1])))
    cases.append(commit_case("3 of 3", *anchor_bytes(three, [0, 1, 2])))
    uneven = [(four[0][0], 67), (four[1][0], 33)]
    cases.append(commit_case("one validator with 67 of 100", *anchor_bytes(uneven, [0])))
    uneven = [(four[0][0], 66), (four[1][0], 33)]
    cases.append(commit_case("one validator with 66 of 99", *anchor_bytes(uneven, [0])))
    cases.append(commit_case("no signatures", *anchor_bytes(four, [])))
    single = [(four[0][0], 1)]
    cases.append(commit_case("single validator", *anchor_bytes(single, [0])))
    cases.append(commit_case("round 3, height 2^40", *anchor_bytes(
        four, [1, 2, 3], round_number=3, height=2**40)))
    chain_at = 2 + len(chain)
    for field, offset, length in HEADER_FIELDS:
        changed = flip(header, chain_at + offset + length - 1)
        cases.append(commit_case(f"header {field} changed", changed, commit, validators))
    cases.append(commit_case("header chain id changed", header[:2] + b"d" + header[3:], commit,
                             validators))
    sig_at = 1 + 8 + 4 + 32 + 2 + 2  # the first signature's first byte
    for index, where in ((0, sig_at), (0, sig_at + 63), (2, sig_at + 2 * 66 + 40)):
        cases.append(commit_case(f"signature {index} byte {where - sig_at - 66 * index} flipped",
                                 header, flip(commit, where), validators))
    swapped = bytearray(commit)
    swapped[sig_at : sig_at + 64], swapped[sig_at + 66 : sig_at + 130] = (
        commit[sig_at + 66 : sig_at + 130], commit[sig_at : sig_at + 64])
    cases.append(commit_case("signatures of two validators swapped", header, bytes(swapped),
                             validators))
    cases.append(commit_case("commit height changed", header, flip(commit, 8), validators))
    cases.append(commit_case("commit round changed", header, flip(commit, 12), validators))
    cases.append(commit_case("commit block hash changed", header, flip(commit, 13), validators))
    renumbered = bytearray(commit)
    renumbered[sig_at - 2 + 2 * 66 : sig_at + 2 * 66] = struct.pack(">H", 4)
    cases.append(commit_case("signer index past the set", header, bytes(renumbered), validators))
    repeated = bytearray(commit)
    repeated[sig_at - 2 + 66 : sig_at + 66] = struct.pack(">H", 0)
    cases.append(commit_case("signer index repeated", header, bytes(repeated), validators))
    other = [(key_of(f"impostor-{i}"), 10) for i in range(4)]
    _, _, other_set = anchor_bytes(other, [0])
    cases.append(commit_case("wrong validator set (other keys)", header, commit, other_set))
    reweighted = bytearray(validators)
    reweighted[2 + 32 + 7] = 11  # validator 0 gets power 11
    cases.append(commit_case("wrong validator set (power changed)", header, commit,
                             bytes(reweighted)))
    cases.append(commit_case("validator set with a trailing byte", header, commit,
                             validators + b"\x00"))
    zero = bytearray(validators)
    zero[2 + 32 : 2 + 40] = bytes(8)
    cases.append(commit_case("validator with power 0", header, commit, bytes(zero)))
    twice = validators[:2] + validators[2:42] + validators[2:42]
    cases.append(commit_case("validator listed twice", header, commit,
                             struct.pack(">H", 2) + twice[2:]))
    cases.append(commit_case("impostors certify their own header (consistent forgery)",
                             *anchor_bytes(other, [0, 1, 2])))
    return cases


def header_cases() -> list[dict]:
    anchor = make_anchor("chainmall-test", 9, bytes(range(32)), [(key_of("validator-0"), 1)], [0])
    header = anchor.header.encode()
    cases = [{"name": "valid", "encoded": header.hex(), "decodes": True,
              "hash": digest(header, BLOCK_HASH_KEY).hex()}]
    broken = {
        "version 2": b"\x02" + header[1:],
        "chain id with upper case": header[:2] + b"C" + header[3:],
        "chain id length 0": b"\x01\x00" + header[2 + 14:],
        "chain id length 33": b"\x01\x21" + b"a" * 33 + header[2 + 14:],
        "tx count 20001": header[:2 + 14 + 80] + struct.pack(">I", 20_001) + header[2 + 14 + 84:],
        "truncated": header[:-1],
        "trailing byte": header + b"\x00",
    }
    for name, data in broken.items():
        try:
            decode_header(data)
            decodes = True
        except DecodeError:
            decodes = False
        cases.append({"name": name, "encoded": data.hex(), "decodes": decodes,
                      "hash": digest(data, BLOCK_HASH_KEY).hex() if decodes else None})
    return cases


# --- tx Merkle proofs -----------------------------------------------------------


def merkle_cases() -> list[dict]:
    cases = []

    def case(name: str, root: bytes, leaf: bytes, index: int, count: int, proof: list) -> None:
        cases.append({"name": name, "root": root.hex(), "leaf": leaf.hex(), "index": index,
                      "count": count, "proof": [p.hex() for p in proof],
                      "valid": merkle_verify(root, leaf, index, count, proof)})

    for count in (1, 2, 3, 5, 8, 9, 17):
        leaves = b"".join(blake3.blake3(b"tx %d" % i).digest() for i in range(count))
        root = merkle_root(leaves)
        for index in sorted({0, count // 2, count - 1}):
            leaf = leaves[32 * index : 32 * index + 32]
            proof = merkle_proof(leaves, index)
            name = f"{index} of {count}"
            case(name, root, leaf, index, count, proof)
            case(f"{name}: leaf flipped", root, flip(leaf, 3), index, count, proof)
            case(f"{name}: root flipped", flip(root, 31), leaf, index, count, proof)
            if proof:
                case(f"{name}: sibling flipped", root, leaf, index, count,
                     [flip(proof[0], 0), *proof[1:]])
                case(f"{name}: proof short", root, leaf, index, count, proof[:-1])
            case(f"{name}: proof long", root, leaf, index, count, [*proof, root])
            case(f"{name}: next index", root, leaf, index + 1, count, proof)
            case(f"{name}: count + 1", root, leaf, index, count + 1, proof)
            case(f"{name}: count * 2", root, leaf, index, count * 2, proof)
        case(f"index = count {count}", root, leaves[:32], count, count, [])
    return cases


# --- the files --------------------------------------------------------------------------


def verify_vectors(mall_entries: dict[bytes, bytes]) -> dict[str, Any]:
    contexts = {
        "address": constants.ADDRESS_CONTEXT, "blockHash": constants.BLOCK_HASH_CONTEXT,
        "merkleLeaf": constants.MERKLE_LEAF_CONTEXT, "merkleNode": constants.MERKLE_NODE_CONTEXT,
        "statePath": constants.STATE_PATH_CONTEXT, "stateValue": constants.STATE_VALUE_CONTEXT,
        "stateLeaf": constants.STATE_LEAF_CONTEXT, "stateNode": constants.STATE_NODE_CONTEXT,
        "validatorSet": constants.VALIDATOR_SET_CONTEXT,
    }
    addresses = []
    for name in ("alice", "validator-0", "merchant"):
        public_key = key_of(name).public_key
        addresses.append({"public_key": public_key.hex(),
                          "address": encode_address(address_from_public_key(public_key))})
    alice = bytes.fromhex("03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8")
    addresses.append({"public_key": alice.hex(),
                      "address": encode_address(address_from_public_key(alice))})
    return {
        "source": SOURCE,
        "domain_keys": {name: {"context": context, "key": domain_key(context).hex()}
                        for name, context in contexts.items()},
        "addresses": addresses,
        "state_proofs": state_proof_cases(),
        "headers": header_cases(),
        "commits": commit_cases(),
        "merkle": merkle_cases(),
        "mall": record_vectors(mall_entries),
    }


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    ring, packed, entries, wrong = story_answers()
    outputs = {VECTORS: render(verify_vectors(entries)),
               TRACE_VECTORS: render(trace_vectors(ring, packed, wrong))}
    if argv[1:] == ["--check"]:
        stale = [path.name for path, text in outputs.items()
                 if not path.exists() or path.read_text(encoding="utf-8") != text]
        if stale:
            print(f"stale: {', '.join(stale)}; run tests/web/generate_vectors.py")
            return 1
        return 0
    for path, text in outputs.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(HERE.parent.parent)} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
