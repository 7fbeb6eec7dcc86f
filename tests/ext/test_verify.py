"""Stateless batch checks: kernel (ext/_verify) == reference (core/verify) == the wire spec.

Txs are built here byte by byte from the wire table (docs/verification.md),
independently of core/tx.py, so a fault in the shared codec cannot hide in
both implementations at once. Every expected code is written out by hand.
"""

from __future__ import annotations

import struct

import blake3
import nacl.signing
import pytest
from chainmall import ext
from chainmall.core import constants, ed25519, errors
from chainmall.core import verify as reference
from hypothesis import given, settings
from hypothesis import strategies as st

KERNEL = ext.load("_verify")
CHAIN = b"chainmall-test"
_ORDER_BYTES = (2**252 + 27742317777372353535851937790883648493).to_bytes(32, "little")
HEIGHT = 100
SEEDS = [bytes([i]) * 32 for i in range(1, 4)]
KEYS = [nacl.signing.SigningKey(seed) for seed in SEEDS]
ZERO_ID = bytes(32)

IMPLS = [
    pytest.param(KERNEL, id="kernel", marks=pytest.mark.skipif(
        KERNEL is None, reason="chainmall.ext._verify is not built")),
    pytest.param(reference, id="reference"),
]


# --- building txs from the wire table ----------------------------------------------
def make_body(
    key: nacl.signing.SigningKey = KEYS[0],
    chain_id: bytes = CHAIN,
    tx_type: int = 1,
    nonce: int = 0,
    fee: int = 10,
    expiry_height: int = HEIGHT + 50,
    payload: bytes = b"order #1: 2 x tea",
    version: int = 1,
    chain_id_len: int | None = None,
    payload_len: int | None = None,
) -> bytes:
    """A tx body; the length fields can be forced to lie."""
    return (
        bytes([version, len(chain_id) if chain_id_len is None else chain_id_len])
        + chain_id
        + struct.pack(">H", tx_type)
        + bytes(key.verify_key)
        + struct.pack(">QQQI", nonce, fee, expiry_height,
                      len(payload) if payload_len is None else payload_len)
        + payload
    )


def tx_id_of(body: bytes) -> bytes:
    return blake3.blake3(body).digest()


def sign_bytes_of(body: bytes, chain_id: bytes) -> bytes:
    return constants.TX_SIGN_DOMAIN + bytes([len(chain_id)]) + chain_id + tx_id_of(body)


def make_tx(key: nacl.signing.SigningKey = KEYS[0], signer: nacl.signing.SigningKey | None = None,
            sign_chain: bytes | None = None, **fields: object) -> bytes:
    """body || signature; `signer` and `sign_chain` default to the honest ones."""
    body = make_body(key, **fields)
    chain = fields.get("chain_id", CHAIN) if sign_chain is None else sign_chain
    signature = (signer or key).sign(sign_bytes_of(body, chain)).signature
    return body + signature


def pack(txs: list[bytes]) -> tuple[bytes, list[int]]:
    offsets = [0]
    for tx in txs:
        offsets.append(offsets[-1] + len(tx))
    return b"".join(txs), offsets


def run(impl: object, txs: list[bytes], height: int = HEIGHT, threads: int = 0,
        chain_id: bytes = CHAIN) -> tuple[list[int], bytes]:
    packed, offsets = pack(txs)
    return impl.validate_batch(packed, offsets, chain_id, height, threads)


OK = errors.TX_OK
DECODE = errors.DecodeError.code
TOO_LARGE = errors.TxTooLarge.code
WRONG_CHAIN = errors.WrongChain.code
EXPIRED = errors.TxExpired.code
BAD_SIG = errors.BadSignature.code


