"""Recursive spanning-tree bisection: contiguous, balanced, compact parts.

A region that must hold ``k`` grids is cut in two parts holding ``k // 2`` and
``k - k // 2`` grids.  The cut is an edge of a spanning tree of the region's
units: removing a tree edge leaves two subtrees, each connected, so every part
is contiguous by construction.  The trees are minimum spanning trees whose edge
weights grow with the distance along a chosen axis, so the trees run across that
axis and their cuts are short, nearly straight lines; edges along main roads
weigh more, so trees cross main roads seldom and cuts fall on them.  Among the
cuts of several trees (different axes, seeded jitter) the one with balanced
parts and the lowest cut cost wins.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import depth_first_order, minimum_spanning_tree

from .. import effort
from ._graph import UnitGraph

__all__ = ["recursive_bisection"]


#: below this many units, spanning trees are built in plain Python: scipy's sparse
#: machinery costs more than the work on a region this small
_SMALL = 300


def _small_tree(
    n: int, ei: np.ndarray, ej: np.ndarray, w: np.ndarray, root: int
) -> tuple[np.ndarray, np.ndarray]:
    """Minimum spanning tree (Kruskal) and its depth-first order from ``root``.

    Returns ``(order, pred)`` as scipy's ``depth_first_order`` does.
    """
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    adj: list[list[int]] = [[] for _ in range(n)]
    a_l, b_l = ei.tolist(), ej.tolist()
    for e in np.argsort(w, kind="stable").tolist():
        a, b = a_l[e], b_l[e]
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[ra] = rb
            adj[a].append(b)
            adj[b].append(a)
    pred = [-9999] * n
    pred[root] = -9999
    seen = [False] * n
    order = []
    stack = [root]
    seen[root] = True
    while stack:
        v = stack.pop()
        order.append(v)
        for x in adj[v]:
            if not seen[x]:
                seen[x] = True
                pred[x] = v
                stack.append(x)
    return np.asarray(order, dtype=np.int64), np.asarray(pred, dtype=np.int64)


def _subtree_sums(order: np.ndarray, pred: np.ndarray,
                  w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The weight and the number of units of every node's subtree."""
    pl = pred.tolist()
    sl = w.tolist()
    zl = [1] * len(sl)
    for v in order[::-1].tolist():
        p = pl[v]
        if p >= 0:
            sl[p] += sl[v]
            zl[p] += zl[v]
    return np.asarray(sl), np.asarray(zl, dtype=np.int64)


def _principal_angle(xy: np.ndarray, w: np.ndarray) -> float:
    c = xy - np.average(xy, axis=0, weights=w)
    cov = (c * w[:, None]).T @ c
    vals, vecs = np.linalg.eigh(cov + np.eye(2) * 1e-9)
    v = vecs[:, int(np.argmax(vals))]
    return float(np.arctan2(v[1], v[0]))


