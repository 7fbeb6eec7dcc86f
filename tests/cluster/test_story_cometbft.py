"""The silver-jewellery story, unchanged, against a 4-validator CometBFT localnet.

`tests/proc/test_mall_story.py` tells the story through the `chainmall` CLI
against one node. Here its `mall` fixture is replaced by one that points the
same CLI at node 0 of a 4-validator localnet (a genesis with the same mall
section, parties, keys and balances); the story's fixture and every one of
its tests then run as they are. The net makes an empty block a second while
idle, so the panel draw and buyer three's ship deadline fall due without a
tx; an invariant checker compares every node's block hash and app hash at
every height throughout.
"""

from __future__ import annotations

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
def mall(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MallCli]:
    """The CLI against node 0 of a 4-validator localnet with the story's genesis."""
    root = tmp_path_factory.mktemp("mallnet")
    home = root / "home"
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
            yield MallCli(home, f"tcp://127.0.0.1:{cluster.net.nodes[0].api_port}")
            tip = cluster.max_height()
            cluster.wait_height(tip)
            poll(lambda: all(checker.caught_up(i, tip) for i in range(4)), "the checker")
        print(f"the story on 4 validators: {checker.assert_agreement(tip)} heights compared")
    except BaseException:
        dump_logs(cluster)
        raise
    finally:
        cluster.close()
