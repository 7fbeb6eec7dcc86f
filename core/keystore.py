"""A key directory: one JSON file per Ed25519 key, secret mode 0600, optionally encrypted.

A plain file holds the seed in hex; an encrypted one holds the seed sealed
with XSalsa20-Poly1305 (libsodium SecretBox) under a key derived from the
passphrase with argon2id, whose salt and limits are stored beside it. Files
are written to a temporary name and linked into place, so a crash never
leaves a half-written key and an existing key is never overwritten; a full
disk is DiskFull naming the file.

Reading a key checks what can be checked without the passphrase: a plain
file's public key must be its seed's (an encrypted file's is checked when
`load` opens it). `KeyInfo.exposed` says that a key file is open to the
group or others (as ssh warns); `list` reports a damaged file as a
`DamagedKey` entry instead of failing for every key.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.utils

from .address import address_from_public_key, encode_address
from .constants import PUBLIC_KEY_BYTES, SEED_BYTES
from .diskio import fsync_directory, writing
from .errors import InvalidKey, KeyStoreError
from .keys import KeyPair

KEY_FILE_VERSION = 1
KEY_NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
KEY_FILE_BYTES_MAX = 4096
KEY_FILE_MODE = 0o600
EXPOSED_MODE_BITS = 0o077  # any access by the group or others
_KDF = nacl.pwhash.argon2id
_OPSLIMIT = _KDF.OPSLIMIT_INTERACTIVE
_MEMLIMIT = _KDF.MEMLIMIT_INTERACTIVE
_OPSLIMIT_MAX = _KDF.OPSLIMIT_SENSITIVE  # bounds on what a key file may ask for
_MEMLIMIT_MAX = _KDF.MEMLIMIT_SENSITIVE
_SEALED_BYTES = (
    nacl.secret.SecretBox.NONCE_SIZE + nacl.secret.SecretBox.MACBYTES + SEED_BYTES
)


@dataclass(frozen=True)
class KeyInfo:
    """The public facts of a stored key, and its file's permission bits."""

    name: str
    public_key: bytes
    address_text: str
    encrypted: bool
    file_mode: int = KEY_FILE_MODE

    @property
    def exposed(self) -> bool:
        """Whether the group or others may access the key file (it should be 0600)."""
        return bool(self.file_mode & EXPOSED_MODE_BITS)


@dataclass(frozen=True)
class DamagedKey:
    """A key file `list` found but cannot read: what is wrong with it."""

    name: str
    path: Path
    problem: str


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not KEY_NAME_PATTERN.fullmatch(name):
        raise KeyStoreError(
            f"invalid key name {name!r}: use 1-64 of a-z, 0-9, '_' and '-', "
            "starting with a letter or digit"
        )
    return name


def _seal(seed: bytes, passphrase: str) -> dict[str, object]:
    if not isinstance(passphrase, str) or not passphrase:
        raise KeyStoreError("the passphrase is empty")
    salt = nacl.utils.random(_KDF.SALTBYTES)
    key = _KDF.kdf(nacl.secret.SecretBox.KEY_SIZE, passphrase.encode(), salt,
                   opslimit=_OPSLIMIT, memlimit=_MEMLIMIT)
    sealed = nacl.secret.SecretBox(key).encrypt(seed)
    return {
        "kdf": "argon2id",
        "salt": salt.hex(),
        "opslimit": _OPSLIMIT,
        "memlimit": _MEMLIMIT,
        "cipher": "xsalsa20poly1305",
        "ciphertext": bytes(sealed).hex(),
    }


