"""Type stubs of chainmall.ext._verify: batch Ed25519 and stateless tx checks in C."""

from collections.abc import Sequence

_Buffer = bytes | bytearray | memoryview

TX_OK: int
DECODE_ERROR: int
TX_TOO_LARGE: int
WRONG_CHAIN: int
TX_EXPIRED: int
BAD_SIGNATURE: int
TX_VERSION: int
CHAIN_ID_BYTES_MIN: int
CHAIN_ID_BYTES_MAX: int
CHAIN_ID_ALPHABET: bytes
TX_PAYLOAD_BYTES_MAX: int
TX_BODY_FIXED_BYTES: int
TX_BYTES_MAX: int
TX_SIGN_DOMAIN: bytes
HASH_BYTES: int
PUBLIC_KEY_BYTES: int
SIGNATURE_BYTES: int
U64_MAX: int
BATCH_ITEMS_MAX: int
VERIFY_THREADS_MAX: int

def verify_batch(
    public_keys: _Buffer,
    messages: _Buffer,
    offsets: Sequence[int],
    signatures: _Buffer,
    threads: int = 0,
) -> list[bool]:
    """Ed25519-verify n signatures (libsodium's strict rule); one bool per item."""

def validate_batch(
    txs: _Buffer,
    offsets: Sequence[int],
    chain_id: bytes,
    height: int,
    threads: int = 0,
) -> tuple[list[int], bytes]:
    """Stateless checks of n packed txs: (per-tx codes, n * 32 bytes of tx ids)."""

def sodium_version() -> str:
    """Version of the linked libsodium."""

def blake3_backend() -> str:
    """Name of the BLAKE3 back end in use."""

def describe() -> str:
    """One line: libsodium version, threading, BLAKE3 back end."""
