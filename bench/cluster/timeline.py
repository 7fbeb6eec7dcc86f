"""Where a localnet's block time goes, per height, from CometBFT's own logs.

    .venv/bin/python bench/cluster/timeline.py NET_DIR [--from-height H]

Reads `nodeI/cometbft.log` of every node of a localnet that ran with CometBFT's
consensus logs at debug and its state logs at info (`cluster_bench.py --timeline`
sets `consensus:debug,state:info,*:error`) and splits each node's time at each
height into the steps CometBFT logs (wall clock, millisecond stamps):

    propose     entering the height's first round -> the complete proposal block of the
                round that decided it (the proposer's PrepareProposal and the block's
                parts on the wire; failed rounds before it count here)
    prevote     -> entering precommit (ProcessProposal, the own prevote, waiting for
                +2/3 prevotes)
    precommit   -> entering commit (waiting for +2/3 precommits)
    finalize    -> "finalized block" (saving the block, then our FinalizeBlock)
    commit      -> "committed state" (saving the results, then our Commit)
    next        -> the next height's first round (the mempool's update, then
                `timeout_commit`)

The printed shares are of the sum over nodes and heights; each step's median per
node-height is printed beside. A block's "skew" is how far apart the nodes
entered its height (the last minus the first): a proposer that enters late makes
the others wait (or time out, `timeout_propose`). With the nodes' validator keys
(`nodeI/cometbft/config/priv_validator_key.json`) each height's round-0
proposer is named (CometBFT logs it on entering a round), and how late it
entered the height against the first node is printed apart for the heights
decided in round 0 and after it, beside its FinalizeBlock + Commit wall of the
height before against the other nodes' (a proposer that is late because its
application's previous block took longer shows there; a proposer that is down
logs nothing).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import statistics
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

STEPS = ("propose", "prevote", "precommit", "finalize", "commit", "next")
_LINE = re.compile(r"^[DIEW]\[(\d{4}-\d\d-\d\d)\|(\d\d:\d\d:\d\d\.\d{3})\] (.*?)\s{2,}(.*)$")
_FIELD = re.compile(r"(\w+)=(\S+)")
_PROPOSAL = re.compile(r"Proposal\{(\d+)/(\d+)")


@dataclass
class Height:
    """One node's marks at one height (seconds since the epoch)."""

    new_round: float | None = None
    rounds: int = 0  # the highest round entered
    complete: dict[int, float] = field(default_factory=dict)  # round -> complete block
    precommit: dict[int, float] = field(default_factory=dict)  # round -> entering precommit
    commit: float | None = None
    commit_round: int = 0
    finalized: float | None = None
    committed: float | None = None
    proposer: dict[int, str] = field(default_factory=dict)  # round -> proposer address


def stamp(day: str, clock: str) -> float:
    """A log line's stamp in seconds since the epoch (CometBFT logs its host's local time,
    which a naive datetime's `timestamp` takes it to be)."""
    return datetime.fromisoformat(f"{day}T{clock}").timestamp()


def parse_log(lines: Iterable[str]) -> dict[int, Height]:
    """Marks per height from one node's CometBFT log."""
    heights: dict[int, Height] = {}
    for line in lines:
        match = _LINE.match(line)
        if match is None:
            continue
        day, clock, message, rest = match.groups()
        fields = dict(_FIELD.findall(rest))
        when = stamp(day, clock)
        if message == "received proposal":
            continue
        height_text = fields.get("height")
        if height_text is None or not height_text.isdigit():
            continue
        mark = heights.setdefault(int(height_text), Height())
        round_text = fields.get("round", "0")
        rnd = int(round_text) if round_text.isdigit() else 0
        if message == "entering new round":
            if mark.new_round is None:
                mark.new_round = when
            mark.rounds = max(mark.rounds, rnd)
            if "proposer" in fields:
                mark.proposer.setdefault(rnd, fields["proposer"].upper())
        elif message == "received complete proposal block":
            # the log line names no round: the latest wins, which is the deciding one
            mark.complete[mark.rounds] = when
        elif message == "entering precommit step":
            mark.precommit.setdefault(rnd, when)
        elif message == "entering commit step":
            if mark.commit is None:
                mark.commit = when
                commit_round = fields.get("commit_round", "0")
                mark.commit_round = int(commit_round) if commit_round.isdigit() else 0
        elif message == "finalized block":
            mark.finalized = when
        elif message == "committed state":
            mark.committed = when
    return heights


