"""Delineate community grids: layers → units → adjacency → partition → plan."""

from __future__ import annotations

import copy
import dataclasses
import logging
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from . import io as gio
from ._errors import (
    GridmapError,
    GridmapWarning,
    InfeasiblePartitionError,
    LayerValidationError,
)
from ._progress import STAGES, StageTimer
from ._validate import Problems, repair_polygons, validate_inputs
from .adjacency import DEFAULT_BARRIERS, build_adjacency, street_rank
from .partition import (
    GridAssignment,
    UnitGraph,
    find_islands,
    partition_graph,
    refine,
    repair,
)
from .plan import GridPlan
from .population import population_onto_buildings
from .special import (
    DEFAULT_ROAD_CLASSES,
    DEFAULT_UNIT_KINDS,
    road_stretches,
    unit_sites,
)
from .units import NON_BLOCKING_CLASSES, Blocks, build_units, make_blocks, study_area
from .workload import DEFAULT_CAPACITY, grid_workload

__all__ = ["ISLAND_POLICIES", "STREET_CLASS_COLUMNS", "delineate"]

log = logging.getLogger("gridmap")

#: columns that may hold a street's class, tried in this order
STREET_CLASS_COLUMNS = ("street_class", "highway", "kind_detail", "fclass", "class", "type")
_COUNT_FIELDS = ("households", "pop_actual")
#: what to do with a part of a community cut off from the rest (an island)
ISLAND_POLICIES = ("own", "nearest", "error")
#: further counts carried to the grids when the input has them (population
#: categories and what drives workload)
_EXTRA_FIELDS = ("pop_registered", "pop_floating", "pop_absent", "elderly", "shops", "cases")


def _street_class_column(streets: gpd.GeoDataFrame, given: str | None) -> str | None:
    if given:
        return given
    for c in STREET_CLASS_COLUMNS:
        if c in streets.columns:
            return c
    return None


def _id_column(gdf: gpd.GeoDataFrame, given: str | None, role: str, problems: Problems) -> str | None:
    if given:
        if given not in gdf.columns:
            problems.add(
                f"id column {given!r} is not in `{role}`; its columns are "
                f"{[c for c in gdf.columns if c != gdf.geometry.name]}."
            )
            return None
        return given
    if "id" in gdf.columns:
        return "id"
    return None


def _ids(gdf: gpd.GeoDataFrame, col: str | None, role: str, problems: Problems) -> np.ndarray:
    if col is None:
        return np.arange(1, len(gdf) + 1)
    ids = gdf[col]
    dup = ids[ids.duplicated(keep=False)]
    if len(dup):
        problems.add(
            f"`{role}` id column {col!r} has duplicate values "
            f"{sorted(set(dup.astype(str)))[:5]} (rows {list(dup.index[:5])}); ids must "
            "be unique. Fix the data or pick another column with id_column=."
        )
    if ids.isna().any():
        problems.add(
            f"`{role}` id column {col!r} is empty in rows {list(ids.index[ids.isna()][:5])}."
        )
    return ids.to_numpy()


def _to(gdf: gpd.GeoDataFrame | None, crs: Any) -> gpd.GeoDataFrame | None:
    if gdf is None:
        return None
    if gdf.crs is not None and not gdf.crs.equals(crs):
        return gdf.to_crs(crs)
    return gdf


def _lines(streets: gpd.GeoDataFrame | None, cls_col: str | None, exclude: Iterable[str]):
    """Street centre-lines (single lines), their classes and names."""
    if streets is None or not len(streets):
        return (np.array([], dtype=object), np.array([], dtype=object),
                np.array([], dtype=object))
    s = streets[streets.geometry.notna() & ~streets.geometry.is_empty]
    classes = (
        s[cls_col].map(street_rank).to_numpy() if cls_col else np.full(len(s), "street", dtype=object)
    )
    keep = ~np.isin(classes, list(exclude))
    geoms = s.geometry.values[keep]
    classes = classes[keep]
    names = (s["name"].to_numpy(dtype=object) if "name" in s.columns
             else np.full(len(s), None, dtype=object))[keep]
    parts, idx = shapely.get_parts(np.asarray(geoms), return_index=True)
    return shapely.force_2d(parts), classes[idx], names[idx]


def _tunnels(streets: gpd.GeoDataFrame | None, lines: np.ndarray) -> np.ndarray:
    """Which of the street lines run in a tunnel (OSM ``tunnel``, Tilezen ``is_tunnel``)."""
    flag = np.zeros(len(lines), dtype=bool)
    if streets is None or not len(streets) or not len(lines):
        return flag
    s = streets[streets.geometry.notna() & ~streets.geometry.is_empty]
    t = np.zeros(len(s), dtype=bool)
    if "tunnel" in s.columns:
        t |= s["tunnel"].astype(str).str.lower().isin(["yes", "true", "1", "culvert"]).to_numpy()
    if "is_tunnel" in s.columns:
        t |= s["is_tunnel"].astype(str).str.lower().isin(["true", "1", "yes"]).to_numpy()
    if not t.any():
        return flag
    # the lines are the parts of the kept streets, in order: match them back
    tl = shapely.get_parts(np.asarray(s.geometry.values[t]))
    tree = shapely.STRtree(shapely.force_2d(tl))
    li, _ = tree.query(lines, predicate="covered_by")
    flag[li] = True
    return flag


