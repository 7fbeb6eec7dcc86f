"""`LightClientAnchors` (core/node/page_cometbft.py) over headers signed in Python.

A stand-in for CometBFT's RPC serves signed headers made by
`tests/light_forge.py` as CometBFT's JSON; a stand-in read snapshot names the
node's tip and root. The anchor is the header h + 1 its light client verified
from the genesis set, with the snapshot's root as its app hash; on an idle
chain the header h when it commits the same root (height h - 1); otherwise
NotFound; a header that commits another root is a StorageError and one that
does not verify is a LightClientError, never an anchor. The real node is
`tests/cluster/test_page_cometbft.py`.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from chainmall.core import light
from chainmall.core.abci.proto.tendermint.types import types_pb2, validator_pb2
from chainmall.core.errors import (
    LightClientError,
    LightStoreInvalid,
    NetworkError,
    NotFound,
    StorageError,
    TrustedHeaderExpired,
)
from chainmall.core.keys import KeyPair
from chainmall.core.node.light_store import LIGHT_STORE_FILE, load_state
from chainmall.core.node.page_cometbft import (
    CHECKED_BY_LIGHT_CLIENT,
    LightClientAnchors,
    LightClientRefresher,
)
from chainmall.core.proof_bundle import TrustRoot
from light_forge import sign_block, to_json, validators_of

CHAIN = "page-light-test"
KEYS = [KeyPair.from_seed(bytes([0x70 + i]) * 32) for i in range(4)]
SET = validators_of(KEYS)
T0 = 1_700_000_000
NOW_NS = (T0 + 100) * 1_000_000_000


def root(height: int) -> bytes:
    """The app's state root after `height` in these tests."""
    return bytes([height]) * 32


class FakeRpc:
    """CometBFT's `/status` height, `/commit` and `/validators` over `blocks`."""

    def __init__(self, blocks: dict[int, light.LightBlock]) -> None:
        self.blocks = blocks
        self.fetched: list[int] = []

    def height(self) -> int:
        return max(self.blocks)

    def commit(self, height: int) -> dict[str, Any]:
        self.fetched.append(height)
        return {"signed_header": to_json(self.blocks[height])["signed_header"]}

    def validators(self, height: int) -> list[dict[str, Any]]:
        return to_json(self.blocks[height])["validators"]


@dataclass
class Tip:
    height: int
    app_hash: bytes


class View:
    def __init__(self, height: int, app_hash: bytes) -> None:
        self.tip = Tip(height, app_hash)

    def last(self) -> Tip:
        return self.tip


def chain(top: int, app_hashes: dict[int, bytes] | None = None) -> dict[int, light.LightBlock]:
    """Blocks 1..top, header h committing root(h - 1) unless `app_hashes` says otherwise."""
    app_hashes = app_hashes or {}
    blocks: dict[int, light.LightBlock] = {}
    for h in range(1, top + 1):  # each header names the one before it (backwards checks)
        blocks[h] = sign_block(CHAIN, h, T0 + h, KEYS, SET, app_hash=app_hashes.get(h, root(h - 1)),
                               last_block_hash=blocks[h - 1].hash() if h > 1 else b"")
    return blocks


def anchors(rpc: FakeRpc) -> LightClientAnchors:
    ticks = itertools.count(0, 10)  # each look at the clock is 10 s later: no waiting
    return LightClientAnchors(rpc, TrustRoot(CHAIN, SET), wait_ms=1_000,  # type: ignore[arg-type]
                              clock=lambda: float(next(ticks)), wall_ns=lambda: NOW_NS)


def test_the_anchor_is_header_h_plus_1_verified_from_genesis() -> None:
    rpc = FakeRpc(chain(6))
    source = anchors(rpc)
    anchor = source.anchor(View(5, root(5)))  # type: ignore[arg-type]
    assert (anchor.height, anchor.root, anchor.block.height) == (5, root(5), 6)
    served = anchor.to_json()
    assert served["checked_by"] == CHECKED_BY_LIGHT_CLIENT and served["height"] == 5
    assert served["trusted"] == {"height": 1, "hash": rpc.blocks[1].hash().hex()}
    header = types_pb2.Header.FromString(bytes.fromhex(served["header"]))
    assert light.header_hash(header) == rpc.blocks[6].hash() and header.app_hash == root(5)
    commit = types_pb2.Commit.FromString(bytes.fromhex(served["commit"]))
    encoded = validator_pb2.ValidatorSet.FromString(bytes.fromhex(served["validators"]))
    validators = tuple(light.LightValidator(v.address, v.pub_key.ed25519, v.voting_power)
                       for v in encoded.validators)
    assert validators == SET and encoded.total_voting_power == 40
    assert encoded.proposer.address == header.proposer_address
    light.verify_commit(CHAIN, validators, light.LightBlock(header, commit, validators))

    # A later tip: verified from the last header, not from genesis again.
    rpc.blocks.update(chain(9))
    rpc.fetched.clear()
    assert source.anchor(View(8, root(8))).block.height == 9  # type: ignore[arg-type]
    assert rpc.fetched == [9]
    # A request that raced a newer one: verified backwards from the latest.
    rpc.fetched.clear()
    assert source.anchor(View(6, root(6))).block.height == 7  # type: ignore[arg-type]
    assert rpc.fetched == [8, 7]


