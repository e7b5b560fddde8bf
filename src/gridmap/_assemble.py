"""Turn a unit assignment into a :class:`GridPlan`: dissolve, code, measure."""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ._validate import repair_polygons
from .codes import grid_code, number_in_order
from .metrics import evaluate
from .partition.exact import RegionLimits
from .plan import GridPlan
from .units import planar_faces
from .workload import DEFAULT_CAPACITY, grid_workload

__all__ = ["assemble", "dissolve_units"]


def _dissolve_one(members: np.ndarray, grid_size: float = 1e-3) -> shapely.Geometry:
    """Union of unit polygons on a millimetre grid, seams sealed."""
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


def _islands(g, ucomm: np.ndarray, labels: np.ndarray, new_id: np.ndarray,
             community_ids: list[Any]) -> list[dict[str, Any]]:
    """Every part of a community that nothing connects to the rest, and its fate."""
    from .partition import find_islands

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
        changed: set[int] = set()
        # the grids near a part: measuring the edge it shares with every grid
        # would be quadratic in the number of grids
        tree = shapely.STRtree(geoms) if multi else None
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
    """The grids remade from one noded arrangement of all their edges (and the
    outline of ``area``), so that neighbours share their edges vertex for vertex:
    no hairline crack between grids or between a grid and the area's outline.

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


def _to_output(gdf: gpd.GeoDataFrame, crs: Any) -> gpd.GeoDataFrame:
    """Reproject to the input CRS and repair what reprojection breaks.

    Rounding in the transformation can fold a hair-thin spike onto itself; such
    polygons are repaired with ``make_valid`` (keeping their polygonal parts), a
    change of well under a square millimetre.
    """
    out = gdf.to_crs(crs) if crs is not None else gdf.copy()
    return repair_polygons(out)[0]


def _reasons(grids: gpd.GeoDataFrame, labels: np.ndarray, order: np.ndarray,
             new_id: np.ndarray, g, by: str, tolerance: np.ndarray,
             checks: dict[int, dict] | None = None) -> list[str]:
    """Why each grid out of tolerance is so: its units and its neighbours.

    ``tolerance`` is that of every grid (row); ``checks`` what the exact re-cut
    found for a grid (by its number in the assignment).
    """
    out = [""] * len(grids)
    dev = dict(zip(grids["grid_id"], grids["deviation"], strict=True))
    # the grids judged against the mean: ordinary community grids, by community
    plain = (grids["kind"] == "community") & (grids["flag"].fillna("") == "")
    judged = dict(zip(grids["grid_id"], grids["community_id"].where(plain), strict=True))
    for row, r in enumerate(grids.itertuples()):
        if bool(r.within_tolerance) or r.kind != "community":
            continue
        old = int(order[row])
        units = np.flatnonzero(labels == old)
        w = g.weight[units]
        mean = float(r.community_mean)
        big = int(units[np.argmax(w)])
        nbrs = sorted({int(new_id[labels[x]]) for u in units.tolist()
                       for x in g.neighbours(u).tolist() if labels[x] != old})
        around = ", ".join(f"{n} ({dev.get(n, float('nan')):+.0%})" for n in nbrs[:8])
        side = "below" if r.deviation < 0 else "above"
        tol = float(tolerance[row])
        if r.flag == "oversize" and len(units) > 1:
            rest = units[units != big]
            text = (
                f"unit {big + 1} alone holds {w.max():g} {by}, "
                f"{w.max() / mean:.0%} of the community mean {mean:g}, more than a grid; "
                f"the grid also holds {len(rest)} other unit(s) of "
                f"{float(g.weight[rest].sum()):g} {by}, so it is not one indivisible unit"
            )
        elif len(units) == 1:
            text = (
                f"one indivisible unit (unit {big + 1}) of {w.max():g} {by}, "
                f"{w.max() / mean:.0%} of the community mean {mean:g}: {side} the "
                f"±{tol:.0%} band alone"
            )
        else:
            text = (
                f"{len(units)} units, the largest (unit {big + 1}) {w.max():g} {by} = "
                f"{w.max() / mean:.0%} of the community mean {mean:g}: "
            )
            peers = [n for n in nbrs if pd.notna(judged.get(n))
                     and judged.get(n) == r.community_id]
            sign = -1 if r.deviation < 0 else 1
            if peers and all(sign * dev[n] > tol / 2 for n in peers):
                # no neighbour has weight to spare (or room for more): the grids
                # of the area are too many (too few) for it, whatever the units
                text += (f"every neighbouring grid of its community is "
                         f"{'light' if sign < 0 else 'heavy'} too (beyond half the band): "
                         f"the area has "
                         f"{'more' if sign < 0 else 'fewer'} grids than its {by} fill")
            else:
                text += f"the units here are too coarse to trade within ±{tol:.0%}"
        out[row] = f"{text}; neighbouring grids {around or 'none'}"
        check = (checks or {}).get(old)
        if check and check["verdict"] == "infeasible":
            others = ", ".join(str(int(new_id[x])) for x in check["region"] if x != old)
            out[row] += (
                f"; exact check: no plan of this grid and the {check['grids'] - 1} "
                f"grid(s) around it, {others} ({check['units']} units), has every "
                "grid within the band"
            )
            if check.get("reach") is not None:
                # the proof covers only plans that move units a few steps
                out[row] += f" (plans moving units up to {check['reach']} units away)"
        elif check and check["verdict"] == "limit":
            out[row] += "; exact check: undecided (solver limit)"
        elif check and check["verdict"] == "not checked":
            lim = RegionLimits()
            out[row] += ("; exact check: not run (no neighbouring grid of its community "
                         f"fits a region of up to {lim.max_grids} grids, {lim.max_units} "
                         f"units and {lim.max_nodes} programme nodes, or the plan's "
                         "solver budget was spent)")
    return out


def _outlines(communities: np.ndarray | None, carve: np.ndarray | None,
              crs: Any) -> gpd.GeoSeries | None:
    parts = [np.asarray(x, dtype=object) for x in (communities, carve)
             if x is not None and len(x)]
    if not parts:
        return None
    return gpd.GeoSeries(np.concatenate(parts), crs=crs)


def assemble(
    *,
    assignment,
    umap: gpd.GeoDataFrame,
    building_unit: np.ndarray,
    g,
    adj,
    blocks,
    exempt_blocks: np.ndarray,
    counts: pd.DataFrame,
    fields: tuple[str, ...],
    by: str,
    bm: gpd.GeoDataFrame | None,
    bld_in: gpd.GeoDataFrame | None,
    unt: gpd.GeoDataFrame | None,
    ids: np.ndarray,
    id_col: str | None,
    input_crs: Any,
    work_crs: Any,
    area: shapely.Geometry,
    area_source: str,
    lines: np.ndarray,
    communities: np.ndarray | None,
    community_ids: list[Any],
    subdistrict_ids: list[Any],
    division_code: str,
    tolerance: Any,
    estimated: bool,
    timer,
    notes: list[str],
    params: dict[str, Any],
    pop_report: dict[str, Any],
    workload: dict[str, float] | None = None,
    worker_capacity: float = DEFAULT_CAPACITY,
    street_classes: np.ndarray | None = None,
    community_target: np.ndarray | None = None,
    community_type: list[str] | None = None,
    carve_label: np.ndarray | None = None,
    carve_geom: np.ndarray | None = None,
) -> GridPlan:
    n = assignment.n_grids
    ugeoms = np.asarray(umap.geometry.values)
    labels, geoms, moved = _one_piece(ugeoms, assignment.labels.copy(), n)
    geoms = _seal(geoms, area=area)
    if moved:
        notes.append(
            f"{moved} unit(s) touching the rest of their grid only at a corner were "
            "moved to the neighbouring grid they share an edge with."
        )
    assignment.labels = labels
    building_grid = labels[building_unit]

    vals = counts[list(fields)].to_numpy(dtype=float)
    sums = np.zeros((n, len(fields)))
    np.add.at(sums, building_grid, vals)
    n_buildings = np.bincount(building_grid, minlength=n) if bm is not None else np.zeros(n, int)
    est = np.zeros(n, dtype=bool)
    if estimated:
        np.logical_or.at(est, building_grid, counts["estimated"].to_numpy(dtype=bool))

    comm_idx = np.asarray(assignment.community)
    comm_id = [community_ids[c] if c < len(community_ids) else c for c in comm_idx]
    sub_id = [subdistrict_ids[c] if c < len(subdistrict_ids) else None for c in comm_idx]
    # numbers for codes: sub-districts in sorted order of their ids, communities
    # in the order of the boundaries layer (1-based)
    subs = sorted({s for s in sub_id if s is not None}, key=str)
    sub_no = [subs.index(s) + 1 if s is not None else 0 for s in sub_id]

    kinds = list(assignment.kind) if len(assignment.kind) == n else ["community"] * n
    # the contract columns are always there, empty where the input had no such count
    missing = {f: np.full(n, np.nan) for f in ("households", "pop_actual") if f not in fields}
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
               if carve_label is not None and len(carve_label) else {}),
        },
        geometry=geoms,
        crs=work_crs,
    )
    rp = shapely.get_coordinates(shapely.centroid(geoms))
    grids["_comm"] = comm_idx
    area_c = grids.geometry.area.groupby(grids["_comm"]).sum()
    k_c = grids.groupby("_comm").size()
    band = np.sqrt(area_c / k_c)
    seq = number_in_order(grids["_comm"], rp[:, 0], rp[:, 1], band)
    # communities are numbered within their sub-district, in the layer's order
    comm_no: dict[int, int] = {}
    per_sub: dict[int, int] = {}
    for c in range(len(community_ids)):
        s_ = subdistrict_ids[c] if c < len(subdistrict_ids) else None
        key = subs.index(s_) + 1 if s_ is not None else 0
        per_sub[key] = per_sub.get(key, 0) + 1
        comm_no[c] = per_sub[key]
    grids["code"] = [
        grid_code(division_code, s, comm_no.get(int(c), int(c) + 1), q)
        for s, c, q in zip(sub_no, comm_idx, seq, strict=True)
    ]
    if np.ndim(tolerance):
        grids["tolerance"] = np.asarray(tolerance, dtype=float)[comm_idx]
        if community_target is not None:
            grids["target"] = np.asarray(community_target, dtype=float)[comm_idx]
        if community_type is not None:
            grids["community_type"] = [community_type[c] if c < len(community_type)
                                       else None for c in comm_idx]
    keep = getattr(assignment, "keep", None) or {}
    if keep:
        # a re-partition: grids keep their ids and codes; new grids continue the
        # sequence of their community and take the next ids
        new_id = np.zeros(n, dtype=np.int64)
        codes = list(grids["code"])
        next_id = max(v[0] for v in keep.values()) + 1
        next_seq: dict[int, int] = {}
        prefix: dict[int, str] = {}  # the community's codes as the plan had them
        for gid, (_, code) in keep.items():
            c = int(comm_idx[gid])
            next_seq[c] = max(next_seq.get(c, 0), int(str(code)[-3:]))
            prefix.setdefault(c, str(code)[:-3])
        for gid in range(n):
            if gid in keep:
                new_id[gid], codes[gid] = keep[gid]
            else:
                c = int(comm_idx[gid])
                next_seq[c] = next_seq.get(c, 0) + 1
                codes[gid] = (f"{prefix[c]}{next_seq[c]:03d}" if c in prefix else
                              grid_code(division_code, sub_no[gid],
                                        comm_no.get(c, c + 1), next_seq[c]))
                new_id[gid] = next_id
                next_id += 1
        grids["code"] = codes
        order = np.argsort(grids["code"].to_numpy(), kind="stable")
    else:
        order = np.argsort(grids["code"].to_numpy(), kind="stable")
        new_id = np.empty(n, dtype=np.int64)
        new_id[order] = np.arange(1, n + 1)
    grids["grid_id"] = new_id
    grids = grids.iloc[order].reset_index(drop=True)
    grids = grids.drop(columns="_comm")
    lead = ["grid_id", "code", "kind", "community_id", "subdistrict_id"]
    grids = grids[lead + [c for c in grids.columns if c not in lead]]

    # metrics on the working CRS
    timer.stage("metrics")
    exempt = gpd.GeoSeries(blocks.geometry[exempt_blocks], crs=work_crs)
    # the exception is a grid that is one indivisible unit (or one building): an
    # oversize grid that had to take a leftover no other grid touches is judged
    n_units = np.bincount(labels[labels >= 0], minlength=n)[order]
    grids["single_unit"] = (grids["flag"] == "oversize") & (
        (n_units == 1) | (grids["n_buildings"].to_numpy() == 1))
    bgrid_ids = new_id[building_grid]
    b_for_metrics = None
    if bm is not None:
        b_for_metrics = gpd.GeoDataFrame({"grid_id": bgrid_ids}, geometry=bm.geometry.values,
                                         crs=work_crs)
    per_grid, overall = evaluate(
        grids,
        buildings=b_for_metrics,
        area=area,
        streets=gpd.GeoSeries(lines, crs=work_crs) if len(lines) else None,
        # community outlines and the outlines of road and unit grids bound grids
        # the way streets do
        community_boundaries=_outlines(communities, carve_geom, work_crs),
        exempt=exempt if len(exempt) else None,
        by=by,
        tolerance=grids["tolerance"].to_numpy() if "tolerance" in grids else tolerance,
        count_fields=fields,
    )
    for col in per_grid.columns:
        if col not in grids.columns:
            grids[col] = per_grid[col].to_numpy()
    load, load_report = grid_workload(grids, weights=workload, capacity=worker_capacity,
                                      area_km2=grids.geometry.area.to_numpy() / 1e6)
    for col in load.columns:
        grids[col] = load[col].to_numpy()
    load_report["total_workload"] = float(load["workload"].sum())
    load_report["total_workers"] = int(load["workers"].sum())
    grids["reason"] = _reasons(grids, labels, order, new_id, g, by,
                               grids["tolerance"].to_numpy() if "tolerance" in grids
                               else np.full(len(grids), float(tolerance)),
                               checks=assignment.checks)
    violations = [
        {
            "grid_id": int(r.grid_id),
            "code": r.code,
            "value": float(getattr(r, "value", np.nan)),
            "deviation": float(r.deviation),
            "reason": r.reason,
        }
        for r in grids[grids["reason"] != ""].itertuples()
    ]
    timer.stage("plan")  # the outputs belong to the assembly again
    grids_out = _to_output(grids, input_crs)

    # every input building with its original columns and its grid
    if bld_in is not None:
        bout = bld_in.copy()
        bout["grid_id"] = bgrid_ids
        bout["unit_id"] = building_unit + 1
        for f in fields:
            if f not in bout.columns:
                bout[f] = counts[f].to_numpy()
        if estimated:
            bout["estimated"] = counts["estimated"].to_numpy()
        if id_col is None and "building_id" not in bout.columns:
            bout["building_id"] = ids
    else:
        bout = gpd.GeoDataFrame(geometry=[], crs=input_crs)

    uvals = np.zeros((len(umap), len(fields)))
    np.add.at(uvals, building_unit, vals)
    units_out = gpd.GeoDataFrame(
        {
            "unit_id": np.arange(1, len(umap) + 1),
            "grid_id": new_id[labels],
            "block": umap["block"].to_numpy() + 1,
            "split": umap["split"].to_numpy(),
            **{f: uvals[:, k] for k, f in enumerate(fields)},
        },
        geometry=umap.geometry.values,
        crs=work_crs,
    )
    if unt is not None and bm is None:
        units_out.insert(0, id_col or "unit_src_id", ids)
    units_out = _to_output(units_out, input_crs)

    island_report = _islands(g, umap["community"].to_numpy(), labels, new_id,
                             community_ids)
    # the timer's own dict: the stages closed after this (the rest of the
    # assembly, maps, write) appear in it too
    timings = timer.timings
    overall = {
        **overall,
        "n_units": len(umap),
        "n_blocks": len(blocks.geometry),
        "n_blocks_split": int(np.asarray(exempt_blocks).sum()),
        "n_oversize": int(sum(f == "oversize" for f in assignment.flag)),
        "area_source": area_source,
        "violations": violations,
        "params": params,
        "population": pop_report,
        "workload": load_report,
        "islands": island_report,
        "notes": notes + assignment.notes,
        "timings": timings,
    }
    graph = adj.to_networkx()
    streets_out = None
    if len(lines):
        # the streets inside the area, for the maps (classes as the adjacency saw them)
        inside = shapely.intersection(lines, area)
        keep = ~shapely.is_empty(inside) & (shapely.length(inside) > 0)
        cls = (np.asarray(street_classes, dtype=object) if street_classes is not None
               else np.full(len(lines), "street", dtype=object))
        streets_out = gpd.GeoDataFrame({"class": cls[keep]}, geometry=inside[keep],
                                       crs=work_crs)
        if input_crs is not None:
            streets_out = streets_out.to_crs(input_crs)
    return GridPlan(
        grids=grids_out,
        buildings=bout,
        units=units_out,
        metrics=overall,
        graph=graph,
        area=gpd.GeoSeries([area], crs=work_crs).to_crs(input_crs)
        if input_crs is not None else gpd.GeoSeries([area]),
        streets=streets_out,
    )