def delineate(
    buildings: gio.LayerSource | None = None,
    streets: gio.LayerSource | None = None,
    population: gio.LayerSource | None = None,
    *,
    boundaries: gio.LayerSource | None = None,
    compounds: gio.LayerSource | None = None,
    units: gio.LayerSource | None = None,
    columns: dict[str, str] | None = None,
    id_column: str | None = None,
    target: float = 300,
    tolerance: float = 0.1,
    by: str = "households",
    crs: Any = "auto",
    seed: int | None = 0,
    split_above: float | None = None,
    street_column: str | None = None,
    barriers: Iterable[str] = DEFAULT_BARRIERS,
    exclude_streets: Iterable[str] = NON_BLOCKING_CLASSES,
    cut_cost: dict[str, float] | None = None,
    max_distance: float = 50.0,
    dwelling_size: float = 90.0,
    persons_per_household: float = 2.62,
    default_levels: float = 1.0,
    division_code: str = "000000",
    workload: dict[str, float] | None = None,
    worker_capacity: float = DEFAULT_CAPACITY,
    groups: Iterable[str] = (),
    targets: Mapping[str, float | tuple[float, float]] | None = None,
    type_column: str = "community_type",
    sites: gio.LayerSource | None = None,
    unit_kinds: Iterable[str] = DEFAULT_UNIT_KINDS,
    unit_kind_column: str | None = None,
    unit_min_area: float = 5000.0,
    headcount_column: str | None = None,
    unit_min_headcount: float = 500.0,
    road_grids: bool = False,
    road_classes: Iterable[str] = DEFAULT_ROAD_CLASSES,
    road_names: Iterable[str] = (),
    road_depth: float = 15.0,
    road_max_length: float = 800.0,
    road_max_load: float | None = None,
    community_target: float | None = None,
    community_tolerance: float = 0.2,
    strict: bool = False,
    encoding: str | None = None,
    allow_overlaps: bool = False,
    islands: str = "own",
    progress: bool | None = None,
    scheduler: str | None = None,
    exact: bool = True,
    restarts: int = 1,
    _previous: dict[str, Any] | None = None,
    _timer: StageTimer | None = None,
) -> GridPlan:
    """Delineate balanced, contiguous, street-bounded community grids.

    Parameters
    ----------
    buildings
        Building footprints (polygons): a GeoDataFrame or any file GDAL reads,
        GeoParquet, or an OSM extract.  Optional when ``units`` are given.
    streets
        Street centre-lines with a class column (OSM ``highway`` or
        ``street_column``).  Their faces are the street blocks (街巷定界).
    population
        Population in any form :func:`gridmap.population.population_onto_buildings`
        reads: None (counts on the buildings, or an estimate from floor area),
        points, or areas with counts.
    boundaries
        Community boundaries (polygons, ``community_id`` and optionally
        ``subdistrict_id`` columns); grids never cross them.  Without them the
        whole area is one community.
    compounds
        Compound (小区) polygons, kept whole unless one alone exceeds a grid.
    units
        Units given directly (census blocks, parcels, old grids): partitioned as
        they are, with their own population columns when there are no buildings.
    columns
        Source column names mapped to canonical ones, ``{"households": "HH"}``.
    id_column
        The building (or unit) id column; default ``id`` if present, else
        generated (1..n).
    target, tolerance, by
        Target per grid on the balance field ``by`` and the allowed relative
        deviation from the community mean.
    crs
        Metric CRS to work in; ``"auto"`` picks one (CGCS2000 Gauss-Krüger for
        CGCS2000 input, UTM otherwise).  Outputs are in the input CRS.
    seed
        The same input and seed give the same plan.
    split_above
        A block holding more than this on ``by`` is split between its buildings
        (default: ``target``).
    workload, worker_capacity
        Weights of the workload formula per grid column (default
        :data:`gridmap.workload.DEFAULT_WORKLOAD`) and the load one grid worker
        carries; every grid gets ``workload``, ``workers`` (at least one) and
        ``workload_per_worker``.  ``by="workload"`` balances the grids on it
        (the formula without its area term, worked out per building).
    groups
        Further count columns to carry to every grid and report (key persons,
        people needing care, ...), besides the population categories
        ``pop_registered``, ``pop_floating``, ``pop_absent``, ``elderly`` and the
        workload counts ``shops`` and ``cases``, which are carried whenever the
        input has them.
    targets, type_column
        Differentiated targets (差异性): a target, or ``(target, tolerance)``,
        per community type, e.g. ``{"old_town": (250, 0.15), "estate": 400}``.
        A community's type is its ``type_column`` on the boundaries, else the
        type holding most of its balance weight on the buildings; a community
        of a type not in the table uses ``target`` and ``tolerance``.
    sites, unit_kinds, unit_kind_column, unit_min_area, headcount_column, unit_min_headcount
        Unit-type grids (单位型): polygons of schools, hospitals, markets,
        construction sites, venues, government halls... (a layer of sites, or
        OSM landuse/amenity polygons).  A site whose kind (``unit_kind_column``,
        else ``kind``/``kind_detail``/``amenity``/``landuse``/``leisure``/
        ``office``) is in ``unit_kinds`` and whose area is at least
        ``unit_min_area`` m² (or headcount at least ``unit_min_headcount``) is a
        grid of its own, ``kind="unit"``, carved out of the community grids.
    road_grids, road_classes, road_names, road_depth, road_max_length, road_max_load
        Road-type grids (道路型): the corridor of the streets of
        ``road_classes`` (default primary and secondary) or named in
        ``road_names``, carriageway and frontage ``road_depth`` metres each side,
        cut at intersections and joined into stretches of at most
        ``road_max_length`` metres (and, with ``road_max_load``, at most that
        much of ``by`` in its buildings); each stretch is a grid,
        ``kind="road"``, with the buildings in it.
    strict
        Refuse, instead of repairing and reporting, invalid polygons, rows with
        no geometry (otherwise dropped, not in the plan), layers in different
        CRSs, buildings outside every community boundary, streets that enclose
        no block and a file whose text encoding would have to be guessed.  Every
        other bad input is refused either way, all problems in one
        :class:`~gridmap.LayerValidationError`.
    encoding
        The text encoding of the Shapefiles and CSVs read (e.g. ``"gbk"``,
        ``"gb18030"``, ``"utf-8"``), overriding a Shapefile's ``.cpg``; other
        formats are UTF-8 by definition.  Default None: a Shapefile's ``.cpg``,
        else UTF-8, else GB18030 with a :class:`~gridmap.GridmapWarning` (see
        :func:`gridmap.io.read_layer`).
    allow_overlaps
        Community boundaries that overlap are refused (overlaps under 1 m² or
        under 0.01 % of the smaller community are slivers and ignored); True
        allows them, each overlap going to the community listed first in
        ``boundaries``, with a note and a :class:`~gridmap.GridmapWarning`.
    islands
        What to do with an island, a part of a community that nothing connects to
        the rest (an exclave, a unit across water): ``"own"`` (default) makes it
        grids of its own (one flagged ``island`` when it is too light for a
        grid), so that every grid stays in one piece; ``"nearest"`` joins an
        island too light for a grid to the nearest grid of its community (that
        grid is then in two pieces); ``"error"`` refuses the input with a
        :class:`~gridmap.DisconnectedUnitsError`.  Either way every island is
        listed in ``metrics["islands"]``.
    community_target, community_tolerance
        With no community boundaries: delineate communities first, street
        blocks grouped into contiguous communities of about ``community_target``
        on ``by`` (e.g. 2,000 households, ±``community_tolerance``), then the
        grids inside each, coded sub-district → community → grid.
    progress
        A tqdm bar per stage on stderr (a widget in a notebook): ``True``,
        ``False``, or ``None`` (default) for on when stderr is a terminal or in
        a notebook.  Either way the seconds and peak memory of every stage are
        in ``plan.timings`` (``metrics["timings"]``).
    scheduler
        Partition the communities in parallel on Dask: ``"local"`` for a
        cluster on this machine (a worker per core), or the address of a
        running Dask scheduler (``"tcp://10.0.0.5:8786"``).  Default None: one
        after the other.  The plan is the same either way.  Needs
        ``pip install "gridmap[dask]"``.
    exact
        Where the local moves leave grids out of the band, re-cut the few grids
        around each with a small mixed-integer programme (HiGHS, through SciPy)
        and keep the result only where every grid of the region ends within the
        band (default True).  False skips it: a little faster, less balanced.
        A new plan only: a re-partition keeps to its own, smaller moves.
    restarts
        Make this many plans, with seeds ``seed``, ``seed + 1``, ..., and keep
        the one with the fewest grids out of the band, then the smallest largest
        deviation (default 1).  Where units are coarse (single buildings of most
        of a grid) which grids stay out depends much on the seed; each plan takes
        as long as one.  Stops at the first plan with none out.  A new plan only.

    Returns
    -------
    GridPlan

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> from shapely import LineString
    >>> b = gpd.GeoDataFrame({"households": [100] * 16},
    ...     geometry=[shapely.box(x * 50 + 10, y * 50 + 10, x * 50 + 30, y * 50 + 30)
    ...               for x in range(4) for y in range(4)], crs=32651)
    >>> s = gpd.GeoDataFrame({"highway": ["residential"] * 6},
    ...     geometry=[LineString([(v, -5), (v, 205)]) for v in (0, 100, 200)]
    ...     + [LineString([(-5, v), (205, v)]) for v in (0, 100, 200)], crs=32651)
    >>> plan = delineate(b, s, target=400, tolerance=0.1)
    >>> len(plan.grids), plan.grids["households"].tolist()
    (4, [400.0, 400.0, 400.0, 400.0])
    """
    own_timer = _timer is None
    timer = StageTimer(progress, stages=STAGES[:-2]) if own_timer else _timer
    timer.stage("read")
    if not isinstance(strict, bool):
        msg = f"strict must be True or False, got {strict!r}."
        raise LayerValidationError(msg)
    if not isinstance(allow_overlaps, bool):
        msg = f"allow_overlaps must be True or False, got {allow_overlaps!r}."
        raise LayerValidationError(msg)
    if isinstance(restarts, bool) or not isinstance(restarts, (int, np.integer)) \
            or restarts < 1:
        msg = (f"restarts must be a whole number of 1 or more, got {restarts!r}: the "
               "number of plans made (seeds seed, seed + 1, ...) of which the best is "
               "kept; 1 makes one.")
        raise LayerValidationError(msg)
    if islands not in ISLAND_POLICIES:
        msg = (f"islands must be one of {list(ISLAND_POLICIES)}, got {islands!r}: "
               "'own' gives a cut-off part its own grid, 'nearest' joins it to the "
               "nearest grid, 'error' refuses it.")
        raise LayerValidationError(msg)
    problems = Problems()
    group_cols = tuple(groups)
    # balancing on workload: every building's (or unit's) workload from its counts
    on_workload = by == "workload"
    try:  # the workload formula is checked now, not after the partition
        grid_workload(pd.DataFrame(), weights=workload, capacity=worker_capacity)
    except GridmapError as exc:
        problems.add(str(exc))
    # every layer read and every input checked in one pass; all problems at once
    checked = validate_inputs(
        {"buildings": buildings, "streets": streets, "population": population,
         "boundaries": boundaries, "compounds": compounds, "sites": sites,
         "units": units},
        columns=columns, id_column=id_column, by=by, target=target,
        tolerance=tolerance, groups=group_cols, street_column=street_column,
        strict=strict, extra_fields=_EXTRA_FIELDS, problems=problems,
        encoding=encoding, allow_overlaps=allow_overlaps,
    )
    notes: list[str] = list(checked.notes)
    bld, st, pop, bnd, cmp_, sit, unt = (
        checked.layers[r] for r in ("buildings", "streets", "population", "boundaries",
                                    "compounds", "sites", "units"))
    problems.raise_if_any()
    # canonical names; the original columns are kept for the output
    bld_in = bld
    bld = gio.rename_columns(bld, columns, role="buildings") if bld is not None else None
    unt = gio.rename_columns(unt, columns, role="units") if unt is not None else None
    pop = gio.rename_columns(pop, columns, role="population") if pop is not None else None
    bnd = gio.rename_columns(bnd, columns, role="boundaries") if bnd is not None else None
    cmp_ = gio.rename_columns(cmp_, columns, role="compounds") if cmp_ is not None else None
    st = gio.rename_columns(st, columns, role="streets") if st is not None else None

    main = bld if bld is not None else unt
    main_role = "buildings" if bld is not None else "units"
    id_col = _id_column(main, id_column, main_role, problems)
    ids = _ids(main, id_col, main_role, problems)
    fields = tuple(dict.fromkeys((*_COUNT_FIELDS, by)))
    if bld is None:
        absent = [f for f in (by,) if f not in unt.columns and not on_workload]
        if absent:
            problems.add(
                f"`units` has no column {absent[0]!r} to balance on; its columns are "
                f"{[c for c in unt.columns if c != unt.geometry.name]}. Map yours with "
                f"columns={{'{absent[0]}': 'your_column'}} or choose by=."
            )
    problems.raise_if_any()
    # the same plan whatever the row order of the input: the buildings (by id,
    # else by geometry) and the streets (by geometry) are worked on in one
    # canonical order, and the buildings given back in the input's order
    restore = None
    if bld is not None:
        order = _canonical_order(bld, ids if id_col is not None else None)
        if not np.array_equal(order, np.arange(len(order))):
            bld, bld_in, ids = bld.iloc[order], bld_in.iloc[order], np.asarray(ids)[order]
            main = bld
            restore = np.argsort(order)
    if st is not None:
        st = st.iloc[_canonical_order(st, None)]

    input_crs = main.crs
    work_crs = gio.metric_crs(main, crs)
    layers = {}
    for role, gdf in (("streets", st), ("population", pop), ("boundaries", bnd),
                      ("compounds", cmp_), ("units", unt), ("sites", sit)):
        layers[role] = _to(gdf, work_crs)
    st, pop, bnd, cmp_, unt, sit = (layers[r] for r in ("streets", "population",
                                                         "boundaries", "compounds", "units",
                                                         "sites"))

    # buildings in the working CRS, by position
    if bld is not None:
        bm = bld.to_crs(work_crs).reset_index(drop=True)
        bm, repaired = repair_polygons(bm)
        if repaired:
            notes.append(f"{len(repaired)} invalid building polygon(s) repaired with make_valid.")
        bm["building_id"] = ids
    else:
        bm = None

    timer.stage("population")
    if bm is not None:
        source_cols = (pop if pop is not None else bm).columns
        missing_groups = [c for c in group_cols if c not in source_cols]
        if missing_groups:
            raise LayerValidationError(
                f"group column(s) {missing_groups} are not in the "
                f"{'population layer' if pop is not None else 'buildings'}; its columns "
                f"are {sorted(map(str, source_cols))}. Map a source column with "
                "columns={'name': 'SOURCE'} or leave the group out."
            )
        extra = tuple(f for f in (*_EXTRA_FIELDS, *group_cols) if f in source_cols and f != by)
        given = tuple(f for f in _COUNT_FIELDS if f in source_cols)
        if on_workload:
            # workload is worked out from the counts below; the counts come as usual
            pfields = None if not extra else (tuple(dict.fromkeys((*given, *extra)))
                                               if given else None)
        elif by in _COUNT_FIELDS and not extra:
            pfields = None
        elif by in _COUNT_FIELDS and not given:
            # counts estimated from floor area: the extra columns cannot ride along
            pfields = None
            notes.append(f"columns {list(extra)} were not used: with no households or "
                         "pop_actual given, population is estimated from floor area.")
        else:
            pfields = tuple(dict.fromkeys((*given, by, *extra)))
        pres = population_onto_buildings(
            bm,
            pop,
            fields=pfields,
            max_distance=max_distance,
            dwelling_size=dwelling_size,
            persons_per_household=persons_per_household,
            default_levels=default_levels,
        )
        counts = pres.counts
        fields = tuple(pres.fields)
        if on_workload:
            counts, fields = _with_workload(counts, fields, workload)
        if by not in fields:
            raise LayerValidationError(
                f"the balance field {by!r} is not in the population "
                f"({', '.join(fields) or 'no counts'}); choose by= among them or give "
                f"a column {by!r}."
            )
        pop_report = {"method": pres.method, **pres.report}
        unplaced_pop = pres.unplaced
        estimated = bool(counts["estimated"].any()) if "estimated" in counts else False
    else:
        um = unt.reset_index(drop=True)
        fields = tuple(dict.fromkeys(
            (*(f for f in fields if f != "workload" or not on_workload),
             *(f for f in (*_EXTRA_FIELDS, *group_cols) if f in um))))
        counts = pd.DataFrame({f: pd.to_numeric(um[f], errors="coerce") if f in um else 0.0
                               for f in fields})
        if on_workload:
            counts, fields = _with_workload(counts.fillna(0.0), fields, workload)
        bad = counts[by].isna() | (counts[by] < 0)
        if bad.any():
            raise LayerValidationError(
                f"`units` column {by!r} is empty or negative in rows "
                f"{list(um.index[bad][:5])}; give a count of 0 or more for every unit."
            )
        counts = counts.fillna(0.0)
        counts["estimated"] = False
        pop_report = {"method": "units"}
        unplaced_pop = None
        estimated = False
    total = float(counts[by].sum())
    if total <= 0:
        raise InfeasiblePartitionError(
            f"the total of {by!r} is {total:g}: there is nothing to balance. Give "
            "population (population=...) or choose another by=."
        )
    if target > total:
        raise InfeasiblePartitionError(
            f"target {target:g} is above the total of {by!r} ({total:g}): the area "
            f"would not make even one grid. Lower the target (e.g. {max(1, total / 10):.0f})."
        )
    if bnd is None:
        # one community: say now, not after the units, if its grids cannot be coded
        # (buildings only: units given directly may be coarser than buildings)
        w0 = counts[by].to_numpy(dtype=float)
        _check_grid_count(w0, np.zeros(len(w0), dtype=np.int64), target, tolerance, [1])

    timer.stage("units")
    cls_col = _street_class_column(st, street_column) if st is not None else None
    lines, classes, street_names = _lines(st, cls_col, exclude_streets)
    communities = None
    community_ids: list[Any] = [1]  # no boundaries: the whole area is community 1
    subdistrict_ids: list[Any] = [None]
    if bnd is not None:
        bnd = bnd.reset_index(drop=True)
        communities = np.asarray(shapely.make_valid(bnd.geometry.values))
        community_ids = (bnd["community_id"].tolist() if "community_id" in bnd
                         else list(range(1, len(bnd) + 1)))
        subdistrict_ids = (bnd["subdistrict_id"].tolist() if "subdistrict_id" in bnd
                           else [None] * len(bnd))
    if unt is not None:
        ugeoms = np.asarray(shapely.make_valid(unt.reset_index(drop=True).geometry.values))
        area = shapely.union_all(ugeoms)
        area_source = "units"
    else:
        area, area_source = study_area(
            bm.geometry, lines, boundaries=bnd.geometry if bnd is not None else None
        )
        ugeoms = None
    # a tunnel carries no frontage: it makes no road grid
    overground = ~_tunnels(st, lines)
    carve_geom, carve_kind, carve_label = _carve(
        sit, lines[overground], classes[overground], street_names[overground], area, notes,
        unit_kinds=unit_kinds, unit_kind_column=unit_kind_column,
        unit_min_area=unit_min_area, headcount_column=headcount_column,
        unit_min_headcount=unit_min_headcount, road_grids=road_grids,
        road_classes=road_classes, road_names=road_names, road_depth=road_depth,
        road_max_length=road_max_length, given_units=unt is not None,
        road_max_load=road_max_load,
        load_points=shapely.point_on_surface(np.asarray(bm.geometry.values))
        if bm is not None else None,
        load=counts[by].to_numpy(dtype=float),
    )
    if bm is not None:
        bgeoms = np.asarray(bm.geometry.values)
        blocks = make_blocks(
            bgeoms, lines, area,
            communities=communities,
            compounds=np.asarray(cmp_.geometry.values) if cmp_ is not None else None,
            given_units=ugeoms,
            carve=carve_geom if len(carve_geom) else None,
        )
    else:
        # units without buildings: each unit is its own block and holds its counts
        order = np.arange(len(ugeoms))
        comm = np.zeros(len(ugeoms), dtype=np.int64)
        if communities is not None:
            from .units import assign_by_overlap

            comm, _ = assign_by_overlap(shapely.point_on_surface(ugeoms), communities)
        blocks = Blocks(ugeoms, order, comm, np.full(len(ugeoms), -1))
        bgeoms = shapely.point_on_surface(ugeoms)
    if len(blocks.outside) and bnd is None:  # outside the boundaries: said already
        notes.append(
            f"{len(blocks.outside)} building(s) lie outside the area "
            f"({area_source}); each was put in the nearest block."
        )
    barriers = frozenset(barriers)

    def graph_of(umap: gpd.GeoDataFrame, building_unit: np.ndarray):
        adj = build_adjacency(
            umap.geometry.values,
            block=umap["block"].to_numpy(),
            streets=lines if len(lines) else None,
            street_classes=classes if len(lines) else None,
            cut_cost=cut_cost,
            barriers=barriers,
        )
        w = np.bincount(building_unit, weights=counts[by].to_numpy(dtype=float),
                        minlength=len(umap))
        cen = shapely.centroid(umap.geometry.values)
        xy = np.column_stack([shapely.get_x(cen), shapely.get_y(cen)])
        # an empty unit (none should be) sits at the middle rather than nowhere
        xy = np.where(np.isfinite(xy), xy, np.nanmean(xy, axis=0))
        g = UnitGraph.from_edges(len(umap), w, xy, adj.i, adj.j,
                                 adj.length * adj.cost, adj.barrier)
        return adj, g

    if community_target is not None:
        if bnd is not None:
            notes.append("community_target was not used: community boundaries were given.")
        else:
            blocks, communities, community_ids = _delineate_communities(
                blocks, bgeoms, graph_of, community_target, community_tolerance, seed)
            subdistrict_ids = [None] * len(community_ids)
            notes.append(f"{len(community_ids)} communities delineated first (target "
                         f"{community_target:g} ±{community_tolerance:.0%} on {by!r}), "
                         "then the grids inside each.")
    ctarget, ctol, ctype = _community_targets(
        targets, type_column, target, tolerance, bnd=bnd, bm=bm, blocks=blocks,
        weight=counts[by].to_numpy(dtype=float), n_communities=len(community_ids),
        notes=notes,
    )
    bcomm = np.clip(np.asarray(blocks.community, dtype=np.int64), 0, len(ctarget) - 1)
    split_limit = ctarget[bcomm] if split_above is None else split_above
    load = blocks.loads(counts[by].to_numpy(dtype=float))
    nbld = np.bincount(blocks.building_block, minlength=len(blocks.geometry))
    split = (load > split_limit) & (nbld > 1) & (bm is not None)
    bspecial = (blocks.special if blocks.special is not None
                else np.full(len(blocks.geometry), -1, dtype=np.int64))
    split &= bspecial < 0  # a road or unit grid is never split
    old_grid = None
    if _previous is not None:
        # the grid every building was in; a block whose buildings were in
        # several grids is split between them again
        old_grid = pd.Series(ids).map(_previous["building_grid"]).to_numpy(dtype=float)
        bb = pd.DataFrame({"b": blocks.building_block, "g": old_grid}).dropna()
        spans = bb.groupby("b")["g"].nunique()
        many = np.zeros(len(blocks.geometry), dtype=bool)
        many[spans.index[spans > 1].to_numpy(dtype=np.int64)] = True
        split |= many & (nbld > 1) & (bspecial < 0)
        again = _previous.get("split_buildings")
        if again:
            was = pd.Series(ids).isin(again).to_numpy()
            split[np.unique(blocks.building_block[was])] |= True
            split &= (nbld > 1) & (bspecial < 0)
        # in a community whose population changed, blocks are split between their
        # buildings from the start: grid edges can then move building by building
        # instead of block by block, and fewer households change grid
        old_w = _previous.get("building_weight")
        if old_w is not None:
            before_w = pd.Series(ids).map(old_w).to_numpy(dtype=float)
            now_w = counts[by].to_numpy(dtype=float)
            changed = np.isnan(before_w) | (np.abs(now_w - np.nan_to_num(before_w)) > 1e-9)
            bcomm_all = np.asarray(blocks.community, dtype=np.int64)
            touched = set(bcomm_all[blocks.building_block[changed]].tolist())
            gone = _previous.get("demolished_grids", ())
            if len(gone):
                gmap = _previous["grids"].set_index("grid_id")["community_id"].astype(str)
                cpos = {str(cid): k for k, cid in enumerate(community_ids)}
                touched |= {cpos[gmap[x]] for x in gone if x in gmap and gmap[x] in cpos}
            split |= np.isin(bcomm_all, list(touched)) & (nbld > 1) & (bspecial < 0)
    exempt_blocks = split.copy()
    cells_cache: dict = {}
    umap, building_unit = build_units(blocks, bgeoms, split, cache=cells_cache,
                                      progress=timer.progress)

    timer.stage("adjacency")
    adj, g = graph_of(umap, building_unit)

    timer.stage("partition")
    ucomm = umap["community"].to_numpy()
    _check_grid_count(g.weight, ucomm, ctarget, ctol, community_ids)
    if _previous is not None:
        from .repartition import rebalance, seed_assignment

        _previous = {**_previous, "grids_work": _previous["grids"].to_crs(work_crs)}
        assignment = seed_assignment(_previous, g, umap, building_unit, old_grid,
                                     ucomm, community_ids)
        before = _previous.get("grid_weight")
        assignment = rebalance(assignment, g, ctol, _previous.get("lock", ()), seed, notes,
                               target=ctarget,
                               before=None if before is None else before.to_dict(),
                               move_budget=_previous.get("move_budget", 2.0))
    else:
        def attempt(seed_k: int | None, split: np.ndarray, umap: gpd.GeoDataFrame,
                    building_unit: np.ndarray, adj: Any, g: UnitGraph,
                    notes: list[str]) -> tuple:
            """One plan: the partition, the rounds of splitting, the exact pass."""
            # a plan's own cache: the sectors of an empty block depend on the
            # units around it, which differ from plan to plan
            cache = dict(cells_cache)
            assignment = partition_graph(g, ucomm, target=ctarget, tolerance=ctol, seed=seed_k,
                                         fixed=bspecial[umap["block"].to_numpy()],
                                         fixed_kind=carve_kind, islands=islands,
                                         community_names=community_ids,
                                         progress=timer.progress, scheduler=scheduler)
            opened = np.zeros(len(blocks.geometry), dtype=bool)

            def regrid(assignment, split, more, opened, umap, building_unit, g, *,
                       whole_plans=True):
                """The units made again (blocks in ``split`` cut, those in ``opened``
                opened), every unit in the grid it was in, then the moves (with
                ``whole_plans``, :func:`repair`'s recombinations and new plans
                too)."""
                ulab = assignment.labels
                ub = umap["block"].to_numpy()
                block_grid = np.full(len(blocks.geometry), -1, dtype=np.int64)
                # unsplit blocks are whole units: their grid carries over to their cells
                whole = ~umap["split"].to_numpy()
                block_grid[ub[whole]] = ulab[whole]
                old_building_grid = ulab[building_unit]
                umap, building_unit = build_units(blocks, bgeoms, split, cache=cache,
                                                  opened=opened)
                adj, g = graph_of(umap, building_unit)
                newlab = block_grid[umap["block"].to_numpy()]
                # cells of blocks split before keep the grid of their buildings
                cell_has = np.full(len(umap), -1, dtype=np.int64)
                cell_has[building_unit] = old_building_grid
                newlab = np.where(cell_has >= 0, cell_has, newlab)
                # the sectors of an empty block split before keep their grids (they are
                # made once: the cache keeps them)
                new_ub = umap["block"].to_numpy()
                kept = split & ~more & (nbld == 0)
                was = np.flatnonzero(kept[ub])
                now = np.flatnonzero(kept[new_ub])
                was, now = was[np.argsort(ub[was], kind="stable")], \
                    now[np.argsort(new_ub[now], kind="stable")]
                if np.array_equal(ub[was], new_ub[now]):  # the same sectors, in order
                    newlab[now] = ulab[was]
                # a unit holding no building (open land, rarely a cell) joins the
                # grid it shares most edge with
                _fill_from_neighbours(adj, newlab, np.flatnonzero(
                    [bool(f) for f in assignment.flag]))
                assignment.labels = _reconnect(g, newlab, assignment)
                for c, ordinary, cn, sub in _communities(assignment, g, umap):
                    mean = assignment.mean[c]
                    labels_c = refine(sub, assignment.labels[cn], grids=ordinary, mean=mean,
                                      tolerance=float(ctol[c]))
                    if whole_plans:
                        labels_c = repair(sub, labels_c, grids=ordinary, mean=mean,
                                          tolerance=float(ctol[c]),
                                          rng=np.random.default_rng(seed_k))
                    assignment.labels[cn] = labels_c
                return umap, building_unit, adj, g

            def near_bad(bad, umap, g):
                """The units' blocks of the grids out of the band and of the grids
                touching them, and the blocks of the units along their edges."""
                ulab = assignment.labels
                ub = umap["block"].to_numpy()
                touch = np.isin(ulab[g.i], bad) | np.isin(ulab[g.j], bad)
                beside = np.concatenate([g.i[touch], g.j[touch]])
                near = np.union1d(bad, ulab[beside])
                inner = np.zeros(len(blocks.geometry), dtype=bool)
                inner[ub[np.isin(ulab, near)]] = True
                edge = np.zeros(len(blocks.geometry), dtype=bool)
                edge[ub[beside]] = True
                return inner, edge

            def settle(node_budget=300, walks_first=False):
                """The exact check, then walks and the exact check again on what
                they change; with ``walks_first``, walks before it all (done if
                they leave no grid out)."""
                if walks_first and _wander_pass(
                        assignment, g, umap, ctol, np.random.default_rng(seed_k),
                        notes) and not _out_of_band(assignment, g, ctol):
                    return
                if exact:
                    # what the moves could not balance, an exact re-cut of the grids
                    # around it may: kept only where every grid of the region ends in
                    # the band
                    _exact_pass(assignment, g, umap, ctol, notes, node_budget=node_budget)
                # what is still out may be short (or over) only where it is: walks of
                # recombinations carry the shortfall to grids with room (never to a
                # plan with more grids out), and the exact check looks again at what
                # they leave
                if _wander_pass(assignment, g, umap, ctol, np.random.default_rng(seed_k),
                                notes) and exact:
                    _exact_pass(assignment, g, umap, ctol, notes, node_budget=node_budget)

            # where balance is out of reach with whole blocks, split the blocks of the
            # offending grids and their neighbours between buildings and move again
            for _round in range(3):
                bad = _out_of_band(assignment, g, ctol)
                if not bad:
                    break
                inner, hubs = near_bad(bad, umap, g)
                more = inner & ~split & (nbld > 1) & (bspecial < 0)
                # a block with no building next to a grid out of the band (a square, a
                # park between ring roads) is split between the units around it: whole,
                # it goes to one grid, and a building cut off behind it can join no other
                more |= hubs & ~split & (nbld == 0) & (bspecial < 0)
                if not more.any():
                    break
                split = split | more
                umap, building_unit, adj, g = regrid(assignment, split, more, opened,
                                                     umap, building_unit, g)
            settle()
            # a grid still out may be walled in: its buildings' cells reach to the
            # middle of the land round them, and a heavy building's cell bars the
            # way to the light ones behind it.  The split blocks round it are opened
            # (each cell cut to its buildings' plot, the land between cut into
            # sectors) so that a grid can pass a building along the land beside it.
            # An oversize grid that also holds a light building (one cut off
            # between heavy ones) is out too: the exception is for one unit alone
            def key_now():
                n_out, worst = _plan_key(assignment, g, ctol)
                return n_out + len(_laden(assignment, building_unit)), worst

            bad = _out_of_band(assignment, g, ctol) + _laden(assignment, building_unit)
            if bad:
                inner, _ = near_bad(bad, umap, g)
                more_open = inner & split & (nbld > 1) & ~opened
                if more_open.any():
                    before = (copy.deepcopy(assignment), umap, building_unit, adj, g,
                              len(notes), key_now())
                    opened = opened | more_open
                    umap, building_unit, adj, g = regrid(
                        assignment, split, np.zeros_like(split), opened, umap,
                        building_unit, g, whole_plans=False)
                    if _shed(assignment, g, building_unit):
                        for c, ordinary, cn, sub in _communities(assignment, g, umap):
                            assignment.labels[cn] = refine(
                                sub, assignment.labels[cn], grids=ordinary,
                                mean=assignment.mean[c], tolerance=float(ctol[c]))
                    # the open land multiplies the units of a region, and the
                    # exact check's programmes grow with them (seconds a node):
                    # the walks go first, and the check gets a tenth of its work
                    settle(node_budget=30, walks_first=True)
                    after = key_now()
                    if after < before[-1]:
                        notes.append(
                            f"{int(more_open.sum())} split block(s) round the {len(bad)} "
                            "grid(s) still out of the band opened (the land farther than "
                            "10 m from every building cut into sectors a grid can pass "
                            f"along): {after[0]} grid(s) out after.")
                    else:  # no better: the units stay as they were
                        assignment, umap, building_unit, adj, g, n_notes, _ = before
                        del notes[n_notes:]
            return assignment, split, umap, building_unit, adj, g

        # the plans of seeds seed, seed + 1, ...: the one with the fewest grids out
        # of the band, then the smallest largest deviation, is kept
        best = None
        for k in range(restarts):
            seed_k = None if seed is None else int(seed) + k
            notes_k: list[str] = []
            got = attempt(seed_k, split, umap, building_unit, adj, g, notes_k)
            key = _plan_key(got[0], got[-1], ctol)
            if best is None or key < best[0]:
                best = (key, got, notes_k, seed_k)
            if key[0] == 0:
                break
        (n_bad, worst), (assignment, split, umap, building_unit, adj, g), notes_k, seed_k = best
        notes.extend(notes_k)
        if restarts > 1:
            notes.append(f"{k + 1} plan(s) made (restarts={restarts}); kept the one of "
                         f"seed {seed_k}: {n_bad} grid(s) out of the band, the largest "
                         f"deviation {worst:.1%}.")

    timer.stage("plan")
    plan = _assemble(
        assignment=assignment, umap=umap, building_unit=building_unit, g=g, adj=adj,
        blocks=blocks, exempt_blocks=exempt_blocks, counts=counts, fields=fields, by=by,
        bm=bm, bld_in=bld_in, unt=unt, ids=ids, id_col=id_col, input_crs=input_crs,
        work_crs=work_crs, area=area, area_source=area_source, lines=lines,
        communities=communities, community_ids=community_ids,
        subdistrict_ids=subdistrict_ids, division_code=division_code,
        tolerance=ctol, community_target=ctarget, community_type=ctype,
        carve_label=carve_label, carve_geom=carve_geom,
        estimated=estimated, timer=timer, notes=notes,
        params={
            "target": target, "tolerance": tolerance, "by": by, "seed": seed,
            "crs": work_crs.to_string(), "input_crs": input_crs.to_string()
            if input_crs is not None else None,
            "split_above": split_limit, "area_source": area_source,
            "division_code": division_code, "id_column": id_col,
            "barriers": sorted(barriers),
            "targets": None if targets is None else {str(k): v for k, v in targets.items()},
            "type_column": type_column if targets is not None else None,
        },
        pop_report=pop_report,
        workload=workload,
        worker_capacity=worker_capacity,
        street_classes=classes,
    )
    plan.metrics["conservation"] = _conservation(
        plan, counts, fields, pop_report, unplaced_pop, n_in=len(main),
        dropped=checked.dropped.get(main_role, []))
    if not plan.metrics["conservation"]["conserved"]:  # a defect, never bad input
        msg = f"the plan lost or made up something: {plan.metrics['conservation']}"
        raise GridmapError(msg)
    if restore is not None:
        plan = dataclasses.replace(plan, buildings=plan.buildings.iloc[restore])
    if plan.metrics["islands"]:
        isl = plan.metrics["islands"]
        msg = (f"{len(isl)} island(s), parts of a community nothing connects to the "
               f"rest (islands={islands!r}): "
               + "; ".join(f"community {r['community_id']!r}: {r['n_units']} unit(s), "
                           f"{r['weight']:g} {by}, {r['action']} {r['grid_ids']}"
                           for r in isl[:5])
               + (" …" if len(isl) > 5 else ""))
        plan.metrics["notes"].append(msg)
        warnings.warn(msg, GridmapWarning, stacklevel=2)
    # the plan's timings are the timer's: what closes now is in them too
    timer.done(close_bar=own_timer)
    return plan


