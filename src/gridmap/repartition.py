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

import dataclasses
import itertools
import os
import warnings
from collections.abc import Iterable
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ._errors import GridmapWarning
from .partition import GridAssignment, UnitGraph, refine, repair
from .partition.bisection import recursive_bisection
from .partition.flow import flow_rebalance, grow_grid
from .plan import GridPlan, read_plan

__all__ = ["handover", "repartition"]

#: columns copied into the handover table when the buildings have them, so that a
#: grid worker can find the building
ADDRESS_COLUMNS = ("name", "address", "addr_street", "addr_housenumber", "addr:street",
                   "addr:housenumber", "地址")


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


def _seed_unit(g: UnitGraph, labels: np.ndarray, w: dict[int, float], cands: list[int],
               mean: float, tol: float) -> int | None:
    """The unit to start a new grid from: on the edge of the heaviest grids.

    Among the units of the heaviest grids (that can leave their grid without
    cutting it in two), the one touching most grids above the mean, then the
    most weight above the mean around it, then the lightest.
    """
    from .partition.refine import connected_without

    for k in sorted(cands, key=lambda x: (-w[x], x)):
        if w[k] <= mean:
            return None
        best = None
        for u in np.flatnonzero(labels == k).tolist():
            wu = float(g.weight[u])
            if wu > mean * (1 + tol):
                continue
            near = {int(x) for x in labels[g.neighbours(u)]} & set(cands)
            heavy = [x for x in near | {k} if w[x] > mean]
            key = (-len(heavy), -sum(w[x] - mean for x in heavy), wu, u)
            if best is not None and key >= best[0]:
                continue
            if not connected_without(g, labels, u):
                continue
            best = (key, u)
        if best is not None:
            return best[1]
    return None


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
              seed: int | None, notes: list[str], target: Any = 300.0,
              before: dict[int, float] | None = None,
              move_budget: float | None = 2.0) -> GridAssignment:
    """Restore balance community by community with as few moves as possible.

    A community is left alone while its grids are within the band.  Otherwise
    weight flows between neighbouring grids along a minimum-cost flow
    (:func:`~gridmap.partition.flow.flow_rebalance`); where the community's
    grids have, on average, left the target band, or where splitting or merging
    moves fewer households, grids are split (the heaviest, in two) or removed
    (the lightest, shared out among its neighbours) to ``k = round(total /
    target)`` first.  The plan that leaves fewest grids out of the band, then
    moves fewest households, is kept; a plan no better than the one running is
    not adopted.  ``before`` (grid id → weight in the plan running) bounds the
    disruption: a community may move at most ``move_budget`` households per
    household its grids gained or lost (plus one grid's worth); a plan that
    moves more is not adopted (``None``: no bound).
    """
    rng = np.random.default_rng(seed)
    lock_ids = {int(x) for x in lock}
    for c in sorted(set(a.community)):
        tol = float(tolerance[c]) if np.ndim(tolerance) else float(tolerance)
        tgt = float(target[c]) if np.ndim(target) else float(target)

        def ordinary(c: int = c) -> list[int]:
            # one count of every grid's units, not a scan of all units per grid
            present = np.bincount(a.labels, minlength=a.n_grids) > 0
            return [k for k in range(a.n_grids) if a.community[k] == c and not a.flag[k]
                    and present[k]]

        locked = {k for k in ordinary() if a.keep.get(k, (None,))[0] in lock_ids}

        def weights(c: int = c) -> dict[int, float]:
            w = np.bincount(a.labels, weights=g.weight, minlength=a.n_grids)
            return {k: float(w[k]) for k in ordinary(c)}

        def out_of_band(mean: float, tol: float = tol, locked: set[int] = locked,
                        c: int = c) -> list[int]:
            return [k for k, w in weights(c).items()
                    if k not in locked and abs(w / mean - 1) > tol + 1e-9]

        grids = ordinary()
        if not grids:
            continue
        # a grid that was out of tolerance in the plan running and has the same
        # households now is held as it is: it was out for want of a better cut,
        # and reshuffling its neighbours for it is not what the change asks
        old_w: dict[int, float | None] = {}
        if before:
            old_w = {k: before.get(a.keep.get(k, (None,))[0]) for k in grids}
            known = [x for x in old_w.values() if x is not None]
            old_mean = sum(known) / len(known) if known else 0.0
            now_w = weights()
            locked |= {k for k, x in old_w.items() if x is not None and old_mean > 0
                       and abs(x / old_mean - 1) > tol + 1e-9 and abs(now_w[k] - x) < 1e-9}
        total = sum(weights().values())
        mean = total / len(grids)
        a.mean[c] = mean
        n_out_before = len(out_of_band(mean))
        k_new = max(1, round(total / tgt))
        old_total = sum(old_w.values()) if before and None not in old_w.values() else 0.0
        if old_total > 0:
            # as many grids as the plan had, scaled by the change: a plan whose
            # communities hold parts rounded up one by one keeps that structure
            k_new = max(1, round(len(grids) * total / old_total))
        w0 = weights()
        change = sum(abs(w0[k] - before.get(a.keep.get(k, (None,))[0], w0[k]))
                     for k in grids) if before else 0.0
        budget = np.inf if move_budget is None or not before else \
            move_budget * change + mean
        # the grids have, on average, grown or shrunk out of the target band: the
        # community needs as many grids as a delineation would give it
        ref = old_total / len(grids) if old_total > 0 else tgt
        must_resize = k_new != len(grids) and abs(mean / ref - 1) > tol + 1e-9
        if not n_out_before and not must_resize:
            continue  # balanced: nothing moves
        if before and change < 1e-9:
            continue  # nobody moved in or out: what was out of tolerance stays as it was
        saved = (a.labels.copy(), a.n_grids, dict(a.mean), len(notes))

        def attempt(resize: bool, method: str, c: int = c, tol: float = tol, locked: set[int] = locked,
                    k_new: int = k_new) -> None:
            remove: set[int] = set()
            for _ in range(abs(k_new - len(ordinary(c))) if resize else 0):
                w = {k: x for k, x in weights(c).items() if k not in remove}
                cands = [k for k in w if k not in locked]
                if not cands:
                    break
                if k_new > len(w) and method != "local":
                    # a new grid starts as one unit where heavy grids meet and the
                    # flow fills it from all of them: each gives a little
                    mean_k = sum(w.values()) / k_new
                    seed = _seed_unit(g, a.labels, w, cands, mean_k, tol)
                    if seed is None:
                        break
                    k = int(a.labels[seed])
                    knew = a.new_grid(c)
                    a.labels[seed] = knew
                    a.labels = grow_grid(g, a.labels, knew, donors=cands, mean=mean_k,
                                         tolerance=tol)
                    notes.append(f"grid {a.keep.get(k, (k,))[0]} and its neighbours grew: a "
                                 "new grid between them")
                elif k_new > len(w):
                    # split the heaviest in two; the lighter piece is the new grid
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
                    # the lightest grid is shared out among its neighbours
                    k = min(cands, key=lambda x: (w[x], x))
                    remove.add(k)
                    notes.append(f"grid {a.keep.get(k, (k,))[0]} shrank to {w[k]:g}: merged "
                                 "into its neighbours")
            grids = ordinary(c)
            if method != "local":
                mean = sum(weights(c).values()) / max(1, len(grids) - len(remove))
                a.labels = flow_rebalance(g, a.labels, grids=grids, mean=mean,
                                          tolerance=tol, locked=locked, remove=remove)
            else:
                for k in sorted(remove):
                    w = weights(c)
                    nbrs = [x for x in g.adjacent_labels(a.labels, np.flatnonzero(
                        a.labels == k)) if x in w and x not in locked and x not in remove]
                    if nbrs:
                        a.labels[a.labels == k] = min(nbrs, key=lambda x: (w[x], x))
            grids = ordinary(c)
            mean = sum(weights(c).values()) / len(grids)
            a.mean[c] = mean
            # what is left out: local moves near the grids still out of band (they
            # and the grids within `rings` steps); the rest of the community holds
            # still.  After a flow they stop at the band, every move costing a
            # household; alone they aim a little inside it.
            region: set[int] = set()
            for rings in (1, 2, 4, len(grids)) if method == "flow" else (1, 2, 4):
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
                                  tolerance=tol, locked=still, compact_passes=0,
                                  inner=1.0 if method == "flow" else 0.8)
            free = [k for k in region if k not in locked] if out_of_band(mean) else []
            if method == "local" and len(free) > 1:
                # the last resort re-splits neighbouring grids: never the locked ones
                try:
                    a.labels = repair(g, a.labels, grids=np.array(sorted(free)),
                                      mean=mean, tolerance=tol, rng=rng)
                except RuntimeError:
                    # a grid in two pieces cannot be re-split; keep the moves made
                    notes.append(f"community {c}: re-splitting grids was skipped "
                                 "(a grid is in two pieces)")

        def restore(saved: tuple = saved) -> None:
            labels, n_grids, means, n_notes = saved
            a.labels = labels.copy()
            del notes[n_notes:]
            del a.community[n_grids:], a.flag[n_grids:], a.kind[n_grids:]
            a.mean = dict(means)

        # moves alone (the grids as they are), then as many grids as the total
        # needs; the better plan is kept: fewer grids out, then (where the grids
        # left the target band) the grid count a delineation would give, then
        # fewer households moved
        best = None
        tries = (True, False) if must_resize else (False, True) if k_new != len(grids) \
            else (False,)
        # "flow": the flow, then moves that stop at the band; "flow+local": the
        # flow, then the local search aiming inside the band; "local": the local
        # search alone, with re-splitting as a last resort
        for resize, method in itertools.product(tries, ("flow", "flow+local", "local")):
            restore()
            attempt(resize, method)
            grids = ordinary()
            mean = sum(weights().values()) / len(grids)
            moved = float(g.weight[a.labels != saved[0]].sum())
            key = (len(out_of_band(mean)), must_resize and not resize, moved)
            state = (a.labels.copy(), list(a.community), list(a.flag), list(a.kind),
                     dict(a.mean), list(notes), grids, mean, resize)
            if key[2] > budget + 1e-9:
                continue  # it would move more households than the change warrants
            if best is None or key < best[0]:
                best = (key, state)
            if method == "local" and best is not None and best[0][0] == 0 and not best[0][1]:
                break  # good enough: no grid out, and as many grids as needed
        if best is None:
            restore()
            notes.append(f"community {c}: {n_out_before} grid(s) out of tolerance; "
                         f"bringing them back would move more than {budget:,.0f} "
                         f"({move_budget:g} per unit of change); left as they were")
            continue
        (labels, comm_, flag_, kind_, means_, notes_, grids, mean, resized) = best[1]
        a.labels, a.community, a.flag, a.kind, a.mean = labels, comm_, flag_, kind_, means_
        notes[:] = notes_
        if must_resize and not resized:
            notes.append(f"community {c}: its grids average {mean:,.0f}, "
                         f"{mean / tgt - 1:+.0%} from the target {tgt:g}; {k_new} grids "
                         "instead would move more households than the move budget allows "
                         "or leave more grids out of tolerance, so the grid count was kept "
                         "(raise move_budget, or delineate the community again)")
        n_out = len(out_of_band(mean))
        if (n_out > n_out_before) if (must_resize and resized) else (n_out >= n_out_before):
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
    move_budget: float | None = 2.0,
    seed: int | None = 0,
    id_column: str | None = None,
    columns: dict[str, str] | None = None,
    encoding: str | None = None,
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
    move_budget
        At most this many households (of the balance field) change grid in a
        community per household its grids gained or lost, plus one grid's
        worth; a rebalance that would move more is not made and the note says
        so (default 2; ``None``: no bound).  It keeps a plan whose grids were
        out of tolerance for want of a better cut from being reshuffled for a
        small change.
    id_column, columns
        As for :func:`gridmap.delineate` (default: the plan's id column).
    encoding
        The text encoding of the Shapefiles and CSVs read (e.g. ``"gbk"``), as
        for :func:`gridmap.delineate`.
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
    read_notes: list[str] = []
    if buildings is None:
        drop = [c for c in ("grid_id", "unit_id") if c in old_b.columns]
        buildings = old_b.drop(columns=drop)
    else:
        from .io import read_layer_noted

        buildings, read_notes = read_layer_noted(buildings, role="buildings",
                                                 encoding=encoding,
                                                 strict=kwargs.get("strict") is True)
        for note in read_notes:
            warnings.warn(note, GridmapWarning, stacklevel=2)
        buildings = _without_derived_gaps(buildings, plan, by)
        if id_col in buildings.columns and id_col in old_b.columns:
            plan = _ids_like(plan, buildings[id_col], id_col)
            old_b = plan.buildings
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
        "move_budget": move_budget,
        "grid_weight": (old_b.groupby("grid_id")[by].sum() if by in old_b.columns
                        else None),
        "building_weight": (pd.Series(old_b[by].to_numpy(), index=old_b[id_col].to_numpy())
                            if by in old_b.columns else None),
    }
    # the blocks the plan split between buildings are split again, so that its
    # units, and so its grids, come back as they were
    if "unit_id" in old_b.columns and "split" in plan.units.columns:
        was_split = plan.units.loc[plan.units["split"].astype(bool), "unit_id"]
        previous["split_buildings"] = set(
            old_b.loc[old_b["unit_id"].isin(was_split), id_col].tolist())
    # the grids that lost a building to demolition
    now_ids = set(pd.Series(buildings[id_col]).tolist()) if id_col in buildings else set()
    previous["demolished_grids"] = sorted(set(
        old_b.loc[~old_b[id_col].isin(now_ids), "grid_id"].tolist()))
    # the plan's own units: the grids it runs are unions of them, so a community
    # nobody touched comes back exactly as it was (street blocks derived again
    # from the grids' outline can differ by slivers); units that now hold more
    # than a grid, or lie in a community that changed, are split between their
    # buildings as blocks are
    units = kwargs.pop("units", None)
    if units is None and len(plan.units):
        units = plan.units[[plan.units.geometry.name]]
    new = delineate(buildings, streets, population, boundaries=bnd, by=by, target=target,
                    tolerance=tolerance, seed=seed, id_column=id_col, columns=columns,
                    units=units, encoding=encoding,
                    street_column="class" if streets is not None else None,
                    division_code=params.get("division_code", "000000"),
                    _previous=previous, **kwargs)
    new.metrics["notes"][:0] = read_notes  # the encoding guessed, said first
    new.metrics["changes"] = _changes(plan, new, id_col, by)
    return dataclasses.replace(new, previous=plan)