def steps_of(height: int, marks: dict[int, Height]) -> dict[str, float] | None:
    """One node's step durations (seconds) at `height`, None if its marks are not all
    there (the first and last heights of a log, a node killed mid-height)."""
    mark, after = marks.get(height), marks.get(height + 1)
    if mark is None or after is None or after.new_round is None:
        return None
    rnd = mark.commit_round
    complete = mark.complete.get(rnd)
    precommit = mark.precommit.get(rnd)
    points = (mark.new_round, complete, precommit, mark.commit, mark.finalized,
              mark.committed, after.new_round)
    if any(point is None for point in points):
        return None
    out: dict[str, float] = {}
    last = points[0]
    for name, point in zip(STEPS, points[1:], strict=True):
        point = max(point, last)  # a block complete before the round began waited 0
        out[name] = point - last
        last = point
    return out


@dataclass
class Timeline:
    """Every node's marks, by node name."""

    nodes: dict[str, dict[int, Height]]
    addresses: dict[str, str] = field(default_factory=dict)  # validator address -> node

    def heights(self, first: int = 0) -> list[int]:
        """The heights from `first` that any node logged (a killed node's log stops)."""
        return sorted({h for marks in self.nodes.values() for h in marks if h >= first})

    def finalized_at(self, node: str, height: int) -> float | None:
        """When `node` logged the height's FinalizeBlock done (its results are saved and
        readable through its RPC right after, before our Commit)."""
        mark = self.nodes.get(node, {}).get(height)
        return None if mark is None else mark.finalized

    def proposal_at(self, height: int) -> float | None:
        """When the first node had the deciding round's complete block (about when the
        proposer made it: its own copy counts)."""
        times = [m[height].complete.get(m[height].commit_round) for m in self.nodes.values()
                 if height in m]
        times = [t for t in times if t is not None]
        return min(times) if times else None

    def proposer_lateness(self, height: int) -> tuple[str, float, float | None] | None:
        """The round-0 proposer of `height` (node name, or its address if it is not one
        of the logs' nodes), how late it entered the height after the first node (None
        if it logged no entry: down), and its FinalizeBlock + Commit wall of the height
        before minus the median of the other nodes' (None when not all marks are there)."""
        named = [m[height].proposer.get(0) for m in self.nodes.values() if height in m]
        address = next((a for a in named if a), None)
        if address is None:
            return None
        node = self.addresses.get(address, address)
        entries = {n: m[height].new_round for n, m in self.nodes.items()
                   if height in m and m[height].new_round is not None}
        if not entries:
            return None
        late = entries[node] - min(entries.values()) if node in entries else None

        def block_work(marks: dict[int, Height]) -> float | None:
            before = marks.get(height - 1)
            if before is None or before.commit is None or before.committed is None:
                return None
            return before.committed - before.commit

        own = block_work(self.nodes[node]) if node in self.nodes else None
        others = [w for n, m in self.nodes.items() if n != node
                  for w in (block_work(m),) if w is not None]
        extra = own - statistics.median(others) if own is not None and others else None
        return node, late, extra


def load(net_dir: Path) -> Timeline:
    nodes = {}
    addresses = {}
    for log in sorted(net_dir.glob("node*/cometbft.log")):
        with log.open(errors="replace") as lines:
            nodes[log.parent.name] = parse_log(lines)
        key = log.parent / "cometbft" / "config" / "priv_validator_key.json"
        with contextlib.suppress(OSError, ValueError, KeyError):  # not a validator's
            addresses[json.loads(key.read_text())["address"].upper()] = log.parent.name
    return Timeline(nodes, addresses)


