"""Exact re-cut of a few neighbouring grids: a small mixed-integer programme.

Where the local moves leave a grid out of the band, the grids around it may
still have a balanced plan that no chain of single-unit moves reaches (two
heavy units have to swap grids at once, say).  :func:`recut` asks HiGHS (through
:func:`scipy.optimize.milp`) for a plan of a region's units into the same number
of grids, every one contiguous and within the band, with the least cut cost;
:func:`check_region` grows such regions around a grid out of the band, and
:func:`exact_repair` takes a plan where one exists.  "No plan" from :func:`recut` is a proof
about that region (about the plans that move units at most ``reach`` away,
unless every unit was free): the grid is out because of its units, not because
a search missed a plan.

The model, for units ``i`` and grids ``j``:

* ``x[i,j]`` = 1 when unit ``i`` is in grid ``j``; every unit in one grid; a unit
  may stay or move to a grid up to ``reach`` units away, so grids shift rather
  than jump and the programme stays small; the units that may only stay are
  one node per connected piece and grid;
* every grid's weight within ``[lo, hi]``;
* contiguity by a single-commodity flow per grid: one root per grid sends flow
  along edges inside the grid and every other unit of the grid consumes one;
* minimise the cut cost of edges between grids (streets are cheap to cut), less
  a small reward for units that stay where they are.

The solver stops at a node limit, not a clock, so the same input gives the same
plan on any machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .. import effort
from ._graph import UnitGraph

__all__ = ["RegionCheck", "RegionLimits", "check_region", "exact_repair", "programme_size",
           "recut"]


@dataclass(frozen=True)
class RegionLimits:
    """How far :func:`check_region` may grow a region and how hard HiGHS may work.

    ``max_grids`` grids and ``max_units`` units per region; ``max_nodes`` nodes
    of its programme (:func:`programme_size`); ``node_limit`` branch-and-bound
    nodes per programme; a unit may move to a grid at most ``reach`` units away.
    Where the growing region found no plan, the other connected sets of up to
    ``max_set_grids`` grids around the grid are tried too (at most ``max_sets``
    of them, on programmes of up to ``max_set_nodes`` nodes).  With ``solver``
    False, a programme the search does not settle within its steps is left
    undecided instead of going to HiGHS (whose work on a small programme can
    take seconds: the budgets smaller than ``thorough`` go without it).
    """

    max_grids: int = 6
    max_units: int = 400
    max_nodes: int = 100
    node_limit: int = 20
    reach: int = 3
    max_set_grids: int = 3
    max_set_nodes: int = 60
    max_sets: int = 30
    solver: bool = True


@dataclass
class _Programme:
    """A region's units as the programme's nodes.

    A node for every unit that may move, one for every connected piece of a grid's
    units that may only stay (a unit that may only stay is in its grid whatever the
    plan, so the programme grows with the units that may move rather than with the
    region).
    """

    node_of: np.ndarray  # the node of every unit of the region
    weight: np.ndarray  # per node
    allowed: np.ndarray  # node × grid: the grids a node may join
    current: np.ndarray  # per node: its grid now
    ea: np.ndarray  # edges between nodes (ea < eb), parallel edges summed
    eb: np.ndarray
    cut: np.ndarray
    scale: float  # the mean cut cost of the region's edges
    free: bool  # every unit may join every grid: "no plan" is about all plans

    @property
    def n(self) -> int:
        return len(self.weight)


def _programme(g: UnitGraph, nodes: np.ndarray, current: np.ndarray, m: int,
               reach: int) -> _Programme:
    """The programme's nodes and edges for ``nodes`` now in grids ``current``."""
    nodes = np.asarray(nodes, dtype=np.int64)
    current = np.asarray(current, dtype=np.int64)
    loc = np.full(g.n, -1, dtype=np.int64)
    loc[nodes] = np.arange(len(nodes))
    em = (loc[g.i] >= 0) & (loc[g.j] >= 0)
    ea, eb, cut = loc[g.i[em]], loc[g.j[em]], g.cut[em]
    # the grids each unit may join: its own and those up to `reach` units away
    allowed = np.zeros((len(nodes), m), dtype=bool)
    allowed[np.arange(len(nodes)), current] = True
    for _ in range(reach):
        grown = allowed.copy()
        np.logical_or.at(grown, ea, allowed[eb])
        np.logical_or.at(grown, eb, allowed[ea])
        if (grown == allowed).all():
            break
        allowed = grown
    fixed = allowed.sum(axis=1) == 1
    same = fixed[ea] & fixed[eb] & (current[ea] == current[eb])
    links = coo_matrix((np.ones(int(same.sum())), (ea[same], eb[same])),
                       shape=(len(nodes),) * 2)
    node_of = connected_components(links, directed=False)[1].astype(np.int64)
    n = int(node_of.max()) + 1 if len(nodes) else 0
    first = np.unique(node_of, return_index=True)[1]
    a, b = node_of[ea], node_of[eb]
    keep = a != b
    pair, inv = np.unique(np.minimum(a, b)[keep] * n + np.maximum(a, b)[keep],
                          return_inverse=True)
    return _Programme(
        node_of=node_of, weight=np.bincount(node_of, weights=g.weight[nodes], minlength=n),
        allowed=allowed[first], current=current[first], ea=pair // n, eb=pair % n,
        cut=np.bincount(inv, weights=cut[keep], minlength=len(pair)),
        scale=float(cut.mean()) if len(cut) and cut.mean() > 0 else 1.0,
        free=bool(allowed.all()))


