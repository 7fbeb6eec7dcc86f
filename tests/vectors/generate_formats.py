"""Generate tests/vectors/format_vectors.json: keys, addresses, txs, headers, commits, blocks.

Independent of chainmall's code on purpose: the encodings are written out
with `struct` from the layout in docs/formats.md, hashes come from the
`blake3` package, signatures from PyNaCl, the address text from a bech32m
encoder written here from BIP-350, and tx roots from the top-down Merkle
rule of `generate_merkle.py` (itself chainmall-free). The constants are
repeated here; the tests check them against `chainmall.core.constants`.
Everything is deterministic: fixed seeds, and Ed25519 signing is
deterministic.

    .venv/bin/python tests/vectors/generate_formats.py          # rewrite the file
    .venv/bin/python tests/vectors/generate_formats.py --check  # exit 1 if stale

Regenerate only in a commit that says why (a format change).
"""

from __future__ import annotations

import importlib.util
import json
import struct
import sys
from pathlib import Path

import blake3
import nacl.signing

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "format_vectors.json"

TX_VERSION = 1
BLOCK_VERSION = 1
COMMIT_VERSION = 1
TX_SIGN_DOMAIN = b"chainmall/tx/sign/v1\x00"
ADDRESS_CONTEXT = "chainmall 2026-11 address v1"
BLOCK_HASH_CONTEXT = "chainmall 2026-11 block header v1"
ADDRESS_HRP = "cm"
TX_BYTES_MAX = 1088
BLOCK_TXS_MAX = 20_000
U64_MAX = 2**64 - 1

ADDRESS_KEY = blake3.blake3(b"", derive_key_context=ADDRESS_CONTEXT).digest()
BLOCK_HASH_KEY = blake3.blake3(b"", derive_key_context=BLOCK_HASH_CONTEXT).digest()

CHAIN = "chainmall-test"
SEEDS = {"alice": bytes(range(32)), "bob": bytes(range(32, 64))}


