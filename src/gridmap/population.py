"""Population onto buildings, from whichever form the user has.

Grids are balanced on households and actual population (实有人口), and the
building (楼栋) is the atomic unit, so every plan starts by putting a count on
every building. The data comes in four forms and :func:`population_onto_buildings`
takes each of them as it is:

* **per-building counts** already on the buildings (``population=None``);
* **points**: one per household or person (e.g. the police "two actuals" data),
  joined to the building that contains them, else the nearest one;
* **areas**: census units, population grid cells or community totals, spread over
  the residential buildings inside in proportion to floor area, with totals kept
  exactly;
* **nothing**: an estimate from residential floor area, dwelling size and persons
  per household.

Every result records where each count came from (``report["sources"]``) and
which buildings hold modelled rather than counted values (``counts["estimated"]``).

All layers must share one projected CRS (metres).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridmap._errors import (
    CRSMismatchError,
    InfeasiblePartitionError,
    LayerValidationError,
)
from gridmap.options import UNIT_MEASURES, Options

__all__ = [
    "BUILDING_TYPE_COLUMNS",
    "DEFAULT_FIELDS",
    "DEFAULT_NON_RESIDENTIAL",
    "HEIGHT_COLUMNS",
    "LEVELS_COLUMNS",
    "Counts",
    "PopulationResult",
    "floor_area",
    "is_residential",
    "levels",
    "place_population",
    "population_onto_buildings",
]

#: Fields used when ``fields=None``: households (户) and actual population (实有人口).
DEFAULT_FIELDS: tuple[str, ...] = ("households", "pop_actual")

#: Columns searched, in this order, for the number of storeys.
LEVELS_COLUMNS: tuple[str, ...] = (
    "levels",
    "building:levels",
    "building_levels",
    "floors",
    "storeys",
)

#: Columns searched, in this order, for the building height in metres.
HEIGHT_COLUMNS: tuple[str, ...] = ("height", "building:height")

#: Columns searched, in this order, for the building type (OSM ``building`` values).
BUILDING_TYPE_COLUMNS: tuple[str, ...] = (
    "building",
    "kind_detail",
    "type",
    "building_type",
)

#: OSM ``building=*`` values (and Tilezen ``kind_detail`` values) of buildings where
#: nobody lives. Anything else, including ``yes`` and missing values, counts as
#: residential. Dwellings in the OSM sense (``cabin``, ``dormitory``, ``houseboat``,
#: ``static_caravan``...) are deliberately not in the set.
DEFAULT_NON_RESIDENTIAL: frozenset[str] = frozenset(
    {
        # commerce and work
        "commercial", "retail", "office", "industrial", "warehouse", "factory",
        "manufacture", "bank", "hotel", "mall", "shop", "supermarket", "kiosk",
        "marketplace", "restaurant", "fuel", "data_center",
        # religion
        "church", "cathedral", "chapel", "mosque", "temple", "shrine",
        "wayside_shrine", "synagogue", "religious", "place_of_worship",
        # education, health, government and culture
        "school", "university", "college", "kindergarten", "hospital", "clinic",
        "civic", "government", "public", "townhall", "courthouse", "police",
        "fire_station", "post_office", "library", "museum", "theatre", "cinema",
        "arts_centre", "embassy", "prison",
        # vehicles and transport
        "garage", "garages", "carport", "parking", "hangar", "boathouse",
        "train_station", "bus_station", "transportation",
        # sport and leisure
        "stadium", "sports_hall", "sports_centre", "grandstand", "pavilion",
        "riding_hall", "attraction", "toilets",
        # farm
        "barn", "stable", "farm_auxiliary", "greenhouse", "cowshed", "sty",
        "slurry_tank", "silo",
        # structures and utilities
        "shed", "hut", "roof", "service", "transformer_tower", "tower",
        "communications_tower", "water_tower", "storage_tank", "gasometer",
        "digester", "power", "pumping_station", "bridge", "bunker", "ruins",
        "construction", "gatehouse",
    }
)  # fmt: skip

_POINT_TYPES = frozenset({"Point"})
_POLYGON_TYPES = frozenset({"Polygon", "MultiPolygon"})
_RESERVED = frozenset({"estimated", "geometry", "reason"})
#: How many row positions the error messages and the report list at most.
_MAX_LISTED = 20
_MAX_IN_MESSAGE = 5
_NUMBER = re.compile(r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*(?:m|metres|meters)\s*$")


@dataclass(frozen=True, eq=False)
class PopulationResult:
    """Counts per building and where they came from.

    Attributes
    ----------
    counts
        One row per building, with the index of ``buildings``: one float column
        per field holding whole numbers, and a bool column ``estimated`` that is
        True where a count was modelled rather than counted (see
        :func:`population_onto_buildings`).
    method
        The form the population came in: ``"buildings"``, ``"points"``,
        ``"areas"`` or ``"estimate"``.
    fields
        The count columns of ``counts``, in order.
    report
        JSON-serialisable provenance: totals in, out and unplaced per field, the
        source of each field, and what happened to the input rows.
    unplaced
        Rows of the population layer that no building received, with their
        original index and a ``reason`` column. Empty for ``"buildings"`` and
        ``"estimate"``.
    """

    counts: pd.DataFrame
    method: str
    fields: tuple[str, ...]
    report: dict[str, Any] = field(repr=False)
    unplaced: pd.DataFrame = field(repr=False)

    def __repr__(self) -> str:
        totals = ", ".join(f"{f}={self.report['totals_out'][f]:,}" for f in self.fields)
        return (
            f"PopulationResult(method={self.method!r}, buildings={len(self.counts)}, "
            f"{totals}, estimated={int(self.counts['estimated'].sum())}, "
            f"unplaced={len(self.unplaced)})"
        )


# ----------------------------------------------------------------------------
# levels, floor area, residential
# ----------------------------------------------------------------------------


def levels(
    buildings: pd.DataFrame,
    *,
    levels_column: str | None = None,
    height_column: str | None = None,
    storey_height: float = 3.0,
    default_levels: float = 1.0,
) -> tuple[pd.Series, pd.Series]:
    """Number of storeys of each building, and where it came from.

    For each building the first usable source wins:

    1. the levels column, if it holds a positive number (strings such as
       ``"5"`` are parsed; anything else counts as missing);
    2. the height column divided by `storey_height`, rounded half up and at
       least 1 (``"12 m"`` is read as 12);
    3. `default_levels`.

    Parameters
    ----------
    buildings
        The buildings; only the columns are read.
    levels_column
        Column with the number of storeys. None picks the first of
        :data:`LEVELS_COLUMNS` that `buildings` has.
    height_column
        Column with the height in metres. None picks the first of
        :data:`HEIGHT_COLUMNS` that `buildings` has.
    storey_height
        Metres per storey, used with the height column.
    default_levels
        Storeys of a building with neither levels nor height.

    Returns
    -------
    levels : pandas.Series
        Float storeys, named ``levels``, with the index of `buildings`.
    source : pandas.Series
        ``"levels"``, ``"height"`` or ``"default"`` per building, named
        ``levels_source``.

    Raises
    ------
    LayerValidationError
        If a named column is missing or `storey_height` or `default_levels`
        is not positive.

    Examples
    --------
    >>> import pandas as pd
    >>> from gridmap.population import levels
    >>> buildings = pd.DataFrame(
    ...     {"building:levels": ["5", None, "tall"], "height": [None, 13.0, None]}
    ... )
    >>> storeys, source = levels(buildings)
    >>> storeys.tolist(), source.tolist()
    ([5.0, 4.0, 1.0], ['levels', 'height', 'default'])
    """
    problems = []
    if not _is_positive(storey_height):
        problems.append(
            f"levels: storey_height must be a positive number of metres, "
            f"got {storey_height!r}."
        )
    if not _is_positive(default_levels):
        problems.append(
            f"levels: default_levels must be a positive number, got {default_levels!r}."
        )
    lcol = _pick_column(
        buildings, levels_column, LEVELS_COLUMNS, "levels_column", problems
    )
    hcol = _pick_column(
        buildings, height_column, HEIGHT_COLUMNS, "height_column", problems
    )
    if problems:
        raise LayerValidationError(problems)

    n = len(buildings)
    from_levels = np.full(n, np.nan)
    if lcol is not None:
        from_levels = _parse_numbers(buildings[lcol], allow_unit=False)
        from_levels[~(from_levels > 0)] = np.nan
    from_height = np.full(n, np.nan)
    if hcol is not None:
        height = _parse_numbers(buildings[hcol], allow_unit=True)
        height[~(height > 0)] = np.nan
        from_height = np.maximum(np.floor(height / storey_height + 0.5), 1.0)

    has_levels = ~np.isnan(from_levels)
    has_height = ~np.isnan(from_height)
    values = np.select(
        [has_levels, has_height], [from_levels, from_height], float(default_levels)
    )
    source = np.select([has_levels, has_height], ["levels", "height"], "default")
    return (
        pd.Series(values, index=buildings.index, name="levels", dtype="float64"),
        pd.Series(source, index=buildings.index, name="levels_source", dtype=object),
    )


def floor_area(
    buildings: gpd.GeoDataFrame,
    *,
    levels_column: str | None = None,
    height_column: str | None = None,
    storey_height: float = 3.0,
    default_levels: float = 1.0,
) -> pd.Series:
    """Gross floor area of each building: footprint area times storeys.

    Storeys come from :func:`levels` (levels column, else height, else
    `default_levels`).

    Parameters
    ----------
    buildings
        Building footprints in a projected CRS (metres).
    levels_column, height_column, storey_height, default_levels
        Passed to :func:`levels`.

    Returns
    -------
    pandas.Series
        Floor area in square metres, named ``floor_area``, with the index of
        `buildings`.

    Raises
    ------
    LayerValidationError
        If `buildings` is not a GeoDataFrame, has a geographic CRS, or a named
        column is missing.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import box
    >>> from gridmap.population import floor_area
    >>> buildings = gpd.GeoDataFrame(
    ...     {"building_id": ["a", "b"], "building:levels": ["5", None]},
    ...     geometry=[box(0, 0, 10, 20), box(30, 0, 40, 10)],
    ...     crs="EPSG:32651",
    ... )
    >>> floor_area(buildings).tolist()
    [1000.0, 100.0]
    """
    problems: list[str] = []
    _check_geoframe(buildings, "buildings", problems)
    if problems:
        raise LayerValidationError(problems)
    storeys, _ = levels(
        buildings,
        levels_column=levels_column,
        height_column=height_column,
        storey_height=storey_height,
        default_levels=default_levels,
    )
    area = buildings.geometry.area.to_numpy(dtype="float64")
    return pd.Series(
        area * storeys.to_numpy(), index=buildings.index, name="floor_area"
    )


def is_residential(
    buildings: pd.DataFrame,
    *,
    column: str | None = None,
    non_residential: Iterable[str] = DEFAULT_NON_RESIDENTIAL,
) -> pd.Series:
    """Whether people live in each building, judged from its type.

    A building is residential unless its type, lower-cased and stripped, is in
    `non_residential`. Unknown types (``"yes"``, missing) count as residential,
    so that no household is lost for want of a tag.

    Parameters
    ----------
    buildings
        The buildings; only the type column is read.
    column
        Column with the building type. None picks the first of
        :data:`BUILDING_TYPE_COLUMNS` that `buildings` has; if it has none,
        every building is residential.
    non_residential
        Type values of buildings where nobody lives, compared lower-case.

    Returns
    -------
    pandas.Series
        Bool, named ``residential``, with the index of `buildings`.

    Raises
    ------
    LayerValidationError
        If `column` is given and `buildings` has no such column.

    Examples
    --------
    >>> import pandas as pd
    >>> from gridmap.population import is_residential
    >>> buildings = pd.DataFrame({"building": ["apartments", " School", "yes", None]})
    >>> is_residential(buildings).tolist()
    [True, False, True, True]
    """
    problems: list[str] = []
    col = _pick_column(buildings, column, BUILDING_TYPE_COLUMNS, "column", problems)
    if problems:
        raise LayerValidationError(problems)
    result = pd.Series(True, index=buildings.index, name="residential", dtype=bool)
    if col is None:
        return result
    excluded = {str(v).strip().lower() for v in non_residential}
    values = buildings[col]
    known = values.notna().to_numpy()
    kinds = values[known].astype(str).str.strip().str.lower()
    out = result.to_numpy(copy=True)
    out[known] = ~kinds.isin(excluded).to_numpy()
    return pd.Series(out, index=buildings.index, name="residential", dtype=bool)


# ----------------------------------------------------------------------------
# population onto buildings
# ----------------------------------------------------------------------------


def population_onto_buildings(
    buildings: gpd.GeoDataFrame,
    population: gpd.GeoDataFrame | gpd.GeoSeries | None = None,
    *,
    fields: str | Sequence[str] | None = None,
    max_distance: float | None = 50.0,
    point_weight: str | float | None = None,
    residential: pd.Series | Sequence[bool] | np.ndarray | None = None,
    dwelling_size: float = 90.0,
    persons_per_household: float = 2.62,
    levels_column: str | None = None,
    height_column: str | None = None,
    storey_height: float = 3.0,
    default_levels: float = 1.0,
) -> PopulationResult:
    """Put population counts onto buildings, from whichever form the user has.

    The form is read from the arguments:

    ``"buildings"``
        `population` is None and `buildings` has the count columns `fields`
        (with ``fields=None``, whichever of ``households`` and ``pop_actual``
        it has). They are checked (no missing, negative, non-numeric or
        fractional values) and taken as they are.
    ``"points"``
        `population` holds Points (households or persons). Each point goes to
        the building that covers it (the smallest if several, then the lowest
        position), else to the nearest building within `max_distance` metres
        (ties to the lowest position), else to ``unplaced``. A point adds the
        values of its `fields` columns; with ``fields=None`` a point without a
        ``households`` column is one household (or `point_weight`) and a
        missing ``pop_actual`` is derived as households times
        `persons_per_household`, rounded by largest remainder, and reported as
        derived. With explicit `fields` that the points do not carry, each point
        adds 1 (or `point_weight`) to every field.
    ``"areas"``
        `population` holds Polygons with count columns (census units,
        population grid cells, community totals). Each area's counts are spread
        over the residential buildings whose representative point it covers
        (over all buildings inside if none is residential), in proportion to
        floor area, and rounded by largest remainder so that every area's total
        is kept exactly. A building covered by overlapping areas receives from
        each. Areas with no building inside go to ``unplaced`` (only if they
        hold a positive count).
    ``"estimate"``
        `population` is None and `buildings` has none of the fields: households
        are the residential floor area divided by `dwelling_size`, and
        ``pop_actual`` households times `persons_per_household`, both rounded
        by largest remainder so that the district totals are the rounded
        (half up) totals. Non-residential buildings get 0.

    Parameters
    ----------
    buildings
        Building footprints (Polygon or MultiPolygon) in a projected CRS.
    population
        None, a point layer or a polygon layer, in the CRS of `buildings`.
    fields
        Names of the count fields, e.g. ``("households", "pop_actual",
        "pop_floating", "elderly")``. None means ``households`` and
        ``pop_actual`` (those present, for per-building counts and areas).
    max_distance
        Metres within which a point outside every building is joined to the
        nearest one. None joins every point; 0 joins only points inside.
    point_weight
        What a point adds to a field it has no column for: None (1), a whole
        number, or the name of a column of whole numbers on the points.
    residential
        Bool per building (same length and order as `buildings`), used for
        areas and estimates. None means :func:`is_residential`.
    dwelling_size
        Square metres of gross floor area per household, for estimates.
    persons_per_household
        Persons per household, for estimates and derived ``pop_actual``. The
        default 2.62 is China's 2020 census average.
    levels_column, height_column, storey_height, default_levels
        Passed to :func:`floor_area`, which weighs buildings for areas and
        estimates.

    Returns
    -------
    PopulationResult
        ``counts`` (index of `buildings`; whole-number float fields plus
        ``estimated``), ``method``, ``fields``, ``report`` and ``unplaced``.
        ``estimated`` is True for every building in an estimate, for every
        building when ``pop_actual`` was derived from point households, and for
        buildings that received a floor-area share of an area split among
        several buildings.

    Raises
    ------
    LayerValidationError
        If a layer is empty or of the wrong type, geometries are missing or
        mixed, a field is missing, or counts are missing, negative,
        non-numeric or fractional. All problems are reported at once.
    CRSMismatchError
        If the layers have different CRSs.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import Point, box
    >>> from gridmap.population import population_onto_buildings
    >>> buildings = gpd.GeoDataFrame(
    ...     {"building_id": ["a", "b"]},
    ...     geometry=[box(0, 0, 10, 10), box(20, 0, 30, 10)],
    ...     crs="EPSG:32651",
    ... )
    >>> households = gpd.GeoDataFrame(
    ...     geometry=[Point(5, 5), Point(6, 6), Point(35, 5), Point(500, 500)],
    ...     crs="EPSG:32651",
    ... )
    >>> result = population_onto_buildings(buildings, households)
    >>> result.counts["households"].tolist()
    [2.0, 1.0]
    >>> result.report["points"]["unplaced_positions"]
    [3]
    """
    field_list, residential_mask = _check_arguments(
        buildings, fields, residential, max_distance=max_distance,
        dwelling_size=dwelling_size, persons_per_household=persons_per_household)
    weight_kwargs = {"levels_column": levels_column, "height_column": height_column,
                     "storey_height": storey_height, "default_levels": default_levels}
    if population is None:
        return _from_buildings_or_estimate(
            buildings, field_list, residential_mask, dwelling_size=dwelling_size,
            persons_per_household=persons_per_household, weight_kwargs=weight_kwargs)
    population, kind = _check_population_layer(population, buildings)
    if kind == "points":
        return _from_points(buildings, population, field_list,
                            max_distance=max_distance, point_weight=point_weight,
                            persons_per_household=persons_per_household)
    return _from_areas(buildings, population, field_list, residential_mask,
                       weight_kwargs=weight_kwargs)


# the steps of population_onto_buildings


def _check_arguments(
    buildings: gpd.GeoDataFrame,
    fields: str | Sequence[str] | None,
    residential: pd.Series | Sequence[bool] | np.ndarray | None,
    *,
    max_distance: float | None,
    dwelling_size: float,
    persons_per_household: float,
) -> tuple[tuple[str, ...] | None, np.ndarray]:
    """Check the buildings and the arguments of :func:`population_onto_buildings`.

    In: the buildings (a GeoDataFrame of polygons), the count ``fields``, the
    ``residential`` flags and the numbers.  Out: the field names (None for the
    default) and the residential flag of every building.  Raises
    :class:`~gridmap.LayerValidationError` with every problem found.
    """
    problems: list[str] = []
    _check_geoframe(buildings, "buildings", problems)
    if problems:
        raise LayerValidationError(problems)
    _check_geometries(
        buildings, "buildings", _POLYGON_TYPES, "Polygon or MultiPolygon", problems
    )
    if max_distance is not None and not (
        _is_number(max_distance) and max_distance >= 0
    ):
        problems.append(
            f"population_onto_buildings: max_distance must be a number of metres "
            f">= 0 or None, got {max_distance!r}."
        )
    for name, value in (
        ("dwelling_size", dwelling_size),
        ("persons_per_household", persons_per_household),
    ):
        if not _is_positive(value):
            problems.append(
                f"population_onto_buildings: {name} must be a positive number, "
                f"got {value!r}."
            )
    field_list = _normalise_fields(fields, problems)
    residential_mask = _residential_mask(buildings, residential, problems)
    if problems:
        raise LayerValidationError(problems)
    return field_list, residential_mask


def _from_buildings_or_estimate(
    buildings: gpd.GeoDataFrame,
    field_list: tuple[str, ...] | None,
    residential: np.ndarray,
    *,
    dwelling_size: float,
    persons_per_household: float,
    weight_kwargs: dict[str, Any],
) -> PopulationResult:
    """Without a population layer: the counts on the buildings, else an estimate.

    In: the buildings and the fields asked for (None: whichever of
    :data:`DEFAULT_FIELDS` they have).  Out: the counts taken as they are when
    the buildings have every field (or, by default, any); an estimate from floor
    area when they have none and the fields are estimable.  Raises
    :class:`~gridmap.LayerValidationError` when they have some fields only, or
    none and a field that cannot be estimated is asked for.
    """
    present = [f for f in (field_list or DEFAULT_FIELDS) if f in buildings.columns]
    if field_list is None and present:
        return _from_buildings(buildings, tuple(present))
    if field_list is not None and len(present) == len(field_list):
        return _from_buildings(buildings, field_list)
    if present:
        missing = [f for f in field_list or () if f not in present]
        raise LayerValidationError(
            f"buildings has the count columns {present} but not {missing}, "
            f"and no population layer was given. Its columns are "
            f"{_columns(buildings)}. Add the missing columns, drop them from "
            f"`fields`, or pass a population layer."
        )
    wanted = field_list or DEFAULT_FIELDS
    not_estimable = [f for f in wanted if f not in DEFAULT_FIELDS]
    if not_estimable:
        raise LayerValidationError(
            f"buildings has none of the fields {list(wanted)} and no population "
            f"layer was given; only {list(DEFAULT_FIELDS)} can be estimated from "
            f"floor area, not {not_estimable}. Its columns are "
            f"{_columns(buildings)}. Pass a population layer (points or areas) "
            f"or add the columns to buildings."
        )
    return _estimate(
        buildings,
        tuple(wanted),
        residential,
        dwelling_size=dwelling_size,
        persons_per_household=persons_per_household,
        weight_kwargs=weight_kwargs,
    )


def _check_population_layer(
    population: Any, buildings: gpd.GeoDataFrame
) -> tuple[gpd.GeoDataFrame, str | None]:
    """Check the population layer against the buildings.

    In: the layer (a GeoDataFrame or GeoSeries of points or polygons) and the
    buildings.  Out: the layer as a GeoDataFrame and its form, ``"points"`` or
    ``"areas"``.  Raises :class:`~gridmap.LayerValidationError` when it is not
    a layer, is empty or has missing, wrong or mixed geometries, and
    :class:`~gridmap.CRSMismatchError` when its CRS is not the buildings'.
    """
    if isinstance(population, gpd.GeoSeries):
        population = gpd.GeoDataFrame(geometry=population)
    if not isinstance(population, gpd.GeoDataFrame):
        raise LayerValidationError(
            f"population must be a GeoDataFrame of points or polygons, or None; got "
            f"{type(population).__name__}. For a table of counts per building, merge "
            f"it onto buildings by building_id and pass population=None."
        )
    if len(population) == 0:
        raise LayerValidationError(
            "population is empty (0 rows). Pass a layer with at least one point or "
            "area, or population=None to use counts on buildings or an estimate."
        )
    if population.crs != buildings.crs:
        raise CRSMismatchError(
            f"population has CRS {_crs_name(population.crs)} but buildings has "
            f"{_crs_name(buildings.crs)}. Reproject one of them, e.g. "
            f"`population.to_crs(buildings.crs)`."
        )
    problems: list[str] = []
    kind = _check_geometries(
        population,
        "population",
        _POINT_TYPES | _POLYGON_TYPES,
        "Point (households, persons) or Polygon/MultiPolygon (areas with counts)",
        problems,
    )
    if problems:
        raise LayerValidationError(problems)
    return population, kind


# ----------------------------------------------------------------------------
# the four forms
# ----------------------------------------------------------------------------


def _from_buildings(
    buildings: gpd.GeoDataFrame, fields: tuple[str, ...]
) -> PopulationResult:
    values, problems = _counts(buildings, fields, "buildings")
    if problems:
        raise LayerValidationError(problems)
    totals = {f: _int(values[:, j].sum()) for j, f in enumerate(fields)}
    report = _base_report("buildings", fields, len(buildings))
    report.update(
        totals_in=totals,
        totals_out=dict(totals),
        totals_unplaced=dict.fromkeys(fields, 0),
        sources={f: f"column {f!r} of buildings" for f in fields},
        estimated_buildings=0,
    )
    return _result(
        buildings, values, fields, np.zeros(len(buildings), bool), "buildings",
        report, _empty_unplaced(),
    )  # fmt: skip


def _estimate(
    buildings: gpd.GeoDataFrame,
    fields: tuple[str, ...],
    residential: np.ndarray,
    *,
    dwelling_size: float,
    persons_per_household: float,
    weight_kwargs: dict[str, Any],
) -> PopulationResult:
    area, weight_report = _floor_area_report(buildings, weight_kwargs)
    residential_area = np.where(residential, area, 0.0)
    households = _largest_remainder_total(residential_area / dwelling_size)
    people = _largest_remainder_total(households * persons_per_household)
    by_name = {"households": households, "pop_actual": people}
    values = np.column_stack([by_name[f] for f in fields]).astype("float64")
    totals = {f: _int(by_name[f].sum()) for f in fields}
    report = _base_report("estimate", fields, len(buildings))
    report.update(
        totals_in=dict(totals),
        totals_out=totals,
        totals_unplaced=dict.fromkeys(fields, 0),
        sources={
            "households": (
                f"estimated: residential floor area / dwelling_size "
                f"({dwelling_size:g} m²), largest remainder"
            ),
            "pop_actual": (
                f"estimated: households x persons_per_household "
                f"({persons_per_household:g}), largest remainder"
            ),
        },
        estimated_buildings=len(buildings),
        estimate={
            "dwelling_size_m2": float(dwelling_size),
            "persons_per_household": float(persons_per_household),
            "residential_buildings": int(residential.sum()),
            "non_residential_buildings": int((~residential).sum()),
            "residential_floor_area_m2": round(float(residential_area.sum()), 1),
            "type_column": _pick_column(buildings, None, BUILDING_TYPE_COLUMNS),
        },
        floor_area=weight_report,
    )
    report["sources"] = {f: report["sources"][f] for f in fields}
    return _result(
        buildings, values, fields, np.ones(len(buildings), bool), "estimate",
        report, _empty_unplaced(),
    )  # fmt: skip


def _from_points(
    buildings: gpd.GeoDataFrame,
    points: gpd.GeoDataFrame,
    fields: tuple[str, ...] | None,
    *,
    max_distance: float | None,
    point_weight: str | float | None,
    persons_per_household: float,
) -> PopulationResult:
    n_points = len(points)
    problems: list[str] = []
    weight = _point_weight(points, point_weight, problems)

    derived: tuple[str, ...] = ()
    if fields is None:
        out_fields = DEFAULT_FIELDS
        from_columns = [f for f in DEFAULT_FIELDS if f in points.columns]
        if "pop_actual" not in points.columns:
            derived = ("pop_actual",)
    else:
        out_fields = fields
        from_columns = [f for f in fields if f in points.columns]
        if from_columns and len(from_columns) < len(fields):
            missing = [f for f in fields if f not in points.columns]
            problems.append(
                f"population (points) has the count columns {from_columns} but not "
                f"{missing}. Its columns are {_columns(points)}. Add the missing "
                f"columns, drop them from `fields`, or pass fields=None (a point is "
                f"then one household and pop_actual is derived)."
            )
    values_in, count_problems = _counts(points, tuple(from_columns), "population")
    problems += count_problems
    if problems:
        raise LayerValidationError(problems)

    sources: dict[str, str] = {}
    per_point = np.empty((n_points, len(out_fields)))
    for j, f in enumerate(out_fields):
        if f in from_columns:
            per_point[:, j] = values_in[:, from_columns.index(f)]
            sources[f] = f"column {f!r} of population points"
        elif f in derived:
            per_point[:, j] = 0.0  # filled after the join
            sources[f] = (
                f"derived: households x persons_per_household "
                f"({persons_per_household:g}), largest remainder"
            )
        else:
            per_point[:, j] = weight
            sources[f] = (
                f"column {point_weight!r} of population points"
                if isinstance(point_weight, str)
                else f"{_number(float(weight))} per point"
            )

    target, how, distance = _join_points(buildings, points, max_distance)
    placed = target >= 0
    n = len(buildings)
    values = np.column_stack(
        [
            np.bincount(target[placed], weights=per_point[placed, j], minlength=n)
            for j in range(len(out_fields))
        ]
    ).reshape(n, len(out_fields))
    totals_in = {f: _int(per_point[:, j].sum()) for j, f in enumerate(out_fields)}
    totals_out = {f: _int(values[:, j].sum()) for j, f in enumerate(out_fields)}
    if derived:
        h = out_fields.index("households")
        p = out_fields.index("pop_actual")
        values[:, p] = _largest_remainder_total(values[:, h] * persons_per_household)
        totals_in["pop_actual"] = _round_half_up(
            totals_in["households"] * persons_per_household
        )
        totals_out["pop_actual"] = _int(values[:, p].sum())
    estimated = np.full(n, bool(derived))

    unplaced_pos = np.flatnonzero(~placed)
    nearest_pos = np.flatnonzero(how == 1)
    reason = (
        "outside every building and none within max_distance "
        f"({_number(max_distance)} m)"
        if max_distance
        else "outside every building"
    )
    unplaced = points.iloc[unplaced_pos].assign(reason=reason)
    report = _base_report("points", out_fields, n)
    report.update(
        totals_in=totals_in,
        totals_out=totals_out,
        totals_unplaced={f: totals_in[f] - totals_out[f] for f in out_fields},
        sources=sources,
        estimated_buildings=int(estimated.sum()),
        points={
            "n": n_points,
            "inside": int((how == 0).sum()),
            "nearest": int(nearest_pos.size),
            "unplaced": int(unplaced_pos.size),
            "max_distance_m": None if max_distance is None else float(max_distance),
            "largest_nearest_distance_m": (
                round(float(distance[nearest_pos].max()), 2)
                if nearest_pos.size
                else None
            ),
            "nearest_positions": _listed(nearest_pos),
            "unplaced_positions": _listed(unplaced_pos),
            "buildings_receiving": int(np.unique(target[placed]).size),
        },
    )
    if derived:
        report["points"]["persons_per_household"] = float(persons_per_household)
    return _result(buildings, values, out_fields, estimated, "points", report, unplaced)


def _from_areas(
    buildings: gpd.GeoDataFrame,
    areas: gpd.GeoDataFrame,
    fields: tuple[str, ...] | None,
    residential: np.ndarray,
    *,
    weight_kwargs: dict[str, Any],
) -> PopulationResult:
    if fields is None:
        fields = tuple(f for f in DEFAULT_FIELDS if f in areas.columns)
        if not fields:
            raise LayerValidationError(
                f"population (areas) has none of the default count columns "
                f"{list(DEFAULT_FIELDS)}; its columns are {_columns(areas)}. Name "
                f"the count columns with `fields=[...]`."
            )
    values_in, problems = _counts(areas, fields, "population")
    if problems:
        raise LayerValidationError(problems)
    totals = values_in.astype("int64")
    n, n_areas = len(buildings), len(areas)

    weight, weight_report = _floor_area_report(buildings, weight_kwargs)
    points = gpd.GeoSeries(
        buildings.geometry.representative_point().to_numpy(), crs=buildings.crs
    )
    area_pos, building_pos = points.sindex.query(
        areas.geometry.to_numpy(), predicate="intersects"
    )
    # Receivers: the residential buildings of an area, else all of its buildings.
    has_residential = (
        np.bincount(
            area_pos, weights=residential[building_pos].astype(float), minlength=n_areas
        )
        > 0
    )
    keep = residential[building_pos] | ~has_residential[area_pos]
    area_pos, building_pos = area_pos[keep], building_pos[keep]
    receivers = np.bincount(area_pos, minlength=n_areas)
    w = weight[building_pos]
    w_total = np.bincount(area_pos, weights=w, minlength=n_areas)
    flat = w_total[area_pos] <= 0  # degenerate footprints: split equally
    w = np.where(flat, 1.0, w)
    w_total = np.bincount(area_pos, weights=w, minlength=n_areas)

    values = np.zeros((n, len(fields)))
    for j in range(len(fields)):
        quota = totals[area_pos, j] * (w / w_total[area_pos])
        share = _largest_remainder(quota, area_pos, totals[:, j], building_pos)
        values[:, j] = np.bincount(building_pos, weights=share, minlength=n)

    split = receivers > 1
    estimated = np.zeros(n, bool)
    estimated[building_pos[split[area_pos]]] = True

    positive = totals.sum(axis=1) > 0
    unplaced_pos = np.flatnonzero((receivers == 0) & positive)
    empty_pos = np.flatnonzero((receivers == 0) & ~positive)
    to_all = np.flatnonzero((receivers > 0) & ~has_residential)
    unplaced = areas.iloc[unplaced_pos].assign(
        reason="no building's representative point inside the area"
    )
    totals_in = {f: _int(totals[:, j].sum()) for j, f in enumerate(fields)}
    totals_out = {f: _int(values[:, j].sum()) for j, f in enumerate(fields)}
    in_areas = np.bincount(building_pos, minlength=n)
    report = _base_report("areas", fields, n)
    report.update(
        totals_in=totals_in,
        totals_out=totals_out,
        totals_unplaced={
            f: _int(totals[unplaced_pos, j].sum()) for j, f in enumerate(fields)
        },
        sources={
            f: f"column {f!r} of population areas, split by floor area, "
            "largest remainder"
            for f in fields
        },
        estimated_buildings=int(estimated.sum()),
        areas={
            "n": n_areas,
            "placed": int((receivers > 0).sum()),
            "to_all_buildings": int(to_all.size),
            "to_all_buildings_positions": _listed(to_all),
            "unplaced": int(unplaced_pos.size),
            "unplaced_positions": _listed(unplaced_pos),
            "empty_without_buildings": int(empty_pos.size),
            "buildings_receiving": int((in_areas > 0).sum()),
            "buildings_in_several_areas": int((in_areas > 1).sum()),
        },
        floor_area=weight_report,
    )
    return _result(buildings, values, fields, estimated, "areas", report, unplaced)


# ----------------------------------------------------------------------------
# joins and rounding
# ----------------------------------------------------------------------------


def _join_points(
    buildings: gpd.GeoDataFrame,
    points: gpd.GeoDataFrame,
    max_distance: float | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Building position per point (-1 if none), how (0 inside, 1 nearest, -1)."""
    n_points = len(points)
    target = np.full(n_points, -1, dtype="int64")
    how = np.full(n_points, -1, dtype="int8")
    distance = np.full(n_points, np.nan)

    geoms = buildings.geometry.to_numpy()
    point_geoms = points.geometry.to_numpy()
    tree = buildings.sindex
    pt, bld = tree.query(point_geoms, predicate="intersects")
    if pt.size:
        size = buildings.geometry.area.to_numpy()[bld]
        order = np.lexsort((bld, size, pt))  # per point: smallest, then lowest
        pt, bld = pt[order], bld[order]
        first = np.unique(pt, return_index=True)[1]
        target[pt[first]] = bld[first]
        how[pt[first]] = 0
        distance[pt[first]] = 0.0

    rest = np.flatnonzero(target < 0)
    if rest.size and (max_distance is None or max_distance > 0):
        left = gpd.GeoDataFrame(
            {"_point": rest}, geometry=point_geoms[rest], crs=buildings.crs
        )
        right = gpd.GeoDataFrame(
            {"_building": np.arange(len(geoms))}, geometry=geoms, crs=buildings.crs
        )
        joined = gpd.sjoin_nearest(
            left,
            right,
            how="inner",
            max_distance=max_distance,
            distance_col="_distance",
        )
        nearest = (
            pd.DataFrame(joined[["_point", "_building", "_distance"]])
            .sort_values(["_point", "_building"], kind="stable")
            .drop_duplicates("_point")
        )
        p = nearest["_point"].to_numpy()
        target[p] = nearest["_building"].to_numpy()
        how[p] = 1
        distance[p] = nearest["_distance"].to_numpy()
    return target, how, distance