def _canonical_order(gdf: gpd.GeoDataFrame, ids: np.ndarray | None) -> np.ndarray:
    """Positions of ``gdf``'s rows in an order that does not depend on the input's.

    By id when there are ids (unique), else by the normalised geometry (its WKB),
    ties kept in input order (identical rows give identical plans either way).
    """
    if ids is not None:
        key = pd.Series(ids)
        if key.dtype == object:
            key = key.map(lambda v: (type(v).__name__, str(v)))
            return np.array(sorted(range(len(key)), key=key.__getitem__), dtype=np.int64)
        return np.argsort(key.to_numpy(), kind="stable")
    wkb = shapely.to_wkb(shapely.normalize(np.asarray(gdf.geometry.values)))
    wkb = [b if b is not None else b"" for b in wkb]
    return np.array(sorted(range(len(wkb)), key=wkb.__getitem__), dtype=np.int64)


def _conservation(plan: GridPlan, counts: pd.DataFrame, fields: tuple[str, ...],
                  pop_report: dict[str, Any], unplaced: pd.DataFrame | None, *,
                  n_in: int, dropped: Iterable[Any] = ()) -> dict[str, Any]:
    """Nothing lost: buildings, and every count per building, community and overall.

    Counts are whole numbers held in floats, so their sums are exact and are
    compared exactly; a weighted field (``workload``) to a millionth.  ``n_in``
    counts the buildings (or units) that entered the plan; ``dropped`` are the
    ids (else row labels) of the input rows with no geometry, left out before
    the work and listed as ``buildings_dropped``.
    """
    has_buildings = len(plan.buildings) > 0
    out_rows = plan.buildings if has_buildings else plan.units
    n_out = len(out_rows)
    grid_of = out_rows["grid_id"]
    no_grid = grid_of.isna() | ~grid_of.isin(plan.grids["grid_id"])
    totals: dict[str, Any] = {}
    ok = n_out == n_in and not no_grid.any()
    comm = plan.grids.set_index("grid_id")["community_id"]
    for f in fields:
        exact = f != "workload"
        same = ((lambda a, b: a == b) if exact
                else (lambda a, b: abs(a - b) <= 1e-6 * max(1.0, abs(a))))
        given = counts[f].to_numpy(dtype=float)
        # the output rows show the counts used when they came from the rows
        # themselves (with a population layer, an input column of the same name
        # is kept as it was)
        from_rows = pop_report.get("method") in ("buildings", "units") and f in out_rows
        on_rows = out_rows[f].to_numpy(dtype=float) if from_rows else given
        per_row = bool(np.array_equal(on_rows, given)) if exact else bool(
            np.allclose(on_rows, given, rtol=1e-9, atol=1e-9))
        by_grid = pd.Series(given, index=out_rows.index).groupby(grid_of.to_numpy()).sum()
        by_comm = by_grid.groupby(comm.reindex(by_grid.index).to_numpy()).sum()
        grid_comm = plan.grids.groupby("community_id")[f].sum()
        per_comm = all(same(float(by_comm.get(c, 0.0)), float(v))
                       for c, v in grid_comm.items())
        tin = pop_report.get("totals_in", {}).get(f)
        tun = pop_report.get("totals_unplaced", {}).get(f, 0)
        t = {
            "input": float(tin) if tin is not None else float(given.sum()),
            "on_buildings": float(given.sum()),
            "in_grids": float(plan.grids[f].sum()),
            "unplaced": float(tun),
            "per_building": per_row,
            "per_community": per_comm,
        }
        t["conserved"] = bool(per_row and per_comm
                              and same(t["on_buildings"], t["in_grids"])
                              and same(t["input"], t["on_buildings"] + t["unplaced"]))
        ok &= t["conserved"]
        totals[f] = t
    rows = []
    if unplaced is not None and len(unplaced):
        keep = [c for c in ("reason", *fields) if c in unplaced.columns]
        for label, r in unplaced.iterrows():
            rows.append({"population_row": label.item() if isinstance(label, np.generic)
                         else label, **{c: r[c] for c in keep}})
    return {
        "buildings_in": int(n_in),
        "buildings_out": int(n_out),
        "buildings_dropped": [str(x) for x in dropped],
        "buildings_without_grid": [str(x) for x in out_rows.index[no_grid.to_numpy()]],
        "totals": totals,
        "population_unplaced": rows,
        "conserved": bool(ok),
    }


