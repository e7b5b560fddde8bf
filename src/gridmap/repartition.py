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
import datetime
import os
import warnings
from collections.abc import Iterable
from typing import Any

import geopandas as gpd
import pandas as pd

from ._errors import GridmapWarning, LayerValidationError, OptionError
from .changes import (
    ADDRESS_COLUMNS,  # noqa: F401 (re-exported from here)
    _changes,
    _ids_like,
    handover,
    id_key,
)
from .codes import CODE_COLUMN, register_of, update_register
from .datum import check_datum, to_wgs84
from .layers import LayerSources
from .options import Workload, options_from_keywords
from .plan import GridPlan, read_plan
from .previous import PreviousPlan
from .register import is_table

__all__ = ["check_locks", "handover", "repartition"]


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
        Households (of the balance field) a community may move per household
        it gained or lost, plus a grid's worth, and one more per grid added or
        removed for its scale; a rebalance moving more is not made, and the note
        says so (default 2; ``None``: no bound).
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
    from ._progress import STAGES, StageTimer
    from .delineation import make_plan

    plan = plan if isinstance(plan, GridPlan) else read_plan(plan)
    _check_plan(plan, lock)
    params = plan.params
    # the settings the plan was made with, unless overridden here
    given, asked = _settings_of(plan, target=target, tolerance=tolerance,
                                per_type="targets" in kwargs)
    workload = kwargs.pop("workload", None)
    if workload is not None:
        # a formula alone replaces the plan's formula and keeps its capacity
        given["workload"] = workload if isinstance(workload, Workload) or \
            given.get("workload") is None else \
            dataclasses.replace(given["workload"], formula=workload)
    by = by or params.get("by", "households")
    if plan.options is None:  # a plan written before options were stored
        target = target if target is not None else params.get("target", 300)
        tolerance = tolerance if tolerance is not None else params.get("tolerance", 0.1)
    old_b = plan.buildings
    id_col = id_column or params.get("id_column") or (
        "building_id" if "building_id" in old_b.columns else "id")
    datum = check_datum(kwargs.pop("input_datum", None) or params.get("input_datum")
                        or "wgs84")
    output_datum = kwargs.pop("output_datum", None) or params.get("output_datum") or datum
    plan, buildings, read_notes = _current_buildings(
        plan, buildings, id_col=id_col, by=by, encoding=encoding,
        strict=kwargs.get("strict") is True, datum=datum)
    population = _in_wgs84(population, datum, encoding)
    # targets per type given again: the types are those the grids were made with
    per_type = kwargs.get("type_column") or (
        plan.options.balance.type_column if plan.options is not None else None) \
        or "community_type"
    bnd = _communities_of(plan, own_targets=asked,
                          type_column=per_type if kwargs.get("targets") is not None else None)
    streets = plan.streets
    # the plan's own units: the grids it runs are unions of them, so a community
    # nobody touched comes back exactly as it was (street blocks derived again
    # from the grids' outline can differ by slivers); units that now hold more
    # than a grid, or lie in a community that changed, are split between their
    # buildings as blocks are
    units = kwargs.pop("units", None)
    if units is None and len(plan.units):
        units = plan.units[[plan.units.geometry.name]]
    progress = kwargs.pop("progress", None)
    hooks = _edit_hooks(kwargs, plan)
    keywords = {"by": by, "target": target, "tolerance": tolerance, "seed": seed,
                "id_column": id_col, "columns": columns, "encoding": encoding,
                "street_column": "class" if streets is not None else None,
                "division_code": params.get("division_code", "000000"),
                "output_datum": output_datum, **kwargs}
    options, problems = options_from_keywords(
        given, {k: v for k, v in keywords.items()
                if v is not None or k not in ("target", "tolerance")},
        function="repartition")
    sources = LayerSources(buildings, streets, population, bnd, None, units, None)
    timer = StageTimer(progress, stages=STAGES[:-2])
    try:
        new = make_plan(sources, options, timer=timer, problems=problems,
                        previous=_previous_plan(plan, buildings, id_col, by, lock,
                                                move_budget, *hooks),
                        notes_first=read_notes)  # the encoding guessed, said first
    finally:
        timer.close()
    changes = _changes(plan, new, id_col, by)
    changes["settings_changed"] = _settings_changed(plan.options, options)
    before = _register(plan)
    codes = update_register(before, new.grids, today=datetime.date.today().isoformat())
    was_active = set(before.loc[before["status"] == "active", "code"].astype(str))
    changes["codes_retired"] = sorted(
        was_active & set(codes.loc[codes["status"] == "retired", "code"].astype(str)))
    changes["codes_new"] = sorted(set(codes["code"].astype(str))
                                  - set(before["code"].astype(str)))
    made = new.options
    if plan.options is not None and made is not None:
        # the road and unit grids are the plan's, kept as they were: so are the
        # settings they were carved with, for the next re-partition to find
        made = dataclasses.replace(made, special=plan.options.special)
    metrics = {**new.metrics, "changes": changes,
               "params": {**new.params, "input_datum": datum},
               **({"options": made.to_dict()} if made is not None else {})}
    return dataclasses.replace(new, metrics=metrics, previous=plan, codes=codes,
                               options=made)


