"""Blocks: header, commit and block codecs, the block hash, the tx root, and strict decoding.

The header layout and the block hash are rebuilt here with `struct` and the
`blake3` package, the tx root with a top-down split-rule Merkle tree
(docs/merkle.md), so the code is checked against the documents.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable

import blake3
import pytest
from chainmall.core.block import (
    Block,
    CommitCert,
    CommitSig,
    Header,
    block_hash,
    compute_tx_root,
    decode_block,
    decode_commit,
    decode_header,
    make_block,
)
from chainmall.core.constants import (
    BLOCK_BYTES_MAX,
    BLOCK_HASH_CONTEXT,
    BLOCK_TXS_MAX,
    COMMIT_SIGNATURES_MAX,
    MERKLE_LEAF_CONTEXT,
    MERKLE_NODE_CONTEXT,
    TX_BYTES_MAX,
    TX_BYTES_MIN,
)
from chainmall.core.errors import (
    BlockTooLarge,
    DecodeError,
    InvalidBlock,
    InvalidInput,
    TxTooLarge,
)
from chainmall.core.keys import KeyPair
from chainmall.core.tx import sign_tx
from fuzzing import check_canonical, mutations
from hypothesis import given, settings
from hypothesis import strategies as st

KEY = KeyPair.from_seed(bytes(range(32)))
CHAIN = "chainmall-test"
TXS = tuple(sign_tx(KEY, CHAIN, 1, nonce, 10, 100, b"item %d" % nonce) for nonce in range(3))
PREV = bytes([0x11]) * 32
STATE = bytes([0x22]) * 32
VALIDATORS = bytes([0x33]) * 32
BLOCK = make_block(CHAIN, 9, PREV, 1_700_000_000_000, KEY.public_key, TXS[:2], STATE,
                   VALIDATORS, round=1)
HEADER = BLOCK.header
COMMIT = CommitCert(9, 1, BLOCK.hash(),
                    (CommitSig(0, KEY.sign(BLOCK.hash())), CommitSig(5, bytes([7]) * 64)))
COMMITTED = Block(HEADER, BLOCK.txs, COMMIT)
U64_MAX = 2**64 - 1

BLOCK_HASH_KEY = blake3.blake3(b"", derive_key_context=BLOCK_HASH_CONTEXT).digest()
LEAF_KEY = blake3.blake3(b"", derive_key_context=MERKLE_LEAF_CONTEXT).digest()
NODE_KEY = blake3.blake3(b"", derive_key_context=MERKLE_NODE_CONTEXT).digest()


def split_root(leaves: list[bytes]) -> bytes:
    """docs/merkle.md, top-down: k is the largest power of two below n."""
    if not leaves:
        return blake3.blake3(b"", key=NODE_KEY).digest()
    if len(leaves) == 1:
        return blake3.blake3(leaves[0], key=LEAF_KEY).digest()
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return blake3.blake3(split_root(leaves[:k]) + split_root(leaves[k:]), key=NODE_KEY).digest()


def header_layout(header: Header, version: int = 1, tx_count: int | None = None) -> bytes:
    """The header layout of docs/formats.md, field by field."""
    chain_id = header.chain_id.encode()
    return (
        struct.pack(">BB", version, len(chain_id)) + chain_id
        + struct.pack(">Q", header.height) + header.prev_hash
        + struct.pack(">Q", header.timestamp_ms) + header.proposer
        + struct.pack(">I", header.tx_count if tx_count is None else tx_count)
        + header.tx_root + header.state_root + header.validator_set_hash
        + struct.pack(">I", header.round)
    )


def commit_layout(height: int, round_number: int, hash_value: bytes,
                  signatures: list[tuple[int, bytes]], version: int = 1,
                  count: int | None = None) -> bytes:
    data = struct.pack(">BQI", version, height, round_number) + hash_value
    data += struct.pack(">H", len(signatures) if count is None else count)
    return data + b"".join(struct.pack(">H", index) + sig for index, sig in signatures)


def header_with(**change: object) -> Header:
    fields = {name: getattr(HEADER, name) for name in Header.__dataclass_fields__
              if not name.startswith("_")}
    fields.update(change)
    return Header(**fields)  # type: ignore[arg-type]


def txs_section(block: Block) -> bytes:
    """The bytes between the header and the commit flag."""
    data = block.encode()
    end = len(data) - 1 - (len(block.commit.encode()) if block.commit else 0)
    return data[len(block.header.encode()) : end]


# --- header ------------------------------------------------------------------------


def test_header_layout() -> None:
    data = HEADER.encode()
    assert data == header_layout(HEADER)
    assert len(data) == 186 + len(CHAIN)
    assert data[0] == 1


def test_header_round_trip() -> None:
    assert decode_header(HEADER.encode()) == HEADER
    assert decode_header(bytearray(HEADER.encode())) == HEADER


@settings(max_examples=200)
@given(
    chain_id=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=32),
    height=st.integers(0, U64_MAX),
    timestamp_ms=st.integers(0, U64_MAX),
    tx_count=st.integers(0, BLOCK_TXS_MAX),
    round_number=st.integers(0, 2**32 - 1),
    hashes=st.lists(st.binary(min_size=32, max_size=32), min_size=5, max_size=5),
)
def test_header_round_trip_any_fields(chain_id: str, height: int, timestamp_ms: int,
                                      tx_count: int, round_number: int,
                                      hashes: list[bytes]) -> None:
    header = Header(chain_id, height, hashes[0], timestamp_ms, hashes[1], tx_count, hashes[2],
                    hashes[3], hashes[4], round_number)
    data = header.encode()
    assert data == header_layout(header)
    assert decode_header(data) == header
    assert header.hash() == blake3.blake3(data, key=BLOCK_HASH_KEY).digest()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("chain_id", ""), ("chain_id", "a" * 33), ("chain_id", "Chain"),
        ("height", -1), ("height", 2**64), ("height", True),
        ("timestamp_ms", -1), ("timestamp_ms", 2**64), ("timestamp_ms", 1.5),
        ("tx_count", -1), ("tx_count", BLOCK_TXS_MAX + 1), ("tx_count", "2"),
        ("round", -1), ("round", 2**32),
        ("prev_hash", bytes(31)), ("tx_root", bytes(33)), ("state_root", "s" * 32),
        ("validator_set_hash", None), ("proposer", bytes(31)), ("proposer", bytearray(32)),
    ],
)
def test_header_out_of_range_is_invalid_input(field: str, value: object) -> None:
    with pytest.raises(InvalidInput):
        header_with(**{field: value})


# --- block hash ----------------------------------------------------------------------


def test_block_hash_is_keyed_blake3_of_the_header() -> None:
    expected = blake3.blake3(HEADER.encode(), key=BLOCK_HASH_KEY).digest()
    assert HEADER.hash() == block_hash(HEADER) == BLOCK.hash() == expected
    assert expected != blake3.blake3(HEADER.encode()).digest()


def test_block_hash_ignores_the_commit_and_covers_every_header_field() -> None:
    assert COMMITTED.hash() == BLOCK.hash()
    changes = {"chain_id": "other", "height": 10, "prev_hash": bytes(32), "timestamp_ms": 1,
               "proposer": bytes(32), "tx_root": bytes(32), "state_root": bytes(32),
               "validator_set_hash": bytes(32), "round": 2}
    hashes = {header_with(**{name: value}).hash() for name, value in changes.items()}
    assert len(hashes | {HEADER.hash()}) == len(changes) + 1


# --- tx root --------------------------------------------------------------------------


@pytest.mark.parametrize("count", [0, 1, 2, 3])
def test_make_block_fills_count_and_root(count: int) -> None:
    block = make_block(CHAIN, 1, PREV, 0, KEY.public_key, list(TXS[:count]), STATE, VALIDATORS)
    assert block.header.tx_count == count
    assert block.txs == TXS[:count]
    assert block.header.tx_root == split_root([tx.tx_id for tx in TXS[:count]])
    assert block.header.tx_root == compute_tx_root(TXS[:count])
    assert block.commit is None
    block.check_tx_root()


def test_check_tx_root_refuses_tampered_txs() -> None:
    other = sign_tx(KEY, CHAIN, 1, 99, 10, 100, b"forged")
    for txs in ((TXS[0], other), (TXS[1], TXS[0]), (TXS[0], TXS[0])):
        with pytest.raises(InvalidBlock, match="tx root does not match"):
            Block(HEADER, txs).check_tx_root()
    resigned = type(TXS[0])(*(getattr(TXS[0], f) for f in (
        "chain_id", "tx_type", "sender", "nonce", "fee", "expiry_height", "payload")),
        bytes(64))
    Block(HEADER, (resigned, TXS[1])).check_tx_root()  # the root covers tx ids, not signatures


def test_block_tx_count_must_match_the_header() -> None:
    for txs in (TXS[:1], TXS[:3]):
        with pytest.raises(InvalidInput, match="header says 2 txs"):
            Block(HEADER, txs)


# --- commit ---------------------------------------------------------------------------


def test_commit_layout_and_round_trip() -> None:
    data = COMMIT.encode()
    assert data == commit_layout(9, 1, BLOCK.hash(), [(s.validator_index, s.signature)
                                                       for s in COMMIT.signatures])
    assert len(data) == 47 + 66 * 2
    assert decode_commit(data) == COMMIT
    empty = CommitCert(0, 0, bytes(32))
    assert len(empty.encode()) == 47 and decode_commit(empty.encode()) == empty


def test_commit_with_the_most_signatures() -> None:
    sigs = tuple(CommitSig(i, bytes([i % 256]) * 64) for i in range(COMMIT_SIGNATURES_MAX))
    commit = CommitCert(1, 0, bytes(32), sigs)
    assert decode_commit(commit.encode()) == commit


def test_commit_over_the_signature_limit() -> None:
    sigs = [(i, bytes(64)) for i in range(COMMIT_SIGNATURES_MAX + 1)]
    with pytest.raises(DecodeError, match="257 signatures, limit 256"):
        decode_commit(commit_layout(1, 0, bytes(32), sigs))
    with pytest.raises(DecodeError, match="limit 256"):  # refused before reading them
        decode_commit(commit_layout(1, 0, bytes(32), [], count=0xFFFF))
    with pytest.raises(InvalidInput):
        CommitCert(1, 0, bytes(32), tuple(CommitSig(i, s) for i, s in sigs))


@pytest.mark.parametrize("indexes", [[1, 0], [3, 3], [0, 2, 1], [5, 5, 6]])
def test_commit_indexes_must_strictly_increase(indexes: list[int]) -> None:
    data = commit_layout(1, 0, bytes(32), [(i, bytes(64)) for i in indexes])
    with pytest.raises(DecodeError, match="strictly increasing"):
        decode_commit(data)
    with pytest.raises(InvalidInput, match="strictly increasing"):
        CommitCert(1, 0, bytes(32), tuple(CommitSig(i, bytes(64)) for i in indexes))


@pytest.mark.parametrize("version", [0, 2, 255])
def test_commit_bad_version(version: int) -> None:
    with pytest.raises(DecodeError, match=f"unsupported version {version}"):
        decode_commit(bytes([version]) + COMMIT.encode()[1:])


def test_commit_truncated_and_trailing() -> None:
    data = COMMIT.encode()
    for size in range(len(data)):
        with pytest.raises(DecodeError):
            decode_commit(data[:size])
    with pytest.raises(DecodeError, match="trailing"):
        decode_commit(data + b"\x00")


@pytest.mark.parametrize(
    "make",
    [
        lambda: CommitCert(-1, 0, bytes(32)),
        lambda: CommitCert(2**64, 0, bytes(32)),
        lambda: CommitCert(0, 2**32, bytes(32)),
        lambda: CommitCert(0, 0, bytes(31)),
        lambda: CommitCert(0, 0, bytes(32), (CommitSig(0, bytes(63)),)),
        lambda: CommitCert(0, 0, bytes(32), (CommitSig(2**16, bytes(64)),)),
        lambda: CommitCert(0, 0, bytes(32), (CommitSig(-1, bytes(64)),)),
        lambda: CommitCert(0, 0, bytes(32), (CommitSig(True, bytes(64)),)),
    ],
    ids=["height-neg", "height-big", "round-big", "hash-31", "sig-63", "index-big",
         "index-neg", "index-bool"],
)
def test_commit_out_of_range_is_invalid_input(make: Callable[[], object]) -> None:
    with pytest.raises(InvalidInput):
        make()


# --- block codec ----------------------------------------------------------------------


def test_block_round_trip() -> None:
    for block in (BLOCK, COMMITTED):
        data = block.encode()
        assert data.startswith(HEADER.encode())
        assert decode_block(data) == block
        assert decode_block(memoryview(data)) == block
    assert COMMITTED.encode().endswith(b"\x01" + COMMIT.encode())
    assert BLOCK.encode().endswith(b"\x00")
    empty = make_block(CHAIN, 0, bytes(32), 0, KEY.public_key, [], STATE, VALIDATORS)
    assert decode_block(empty.encode()) == empty


def test_a_decoded_block_keeps_its_bytes_and_a_changed_copy_does_not() -> None:
    data = COMMITTED.encode()
    decoded = decode_block(memoryview(data))
    assert decoded.encode() == data and type(decoded.encode()) is bytes
    stripped = dataclasses.replace(decoded, commit=None)
    assert stripped.encode() == BLOCK.encode()


def test_block_txs_are_length_prefixed_in_order() -> None:
    section = txs_section(BLOCK)
    expected = b"".join(struct.pack(">H", len(tx.encode())) + tx.encode() for tx in BLOCK.txs)
    assert section.endswith(expected)
    assert section[: len(section) - len(expected)] in (b"", struct.pack(">I", 2))


@pytest.mark.parametrize("version", [0, 2, 255])
def test_block_bad_header_version(version: int) -> None:
    data = COMMITTED.encode()
    with pytest.raises(DecodeError, match=f"unsupported header version {version}"):
        decode_block(bytes([version]) + data[1:])


@pytest.mark.parametrize("actual", [1, 3])
def test_block_tx_count_mismatch(actual: int) -> None:
    # The header says 2; the body carries 1 or 3 txs.
    other = make_block(CHAIN, 9, PREV, 0, KEY.public_key, list(TXS[:actual]), STATE, VALIDATORS)
    data = HEADER.encode() + other.encode()[len(other.header.encode()) :]
    with pytest.raises(DecodeError):
        decode_block(data)


def test_block_with_fewer_tx_bytes_than_declared() -> None:
    data = BLOCK.encode()
    last = BLOCK.txs[-1].encode()
    cut = data.rindex(last)
    with pytest.raises(DecodeError):
        decode_block(data[: cut - 2] + b"\x00")  # second tx gone, commit flag kept


def test_block_with_a_malformed_tx() -> None:
    data = bytearray(COMMITTED.encode())
    start = bytes(data).index(TXS[1].encode())
    data[start] = 2  # the inner tx's version byte
    with pytest.raises(DecodeError, match="unsupported version 2"):
        decode_block(bytes(data))


def test_block_with_a_wrong_inner_tx_length() -> None:
    data = bytearray(BLOCK.encode())
    start = bytes(data).index(TXS[0].encode())
    length = len(TXS[0].encode())
    for wrong in (length - 1, length + 1, 0, 0xFFFF):
        data[start - 2 : start] = struct.pack(">H", wrong)
        with pytest.raises(DecodeError):
            decode_block(bytes(data))


@pytest.mark.parametrize("flag", [2, 3, 0x80, 0xFF])
def test_block_commit_flag_must_be_0_or_1(flag: int) -> None:
    data = BLOCK.encode()
    with pytest.raises(DecodeError, match=f"commit flag must be 0 or 1, got {flag}"):
        decode_block(data[:-1] + bytes([flag]))


def test_block_commit_flag_1_without_commit_and_0_with_one() -> None:
    data = BLOCK.encode()
    with pytest.raises(DecodeError, match="truncated at commit version"):
        decode_block(data[:-1] + b"\x01")
    committed = COMMITTED.encode()
    flag_at = len(committed) - len(COMMIT.encode()) - 1
    with pytest.raises(DecodeError, match="trailing"):
        decode_block(committed[:flag_at] + b"\x00" + committed[flag_at + 1 :])


def test_block_with_unsorted_commit_indexes() -> None:
    data = COMMITTED.encode()
    bad = commit_layout(9, 1, BLOCK.hash(), [(5, bytes(64)), (0, bytes(64))])
    with pytest.raises(DecodeError, match="strictly increasing"):
        decode_block(data[: len(data) - len(COMMIT.encode())] + bad)


def test_block_with_a_commit_over_the_signature_limit() -> None:
    data = BLOCK.encode()[:-1] + b"\x01"
    bad = commit_layout(9, 1, BLOCK.hash(), [(i, bytes(64)) for i in range(257)])
    with pytest.raises(DecodeError, match="limit 256"):
        decode_block(data + bad)


@pytest.mark.parametrize(
    "commit",
    [CommitCert(10, 1, BLOCK.hash()), CommitCert(9, 1, bytes(32))],
    ids=["other-height", "other-hash"],
)
def test_block_with_a_commit_for_another_block(commit: CommitCert) -> None:
    with pytest.raises(InvalidInput, match="certifies another block"):
        Block(HEADER, BLOCK.txs, commit)
    with pytest.raises(DecodeError, match="certifies another block"):
        decode_block(BLOCK.encode()[:-1] + b"\x01" + commit.encode())


def test_block_truncated_and_trailing() -> None:
    data = COMMITTED.encode()
    for size in range(0, len(data), 7):
        with pytest.raises(DecodeError):
            decode_block(data[:size])
    with pytest.raises(DecodeError, match="trailing"):
        decode_block(data + b"\x00")


def test_oversize_block_is_block_too_large() -> None:
    with pytest.raises(BlockTooLarge, match=f"{BLOCK_BYTES_MAX + 1} bytes"):
        decode_block(bytes([2]) + bytes(BLOCK_BYTES_MAX))  # bad version too: size is first


@pytest.mark.parametrize("count", [BLOCK_TXS_MAX + 1, 2**32 - 1])
def test_tx_count_over_the_limit_is_refused_before_any_tx_is_read(count: int) -> None:
    # Only the header: no room for a single tx, yet the verdict is the count, not truncation.
    data = header_layout(HEADER, tx_count=count)
    with pytest.raises(BlockTooLarge, match=f"{count}"):
        decode_block(data)
    with pytest.raises(BlockTooLarge):
        decode_header(data)


def test_tx_count_at_the_limit_with_no_txs_is_a_decode_error() -> None:
    data = header_layout(HEADER, tx_count=BLOCK_TXS_MAX) + b"\x00"
    with pytest.raises(DecodeError) as info:
        decode_block(data)
    assert not isinstance(info.value, BlockTooLarge)


@pytest.mark.parametrize("following", [TX_BYTES_MIN + 1, 2 * TX_BYTES_MIN, TX_BYTES_MAX + 1],
                         ids=lambda n: f"{n}-bytes")
def test_tx_length_over_the_limit_is_too_large_before_its_bytes_are_read(following: int) -> None:
    # docs/formats.md: a length is checked against its limit before anything is read
    # for it, so the verdict is TxTooLarge however many bytes follow the prefix (enough
    # for the tx count check, which comes first, to pass).
    one_tx = header_layout(header_with(tx_count=1)) + struct.pack(">I", 1)
    data = one_tx + struct.pack(">H", TX_BYTES_MAX + 1) + bytes(following)
    with pytest.raises(TxTooLarge, match=f"tx 0 is {TX_BYTES_MAX + 1} bytes, limit"):
        decode_block(data)
    second = BLOCK.txs[0].encode()
    two_txs = header_layout(HEADER) + struct.pack(">IH", 2, len(second)) + second
    with pytest.raises(TxTooLarge, match="tx 1 is 65535 bytes"):
        decode_block(two_txs + struct.pack(">H", 0xFFFF) + bytes(following))


@pytest.mark.parametrize("chain_id_bytes", [b"", b"Bad", b"a_b", b"\xff"])
def test_header_with_a_bad_chain_id(chain_id_bytes: bytes) -> None:
    good = HEADER.encode()
    data = bytes([1, len(chain_id_bytes)]) + chain_id_bytes + good[2 + len(CHAIN) :]
    with pytest.raises(DecodeError):
        decode_header(data)


def test_header_truncated_and_trailing() -> None:
    data = HEADER.encode()
    for size in range(len(data)):
        with pytest.raises(DecodeError):
            decode_header(data[:size])
    with pytest.raises(DecodeError, match="trailing"):
        decode_header(data + b"\x00")


@pytest.mark.parametrize("decode", [decode_block, decode_commit, decode_header])
@pytest.mark.parametrize("data", [None, "text", 3, [1]])
def test_decoders_refuse_non_bytes(decode: Callable[[object], object], data: object) -> None:
    with pytest.raises(DecodeError, match="expected bytes"):
        decode(data)


# --- fuzz ------------------------------------------------------------------------------


@settings(max_examples=200)
@given(st.binary(max_size=600))
def test_fuzz_random_bytes(data: bytes) -> None:
    for decode in (decode_block, decode_commit, decode_header):
        check_canonical(decode, data)


@settings(max_examples=300)
@given(st.sampled_from([BLOCK.encode(), COMMITTED.encode()]).flatmap(mutations))
def test_fuzz_mutated_block(data: bytes) -> None:
    check_canonical(decode_block, data)


@settings(max_examples=200)
@given(mutations(COMMIT.encode()))
def test_fuzz_mutated_commit(data: bytes) -> None:
    check_canonical(decode_commit, data)


@settings(max_examples=200)
@given(mutations(HEADER.encode()))
def test_fuzz_mutated_header(data: bytes) -> None:
    check_canonical(decode_header, data)