def _faults() -> list[tuple[str, bytes, int]]:
    valid = make_tx()
    body = make_body()
    sig = valid[len(body):]
    max_payload = b"p" * constants.TX_PAYLOAD_BYTES_MAX
    max_chain = b"c" * constants.CHAIN_ID_BYTES_MAX
    flipped = bytearray(valid)
    flipped[-40] ^= 0x20
    return [
        ("valid", valid, OK),
        ("valid, empty payload", make_tx(payload=b""), OK),
        ("valid, largest tx (L=32, P=896)",
         make_tx(chain_id=max_chain, payload=max_payload, sign_chain=max_chain), WRONG_CHAIN),
        ("valid at height == expiry", make_tx(expiry_height=HEIGHT), OK),
        ("expired at height == expiry + 1", make_tx(expiry_height=HEIGHT - 1), EXPIRED),
        ("expiry 0", make_tx(expiry_height=0), EXPIRED),
        ("expiry u64 max", make_tx(expiry_height=constants.U64_MAX), OK),
        ("oversize: TX_BYTES_MAX + 1", make_tx(payload=b"x" * 1000), TOO_LARGE),
        ("oversize and garbage", b"\xff" * (constants.TX_BYTES_MAX + 1), TOO_LARGE),
        ("empty", b"", DECODE),
        ("one byte", b"\x01", DECODE),
        ("too short: 128 bytes", valid[:128], DECODE),
        ("version 0", make_tx(version=0), DECODE),
        ("version 2", make_tx(version=2), DECODE),
        ("L = 0", make_body(chain_id=b"", chain_id_len=0) + sig, DECODE),
        ("L = 33", make_tx(chain_id=b"c" * 33, sign_chain=b"c" * 33), DECODE),
        ("L larger than the chain id bytes", make_body(chain_id_len=len(CHAIN) + 1) + sig, DECODE),
        ("chain id upper case", make_tx(chain_id=b"Chainmall-test"), DECODE),
        ("chain id underscore", make_tx(chain_id=b"chainmall_test"), DECODE),
        ("chain id NUL", make_tx(chain_id=b"chainmall\x00test"), DECODE),
        ("chain id high byte", make_tx(chain_id=b"chainmall\xe9test"), DECODE),
        ("P = 897", make_tx(payload=b"x" * 897), DECODE),
        ("P says 897, 5 bytes follow", make_body(payload=b"x" * 5, payload_len=897) + sig, DECODE),
        ("P = 2^32 - 1", make_body(payload_len=2**32 - 1) + sig, DECODE),
        ("P one more than the payload", make_body(payload_len=len(b"order #1: 2 x tea") + 1)
         + sig, DECODE),
        ("P one less than the payload", make_body(payload_len=len(b"order #1: 2 x tea") - 1)
         + sig, DECODE),
        ("truncated by one", valid[:-1], DECODE),
        ("extended by one", valid + b"\x00", DECODE),
        ("signature missing", body, DECODE),
        ("wrong chain", make_tx(chain_id=b"chainmall-main"), WRONG_CHAIN),
        ("wrong chain, a prefix of ours", make_tx(chain_id=CHAIN[:-1]), WRONG_CHAIN),
        ("wrong chain, ours is its prefix", make_tx(chain_id=CHAIN + b"x"), WRONG_CHAIN),
        ("wrong chain and expired", make_tx(chain_id=b"other", expiry_height=1), WRONG_CHAIN),
        ("expired and badly signed", make_tx(expiry_height=1, signer=KEYS[1]), EXPIRED),
        ("bad signature: flipped bit", bytes(flipped), BAD_SIG),
        ("bad signature: zeros", body + bytes(64), BAD_SIG),
        ("signed by another key", make_tx(signer=KEYS[1]), BAD_SIG),
        ("signed over another chain's sign bytes", make_tx(sign_chain=b"chainmall-main"), BAD_SIG),
        ("signed over the body, not the sign bytes",
         body + KEYS[0].sign(body).signature, BAD_SIG),
        ("sender is a small-order point", make_body()[:4 + len(CHAIN)] + bytes(32)
         + make_body()[36 + len(CHAIN):] + sig, BAD_SIG),
        # ZIP 215: a small-order sender and R with S = 0 verify for any message, so a
        # key that is a torsion point has no secret (docs/verification.md section 1).
        ("small-order sender, small-order R, S = 0 (valid under ZIP 215)",
         make_body()[:4 + len(CHAIN)] + bytes(32) + make_body()[36 + len(CHAIN):]
         + bytes([1]) + bytes(31) + bytes(32), OK),
        ("S = L: not canonical", body + sig[:32] + _ORDER_BYTES, BAD_SIG),
        ("second valid tx, other key", make_tx(key=KEYS[2], nonce=5), OK),
    ]


FAULTS = _faults()


