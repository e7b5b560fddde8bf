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

import itertools
from collections import deque

import numpy as np

from .. import effort
from ._graph import UnitGraph

__all__ = ["connected_without", "refine"]


def connected_without(g: UnitGraph, labels: np.ndarray, u: int) -> bool:
    """Whether the grid of ``u`` stays in one piece, and not empty, when ``u`` leaves it.

    Never for a unit pinned to its grid (:attr:`UnitGraph.pinned`).
    """
    if g.pinned is not None and g.pinned[u]:
        return False
    lab = labels[u]
    around = g.neighbours(u)
    nb = around[labels[around] == lab].tolist()
    if len(nb) <= 1:
        # a leaf unit, or the grid's only unit (moving it would empty the grid)
        return len(nb) == 1
    adj = g.adjacency_lists
    # most often the grid's units round ``u`` touch one another: then they stay
    # connected without it, and no search is needed
    ring = set(nb)
    reached = {nb[0]}
    stack = [nb[0]]
    while stack:
        v = stack.pop()
        for x in adj[v]:
            if x in ring and x not in reached:
                reached.add(x)
                stack.append(x)
    if len(reached) == len(ring):
        return True
    # the pieces of the ring are joined, or not, farther out: search from the
    # piece of ``nb[0]`` and from a ring unit it lacks at once, a step each in
    # turn.  Where ``u`` cuts the grid, one side is most often a few units, and
    # the search ends when that side runs out, not after the whole grid
    seen = {u} | reached
    queue = deque(reached)
    targets = ring - reached
    while targets:
        t = min(targets)
        other = {t}
        front = deque([t])
        met = False
        while not met:
            if not front or not queue:
                return False  # one side has run out: ``u`` cuts the grid
            v = front.popleft()
            for x in adj[v]:
                if x == u or labels[x] != lab or x in other:
                    continue
                if x in seen:
                    met = True
                    break
                other.add(x)
                front.append(x)
            if met:
                break
            v = queue.popleft()
            for x in adj[v]:
                if x in seen or labels[x] != lab:
                    continue
                if x in other:
                    met = True
                seen.add(x)
                queue.append(x)
        seen |= other
        queue.extend(front)
        targets -= seen
    return True


def _cut_deltas(g: UnitGraph, labels: np.ndarray, v: np.ndarray, src: np.ndarray,
                dst: np.ndarray) -> np.ndarray:
    """The change of the cut cost when each unit ``v`` moves from ``src`` to ``dst``.

    The cost of its edges into ``src`` (which become boundary) less that of its
    edges into ``dst`` (which stop being one).
    """
    slots, owner = g.slots_and_owners(v)
    lab = labels[g.nbr[slots]]
    c = g.cut[g.eid[slots]]
    n = len(v)
    to_src = np.bincount(owner, weights=np.where(lab == src[owner], c, 0.0), minlength=n)
    to_dst = np.bincount(owner, weights=np.where(lab == dst[owner], c, 0.0), minlength=n)
    return to_src - to_dst


