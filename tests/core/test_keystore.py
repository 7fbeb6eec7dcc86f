"""Key store: files and modes, sealed keys, names, and every damaged file refused as InvalidKey."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from chainmall.core.address import encode_address
from chainmall.core.errors import InvalidKey, KeyStoreError
from chainmall.core.keys import KeyPair, verify_signature
from chainmall.core.keystore import KEY_FILE_BYTES_MAX, DamagedKey, KeyInfo, KeyStore

SEED = bytes(range(32))
PAIR = KeyPair.from_seed(SEED)
PASSPHRASE = "correct horse battery staple"


@pytest.fixture
def store(tmp_path: Path) -> KeyStore:
    return KeyStore(tmp_path / "keys")


@pytest.fixture
def open_umask() -> Iterator[None]:
    """Run with umask 0, so only the code can make files private."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _edit(path: Path, change: dict[str, object], sealed: bool = False) -> None:
    data = json.loads(path.read_text())
    (data["sealed"] if sealed else data).update(change)
    path.write_text(json.dumps(data))


# --- create, show, list, load ----------------------------------------------------


def test_create_show_load(store: KeyStore) -> None:
    info = store.create("alice")
    assert isinstance(info, KeyInfo)
    assert info.name == "alice" and not info.encrypted
    assert info.address_text == encode_address(store.load("alice").address)
    assert store.show("alice") == info
    pair = store.load("alice")
    assert pair.public_key == info.public_key
    assert verify_signature(pair.public_key, b"m", pair.sign(b"m"))


def test_create_makes_a_fresh_key_each_time(store: KeyStore) -> None:
    a, b = store.create("a"), store.create("b")
    assert a.public_key != b.public_key


def test_import_seed_is_deterministic(store: KeyStore) -> None:
    info = store.import_seed("imported", SEED)
    assert info.public_key == PAIR.public_key
    assert info.address_text == encode_address(PAIR.address)
    assert store.load("imported") == PAIR
    data = json.loads((store.path / "imported.json").read_text())
    assert data == {
        "version": 1,
        "name": "imported",
        "public_key": PAIR.public_key.hex(),
        "address": encode_address(PAIR.address),
        "seed": SEED.hex(),
    }


@pytest.mark.parametrize("seed", [b"", bytes(31), bytes(33), "00" * 32, 32])
def test_import_seed_refuses_a_bad_seed(store: KeyStore, seed: object) -> None:
    with pytest.raises(InvalidKey):
        store.import_seed("bad", seed)  # type: ignore[arg-type]
    assert not (store.path / "bad.json").exists()


def test_list_is_sorted_and_skips_other_files(store: KeyStore) -> None:
    assert store.list() == []  # the directory does not exist yet
    for name in ["zeta", "alpha", "m-1", "m_0", "0day"]:
        store.create(name)
    (store.path / "README.txt").write_text("not a key")
    (store.path / "Upper.json").write_text("{}")  # not a valid key name
    (store.path / ".hidden.json").write_text("{}")
    names = [info.name for info in store.list()]
    assert names == sorted(names) == ["0day", "alpha", "m-1", "m_0", "zeta"]


def test_missing_key(store: KeyStore) -> None:
    store.create("present")
    for call in (store.load, store.show):
        with pytest.raises(KeyStoreError, match="no key named 'absent'"):
            call("absent")


# --- modes -------------------------------------------------------------------------


def test_file_0600_and_directory_0700(store: KeyStore, open_umask: None) -> None:
    store.create("plain")
    store.import_seed("sealed", SEED, PASSPHRASE)
    assert _mode(store.path) == 0o700
    assert _mode(store.path / "plain.json") == 0o600
    assert _mode(store.path / "sealed.json") == 0o600
    assert sorted(p.name for p in store.path.iterdir()) == ["plain.json", "sealed.json"]


# --- sealed keys -----------------------------------------------------------------


def test_sealed_round_trip(store: KeyStore) -> None:
    info = store.import_seed("vault", SEED, PASSPHRASE)
    assert info.encrypted
    assert store.show("vault") == info  # public facts need no passphrase
    assert [k.encrypted for k in store.list()] == [True]
    assert store.load("vault", PASSPHRASE) == PAIR


def test_sealed_file_holds_no_secret_text(store: KeyStore) -> None:
    store.import_seed("vault", SEED, PASSPHRASE)
    raw = (store.path / "vault.json").read_bytes()
    text = raw.decode()
    for secret in (SEED.hex(), SEED.hex().upper(), PASSPHRASE, "horse"):
        assert secret not in text
    assert SEED not in raw
    assert "seed" not in json.loads(text)


