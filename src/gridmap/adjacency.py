"""Which units are neighbours, and what it costs to put a grid edge between them.

Two units are neighbours when they share an edge of positive length: a street
centre-line (blocks on either side of it), a community boundary, or a cut between
buildings inside a split block.  The street along a shared edge sets how natural
it is as a grid boundary: a main road is the best place for one, a cut through
a block the worst.  Barriers (motorways, trunk roads, railways, rivers) are kept
apart unless nothing else connects the units.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np
import shapely

__all__ = [
    "DEFAULT_BARRIERS",
    "DEFAULT_CUT_COST",
    "Adjacency",
    "build_adjacency",
    "street_rank",
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
        g = nx.Graph()
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


def build_adjacency(
    geoms: np.ndarray,
    *,
    block: np.ndarray | None = None,
    streets: np.ndarray | None = None,
    street_classes: np.ndarray | None = None,
    cut_cost: dict[str, float] | None = None,
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
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate="intersects")
    keep = a < b
    a, b = a[keep], b[keep]
    bnd = shapely.boundary(geoms)
    shared = shapely.intersection(bnd[a], bnd[b])
    length = shapely.length(shared)
    # where two edges run together but their vertices differ by floating point
    # (a block beside the cells of a split block), the exact intersection is only
    # points: measure the one boundary within a hair of the other instead
    thin = length <= min_shared
    if thin.any():
        near = shapely.intersection(bnd[a[thin]], shapely.buffer(bnd[b[thin]], 1e-3))
        near_len = shapely.length(near)
        # a real shared edge runs for metres; a few centimetres within a hair is
        # a corner where two edges nearly meet, not a shared street
        fix = near_len > max(min_shared, 1.0)
        idx = np.flatnonzero(thin)[fix]
        shared[idx] = shapely.line_merge(shapely.intersection(bnd[a[idx]], shapely.buffer(
            bnd[b[idx]], 1e-3, cap_style="flat")))
        length[idx] = near_len[fix]
    keep = length > min_shared
    a, b, shared, length = a[keep], b[keep], shared[keep], length[keep]

    kind = np.full(len(a), "street", dtype=object)
    if block is not None:
        inside = np.asarray(block)[a] == np.asarray(block)[b]
    else:
        inside = np.zeros(len(a), dtype=bool)
    if streets is not None and len(streets) and len(a):
        mid = shapely.line_interpolate_point(
            shapely.line_merge(shapely.force_2d(shared)), 0.5, normalized=True
        )
        # line_merge of a collection may fail to give a line: use any point of it
        bad = shapely.is_empty(mid) | shapely.is_missing(mid)
        if bad.any():
            mid[bad] = shapely.point_on_surface(shared[bad])
        stree = shapely.STRtree(np.asarray(streets, dtype=object))
        si, ei = stree.query_nearest(mid, max_distance=snap, return_distance=False)
        # nearest may return ties: keep the first per edge
        first = np.r_[True, si[1:] != si[:-1]] if len(si) else np.array([], bool)
        si, ei = si[first], ei[first]
        ranks = np.array([street_rank(c) for c in np.asarray(street_classes)[ei]], dtype=object) \
            if street_classes is not None else np.full(len(ei), "street", dtype=object)
        kind[:] = "boundary"
        kind[si] = ranks
    kind[inside] = "none"
    cost = np.array([costs.get(k, costs["street"]) for k in kind], dtype=float)
    barrier = np.array([k in barriers for k in kind], dtype=bool)
    return Adjacency(a, b, length, kind, cost, barrier, n)