def _delineate_communities(blocks: Blocks, bgeoms: np.ndarray, graph_of, target: float,
                           tolerance: float, seed: int | None):
    """Group whole street blocks into contiguous communities of about ``target``."""

    whole = np.zeros(len(blocks.geometry), dtype=bool)
    umap0, bu0 = build_units(blocks, bgeoms, whole)
    _, g0 = graph_of(umap0, bu0)
    part = partition_graph(g0, np.zeros(g0.n, dtype=np.int64), target=target,
                           tolerance=tolerance, seed=seed)
    comm = np.full(len(blocks.geometry), -1, dtype=np.int64)
    comm[umap0["block"].to_numpy()] = part.labels
    lost = np.flatnonzero(comm < 0)
    if len(lost):  # slivers merged into a neighbour: that neighbour's community
        tree = shapely.STRtree(np.asarray(umap0.geometry.values))
        near = tree.nearest(np.asarray(blocks.geometry)[lost])
        comm[lost] = part.labels[near]
    # number communities west→east, north→south, like grids
    labels = np.unique(comm)
    polys = np.array([shapely.union_all(np.asarray(blocks.geometry)[comm == k],
                                        grid_size=1e-3) for k in labels], dtype=object)
    c = shapely.get_coordinates(shapely.point_on_surface(polys))
    order = np.lexsort((np.round(c[:, 0], 0), -np.round(c[:, 1], 0)))
    rank = np.empty(len(labels), dtype=np.int64)
    rank[order] = np.arange(len(labels))
    remap = dict(zip(labels.tolist(), rank.tolist(), strict=True))
    comm = np.array([remap[int(x)] for x in comm], dtype=np.int64)
    ids = [f"C{k + 1:03d}" for k in range(len(labels))]
    return (dataclasses.replace(blocks, community=comm), polys[order], ids)


