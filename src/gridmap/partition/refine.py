"""Local moves of boundary units between neighbouring grids.

Two passes.  First restore balance with a tabu search: take the grid furthest
outside the band and make the best move across its boundary (a unit out of a
grid above the band, into a grid below it), even a move that makes things worse
for a while, so that the excess can travel through full grids to the grids
that lack it; a unit may not go back to the grid it left for a few moves; at
the end the best state seen is kept.  Then shorten the boundaries: move units
whose move lowers the cut cost without leaving the band.  A unit moves only if
the grid it leaves stays in one piece; locked grids neither give nor take.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from ._graph import UnitGraph

__all__ = ["refine", "connected_without"]


def connected_without(g: UnitGraph, labels: np.ndarray, u: int) -> bool:
    """Whether the grid of ``u`` stays in one piece, and not empty, when ``u`` leaves it."""
    lab = labels[u]
    nb = [int(x) for x in g.neighbours(u) if labels[x] == lab]
    if len(nb) <= 1:
        # a leaf unit, or the grid's only unit (moving it would empty the grid)
        return len(nb) == 1
    # breadth-first search from one neighbour; stop as soon as all are reached
    targets = set(nb[1:])
    seen = {u, nb[0]}
    queue = deque([nb[0]])
    indptr, nbr = g.indptr, g.nbr
    while queue:
        v = queue.popleft()
        for x in nbr[indptr[v] : indptr[v + 1]].tolist():
            if x in seen or labels[x] != lab:
                continue
            seen.add(x)
            targets.discard(x)
            if not targets:
                return True
            queue.append(x)
    return not targets


def _cut_delta(g: UnitGraph, labels: np.ndarray, u: int, src: int, dst: int) -> float:
    s, e = g.indptr[u], g.indptr[u + 1]
    lab = labels[g.nbr[s:e]]
    c = g.cut[g.eid[s:e]]
    return float(c[lab == src].sum() - c[lab == dst].sum())


class _Balance:
    """Grid weights and how far the grids are from the band, kept up to date.

    The cost of a grid is 1 if it is outside the band (``lo``..``hi``) plus its
    distance, relative to the mean, from a slightly narrower inner band: the
    count of grids out of tolerance comes first, then how far out they are.
    (A sum of squares would rather spread a violation over many grids.)
    """

    def __init__(self, w: dict[int, float], mean: float, tolerance: float) -> None:
        self.w = w
        self.mean = mean
        self.lo, self.hi = mean * (1 - tolerance), mean * (1 + tolerance)
        self.lo_in, self.hi_in = mean * (1 - 0.8 * tolerance), mean * (1 + 0.8 * tolerance)

    def viol(self, x: float) -> float:
        """Distance from the inner band, relative to the mean."""
        return (max(x - self.hi_in, 0.0) + max(self.lo_in - x, 0.0)) / self.mean

    def cost(self, x: float) -> float:
        out = x > self.hi + 1e-9 or x < self.lo - 1e-9
        return float(out) + self.viol(x)

    def total(self) -> float:
        return sum(self.cost(x) for x in self.w.values())

    def delta(self, src: int, dst: int, wu: float) -> tuple[float, float]:
        ws, wd = self.w[src], self.w[dst]
        dv = self.cost(ws - wu) + self.cost(wd + wu) - self.cost(ws) - self.cost(wd)
        m = self.mean
        dvar = ((ws - wu - m) ** 2 + (wd + wu - m) ** 2 - (ws - m) ** 2 - (wd - m) ** 2) / (
            m * m
        )
        return dv, dvar


def refine(
    g: UnitGraph,
    labels: np.ndarray,
    *,
    grids: np.ndarray,
    mean: float,
    tolerance: float,
    locked: set[int] | frozenset[int] = frozenset(),
    max_moves: int | None = None,
    patience: int = 300,
    tenure: int = 12,
    compact_passes: int = 2,
) -> np.ndarray:
    """Improve balance, then compactness, of the grids in ``grids`` by local moves.

    ``labels`` gives the grid of every unit (units of other grids are left
    alone); returns new labels.  Balance aims at ``mean`` within ``tolerance``.
    """
    labels = labels.copy()
    grids = [int(x) for x in grids]
    active = set(grids) - set(locked)
    if len(active) < 2:
        return labels
    members: dict[int, set[int]] = {gid: set() for gid in grids}
    for u in np.flatnonzero(np.isin(labels, grids)).tolist():
        members[int(labels[u])].add(u)
    bal = _Balance(
        {gid: float(g.weight[list(members[gid])].sum()) for gid in grids}, mean, tolerance
    )
    n_units = sum(len(m) for m in members.values())
    if max_moves is None:
        max_moves = 20 * n_units + 200

    def best_move(gid: int, it: int, f_now: float, f_best: float):
        outward = bal.w[gid] > bal.hi_in
        best = None
        seen: set[tuple[int, int]] = set()
        for u in sorted(members[gid]):
            for x in g.neighbours(u).tolist():
                lx = int(labels[x])
                if lx == gid or lx not in active:
                    continue
                v, src, dst = (u, gid, lx) if outward else (x, lx, gid)
                if (v, dst) in seen:
                    continue
                seen.add((v, dst))
                dv, dvar = bal.delta(src, dst, float(g.weight[v]))
                # tabu unless it leads to a state better than any seen (aspiration)
                if tabu.get((v, dst), -1) >= it and f_now + dv >= f_best - 1e-9:
                    continue
                key = (dv, dvar, _cut_delta(g, labels, v, src, dst), v, dst)
                if best is not None and key >= best[0]:
                    continue
                if not connected_without(g, labels, v):
                    continue
                best = (key, v, src, dst)
        return best

    tabu: dict[tuple[int, int], int] = {}
    f_now = bal.total()
    f_best = f_now
    log: list[tuple[int, int, int]] = []  # moves since the best state
    it = 0
    since_best = 0
    dead: set[int] = set()
    while f_now > 1e-9 and it < max_moves and since_best < patience:
        order = sorted(
            (gid for gid in active if bal.viol(bal.w[gid]) > 1e-9 and gid not in dead),
            key=lambda x: (-bal.viol(bal.w[x]), x),
        )
        if not order:
            break
        move = None
        for gid in order:
            move = best_move(gid, it, f_now, f_best)
            if move is not None:
                break
            dead.add(gid)
        if move is None:
            break
        (dv, _, _, _, _), v, src, dst = move
        wv = float(g.weight[v])
        labels[v] = dst
        members[src].discard(v)
        members[dst].add(v)
        bal.w[src] -= wv
        bal.w[dst] += wv
        tabu[(v, src)] = it + tenure
        f_now += dv
        log.append((v, src, dst))
        it += 1
        dead.clear()
        if f_now < f_best - 1e-9:
            f_best = f_now
            log.clear()
            since_best = 0
        else:
            since_best += 1
    # back to the best state seen
    for v, src, dst in reversed(log):
        labels[v] = src
        members[dst].discard(v)
        members[src].add(v)
        wv = float(g.weight[v])
        bal.w[dst] -= wv
        bal.w[src] += wv

    # shorten boundaries without leaving the band (or worsening a violation)
    lo, hi = bal.lo, bal.hi
    units = sorted(u for m in members.values() for u in m)
    for _ in range(compact_passes):
        improved = 0
        for u in units:
            src = int(labels[u])
            if src not in active:
                continue
            for dst in sorted({int(labels[x]) for x in g.neighbours(u)} - {src}):
                if dst not in active:
                    continue
                dc = _cut_delta(g, labels, u, src, dst)
                if dc >= -1e-9:
                    continue
                wu = float(g.weight[u])
                ws, wd = bal.w[src], bal.w[dst]
                ok_s = ws - wu >= lo - 1e-9 or wu <= 0
                ok_d = wd + wu <= hi + 1e-9 or wu <= 0
                if not (ok_s and ok_d):
                    continue
                if not connected_without(g, labels, u):
                    continue
                labels[u] = dst
                members[src].discard(u)
                members[dst].add(u)
                bal.w[src] -= wu
                bal.w[dst] += wu
                improved += 1
                break
        if not improved:
            break
    return labels
