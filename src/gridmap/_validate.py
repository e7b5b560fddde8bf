"""Checks of the input layers, run once at the public boundary.

Every problem is collected and raised together, each message naming the layer,
the rows, the value seen and the fix.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ._errors import CRSMismatchError, GridmapWarning, LayerValidationError
from .units import planar_faces

__all__ = ["Inputs", "Problems", "check_layer", "check_params", "validate_inputs"]

_GEOM_FAMILY = {
    "polygon": ("Polygon", "MultiPolygon"),
    "line": ("LineString", "MultiLineString", "LinearRing"),
    "point": ("Point", "MultiPoint"),
}


def _rows(idx: Iterable, limit: int = 5) -> str:
    idx = list(idx)
    shown = ", ".join(str(i) for i in idx[:limit])
    return shown + (f" … ({len(idx)} in all)" if len(idx) > limit else "")


class Problems:
    """A list of problems that raises them all at once."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.crs_items: list[str] = []

    def add(self, msg: str, *, crs: bool = False) -> None:
        (self.crs_items if crs else self.items).append(msg)

    def raise_if_any(self) -> None:
        if self.items:
            raise LayerValidationError(self.items + self.crs_items)
        if self.crs_items:
            raise CRSMismatchError(self.crs_items)


def check_layer(
    gdf: gpd.GeoDataFrame | None,
    role: str,
    problems: Problems,
    *,
    geometry: str | tuple[str, ...],
    columns: Iterable[str] = (),
    required: bool = True,
) -> None:
    """Check one layer: present, not empty, right geometry, CRS set, columns there."""
    if gdf is None:
        if required:
            problems.add(f"`{role}` is required but was not given.")
        return
    if len(gdf) == 0:
        problems.add(
            f"`{role}` is empty (0 rows). Check the file, the layer name "
            "(PATH#LAYER) or the filter that produced it."
        )
        return
    families = (geometry,) if isinstance(geometry, str) else geometry
    allowed = tuple(t for f in families for t in _GEOM_FAMILY[f])
    types = gdf.geometry.geom_type
    missing_geom = gdf.geometry.isna() | gdf.geometry.is_empty
    if missing_geom.all():
        problems.add(f"`{role}` has no geometry in any of its {len(gdf)} rows.")
        return
    wrong = ~types.isin(allowed) & ~missing_geom
    if wrong.any():
        seen = sorted(set(types[wrong].astype(str)))
        problems.add(
            f"`{role}` must hold {' or '.join(families)} geometries; rows "
            f"{_rows(gdf.index[wrong])} are {', '.join(seen)}. Pass the right layer "
            "or filter it (e.g. gdf[gdf.geom_type.isin([...])])."
        )
    if gdf.crs is None:
        problems.add(
            f"`{role}` has no CRS. Set the one its coordinates are in, e.g. "
            "gdf.set_crs('EPSG:4490') for CGCS2000 longitude/latitude or "
            "gdf.set_crs('EPSG:4326') for WGS84; for a shapefile add its .prj.",
            crs=True,
        )
    cols = list(columns)
    absent = [c for c in cols if c not in gdf.columns]
    if absent:
        there = [c for c in gdf.columns if c != gdf.geometry.name]
        problems.add(
            f"`{role}` has no column {', '.join(repr(c) for c in absent)}; its columns "
            f"are {there}.{closest(absent[0], map(str, there))} Map yours with "
            f"columns={{'{absent[0]}': 'your_column'}}."
        )


def check_params(
    problems: Problems, *, target: float, tolerance: float, by: str
) -> None:
    """Check the partition parameters."""
    if not _is_number(target) or target <= 0:
        problems.add(
            f"target must be a positive number of {by} per grid (e.g. 300), got {target!r}."
        )
    if not _is_number(tolerance) or not 0 < tolerance < 1:
        problems.add(
            f"tolerance must be a fraction between 0 and 1 (0.1 means ±10%), got "
            f"{tolerance!r}."
        )