def _decodes(code: int) -> bool:
    return code not in (DECODE, TOO_LARGE)


def _expected_ids(txs: list[bytes], codes: list[int]) -> bytes:
    return b"".join(
        tx_id_of(tx[:-64]) if _decodes(code) else ZERO_ID for tx, code in zip(txs, codes,
                                                                               strict=True)
    )


# --- the kernel's copies of protocol numbers -----------------------------------------
@pytest.mark.skipif(KERNEL is None, reason="chainmall.ext._verify is not built")
def test_kernel_constants_equal_core() -> None:
    assert KERNEL.TX_OK == errors.TX_OK
    assert errors.DecodeError.code == KERNEL.DECODE_ERROR
    assert errors.TxTooLarge.code == KERNEL.TX_TOO_LARGE
    assert errors.WrongChain.code == KERNEL.WRONG_CHAIN
    assert errors.TxExpired.code == KERNEL.TX_EXPIRED
    assert errors.BadSignature.code == KERNEL.BAD_SIGNATURE
    for name in ("TX_VERSION", "CHAIN_ID_BYTES_MIN", "CHAIN_ID_BYTES_MAX", "CHAIN_ID_ALPHABET",
                 "TX_PAYLOAD_BYTES_MAX", "TX_BODY_FIXED_BYTES", "TX_BYTES_MAX",
                 "TX_SIGN_DOMAIN", "HASH_BYTES", "PUBLIC_KEY_BYTES", "SIGNATURE_BYTES",
                 "U64_MAX", "BATCH_ITEMS_MAX", "ED25519_BATCH_ITEMS"):
        assert getattr(KERNEL, name) == getattr(constants, name), name
    assert KERNEL.VERIFY_THREADS_MAX == reference.VERIFY_THREADS_MAX
    order = (errors.TxTooLarge, errors.DecodeError, errors.WrongChain, errors.TxExpired,
             errors.BadSignature)
    assert order == errors.TX_CHECK_ORDER


# --- fault table ------------------------------------------------------------------------
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("label,tx,expected", FAULTS, ids=[f[0] for f in FAULTS])
def test_each_fault_alone(impl: object, label: str, tx: bytes, expected: int) -> None:
    codes, ids = run(impl, [tx])
    assert codes == [expected], label
    assert ids == _expected_ids([tx], [expected])


@pytest.mark.parametrize("threads", [1, 2, 0])
@pytest.mark.parametrize("impl", IMPLS)
def test_mixed_block(impl: object, threads: int) -> None:
    # Faults interleaved with valid txs, twice over: per-item state must not leak.
    valid = [make_tx(nonce=i) for i in range(len(FAULTS))]
    txs, expected = [], []
    for (_, tx, code), good in zip(FAULTS * 2, valid * 2, strict=True):
        txs += [tx, good]
        expected += [code, OK]
    codes, ids = run(impl, txs, threads=threads)
    assert codes == expected
    assert ids == _expected_ids(txs, expected)


@pytest.mark.skipif(KERNEL is None, reason="chainmall.ext._verify is not built")
def test_kernel_equals_reference_on_the_fault_block() -> None:
    txs = [tx for _, tx, _ in FAULTS]
    assert run(KERNEL, txs, threads=1) == run(reference, txs)
    assert run(KERNEL, txs, threads=2) == run(reference, txs)


@pytest.mark.parametrize("impl", IMPLS)
def test_expiry_boundary(impl: object) -> None:
    tx = make_tx(expiry_height=500)
    assert run(impl, [tx], height=500)[0] == [OK]
    assert run(impl, [tx], height=501)[0] == [EXPIRED]
    assert run(impl, [tx], height=0)[0] == [OK]
    assert run(impl, [tx], height=constants.U64_MAX)[0] == [EXPIRED]


@pytest.mark.parametrize("impl", IMPLS)
def test_chain_id_decides_wrong_chain(impl: object) -> None:
    tx = make_tx(chain_id=b"a", sign_chain=b"a")
    assert run(impl, [tx], chain_id=b"a")[0] == [OK]
    assert run(impl, [tx], chain_id=b"b")[0] == [WRONG_CHAIN]
    assert run(impl, [tx], chain_id=b"aa")[0] == [WRONG_CHAIN]