def _sealed_fields(name: str, box: object) -> tuple[bytes, int, int, bytes]:
    """Salt, opslimit, memlimit, ciphertext of a sealed seed; InvalidKey if malformed.

    The limits come from the file, so they are bounded: a crafted file must
    not make `load` spend gigabytes of memory or minutes of CPU.
    """
    if not isinstance(box, dict):
        raise InvalidKey(f"key {name!r}: malformed sealed field")
    if box.get("kdf") != "argon2id" or box.get("cipher") != "xsalsa20poly1305":
        raise InvalidKey(f"key {name!r}: unknown kdf or cipher")
    opslimit, memlimit = box.get("opslimit"), box.get("memlimit")
    if type(opslimit) is not int or not _KDF.OPSLIMIT_MIN <= opslimit <= _OPSLIMIT_MAX:
        raise InvalidKey(f"key {name!r}: opslimit out of range")
    if type(memlimit) is not int or not _KDF.MEMLIMIT_MIN <= memlimit <= _MEMLIMIT_MAX:
        raise InvalidKey(f"key {name!r}: memlimit out of range")
    try:
        salt = bytes.fromhex(str(box["salt"]))
        ciphertext = bytes.fromhex(str(box["ciphertext"]))
    except (KeyError, ValueError) as error:
        raise InvalidKey(f"key {name!r}: bad salt or ciphertext field") from error
    if len(salt) != _KDF.SALTBYTES or len(ciphertext) != _SEALED_BYTES:
        raise InvalidKey(f"key {name!r}: salt or ciphertext has the wrong length")
    return salt, opslimit, memlimit, ciphertext


def _unseal(name: str, box: object, passphrase: str) -> bytes:
    if not isinstance(passphrase, str):
        raise KeyStoreError(f"a passphrase is text, got {type(passphrase).__name__}")
    salt, opslimit, memlimit, ciphertext = _sealed_fields(name, box)
    key = _KDF.kdf(nacl.secret.SecretBox.KEY_SIZE, passphrase.encode(), salt,
                   opslimit=opslimit, memlimit=memlimit)
    try:
        return nacl.secret.SecretBox(key).decrypt(ciphertext)
    except nacl.exceptions.CryptoError:
        raise KeyStoreError("wrong passphrase or corrupted key file") from None