def _largest_remainder(
    quota: np.ndarray, group: np.ndarray, totals: np.ndarray, tiebreak: np.ndarray
) -> np.ndarray:
    """Round `quota` to integers whose sum per `group` is exactly `totals[group]`.

    Every item gets the floor of its quota; the units still missing in a group go
    one each to its items with the largest remainders, ties to the lowest
    `tiebreak`.
    """
    base = np.floor(quota)
    remainder = quota - base
    n_groups = len(totals)
    deficit = np.rint(totals - np.bincount(group, weights=base, minlength=n_groups))
    order = np.lexsort((tiebreak, -remainder, group))
    sorted_group = group[order]
    rank = np.arange(order.size) - np.searchsorted(sorted_group, sorted_group)
    result: np.ndarray = base.copy()
    result[order] += rank < deficit[sorted_group]
    return result


def _largest_remainder_total(quota: np.ndarray) -> np.ndarray:
    """Round `quota` to integers summing to its total rounded half up."""
    total = _round_half_up(float(quota.sum()))
    group = np.zeros(quota.size, dtype="int64")
    return _largest_remainder(
        quota, group, np.array([total], dtype="float64"), np.arange(quota.size)
    )


def _round_half_up(x: float) -> int:
    return math.floor(x + 0.5)


# ----------------------------------------------------------------------------
# validation and small helpers
# ----------------------------------------------------------------------------


