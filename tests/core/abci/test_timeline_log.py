"""bench/cluster/timeline.py reads CometBFT's consensus and state log lines into steps."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[3] / "bench" / "cluster" / "timeline.py"


@pytest.fixture(scope="module")
def timeline():
    spec = importlib.util.spec_from_file_location("bench_cluster_timeline", _PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def line(level: str, clock: str, message: str, **fields: object) -> str:
    """A line as CometBFT's plain logger writes it (message padded to 44 columns)."""
    text = " ".join(f"{key}={value}" for key, value in fields.items())
    return f"{level}[2026-11-29|{clock}] {message:<44} {text}\n"


def node_log(shift_ms: int = 0, late_round: bool = False) -> list[str]:
    def at(ms: int) -> str:
        ms += shift_ms
        return f"15:00:{ms // 1000:02d}.{ms % 1000:03d}"

    rnd = 1 if late_round else 0
    lines = [
        line("D", at(0), "entering new round", module="consensus", height=5, round=0,
             current="5/0/RoundStepNewHeight"),
        line("D", at(1), "entering propose step", module="consensus", height=5, round=0),
    ]
    if late_round:
        lines.append(line("D", at(300), "entering new round", module="consensus", height=5,
                          round=1, current="5/0/RoundStepPrecommitWait"))
    lines += [
        line("I", at(400), "received proposal", module="consensus",
             proposal=f'"Proposal{{5/{rnd} (ABC:1:DEF, -1) 1234 @ 2026}}"'),
        line("I", at(410), "received complete proposal block", module="consensus", height=5,
             hash="ABC"),
        line("D", at(420), "entering prevote step", module="consensus", height=5, round=rnd),
        line("D", at(450), "entering precommit step", module="consensus", height=5, round=rnd),
        line("D", at(480), "entering commit step", module="consensus", height=5,
             commit_round=rnd),
        line("I", at(481), "finalizing commit of block", module="consensus", height=5),
        line("I", at(560), "finalized block", module="state", height=5, num_txs_res=3),
        line("I", at(561), "executed block", module="state", height=5, app_hash="AA"),
        line("I", at(620), "committed state", module="state", height=5,
             block_app_hash="AA"),
        line("D", at(645), "entering new round", module="consensus", height=6, round=0,
             current="6/0/RoundStepNewHeight"),
    ]
    return lines


def test_one_height_splits_into_the_logged_steps(timeline) -> None:
    marks = timeline.parse_log(node_log())
    steps = timeline.steps_of(5, marks)
    assert steps is not None
    assert {k: round(v * 1000) for k, v in steps.items()} == {
        "propose": 410, "prevote": 40, "precommit": 30, "finalize": 80, "commit": 60,
        "next": 25}
    assert timeline.steps_of(6, marks) is None  # the next height never ended


def test_a_later_round_is_counted_in_propose_and_as_late(timeline, tmp_path: Path) -> None:
    for index, (shift, late) in enumerate(((0, True), (30, True))):
        node = tmp_path / f"node{index}"
        node.mkdir()
        (node / "cometbft.log").write_text("".join(node_log(shift, late)))
    loaded = timeline.load(tmp_path)
    assert sorted(loaded.nodes) == ["node0", "node1"]
    assert loaded.nodes["node0"][5].commit_round == 1
    assert loaded.proposal_at(5) == pytest.approx(loaded.nodes["node0"][5].complete[1])
    text = timeline.report(loaded, heights=[5])
    assert "decided after round 0 at 1" in text
    assert "nodes entering a height apart (last - first): median 30 ms" in text


def test_the_round0_proposer_and_how_late_it_entered(timeline, tmp_path: Path) -> None:
    proposer = f"{1:040X}"
    for index, shift in enumerate((0, 120)):  # node1 proposes and enters 120 ms late
        node = tmp_path / f"node{index}"
        (node / "cometbft" / "config").mkdir(parents=True)
        (node / "cometbft" / "config" / "priv_validator_key.json").write_text(
            json.dumps({"address": f"{index:040x}"}))
        lines = [text.replace("height=5 round=0 current", f"height=5 round=0 proposer="
                              f"{proposer} current") for text in node_log(shift, True)]
        (node / "cometbft.log").write_text("".join(lines))
    loaded = timeline.load(tmp_path)
    assert loaded.addresses == {f"{0:040X}": "node0", proposer: "node1"}
    node, late, extra = loaded.proposer_lateness(5)
    assert node == "node1" and round(late * 1000) == 120 and extra is None  # no height 4
    text = timeline.report(loaded, heights=[5])
    assert "round-0 proposer at the 1 heights decided after round 0: entered the height " \
           "a median 120 ms" in text
