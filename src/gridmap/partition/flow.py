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

__all__ = ["flow_rebalance"]


def _grid_links(g: UnitGraph, labels: np.ndarray, active: set[int]) -> set[tuple[int, int]]:
    """Pairs of active grids that share a unit edge which is not a barrier."""
    li, lj = labels[g.i], labels[g.j]
    ok = (li != lj) & ~g.barrier
    ok &= np.isin(li, list(active)) & np.isin(lj, list(active))
    pairs = set(zip(li[ok].tolist(), lj[ok].tolist(), strict=True))
    return pairs | {(b, a) for a, b in pairs}


def _plan_flows(w: dict[int, float], links: set[tuple[int, int]], mean: float, lo: float,
                hi: float, remove: set[int]) -> dict[tuple[int, int], float] | None:
    """Weight to carry across each grid boundary; None if no flow can balance."""
    scale = 1000.0 / mean if mean > 0 else 1.0  # integral amounts for the solver
    net = nx.DiGraph()
    total = 0
    for k, wk in w.items():
        if k in remove:
            need, give, take = -round(wk * scale), 0, 0
        elif wk > hi:
            need, give, take = -round((wk - hi) * scale), round((hi - lo) * scale), 0
        elif wk < lo:
            need, give, take = round((lo - wk) * scale), 0, round((hi - lo) * scale)
        else:
            need, give, take = 0, round((wk - lo) * scale), round((hi - wk) * scale)
        net.add_node(k, demand=need)
        total += need
        if give > 0:
            net.add_edge("z", k, weight=0, capacity=give)
        if take > 0:
            net.add_edge(k, "z", weight=0, capacity=take)
    net.add_node("z", demand=-total)
    for a, b in links:
        net.add_edge(a, b, weight=1)
    try:
        flows = nx.min_cost_flow(net)
    except (nx.NetworkXUnfeasible, nx.NetworkXUnbounded):
        return None
    return {(a, b): f / scale for a, out in flows.items() if a != "z"
            for b, f in out.items() if b != "z" and f > 0}


def _carry(g: UnitGraph, labels: np.ndarray, members: dict[int, set[int]], w: dict[int, float],
           a: int, b: int, amount: float, removing: bool) -> None:
    """Move boundary units from grid ``a`` to ``b`` adding up to about ``amount``."""
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
            if not removing and not connected_without(g, labels, u):
                continue
            best = (key, u, wu)
        if best is None:
            return
        _, u, wu = best
        labels[u] = b
        members[a].discard(u)
        members[b].add(u)
        w[a] -= wu
        w[b] += wu
        left -= wu


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
    flows = _plan_flows(w, _grid_links(g, labels, active), mean, lo, hi, remove)
    if flows is None:
        return labels
    # carry weight downstream: a grid passes on after it has received
    dag = nx.DiGraph(list(flows))
    order = list(nx.topological_sort(dag)) if nx.is_directed_acyclic_graph(dag) else \
        sorted(dag.nodes)
    for a in order:
        for b in sorted(dag.successors(a), key=lambda x: (-flows[(a, x)], x)):
            _carry(g, labels, members, w, a, b, flows[(a, b)], a in remove)
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