def _check_geoframe(frame: Any, name: str, problems: list[str]) -> None:
    if not isinstance(frame, gpd.GeoDataFrame):
        problems.append(
            f"{name} must be a GeoDataFrame, got {type(frame).__name__}. Read it "
            f"with `geopandas.read_file(...)` or build one with "
            f"`geopandas.GeoDataFrame(df, geometry=...)`."
        )
        return
    if frame.crs is not None and frame.crs.is_geographic:
        problems.append(
            f"{name} has geographic CRS {_crs_name(frame.crs)}; floor areas and "
            f"distances need a projected CRS in metres. Use "
            f"`{name}.to_crs({name}.estimate_utm_crs())` or a CGCS2000 "
            f"Gauss-Krüger zone."
        )


def _check_geometries(
    frame: gpd.GeoDataFrame,
    name: str,
    allowed: frozenset[str],
    expected: str,
    problems: list[str],
) -> str | None:
    """Check geometry types; return ``"points"`` or ``"areas"`` for population."""
    if len(frame) == 0:
        problems.append(f"{name} is empty (0 rows).")
        return None
    geom = frame.geometry
    missing = (geom.isna() | geom.is_empty).to_numpy()
    if missing.any():
        problems.append(
            f"{name} has missing or empty geometries in "
            f"{_rows(np.flatnonzero(missing))}. Drop them, e.g. "
            f"`{name}[{name}.geometry.notna() & ~{name}.geometry.is_empty]`."
        )
    types = geom.geom_type.to_numpy(dtype=object)
    present = ~missing
    wrong = present & ~np.isin(types, list(allowed))
    if wrong.any():
        pos = np.flatnonzero(wrong)
        seen = sorted({str(t) for t in types[pos]})
        fix = (
            " Split MultiPoints with `.explode(index_parts=False)`."
            if "MultiPoint" in seen
            else ""
        )
        problems.append(
            f"{name} has {', '.join(seen)} geometries in {_rows(pos)}; "
            f"expected {expected}.{fix}"
        )
    is_point = present & np.isin(types, list(_POINT_TYPES))
    is_polygon = present & np.isin(types, list(_POLYGON_TYPES))
    if name == "population" and is_point.any() and is_polygon.any():
        problems.append(
            f"population mixes geometry types: {int(is_point.sum())} points "
            f"(e.g. {_rows(np.flatnonzero(is_point))}) and {int(is_polygon.sum())} "
            f"polygons (e.g. {_rows(np.flatnonzero(is_polygon))}). Pass points and "
            f"areas as separate calls, one layer each."
        )
    if is_point.any() and not is_polygon.any():
        return "points"
    return "areas"