def repair_polygons(gdf: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, list[int]]:
    """Repair invalid polygons with ``make_valid``, keeping only polygonal parts."""
    geoms = gdf.geometry.values
    bad = ~shapely.is_valid(np.asarray(geoms))
    if not bad.any():
        return gdf, []
    fixed = shapely.make_valid(np.asarray(geoms)[bad])
    # make_valid may return a collection with stray lines: keep the polygons
    parts = []
    for g in fixed:
        if g.geom_type == "GeometryCollection":
            polys = [p for p in g.geoms if p.geom_type in ("Polygon", "MultiPolygon")]
            g = shapely.union_all(polys) if polys else g
        parts.append(g)
    out = gdf.copy()
    col = out.geometry.name
    out.loc[bad, col] = parts
    return out, list(gdf.index[bad])


# ---------------------------------------------------------------------------
# the one pass over every input of delineate()
# ---------------------------------------------------------------------------

#: fields that count people, households or things: whole numbers are expected
COUNT_FIELDS = frozenset({
    "households", "pop_actual", "pop_registered", "pop_floating", "pop_absent",
    "elderly", "shops", "cases",
})
#: fields gridmap can estimate from floor area when no layer has them
_ESTIMABLE = ("households", "pop_actual")
_ROLES = ("buildings", "streets", "population", "boundaries", "compounds", "sites", "units")
_GEOMETRY = {
    "buildings": "polygon", "streets": "line", "population": ("point", "polygon"),
    "boundaries": "polygon", "compounds": "polygon", "sites": "polygon", "units": "polygon",
}


@dataclass
class Inputs:
    """The layers after validation (read, repaired) and what was done to them."""

    layers: dict[str, gpd.GeoDataFrame | None]
    notes: list[str] = field(default_factory=list)
    #: building (or unit) positions outside every community boundary
    outside: list[int] = field(default_factory=list)


def where(gdf: pd.DataFrame, mask: np.ndarray, ids: Iterable | None = None,
          limit: int = 5) -> str:
    """``"2 rows (ids 'b3', 'b7')"``: how many rows and the first few ids or labels."""
    pos = np.flatnonzero(np.asarray(mask, dtype=bool))
    labels = list(ids) if ids is not None else list(gdf.index)
    shown = ", ".join(repr(_plain(labels[p])) for p in pos[:limit])
    more = ", …" if len(pos) > limit else ""
    kind = "ids" if ids is not None else "rows"
    return f"{len(pos)} row{'s' if len(pos) != 1 else ''} ({kind} {shown}{more})"


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def closest(name: str, options: Iterable[str]) -> str:
    """``" Did you mean 'households'?"`` when a column name is close to ``name``."""
    opts = [str(o) for o in options]
    hit = difflib.get_close_matches(str(name), opts, n=1, cutoff=0.6)
    if not hit:
        lower = {o.lower(): o for o in opts}
        hit = [lower[str(name).lower()]] if str(name).lower() in lower else []
    return f" Did you mean {hit[0]!r}?" if hit else ""


def _columns(gdf: pd.DataFrame) -> list[str]:
    geom = gdf.geometry.name if isinstance(gdf, gpd.GeoDataFrame) else None
    return [str(c) for c in gdf.columns if c != geom]


def _check_polygons(gdf: gpd.GeoDataFrame, role: str, problems: Problems,
                    notes: list[str], *, strict: bool, ids: Iterable | None = None
                    ) -> gpd.GeoDataFrame:
    """Invalid polygons: refused in strict mode, else repaired with ``make_valid``."""
    geoms = np.asarray(gdf.geometry.values)
    present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    bad = present & ~shapely.is_valid(geoms)
    if not bad.any():
        return gdf
    first = shapely.is_valid_reason(geoms[np.flatnonzero(bad)[0]])
    if strict:
        problems.add(
            f"`{role}` has invalid polygons in {where(gdf, bad, ids)}: {first}. Fix them "
            "(QGIS: Fix geometries; shapely.make_valid) or leave strict mode to have "
            "gridmap repair them with make_valid."
        )
        return gdf
    fixed, _ = repair_polygons(gdf)
    notes.append(
        f"`{role}` had invalid polygons in {where(gdf, bad, ids)} ({first}); repaired "
        "with make_valid. Use strict=True (--strict) to refuse them instead."
    )
    return fixed


