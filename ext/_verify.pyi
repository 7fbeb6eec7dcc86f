"""Type stubs of chainmall.ext._verify: ZIP 215 Ed25519 (single and batch), stateless tx checks."""

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
ED25519_BATCH_ITEMS: int

def verify_one(public_key: _Buffer, message: _Buffer, signature: _Buffer) -> bool:
    """ZIP 215 verdict on one signature (ValueError for wrong lengths)."""

def verify_batch(
    public_keys: _Buffer,
    messages: _Buffer,
    offsets: Sequence[int],
    signatures: _Buffer,
    threads: int = 0,
) -> list[bool]:
    """Ed25519-verify n signatures under ZIP 215; one bool per item."""

def validate_batch(
    txs: _Buffer,
    offsets: Sequence[int],
    chain_id: bytes,
    height: int,
    threads: int = 0,
) -> tuple[list[int], bytes]:
    """Stateless checks of n packed txs: (per-tx codes, n * 32 bytes of tx ids)."""

def ed25519_backend() -> str:
    """The curve25519-dalek back end in use: "avx512ifma", "avx2" or "serial"."""

def ed25519_compiled_backends() -> str:
    """The back ends compiled in, best first, comma-separated."""

def ed25519_version() -> str:
    """ "ed25519-zebra X, curve25519-dalek Y" (from Cargo.lock)."""

def blake3_backend() -> str:
    """Name of the BLAKE3 back end in use."""

def describe() -> str:
    """One line: rule, Ed25519 library and back end, batch size, threads, BLAKE3 back end."""