def _edit_hooks(kwargs: dict[str, Any], plan: GridPlan) -> tuple[GridPlan, frozenset[Any]]:
    """What :func:`gridmap.apply_edits` passes a re-partition (taken out of ``kwargs``).

    The plan before the edits, whose grid weights count (so that the grids
    edited count as changed and may be re-balanced), and the ids of the
    buildings moved by hand, pinned in their grids.
    """
    return (kwargs.pop("_weights_from", None) or plan,
            frozenset(kwargs.pop("_pinned", ())))


def _check_plan(plan: GridPlan, lock: Iterable[int]) -> None:
    """Refuse, before any work, a plan a re-partition cannot follow, or bad locks."""
    check_locks(plan.grids["grid_id"], lock)
    if not len(plan.buildings):
        # the plan's units were given directly (census blocks): nothing ties a
        # household to a building whose grid could be kept
        msg = (f"this plan of {len(plan.grids)} grids was made from units given directly "
               f"({len(plan.units)} units, no buildings); a re-partition follows buildings "
               "from one plan to the next. Delineate the new units again with "
               "gridmap.delineate(units=...) (gridmap delineate --units).")
        raise LayerValidationError(msg)


def _communities_of(plan: GridPlan, *, own_targets: bool,
                    type_column: str | None) -> gpd.GeoDataFrame:
    """The plan's communities as boundaries, each with what sets its target.

    With ``own_targets`` each community keeps the target and tolerance it had (of
    its type, or its own), as a type of its own (:data:`COMMUNITY_TYPE`); with
    targets per type given again (``type_column`` set), each community's type is
    the one its grids were made with.
    """
    grids = plan.grids
    first = grids.drop_duplicates("community_id").set_index("community_id")
    bnd = grids.dissolve(by="community_id", as_index=False)[
        ["community_id", grids.geometry.name]]
    if "subdistrict_id" in grids.columns:
        bnd["subdistrict_id"] = bnd["community_id"].map(first["subdistrict_id"])
    if plan.metrics.get("params", {}).get("codes") == "official":
        # a grid's code is its community's official code and a sequence: new
        # grids of a community none of whose grids is kept take it again
        bnd[CODE_COLUMN] = bnd["community_id"].map(first["code"].astype(str).str[:-3])
    if own_targets:
        bnd[COMMUNITY_TYPE] = bnd["community_id"].astype(str)
    elif type_column is not None and "community_type" in grids.columns:
        bnd[type_column] = bnd["community_id"].map(first["community_type"])
    return bnd


def _register(plan: GridPlan) -> pd.DataFrame:
    """The plan's code register (its grids' codes, all active, if it kept none)."""
    if plan.codes is not None:
        return plan.codes
    return register_of(plan.grids, since=str(plan.metrics.get("made", "")) or "")


#: the column a re-partition gives its communities so that each keeps its target
COMMUNITY_TYPE = "_gridmap_community"

#: the option groups a re-partition takes from the plan (the inputs are the new ones)
CARRIED = ("balance", "population", "workload", "search")