def validate_inputs(
    sources: Mapping[str, Any],
    *,
    columns: Mapping[str, str] | None,
    id_column: str | None,
    by: str,
    target: Any,
    tolerance: Any,
    groups: Iterable[str] = (),
    street_column: str | None = None,
    strict: bool = False,
    extra_fields: Iterable[str] = (),
    problems: Problems | None = None,
) -> Inputs:
    """Read every layer and check every input of :func:`gridmap.delineate` at once.

    Every problem found is collected and raised together in one
    :class:`~gridmap.LayerValidationError` (a :class:`~gridmap.CRSMismatchError`
    when the CRSs are the only problems).  What can be repaired without guessing
    (invalid polygons, layers in another CRS, buildings outside every community
    boundary, streets that enclose no block) is repaired or worked around and
    reported in ``notes`` and as a :class:`~gridmap.GridmapWarning`, unless
    ``strict`` asks to refuse it.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> b = gpd.GeoDataFrame({"households": [10, -1]}, crs=32651,
    ...     geometry=[shapely.box(0, 0, 1, 1), shapely.box(2, 0, 3, 1)])
    >>> try:
    ...     validate_inputs({"buildings": b}, columns=None, id_column=None,
    ...                     by="households", target=0, tolerance=0.1)
    ... except LayerValidationError as exc:
    ...     print(len(exc.problems))
    2
    """
    from . import io as gio
    from .population import _counts

    problems = problems if problems is not None else Problems()
    notes: list[str] = []
    layers: dict[str, gpd.GeoDataFrame | None] = {}
    unread: set[str] = set()
    for role in _ROLES:
        try:
            layers[role] = gio.read_layer(sources.get(role), role=role)
        except LayerValidationError as exc:
            problems.add(str(exc))
            layers[role] = None
            unread.add(role)
    check_params(problems, target=target, tolerance=tolerance, by=by)
    bld, unt = layers["buildings"], layers["units"]
    if bld is None and unt is None and not ({"buildings", "units"} & unread):
        problems.add("give `buildings` (footprints) or `units` (polygons to partition).")
    usable: dict[str, gpd.GeoDataFrame] = {}
    for role in _ROLES:
        gdf = layers[role]
        before = len(problems.items) + len(problems.crs_items)
        check_layer(gdf, role, problems, geometry=_GEOMETRY[role], required=False)
        if gdf is not None and len(problems.items) + len(problems.crs_items) == before:
            usable[role] = gdf
    # invalid polygons (buildings, boundaries, compounds, sites, units)
    for role in ("buildings", "boundaries", "compounds", "sites", "units"):
        gdf = usable.get(role)
        if gdf is not None:
            ids = gdf[id_column] if role == "buildings" and id_column in gdf.columns \
                else gdf["id"] if role == "buildings" and "id" in gdf.columns else None
            layers[role] = usable[role] = _check_polygons(gdf, role, problems, notes,
                                                          strict=strict, ids=ids)

    st_ = usable.get("streets")
    if st_ is not None:
        rings = (st_.geometry.geom_type == "LinearRing").to_numpy()
        if rings.any():  # a closed line is a street too: as a LineString
            st_ = st_.copy()
            col = st_.geometry.name
            st_.loc[rings, col] = [shapely.LineString(g.coords)
                                   for g in st_.geometry[rings]]
            layers["streets"] = usable["streets"] = st_
    # column names: a source name in `columns` that no layer has is a typo
    everything = {c for g in usable.values() for c in _columns(g)}
    for canonical, source in (columns or {}).items():
        if source not in everything:
            problems.add(
                f"columns={{{canonical!r}: {source!r}}}: no layer has a column {source!r}."
                f"{closest(source, everything)} The layers' columns are "
                f"{sorted(everything)}."
            )
    renamed = {r: gio.rename_columns(g, dict(columns) if columns else None, role=r)
               for r, g in usable.items()}

    main_role = "buildings" if "buildings" in renamed else "units"
    main = renamed.get(main_role)
    ids = None
    if main is not None:
        cols = _columns(main)
        col = id_column if id_column else ("id" if "id" in main.columns else None)
        if id_column and id_column not in main.columns:
            problems.add(
                f"`{main_role}` has no id column {id_column!r} (id_column=, --id-column)."
                f"{closest(id_column, cols)} Its columns are {cols}."
            )
            col = None
        if col is not None:
            values = main[col]
            ids = values.tolist()
            dup = values.duplicated(keep=False).to_numpy() & values.notna().to_numpy()
            if dup.any():
                seen = sorted({str(v) for v in values[dup]})[:5]
                problems.add(
                    f"`{main_role}` id column {col!r} has duplicate values {seen} in "
                    f"{where(main, dup, ids)}; ids must be unique. Fix the data or pick "
                    "another column with id_column= (--id-column)."
                )
            empty = values.isna().to_numpy()
            if empty.any():
                problems.add(
                    f"`{main_role}` id column {col!r} is empty in {where(main, empty)}; "
                    "give every row an id or pick another column with id_column=."
                )
        if street_column and "streets" in renamed \
                and street_column not in renamed["streets"].columns:
            scol = _columns(renamed["streets"])
            problems.add(
                f"`streets` has no class column {street_column!r} (street_column=)."
                f"{closest(street_column, scol)} Its columns are {scol}."
            )

    # the counts: where they come from, and that they are counts
    pop = renamed.get("population")
    on_workload = by == "workload"
    wanted = tuple(dict.fromkeys((*_ESTIMABLE, *(() if on_workload else (by,)),
                                  *extra_fields, *groups)))
    source_role = "population" if pop is not None else main_role
    source = pop if pop is not None else main
    weight_ok = False
    if source is not None and ("population" in usable or "population" not in unread):
        cols = _columns(source)
        if pop is None and not on_workload and by not in source.columns and (
                main_role == "units" or by not in _ESTIMABLE):
            hint = ("" if main_role == "units" else
                    f" (only {list(_ESTIMABLE)} can be estimated from floor area)")
            problems.add(
                f"`{main_role}` has no column {by!r} to balance on{hint}."
                f"{closest(by, cols)} Its columns are {cols}. Map yours with "
                f"columns={{{by!r}: 'YOUR_COLUMN'}} (--column {by}=YOUR_COLUMN) or "
                "choose another by=."
            )
        absent_groups = [c for c in groups if c not in source.columns]
        if absent_groups:
            where_ = "population layer" if source_role == "population" else source_role
            problems.add(
                f"group column(s) {absent_groups} are not in the {where_}; its columns "
                f"are {cols}.{closest(absent_groups[0], cols)} Map a source column with "
                "columns={'name': 'SOURCE'} or leave the group out."
            )
        present = tuple(f for f in wanted if f in source.columns)
        before = len(problems.items)
        for f in present:
            _, found = _counts(source, (f,), source_role, whole=f in COUNT_FIELDS)
            for msg in found:
                problems.add(msg)
        weight_ok = by in present and len(problems.items) == before
        if weight_ok and pop is None:
            total = float(pd.to_numeric(source[by]).sum())
            if total <= 0:
                problems.add(
                    f"the total of {by!r} on `{source_role}` is {total:g}: there is "
                    "nothing to balance. Give population (population=...) or choose "
                    "another by=."
                )
            elif _is_number(target) and target > total:
                problems.add(
                    f"target {target:g} is above the total of {by!r} ({total:g}): the "
                    "area would not make even one grid. Lower the target (e.g. "
                    f"{max(1, total / 10):.0f})."
                )

    # CRSs: one for all, or reprojected and said (refused in strict mode)
    main_gdf = usable.get(main_role)
    if main_gdf is not None and main_gdf.crs is not None:
        for role, gdf in usable.items():
            if role == main_role or gdf.crs is None or gdf.crs.equals(main_gdf.crs):
                continue
            text = (f"`{role}` is in {gdf.crs.to_string()} but `{main_role}` in "
                    f"{main_gdf.crs.to_string()}")
            if strict:
                problems.add(
                    f"{text}; strict mode does not reproject. Reproject it first "
                    f"(e.g. {role}.to_crs({main_role}.crs), ogr2ogr -t_srs) or leave "
                    "strict mode.", crs=True)
            else:
                notes.append(f"{text}; it was reprojected to the CRS of `{main_role}`.")

    # where the layers lie against each other (only when their CRSs are known)
    outside: list[int] = []
    crs_known = all(g.crs is not None for g in usable.values())
    if crs_known and main_gdf is not None:
        crs = main_gdf.crs
        pts = shapely.point_on_surface(np.asarray(main_gdf.geometry.values))
        bnd = usable.get("boundaries")
        if bnd is not None:
            union = shapely.union_all(shapely.make_valid(
                np.asarray(bnd.to_crs(crs).geometry.values)))
            out_mask = ~shapely.intersects(pts, union)
            outside = np.flatnonzero(out_mask).tolist()
            if outside:
                text = (f"`{main_role}` has {where(main_gdf, out_mask, ids)} outside "
                        "every community boundary")
                if strict:
                    problems.add(
                        f"{text}. Extend the boundaries to cover them, drop those rows, "
                        "or leave strict mode to put each in the nearest block.")
                else:
                    notes.append(f"{text}; each was put in the nearest block of the "
                                 "nearest community.")
        st_ = usable.get("streets")
        if st_ is not None and main_role == "buildings" and len(main_gdf) > 1:
            _check_streets_enclose(main_gdf, st_.to_crs(crs), pts, problems, notes,
                                   strict=strict)
    problems.raise_if_any()
    for note in notes:
        warnings.warn(note, GridmapWarning, stacklevel=3)
    return Inputs(layers=layers, notes=notes, outside=outside)