def test_an_idle_chain_uses_header_h_when_it_commits_the_same_root() -> None:
    rpc = FakeRpc(chain(5, {5: root(5)}))  # block 5 changed nothing: root(4) == root(5) here
    anchor = anchors(rpc).anchor(View(5, root(5)))  # type: ignore[arg-type]
    assert (anchor.height, anchor.block.height, anchor.root) == (4, 5, root(5))

    with pytest.raises(NotFound, match="no header after height 5"):
        anchors(FakeRpc(chain(5))).anchor(View(5, root(5)))  # type: ignore[arg-type]


def test_a_header_of_another_state_is_never_an_anchor() -> None:
    with pytest.raises(StorageError, match="commits app hash"):
        anchors(FakeRpc(chain(6, {6: b"\x99" * 32}))).anchor(  # type: ignore[arg-type]
            View(5, root(5)))
    forged = chain(6)
    forged[6].commit.signatures[0].signature = bytes(64)
    with pytest.raises(LightClientError):
        anchors(FakeRpc(forged)).anchor(View(5, root(5)))  # type: ignore[arg-type]
    with pytest.raises(NotFound, match="no block"):
        anchors(FakeRpc(chain(1))).anchor(View(0, bytes(32)))  # type: ignore[arg-type]


# --- the trust kept in the data directory (core/node/light_store.py) ----------------------

PERIOD = light.TrustOptions(trusting_period_ms=100_000)  # 100 s: block h is T0 + h
FORGE_DIR = Path(__file__).resolve().parents[2]


class Clock:
    """An injected wall clock (ns), moved by the test."""

    def __init__(self, seconds: int) -> None:
        self.ns = seconds * 1_000_000_000

    def __call__(self) -> int:
        return self.ns

    def at(self, seconds: int) -> None:
        self.ns = seconds * 1_000_000_000


def stored(rpc: FakeRpc, store: Path, clock: Clock | None = None,
           options: light.TrustOptions = light.DEFAULT_TRUST) -> LightClientAnchors:
    ticks = itertools.count(0, 10)
    return LightClientAnchors(rpc, TrustRoot(CHAIN, SET), wait_ms=1_000,  # type: ignore[arg-type]
                              options=options, clock=lambda: float(next(ticks)),
                              wall_ns=clock or (lambda: NOW_NS), store=store)


def test_a_restart_resumes_from_the_stored_header_not_from_genesis(tmp_path: Path) -> None:
    store = tmp_path / LIGHT_STORE_FILE
    rpc = FakeRpc(chain(9))
    first = stored(rpc, store)
    assert first.resumed_from is None and not store.exists()
    assert first.anchor(View(5, root(5))).block.height == 6  # type: ignore[arg-type]
    assert load_state(store, TrustRoot(CHAIN, SET)).latest.hash() == rpc.blocks[6].hash()
    assert first.refresh() == 9  # advanced to CometBFT's latest, and stored
    assert load_state(store, TrustRoot(CHAIN, SET)).latest.height == 9

    rpc.blocks.update(chain(12))
    rpc.fetched.clear()
    second = stored(rpc, store)  # the node restarted
    assert second.resumed_from == 9 and second.latest is not None
    anchor = second.anchor(View(11, root(11)))  # type: ignore[arg-type]
    assert anchor.block.height == 12
    assert rpc.fetched == [12]  # from the stored header 9: nothing from genesis
    assert anchor.to_json()["trusted"] == {"height": 1, "hash": rpc.blocks[1].hash().hex()}
    assert load_state(store, TrustRoot(CHAIN, SET)).latest.height == 12
    # a snapshot below the stored header: verified backwards through the hash links
    rpc.fetched.clear()
    assert stored(rpc, store).anchor(  # type: ignore[arg-type]
        View(9, root(9))).block.height == 10
    assert rpc.fetched == [11, 10]


