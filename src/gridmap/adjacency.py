"""Which units are neighbours, and what it costs to put a grid edge between them.

Two units are neighbours when they share an edge of positive length: a street
centre-line (blocks on either side of it), a community boundary, or a cut between
buildings inside a split block.  The street along a shared edge sets how natural
it is as a grid boundary: a main road is the best place for one, a cut through
a block the worst.  Barriers (motorways, trunk roads, railways, rivers) are kept
apart unless nothing else connects the units.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import shapely

from .partition._graph import UnitGraph

__all__ = [
    "DEFAULT_BARRIERS",
    "DEFAULT_CUT_COST",
    "Adjacency",
    "build_adjacency",
    "patch_adjacency",
    "street_rank",
    "unit_graph",
]

#: cost of a grid edge along a street of each class, per metre: low where a grid
#: boundary is natural (a main road), high where it cuts through a block
DEFAULT_CUT_COST: dict[str, float] = {
    "motorway": 0.1,
    "trunk": 0.1,
    "railway": 0.1,
    "river": 0.1,
    "primary": 0.2,
    "secondary": 0.3,
    "tertiary": 0.4,
    "unclassified": 0.5,
    "residential": 0.5,
    "living_street": 0.6,
    "pedestrian": 0.6,
    "service": 0.7,
    "footway": 0.8,
    "path": 0.8,
    "cycleway": 0.8,
    "steps": 0.8,
    "track": 0.8,
    "boundary": 0.2,  # a community boundary
    "street": 0.5,  # a street of unknown class
    "none": 4.0,  # a cut between buildings inside a block
}

#: street classes a grid should not straddle
DEFAULT_BARRIERS = frozenset({"motorway", "trunk", "railway", "river"})


def street_rank(cls: str | None) -> str:
    """Base class of an OSM ``highway`` value (``primary_link`` -> ``primary``)."""
    if cls is None or (isinstance(cls, float) and np.isnan(cls)):
        return "street"
    c = str(cls).strip().lower()
    c = c.removesuffix("_link")
    if c in ("rail", "light_rail", "narrow_gauge", "tram", "monorail"):
        return "railway"
    if c in ("canal", "waterway"):
        return "river"
    return c


@dataclass(frozen=True)
class Adjacency:
    """Edges between neighbouring units, as arrays.

    Attributes
    ----------
    i, j : numpy.ndarray
        Unit positions of each edge (``i < j``).
    length : numpy.ndarray
        Length of the shared edge in metres.
    kind : numpy.ndarray
        Street class along the shared edge; ``"boundary"`` for a community or area
        boundary, ``"none"`` for a cut inside a block.
    cost : numpy.ndarray
        Cut cost per metre (:data:`DEFAULT_CUT_COST`).
    barrier : numpy.ndarray
        True where the shared edge is a barrier.
    """

    i: np.ndarray
    j: np.ndarray
    length: np.ndarray
    kind: np.ndarray
    cost: np.ndarray
    barrier: np.ndarray
    n: int

    def to_networkx(self) -> nx.Graph:
        """The adjacency as a networkx graph (edge attributes length, kind, cost)."""
        g: nx.Graph[int] = nx.Graph()
        g.add_nodes_from(range(self.n))
        g.add_edges_from(
            (
                int(a),
                int(b),
                {"length": float(ln), "kind": str(k), "cost": float(c), "barrier": bool(br)},
            )
            for a, b, ln, k, c, br in zip(
                self.i, self.j, self.length, self.kind, self.cost, self.barrier, strict=True
            )
        )
        return g


def _segments(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The straight segments of every polygon's rings.

    ``(x1, y1, x2, y2)``, owner, length; each segment's end points in a fixed
    (lexicographic) order.
    """
    parts, part_of = shapely.get_parts(geoms, return_index=True)
    rings, ring_of = shapely.get_rings(parts, return_index=True)
    owner = part_of[ring_of]
    coords, ring = shapely.get_coordinates(rings, return_index=True)
    same = ring[1:] == ring[:-1]
    p, q = coords[:-1][same], coords[1:][same]
    own = owner[ring[:-1][same]]
    swap = (q[:, 0] < p[:, 0]) | ((q[:, 0] == p[:, 0]) & (q[:, 1] < p[:, 1]))
    p, q = np.where(swap[:, None], q, p), np.where(swap[:, None], p, q)
    seg = np.column_stack([p, q])
    ln = np.hypot(seg[:, 2] - seg[:, 0], seg[:, 3] - seg[:, 1])
    keep = ln > 0
    return seg[keep], own[keep], ln[keep]


