"""Stage 7, assemble: the grid of every unit → grid polygons with codes and ids.

In: the balanced assignment and its units (stage 6), the communities, the counts
and the area, in the working CRS.  Out: :class:`Assembled`: the grids dissolved
from their units (every grid one polygon; units meeting the rest of their grid
only at a corner moved to the grid they share an edge with), sealed so that
neighbours share their edges vertex for vertex, counted, coded (15 digits:
division, sub-district, community, grid sequence west→east, north→south) and
numbered; a re-partition's grids keep their ids and codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ._validate import repair_polygons
from .codes import grid_code, number_in_order
from .partition import find_islands
from .units import coverage_union, planar_faces

if TYPE_CHECKING:
    from .balance import Balanced
    from .communities import Communities
    from .partition import UnitGraph
    from .population import Counts
    from .special import Carve

__all__ = ["Assembled", "assemble", "dissolve_units", "islands", "to_output"]


def _dissolve_one(members: np.ndarray, grid_size: float = 1e-3) -> shapely.Geometry:
    """Union of unit polygons on a millimetre grid, seams sealed."""
    # units that meet vertex for vertex (most grids: the cells of one block, whole
    # blocks sharing a street) are a coverage, whose union costs a third of an
    # overlay's; a grid whose units do not, or with a hole, takes the overlay
    merged = coverage_union(members)
    if merged is not None:
        return merged
    # a millimetre precision grid closes the hair-thin seams that floating point
    # leaves between a block and the cells of its split neighbour
    try:
        merged = shapely.union_all(members, grid_size=grid_size)
    except shapely.errors.GEOSException:
        merged = shapely.union_all(members)
    if shapely.get_num_geometries(merged) > 1:
        # units of two split blocks meet along a street with vertices a hair
        # apart: a closing by a centimetre (mitred, so corners stay sharp) seals
        # such seams and nothing wider
        closed = shapely.buffer(
            shapely.buffer(merged, 0.01, join_style="mitre"), -0.01, join_style="mitre"
        )
        if shapely.get_num_geometries(closed) < shapely.get_num_geometries(merged):
            merged = closed
    return merged


def dissolve_units(
    geoms: np.ndarray, labels: np.ndarray, n: int, *, grid_size: float = 1e-3
) -> np.ndarray:
    """Union of the unit polygons of each label 0..n-1 (metric CRS)."""
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(n + 1))
    out = np.empty(n, dtype=object)
    for gid in range(n):
        out[gid] = _dissolve_one(geoms[order[bounds[gid] : bounds[gid + 1]]], grid_size)
    return out


def islands(g: UnitGraph, ucomm: np.ndarray, labels: np.ndarray, new_id: np.ndarray,
             community_ids: list[Any]) -> list[dict[str, Any]]:
    """Every part of a community that nothing connects to the rest, and its fate."""
    report = []
    for c in np.unique(ucomm).tolist():
        # road and unit grids connect the parts of a community like any grid
        nodes = np.flatnonzero(ucomm == c)
        for part in find_islands(g, nodes):
            gids = np.unique(new_id[labels[part]])
            in_part = np.zeros(len(labels), dtype=bool)
            in_part[part] = True
            joined = bool((np.isin(new_id[labels], gids) & ~in_part).any())
            report.append({
                "community_id": community_ids[c] if c < len(community_ids) else c,
                "n_units": len(part),
                "weight": float(g.weight[part].sum()),
                "grid_ids": [int(x) for x in gids],
                "action": "joined the nearest grid" if joined else "own grid(s)",
            })
    return report


def _one_piece(
    ugeoms: np.ndarray, labels: np.ndarray, n: int, *, dust: float = 1e-3
) -> tuple[np.ndarray, np.ndarray, int]:
    """Dissolve units into grids, making sure every grid is one polygon.

    The unit graph keeps grids connected, but two units can be neighbours in the
    graph while their polygons meet only at a corner (floating-point slivers along
    a street).  The units of every part of a grid but its largest go to the grid
    they share the longest edge with.  Parts under ``dust`` m² are rounding dust
    and are dropped from the geometry.
    """
    geoms = dissolve_units(ugeoms, labels, n)
    moved = 0
    for _ in range(3):
        multi = np.flatnonzero(shapely.get_num_geometries(geoms) > 1).tolist()
        if not multi:
            break
        changed: set[int] = set()
        # the grids near a part: measuring the edge it shares with every grid
        # would be quadratic in the number of grids
        tree = shapely.STRtree(geoms)
        for gid in multi:
            parts = shapely.get_parts(geoms[gid])
            parts = parts[shapely.area(parts) > dust]
            if len(parts) <= 1:
                geoms[gid] = parts[0] if len(parts) else geoms[gid]
                continue
            main = int(np.argmax(shapely.area(parts)))
            members = np.flatnonzero(labels == gid)
            anchor = shapely.point_on_surface(ugeoms[members])
            for k, part in enumerate(parts):
                if k == main:
                    continue
                inside = members[shapely.within(anchor, part.buffer(dust))]
                if not len(inside):
                    continue
                rim = part.boundary.buffer(dust)
                others = np.sort(tree.query(rim))
                others = others[others != gid]
                if not len(others):
                    continue
                edge = shapely.length(
                    shapely.intersection(shapely.boundary(geoms[others]), rim)
                )
                if edge.max() <= 0:
                    continue
                to = int(others[int(np.argmax(edge))])
                labels[inside] = to
                moved += len(inside)
                changed.update((gid, to))
        if not changed:
            break
        for gid in changed:
            geoms[gid] = _dissolve_one(ugeoms[labels == gid])
    return labels, geoms, moved


def _seal(geoms: np.ndarray, *, area: shapely.Geometry | None = None,
          crack: float = 1.0) -> np.ndarray:
    """The grids remade from one noded arrangement of all their edges.

    The outline of ``area`` is part of the arrangement, so that neighbours share their
    edges vertex for vertex: no hairline crack between grids or between a grid and the
    area's outline.

    Every face of the arrangement goes to the grid its inner point lies in (the one
    holding most of it where two overlap by a hair); a face in no grid and under
    ``crack`` m² is a crack and goes to the grid it shares the most edge with;
    larger faces in no grid are holes of the area and stay out.  A grid that would
    not be one piece keeps its geometry (and an overlap it had with a neighbour).
    """
    geoms = np.asarray(geoms, dtype=object)
    if len(geoms) < 2:
        return geoms
    edges = shapely.boundary(geoms)
    if area is not None and not shapely.is_empty(area):
        edges = np.append(edges, shapely.boundary(area))
    faces = planar_faces(edges)
    fi, gi = shapely.STRtree(geoms).query(shapely.point_on_surface(faces),
                                         predicate="within")
    # per face, the grid holding most of it (by face, then share; the first wins)
    share = np.ones(len(fi))
    twice = np.bincount(fi, minlength=len(faces))[fi] > 1
    share[twice] = shapely.area(shapely.intersection(geoms[gi[twice]], faces[fi[twice]]))
    pick = np.lexsort((np.arange(len(fi)), -share, fi))
    first = pick[np.r_[True, fi[pick][1:] != fi[pick][:-1]]] if len(fi) else pick
    owner = np.full(len(faces), -1, dtype=np.int64)
    owner[fi[first]] = gi[first]
    ftree = shapely.STRtree(faces)
    for _ in range(3):  # a crack beside another crack takes its owner next round
        todo = np.flatnonzero((owner < 0) & (shapely.area(faces) < crack))
        for f in todo.tolist():
            near = ftree.query(faces[f], predicate="intersects")
            near = near[(near != f) & (owner[near] >= 0)]
            if not len(near):
                continue
            edge = shapely.length(shapely.intersection(shapely.boundary(faces[near]),
                                                       shapely.boundary(faces[f])))
            if edge.max() > 0:
                owner[f] = owner[near[int(np.argmax(edge))]]
    out = geoms.copy()
    order = np.argsort(owner, kind="stable")
    bounds = np.searchsorted(owner[order], np.arange(len(geoms) + 1))
    for gid in range(len(geoms)):
        mine = faces[order[bounds[gid]:bounds[gid + 1]]]
        if not len(mine):
            continue
        merged = shapely.coverage_union_all(mine)
        if shapely.get_num_geometries(merged) <= shapely.get_num_geometries(geoms[gid]):
            out[gid] = merged
    return out


def to_output(gdf: gpd.GeoDataFrame, crs: Any) -> gpd.GeoDataFrame:
    """Reproject to the input CRS and repair what reprojection breaks.

    Rounding in the transformation can fold a hair-thin spike onto itself; such
    polygons are repaired with ``make_valid`` (keeping their polygonal parts), a
    change of well under a square millimetre.
    """
    out = gdf.to_crs(crs) if crs is not None else gdf.copy()
    return repair_polygons(out)[0]


@dataclass(frozen=True)
class Assembled:
    """Stage 7's output: the grids as polygons with their codes and ids.

    The grids are in the working CRS, with every building's and unit's grid.

    ``grids`` is sorted by code (row = position); ``labels`` is the grid number
    (in the assignment) of every unit after the corner repair; ``new_id`` the
    grid id of every grid number and ``order`` the grid number of every row;
    ``n_units`` the units of each row.
    """

    grids: gpd.GeoDataFrame
    labels: np.ndarray
    new_id: np.ndarray
    order: np.ndarray
    building_grid_id: np.ndarray
    n_units: np.ndarray
    notes: list[str]


def assemble(balanced: Balanced, communities: Communities, counts: Counts, *,
             area: shapely.Geometry, carve: Carve, division_code: str,
             has_buildings: bool, work_crs: Any,
             used: tuple[frozenset[str], int] = (frozenset(), 0)) -> Assembled:
    """Stage 7: the grids dissolved from their units, sealed, counted and coded.

    In: the balanced assignment and its units (stage 6), the communities, the
    counts of every building and the area; in a re-partition, the codes and
    the highest grid id ever used (``used``: a new grid never takes them).
    Out: :class:`Assembled`.
    """
    assignment, units = balanced.assignment, balanced.units
    n = assignment.n_grids
    notes: list[str] = []
    ugeoms = np.asarray(units.table.geometry.values)
    labels, geoms, moved = _one_piece(ugeoms, assignment.labels.copy(), n)
    geoms = _seal(geoms, area=area)
    if moved:
        notes.append(
            f"{moved} unit(s) touching the rest of their grid only at a corner were "
            "moved to the neighbouring grid they share an edge with."
        )
    building_grid = labels[units.building_unit]
    fields = counts.fields
    vals = counts.table[list(fields)].to_numpy(dtype=float)
    sums = np.zeros((n, len(fields)))
    np.add.at(sums, building_grid, vals)
    n_buildings = np.bincount(building_grid, minlength=n) if has_buildings \
        else np.zeros(n, int)
    est = np.zeros(n, dtype=bool)
    if counts.estimated:
        np.logical_or.at(est, building_grid, counts.table["estimated"].to_numpy(dtype=bool))
    community_ids, subdistrict_ids = communities.ids, communities.subdistrict_ids
    comm_idx = np.asarray(assignment.community)
    comm_id = [community_ids[c] if c < len(community_ids) else c for c in comm_idx]
    sub_id = [subdistrict_ids[c] if c < len(subdistrict_ids) else None for c in comm_idx]
    prefixes = _prefixes(comm_idx, sub_id, communities, division_code)

    kinds = list(assignment.kind) if len(assignment.kind) == n else ["community"] * n
    # the contract columns are always there, empty where the input had no such count
    missing = {f: np.full(n, np.nan) for f in ("households", "pop_actual") if f not in fields}
    carve_label = carve.label
    grids = gpd.GeoDataFrame(
        {
            "community_id": comm_id,
            "subdistrict_id": sub_id,
            "kind": kinds,
            **{f: sums[:, k] for k, f in enumerate(fields)},
            **missing,
            "n_buildings": n_buildings,
            # road and unit grids say what they are in `kind`, not in `flag`
            "flag": [f if k == "community" else "" for f, k in zip(assignment.flag, kinds,
                                                                     strict=True)],
            "estimated": est,
            **({"label": [str(carve_label[assignment.special[i]])
                          if i in assignment.special else "" for i in range(n)]}
               if len(carve_label) else {}),
        },
        geometry=geoms,
        crs=work_crs,
    )
    if counts.by not in fields:
        # a measure of the units themselves (by="area"): the grid's own, in m²
        grids[counts.by] = shapely.area(geoms)
    grids["code"] = _codes(grids, comm_idx, prefixes)
    tolerance = communities.tolerance
    grids["tolerance"] = np.asarray(tolerance, dtype=float)[comm_idx]
    grids["target"] = np.asarray(communities.target, dtype=float)[comm_idx]
    if communities.kind is not None:
        grids["community_type"] = [communities.kind[c] if c < len(communities.kind)
                                   else None for c in comm_idx]
    new_id, order = _grid_ids(grids, assignment.keep, comm_idx, prefixes, used=used)
    grids["grid_id"] = new_id
    grids = grids.iloc[order].reset_index(drop=True)
    lead = ["grid_id", "code", "kind", "community_id", "subdistrict_id"]
    grids = grids[lead + [c for c in grids.columns if c not in lead]]
    n_units = np.bincount(labels[labels >= 0], minlength=n)[order]
    return Assembled(grids, labels, new_id, order, new_id[building_grid], n_units, notes)


def _prefixes(comm_idx: np.ndarray, sub_id: list[Any], communities: Communities,
              division_code: str) -> dict[int, str]:
    """The first 12 digits of the codes of every community's grids.

    The community's official code (:attr:`Communities.codes`); without, the
    division code, the sub-district's number (sub-districts in sorted order of
    their ids, 000 where there is none) and the community's number within its
    sub-district (in the order of the boundaries layer), 1-based.
    """
    ids, subdistrict_ids, official = (communities.ids, communities.subdistrict_ids,
                                      communities.codes)
    subs = sorted({s for s in sub_id if s is not None}, key=str)
    prefixes: dict[int, str] = {}
    per_sub: dict[int, int] = {}
    for c in range(len(ids)):
        s_ = subdistrict_ids[c] if c < len(subdistrict_ids) else None
        key = subs.index(s_) + 1 if s_ is not None and s_ in subs else 0
        per_sub[key] = per_sub.get(key, 0) + 1
        prefixes[c] = official[c] if official is not None else \
            grid_code(division_code, key, per_sub[key], 0)[:-3]
    for c in set(comm_idx.tolist()) - set(prefixes):
        s_ = sub_id[int(np.flatnonzero(comm_idx == c)[0])]
        prefixes[c] = grid_code(division_code, subs.index(s_) + 1 if s_ is not None else 0,
                                c + 1, 0)[:-3]
    return prefixes


def _codes(grids: gpd.GeoDataFrame, comm_idx: np.ndarray,
           prefixes: dict[int, str]) -> list[str]:
    """The 15-digit code of every grid: its community's 12 digits and a sequence.

    The sequence runs west→east, north→south within the community.
    """
    rp = shapely.get_coordinates(shapely.centroid(grids.geometry.values))
    comm = pd.Series(comm_idx, index=grids.index)
    area_c = grids.geometry.area.groupby(comm).sum()
    k_c = comm.groupby(comm).size()
    band = np.sqrt(area_c / k_c)
    seq = number_in_order(comm, rp[:, 0], rp[:, 1], band)
    return [f"{prefixes[int(c)]}{q:03d}" for c, q in zip(comm_idx, seq, strict=True)]


def _grid_ids(grids: gpd.GeoDataFrame, keep: dict[int, tuple[int, str]],
              comm_idx: np.ndarray, prefixes: dict[int, str],
              used: tuple[frozenset[str], int] = (frozenset(), 0)
              ) -> tuple[np.ndarray, np.ndarray]:
    """The id of every grid and the order of the rows (by code).

    A new plan numbers its grids 1..n by code.  A re-partition (``keep``: the id
    and code a grid keeps) keeps ids and codes; a new grid continues its
    community's sequence after every code it ever used (``used[0]``, the plan's
    register: a retired code is never handed out again) and takes the next id
    after every id ever used (``used[1]``).  ``grids["code"]`` is updated.
    """
    n = len(grids)
    if not keep:
        order = np.argsort(grids["code"].to_numpy(), kind="stable")
        new_id = np.empty(n, dtype=np.int64)
        new_id[order] = np.arange(1, n + 1)
        return new_id, order
    new_id = np.zeros(n, dtype=np.int64)
    codes = list(grids["code"])
    used_codes, used_id = used
    next_id = max(*(v[0] for v in keep.values()), used_id) + 1
    next_seq: dict[int, int] = {}
    prefix: dict[int, str] = {}  # the community's codes as the plan had them
    for gid, (_, code) in keep.items():
        c = int(comm_idx[gid])
        next_seq[c] = max(next_seq.get(c, 0), int(str(code)[-3:]))
        prefix.setdefault(c, str(code)[:-3])
    # the codes the community used before, retired ones too
    by_prefix: dict[str, int] = {}
    for code in used_codes:
        by_prefix[code[:-3]] = max(by_prefix.get(code[:-3], 0), int(code[-3:]))
    for c in set(comm_idx.tolist()):
        # a community none of whose grids is kept takes the prefix it has now
        pre = prefix.setdefault(c, prefixes[c])
        next_seq[c] = max(next_seq.get(c, 0), by_prefix.get(pre, 0))
    for gid in range(n):
        if gid in keep:
            new_id[gid], codes[gid] = keep[gid]
        else:
            c = int(comm_idx[gid])
            next_seq[c] += 1
            codes[gid] = f"{prefix[c]}{next_seq[c]:03d}"
            new_id[gid] = next_id
            next_id += 1
    grids["code"] = codes
    return new_id, np.argsort(grids["code"].to_numpy(), kind="stable")

