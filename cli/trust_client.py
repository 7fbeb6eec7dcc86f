"""What the trust commands share: proven reads, signed trust txs, ids and addresses.

`read(client, path, data)` asks a `/trust/...` query with proofs and checks
every entry against the state root the node answered with before anything
is shown (a failing proof is `InvalidProof`, never a result). `sign_options`
adds the signing options of a tx command (`--from KEY`, `--fee`, `--no-wait`,
`--timeout`, `--key-dir`, `--passphrase-file`, plus `--node`/`--token`);
`send` signs one or more payloads with consecutive nonces, submits them in
order and waits until each is final (unless `--no-wait`), printing one line
per tx and ending the command with the receipt's error when one failed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
from chainmall.core.address import decode_address
from chainmall.core.constants import (
    ADDRESS_BYTES,
    HASH_BYTES,
    RPC_WAIT_MS_DEFAULT,
    RPC_WAIT_MS_MAX,
    U64_MAX,
)
from chainmall.core.errors import (
    ChainmallError,
    InvalidAddress,
    InvalidProof,
    KeyStoreError,
    error_class,
)
from chainmall.core.keys import KeyPair
from chainmall.core.keystore import KeyStore
from chainmall.core.rpc import codec
from chainmall.core.rpc.client import BlockingClient
from chainmall.core.rpc.services import TxInfo, TxState
from chainmall.core.state.root import decode_proof, verify_proof
from chainmall.core.tx import sign_tx

from .chain import node_options
from .context import Context
from .keys import read_passphrase

TX_EXPIRY_BLOCKS = 1_000  # a trust tx sent now may be included up to this many blocks ahead

F = TypeVar("F", bound=Callable[..., object])


# --- reading ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Proven:
    """A query's entries, each proven against `root`, the state root at `height`."""

    path: str
    height: int
    root: bytes
    entries: tuple[tuple[bytes, bytes | None], ...]

    def table(self, table: int) -> list[tuple[bytes, bytes]]:
        """The present entries of one state table, in the order served."""
        return [(key, value) for key, value in self.entries
                if key[0] == table and value is not None]

    def get(self, key: bytes) -> bytes | None:
        return dict(self.entries).get(key)

    def line(self) -> str:
        return (f"proofs: {len(self.entries)} entries verified against state root "
                f"{self.root.hex()} (height {self.height})")

    def json(self) -> dict[str, Any]:
        return {"height": self.height, "state_root": self.root.hex(),
                "entries_verified": len(self.entries)}


def connect(node_address: str, token: str) -> BlockingClient:
    """A blocking client of the node (one line, NodeUnreachable, when it cannot be reached)."""
    return BlockingClient(node_address, token)


def read(client: BlockingClient, path: str, data: bytes = b"") -> Proven:
    """`path` with proofs, every entry checked against the answer's root (InvalidProof)."""
    result = client.query(path, data, prove=True)
    for entry in result.entries:
        if not entry.proof or not verify_proof(result.root, entry.key, entry.value,
                                               decode_proof(entry.proof)):
            raise InvalidProof(f"{path}: entry {entry.key.hex()} does not prove against state "
                               f"root {result.root.hex()}: do not trust this node's answer")
    return Proven(path, result.height, result.root,
                  tuple((entry.key, entry.value) for entry in result.entries))


# --- arguments ----------------------------------------------------------------------------


def address_of(obj: Context, text: str) -> bytes:
    """`cm1...` text, or the name of a key in the key store: the 20-byte address."""
    try:
        address = decode_address(text)
    except InvalidAddress as error:
        if text.startswith("cm1"):
            raise
        try:
            address = decode_address(KeyStore(obj.home / "keys").show(text).address_text)
        except KeyStoreError:
            raise InvalidAddress(f"{text!r} is neither a cm1... address nor a key name in "
                                 f"{obj.home / 'keys'}") from error
    assert len(address) == ADDRESS_BYTES
    return address


def hex_id(text: str, what: str) -> bytes:
    """A 32-byte id given as 64 hex digits (ValueError, one line, otherwise)."""
    return codec.parse_hex(text.strip().lower(), what, HASH_BYTES)


# --- sending ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignOptions:
    """The signing and node options of one tx command (see `sign_options`)."""

    sender: str
    fee: int
    no_wait: bool
    timeout_s: float
    key_dir: Path | None
    passphrase_file: Path | None
    node_address: str
    token: str


_SIGN_FIELDS = SignOptions.__slots__