def programme_size(g: UnitGraph, nodes: np.ndarray, current: np.ndarray,
                   reach: int = 3) -> int:
    """How many nodes :func:`recut` solves for.

    One per unit that may move, one per connected piece of a grid's units that may
    only stay.

    Examples
    --------
    A path of six units in two grids of three: within one step of the other grid
    only the two units at the cut may move; each grid's other two are one node.

    >>> g = UnitGraph.from_edges(6, np.ones(6), np.zeros((6, 2)), np.arange(5),
    ...                          np.arange(1, 6), np.ones(5))
    >>> programme_size(g, np.arange(6), np.array([0, 0, 0, 1, 1, 1]), reach=1)
    4
    """
    m = int(np.max(current)) + 1 if len(current) else 1
    return _programme(g, nodes, current, m, reach).n


def recut(
    g: UnitGraph,
    nodes: np.ndarray,
    current: np.ndarray,
    m: int,
    lo: float,
    hi: float,
    *,
    node_limit: int = 20,
    reach: int = 3,
    stats: dict | None = None,
) -> np.ndarray | str | None:
    """Share ``nodes`` between grids ``0..m-1``, each contiguous and within ``[lo, hi]``.

    Parameters
    ----------
    g
        The unit graph.
    nodes
        The region's units.
    current
        The grid (``0..m-1``) every unit of the region is in now.
    m
        Number of grids.
    lo, hi
        The band every grid's weight must be in.
    node_limit
        Branch-and-bound nodes before HiGHS stops.
    reach
        How many units away from its grid a unit may move.
    stats
        If given, ``stats["nodes"]`` is increased by one plus the branch-and-bound
        nodes used (a measure of work that, unlike seconds, is the same on any
        machine).

    Returns
    -------
    numpy.ndarray or None or str
        The grid of every unit of the region; ``None`` when no plan exists (a
        proof); ``"reach"`` when no plan exists that moves units at most
        ``reach`` away (a proof about those plans only: with every unit free
        the programme is much slower); ``"limit"`` when the solver stopped at
        the node limit without a plan.

    Examples
    --------
    Four units in a row weighing 1, 2, 2, 1, cut as [1] [2, 2, 1]: the only
    balanced plan into two grids of 3 is [1, 2] [2, 1].

    >>> import numpy as np
    >>> g = UnitGraph.from_edges(4, np.array([1.0, 2, 2, 1]), np.zeros((4, 2)),
    ...                          np.array([0, 1, 2]), np.array([1, 2, 3]), np.ones(3))
    >>> recut(g, np.arange(4), np.array([0, 1, 1, 1]), 2, 3, 3).tolist()
    [0, 0, 1, 1]
    """
    return _solve(_programme(g, nodes, current, m, reach), m, lo, hi,
                  node_limit=node_limit, stats=stats)


#: steps of :func:`_search` before it gives the programme to HiGHS
_SEARCH_STEPS = 100_000
#: units walked through by :func:`_search`'s checks that count as one step:
#: counted so, a step took about 10 µs on a 34-unit programme of four grids and
#: 5-7 µs on smaller ones (the hundredth of a millisecond a step is charged);
#: counting choices alone, 28 µs on the large one
_VISITS_PER_STEP = 48