def _counts(
    frame: pd.DataFrame, fields: tuple[str, ...], name: str, *, whole: bool = True
) -> tuple[np.ndarray, list[str]]:
    """Count columns as a float array, and every problem with them."""
    problems: list[str] = []
    out = np.zeros((len(frame), len(fields)))
    missing = [f for f in fields if f not in frame.columns]
    if missing:
        problems.append(
            f"{name} has no column {', '.join(map(repr, missing))}; its columns are "
            f"{_columns(frame)}. Rename the column or change `fields`."
        )
    for j, f in enumerate(fields):
        if f in missing:
            continue
        raw = frame[f]
        if pd.api.types.is_bool_dtype(raw):
            problems.append(
                f"{name}[{f!r}] holds True/False, not counts. Convert it, e.g. "
                f"`{name}[{f!r}].astype(int)`."
            )
            continue
        number = pd.to_numeric(raw, errors="coerce")
        values = number.to_numpy(dtype="float64", na_value=np.nan)
        is_missing = raw.isna().to_numpy()
        checks = [
            (~is_missing & np.isnan(values), "non-numeric values", "fix the values"),
            (is_missing, "missing values (NaN)", "fill them, e.g. with 0"),
            (np.isinf(values), "infinite values", "fix the values"),
            (values < 0, "negative counts", "fix or drop these rows"),
        ]
        for bad, what, fix in checks:
            if bad.any():
                problems.append(
                    f"{name}[{f!r}] has {what} in {_rows(np.flatnonzero(bad), raw)}; "
                    f"{fix}."
                )
        finite = np.isfinite(values)
        fractional = finite & (values != np.floor(np.where(finite, values, 0)))
        if whole and fractional.any():
            problems.append(
                f"{name}[{f!r}] has fractional counts in "
                f"{_rows(np.flatnonzero(fractional), raw)}; counts must be whole "
                f"numbers. Round them first, e.g. `{name}[{f!r}].round()`."
            )
        out[:, j] = values
    return out, problems


