"""Recombination: merge neighbouring grids and split them again.

Where single-unit moves cannot restore balance (units too coarse to trade one
at a time), two or three neighbouring grids are merged and re-split by the
spanning-tree bisection, which searches many two-way cuts of the merged region
at once (the ReCom step of redistricting, used here as a repair).  A
recombination is kept only if it lowers the number of grids out of tolerance,
or keeps it and lowers the worst deviation among them.

Where no single recombination helps, :func:`wander` walks: it merges a grid out
of the band with a neighbour and re-splits the pair even when nothing is
gained, so long as nothing is lost, and the shortfall (or excess) travels from
grid to grid until it meets one with room.
"""

from __future__ import annotations

import numpy as np

from .. import effort
from ._graph import UnitGraph
from .bisection import recursive_bisection

__all__ = ["recombine", "wander"]


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
    n_trees: int = 12,
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
                if effort.spent():
                    break
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


#: how often a walk re-splits the same pair of grids (the same units) for nothing
#: before it leaves the pair alone
_RETRIES = 3


def wander(
    g: UnitGraph,
    labels: np.ndarray,
    *,
    grids: np.ndarray,
    mean: float,
    tolerance: float,
    rng: np.random.Generator,
    locked: set[int] | frozenset[int] = frozenset(),
    walks: int = 6,
    steps: int | None = None,
    patience: int = 100,
    n_trees: int = 4,
) -> np.ndarray:
    """Walks of recombinations that carry a grid's shortfall (or excess) to one with room.

    The walks go across full grids; returns new labels.

    A step merges a grid out of the band, drawn at random, with one of its
    neighbours and re-splits the pair along a spanning tree.  The step is taken
    unless the grids end further out of the band in sum than in the plan given:
    one grid far out may become two just out, which move on more easily.  A
    walk ends after ``steps`` steps (default 20 per grid, at most 2,500) with no
    better plan, or when no grid out of the band has moved in ``patience``
    tries.  The best plan met (fewest grids out, then least out in sum) is
    returned, without the sideways steps after it.  Walks start from the plan
    given until one brings a grid into the band, then from the best plan.
    Grids in ``locked`` neither give nor take.

    The units of a grid are only ever re-split with a neighbour's, so every
    grid stays in one piece.
    """
    active_set = {int(x) for x in grids} - set(locked)
    active = sorted(active_set)
    best = labels.copy()
    if len(active) < 2:
        return best
    tol = tolerance + 1e-9

    def excess(x: float) -> float:
        return max(float(_dev(x, mean)) - tol, 0.0)

    def key_of(w: dict[int, float]) -> tuple[int, float]:
        return sum(excess(x) > 0 for x in w.values()), sum(excess(x) for x in w.values())

    def grid_weights(lab: np.ndarray) -> dict[int, float]:
        wts = np.bincount(lab[lab >= 0], weights=g.weight[lab >= 0],
                          minlength=active[-1] + 1)
        return {gid: float(wts[gid]) for gid in active}

    if steps is None:
        # room to roam grows with the plan: a few grids give a walk few places to go
        steps = min(2500, 20 * len(active))
    best_key = start_key = key_of(grid_weights(best))
    # re-splits of a pair's units (as bytes of the sorted unit ids) that gained nothing
    failed: dict[bytes, int] = {}
    for _walk in range(walks):
        if best_key[0] == 0:
            break
        # from the plan given until a walk brings a grid into the band: a gain
        # short of that can be a dead end another walk avoids
        base, base_key = (best, best_key) if best_key[0] < start_key[0] else (labels, start_key)
        lab, w = base.copy(), grid_weights(base)
        n_out, total = base_key
        since = 0
        # how many steps in a row from a grid changed nothing: a grid no
        # re-split with any neighbour moves is left alone until one moves
        idle: dict[int, int] = {}
        while since < steps and n_out:
            if effort.spent():
                break
            since += 1
            bad = [gid for gid in active if excess(w[gid]) > 0 and idle.get(gid, 0) < patience]
            if not bad:
                break
            a = bad[int(rng.integers(len(bad)))]
            mine = np.flatnonzero(lab == a)
            nb = sorted((g.adjacent_labels(lab, mine) & active_set) - {a})
            if not nb:
                continue
            b = nb[int(rng.integers(len(nb)))]
            nodes = np.flatnonzero((lab == a) | (lab == b))
            union = nodes.tobytes()
            if failed.get(union, 0) >= _RETRIES:
                # the pair, as it is, was re-split that often for nothing: a walk
                # in a small district comes back to the same pairs again and again
                idle[a] = idle.get(a, 0) + 1
                continue
            if len(np.unique(g.components(nodes))) > 1:
                continue  # a grid joined across water: no spanning tree cuts it
            pieces = recursive_bisection(g, nodes, 2, tolerance=tolerance, rng=rng,
                                         mean=mean, n_trees=n_trees)
            if len(pieces) != 2:
                idle[a] = idle.get(a, 0) + 1
                failed[union] = failed.get(union, 0) + 1
                continue
            # the piece with more of ``a``'s units keeps its id
            p, q = pieces
            p_mine = int(np.isin(p, mine).sum())
            if p_mine < len(mine) - p_mine:
                p, q = q, p
                p_mine = len(mine) - p_mine
            wp, wq = float(g.weight[p].sum()), float(g.weight[q].sum())
            d_out = (excess(wp) > 0) + (excess(wq) > 0) - (excess(w[a]) > 0) \
                - (excess(w[b]) > 0)
            d_total = excess(wp) + excess(wq) - excess(w[a]) - excess(w[b])
            same = len(p) == len(mine) == p_mine
            if same or total + d_total > start_key[1] + 1e-12:
                idle[a] = idle.get(a, 0) + 1
                failed[union] = failed.get(union, 0) + 1
                continue
            lab[p], lab[q] = a, b
            # the grids that touch the pair may have new ways to re-split
            for x in {a, b} | g.adjacent_labels(lab, nodes):
                idle.pop(x, None)
            w[a], w[b] = wp, wq
            n_out, total = n_out + d_out, total + d_total
            if (n_out, total) < (best_key[0], best_key[1] - 1e-12):
                best, best_key, since = lab.copy(), (n_out, total), 0
    return best