def report(timeline: Timeline, first: int = 0, heights: Iterable[int] | None = None) -> str:
    """The step shares, medians and skew over `heights` (default: every height a node
    logged from `first` on)."""
    chosen = list(heights) if heights is not None else timeline.heights(first)
    rows: list[dict[str, float]] = []
    late = 0
    skews = []
    spans = []
    for height in chosen:
        entries = [timeline.nodes[n][height].new_round for n in timeline.nodes
                   if height in timeline.nodes[n]]
        entries = [e for e in entries if e is not None]
        if len(entries) > 1:
            skews.append(max(entries) - min(entries))
        per_node = [steps_of(height, marks) for marks in timeline.nodes.values()]
        per_node = [p for p in per_node if p is not None]
        rows.extend(per_node)
        if per_node:
            spans.append(statistics.median(sum(p.values()) for p in per_node))
        if any(m[height].commit_round > 0 for m in timeline.nodes.values() if height in m):
            late += 1
    if not rows:
        return "timeline: no complete heights in the logs (consensus logs at debug?)"
    total = sum(sum(r.values()) for r in rows)
    lines = [f"timeline over {len(spans)} heights x {len(timeline.nodes)} nodes "
             f"({len(rows)} node-heights): a height takes {statistics.median(spans) * 1e3:.0f} "
             f"ms (median over heights of the nodes' median), decided after round 0 at {late}"]
    parts = []
    for name in STEPS:
        values = [r[name] for r in rows]
        parts.append(f"{name} {sum(values) / total * 100:.0f} % (median "
                     f"{statistics.median(values) * 1e3:.0f} ms, p90 "
                     f"{sorted(values)[int(0.9 * (len(values) - 1))] * 1e3:.0f} ms)")
    lines.append("steps: " + ", ".join(parts))
    if skews:
        lines.append(f"nodes entering a height apart (last - first): median "
                     f"{statistics.median(skews) * 1e3:.0f} ms, max {max(skews) * 1e3:.0f} ms")
    lines.extend(proposer_lines(timeline, chosen))
    return "\n".join(lines)


def proposer_lines(timeline: Timeline, heights: list[int]) -> list[str]:
    """The round-0 proposers' lateness, apart for the heights decided in round 0 and
    after it (and those whose proposer logged nothing: down)."""
    groups: dict[bool, list[tuple[float, float | None]]] = {False: [], True: []}
    down = 0
    for height in heights:
        seen = timeline.proposer_lateness(height)
        if seen is None:
            continue
        _, late, extra = seen
        after = any(m[height].commit_round > 0 for m in timeline.nodes.values() if height in m)
        if late is None:
            down += 1
        else:
            groups[after].append((late, extra))
    lines = []
    for after, rows in groups.items():
        if not rows:
            continue
        lates = [late for late, _ in rows]
        extras = [extra for _, extra in rows if extra is not None]
        lines.append(
            f"round-0 proposer at the {len(rows)} heights decided "
            f"{'after round 0' if after else 'in round 0'}: entered the height a median "
            f"{statistics.median(lates) * 1e3:.0f} ms (max {max(lates) * 1e3:.0f} ms) after "
            f"the first node; its previous block's FinalizeBlock + Commit wall against the "
            f"other nodes' median: "
            + (f"median {statistics.median(extras) * 1e3:+.0f} ms" if extras else "not logged"))
    if down:
        lines.append(f"round-0 proposer down (no entry logged) at {down} heights")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("net_dir", type=Path)
    parser.add_argument("--from-height", type=int, default=0)
    args = parser.parse_args()
    print(report(load(args.net_dir), args.from_height))
    return 0


if __name__ == "__main__":
    sys.exit(main())
