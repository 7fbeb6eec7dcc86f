"""Transactions v1: layout, tx id, sign bytes, and one named negative test per decode rule.

The layout is rebuilt here with `struct` from docs/formats.md, so the codec
is checked against the document, not against itself.
"""

from __future__ import annotations

import struct

import blake3
import pytest
from chainmall.core.constants import (
    TX_BYTES_MAX,
    TX_BYTES_MIN,
    TX_PAYLOAD_BYTES_MAX,
    TX_SIGN_DOMAIN,
)
from chainmall.core.errors import DecodeError, InvalidInput, TxTooLarge
from chainmall.core.keys import KeyPair, verify_signature
from chainmall.core.tx import (
    Tx,
    check_chain_id,
    decode_each,
    decode_tx,
    decode_txs,
    encode_body,
    pack_txs,
    sign_bytes,
    sign_tx,
    tx_id_of_body,
)
from fuzzing import check_canonical, mutations
from hypothesis import given, settings
from hypothesis import strategies as st

KEY = KeyPair.from_seed(bytes(range(32)))
OTHER = KeyPair.from_seed(bytes(range(1, 33)))
CHAIN = "chainmall-test"
TX = sign_tx(KEY, CHAIN, 1, 7, 250, 1000, b"order #1")
WIRE = TX.encode()
U64_MAX = 2**64 - 1


def layout(chain_id: bytes, tx_type: int, sender: bytes, nonce: int, fee: int,
           expiry_height: int, payload: bytes, signature: bytes = b"",
           version: int = 1, chain_id_len: int | None = None,
           payload_len: int | None = None) -> bytes:
    """The v1 layout of docs/formats.md, written out field by field (lengths overridable)."""
    return (
        struct.pack(">BB", version, len(chain_id) if chain_id_len is None else chain_id_len)
        + chain_id
        + struct.pack(">H", tx_type)
        + sender
        + struct.pack(">QQQI", nonce, fee, expiry_height,
                      len(payload) if payload_len is None else payload_len)
        + payload
        + signature
    )


def wire(**change: object) -> bytes:
    """WIRE with some fields changed (the signature is kept, so it no longer verifies)."""
    fields: dict[str, object] = {
        "chain_id": CHAIN.encode(), "tx_type": 1, "sender": KEY.public_key, "nonce": 7,
        "fee": 250, "expiry_height": 1000, "payload": b"order #1", "signature": TX.signature,
    }
    fields.update(change)
    return layout(**fields)  # type: ignore[arg-type]


# --- layout, id, sign bytes ------------------------------------------------------


def test_wire_layout_matches_the_document() -> None:
    assert wire() == WIRE
    body = TX.body
    assert len(body) == 64 + len(CHAIN) + len(b"order #1")
    assert len(WIRE) == len(body) + 64
    assert WIRE[: len(body)] == body and WIRE[len(body) :] == TX.signature
    offset = 2 + len(CHAIN)  # tx type follows the chain id
    assert WIRE[0] == 1 and WIRE[1] == len(CHAIN)
    assert struct.unpack_from(">H", WIRE, offset) == (1,)
    assert WIRE[offset + 2 : offset + 34] == KEY.public_key
    assert struct.unpack_from(">QQQI", WIRE, offset + 34) == (7, 250, 1000, 8)


def test_smallest_and_largest_tx() -> None:
    small = sign_tx(KEY, "c", 0, 0, 0, 0)
    assert len(small.encode()) == TX_BYTES_MIN == 129
    big = sign_tx(KEY, "z" * 32, 65535, U64_MAX, U64_MAX, U64_MAX, b"\xff" * TX_PAYLOAD_BYTES_MAX)
    assert len(big.encode()) == 128 + 32 + TX_PAYLOAD_BYTES_MAX == 1056 <= TX_BYTES_MAX
    for tx in (small, big):
        assert decode_tx(tx.encode()) == tx
        assert tx.verify_signature()


def test_tx_id_is_plain_blake3_of_the_body() -> None:
    assert TX.tx_id == blake3.blake3(TX.body).digest()
    assert TX.tx_id == tx_id_of_body(TX.body)
    assert len(TX.tx_id) == 32


def test_tx_id_does_not_cover_the_signature() -> None:
    resigned = Tx(TX.chain_id, TX.tx_type, TX.sender, TX.nonce, TX.fee, TX.expiry_height,
                  TX.payload, bytes(64))
    assert resigned.tx_id == TX.tx_id
    assert resigned.encode() != TX.encode()
    assert resigned != TX