def _own_first(grids: set[int], own: int) -> list[int]:
    """``grids`` in ascending order, ``own`` first."""
    return sorted(grids, key=lambda x: (x != own, x))


def _search(p: _Programme, m: int, lo: float, hi: float,
            steps: int = _SEARCH_STEPS) -> tuple[np.ndarray | None, bool, int]:
    """:func:`_solve` by a depth-first search over the grid of every node.

    The flow model's relaxation is weak: HiGHS may need thousands of nodes to
    show that eleven units have no plan, which a search that drops a grid as
    soon as it is too heavy, or can no longer reach the band, shows at once.
    Heaviest nodes first.  After each choice, the grid chosen and the grids
    around the node must still be able to become one piece within the band:
    their units and the units still free to join them must hang together and
    weigh enough.  Each node tries its own grid first, so the first plans found
    move little.  Returns the best plan found (node level; the programme's
    objective, the first best in search order) or None, whether the search went
    through every plan (then None is a proof), and the steps it took: a choice
    is a step, and so are every :data:`_VISITS_PER_STEP` units the checks of a
    grid's piece walk through (on a large programme the walks, not the choices,
    are the cost).
    """
    n = p.n
    order = np.lexsort((np.arange(n), -p.weight)).tolist()
    may = [set(np.flatnonzero(row).tolist()) for row in p.allowed]
    weight = p.weight.tolist()
    adj: list[list[int]] = [[] for _ in range(n)]
    for a, b in zip(p.ea.tolist(), p.eb.tolist(), strict=True):
        adj[a].append(b)
        adj[b].append(a)
    eps = 1e-9 * max(abs(lo), abs(hi), 1.0)
    cur = p.current.tolist()
    # each node's own grid first, so that the first plans found move little
    choices = [_own_first(may[i], cur[i]) for i in range(n)]
    lab = [-1] * n
    w = [0.0] * m
    size = [0] * m
    best: list = [None, None]  # plan, key
    count = [0]  # steps
    visits = [0]  # units walked through by the piece checks, not yet a whole step

    # the units a check has walked through carry its stamp: a list is cheaper than a set
    mark = [0] * n
    stamp = [0]

    def can_close(h: int, start: int) -> bool:
        """Grid ``h``'s units, from ``start``, with the free units that may join it.

        All of its units in one piece that can weigh at least ``lo``: the walk
        ends as soon as it has met them all and weight enough.
        """
        stamp[0] += 1
        s = stamp[0]
        mark[start] = s
        stack = [start]
        got, total, need, enough = 1, w[h], size[h], lo - eps
        walked = 1
        while stack:
            if got == need and total >= enough:
                break
            v = stack.pop()
            for y in adj[v]:
                if mark[y] == s:
                    continue
                ly = lab[y]
                if ly == h:
                    got += 1
                elif ly == -1 and h in may[y]:
                    total += weight[y]
                else:
                    continue
                mark[y] = s
                walked += 1
                stack.append(y)
        visits[0] += walked
        return got == need and total >= enough

    def leaf() -> None:
        plan = np.array(lab, dtype=np.int64)
        key = _objective(p, plan)
        if best[1] is None or key < best[1] - 1e-12:
            best[0], best[1] = plan, key

    def go(k: int) -> bool:
        count[0] += 1 + visits[0] // _VISITS_PER_STEP
        visits[0] %= _VISITS_PER_STEP
        if count[0] > steps:
            return False
        if k == n:
            # every grid has a unit, is in one piece (checked on the way) and in the band
            if all(size[h] and w[h] >= lo - eps for h in range(m)):
                leaf()
            return True
        node = order[k]
        for j in choices[node]:
            if w[j] + weight[node] > hi + eps:
                continue
            w[j] += weight[node]
            size[j] += 1
            lab[node] = j
            near = {lab[x]: x for x in adj[node] if lab[x] >= 0 and lab[x] != j}
            ok = can_close(j, node) and all(can_close(h, x) for h, x in near.items())
            if ok and not go(k + 1):
                return False
            lab[node] = -1
            w[j] -= weight[node]
            size[j] -= 1
        return True

    done = go(0)
    return best[0], done, min(count[0], steps)


def _objective(p: _Programme, plan: np.ndarray) -> float:
    """The programme's objective for a plan of its nodes.

    The cut cost (in units of the region's mean edge cost) less a half for every
    node that stays.
    """
    same = plan[p.ea] == plan[p.eb]
    return float(p.cut[~same].sum()) / p.scale - 0.5 * int((plan == p.current).sum())