def _settings_of(plan: GridPlan, *, target: float | None, tolerance: float | None,
                 per_type: bool = False) -> tuple[dict[str, Any], bool]:
    """The option objects of the plan, for its re-partition; and whether targets apply.

    Balance, population model, workload and search come from the plan
    (:attr:`GridPlan.options`).  Where neither ``target`` nor ``tolerance`` is
    given, every community keeps the target and tolerance its grids had (their
    ``target`` and ``tolerance`` columns), as a type of its own; the second value
    says so.  ``per_type`` (a table of targets per type given again) replaces them.
    """
    made = plan.options
    if made is None:
        return {}, False
    given: dict[str, Any] = {name: getattr(made, name) for name in CARRIED}
    g = plan.grids
    per = target is None and tolerance is None and not per_type \
        and {"target", "tolerance"} <= set(g.columns)
    if per:
        rows = g.dropna(subset=["target", "tolerance"]).drop_duplicates("community_id")
        targets = {str(c): (float(t), float(tol)) for c, t, tol in
                   zip(rows["community_id"], rows["target"], rows["tolerance"], strict=True)}
        given["balance"] = dataclasses.replace(given["balance"], targets=targets,
                                               type_column=COMMUNITY_TYPE)
    else:
        # a target or tolerance given: it applies to every community (the types'
        # column is not among the plan's layers)
        given["balance"] = dataclasses.replace(given["balance"], targets=None)
    return given, bool(per)


def _settings_changed(before: Any, after: Any) -> dict[str, list[Any]]:
    """The settings a re-partition was given that differ from the plan's: name → [was, now].

    Of the groups carried over (:data:`CARRIED`); the targets and type column a
    re-partition sets itself (each community its own) are not counted.
    """
    if before is None:
        return {}
    was, now = before.to_dict(), after.to_dict()
    out: dict[str, list[Any]] = {}
    for group in CARRIED:
        for name, value in now[group].items():
            if (group, name) in (("balance", "targets"), ("balance", "type_column")) \
                    and now["balance"]["type_column"] == COMMUNITY_TYPE:
                continue
            if was[group].get(name) != value:
                out[f"{group}.{name}"] = [was[group].get(name), value]
    return out


def _in_wgs84(population: Any, datum: str, encoding: str | None) -> Any:
    """A population layer in ``datum`` (the plan's, unless told otherwise) in WGS84.

    The current layers come from where the plan's did; the plan's own layers are
    in WGS84 already.  A table (a register) has no coordinates to turn.
    """
    if population is None or datum == "wgs84" or is_table(population):
        return population
    from .io import read_layer_noted

    return to_wgs84(read_layer_noted(population, role="population",
                                     encoding=encoding)[0], datum)


def _current_buildings(plan: GridPlan, buildings: Any, *, id_col: str, by: str,
                       encoding: str | None, strict: bool, datum: str = "wgs84"
                       ) -> tuple[GridPlan, Any, list[str]]:
    """The current buildings read and checked against the plan; the notes on them.

    Default: the plan's own.  Otherwise read (notes said as warnings), without the
    plan's derived columns left blank, in the plan's CRS (reprojected, with a
    note), their ids matching enough of the plan's (:func:`_check_ids_match`);
    the plan comes back with its ids spelled as the current layer spells them.
    """
    old_b = plan.buildings
    if buildings is None:
        drop = [c for c in ("grid_id", "unit_id") if c in old_b.columns]
        return plan, old_b.drop(columns=drop), []
    from .io import read_layer_noted

    buildings, notes = read_layer_noted(buildings, role="buildings", encoding=encoding,
                                        strict=strict)
    for note in notes:
        warnings.warn(note, GridmapWarning, stacklevel=3)
    buildings = _without_derived_gaps(buildings, plan, by)
    if datum != "wgs84":
        buildings = to_wgs84(buildings, datum)
    buildings, moved_crs = _in_plans_crs(buildings, plan)
    if moved_crs:
        warnings.warn(moved_crs, GridmapWarning, stacklevel=3)
        notes.append(moved_crs)
    if id_col in buildings.columns and id_col in old_b.columns:
        _check_ids_match(old_b[id_col], buildings[id_col], id_col)
        plan = _ids_like(plan, buildings[id_col], id_col)
    return plan, buildings, notes


def check_locks(grid_ids: Iterable[Any], lock: Iterable[int], *, option: str = "lock",
                plan: str = "the plan") -> None:
    """Refuse grids to lock that the plan (its ``grid_ids``) does not have.

    The command line calls it before any work with ``option="--lock"``.
    """
    have = set(pd.to_numeric(pd.Series(list(grid_ids)), errors="coerce").dropna()
               .astype(int).tolist())
    unknown = sorted({int(x) for x in lock} - have)
    if unknown:
        raise OptionError(
            f"{option} names grid(s) {unknown} that {plan} does not have; its grid ids "
            f"run from {min(have, default=0)} to {max(have, default=0)} (the grid_id "
            "column of its grids layer): lock only grids of the plan being re-partitioned.")


#: the least share of the plan's buildings the current buildings must match by id
MIN_ID_MATCH = 0.5