def test_sign_bytes_exactly() -> None:
    assert TX_SIGN_DOMAIN == b"chainmall/tx/sign/v1\x00"
    expected = TX_SIGN_DOMAIN + bytes([len(CHAIN)]) + CHAIN.encode() + TX.tx_id
    assert TX.sign_bytes == expected == sign_bytes(CHAIN, TX.tx_id)
    assert len(expected) == 21 + 1 + len(CHAIN) + 32
    assert verify_signature(KEY.public_key, expected, TX.signature)
    assert TX.signature == KEY.sign(expected)  # Ed25519 is deterministic


def test_sign_bytes_refuses_a_bad_tx_id_or_chain() -> None:
    for tx_id in (b"", bytes(31), bytes(33), "x" * 32):
        with pytest.raises(InvalidInput):
            sign_bytes(CHAIN, tx_id)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        sign_bytes("Bad", TX.tx_id)


def test_each_field_changes_the_tx_id() -> None:
    base = (CHAIN, 1, KEY.public_key, 7, 250, 1000, b"order #1")
    ids = {tx_id_of_body(encode_body(*base))}
    for index, other in enumerate(["other-chain", 2, OTHER.public_key, 8, 251, 1001, b"x"]):
        changed = list(base)
        changed[index] = other
        ids.add(tx_id_of_body(encode_body(*changed)))  # type: ignore[arg-type]
    assert len(ids) == 8


def test_signature_verifies_and_binds_the_chain() -> None:
    assert TX.verify_signature()
    relabelled = Tx("other-chain", TX.tx_type, TX.sender, TX.nonce, TX.fee, TX.expiry_height,
                    TX.payload, TX.signature)
    assert not relabelled.verify_signature()
    # Same tx id, other chain in the sign bytes: still no.
    assert not verify_signature(KEY.public_key, sign_bytes("other-chain", TX.tx_id), TX.signature)


def test_tampered_or_foreign_signature_fails_verify() -> None:
    for changed in ({"nonce": 8}, {"fee": 1}, {"payload": b"order #2"}):
        assert not decode_tx(wire(**changed)).verify_signature()
    assert not decode_tx(wire(sender=OTHER.public_key)).verify_signature()
    flipped = bytearray(WIRE)
    flipped[-1] ^= 1
    assert not decode_tx(bytes(flipped)).verify_signature()  # decodes: a signature is opaque


def test_decode_accepts_bytes_like() -> None:
    assert decode_tx(bytearray(WIRE)) == TX
    assert decode_tx(memoryview(WIRE)) == TX


@settings(max_examples=200)
@given(
    chain_id=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=32),
    tx_type=st.integers(0, 2**16 - 1),
    nonce=st.integers(0, U64_MAX),
    fee=st.integers(0, U64_MAX),
    expiry_height=st.integers(0, U64_MAX),
    payload=st.binary(max_size=TX_PAYLOAD_BYTES_MAX),
)
def test_round_trip(chain_id: str, tx_type: int, nonce: int, fee: int, expiry_height: int,
                    payload: bytes) -> None:
    tx = sign_tx(KEY, chain_id, tx_type, nonce, fee, expiry_height, payload)
    data = tx.encode()
    assert data == layout(chain_id.encode(), tx_type, KEY.public_key, nonce, fee,
                          expiry_height, payload, tx.signature)
    decoded = decode_tx(data)
    assert decoded == tx
    assert decoded.encode() == data
    assert decoded.tx_id == tx.tx_id
    assert decoded.verify_signature()


# --- decode rules, one test each ---------------------------------------------------


@pytest.mark.parametrize("version", [0, 2, 255])
def test_decode_bad_version(version: int) -> None:
    with pytest.raises(DecodeError, match=f"unsupported version {version}"):
        decode_tx(wire(version=version))


def test_decode_empty_chain_id() -> None:
    with pytest.raises(DecodeError, match="chain id"):
        decode_tx(wire(chain_id=b""))


def test_decode_chain_id_of_33_bytes() -> None:
    with pytest.raises(DecodeError, match=r"chain id.* 33 "):
        decode_tx(wire(chain_id=b"a" * 33))


def test_decode_chain_id_of_32_bytes_is_fine() -> None:
    assert decode_tx(wire(chain_id=b"a" * 32)).chain_id == "a" * 32