#: search steps that count as one solver node in the budget of work
_STEPS_PER_NODE = 10_000


def _step_limit(stats: dict | None = None, node_budget: int | None = None) -> int:
    """The steps a search may take: no more than the budget of work has left.

    Nor, given a pass's ``node_budget``, than the nodes it has left in ``stats``
    (:data:`_STEPS_PER_NODE` steps a node).  (At least one; the steps are charged
    at 100 a unit of work.)
    """
    limit = min(_SEARCH_STEPS, max(effort.left() * 100, 1))
    if node_budget is not None and stats is not None:
        nodes_left = node_budget - stats.get("nodes", 0)
        limit = min(limit, max(nodes_left * _STEPS_PER_NODE, 1))
    return int(limit)


def _count(stats: dict | None, steps: int) -> None:
    """Add a search's work to ``stats["nodes"]``.

    One, and one per :data:`_STEPS_PER_NODE` steps.
    """
    if stats is not None:
        stats["nodes"] = stats.get("nodes", 0) + 1 + steps // _STEPS_PER_NODE
    # a unit of work per 100 steps of the search
    effort.charge(steps / 100)


def _solve(p: _Programme, m: int, lo: float, hi: float, *, node_limit: int,
           stats: dict | None, solver: bool = True,
           node_budget: int | None = None) -> np.ndarray | str | None:
    """:func:`recut` on a region's programme.

    The search (within ``node_budget``, :func:`_step_limit`), then HiGHS where the
    search stopped at its step limit (the better of their plans).
    """
    plan, done, steps = _search(p, m, lo, hi, steps=_step_limit(stats, node_budget))
    _count(stats, steps)
    if done:
        return plan[p.node_of] if plan is not None else None if p.free else "reach"
    if not solver:
        return plan[p.node_of] if plan is not None else "limit"
    sol = _highs(p, m, lo, hi, node_limit=node_limit, stats=stats)
    if isinstance(sol, np.ndarray):
        if plan is not None and _objective(p, plan) < _objective(p, sol) - 1e-12:
            sol = plan
        return sol[p.node_of]
    return plan[p.node_of] if plan is not None else sol


