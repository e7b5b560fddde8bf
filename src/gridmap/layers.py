"""Stage 1, read and validate: the layers as given → :class:`Layers` in the working CRS.

In: the layers by role (:class:`LayerSources`: GeoDataFrames or paths) and the
:class:`~gridmap.options.Options`.  Out: every layer read, checked (all problems
at once, :func:`gridmap._validate.validate_inputs`), its columns renamed to the
canonical names, the buildings in one canonical order (so that the plan does not
depend on the input's row order) with their ids, everything in the metric CRS
the work is done in, and the streets as classed lines.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from . import io as gio
from ._errors import LayerValidationError
from ._validate import Problems, repair_polygons, validate_inputs
from .adjacency import street_rank
from .datum import to_wgs84
from .options import UNIT_MEASURES, Options
from .postgis import is_database, read_database
from .register import RegisterJoin, is_table, join_register, read_table

__all__ = ["COUNT_FIELDS", "EXTRA_FIELDS", "STREET_CLASS_COLUMNS", "LayerSources",
           "Layers", "StreetLines", "read_layers"]

#: columns that may hold a street's class, tried in this order
STREET_CLASS_COLUMNS = ("street_class", "highway", "kind_detail", "fclass", "class", "type")
#: the counts every plan reports
COUNT_FIELDS = ("households", "pop_actual")
#: further counts carried to the grids when the input has them (population
#: categories and what drives workload)
EXTRA_FIELDS = ("pop_registered", "pop_floating", "pop_absent", "elderly", "shops", "cases")


@dataclass(frozen=True)
class LayerSources:
    """The layers of a plan as given: GeoDataFrames, file paths or None."""

    buildings: gio.LayerSource | None = None
    streets: gio.LayerSource | None = None
    population: gio.LayerSource | None = None
    boundaries: gio.LayerSource | None = None
    compounds: gio.LayerSource | None = None
    units: gio.LayerSource | None = None
    sites: gio.LayerSource | None = None

    def by_role(self) -> dict[str, Any]:
        """Every layer by its role (``"buildings"``, ``"streets"``, ...)."""
        return {role: getattr(self, role) for role in
                ("buildings", "streets", "population", "boundaries", "compounds",
                 "sites", "units")}


@dataclass(frozen=True)
class StreetLines:
    """The street centre-lines as single lines, with their class and name.

    And whether each runs over ground (a tunnel carries no frontage).
    """

    geometry: np.ndarray
    classes: np.ndarray
    names: np.ndarray
    overground: np.ndarray

    def __len__(self) -> int:
        return len(self.geometry)


@dataclass(frozen=True)
class Layers:
    """The layers after stage 1, in the working CRS.

    ``buildings`` (position = building number of every later stage, with
    ``building_id``) and ``buildings_in`` (the input's own columns) are in the
    canonical order; ``restore`` puts them back in the input's order (None when
    they already are).  With no buildings, ``units`` are the rows partitioned.
    """

    buildings: gpd.GeoDataFrame | None
    buildings_in: gpd.GeoDataFrame | None
    units: gpd.GeoDataFrame | None
    population: gpd.GeoDataFrame | None
    boundaries: gpd.GeoDataFrame | None
    compounds: gpd.GeoDataFrame | None
    sites: gpd.GeoDataFrame | None
    streets: gpd.GeoDataFrame | None
    street_lines: StreetLines
    ids: np.ndarray
    id_column: str | None
    input_crs: Any
    work_crs: pyproj.CRS
    restore: np.ndarray | None
    notes: list[str] = field(default_factory=list)
    dropped: dict[str, list[Any]] = field(default_factory=dict)
    #: a population table joined to the buildings (None: no table was given)
    register: RegisterJoin | None = None

    @property
    def main(self) -> gpd.GeoDataFrame:
        """The rows partitioned: the buildings, else the units."""
        return self.buildings if self.buildings is not None else self.units

    @property
    def n_rows(self) -> int:
        """How many buildings (or units given directly) go into the plan."""
        main = self.buildings_in if self.buildings_in is not None else self.units
        return len(main) if main is not None else 0


def read_layers(sources: LayerSources, options: Options,
                problems: Problems | None = None) -> Layers:
    """Stage 1: read, check, rename, order and reproject the layers.

    Every problem is raised together, with those in ``problems`` (the options'
    own), as one :class:`~gridmap.LayerValidationError`.
    """
    problems = problems if problems is not None else Problems()
    bal, inp = options.balance, options.inputs
    table: pd.DataFrame | None = None
    table_notes: list[str] = []
    if is_database(sources.population):
        # a register kept in the database is a table too: read it to tell
        sources = dataclasses.replace(sources,
                                      population=read_database(sources.population,
                                                               role="population"))
    if is_table(sources.population):
        # a register: rows joined to the buildings below, not a layer on the map
        table, table_notes = read_table(sources.population, encoding=inp.encoding)
        sources = dataclasses.replace(sources, population=None)
    checked = validate_inputs(
        sources.by_role(), columns=inp.columns, id_column=inp.id_column, by=bal.by,
        target=bal.target, tolerance=bal.tolerance, groups=options.population.groups,
        street_column=inp.street_column, strict=inp.strict, extra_fields=EXTRA_FIELDS,
        problems=problems, encoding=inp.encoding, allow_overlaps=inp.allow_overlaps,
    )
    notes: list[str] = [*table_notes, *checked.notes]
    read = checked.layers
    problems.raise_if_any()
    if inp.input_datum != "wgs84":
        # traced from a Chinese web map: to WGS84 before anything is measured
        read = {role: to_wgs84(gdf, inp.input_datum) if gdf is not None else None
                for role, gdf in read.items()}
        notes.append(f"the layers are in {inp.input_datum.upper()} (input_datum): "
                     "converted to WGS84 for the work; the files are written in "
                     f"{(inp.output_datum or inp.input_datum).upper()}.")
    # canonical names; the original columns are kept for the output
    columns = inp.columns
    renamed = {role: gio.rename_columns(gdf, columns, role=role) if gdf is not None
               and role != "sites" else gdf for role, gdf in read.items()}
    buildings_in = read["buildings"]
    buildings, units = renamed["buildings"], renamed["units"]
    main = buildings if buildings is not None else units
    assert main is not None  # validate_inputs refuses a plan with neither
    main_role = "buildings" if buildings is not None else "units"
    id_col = _id_column(main, inp.id_column, main_role, problems)
    ids = _ids(main, id_col, main_role, problems)
    if main_role == "units" and bal.by != "workload" and bal.by not in UNIT_MEASURES \
            and bal.by not in main.columns:
        problems.add(
            f"`units` has no column {bal.by!r} to balance on; its columns are "
            f"{[c for c in main.columns if c != main.geometry.name]}. Map yours with "
            f"columns={{'{bal.by}': 'your_column'}} or choose by=.")
    problems.raise_if_any()
    # the same plan whatever the row order of the input: the buildings (by id,
    # else by geometry) and the streets (by geometry) are worked on in one
    # canonical order, and the buildings given back in the input's order
    restore = None
    if buildings is not None:
        assert buildings_in is not None  # the same layer, before renaming
        order = canonical_order(buildings, ids if id_col is not None else None)
        if not np.array_equal(order, np.arange(len(order))):
            buildings, buildings_in = buildings.iloc[order], buildings_in.iloc[order]
            ids = np.asarray(ids)[order]
            restore = np.argsort(order)
    register = None
    if table is not None:
        register = _join_register(table, buildings, ids, options, notes)
        assert buildings is not None  # _join_register refuses a table without them
        buildings = buildings.copy()
        for c in register.counts.columns:
            buildings[c] = register.counts[c].to_numpy()
    streets = renamed["streets"]
    if streets is not None:
        streets = streets.iloc[canonical_order(streets, None)]
    main = buildings if buildings is not None else units
    assert main is not None
    input_crs = main.crs
    work_crs = gio.metric_crs(main, inp.crs)
    layer = {role: _to(renamed[role], work_crs) for role in
             ("population", "boundaries", "compounds", "units", "sites")}
    streets = _to(streets, work_crs)
    if buildings is not None:
        buildings = buildings.to_crs(work_crs).reset_index(drop=True)
        buildings, repaired = repair_polygons(buildings)
        if repaired:
            notes.append(f"{len(repaired)} invalid building polygon(s) repaired with "
                         "make_valid.")
        buildings["building_id"] = ids
    cls_col = _street_class_column(streets, inp.street_column) \
        if streets is not None else None
    return Layers(
        buildings=buildings, buildings_in=buildings_in, units=layer["units"],
        population=layer["population"], boundaries=layer["boundaries"],
        compounds=layer["compounds"], sites=layer["sites"], streets=streets,
        street_lines=street_lines(streets, cls_col, inp.exclude_streets),
        ids=np.asarray(ids), id_column=id_col, input_crs=input_crs, work_crs=work_crs,
        restore=restore, notes=notes, dropped=checked.dropped, register=register,
    )


def _join_register(table: pd.DataFrame, buildings: gpd.GeoDataFrame | None, ids: Any,
                   options: Options, notes: list[str]) -> RegisterJoin:
    """A population table joined to the buildings (:mod:`gridmap.register`), said in a note."""
    inp = options.inputs
    if buildings is None:
        msg = ("a population table (a register) is joined to buildings, but none were "
               "given: give the buildings, or the population as points or polygons.")
        raise LayerValidationError(msg)
    key = inp.population_key
    if key is None and inp.population_address is None:
        # a table keyed by the buildings' own id column needs no saying so
        id_name = inp.id_column or "id"
        key = id_name if id_name in table.columns else None
    joined = join_register(
        table, buildings, ids=np.asarray(ids), key=key, address=inp.population_address,
        address_column=inp.address_column, count_column=inp.count_column,
        fields=(*COUNT_FIELDS, *EXTRA_FIELDS, *options.population.groups),
        columns=inp.columns)
    r = joined.report
    given = [c for c in joined.counts.columns if c in buildings.columns]
    notes.append(
        f"population from a register of {r['rows']:,} rows joined {r['joined']}: "
        f"{r['matched_rows']:,} rows ({r['households_matched']:,.0f} households) on "
        f"{r['buildings_with_rows']:,} buildings"
        + (f"; {r['unmatched_rows']:,} rows ({r['households_unmatched']:,.0f} households) "
           "matched no building and are not in the plan (population_unmatched.csv lists "
           "each with its reason)" if r["unmatched_rows"] else "")
        + (f"; the buildings' own {given} were replaced" if given else "") + ".")
    return joined


def _street_class_column(streets: gpd.GeoDataFrame, given: str | None) -> str | None:
    if given:
        return given
    for c in STREET_CLASS_COLUMNS:
        if c in streets.columns:
            return c
    return None


def _id_column(gdf: gpd.GeoDataFrame, given: str | None, role: str,
               problems: Problems) -> str | None:
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


def _ids(gdf: gpd.GeoDataFrame, col: str | None, role: str,
         problems: Problems) -> np.ndarray:
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


def canonical_order(gdf: gpd.GeoDataFrame, ids: np.ndarray | None) -> np.ndarray:
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


def street_lines(streets: gpd.GeoDataFrame | None, cls_col: str | None,
                 exclude: Iterable[str]) -> StreetLines:
    """Street centre-lines (single lines), their classes and names, and which run over ground.

    The classes in ``exclude`` (paths that close no block) are left out.
    """
    if streets is None or not len(streets):
        empty = np.array([], dtype=object)
        return StreetLines(empty, empty, empty, np.array([], dtype=bool))
    s = streets[streets.geometry.notna() & ~streets.geometry.is_empty]
    classes = (s[cls_col].map(street_rank).to_numpy() if cls_col
               else np.full(len(s), "street", dtype=object))
    keep = ~np.isin(classes, list(exclude))
    geoms = s.geometry.values[keep]
    classes = classes[keep]
    names = (s["name"].to_numpy(dtype=object) if "name" in s.columns
             else np.full(len(s), None, dtype=object))[keep]
    parts, idx = shapely.get_parts(np.asarray(geoms), return_index=True)
    lines = shapely.force_2d(parts)
    return StreetLines(lines, classes[idx], names[idx], ~_tunnels(streets, lines))


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
