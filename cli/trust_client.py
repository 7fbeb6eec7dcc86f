"""What the trust commands add to the shared node client: proven reads, several txs in a row.

Reads are `read(client, path, data)`: the `/trust/...` query with proofs,
every entry checked against the state root the node answered with before
anything is shown (`cli/proven.py`; a failing proof is `InvalidProof`, never
a result). Tx commands take the shared signing options (`tx_options`,
`cli/node_client.py`: `--from`, `--fee`, `--nonce`, `--expiry-height`,
`--no-wait`, `--timeout`, ...); `send` signs one or more payloads with
consecutive nonces (a review longer than one tx's part is two txs), submits
them in order and waits until each is final (unless `--no-wait`), printing
one line per tx and ending the command with the receipt's error when one
failed.
"""

from __future__ import annotations

from collections.abc import Mapping

from chainmall.core.constants import HASH_BYTES
from chainmall.core.keys import KeyPair
from chainmall.core.rpc import codec
from chainmall.core.rpc.client import BlockingClient
from chainmall.core.rpc.services import TxInfo, TxState

from .context import Context
from .node_client import (
    TxOptions,
    address_argument,
    connect,
    fail_if_failed,
    load_signer,
    node_options,
    sign_many,
    submit,
    tx_line,
    tx_options,
)
from .proven import Proven
from .proven import proven_query as read

__all__ = ["Proven", "TxOptions", "address_of", "connect", "hex_id", "node_options", "read",
           "send", "tx_options"]

address_of = address_argument  # `cm1...` text or a key name: the 20-byte address


def hex_id(text: str, what: str) -> bytes:
    """A 32-byte id given as 64 hex digits (ValueError, one line, otherwise)."""
    return codec.parse_hex(text.strip().lower(), what, HASH_BYTES)


def send(obj: Context, options: TxOptions, payloads: list[tuple[int, bytes]],
         named: Mapping[str, str] | None = None, keypair: KeyPair | None = None,
         client: BlockingClient | None = None, id_name: str = "") -> list[TxInfo]:
    """Sign `payloads` (tx type, payload) as `--from` with consecutive nonces, submit them in
    order (each waited for unless `--no-wait`), print them (then the `named` ids, and the
    first tx's id as `id_name` if given: a report's id is its tx id), and end the command
    with the first failed receipt's error. A tx that fails stops the rest."""
    keypair = keypair or load_signer(obj, options)
    infos: list[TxInfo] = []
    own = client is None
    client = client or connect(options.node_address, options.token)
    try:
        for signed in sign_many(client, keypair, options, payloads):
            infos.append(submit(client, signed, options))
            if not options.no_wait and (infos[-1].state is not TxState.FINAL
                                        or infos[-1].code != 0):
                break
    finally:
        if own:
            client.close()
    named = dict(named or {})
    if id_name and infos:
        named[id_name] = infos[0].tx_id.hex()
    lines = [tx_line(info, waited=not options.no_wait) for info in infos]
    lines += [f"{name.replace('_', ' ')}: {value}" for name, value in named.items()]
    obj.emit("\n".join(lines), {"txs": [codec.tx_json(info) for info in infos], **named})
    for info in infos:
        fail_if_failed(info)
    return infos