def _highs(p: _Programme, m: int, lo: float, hi: float, *, node_limit: int,
           stats: dict | None) -> np.ndarray | str | None:
    """The programme asked of HiGHS; a plan at node level."""
    n, ne = p.n, len(p.ea)
    big = float(n)
    allowed = [np.flatnonzero(row).tolist() for row in p.allowed]
    pairs = [(i, j) for i in range(n) for j in allowed[i]]
    xi = {q: k for k, q in enumerate(pairs)}
    nxv = len(pairs)
    # variables: x (pairs) | r, the root of its grid (pairs) | f (arc, grid) | y (edges)
    arcs = []
    for a, b in zip(p.ea.tolist(), p.eb.tolist(), strict=True):
        for j in sorted(set(allowed[a]) & set(allowed[b])):
            arcs.append((a, b, j))
            arcs.append((b, a, j))
    of = 2 * nxv
    oy = of + len(arcs)
    nv = oy + ne

    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    lb: list[float] = []
    ub: list[float] = []

    def add(cs: list[int], vs: list[float], lo_: float, hi_: float) -> None:
        r = len(lb)
        rows.extend([r] * len(cs))
        cols.extend(cs)
        vals.extend(vs)
        lb.append(lo_)
        ub.append(hi_)

    by_grid: list[list[int]] = [[] for _ in range(m)]
    for (_i, j), k in xi.items():
        by_grid[j].append(k)
    for i in range(n):
        cs = [xi[(i, j)] for j in allowed[i]]
        add(cs, [1.0] * len(cs), 1, 1)
    for j in range(m):
        ks = by_grid[j]
        if not ks:
            return None  # a grid no unit may join: it cannot be balanced
        add(ks, [float(p.weight[pairs[k][0]]) for k in ks], lo, hi)
        add([nxv + k for k in ks], [1.0] * len(ks), 1, 1)
    for k in range(nxv):
        add([nxv + k, k], [1.0, -1.0], -np.inf, 0)
    # flow: inflow - outflow - x + big*r >= 0 at every (node, grid)
    inflow: dict[tuple[int, int], list[int]] = {q: [] for q in pairs}
    outflow: dict[tuple[int, int], list[int]] = {q: [] for q in pairs}
    for q, (a, b, j) in enumerate(arcs):
        outflow[(a, j)].append(of + q)
        inflow[(b, j)].append(of + q)
        add([of + q, xi[(a, j)]], [1.0, -big], -np.inf, 0)
        add([of + q, xi[(b, j)]], [1.0, -big], -np.inf, 0)
    for pair, k in xi.items():
        cs = inflow[pair] + outflow[pair] + [k, nxv + k]
        vs = [1.0] * len(inflow[pair]) + [-1.0] * len(outflow[pair]) + [-1.0, big]
        add(cs, vs, 0, np.inf)
    # y[e] >= |x[a,j] - x[b,j]| for every grid either end may take
    for e, (a, b) in enumerate(zip(p.ea.tolist(), p.eb.tolist(), strict=True)):
        for j in sorted(set(allowed[a]) | set(allowed[b])):
            cs, vs = [oy + e], [1.0]
            if (a, j) in xi:
                cs.append(xi[(a, j)])
                vs.append(-1.0)
            if (b, j) in xi:
                cs.append(xi[(b, j)])
                vs.append(1.0)
            add(cs, vs, 0, np.inf)
            add(cs, [vs[0]] + [-v for v in vs[1:]], 0, np.inf)

    a_mat = coo_matrix((vals, (rows, cols)), shape=(len(lb), nv)).tocsr()
    c = np.zeros(nv)
    c[oy:] = p.cut / p.scale
    # a small price on leaving the current grid keeps the repair local
    for i in range(n):
        c[xi[(i, int(p.current[i]))]] -= 0.5
    integrality = np.zeros(nv)
    integrality[: 2 * nxv] = 1
    upper = np.ones(nv)
    upper[of:oy] = big
    res = milp(
        c,
        constraints=LinearConstraint(a_mat, lb, ub),
        integrality=integrality,
        bounds=Bounds(np.zeros(nv), upper),
        options={"node_limit": node_limit, "disp": False},
    )
    nodes = 1 + int(getattr(res, "mip_node_count", 0) or 0)
    if stats is not None:
        # a programme is work even when presolve or the root node settles it
        stats["nodes"] = stats.get("nodes", 0) + nodes
    # a unit of work per node and 100 variables of the programme
    effort.charge(nodes * nv / 100)
    if res.status == 2:
        return None if p.free else "reach"
    if res.x is None:
        return "limit"
    # at the node limit the best plan found so far is still a balanced one
    sol = np.empty(n, dtype=np.int64)
    best = np.full(n, -1.0)
    for (i, j), k in xi.items():
        if res.x[k] > best[i]:
            best[i], sol[i] = res.x[k], j
    return sol


@dataclass
class RegionCheck:
    """What :func:`check_region` found around one grid.

    ``verdict`` is ``"found"`` (``labels`` is a balanced plan of the region),
    ``"infeasible"`` (the region of ``grids`` and ``units``, the largest
    checked, has no balanced plan: a proof; ``solved`` False when its
    total alone is out of reach; ``reach`` the most units a unit may move
    in the plans ruled out, None when every plan of the region is),
    ``"limit"`` (the solver stopped undecided) or ``"not checked"`` (no
    neighbouring grid fits within the limits).
    """

    verdict: str
    grids: list[int] = field(default_factory=list)
    units: int = 0
    solved: bool = False
    reach: int | None = None
    labels: np.ndarray | None = None


def _grid_rings(g: UnitGraph, labels: np.ndarray, active: set[int]) -> dict[int, set[int]]:
    """The grids of ``active`` next to each grid of ``active`` (one pass over the edges)."""
    li, lj = labels[g.i], labels[g.j]
    act = np.zeros(int(max(labels.max(initial=0), max(active, default=0))) + 1, dtype=bool)
    act[list(active)] = True
    e = (li != lj) & (li >= 0) & (lj >= 0)
    e[e] = act[li[e]] & act[lj[e]]
    rings: dict[int, set[int]] = {h: set() for h in active}
    for x, y in set(zip(li[e].tolist(), lj[e].tolist(), strict=True)):
        rings[x].add(y)
        rings[y].add(x)
    return rings


def _next_grid(rings: dict[int, set[int]], region: list[int], weight: dict[int, float],
               mean: float) -> int | None:
    """The grid next to ``region`` that brings the region's average weight nearest ``mean``.

    The lowest id on a tie; None if no grid is next to it.
    """
    ring: set[int] = set().union(*(rings[h] for h in region)) - set(region)
    if not ring:
        return None
    m = len(region) + 1
    total = sum(weight[h] for h in region)
    return min(ring, key=lambda x: (abs((total + weight[x]) / (m * mean) - 1), x))