#: columns a plan adds to its buildings besides its ids: the population fields it
#: used or estimated, and the estimate flag
DERIVED_COLUMNS = ("households", "pop_actual", "pop_registered", "pop_floating",
                   "pop_absent", "elderly", "estimated")


def _ids_like(plan: GridPlan, ids: pd.Series, id_col: str) -> GridPlan:
    """The plan with its building ids of the current layer's type: as text when
    the current ids are text and the plan's numbers (a layer where new buildings
    got ids like ``"estate-1"`` is read back with every id as text), as numbers
    in the opposite case when every old id is a number."""
    old = plan.buildings[id_col]
    numeric = pd.api.types.is_numeric_dtype
    if numeric(old) == numeric(ids):
        return plan
    b = plan.buildings.copy()
    if numeric(old):
        if not all(isinstance(x, str) for x in ids):
            return plan  # numbers and text mixed: the numbers match as they are
        b[id_col] = old.astype(str)
    else:
        as_numbers = pd.to_numeric(old, errors="coerce")
        if as_numbers.isna().any():
            return plan  # text ids before, numbers now: no building matches
        b[id_col] = as_numbers.astype(ids.dtype)
    return dataclasses.replace(plan, buildings=b)


def _without_derived_gaps(buildings: Any, plan: GridPlan, by: str) -> Any:
    """The current buildings without the plan's own population columns that new
    buildings leave blank (they are worked out again); the balance field stays,
    and must be filled."""
    if not isinstance(buildings, gpd.GeoDataFrame):
        return buildings
    ours = [c for c in DERIVED_COLUMNS if c != by and c in buildings.columns
            and c in plan.buildings.columns and buildings[c].isna().any()]
    return buildings.drop(columns=ours) if ours else buildings


