"""What every command that talks to a node shares: where the node is, keys, signed txs.

`node_options` adds `--node ADDRESS` (`tcp://HOST:PORT`, `unix:/PATH`,
`http://HOST:PORT`, `ws://HOST:PORT/ws`; default `$CHAINMALL_NODE`, else
tcp://127.0.0.1:8645) and `--token` (`$CHAINMALL_RPC_TOKEN`). `tx_options`
adds those and the signing options of a tx command (`--from KEY`, `--fee`,
`--nonce`, `--expiry-height`, `--no-wait`, `--timeout`, `--key-dir`,
`--passphrase-file`), handed to the command as one `TxOptions`. `send_tx`
signs a payload with the sender's next nonce (from the node), submits it,
waits until it is final unless `--no-wait`, prints the outcome (the tx id
first), and ends the command with the receipt's error class and code (exit
1) when the tx failed. Used by `cli/chain.py` and every mall command.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
from chainmall.core.address import decode_address
from chainmall.core.constants import RPC_WAIT_MS_DEFAULT, RPC_WAIT_MS_MAX, U64_MAX
from chainmall.core.errors import ChainmallError, InvalidAddress, KeyStoreError, error_class
from chainmall.core.keys import KeyPair
from chainmall.core.keystore import KeyStore
from chainmall.core.rpc import codec
from chainmall.core.rpc.client import BlockingClient
from chainmall.core.rpc.config import NODE_ADDRESS_DEFAULT
from chainmall.core.rpc.services import TxInfo, TxState
from chainmall.core.tx import Tx, sign_tx

from .context import Context
from .keys import read_passphrase

NODE_ENV = "CHAINMALL_NODE"
TOKEN_ENV = "CHAINMALL_RPC_TOKEN"
FEE_ENV = "CHAINMALL_FEE"
TX_EXPIRY_BLOCKS_DEFAULT = 1_000  # a tx sent now may be included up to this many blocks ahead

F = TypeVar("F", bound=Callable[..., object])


def node_options(function: F) -> F:
    """`--node` and `--token`, shared by every command that talks to a node."""
    function = click.option(
        "--token", envvar=TOKEN_ENV, default="", show_default=False,
        help=f"Bearer token of a node that requires one [env: {TOKEN_ENV}].",
    )(function)
    return click.option(
        "--node", "node_address", envvar=NODE_ENV, default=NODE_ADDRESS_DEFAULT,
        show_default=True,
        help=f"Node RPC address: tcp://HOST:PORT, unix:/PATH, http://HOST:PORT [env: {NODE_ENV}].",
    )(function)


def connect(node_address: str, token: str) -> BlockingClient:
    """A blocking client of the node (NodeUnreachable, one line, if it cannot be reached)."""
    return BlockingClient(node_address, token)


def address_argument(obj: Context, text: str) -> bytes:
    """`cm1...` text, or the name of a key in the key store: the 20-byte address."""
    try:
        return decode_address(text)
    except InvalidAddress as error:
        if text.startswith("cm1"):
            raise
        try:
            return decode_address(KeyStore(obj.home / "keys").show(text).address_text)
        except KeyStoreError:
            raise InvalidAddress(f"{text!r} is neither a cm1... address nor a key name "
                                 f"in {obj.home / 'keys'}") from error


# --- signing options ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TxOptions:
    """The signing and node options of one tx command (see `tx_options`)."""

    sender: str
    fee: int
    nonce: int | None
    expiry_height: int | None
    no_wait: bool
    timeout_s: float
    key_dir: Path | None
    passphrase_file: Path | None
    node_address: str
    token: str


_TX_FIELDS = TxOptions.__slots__


def tx_options(function: F) -> F:
    """The options of a command that signs and sends one tx, passed as `tx: TxOptions`."""

    @functools.wraps(function)
    def command(*args: Any, **kwargs: Any) -> Any:
        options = TxOptions(**{name: kwargs.pop(name) for name in _TX_FIELDS})
        return function(*args, tx=options, **kwargs)

    decorators = [
        click.option("--from", "sender", required=True, metavar="KEY",
                     help="Name of the signing key in the key store."),
        click.option("--fee", type=click.IntRange(0, U64_MAX), default=0, show_default=True,
                     envvar=FEE_ENV,
                     help=f"Fee in base units (at least the chain's fee_min) [env: {FEE_ENV}]."),
        click.option("--nonce", type=click.IntRange(0, U64_MAX), default=None,
                     help="The sender's nonce [default: fetched from the node]."),
        click.option("--expiry-height", type=click.IntRange(0, U64_MAX), default=None,
                     help="Last height the tx may be included at [default: the node's height "
                          f"+ {TX_EXPIRY_BLOCKS_DEFAULT}]."),
        click.option("--no-wait", is_flag=True,
                     help="Return once admitted, without waiting for finality."),
        click.option("--timeout", "timeout_s",
                     type=click.FloatRange(0.1, RPC_WAIT_MS_MAX / 1000),
                     default=RPC_WAIT_MS_DEFAULT / 1000, show_default=True,
                     help="Seconds to wait for finality."),
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


def load_key(obj: Context, name: str, key_dir: Path | None = None,
             passphrase_file: Path | None = None) -> KeyPair:
    """The key pair `name` of the key store (asking for the passphrase of an encrypted one)."""
    store = KeyStore(key_dir or obj.home / "keys")
    passphrase = None
    if store.show(name).encrypted:
        passphrase = read_passphrase(passphrase_file, confirm=False)
    return store.load(name, passphrase)


def load_signer(obj: Context, options: TxOptions) -> KeyPair:
    """The `--from` key of a tx command."""
    return load_key(obj, options.sender, options.key_dir, options.passphrase_file)


# --- sending ------------------------------------------------------------------------------


def sign(client: BlockingClient, keypair: KeyPair, options: TxOptions, tx_type: int,
         payload: bytes) -> Tx:
    """`payload` signed by `keypair` for the node's chain: `--nonce` or the account's next
    nonce, `--expiry-height` or the node's height + TX_EXPIRY_BLOCKS_DEFAULT."""
    return sign_many(client, keypair, options, [(tx_type, payload)])[0]


