"""Rebalance grids by a minimum-cost flow of weight between neighbouring grids.

Used by the re-partition, where every household that changes grid costs a
visit, a new face and a broken tie.  The grids of a community are the nodes of
a flow network and grids that share a (non-barrier) edge are linked; a grid
above the band must send what it has too much, a grid below must receive what
it lacks, and a grid inside may pass weight on, give or take within the band.
Each unit of weight carried across one grid boundary costs one, so the flow
moves as little as possible and no further than it must.  The flow is then
realised by moving boundary units, nearest to the receiving grid first,
keeping every grid in one piece.  A grid to be removed (a merge) sends all it
has to its neighbours, so its households are shared out instead of all going to
one neighbour that would then be too big.
"""

from __future__ import annotations

from collections.abc import Iterable

import networkx as nx
import numpy as np

from ._graph import UnitGraph
from .refine import connected_without

__all__ = ["flow_rebalance", "grow_grid"]


def _grid_links(g: UnitGraph, labels: np.ndarray, active: set[int]) -> set[tuple[int, int]]:
    """Pairs of active grids that share a unit edge which is not a barrier."""
    li, lj = labels[g.i], labels[g.j]
    ok = (li != lj) & ~g.barrier
    ok &= np.isin(li, list(active)) & np.isin(lj, list(active))
    pairs = set(zip(li[ok].tolist(), lj[ok].tolist(), strict=True))
    return pairs | {(b, a) for a, b in pairs}


def _plan_flows(w: dict[int, float], links: set[tuple[int, int]], mean: float, lo: float,
                hi: float, remove: set[int]) -> dict[tuple[int, int], float]:
    """Weight to carry across each grid boundary.

    All the weight of every grid flows to a sink, either through the grid's own
    edge (it stays) or first across grid boundaries, at a cost of one per
    boundary.  A grid's own edge pays a reward of ``big`` per unit up to the
    band's bottom and a penalty of ``big`` per unit above its top (a removed
    grid keeps nothing without a double penalty), and ``big`` is more than any
    path costs: the flow brings as much weight as it can into the band and,
    for that, moves as little as it can.  Grids that no flow connects stay as
    they are, so the problem always has a solution.
    """
    scale = 1000.0 / mean if mean > 0 else 1.0  # integral amounts for the solver
    big = len(w) + 2
    net: nx.MultiDiGraph[int | str] = nx.MultiDiGraph()  # the grids, and "sink"
    total = 0
    bottom, top = round(lo * scale), round(hi * scale)
    for k, wk in w.items():
        supply = round(wk * scale)
        total += supply
        net.add_node(k, demand=-supply)
        if k in remove:
            net.add_edge(k, "sink", weight=2 * big)
            continue
        net.add_edge(k, "sink", weight=-big, capacity=bottom)
        net.add_edge(k, "sink", weight=0, capacity=top - bottom)
        net.add_edge(k, "sink", weight=big)
    net.add_node("sink", demand=total)
    for a, b in links:
        net.add_edge(a, b, weight=1)
    flows = nx.min_cost_flow(net)
    return {(a, b): sum(f.values()) / scale for a, out in flows.items() if a != "sink"
            for b, f in out.items() if b != "sink" and sum(f.values()) > 0}


def _with_cut_off(g: UnitGraph, labels: np.ndarray, members: set[int], u: int) -> list[int]:
    """``u`` and what of its grid would hang on ``u`` alone.

    All but the heaviest piece the grid falls into without ``u`` (units only ``u``
    joins to the rest).
    """
    rest = members - {u}
    pieces: list[list[int]] = []
    seen: set[int] = set()
    for s in sorted(rest):
        if s in seen:
            continue
        piece, queue = [], [s]
        seen.add(s)
        while queue:
            v = queue.pop()
            piece.append(v)
            for x in g.neighbours(v).tolist():
                if x in rest and x not in seen:
                    seen.add(x)
                    queue.append(x)
        pieces.append(piece)
    if len(pieces) <= 1:
        return [u]
    main = max(pieces, key=lambda p: (float(g.weight[p].sum()), len(p)))
    return [u] + [v for p in pieces if p is not main for v in p]