def _check_ids_match(old: pd.Series, now: pd.Series, id_col: str) -> None:
    """Refuse current buildings whose ids match too few of the plan's.

    Ids are compared as text (:func:`~gridmap.changes.id_key`): ``12``, ``"12"``
    and ``12.0`` are one building.  Fewer than :data:`MIN_ID_MATCH` of the plan's
    buildings found among the current ones is not a district that changed but
    another id column (or another district): every building would count as
    demolished and built again.
    """
    old_keys, now_keys = set(id_key(old).tolist()), set(id_key(now).tolist())
    if not old_keys:
        return
    share = len(old_keys & now_keys) / len(old_keys)
    if share >= MIN_ID_MATCH:
        return
    only_old = sorted(old_keys - now_keys)[:5]
    only_now = sorted(now_keys - old_keys)[:5]
    raise LayerValidationError(
        f"the current buildings' {id_col!r} match only {share:.0%} of the plan's "
        f"{len(old_keys):,} buildings (at least {MIN_ID_MATCH:.0%} must match: fewer is "
        f"another id column or another district, not a change); the plan has ids such as "
        f"{only_old}, the current buildings {only_now}. Give the buildings the ids the "
        f"plan was made with (--id-column names the column), or delineate anew.")


def _in_plans_crs(buildings: Any, plan: GridPlan) -> tuple[Any, str]:
    """The current buildings in the plan's CRS, and a note if they had to be reprojected."""
    crs = plan.grids.crs
    have = getattr(buildings, "crs", None)
    if crs is None or have is None or have == crs:
        return buildings, ""
    note = (f"the current buildings are in {have.to_string()}, the plan in "
            f"{crs.to_string()}: reprojected to the plan's CRS, which the new plan keeps")
    return buildings.to_crs(crs), note


def _previous_plan(plan: GridPlan, buildings: Any, id_col: str, by: str,
                   lock: Iterable[int], move_budget: float | None,
                   weights_from: GridPlan | None = None,
                   pinned: frozenset[Any] = frozenset()) -> PreviousPlan:
    """What the plan running says for its re-partition.

    The weights of its grids are those of ``weights_from`` (default: the plan).
    """
    old_b = plan.buildings
    weighed = (weights_from or plan).buildings
    split_buildings: set[Any] = set()
    # the blocks the plan split between buildings are split again, so that its
    # units, and so its grids, come back as they were
    if "unit_id" in old_b.columns and "split" in plan.units.columns:
        was_split = plan.units.loc[plan.units["split"].astype(bool), "unit_id"]
        split_buildings = set(old_b.loc[old_b["unit_id"].isin(was_split), id_col].tolist())
    # the grids that lost a building to demolition
    now_ids = set(pd.Series(buildings[id_col]).tolist()) if id_col in buildings else set()
    demolished = sorted(set(old_b.loc[~old_b[id_col].isin(now_ids), "grid_id"].tolist()))
    register = _register(plan)
    used = (frozenset(register["code"].astype(str)),
            int(pd.to_numeric(register["grid_id"], errors="coerce").max()))
    return PreviousPlan(
        used=used,
        building_grid=pd.Series(old_b["grid_id"].to_numpy(), index=old_b[id_col].to_numpy()),
        grids=plan.grids, lock=tuple(lock), move_budget=move_budget,
        grid_weight=(weighed.groupby("grid_id")[by].sum() if by in weighed.columns
                     else None),
        building_weight=(pd.Series(old_b[by].to_numpy(), index=old_b[id_col].to_numpy())
                         if by in old_b.columns else None),
        split_buildings=frozenset(split_buildings), demolished_grids=tuple(demolished),
        pinned_buildings=pinned)


#: columns a plan adds to its buildings besides its ids: the population fields it
#: used or estimated, and the estimate flag
DERIVED_COLUMNS = ("households", "pop_actual", "pop_registered", "pop_floating",
                   "pop_absent", "elderly", "estimated")


def _without_derived_gaps(buildings: Any, plan: GridPlan, by: str) -> Any:
    """The current buildings without the plan's own population columns.

    Those columns, which new buildings leave blank, are worked out again; the balance
    field stays, and must be filled.
    """
    if not isinstance(buildings, gpd.GeoDataFrame):
        return buildings
    ours = [c for c in DERIVED_COLUMNS if c != by and c in buildings.columns
            and c in plan.buildings.columns and buildings[c].isna().any()]
    return buildings.drop(columns=ours) if ours else buildings