@pytest.mark.parametrize("impl", IMPLS)
def test_every_chain_id_byte(impl: object) -> None:
    # Each of the 256 byte values in a chain id: allowed exactly when in the alphabet.
    txs = [make_tx(chain_id=b"x" + bytes([b]), sign_chain=b"x" + bytes([b])) for b in range(256)]
    codes, _ = run(impl, txs, chain_id=b"x-")
    for b, code in enumerate(codes):
        if b == ord("-"):
            assert code == OK
        elif b in constants.CHAIN_ID_ALPHABET:
            assert code == WRONG_CHAIN, b
        else:
            assert code == DECODE, b


@pytest.mark.parametrize("impl", IMPLS)
def test_ids_are_blake3_of_the_body(impl: object) -> None:
    txs = [make_tx(nonce=i, payload=bytes(range(i % 256)) * 3) for i in range(0, 300, 7)]
    codes, ids = run(impl, txs)
    assert codes == [OK] * len(txs)
    assert [ids[32 * i: 32 * i + 32] for i in range(len(txs))] == [
        blake3.blake3(tx[:-64]).digest() for tx in txs
    ]


@pytest.mark.parametrize("impl", IMPLS)
def test_empty_batch(impl: object) -> None:
    assert impl.validate_batch(b"", [0], CHAIN, HEIGHT) == ([], b"")
    assert impl.validate_batch(b"junk", [4], CHAIN, HEIGHT, 1) == ([], b"")
    assert impl.verify_batch(b"", b"", [0], b"") == []


@pytest.mark.parametrize("impl", IMPLS)
def test_offsets_need_not_start_at_zero(impl: object) -> None:
    txs = [make_tx(nonce=1), make_tx(nonce=2)]
    packed, offsets = pack(txs)
    shifted = [o + 7 for o in offsets]
    codes, ids = impl.validate_batch(b"garbage" + packed + b"tail", shifted, CHAIN, HEIGHT)
    assert (codes, ids) == run(impl, txs)


@pytest.mark.skipif(KERNEL is None, reason="chainmall.ext._verify is not built")
def test_threads_one_and_two_identical() -> None:
    txs = [tx for _, tx, _ in FAULTS] + [make_tx(nonce=i) for i in range(150)]
    one = run(KERNEL, txs, threads=1)
    assert run(KERNEL, txs, threads=2) == one
    assert run(KERNEL, txs, threads=7) == one  # more threads than cores


@pytest.mark.skipif(KERNEL is None, reason="chainmall.ext._verify is not built")
@pytest.mark.parametrize("threads", [1, 2])
def test_grouping_by_key_keeps_each_verdict_in_place(threads: int) -> None:
    """The kernel groups signatures by public key before cutting batch equations; every
    verdict still lands on its own item: keys interleaved over several batches, bad
    signatures (and keys that are not the signer's) scattered among a key's good ones."""
    count = 3 * constants.ED25519_BATCH_ITEMS + 17
    senders = [nacl.signing.SigningKey(bytes([40 + i]) * 32) for i in range(7)]
    public_keys, messages, offsets, signatures, expected = [], b"", [0], [], []
    for i in range(count):
        key = senders[(i * 5) % len(senders)]  # a key's items far apart in the input
        message = b"item %d" % i
        signature = bytearray(key.sign(message).signature)
        public_key = bytes(key.verify_key)
        valid = i % 97 != 13 and i % 131 != 7
        if i % 97 == 13:
            signature[3] ^= 0x40
        elif i % 131 == 7:
            public_key = bytes(31) + b"\x02"  # not the signer's key (may not even decode)
        public_keys.append(public_key)
        messages += message
        offsets.append(len(messages))
        signatures.append(bytes(signature))
        expected.append(valid)
    verdicts = KERNEL.verify_batch(b"".join(public_keys), messages, offsets,
                                   b"".join(signatures), threads)
    assert verdicts == expected
    assert 0 < expected.count(False) < count
    singles = [KERNEL.verify_one(public_keys[i], messages[offsets[i]:offsets[i + 1]],
                                 signatures[i]) for i in range(count)]
    assert singles == expected