def _carve(sit, lines, classes, names, area, notes, *, unit_kinds, unit_kind_column,
           unit_min_area, headcount_column, unit_min_headcount, road_grids, road_classes,
           road_names, road_depth, road_max_length, given_units, road_max_load=None,
           load_points=None, load=None):
    """The unit sites and road stretches carved out of the area (working CRS)."""
    empty = np.array([], dtype=object)
    if given_units and (sit is not None or road_grids):
        notes.append("road and unit grids need buildings and streets; with units given "
                     "directly none were made.")
        return empty, empty, empty
    u_geom, u_label = unit_sites(sit, area, kinds=unit_kinds, kind_column=unit_kind_column,
                                 min_area=unit_min_area, headcount_column=headcount_column,
                                 min_headcount=unit_min_headcount)
    r_geom, r_label = empty, empty
    if road_grids:
        if not len(lines):
            raise LayerValidationError("road_grids=True needs streets with a class column")
        exclude = shapely.union_all(u_geom) if len(u_geom) else None
        r_geom, r_label = road_stretches(
            lines, classes, names, area, road_classes=road_classes, road_names=road_names,
            depth=road_depth, max_length=road_max_length, exclude=exclude,
            load_points=load_points, load=load, max_load=road_max_load)
        if not len(r_geom):
            notes.append(f"no street of the classes {sorted(road_classes)} or names "
                         f"{sorted(road_names)}: no road grids.")
    if sit is not None and not len(u_geom):
        notes.append(f"no site of the kinds asked for is at least {unit_min_area:g} m²: "
                     "no unit grids.")
    geom = np.concatenate([u_geom, r_geom]) if len(u_geom) or len(r_geom) else empty
    kind = np.array(["unit"] * len(u_geom) + ["road"] * len(r_geom), dtype=object)
    label = np.concatenate([u_label, r_label]) if len(geom) else empty
    return geom, kind, label


