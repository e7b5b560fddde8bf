"""Recombination: merge neighbouring grids and split them again.

Where single-unit moves cannot restore balance (units too coarse to trade one
at a time), two or three neighbouring grids are merged and re-split by the
spanning-tree bisection, which searches many two-way cuts of the merged region
at once (the ReCom step of redistricting, used here as a repair).  A
recombination is kept only if it lowers the number of grids out of tolerance,
or keeps it and lowers the worst deviation among them.
"""

from __future__ import annotations

import numpy as np

from ._graph import UnitGraph
from .bisection import recursive_bisection

__all__ = ["recombine"]


def _dev(w: float, mean: float) -> float:
    return abs(w / mean - 1)


def recombine(
    g: UnitGraph,
    labels: np.ndarray,
    *,
    grids: np.ndarray,
    mean: float,
    tolerance: float,
    rng: np.random.Generator,
    locked: set[int] | frozenset[int] = frozenset(),
    n_trees: int = 24,
    max_rounds: int = 3,
) -> np.ndarray:
    """Repair grids out of tolerance by merging and re-splitting neighbours."""
    labels = labels.copy()
    active = {int(x) for x in grids} - set(locked)
    tol = tolerance + 1e-9

    def weight(gid: int) -> float:
        return float(g.weight[labels == gid].sum())

    def neighbours_of(gid: int) -> list[int]:
        return sorted(g.adjacent_labels(labels, np.flatnonzero(labels == gid)) & active)

    for _ in range(max_rounds):
        w = {gid: weight(gid) for gid in active}
        bad = sorted((gid for gid in active if _dev(w[gid], mean) > tol),
                     key=lambda x: (-_dev(w[x], mean), x))
        if not bad:
            break
        changed = False
        for gid in bad:
            if _dev(w[gid], mean) <= tol:
                continue
            nbrs = neighbours_of(gid)
            # partners that can absorb the difference first
            nbrs.sort(key=lambda h: (w[h] - mean) * (1 if w[gid] < mean else -1))
            groups = [[gid, h] for h in nbrs]
            groups += [[gid, a, b] for n1, a in enumerate(nbrs[:4]) for b in nbrs[n1 + 1:4]]
            for group in groups:
                nodes = np.flatnonzero(np.isin(labels, group))
                if len(np.unique(g.components(nodes))) > 1:
                    # a grid joined by an island across water (islands="nearest")
                    # cannot be cut along a spanning tree: leave the group alone
                    continue
                before = sorted((_dev(w[x], mean) for x in group), reverse=True)
                n_bad_before = sum(d > tol for d in before)
                best = None
                for _try in range(2):
                    pieces = recursive_bisection(
                        g, nodes, len(group), tolerance=tolerance, rng=rng, mean=mean,
                        n_trees=n_trees,
                    )
                    if len(pieces) != len(group):
                        break
                    after = sorted((_dev(float(g.weight[p].sum()), mean) for p in pieces),
                                   reverse=True)
                    key = (sum(d > tol for d in after), after)
                    if best is None or key < best[0]:
                        best = (key, pieces)
                    if key[0] == 0:
                        break
                if best is None:
                    continue
                (n_bad_after, after), pieces = best
                if (n_bad_after, after) < (n_bad_before, before):
                    # keep the grid ids: the piece most like each old grid keeps its id
                    old = {x: set(np.flatnonzero(labels == x).tolist()) for x in group}
                    free = list(group)
                    for p in sorted(pieces, key=lambda p: -len(p)):
                        ps = set(p.tolist())
                        owner = max(free, key=lambda x: (len(old[x] & ps), -x))
                        free.remove(owner)
                        labels[p] = owner
                        w[owner] = float(g.weight[p].sum())
                    changed = True
                    break
        if not changed:
            break
    return labels