def _interval(a: np.ndarray, b: np.ndarray, lo: float | np.ndarray,
              hi: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where in [0, 1] the linear ``a + (b - a) t`` lies within [lo, hi]."""
    slope = b - a
    flat = np.abs(slope) < 1e-15
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = (lo - a) / slope
        t2 = (hi - a) / slope
    t_lo = np.where(flat, np.where((a >= lo) & (a <= hi), 0.0, 1.0), np.minimum(t1, t2))
    t_hi = np.where(flat, np.where((a >= lo) & (a <= hi), 1.0, 0.0), np.maximum(t1, t2))
    return np.clip(t_lo, 0.0, 1.0), np.clip(t_hi, 0.0, 1.0)


def _within(s1: np.ndarray, s2: np.ndarray, hair: float):
    """The stretch of every segment ``s1`` within ``hair`` of segment ``s2``.

    Returns ``(lo, hi, on_line)``: the stretch from ``lo`` to ``hi`` metres along
    ``s1``, and whether ``s1`` lies on the line of ``s2`` (to rounding).
    """
    q0 = s2[:, :2]
    d2 = s2[:, 2:] - q0
    l2 = np.hypot(d2[:, 0], d2[:, 1])
    u2 = d2 / l2[:, None]
    r0, r1 = s1[:, :2] - q0, s1[:, 2:] - q0
    # signed distance across s2, and position along it, of s1's two ends
    c0 = u2[:, 0] * r0[:, 1] - u2[:, 1] * r0[:, 0]
    c1 = u2[:, 0] * r1[:, 1] - u2[:, 1] * r1[:, 0]
    p0 = (u2 * r0).sum(1)
    p1 = (u2 * r1).sum(1)
    a_lo, a_hi = _interval(c0, c1, -hair, hair)
    b_lo, b_hi = _interval(p0, p1, 0.0, l2)
    t_lo, t_hi = np.maximum(a_lo, b_lo), np.minimum(a_hi, b_hi)
    l1 = np.hypot(s1[:, 2] - s1[:, 0], s1[:, 3] - s1[:, 1])
    scale = np.maximum(np.maximum(l1, l2), 1.0)
    on_line = np.maximum(np.abs(c0), np.abs(c1)) <= 1e-12 * scale * scale
    return t_lo * l1, np.maximum(t_hi, t_lo) * l1, on_line


def _shared_edges(geoms: np.ndarray, min_shared: float, hair: float = 1e-3):
    """Pairs of polygons sharing an edge longer than ``min_shared``.

    With the length of the shared edge and the shared pieces.

    Segments that two polygons have in common (same end points) are found by
    sorting, with no geometric overlay: units that tile an area share most of
    their edges that way.  Where vertices differ (a block beside the cells of its
    split neighbour) segments running together within ``hair`` of each other
    are matched by an STRtree and measured along their common stretch.  As with
    an exact intersection, a pair whose exactly shared edges are no longer than
    ``min_shared`` is kept only if the edges running together within ``hair``
    are longer than a metre (a corner where two edges nearly meet is not a
    shared street).

    Returns ``a, b`` (``a < b``, sorted), ``length``, the shared pieces
    (segments) and the pair of every piece.
    """
    n = len(geoms)
    empty_i = np.array([], dtype=np.int64)
    if n < 2:
        return empty_i, empty_i, np.array([]), np.array([], dtype=object), empty_i
    seg, own, ln = _segments(geoms)
    order = np.lexsort((own, seg[:, 3], seg[:, 2], seg[:, 1], seg[:, 0]))
    seg, own, ln = seg[order], own[order], ln[order]
    same_next = np.all(seg[1:] == seg[:-1], axis=1)
    # runs of equal segments: every two owners in a run share it
    start = np.flatnonzero(np.r_[True, ~same_next])
    size = np.diff(np.r_[start, len(seg)])
    pa, pb, plen, pseg = [], [], [], []
    for k in range(1, int(size.max(initial=1))):
        # the k-th member of each run with the ones before it
        runs = start[size > k]
        for j in range(k):
            x, y = own[runs + j], own[runs + k]
            ok = x != y
            pa.append(np.minimum(x, y)[ok])
            pb.append(np.maximum(x, y)[ok])
            plen.append(ln[runs + k][ok])
            pseg.append(seg[runs + k][ok])
    flags = [np.ones(len(x), dtype=bool) for x in pa]
    # segments with no exact twin: look for one running along them within a hair
    alone = size == 1
    lone = start[alone]
    if len(lone):
        lines = shapely.linestrings(seg[lone].reshape(-1, 2, 2))
        tree = shapely.STRtree(lines)
        i, j = tree.query(lines, predicate="dwithin", distance=hair)
        keep = (i < j) & (own[lone][i] != own[lone][j])
        i, j = i[keep], j[keep]
        s1, s2 = seg[lone][i], seg[lone][j]
        lo, hi, on_line = _within(s1, s2, hair)
        along = hi > lo
        i, j, lo, hi = i[along], j[along], lo[along], hi[along]
        near_exact = on_line[along]
        s1 = s1[along]
        d = s1[:, 2:] - s1[:, :2]
        l1 = np.hypot(d[:, 0], d[:, 1])
        uu = d / l1[:, None]
        base = s1[:, :2]
        x, y = own[lone][i], own[lone][j]
        piece = np.column_stack([base + uu * lo[:, None], base + uu * hi[:, None]])
        pa.append(np.minimum(x, y))
        pb.append(np.maximum(x, y))
        plen.append(hi - lo)
        pseg.append(piece)
        flags.append(near_exact)
    if not pa:
        return empty_i, empty_i, np.array([]), np.array([], dtype=object), empty_i
    pa_, pb_ = np.concatenate(pa), np.concatenate(pb)
    plen_, pseg_ = np.concatenate(plen), np.concatenate(pseg)
    is_exact = np.concatenate(flags)
    key = pa_ * n + pb_
    uniq, inv = np.unique(key, return_inverse=True)
    exact = np.bincount(inv, weights=np.where(is_exact, plen_, 0.0), minlength=len(uniq))
    total = np.bincount(inv, weights=plen_, minlength=len(uniq))
    ok = (exact > min_shared) | (total > max(min_shared, 1.0))
    length = np.where(exact > min_shared, exact, total)
    # pieces of the pairs kept, grouped by pair (for the street along each edge)
    new_index = np.cumsum(ok) - 1
    use = ok[inv] & (is_exact | (exact[inv] <= min_shared))
    pieces = shapely.linestrings(pseg_[use].reshape(-1, 2, 2))
    piece_pair = new_index[inv[use]]
    by_pair = np.argsort(piece_pair, kind="stable")
    a, b = uniq[ok] // n, uniq[ok] % n
    return a, b, length[ok], pieces[by_pair], piece_pair[by_pair]


def build_adjacency(
    geoms: np.ndarray,
    *,
    block: np.ndarray | None = None,
    streets: np.ndarray | None = None,
    street_classes: np.ndarray | None = None,
    cut_cost: Mapping[str, float] | None = None,
    barriers: frozenset[str] | set[str] = DEFAULT_BARRIERS,
    snap: float = 1.0,
    min_shared: float = 0.01,
) -> Adjacency:
    """Find neighbouring units and classify their shared edges.

    Parameters
    ----------
    geoms
        Unit polygons.
    block
        Block index of every unit: neighbours inside one block are separated by a
        cut, not a street.
    streets, street_classes
        Street centre-lines and their classes, to name the street along each
        shared edge (the one within ``snap`` metres of the edge's midpoint).
        Without streets every edge between blocks counts as a street of unknown
        class (units given directly, such as census blocks, are street-bounded).
    cut_cost, barriers
        Cost per metre of a grid edge by street class, and the classes that are
        barriers.
    min_shared
        Shared edges shorter than this (metres) do not make neighbours: units that
        meet at a point would make a grid of two pieces.

    Examples
    --------
    >>> import numpy as np, shapely
    >>> boxes = np.array([shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1),
    ...                   shapely.box(2, 1, 3, 2)])
    >>> adj = build_adjacency(boxes)
    >>> list(zip(adj.i.tolist(), adj.j.tolist()))
    [(0, 1)]
    """
    costs = dict(DEFAULT_CUT_COST)
    if cut_cost:
        costs.update(cut_cost)
    geoms = np.asarray(geoms, dtype=object)
    n = len(geoms)
    a, b, length, pieces, piece_pair = _shared_edges(geoms, min_shared)
    kind = np.full(len(a), "street", dtype=object)
    if block is not None:
        inside = np.asarray(block)[a] == np.asarray(block)[b]
    else:
        inside = np.zeros(len(a), dtype=bool)
    frac = None  # per edge, the share of its length off the street
    if streets is not None and len(streets) and len(a):
        stree = shapely.STRtree(np.asarray(streets, dtype=object))

        def nearest_rank(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            """The points within ``snap`` of a street, and the nearest one's class."""
            qi, qs = stree.query_nearest(points, max_distance=snap, return_distance=False)
            # nearest may return ties: keep the first per point
            first = np.r_[True, qi[1:] != qi[:-1]] if len(qi) else np.array([], bool)
            qi, qs = qi[first], qs[first]
            if street_classes is None:
                return qi, np.full(len(qi), "street", dtype=object)
            return qi, np.array([street_rank(c) for c in np.asarray(street_classes)[qs]],
                                dtype=object)

        shared = shapely.multilinestrings(pieces, indices=piece_pair)
        mid = shapely.line_interpolate_point(
            shapely.line_merge(shared), 0.5, normalized=True
        )
        # line_merge of a collection may fail to give a line: use any point of it
        bad = shapely.is_empty(mid) | shapely.is_missing(mid)
        if bad.any():
            mid[bad] = shapely.point_on_surface(shared[bad])
        kind[:] = "boundary"
        si, ranks = nearest_rank(mid)
        kind[si] = ranks
        # the stretches of an edge between blocks that no street runs along (round
        # a building drawn across the street, which its block kept whole) cost
        # what a cut through a block costs: a grid edge there is off the street
        # (an edge no street runs along at all is a boundary, and keeps its cost)
        plen = shapely.length(pieces)
        pmid = shapely.line_interpolate_point(pieces, 0.5, normalized=True)
        off = np.ones(len(pieces), dtype=bool)
        off[stree.query(pmid, predicate="dwithin", distance=snap)[0]] = False
        off_len = np.bincount(piece_pair, weights=plen * off, minlength=len(a))
        tot = np.bincount(piece_pair, weights=plen, minlength=len(a))
        frac = np.divide(off_len, tot, out=np.zeros(len(a)), where=tot > 0)
        frac[inside | (off_len >= tot - 1e-9)] = 0.0
        # an edge whose middle is off the street but which runs along one
        # elsewhere takes the class of the street along its longest piece
        on = np.flatnonzero(~off & np.isin(piece_pair, np.flatnonzero(
            (kind == "boundary") & (frac > 0))))
        if len(on):
            # per edge, its longest piece on a street (the last after sorting)
            on = on[np.lexsort((-on, plen[on], piece_pair[on]))]
            last = np.r_[piece_pair[on][1:] != piece_pair[on][:-1], True]
            qi, ranks = nearest_rank(pmid[on[last]])
            kind[piece_pair[on[last]][qi]] = ranks
    kind[inside] = "none"
    cost = np.array([costs.get(k, costs["street"]) for k in kind], dtype=float)
    if frac is not None:
        cost = cost * (1 - frac) + costs["none"] * frac
    barrier = np.array([k in barriers for k in kind], dtype=bool)
    # to the micrometre: the sum of an edge's pieces depends on their order, which
    # depends on the other units given; a graph patched after more blocks are cut
    # (:func:`patch_adjacency`) must be the graph made anew
    return Adjacency(a, b, np.round(length, 6), kind, cost, barrier, n)


def unit_graph(units: gpd.GeoDataFrame, building_unit: np.ndarray, weight: np.ndarray, *,
               streets: np.ndarray, street_classes: np.ndarray,
               cut_cost: Mapping[str, float] | None,
               barriers: frozenset[str],
               kept: tuple[Adjacency, np.ndarray] | None = None,
               unit_weight: np.ndarray | None = None
               ) -> tuple[Adjacency, UnitGraph]:
    """Stage 5: the units' adjacency and the graph the partition works on.

    In: the units (column ``block``), the unit of every building and the
    building's balance weight, the street lines and their classes, the cut cost
    and barriers.  Out: the :class:`Adjacency` (shared edges, their street and
    cost) and the :class:`~gridmap.partition.UnitGraph` (unit weights,
    centroids, edges with their cut cost).

    ``kept`` is the adjacency of units made before and, for each of them, its
    position among ``units`` (-1: not among them, its block cut anew): the
    edges between units kept are carried over, and only those touching the
    others are worked out (:func:`patch_adjacency`), with the same result as
    working out all of them.  ``unit_weight``, if given, is every unit's weight
    (its area, for ``by="area"``) instead of its buildings'.
    """
    has_streets = len(streets) > 0
    kw: dict[str, Any] = {
        "streets": streets if has_streets else None,
        "street_classes": street_classes if has_streets else None,
        "cut_cost": cut_cost, "barriers": barriers}
    geoms, block = units.geometry.values, units["block"].to_numpy()
    if kept is None:
        adj = build_adjacency(geoms, block=block, **kw)
    else:
        adj = patch_adjacency(kept[0], kept[1], geoms, block=block, **kw)
    # a unit weighs its buildings' counts, or (``unit_weight``) a measure of its own
    w = np.bincount(building_unit, weights=weight, minlength=len(units)) \
        if unit_weight is None else np.asarray(unit_weight, dtype=float)
    cen = shapely.centroid(units.geometry.values)
    xy = np.column_stack([shapely.get_x(cen), shapely.get_y(cen)])
    # an empty unit (none should be) sits at the middle rather than nowhere
    xy = np.where(np.isfinite(xy), xy, np.nanmean(xy, axis=0))
    g = UnitGraph.from_edges(len(units), w, xy, adj.i, adj.j, adj.length * adj.cost,
                             adj.barrier)
    return adj, g


def patch_adjacency(old: Adjacency, where: np.ndarray, geoms: np.ndarray, *,
                    block: np.ndarray, **kwargs: Any) -> Adjacency:
    """The adjacency of ``geoms``, carrying over the edges of ``old`` between kept units.

    ``where`` gives, for each unit of ``old``, its position among ``geoms`` (-1
    where it is not kept, its block cut anew).  The units not kept over come
    from the same blocks as those gone, so their neighbours are among
    themselves and the kept units that touched a unit gone: only that set is
    given to :func:`build_adjacency`, and of its edges only those touching a
    new unit are taken.  Edges come out in the order :func:`build_adjacency`
    gives (by ``i``, then ``j``).
    """
    geoms = np.asarray(geoms, dtype=object)
    n = len(geoms)
    where = np.asarray(where, dtype=np.int64)
    fresh = np.ones(n, dtype=bool)
    fresh[where[where >= 0]] = False
    oi, oj = where[old.i], where[old.j]
    keep = (oi >= 0) & (oj >= 0)
    # the kept units that touched a unit gone, and (so that their edges are
    # matched as in the whole, not left alone) the units touching those
    ring = where < 0
    for _ in range(2):
        touch = ring[old.i] | ring[old.j]
        ring[old.i[touch]] = True
        ring[old.j[touch]] = True
    near = where[ring]
    subset = np.union1d(np.flatnonzero(fresh), near[near >= 0])
    sub = build_adjacency(geoms[subset], block=np.asarray(block)[subset], **kwargs)
    si, sj = subset[sub.i], subset[sub.j]
    use = fresh[si] | fresh[sj]
    a = np.concatenate([np.minimum(oi, oj)[keep], np.minimum(si, sj)[use]])
    b = np.concatenate([np.maximum(oi, oj)[keep], np.maximum(si, sj)[use]])
    order = np.lexsort((b, a))

    def both(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.concatenate([x[keep], y[use]])[order]

    return Adjacency(a[order], b[order], both(old.length, sub.length),
                     both(old.kind, sub.kind), both(old.cost, sub.cost),
                     both(old.barrier, sub.barrier), n)