def _point_weight(
    points: gpd.GeoDataFrame, point_weight: str | float | None, problems: list[str]
) -> np.ndarray | float:
    if point_weight is None:
        return 1.0
    if isinstance(point_weight, str):
        values, found = _counts(points, (point_weight,), "population")
        problems += [f"point_weight: {p}" for p in found]
        return values[:, 0]
    if not (_is_number(point_weight) and point_weight >= 0 and point_weight % 1 == 0):
        problems.append(
            f"point_weight must be a whole number >= 0, a column name or None; got "
            f"{point_weight!r}."
        )
        return 1.0
    return float(point_weight)


def _normalise_fields(
    fields: str | Sequence[str] | None, problems: list[str]
) -> tuple[str, ...] | None:
    if fields is None:
        return None
    result = (fields,) if isinstance(fields, str) else tuple(fields)
    if not result or not all(isinstance(f, str) for f in result):
        problems.append(
            f"fields must be None, a column name or a sequence of column names; got "
            f"{fields!r}."
        )
        return None
    duplicated = sorted({f for f in result if result.count(f) > 1})
    if duplicated:
        problems.append(f"fields names {duplicated} more than once; list each once.")
    reserved = [f for f in result if f in _RESERVED]
    if reserved:
        problems.append(
            f"fields may not include {reserved}: the result uses these names. Rename "
            f"the column first."
        )
    return result


