"""Ed25519 key pairs (libsodium via PyNaCl) and the single-signature verification path.

Keys and signing stay on libsodium; verdicts do not. One verification rule
everywhere, ZIP 215 (docs/verification.md): `verify_signature` runs the
compiled verifier (`chainmall.ext._verify.verify_one`, ed25519-zebra) or its
pure-Python reference (`core/ed25519.py`), as `core/kernels.py` chooses, and
the batch paths must agree with it on every vector.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import nacl.signing

from .address import address_from_public_key
from .constants import PUBLIC_KEY_BYTES, SEED_BYTES, SIGNATURE_BYTES
from .errors import InvalidKey
from .kernels import verify_one

_BYTES_LIKE = (bytes, bytearray, memoryview)


@dataclass(frozen=True)
class KeyPair:
    """An Ed25519 key pair, kept as its 32-byte seed (libsodium's secret is seed || pk).

    The seed never appears in `repr`; build one with `from_seed` or `generate`.
    """

    seed: bytes = field(repr=False)
    public_key: bytes = field(init=False)
    _signer: nacl.signing.SigningKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if type(self.seed) is not bytes or len(self.seed) != SEED_BYTES:
            raise InvalidKey(f"an Ed25519 seed is {SEED_BYTES} bytes")
        signer = nacl.signing.SigningKey(self.seed)
        object.__setattr__(self, "_signer", signer)
        object.__setattr__(self, "public_key", bytes(signer.verify_key))

    @classmethod
    def generate(cls) -> KeyPair:
        """A new key pair from the operating system's randomness."""
        return cls(bytes(nacl.signing.SigningKey.generate()))

    @classmethod
    def from_seed(cls, seed: bytes) -> KeyPair:
        """The key pair of a 32-byte seed (deterministic); InvalidKey for anything else."""
        if not isinstance(seed, _BYTES_LIKE):  # bytes(32) would make an all-zero seed
            raise InvalidKey(f"a seed is bytes, got {type(seed).__name__}")
        return cls(bytes(seed))

    @property
    def address(self) -> bytes:
        """The 20-byte account address of the public key."""
        return address_from_public_key(self.public_key)

    def sign(self, message: bytes) -> bytes:
        """The 64-byte detached Ed25519 signature of `message`."""
        return self._signer.sign(bytes(message)).signature


def verify_signature(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """The ZIP 215 verdict on one signature; False (never an exception) for any bad input.

    A key that is not 32 bytes, a signature that is not 64 bytes, or an argument
    that is not a contiguous bytes-like object is simply not a valid signature.
    """
    if type(public_key) is bytes and type(message) is bytes and type(signature) is bytes:
        if len(public_key) != PUBLIC_KEY_BYTES or len(signature) != SIGNATURE_BYTES:
            return False
        return verify_one(public_key, message, signature)
    if not all(isinstance(x, _BYTES_LIKE) for x in (public_key, message, signature)):
        return False
    try:
        public_key, message, signature = (
            memoryview(x).tobytes() for x in (public_key, message, signature)
        )
    except (TypeError, ValueError):
        return False
    if len(public_key) != PUBLIC_KEY_BYTES or len(signature) != SIGNATURE_BYTES:
        return False
    return verify_one(public_key, message, signature)
