"""The silver-jewellery story, unchanged, against a 4-validator CometBFT localnet.

`tests/proc/test_mall_story.py` tells the story through the `chainmall` CLI
against one node. Here its `mall` fixture is replaced by one that points the
same CLI at node 0 of a 4-validator localnet (a genesis with the same mall
section, parties, keys and balances); the story's fixture and every one of
its tests then run as they are. The net makes an empty block a second while
idle, so the panel draw and buyer three's ship deadline fall due without a
tx; an invariant checker compares every node's block hash and app hash at
every height throughout. Then `chainmall verify` proves order one's escrow
and ring one's history from the genesis validators' signed headers.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from chainmall.core.genesis import make_mall
from chainmall.core.keystore import KeyStore
from cluster_harness import AgreementChecker, Cluster, dump_logs, poll

PROC = Path(__file__).resolve().parents[1] / "proc"
if str(PROC) not in sys.path:
    sys.path.insert(0, str(PROC))
story_module = pytest.importorskip(
    "test_mall_story", reason="the CLI story (tests/proc/test_mall_story.py) is not here")
from mallnode import BALANCE, FEE, PARAMS, MallCli, key  # noqa: E402

pytestmark = pytest.mark.slow
CERTIFIER, AUTHORITY = "certifier", "agenzia"

# The story's fixture and tests, as they are (pytest collects them from this module too).
globals().update({name: value for name, value in vars(story_module).items()
                  if name == "story" or name.startswith("test_")})


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mallnet") / "home"


@pytest.fixture(scope="module")
def mall(mallnet: Cluster, home: Path) -> MallCli:
    """The CLI against node 0 of the localnet."""
    return MallCli(home, f"tcp://127.0.0.1:{mallnet.net.nodes[0].api_port}")


@pytest.fixture(scope="module")
def mallnet(home: Path) -> Iterator[Cluster]:
    """A 4-validator localnet with the story's genesis, keys in `home`."""
    root = home.parent
    names = sorted({*story_module.NAMES, CERTIFIER, AUTHORITY})
    store = KeyStore(home / "keys")
    for name in names:
        store.import_seed(name, key(name).seed)
    section = make_mall([(key(CERTIFIER).address, "Ufficio del saggio di Firenze")],
                        [("IT", key(AUTHORITY).address, 2_200)], PARAMS)
    cluster = Cluster(root / "net", 4, seed=67, mall=section, fee_min=FEE,
                      extra_balances=tuple((key(name).address, BALANCE) for name in names))
    try:
        cluster.start_all()
        with AgreementChecker(cluster) as checker:
            yield cluster
            tip = cluster.max_height()
            cluster.wait_height(tip)
            poll(lambda: all(checker.caught_up(i, tip) for i in range(4)), "the checker")
        print(f"the story on 4 validators: {checker.assert_agreement(tip)} heights compared")
    except BaseException:
        dump_logs(cluster)
        raise
    finally:
        cluster.close()


@pytest.mark.parametrize("what", ["order", "trace"])
def test_chainmall_verify_proves_the_story_against_signed_headers(
        mallnet: Cluster, story, what: str) -> None:  # type: ignore[no-untyped-def]
    """Order one's escrow and ring one's history, proven by `chainmall verify` from the
    genesis validators through node 1's CometBFT (a light client: no trust in the node)."""
    net = mallnet.net
    path, data = (("/mall/order", bytes.fromhex(story["order1"])) if what == "order" else
                  ("/mall/trace", story_module.RINGS[0].encode()))
    done = subprocess.run(
        [sys.executable, "-m", "chainmall.cli", "--json", "verify", "--node",
         net.nodes[1].rpc_url, "--genesis", str(net.root / "genesis.json"), "--path", path,
         "--data", data.hex(), "--wait-s", "30"],
        capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    verdict = json.loads(done.stdout)
    assert verdict["verified"] and verdict["header_height"] == verdict["state_height"] + 1
    assert verdict["validators"] == 4 and verdict["signed_power"] * 3 > \
        verdict["total_power"] * 2
    present = [entry for entry in verdict["entries"] if entry["value"] is not None]
    # the order and its escrow; the ring's item and every event of its history
    assert len(present) >= (2 if what == "order" else 10), verdict["entries"]