def _building_changes(old: GridPlan, new: GridPlan, id_col: str, by: str) -> pd.DataFrame:
    """Every building of either plan with its grid before (``old``) and after (``new``)."""
    o = old.buildings[[id_col, "grid_id"]].rename(columns={"grid_id": "old"})
    n = new.buildings[[id_col, "grid_id", by]].rename(columns={"grid_id": "new"})
    both = o.merge(n, on=id_col, how="outer", indicator=True)
    # a demolished building counts with what it had in the plan it left
    gone = both["_merge"] == "left_only"
    if gone.any() and by in old.buildings.columns:
        before = old.buildings.set_index(id_col)[by]
        both.loc[gone, by] = both.loc[gone, id_col].map(before).to_numpy()
    both["change"] = np.select(
        [gone, both["_merge"] == "right_only", both["old"] != both["new"]],
        ["demolished", "new", "moved"], default="kept")
    return both.drop(columns="_merge")


def _changes(old: GridPlan, new: GridPlan, id_col: str, by: str) -> dict[str, Any]:
    """What a re-partition changed, building by building and grid by grid."""
    every = _building_changes(old, new, id_col, by)
    both = every[every["change"].isin(["kept", "moved"])]
    total = float(both[by].sum())
    kept = float(both.loc[both["change"] == "kept", by].sum())
    moved = both[both["change"] == "moved"]
    pairs = (moved.groupby(["old", "new"]).agg(buildings=(id_col, "size"),
                                               households=(by, "sum"))
             .reset_index().rename(columns={"households": by}))
    old_ids = set(old.grids["grid_id"].tolist())
    new_ids = set(new.grids["grid_id"].tolist())
    return {
        "share_households_kept": kept / total if total else 1.0,
        "buildings_moved": len(moved),
        f"{by}_moved": float(moved[by].sum()),
        "buildings_new": int((every["change"] == "new").sum()),
        "buildings_demolished": int((every["change"] == "demolished").sum()),
        "grids_new": sorted(new_ids - old_ids),
        "grids_gone": sorted(old_ids - new_ids),
        "moves": pairs.to_dict("records"),
        "before": {k: old.metrics.get(k) for k in ("n_grids", "max_abs_deviation",
                                                   "n_out_of_tolerance")},
        "after": {k: new.metrics.get(k) for k in ("n_grids", "max_abs_deviation",
                                                  "n_out_of_tolerance")},
    }