@pytest.mark.parametrize("byte", [b"A", b"_", b".", b" ", b"\x00", b"\x7f", b"\x80", b"\xff"])
def test_decode_bad_chain_id_byte(byte: bytes) -> None:
    with pytest.raises(DecodeError, match="chain id has a byte outside"):
        decode_tx(wire(chain_id=b"chain" + byte))


def test_decode_payload_of_897_bytes() -> None:
    with pytest.raises(DecodeError, match="payload is 897 bytes, limit 896"):
        decode_tx(wire(payload=b"p" * 897))


def test_decode_payload_length_over_limit_with_no_payload_behind_it() -> None:
    with pytest.raises(DecodeError, match="payload is 4294967295 bytes, limit 896"):
        decode_tx(wire(payload=b"", payload_len=2**32 - 1))


def test_decode_payload_length_larger_than_the_payload() -> None:
    # The declared payload swallows the signature's first bytes.
    with pytest.raises(DecodeError) as info:
        decode_tx(wire(payload_len=len(b"order #1") + 10))
    assert not isinstance(info.value, TxTooLarge)


def test_decode_payload_length_smaller_than_the_payload() -> None:
    with pytest.raises(DecodeError):
        decode_tx(wire(payload_len=len(b"order #1") - 1))


def test_decode_chain_id_length_mismatch() -> None:
    with pytest.raises(DecodeError):
        decode_tx(wire(chain_id_len=len(CHAIN) + 1))
    with pytest.raises(DecodeError):
        decode_tx(wire(chain_id_len=len(CHAIN) - 1))


def test_decode_every_truncation() -> None:
    for size in range(len(WIRE)):
        with pytest.raises(DecodeError) as info:
            decode_tx(WIRE[:size])
        assert not isinstance(info.value, TxTooLarge)
    with pytest.raises(DecodeError, match="truncated"):
        decode_tx(b"")


def test_decode_trailing_byte() -> None:
    for tail in (b"\x00", b"\x01", bytes(64)):
        with pytest.raises(DecodeError) as info:
            decode_tx(WIRE + tail)
        assert not isinstance(info.value, TxTooLarge)


def test_decode_oversize_is_tx_too_large() -> None:
    with pytest.raises(TxTooLarge, match=f"tx is {TX_BYTES_MAX + 1} bytes"):
        decode_tx(WIRE + bytes(TX_BYTES_MAX + 1 - len(WIRE)))


@pytest.mark.parametrize(
    "data",
    [
        b"\x02" + bytes(TX_BYTES_MAX),  # bad version too
        b"\x01\x00" + bytes(TX_BYTES_MAX),  # empty chain id too
        b"\xff" * (TX_BYTES_MAX + 1),  # everything wrong
        bytes(10 * TX_BYTES_MAX),
    ],
    ids=["bad-version", "empty-chain-id", "all-ff", "huge"],
)
def test_size_is_checked_before_anything_else(data: bytes) -> None:
    with pytest.raises(TxTooLarge):
        decode_tx(data)


def test_size_of_a_wide_memoryview_counts_bytes() -> None:
    view = memoryview(bytes(8 * 200)).cast("Q")  # 200 items, 1600 bytes
    with pytest.raises(TxTooLarge, match="1600 bytes"):
        decode_tx(view)


def test_exactly_tx_bytes_max_is_not_too_large() -> None:
    # The largest valid tx is 1056 bytes; 1057..TX_BYTES_MAX are malformed, not oversize.
    with pytest.raises(DecodeError) as info:
        decode_tx(WIRE + bytes(TX_BYTES_MAX - len(WIRE)))
    assert not isinstance(info.value, TxTooLarge)


@pytest.mark.parametrize("data", [None, "text", 5, [1, 2, 3], WIRE.hex()])
def test_decode_non_bytes(data: object) -> None:
    with pytest.raises(DecodeError, match="expected bytes"):
        decode_tx(data)  # type: ignore[arg-type]


# --- construction -------------------------------------------------------------------


