"""Options as objects: each a concept a planner knows, each checking its own values.

A plan is made from layers and six option objects: :class:`Balance` (how heavy a
grid is and how even), :class:`Population` (how people are put on buildings),
:class:`SpecialGrids` (road and unit grids), :class:`Workload` (the load of a
grid worker), :class:`Search` (seed, restarts, how hard to look) and
:class:`Inputs` (how the layers are read: columns, CRS, encoding, the meaning of
street classes, the division code).  Each is frozen and checks every value when
it is made, so a bad value is refused before any work starts, with what is
wrong, the value seen and how to fix it (:class:`~gridmap.OptionError`).
:class:`MapOptions` says how the maps are drawn.

The command line builds the same objects from its arguments: every field with a
``cli`` entry in its metadata is an option of ``gridmap delineate`` (see
:func:`add_arguments` and :func:`from_arguments`), so a new option is added in one
place.  A plan stores its :class:`Options` (``plan.options``; ``metrics.json``
``options``) and :func:`gridmap.read_plan` gives them back.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import numbers
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ._errors import GridmapError, OptionError
from .adjacency import DEFAULT_BARRIERS
from .datum import DATUMS, datum_problem
from .effort import EFFORT_PRESETS
from .special import DEFAULT_ROAD_CLASSES, DEFAULT_UNIT_KINDS
from .units import NON_BLOCKING_CLASSES
from .workload import DEFAULT_CAPACITY, DEFAULT_WORKLOAD

__all__ = [
    "ISLAND_POLICIES",
    "MAP_SCHEMES",
    "TILE_PRESETS",
    "Balance",
    "Inputs",
    "MapOptions",
    "Options",
    "Population",
    "Search",
    "SpecialGrids",
    "Workload",
    "add_arguments",
    "check_crs",
    "effort_arg",
    "from_arguments",
    "options_from_keywords",
]

#: what to do with a part of a community cut off from the rest (an island)
ISLAND_POLICIES = ("own", "nearest", "error")


def _number(value: Any) -> bool:
    """A real number (numpy's too), not a bool, not NaN."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and \
        not math.isnan(value)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _cli(*flags: str, to: Callable[[Any], Any] | None = None, **kwargs: Any) -> dict:
    """Field metadata: the command-line flags of an option and argparse's keywords.

    And ``to``, which turns the parsed value into the field's.
    """
    return {"cli": {"flags": flags, "to": to, **kwargs}}


def _pair(option: str, example: str, cast: Callable[[str], Any] = str
          ) -> Callable[[str], tuple[str, Any]]:
    """An argparse type for ``KEY=VALUE``."""
    def parse(text: str) -> tuple[str, Any]:
        if "=" not in text:
            msg = f"{option} takes {example}, got {text!r}"
            raise argparse.ArgumentTypeError(msg)
        key, value = (t.strip() for t in text.split("=", 1))
        try:
            return key, cast(value)
        except ValueError:
            msg = f"{option} needs a number after '=', got {value!r} in {text!r}"
            raise argparse.ArgumentTypeError(msg) from None
    return parse


def _target_for(text: str) -> tuple[str, float | tuple[float, float]]:
    """``TYPE=TARGET[:TOLERANCE]`` of ``--target-for``."""
    key, val = _pair("--target-for", "TYPE=TARGET[:TOLERANCE] (e.g. old_town=250:0.15)")(text)
    try:
        parts = [float(x) for x in val.split(":")]
    except ValueError:
        msg = f"--target-for needs numbers after '=', got {val!r} in {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
    if len(parts) not in (1, 2):
        msg = f"--target-for takes TYPE=TARGET or TYPE=TARGET:TOLERANCE, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return key, (parts[0] if len(parts) == 1 else (parts[0], parts[1]))


def _dict_or_none(pairs: list[tuple[str, Any]]) -> dict[str, Any] | None:
    return dict(pairs) or None


def effort_arg(text: str) -> str | int:
    """``--effort``: a preset's name or a whole number of units of work."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    if text in EFFORT_PRESETS:
        return text
    msg = (f"--effort takes one of {', '.join(EFFORT_PRESETS)} or a whole number of units "
           f"of work, got {text!r}")
    raise argparse.ArgumentTypeError(msg)


class _Checked:
    """Problems found while an option object is made, raised together."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.problems: list[str] = []

    def need(self, ok: bool, msg: str) -> None:
        if not ok:
            self.problems.append(msg)

    def done(self) -> None:
        if self.problems:
            raise OptionError(self.problems)


@dataclass(frozen=True)
class Balance:
    """How heavy a grid is, and how even the grids of a community are (规模适度).

    Parameters
    ----------
    target
        The balance field per grid (e.g. 300 households).
    tolerance
        The allowed relative deviation of a grid from its community's mean
        (0.1 means ±10 %).
    by
        The balance field: ``households``, ``pop_actual``, ``workload`` or any
        numeric column.
    targets, type_column
        Differentiated targets (差异性): a target, or ``(target, tolerance)``,
        per community type, e.g. ``{"old_town": (250, 0.15), "estate": 400}``; a
        community's type is its ``type_column`` on the boundaries, else the type
        holding most of its balance weight on the buildings.
    split_above
        A block holding more than this on ``by`` is split between its buildings
        (default: three quarters of the community's target).
    community_target, community_tolerance
        With no community boundaries: communities of about this much are
        delineated first (street blocks grouped), then the grids inside each.

    Examples
    --------
    >>> Balance(target=250, targets={"old_town": (200, 0.15)}).targets
    {'old_town': (200.0, 0.15)}
    >>> Balance(tolerance=1.5)
    Traceback (most recent call last):
    ...
    gridmap._errors.OptionError: tolerance must be a fraction between 0 and 1 (0.1 means ±10%), got 1.5.
    """  # noqa: E501 - a doctest's exception message is one line

    target: float = field(default=300.0, metadata=_cli(
        "--target", type=float, help="target per grid on the balance field (default 300)"))
    tolerance: float = field(default=0.1, metadata=_cli(
        "--tolerance", type=float,
        help="allowed deviation from the community mean (default 0.1 = ±10%%)"))
    by: str = field(default="households", metadata=_cli(
        "--by", help="balance field: households, pop_actual, workload or any numeric "
        "column"))
    targets: Mapping[str, float | tuple[float, float]] | None = field(
        default=None, metadata=_cli(
            "--target-for", action="append", type=_target_for, default=[],
            metavar="TYPE=TARGET[:TOLERANCE]", to=_dict_or_none,
            help="a target (and tolerance) for one community type, e.g. "
            "old_town=250:0.15 (repeatable; differentiated targets)"))
    type_column: str = field(default="community_type", metadata=_cli(
        "--type-column", help="column on the boundaries or buildings naming the "
        "community type (default community_type)"))
    split_above: float | None = field(default=None, metadata=_cli(
        "--split-above", type=float,
        help="split blocks holding more than this (default: 3/4 of the target)"))
    community_target: float | None = field(default=None, metadata=_cli(
        "--community-target", type=float,
        help="with no --boundaries: delineate communities of about this much (e.g. "
        "2000 households) first, then the grids inside each"))
    community_tolerance: float = field(default=0.2, metadata=_cli(
        "--community-tolerance", type=float,
        help="tolerance of the communities delineated first (default 0.2)"))

    def __post_init__(self) -> None:
        c = _Checked("Balance")
        by = self.by if isinstance(self.by, str) else "households"
        c.need(_number(self.target) and self.target > 0,
               f"target must be a positive number of {by} per grid (e.g. 300), got "
               f"{self.target!r}.")
        c.need(_number(self.tolerance) and 0 < self.tolerance < 1,
               "tolerance must be a fraction between 0 and 1 (0.1 means ±10%), got "
               f"{self.tolerance!r}.")
        c.need(isinstance(self.by, str) and bool(self.by),
               f"by must name the balance field (e.g. 'households'), got {self.by!r}.")
        c.need(self.split_above is None or (_number(self.split_above)
                                            and self.split_above > 0),
               f"split_above must be a positive number or None, got {self.split_above!r}.")
        c.need(self.community_target is None or (_number(self.community_target)
                                                 and self.community_target > 0),
               "community_target must be a positive number (e.g. 2000) or None, got "
               f"{self.community_target!r}.")
        c.need(_number(self.community_tolerance) and 0 < self.community_tolerance < 1,
               "community_tolerance must be a fraction between 0 and 1, got "
               f"{self.community_tolerance!r}.")
        if self.targets is not None:
            table, bad = {}, []
            items = self.targets.items() if isinstance(self.targets, Mapping) else ()
            for key, v in items:
                t, tl = ((v, self.tolerance) if not isinstance(v, (tuple, list))
                         else (*tuple(v), self.tolerance)[:2])
                if not (_number(t) and _number(tl) and t > 0 and 0 < tl < 1):
                    bad.append(f"{key!r}: {v!r}")
                    continue
                table[str(key)] = float(t) if not isinstance(v, (tuple, list)) \
                    else (float(t), float(tl))
            c.need(isinstance(self.targets, Mapping) and not bad,
                   "targets must map a community type to a target > 0 or to (target, "
                   "tolerance) with 0 < tolerance < 1; got "
                   f"{', '.join(bad) if bad else repr(self.targets)}")
            if not bad:
                object.__setattr__(self, "targets", table)
        c.done()


@dataclass(frozen=True)
class Population:
    """How people are put on buildings (人户分离 fields ride along).

    Parameters
    ----------
    max_distance
        Metres within which a population point joins the nearest building.
    dwelling_size, persons_per_household, default_levels
        The estimate from floor area when no population is given: m² per
        household, persons per household, storeys of a building with no levels
        or height.
    groups
        Further count columns to carry to every grid and report (key persons,
        people needing care, ...).

    Examples
    --------
    >>> Population(groups=["key_persons"]).groups
    ('key_persons',)
    """

    max_distance: float = field(default=50.0, metadata=_cli(
        "--max-distance", type=float,
        help="metres within which a population point joins the nearest building"))
    dwelling_size: float = field(default=90.0, metadata=_cli(
        "--dwelling-size", type=float,
        help="floor area per household for estimates, m² (default 90)"))
    persons_per_household: float = field(default=2.62, metadata=_cli(
        "--persons-per-household", type=float,
        help="persons per household for estimates (default 2.62)"))
    default_levels: float = field(default=1.0, metadata=_cli(
        "--default-levels", type=float,
        help="storeys of a building with no levels or height (default 1)"))
    groups: tuple[str, ...] = field(default=(), metadata=_cli(
        "--group", action="append", default=[], metavar="COLUMN", to=tuple,
        help="a further count column to carry to every grid (key persons, people "
        "needing care...; repeatable)"))

    def __post_init__(self) -> None:
        c = _Checked("Population")
        for name in ("max_distance", "dwelling_size", "persons_per_household",
                     "default_levels"):
            v = getattr(self, name)
            c.need(_number(v) and (v > 0 or (name == "max_distance" and v >= 0)),
                   f"{name} must be a positive number, got {v!r}.")
        groups = (self.groups,) if isinstance(self.groups, str) else self.groups
        object.__setattr__(self, "groups", tuple(str(g) for g in groups))
        c.done()


@dataclass(frozen=True)
class SpecialGrids:
    """Road-type (道路型) and unit-type (单位型) grids, carved out first.

    Parameters
    ----------
    road_grids
        Make road grids: the corridor of the streets of ``road_classes`` or
        named in ``road_names`` (naming a road turns road grids on), carriageway
        and frontage ``road_depth`` metres each side, cut at intersections and
        joined into stretches of at most ``road_max_length`` metres (a stretch
        shorter than ``road_min_length``, or thinner than half the corridor over
        that length, joins the next stretch of the road) (and, with
        ``road_max_load``, at most that much of the balance field).
    unit_kinds, unit_kind_column, unit_min_area, headcount_column, unit_min_headcount
        A site (``sites`` layer) whose kind is in ``unit_kinds`` and whose area
        is at least ``unit_min_area`` m² (or headcount at least
        ``unit_min_headcount``) is a unit grid.

    Examples
    --------
    >>> SpecialGrids(road_names=["南京东路"]).road_grids
    True
    """

    road_grids: bool = field(default=False, metadata=_cli(
        "--road-grids", action="store_true",
        help="make road-type grids along the main streets"))
    road_classes: tuple[str, ...] = field(default=DEFAULT_ROAD_CLASSES, metadata=_cli(
        "--road-class", action="append", default=[], metavar="CLASS",
        to=lambda v: tuple(v) or DEFAULT_ROAD_CLASSES,
        help="street class with road grids (repeatable; default primary, secondary)"))
    road_names: tuple[str, ...] = field(default=(), metadata=_cli(
        "--road-name", action="append", default=[], metavar="NAME", to=tuple,
        help="a street by name with road grids (repeatable)"))
    road_depth: float = field(default=15.0, metadata=_cli(
        "--road-depth", type=float,
        help="frontage depth each side of the centre-line, m (default 15)"))
    road_max_length: float = field(default=800.0, metadata=_cli(
        "--road-max-length", type=float,
        help="longest stretch of road in one road grid, m (default 800)"))
    road_min_length: float = field(default=100.0, metadata=_cli(
        "--road-min-length", type=float,
        help="shortest stretch of road that is a grid, m: a shorter or thinner one joins "
        "the next stretch of the road (default 100)"))
    road_max_load: float | None = field(default=None, metadata=_cli(
        "--road-max-load", type=float,
        help="most of the balance field in one road grid's buildings"))
    unit_kinds: frozenset[str] = field(default=DEFAULT_UNIT_KINDS, metadata=_cli(
        "--unit-kind", action="append", default=[], metavar="KIND",
        to=lambda v: frozenset(v) or DEFAULT_UNIT_KINDS,
        help="a site kind that makes a unit grid (repeatable, replaces the default: "
        "schools, kindergartens, youth centres, hospitals, markets, building sites, "
        "venues, government, museums, libraries, arts and community centres; see "
        "gridmap.special.DEFAULT_UNIT_KINDS)"))
    unit_kind_column: str | None = field(default=None, metadata=_cli(
        "--unit-kind-column", help="column of the sites naming their kind"))
    unit_min_area: float = field(default=5000.0, metadata=_cli(
        "--unit-min-area", type=float,
        help="smallest site (m²) that is a unit grid (default 5000)"))
    headcount_column: str | None = field(default=None, metadata=_cli(
        "--headcount-column", help="column of the sites with their headcount"))
    unit_min_headcount: float = field(default=500.0, metadata=_cli(
        "--unit-min-headcount", type=float,
        help="a site with at least this headcount is a unit grid whatever its area "
        "(default 500)"))

    def __post_init__(self) -> None:
        c = _Checked("SpecialGrids")
        for name in ("road_classes", "road_names"):
            v = getattr(self, name)
            object.__setattr__(self, name, (v,) if isinstance(v, str) else tuple(v))
        kinds = self.unit_kinds
        object.__setattr__(self, "unit_kinds",
                           frozenset((kinds,) if isinstance(kinds, str) else kinds))
        object.__setattr__(self, "road_grids", bool(self.road_grids or self.road_names))
        for name in ("road_depth", "road_max_length", "road_min_length", "unit_min_area",
                     "unit_min_headcount"):
            v = getattr(self, name)
            c.need(_number(v) and v > 0, f"{name} must be a positive number, got {v!r}.")
        c.need(self.road_max_load is None or (_number(self.road_max_load)
                                              and self.road_max_load > 0),
               f"road_max_load must be a positive number or None, got "
               f"{self.road_max_load!r}.")
        c.done()


@dataclass(frozen=True)
class Workload:
    """The load of a grid and the grid workers (网格员) it needs.

    Parameters
    ----------
    formula
        Weight per grid column, ``workload = Σ weight × column`` (default
        :data:`gridmap.workload.DEFAULT_WORKLOAD`; ``area_km2`` is the grid's area).
    capacity
        The load one grid worker carries; workers = max(1, ceil(workload / capacity)).

    Examples
    --------
    >>> Workload({"households": 1}, capacity=100).capacity
    100.0
    """

    formula: Mapping[str, float] | None = field(default=None, metadata=_cli(
        "--workload", action="append",
        type=_pair("--workload", "COLUMN=WEIGHT (e.g. pop_floating=0.5)", float),
        default=[], metavar="COLUMN=WEIGHT", to=_dict_or_none,
        help="a term of the workload formula (repeatable; replaces the default "
        "households=1 pop_floating=0.5 elderly=0.5 shops=2 cases=1 area_km2=50)"))
    capacity: float = field(default=DEFAULT_CAPACITY, metadata=_cli(
        "--worker-capacity", type=float, default=None,
        to=lambda v: DEFAULT_CAPACITY if v is None else v,
        help="workload one grid worker carries (default 500)"))

    def __post_init__(self) -> None:
        from .workload import grid_workload

        c = _Checked("Workload")
        if self.formula is not None:
            object.__setattr__(self, "formula", dict(self.formula))
        try:  # the formula is checked now, not after the partition
            import pandas as pd

            grid_workload(pd.DataFrame(), weights=self.formula, capacity=self.capacity)
        except (GridmapError, ValueError, TypeError) as exc:
            c.need(False, str(exc))
        if _number(self.capacity):
            object.__setattr__(self, "capacity", float(self.capacity))
        c.done()

    @property
    def weights(self) -> dict[str, float]:
        """The formula's weights (the default where none was given)."""
        return dict(DEFAULT_WORKLOAD if self.formula is None else self.formula)


@dataclass(frozen=True)
class Search:
    """How the plan is searched for: the seed, restarts, how hard, where.

    Parameters
    ----------
    seed
        The same input and seed give the same plan.
    restarts
        Make this many plans (seeds ``seed``, ``seed + 1``, ...) and keep the one
        with the fewest grids out of the band, then the smallest largest deviation.
    exact
        Re-cut the grids around a grid left out of the band with a small
        mixed-integer programme (HiGHS, through SciPy).
    islands
        A part of a community nothing connects to the rest: ``"own"`` grid(s),
        join the ``"nearest"`` grid, or ``"error"``.
    scheduler
        Partition the communities in parallel on Dask: ``"local"`` or a
        scheduler's address; None one after the other.  The plan is the same.
    effort
        The work the balancing may do after the first partition, in units of
        work (:mod:`gridmap.effort`): ``"fast"``, ``"default"``, ``"thorough"``
        or a number.  The same input, seed and effort give the same plan on any
        machine; it stops earlier when no grid is out of the band.  With
        ``"thorough"``, where no move helps and the work left could pay for
        another plan as long, the plans of the next seeds are made with it and
        the best is kept.
    time_limit
        A cap in seconds on top of the effort (the plan then depends on the
        machine's speed).

    Examples
    --------
    >>> Search(restarts=0)
    Traceback (most recent call last):
    ...
    gridmap._errors.OptionError: restarts must be a whole number of 1 or more, got 0: the number of plans made (seeds seed, seed + 1, ...) of which the best is kept; 1 makes one.
    """  # noqa: E501 - a doctest's exception message is one line

    seed: int | None = field(default=0, metadata=_cli(
        "--seed", type=int, help="random seed (default 0)"))
    restarts: int = field(default=1, metadata=_cli(
        "--restarts", type=int,
        help="make this many plans (seeds seed, seed+1, ...) and keep the one with the "
        "fewest grids out of tolerance (default 1)"))
    exact: bool = field(default=True, metadata=_cli(
        "--no-exact", action="store_true", dest="no_exact", to=lambda v: not v,
        help="skip the exact re-cut of the grids left out of the band (a little "
        "faster, less balanced)"))
    islands: str = field(default="own", metadata=_cli(
        "--islands", choices=ISLAND_POLICIES,
        help="a part of a community cut off from the rest: own grid(s) (default), "
        "join the nearest grid, or stop with an error"))
    scheduler: str | None = field(default=None, metadata=_cli(
        "--dask", nargs="?", const="local", dest="dask", metavar="ADDRESS",
        help="partition the communities in parallel on Dask: alone, a cluster on this "
        "machine; with an address (tcp://host:8786), that scheduler's cluster. Same "
        "plan. Needs pip install 'gridmap[dask]'"))
    effort: str | int = field(default="default", metadata=_cli(
        "--effort", type=effort_arg,
        help="how much work the balancing may do: fast, default, thorough (30, 200, "
        "2000 units of work per grid; thorough also makes the plans of the next seeds "
        "with the work left where no move helps, keeping the best), or a number of "
        "units of work (the same effort gives the same plan on any machine; default: "
        "default)"))
    time_limit: float | None = field(default=None, metadata=_cli(
        "--time-limit", type=float, metavar="SECONDS",
        help="stop balancing after this many seconds even if effort is left (the plan "
        "then depends on the machine's speed)"))

    def __post_init__(self) -> None:
        c = _Checked("Search")
        effort = self.effort
        c.need((isinstance(effort, str) and effort in EFFORT_PRESETS)
               or (not isinstance(effort, str) and (_whole(effort) or _is_np_int(effort))
                   and int(effort) > 0),
               f"effort must be one of {list(EFFORT_PRESETS)} or a whole number of units "
               f"of work above 0, got {effort!r} (--effort).")
        c.need(self.time_limit is None or (_number(self.time_limit) and self.time_limit > 0),
               f"time_limit must be a number of seconds above 0 or None, got "
               f"{self.time_limit!r} (--time-limit).")
        c.need(self.seed is None or _whole(self.seed) or _is_np_int(self.seed),
               f"seed must be a whole number or None, got {self.seed!r}.")
        c.need((_whole(self.restarts) or _is_np_int(self.restarts)) and self.restarts >= 1,
               f"restarts must be a whole number of 1 or more, got {self.restarts!r}: "
               "the number of plans made (seeds seed, seed + 1, ...) of which the best "
               "is kept; 1 makes one.")
        c.need(isinstance(self.exact, bool), f"exact must be True or False, got "
               f"{self.exact!r}.")
        c.need(self.islands in ISLAND_POLICIES,
               f"islands must be one of {list(ISLAND_POLICIES)}, got {self.islands!r}: "
               "'own' gives a cut-off part its own grid, 'nearest' joins it to the "
               "nearest grid, 'error' refuses it.")
        c.done()


#: balance measures of the units themselves, not counts of people (``by=``): a
#: unit's area in m² (city-management grids, 城市管理网格, are sized by area)
UNIT_MEASURES = frozenset({"area"})


def _is_np_int(value: Any) -> bool:
    import numpy as np

    return isinstance(value, np.integer)


@dataclass(frozen=True)
class Inputs:
    """How the layers are read and what their columns and streets mean.

    Parameters
    ----------
    columns
        Source column names mapped to canonical ones, ``{"households": "HH"}``.
    id_column
        The building (or unit) id column; default ``id`` if present, else 1..n.
    street_column
        The street class column (default: ``highway``, ``street_class``, ...).
    crs
        Metric CRS to work in; ``"auto"`` picks one (CGCS2000 Gauss-Krüger for
        CGCS2000 input, UTM otherwise).  Outputs are in the input CRS.
    strict
        Refuse, instead of repairing and reporting, what gridmap can repair.
    encoding
        Text encoding of Shapefiles and CSVs.
    allow_overlaps
        Accept overlapping community boundaries (each overlap goes to the
        community listed first).
    division_code
        The 6-digit administrative division code that starts every grid code.
    population_key, population_address, address_column, count_column
        How a population table (a register: CSV, Excel, a DataFrame) is joined
        to the buildings (:mod:`gridmap.register`): by its column of building
        ids, or of addresses against the buildings' ``address_column``; each
        row is a household, or holds ``count_column`` households.
    input_datum, output_datum
        The datum of longitude/latitude layers (``"wgs84"``, ``"gcj02"`` for data
        traced from AMap or Tencent maps, ``"bd09"`` from Baidu's), converted to
        WGS84 before the work; and that of the files written (default: the
        input's).
    code_column
        The column of the communities' official 12-digit codes (统计用区划代码) on
        the boundaries; default ``code`` when there is one.  A grid's code is then
        its community's code and a 3-digit sequence.
    barriers, exclude_streets, cut_cost
        Street classes a grid should not straddle; classes that close no block;
        the cost per metre of a grid edge along a street of each class.

    Examples
    --------
    >>> Inputs(division_code="31010")
    Traceback (most recent call last):
    ...
    gridmap._errors.OptionError: division_code must be a 6-digit administrative division code (e.g. '310101' for Shanghai Huangpu), got '31010' (--division-code).
    """  # noqa: E501 - a doctest's exception message is one line

    columns: Mapping[str, str] | None = field(default=None, metadata=_cli(
        "--column", action="append",
        type=_pair("--column", "CANONICAL=SOURCE (e.g. households=HH)"), default=[],
        metavar="CANONICAL=SOURCE", to=_dict_or_none,
        help="map a source column to a canonical name (repeatable)"))
    id_column: str | None = field(default=None, metadata=_cli(
        "--id-column", help="building (or unit) id column (default: id)"))
    street_column: str | None = field(default=None, metadata=_cli(
        "--street-column", help="street class column (default: highway, ...)"))
    crs: Any = field(default="auto", metadata=_cli(
        "--crs", help="metric CRS to work in (default auto)"))
    strict: bool = field(default=False, metadata=_cli(
        "--strict", action="store_true",
        help="refuse, instead of repairing and reporting, invalid polygons, layers in "
        "different CRSs, buildings outside every boundary and streets that enclose "
        "no block"))
    encoding: str | None = field(default=None, metadata=_cli(
        "--encoding", help="text encoding of Shapefiles and CSVs without a .cpg (e.g. "
        "GBK, GB18030, UTF-8); default: UTF-8, else GB18030 with a note"))
    allow_overlaps: bool = field(default=False, metadata=_cli(
        "--allow-overlaps", action="store_true",
        help="accept community boundaries that overlap (each overlap goes to the "
        "community listed first) instead of refusing them"))
    division_code: str = field(default="000000", metadata=_cli(
        "--division-code", help="6-digit administrative division code for grid codes"))
    population_key: str | None = field(default=None, metadata=_cli(
        "--population-key", help="a population table's (CSV, Excel) column of building "
        "ids: its rows are joined to the buildings by id"))
    population_address: str | None = field(default=None, metadata=_cli(
        "--population-address", help="a population table's column of addresses (门牌): "
        "its rows are joined to the buildings by address (see --address-column)"))
    address_column: str | None = field(default=None, metadata=_cli(
        "--address-column", help="the buildings' address column (default: address, "
        "addr_full, 地址 or 门牌), for a register joined by address and the roster"))
    count_column: str | None = field(default=None, metadata=_cli(
        "--count-column", help="a population table's column of households per row "
        "(default: every row is one household)"))
    input_datum: str = field(default="wgs84", metadata=_cli(
        "--input-datum", choices=DATUMS,
        help="datum of longitude/latitude layers: wgs84 (default; GPS, OSM, surveys), "
        "gcj02 (traced from AMap/Tencent), bd09 (Baidu); converted to WGS84 for the work"))
    output_datum: str | None = field(default=None, metadata=_cli(
        "--output-datum", choices=DATUMS,
        help="datum of the files written (default: the input's)"))
    code_column: str | None = field(default=None, metadata=_cli(
        "--code-column", help="column of the official 12-digit community codes on the "
        "boundaries (default: code, when present); a grid's code is its community's "
        "code and a 3-digit sequence"))
    barriers: frozenset[str] = DEFAULT_BARRIERS
    exclude_streets: frozenset[str] = NON_BLOCKING_CLASSES
    cut_cost: Mapping[str, float] | None = None

    def __post_init__(self) -> None:
        c = _Checked("Inputs")
        c.need(isinstance(self.strict, bool),
               f"strict must be True or False, got {self.strict!r}.")
        c.need(isinstance(self.allow_overlaps, bool),
               f"allow_overlaps must be True or False, got {self.allow_overlaps!r}.")
        code = str(self.division_code)
        c.need(len(code) == 6 and code.isdigit(),
               "division_code must be a 6-digit administrative division code (e.g. "
               f"'310101' for Shanghai Huangpu), got {self.division_code!r} "
               "(--division-code).")
        object.__setattr__(self, "division_code", code)
        for name in ("input_datum", "output_datum"):
            value = getattr(self, name)
            if value is None:
                continue
            d, problem = datum_problem(value, name=name,
                                       option=f"--{name.replace('_', '-')}")
            c.need(problem is None, problem or "")
            object.__setattr__(self, name, d)
        for name in ("barriers", "exclude_streets"):
            v = getattr(self, name)
            object.__setattr__(self, name, frozenset((v,) if isinstance(v, str) else v))
        if self.columns is not None:
            object.__setattr__(self, "columns", dict(self.columns))
        if self.cut_cost is not None:
            object.__setattr__(self, "cut_cost", dict(self.cut_cost))
        try:
            check_crs(self.crs)
        except OptionError as exc:
            c.problems.extend(exc.problems)
        c.done()


T = TypeVar("T")

#: one group of options (a field of :class:`Options`)
_OptionGroup = Balance | Population | SpecialGrids | Workload | Search | Inputs

#: the option objects of a plan, by the name of their field in :class:`Options`
_GROUPS: dict[str, type[_OptionGroup]] = {
    "balance": Balance, "population": Population, "special": SpecialGrids,
    "workload": Workload, "search": Search, "inputs": Inputs}


@dataclass(frozen=True)
class Options:
    """Every option a plan was made with: what :func:`gridmap.read_plan` gives back.

    Examples
    --------
    >>> o = Options(balance=Balance(target=250))
    >>> Options.from_dict(o.to_dict()) == o
    True
    """

    balance: Balance = field(default_factory=Balance)
    population: Population = field(default_factory=Population)
    special: SpecialGrids = field(default_factory=SpecialGrids)
    workload: Workload = field(default_factory=Workload)
    search: Search = field(default_factory=Search)
    inputs: Inputs = field(default_factory=Inputs)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Plain JSON-able values (sets as sorted lists, tuples as lists)."""
        def plain(v: Any) -> Any:
            if isinstance(v, (set, frozenset)):
                return sorted(plain(x) for x in v)
            if isinstance(v, (tuple, list)):
                return [plain(x) for x in v]
            if isinstance(v, Mapping):
                return {str(k): plain(x) for k, x in v.items()}
            if _is_np_int(v):
                return int(v)
            if v is not None and not isinstance(v, (str, int, float, bool)):
                return str(v)  # a CRS object
            return v
        return {name: {f.name: plain(getattr(getattr(self, name), f.name))
                       for f in dataclasses.fields(getattr(self, name))}
                for name in _GROUPS}

    @classmethod
    def from_dict(cls, data: Mapping[str, Mapping[str, Any]]) -> Options:
        """The options written by :meth:`to_dict`.

        Fields not known are ignored, fields missing take their defaults.
        """
        made: dict[str, Any] = {}
        for name, kind in _GROUPS.items():
            given = dict(data.get(name, {}))
            kw = {}
            for f in dataclasses.fields(kind):
                if f.name not in given:
                    continue
                v = given[f.name]
                if f.name == "targets" and isinstance(v, Mapping):
                    v = {k: tuple(x) if isinstance(x, list) else x for k, x in v.items()}
                elif isinstance(v, list):
                    v = tuple(v)
                kw[f.name] = v
            made[name] = kind(**kw)
        return cls(**made)


#: keyword argument of :func:`gridmap.delineate` -> (option object, field)
KEYWORDS: dict[str, tuple[str, str]] = {
    **{f.name: ("balance", f.name) for f in dataclasses.fields(Balance)},
    **{f.name: ("population", f.name) for f in dataclasses.fields(Population)},
    **{f.name: ("special", f.name) for f in dataclasses.fields(SpecialGrids)},
    "worker_capacity": ("workload", "capacity"),
    **{f.name: ("search", f.name) for f in dataclasses.fields(Search)},
    **{f.name: ("inputs", f.name) for f in dataclasses.fields(Inputs)},
}


def options_from_keywords(given: Mapping[str, Any] | None = None,
                          keywords: Mapping[str, Any] | None = None, *,
                          function: str = "delineate") -> tuple[Options, list[str]]:
    """The :class:`Options` from option objects and keyword arguments.

    ``given`` maps a group (``balance``, ``population``, ...) to an object of it
    (or None); ``keywords`` are :data:`KEYWORDS`' names, laid over the objects.
    Every bad value is collected: returns the options (defaults where a group
    was refused) and the problems found.
    """
    given = {k: v for k, v in (given or {}).items() if v is not None}
    keywords = dict(keywords or {})
    unknown = sorted(k for k in keywords if k not in KEYWORDS)
    if unknown:
        import difflib

        hints = [difflib.get_close_matches(k, KEYWORDS, n=1) for k in unknown]
        hint = "".join(f" Did you mean {h[0]!r}?" for h in hints if h)
        msg = f"{function}() got unexpected keyword argument(s) {unknown}.{hint}"
        raise TypeError(msg)
    per: dict[str, dict[str, Any]] = {name: {} for name in _GROUPS}
    for key, value in keywords.items():
        group, name = KEYWORDS[key]
        per[group][name] = value
    problems: list[str] = []
    made: dict[str, Any] = {}
    for name, kind in _GROUPS.items():
        base = given.get(name)
        if base is not None and not isinstance(base, kind):
            if name == "workload" and isinstance(base, Mapping):
                base = Workload(formula=base) if not per[name] else None
                per[name].setdefault("formula", given["workload"])
            else:
                problems.append(f"{name} must be a gridmap.{kind.__name__}, got "
                                f"{type(base).__name__}.")
                base = None
        try:
            made[name] = (dataclasses.replace(base, **per[name]) if base is not None
                          else kind(**per[name]))
        except OptionError as exc:
            problems.extend(exc.problems)
            made[name] = kind()
    return Options(**made), problems


# -- the command line ------------------------------------------------------------
def _cli_fields(kind: type) -> Iterable[dataclasses.Field]:
    return (f for f in dataclasses.fields(kind) if "cli" in f.metadata)


def add_arguments(parser: argparse.ArgumentParser, kinds: Iterable[type] = tuple(
        _GROUPS.values()), *, exclude: Iterable[str] = (),
        only: Iterable[str] | None = None, defaults: bool = True) -> None:
    """Add the options of each of ``kinds`` to ``parser``, one argument group each.

    The flags, types, defaults and help come from the fields' metadata; a field's
    default is the argument's unless its metadata says otherwise.  ``only`` keeps
    the fields named; without ``defaults`` an option not given is left out of the
    parsed arguments (a re-partition then keeps the plan's setting).
    """
    exclude = set(exclude)
    keep = None if only is None else set(only)
    for kind in kinds:
        fields = [f for f in _cli_fields(kind) if f.name not in exclude
                  and (keep is None or f.name in keep)]
        if not fields:
            continue
        doc = (kind.__doc__ or kind.__name__).strip().splitlines()[0]
        group = parser.add_argument_group(f"{kind.__name__.lower()}: {doc}")
        for f in fields:
            spec = {k: v for k, v in f.metadata["cli"].items() if k not in ("flags", "to")}
            if not defaults:
                spec["default"] = argparse.SUPPRESS
            elif "default" not in spec and spec.get("action") != "store_true":
                spec["default"] = f.default
            group.add_argument(*f.metadata["cli"]["flags"], **spec)


def keywords_from_arguments(args: argparse.Namespace, *, only: Iterable[str],
                            kinds: Iterable[type] = tuple(_GROUPS.values())) -> dict[str, Any]:
    """The keyword arguments (:data:`KEYWORDS`) of the fields ``only`` present in ``args``.

    For options added without defaults (:func:`add_arguments`): only those given.
    """
    keep = set(only)
    names = {(group, name): key for key, (group, name) in KEYWORDS.items()}
    group_of = {kind: group for group, kind in _GROUPS.items()}
    out: dict[str, Any] = {}
    for kind in kinds:
        for f in _cli_fields(kind):
            dest = _dest(f)
            if f.name not in keep or not hasattr(args, dest):
                continue
            value = getattr(args, dest)
            to = f.metadata["cli"]["to"]
            key = names.get((group_of[kind], f.name), f.name)
            out[key] = to(value) if to is not None else value
    return out


def _dest(f: dataclasses.Field) -> str:
    cli = f.metadata["cli"]
    return cli.get("dest") or cli["flags"][0].lstrip("-").replace("-", "_")


def from_arguments(kind: type[T], args: argparse.Namespace, **override: Any) -> T:
    """The option object ``kind`` from parsed arguments.

    The arguments are those :func:`add_arguments` added; fields not on the command
    line keep their defaults.
    """
    kw: dict[str, Any] = {}
    for f in _cli_fields(kind):
        dest = _dest(f)
        if not hasattr(args, dest):
            continue
        value = getattr(args, dest)
        to = f.metadata["cli"]["to"]
        kw[f.name] = to(value) if to is not None else value
    kw.update(override)
    return kind(**kw)


#: base maps known by name; anything else must be a tile URL template
TILE_PRESETS = ("none", "osm", "amap", "tencent")
#: the fewest and the most classes of a classed (choropleth) map
CLASSES_RANGE = (2, 7)


#: classification schemes of the workload map (mapclassify's, by name): its
#: classifiers that class values into ``k`` classes unaided (``UserDefined`` needs
#: bins of its own).  Listed here, not read from mapclassify, so that importing
#: gridmap does not import mapclassify and scikit-learn (a second on every run)
MAP_SCHEMES: tuple[str, ...] = (
    "BoxPlot", "EqualInterval", "FisherJenks", "FisherJenksSampled", "HeadTailBreaks",
    "JenksCaspall", "JenksCaspallForced", "JenksCaspallSampled", "MaxP", "MaximumBreaks",
    "NaturalBreaks", "Quantiles", "Percentiles", "PrettyBreaks", "StdMean")


@dataclass(frozen=True)
class MapOptions:
    """How the maps of a plan are drawn: base map, classes, privacy, static output.

    Parameters
    ----------
    tiles
        Base map: ``None`` or ``"none"`` (default, draws offline), ``"osm"``,
        ``"amap"``, ``"tencent"``, or a tile URL template with ``{z}``, ``{x}``
        and ``{y}`` (or ``{-y}``), e.g. an intranet tile server.
    gcj02
        Shift the overlay to GCJ-02 for a GCJ-02 tile URL (None: automatic for
        ``amap`` and ``tencent``).
    buildings
        Draw the buildings on the coverage map: True, False, or None (only up to
        :data:`gridmap.render.BUILDINGS_SHOWN`).
    privacy_threshold
        Counts under this show as ``<N`` (a whole number of at least 1).
    scheme, classes
        mapclassify scheme (:data:`MAP_SCHEMES`, any case) and number of
        classes (2 to 7) of the workload map.
    png
        Also draw the static PNG maps and the load chart.
    font
        A font file (.ttf, .otf, .ttc) for the static maps' Chinese labels.

    Examples
    --------
    >>> MapOptions(scheme="quantiles").scheme
    'Quantiles'
    >>> MapOptions(classes=99)
    Traceback (most recent call last):
    ...
    gridmap._errors.OptionError: classes must be a whole number from 2 to 7, got 99 (--classes).
    """

    tiles: str | None = None
    gcj02: bool | None = None
    buildings: bool | None = None
    privacy_threshold: int = 5
    scheme: str = "Quantiles"
    classes: int = 5
    png: bool = False
    font: str | os.PathLike | None = None

    def __post_init__(self) -> None:
        problems = []
        tiles = self.tiles
        if isinstance(tiles, str) and tiles.strip().lower() == "none":
            tiles = None
        if tiles is not None:
            if not isinstance(tiles, str) or not tiles.strip():
                problems.append(f"tiles must be a preset or a tile URL, got {tiles!r}.")
            elif tiles not in TILE_PRESETS and not _is_tile_template(tiles):
                problems.append(
                    f"tiles {tiles!r} is neither a base map gridmap knows "
                    f"({', '.join(TILE_PRESETS)}) nor a tile URL template with {{z}}, "
                    "{x} and {y} (e.g. https://tiles.example.gov.cn/{z}/{x}/{y}.png) "
                    "(--tiles).")
        object.__setattr__(self, "tiles", tiles)
        scheme = self.scheme
        known = {s.lower(): s for s in MAP_SCHEMES}
        if not isinstance(scheme, str) or scheme.lower() not in known:
            why = (" needs class bounds of its own, which gridmap does not take"
                   if isinstance(scheme, str) and scheme.lower() == "userdefined" else
                   " is not a classification scheme")
            problems.append(f"scheme {scheme!r}{why}; use one of {', '.join(MAP_SCHEMES)} "
                            "(--scheme; default Quantiles).")
        else:
            object.__setattr__(self, "scheme", known[scheme.lower()])
        lo, hi = CLASSES_RANGE
        if not _whole(self.classes) or not lo <= self.classes <= hi:
            problems.append(f"classes must be a whole number from {lo} to {hi}, got "
                            f"{self.classes!r} (--classes).")
        if not _whole(self.privacy_threshold) or self.privacy_threshold < 1:
            problems.append(
                f"privacy_threshold must be a whole number of at least 1, got "
                f"{self.privacy_threshold!r}: counts under it show as '<N' "
                "(--privacy-threshold; default 5).")
        if self.font is not None:
            problem = _font_problem(self.font)
            if problem:
                problems.append(problem)
        if problems:
            raise OptionError(problems)


def _is_tile_template(url: str) -> bool:
    return "{z}" in url and "{x}" in url and ("{y}" in url or "{-y}" in url)


def _font_problem(path: str | os.PathLike) -> str | None:
    """What is wrong with a font file, or None when matplotlib can read it."""
    p = Path(path)
    if not p.is_file():
        return (f"font file {str(path)!r} does not exist; give a .ttf, .otf or .ttc "
                "file that draws Chinese (--font), e.g. "
                "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
    try:
        from matplotlib import ft2font

        ft2font.FT2Font(str(p))
    except ImportError:  # no matplotlib: the static maps say so when drawn
        return None
    except (OSError, RuntimeError, ValueError) as exc:
        return (f"font file {str(path)!r} is not a font matplotlib can read ({exc}); "
                "give a .ttf, .otf or .ttc file (--font)")
    return None


def check_crs(crs: Any) -> None:
    """Refuse a working CRS that is unknown or not projected in metres.

    Examples
    --------
    >>> check_crs("auto"); check_crs("EPSG:32651")
    >>> check_crs("EPSG:999999")
    Traceback (most recent call last):
    ...
    gridmap._errors.OptionError: crs 'EPSG:999999' is not a CRS PROJ knows (crs not found); give an EPSG code of a projected CRS in metres, e.g. EPSG:32651 (UTM 51N) or EPSG:4549 (CGCS2000 Gauss-Krüger CM 120E), or 'auto' (--crs; default auto).
    """  # noqa: E501 - a doctest's exception message is one line
    if crs is None or (isinstance(crs, str) and crs == "auto"):
        return
    import pyproj

    hint = ("give an EPSG code of a projected CRS in metres, e.g. EPSG:32651 (UTM 51N) "
            "or EPSG:4549 (CGCS2000 Gauss-Krüger CM 120E), or 'auto' (--crs; default "
            "auto).")
    try:
        parsed = pyproj.CRS.from_user_input(crs)
    except pyproj.exceptions.CRSError as exc:
        why = "crs not found" if "not found" in str(exc) else str(exc).split(":")[-1].strip()
        raise OptionError(f"crs {crs!r} is not a CRS PROJ knows ({why}); {hint}") from None
    units = {ax.unit_name for ax in parsed.axis_info}
    if not parsed.is_projected or not units <= {"metre", "meter", "m"}:
        raise OptionError(f"crs {crs!r} ({parsed.name}) is not a projected CRS in "
                          f"metres; {hint}")
