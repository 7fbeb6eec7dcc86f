"""Key store secrets: 0600 files, passphrase sealing, and no overwrite of an existing key."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from chainmall.core.errors import InvalidKey, KeyStoreError
from chainmall.core.keystore import KeyStore


def test_plain_key_round_trip_and_modes(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys")
    info = store.create("alice")
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "keys" / "alice.json").stat().st_mode) == 0o600
    assert store.load("alice").public_key == info.public_key
    assert [k.name for k in store.list()] == ["alice"]


def test_sealed_key_needs_the_right_passphrase(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    info = store.import_seed("vault", bytes(range(32)), passphrase="s3cret phrase")
    text = (tmp_path / "vault.json").read_text()
    assert bytes(range(32)).hex() not in text and "s3cret" not in text
    assert info.encrypted
    assert store.load("vault", passphrase="s3cret phrase").seed == bytes(range(32))
    with pytest.raises(KeyStoreError, match="wrong passphrase"):
        store.load("vault", passphrase="guess")
    with pytest.raises(KeyStoreError, match="passphrase is needed"):
        store.load("vault")


def test_existing_key_is_never_overwritten(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    store.import_seed("bob", bytes(32))
    before = (tmp_path / "bob.json").read_bytes()
    with pytest.raises(KeyStoreError, match="already exists"):
        store.import_seed("bob", bytes([1]) * 32)
    assert (tmp_path / "bob.json").read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("name", ["", "Alice", "-x", "a" * 65, "a/b", "../up"])
def test_bad_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(KeyStoreError, match="invalid key name"):
        KeyStore(tmp_path).create(name)


@pytest.mark.parametrize(
    "content", [b"not json", b"[]", b'{"version": 9}', b'{"version": 1, "public_key": "zz"}',
                b"x" * 5000],
)
def test_corrupted_files_are_invalid_keys(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "bad.json").write_bytes(content)
    with pytest.raises(InvalidKey):
        KeyStore(tmp_path).load("bad")


def test_seed_that_does_not_match_its_public_key(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    store.import_seed("carol", bytes(32))
    path = tmp_path / "carol.json"
    path.write_text(path.read_text().replace(bytes(32).hex(), (bytes([9]) * 32).hex()))
    with pytest.raises(InvalidKey, match="does not match"):
        store.load("carol")