def _pins(g: UnitGraph, chunk: list[int]) -> bool:
    """Whether ``chunk`` holds a unit pinned to its grid."""
    return g.pinned is not None and bool(g.pinned[chunk].any())


def _carry(g: UnitGraph, labels: np.ndarray, members: dict[int, set[int]], w: dict[int, float],
           a: int, b: int, amount: float, removing: bool) -> None:
    """Move boundary units from grid ``a`` to ``b`` adding up to about ``amount``.

    A unit whose leaving would cut its grid in two takes along the piece that
    hangs on it (often a unit without households that joins the rest).
    """
    left = amount
    while left > 0 and members[a]:
        best = None
        for u in members[a]:
            wu = float(g.weight[u])
            if wu > 2 * left + 1e-9:
                continue  # it would overshoot by more than it brings
            nb = g.neighbours(u)
            edges = g.eid[g.indptr[u]: g.indptr[u + 1]]
            touch = (labels[nb] == b) & ~g.barrier[edges]
            if not touch.any():
                continue
            # the closest fit first, then the unit most bound to the receiving grid
            key = (abs(left - wu), -float(g.cut[edges[touch]].sum()), u)
            if best is not None and key >= best[0]:
                continue
            # a grid being removed may fall apart: it is emptied anyway
            chunk = [u] if removing or connected_without(g, labels, u) else \
                _with_cut_off(g, labels, members[a], u)
            wc = float(g.weight[chunk].sum())
            if (len(chunk) == len(members[a]) and not removing) or _pins(g, chunk):
                continue
            if wc > 2 * left + 1e-9:
                continue
            best = ((abs(left - wc), *key[1:]), chunk, wc)
        if best is None:
            return
        _, chunk, wc = best
        for u in chunk:
            labels[u] = b
            members[a].discard(u)
            members[b].add(u)
        w[a] -= wc
        w[b] += wc
        left -= wc


def grow_grid(g: UnitGraph, labels: np.ndarray, k: int, *, donors: Iterable[int],
              mean: float, tolerance: float) -> np.ndarray:
    """Grow the new grid ``k`` by taking boundary units from its heaviest neighbours.

    Each step takes, from the neighbouring donor grid furthest above
    ``mean``, the unit on the edge of ``k`` that keeps the donor in one piece
    (with what hangs on it) and in the band, closest to what ``k`` still
    needs; ``k`` grows until it reaches the band.  A new grid so made of a
    little of each heavy neighbour moves fewer households than splitting one
    of them in two.

    Examples
    --------
    >>> import numpy as np
    >>> from gridmap.partition import UnitGraph
    >>> # a row of seven units: grids 0 and 1 of three units each, a new grid 2
    >>> # of the middle unit between them
    >>> g = UnitGraph.from_edges(7, np.ones(7), np.c_[np.arange(7), np.zeros(7)],
    ...                          np.arange(6), np.arange(1, 7), np.ones(6))
    >>> labels = np.array([0, 0, 0, 2, 1, 1, 1])
    >>> grow_grid(g, labels, 2, donors=[0, 1], mean=7 / 3, tolerance=0.2).tolist()
    [0, 0, 2, 2, 1, 1, 1]
    """
    labels = labels.copy()
    donors = {int(x) for x in donors} - {k}
    members = {d: set(np.flatnonzero(labels == d).tolist()) for d in donors}
    w = {d: float(g.weight[list(m)].sum()) for d, m in members.items()}
    wk = float(g.weight[labels == k].sum())
    lo, hi = mean * (1 - tolerance), mean * (1 + tolerance)
    while wk < mean * (1 - 0.5 * tolerance):
        inside = np.flatnonzero(labels == k)
        edge: set[int] = set()
        for u in inside.tolist():
            nb = g.neighbours(u)
            eids = g.eid[g.indptr[u]: g.indptr[u + 1]]
            edge.update(int(x) for x in nb[~g.barrier[eids]] if int(labels[x]) in donors)
        best = None
        for u in sorted(edge):
            d = int(labels[u])
            chunk = [u] if connected_without(g, labels, u) else \
                _with_cut_off(g, labels, members[d], u)
            if len(chunk) == len(members[d]) or _pins(g, chunk):
                continue
            wc = float(g.weight[chunk].sum())
            if wk + wc > hi or w[d] - wc < lo:
                continue
            key = (-(w[d] - mean), abs(mean - wk - wc), u)
            if best is None or key < best[0]:
                best = (key, chunk, d, wc)
        if best is None:
            break
        _, chunk, d, wc = best
        for u in chunk:
            labels[u] = k
            members[d].discard(u)
        w[d] -= wc
        wk += wc
    return labels


