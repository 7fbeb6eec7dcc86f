"""Format vectors: tests/vectors/format_vectors.json against chainmall's codecs, byte for byte.

The file is written by tests/vectors/generate_formats.py, which shares no
code with chainmall (struct, blake3, PyNaCl); this test is the independent
check that the code and the file agree: encodings, decodings, tx ids, sign
bytes, block hashes, tx roots, signature verdicts, and the exact error class
of every broken encoding. It also checks the file is what the generator
writes now, and that the worked examples of docs/formats.md are the file's.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType

import pytest
from chainmall.core import constants, errors, hashing
from chainmall.core.address import decode_address, encode_address
from chainmall.core.block import (
    Block,
    CommitCert,
    CommitSig,
    Header,
    compute_tx_root,
    decode_block,
    decode_commit,
    decode_header,
)
from chainmall.core.keys import KeyPair
from chainmall.core.tx import Tx, decode_tx, encode_body, sign_bytes, tx_id_of_body

ROOT = Path(__file__).resolve().parents[2]
VECTORS_DIR = ROOT / "tests" / "vectors"
VECTOR_FILE = VECTORS_DIR / "format_vectors.json"
VECTORS = json.loads(VECTOR_FILE.read_text())
DOC = ROOT / "docs" / "formats.md"

KEYS = {k["name"]: k for k in VECTORS["keys"]}
SEED_OF = {k["public_key"]: bytes.fromhex(k["seed"]) for k in VECTORS["keys"]}
TXS = {t["name"]: t for t in VECTORS["txs"]}
BLOCKS = {b["name"]: b for b in VECTORS["blocks"]}


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "generate_formats", VECTORS_DIR / "generate_formats.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tx(vector: dict) -> Tx:
    return Tx(vector["chain_id"], vector["tx_type"], bytes.fromhex(vector["sender"]),
              vector["nonce"], vector["fee"], vector["expiry_height"],
              bytes.fromhex(vector["payload"]), bytes.fromhex(vector["signature"]))


def _header(fields: dict) -> Header:
    hashes = ("prev_hash", "proposer", "tx_root", "state_root", "validator_set_hash")
    return Header(**{k: bytes.fromhex(v) if k in hashes else v for k, v in fields.items()})


def _commit(fields: dict | None) -> CommitCert | None:
    if fields is None:
        return None
    signatures = tuple(CommitSig(s["validator_index"], bytes.fromhex(s["signature"]))
                       for s in fields["signatures"])
    return CommitCert(fields["height"], fields["round"], bytes.fromhex(fields["block_hash"]),
                      signatures)


# --- the file itself --------------------------------------------------------------------


def test_file_is_what_the_generator_writes() -> None:
    assert _generator().render() == VECTOR_FILE.read_text(), (
        "format_vectors.json is stale: run tests/vectors/generate_formats.py"
    )


def test_generator_constants_are_chainmalls() -> None:
    c = VECTORS["constants"]
    assert bytes.fromhex(c["tx_sign_domain"]) == constants.TX_SIGN_DOMAIN
    assert c["address_context"] == constants.ADDRESS_CONTEXT
    assert bytes.fromhex(c["address_key"]) == hashing.ADDRESS_KEY
    assert c["block_hash_context"] == constants.BLOCK_HASH_CONTEXT
    assert bytes.fromhex(c["block_hash_key"]) == hashing.BLOCK_HASH_KEY
    assert c["address_hrp"] == constants.ADDRESS_HRP
    generator = _generator()
    for name in ("TX_VERSION", "BLOCK_VERSION", "COMMIT_VERSION", "TX_BYTES_MAX",
                 "BLOCK_TXS_MAX", "U64_MAX"):
        assert getattr(generator, name) == getattr(constants, name), name


def test_every_section_is_present() -> None:
    assert {"alice", "bob"} <= set(KEYS)
    assert {"transfer", "minimal", "maximal"} <= set(TXS)
    block = BLOCKS["block_with_commit"]
    assert len(block["txs"]) == 2 and block["commit"] is not None
    assert VECTORS["invalid_txs"] and VECTORS["invalid_blocks"] and VECTORS["invalid_commits"]
    # The commit is outside the header: the block with and without it has one hash.
    assert BLOCKS["block_two_txs"]["block_hash"] == block["block_hash"]


def test_sources_lists_the_file_hash() -> None:
    digest = hashlib.sha256(VECTOR_FILE.read_bytes()).hexdigest()
    sources = (VECTORS_DIR / "SOURCES.md").read_text()
    assert "`format_vectors.json` | " in sources
    assert digest in sources, f"update the sha256 of format_vectors.json in SOURCES.md: {digest}"


# --- keys and addresses -------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(KEYS))
def test_key(name: str) -> None:
    vector = KEYS[name]
    pair = KeyPair.from_seed(bytes.fromhex(vector["seed"]))
    assert pair.public_key.hex() == vector["public_key"]
    assert pair.address.hex() == vector["address"]
    assert encode_address(pair.address) == vector["address_text"]
    assert decode_address(vector["address_text"]).hex() == vector["address"]


# --- transactions ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(TXS))
def test_tx(name: str) -> None:
    vector = TXS[name]
    body = bytes.fromhex(vector["body"])
    wire = bytes.fromhex(vector["encoded"])
    assert encode_body(vector["chain_id"], vector["tx_type"], bytes.fromhex(vector["sender"]),
                       vector["nonce"], vector["fee"], vector["expiry_height"],
                       bytes.fromhex(vector["payload"])) == body
    assert tx_id_of_body(body).hex() == vector["tx_id"]
    assert sign_bytes(vector["chain_id"], bytes.fromhex(vector["tx_id"])).hex() == (
        vector["sign_bytes"]
    )
    tx = _tx(vector)
    assert tx.encode() == wire
    assert tx.body == body and tx.tx_id.hex() == vector["tx_id"]
    assert tx.sign_bytes.hex() == vector["sign_bytes"]
    assert decode_tx(wire) == tx
    assert decode_tx(wire).encode() == wire
    assert tx.verify_signature() is vector["signature_valid"]
    if vector["signature_valid"]:  # Ed25519 is deterministic: the key signs the same bytes
        pair = KeyPair.from_seed(SEED_OF[vector["sender"]])
        assert pair.sign(tx.sign_bytes).hex() == vector["signature"]


@pytest.mark.parametrize("case", VECTORS["invalid_txs"], ids=lambda c: c["name"])
def test_invalid_tx(case: dict) -> None:
    with pytest.raises(errors.DecodeError) as info:
        decode_tx(bytes.fromhex(case["encoded"]))
    assert type(info.value).__name__ == case["error"], info.value


# --- headers, commits, blocks ----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_block(name: str) -> None:
    vector = BLOCKS[name]
    header = _header(vector["header"])
    header_bytes = bytes.fromhex(vector["header_encoded"])
    assert header.encode() == header_bytes
    assert decode_header(header_bytes) == header
    assert header.hash().hex() == vector["block_hash"]
    txs = tuple(_tx(TXS[tx_name]) for tx_name in vector["txs"])
    assert compute_tx_root(txs) == header.tx_root
    commit = _commit(vector["commit"])
    if commit is not None:
        commit_bytes = bytes.fromhex(vector["commit_encoded"])
        assert commit.encode() == commit_bytes
        assert decode_commit(commit_bytes) == commit
        assert commit.block_hash == header.hash()
    block = Block(header, txs, commit)
    block.check_tx_root()
    wire = bytes.fromhex(vector["encoded"])
    assert block.encode() == wire
    decoded = decode_block(wire)
    assert decoded == block
    assert decoded.encode() == wire
    assert decoded.hash().hex() == vector["block_hash"]


@pytest.mark.parametrize("case", VECTORS["invalid_blocks"], ids=lambda c: c["name"])
def test_invalid_block(case: dict) -> None:
    with pytest.raises(errors.DecodeError) as info:
        decode_block(bytes.fromhex(case["encoded"]))
    assert type(info.value).__name__ == case["error"], info.value


@pytest.mark.parametrize("case", VECTORS["invalid_commits"], ids=lambda c: c["name"])
def test_invalid_commit(case: dict) -> None:
    with pytest.raises(errors.DecodeError) as info:
        decode_commit(bytes.fromhex(case["encoded"]))
    assert type(info.value).__name__ == case["error"], info.value


# --- the document --------------------------------------------------------------------------


def _doc_hex(label: str) -> str:
    """The hex of the code block after `<!-- vector: label -->`: first token of each line."""
    text = DOC.read_text()
    match = re.search(rf"<!-- vector: {re.escape(label)} -->\s*```[a-z]*\n(.*?)```", text, re.S)
    assert match, f"docs/formats.md has no worked example {label!r}"
    tokens = [line.split()[0] for line in match.group(1).splitlines() if line.strip()]
    assert all(re.fullmatch(r"([0-9a-f]{2})+", t) for t in tokens), tokens
    return "".join(tokens)


def test_doc_worked_examples_are_the_vectors() -> None:
    transfer = TXS["transfer"]
    block = BLOCKS["block_with_commit"]
    alice = KEYS["alice"]
    assert _doc_hex("tx.transfer.encoded") == transfer["encoded"]
    assert _doc_hex("tx.transfer.sign_bytes") == transfer["sign_bytes"]
    assert _doc_hex("block_with_commit.header_encoded") == block["header_encoded"]
    assert _doc_hex("block_with_commit.commit_encoded") == block["commit_encoded"]
    assert _doc_hex("block_with_commit.encoded") == block["encoded"]
    text = DOC.read_text()
    for value in (alice["seed"], alice["public_key"], alice["address"], alice["address_text"],
                  transfer["tx_id"], block["block_hash"], block["header"]["tx_root"],
                  VECTORS["constants"]["address_key"], VECTORS["constants"]["block_hash_key"]):
        assert value in text, value


def test_doc_limits_are_the_constants() -> None:
    text = DOC.read_text()
    for name in ("TX_BYTES_MAX", "TX_BODY_BYTES_MAX", "TX_PAYLOAD_BYTES_MAX", "TX_BYTES_MIN",
                 "CHAIN_ID_BYTES_MIN", "CHAIN_ID_BYTES_MAX", "BLOCK_TXS_MAX",
                 "BLOCK_BYTES_MAX", "COMMIT_SIGNATURES_MAX"):
        value = getattr(constants, name)
        assert re.search(rf"`{name}`\s*\|\s*{value}\b", text), f"{name} = {value} not in the doc"


def test_doc_domain_table_lists_every_context() -> None:
    text = DOC.read_text()
    for name in dir(constants):
        if name.endswith("_CONTEXT"):
            context = getattr(constants, name)
            key = hashing.domain_key(context).hex()
            assert context in text and key in text, name
    assert repr(constants.TX_SIGN_DOMAIN)[2:-1] in text or constants.TX_SIGN_DOMAIN.hex() in text
