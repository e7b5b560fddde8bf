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
import pyproj
import shapely

from ._errors import CRSMismatchError, GridmapWarning, LayerValidationError
from .options import UNIT_MEASURES
from .units import planar_faces

__all__ = [
    "AREA_OF_USE_MARGIN",
    "GAP_MIN_AREA",
    "MAX_EXTENT",
    "OVERLAP_MIN_AREA",
    "OVERLAP_MIN_SHARE",
    "Inputs",
    "Problems",
    "check_layer",
    "check_params",
    "validate_inputs",
]

#: the widest a layer of buildings or units may be, in metres (200 km): a
#: city district is a few kilometres across, a large city under 100 km; a layer
#: wider than this holds a stray feature or a wrong coordinate
MAX_EXTENT = 200_000.0
#: degrees a projected layer may lie beyond its CRS's area of use before it is
#: refused: a city in the next UTM or Gauss-Krüger zone, or a made-up layer near
#: the CRS's false origin, is fine; coordinates shifted by a wrong false easting
#: or in another CRS altogether are much farther (or no place at all)
AREA_OF_USE_MARGIN = 30.0
#: an overlap of two community boundaries smaller than this (m²), or than
#: :data:`OVERLAP_MIN_SHARE` of the smaller community, is a digitising sliver
#: and is ignored
OVERLAP_MIN_AREA = 1.0
#: ... or than this share of the smaller of the two communities (0.01 %)
OVERLAP_MIN_SHARE = 1e-4
#: a gap between community boundaries (a hole in their union) is reported when
#: it holds a building or (m²) is at least this large
GAP_MIN_AREA = 1000.0

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
        polys = ([p for p in g.geoms if p.geom_type in ("Polygon", "MultiPolygon")]
                 if g.geom_type == "GeometryCollection" else [])
        parts.append(shapely.union_all(polys) if polys else g)
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
_GEOMETRY: dict[str, str | tuple[str, ...]] = {
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
    #: per layer, the ids (else row labels) of the rows dropped for having no
    #: geometry; they are in no later step and not in the plan
    dropped: dict[str, list[Any]] = field(default_factory=dict)


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


def _labels(gdf: gpd.GeoDataFrame, role: str, id_column: str | None,
            columns: Mapping[str, str] | None) -> pd.Series | None:
    """The column naming a layer's rows in messages (ids, community ids), if any.

    Taken before the columns are renamed, so a canonical name is looked up under
    its source name in ``columns``.
    """
    name = {"buildings": id_column or "id", "units": id_column or "id",
            "boundaries": "community_id", "compounds": "compound_id"}.get(role)
    if name is None:
        return None
    for col in ((columns or {}).get(name, name), name):
        if col in gdf.columns:
            return gdf[col]
    return None


def _xy(x: float, y: float) -> str:
    """``"(121.4855, 31.2399)"``: a coordinate pair as a user would type it."""
    return f"({float(x):.10g}, {float(y):.10g})"


def _drop_missing(gdf: gpd.GeoDataFrame, role: str, problems: Problems,
                  notes: list[str], *, strict: bool, ids: pd.Series | None,
                  weight: str | None, by: str) -> tuple[gpd.GeoDataFrame, list[Any]]:
    """Rows with no geometry (None or empty): refused in strict mode, else dropped.

    Returns the layer without them and their ids (row labels when there are no
    ids); nothing is dropped in strict mode, where they are a problem.
    """
    geoms = np.asarray(gdf.geometry.values)
    gone = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if not gone.any():
        return gdf, []
    rows = where(gdf, gone, ids)
    if strict:
        problems.add(
            f"`{role}` has no geometry (None or empty) in {rows}. Give them their "
            f"geometry or drop them (e.g. {role}[{role}.geometry.notna() & "
            f"~{role}.geometry.is_empty]), or leave strict mode to have gridmap drop "
            "them.")
        return gdf, []
    held = ""
    if weight is not None and weight in gdf.columns:
        lost = pd.to_numeric(gdf[weight][gone], errors="coerce").sum()
        held = f", holding {lost:g} {by}"
    notes.append(
        f"`{role}` has no geometry (None or empty) in {rows}{held}; they were dropped "
        f"and are not in the plan ({int((~gone).sum())} of {len(gdf)} rows kept). Give "
        "them their geometry to include them; use strict=True (--strict) to refuse "
        "them instead.")
    labels = (ids if ids is not None else gdf.index.to_series())[gone]
    return gdf[~gone], [_plain(v) for v in labels]


def _check_coordinates(gdf: gpd.GeoDataFrame, role: str, problems: Problems,
                       ids: pd.Series | None) -> bool:
    """Coordinates that are no place on Earth in the layer's CRS; False if any.

    A geographic CRS needs longitudes within ±180 and latitudes within ±90 (a
    likely swap of the two is said); a projected CRS needs coordinates that
    transform to longitude/latitude and back, within
    :data:`AREA_OF_USE_MARGIN` degrees of its area of use.
    """
    if gdf.crs is None:
        return True
    crs = pyproj.CRS.from_user_input(gdf.crs)
    geoms = np.asarray(gdf.geometry.values)
    b = shapely.bounds(geoms)
    present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    finite = np.isfinite(b).all(axis=1)
    name = crs.to_string()
    if crs.is_geographic:
        bad = present & (~finite | (np.abs(b[:, [0, 2]]) > 180).any(axis=1)
                         | (np.abs(b[:, [1, 3]]) > 90).any(axis=1))
        if not bad.any():
            return True
        k = int(np.flatnonzero(bad)[0])
        x, y = shapely.get_coordinates(geoms[k])[0]
        seen = b[bad]
        if (np.abs(seen[:, [0, 2]]) <= 90).all() and (np.abs(seen[:, [1, 3]]) <= 180).all():
            hint = (f"; longitude and latitude may be swapped (read the other way, the "
                    f"sample is longitude {y:.10g}, latitude {x:.10g}). Swap x and y, x "
                    "being the longitude (QGIS: Swap X and Y coordinates; "
                    "shapely.transform(geoms, lambda c: c[:, ::-1]))")
        elif (np.abs(seen[np.isfinite(seen)]) > 1000).any():
            hint = (". These look like metres of a projected CRS, so the CRS is wrong: "
                    "set the one the coordinates are in with gdf.set_crs(..., "
                    "allow_override=True) (for a shapefile, fix its .prj)")
        else:
            hint = (". Fix those coordinates, or set the CRS they are in with "
                    "gdf.set_crs(..., allow_override=True)")
        problems.add(
            f"`{role}` has coordinates outside the range of its geographic CRS {name} "
            f"(longitude -180 to 180, latitude -90 to 90) in {where(gdf, bad, ids)}: "
            f"e.g. {_xy(x, y)}{hint}.")
        return False
    if not crs.is_projected:
        return True
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    lon = np.full(len(b), np.nan)
    lat = np.full(len(b), np.nan)
    ok = present & finite
    try:
        to_deg = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
        lon[ok], lat[ok] = to_deg.transform(cx[ok], cy[ok], errcheck=False)
        back_x, back_y = to_deg.transform(lon, lat, direction="INVERSE", errcheck=False)
    except pyproj.exceptions.ProjError:  # a CRS with no way to longitude/latitude
        return True
    with np.errstate(invalid="ignore"):
        off = np.hypot(np.asarray(back_x) - cx, np.asarray(back_y) - cy)
        bad = present & ~(np.isfinite(lon) & np.isfinite(lat) & (np.abs(lon) <= 180)
                          & (np.abs(lat) <= 90) & (off < 1.0))
        area = crs.area_of_use
        if area is not None:
            m = AREA_OF_USE_MARGIN
            if area.west <= area.east:
                in_lon = (lon >= area.west - m) & (lon <= area.east + m)
            else:  # across the antimeridian
                in_lon = (lon >= area.west - m) | (lon <= area.east + m)
            bad |= present & ~bad & ~(in_lon & (lat >= area.south - m)
                                      & (lat <= area.north + m))
    if not bad.any():
        return True
    k = int(np.flatnonzero(bad)[0])
    x, y = shapely.get_coordinates(geoms[k])[0]
    defined = ""
    if area is not None:
        defined = (f", defined for {area.west:g}° to {area.east:g}° longitude, "
                   f"{area.south:g}° to {area.north:g}° latitude")
    placed = (f"longitude {lon[k]:.6g}, latitude {lat[k]:.6g}"
              if np.isfinite(lon[k]) and np.isfinite(lat[k]) else "no place on Earth")
    problems.add(
        f"`{role}` has coordinates far outside the area of its CRS {name} "
        f"({crs.name}{defined}) in {where(gdf, bad, ids)}: e.g. {_xy(x, y)}, which is "
        f"{placed}. The coordinates or the CRS are wrong: set the CRS they are in with "
        "gdf.set_crs(..., allow_override=True) (for a shapefile, fix its .prj), e.g. a "
        "Gauss-Krüger zone with the zone number in front of the easting (EPSG:4513-4533) "
        "or without (EPSG:4534-4554).")
    return False


def _check_extent(gdf: gpd.GeoDataFrame, role: str, problems: Problems,
                  ids: pd.Series | None) -> bool:
    """A layer wider than :data:`MAX_EXTENT` metres: refused; False if so.

    Measured in metres, geodesically for a geographic CRS.  The rows named are
    those more than half of it from the layer's median point (else the farthest).
    """
    if gdf.crs is None:
        return True
    crs = pyproj.CRS.from_user_input(gdf.crs)
    b = shapely.bounds(np.asarray(gdf.geometry.values))
    ok = np.isfinite(b).all(axis=1)
    if ok.sum() < 2:
        return True
    x0, y0 = b[ok, 0].min(), b[ok, 1].min()
    x1, y1 = b[ok, 2].max(), b[ok, 3].max()
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    mx, my = float(np.median(cx[ok])), float(np.median(cy[ok]))
    dist = np.full(len(b), np.nan)
    if crs.is_geographic:
        geod = crs.get_geod() or pyproj.Geod(ellps="WGS84")
        xm, ym = (x0 + x1) / 2, (y0 + y1) / 2
        width = geod.inv(x0, ym, xm, ym)[2] + geod.inv(xm, ym, x1, ym)[2]
        height = geod.inv(xm, y0, xm, y1)[2]
        n = int(ok.sum())
        dist[ok] = geod.inv(np.full(n, mx), np.full(n, my), cx[ok], cy[ok])[2]
    elif crs.is_projected:
        f = crs.axis_info[0].unit_conversion_factor
        width, height = (x1 - x0) * f, (y1 - y0) * f
        dist[ok] = np.hypot(cx[ok] - mx, cy[ok] - my) * f
    else:
        return True
    if max(width, height) <= MAX_EXTENT:
        return True
    far = ok & (np.nan_to_num(dist) > MAX_EXTENT / 2)
    if not far.any():
        far = np.zeros(len(b), dtype=bool)
        far[np.argsort(-np.nan_to_num(dist))[:5]] = True
    k = int(np.nanargmax(dist))
    label = _plain((ids if ids is not None else gdf.index.to_series()).iloc[k])
    verb = "lies" if far.sum() == 1 else "lie"
    problems.add(
        f"`{role}` spans {width / 1000:,.1f} km × {height / 1000:,.1f} km, more than "
        f"the {MAX_EXTENT / 1000:g} km a city's layer can span: {where(gdf, far, ids)} "
        f"{verb} more than {MAX_EXTENT / 2000:g} km from the layer's median point "
        f"{_xy(mx, my)}, the farthest ({label!r}) {dist[k] / 1000:,.1f} km away at "
        f"{_xy(cx[k], cy[k])}. Drop or fix those rows (a mistyped coordinate, a feature "
        "of another place) or check the CRS; a larger area is delineated in parts "
        "(e.g. one run per sub-district).")
    return False


def _check_boundaries(bnd: gpd.GeoDataFrame, main: gpd.GeoDataFrame, main_role: str,
                      problems: Problems, notes: list[str], *, allow_overlaps: bool,
                      bnd_ids: pd.Series | None, main_ids: Iterable | None) -> None:
    """Community boundaries that overlap (refused unless allowed), and gaps between them.

    Gaps are looked for inside the area, and said.

    Overlaps under :data:`OVERLAP_MIN_AREA` m² or :data:`OVERLAP_MIN_SHARE` of the
    smaller community are slivers and ignored; a gap (a hole in the union of the
    boundaries) is said when it holds a building or covers :data:`GAP_MIN_AREA` m².
    Areas are in m², in the metric CRS gridmap works in; places in the CRS of
    ``boundaries``.
    """
    from . import io as gio

    try:
        work = gio.metric_crs(main)
    except Exception:  # noqa: BLE001 - the CRS checks have said what is wrong
        return
    geoms = np.asarray(shapely.make_valid(np.asarray(bnd.to_crs(work).geometry.values)))
    present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    labels = [_plain(v) for v in (bnd_ids if bnd_ids is not None else bnd.index)]

    def place(gs: np.ndarray) -> list[str]:
        pts = gpd.GeoSeries(shapely.point_on_surface(gs), crs=work).to_crs(bnd.crs)
        return [_xy(p.x, p.y) for p in pts]

    # overlaps: every pair of communities that share more than a sliver
    i, j = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    pair = i < j
    i, j = i[pair], j[pair]
    if len(i):
        shared = shapely.intersection(geoms[i], geoms[j])
        a = shapely.area(shared)
        smaller = np.minimum(shapely.area(geoms[i]), shapely.area(geoms[j]))
        real = (a >= OVERLAP_MIN_AREA) & (a >= OVERLAP_MIN_SHARE * smaller)
        if real.any():
            top = np.flatnonzero(real)[np.argsort(-a[real], kind="stable")[:3]]
            at = place(shared[top])
            said = "; ".join(
                f"{labels[i[t]]!r} and {labels[j[t]]!r} share {a[t]:,.0f} m² "
                f"({a[t] / smaller[t]:.1%} of the smaller) around {p}"
                for t, p in zip(top, at, strict=True))
            n = int(real.sum())
            more = f"; … ({n} pairs in all)" if n > len(top) else ""
            text = (f"`boundaries` overlap: {n} pair{'s' if n != 1 else ''} of "
                    f"communities share land ({said}{more})")
            if allow_overlaps:
                notes.append(f"{text}; allowed (allow_overlaps=True): each overlap went "
                             "to the community listed first in `boundaries`.")
            else:
                problems.add(
                    f"{text}. Each place must be in one community: fix the boundaries "
                    "(QGIS: Topology Checker, 'must not overlap'; then Difference), or "
                    "pass allow_overlaps=True (--allow-overlaps) to give each overlap "
                    "to the community listed first.")
    # gaps: holes in the union of the boundaries, inside the area's outline
    union = shapely.union_all(geoms[present])
    polys = shapely.get_parts(union)
    polys = polys[shapely.get_type_id(polys) == 3]
    nr = shapely.get_num_interior_rings(polys)
    if not nr.sum():
        return
    k = np.arange(nr.sum()) - np.repeat(np.cumsum(nr) - nr, nr)
    holes = shapely.polygons(shapely.get_interior_ring(np.repeat(polys, nr), k))
    holes = shapely.difference(holes, union)  # a community inside a gap is no gap
    area = shapely.area(holes)
    mgeoms = np.asarray((main if main.crs.equals(work) else main.to_crs(work)).geometry.values)
    pi, hi = shapely.STRtree(holes).query(shapely.point_on_surface(mgeoms),
                                          predicate="within")
    held = np.bincount(hi, minlength=len(holes))
    shown = (area >= GAP_MIN_AREA) | (held > 0)
    if not shown.any():
        return
    top = np.flatnonzero(shown)[np.argsort(-area[shown], kind="stable")[:3]]
    said = "; ".join(
        f"{area[t]:,.0f} m² around {p}"
        + (f" with {held[t]} {main_role if held[t] != 1 else main_role[:-1]} in it"
           if held[t] else "")
        for t, p in zip(top, place(holes[top]), strict=True))
    n = int(shown.sum())
    more = f"; … ({n} gaps in all)" if n > len(top) else ""
    inside = np.zeros(len(mgeoms), dtype=bool)
    inside[pi] = True
    who = (f" The {main_role} in them ({where(main, inside, main_ids)}) go to the "
           "nearest community." if inside.any() else "")
    notes.append(
        f"`boundaries` leave {n} gap{'s' if n != 1 else ''} inside the area that no "
        f"community covers ({said}{more}).{who} If the land belongs to a community, "
        "close the gap in the boundaries (QGIS: Topology Checker, 'must not have "
        "gaps').")


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
    encoding: str | None = None,
    allow_overlaps: bool = False,
) -> Inputs:
    """Read every layer and check every input of :func:`gridmap.delineate` at once.

    Every problem found is collected and raised together in one
    :class:`~gridmap.LayerValidationError` (a :class:`~gridmap.CRSMismatchError`
    when the CRSs are the only problems).  What can be repaired without guessing
    (invalid polygons, rows with no geometry, layers in another CRS, buildings
    outside every community boundary, streets that enclose no block, a file's
    encoding) is repaired or worked around and reported in ``notes`` and as a
    :class:`~gridmap.GridmapWarning`, unless ``strict`` asks to refuse it.

    Parameters
    ----------
    sources
        The layers by role (``"buildings"``, ``"streets"``, ...): GeoDataFrames,
        paths or None.
    columns, id_column, by, target, tolerance, groups, street_column
        As for :func:`gridmap.delineate`.
    strict
        Refuse what would otherwise be repaired and reported.
    extra_fields
        Count fields checked when present (besides ``by`` and ``groups``).
    problems
        Problems found before, raised with these.
    encoding
        The text encoding of Shapefiles and CSVs (:func:`gridmap.io.read_layer`).
    allow_overlaps
        Allow community boundaries that overlap (each overlap goes to the
        community listed first), with a note, instead of refusing them.

    Returns
    -------
    Inputs
        The layers read and repaired, the notes, the buildings outside every
        boundary and the rows dropped.

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
    problems = problems if problems is not None else Problems()
    notes: list[str] = []
    layers, unread = _read_layers(sources, problems, notes, encoding=encoding,
                                  strict=strict)
    check_params(problems, target=target, tolerance=tolerance, by=by)
    _check_something_to_partition(layers, unread, problems)
    usable = _usable_layers(layers, problems)
    dropped = _drop_rows_without_geometry(layers, usable, problems, notes,
                                          strict=strict, by=by, id_column=id_column,
                                          columns=columns)
    _repair_invalid_polygons(layers, usable, problems, notes, strict=strict,
                             id_column=id_column, columns=columns)
    misplaced = _misplaced_layers(usable, problems, id_column=id_column,
                                  columns=columns)
    _closed_streets_as_lines(layers, usable)
    renamed = _renamed_layers(usable, columns, problems)
    main_role = "buildings" if "buildings" in renamed else "units"
    ids = None
    if renamed.get(main_role) is not None:
        ids = _check_ids(renamed[main_role], main_role, id_column, problems)
        _check_street_column(renamed, street_column, problems)
    if "population" not in unread:  # an unread layer's counts are not looked for
        _check_counts(renamed, main_role, problems, by=by, target=target,
                      groups=groups, extra_fields=extra_fields)
    _check_crs(usable, main_role, problems, notes, strict=strict)
    outside = _check_where_layers_lie(
        usable, main_role, misplaced, ids, problems, notes, strict=strict,
        allow_overlaps=allow_overlaps, id_column=id_column, columns=columns)
    problems.raise_if_any()
    for note in notes:
        warnings.warn(note, GridmapWarning, stacklevel=3)
    return Inputs(layers=layers, notes=notes, outside=outside, dropped=dropped)


# the steps of validate_inputs, in their order

def _read_layers(sources: Mapping[str, Any], problems: Problems, notes: list[str], *,
                 encoding: str | None, strict: bool
                 ) -> tuple[dict[str, gpd.GeoDataFrame | None], set[str]]:
    """Read every layer of ``sources`` (GeoDataFrames, paths or None) by role.

    In: the sources and the text ``encoding`` (checked first; a bad one is a
    problem and the files are read without it).  Out: every role's layer (None
    when not given or not readable) and the roles that could not be read (their
    problem is added); what reading repaired is added to ``notes``.
    """
    from . import io as gio

    layers: dict[str, gpd.GeoDataFrame | None] = {}
    unread: set[str] = set()
    try:
        if encoding is not None:
            gio._check_encoding(encoding)
    except LayerValidationError as exc:
        problems.add(str(exc))
        encoding = None
    for role in _ROLES:
        try:
            layers[role], read_notes = gio.read_layer_noted(
                sources.get(role), role=role, encoding=encoding, strict=strict)
            notes += read_notes
        except LayerValidationError as exc:
            problems.add(str(exc))
            layers[role] = None
            unread.add(role)
    return layers, unread


def _check_something_to_partition(layers: Mapping[str, gpd.GeoDataFrame | None],
                                  unread: set[str], problems: Problems) -> None:
    """A problem when neither buildings nor units were given (nor failed to read)."""
    if layers["buildings"] is None and layers["units"] is None \
            and not ({"buildings", "units"} & unread):
        problems.add("give `buildings` (footprints) or `units` (polygons to partition).")


def _usable_layers(layers: Mapping[str, gpd.GeoDataFrame | None],
                   problems: Problems) -> dict[str, gpd.GeoDataFrame]:
    """The layers given whose shape is right (:func:`check_layer` found nothing).

    In: every role's layer.  Out: those present, not empty, of the right
    geometry, with a CRS, by role; the problems of the others are added.
    """
    usable: dict[str, gpd.GeoDataFrame] = {}
    for role in _ROLES:
        gdf = layers[role]
        before = len(problems.items) + len(problems.crs_items)
        check_layer(gdf, role, problems, geometry=_GEOMETRY[role], required=False)
        if gdf is not None and len(problems.items) + len(problems.crs_items) == before:
            usable[role] = gdf
    return usable


def _drop_rows_without_geometry(layers: dict[str, gpd.GeoDataFrame | None],
                                usable: dict[str, gpd.GeoDataFrame], problems: Problems,
                                notes: list[str], *, strict: bool, by: str,
                                id_column: str | None,
                                columns: Mapping[str, str] | None
                                ) -> dict[str, list[Any]]:
    """Rows with no geometry: dropped and said, or refused in strict mode.

    In: the usable layers (updated in place in ``layers`` and ``usable``).  Out:
    per layer, the ids (else row labels) of the rows dropped; the ``by`` count
    they held is said for buildings, units and population.
    """
    dropped: dict[str, list[Any]] = {}
    weight = (columns or {}).get(by, by)
    for role, gdf in list(usable.items()):
        kept, gone = _drop_missing(
            gdf, role, problems, notes, strict=strict,
            ids=_labels(gdf, role, id_column, columns),
            weight=weight if role in ("buildings", "units", "population") else None, by=by)
        if gone:
            dropped[role] = gone
            layers[role] = usable[role] = kept
    return dropped


def _repair_invalid_polygons(layers: dict[str, gpd.GeoDataFrame | None],
                             usable: dict[str, gpd.GeoDataFrame], problems: Problems,
                             notes: list[str], *, strict: bool, id_column: str | None,
                             columns: Mapping[str, str] | None) -> None:
    """Invalid polygons of buildings, boundaries, compounds, sites and units.

    They are repaired and said (updated in place in ``layers`` and ``usable``), or
    refused in strict mode.
    """
    for role in ("buildings", "boundaries", "compounds", "sites", "units"):
        gdf = usable.get(role)
        if gdf is not None:
            layers[role] = usable[role] = _check_polygons(
                gdf, role, problems, notes, strict=strict,
                ids=_labels(gdf, role, id_column, columns))


def _misplaced_layers(usable: Mapping[str, gpd.GeoDataFrame], problems: Problems, *,
                      id_column: str | None,
                      columns: Mapping[str, str] | None) -> set[str]:
    """The layers with coordinates that are no place on Earth in their CRS.

    And the buildings or units wider than a city's extent (:data:`MAX_EXTENT`).

    In: the usable layers.  Out: the roles refused (their problems are added);
    later checks of where the layers lie leave them out.
    """
    misplaced = {role for role, gdf in usable.items()
                 if not _check_coordinates(gdf, role, problems,
                                           _labels(gdf, role, id_column, columns))}
    for role in ("buildings", "units"):
        gdf = usable.get(role)
        if gdf is not None and role not in misplaced and not _check_extent(
                gdf, role, problems, _labels(gdf, role, id_column, columns)):
            misplaced.add(role)
    return misplaced


def _closed_streets_as_lines(layers: dict[str, gpd.GeoDataFrame | None],
                             usable: dict[str, gpd.GeoDataFrame]) -> None:
    """Streets drawn as closed rings become LineStrings (a closed line is a street too).

    Updated in place in ``layers`` and ``usable``.
    """
    streets = usable.get("streets")
    if streets is None:
        return
    rings = (streets.geometry.geom_type == "LinearRing").to_numpy()
    if rings.any():
        streets = streets.copy()
        col = streets.geometry.name
        streets.loc[rings, col] = [shapely.LineString(g.coords)
                                   for g in streets.geometry[rings]]
        layers["streets"] = usable["streets"] = streets


def _renamed_layers(usable: Mapping[str, gpd.GeoDataFrame],
                    columns: Mapping[str, str] | None,
                    problems: Problems) -> dict[str, gpd.GeoDataFrame]:
    """The usable layers with their columns renamed to gridmap's names.

    In: the layers and ``columns`` (canonical name -> source name); a source
    name that no layer has is a typo and a problem.  Out: the renamed layers by
    role.
    """
    from . import io as gio

    everything = {c for g in usable.values() for c in _columns(g)}
    for canonical, source in (columns or {}).items():
        if source not in everything:
            problems.add(
                f"columns={{{canonical!r}: {source!r}}}: no layer has a column {source!r}."
                f"{closest(source, everything)} The layers' columns are "
                f"{sorted(everything)}."
            )
    return {r: gio.rename_columns(g, dict(columns) if columns else None, role=r)
            for r, g in usable.items()}


def _check_ids(main: gpd.GeoDataFrame, main_role: str, id_column: str | None,
               problems: Problems) -> list[Any] | None:
    """The ids of the buildings (or units): their column there, unique, none empty.

    In: the renamed buildings (or units) and ``id_column`` (default ``"id"``
    when there is one).  Out: the ids in row order, None without an id column.
    """
    cols = _columns(main)
    col = id_column if id_column else ("id" if "id" in main.columns else None)
    if id_column and id_column not in main.columns:
        problems.add(
            f"`{main_role}` has no id column {id_column!r} (id_column=, --id-column)."
            f"{closest(id_column, cols)} Its columns are {cols}."
        )
        col = None
    if col is None:
        return None
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
    return ids


def _check_street_column(renamed: Mapping[str, gpd.GeoDataFrame],
                         street_column: str | None, problems: Problems) -> None:
    """The streets' class column (``street_column``) is there, when both are given."""
    if street_column and "streets" in renamed \
            and street_column not in renamed["streets"].columns:
        scol = _columns(renamed["streets"])
        problems.add(
            f"`streets` has no class column {street_column!r} (street_column=)."
            f"{closest(street_column, scol)} Its columns are {scol}."
        )