def sign_many(client: BlockingClient, keypair: KeyPair, options: TxOptions,
              payloads: list[tuple[int, bytes]]) -> list[Tx]:
    """Several (tx type, payload) signed with consecutive nonces, in order."""
    current = client.status()
    nonce = options.nonce
    if nonce is None:
        nonce = client.account(keypair.address).nonce
    expiry = options.expiry_height
    if expiry is None:
        expiry = min(U64_MAX, current.height + TX_EXPIRY_BLOCKS_DEFAULT)
    if nonce + len(payloads) - 1 > U64_MAX:
        raise ValueError("the nonces would pass 2^64 - 1")
    return [sign_tx(keypair, current.chain_id, tx_type, nonce + i, options.fee, expiry, payload)
            for i, (tx_type, payload) in enumerate(payloads)]


def submit(client: BlockingClient, signed: Tx, options: TxOptions) -> TxInfo:
    """Submit; with `--no-wait` return once admitted (PENDING), else once final."""
    if options.no_wait:
        tx_id = client.submit_tx(signed.encode())
        return TxInfo(tx_id, TxState.PENDING, tx=signed.encode())
    return client.submit_tx_wait(signed.encode(), options.timeout_s)


def tx_line(info: TxInfo, waited: bool = True) -> str:
    """One line: the tx id and where it is (final: height, index, ok or the error);
    `waited` False: it was only submitted (`--no-wait`)."""
    tx_id = info.tx_id.hex()
    if not waited and info.state is TxState.PENDING:
        return f"tx {tx_id}: submitted (not waiting for finality)"
    if info.state is not TxState.FINAL:
        return f"tx {tx_id}: {info.state.value}"
    outcome = "ok" if info.code == 0 else f"failed: {codec.error_name(info.code)} ({info.code})"
    return f"tx {tx_id}: final at height {info.height} (index {info.index}): {outcome}"


def fail_if_failed(info: TxInfo) -> None:
    """A final tx whose receipt is an error ends the command with that error (exit 1)."""
    if info.state is TxState.FINAL and info.code != 0:
        try:
            cls = error_class(info.code)
        except KeyError:
            cls = ChainmallError
        raise cls(f"tx {info.tx_id.hex()} failed at height {info.height}: "
                  f"{codec.error_name(info.code)} ({info.code}): {info.log or 'no detail'}")


def report_tx(obj: Context, info: TxInfo, named: Mapping[str, str] | None = None,
              waited: bool = True) -> None:
    """Print a tx's outcome (the `named` ids after it: "product id: ..."), then end the
    command with its error if it failed."""
    named = dict(named or {})
    lines = [tx_line(info, waited)] + [f"{name.replace('_', ' ')}: {value}"
                               for name, value in named.items()]
    obj.emit("\n".join(lines), {**codec.tx_json(info), **named})
    fail_if_failed(info)


def send_tx(obj: Context, options: TxOptions, tx_type: int, payload: bytes,
            named: Callable[[Tx], Mapping[str, str]] | None = None,
            keypair: KeyPair | None = None) -> TxInfo:
    """Sign `payload` as `--from` (or `keypair`), submit, wait unless `--no-wait`, report.

    `named(tx)` gives the ids the tx creates, printed after the tx line (e.g. a
    listing's product id, which is its tx id)."""
    keypair = keypair or load_signer(obj, options)
    with connect(options.node_address, options.token) as client:
        signed = sign(client, keypair, options, tx_type, payload)
        info = submit(client, signed, options)
    report_tx(obj, info, named(signed) if named else None, waited=not options.no_wait)
    return info
