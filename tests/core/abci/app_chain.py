"""A small chain for the application's tests: funded keys, one validator, signed transfers
and block requests."""

from __future__ import annotations

from collections.abc import Iterable

from chainmall.core.abci.types import BlockRequest, validator_address
from chainmall.core.constants import TX_TYPE_TRANSFER
from chainmall.core.genesis import Genesis, make_genesis
from chainmall.core.keys import KeyPair
from chainmall.core.state.accounts import encode_transfer
from chainmall.core.tx import sign_tx

VALIDATOR = KeyPair.from_seed(b"v" * 32)
PROPOSER = validator_address(VALIDATOR.public_key)


class AppChain:
    """`accounts` keys with 1,000 units each at genesis (time 5 ms, fee 1) and VALIDATOR
    (power 3); transfers go to the last key."""

    def __init__(self, chain_id: str, accounts: int) -> None:
        self.chain_id = chain_id
        self.keys = [KeyPair.from_seed(bytes([i]) * 32) for i in range(1, accounts + 1)]
        self.genesis: Genesis = make_genesis(
            chain_id, [(k.address, 1_000) for k in self.keys], [(VALIDATOR.public_key, 3)],
            genesis_time_ms=5, fee_min=1)

    def transfer(self, key: KeyPair, nonce: int, amount: int = 10) -> bytes:
        """A signed transfer of `amount` from `key` to the last key (fee 1, gas 100)."""
        return sign_tx(key, self.chain_id, TX_TYPE_TRANSFER, nonce, 1, 100,
                       encode_transfer(self.keys[-1].address, amount)).encode()


def block(height: int, txs: Iterable[bytes], time_ms: int = 10) -> BlockRequest:
    """A FinalizeBlock request from VALIDATOR."""
    return BlockRequest(height, time_ms, tuple(txs), PROPOSER)


def forged(tx: bytes) -> bytes:
    """`tx` with its signature's last byte flipped."""
    bad = bytearray(tx)
    bad[-1] ^= 1
    return bytes(bad)
