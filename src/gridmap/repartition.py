"""Re-partition a plan when the population shifts, moving as few households as possible.

The plan a grid office runs is the starting point: every unit starts in the grid
its buildings were in, grids keep their ids and codes, and only what is out of
balance moves.  Balance is restored by moving boundary units between
neighbouring grids first (the tabu search of the delineation, without its
compactness passes, so that nothing moves for looks); a grid that grew past
what moves can fix is split in two, one that shrank is merged into a
neighbour, and new grids continue the codes of their community.  Locked grids
neither give nor take.  An unchanged plan comes back unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .partition import GridAssignment, UnitGraph, refine, repair
from .partition.bisection import recursive_bisection
from .plan import GridPlan, read_plan

__all__ = ["repartition"]


def seed_assignment(previous: dict[str, Any], g: UnitGraph, umap: gpd.GeoDataFrame,
                    building_unit: np.ndarray, old_grid: np.ndarray, ucomm: np.ndarray,
                    community_ids: list[Any]) -> GridAssignment:
    """Every unit in the grid its buildings were in (the area it lies in if empty)."""
    grids = previous["grids"]
    gw = previous["grids_work"]
    unit_grid = np.full(len(umap), np.nan)
    df = pd.DataFrame({"u": building_unit, "g": old_grid}).dropna()
    if len(df):
        mode = (df.groupby(["u", "g"]).size().reset_index(name="n")
                .sort_values(["u", "n", "g"], ascending=[True, False, True])
                .drop_duplicates("u"))
        unit_grid[mode["u"].to_numpy(dtype=np.int64)] = mode["g"].to_numpy()
    rest = np.flatnonzero(np.isnan(unit_grid))
    if len(rest):
        pts = shapely.point_on_surface(np.asarray(umap.geometry.values)[rest])
        geoms = np.asarray(gw.geometry.values)
        tree = shapely.STRtree(geoms)
        near = tree.nearest(pts)
        unit_grid[rest] = gw["grid_id"].to_numpy()[near]
    present = sorted({int(x) for x in unit_grid})
    pos = {gid: k for k, gid in enumerate(present)}
    labels = np.array([pos[int(x)] for x in unit_grid], dtype=np.int64)
    out = GridAssignment(labels)
    info = grids.set_index("grid_id")
    cindex = {str(c): k for k, c in enumerate(community_ids)}
    for gid in present:
        row = info.loc[gid]
        flag = "" if pd.isna(row.get("flag", "")) else str(row.get("flag", ""))
        kind = str(row.get("kind", "community"))
        c = cindex.get(str(row["community_id"]), 0)
        k = out.new_grid(c, flag if kind == "community" else kind, kind=kind)
        out.keep[k] = (int(gid), str(row["code"]))
    return out


def _drop_empty(a: GridAssignment) -> GridAssignment:
    used = np.unique(a.labels)
    if len(used) == a.n_grids:
        return a
    remap = {int(old): new for new, old in enumerate(used.tolist())}
    b = GridAssignment(np.array([remap[int(x)] for x in a.labels], dtype=np.int64))
    for old in used.tolist():
        k = b.new_grid(a.community[old], a.flag[old], kind=a.kind[old])
        if old in a.keep:
            b.keep[k] = a.keep[old]
        if old in a.special:
            b.special[k] = a.special[old]
    b.mean, b.notes = dict(a.mean), list(a.notes)
    return b


def rebalance(a: GridAssignment, g: UnitGraph, tolerance: Any, lock: Iterable[int],
              seed: int | None, notes: list[str], target: Any = 300.0) -> GridAssignment:
    """Restore balance community by community with as few moves as possible."""
    rng = np.random.default_rng(seed)
    lock_ids = {int(x) for x in lock}
    for c in sorted(set(a.community)):
        tol = float(tolerance[c]) if np.ndim(tolerance) else float(tolerance)

        def ordinary() -> list[int]:
            return [k for k in range(a.n_grids) if a.community[k] == c and not a.flag[k]
                    and np.any(a.labels == k)]

        locked = {k for k in ordinary() if a.keep.get(k, (None,))[0] in lock_ids}

        def weights() -> dict[int, float]:
            w = np.bincount(a.labels, weights=g.weight, minlength=a.n_grids)
            return {k: float(w[k]) for k in ordinary()}

        def out_of_band(mean: float) -> list[int]:
            return [k for k, w in weights().items()
                    if k not in locked and abs(w / mean - 1) > tol + 1e-9]

        grids = ordinary()
        if not grids:
            continue
        mean = sum(weights().values()) / len(grids)
        a.mean[c] = mean
        n_out_before = len(out_of_band(mean))
        if not n_out_before:
            continue  # balanced: nothing moves
        saved = (a.labels.copy(), a.n_grids, dict(a.mean), len(notes))
        def attempt(resize: bool) -> None:
            nonlocal grids, mean
            # as many grids as the total now needs (k = round(total / target), as in a
            # delineation): where people came, a grid is split; where they left, one
            # is merged; only then do boundary units move
            tgt = float(target[c]) if np.ndim(target) else float(target)
            w = weights()
            k_new = max(1, round(sum(w.values()) / tgt))
            for _ in range(abs(k_new - len(grids)) if resize else 0):
                w = weights()
                # split where people came and merge where they left: the grids out
                # of band first
                oob = set(out_of_band(sum(w.values()) / len(w)))
                cands = [k for k in w if k not in locked and k in oob] or \
                    [k for k in w if k not in locked]
                if not cands:
                    break
                if k_new > len(w):
                    k = max(cands, key=lambda x: (w[x], -x))
                    nodes = np.flatnonzero(a.labels == k)
                    if len(nodes) < 2:
                        break
                    pieces = recursive_bisection(g, nodes, 2, tolerance=tol, rng=rng,
                                                 mean=w[k] / 2)
                    if len(pieces) != 2:
                        break
                    small = min(pieces, key=lambda p: (float(g.weight[p].sum()), int(p[0])))
                    a.labels[small] = a.new_grid(c)
                    notes.append(f"grid {a.keep.get(k, (k,))[0]} grew to {w[k]:g}: split in two")
                else:
                    k = min(cands, key=lambda x: (w[x], x))
                    nbrs = [x for x in g.adjacent_labels(a.labels, np.flatnonzero(a.labels == k))
                            if x in w and x not in locked]
                    if not nbrs:
                        break
                    to = min(nbrs, key=lambda x: (w[x], x))
                    a.labels[a.labels == k] = to
                    notes.append(f"grid {a.keep.get(k, (k,))[0]} shrank to {w[k]:g}: merged "
                                 f"into grid {a.keep.get(to, (to,))[0]}")
            grids = ordinary()
            mean = sum(weights().values()) / len(grids)
            a.mean[c] = mean
            # moves stay near the grids out of band: they and the grids within
            # `rings` steps of them; the rest of the community holds still
            for rings in (1, 2, 4):
                bad = out_of_band(mean)
                if not bad:
                    break
                region = set(bad)
                for _ in range(rings):
                    for k in list(region):
                        region |= {x for x in g.adjacent_labels(
                            a.labels, np.flatnonzero(a.labels == k)) if x in set(grids)}
                still = (set(grids) - region) | locked
                a.labels = refine(g, a.labels, grids=np.array(grids), mean=mean,
                                  tolerance=tol, locked=still, compact_passes=0)
            free = [k for k in region if k not in locked] if out_of_band(mean) else []
            if len(free) > 1:
                # the last resort re-splits neighbouring grids: never the locked ones
                try:
                    a.labels = repair(g, a.labels, grids=np.array(sorted(free)),
                                      mean=mean, tolerance=tol, rng=rng)
                except RuntimeError:
                    # a grid in two pieces cannot be re-split; keep the moves made
                    notes.append(f"community {c}: re-splitting grids was skipped "
                                 "(a grid is in two pieces)")

        def restore() -> None:
            labels, n_grids, means, n_notes = saved
            a.labels = labels.copy()
            del notes[n_notes:]
            del a.community[n_grids:], a.flag[n_grids:], a.kind[n_grids:]
            a.mean = dict(means)

        # first moves alone (the grids as they are); then, if that leaves grids
        # out, as many grids as the total now needs; the better plan is kept:
        # fewer grids out, then fewer households moved
        best = None
        for resize in (False, True):
            restore()
            grids = ordinary()
            attempt(resize)
            moved = float(g.weight[a.labels != saved[0]].sum())
            key = (len(out_of_band(mean)), moved)
            state = (a.labels.copy(), list(a.community), list(a.flag), list(a.kind),
                     dict(a.mean), list(notes), grids, mean)
            if best is None or key < best[0]:
                best = (key, state)
            if key[0] == 0:
                break
        (labels, comm_, flag_, kind_, means_, notes_, grids, mean) = best[1]
        a.labels, a.community, a.flag, a.kind, a.mean = labels, comm_, flag_, kind_, means_
        notes[:] = notes_
        if len(out_of_band(mean)) >= n_out_before:
            # moving did not bring a grid back into the band: move nothing (what
            # could not be balanced before cannot now, and households stay put)
            restore()
            notes.append(f"community {c}: {n_out_before} grid(s) out of tolerance could "
                         "not be brought back by moves, splits or merges; left as they were")
    return _drop_empty(a)


def repartition(
    plan: GridPlan | str | os.PathLike,
    buildings: Any = None,
    population: Any = None,
    *,
    by: str | None = None,
    target: float | None = None,
    tolerance: float | None = None,
    lock: Iterable[int] = (),
    seed: int | None = 0,
    id_column: str | None = None,
    columns: dict[str, str] | None = None,
    **kwargs: Any,
) -> GridPlan:
    """Re-balance a plan for new population, buildings and demolitions.

    Parameters
    ----------
    plan
        The plan running now: a :class:`GridPlan` or its ``plan.gpkg`` / folder.
    buildings
        The current building layer (same id column as the plan's): new ids are
        new buildings, missing ids demolished.  Default: the plan's buildings.
    population
        New population in any form :func:`gridmap.delineate` reads.
    by, target, tolerance
        Default: the plan's.
    lock
        Grid ids that must not change.
    **kwargs
        Further options of :func:`gridmap.delineate`, e.g. ``strict=True`` to
        refuse rather than repair bad input, ``islands=`` for parts cut off from
        the rest.

    Returns
    -------
    GridPlan
        Grids keep their ids and codes; ``metrics["changes"]`` says what moved:
        buildings and households per pair of grids, new, split and merged grids,
        the share of households that keep their grid.

    Examples
    --------
    >>> import geopandas as gpd, shapely, gridmap
    >>> from shapely import LineString
    >>> b = gpd.GeoDataFrame({"id": range(8), "households": [100] * 8},
    ...     geometry=[shapely.box(x * 50 + 10, 10, x * 50 + 30, 30) for x in range(8)],
    ...     crs=32651)
    >>> s = gpd.GeoDataFrame({"highway": ["residential"] * 11},
    ...     geometry=[LineString([(v, -5), (v, 45)]) for v in range(0, 401, 50)]
    ...     + [LineString([(-5, v), (405, v)]) for v in (0, 40)], crs=32651)
    >>> plan = gridmap.delineate(b, s, target=400)
    >>> repartition(plan).metrics["changes"]["share_households_kept"]
    1.0
    """
    from .delineation import delineate

    if not isinstance(plan, GridPlan):
        plan = read_plan(plan)
    params = plan.params
    by = by or params.get("by", "households")
    target = target if target is not None else params.get("target", 300)
    tolerance = tolerance if tolerance is not None else params.get("tolerance", 0.1)
    old_b = plan.buildings
    id_col = id_column or params.get("id_column") or (
        "building_id" if "building_id" in old_b.columns else "id")
    if buildings is None:
        drop = [c for c in ("grid_id", "unit_id") if c in old_b.columns]
        buildings = old_b.drop(columns=drop)
    grids = plan.grids
    bnd = grids.dissolve(by="community_id", as_index=False)[
        ["community_id", grids.geometry.name]]
    if "subdistrict_id" in grids.columns:
        bnd["subdistrict_id"] = bnd["community_id"].map(
            grids.drop_duplicates("community_id").set_index("community_id")["subdistrict_id"])
    streets = plan.streets
    previous = {
        "building_grid": pd.Series(old_b["grid_id"].to_numpy(),
                                   index=old_b[id_col].to_numpy()),
        "grids": grids,
        "lock": tuple(lock),
    }
    new = delineate(buildings, streets, population, boundaries=bnd, by=by, target=target,
                    tolerance=tolerance, seed=seed, id_column=id_col, columns=columns,
                    street_column="class" if streets is not None else None,
                    division_code=params.get("division_code", "000000"),
                    _previous=previous, **kwargs)
    new.metrics["changes"] = _changes(plan, new, id_col, by)
    return new


def _changes(old: GridPlan, new: GridPlan, id_col: str, by: str) -> dict[str, Any]:
    """What a re-partition changed, building by building and grid by grid."""
    o = old.buildings[[id_col, "grid_id"]].rename(columns={"grid_id": "old"})
    n = new.buildings[[id_col, "grid_id", by]].rename(columns={"grid_id": "new"})
    both = o.merge(n, on=id_col, how="inner")
    total = float(both[by].sum())
    kept = float(both.loc[both["old"] == both["new"], by].sum())
    moved = both[both["old"] != both["new"]]
    pairs = (moved.groupby(["old", "new"]).agg(buildings=(id_col, "size"),
                                               households=(by, "sum"))
             .reset_index().rename(columns={"households": by}))
    old_ids = set(old.grids["grid_id"].tolist())
    new_ids = set(new.grids["grid_id"].tolist())
    return {
        "share_households_kept": kept / total if total else 1.0,
        "buildings_moved": int(len(moved)),
        f"{by}_moved": float(moved[by].sum()),
        "buildings_new": int((~n[id_col].isin(o[id_col])).sum()),
        "buildings_demolished": int((~o[id_col].isin(n[id_col])).sum()),
        "grids_new": sorted(new_ids - old_ids),
        "grids_gone": sorted(old_ids - new_ids),
        "moves": pairs.to_dict("records"),
        "before": {k: old.metrics.get(k) for k in ("n_grids", "max_abs_deviation",
                                                   "n_out_of_tolerance")},
        "after": {k: new.metrics.get(k) for k in ("n_grids", "max_abs_deviation",
                                                  "n_out_of_tolerance")},
    }
