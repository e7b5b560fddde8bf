"""The atoms of a plan: street blocks (街巷定界), compounds and building cells.

The area to cover is cut by the street centre-lines (and community boundaries)
into *blocks*: the faces of the planar street network, so two blocks on either
side of a street share that street's centre-line as their common edge.  Every
building goes to the block it overlaps most.  A compound (小区) is kept whole:
the blocks its internal lanes make are merged back into one.  A block (or
compound) that alone holds more than a grid is split along lines between its
buildings (a Voronoi tessellation of the block by its buildings), never through a
building.  The units are those blocks and cells; they tile the area exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree

from .adjacency import Adjacency, unit_graph

if TYPE_CHECKING:
    from .partition import UnitGraph

__all__ = [
    "NON_BLOCKING_CLASSES",
    "Blocks",
    "UnitMaker",
    "Units",
    "assign_by_overlap",
    "build_units",
    "carried_over",
    "coverage_union",
    "lattice_points",
    "make_blocks",
    "open_land",
    "sectors",
    "street_blocks",
    "study_area",
    "tessellate",
]

#: street classes that do not bound a block (they are not on the ground, or not
#: lines a grid worker walks along)
NON_BLOCKING_CLASSES = frozenset(
    {
        "proposed",
        "construction",
        "platform",
        "corridor",
        "elevator",
        "bus_stop",
        "abandoned",
        "razed",
        "ferry",
        "subway",
        "pier",
        "funicular",
        "raceway",
    }
)


def study_area(
    buildings: gpd.GeoSeries,
    street_lines: np.ndarray,
    *,
    boundaries: gpd.GeoSeries | None = None,
    margin: float = 50.0,
    closing: float = 40.0,
) -> tuple[shapely.Geometry, str]:
    """The area the plan must cover, and where it comes from.

    With community or sub-district boundaries it is their union
    (``"boundaries"``).  Otherwise it is the area the streets enclose around the
    buildings (``"streets"``): the faces of the street network (closed by the
    convex hull of the buildings widened by ``margin`` metres) that hold a
    building, joined across the street corridors between them (a morphological
    closing of ``closing`` metres: the carriageways of a dual road, a square), with
    the empty faces they surround.
    """
    if boundaries is not None and len(boundaries):
        return shapely.union_all(boundaries.values), "boundaries"
    hull = shapely.convex_hull(shapely.union_all(buildings.values)).buffer(margin)
    faces = _faces(street_lines, hull)
    pts = shapely.point_on_surface(buildings.values)
    tree = shapely.STRtree(faces)
    hit = np.unique(tree.query(pts, predicate="within")[1])
    built = shapely.union_all(faces[hit]) if len(hit) else hull
    if closing > 0:
        closed = shapely.buffer(shapely.buffer(built, closing, quad_segs=4), -closing,
                                quad_segs=4)
        built = shapely.intersection(shapely.union(built, closed), hull)
    built = _connect(built, faces)
    # holes (parks, squares surrounded by built blocks) belong to the area too
    polys = shapely.get_parts(built)
    polys = polys[shapely.get_type_id(polys) == 3]
    polys = shapely.polygons(shapely.get_exterior_ring(polys))
    # without streets there is nothing to enclose: the widened hull of the buildings
    return shapely.union_all(polys), "streets" if len(street_lines) else "buildings"


def _connect(area: shapely.Geometry, faces: np.ndarray) -> shapely.Geometry:
    """Join the separate pieces of a street-derived area into one.

    A cluster of buildings apart from the rest (across a river, beyond a field)
    would otherwise make grids that nothing connects to.  Each piece is joined to
    its nearest neighbour by the street faces along the shortest line between
    them, nearest pairs first, so the area stays made of street faces.
    """
    pieces = list(shapely.get_parts(area))
    pieces = [p for p in pieces if p.geom_type == "Polygon" and p.area > 0]
    if len(pieces) < 2:
        return area
    tree = shapely.STRtree(faces)
    while len(pieces) > 1:
        # the smallest piece first, to its nearest other piece
        pieces.sort(key=lambda p: p.area)
        small, rest = pieces[0], pieces[1:]
        d = shapely.distance(np.asarray(rest, dtype=object), small)
        near = rest[int(np.argmin(d))]
        # between the pieces shrunk a little, so that the link runs through the
        # faces between them rather than along the street that bounds them
        a_, b_ = small.buffer(-1.0), near.buffer(-1.0)
        link = shapely.shortest_line(
            a_ if not a_.is_empty else small, b_ if not b_.is_empty else near
        )
        hit = tree.query(link, predicate="intersects")
        # only faces the link runs through, not those it grazes along a street
        hit = hit[shapely.relate_pattern(faces[hit], link, "T********")]
        merged = shapely.union_all([small, near, *faces[hit]])
        if merged.geom_type != "Polygon":
            # the faces did not bridge (e.g. a gap in the linework): a thin corridor
            merged = shapely.union_all([small, near, link.buffer(1.0)])
        pieces = [p for p in rest if p is not near] + [merged]
        if merged.geom_type != "Polygon":
            pieces = [p for p in pieces if p is not merged] + list(shapely.get_parts(merged))
            break
    return shapely.union_all(pieces)


def planar_faces(lines: np.ndarray, grid_size: float = 1e-3) -> np.ndarray:
    """The polygons that ``lines`` enclose, noded on a ``grid_size`` grid.

    Snap-rounded noding: a plain union can leave nearly coincident lines
    un-noded, and polygonize then loses whole faces.  Neighbouring faces share
    their edges vertex for vertex.

    Examples
    --------
    >>> lines = np.array([shapely.LineString([(0, 0), (2, 0), (2, 1), (0, 1), (0, 0)]),
    ...                   shapely.LineString([(1, -1), (1, 2)])])
    >>> sorted(shapely.area(planar_faces(lines)).tolist())
    [1.0, 1.0]
    """
    try:
        noded = shapely.union_all(lines, grid_size=grid_size)
    except shapely.errors.GEOSException:
        noded = shapely.union_all(lines)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    return faces[(shapely.get_type_id(faces) == 3) & (shapely.area(faces) > 0)]


def _faces(street_lines: np.ndarray, area: shapely.Geometry) -> np.ndarray:
    """Faces of the planar network made by the streets and the area's outline."""
    outline = shapely.get_parts(shapely.boundary(area))
    lines = np.concatenate([np.asarray(street_lines, dtype=object), outline])
    lines = lines[~shapely.is_empty(lines)]
    # clip streets to the area first: only their part inside cuts blocks
    lines = shapely.intersection(lines, shapely.buffer(area, 1e-6))
    faces = planar_faces(lines)
    if not len(faces):
        return np.array([area], dtype=object)
    # a face is inside when most of it is (a point test fails for faces whose
    # interior point falls on the outline by rounding)
    inside = shapely.within(shapely.point_on_surface(faces), area)
    unsure = np.flatnonzero(~inside)
    if len(unsure):
        share = shapely.area(shapely.intersection(faces[unsure], area)) / np.maximum(
            shapely.area(faces[unsure]), 1e-12
        )
        inside[unsure[share > 0.5]] = True
    return faces[inside]


def street_blocks(street_lines: np.ndarray, area: shapely.Geometry) -> np.ndarray:
    """Street blocks: the faces the streets cut the area into.

    Returns an array of polygons tiling ``area``.

    Examples
    --------
    >>> import numpy as np, shapely
    >>> area = shapely.box(0, 0, 100, 100)
    >>> streets = np.array([shapely.LineString([(50, -10), (50, 110)])])
    >>> sorted(round(b.area) for b in street_blocks(streets, area))
    [5000, 5000]
    """
    faces = _faces(street_lines, area)
    # a sliver left by a street that nearly follows the outline has no area to speak of
    return faces[shapely.area(faces) > 1e-6]