def _with_workload(counts: pd.DataFrame, fields: tuple[str, ...],
                   weights: dict[str, float] | None) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Add each building's workload (the formula without its area term) to the counts.

    The area term belongs to a grid's extent, not to a building, so the balance
    uses the rest of the formula; the workload reported per grid has all of it.
    """
    from .workload import DEFAULT_WORKLOAD

    w = dict(DEFAULT_WORKLOAD if weights is None else weights)
    used = [c for c in w if c in counts.columns and c != "area_km2"]
    if not used:
        msg = (
            f"by='workload', but none of the workload formula's columns "
            f"{[c for c in w if c != 'area_km2']} is in the counts ({list(fields)}); "
            "give workload weights on the columns you have, e.g. "
            "workload={'pop_actual': 0.4}, --workload pop_actual=0.4"
        )
        raise LayerValidationError(msg)
    load = np.zeros(len(counts))
    for col in used:
        load += float(w[col]) * counts[col].to_numpy(dtype=float)
    counts = counts.copy()
    counts["workload"] = load
    return counts, (*fields, "workload")


def _check_grid_count(weight: np.ndarray, community: np.ndarray, target: Any,
                      tolerance: Any, community_ids: list[Any]) -> None:
    """Refuse, before the partition, a community that would have over 999 grids.

    A grid code numbers grids within their community in 3 digits (GB/T 30428.1).
    ``target`` and ``tolerance`` are one for all or arrays per community.
    """
    n = int(community.max(initial=0)) + 1
    t = np.broadcast_to(np.asarray(target, dtype=float), (n,)) if np.ndim(target) == 0 \
        else np.asarray(target, dtype=float)
    tol = np.broadcast_to(np.asarray(tolerance, dtype=float), (n,)) \
        if np.ndim(tolerance) == 0 else np.asarray(tolerance, dtype=float)
    limit = (t * (1 + tol))[community]
    w = np.bincount(community, weights=weight, minlength=n)
    # oversize units are grids of their own; the rest is shared out by the target
    big = np.bincount(community, weights=weight > limit, minlength=n)
    rest = np.bincount(community, weights=np.where(weight > limit, 0, weight), minlength=n)
    k = big + np.round(rest / t[:n])
    worst = int(np.argmax(k))
    if k[worst] > 999:
        name = community_ids[worst] if worst < len(community_ids) else worst
        msg = (
            f"community {name!r} would have about {int(k[worst]):,} grids "
            f"({w[worst]:,.0f} on the balance field at a target of {t[worst]:g}), but a "
            "grid code numbers the grids of a community in 3 digits (at most 999, "
            "GB/T 30428.1); "
            + ("give community boundaries (`boundaries`, --boundaries) so that each "
               "community holds fewer grids" if len(community_ids) <= 1 else
               "split that community into smaller ones")
            + ", or use a larger target"
        )
        raise InfeasiblePartitionError(msg)


def _community_targets(
    targets: Mapping[str, Any] | None, type_column: str, target: float, tolerance: float,
    *, bnd: gpd.GeoDataFrame | None, bm: gpd.GeoDataFrame | None, blocks: Blocks,
    weight: np.ndarray, n_communities: int, notes: list[str],
) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    """Target, tolerance and type of every community (差异性 targets)."""
    n = max(n_communities, 1)
    ctarget = np.full(n, float(target))
    ctol = np.full(n, float(tolerance))
    if targets is None:
        return ctarget, ctol, None
    table: dict[str, tuple[float, float]] = {}
    bad = []
    for key, v in targets.items():
        t, tl = (v, tolerance) if np.ndim(v) == 0 else (tuple(v) + (tolerance,))[:2]
        ok = all(isinstance(x, (int, float, np.number)) and not isinstance(x, bool)
                 for x in (t, tl))
        if not ok or not (t > 0 and 0 < tl < 1):
            bad.append(f"{key!r}: {v!r}")
            continue
        table[str(key)] = (float(t), float(tl))
    if bad:
        msg = (f"targets must map a community type to a target > 0 or to "
               f"(target, tolerance) with 0 < tolerance < 1; got {', '.join(bad)}")
        raise LayerValidationError(msg)
    if bnd is not None and type_column in bnd.columns:
        ctype = bnd[type_column].astype(str).tolist()[:n]
        source = "the boundaries"
    elif bm is not None and type_column in bm.columns:
        # the type that holds most of the community's balance weight
        comm = np.asarray(blocks.community)[blocks.building_block]
        df = pd.DataFrame({"c": comm, "t": bm[type_column].astype(str).to_numpy(),
                           "w": weight + 1e-9})
        best = df.groupby(["c", "t"])["w"].sum().reset_index() \
            .sort_values(["c", "w", "t"], ascending=[True, False, True]) \
            .drop_duplicates("c").set_index("c")["t"]
        ctype = [str(best.get(c, "")) for c in range(n)]
        source = "the buildings"
    else:
        cols = sorted(map(str, (bnd.columns if bnd is not None else bm.columns
                                if bm is not None else [])))
        msg = (f"targets per community type were given, but neither the boundaries "
               f"nor the buildings have a column {type_column!r} (type_column=); "
               f"columns: {cols}")
        raise LayerValidationError(msg)
    unknown = sorted({t for t in ctype if t not in table})
    for c, t in enumerate(ctype):
        if t in table:
            ctarget[c], ctol[c] = table[t]
    if unknown:
        notes.append(f"community type(s) {unknown} (from {source}) have no target in "
                     f"the table; they use target {target:g} ±{tolerance:.0%}.")
    return ctarget, ctol, ctype


def _communities(assignment: GridAssignment, g: UnitGraph, umap: gpd.GeoDataFrame):
    """Every community with two or more ordinary grids: ``(c, ordinary grids, its
    units, its own graph)``; on its own graph a community's grids never leave it."""
    ucomm = umap["community"].to_numpy()
    gcomm = np.asarray(assignment.community)
    gflag = np.array([bool(f) for f in assignment.flag], dtype=bool)
    for c in assignment.mean:
        ordinary = np.flatnonzero((gcomm == c) & ~gflag)
        if len(ordinary) > 1:
            cn = np.flatnonzero(ucomm == c)
            yield c, ordinary, cn, g.subgraph(cn)