class _Balance:
    """Grid weights and how far the grids are from the band, kept up to date.

    The cost of a grid is 1 if it is outside the band (``lo``..``hi``) plus its
    distance, relative to the mean, from a slightly narrower inner band: the
    count of grids out of tolerance comes first, then how far out they are.
    (A sum of squares would rather spread a violation over many grids.)
    """

    def __init__(self, w: dict[int, float], mean: float, tolerance: float,
                 inner: float = 0.8, size: int = 0) -> None:
        self.w = w
        # the same weights by grid id, for the moves weighed all at once
        self.arr = np.zeros(max(size, max(w, default=-1) + 1))
        for gid, x in w.items():
            self.arr[gid] = x
        self.mean = mean
        self.lo, self.hi = mean * (1 - tolerance), mean * (1 + tolerance)
        self.lo_in, self.hi_in = mean * (1 - inner * tolerance), mean * (1 + inner * tolerance)

    def viols(self, x: np.ndarray) -> np.ndarray:
        """Distance of each weight from the inner band, relative to the mean."""
        return (np.maximum(x - self.hi_in, 0.0) + np.maximum(self.lo_in - x, 0.0)) / self.mean

    def costs(self, x: np.ndarray) -> np.ndarray:
        """Cost of each weight: 1 if out of the band, plus its :meth:`viols`."""
        out = (x > self.hi + 1e-9) | (x < self.lo - 1e-9)
        return out.astype(float) + self.viols(x)

    def viol(self, x: float) -> float:
        """:meth:`viols` of one weight."""
        return float(self.viols(np.array([x]))[0])

    def cost(self, x: float) -> float:
        """:meth:`costs` of one weight."""
        return float(self.costs(np.array([x]))[0])

    def total(self) -> float:
        return sum(self.cost(x) for x in self.w.values())

    def deltas(self, src: np.ndarray, dst: np.ndarray,
               wu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The change of cost and of variance of moving ``wu`` from each ``src`` to ``dst``."""
        ws, wd = self.arr[src], self.arr[dst]
        # the four costs in one call: on a few dozen moves the calls cost, not the sums
        n = len(ws)
        c = self.costs(np.concatenate((ws - wu, wd + wu, ws, wd)))
        dv = c[:n] + c[n:2 * n] - c[2 * n:3 * n] - c[3 * n:]
        m = self.mean
        dvar = ((ws - wu - m) ** 2 + (wd + wu - m) ** 2 - (ws - m) ** 2 - (wd - m) ** 2) / (
            m * m
        )
        return dv, dvar


def _move(g: UnitGraph, labels: np.ndarray, members: dict[int, set[int]], bal: _Balance,
          u: int, src: int, dst: int) -> float:
    """Move unit ``u`` from grid ``src`` to ``dst``, keeping members and weights."""
    wu = float(g.weight[u])
    labels[u] = dst
    members[src].discard(u)
    members[dst].add(u)
    bal.w[src] -= wu
    bal.w[dst] += wu
    bal.arr[src] = bal.w[src]
    bal.arr[dst] = bal.w[dst]
    return wu


def _grid_neighbours(g: UnitGraph, labels: np.ndarray, members: dict[int, set[int]],
                     gid: int, active: set[int]) -> set[int]:
    out: set[int] = set()
    for u in members[gid]:
        out.update(int(labels[x]) for x in g.adjacency_lists[u])
    return (out & active) - {gid}


def _shift(g: UnitGraph, labels: np.ndarray, members: dict[int, set[int]], bal: _Balance,
           src: int, dst: int, need: float) -> list[tuple[int, int, int]]:
    """Move boundary units from ``src`` to ``dst`` adding up to about ``need``."""
    moved: list[tuple[int, int, int]] = []
    got = 0.0
    for _ in range(50):
        if got >= need * 0.5:
            break
        cands = sorted(
            {u for u in members[src] if any(labels[x] == dst for x in g.adjacency_lists[u])},
            key=lambda u: (abs(got + float(g.weight[u]) - need), u),
        )
        for u in cands:
            wu = float(g.weight[u])
            if wu <= 0 or got + wu > need * 1.5 + 1e-9:
                continue
            if not connected_without(g, labels, u):
                continue
            got += _move(g, labels, members, bal, u, src, dst)
            moved.append((u, src, dst))
            break
        else:
            break
    return moved


def _chains(g: UnitGraph, labels: np.ndarray, members: dict[int, set[int]], bal: _Balance,
            active: set[int], max_len: int = 6) -> None:
    """Ejection chains: carry weight from a grid with room to spare to one out of the band.

    Along a path of grids, each passing on about what it receives.

    Kept only where the number of grids out of tolerance (then the distance
    from the band) goes down.
    """
    for _round in range(3):
        improved = False
        bad = sorted((x for x in active if bal.cost(bal.w[x]) >= 1.0),
                     key=lambda x: (-bal.viol(bal.w[x]), x))
        for gid in bad:
            if bal.cost(bal.w[gid]) < 1.0:
                continue
            under = bal.w[gid] < bal.mean
            need = (bal.mean - bal.w[gid]) if under else (bal.w[gid] - bal.mean)
            # breadth-first over grids to the nearest one that can give (or take)
            prev = {gid: -1}
            frontier = [gid]
            found = -1
            for _depth in range(max_len):
                nxt = []
                for x in frontier:
                    for y in sorted(_grid_neighbours(g, labels, members, x, active)):
                        if y in prev:
                            continue
                        prev[y] = x
                        slack = (bal.w[y] - bal.lo_in) if under else (bal.hi_in - bal.w[y])
                        if slack >= need * 0.5:
                            found = y
                            break
                        nxt.append(y)
                    if found >= 0:
                        break
                if found >= 0 or not nxt:
                    break
                frontier = nxt
            if found < 0:
                continue
            path = [found]
            while prev[path[-1]] != -1:
                path.append(prev[path[-1]])
            # path runs found -> ... -> gid; weight flows along it (or against it)
            before = sum(bal.cost(bal.w[x]) for x in path)
            log: list[tuple[int, int, int]] = []
            steps = list(itertools.pairwise(path))
            if not under:
                steps = [(b, a) for a, b in reversed(steps)]
            for a, b in steps:
                log += _shift(g, labels, members, bal, a, b, need)
            after = sum(bal.cost(bal.w[x]) for x in path)
            if after < before - 1e-9:
                improved = True
                continue
            for u, a, b in reversed(log):
                _move(g, labels, members, bal, u, b, a)
        if not improved:
            break


def _best_move(g: UnitGraph, labels: np.ndarray, members: dict[int, set[int]],
               bal: _Balance, is_active: np.ndarray, tabu: dict[tuple[int, int], int],
               gid: int, it: int, f_now: float, f_best: float) -> tuple | None:
    """The best move across ``gid``'s boundary: the least (dv, dvar, cut, v, dst).

    Of the moves not tabu (or better than any state seen) that leave their grid
    in one piece.  Every move is weighed, and its cut worked out, at once; the
    piece is checked in that order, until one move passes.
    """
    outward = bal.w[gid] > bal.hi_in
    mem = np.fromiter(members[gid], dtype=np.int64, count=len(members[gid]))
    slots, owner = g.slots_and_owners(mem)
    x = g.nbr[slots]
    lx = labels[x]
    keep = (lx >= 0) & (lx != gid)
    keep[keep] = is_active[lx[keep]]
    if not keep.any():
        return None
    u = mem[owner[keep]]
    x, lx = x[keep], lx[keep]
    if outward:
        v, src, dst = u, np.full(len(u), gid), lx
    else:
        v, src, dst = x, lx, np.full(len(x), gid)
    _, first = np.unique(v * len(is_active) + dst, return_index=True)
    v, src, dst = v[first], src[first], dst[first]
    dv, dvar = bal.deltas(src, dst, g.weight[v])
    cut = _cut_deltas(g, labels, v, src, dst)
    order = np.lexsort((dst, v, cut, dvar, dv)).tolist()
    vl, sl, dl = v.tolist(), src.tolist(), dst.tolist()
    dvl, dvarl, cutl = dv.tolist(), dvar.tolist(), cut.tolist()
    for q in order:
        # tabu unless it leads to a state better than any seen (aspiration)
        if tabu.get((vl[q], dl[q]), -1) >= it and f_now + dvl[q] >= f_best - 1e-9:
            continue
        if connected_without(g, labels, vl[q]):
            return (dvl[q], dvarl[q], cutl[q], vl[q], dl[q]), vl[q], sl[q], dl[q]
    return None


def refine(
    g: UnitGraph,
    labels: np.ndarray,
    *,
    grids: np.ndarray,
    mean: float,
    tolerance: float,
    locked: set[int] | frozenset[int] = frozenset(),
    max_moves: int | None = None,
    patience: int | None = None,
    tenure: int = 12,
    compact_passes: int = 2,
    inner: float = 0.8,
) -> np.ndarray:
    """Improve balance, then compactness, of the grids in ``grids`` by local moves.

    ``labels`` gives the grid of every unit (units of other grids are left
    alone); returns new labels.  Balance aims at ``mean`` within ``inner ×
    tolerance`` (a margin inside the band; 1 stops at the band, moving less).
    The search stops after ``patience`` moves without a better state (default
    five per unit of the grids, at most 500: a small region has few moves to
    try, and a search of hundreds of them goes round in circles).
    """
    labels = labels.copy()
    grid_ids = [int(x) for x in grids]
    active = set(grid_ids) - set(locked)
    if len(active) < 2:
        return labels
    members: dict[int, set[int]] = {gid: set() for gid in grid_ids}
    for u in np.flatnonzero(np.isin(labels, grid_ids)).tolist():
        members[int(labels[u])].add(u)
    size = int(max(labels.max(initial=-1), *grid_ids)) + 1
    bal = _Balance(
        {gid: float(g.weight[list(members[gid])].sum()) for gid in grid_ids}, mean, tolerance,
        inner, size,
    )
    is_active = np.zeros(size, dtype=bool)
    is_active[list(active)] = True
    n_units = sum(len(m) for m in members.values())
    if max_moves is None:
        max_moves = 20 * n_units + 200
    if patience is None:
        patience = min(500, 5 * n_units)

    tabu: dict[tuple[int, int], int] = {}
    active_ids = np.array(sorted(active), dtype=np.int64)
    f_now = bal.total()
    f_best = f_now
    log: list[tuple[int, int, int]] = []  # moves since the best state
    it = 0
    since_best = 0
    dead: set[int] = set()
    while f_now > 1e-9 and it < max_moves and since_best < patience:
        if effort.spent():
            break
        # the grids off the inner band, furthest first (then by id)
        viol = bal.viols(bal.arr[active_ids])
        off = viol > 1e-9
        order = active_ids[off][np.lexsort((active_ids[off], -viol[off]))].tolist()
        if dead:
            order = [gid for gid in order if gid not in dead]
        if not order:
            break
        move = None
        for gid in order:
            # the work of weighing the moves of a grid's units
            effort.charge(0.02 * len(members[gid]))
            move = _best_move(g, labels, members, bal, is_active, tabu, gid, it,
                              f_now, f_best)
            if move is not None:
                break
            dead.add(gid)
        if move is None:
            break
        (dv, _, _, _, _), v, src, dst = move
        _move(g, labels, members, bal, v, src, dst)
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
        _move(g, labels, members, bal, v, dst, src)

    _chains(g, labels, members, bal, active)

    # shorten boundaries without leaving the band (or worsening a violation)
    lo, hi = bal.lo, bal.hi
    units = sorted(u for m in members.values() for u in m)
    for _ in range(compact_passes):
        effort.charge(0.01 * len(units))
        improved = 0
        for u in units:
            src = int(labels[u])
            if src not in active:
                continue
            dsts = sorted(({int(labels[x]) for x in g.adjacency_lists[u]} - {src}) & active)
            if not dsts:
                continue
            n = len(dsts)
            cuts = _cut_deltas(g, labels, np.full(n, u), np.full(n, src), np.array(dsts))
            for dst, dc in zip(dsts, cuts.tolist(), strict=True):
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
                _move(g, labels, members, bal, u, src, dst)
                improved += 1
                break
        if not improved:
            break
    return labels