def assign_by_overlap(
    geoms: np.ndarray, polys: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Index of the polygon each geometry overlaps most (-1 where none).

    Returns ``(index, share)`` where ``share`` is the part of the geometry's area
    inside the chosen polygon.  Geometries touching no polygon get the nearest one
    and share 0.
    """
    n = len(geoms)
    out = np.full(n, -1, dtype=np.int64)
    share = np.zeros(n)
    if n == 0 or len(polys) == 0:
        return out, share
    tree = shapely.STRtree(polys)
    gi, pi = tree.query(geoms, predicate="intersects")
    if len(gi):
        inter = shapely.area(shapely.intersection(geoms[gi], polys[pi]))
        order = np.lexsort((pi, -inter, gi))  # per geometry: largest overlap, then lowest id
        gi, pi, inter = gi[order], pi[order], inter[order]
        first = np.r_[True, gi[1:] != gi[:-1]]
        out[gi[first]] = pi[first]
        areas = shapely.area(geoms[gi[first]])
        share[gi[first]] = np.where(areas > 0, inter[first] / np.maximum(areas, 1e-12), 1.0)
    missing = np.flatnonzero(out < 0)
    if len(missing):
        near = tree.nearest(geoms[missing])
        out[missing] = near
    return out, share


@dataclass(frozen=True)
class Blocks:
    """Street blocks with their buildings, before any split.

    Attributes
    ----------
    geometry : numpy.ndarray
        Block polygons (compounds merged), tiling the area.
    building_block : numpy.ndarray
        Block index of every building.
    community : numpy.ndarray
        Community index of every block (0 when there are no boundaries).
    compound : numpy.ndarray
        Compound label of every building (-1 when in none); used so that a split
        block keeps each compound in one cell.
    outside : numpy.ndarray
        Positions of buildings outside the area, placed in the nearest block.
    special : numpy.ndarray or None
        For every block, the carved polygon (road or unit grid) it is, or -1.
    """

    geometry: np.ndarray
    building_block: np.ndarray
    community: np.ndarray
    compound: np.ndarray
    outside: np.ndarray = field(default_factory=lambda: np.array([], dtype=np.int64))
    special: np.ndarray | None = None

    def loads(self, values: np.ndarray) -> np.ndarray:
        """Sum of a per-building value per block."""
        return np.bincount(self.building_block, weights=values, minlength=len(self.geometry))


def make_blocks(
    buildings: np.ndarray,
    street_lines: np.ndarray,
    area: shapely.Geometry,
    *,
    communities: np.ndarray | None = None,
    compounds: np.ndarray | None = None,
    given_units: np.ndarray | None = None,
    carve: np.ndarray | None = None,
) -> Blocks:
    """Cut the area into blocks and put every building in one.

    ``communities`` are community polygons: their outlines cut blocks too, and
    each block gets the community its interior lies in.  ``compounds`` are
    compound polygons: the blocks whose interior lies in a compound are merged
    into one block.  ``given_units`` replaces the street blocks with the user's
    own units, taken as they are.
    """
    if given_units is not None:
        faces = np.asarray(given_units, dtype=object)
    else:
        lines = np.asarray(street_lines, dtype=object)
        if communities is not None and len(communities):
            lines = np.concatenate(
                [lines, shapely.get_parts(shapely.boundary(communities))]
            )
        if carve is not None and len(carve):
            lines = np.concatenate([lines, shapely.get_parts(shapely.boundary(carve))])
        faces = street_blocks(lines, area)
        if compounds is not None and len(compounds):
            faces = _merge_compounds(faces, compounds)
        if carve is not None and len(carve):
            # what lies in a carved polygon (road or unit grid) is one block; a
            # compound inside it merges first, and is carved with it
            faces = _merge_compounds(faces, carve)
    # order blocks north-west first so that ids do not depend on GEOS internals
    c = shapely.get_coordinates(shapely.point_on_surface(faces))
    order = np.lexsort((np.round(c[:, 0], 3), -np.round(c[:, 1], 3)))
    faces = faces[order]

    community = np.zeros(len(faces), dtype=np.int64)
    if communities is not None and len(communities):
        idx, _ = assign_by_overlap(shapely.point_on_surface(faces), np.asarray(communities))
        community = idx

    special = None
    if carve is not None and len(carve):
        special = np.full(len(faces), -1, dtype=np.int64)
        fi, ci = shapely.STRtree(np.asarray(carve)).query(
            shapely.point_on_surface(faces), predicate="within")
        special[fi] = ci
    bblock, _share = assign_by_overlap(buildings, faces)
    outside = np.flatnonzero(~shapely.intersects(buildings, area))
    if given_units is None:
        faces = keep_buildings_whole(faces, buildings, bblock, special, community=community)

    compound = np.full(len(buildings), -1, dtype=np.int64)
    if compounds is not None and len(compounds):
        tree = shapely.STRtree(np.asarray(compounds))
        bi, ci = tree.query(shapely.point_on_surface(buildings), predicate="within")
        compound[bi] = ci
    return Blocks(faces, bblock, community, compound, outside, special)


def keep_buildings_whole(faces: np.ndarray, buildings: np.ndarray, building_block: np.ndarray,
                         special: np.ndarray | None = None, *,
                         community: np.ndarray | None = None,
                         min_area: float = 0.01) -> np.ndarray:
    """Blocks that hold each building whole.

    The part of a building that crosses a street centre-line into the next block is
    taken from that block and given to the building's own (``building_block``).

    Grid edges run along block edges, so without this a building drawn across a
    street (a gateway, a bridge, an outline a metre off) would lie partly in the
    next grid.  Where the building crosses a block from side to side, the
    block keeps its largest part and the parts cut off go with the building.  A
    part is left where it is when moving it would break the building's block in
    two, empty a block, take along a building of another block, move a part
    into or out of a carved (road or unit grid) block, or cross into another
    ``community`` (the community of every block: a community boundary is kept
    as drawn).  Returns new block polygons; the blocks still tile the same area
    (to within the millimetre the units are snapped to).

    Examples
    --------
    >>> import shapely
    >>> faces = np.array([shapely.box(0, 0, 10, 10), shapely.box(10, 0, 20, 10)])
    >>> b = np.array([shapely.box(2, 2, 12, 4)])  # 16 m² west of x=10, 4 m² east
    >>> out = keep_buildings_whole(faces, b, np.array([0]))
    >>> bool(out[0].covers(b[0])), out[0].area, out[1].area
    (True, 104.0, 96.0)
    """
    faces = np.asarray(faces, dtype=object).copy()
    buildings = np.asarray(buildings, dtype=object)
    if not len(faces) or not len(buildings):
        return faces
    bi, fi = shapely.STRtree(faces).query(buildings, predicate="intersects")
    crossing = fi != building_block[bi]
    bi, fi = bi[crossing], fi[crossing]
    if not len(bi):
        return faces
    own = building_block[bi]
    may = shapely.area(shapely.intersection(buildings[bi], faces[fi])) > min_area
    if special is not None:
        may &= (special[own] < 0) & (special[fi] < 0)
    if community is not None:
        may &= community[own] == community[fi]
    # (building, block) pairs in a fixed order; a part beyond the next block joins
    # once the part between has, and one building's move can clear the way for
    # another's: go round until none moves
    pending: dict[int, list[int]] = {}
    for b, f in sorted(zip(bi[may].tolist(), fi[may].tolist(), strict=True)):
        pending.setdefault(b, []).append(f)
    btree = shapely.STRtree(buildings)
    for _ in range(8):
        moved = False
        for b, waiting in pending.items():
            # a building's parts in turn until none of them moves
            parts = waiting
            while parts:
                left = [f for f in parts
                        if not _take_part(faces, int(building_block[b]), f, buildings, b,
                                          building_block, btree, min_area)]
                if len(left) == len(parts):
                    break
                moved, parts = True, left
            pending[b] = parts
        if not moved:
            break
    return faces


def _take_part(faces: np.ndarray, own: int, f: int, buildings: np.ndarray, b: int,
               building_block: np.ndarray, btree: shapely.STRtree, min_area: float) -> bool:
    """Move the part of building ``b`` in block ``f`` to block ``own`` if it may.

    True when it moved (or nothing is left to move).
    """
    piece = shapely.intersection(faces[f], buildings[b])
    if shapely.area(piece) <= min_area:
        return True
    rest = shapely.difference(faces[f], buildings[b])
    parts = _areas_of(rest)
    if not len(parts):
        return False
    if len(parts) > 1:
        # the building crosses the block (a path between two streets): the block
        # keeps its largest part, the parts cut off go with the building
        largest = int(np.argmax(shapely.area(parts)))
        rest = parts[largest]
        piece = shapely.union_all(np.concatenate([_areas_of(piece),
                                                  np.delete(parts, largest)]))
    else:
        rest = parts[0]
        piece = shapely.union_all(_areas_of(piece))
    grown = shapely.union(faces[own], piece)
    if shapely.get_type_id(grown) != 3:
        # parts that touch along an edge can still come apart by a rounding
        # error: join them on the millimetre grid the units are snapped to (any
        # sliver this leaves against the next block goes when they are)
        grown = shapely.union(faces[own], piece, grid_size=1e-3)
        if shapely.get_type_id(grown) != 3:
            return False
    # no other building goes along, unless it belongs to the block it joins
    hits = btree.query(piece, predicate="intersects")
    hits = hits[(hits != b) & (building_block[hits] != own)]
    if len(hits) and (shapely.area(shapely.intersection(buildings[hits], piece))
                      > min_area).any():
        return False
    faces[f], faces[own] = rest, grown
    return True


def _areas_of(geom: shapely.Geometry, min_area: float = 0.0) -> np.ndarray:
    """The polygons of an overlay's result larger than ``min_area``.

    Without its stray lines and points.
    """
    parts = shapely.get_parts(shapely.get_parts(geom))
    return parts[(shapely.get_type_id(parts) == 3) & (shapely.area(parts) > min_area)]


def _merge_compounds(faces: np.ndarray, compounds: np.ndarray) -> np.ndarray:
    """Merge the faces lying inside each compound into one polygon."""
    pts = shapely.point_on_surface(faces)
    tree = shapely.STRtree(np.asarray(compounds))
    fi, ci = tree.query(pts, predicate="within")
    if not len(fi):
        return faces
    # a face inside two overlapping compounds goes to the first
    first = np.r_[True, fi[1:] != fi[:-1]]
    fi, ci = fi[first], ci[first]
    keep = np.ones(len(faces), dtype=bool)
    keep[fi] = False
    merged = []
    for c in np.unique(ci):
        merged.extend(shapely.get_parts(shapely.union_all(faces[fi[ci == c]])))
    return np.concatenate([faces[keep], np.asarray(merged, dtype=object)])


def _voronoi_cells(
    coords: np.ndarray, point_group: np.ndarray, n_groups: int, block: shapely.Geometry
) -> np.ndarray:
    """Voronoi cells of the points, merged per group and clipped to the block.

    Evenly spaced, collinear or co-circular points can make GEOS return
    degenerate, overlapping cells: then the diagram is made again with a tiny
    fixed jitter (a millimetre) that breaks the ties.
    """
    cells = _voronoi_once(coords, point_group, n_groups, block)
    if _is_clean(cells, block):
        return cells
    jitter = np.random.default_rng(0).uniform(-1e-3, 1e-3, coords.shape)
    return _voronoi_once(coords + jitter, point_group, n_groups, block)


def _voronoi_once(
    coords: np.ndarray, point_group: np.ndarray, n_groups: int, block: shapely.Geometry
) -> np.ndarray:
    vor = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(coords), extend_to=block, ordered=True)
    )
    bad = ~shapely.is_valid(vor)
    if bad.any():
        vor[bad] = shapely.make_valid(vor[bad])
    # with ordered=True GEOS wraps some cells in a collection: unwrap them
    for i in np.flatnonzero(shapely.get_type_id(vor) != 3).tolist():
        parts = _areas_of(vor[i])
        vor[i] = shapely.union_all(parts) if len(parts) else shapely.Polygon()
    poly = np.isin(shapely.get_type_id(vor), (3, 6))
    # the cells of one diagram share their edges exactly: a coverage union per
    # group is exact and far faster; where cells do not meet exactly (a repaired
    # cell) the group gets a full union instead
    cells = _union_per_group(vor[poly], point_group[poly], n_groups, coverage=True)
    return shapely.make_valid(shapely.intersection(cells, block))


def _union_per_group(geoms: np.ndarray, group: np.ndarray, n_groups: int, *,
                     coverage: bool = False) -> np.ndarray:
    """The union of the geometries of every group 0..n_groups-1 (in one pass).

    A group of one geometry is that geometry.  With ``coverage``, the geometries
    are taken to form a coverage (edges shared exactly, no overlap): each group is
    merged by a coverage union, checked (one valid polygon of the summed area,
    no hole) and merged by a full union where the check fails.
    """
    order = np.argsort(group, kind="stable")
    bounds = np.searchsorted(group[order], np.arange(n_groups + 1))
    sizes = np.diff(bounds)
    out = np.empty(n_groups, dtype=object)
    one = np.flatnonzero(sizes == 1)
    out[one] = geoms[order[bounds[one]]]
    for k in np.flatnonzero(sizes != 1).tolist():
        parts = geoms[order[bounds[k]:bounds[k + 1]]]
        if coverage and len(parts) > 1:
            merged = coverage_union(parts)
            if merged is not None:
                out[k] = merged
                continue
        out[k] = shapely.union_all(parts)
    return out


def coverage_union(parts: np.ndarray) -> shapely.Geometry | None:
    """Coverage union of ``parts`` if it is clean (one polygon, no hole, area kept).

    None where it is not (parts that do not meet vertex for vertex, or whose
    union is not one polygon without holes): the caller takes a full union.
    """
    try:
        merged = shapely.coverage_union_all(parts)
    except shapely.errors.GEOSException:
        return None
    total = float(shapely.area(parts).sum())
    if (shapely.get_type_id(merged) == 3 and shapely.get_num_interior_rings(merged) == 0
            and abs(merged.area - total) <= 1e-9 * max(total, 1.0)):
        return merged
    return None


def _is_clean(cells: np.ndarray, block: shapely.Geometry) -> bool:
    """Whether the cells tile the block: no overlap, no gap."""
    tiny = 1e-6 * max(block.area, 1.0)
    total = float(shapely.area(cells).sum())
    if not (bool(shapely.is_valid(cells).all()) and abs(total - block.area) <= tiny):
        return False
    # the areas add up to the block's; with no overlap there is no gap either.
    # An exact coverage has none (a fast edge-by-edge check); otherwise the union
    # says
    try:
        if shapely.coverage_is_valid(cells):
            return True
    except shapely.errors.GEOSException:
        pass
    return abs(shapely.union_all(cells).area - block.area) <= tiny


def _clean_coverage(cells: np.ndarray, block: shapely.Geometry) -> tuple[np.ndarray, list]:
    """Make cells disjoint and list the gaps they leave in the block.

    Voronoi cells of a clean diagram tile the block and pass untouched; where they
    do not, each cell loses what earlier cells already cover, and the uncovered
    pieces are returned for the caller to hand to a neighbour.
    """
    if _is_clean(cells, block):
        return cells, []
    # cell k loses what the cells before it cover; the union of the earlier
    # cells as they were equals that of the earlier cells as trimmed, so only
    # the earlier cells that touch k are needed
    k_, j_ = shapely.STRtree(cells).query(cells, predicate="intersects")
    earlier = j_ < k_
    before = _union_per_group(cells[j_[earlier]], k_[earlier], len(cells))
    out = shapely.make_valid(shapely.difference(cells, before))
    gap = shapely.make_valid(shapely.difference(block, shapely.union_all(out)))
    return out, list(_areas_of(gap, min_area=1e-9))


def _hand_out(final: dict[int, shapely.Geometry], orphans: list) -> None:
    """Join every orphan piece to the cell of ``final`` it shares most edge with, in place.

    The nearest cell if it shares none.
    """
    while orphans:
        keys = list(final)
        geoms_k = np.array([final[k] for k in keys], dtype=object)
        tree = shapely.STRtree(geoms_k)
        rest = []
        for o in orphans:
            near = tree.query(o)  # only the cells whose boxes touch it
            shared = shapely.length(shapely.intersection(shapely.boundary(geoms_k[near]), o))
            if not len(near) or shared.max() <= 0:
                rest.append(o)
                continue
            k = keys[int(near[int(np.argmax(shared))])]
            final[k] = shapely.union(final[k], o)
        if len(rest) == len(orphans):
            # touching nothing by an edge: goes to the nearest cell
            for o in rest:
                k = keys[int(np.argmin(shapely.distance(geoms_k, o)))]
                final[k] = shapely.union(final[k], o)
            rest = []
        orphans = rest


def _anchors(clipped: np.ndarray, buildings: np.ndarray) -> np.ndarray:
    """A point of each building inside its block, from ``clipped``.

    ``clipped`` is the buildings cut to the block: a building reaching over the
    block's edge (over a street) may have its own representative point outside it.
    """
    inside = ~shapely.is_empty(clipped) & (shapely.area(clipped) > 0)
    return np.where(inside, shapely.point_on_surface(clipped),
                    shapely.point_on_surface(buildings))


def tessellate(
    block: shapely.Geometry,
    buildings: np.ndarray,
    groups: np.ndarray,
    *,
    shrink: float = 0.4,
    segment: float = 6.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Split a block into one cell per building group along lines between them.

    A Voronoi tessellation of points sampled on the buildings' outlines (shrunk by
    ``shrink`` metres so that touching buildings stay apart), merged per group and
    clipped to the block.  Returns ``(cell_of, cells)``: the cell index of every
    building, and the cells, single polygons that tile the block.  A piece of a
    cell cut off from its buildings by the block's shape joins the neighbouring
    cell it shares most edge with.
    """
    labels, inverse = np.unique(groups, return_inverse=True)
    if len(labels) == 1:
        return np.zeros(len(buildings), dtype=np.int64), np.array([block], dtype=object)
    geoms = shapely.intersection(buildings, block)
    small = shapely.buffer(geoms, -shrink)
    small = np.where(shapely.is_empty(small), shapely.point_on_surface(buildings), small)
    # a coarse outline is enough to keep the cut between buildings
    small = shapely.segmentize(shapely.simplify(small, segment / 2), segment)
    rings = shapely.boundary(small)
    rings = np.where(shapely.is_empty(rings), small, rings)
    coords, which = shapely.get_coordinates(rings, return_index=True)
    coords = np.vstack([coords, shapely.get_coordinates(shapely.point_on_surface(buildings))])
    which = np.concatenate([which, np.arange(len(buildings))])
    # duplicated points (shared walls) would make the diagram ambiguous
    _, first = np.unique(np.round(coords, 2), axis=0, return_index=True)
    first.sort()
    coords, which = coords[first], which[first]
    point_group = inverse[which]
    cells = _voronoi_cells(coords, point_group, len(labels), block)
    # where walls touch, a Voronoi edge can clip a corner of a building: every
    # building goes wholly to its own cell
    own = _union_per_group(geoms, inverse, len(labels))
    # each cell loses only the buildings that reach into it (a union of the
    # whole block's buildings per cell would be quadratic in a large block)
    ci, bi = shapely.STRtree(geoms).query(cells, predicate="intersects")
    near = _union_per_group(geoms[bi], ci, len(cells))
    cells = shapely.make_valid(shapely.union(shapely.difference(cells, near), own))
    cells, gaps = _clean_coverage(cells, block)
    # single polygons: the part holding the group's buildings stays, the rest are
    # orphans handed to a neighbour
    parts, owner = shapely.get_parts(cells, return_index=True)
    parts_ok = shapely.get_type_id(parts) == 3  # polygons only
    parts, owner = parts[parts_ok], owner[parts_ok]
    anchor = _anchors(geoms, buildings)
    hit_b, hit_p = shapely.STRtree(parts).query(anchor, predicate="within")
    keep_part = np.full(len(labels), -1, dtype=np.int64)
    good = owner[hit_p] == inverse[hit_b]
    for p_, b_ in zip(hit_p[good].tolist(), hit_b[good].tolist(), strict=True):
        g_ = inverse[b_]
        if keep_part[g_] < 0 or shapely.area(parts[p_]) > shapely.area(parts[keep_part[g_]]):
            keep_part[g_] = p_
    # a group with no part of its own (its points were swallowed) shares the cell
    # that holds its first building
    cell_of_group = np.arange(len(labels))
    lost = np.flatnonzero(keep_part < 0)
    kept = np.flatnonzero(keep_part >= 0)
    if not len(kept):
        return np.zeros(len(buildings), dtype=np.int64), np.array([block], dtype=object)
    if len(lost):
        for g_ in lost.tolist():
            b_ = int(np.flatnonzero(inverse == g_)[0])
            d = shapely.distance(parts[keep_part[kept]], anchor[b_])
            cell_of_group[g_] = kept[int(np.argmin(d))]
    final = {int(g_): parts[keep_part[g_]] for g_ in kept.tolist()}
    orphan_idx = np.setdiff1d(np.arange(len(parts)), keep_part[kept])
    _hand_out(final, list(parts[orphan_idx]) + list(gaps))
    keys = sorted(final)
    remap = np.full(len(labels), -1, dtype=np.int64)
    remap[keys] = np.arange(len(keys))
    cell_of = remap[cell_of_group[inverse]]
    return cell_of, np.array([final[k] for k in keys], dtype=object)


def open_land(
    block: shapely.Geometry,
    cells: np.ndarray,
    buildings: np.ndarray,
    cell_of: np.ndarray,
    *,
    reach: float = 10.0,
    min_area: float = 400.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Cut a split block's cells into plots and the open land between them.

    A building's cell reaches to the middle of the land between it and its
    neighbours; a large cell round a heavy building walls off the buildings
    behind it, since a grid can reach them only by taking the heavy one.  Here
    each cell keeps only its plot, the land within ``reach`` metres of its
    buildings, and the open land farther from every building (pieces of at
    least ``min_area`` m²) is cut into :func:`sectors`, one per plot it faces:
    a grid can then pass a building along the land beside it.  A piece of a
    cell cut off from its buildings by the open land joins the open land.

    Returns ``(plots, open_sectors)``: the plots, one per cell and in the
    cells' order (so ``cell_of`` still holds), and the sectors, which hold no
    building.  Where there is no such open land, or the pieces would not tile
    the block cleanly, the cells come back as they were with no sector.

    Examples
    --------
    Two small buildings at the ends of a long block: the land between them
    opens.

    >>> import shapely
    >>> block = shapely.box(0, 0, 200, 40)
    >>> houses = np.array([shapely.box(5, 15, 15, 25), shapely.box(185, 15, 195, 25)])
    >>> cell_of, cells = tessellate(block, houses, np.arange(2))
    >>> plots, between = open_land(block, cells, houses, cell_of)
    >>> [round(p.area) for p in plots], len(between)
    ([701, 701], 2)
    >>> round(sum(p.area for p in [*plots, *between]))  # still the whole block
    8000
    """
    none = np.array([], dtype=object)
    cells = np.asarray(cells, dtype=object)
    if len(cells) < 2:
        return cells, none
    cell_of = np.asarray(cell_of)
    mine = _union_per_group(shapely.buffer(buildings, reach), cell_of, len(cells))
    near = shapely.intersection(cells, mine)
    anchor = _anchors(shapely.intersection(buildings, block), buildings)
    n = len(cells)
    # a cell whose buildings the open land would part stays whole (a compound
    # with a lawn in the middle)
    whole = np.zeros(n, dtype=bool)
    for _ in range(3):
        far = shapely.difference(block, shapely.union_all(np.where(whole, cells, near)))
        pieces = _areas_of(far, min_area=min_area)
        if not len(pieces):
            return cells, none
        cut = shapely.make_valid(shapely.difference(cells, shapely.union_all(pieces)))
        parts, of = shapely.get_parts(cut, return_index=True)
        real = (shapely.get_type_id(parts) == 3) & (shapely.area(parts) > 1e-6)  # no dust
        parts, of = parts[real], of[real]
        n_parts = np.bincount(of, minlength=n)
        # a plot is its cell's one part, or the one part that holds its buildings;
        # the other parts are open land
        bi, pi = shapely.STRtree(parts).query(anchor, predicate="intersects")
        held = np.unique(pi[of[pi] == cell_of[bi]])
        n_held = np.bincount(of[held], minlength=n)
        parted = (n_parts == 0) | ((n_parts > 1) & (n_held != 1))
        if not parted.any():
            break
        whole |= parted
    else:
        return cells, none
    keep = n_parts[of] == 1
    keep[held] = True
    plots = np.empty(n, dtype=object)
    plots[of[keep]] = parts[keep]
    land = _areas_of(shapely.union_all(np.concatenate([pieces, parts[~keep]])))
    # a sector in several pieces (an orphan that met it at a corner) is a unit per piece
    out = [_areas_of(sec) for piece in land for sec in sectors(piece, plots)]
    secs = np.concatenate(out) if out else none
    # a scrap of a sector (under a quarter of ``min_area``) joins the piece it
    # shares most edge with: a unit of no use to any grid
    small = shapely.area(secs) < min_area / 4
    if small.any():
        final = dict(enumerate(np.concatenate([plots, secs[~small]])))
        _hand_out(final, list(secs[small]))
        n_plots = len(plots)
        plots = np.array([final[k] for k in range(n_plots)], dtype=object)
        secs_l = [_areas_of(final[k]) for k in range(n_plots, len(final))]
        # a scrap that met a plot at a corner too: the plot keeps its main part
        for k in np.flatnonzero(shapely.get_type_id(plots) != 3).tolist():
            parts = _areas_of(plots[k])
            main = int(np.argmax(shapely.area(parts)))
            plots[k] = parts[main]
            secs_l.append(np.delete(parts, main))
        secs = np.concatenate(secs_l) if secs_l else none
    allp = np.concatenate([plots, secs])
    if not (shapely.get_type_id(allp) == 3).all() or not _is_clean(allp, block):
        return cells, none
    return plots, secs


def _take_nearest(xy: np.ndarray, label: np.ndarray, miss: np.ndarray) -> None:
    """Every point of ``miss`` takes the label of the nearest point that has one, in place.

    A point has one when its label is >= 0 and it is not in ``miss``.
    """
    miss = np.flatnonzero(miss)
    have = np.flatnonzero(label >= 0)
    have = have[~np.isin(have, miss)]
    if len(miss) and len(have):
        # the few nearest by a k-d tree, then the nearest of them as the plain
        # distances order them (the first on a tie): a table of every pair costs
        # too much on a long outline
        k = min(8, len(have))
        _, near = cKDTree(xy[have]).query(xy[miss], k=k)
        near = near.reshape(len(miss), k)
        d = np.hypot(*(xy[miss][:, None, :] - xy[have][near]).transpose(2, 0, 1))
        best = np.lexsort((near, d), axis=-1)[:, 0]
        label[miss] = label[have[near[np.arange(len(miss)), best]]]


def sectors(block: shapely.Geometry, around: np.ndarray, *,
            min_front: float = 5.0) -> np.ndarray:
    """Split a block that holds no building into one sector per unit around it.

    Whole, such a block (a park, a square, a plaza between ring roads) goes to
    one grid, and a building cut off behind it can reach no other: the grids
    around it cannot share it.  Every segment of the block's outline is
    labelled with the unit of ``around`` it runs along; the Voronoi cells of points
    sampled on the segments, merged per label and clipped to the block, are the
    sectors, so each faces the unit it is named after and they meet along the
    block's middle.  A segment shared with a unit goes whole to one sector (the
    sectors keep the block's vertices, and meet the units around as the block
    did).  A unit faced along less than ``min_front`` metres gets no sector of
    its own.  Returns single polygons that tile the block (the block itself when
    it faces one unit only); the edges between sectors are straightened (0.5 m).

    Examples
    --------
    A square between a unit to the west and one to the east splits near the middle.

    >>> import shapely
    >>> block = shapely.box(0, 0, 100, 100)
    >>> around = np.array([shapely.box(-50, 0, 0, 100), shapely.box(100, 0, 150, 100)])
    >>> [int(round(p.area, -3)) for p in sectors(block, around)]
    [5000, 5000]
    """
    around = np.asarray(around, dtype=object)
    if not len(around) or block.is_empty:
        return np.array([block], dtype=object)
    outline = shapely.boundary(block)
    # about 200 points on the outline, 2-10 m apart
    spacing = min(max(outline.length / 200.0, 2.0), 10.0)
    # every segment of the outline goes whole to one sector: the sectors keep the
    # block's own vertices, so they meet the units around just as the block did
    # (a sector that cut a short shared segment in two would share two halves
    # that no longer match the neighbour's segment)
    ends = []
    for ring in shapely.get_rings(block):
        c = shapely.get_coordinates(ring)
        ends.append(np.hstack([c[:-1], c[1:]]))
    seg = np.vstack(ends)
    ring_of = np.concatenate([np.full(len(e), k) for k, e in enumerate(ends)])
    seg_len = np.hypot(seg[:, 2] - seg[:, 0], seg[:, 3] - seg[:, 1])
    ok = seg_len > 0
    seg, ring_of, seg_len = seg[ok], ring_of[ok], seg_len[ok]
    mid_xy = (seg[:, :2] + seg[:, 2:]) / 2
    # a segment faces the unit it runs along furthest (within 5 cm, over a metre
    # or half its length: not a corner where they meet); one on the area's
    # outline faces none
    lines = shapely.linestrings(seg.reshape(-1, 2, 2))
    hit_s, hit_u = shapely.STRtree(around).query(lines, predicate="dwithin", distance=0.05)
    along = shapely.length(shapely.intersection(lines[hit_s],
                                                shapely.buffer(around[hit_u], 0.05)))
    real = along >= np.minimum(1.0, 0.5 * seg_len[hit_s])
    hit_s, hit_u, along = hit_s[real], hit_u[real], along[real]
    label = np.full(len(seg), -1, dtype=np.int64)
    # the longest run per segment (the lowest unit on a tie)
    order = np.lexsort((hit_u, -along, hit_s))
    first = order[np.r_[True, hit_s[order][1:] != hit_s[order][:-1]]] if len(order) else order
    label[hit_s[first]] = hit_u[first]
    shared = label >= 0
    front = np.bincount(hit_u, weights=along, minlength=len(around))
    label[shared & (front[np.maximum(label, 0)] < min_front)] = -1
    if (label < 0).all():
        return np.array([block], dtype=object)
    # a unit faced along less than min_front gets no sector: its segments go
    # whole to the sector of the nearest segment that has one
    _take_nearest(mid_xy, label, shared & (label < 0))
    # points on each segment; the two nearest a vertex lie at the same distance
    # from it, so the cells of differently labelled segments meet at the vertex
    prev = np.empty(len(seg), dtype=np.int64)
    for k in np.unique(ring_of).tolist():
        idx = np.flatnonzero(ring_of == k)
        prev[idx] = np.roll(idx, 1)
    at_start = np.minimum(np.minimum(seg_len, seg_len[prev]) / 4, spacing / 2)
    nxt = np.empty(len(seg), dtype=np.int64)
    nxt[prev] = np.arange(len(seg))
    at_end = at_start[nxt]
    coords_l, label_l = [], []
    for k in range(len(seg)):
        inner = seg_len[k] - at_start[k] - at_end[k]
        n = max(int(np.ceil(inner / spacing)), 0) + 1
        t = (at_start[k] + np.linspace(0.0, max(inner, 0.0), n)) / seg_len[k]
        coords_l.append(seg[k, :2] + t[:, None] * (seg[k, 2:] - seg[k, :2]))
        label_l.append(np.full(n, label[k]))
    coords = np.vstack(coords_l)
    label = np.concatenate(label_l)
    _, first = np.unique(np.round(coords, 6), axis=0, return_index=True)
    first.sort()
    coords, label = coords[first], label[first]
    # on the area's outline (no unit there) a point takes the label of the
    # nearest labelled point: nothing to keep whole there
    _take_nearest(coords, label, label < 0)
    names, group = np.unique(label, return_inverse=True)
    if len(names) == 1:
        return np.array([block], dtype=object)
    cells = _voronoi_cells(coords, group, len(names), block)
    cells, gaps = _clean_coverage(cells, block)
    # one polygon per sector: its largest part; the other parts go to a neighbour
    parts, owner = shapely.get_parts(cells, return_index=True)
    ok = shapely.get_type_id(parts) == 3
    parts, owner = parts[ok], owner[ok]
    final: dict[int, shapely.Geometry] = {}
    orphans = list(gaps)
    for k in np.argsort(-shapely.area(parts), kind="stable").tolist():
        if int(owner[k]) in final:
            orphans.append(parts[k])
        else:
            final[int(owner[k])] = parts[k]
    _hand_out(final, orphans)
    out = np.array([final[k] for k in sorted(final)], dtype=object)
    # the cells of points a few metres apart meet in a zigzag of centimetres:
    # straighten the edges between sectors (the block's outline, shared with the
    # units around, stays exactly as it was)
    try:
        straight = shapely.coverage_simplify(out, 0.5, simplify_boundary=False)
    except (shapely.errors.GEOSException, TypeError):  # TypeError: a piece not a polygon
        return out
    straight = _polygonal(straight)
    if (shapely.get_type_id(straight) == 3).all() and _is_clean(straight, block):
        return straight
    return out


def _snapped(raw: np.ndarray, cache: dict | None) -> np.ndarray:
    """Every unit snapped to a millimetre grid (polygonal parts only).

    Snapping is the costliest step of making the units; a unit made before (the
    same geometry object: a whole block, or a cell ``cache`` keeps) keeps its
    snapped geometry, so that remaking the units snaps only the new ones.
    """
    if cache is None:
        return _polygonal(shapely.set_precision(raw, 1e-3))
    memo = cache.setdefault("_snapped", {})
    out = np.empty(len(raw), dtype=object)
    todo = []
    for i, geom in enumerate(raw.tolist()):
        hit = memo.get(id(geom))
        if hit is not None and hit[0] is geom:
            out[i] = hit[1]
        else:
            todo.append(i)
    if todo:
        fresh = _polygonal(shapely.set_precision(raw[todo], 1e-3))
        out[todo] = fresh
        for i, geom in zip(todo, fresh.tolist(), strict=True):
            memo[id(raw[i])] = (raw[i], geom)
    return out


def _one_piece_each(geoms: np.ndarray, block: np.ndarray, building_unit: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every unit without a building that is in several pieces cut into one unit each.

    Open land or a sector can come out of its cutting in pieces that do not
    touch; as one unit, a grid holding it would be in pieces too.  Each piece
    becomes a unit of the same block, right after the first, so units stay in
    the order of their blocks.
    """
    holds = np.zeros(len(geoms), dtype=bool)
    holds[building_unit[building_unit >= 0]] = True
    n_parts = shapely.get_num_geometries(geoms)
    cut = (n_parts > 1) & ~holds
    if not cut.any():
        return geoms, block, building_unit
    size = np.where(cut, n_parts, 1)
    start = np.concatenate([[0], np.cumsum(size)[:-1]])
    out = np.repeat(geoms, size)
    for i in np.flatnonzero(cut).tolist():
        parts = shapely.get_parts(geoms[i])
        out[start[i]:start[i] + len(parts)] = parts[np.argsort(-shapely.area(parts),
                                                               kind="stable")]
    building_unit = np.where(building_unit >= 0, start[np.maximum(building_unit, 0)], -1)
    return out, np.repeat(block, size), building_unit


#: the most lattice cells one block is cut into (grids by area)
MAX_LATTICE_CELLS = 2_000


def lattice_points(block: shapely.Geometry, buildings: np.ndarray,
                   spacing: float) -> np.ndarray:
    """Points of a square lattice ``spacing`` metres apart on a block's open land.

    The lattice is fixed to the coordinates (multiples of ``spacing``), so a
    block gets the same points whatever else changes; points nearer a building
    than a quarter of ``spacing`` are left out (the building is a cell of its
    own).  A block gets at most :data:`MAX_LATTICE_CELLS` points (the spacing
    grows for a huge one).  Used as extra seeds of a block's cells when grids are sized by area.

    Examples
    --------
    >>> import shapely
    >>> len(lattice_points(shapely.box(0, 0, 100, 100), np.array([]), 25.0))
    9
    """
    none = np.array([], dtype=object)
    if spacing <= 0 or block.is_empty:
        return none
    # a huge block at a small target would make a cell of every few metres: at
    # most MAX_LATTICE_CELLS cells a block, farther apart where needed
    spacing = max(spacing, float(np.sqrt(block.area / MAX_LATTICE_CELLS)))
    x0, y0, x1, y1 = block.bounds
    xs = np.arange(np.floor(x0 / spacing) + 1, np.ceil(x1 / spacing)) * spacing
    ys = np.arange(np.floor(y0 / spacing) + 1, np.ceil(y1 / spacing)) * spacing
    if not len(xs) or not len(ys):
        return none
    mx, my = np.meshgrid(xs, ys)
    gx, gy = mx.ravel(), my.ravel()
    inner = shapely.buffer(block, -spacing / 4)
    keep = shapely.contains_xy(inner, gx, gy)
    pts = shapely.points(gx[keep], gy[keep])
    if len(buildings) and len(pts):
        near = shapely.STRtree(np.asarray(buildings, dtype=object)).query(
            pts, predicate="dwithin", distance=spacing / 4)[0]
        pts = np.delete(pts, np.unique(near))
    return np.asarray(pts, dtype=object)


def _lattice_of(block: shapely.Geometry, buildings: np.ndarray, spacing: float,
                cache: dict | None, b: int) -> np.ndarray:
    """The :func:`lattice_points` of block ``b`` (kept in ``cache``)."""
    if spacing <= 0:
        return np.array([], dtype=object)
    key = ("lattice", b)
    if cache is not None and key in cache:
        return cache[key]
    pts = lattice_points(block, buildings, spacing)
    if cache is not None:
        cache[key] = pts
    return pts


def _enclosed_joined(block: shapely.Geometry, cell_of: np.ndarray,
                     cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A cell with no building that only one cell surrounds joins that cell.

    (A lattice cell in a building's courtyard: it can never be in another grid
    than the building's, and would make that grid heavier than the building's
    own cell.)  Returns ``cell_of`` and the cells, renumbered.
    """
    empty = np.setdiff1d(np.arange(len(cells)), cell_of)
    if not len(empty):
        return cell_of, cells
    outline = shapely.boundary(block)
    tree = shapely.STRtree(cells)
    into = np.arange(len(cells))
    for k in empty.tolist():
        if shapely.distance(cells[k], outline) < 0.01:
            continue
        near = tree.query(shapely.buffer(cells[k], 0.01), predicate="intersects")
        near = near[near != k]
        if len(near) == 1 and int(near[0]) not in empty:
            into[k] = int(near[0])
    if (into == np.arange(len(cells))).all():
        return cell_of, cells
    cells = cells.copy()
    for k in np.flatnonzero(into != np.arange(len(cells))).tolist():
        cells[into[k]] = shapely.union(cells[into[k]], cells[k])
    keep = into == np.arange(len(cells))
    new_index = np.cumsum(keep) - 1
    return new_index[cell_of], cells[keep]


def build_units(
    blocks: Blocks,
    buildings: np.ndarray,
    split: np.ndarray,
    *,
    cache: dict | None = None,
    opened: np.ndarray | None = None,
    spacing: np.ndarray | None = None,
    progress: bool = False,
) -> tuple[gpd.GeoDataFrame, np.ndarray]:
    """Units of the partition: whole blocks, and cells of the blocks in ``split``.

    A split block with buildings is cut between them (:func:`tessellate`); one
    with none is cut into :func:`sectors`, one per unit around it.  A split
    block also in ``opened`` has its cells cut further into plots and the open
    land between them (:func:`open_land`).  Where ``spacing`` (metres, per
    block) is above 0, the land of a split block is cut too: points of a square
    lattice that far apart on its land (:func:`lattice_points`) are cells of
    their own beside the buildings', so that no cell is much larger than a
    lattice square unless a building is (grids by area).  ``cache``
    keeps each block's cells between calls, so that splitting more blocks does
    not tessellate again the blocks split before (and an empty block keeps the
    sectors it got first).  ``progress`` draws a bar of the blocks on stderr.

    Returns the units (columns ``block``, ``community``, ``split``, geometry) and
    the unit index of every building.
    """
    split = np.asarray(split, dtype=bool)
    nb = len(blocks.geometry)
    unit_geom: list = []
    unit_block: list[int] = []
    building_unit = np.full(len(buildings), -1, dtype=np.int64)
    order = np.argsort(blocks.building_block, kind="stable")
    bounds = np.searchsorted(blocks.building_block[order], np.arange(nb + 1))
    from ._progress import bar

    empty: list[int] = []  # positions of the split blocks that hold no building
    for b in bar(range(nb), desc="units: blocks", enabled=progress):
        members = order[bounds[b] : bounds[b + 1]]
        step = 0.0 if spacing is None or not split[b] else float(spacing[b])
        extra = _lattice_of(blocks.geometry[b], buildings[members], step, cache, b)
        if split[b] and not len(members) and len(extra) < 2:
            empty.append(len(unit_geom))
        if not split[b] or len(members) + len(extra) < 2:
            building_unit[members] = len(unit_geom)
            unit_geom.append(blocks.geometry[b])
            unit_block.append(b)
            continue
        # a compound's buildings share one group, so the compound stays whole;
        # each lattice point is a group of its own
        comp = blocks.compound[members]
        groups = np.concatenate([np.where(comp >= 0, -(comp + 1), members),
                                 len(buildings) + np.arange(len(extra))])
        if cache is not None and b in cache:
            cell_of, cells = cache[b]
        else:
            cell_of, cells = tessellate(blocks.geometry[b],
                                        np.concatenate([buildings[members], extra]), groups)
            cell_of, cells = _enclosed_joined(blocks.geometry[b], cell_of[:len(members)],
                                              cells)
            if cache is not None:
                cache[b] = (cell_of, cells)
        if opened is not None and opened[b] and not len(extra):
            key = ("open", b)
            if cache is not None and key in cache:
                cells, land = cache[key]
            else:
                cells, land = open_land(blocks.geometry[b], cells, buildings[members], cell_of)
                if cache is not None:
                    cache[key] = (cells, land)
            cells = np.concatenate([cells, land])
        building_unit[members] = len(unit_geom) + cell_of
        unit_geom.extend(cells)
        unit_block.extend([b] * len(cells))
    if empty:
        # an empty block is split between the units around it, which are only
        # known once every block is made
        geoms_now = np.asarray(unit_geom, dtype=object)
        tree = shapely.STRtree(geoms_now)
        pieces: dict[int, np.ndarray] = {}
        for pos in empty:
            # made once: the units around change as more blocks are split, and a
            # block's sectors must stay as they were for their grids to carry over
            key = ("sectors", unit_block[pos])
            if cache is not None and key in cache:
                pieces[pos] = cache[key]
                continue
            near = tree.query(unit_geom[pos], predicate="intersects")
            pieces[pos] = sectors(unit_geom[pos], geoms_now[near[near != pos]])
            if cache is not None:
                cache[key] = pieces[pos]
        # every unit moves down by the sectors put in before it
        size = np.ones(len(unit_geom), dtype=np.int64)
        size[list(pieces)] = [len(ps) for ps in pieces.values()]
        start = np.concatenate([[0], np.cumsum(size)[:-1]])
        building_unit = np.where(building_unit >= 0,
                                 start[np.maximum(building_unit, 0)], -1)
        geom_new = np.repeat(np.asarray(unit_geom, dtype=object), size)
        for pos, ps in pieces.items():
            geom_new[start[pos]:start[pos] + len(ps)] = ps
        unit_geom = list(geom_new)
        unit_block = np.repeat(np.asarray(unit_block, dtype=np.int64), size).tolist()
    unit_block_arr = np.asarray(unit_block, dtype=np.int64)
    # snap every unit to a millimetre grid: hair-thin slivers that the tessellation
    # leaves along a street collapse, and shared edges get shared vertices
    raw = np.asarray(unit_geom, dtype=object)
    geoms = _snapped(raw, cache)
    # a unit thinner than the grid collapses: a sliver between two nearly parallel
    # street lines joins the neighbour it shares most edge with (dropping it would
    # leave a hairline gap that splits a grid); one holding a building is kept as
    # it was
    gone = shapely.is_empty(geoms) | (shapely.area(geoms) <= 0)
    holds = np.zeros(len(raw), dtype=bool)
    holds[building_unit[building_unit >= 0]] = True
    geoms[gone & holds] = raw[gone & holds]
    slivers = np.flatnonzero(gone & ~holds)
    if len(slivers):
        tree = shapely.STRtree(raw)
        for i in slivers.tolist():
            near = tree.query(shapely.buffer(raw[i], 1e-3))
            near = near[(near != i) & ~np.isin(near, slivers)]
            if not len(near):
                continue
            edge = shapely.length(shapely.intersection(
                shapely.boundary(raw[near]), shapely.buffer(raw[i], 1e-3)))
            to = int(near[int(np.argmax(edge))])
            raw[to] = shapely.union(raw[to], raw[i])
            merged = _polygonal(shapely.set_precision(np.array([raw[to]], dtype=object), 1e-3))
            geoms[to] = merged[0]
    keep = ~(gone & ~holds)
    if not keep.all():
        new_index = np.cumsum(keep) - 1
        building_unit = np.where(building_unit >= 0, new_index[building_unit], -1)
        geoms, unit_block_arr = geoms[keep], unit_block_arr[keep]
    geoms, unit_block_arr, building_unit = _one_piece_each(geoms, unit_block_arr,
                                                           building_unit)
    units = gpd.GeoDataFrame(
        {
            "block": unit_block_arr,
            "community": blocks.community[unit_block_arr],
            "split": split[unit_block_arr],
        },
        geometry=geoms,
    )
    return units, building_unit


def _polygonal(geoms: np.ndarray) -> np.ndarray:
    """The largest polygon of each geometry (snapping can leave stray bits)."""
    out = geoms.copy()
    for i in np.flatnonzero(shapely.get_type_id(geoms) != 3).tolist():
        parts = shapely.get_parts(geoms[i])
        parts = parts[shapely.get_type_id(parts) == 3]
        if len(parts):
            out[i] = parts[int(np.argmax(shapely.area(parts)))] if len(parts) == 1 or \
                shapely.area(parts).max() > 0.999 * shapely.area(parts).sum() else \
                shapely.union_all(parts)
    return out


def block_table(blocks: Blocks, values: pd.DataFrame) -> pd.DataFrame:
    """Per block: the sums of per-building values and the number of buildings."""
    df = values.groupby(blocks.building_block).sum()
    df = df.reindex(range(len(blocks.geometry)), fill_value=0)
    df["n_buildings"] = np.bincount(blocks.building_block, minlength=len(blocks.geometry))
    return df


@dataclass(frozen=True)
class Units:
    """Stages 4 and 5's output: the units partitioned, and their graph.

    ``table`` has a row per unit (columns ``block``, ``community``, ``split``);
    ``building_unit`` is the unit of every building; ``split`` and ``opened``
    say which blocks were cut into cells and which had their land opened;
    ``adjacency`` and ``graph`` are what :func:`gridmap.adjacency.unit_graph`
    made of them.
    """

    table: gpd.GeoDataFrame
    building_unit: np.ndarray
    split: np.ndarray
    opened: np.ndarray
    adjacency: Adjacency
    graph: UnitGraph

    @property
    def community(self) -> np.ndarray:
        """The community of every unit."""
        return self.table["community"].to_numpy()

    @property
    def block(self) -> np.ndarray:
        """The block of every unit."""
        return self.table["block"].to_numpy()


@dataclass(frozen=True)
class UnitMaker:
    """Cuts the units of a plan out of its blocks and builds their graph.

    The blocks, the buildings (their geometry and balance weight) and the
    streets are fixed; :meth:`make` cuts the blocks of ``split`` into cells (and
    opens the land of those in ``opened``), as many times as the balancing asks,
    each block's cells kept in a ``cache`` between calls.
    """

    blocks: Blocks
    building_geoms: np.ndarray
    weight: np.ndarray
    streets: np.ndarray
    street_classes: np.ndarray
    cut_cost: Mapping[str, float] | None
    barriers: frozenset[str]
    #: every unit weighs its own area in m² (``by="area"``), not its buildings' counts
    by_area: bool = False
    #: per block, the spacing (m) of the lattice that cuts a split block's land
    #: into cells too (:func:`lattice_points`; by area), or None
    spacing: np.ndarray | None = None

    @property
    def n_buildings(self) -> np.ndarray:
        """How many buildings every block holds."""
        return np.bincount(self.blocks.building_block, minlength=len(self.blocks.geometry))

    @property
    def special(self) -> np.ndarray:
        """The carved polygon (road or unit grid) every block is, or -1."""
        if self.blocks.special is not None:
            return self.blocks.special
        return np.full(len(self.blocks.geometry), -1, dtype=np.int64)

    def make(self, split: np.ndarray, opened: np.ndarray | None = None, *,
             cache: dict[Any, Any] | None = None, progress: bool = False,
             previous: Units | None = None) -> Units:
        """The units with the blocks of ``split`` cut (those of ``opened`` opened).

        And their graph; with ``previous`` (units made before, with the same
        cache), only the edges of the units that differ from those are worked
        out again.
        """
        table, building_unit = self.cut(split, opened, cache=cache, progress=progress)
        return self.connect(table, building_unit, split, opened, previous=previous)

    def cut(self, split: np.ndarray, opened: np.ndarray | None = None, *,
            cache: dict[Any, Any] | None = None, progress: bool = False
            ) -> tuple[gpd.GeoDataFrame, np.ndarray]:
        """Stage 4: the units (:func:`build_units`) and the unit of every building."""
        return build_units(self.blocks, self.building_geoms, split, cache=cache,
                           opened=opened, spacing=self.spacing, progress=progress)

    def connect(self, table: gpd.GeoDataFrame, building_unit: np.ndarray,
                split: np.ndarray, opened: np.ndarray | None = None, *,
                previous: Units | None = None) -> Units:
        """Stage 5: the units with their adjacency and graph.

        With ``previous``, the edges between units the same as theirs are
        carried over (:func:`carried_over`).
        """
        kept = None if previous is None else \
            (previous.adjacency, carried_over(previous.table, table))
        adj, g = self.graph(table, building_unit, kept=kept)
        none = np.zeros(len(self.blocks.geometry), dtype=bool)
        return Units(table, building_unit, np.asarray(split, dtype=bool),
                     none if opened is None else np.asarray(opened, dtype=bool), adj, g)

    def graph(self, table: gpd.GeoDataFrame, building_unit: np.ndarray, *,
              kept: tuple[Adjacency, np.ndarray] | None = None
              ) -> tuple[Adjacency, UnitGraph]:
        """The adjacency and graph of units (stage 5)."""
        return unit_graph(table, building_unit, self.weight, streets=self.streets,
                          street_classes=self.street_classes, cut_cost=self.cut_cost,
                          barriers=self.barriers, kept=kept,
                          unit_weight=shapely.area(np.asarray(table.geometry.values))
                          if self.by_area else None)


def carried_over(old: gpd.GeoDataFrame, new: gpd.GeoDataFrame) -> np.ndarray:
    """For each unit of ``old``, its position in ``new`` if ``new`` has it unchanged.

    A block's units are carried over where the block has as many units in both,
    in the same order and with exactly the same geometry; otherwise each of its
    old units gets -1.
    """
    ob, nb = old["block"].to_numpy(), new["block"].to_numpy()
    oo, no = np.argsort(ob, kind="stable"), np.argsort(nb, kind="stable")
    n_blocks = int(max(ob.max(initial=-1), nb.max(initial=-1))) + 1
    oc, nc = np.bincount(ob, minlength=n_blocks), np.bincount(nb, minlength=n_blocks)
    where = np.full(len(ob), -1, dtype=np.int64)
    # the blocks with as many units in both: compare their units one by one
    same_count = (oc == nc)[ob[oo]]
    ostart = np.concatenate([[0], np.cumsum(oc)[:-1]])
    nstart = np.concatenate([[0], np.cumsum(nc)[:-1]])
    rank = np.arange(len(oo)) - ostart[ob[oo]]
    cand_old = oo[same_count]
    cand_new = no[nstart[ob[cand_old]] + rank[same_count]]
    equal = shapely.equals_exact(old.geometry.values[cand_old],
                                 new.geometry.values[cand_new], tolerance=0.0)
    ok = np.ones(n_blocks, dtype=bool)
    ok[ob[cand_old][~equal]] = False
    ok[oc != nc] = False
    use = ok[ob[cand_old]]
    where[cand_old[use]] = cand_new[use]
    return where
