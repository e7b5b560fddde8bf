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
    adj: list[list[int]] = [[] for _ in range(n)]
    a_l, b_l = ei.tolist(), ej.tolist()
    left = n - 1  # a tree has n - 1 edges: the heavier edges left need no look
    for e in np.argsort(w, kind="stable").tolist():
        a, b = a_l[e], b_l[e]
        # the roots of both ends, halving the paths (inline: a call costs more)
        ra = a
        while parent[ra] != ra:
            parent[ra] = parent[parent[ra]]
            ra = parent[ra]
        rb = b
        while parent[rb] != rb:
            parent[rb] = parent[parent[rb]]
            rb = parent[rb]
        if ra != rb:
            parent[ra] = rb
            adj[a].append(b)
            adj[b].append(a)
            left -= 1
            if not left:
                break
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


def _tree(nloc: int, ei: np.ndarray, ej: np.ndarray, tw: np.ndarray,
          root: int) -> tuple[np.ndarray, np.ndarray]:
    """The minimum spanning tree of weights ``tw``: its depth-first order and predecessors."""
    if nloc <= _SMALL:
        return _small_tree(nloc, ei, ej, tw, root)
    a = sp.coo_matrix((tw, (ei, ej)), shape=(nloc, nloc)).tocsr()
    tree = minimum_spanning_tree(a)
    tree = tree + tree.T
    return depth_first_order(tree, root, directed=False, return_predecessors=True)


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

    # the trees' weights all at once, then the trees one by one, then their cuts
    # weighed all at once: on the small regions of a recombination, numpy's cost
    # per call, not the arithmetic, is what a tree at a time spends. The draws are
    # those a tree at a time made, in the same stream order (per tree after the
    # second a turn of the axis, then a jitter per edge), and ``uniform(lo, hi)``
    # is ``lo + (hi - lo) * u`` written out, so the plans are the same to the bit
    m = len(ei)
    u = rng.random(n_trees * m + max(n_trees - 2, 0))
    first = np.arange(n_trees) * m + np.maximum(np.arange(n_trees) - 1, 0)  # a tree's jitters
    turn = np.zeros(n_trees)
    turn[2:] = -np.pi / 4 + (np.pi / 4 - -np.pi / 4) * u[first[2:] - 1]
    angle = base_angle + turn + (np.pi / 2) * (np.arange(n_trees) % 2)
    jitter = 0.7 + (1.3 - 0.7) * u[first[:, None] + np.arange(m)[None, :]]
    proj = np.cos(angle)[:, None] * xy[:, 0] + np.sin(angle)[:, None] * xy[:, 1]
    near, lift = 0.05 * dist, 1e-3 * span
    barrier = np.where(ebar, 1e3 * span, 0.0)
    tws = (np.abs(proj[:, ei] - proj[:, ej]) + near + lift) * cross * jitter + barrier
    roots = np.argmin(proj, axis=1).tolist()
    tin = np.empty((n_trees, nloc), dtype=np.int64)
    orders = np.empty((n_trees, nloc), dtype=np.int64)
    sub = np.empty((n_trees, nloc))
    size = np.empty((n_trees, nloc), dtype=np.int64)
    for t in range(n_trees):
        order, pred = _tree(nloc, ei, ej, tws[t], roots[t])
        if len(order) < nloc:  # not connected: the caller must pass a connected region
            raise RuntimeError("region is not connected")
        sub[t], size[t] = _subtree_sums(order, pred, w)
        orders[t] = order
    tin[np.arange(n_trees)[:, None], orders] = np.arange(nloc)
    cand = orders[:, 1:]
    s = np.take_along_axis(sub, cand, axis=1)
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
    # each tree's pool: its 16 balanced cuts closest to the mean, or (none
    # balanced) its 4 least out of the band
    feasible = over <= 0
    by_worst = np.argsort(np.where(feasible, worst, np.inf), axis=1, kind="stable")[:, :16]
    by_over = np.argsort(over, axis=1, kind="stable")[:, :4]
    some: np.ndarray = np.asarray(feasible.any(axis=1))
    pool = np.where(some[:, None], by_worst, 0)
    pool[~some, : by_over.shape[1]] = by_over[~some]
    in_pool = np.where(some[:, None], np.take_along_axis(feasible, by_worst, axis=1),
                       np.arange(pool.shape[1])[None, :] < by_over.shape[1])
    # the cut cost of every candidate subtree at once: the edges with one end
    # inside its stretch of the depth-first order
    rows = np.arange(n_trees)[:, None]
    v = cand[rows, pool]
    lo = tin[rows, v][:, :, None]
    hi = lo + size[rows, v][:, :, None]
    pos_i, pos_j = tin[:, ei][:, None, :], tin[:, ej][:, None, :]
    crossing = ((pos_i >= lo) & (pos_i < hi)) != ((pos_j >= lo) & (pos_j < hi))
    costs = np.where(crossing, ecut[None, None, :], 0.0).sum(axis=2)
    # the first by (out of the band, how far, weighted cut cost), then tree, then
    # place in the pool: the order of the flat index
    o = over[rows, pool].ravel()
    weighted = (costs * (1.0 + worst[rows, pool] / max(tol, 1e-9))).ravel()
    flat = np.flatnonzero(in_pool.ravel())
    pick = flat[np.lexsort((flat, weighted[flat], o[flat], o[flat] > 0))[0]]
    t, c = divmod(int(pick), pool.shape[1])
    vv = int(v[t, c])
    mask = (tin[t] >= tin[t, vv]) & (tin[t] < tin[t, vv] + size[t, vv])
    ks = int(ksub[t, pool[t, c]])
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