def check_region(
    g: UnitGraph,
    labels: np.ndarray,
    grid: int,
    *,
    active: set[int],
    weight: dict[int, float],
    mean: float,
    tolerance: float,
    limits: RegionLimits = RegionLimits(),
    node_budget: int | None = None,
    stats: dict | None = None,
) -> RegionCheck:
    """Whether there is a balanced plan of ``grid`` and the grids around it.

    The region grows one neighbouring grid of ``active`` at a time, the one
    that brings the region's average ``weight`` nearest ``mean``, within
    ``limits``; each region whose total fits the band is asked of
    :func:`recut`, until one has a plan.  ``stats["nodes"]`` counts the
    solver's nodes; no new programme starts once it reaches ``node_budget``.

    Examples
    --------
    >>> import numpy as np
    >>> g = UnitGraph.from_edges(3, np.array([5.0, 1, 5]), np.zeros((3, 2)),
    ...                          np.array([0, 1]), np.array([1, 2]), np.ones(2))
    >>> r = check_region(g, np.array([0, 0, 1]), 1, active={0, 1},
    ...                  weight={0: 6.0, 1: 5.0}, mean=5.5, tolerance=0.05)
    >>> r.verdict, r.grids, r.units, r.solved
    ('infeasible', [1, 0], 3, True)
    """
    stats = {"nodes": 0} if stats is None else stats
    lo, hi = mean * (1 - tolerance), mean * (1 + tolerance)
    eps = 1e-9 * max(abs(mean), 1.0)
    region, total = [grid], weight[grid]
    rings = _grid_rings(g, labels, active)
    out = RegionCheck("not checked")

    def found(order: list[int] | np.ndarray, nodes: np.ndarray, sol: np.ndarray,
              grids: list[int]) -> RegionCheck:
        new = np.array(labels, copy=True)
        new[nodes] = np.asarray(order)[sol]
        return RegionCheck("found", grids, len(nodes), solved=True, labels=new)

    while len(region) < limits.max_grids and (node_budget is None
                                               or stats["nodes"] < node_budget):
        h = _next_grid(rings, region, weight, mean)
        if h is None:
            break
        nodes = np.flatnonzero(np.isin(labels, [*region, h]))
        if len(nodes) > limits.max_units:
            break
        order = np.array(sorted([*region, h]))
        current = np.searchsorted(order, labels[nodes])
        prog = _programme(g, nodes, current, len(order), limits.reach)
        if prog.n > limits.max_nodes:
            break
        region.append(h)
        total += weight[h]
        m = len(region)
        if not m * lo - eps <= total <= m * hi + eps:
            out = RegionCheck("infeasible", list(region), len(nodes))
            continue
        sol = _solve(prog, m, lo, hi, node_limit=limits.node_limit, stats=stats,
                     solver=limits.solver, node_budget=node_budget)
        if isinstance(sol, str) and sol == "limit":
            return RegionCheck("limit", list(region), len(nodes), solved=True)
        if sol is None or isinstance(sol, str):
            out = RegionCheck("infeasible", list(region), len(nodes), solved=True,
                              reach=None if sol is None else limits.reach)
            continue
        return found(order, nodes, sol, list(region))
    # the region grew towards the average; a set of grids around the grid that
    # it passed over (a neighbour with weight to spare, and one of its own) may
    # have a plan: the connected sets of up to max_set_grids grids, the smallest
    # programmes first
    tried = {frozenset(region[:k]) for k in range(1, len(region) + 1)}
    sets = []
    frontier = [frozenset([grid])]
    for _ in range(limits.max_set_grids - 1):
        grown = {s | {x} for s in frontier for y in s for x in rings[y] - s}
        frontier = sorted(grown, key=sorted)
        for s in frontier:
            m = len(s)
            if s in tried or not m * lo - eps <= sum(weight[y] for y in s) <= m * hi + eps:
                continue
            order = np.array(sorted(s))
            nodes = np.flatnonzero(np.isin(labels, order))
            if len(nodes) <= limits.max_units:
                sets.append((m, len(nodes), order.tolist(), nodes))
    # the smallest sets first; the search alone (these are tries, and HiGHS at its
    # limit costs seconds each), within the plan's budget of work
    n_tried = 0
    for m, _, order, nodes in sorted(sets, key=lambda t: t[:3]):
        if n_tried >= limits.max_sets or (node_budget is not None
                                          and stats["nodes"] >= node_budget):
            break
        prog = _programme(g, nodes, np.searchsorted(order, labels[nodes]), m, limits.reach)
        if prog.n > limits.max_set_nodes:
            continue
        n_tried += 1
        plan, _, steps = _search(prog, m, lo, hi, steps=_step_limit(stats, node_budget))
        _count(stats, steps)
        if plan is not None:
            return found(order, nodes, plan[prog.node_of],
                         [grid] + [x for x in order if x != grid])
    return out