def _wander_pass(assignment: GridAssignment, g: UnitGraph, umap: gpd.GeoDataFrame,
                 ctol: np.ndarray, rng: np.random.Generator, notes: list[str]) -> bool:
    """Walks of recombinations (:func:`~gridmap.partition.recombine.wander`) in
    every community with ordinary grids out of the band; labels change in place.
    Returns whether any changed."""
    from .partition.recombine import wander

    bad = set(_out_of_band(assignment, g, ctol))
    if not bad:
        return False
    weight = np.bincount(assignment.labels, weights=g.weight,
                         minlength=assignment.n_grids)
    changed = False
    for c, ordinary, cn, sub in _communities(assignment, g, umap):
        if not bad & set(ordinary.tolist()):
            continue
        # the mean the plan is judged by: that of the ordinary grids as they are
        mean = float(weight[ordinary].mean())
        before = assignment.labels[cn]
        lab = wander(sub, before, grids=ordinary, mean=mean, tolerance=float(ctol[c]),
                     rng=rng)
        if (lab != before).any():
            changed = True
            # the walk's sideways steps cut pairs of grids anew: straighten their
            # edges onto the streets again, without leaving the band
            lab = refine(sub, lab, grids=ordinary, mean=mean, tolerance=float(ctol[c]),
                         max_moves=0)
        assignment.labels[cn] = lab
    now = len(_out_of_band(assignment, g, ctol))
    if now < len(bad):
        notes.append(f"{len(bad) - now} grid(s) out of the band brought into it by walks "
                     "of recombinations (a neighbouring pair re-split at a time, the "
                     "shortfall or excess passed on to grids with room).")
    return changed