# --- hypothesis: mutated bytes ----------------------------------------------------------
BASE_TXS = [make_tx(), make_tx(payload=b""), make_tx(chain_id=b"x", sign_chain=b"x"),
            make_tx(payload=b"z" * 300, expiry_height=HEIGHT)]

mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 2000), st.integers(1, 255)),
    st.tuples(st.just("truncate"), st.integers(0, 2000), st.just(0)),
    st.tuples(st.just("extend"), st.integers(1, 40), st.integers(0, 255)),
    st.tuples(st.just("set"), st.integers(0, 2000), st.integers(0, 255)),
)


def mutate(tx: bytes, ops: list[tuple[str, int, int]]) -> bytes:
    data = bytearray(tx)
    for op, position, value in ops:
        if op == "flip" and data:
            data[position % len(data)] ^= value
        elif op == "set" and data:
            data[position % len(data)] = value
        elif op == "truncate":
            del data[position % (len(data) + 1):]
        elif op == "extend":
            data += bytes([value]) * position
    return bytes(data)


@pytest.mark.skipif(KERNEL is None, reason="chainmall.ext._verify is not built")
@settings(max_examples=300)
@given(
    st.lists(
        st.tuples(st.sampled_from(range(len(BASE_TXS))), st.lists(mutation, max_size=4)),
        min_size=1, max_size=6,
    ),
    st.sampled_from([0, HEIGHT, HEIGHT + 1, constants.U64_MAX]),
)
def test_mutated_txs_kernel_equals_reference(
    picks: list[tuple[int, list[tuple[str, int, int]]]], height: int
) -> None:
    txs = [mutate(BASE_TXS[i], ops) for i, ops in picks]
    expected = run(reference, txs, height=height)
    assert run(KERNEL, txs, height=height, threads=1) == expected
    assert run(KERNEL, txs, height=height, threads=2) == expected
    assert expected[1] == _expected_ids(txs, expected[0])


@pytest.mark.parametrize("impl", IMPLS)
@settings(max_examples=60)
@given(st.lists(st.tuples(st.integers(0, 2), st.binary(max_size=80), st.integers(0, 3)),
                max_size=12))
def test_verify_batch_matches_pynacl(impl: object, items: list[tuple[int, bytes, int]]) -> None:
    public_keys, messages, offsets, signatures, expected = b"", b"", [0], b"", []
    for key_index, message, fault in items:
        key = KEYS[key_index]
        signature = bytearray(key.sign(message).signature)
        public_key = bytes(key.verify_key)
        if fault == 1:
            signature[fault * 7] ^= 1
        elif fault == 2:
            public_key = bytes(KEYS[(key_index + 1) % 3].verify_key)
        public_keys += public_key
        messages += message
        offsets.append(len(messages))
        signatures += bytes(signature)
        expected.append(fault in (0, 3))
    assert impl.verify_batch(public_keys, messages, offsets, signatures, 2) == expected


# --- argument errors --------------------------------------------------------------------
def _bad_validate_args() -> list[tuple[str, tuple, type[Exception]]]:
    txs = [make_tx(), make_tx(nonce=1)]
    packed, offsets = pack(txs)
    n = len(packed)
    return [
        ("no offsets", (packed, [], CHAIN, HEIGHT), ValueError),
        ("offset past the end", (packed, [0, offsets[1], n + 1], CHAIN, HEIGHT), ValueError),
        ("negative offset", (packed, [-1, offsets[1], n], CHAIN, HEIGHT), ValueError),
        ("decreasing offsets", (packed, [0, offsets[1], 3], CHAIN, HEIGHT), ValueError),
        ("huge offset", (packed, [0, 2**70], CHAIN, HEIGHT), ValueError),
        ("too many items", (b"", [0] * (constants.BATCH_ITEMS_MAX + 2), CHAIN, HEIGHT),
         ValueError),
        ("empty chain id", (packed, offsets, b"", HEIGHT), ValueError),
        ("chain id too long", (packed, offsets, b"c" * 33, HEIGHT), ValueError),
        ("chain id bad byte", (packed, offsets, b"Chain", HEIGHT), ValueError),
        ("negative height", (packed, offsets, CHAIN, -1), ValueError),
        ("height 2^64", (packed, offsets, CHAIN, 2**64), ValueError),
        ("height bool", (packed, offsets, CHAIN, True), TypeError),
        ("height str", (packed, offsets, CHAIN, "1"), TypeError),
        ("offset str", (packed, [0, "1"], CHAIN, HEIGHT), TypeError),
        ("txs None", (None, offsets, CHAIN, HEIGHT), TypeError),
        ("txs str", ("abc", [0, 1], CHAIN, HEIGHT), TypeError),
        ("threads negative", (packed, offsets, CHAIN, HEIGHT, -1), ValueError),
        ("threads over max", (packed, offsets, CHAIN, HEIGHT, 257), ValueError),
        ("threads bool", (packed, offsets, CHAIN, HEIGHT, True), TypeError),
    ]