def test_sealing_twice_gives_different_files(store: KeyStore) -> None:
    store.import_seed("one", SEED, PASSPHRASE)
    store.import_seed("two", SEED, PASSPHRASE)
    one = json.loads((store.path / "one.json").read_text())["sealed"]
    two = json.loads((store.path / "two.json").read_text())["sealed"]
    assert one["salt"] != two["salt"] and one["ciphertext"] != two["ciphertext"]


def test_wrong_passphrase(store: KeyStore) -> None:
    store.import_seed("vault", SEED, PASSPHRASE)
    for guess in ("", "wrong", PASSPHRASE + " ", PASSPHRASE.upper()):
        with pytest.raises(KeyStoreError, match="wrong passphrase"):
            store.load("vault", guess)


def test_sealed_key_without_passphrase(store: KeyStore) -> None:
    store.import_seed("vault", SEED, PASSPHRASE)
    with pytest.raises(KeyStoreError, match="encrypted: a passphrase is needed"):
        store.load("vault")


def test_tampered_ciphertext_is_refused(store: KeyStore) -> None:
    store.import_seed("vault", SEED, PASSPHRASE)
    path = store.path / "vault.json"
    sealed = json.loads(path.read_text())["sealed"]
    flipped = bytearray.fromhex(sealed["ciphertext"])
    flipped[-1] ^= 1
    _edit(path, {"ciphertext": flipped.hex()}, sealed=True)
    # Authenticated encryption cannot tell a damaged box from a wrong passphrase.
    with pytest.raises(KeyStoreError, match="wrong passphrase or corrupted"):
        store.load("vault", PASSPHRASE)


@pytest.mark.parametrize(
    "change",
    [
        {"kdf": "scrypt"},
        {"cipher": "aes-gcm"},
        {"salt": "00"},
        {"salt": "not hex"},
        {"ciphertext": "abcd"},
        {"ciphertext": "zz"},
        {"opslimit": "2"},
        {"opslimit": 2**32 - 1},  # minutes of CPU: refused before running the KDF
        {"memlimit": 2**42},  # terabytes of memory: refused before running the KDF
        {"memlimit": 0},
    ],
    ids=lambda change: "-".join(f"{k}={str(v)[:8]}" for k, v in change.items()),
)
def test_malformed_sealed_field_is_invalid_key(store: KeyStore, change: dict) -> None:
    store.import_seed("vault", SEED, PASSPHRASE)
    _edit(store.path / "vault.json", change, sealed=True)
    with pytest.raises(InvalidKey):
        store.load("vault", PASSPHRASE)


def test_sealed_field_that_is_not_an_object(store: KeyStore) -> None:
    store.import_seed("vault", SEED, PASSPHRASE)
    _edit(store.path / "vault.json", {"sealed": "secret"})
    with pytest.raises(InvalidKey, match="sealed"):
        store.load("vault", PASSPHRASE)


# --- names -------------------------------------------------------------------------


def test_name_taken_keeps_the_original(store: KeyStore) -> None:
    store.import_seed("bob", SEED)
    path = store.path / "bob.json"
    before = path.read_bytes()
    with pytest.raises(KeyStoreError, match="'bob' already exists"):
        store.import_seed("bob", bytes(32))
    with pytest.raises(KeyStoreError, match="already exists"):
        store.create("bob", PASSPHRASE)
    assert path.read_bytes() == before
    assert store.load("bob") == PAIR
    assert [p.name for p in store.path.iterdir()] == ["bob.json"]  # no temporary left


@pytest.mark.parametrize(
    "name",
    ["", "Alice", "-x", "_x", "a" * 65, "a/b", "../up", "a.b", "a b", "é", ".hidden",
     "name\n", None, 7],
)
def test_bad_names(store: KeyStore, name: object) -> None:
    for call in (store.create, store.load, store.show):
        with pytest.raises(KeyStoreError, match="invalid key name"):
            call(name)  # type: ignore[arg-type]
    assert not store.path.exists()


@pytest.mark.parametrize("name", ["a", "0", "a" * 64, "key-1_b"])
def test_good_names(store: KeyStore, name: str) -> None:
    assert store.create(name).name == name
    assert store.show(name).name == name


# --- damaged files -------------------------------------------------------------------


