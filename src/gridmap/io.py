"""Reading input layers and bringing them to canonical names and a metric CRS.

Layers come from any file GDAL reads (GeoPackage, GeoJSON, Shapefile, OSM
``.pbf``/``.osm``), from GeoParquet, or as GeoDataFrames.  Source column names are
mapped to gridmap's canonical names by the user (``columns={"canonical": "source"}``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Union

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj

from ._errors import CRSMismatchError, LayerValidationError

__all__ = [
    "CANONICAL_COLUMNS",
    "LayerSource",
    "metric_crs",
    "read_layer",
    "to_metric",
    "rename_columns",
]

LayerSource = Union[str, os.PathLike, gpd.GeoDataFrame]

#: canonical column names a user may map source columns onto
CANONICAL_COLUMNS = (
    "building_id",
    "unit_id",
    "households",
    "pop_actual",
    "pop_registered",
    "pop_floating",
    "pop_absent",
    "levels",
    "height",
    "building",
    "street_class",
    "community_id",
    "subdistrict_id",
    "compound_id",
)

_OSM_SUFFIXES = (".pbf", ".osm")
_PARQUET_SUFFIXES = (".parquet", ".geoparquet", ".pq")
_OSM_TAG_RE = re.compile(r'"([^"]+)"=>"((?:[^"\\]|\\.)*)"')

# which columns of OSM's other_tags to lift into columns, per role
_OSM_TAGS = ("building:levels", "height", "building:height", "name:zh", "addr:street")


def _split_layer(source: str) -> tuple[str, str | None]:
    """Split ``path#layer`` into its parts (``#`` is rare in paths)."""
    if "#" in source and not os.path.exists(source):
        path, layer = source.rsplit("#", 1)
        return path, layer or None
    return source, None


def _unescape(value: str) -> str:
    """Undo GDAL's hstore escaping of quotes and backslashes in a tag value."""
    return re.sub(r"\\(.)", r"\1", value)


def _parse_other_tags(values: pd.Series, keys: tuple[str, ...]) -> pd.DataFrame:
    out: dict[str, list[Any]] = {k: [] for k in keys}
    for text in values.fillna(""):
        tags = (
            {k: _unescape(v) for k, v in _OSM_TAG_RE.findall(text)} if text else {}
        )
        for k in keys:
            out[k].append(tags.get(k))
    return pd.DataFrame(out, index=values.index)


def _read_osm(path: str, role: str) -> gpd.GeoDataFrame:
    """Read buildings or streets out of an OSM extract with GDAL's OSM driver."""
    os.environ.setdefault("OSM_USE_CUSTOM_INDEXING", "NO")
    if role in ("streets",):
        gdf = gpd.read_file(path, layer="lines", engine="pyogrio")
        cls = gdf.get("highway")
        rail = gdf.get("railway")
        water = gdf.get("waterway")
        street_class = cls.copy() if cls is not None else pd.Series(None, index=gdf.index)
        if rail is not None:
            street_class = street_class.fillna(rail.where(rail.notna(), None).map(
                lambda v: "railway" if v in ("rail", "light_rail", "tram", "narrow_gauge")
                else ("subway" if v == "subway" else None)))
        if water is not None:
            street_class = street_class.fillna(water.map(
                lambda v: "river" if v in ("river", "canal") else None))
        gdf = gdf.assign(highway=street_class)
        gdf = gdf[gdf["highway"].notna()]
        tags = _parse_other_tags(gdf["other_tags"], ("tunnel", "bridge", "name:zh"))
        gdf = pd.concat([gdf.drop(columns=["other_tags"]), tags], axis=1)
    else:
        gdf = gpd.read_file(path, layer="multipolygons", engine="pyogrio")
        if role == "buildings":
            gdf = gdf[gdf["building"].notna()]
        tags = _parse_other_tags(gdf["other_tags"], _OSM_TAGS)
        gdf = pd.concat([gdf.drop(columns=["other_tags"]), tags], axis=1)
        gdf["id"] = gdf["osm_id"].fillna(gdf["osm_way_id"].map(lambda v: f"w{v}"))
    return gpd.GeoDataFrame(gdf, geometry="geometry").reset_index(drop=True)