def handover(old: GridPlan, new: GridPlan) -> pd.DataFrame:
    """The buildings that change grid, as a table to hand to the grid workers.

    One row per building that moved to another grid, is new, or was demolished,
    sorted by the grid it leaves and the grid it joins, with the grid codes, the
    balance field (households by default) and the building's name and address
    where the buildings have them (:data:`ADDRESS_COLUMNS`).

    Parameters
    ----------
    old
        The plan that was running.
    new
        The re-partitioned plan (``gridmap.repartition(old, ...)``; its
        :attr:`GridPlan.handover` calls this).

    Returns
    -------
    pandas.DataFrame
        Columns: the building id column, ``change`` (``moved``, ``new`` or
        ``demolished``), ``from_grid``, ``from_code``, ``to_grid``, ``to_code``,
        the balance field, then the address columns found.

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
    >>> now = plan.buildings.drop(columns=["grid_id", "unit_id"])
    >>> now = now[now["id"] != 0]  # building 0 is demolished
    >>> handover(plan, gridmap.repartition(plan, now))[["id", "change", "from_code"]]
       id      change        from_code
    0   0  demolished  000000000001001
    """
    params = new.params
    by = params.get("by", "households")
    id_col = params.get("id_column") or "id"
    old = _ids_like(old, new.buildings[id_col], id_col)
    every = _building_changes(old, new, id_col, by)
    rows = every[every["change"] != "kept"].reset_index(drop=True)
    code_old = old.grids.set_index("grid_id")["code"]
    code_new = new.grids.set_index("grid_id")["code"]
    table = pd.DataFrame({
        id_col: rows[id_col].to_numpy(),
        "change": rows["change"].to_numpy(),
        "from_grid": rows["old"].astype("Int64"),
        "from_code": rows["old"].map(code_old).to_numpy(),
        "to_grid": rows["new"].astype("Int64"),
        "to_code": rows["new"].map(code_new).to_numpy(),
        by: rows[by].to_numpy(),
    })
    # where the buildings are: from the new layer, else (demolished) the old one
    for col in ADDRESS_COLUMNS:
        if col in new.buildings.columns or col in old.buildings.columns:
            where = pd.concat([
                old.buildings.set_index(id_col)[col] if col in old.buildings else
                pd.Series(dtype=object),
                new.buildings.set_index(id_col)[col] if col in new.buildings else
                pd.Series(dtype=object)])
            where = where[~where.index.duplicated(keep="last")]
            table[col] = table[id_col].map(where).to_numpy()
    # ids may mix numbers and text (new buildings): sort on their text
    order = table.assign(_f=table["from_code"].fillna(""), _t=table["to_code"].fillna(""),
                         _i=table[id_col].astype(str))
    order = order.sort_values(["_f", "_t", "_i"], kind="stable")
    return order.drop(columns=["_f", "_t", "_i"]).reset_index(drop=True)