def _plain_file(store: KeyStore) -> Path:
    store.import_seed("k", SEED)
    return store.path / "k.json"


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not json",
        b"\xff\xfe\x00garbage",
        b"[]",
        b"null",
        b'"text"',
        b"{}",
        b'{"version": 2}',
        b'{"version": "1"}',
        b"[" * 3000,  # nested deeper than the JSON parser recurses
        b'{"":' * 800 + b"1" + b"}" * 800,
    ],
    ids=["empty", "text", "binary", "array", "null", "string", "no-version", "version-2",
         "version-text", "deep-array", "deep-object"],
)
def test_garbage_file_is_invalid_key(store: KeyStore, content: bytes) -> None:
    path = _plain_file(store)
    path.write_bytes(content)
    for call in (store.load, store.show):
        with pytest.raises(InvalidKey):
            call("k")


def test_oversized_file_is_invalid_key(store: KeyStore) -> None:
    path = _plain_file(store)
    data = json.loads(path.read_text())
    data["padding"] = "x" * KEY_FILE_BYTES_MAX
    path.write_text(json.dumps(data))
    with pytest.raises(InvalidKey, match="too large"):
        store.load("k")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"public_key": None}, "public key"),
        ({"public_key": "zz"}, "public key"),
        ({"public_key": PAIR.public_key.hex()[:-2]}, "public key"),
        ({"public_key": PAIR.public_key.hex() + "00"}, "public key"),
        ({"public_key": 12}, "public key"),
        ({"seed": "zz"}, "seed"),
        ({"seed": SEED.hex()[:-2]}, "seed"),
        ({"seed": SEED.hex() + "00"}, "seed"),
        ({"seed": None}, "seed"),
        ({"seed": bytes(32).hex()}, "does not match"),
        ({"public_key": KeyPair.from_seed(bytes(32)).public_key.hex()}, "does not match"),
    ],
    ids=["pk-null", "pk-not-hex", "pk-31", "pk-33", "pk-int", "seed-not-hex", "seed-31",
         "seed-33", "seed-null", "other-seed", "other-public-key"],
)
def test_damaged_field_is_invalid_key(store: KeyStore, change: dict, reason: str) -> None:
    path = _plain_file(store)
    _edit(path, change)
    with pytest.raises(InvalidKey, match=reason):
        store.load("k")


def test_missing_seed_is_invalid_key(store: KeyStore) -> None:
    path = _plain_file(store)
    data = json.loads(path.read_text())
    del data["seed"]
    path.write_text(json.dumps(data))
    for call in (store.load, store.show):  # a plain file's public key is checked on show too
        with pytest.raises(InvalidKey, match="seed"):
            call("k")


@pytest.mark.parametrize(
    "public_key",
    [bytes(32), KeyPair.from_seed(bytes(32)).public_key],
    ids=["all-zero", "another-key"],
)
def test_show_refuses_a_public_key_that_is_not_the_seeds(store: KeyStore,
                                                          public_key: bytes) -> None:
    _edit(_plain_file(store), {"public_key": public_key.hex()})
    with pytest.raises(InvalidKey, match="does not match"):
        store.show("k")


def test_sealed_public_key_is_checked_when_loaded(store: KeyStore) -> None:
    store.import_seed("k", SEED, PASSPHRASE)
    _edit(store.path / "k.json", {"public_key": bytes(32).hex()})
    assert store.show("k").public_key == bytes(32)  # no passphrase, nothing to check against
    with pytest.raises(InvalidKey, match="does not match"):
        store.load("k", PASSPHRASE)


def test_one_damaged_file_is_listed_as_damaged(store: KeyStore) -> None:
    good = store.create("good")
    (store.path / "bad.json").write_text("{")
    store.import_seed("swapped", SEED)
    _edit(store.path / "swapped.json", {"public_key": bytes(32).hex()})
    listed = store.list()
    assert [entry.name for entry in listed] == ["bad", "good", "swapped"]
    bad, listed_good, swapped = listed
    assert isinstance(bad, DamagedKey) and "not valid JSON" in bad.problem
    assert bad.path == store.path / "bad.json"
    assert listed_good == good
    assert isinstance(swapped, DamagedKey) and "does not match" in swapped.problem


def test_exposed_key_files_are_flagged(store: KeyStore) -> None:
    store.create("k")
    assert not store.show("k").exposed
    os.chmod(store.path / "k.json", 0o640)
    info = store.show("k")
    assert info.exposed and info.file_mode == 0o640
    assert store.list() == [info]