def flow_rebalance(
    g: UnitGraph,
    labels: np.ndarray,
    *,
    grids: Iterable[int],
    mean: float,
    tolerance: float,
    locked: Iterable[int] = (),
    remove: Iterable[int] = (),
    aim: float = 0.9,
    rounds: int = 6,
) -> np.ndarray:
    """Bring ``grids`` into ``mean`` ± ``tolerance`` moving as little weight as possible.

    Parameters
    ----------
    g
        The unit graph.
    labels
        The grid of every unit; units of other grids are left alone.
    grids
        The grids to balance (one community's ordinary grids).
    mean, tolerance
        The band: ``mean × (1 ± tolerance)``.
    locked
        Grids that neither give nor take.
    remove
        Grids to empty into their neighbours (a merge).
    aim
        The flow aims at ``aim × tolerance`` so that whole units, which rarely
        add up to the exact amount, still land inside the band.
    rounds
        How many times the flow is planned again from where the grids stand
        after the units that fit were moved.

    Returns
    -------
    numpy.ndarray
        New labels; unchanged when no flow can balance the grids.

    Examples
    --------
    >>> import numpy as np
    >>> from gridmap.partition import UnitGraph
    >>> # a row of six units; grid 0 has four of them, grid 1 two
    >>> g = UnitGraph.from_edges(6, np.ones(6), np.c_[np.arange(6), np.zeros(6)],
    ...                          np.arange(5), np.arange(1, 6), np.ones(5))
    >>> flow_rebalance(g, np.array([0, 0, 0, 0, 1, 1]), grids=[0, 1], mean=3,
    ...                tolerance=0.1).tolist()
    [0, 0, 0, 1, 1, 1]
    """
    labels = labels.copy()
    grids = [int(x) for x in grids]
    remove = {int(x) for x in remove} & set(grids)
    active = set(grids) - {int(x) for x in locked}
    members: dict[int, set[int]] = {k: set() for k in active}
    for u in np.flatnonzero(np.isin(labels, list(active))).tolist():
        members[int(labels[u])].add(u)
    w = {k: float(g.weight[list(m)].sum()) for k, m in members.items()}
    lo, hi = mean * (1 - aim * tolerance), mean * (1 + aim * tolerance)
    # whole units rarely add up to a flow: carry what fits, then plan the flow
    # again from where the grids now stand, until nothing more moves
    for _round in range(rounds):
        before = labels.copy()
        flows = _plan_flows(w, _grid_links(g, labels, active), mean, lo, hi, remove)
        if not flows:
            break
        # carry weight downstream: a grid passes on after it has received
        dag = nx.DiGraph(list(flows))
        order = list(nx.topological_sort(dag)) if nx.is_directed_acyclic_graph(dag) \
            else sorted(dag.nodes)
        for a in order:
            for b in sorted(dag.successors(a), key=lambda x: (-flows[(a, x)], x)):
                _carry(g, labels, members, w, a, b, flows[(a, b)], a in remove)
        if (labels == before).all():
            break
    # what a removed grid could not send along the flow goes to the lightest
    # neighbour it touches, unit by unit from its edge inwards
    for k in sorted(remove):
        for _ in range(len(members[k]) + 1):
            if not members[k]:
                break
            for u in sorted(members[k]):
                nb = g.neighbours(u)
                near = {int(x) for x in labels[nb]} & (active - remove)
                if not near:
                    continue
                to = min(near, key=lambda x: (w[x], x))
                labels[u] = to
                members[k].discard(u)
                members[to].add(u)
                w[k] -= float(g.weight[u])
                w[to] += float(g.weight[u])
    return labels
