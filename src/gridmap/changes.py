"""What changed between two plans of the same district.

A re-partition (:func:`gridmap.repartition`) is handed over as tables of what
changed, made here from the plan before and the plan after:

- every building of either plan with its grid before and after, and whether it
  was kept, moved, is new or was demolished (``_building_changes``);
- the summary a re-partition keeps in its metrics under ``"changes"``: the share
  kept, the counts, the grids new and gone, and the moves per pair of grids
  (``_changes``; the CLI writes the moves as ``changes.csv``);
- the table for the grid workers, one row per building that changes grid, with
  the grid codes and the building's address (:func:`handover`, ``handover.csv``).

The map of a re-partition (:func:`gridmap.render.diff_map`) draws the same tables.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # a plan's handover property calls handover(): no import back
    from .plan import GridPlan

__all__ = ["ADDRESS_COLUMNS", "handover", "id_key", "least_moved"]

#: columns copied into the handover table when the buildings have them, so that a
#: grid worker can find the building
ADDRESS_COLUMNS = ("name", "address", "addr_street", "addr_housenumber", "addr:street",
                   "addr:housenumber", "地址")


def id_key(ids: Any) -> pd.Series:
    """Building ids as the text they are compared by: trimmed, a whole number without ``.0``.

    So that ``12``, ``12.0``, ``"12"`` and ``" 12 "`` are one building, whatever
    type a layer's reader gave its ids.

    Examples
    --------
    >>> id_key(pd.Series([12, 12.0, " 12 ", "b-7", None])).tolist()
    ['12', '12', '12', 'b-7', '']
    """
    ids = pd.Series(ids)
    return pd.Series([id_text(x) for x in ids.tolist()], index=ids.index, dtype=object)


def id_text(x: Any) -> str:
    """One id as :func:`id_key` compares it (``""`` for a missing one)."""
    if x is None or (isinstance(x, (float, np.floating)) and np.isnan(x)):
        return ""
    if isinstance(x, (float, np.floating)) and float(x).is_integer():
        return str(int(x))
    return str(x).strip()


def building_id_column(plan: GridPlan) -> str:
    """The column of the plan's building ids: its ``id_column``, else ``id``."""
    return plan.params.get("id_column") or "id"


def _ids_like(plan: GridPlan, ids: pd.Series, id_col: str) -> GridPlan:
    """The plan with its building ids as the current layer gives them.

    Ids are matched as text (:func:`id_key`); a plan's building whose id matches
    a current one takes that id as the current layer spells it (so that the
    outputs keep the current layer's ids); one that matches none (demolished)
    keeps its own.
    """
    old = plan.buildings[id_col]
    now = dict(zip(id_key(ids).tolist(), pd.Series(ids).tolist(), strict=True))
    keys = id_key(old).tolist()
    matched = [now.get(k, o) for k, o in zip(keys, old.tolist(), strict=True)]
    if matched == old.tolist() and pd.Series(matched).dtype == old.dtype:
        return plan
    b = plan.buildings.copy()
    b[id_col] = pd.Series(matched, index=b.index)
    if b[id_col].dtype == object and pd.Series(ids).dtype != object:
        # every id matched, all of the current layer's type: keep the column that type
        # (unless some demolished building's id is not of that type)
        with contextlib.suppress(TypeError, ValueError):
            b[id_col] = b[id_col].astype(pd.Series(ids).dtype)
    return dataclasses.replace(plan, buildings=b)


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
    floor = least_moved(old, new, both, by, fresh=every[every["change"] == "new"])
    return {
        "share_households_kept": kept / total if total else 1.0,
        "share_moved": 1 - kept / total if total else 0.0,
        "least_share_moved": floor / total if total else 0.0,
        f"least_{by}_moved": floor,
        "buildings_moved": len(moved),
        f"{by}_moved": float(moved[by].sum()),
        "buildings_new": int((every["change"] == "new").sum()),
        "buildings_demolished": int((every["change"] == "demolished").sum()),
        "grids_new": sorted(new_ids - old_ids),
        "grids_gone": sorted(old_ids - new_ids),
        "moves": pairs.to_dict("records"),
        "before": {k: old.metrics.get(k) for k in _COMPARED},
        "after": {k: new.metrics.get(k) for k in _COMPARED},
    }


#: the figures of the plan running and of the new one set side by side
_COMPARED = ("n_grids", "max_abs_deviation", "n_out_of_tolerance", "n_grids_out_of_tolerance",
             "n_communities_out_of_scale")


def least_moved(old: GridPlan, new: GridPlan, both: pd.DataFrame, by: str, *,
                fresh: pd.DataFrame | None = None) -> float:
    """The least weight a re-partition to the new plan's grid counts must move.

    The minimal-disruption floor of a plan with every grid in the band, community
    by community, from the buildings in both plans (``both``: their grid before,
    ``old``, and weight now), against the band of the new plan (its community
    mean and tolerance).  Each of three is a lower bound, and the largest is
    taken: the weight above the band in the grids as they were (it must leave
    them, or all of a grid's weight does if it goes); the weight missing below
    the band, in the grids as they were and in every grid added (a new grid
    starts empty), less the largest shortfalls of as many grids as are removed
    and less the weight of the new buildings (``fresh``, with their grid after,
    ``new``), which go where they are needed without moving anyone; and, where
    grids are removed, the weight of the lightest that many (all of it moves).
    Oversize and island grids are not counted.  A plan that leaves grids out of
    the band may move less.

    Examples
    --------
    A community of two grids of 300 households ±10 % whose first grid grew to
    400: at least 70 must move (400 - 330), whatever the plan.
    """
    ng, og = new.grids, old.grids
    ordinary_new = ng[ng["flag"].fillna("") == ""]
    ordinary_old = og[og["flag"].fillna("") == ""]
    weight_now = both.groupby("old")[by].sum()
    arriving = pd.Series(dtype=float)
    if fresh is not None and len(fresh):
        community_of = ng.set_index("grid_id")["community_id"]
        arriving = fresh.groupby(fresh["new"].map(community_of))[by].sum()
    total = 0.0
    for c, grids in ordinary_new.groupby("community_id"):
        mean = float(grids["community_mean"].iloc[0])
        tol = float(grids["tolerance"].iloc[0])
        if not np.isfinite(mean) or mean <= 0:
            continue
        lo, hi = mean * (1 - tol), mean * (1 + tol)
        was = ordinary_old.loc[ordinary_old["community_id"] == c, "grid_id"]
        w = np.array([float(weight_now.get(g, 0.0)) for g in was.tolist()])
        added, removed = max(len(grids) - len(w), 0), max(len(w) - len(grids), 0)
        over = float(np.maximum(w - hi, 0.0).sum())
        short = np.sort(np.maximum(lo - w, 0.0))[::-1]
        under = max(float(short[removed:].sum()) + added * lo
                    - float(arriving.get(c, 0.0)), 0.0)
        gone = float(np.sort(w)[:removed].sum())
        total += max(over, under, gone)
    return total


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