class KeyStore:
    """Keys stored as `<name>.json` files in one directory (mode 0700)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def file(self, name: str) -> Path:
        """The path of key `name`'s file."""
        return self.path / f"{_check_name(name)}.json"

    def has(self, name: str) -> bool:
        """Whether a key file named `name` exists (readable or not)."""
        return self.file(name).exists()

    def _read(self, name: str) -> tuple[dict[str, object], int]:
        """The file's JSON object and its permission bits."""
        path = self.file(name)
        try:
            with path.open("rb") as handle:
                mode = stat.S_IMODE(os.fstat(handle.fileno()).st_mode)
                raw = handle.read(KEY_FILE_BYTES_MAX + 1)
        except FileNotFoundError:
            raise KeyStoreError(f"no key named {name!r} in {self.path}") from None
        except OSError as error:
            raise InvalidKey(f"key file {path} cannot be read: {error.strerror}") from None
        if len(raw) > KEY_FILE_BYTES_MAX:
            raise InvalidKey(f"key file {path} is too large")
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError) as error:  # RecursionError: nesting too deep
            raise InvalidKey(f"key file {path} is not valid JSON") from error
        if not isinstance(data, dict) or data.get("version") != KEY_FILE_VERSION:
            raise InvalidKey(f"key file {path} has an unknown format")
        return data, mode

    def _info(self, name: str, data: dict[str, object], mode: int = KEY_FILE_MODE) -> KeyInfo:
        """The public facts; for a plain file, after checking the public key is the seed's."""
        public_key = _hex_field(name, data, "public_key", PUBLIC_KEY_BYTES)
        if "sealed" not in data:
            _check_pair(name, _plain_seed(name, data), public_key)
        address = encode_address(address_from_public_key(public_key))
        return KeyInfo(name, public_key, address, "sealed" in data, mode)

    def _write_new(self, name: str, data: dict[str, object]) -> None:
        """Write a new key file: temporary file, fsync, hard link (never overwrites)."""
        target = self.file(name)
        with writing(target):
            if not self.path.is_dir():
                self.path.mkdir(mode=0o700, parents=True)
                os.chmod(self.path, 0o700)  # mkdir's mode is filtered by the umask
            temporary = self.path / f".{name}.{secrets.token_hex(8)}.tmp"
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    os.fchmod(handle.fileno(), KEY_FILE_MODE)  # exactly 0600 whatever the umask
                    json.dump(data, handle, indent=2, sort_keys=True)
                    handle.write("\n")
                    handle.flush()
                    os.fsync(handle.fileno())
                try:
                    os.link(temporary, target)  # fails if the name exists: never overwrite
                except FileExistsError:
                    raise KeyStoreError(f"a key named {name!r} already exists") from None
            finally:
                temporary.unlink(missing_ok=True)
            fsync_directory(self.path)

    def import_seed(self, name: str, seed: bytes, passphrase: str | None = None) -> KeyInfo:
        """Store the key pair of `seed` under `name` (encrypted when a passphrase is given)."""
        _check_name(name)
        keypair = KeyPair.from_seed(seed)  # InvalidKey unless 32 bytes
        data: dict[str, object] = {
            "version": KEY_FILE_VERSION,
            "name": name,
            "public_key": keypair.public_key.hex(),
            "address": encode_address(keypair.address),
        }
        if passphrase is None:
            data["seed"] = keypair.seed.hex()
        else:
            data["sealed"] = _seal(keypair.seed, passphrase)
        self._write_new(name, data)
        return self._info(name, data)

    def create(self, name: str, passphrase: str | None = None) -> KeyInfo:
        """Generate and store a new key pair."""
        return self.import_seed(name, KeyPair.generate().seed, passphrase)

    def load(self, name: str, passphrase: str | None = None) -> KeyPair:
        """The key pair `name`; encrypted keys need their passphrase.

        The public key stored beside the secret must be the secret's (InvalidKey).
        """
        data, mode = self._read(name)
        info = self._info(name, data, mode)
        if "sealed" not in data:
            return KeyPair.from_seed(_plain_seed(name, data))
        if passphrase is None:
            raise KeyStoreError(f"key {name!r} is encrypted: a passphrase is needed")
        seed = _unseal(name, data["sealed"], passphrase)
        if len(seed) != SEED_BYTES:
            raise InvalidKey(f"key {name!r}: seed is not {SEED_BYTES} bytes")
        return _check_pair(name, seed, info.public_key)

    def show(self, name: str) -> KeyInfo:
        """The public facts of key `name` (never the secret)."""
        data, mode = self._read(name)
        return self._info(name, data, mode)

    def list(self) -> list[KeyInfo | DamagedKey]:
        """Every key in the directory, sorted by name; a file that fails `show` is a
        DamagedKey saying why, so one bad file does not hide the others."""
        if not self.path.is_dir():
            return []
        names = sorted(
            p.stem for p in self.path.glob("*.json") if KEY_NAME_PATTERN.fullmatch(p.stem)
        )
        entries: list[KeyInfo | DamagedKey] = []
        for name in names:
            try:
                entries.append(self.show(name))
            except InvalidKey as error:
                entries.append(DamagedKey(name, self.file(name), str(error)))
        return entries


def _hex_field(name: str, data: dict[str, object], field: str, size: int) -> bytes:
    """A hex field of `size` bytes (InvalidKey naming it if absent or malformed)."""
    what = field.replace("_", " ")
    try:
        value = bytes.fromhex(str(data[field]))
    except (KeyError, ValueError) as error:
        raise InvalidKey(f"key {name!r}: bad {what} field") from error
    if len(value) != size:
        raise InvalidKey(f"key {name!r}: {what} is not {size} bytes")
    return value


def _plain_seed(name: str, data: dict[str, object]) -> bytes:
    """The seed of a plain key file (InvalidKey if absent or malformed)."""
    return _hex_field(name, data, "seed", SEED_BYTES)


def _check_pair(name: str, seed: bytes, public_key: bytes) -> KeyPair:
    """The key pair of `seed`, after checking the file's public key is its own."""
    keypair = KeyPair.from_seed(seed)
    if keypair.public_key != public_key:
        raise InvalidKey(f"key {name!r}: seed does not match its public key")
    return keypair