FIELDS = ("chain_id", "tx_type", "sender", "nonce", "fee", "expiry_height", "payload",
          "signature")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("chain_id", ""),
        ("chain_id", "a" * 33),
        ("chain_id", "Chain"),
        ("chain_id", "chain_1"),
        ("chain_id", "chaîne"),
        ("chain_id", b"chain"),
        ("tx_type", -1),
        ("tx_type", 2**16),
        ("tx_type", True),
        ("tx_type", 1.0),
        ("sender", bytes(31)),
        ("sender", bytes(33)),
        ("sender", "k" * 32),
        ("sender", bytearray(32)),
        ("nonce", -1),
        ("nonce", 2**64),
        ("nonce", None),
        ("fee", -1),
        ("fee", 2**64),
        ("fee", "1"),
        ("expiry_height", -1),
        ("expiry_height", 2**64),
        ("expiry_height", False),
        ("payload", b"p" * (TX_PAYLOAD_BYTES_MAX + 1)),
        ("payload", "text"),
        ("payload", [1, 2]),
        ("signature", bytes(63)),
        ("signature", bytes(65)),
        ("signature", "s" * 64),
    ],
)
def test_constructing_an_out_of_range_tx_is_invalid_input(field: str, value: object) -> None:
    values = {name: getattr(TX, name) for name in FIELDS}
    values[field] = value
    with pytest.raises(InvalidInput):
        Tx(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize("chain_id", ["a", "a" * 32, "0", "-", "chain-1", "abc-xyz-0189"])
def test_check_chain_id_accepts(chain_id: str) -> None:
    assert check_chain_id(chain_id) == chain_id.encode()


def test_sign_tx_refuses_bad_fields() -> None:
    with pytest.raises(InvalidInput):
        sign_tx(KEY, CHAIN, 1, -1, 0, 0)
    with pytest.raises(InvalidInput):
        sign_tx(KEY, "", 1, 0, 0, 0)


def test_tx_is_hashable_and_compares_by_fields() -> None:
    again = decode_tx(WIRE)
    assert again == TX and hash(again) == hash(TX)
    assert len({TX, again}) == 1


# --- fuzz -----------------------------------------------------------------------------


@settings(max_examples=300)
@given(st.binary(max_size=TX_BYTES_MAX + 16))
def test_fuzz_random_bytes(data: bytes) -> None:
    check_canonical(decode_tx, data)


@settings(max_examples=300)
@given(st.sampled_from([WIRE, sign_tx(KEY, "c", 0, 0, 0, 0).encode()]).flatmap(mutations))
def test_fuzz_mutated_tx(data: bytes) -> None:
    check_canonical(decode_tx, data)


# --- packing ---------------------------------------------------------------------------


def test_pack_txs_offsets() -> None:
    encoded = [sign_tx(KEY, CHAIN, 1, n, 1, 1, b"x" * n).encode() for n in range(4)]
    packed, offsets = pack_txs(encoded)
    assert packed == b"".join(encoded)
    assert len(offsets) == len(encoded) + 1
    assert offsets[0] == 0 and offsets[-1] == len(packed)
    for index, tx in enumerate(encoded):
        assert packed[offsets[index] : offsets[index + 1]] == tx
        assert decode_tx(packed[offsets[index] : offsets[index + 1]]).nonce == index


def test_pack_txs_empty() -> None:
    assert pack_txs([]) == (b"", [0])


# --- many at once -----------------------------------------------------------------


def test_decode_txs_is_decode_tx_on_each() -> None:
    txs = [sign_tx(KEY, CHAIN, 1, nonce, 250, 1000, b"x" * nonce) for nonce in range(20)]
    decoded = decode_txs([tx.encode() for tx in txs])
    assert decoded == txs
    assert [tx.tx_id for tx in decoded] == [tx_id_of_body(tx.body) for tx in txs]
    assert decode_txs([]) == []


def test_decode_txs_names_the_first_bad_tx() -> None:
    with pytest.raises(DecodeError, match=r"^tx 2: tx: unsupported version 2"):
        decode_txs([WIRE, WIRE, wire(version=2), b""])
    with pytest.raises(TxTooLarge, match=r"^tx 1: "):
        decode_txs([WIRE, bytes(TX_BYTES_MAX + 1)])


def test_decode_each_gives_each_tx_or_its_error() -> None:
    results = decode_each([WIRE, wire(version=2), bytes(TX_BYTES_MAX + 1), WIRE])
    assert results[0] == decode_tx(WIRE) and results[0].tx_id == decode_tx(WIRE).tx_id
    assert type(results[1]) is DecodeError and "version" in str(results[1])
    assert type(results[2]) is TxTooLarge
    assert results[3] == results[0]
    assert decode_each([]) == []