BAD_VALIDATE = _bad_validate_args()


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("label,args,error", BAD_VALIDATE, ids=[b[0] for b in BAD_VALIDATE])
def test_validate_batch_argument_errors(impl: object, label: str, args: tuple,
                                        error: type[Exception]) -> None:
    with pytest.raises(error):
        impl.validate_batch(*args)


def _bad_verify_args() -> list[tuple[str, tuple, type[Exception]]]:
    key = KEYS[0]
    pk, sig, msg = bytes(key.verify_key), key.sign(b"hi").signature, b"hi"
    return [
        ("no offsets", (pk, msg, [], sig), ValueError),
        ("public keys short", (pk[:-1], msg, [0, 2], sig), ValueError),
        ("public keys long", (pk + b"\x00", msg, [0, 2], sig), ValueError),
        ("signatures short", (pk, msg, [0, 2], sig[:-1]), ValueError),
        ("signatures for two items", (pk, msg, [0, 2], sig * 2), ValueError),
        ("offset past the end", (pk, msg, [0, 3], sig), ValueError),
        ("decreasing offsets", (pk * 2, msg, [0, 2, 1], sig * 2), ValueError),
        ("negative offset", (pk, msg, [-1, 2], sig), ValueError),
        ("too many items", (b"", b"", [0] * (constants.BATCH_ITEMS_MAX + 2), b""), ValueError),
        ("threads negative", (pk, msg, [0, 2], sig, -1), ValueError),
        ("messages None", (pk, None, [0, 2], sig), TypeError),
    ]


BAD_VERIFY = _bad_verify_args()


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("label,args,error", BAD_VERIFY, ids=[b[0] for b in BAD_VERIFY])
def test_verify_batch_argument_errors(impl: object, label: str, args: tuple,
                                      error: type[Exception]) -> None:
    with pytest.raises(error):
        impl.verify_batch(*args)


@pytest.mark.parametrize("impl", IMPLS)
def test_bytearray_and_memoryview_inputs(impl: object) -> None:
    txs = [make_tx(), make_tx(nonce=9)]
    packed, offsets = pack(txs)
    expected = impl.validate_batch(packed, offsets, CHAIN, HEIGHT)
    assert impl.validate_batch(bytearray(packed), offsets, CHAIN, HEIGHT) == expected
    assert impl.validate_batch(memoryview(packed), tuple(offsets), bytearray(CHAIN),
                               HEIGHT) == expected


@pytest.mark.skipif(KERNEL is None, reason="chainmall.ext._verify is not built")
def test_kernel_describes_itself() -> None:
    text = KERNEL.describe()
    assert text.startswith(f"ZIP 215 via {KERNEL.ed25519_version()}, ")
    assert f"back end {KERNEL.ed25519_backend()}" in text
    assert "OpenMP" in text and KERNEL.blake3_backend() in text


# --- non-contiguous and odd buffers: ValueError / TypeError, never BufferError ------------
def _strided(data: bytes) -> memoryview:
    """A view of `data` that is not contiguous (every other byte of a doubled buffer)."""
    doubled = bytearray(len(data) * 2)
    doubled[::2] = data
    view = memoryview(doubled)[::2]
    assert not view.c_contiguous and view.tobytes() == data
    return view


def _verify_args() -> tuple[bytes, bytes, list[int], bytes]:
    key = KEYS[0]
    return bytes(key.verify_key), b"hi", [0, 2], key.sign(b"hi").signature


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("position", range(3), ids=["public_keys", "messages", "signatures"])
def test_verify_batch_non_contiguous_is_value_error(impl: object, position: int) -> None:
    pk, msg, offsets, sig = _verify_args()
    args = [pk, msg, offsets, sig]
    index = (0, 1, 3)[position]
    args[index] = _strided(args[index])
    with pytest.raises(ValueError, match="contiguous"):
        impl.verify_batch(*args)


