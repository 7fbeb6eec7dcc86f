"""PROTOCOL_VERSION: written to `meta` at genesis, checked on every read of the tip.

A ledger made under other rules (protocol version 1: libsodium's Ed25519 rule,
which recorded no protocol version) is refused with one line naming both
versions, by the store and by the CLI, and is left as it was.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import lmdb
import pytest
from chainmall.core.constants import PROTOCOL_VERSION
from chainmall.core.errors import StoreChainMismatch, StoreCorrupt
from chainmall.core.store import META_PROTOCOL_VERSION, Store

GENESIS_HASH = b"\x11" * 32
ROOT0 = b"\x22" * 32


def _make(path: Path) -> None:
    with Store(path) as store:
        store.init_genesis("test", GENESIS_HASH, {b"\x01a": b"1"}, {}, ROOT0)


def _set_meta(path: Path, value: bytes | None) -> None:
    """Rewrite (or delete) the stored protocol version, as an older build would have left it."""
    env = lmdb.open(str(path), subdir=True, max_dbs=64)
    try:
        meta = env.open_db(b"meta")
        with env.begin(write=True) as txn:
            if value is None:
                txn.delete(META_PROTOCOL_VERSION, db=meta)
            else:
                txn.put(META_PROTOCOL_VERSION, value, db=meta)
    finally:
        env.close()


def test_version_two_is_zip215() -> None:
    assert PROTOCOL_VERSION == 2


def test_genesis_records_the_protocol_version(tmp_path: Path) -> None:
    _make(tmp_path / "data")
    env = lmdb.open(str(tmp_path / "data"), subdir=True, max_dbs=64, readonly=True)
    try:
        with env.begin() as txn:
            stored = txn.get(META_PROTOCOL_VERSION, db=env.open_db(b"meta", txn=txn))
    finally:
        env.close()
    assert stored == struct.pack(">I", PROTOCOL_VERSION)
    with Store(tmp_path / "data") as store:
        assert store.last().height == 0


@pytest.mark.parametrize(("stored", "made_under"), [(None, 1), (struct.pack(">I", 1), 1),
                                                    (struct.pack(">I", 3), 3)],
                         ids=["none-recorded", "version-1", "version-3"])
def test_a_ledger_of_another_version_is_refused(tmp_path: Path, stored: bytes | None,
                                                made_under: int) -> None:
    _make(tmp_path / "data")
    _set_meta(tmp_path / "data", stored)
    with Store(tmp_path / "data") as store, pytest.raises(StoreChainMismatch) as caught:
        store.last()
    message = str(caught.value)
    assert "\n" not in message
    assert f"protocol version {made_under}" in message
    assert f"protocol version {PROTOCOL_VERSION}" in message


def test_a_malformed_protocol_version_is_corruption(tmp_path: Path) -> None:
    _make(tmp_path / "data")
    _set_meta(tmp_path / "data", b"\x02")
    with Store(tmp_path / "data") as store, pytest.raises(StoreCorrupt, match="protocol"):
        store.last()


def test_cli_refuses_an_old_ledger_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "CHAINMALL_HOME": str(tmp_path)}
    env.pop("CHAINMALL_PASSPHRASE", None)

    def chainmall(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "chainmall.cli", *args], env=env,
                              capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              timeout=120)

    assert chainmall("init", "--chain-id", "old").returncode == 0
    ledger = tmp_path / "old" / "ledger"
    _set_meta(ledger, None)  # what a protocol version 1 build wrote
    before = (ledger / "data.mdb").read_bytes()
    result = chainmall("db", "info", "--chain-id", "old")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "protocol version 1" in lines[0] and f"protocol version {PROTOCOL_VERSION}" in lines[0]
    assert (ledger / "data.mdb").read_bytes() == before