def _check_counts(renamed: Mapping[str, gpd.GeoDataFrame], main_role: str,
                  problems: Problems, *, by: str, target: Any, groups: Iterable[str],
                  extra_fields: Iterable[str]) -> None:
    """The counts: where they come from, and that they are counts.

    In: the renamed layers; the counts are read from the population layer when
    there is one, else from the buildings (or units).  The balance field ``by``
    (unless it is estimated or the workload), the group columns and the count
    fields present must be whole, non-negative numbers; without a population
    layer the total of ``by`` must be positive and reach the ``target``.  Out:
    nothing; the problems are added.
    """
    from .population import _counts

    pop = renamed.get("population")
    main = renamed.get(main_role)
    # the workload is worked out from the counts, and a unit's area from its shape
    on_workload = by == "workload" or by in UNIT_MEASURES
    wanted = tuple(dict.fromkeys((*_ESTIMABLE, *(() if on_workload else (by,)),
                                  *extra_fields, *groups)))
    source_role = "population" if pop is not None else main_role
    source = pop if pop is not None else main
    if source is None:
        return
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


def _check_crs(usable: Mapping[str, gpd.GeoDataFrame], main_role: str,
               problems: Problems, notes: list[str], *, strict: bool) -> None:
    """CRSs: one for all, or reprojected to that of the buildings (or units).

    A reprojection is said (refused in strict mode).
    """
    main_gdf = usable.get(main_role)
    if main_gdf is None or main_gdf.crs is None:
        return
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


