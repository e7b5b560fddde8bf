"""Edits drawn by hand on a plan (``edits.json``), checked and applied.

A drawn plan goes to the communities for their views (征求意见) and the planner
adjusts it (调整完善): a building whose entrance faces the other street, a lane
residents use.  The page :func:`gridmap.editor.write_editor` writes lets the
planner move units between grids and saves the moves as ``edits.json``;
:func:`apply_edits` (``gridmap apply``) checks them against the plan they were
drawn on and makes the adjusted plan, with every figure recomputed.

The file (a stable contract)::

    {"plan": "<plan_id of the plan the edits were drawn on>",
     "by": "households",
     "moves": [{"unit_id": 17, "from": 3, "to": 4},
               {"id": "B-0042", "from": 5, "to": 2}],
     "locks": [7],
     "note": "entrance of B-0042 faces Nanjing Road"}

A move names a unit by the ``unit_id`` the plan writes (a street block, or a
building's cell where the block was split), or a building by its id (``"id"``):
then the building's whole unit moves.  ``from`` is the grid the unit is in in the
plan, ``to`` the grid it goes to; ids match as text (``17`` and ``"17"`` alike).
``locks`` are grids a re-balance after the edits must not change; ``by`` and
``note`` are kept in the adjusted plan's metrics.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import networkx as nx
import numpy as np
import pandas as pd
import shapely

from ._errors import EditError
from .changes import building_id_column, id_text
from .plan import GridPlan, read_plan

if TYPE_CHECKING:
    import geopandas as gpd

__all__ = ["EDITS_FILE", "apply_edits", "read_edits"]

#: the file the editing page saves and ``gridmap apply`` reads
EDITS_FILE = "edits.json"


def read_edits(source: str | os.PathLike | Mapping[str, Any]) -> dict[str, Any]:
    """Read ``edits.json`` (or take its contents) and check its form.

    Returns ``{"plan", "by", "moves", "locks", "note"}``, each move a dict with
    ``unit_id`` or ``id``, ``from`` and ``to``.  Every problem of form is listed
    in one :class:`~gridmap.EditError`.

    Examples
    --------
    >>> read_edits({"plan": "ab12", "moves": [{"unit_id": 3, "from": 1, "to": 2}]})
    ... # doctest: +NORMALIZE_WHITESPACE
    {'plan': 'ab12', 'by': None, 'moves': [{'unit_id': 3, 'from': 1, 'to': 2}],
     'locks': [], 'note': ''}
    """
    if isinstance(source, Mapping):
        data: Any = dict(source)
        where = "the edits"
    else:
        path = Path(source)
        if not path.exists():
            msg = f"no edits at {str(source)!r}: expected the {EDITS_FILE} the page saved"
            raise EditError(msg)
        try:
            data = json.loads(path.read_text(encoding="utf-8-sig"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            msg = f"{path} is not JSON ({exc}); expected the {EDITS_FILE} the page saved"
            raise EditError(msg) from exc
        where = str(path)
    if not isinstance(data, dict):
        msg = f"{where} holds a {type(data).__name__}; expected an object with 'plan' " \
              "and 'moves'"
        raise EditError(msg)
    problems = []
    if not isinstance(data.get("plan"), str) or not data["plan"]:
        problems.append(f"{where} has no 'plan' (the id of the plan the edits were drawn "
                        f"on; seen {data.get('plan')!r})")
    moves = data.get("moves", [])
    if not isinstance(moves, list):
        problems.append(f"'moves' is a {type(moves).__name__}; expected a list")
        moves = []
    for i, m in enumerate(moves):
        if not isinstance(m, dict):
            problems.append(f"moves[{i}] is {m!r}; expected an object with 'unit_id' (or "
                            "'id'), 'from' and 'to'")
            continue
        if ("unit_id" in m) == ("id" in m):
            problems.append(f"moves[{i}] names {'both' if 'id' in m else 'neither'} "
                            "'unit_id' and 'id': name the unit, or the building, once")
        missing = [k for k in ("from", "to") if m.get(k) is None]
        if missing:
            problems.append(f"moves[{i}] has no {' or '.join(repr(k) for k in missing)}")
    locks = data.get("locks", [])
    if not isinstance(locks, list):
        problems.append(f"'locks' is {locks!r}; expected a list of grid ids")
        locks = []
    if problems:
        raise EditError(problems)
    return {"plan": data["plan"], "by": data.get("by"), "moves": moves, "locks": locks,
            "note": str(data.get("note") or "")}


def apply_edits(
    plan: GridPlan | str | os.PathLike,
    edits: str | os.PathLike | Mapping[str, Any],
    *,
    allow_pieces: bool = False,
    rebalance: bool = False,
    lock: Iterable[int] = (),
    seed: int | None = 0,
    effort: str | int = "default",
    time_limit: float | None = None,
    progress: bool | None = None,
) -> GridPlan:
    """Apply edits drawn by hand to the plan they were drawn on.

    Parameters
    ----------
    plan
        The plan the edits were drawn on: a :class:`GridPlan` or its
        ``plan.gpkg`` / folder.
    edits
        ``edits.json`` (its path, or its contents as a dict): see
        :mod:`gridmap.edits` for the format.
    allow_pieces
        Accept a grid the edits leave in pieces (noted in the metrics);
        otherwise such edits are refused, naming the grid.
    rebalance
        Then restore the band around the edited grids: the grids edited and
        their neighbours may change, except locked ones and the grids that took
        a unit by hand (so that no unit the planner moved moves again).
    lock
        Grids the re-balance must not change, besides the edits' own ``locks``.
    seed, effort, time_limit
        Seed and budget of the re-balance, as for :func:`gridmap.repartition`.
    progress
        Show progress bars (default: when run interactively).

    Returns
    -------
    GridPlan
        The adjusted plan: grid ids and codes kept, every grid polygon made again
        from its units (so the grids still tile the area), every metric, the
        workload and the workers recomputed; ``previous`` is the plan edited, so
        that :attr:`~GridPlan.handover` and :meth:`~GridPlan.diff_map` show the
        edits; ``metrics["edits"]`` says what was applied, with the note.

    Raises
    ------
    EditError
        Edits of another plan, a ``from`` that no longer holds, a unit or grid
        the plan does not have, a unit moved into another community or into or
        out of a road or unit grid, or a result with a grid in pieces or empty.

    Examples
    --------
    >>> import geopandas as gpd, shapely, gridmap
    >>> from shapely import LineString
    >>> b = gpd.GeoDataFrame({"id": range(4), "households": [100] * 4},
    ...     geometry=[shapely.box(x * 50 + 10, 10, x * 50 + 30, 30) for x in range(4)],
    ...     crs=32651)
    >>> s = gpd.GeoDataFrame({"highway": ["residential"] * 7},
    ...     geometry=[LineString([(v, -5), (v, 45)]) for v in range(0, 201, 50)]
    ...     + [LineString([(-5, v), (205, v)]) for v in (0, 40)], crs=32651)
    >>> plan = gridmap.delineate(b, s, target=200)
    >>> plan.units[["unit_id", "grid_id"]].values.tolist()
    [[1, 1], [2, 1], [3, 2], [4, 2]]
    >>> edits = {"plan": plan.plan_id, "moves": [{"unit_id": 3, "from": 2, "to": 1}]}
    >>> after = apply_edits(plan, edits)
    >>> after.grids.set_index("grid_id")["households"].to_dict()
    {1: 300.0, 2: 100.0}
    >>> after.metrics["changes"]["buildings_moved"]
    1
    """
    if not isinstance(plan, GridPlan):
        plan = read_plan(plan)
    edits = read_edits(edits)
    moved = _resolve(plan, edits)
    labels = _labels_after(plan, moved)
    before = plan.units["grid_id"].to_numpy()
    touched = {int(g) for g in (*before[labels != before], *labels[labels != before])}
    pieces = _check_result(plan, labels, touched, allow_pieces=allow_pieces)
    edited = _edited_plan(plan, labels, touched)
    locks = {int(x) for x in edits["locks"]} | {int(x) for x in lock}
    new, rounds = _remade(plan, edited, touched=touched, pinned=set(moved), locks=locks,
                          rebalance=rebalance, seed=seed, progress=progress,
                          budget={"effort": effort, "time_limit": time_limit})
    return _with_changes(plan, new, {
        "plan": edits["plan"], "by": edits["by"], "note": edits["note"],
        "n_moves": len(edits["moves"]), "units_moved": len(moved),
        "buildings_moved": int(plan.buildings["unit_id"].isin(
            plan.units["unit_id"].to_numpy()[list(moved)]).sum())
        if "unit_id" in plan.buildings.columns else 0,
        "grids_edited": sorted(touched), "locks": sorted(locks),
        "allow_pieces": allow_pieces, "grids_in_pieces": pieces,
        "rebalance": rebalance, "rebalance_rounds": rounds})


def _resolve(plan: GridPlan, edits: dict[str, Any]) -> dict[int, Any]:
    """Every unit the edits move (by position in the plan's units) and where to.

    Refuses, listing every one, edits of another plan and moves that do not hold.
    """
    if edits["plan"] != plan.plan_id:
        msg = (f"these edits were drawn on plan {edits['plan']}, and this plan is "
               f"{plan.plan_id}: apply them to the plan they were drawn on (its "
               "metrics.json says its plan_id), or draw them again on this one with "
               "gridmap edit")
        raise EditError(msg)
    units = plan.units
    unit_pos = {id_text(u): i for i, u in enumerate(units["unit_id"].tolist())}
    unit_grid = units["grid_id"].to_numpy()
    grids = plan.grids.set_index(plan.grids["grid_id"].map(id_text))
    id_col = building_id_column(plan)
    b = plan.buildings
    building_unit = ({id_text(i): id_text(u) for i, u in zip(b[id_col], b["unit_id"],
                                                                strict=True)}
                     if id_col in b.columns and "unit_id" in b.columns else {})
    problems: list[str] = []
    moved: dict[int, Any] = {}
    locks = {id_text(x) for x in edits["locks"]}
    for i, m in enumerate(edits["moves"]):
        what, pos = _unit_of(m, unit_pos, building_unit, id_col)
        if pos is None:
            problems.append(f"moves[{i}]: {what}")
            continue
        src, dst = id_text(m["from"]), id_text(m["to"])
        bad = [f"no grid {g!r} in the plan" for g in dict.fromkeys((src, dst))
               if g not in grids.index]
        if bad:
            problems.append(f"moves[{i}] ({what}): " + "; ".join(bad))
            continue
        now = id_text(unit_grid[pos])
        problem = _move_problem(grids, now, src, dst, locks)
        if pos in moved:
            problem = "the unit is moved twice; keep one move per unit"
        if problem:
            problems.append(f"moves[{i}] ({what}, grid {src} -> {dst}): {problem}")
            continue
        if src != dst:
            moved[pos] = grids.loc[dst, "grid_id"]
    if problems:
        raise EditError(problems)
    return moved


def _unit_of(move: Mapping[str, Any], unit_pos: dict[str, int],
             building_unit: dict[str, str], id_col: str) -> tuple[str, int | None]:
    """The unit a move names (its description, and its position; None if none)."""
    if "unit_id" in move:
        key = id_text(move["unit_id"])
        pos = unit_pos.get(key)
        if pos is None:
            return (f"no unit {move['unit_id']!r} in the plan (its units are numbered "
                    f"by unit_id, {len(unit_pos)} of them)"), None
        return f"unit {key}", pos
    key = id_text(move["id"])
    unit = building_unit.get(key)
    if unit is None:
        return f"no building with {id_col} {move['id']!r} in the plan", None
    return f"building {key} (unit {unit})", unit_pos.get(unit)


def _move_problem(grids: pd.DataFrame, now: str, src: str, dst: str,
                  locks: set[str]) -> str:
    """Why a unit in grid ``now`` cannot move from ``src`` to ``dst`` ("" if it can)."""
    if now != src:
        return (f"the unit is in grid {now}, not {src}: the plan changed since the edits "
                "were drawn; draw them again on this plan")
    if src == dst:
        return ""
    if locks & {src, dst}:
        return f"grid {sorted(locks & {src, dst})[0]} is locked in these edits"
    kinds = grids.loc[[src, dst], "kind"].astype(str).tolist() if "kind" in grids else []
    special = [k for k in kinds if k != "community"]
    if special:
        return (f"a {special[0]} grid is carved along its street or site and takes or "
                "gives no unit by hand; delineate again to change it")
    c_src, c_dst = (id_text(grids.loc[g, "community_id"]) for g in (src, dst))
    if c_src != c_dst:
        return (f"grid {src} is of community {c_src} and grid {dst} of {c_dst}: grids do "
                "not cross community boundaries")
    return ""


def _labels_after(plan: GridPlan, moved: Mapping[int, Any]) -> np.ndarray:
    """The grid id of every unit after the moves."""
    labels = plan.units["grid_id"].to_numpy().copy()
    for pos, grid in moved.items():
        labels[pos] = grid
    return labels


def _check_result(plan: GridPlan, labels: np.ndarray, changed: set[int], *,
                  allow_pieces: bool) -> list[Any]:
    """Refuse a grid left empty or (unless allowed) in more pieces than it was in.

    Empty: no unit left, or no building where it had some (land nobody lives or
    works on is no grid for a grid worker).  Returns the grids the edits leave in
    pieces (allowed).
    """
    before = plan.units["grid_id"].to_numpy()
    housed = _housed(plan)
    empty = [g for g in sorted(changed) if not (labels == g).any()
             or (((before == g) & housed).any() and not ((labels == g) & housed).any())]
    problems = [f"grid {g} would be empty (no building left in it): move at least one "
                "unit with buildings back, or merge it by re-partitioning" for g in empty]
    after = {g: _n_pieces(plan.graph, np.flatnonzero(labels == g)) for g in sorted(changed)}
    pieces = [g for g, n in after.items()
              if n > max(1, _n_pieces(plan.graph, np.flatnonzero(before == g)))]
    if pieces and not allow_pieces:
        problems += [f"grid {g} would be in {after[g]} pieces: move the units that cut it "
                     "too, or pass allow_pieces=True (--allow-pieces) to accept it"
                     for g in pieces]
    if problems:
        raise EditError(problems)
    return pieces


def _housed(plan: GridPlan) -> np.ndarray:
    """Whether each unit of the plan holds a building (all, for a plan of units alone)."""
    b = plan.buildings
    if "unit_id" not in b.columns or not len(b):
        return np.ones(len(plan.units), dtype=bool)
    return plan.units["unit_id"].isin(b["unit_id"]).to_numpy()


def _n_pieces(graph: nx.Graph, members: np.ndarray) -> int:
    """How many connected pieces the units ``members`` make."""
    if not len(members):
        return 0
    return nx.number_connected_components(graph.subgraph(members.tolist()))


def _edited_plan(plan: GridPlan, labels: np.ndarray, changed: set[int]) -> GridPlan:
    """The plan with the units (and their buildings) in their new grids.

    The polygons of the grids edited are the union of their units, good enough
    for a re-partition to find the grid of a unit with no building in it.
    """
    units = plan.units.copy()
    units["grid_id"] = labels
    buildings = plan.buildings.copy()
    if "unit_id" in buildings.columns and len(buildings):
        grid_of = pd.Series(labels, index=units["unit_id"].to_numpy())
        buildings["grid_id"] = buildings["unit_id"].map(grid_of).to_numpy()
    grids: gpd.GeoDataFrame = plan.grids.copy()
    geoms = np.asarray(units.geometry.values)
    for row, g in zip(range(len(grids)), grids["grid_id"].tolist(), strict=True):
        if g in changed:
            grids.iloc[row, grids.columns.get_loc(grids.geometry.name)] = shapely.union_all(
                geoms[labels == g])
    return dataclasses.replace(plan, units=units, buildings=buildings, grids=grids)


def _remade(plan: GridPlan, edited: GridPlan, *, touched: set[int], pinned: set[int],
            locks: set[int], rebalance: bool, seed: int | None,
            progress: bool | None, budget: dict[str, Any]) -> tuple[GridPlan, int]:
    """The edited plan made again (polygons, metrics), and re-balanced if asked.

    Without ``rebalance`` every grid is locked: nothing moves but what the
    planner moved.  With it the grids edited and their neighbours may change,
    but not those locked; should a unit the planner moved move again, the grids
    that took units by hand are locked too and it is done again.  Returns the
    plan and how many rounds the re-balance took.
    """
    from .repartition import repartition

    every = set(plan.grids["grid_id"].astype(int).tolist())
    if not rebalance:
        return repartition(edited, lock=sorted(every), seed=seed, progress=progress,
                           move_budget=None, _weights_from=plan), 0
    free = (touched | _neighbours(edited, touched)) - locks
    held: set[int] = set()
    taken = {int(edited.units["grid_id"].iloc[u]) for u in pinned}
    id_col = building_id_column(plan)
    b = edited.buildings
    pins = frozenset(b.loc[b["unit_id"].isin(edited.units["unit_id"].to_numpy()
                                             [sorted(pinned)]), id_col].tolist()) \
        if id_col in b.columns and "unit_id" in b.columns else frozenset()
    for rounds in (1, 2, 3):
        if rounds == 3:
            held = set(taken)  # the last round cannot move a unit taken by hand
        # the units moved by hand are pinned in their grids; a move that still
        # carried one off (a grid split in two, say) is undone by holding the
        # grid that took it
        new = repartition(edited, lock=sorted(every - (free - held)), seed=seed,
                          progress=progress, _weights_from=plan, _pinned=pins, **budget)
        strayed = _strayed(edited, new, pinned)
        if not strayed:
            return new, rounds
        held |= strayed
    return new, rounds


def _neighbours(plan: GridPlan, grids: set[int]) -> set[int]:
    """The grids next to ``grids`` (sharing a unit edge)."""
    label = plan.units["grid_id"].to_numpy().astype(np.int64)
    edges = np.array(list(plan.graph.edges()), dtype=np.int64).reshape(-1, 2)
    ga, gb = label[edges[:, 0]], label[edges[:, 1]]
    mine = np.isin(ga, list(grids)) | np.isin(gb, list(grids))
    across = mine & (ga != gb)
    return {int(g) for g in np.concatenate([ga[across], gb[across]])} - grids


def _strayed(edited: GridPlan, new: GridPlan, pinned: set[int]) -> set[int]:
    """The grids whose units moved by hand (``pinned``, by position) lost a building.

    Tested on the buildings of those units: each should be in its grid still.
    """
    id_col = building_id_column(new)
    b = edited.buildings
    if id_col not in b.columns or "unit_id" not in b.columns:
        return set()
    units = edited.units["unit_id"].to_numpy()[sorted(pinned)]
    mine = b[b["unit_id"].isin(units)]
    now = pd.Series(new.buildings["grid_id"].to_numpy(),
                    index=new.buildings[id_col].map(id_text).to_numpy())
    stays = now.reindex(mine[id_col].map(id_text).to_numpy()).to_numpy() \
        == mine["grid_id"].to_numpy()
    return {int(g) for g in mine.loc[~stays, "grid_id"].unique()}


def _with_changes(plan: GridPlan, new: GridPlan, edits: dict[str, Any]) -> GridPlan:
    """The adjusted plan with its changes counted against the plan edited."""
    from .changes import _changes

    id_col = building_id_column(new)
    by = new.params.get("by", "households")
    changes = _changes(plan, new, id_col, by)
    changes["settings_changed"] = {}
    notes = [*new.metrics.get("notes", [])]
    if edits["note"]:
        notes.append(f"edits: {edits['note']}")
    if edits["grids_in_pieces"]:
        notes.append(f"grids left in pieces by the edits (allowed): "
                     f"{', '.join(str(g) for g in edits['grids_in_pieces'])}")
    metrics = {**new.metrics, "changes": changes, "edits": edits, "notes": notes}
    return dataclasses.replace(new, metrics=metrics, previous=plan)