def test_an_expired_stored_header_is_said_so_never_trusted(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = tmp_path / LIGHT_STORE_FILE
    rpc = FakeRpc(chain(9))
    clock = Clock(T0 + 20)
    stored(rpc, store, clock, PERIOD).refresh()  # trusts header 9 (time T0 + 9)
    clock.at(T0 + 9 + 100)  # the node was stopped longer than the trusting period
    with caplog.at_level(logging.INFO, "chainmall.node.light"):
        restarted = stored(rpc, store, clock, PERIOD)
    assert restarted.resumed_from == 9
    assert "has expired" in caplog.text and "cannot be anchored" in caplog.text
    rpc.blocks.update(chain(12))
    rpc.fetched.clear()
    for attempt in (lambda: restarted.anchor(View(11, root(11))),  # type: ignore[arg-type]
                    lambda: restarted.anchor(View(9, root(9))),  # type: ignore[arg-type]
                    restarted.refresh):
        with pytest.raises(TrustedHeaderExpired, match=r"header at height 9 .* has expired: "
                           r"it is older than the trusting period \(0\.001157\d* days\)"):
            attempt()
    assert rpc.fetched == []  # nothing verified from an expired header
    clock.at(T0 + 9 + 99)  # a second earlier it still was trusted
    assert restarted.anchor(View(11, root(11))).block.height == 12  # type: ignore[arg-type]


def test_refreshing_keeps_an_idle_node_within_the_trusting_period(tmp_path: Path) -> None:
    rpc = FakeRpc(chain(5))
    clock = Clock(T0 + 6)
    refreshed = stored(rpc, tmp_path / "a.json", clock, PERIOD)
    idle = stored(rpc, tmp_path / "b.json", clock, PERIOD)
    assert refreshed.refresh() == idle.refresh() == 5
    for second in range(6, 250, 50):  # the chain goes on, nobody asks for a page
        rpc.blocks.update(chain(second))
        clock.at(T0 + second + 1)
        refreshed.refresh()
    tip = max(rpc.blocks)
    assert refreshed.anchor(View(tip - 1, root(tip - 1))).block.height == tip  # type: ignore
    with pytest.raises(TrustedHeaderExpired):
        idle.anchor(View(tip - 1, root(tip - 1)))  # type: ignore[arg-type]


def test_the_refresher_refreshes_periodically_until_stopped(tmp_path: Path) -> None:
    rpc = FakeRpc(chain(3))
    anchors_ = stored(rpc, tmp_path / LIGHT_STORE_FILE)

    async def run() -> None:
        refresher = LightClientRefresher(anchors_, interval_ms=5)
        await refresher.start()
        end = time.monotonic() + 30
        while refresher.refreshes < 3 and time.monotonic() < end:
            await asyncio.sleep(0.01)  # poll with a deadline
        rpc.blocks.update(chain(4))
        done = refresher.refreshes
        while refresher.refreshes < done + 2 and time.monotonic() < end:
            await asyncio.sleep(0.01)
        await refresher.stop()

    asyncio.run(run())
    assert anchors_.latest is not None and anchors_.latest.height == 4


class StartingRpc(FakeRpc):
    """CometBFT just started: its RPC not answering at first, then at height 0."""

    def __init__(self, blocks: dict[int, light.LightBlock], down: int, empty: int) -> None:
        super().__init__(blocks)
        self.down, self.empty = down, empty

    def height(self) -> int:
        if self.down:
            self.down -= 1
            raise NetworkError("connection refused")
        if self.empty:
            self.empty -= 1
            return 0
        return super().height()


def test_the_refresher_retries_soon_while_cometbft_starts(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rpc = StartingRpc(chain(3), down=2, empty=2)
    anchors_ = stored(rpc, tmp_path / LIGHT_STORE_FILE)  # type: ignore[arg-type]

    async def run() -> None:
        refresher = LightClientRefresher(anchors_, interval_ms=10**9, retry_ms=5)
        await refresher.start()
        end = time.monotonic() + 30
        while anchors_.latest is None and time.monotonic() < end:
            await asyncio.sleep(0.01)  # poll with a deadline
        await refresher.stop()
        assert refresher.refreshes >= 4 and rpc.down == rpc.empty == 0  # 2 refused, 2 empty

    with caplog.at_level(logging.WARNING, "chainmall.node.light"):
        asyncio.run(run())
    assert anchors_.latest is not None and anchors_.latest.height == 3
    assert caplog.text.count("refreshing the trusted header failed") == 1  # the first: INFO


def _damaged(text: str) -> list[tuple[str, str]]:
    data = json.loads(text)
    flipped = dict(data, header=data["header"][:40] + ("0" if data["header"][40] != "0" else "1")
                   + data["header"][41:])
    body = {k: v for k, v in flipped.items() if k != "checksum"}
    resealed = dict(flipped, checksum=hashlib.sha256(
        json.dumps(body, sort_keys=True).encode()).hexdigest())
    return [("truncated", text[:len(text) // 2]), ("not JSON", "\x00garbage"),
            ("checksum", json.dumps(flipped)), ("checks out", json.dumps(resealed)),
            ("empty", "")]


@pytest.mark.parametrize("case", range(5))
def test_a_damaged_store_is_discarded_with_a_warning(
        tmp_path: Path, case: int, caplog: pytest.LogCaptureFixture) -> None:
    store = tmp_path / LIGHT_STORE_FILE
    rpc = FakeRpc(chain(9))
    stored(rpc, store).refresh()
    what, text = _damaged(store.read_text())[case]
    store.write_text(text)
    with pytest.raises(LightStoreInvalid):
        load_state(store, TrustRoot(CHAIN, SET))
    rpc.fetched.clear()
    with caplog.at_level(logging.WARNING, "chainmall.node.light"):
        again = stored(rpc, store)
    assert again.resumed_from is None, what
    assert "discarding the stored trusted header" in caplog.text and str(store) in caplog.text
    assert again.anchor(View(8, root(8))).block.height == 9  # type: ignore[arg-type]
    assert rpc.fetched[0] == 1  # from genesis again
    assert load_state(store, TrustRoot(CHAIN, SET)).latest.height == 9  # rewritten whole


def test_a_store_of_another_chain_is_discarded(tmp_path: Path) -> None:
    store = tmp_path / LIGHT_STORE_FILE
    stored(FakeRpc(chain(4)), store).refresh()
    other_set = validators_of(KEYS[:3])
    with pytest.raises(LightStoreInvalid, match="another chain"):
        load_state(store, TrustRoot(CHAIN, other_set))
    with pytest.raises(LightStoreInvalid, match="another chain"):
        load_state(store, TrustRoot("other-chain", SET))


_WRITER = """
import sys
from pathlib import Path
from chainmall.core.keys import KeyPair
from chainmall.core.node.light_store import TrustedState, save_state
from chainmall.core.proof_bundle import TrustRoot
from light_forge import sign_block, validators_of
keys = [KeyPair.from_seed(bytes([i + 1]) * 32) for i in range(64)]
vset = validators_of(keys)
blocks = [sign_block("kill-test", h, 1_700_000_000 + h, keys, vset) for h in (1, 2)]
trust = TrustRoot("kill-test", vset)
target = Path(sys.argv[1])
count = 0
while True:
    block = blocks[count % 2]
    save_state(target, TrustedState(1, blocks[0].hash(), block), trust)
    count += 1
    print(count, flush=True)
"""


def test_kill_9_while_writing_never_leaves_half_a_file(tmp_path: Path) -> None:
    """A writer saving the state over and over is SIGKILLed at varying moments: the file
    is always one whole state that checks out (the rename is atomic)."""
    from light_forge import validators_of as forge_set
    keys = [KeyPair.from_seed(bytes([i + 1]) * 32) for i in range(64)]
    trust = TrustRoot("kill-test", forge_set(keys))
    store = tmp_path / LIGHT_STORE_FILE
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(FORGE_DIR), os.environ.get("PYTHONPATH", "")])}
    for round_ in range(4):
        writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(store)], env=env,
                                  stdout=subprocess.PIPE, text=True)
        try:
            assert writer.stdout is not None
            for _ in range(3 + 7 * round_):  # let it write a varying number of times
                assert writer.stdout.readline(), "the writer died"
            writer.send_signal(signal.SIGKILL)
        finally:
            writer.kill()
            writer.wait()
        state = load_state(store, trust)  # whole, checked: never LightStoreInvalid
        assert state is not None and state.latest.height in (1, 2)
        assert not list(tmp_path.glob(".*.tmp"))  # a killed write's leftover is removed