def _residential_mask(
    buildings: gpd.GeoDataFrame,
    residential: pd.Series | Sequence[bool] | np.ndarray | None,
    problems: list[str],
) -> np.ndarray:
    if residential is None:
        mask: np.ndarray = is_residential(buildings).to_numpy()
        return mask
    if isinstance(residential, pd.Series):
        if not residential.index.equals(buildings.index):
            problems.append(
                "residential must have the index of buildings; got a Series with a "
                "different index. Build it from buildings, e.g. "
                "`is_residential(buildings)`."
            )
            return np.ones(len(buildings), bool)
        residential = residential.to_numpy()
    mask = np.asarray(residential)
    if mask.shape != (len(buildings),) or mask.dtype != bool:
        problems.append(
            f"residential must be one bool per building ({len(buildings)}); got "
            f"shape {mask.shape} of dtype {mask.dtype}."
        )
        return np.ones(len(buildings), bool)
    return mask


def _floor_area_report(
    buildings: gpd.GeoDataFrame, weight_kwargs: dict[str, Any]
) -> tuple[np.ndarray, dict[str, Any]]:
    storeys, source = levels(buildings, **weight_kwargs)
    area = buildings.geometry.area.to_numpy(dtype="float64") * storeys.to_numpy()
    counts = source.value_counts()
    report = {
        "levels_column": _pick_column(
            buildings, weight_kwargs["levels_column"], LEVELS_COLUMNS
        ),
        "height_column": _pick_column(
            buildings, weight_kwargs["height_column"], HEIGHT_COLUMNS
        ),
        "storey_height_m": float(weight_kwargs["storey_height"]),
        "default_levels": float(weight_kwargs["default_levels"]),
        "levels_source": {
            k: int(counts.get(k, 0)) for k in ("levels", "height", "default")
        },
        "total_m2": round(float(area.sum()), 1),
    }
    return area, report


