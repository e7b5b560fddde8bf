"""Road-type (道路型) and unit-type (单位型) grids: the polygons carved out first.

A **unit grid** is a school, hospital, market, construction site, venue or
government service hall large enough to be managed as a grid of its own: its
site polygon (from a layer of sites, or OSM landuse/amenity polygons) above a
size or headcount.  A **road grid** is the corridor of a main street (the
carriageway and its frontage to a depth) from one intersection to the next,
joined into stretches up to a length.  Both are carved out of the area before
the street blocks are formed, so that community grids, road grids and unit
grids together tile the area with no gap and no overlap.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ._errors import LayerValidationError
from .units import assign_by_overlap, planar_faces

if TYPE_CHECKING:
    from .layers import StreetLines
    from .options import SpecialGrids

__all__ = [
    "COMMERCIAL_NAME_MARKERS",
    "DEFAULT_ROAD_CLASSES",
    "DEFAULT_UNIT_KINDS",
    "Carve",
    "carve_special_grids",
    "grids_fit",
    "leave_balanceable",
    "road_stretches",
    "unit_sites",
]

#: site kinds that make unit grids (OSM amenity / landuse / leisure / office /
#: tourism values): schools and places for minors (未成年人活动场所), hospitals,
#: markets, building sites, venues, government, and museums and cultural venues
#: (文博场馆)
DEFAULT_UNIT_KINDS: frozenset[str] = frozenset({
    "school", "university", "college", "kindergarten", "childcare", "youth_centre",
    "hospital", "clinic", "marketplace", "construction", "stadium", "sports_centre",
    "government", "townhall", "courthouse", "police", "fire_station", "prison",
    "museum", "gallery", "arts_centre", "library", "community_centre", "theatre",
    "exhibition_centre",
})

#: street classes whose corridors make road grids by default
DEFAULT_ROAD_CLASSES: tuple[str, ...] = ("primary", "secondary")

#: a street whose name holds one of these is a commercial street: it gets road
#: grids too (pedestrian shopping streets are often not primary or secondary)
COMMERCIAL_NAME_MARKERS: tuple[str, ...] = ("商业街", "步行街", "商业", "美食街",
                                            "Commercial", "Shopping")

#: the columns a site's kind is read from, first match first (OSM's tags among
#: them: ``community_centre`` holds ``youth_centre`` for a youth centre)
_KIND_COLUMNS = ("kind", "kind_detail", "community_centre", "amenity", "tourism", "landuse",
                 "leisure", "office", "type")


@dataclass(frozen=True)
class Carve:
    """Polygons carved out of the area, each a grid of its own.

    ``geometry`` are disjoint polygons in the working CRS; ``kind`` is
    ``"unit"`` or ``"road"``; ``label`` says what it is (the site's kind and
    name, or the road's name).
    """

    geometry: np.ndarray
    kind: np.ndarray
    label: np.ndarray

    def __len__(self) -> int:
        return len(self.geometry)

    @staticmethod
    def empty() -> Carve:
        """No carved grid."""
        return Carve(np.array([], dtype=object), np.array([], dtype=object),
                     np.array([], dtype=object))


def unit_sites(
    sites: gpd.GeoDataFrame | None,
    area: shapely.Geometry,
    *,
    kinds: Iterable[str] = DEFAULT_UNIT_KINDS,
    kind_column: str | None = None,
    min_area: float = 5000.0,
    headcount_column: str | None = None,
    min_headcount: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Site polygons that are unit grids, and their labels.

    A site is kept when its kind is in ``kinds`` and its area (m², within the
    area) is at least ``min_area`` or its headcount at least ``min_headcount``
    (when ``headcount_column`` is given).  Overlapping sites are merged.
    """
    if sites is None or not len(sites):
        return np.array([], dtype=object), np.array([], dtype=object)
    kinds = {str(k) for k in kinds}
    cols = [kind_column] if kind_column else [c for c in _KIND_COLUMNS if c in sites.columns]
    is_kind = np.zeros(len(sites), dtype=bool)
    label_kind = np.full(len(sites), "", dtype=object)
    for c in cols:
        v = sites[c].astype(str).to_numpy()
        hit = np.isin(v, list(kinds)) & ~is_kind
        label_kind[hit] = v[hit]
        is_kind |= hit
    geoms = shapely.intersection(np.asarray(sites.geometry.values), area)
    big = shapely.area(geoms) >= min_area
    if headcount_column and headcount_column in sites.columns:
        head = np.nan_to_num(sites[headcount_column].to_numpy(dtype=float))
        big |= head >= min_headcount
    keep = is_kind & big & ~shapely.is_empty(geoms)
    if not keep.any():
        return np.array([], dtype=object), np.array([], dtype=object)
    name = (sites["name"].fillna("").astype(str).to_numpy() if "name" in sites.columns
            else np.full(len(sites), "", dtype=object))
    polys = geoms[keep]
    labels = np.array([f"{k} {n}".strip() for k, n in zip(label_kind[keep], name[keep],
                                                          strict=True)], dtype=object)
    # overlapping sites are one unit grid
    merged = shapely.get_parts(shapely.union_all(polys))
    merged = merged[(shapely.get_type_id(merged) == 3) & (shapely.area(merged) > 1.0)]
    tree = shapely.STRtree(polys)
    out_labels = []
    for m in merged:
        hits = tree.query(shapely.point_on_surface(m), predicate="within")
        hits = hits if len(hits) else tree.query(m, predicate="intersects")
        out_labels.append("; ".join(sorted({labels[h] for h in hits.tolist()})))
    return np.asarray(merged, dtype=object), np.asarray(out_labels, dtype=object)


def road_stretches(
    lines: np.ndarray,
    classes: np.ndarray,
    names: np.ndarray,
    area: shapely.Geometry,
    *,
    road_classes: Iterable[str] = DEFAULT_ROAD_CLASSES,
    road_names: Iterable[str] = (),
    depth: float = 15.0,
    max_length: float = 800.0,
    min_length: float = 100.0,
    exclude: shapely.Geometry | None = None,
    commercial: bool = True,
    load_points: np.ndarray | None = None,
    load: np.ndarray | None = None,
    max_load: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Corridors of the chosen streets cut at intersections and joined into stretches.

    The chosen streets are those of ``road_classes``, those named in
    ``road_names`` and, with ``commercial``, those whose name marks them as
    commercial (:data:`COMMERCIAL_NAME_MARKERS`: 商业街, 步行街...).  With
    ``max_load``, a stretch also stops growing before the ``load`` of the
    ``load_points`` (buildings' points, e.g. their workload) in it passes it.

    The corridor is every chosen street buffered by ``depth`` metres each side
    (carriageway and frontage, flat ends).  The other streets cut it at the
    intersections; consecutive pieces along the same road are joined into
    stretches of at most ``max_length`` metres of centre-line.  A stretch of
    less than ``min_length`` metres of centre-line, or of less area than
    ``min_length × depth`` (a sliver thinner than half the corridor), joins the
    stretch it shares most edge with, one of the same road first, or, touching
    none, is no road grid (its land stays the community's).  Returns the
    stretch polygons (disjoint, inside the area, outside ``exclude``) and
    their labels.
    """
    road_classes = {str(c) for c in road_classes}
    road_names = {str(n) for n in road_names}
    classes = np.asarray(classes, dtype=object).astype(str)
    names = np.asarray(names, dtype=object)
    chosen = np.isin(classes, list(road_classes))
    if road_names:
        chosen |= np.isin(names.astype(str), list(road_names))
    if commercial:
        text = np.array(["" if pd.isna(n) else str(n) for n in names], dtype=object)
        chosen |= np.array([any(m in t for m in COMMERCIAL_NAME_MARKERS) for t in text],
                           dtype=bool)
    if not chosen.any():
        return np.array([], dtype=object), np.array([], dtype=object)
    roads = np.asarray(lines, dtype=object)[chosen]
    corridor = shapely.union_all(shapely.buffer(roads, depth, cap_style="flat"))
    corridor = shapely.intersection(corridor, area)
    if exclude is not None and not exclude.is_empty:
        corridor = shapely.difference(corridor, exclude)
    if corridor.is_empty:
        return np.array([], dtype=object), np.array([], dtype=object)
    # cut at the intersections: the other streets, crossing the corridor
    cross = np.asarray(lines, dtype=object)[~chosen]
    cutters = np.concatenate([cross, [shapely.boundary(corridor)]]) if len(cross) \
        else np.array([shapely.boundary(corridor)], dtype=object)
    pieces = planar_faces(shapely.intersection(cutters, shapely.buffer(corridor, 0.01)))
    inside = shapely.within(shapely.point_on_surface(pieces), corridor)
    pieces = pieces[inside & (shapely.area(pieces) > 1.0)]
    if not len(pieces):
        return np.array([], dtype=object), np.array([], dtype=object)
    # each piece: its length of chosen centre-line and the road it lies on most
    # (one vectorised pass over all piece-road pairs)
    pi, ri = shapely.STRtree(roads).query(pieces, predicate="intersects")
    inter = shapely.length(shapely.intersection(roads[ri], pieces[pi]))
    seg_len = np.bincount(pi, weights=inter, minlength=len(pieces))
    piece_name = np.full(len(pieces), "", dtype=object)
    if len(pi):
        top = np.lexsort((-inter, pi))  # per piece, the longest first
        first = top[np.r_[True, pi[top][1:] != pi[top][:-1]]]
        nm = names[chosen][ri[first]]
        piece_name[pi[first]] = ["" if pd.isna(v) else str(v) for v in nm]
    piece_load = np.zeros(len(pieces))
    if max_load is not None and load_points is not None and load is not None:
        pi, bi = shapely.STRtree(pieces).query(np.asarray(load_points), predicate="within")
        np.add.at(piece_load, bi, np.asarray(load, dtype=float)[pi])
    limit_load = np.inf if max_load is None else float(max_load)
    # join neighbouring pieces of the same road into stretches, greedily from the
    # north-west end, up to max_length of centre-line
    ptree = shapely.STRtree(pieces)
    a, b = ptree.query(pieces, predicate="touches")
    shared = shapely.length(shapely.intersection(shapely.boundary(pieces[a]),
                                                 shapely.boundary(pieces[b])))
    nbrs: dict[int, list[int]] = {i: [] for i in range(len(pieces))}
    for x, y, L in zip(a.tolist(), b.tolist(), shared.tolist(), strict=True):
        # a piece with no centre-line in it (a corner cut off by a crossing
        # street) goes with a neighbour of any name
        same = piece_name[x] == piece_name[y] or seg_len[x] == 0 or seg_len[y] == 0
        if x != y and L > 1.0 and same:
            nbrs[x].append(y)
    c = shapely.get_coordinates(shapely.point_on_surface(pieces))
    order = np.lexsort((c[:, 0], -c[:, 1]))
    group = np.full(len(pieces), -1, dtype=np.int64)
    n_groups = 0
    # start from pieces on a road, so that corners join a stretch, not one another
    order = np.concatenate([order[seg_len[order] > 0], order[seg_len[order] == 0]])
    for start in order.tolist():
        if group[start] >= 0:
            continue
        group[start] = n_groups
        total = seg_len[start]
        carried = piece_load[start]
        frontier = [start]
        while frontier:
            cur = frontier.pop(0)
            for nb in sorted(nbrs[cur], key=lambda j: (c[j, 1] * -1, c[j, 0])):
                if group[nb] >= 0 or total + seg_len[nb] > max_length \
                        or carried + piece_load[nb] > limit_load:
                    continue
                group[nb] = n_groups
                total += seg_len[nb]
                carried += piece_load[nb]
                frontier.append(nb)
        n_groups += 1
    # a stretch with no centre-line in it (corners and strips cut off by paths)
    # joins the stretch it shares most edge with, else the nearest one
    glen = np.bincount(group, weights=seg_len, minlength=n_groups)
    if (glen > 0).any():
        real = np.flatnonzero(glen > 0)
        for k in np.flatnonzero(glen == 0).tolist():
            members = np.flatnonzero(group == k)
            blob = shapely.union_all(pieces[members])
            cand = np.flatnonzero(np.isin(group, real))
            edge = shapely.length(shapely.intersection(shapely.boundary(pieces[cand]),
                                                       shapely.buffer(blob, 0.01)))
            if edge.max(initial=0) > 0:
                to = group[cand[int(np.argmax(edge))]]
            else:
                to = group[cand[int(np.argmin(shapely.distance(pieces[cand], blob)))]]
            group[members] = to
    polys, labels = [], []
    for k in range(n_groups):
        members = np.flatnonzero(group == k)
        merged = shapely.union_all(pieces[members], grid_size=1e-3)
        named = [piece_name[m] for m in members.tolist() if piece_name[m]]
        for part in shapely.get_parts(merged):
            if shapely.get_type_id(part) == 3 and part.area > 1.0:
                polys.append(part)
                labels.append(named[0] if named else "road")
    return _join_short(np.asarray(polys, dtype=object), np.asarray(labels, dtype=object),
                       roads, min_length=min_length, min_area=min_length * depth)


def _join_short(polys: np.ndarray, labels: np.ndarray, roads: np.ndarray, *,
                min_length: float, min_area: float) -> tuple[np.ndarray, np.ndarray]:
    """Stretches too short or too thin joined to the stretch they share most edge with.

    The smallest first, into a stretch of the same road where one touches it; one
    that touches no other is dropped (no road grid: its land stays the community's).
    """
    polys_: list[Any] = list(polys)
    labels_: list[Any] = list(labels)

    def length(p: shapely.Geometry) -> float:
        near = tree.query(p, predicate="intersects")
        return float(shapely.length(shapely.intersection(roads[near], p)).sum())

    tree = shapely.STRtree(roads)
    # each stretch's centre-line length and area, measured once; only a stretch
    # that takes a short one is measured again
    size = [(length(p), p.area) for p in polys_]
    while polys_:
        short = [i for i, (run, a) in enumerate(size) if run < min_length or a < min_area]
        if not short:
            break
        i = min(short, key=lambda k: (size[k][1], k))
        edge = shapely.length(shapely.intersection(
            shapely.boundary(np.asarray(polys_, dtype=object)),
            shapely.buffer(polys_[i], 0.01)))
        edge[i] = 0.0
        same = np.array([labels_[k] == labels_[i] for k in range(len(polys_))])
        best = int(np.argmax(edge + same * (edge > 1.0) * edge.sum()))
        if edge[best] > 1.0:
            polys_[best] = shapely.union_all([polys_[best], polys_[i]], grid_size=1e-3)
            size[best] = (length(polys_[best]), polys_[best].area)
        del polys_[i], labels_[i], size[i]
    return np.asarray(polys_, dtype=object), np.asarray(labels_, dtype=object)


def grids_fit(weight: float, target: float, tolerance: float) -> bool:
    """Whether ``weight`` makes a whole number of grids within the band of ``target``.

    Or is under half a grid (land that light joins a grid round it, no grid of
    its own).

    Examples
    --------
    >>> grids_fit(418, 300, 0.1), grids_fit(600, 300, 0.1), grids_fit(100, 300, 0.1)
    (False, True, True)
    """
    if weight < 0.5 * target:
        return True
    lo = np.ceil(weight / ((1 + tolerance) * target) - 1e-9)
    hi = np.floor(weight / ((1 - tolerance) * target) + 1e-9)
    return bool(max(lo, 1) <= hi)


def _land_parts(stretches: np.ndarray, land: shapely.Geometry,
                communities: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The pieces of community land the stretches leave, and the community of each."""
    rest = shapely.difference(land, shapely.union_all(stretches)) if len(stretches) \
        else land
    if communities is None:
        pieces = shapely.get_parts(rest)
        comm = np.zeros(len(pieces), dtype=np.int64)
    else:
        pieces, comm = shapely.get_parts(shapely.intersection(communities, rest),
                                         return_index=True)
    keep = (shapely.get_type_id(pieces) == 3) & (shapely.area(pieces) > 1.0)
    return pieces[keep], comm[keep]


def _loads(parts: np.ndarray, stretches: np.ndarray, sites: np.ndarray,
           buildings: np.ndarray, load: np.ndarray,
           heaviest: float) -> tuple[np.ndarray, np.ndarray]:
    """The load of the buildings of each part of land and of each stretch.

    A building is in the part, stretch or site it overlaps most (as the blocks
    take it), else in the nearest; those heavier than ``heaviest`` are left out
    (each is a grid of its own).
    """
    light = np.flatnonzero(load <= heaviest)
    where, _ = assign_by_overlap(buildings[light], np.concatenate([parts, stretches, sites]))
    w = np.bincount(where[where >= 0], weights=load[light][where >= 0],
                    minlength=len(parts) + len(stretches) + len(sites))
    return w[:len(parts)], w[len(parts):len(parts) + len(stretches)]


def leave_balanceable(stretches: np.ndarray, labels: np.ndarray, land: shapely.Geometry, *,
                      buildings: np.ndarray, load: np.ndarray, target: float,
                      tolerance: float, communities: np.ndarray | None = None,
                      sites: np.ndarray | None = None,
                      notes: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The road stretches, less those that cut off land no whole number of grids holds.

    Corridors cut a community into pieces, and each piece is divided into grids
    on its own: a piece of 418 households at 300 ±10 % makes one grid too heavy
    or two too light (its buildings heavier than a grid left out: each is a
    grid of its own, and its plot, 10 m round it, walls off the land behind it).
    Such a piece (:func:`grids_fit` false), or light land a heavy building walls
    in, is joined to the land of its community across one of the stretches
    round it, the smallest that makes the joined land (and the stretch's own
    buildings) fit; that stretch is left to the community grids (its street runs
    through them, as a minor street does).  ``land`` is the area less the unit
    grids; ``buildings`` and ``load`` the buildings' footprints and balance
    weights; ``communities`` the community polygons, if given; ``sites`` the
    unit grids (their buildings are theirs).  Returns the stretches kept and their labels;
    ``notes`` says which were left.
    """
    stretches = np.asarray(stretches, dtype=object)
    labels = np.asarray(labels, dtype=object)
    if not len(stretches) or buildings is None or not len(buildings):
        return stretches, labels
    sites = np.array([], dtype=object) if sites is None else np.asarray(sites, dtype=object)
    buildings = np.asarray(buildings, dtype=object)
    load = np.asarray(load, dtype=float)
    heavy = buildings[load > (1 + tolerance) * target]
    walls = None
    if len(heavy):
        walls = shapely.buffer(shapely.union_all(shapely.buffer(heavy, 10.0)), 0.5)
        land = shapely.difference(land, walls)
    parts, comm = _land_parts(stretches, land, communities)
    weight, on_road = _loads(parts, stretches, sites, buildings, load,
                             (1 + tolerance) * target)
    walled = np.zeros(len(parts), dtype=bool) if walls is None else \
        shapely.intersects(parts, walls)
    road_tree = shapely.STRtree(stretches)
    kept = np.ones(len(stretches), dtype=bool)
    left: list[str] = []

    def fits(w: float, wall: bool) -> bool:
        # land too light for a grid joins the road grid round it, but not land a
        # heavy building walls in: that would join the building's grid, or be one
        return grids_fit(w, target, tolerance) and not (
            wall and 0 < w < (1 - tolerance) * target)

    while True:
        bad = [k for k in np.argsort(-weight, kind="stable").tolist()
               if not fits(float(weight[k]), bool(walled[k]))]
        best = None
        part_tree = shapely.STRtree(parts)
        for k in bad:
            near = road_tree.query(shapely.buffer(parts[k], 0.5), predicate="intersects")
            for r in sorted(near[kept[near]].tolist(),
                            key=lambda r: (shapely.area(stretches[r]), r)):
                # the pieces of its community the stretch touches, joined through it
                joined = part_tree.query(shapely.buffer(stretches[r], 0.5),
                                         predicate="intersects")
                joined = joined[comm[joined] == comm[k]]
                w = float(weight[joined].sum() + on_road[r])
                if fits(w, bool(walled[joined].any())):
                    best = (k, r, joined, w)
                    break
            if best is not None:
                break
        if best is None:
            break
        k, r, joined, w = best
        left.append(f"{labels[r]} (cut off {float(weight[k]):g}; joined {w:g})")
        kept[r] = False
        merged = shapely.union_all([*parts[joined], stretches[r]])
        rest = np.setdiff1d(np.arange(len(parts)), joined)
        parts = np.append(parts[rest], np.array([merged], dtype=object))
        comm = np.append(comm[rest], comm[k])
        weight = np.append(weight[rest], w)
        walled = np.append(walled[rest], bool(walled[joined].any()))
    if left and notes is not None:
        notes.append(f"{len(left)} road stretch(es) left to the community grids: carved, "
                     "each cut off land that makes no whole number of grids within the "
                     f"band ({target:g} ±{tolerance:.0%}): " + "; ".join(left) + ".")
    return stretches[kept], labels[kept]


def carve_special_grids(sites: gpd.GeoDataFrame | None, lines: StreetLines,
                        area: shapely.Geometry, special: SpecialGrids, *,
                        given_units: bool, buildings: np.ndarray | None,
                        load: np.ndarray, notes: list[str],
                        band: tuple[float, float] | None = None,
                        communities: np.ndarray | None = None) -> Carve:
    """Stage 3: the unit sites and road stretches carved out of the area.

    In: the sites layer, the street lines over ground and the area (working
    CRS), the :class:`~gridmap.options.SpecialGrids` options, and every
    building's footprint and balance weight (``load``: for ``road_max_load``).
    With ``band`` (target, tolerance), the stretches that would cut off land no
    whole number of grids holds are left to the community grids
    (:func:`leave_balanceable`, within the ``communities`` polygons if given).
    Out: the :class:`Carve` of every road and unit grid.
    """
    empty = np.array([], dtype=object)
    if given_units and (sites is not None or special.road_grids):
        notes.append("road and unit grids need buildings and streets; with units given "
                     "directly none were made.")
        return Carve.empty()
    u_geom, u_label = unit_sites(
        sites, area, kinds=special.unit_kinds, kind_column=special.unit_kind_column,
        min_area=special.unit_min_area, headcount_column=special.headcount_column,
        min_headcount=special.unit_min_headcount)
    r_geom, r_label = empty, empty
    if special.road_grids:
        if not len(lines):
            raise LayerValidationError("road_grids=True needs streets with a class column")
        ground = lines.overground
        exclude = shapely.union_all(u_geom) if len(u_geom) else None
        r_geom, r_label = road_stretches(
            lines.geometry[ground], lines.classes[ground], lines.names[ground], area,
            road_classes=special.road_classes, road_names=special.road_names,
            depth=special.road_depth, max_length=special.road_max_length,
            min_length=special.road_min_length, exclude=exclude,
            load_points=None if buildings is None else shapely.point_on_surface(buildings),
            load=load, max_load=special.road_max_load)
        if band is not None and len(r_geom) and buildings is not None:
            land = shapely.difference(area, exclude) if exclude is not None else area
            r_geom, r_label = leave_balanceable(
                r_geom, r_label, land, buildings=buildings, load=load, target=band[0],
                tolerance=band[1], communities=communities, sites=u_geom, notes=notes)
        if not len(r_geom):
            notes.append(f"no street of the classes {sorted(special.road_classes)} or "
                         f"names {sorted(special.road_names)}: no road grids.")
    if sites is not None and not len(u_geom):
        notes.append(f"no site of the kinds asked for is at least "
                     f"{special.unit_min_area:g} m²: no unit grids.")
    geom = np.concatenate([u_geom, r_geom]) if len(u_geom) or len(r_geom) else empty
    kind = np.array(["unit"] * len(u_geom) + ["road"] * len(r_geom), dtype=object)
    label = np.concatenate([u_label, r_label]) if len(geom) else empty
    return Carve(geom, kind, label)