def _exact_pass(assignment: GridAssignment, g: UnitGraph, umap: gpd.GeoDataFrame,
                ctol: np.ndarray, notes: list[str], *, node_budget: int = 300) -> None:
    """Exact re-cuts (:func:`~gridmap.partition.exact.exact_repair`) of every
    community's ordinary grids out of the band; the labels change in place."""
    from .partition.exact import exact_repair

    # one budget of solver work for the whole pass (``node_budget``: programmes,
    # HiGHS's nodes and 10,000 search steps each count one); not seconds, for
    # the plan must not depend on the machine
    stats = {"nodes": 0}
    fixed = 0
    weight = np.bincount(assignment.labels, weights=g.weight,
                         minlength=assignment.n_grids)
    for c, ordinary, cn, sub in _communities(assignment, g, umap):
        # the mean the plan is judged by: that of the ordinary grids as they are
        mean = float(weight[ordinary].mean())
        lab, report = exact_repair(sub, assignment.labels[cn], grids=ordinary, mean=mean,
                                   tolerance=float(ctol[c]), node_budget=node_budget,
                                   stats=stats)
        assignment.labels[cn] = lab
        fixed += sum(r["verdict"] == "recut" for r in report)
        assignment.checks.update({int(r["grid"]): r for r in report})
    if fixed:
        notes.append(f"{fixed} region(s) of grids out of the band re-cut exactly "
                     "(every grid of each within the band).")


def _fill_from_neighbours(adj: Any, labels: np.ndarray, avoid: np.ndarray) -> None:
    """Every unit without a grid (``-1``) takes the grid of the neighbour it
    shares most edge with, in place; units reached only through other such units
    take theirs once those have one.  A grid in ``avoid`` (a flagged grid: one
    building heavier than a grid) is taken only where no other can be."""
    i, j, length = adj.i, adj.j, adj.length
    while (labels < 0).any():
        li, lj = labels[i], labels[j]
        # (unit without a grid, labelled neighbour's grid, shared length)
        a = np.concatenate([i[(li < 0) & (lj >= 0)], j[(lj < 0) & (li >= 0)]])
        to = np.concatenate([lj[(li < 0) & (lj >= 0)], li[(lj < 0) & (li >= 0)]])
        ln = np.concatenate([length[(li < 0) & (lj >= 0)], length[(lj < 0) & (li >= 0)]])
        if not len(a):
            labels[labels < 0] = 0  # touching nothing with a grid: none should be
            return
        bad = np.isin(to, avoid)
        if not bad.all():
            a, to, ln = a[~bad], to[~bad], ln[~bad]
        order = np.lexsort((to, -ln, a))
        first = order[np.r_[True, a[order][1:] != a[order][:-1]]]
        labels[a[first]] = to[first]


def _reconnect(g: UnitGraph, labels: np.ndarray, assignment: GridAssignment) -> np.ndarray:
    """Every grid in one piece again after its units were remade.

    Two blocks that touched whole can touch no longer once one of them is cut
    into cells or sectors (their shared edge now split where the other's is
    not), and a grid through them falls in two.  Each piece of a grid but its
    heaviest (then largest) joins the community grid of its community it shares
    most edges with, an ordinary one first, before the moves rebalance.
    """
    labels = labels.copy()
    same = labels[g.i] == labels[g.j]
    comp = g.components(np.arange(g.n), same)
    pairs = np.unique(np.column_stack([labels, comp]), axis=0)
    gids, n_pieces = np.unique(pairs[:, 0], return_counts=True)
    for gid in gids[n_pieces > 1].tolist():
        if assignment.kind[gid] != "community":
            continue
        # its pieces but the main one (heaviest, then largest)
        for part in find_islands(g, np.flatnonzero(labels == gid)):
            inset = np.zeros(g.n, dtype=bool)
            inset[part] = True
            e = inset[g.i] ^ inset[g.j]
            other = labels[np.where(inset[g.i[e]], g.j[e], g.i[e])]
            ok = [int(x) for x in other if x != gid and assignment.kind[x] == "community"
                  and assignment.community[x] == assignment.community[gid]]
            if not ok:
                continue
            counts = np.bincount(ok)
            to = min(set(ok), key=lambda x: (assignment.flag[x] != "", -counts[x], x))
            labels[part] = to
    return labels


def _deviations(assignment: GridAssignment, g: UnitGraph,
                tolerance: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ordinary grids, their deviation from their community's mean and their
    community's tolerance."""
    w = np.bincount(assignment.labels, weights=g.weight, minlength=assignment.n_grids)
    gids = np.array([gid for gid in range(assignment.n_grids) if not assignment.flag[gid]
                     and assignment.mean.get(assignment.community[gid])], dtype=np.int64)
    comm = [assignment.community[gid] for gid in gids.tolist()]
    mean = np.array([assignment.mean[c] for c in comm], dtype=float)
    tol = np.array([float(tolerance[c]) if np.ndim(tolerance) else float(tolerance)
                    for c in comm], dtype=float)
    return gids, np.abs(w[gids] / mean - 1) if len(gids) else np.zeros(0), tol


def _plan_key(assignment: GridAssignment, g: UnitGraph, tolerance: Any) -> tuple[int, float]:
    """How good a plan is: the ordinary grids out of the band, then the largest
    deviation of an ordinary grid from its community's mean (smaller is better)."""
    _, dev, tol = _deviations(assignment, g, tolerance)
    return int((dev > tol + 1e-9).sum()), float(dev.max(initial=0.0))


def _out_of_band(assignment: GridAssignment, g: UnitGraph, tolerance: Any) -> list[int]:
    gids, dev, tol = _deviations(assignment, g, tolerance)
    return gids[dev > tol + 1e-9].tolist()


def _laden(assignment: GridAssignment, building_unit: np.ndarray) -> list[int]:
    """Oversize grids holding buildings of more than one unit: the balance rule's
    exception is for one indivisible unit alone, so these count as out."""
    holds = np.zeros(len(assignment.labels), dtype=bool)
    holds[building_unit[building_unit >= 0]] = True
    n = np.bincount(assignment.labels[holds], minlength=assignment.n_grids)
    return [gid for gid in range(assignment.n_grids)
            if assignment.flag[gid] == "oversize" and n[gid] > 1]


def _shed(assignment: GridAssignment, g: UnitGraph, building_unit: np.ndarray) -> int:
    """Units an oversize grid holds beside its heaviest (a light building it was
    left with, nothing else touching it) go to the lightest ordinary grid of the
    community they touch, where the oversize grid stays in one piece without
    them; in place.  Returns how many moved."""
    from .partition.refine import connected_without

    lab = assignment.labels
    w = np.bincount(lab, weights=g.weight, minlength=assignment.n_grids)
    moved = 0
    for gid in _laden(assignment, building_unit):
        c = assignment.community[gid]
        members = np.flatnonzero(lab == gid)
        heaviest = int(members[np.argmax(g.weight[members])])
        changed = True
        while changed:
            changed = False
            for u in np.flatnonzero(lab == gid).tolist():
                if u == heaviest:
                    continue
                s, e = g.indptr[u], g.indptr[u + 1]
                nb = g.nbr[s:e][~g.barrier[g.eid[s:e]]]
                to = {int(x) for x in lab[nb]
                      if not assignment.flag[x] and assignment.community[x] == c}
                if not to or not connected_without(g, lab, u):
                    continue
                dst = min(to, key=lambda x: (w[x], x))
                lab[u] = dst
                w[dst] += g.weight[u]
                w[gid] -= g.weight[u]
                moved += 1
                changed = True
    return moved


def _assemble(**kw: Any) -> GridPlan:
    from ._assemble import assemble

    return assemble(**kw)