def _load_merkle_generator():
    spec = importlib.util.spec_from_file_location("generate_merkle", HERE / "generate_merkle.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MERKLE = _load_merkle_generator()


# --- primitives ---------------------------------------------------------------


def b3(data: bytes, key: bytes | None = None) -> bytes:
    return blake3.blake3(data, key=key).digest() if key else blake3.blake3(data).digest()


def public_key(seed: bytes) -> bytes:
    return bytes(nacl.signing.SigningKey(seed).verify_key)


def sign(seed: bytes, message: bytes) -> bytes:
    return nacl.signing.SigningKey(seed).sign(message).signature


def address(pk: bytes) -> bytes:
    return b3(pk, ADDRESS_KEY)[:20]


_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def bech32m_encode(hrp: str, data: bytes) -> str:
    """BIP-350 encoding of 8-bit data (regrouped to 5 bits, zero padded)."""
    bits = "".join(f"{byte:08b}" for byte in data)
    bits += "0" * (-len(bits) % 5)
    values = [int(bits[i : i + 5], 2) for i in range(0, len(bits), 5)]

    def polymod(items: list[int]) -> int:
        generators = [0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3]
        chk = 1
        for item in items:
            top = chk >> 25
            chk = (chk & 0x1FFFFFF) << 5 ^ item
            for i in range(5):
                chk ^= generators[i] if (top >> i) & 1 else 0
        return chk

    expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    mod = polymod(expanded + values + [0] * 6) ^ 0x2BC830A3
    checksum = [(mod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_CHARSET[v] for v in values + checksum)


# --- transactions ---------------------------------------------------------------


def tx_body(
    chain_id: bytes,
    tx_type: int,
    sender: bytes,
    nonce: int,
    fee: int,
    expiry_height: int,
    payload: bytes,
    *,
    version: int = TX_VERSION,
    payload_len: int | None = None,
) -> bytes:
    """The body layout of docs/formats.md; the keywords let a vector break one rule."""
    head = struct.pack(">BB", version, len(chain_id)) + chain_id
    fixed = struct.pack(">H32sQQQI", tx_type, sender, nonce, fee, expiry_height,
                        len(payload) if payload_len is None else payload_len)
    return head + fixed + payload


def tx_sign_bytes(chain_id: bytes, tx_id: bytes) -> bytes:
    return TX_SIGN_DOMAIN + bytes([len(chain_id)]) + chain_id + tx_id


def make_tx(name: str, note: str, key: str, chain_id: str, tx_type: int, nonce: int, fee: int,
            expiry_height: int, payload: bytes) -> dict:
    seed = SEEDS[key]
    sender = public_key(seed)
    body = tx_body(chain_id.encode(), tx_type, sender, nonce, fee, expiry_height, payload)
    tx_id = b3(body)
    message = tx_sign_bytes(chain_id.encode(), tx_id)
    signature = sign(seed, message)
    return {
        "name": name,
        "note": note,
        "chain_id": chain_id,
        "tx_type": tx_type,
        "sender": sender.hex(),
        "nonce": nonce,
        "fee": fee,
        "expiry_height": expiry_height,
        "payload": payload.hex(),
        "body": body.hex(),
        "tx_id": tx_id.hex(),
        "sign_bytes": message.hex(),
        "signature": signature.hex(),
        "encoded": (body + signature).hex(),
        "signature_valid": True,
    }


def relabel(tx: dict, name: str, note: str, **changes: object) -> dict:
    """`tx` with fields changed but its signature kept: decodes, fails verification."""
    fields = {**tx, **changes}
    chain_id = str(fields["chain_id"]).encode()
    body = tx_body(chain_id, fields["tx_type"], bytes.fromhex(fields["sender"]), fields["nonce"],
                   fields["fee"], fields["expiry_height"], bytes.fromhex(fields["payload"]))
    tx_id = b3(body)
    signature = bytes.fromhex(fields["signature"])
    return {**fields, "name": name, "note": note, "body": body.hex(), "tx_id": tx_id.hex(),
            "sign_bytes": tx_sign_bytes(chain_id, tx_id).hex(),
            "encoded": (body + signature).hex(), "signature_valid": False}


def valid_txs() -> list[dict]:
    bob = address(public_key(SEEDS["bob"]))
    transfer_payload = bob + struct.pack(">Q", 250_000)
    transfer = make_tx("transfer", "tx type 1 (TRANSFER): payload = recipient address || u64 "
                       "amount", "alice", CHAIN, 1, 0, 10, 1000, transfer_payload)
    minimal = make_tx("minimal", "shortest tx: 1-byte chain id, empty payload (TX_BYTES_MIN)",
                      "alice", "a", 0, 0, 0, 0, b"")
    maximal = make_tx("maximal", "longest valid tx (1056 bytes): 32-byte chain id, 896-byte "
                      "payload, every integer at its maximum", "bob",
                      "abcdefghijklmnopqrstuvwxyz-01234", 0xFFFF, U64_MAX, U64_MAX, U64_MAX,
                      bytes(i % 251 for i in range(896)))
    reply = make_tx("transfer_back", "bob pays alice 1000", "bob", CHAIN, 1, 0, 12, 2000,
                    address(public_key(SEEDS["alice"])) + struct.pack(">Q", 1000))
    sig = bytearray.fromhex(transfer["signature"])
    sig[0] ^= 0x01
    bad_sig = {**transfer, "name": "transfer_bad_signature",
               "note": "transfer with the first signature byte flipped: decodes, fails verify",
               "signature": sig.hex(), "encoded": transfer["body"] + sig.hex(),
               "signature_valid": False}
    other_chain = relabel(transfer, "transfer_other_chain", "transfer re-labelled to chain "
                          "'chainmall-prod', signature kept: decodes, fails verify",
                          chain_id="chainmall-prod")
    return [transfer, reply, minimal, maximal, bad_sig, other_chain]


def invalid_txs(transfer: dict, maximal: dict) -> list[dict]:
    good = bytes.fromhex(transfer["encoded"])
    sender = bytes.fromhex(transfer["sender"])
    sig = bytes(64)
    longest = bytes.fromhex(maximal["encoded"])

    def raw(chain_id: bytes, payload: bytes = b"", **kw: int) -> bytes:
        return tx_body(chain_id, 1, sender, 0, 0, 0, payload, **kw) + sig

    cases = [
        ("empty", b"", "DecodeError", "no bytes at all"),
        ("version_0", bytes([0]) + good[1:], "DecodeError", "version byte 0"),
        ("version_2", bytes([2]) + good[1:], "DecodeError", "version byte 2"),
        ("chain_id_length_0", raw(b""), "DecodeError", "L = 0"),
        ("chain_id_length_33", raw(b"a" * 33), "DecodeError", "L = 33"),
        ("chain_id_upper_case", raw(b"Chainmall"), "DecodeError", "chain id byte 'C'"),
        ("chain_id_underscore", raw(b"chain_mall"), "DecodeError", "chain id byte '_'"),
        ("chain_id_nul", raw(b"chain\x00"), "DecodeError", "chain id byte 0x00"),
        ("payload_length_897", raw(b"a", bytes(897)), "DecodeError", "P = 897"),
        ("payload_length_short", raw(b"a", bytes(10), payload_len=9), "DecodeError",
         "P one less than the payload: a trailing byte is left"),
        ("payload_length_long", raw(b"a", bytes(10), payload_len=11), "DecodeError",
         "P one more than the payload: the signature is truncated"),
        ("payload_length_huge", raw(b"a", bytes(10), payload_len=0xFFFFFFFF), "DecodeError",
         "P = 2^32 - 1"),
        ("trailing_byte", good + b"\x00", "DecodeError", "one byte after the signature"),
        ("truncated_signature", good[:-1], "DecodeError", "signature one byte short"),
        ("truncated_header", good[:40], "DecodeError", "cut inside the sender"),
        ("too_large", longest + bytes(TX_BYTES_MAX + 1 - len(longest)), "TxTooLarge",
         "the longest tx padded with zeros to TX_BYTES_MAX + 1 bytes"),
        ("too_large_bad_version", bytes([9]) * (TX_BYTES_MAX + 1), "TxTooLarge",
         "oversize is reported before any other fault"),
    ]
    return [{"name": n, "note": note, "encoded": data.hex(), "error": error}
            for n, data, error, note in cases]


# --- headers, commits, blocks ------------------------------------------------------


def header_bytes(h: dict, *, version: int = BLOCK_VERSION) -> bytes:
    chain_id = h["chain_id"].encode()
    return struct.pack(">BB", version, len(chain_id)) + chain_id + struct.pack(
        ">Q32sQ32sI32s32s32sI", h["height"], bytes.fromhex(h["prev_hash"]), h["timestamp_ms"],
        bytes.fromhex(h["proposer"]), h["tx_count"], bytes.fromhex(h["tx_root"]),
        bytes.fromhex(h["state_root"]), bytes.fromhex(h["validator_set_hash"]), h["round"])


def commit_bytes(c: dict, *, version: int = COMMIT_VERSION) -> bytes:
    out = struct.pack(">BQI32sH", version, c["height"], c["round"],
                      bytes.fromhex(c["block_hash"]), len(c["signatures"]))
    for s in c["signatures"]:
        out += struct.pack(">H", s["validator_index"]) + bytes.fromhex(s["signature"])
    return out


def block_bytes(header: bytes, txs: list[bytes], commit: bytes | None,
                *, count: int | None = None) -> bytes:
    out = header + struct.pack(">I", len(txs) if count is None else count)
    for tx in txs:
        out += struct.pack(">H", len(tx)) + tx
    return out + (b"\x00" if commit is None else b"\x01" + commit)


def make_block(name: str, note: str, height: int, round_number: int, txs: list[dict],
               signers: list[int] | None) -> dict:
    tx_ids = [bytes.fromhex(t["tx_id"]) for t in txs]
    header = {
        "chain_id": CHAIN,
        "height": height,
        "prev_hash": b3(b"chainmall format vector block %d" % (height - 1)).hex(),
        "timestamp_ms": 1_767_225_600_000 + 1000 * height,
        "proposer": public_key(SEEDS["alice"]).hex(),
        "tx_count": len(txs),
        "tx_root": MERKLE.root(tx_ids).hex(),
        "state_root": b3(b"chainmall format vector state %d" % height).hex(),
        "validator_set_hash": b3(b"chainmall format vector validators").hex(),
        "round": round_number,
    }
    encoded_header = header_bytes(header)
    block_hash = b3(encoded_header, BLOCK_HASH_KEY)
    commit = None
    if signers is not None:
        commit = {
            "height": height,
            "round": round_number,
            "block_hash": block_hash.hex(),
            # Opaque 64-byte values: what a commit signature signs is fixed with consensus.
            "signatures": [{"validator_index": i, "signature": (bytes([0xA0 + i]) * 64).hex()}
                           for i in signers],
        }
    encoded_commit = commit_bytes(commit) if commit else None
    return {
        "name": name,
        "note": note,
        "header": header,
        "header_encoded": encoded_header.hex(),
        "block_hash": block_hash.hex(),
        "txs": [t["name"] for t in txs],
        "commit": commit,
        "commit_encoded": encoded_commit.hex() if encoded_commit else None,
        "encoded": block_bytes(encoded_header, [bytes.fromhex(t["encoded"]) for t in txs],
                               encoded_commit).hex(),
    }


def invalid_blocks(block: dict, txs: dict[str, dict]) -> list[dict]:
    """Faults of `block` (two txs and a commit), one rule each."""
    header = bytes.fromhex(block["header_encoded"])
    tx_bytes = [bytes.fromhex(txs[n]["encoded"]) for n in block["txs"]]
    commit = block["commit"]

    def with_commit(signatures: list[tuple[int, int]], **changes: object) -> bytes:
        c = {**commit, **changes, "signatures": [
            {"validator_index": i, "signature": (bytes([fill]) * 64).hex()}
            for i, fill in signatures]}
        return block_bytes(header, tx_bytes, commit_bytes(c))

    good = bytes.fromhex(block["encoded"])
    h = block["header"]
    more_txs = header_bytes({**h, "tx_count": 3})
    too_many = header_bytes({**h, "tx_count": BLOCK_TXS_MAX + 1})
    bad_tx = bytes([2]) + tx_bytes[1][1:]
    long_tx = bytes(TX_BYTES_MAX + 1)
    cases = [
        ("header_version_0", header_bytes(h, version=0) + good[len(header):], "DecodeError",
         "header version byte 0"),
        ("tx_count_mismatch_body", block_bytes(header, tx_bytes, None, count=3),
         "DecodeError", "the u32 count after the header says 3, the header says 2"),
        ("tx_count_mismatch_header", more_txs + good[len(header):], "DecodeError",
         "the header says 3 txs, 2 follow"),
        ("tx_count_over_limit", too_many + good[len(header):], "BlockTooLarge",
         "the header says BLOCK_TXS_MAX + 1 txs"),
        ("malformed_tx", block_bytes(header, [tx_bytes[0], bad_tx], None), "DecodeError",
         "the second tx has version byte 2"),
        ("tx_too_large", block_bytes(header, [tx_bytes[0], long_tx], None), "TxTooLarge",
         "the second tx's length prefix is TX_BYTES_MAX + 1"),
        ("commit_flag_2", block_bytes(header, tx_bytes, None)[:-1] + b"\x02", "DecodeError",
         "commit flag byte 2"),
        ("commit_unsorted", with_commit([(1, 0xA1), (0, 0xA0)]), "DecodeError",
         "validator indexes 1, 0"),
        ("commit_duplicate", with_commit([(2, 0xA2), (2, 0xA3)]), "DecodeError",
         "validator index 2 twice"),
        ("commit_other_block", with_commit([(0, 0xA0)], block_hash=(bytes(32)).hex()),
         "DecodeError", "the commit certifies another block hash"),
        ("commit_other_height", with_commit([(0, 0xA0)], height=h["height"] + 1),
         "DecodeError", "the commit is for another height"),
        ("trailing_byte", good + b"\x00", "DecodeError", "one byte after the commit"),
        ("truncated", good[:-1], "DecodeError", "last commit byte missing"),
    ]
    return [{"name": n, "note": note, "encoded": data.hex(), "error": error}
            for n, data, error, note in cases]


def invalid_commits(block: dict) -> list[dict]:
    commit = block["commit"]
    good = bytes.fromhex(block["commit_encoded"])
    many = {**commit, "signatures": [{"validator_index": i, "signature": (bytes(64)).hex()}
                                     for i in range(257)]}
    cases = [
        ("version_0", commit_bytes(commit, version=0), "DecodeError", "version byte 0"),
        ("unsorted", commit_bytes({**commit, "signatures": commit["signatures"][::-1]}),
         "DecodeError", "validator indexes in decreasing order"),
        ("over_limit", commit_bytes(many), "DecodeError", "257 signatures"),
        ("trailing_byte", good + b"\x00", "DecodeError", "one byte after the last signature"),
        ("truncated", good[:-1], "DecodeError", "last signature one byte short"),
    ]
    return [{"name": n, "note": note, "encoded": data.hex(), "error": error}
            for n, data, error, note in cases]


# --- the file ---------------------------------------------------------------------------


def build() -> dict:
    """The whole vector file as a JSON-ready dict."""
    keys = []
    for name, seed in SEEDS.items():
        pk = public_key(seed)
        keys.append({"name": name, "seed": seed.hex(), "public_key": pk.hex(),
                     "address": address(pk).hex(),
                     "address_text": bech32m_encode(ADDRESS_HRP, address(pk))})
    txs = valid_txs()
    by_name = {t["name"]: t for t in txs}
    blocks = [
        make_block("block_two_txs", "height 1, two transfers, no commit", 1, 0,
                   [by_name["transfer"], by_name["transfer_back"]], None),
        make_block("block_with_commit", "the same block with a commit from validators "
                   "0, 1 and 3", 1, 0, [by_name["transfer"], by_name["transfer_back"]],
                   [0, 1, 3]),
        make_block("block_empty", "height 2, round 3, no txs: tx root is the empty Merkle root",
                   2, 3, [], None),
    ]
    return {
        "source": "chainmall, generated by tests/vectors/generate_formats.py "
                  "(struct, blake3, PyNaCl only)",
        "spec": "docs/formats.md",
        "constants": {
            "tx_sign_domain": TX_SIGN_DOMAIN.hex(),
            "address_context": ADDRESS_CONTEXT,
            "address_key": ADDRESS_KEY.hex(),
            "block_hash_context": BLOCK_HASH_CONTEXT,
            "block_hash_key": BLOCK_HASH_KEY.hex(),
            "address_hrp": ADDRESS_HRP,
        },
        "keys": keys,
        "txs": txs,
        "invalid_txs": invalid_txs(by_name["transfer"], by_name["maximal"]),
        "blocks": blocks,
        "invalid_blocks": invalid_blocks(blocks[1], by_name),
        "invalid_commits": invalid_commits(blocks[1]),
    }


def render() -> str:
    return json.dumps(build(), indent=1) + "\n"


def main(argv: list[str]) -> int:
    return MERKLE.write_or_check(OUTPUT, render(), Path(__file__).name, argv)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