def _pick_column(
    frame: pd.DataFrame,
    column: str | None,
    candidates: tuple[str, ...],
    argument: str = "column",
    problems: list[str] | None = None,
) -> str | None:
    if column is not None:
        if column not in frame.columns:
            if problems is not None:
                problems.append(
                    f"buildings has no column {column!r} (given as {argument}); its "
                    f"columns are {_columns(frame)}. Pass an existing column or None "
                    f"to detect one of {list(candidates)}."
                )
            return None
        return column
    return next((c for c in candidates if c in frame.columns), None)


def _parse_numbers(values: pd.Series, *, allow_unit: bool) -> np.ndarray:
    """Floats from a column of numbers or numeric strings; junk becomes NaN.

    With `allow_unit`, a trailing metre unit is accepted (``"12 m"``).
    """
    if pd.api.types.is_bool_dtype(values):
        return np.full(len(values), np.nan)
    number = pd.to_numeric(values, errors="coerce")
    result: np.ndarray = number.to_numpy(dtype="float64", na_value=np.nan).copy()
    if allow_unit:
        retry = np.isnan(result) & values.notna().to_numpy()
        if retry.any():
            text = values[retry].astype(str).str.extract(_NUMBER, expand=False)
            result[retry] = pd.to_numeric(text, errors="coerce").to_numpy(
                dtype="float64", na_value=np.nan
            )
    result[~np.isfinite(result)] = np.nan
    return result


def _result(
    buildings: gpd.GeoDataFrame,
    values: np.ndarray,
    fields: tuple[str, ...],
    estimated: np.ndarray,
    method: str,
    report: dict[str, Any],
    unplaced: pd.DataFrame,
) -> PopulationResult:
    counts = pd.DataFrame(
        values.astype("float64"), index=buildings.index, columns=list(fields)
    )
    counts["estimated"] = estimated.astype(bool)
    return PopulationResult(
        counts=counts, method=method, fields=tuple(fields), report=report,
        unplaced=unplaced,
    )  # fmt: skip


def _base_report(method: str, fields: tuple[str, ...], n: int) -> dict[str, Any]:
    return {"method": method, "fields": list(fields), "n_buildings": int(n)}


def _empty_unplaced() -> pd.DataFrame:
    return pd.DataFrame({"reason": pd.Series([], dtype=object)})


def _rows(positions: np.ndarray, values: pd.Series | None = None) -> str:
    shown = positions[:_MAX_IN_MESSAGE]
    text = f"row{'s' if positions.size > 1 else ''} " + ", ".join(map(str, shown))
    if values is not None:
        seen = ", ".join(repr(_plain(values.iloc[p])) for p in shown)
        text += f" (value{'s' if shown.size > 1 else ''} {seen})"
    if positions.size > _MAX_IN_MESSAGE:
        text += f" and {positions.size - _MAX_IN_MESSAGE} more"
    return text


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _listed(positions: np.ndarray) -> list[int]:
    return [int(p) for p in positions[:_MAX_LISTED]]


def _columns(frame: pd.DataFrame) -> list[str]:
    geometry = (
        frame.active_geometry_name if isinstance(frame, gpd.GeoDataFrame) else None
    )
    return [str(c) for c in frame.columns if c != geometry]


def _crs_name(crs: Any) -> str:
    if crs is None:
        return "None"
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.name


def _int(x: float) -> int:
    return round(float(x))


def _number(x: float | None) -> str:
    return "None" if x is None else f"{x:g}"


def _is_number(x: Any) -> bool:
    return (
        isinstance(x, (int, float, np.integer, np.floating))
        and not isinstance(x, bool)
        and math.isfinite(x)
    )


