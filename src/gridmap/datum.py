"""The web-map datums of China: GCJ-02 (AMap, Tencent) and BD-09 (Baidu).

Data traced from AMap or Tencent maps is in GCJ-02, from Baidu maps in BD-09:
longitude/latitude offset from WGS84 by a published, non-linear formula (a few
hundred metres).  gridmap works in WGS84 (and a metric CRS made from it):
layers in such a datum are converted to WGS84 before the work
(:func:`to_wgs84`), and its outputs can be converted back (:func:`from_wgs84`).

The forward formulas are the published ones (Krasovsky 1940 ellipsoid for
GCJ-02; Baidu's rotation and shift for BD-09); GCJ-02 to WGS84 has no closed
form and is solved by fixed-point iteration to 1e-9 degrees (a tenth of a
millimetre).  Points outside mainland China's bounding box are left as they are,
as those services do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import geopandas as gpd
import numpy as np
import shapely

__all__ = ["DATUMS", "bd09_to_gcj02", "check_datum", "datum_problem", "from_wgs84",
           "gcj02_to_bd09", "gcj02_to_wgs84", "to_wgs84", "wgs84_to_gcj02"]

#: the datums a layer can be in: WGS84 (and any CRS pyproj knows), GCJ-02, BD-09
DATUMS = ("wgs84", "gcj02", "bd09")
Datum = Literal["wgs84", "gcj02", "bd09"]
#: a conversion of longitudes and latitudes
Shift = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]

_A, _EE = 6378245.0, 0.00669342162296594323
_X_PI = np.pi * 3000.0 / 180.0


def _inside_china(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    return (lon > 73.66) & (lon < 135.05) & (lat > 3.86) & (lat < 53.55)


def wgs84_to_gcj02(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shift WGS84 longitude/latitude to GCJ-02, the offset AMap and Tencent use.

    Examples
    --------
    The published reference points (the eviltransform test vector in Shanghai;
    wandergis/coordtransform's in Beijing):

    >>> x, y = wgs84_to_gcj02(np.array([121.5272106, 116.404]), np.array([31.1774276, 39.915]))
    >>> [round(float(v), 9) for v in (*x, *y)]
    [121.531541859, 116.410244499, 31.175303984, 39.916404282]
    """
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    x, y = lon - 105.0, lat - 35.0
    sq = np.sqrt(np.abs(x))
    dlat = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sq
            + (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
            + (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
            + (160.0 * np.sin(y / 12.0 * np.pi) + 320 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0)
    dlon = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sq
            + (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
            + (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
            + (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0)
    rad = lat / 180.0 * np.pi
    magic = 1 - _EE * np.sin(rad) ** 2
    sqm = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqm) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqm * np.cos(rad) * np.pi)
    inside = _inside_china(lon, lat)
    return np.where(inside, lon + dlon, lon), np.where(inside, lat + dlat, lat)


def gcj02_to_wgs84(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 longitude/latitude back to WGS84 (iterated to 1e-9 degrees).

    Examples
    --------
    >>> x, y = gcj02_to_wgs84(np.array([121.531541859]), np.array([31.175303984]))
    >>> round(float(x[0]), 7), round(float(y[0]), 7)
    (121.5272106, 31.1774276)
    """
    glon = np.asarray(lon, dtype=float)
    glat = np.asarray(lat, dtype=float)
    wlon, wlat = glon.copy(), glat.copy()
    # the offset changes slowly with position: a fixed point converges in a few steps
    for _ in range(30):
        flon, flat = wgs84_to_gcj02(wlon, wlat)
        dlon, dlat = flon - glon, flat - glat
        wlon, wlat = wlon - dlon, wlat - dlat
        if max(np.abs(dlon).max(initial=0.0), np.abs(dlat).max(initial=0.0)) < 1e-10:
            break
    return wlon, wlat


def gcj02_to_bd09(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 longitude/latitude to Baidu's BD-09.

    Examples
    --------
    >>> x, y = gcj02_to_bd09(np.array([116.404]), np.array([39.915]))
    >>> round(float(x[0]), 9), round(float(y[0]), 9)
    (116.410369494, 39.921336994)
    """
    x, y = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    z = np.sqrt(x * x + y * y) + 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def bd09_to_gcj02(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Baidu's BD-09 longitude/latitude to GCJ-02.

    Examples
    --------
    >>> x, y = bd09_to_gcj02(np.array([116.404]), np.array([39.915]))
    >>> round(float(x[0]), 9), round(float(y[0]), 9)
    (116.397627291, 39.90865674)
    """
    x = np.asarray(lon, dtype=float) - 0.0065
    y = np.asarray(lat, dtype=float) - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta), z * np.sin(theta)


def _shift(gdf: gpd.GeoDataFrame, fn: Shift) -> gpd.GeoDataFrame:
    out = gdf.copy()
    geoms = np.asarray(gdf.geometry.values)
    out[gdf.geometry.name] = shapely.transform(
        geoms, lambda xy: np.column_stack(fn(xy[:, 0], xy[:, 1])))
    return out


def _in_china(fn: Shift) -> Shift:
    """``fn`` applied only inside mainland China's bounding box, as the services do."""
    def masked(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x, y = fn(lon, lat)
        inside = _inside_china(np.asarray(lon), np.asarray(lat))
        return np.where(inside, x, lon), np.where(inside, y, lat)
    return masked


def _steps_to_wgs84(datum: str) -> list[Shift]:
    if datum == "gcj02":
        return [gcj02_to_wgs84]
    if datum == "bd09":
        return [_in_china(bd09_to_gcj02), gcj02_to_wgs84]
    return []


def datum_problem(value: object, *, name: str = "the datum",
                  option: str = "--input-datum") -> tuple[str, str | None]:
    """``value`` as a datum's name (lower case, no ``-``/``_``), and what is wrong, if any.

    Examples
    --------
    >>> datum_problem("GCJ-02")
    ('gcj02', None)
    >>> datum_problem("baidu")[1].split(":")[0]
    "the datum must be one of wgs84, gcj02, bd09 (--input-datum), got 'baidu'"
    """
    d = str(value).lower().replace("-", "").replace("_", "")
    if d in DATUMS:
        return d, None
    return d, (f"{name} must be one of {', '.join(DATUMS)} ({option}), got {value!r}: "
               "gcj02 for data traced from AMap (高德) or Tencent maps, bd09 for Baidu "
               "maps, wgs84 (the default) for GPS, OpenStreetMap and surveyed data.")


def check_datum(datum: str, *, option: str = "--input-datum") -> str:
    """``datum`` as :func:`datum_problem` names it, or an :class:`OptionError` saying why."""
    from ._errors import OptionError

    d, problem = datum_problem(datum, option=option)
    if problem is not None:
        raise OptionError(problem)
    return d


def to_wgs84(gdf: gpd.GeoDataFrame, datum: str) -> gpd.GeoDataFrame:
    """A layer in ``datum`` (longitude/latitude) as WGS84 (EPSG:4326); a new frame.

    A projected layer cannot be in a web-map datum: it is refused.
    """
    datum = check_datum(datum)
    if datum == "wgs84":
        return gdf
    if gdf.crs is not None and not gdf.crs.is_geographic:
        from ._errors import LayerValidationError

        msg = (f"a layer in {datum.upper()} must be in longitude/latitude (EPSG:4326 as "
               f"the web maps give it), but it is in {gdf.crs.to_string()}.")
        raise LayerValidationError(msg)
    out = gdf.set_crs(4326, allow_override=True) if gdf.crs is not None else gdf.set_crs(4326)
    for step in _steps_to_wgs84(datum):
        out = _shift(out, step)
    return out


def from_wgs84(gdf: gpd.GeoDataFrame, datum: str) -> gpd.GeoDataFrame:
    """A layer (any CRS) in ``datum``'s longitude/latitude; a new frame.

    For WGS84 the layer in EPSG:4326.
    """
    datum = check_datum(datum, option="datum")
    out = gdf.to_crs(4326)
    if datum in ("gcj02", "bd09"):
        out = _shift(out, wgs84_to_gcj02)
    if datum == "bd09":
        out = _shift(out, _in_china(gcj02_to_bd09))
    return out