@pytest.mark.parametrize("impl", IMPLS)
def test_validate_batch_non_contiguous_is_value_error(impl: object) -> None:
    packed, offsets = pack([make_tx()])
    with pytest.raises(ValueError, match="contiguous"):
        impl.validate_batch(_strided(packed), offsets, CHAIN, HEIGHT)


ONE_IMPLS = [
    pytest.param(KERNEL.verify_one if KERNEL else None, id="kernel", marks=pytest.mark.skipif(
        KERNEL is None, reason="chainmall.ext._verify is not built")),
    pytest.param(ed25519.verify_one, id="reference"),
]


@pytest.mark.parametrize("verify_one", ONE_IMPLS)
def test_verify_one_argument_errors(verify_one) -> None:  # type: ignore[no-untyped-def]
    pk, msg, _, sig = _verify_args()
    assert verify_one(pk, msg, sig) is True
    assert verify_one(bytearray(pk), memoryview(msg), bytearray(sig)) is True
    assert verify_one(pk, msg[:1], sig) is False
    for bad, error in [((pk[:31], msg, sig), ValueError), ((pk, msg, sig + b"\0"), ValueError),
                       ((_strided(pk), msg, sig), ValueError),
                       ((pk, _strided(msg), sig), ValueError),
                       ((None, msg, sig), TypeError), ((pk, "hi", sig), TypeError),
                       ((pk, msg, 64), TypeError)]:
        with pytest.raises(error):
            verify_one(*bad)


@pytest.mark.parametrize("impl", IMPLS)
def test_signed_byte_buffers_are_accepted(impl: object) -> None:
    # Any contiguous buffer of 1-byte items is taken as its raw bytes (format 'b' too).
    import array

    pk, msg, offsets, sig = _verify_args()
    as_signed = [array.array("b", x) for x in (pk, msg, sig)]
    assert impl.verify_batch(as_signed[0], as_signed[1], offsets, as_signed[2]) == [True]


# --- batch equations and their fallback -------------------------------------------------
BATCH = constants.ED25519_BATCH_ITEMS


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("count", [1, 2, BATCH - 1, BATCH, BATCH + 1, 2 * BATCH + 3])
def test_bad_signature_at_every_batch_edge(impl: object, count: int) -> None:
    # Bad signatures at the first and last place of each batch and just past it.
    if impl is reference and count > BATCH:
        pytest.skip("the reference checks one at a time; the long cases are for the kernel")
    bad_places = {p for start in range(0, count, BATCH)
                  for p in (start, start + BATCH - 1, start + 1) if p < count}
    txs = [make_tx(nonce=i, signer=KEYS[1] if i in bad_places else None) for i in range(count)]
    expected = [BAD_SIG if i in bad_places else OK for i in range(count)]
    for threads in (1, 2):
        assert run(impl, txs, threads=threads)[0] == expected


@pytest.mark.skipif(KERNEL is None, reason="chainmall.ext._verify is not built")
@settings(max_examples=40)
@given(st.integers(1, 3 * BATCH), st.sets(st.integers(0, 3 * BATCH - 1), max_size=8),
       st.sampled_from([1, 2]))
def test_kernel_batches_find_every_bad_signature(count: int, bad: set[int],
                                                 threads: int) -> None:
    keys = [bytes(KEYS[i % 3].verify_key) for i in range(count)]
    messages = [b"item %d" % i for i in range(count)]
    signatures = []
    for i in range(count):
        signature = bytearray(KEYS[i % 3].sign(messages[i]).signature)
        if i in bad:
            signature[40] ^= 0x04
        signatures.append(bytes(signature))
    offsets = [0]
    for message in messages:
        offsets.append(offsets[-1] + len(message))
    verdicts = KERNEL.verify_batch(b"".join(keys), b"".join(messages), offsets,
                                   b"".join(signatures), threads)
    assert verdicts == [i not in bad for i in range(count)]