def _check_where_layers_lie(usable: Mapping[str, gpd.GeoDataFrame], main_role: str,
                            misplaced: set[str], ids: list[Any] | None,
                            problems: Problems, notes: list[str], *, strict: bool,
                            allow_overlaps: bool, id_column: str | None,
                            columns: Mapping[str, str] | None) -> list[int]:
    """Where the layers lie against each other.

    Only when their CRSs are known and their coordinates are places.

    The community boundaries: overlaps and gaps, and the buildings (or units)
    outside every community; the streets: far from the buildings or enclosing
    none.  Out: the positions of the buildings (or units) outside every community
    boundary.
    """
    main_gdf = usable.get(main_role)
    crs_known = all(g.crs is not None for g in usable.values())
    if not crs_known or main_gdf is None or main_role in misplaced:
        return []
    outside: list[int] = []
    pts = shapely.point_on_surface(np.asarray(main_gdf.geometry.values))
    boundaries = usable.get("boundaries")
    if boundaries is not None and "boundaries" not in misplaced:
        _check_boundaries(
            boundaries, main_gdf, main_role, problems, notes,
            allow_overlaps=allow_overlaps,
            bnd_ids=_labels(boundaries, "boundaries", id_column, columns), main_ids=ids)
        outside = _outside_every_community(main_gdf, main_role, boundaries, pts, ids,
                                           problems, notes, strict=strict)
    streets = usable.get("streets")
    if streets is not None and main_role == "buildings" and len(main_gdf) > 1 \
            and "streets" not in misplaced:
        _check_streets_enclose(main_gdf, streets.to_crs(main_gdf.crs), pts, problems,
                               notes, strict=strict)
    return outside


def _outside_every_community(main: gpd.GeoDataFrame, main_role: str,
                             boundaries: gpd.GeoDataFrame, pts: np.ndarray,
                             ids: list[Any] | None, problems: Problems,
                             notes: list[str], *, strict: bool) -> list[int]:
    """The buildings (or units) whose point on surface ``pts`` lies in no community.

    They are said (each goes to the nearest block), or refused in strict mode.

    Out: their positions.
    """
    union = shapely.union_all(shapely.make_valid(
        np.asarray(boundaries.to_crs(main.crs).geometry.values)))
    out_mask = ~shapely.intersects(pts, union)
    outside = np.flatnonzero(out_mask).tolist()
    if outside:
        text = (f"`{main_role}` has {where(main, out_mask, ids)} outside "
                "every community boundary")
        if strict:
            problems.add(
                f"{text}. Extend the boundaries to cover them, drop those rows, "
                "or leave strict mode to put each in the nearest block.")
        else:
            notes.append(f"{text}; each was put in the nearest block of the "
                         "nearest community.")
    return outside


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