def _is_positive(x: Any) -> bool:
    return _is_number(x) and x > 0


# ----------------------------------------------------------------------------
# stage 2 of a plan: the counts of every building (or unit) the plan balances
# ----------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Counts:
    """Stage 2's output: what every building (or unit given directly) holds.

    ``table`` has one row per building in the canonical order of stage 1, a
    float column per field in ``fields`` (whole numbers but for ``workload``)
    and ``estimated``; ``by`` is the balance field.
    """

    table: pd.DataFrame
    fields: tuple[str, ...]
    by: str
    report: dict[str, Any]
    unplaced: pd.DataFrame | None
    estimated: bool

    @property
    def weight(self) -> np.ndarray:
        """The balance field of every building."""
        return self.table[self.by].to_numpy(dtype=float)


def place_population(buildings: gpd.GeoDataFrame | None,
                     population: gpd.GeoDataFrame | None,
                     units: gpd.GeoDataFrame | None, options: Options, *,
                     count_fields: tuple[str, ...], extra_fields: tuple[str, ...],
                     notes: list[str]) -> Counts:
    """Stage 2: the population onto the buildings (or the counts of the units).

    In: the buildings (working CRS, canonical order) and the population layer
    of stage 1 (or, with no buildings, the units given directly), and the
    options.  Out: :class:`Counts`, with the totals conserved and reported.
    """
    by = options.balance.by
    if by in UNIT_MEASURES:
        return _by_measure(buildings, population, units, options, count_fields=count_fields,
                           extra_fields=extra_fields, notes=notes)
    on_workload = by == "workload"
    groups = options.population.groups
    fields = tuple(dict.fromkeys((*count_fields, by)))
    if buildings is not None:
        source_cols = (population if population is not None else buildings).columns
        missing_groups = [c for c in groups if c not in source_cols]
        if missing_groups:
            raise LayerValidationError(
                f"group column(s) {missing_groups} are not in the "
                f"{'population layer' if population is not None else 'buildings'}; its "
                f"columns are {sorted(map(str, source_cols))}. Map a source column with "
                "columns={'name': 'SOURCE'} or leave the group out."
            )
        extra = tuple(f for f in (*extra_fields, *groups) if f in source_cols and f != by)
        given = tuple(f for f in count_fields if f in source_cols)
        if on_workload:
            # workload is worked out from the counts below; the counts come as usual
            pfields = None if not extra else (tuple(dict.fromkeys((*given, *extra)))
                                               if given else None)
        elif by in count_fields and not extra:
            pfields = None
        elif by in count_fields and not given:
            # counts estimated from floor area: the extra columns cannot ride along
            pfields = None
            notes.append(f"columns {list(extra)} were not used: with no households or "
                         "pop_actual given, population is estimated from floor area.")
        else:
            pfields = tuple(dict.fromkeys((*given, by, *extra)))
        pm = options.population
        pres = population_onto_buildings(
            buildings, population, fields=pfields, max_distance=pm.max_distance,
            dwelling_size=pm.dwelling_size, persons_per_household=pm.persons_per_household,
            default_levels=pm.default_levels,
        )
        table = pres.counts
        fields = tuple(pres.fields)
        if on_workload:
            table, fields = _with_workload(table, fields, options.workload.formula)
        if by not in fields:
            raise LayerValidationError(
                f"the balance field {by!r} is not in the population "
                f"({', '.join(fields) or 'no counts'}); choose by= among them or give "
                f"a column {by!r}."
            )
        report = {"method": pres.method, **pres.report}
        unplaced = pres.unplaced
        estimated = bool(table["estimated"].any()) if "estimated" in table else False
    else:
        assert units is not None  # read_layers refuses a plan with neither
        um = units.reset_index(drop=True)
        fields = tuple(dict.fromkeys(
            (*(f for f in fields if f != "workload" or not on_workload),
             *(f for f in (*extra_fields, *groups) if f in um))))
        table = pd.DataFrame({f: pd.to_numeric(um[f], errors="coerce") if f in um
                              else 0.0 for f in fields})
        if on_workload:
            table, fields = _with_workload(table.fillna(0.0), fields,
                                           options.workload.formula)
        bad = table[by].isna() | (table[by] < 0)
        if bad.any():
            raise LayerValidationError(
                f"`units` column {by!r} is empty or negative in rows "
                f"{list(um.index[bad][:5])}; give a count of 0 or more for every unit."
            )
        table = table.fillna(0.0)
        table["estimated"] = False
        report = {"method": "units"}
        unplaced = None
        estimated = False
    counts = Counts(table, fields, by, report, unplaced, estimated)
    total = float(counts.weight.sum())
    target = options.balance.target
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
    return counts


def _by_measure(buildings: gpd.GeoDataFrame | None, population: gpd.GeoDataFrame | None,
                units: gpd.GeoDataFrame | None, options: Options, *,
                count_fields: tuple[str, ...], extra_fields: tuple[str, ...],
                notes: list[str]) -> Counts:
    """Stage 2 when the balance is a measure of the units (``by="area"``).

    The population is placed as for households, to be reported per grid; the
    balance column (not among the counts) is the units' own area: for units
    given directly their area in m², for buildings their share of their block's
    area, set once the blocks are made (:func:`share_block_measure`), while the
    graph weighs every unit by its own area.
    """
    by = options.balance.by
    if buildings is not None:
        # counted as for households (the target is in m² here: no check of it)
        counted = dataclasses.replace(options, balance=dataclasses.replace(
            options.balance, by="households", target=1.0, targets=None))
        counts = place_population(buildings, population, None, counted,
                                  count_fields=count_fields, extra_fields=extra_fields,
                                  notes=notes)
        table = counts.table.copy()
        table[by] = 0.0  # each building's share of its block's area, once it is known
        return Counts(table, counts.fields, by, counts.report, counts.unplaced,
                      counts.estimated)
    assert units is not None  # read_layers refuses a plan with neither
    um = units.reset_index(drop=True)
    fields = tuple(f for f in dict.fromkeys((*count_fields, *extra_fields)) if f in um)
    table = pd.DataFrame({f: pd.to_numeric(um[f], errors="coerce").fillna(0.0)
                          for f in fields})
    table[by] = shapely.area(np.asarray(um.geometry.values))
    table["estimated"] = False
    return Counts(table, fields, by, {"method": "units"}, None, False)


def share_block_measure(counts: Counts, building_block: np.ndarray,
                        block_measure: np.ndarray) -> None:
    """Every building's share of its block's measure (area), in ``counts``, in place.

    The blocks' loads are then their areas, as the splitting of blocks heavier
    than a grid needs; a block without buildings weighs in through its units.
    """
    n = np.bincount(building_block, minlength=len(block_measure))
    share = block_measure[building_block] / np.maximum(n[building_block], 1)
    counts.table[counts.by] = share


def _with_workload(counts: pd.DataFrame, fields: tuple[str, ...],
                   weights: Mapping[str, float] | None) -> tuple[pd.DataFrame, tuple[str, ...]]:
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
