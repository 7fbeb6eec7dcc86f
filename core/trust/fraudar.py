"""Dense buyer-merchant blocks, in the spirit of Fraudar (Hooi et al., KDD 2016).

Written from the paper's idea, not from its code. The graph is bipartite:
buyers (rows) and merchants (columns), an edge where a buyer ordered from a
merchant. A block `S` (some buyers and some merchants) scores

    g(S) = f(S) / |S|,   f(S) = sum of node priors in S + sum of edge weights inside S,

and the greedy search peels the whole graph one node at a time, always the
node whose removal lowers `f` least (its prior plus its remaining edges),
and returns the intermediate set with the best `g`. Two choices make it
resist camouflage (fake buyers who also buy from honest shops to look
normal): an edge to a merchant with many buyers weighs little (column
weight `1 / log(degree + 5)`, the paper's), and camouflage edges can only
*add* to a fraud block's honest-looking side, never lower the density of
the block itself, so peeling still finds it. Priors let on-chain evidence
(signals already raised against a buyer) count for the block.

Off chain: floating point is fine here; ties break by node index so a run
is reproducible. `find_blocks` repeats the search on the graph without the
edges already explained, up to a number of blocks.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Block:
    """A dense block: row and column indexes, its density g, and its size."""

    rows: tuple[int, ...]
    columns: tuple[int, ...]
    density: float


def column_weights(edges: Mapping[tuple[int, int], float]) -> dict[int, float]:
    """1 / log(d + 5) per column, d its number of distinct rows."""
    degree: dict[int, int] = {}
    for _, column in edges:
        degree[column] = degree.get(column, 0) + 1
    return {column: 1.0 / math.log(count + 5) for column, count in degree.items()}


def weighted(edges: Mapping[tuple[int, int], float]) -> dict[tuple[int, int], float]:
    """Edge weights with the camouflage-resistant column weighting applied."""
    weights = column_weights(edges)
    return {edge: value * weights[edge[1]] for edge, value in edges.items()}


def densest(edges: Mapping[tuple[int, int], float],
            row_priors: Mapping[int, float] | None = None) -> Block | None:
    """The greedy densest block of a weighted bipartite graph (None if it has no edge).

    Rows and columns are separate index spaces; every row or column with an edge (or
    a prior) takes part. O(|E| log |V|).
    """
    if not edges:
        return None
    priors = dict(row_priors or {})
    # Node ids: rows as ("r", i) -> 2i, columns -> 2j + 1, so one heap holds both.
    adjacency: dict[int, dict[int, float]] = {}
    for (row, column), weight in sorted(edges.items()):  # one order: the same float sums
        a, b = 2 * row, 2 * column + 1
        adjacency.setdefault(a, {})[b] = adjacency.setdefault(a, {}).get(b, 0.0) + weight
        adjacency.setdefault(b, {})[a] = adjacency.setdefault(b, {}).get(a, 0.0) + weight
    for row in priors:
        adjacency.setdefault(2 * row, {})
    priority = {node: priors.get(node // 2, 0.0) if node % 2 == 0 else 0.0
                for node in sorted(adjacency)}
    for node, neighbours in adjacency.items():
        priority[node] += sum(neighbours.values())
    total = sum(priors.get(node // 2, 0.0) for node in sorted(adjacency) if node % 2 == 0)
    total += sum(weight for _, weight in sorted(edges.items()))
    alive = set(adjacency)
    heap = [(value, node) for node, value in priority.items()]
    heapq.heapify(heap)
    size = len(alive)
    best_density = total / size
    best_step = 0
    removed: list[int] = []
    while size > 1:
        value, node = heapq.heappop(heap)
        if node not in alive or value != priority[node]:
            continue
        alive.discard(node)
        removed.append(node)
        total -= value
        size -= 1
        for neighbour, weight in adjacency[node].items():
            if neighbour in alive:
                priority[neighbour] -= weight
                heapq.heappush(heap, (priority[neighbour], neighbour))
        density = total / size
        if density > best_density:
            best_density, best_step = density, len(removed)
    keep = set(adjacency) - set(removed[:best_step])
    rows = tuple(sorted(node // 2 for node in keep if node % 2 == 0))
    columns = tuple(sorted(node // 2 for node in keep if node % 2 == 1))
    return Block(rows, columns, best_density)


def find_blocks(edges: Mapping[tuple[int, int], float], row_priors: Mapping[int, float],
                count: int, min_density: float) -> list[Block]:
    """Up to `count` dense blocks, each found on the graph without the edges of the
    blocks found before it, while their density is at least `min_density`."""
    remaining = dict(edges)
    blocks: list[Block] = []
    for _ in range(count):
        present = {row for row, _ in remaining}
        block = densest(weighted(remaining), {row: prior for row, prior in row_priors.items()
                                              if row in present})
        if block is None or block.density < min_density or not block.columns:
            break
        blocks.append(block)
        rows, columns = set(block.rows), set(block.columns)
        remaining = {edge: value for edge, value in remaining.items()
                     if not (edge[0] in rows and edge[1] in columns)}
    return blocks