def exact_repair(
    g: UnitGraph,
    labels: np.ndarray,
    *,
    grids: np.ndarray,
    mean: float,
    tolerance: float,
    limits: RegionLimits = RegionLimits(),
    node_budget: int = 100,
    stats: dict | None = None,
) -> tuple[np.ndarray, list[dict]]:
    """Re-cut the regions around the grids out of the band where a balanced plan exists.

    For every grid of ``grids`` outside ``mean·(1 ± tolerance)``, worst first,
    :func:`check_region` looks for a balanced plan of it and the grids around
    it; the first found is taken.  Every grid of such a region ends within the
    band, so no grid gets worse.  A proof that a region has no plan is dropped,
    and its grid checked again, when a later re-cut changes one of the
    region's grids.  Returns the new labels and, per grid out of the band,
    ``{"grid", "weight", "verdict", "units", "grids", "region", "reach"}``
    (``region``: the grids the verdict is about, ``grids`` of them; ``reach``
    as in :class:`RegionCheck`), the verdict
    ``"recut"`` (its region of ``grids`` grids and ``units`` units was re-cut),
    ``"infeasible"``, ``"limit"`` or ``"not checked"`` as in
    :class:`RegionCheck` (also when the work budget is spent).  ``limits``
    bound each region and programme (:class:`RegionLimits`), ``node_budget``
    the work of all programmes counted in ``stats["nodes"]`` (HiGHS's nodes, and
    one per search and per 10,000 of its steps; shared between calls if given):
    a bound on the time that gives the same plan on any machine.

    Examples
    --------
    >>> import numpy as np
    >>> g = UnitGraph.from_edges(4, np.array([1.0, 2, 2, 1]), np.zeros((4, 2)),
    ...                          np.array([0, 1, 2]), np.array([1, 2, 3]), np.ones(3))
    >>> lab, report = exact_repair(g, np.array([0, 1, 1, 1]), grids=np.array([0, 1]),
    ...                            mean=3.0, tolerance=0.1)
    >>> lab.tolist(), report[0]["verdict"]
    ([0, 0, 1, 1], 'recut')
    """
    labels = np.asarray(labels, dtype=np.int64).copy()
    active = {int(x) for x in np.asarray(grids).tolist()}
    lo, hi = mean * (1 - tolerance), mean * (1 + tolerance)
    eps = 1e-9 * max(abs(mean), 1.0)
    stats = {"nodes": 0} if stats is None else stats
    # grid -> (its entry in the report, the grids its verdict is about)
    found: dict[int, tuple[dict, set[int]]] = {}
    while True:
        sums = np.bincount(labels, weights=g.weight, minlength=max(active) + 1)
        w = {h: float(sums[h]) for h in active}
        todo = sorted((h for h in active if h not in found
                       and not lo - eps <= w[h] <= hi + eps),
                      key=lambda h: (-abs(w[h] / mean - 1), h))
        if not todo:
            break
        gid = todo[0]
        r = check_region(g, labels, gid, active=active, weight=w, mean=mean,
                         tolerance=tolerance, limits=limits, node_budget=node_budget,
                         stats=stats)
        verdict = "recut" if r.verdict == "found" else r.verdict
        entry = {"grid": gid, "weight": w[gid], "verdict": verdict, "units": r.units,
                 "grids": len(r.grids), "region": r.grids, "reach": r.reach}
        found[gid] = (entry, set(r.grids) or {gid})
        if r.labels is not None:
            labels = r.labels
            # what was said of a region this re-cut changed is no longer true
            for h, (_, about) in list(found.items()):
                if h != gid and about & set(r.grids):
                    del found[h]
    return labels, [entry for entry, _ in found.values()]
