"""Key files and input files as an operator meets them: damaged, swapped, exposed, nested."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import blake3
import pytest
from chainmall.core.constants import ARCHIVE_FORMAT_VERSION, ARCHIVE_MAGIC
from chainmall.core.keys import KeyPair
from chainmall.core.keystore import KeyStore
from clirun import one_line_error, run

SEED = bytes(range(32))


def _swap_public_key(path: Path, public_key: bytes) -> None:
    data = json.loads(path.read_text())
    data["public_key"] = public_key.hex()
    path.write_text(json.dumps(data))


def test_keys_list_shows_a_damaged_key_and_the_others(tmp_path: Path) -> None:
    keys = KeyStore(tmp_path / "keys")
    good = keys.create("alice")
    (keys.path / "broken.json").write_text("{")
    keys.import_seed("zero", SEED)
    _swap_public_key(keys.file("zero"), bytes(32))
    human = run(tmp_path, "keys", "list")
    assert human.returncode == 0, human.stderr
    lines = human.stdout.splitlines()
    assert lines[0].startswith("alice\t" + good.address_text)
    assert lines[1].startswith("broken\tDAMAGED\t") and "not valid JSON" in lines[1]
    assert lines[2].startswith("zero\tDAMAGED\t") and "does not match" in lines[2]
    warnings = human.stderr.splitlines()
    assert len(warnings) == 2 and all(w.startswith("warning: key file ") for w in warnings)
    listed = json.loads(run(tmp_path, "--json", "keys", "list").stdout)
    assert [entry["name"] for entry in listed] == ["alice", "broken", "zero"]
    assert "damaged" in listed[1] and listed[0]["address"] == good.address_text


def test_an_exposed_key_file_is_warned_about(tmp_path: Path) -> None:
    keys = KeyStore(tmp_path / "keys")
    keys.create("alice")
    assert run(tmp_path, "keys", "show", "alice").stderr == ""
    os.chmod(keys.file("alice"), 0o644)
    for args in (("keys", "show", "alice"), ("keys", "list")):
        result = run(tmp_path, *args)
        assert result.returncode == 0
        assert result.stderr == (
            f"warning: key file {keys.file('alice')} is accessible by group or others (mode "
            f"0644); anyone who can read it can sign as 'alice': run `chmod 600 "
            f"{keys.file('alice')}`\n")


def test_init_refuses_a_validator_key_whose_public_key_is_not_its_own(tmp_path: Path) -> None:
    keys = KeyStore(tmp_path / "keys")
    keys.import_seed("validator", SEED)
    for public_key in (bytes(32), KeyPair.from_seed(bytes(32)).public_key):
        _swap_public_key(keys.file("validator"), public_key)
        result = run(tmp_path, "init")
        assert "seed does not match its public key" in one_line_error(result)
        assert not (tmp_path / "local").exists()


def test_init_says_when_it_creates_an_unencrypted_validator_key(tmp_path: Path) -> None:
    result = run(tmp_path, "--json", "init")
    assert result.returncode == 0, result.stderr
    key_file = tmp_path / "keys" / "validator.json"
    assert result.stderr.startswith(
        f"warning: created the validator key 'validator' unencrypted at {key_file} (mode 0600)")
    assert "--encrypt" in result.stderr and len(result.stderr.splitlines()) == 1
    json.loads(result.stdout)  # stdout stays the JSON report
    again = run(tmp_path, "init", "--data-dir", str(tmp_path / "second"))
    assert again.returncode == 0 and again.stderr == ""  # the key exists now: nothing to say


def test_init_opens_an_encrypted_validator_key_with_its_passphrase(tmp_path: Path) -> None:
    keys = KeyStore(tmp_path / "keys")
    keys.import_seed("vault", SEED, passphrase="correct horse")
    _swap_public_key(keys.file("vault"), KeyPair.from_seed(bytes(32)).public_key)
    args = ("init", "--validator-key", "vault")
    no_passphrase = run(tmp_path, *args)
    assert "passphrase is needed" in one_line_error(no_passphrase)
    swapped = run(tmp_path, *args, CHAINMALL_PASSPHRASE="correct horse")
    assert "does not match" in one_line_error(swapped)
    wrong = run(tmp_path, *args, CHAINMALL_PASSPHRASE="wrong")
    assert "wrong passphrase" in one_line_error(wrong)
    _swap_public_key(keys.file("vault"), KeyPair.from_seed(SEED).public_key)
    passphrase_file = tmp_path / "pass.txt"
    passphrase_file.write_text("correct horse\n")
    result = run(tmp_path, "--json", *args, "--passphrase-file", str(passphrase_file))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["validators"] == [KeyPair.from_seed(SEED).public_key.hex()]


DEEP_ARRAY = b'{"chain_id": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"


def test_deeply_nested_genesis_is_one_line(tmp_path: Path) -> None:
    genesis = tmp_path / "deep.json"
    genesis.write_bytes(DEEP_ARRAY)
    result = run(tmp_path, "init", "--genesis", str(genesis))
    assert "nested too deeply" in one_line_error(result)
    assert not (tmp_path / "local").exists()


def _archive(genesis_text: bytes) -> bytes:
    """An archive with a valid trailer around `genesis_text` and no blocks."""
    body = (ARCHIVE_MAGIC + struct.pack(">I", ARCHIVE_FORMAT_VERSION)
            + struct.pack(">I", len(genesis_text)) + genesis_text + bytes(32)
            + struct.pack(">Q", 0))
    return body + blake3.blake3(body).digest()


@pytest.mark.parametrize("nesting", [b"[", b'{"a":'], ids=["arrays", "objects"])
def test_deeply_nested_genesis_in_an_archive_is_one_line(tmp_path: Path, nesting: bytes) -> None:
    closing = b"]" if nesting == b"[" else b"}"
    archive = tmp_path / "deep.cma"
    archive.write_bytes(_archive(nesting * 100_000 + b"1" * (nesting != b"[")
                                 + closing * 100_000))
    result = run(tmp_path, "db", "import", "--data-dir", str(tmp_path / "copy"), str(archive))
    assert "nested too deeply" in one_line_error(result)
    assert not (tmp_path / "copy").exists()