def read_layer(
    source: LayerSource | None,
    *,
    role: str,
    layer: str | None = None,
) -> gpd.GeoDataFrame | None:
    """Read one input layer from a file or take a copy of a GeoDataFrame.

    Parameters
    ----------
    source
        A GeoDataFrame, or the path of a file GDAL can read, or a GeoParquet file.
        ``PATH#LAYER`` picks a layer of a multi-layer file.  OSM extracts
        (``.osm.pbf``, ``.osm``) give their buildings or their streets (lines with
        a ``highway``, plus railways and rivers) depending on ``role``.
    role
        What the layer is for (``"buildings"``, ``"streets"``, ``"population"``,
        ``"boundaries"``, ``"compounds"``, ``"units"``): used to pick a layer of a
        multi-layer file by name and in error messages.
    layer
        Layer name; overrides ``PATH#LAYER``.

    Returns
    -------
    geopandas.GeoDataFrame or None
        A new frame (the input is never modified), or None when ``source`` is None.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> gdf = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 1, 1)], crs=32651)
    >>> read_layer(gdf, role="buildings") is gdf
    False
    """
    if source is None:
        return None
    if isinstance(source, gpd.GeoDataFrame):
        return source.copy()
    if isinstance(source, (pd.DataFrame, gpd.GeoSeries)):
        if isinstance(source, gpd.GeoSeries):
            return gpd.GeoDataFrame(geometry=source.copy())
        msg = (
            f"`{role}` is a pandas DataFrame without geometry; pass a GeoDataFrame "
            "(e.g. geopandas.GeoDataFrame(df, geometry=geopandas.points_from_xy(...), "
            "crs=...)) or a file path."
        )
        raise LayerValidationError(msg)
    if not isinstance(source, (str, os.PathLike)):
        msg = (
            f"`{role}` must be a GeoDataFrame or a file path, got "
            f"{type(source).__name__}."
        )
        raise LayerValidationError(msg)
    path, inline_layer = _split_layer(os.fspath(source))
    layer = layer or inline_layer
    if not os.path.exists(path):
        msg = (
            f"`{role}` file not found: {path!r}. Check the path "
            f"(current directory: {os.getcwd()})."
        )
        raise LayerValidationError(msg)
    suffix = "".join(Path(path).suffixes[-2:]).lower()
    try:
        if suffix.endswith(_PARQUET_SUFFIXES):
            return gpd.read_parquet(path)
        if suffix.endswith(_OSM_SUFFIXES):
            return _read_osm(path, role)
        if layer is None:
            import pyogrio

            names = [str(n) for n in pyogrio.list_layers(path)[:, 0]]
            if role in names:
                layer = role
            elif len(names) > 1:
                msg = (
                    f"`{role}` file {path!r} has {len(names)} layers {names}; name "
                    f"one with PATH#LAYER (e.g. {path}#{names[0]})."
                )
                raise LayerValidationError(msg)
        return gpd.read_file(path, layer=layer, engine="pyogrio")
    except LayerValidationError:
        raise
    except Exception as exc:  # GDAL/arrow errors become one clear message
        msg = f"`{role}` file {path!r} could not be read: {exc}"
        raise LayerValidationError(msg) from exc


def rename_columns(
    gdf: gpd.GeoDataFrame, columns: dict[str, str] | None, *, role: str
) -> gpd.GeoDataFrame:
    """Rename source columns to canonical names (``{"canonical": "source"}``).

    Only the columns of ``columns`` present in ``gdf`` are renamed; a source name
    missing from the layer is an error that lists the columns there are.  A
    canonical name already present is kept under ``<name>_source``.
    """
    if not columns:
        return gdf
    rename = {
        source: canonical
        for canonical, source in columns.items()
        if source != canonical and source in gdf.columns
    }
    if not rename:
        return gdf
    # a canonical name already there, and not itself renamed, is kept aside
    clash = {
        c: f"{c}_source"
        for c in rename.values()
        if c in gdf.columns and c not in rename
    }
    return gdf.rename(columns={**clash, **rename})


def _is_metric(crs: pyproj.CRS) -> bool:
    if not crs.is_projected:
        return False
    units = {ax.unit_name for ax in crs.axis_info}
    return units <= {"metre", "meter", "m"}


def metric_crs(gdf: gpd.GeoDataFrame, crs: Any = "auto") -> pyproj.CRS:
    """Choose the metric CRS that gridmap works in.

    A projected CRS in metres is kept.  CGCS2000 (EPSG:4490) coordinates get the
    CGCS2000 3-degree Gauss-Krüger zone of their centre (EPSG:4534-4554), other
    geographic coordinates the UTM zone of their centre.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> g = gpd.GeoDataFrame(geometry=[shapely.Point(121.49, 31.24)], crs=4490)
    >>> metric_crs(g).name
    'CGCS2000 / 3-degree Gauss-Kruger CM 120E'
    """
    if crs is not None and not (isinstance(crs, str) and crs == "auto"):
        out = pyproj.CRS.from_user_input(crs)
        if not _is_metric(out):
            msg = (
                f"crs={crs!r} is not a projected CRS in metres; give one (e.g. a UTM "
                "or Gauss-Krüger EPSG code) or crs='auto'."
            )
            raise CRSMismatchError(msg)
        return out
    src = pyproj.CRS.from_user_input(gdf.crs)
    if _is_metric(src):
        return src
    bounds = gdf.to_crs(4326).total_bounds
    lon = float((bounds[0] + bounds[2]) / 2)
    datum = src.datum.name if src.datum else ""
    is_cgcs = src.to_epsg() == 4490 or datum in (
        "China 2000",
        "China Geodetic Coordinate System 2000",
        "D_China_2000",
    )
    if is_cgcs and 73.5 <= lon <= 136.5:
        cm = int(np.clip(round(lon / 3) * 3, 75, 135))
        return pyproj.CRS.from_epsg(4534 + (cm - 75) // 3)
    return gdf.estimate_utm_crs()


def to_metric(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``gdf`` in the metric CRS :func:`metric_crs` picks (itself when already metric)."""
    crs = metric_crs(gdf)
    return gdf if gdf.crs is not None and crs.equals(gdf.crs) else gdf.to_crs(crs)