def sign_options(function: F) -> F:
    """The options of a command that signs and sends txs, passed as `tx: SignOptions`."""

    @functools.wraps(function)
    def command(*args: Any, **kwargs: Any) -> Any:
        options = SignOptions(**{name: kwargs.pop(name) for name in _SIGN_FIELDS})
        return function(*args, tx=options, **kwargs)

    decorators = [
        click.option("--from", "sender", required=True, metavar="KEY",
                     help="Name of the signing key in the key store."),
        click.option("--fee", type=click.IntRange(0, U64_MAX), default=1, show_default=True,
                     help="Fee per tx in base units (at least the chain's fee_min)."),
        click.option("--no-wait", is_flag=True,
                     help="Return once admitted, without waiting for finality."),
        click.option("--timeout", "timeout_s",
                     type=click.FloatRange(0.1, RPC_WAIT_MS_MAX / 1000),
                     default=RPC_WAIT_MS_DEFAULT / 1000, show_default=True,
                     help="Seconds to wait for finality (per tx)."),
        click.option("--key-dir", type=click.Path(file_okay=False, path_type=Path),
                     default=None, help="Key directory [default: HOME/keys]."),
        click.option("--passphrase-file",
                     type=click.Path(dir_okay=False, exists=True, path_type=Path),
                     help="Passphrase of an encrypted key (else $CHAINMALL_PASSPHRASE or a "
                          "prompt)."),
        node_options,
    ]
    for decorate in reversed(decorators):
        command = decorate(command)
    return command  # type: ignore[return-value]


def load_signer(obj: Context, options: SignOptions) -> KeyPair:
    """The `--from` key (asking for the passphrase of an encrypted one)."""
    store = KeyStore(options.key_dir or obj.home / "keys")
    passphrase = None
    if store.show(options.sender).encrypted:
        passphrase = read_passphrase(options.passphrase_file, confirm=False)
    return store.load(options.sender, passphrase)


def tx_line(info: TxInfo) -> str:
    """One line: the tx id and where it is (final: height, ok or the error)."""
    tx_id = info.tx_id.hex()
    if info.state is TxState.PENDING:
        return f"tx {tx_id}: submitted (not waiting for finality)"
    if info.state is not TxState.FINAL:
        return f"tx {tx_id}: {info.state.value}"
    outcome = "ok" if info.code == 0 else f"failed: {codec.error_name(info.code)} ({info.code})"
    return f"tx {tx_id}: final at height {info.height} (index {info.index}): {outcome}"


def _fail_if_failed(info: TxInfo) -> None:
    if info.state is TxState.FINAL and info.code != 0:
        try:
            cls = error_class(info.code)
        except KeyError:
            cls = ChainmallError
        raise cls(f"tx {info.tx_id.hex()} failed at height {info.height}: "
                  f"{codec.error_name(info.code)} ({info.code}): {info.log or 'no detail'}")


def send(obj: Context, options: SignOptions, payloads: list[tuple[int, bytes]],
         named: Mapping[str, str] | None = None, keypair: KeyPair | None = None,
         client: BlockingClient | None = None, id_name: str = "") -> list[TxInfo]:
    """Sign `payloads` (tx type, payload) as `--from` with consecutive nonces, submit them in
    order (each waited for unless `--no-wait`), print them (then the `named` ids, and the
    first tx's id as `id_name` if given: a report's id is its tx id), and end the command
    with the first failed receipt's error. A failed tx stops the rest."""
    keypair = keypair or load_signer(obj, options)
    infos: list[TxInfo] = []
    own = client is None
    client = client or connect(options.node_address, options.token)
    try:
        current = client.status()
        nonce = client.account(keypair.address).nonce
        expiry = min(U64_MAX, current.height + TX_EXPIRY_BLOCKS)
        for offset, (tx_type, payload) in enumerate(payloads):
            signed = sign_tx(keypair, current.chain_id, tx_type, nonce + offset, options.fee,
                             expiry, payload)
            if options.no_wait:
                tx_id = client.submit_tx(signed.encode())
                infos.append(TxInfo(tx_id, TxState.PENDING, tx=signed.encode()))
                continue
            infos.append(client.submit_tx_wait(signed.encode(), options.timeout_s))
            if infos[-1].state is not TxState.FINAL or infos[-1].code != 0:
                break
    finally:
        if own:
            client.close()
    named = dict(named or {})
    if id_name and infos:
        named[id_name] = infos[0].tx_id.hex()
    lines = [tx_line(info) for info in infos]
    lines += [f"{name.replace('_', ' ')}: {value}" for name, value in named.items()]
    obj.emit("\n".join(lines), {"txs": [codec.tx_json(info) for info in infos], **named})
    for info in infos:
        _fail_if_failed(info)
    return infos