# --- the project codec (core/tx.py) and the kernel choice (core/accel.py) ---------------
@pytest.mark.parametrize("impl", IMPLS)
def test_txs_from_core_tx_validate(impl: object) -> None:
    from chainmall.core.keys import KeyPair
    from chainmall.core.tx import decode_tx, pack_txs, sign_tx

    keypair = KeyPair.from_seed(SEEDS[0])
    signed = [sign_tx(keypair, CHAIN.decode(), 7, nonce, 10, HEIGHT + nonce - 2, b"p" * nonce)
              for nonce in range(5)]
    wire = [tx.encode() for tx in signed]
    assert wire[3] == make_tx(tx_type=7, nonce=3, expiry_height=HEIGHT + 1, payload=b"ppp")
    packed, offsets = pack_txs(wire)
    codes, ids = impl.validate_batch(packed, offsets, CHAIN, HEIGHT)
    assert codes == [EXPIRED, EXPIRED, OK, OK, OK]
    assert ids == b"".join(decode_tx(raw).tx_id for raw in wire)


def test_worked_example_in_docs() -> None:
    # docs/verification.md section 6: RFC 8032 TEST 1 key, chain "chainmall-dev".
    from chainmall.core.keys import KeyPair
    from chainmall.core.tx import sign_tx

    seed = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    tx = sign_tx(KeyPair.from_seed(seed), "chainmall-dev", 1, 7, 1000, 100, b"hello")
    assert tx.tx_id.hex() == "bcd689e558225ed6e7a0c6cbb4c39f49b9f07195ad1333914cefc44956662254"
    assert tx.signature.hex() == (
        "0278a10e2d31ad44fd314f515b43013ae131485c7630f3e32ab3506412b390df"
        "bcfb1ce7299f9059918ea6e2a6f8075fc705862f37b0b96d929e59631acff000"
    )
    wire = tx.encode()
    assert len(wire) == 146
    for impl in [reference] + ([KERNEL] if KERNEL is not None else []):
        assert impl.validate_batch(wire, [0, 146], b"chainmall-dev", 100) == ([OK], tx.tx_id)
        assert impl.validate_batch(wire, [0, 146], b"chainmall-dev", 101)[0] == [EXPIRED]
        assert impl.validate_batch(wire, [0, 146], b"chainmall-main", 100)[0] == [WRONG_CHAIN]


def test_accel_serves_the_kernel_when_built() -> None:
    from chainmall.core import accel

    if KERNEL is None or accel.PURE:
        assert accel.validate_batch is reference.validate_batch
        assert accel.verify_batch is reference.verify_batch
    else:
        assert accel.validate_batch is KERNEL.validate_batch
        assert accel.verify_batch is KERNEL.verify_batch


def _cache_slot(public_key: bytes) -> int:
    """The slot of the kernel's decoded-key cache (ext/ed25519/src/lib.rs, KEY_CACHE)."""
    return int.from_bytes(public_key[:2], "little") % 1024


@pytest.mark.skipif(KERNEL is None, reason="chainmall.ext._verify is not built")
def test_single_path_key_cache_never_mixes_keys() -> None:
    """Two keys that share a cache slot, checked in turn: each verdict is its own key's,
    whether the slot held that key (a hit), the other key or nothing."""
    by_slot: dict[int, nacl.signing.SigningKey] = {}
    for seed in range(1, 100_000):
        key = nacl.signing.SigningKey(seed.to_bytes(32, "big"))
        slot = _cache_slot(bytes(key.verify_key))
        if slot in by_slot:
            first, second = by_slot[slot], key
            break
        by_slot[slot] = key
    message = b"one slot, two keys"
    pk_a, pk_b = bytes(first.verify_key), bytes(second.verify_key)
    sig_a, sig_b = first.sign(message).signature, second.sign(message).signature
    for _ in range(3):  # miss, hit, and after the other key took the slot
        assert KERNEL.verify_one(pk_a, message, sig_a)
        assert not KERNEL.verify_one(pk_b, message, sig_a)
        assert KERNEL.verify_one(pk_b, message, sig_b)
        assert not KERNEL.verify_one(pk_a, message, sig_b)
        assert KERNEL.verify_one(pk_a, message, sig_a)
        assert not KERNEL.verify_one(pk_a, message + b"!", sig_a)
