"""Checks of the input layers, run once at the public boundary.

Every problem is collected and raised together, each message naming the layer,
the rows, the value seen and the fix.
"""

from __future__ import annotations

from collections.abc import Iterable

import geopandas as gpd
import numpy as np
import shapely

from ._errors import CRSMismatchError, LayerValidationError

__all__ = ["Problems", "check_layer", "check_params"]

_GEOM_FAMILY = {
    "polygon": ("Polygon", "MultiPolygon"),
    "line": ("LineString", "MultiLineString"),
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
            f"are {there}. Map yours with columns={{'{absent[0]}': 'your_column'}}."
        )


def check_params(
    problems: Problems, *, target: float, tolerance: float, by: str
) -> None:
    """Check the partition parameters."""
    if not isinstance(target, (int, float, np.number)) or not np.isfinite(target) or target <= 0:
        problems.add(
            f"target must be a positive number of {by} per grid (e.g. 300), got {target!r}."
        )
    if not isinstance(tolerance, (int, float, np.number)) or not 0 < tolerance < 1:
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