def _check_streets_enclose(bld: gpd.GeoDataFrame, st_: gpd.GeoDataFrame, pts: np.ndarray,
                           problems: Problems, notes: list[str], *, strict: bool) -> None:
    """Streets far from every building, or closing no face around any building."""
    lines = shapely.get_parts(np.asarray(st_.geometry.values))
    lines = lines[~(shapely.is_missing(lines) | shapely.is_empty(lines))]
    if not len(lines):
        return
    x0, y0, x1, y1 = bld.total_bounds
    sx0, sy0, sx1, sy1 = shapely.total_bounds(lines)
    span = max(x1 - x0, y1 - y0, sx1 - sx0, sy1 - sy0)
    # the buildings' extent widened by the larger layer's size: streets beyond it
    # cannot be theirs
    extent = shapely.box(x0 - span, y0 - span, x1 + span, y1 + span)
    if not shapely.intersects(extent, lines).any():
        problems.add(
            f"`streets` do not reach the buildings: none of its {len(st_)} row(s) comes "
            "near the buildings' extent. Check that both layers cover the same place "
            "and that their CRSs are right (a layer with a wrong .prj lands elsewhere).")
        return
    grid = 1e-9 if st_.crs is not None and st_.crs.is_geographic else 1e-4
    faces = planar_faces(lines, grid_size=grid)
    if len(faces) and shapely.STRtree(faces).query(pts, predicate="within")[1].size:
        return
    rows = f"{len(st_)} row{'s' if len(st_) != 1 else ''}"
    text = (f"`streets` enclose no block: no building lies in a block closed by its "
            f"{rows} (lines that do not meet, or only a few roads)")
    if strict:
        problems.add(f"{text}. Give the street centre-lines of the whole area, meeting "
                     "at the intersections, or leave strict mode to have the blocks "
                     "closed by the edge of the area.")
    else:
        notes.append(f"{text}; the blocks are closed by the edge of the area and grids "
                     "may be cut between buildings rather than along streets.")


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float, np.number)) and not isinstance(x, bool) \
        and bool(np.isfinite(x))
