"""Shipping addresses sealed to the merchant: libsodium sealed boxes (client side).

The buyer's client seals the address to the X25519 key derived from the
merchant's Ed25519 public key (`crypto_sign_ed25519_pk_to_curve25519`, as
libsodium documents for reusing a signing key for encryption); only the
ciphertext goes on chain. The merchant opens it with the X25519 secret key
derived from its Ed25519 seed. A sealed box is anonymous (ephemeral sender
key) and `SEALED_BOX_OVERHEAD_BYTES` longer than the plaintext.
"""

from __future__ import annotations

import nacl.bindings
import nacl.exceptions
import nacl.public

from ..constants import PUBLIC_KEY_BYTES, SEALED_ADDRESS_BYTES_MAX, SEALED_BOX_OVERHEAD_BYTES
from ..errors import InvalidKey
from ..keys import KeyPair

ADDRESS_TEXT_BYTES_MAX = SEALED_ADDRESS_BYTES_MAX - SEALED_BOX_OVERHEAD_BYTES


def seal_address(merchant_public_key: bytes, address_text: str) -> bytes:
    """The sealed box of `address_text` (UTF-8) for the merchant's Ed25519 public key."""
    if not isinstance(merchant_public_key, bytes) or len(merchant_public_key) != PUBLIC_KEY_BYTES:
        raise InvalidKey(f"a merchant public key is {PUBLIC_KEY_BYTES} bytes")
    plain = address_text.encode("utf-8")
    if not 1 <= len(plain) <= ADDRESS_TEXT_BYTES_MAX:
        raise ValueError(f"an address is 1..{ADDRESS_TEXT_BYTES_MAX} bytes of UTF-8")
    try:
        curve = nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(merchant_public_key)
    except nacl.exceptions.CryptoError as exc:
        raise InvalidKey(f"the merchant key has no X25519 form: {exc}") from None
    sealed = nacl.public.SealedBox(nacl.public.PublicKey(curve)).encrypt(plain)
    assert len(sealed) == len(plain) + SEALED_BOX_OVERHEAD_BYTES
    return bytes(sealed)


def open_address(merchant: KeyPair, sealed: bytes) -> str:
    """The address text of a sealed box, opened with the merchant's key pair.

    nacl.exceptions.CryptoError if the box was not sealed to this merchant or
    was altered.
    """
    secret = nacl.bindings.crypto_sign_ed25519_sk_to_curve25519(merchant.seed
                                                                 + merchant.public_key)
    box = nacl.public.SealedBox(nacl.public.PrivateKey(secret))
    return box.decrypt(bytes(sealed)).decode("utf-8")