def _best_cut(
    g: UnitGraph,
    nodes: np.ndarray,
    k: int,
    mean: float,
    tol: float,
    rng: np.random.Generator,
    n_trees: int,
    leaf_slack: float = 0.9,
) -> tuple[np.ndarray, int, np.ndarray, int]:
    k1 = k // 2
    k2 = k - k1
    nloc = len(nodes)
    em = g.inner_edges(nodes)
    loc = np.full(g.n, -1, dtype=np.int64)
    loc[nodes] = np.arange(nloc)
    ei, ej = loc[g.i[em]], loc[g.j[em]]
    ecut = g.cut[em]
    ebar = g.barrier[em]
    xy = g.xy[nodes]
    w = g.weight[nodes]
    total = float(w.sum())
    span = float(np.ptp(xy, axis=0).max()) or 1.0
    dist = np.hypot(*(xy[ei] - xy[ej]).T)
    # streets that make good boundaries (low cut cost) are expensive to cross
    cross = 1.0 + 2.0 / (1.0 + 4.0 * np.minimum(ecut / np.maximum(dist, 1e-9), 4.0))
    base_angle = _principal_angle(xy, np.maximum(w, 1e-9) + total * 1e-6 / nloc)

    best = None
    for t in range(n_trees):
        if t == 0:
            angle = base_angle
        elif t == 1:
            angle = base_angle + np.pi / 2
        else:
            angle = base_angle + rng.uniform(-np.pi / 4, np.pi / 4) + (np.pi / 2) * (t % 2)
        d = np.array([np.cos(angle), np.sin(angle)])
        proj = xy @ d
        tw = (np.abs(proj[ei] - proj[ej]) + 0.05 * dist + 1e-3 * span) * cross
        tw = tw * rng.uniform(0.7, 1.3, size=len(tw)) + np.where(ebar, 1e3 * span, 0.0)
        root = int(np.argmin(proj))
        if nloc <= _SMALL:
            order, pred = _small_tree(nloc, ei, ej, tw, root)
        else:
            a = sp.coo_matrix((tw, (ei, ej)), shape=(nloc, nloc)).tocsr()
            tree = minimum_spanning_tree(a)
            tree = tree + tree.T
            order, pred = depth_first_order(
                tree, root, directed=False, return_predecessors=True
            )
        if len(order) < nloc:  # not connected: the caller must pass a connected region
            raise RuntimeError("region is not connected")
        sub, size = _subtree_sums(order, pred, w)
        tin = np.empty(nloc, dtype=np.int64)
        tin[order] = np.arange(nloc)
        cand = order[1:]
        s = sub[cand]
        # the subtree takes k1 grids (a) or k2 grids (b)
        dev = []
        for ka, kb in ((k1, k2), (k2, k1)):
            da = np.abs(s / ka - mean) / mean
            db = np.abs((total - s) / kb - mean) / mean
            lim_a = tol * (leaf_slack if ka == 1 else 0.5)
            lim_b = tol * (leaf_slack if kb == 1 else 0.5)
            over = np.maximum(da - lim_a, 0) + np.maximum(db - lim_b, 0)
            dev.append((over, np.maximum(da, db), ka))
        use_b = dev[1][0] < dev[0][0]
        over = np.where(use_b, dev[1][0], dev[0][0])
        worst = np.where(use_b, dev[1][1], dev[0][1])
        ksub = np.where(use_b, dev[1][2], dev[0][2])
        feasible = over <= 0
        if feasible.any():
            pool = np.flatnonzero(feasible)
            pool = pool[np.argsort(worst[pool], kind="stable")[:16]]
        else:
            pool = np.argsort(over, kind="stable")[:4]
        # the cut cost of every candidate subtree at once: the edges with one end
        # inside its stretch of the depth-first order
        v = cand[pool]
        lo, hi = tin[v][:, None], (tin[v] + size[v])[:, None]
        pos_i, pos_j = tin[ei][None, :], tin[ej][None, :]
        crossing = ((pos_i >= lo) & (pos_i < hi)) != ((pos_j >= lo) & (pos_j < hi))
        costs = np.where(crossing, ecut[None, :], 0.0).sum(axis=1)
        for c, cost, vv in zip(pool.tolist(), costs.tolist(), v.tolist(), strict=True):
            key = (float(over[c]) > 0, float(over[c]), cost * (1.0 + worst[c] / max(tol, 1e-9)))
            if best is None or key < best[0]:
                best = (key, (tin[vv], tin[vv] + size[vv], tin), int(ksub[c]))
    assert best is not None
    _, (lo_, hi_, tin_), ks = best
    mask = (tin_ >= lo_) & (tin_ < hi_)
    return nodes[mask], ks, nodes[~mask], k - ks


def recursive_bisection(
    g: UnitGraph,
    nodes: np.ndarray,
    k: int,
    *,
    tolerance: float,
    rng: np.random.Generator,
    mean: float | None = None,
    n_trees: int = 6,
) -> list[np.ndarray]:
    """Split a connected set of units into ``k`` contiguous parts of similar weight.

    Returns ``k`` arrays of node ids.  ``mean`` is the weight each part aims at
    (default: the total over ``k``).
    """
    nodes = np.asarray(nodes, dtype=np.int64)
    if mean is None:
        mean = float(g.weight[nodes].sum()) / k
    mean = max(mean, 1e-9)
    out: list[np.ndarray] = []
    stack = [(nodes, k)]
    while stack:
        part, kk = stack.pop()
        if kk <= 1 or len(part) <= 1:
            out.append(part)
            continue
        if len(part) < kk:  # fewer units than grids: every unit its own grid
            out.extend(part[i : i + 1] for i in range(len(part)))
            continue
        # the work of the spanning trees of a region (about a millisecond a unit)
        effort.charge(n_trees * (0.1 + 0.004 * len(part)))
        a, ka, b, kb = _best_cut(g, part, kk, mean, tolerance, rng, n_trees)
        stack.append((b, kb))
        stack.append((a, ka))
    return out
