"""The plan in the formats a grid office's platforms take, and its roster (网格台账).

Besides ``plan.gpkg``, a plan can be written as

- ``shp``: ``grids.shp`` and ``buildings.shp`` (each with ``.shx``, ``.dbf``,
  ``.prj`` and a ``.cpg`` naming the encoding, GBK by default as Chinese desktop
  GIS expects).  Shapefile field names hold at most 10 characters: longer
  columns get the names in :data:`SHAPEFILE_NAMES` (others are cut to 10
  characters and made unique), and ``shapefile_fields.csv`` lists every field
  with its column;
- ``geojson``: ``grids.geojson`` and ``buildings.geojson`` in WGS84 longitude /
  latitude (RFC 7946), or GCJ-02 / BD-09 on request (``datum``);
- ``xlsx``: ``roster.xlsx``, the grid roster: a sheet of grids (code, community,
  sub-district, type, households, each population category, workload, workers,
  and the columns 网格长 / 网格员 / 联系电话 left empty to be filled in) and a
  sheet of buildings (id, address, grid code); headers in Chinese with the
  English name beside (needs openpyxl: ``pip install "gridmap[xlsx]"``);
- ``csv``: the same two tables as ``roster_grids.csv`` and
  ``roster_buildings.csv``, UTF-8 with a byte-order mark (Excel opens them with
  the Chinese intact).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd

from ._errors import OptionError
from .changes import building_id_column
from .datum import check_datum, from_wgs84
from .register import building_addresses

if TYPE_CHECKING:
    from .plan import GridPlan

__all__ = ["EXPORT_FORMATS", "SHAPEFILE_NAMES", "export_files", "export_plan",
           "parse_formats", "roster", "shapefile_names"]

#: the formats a plan can be exported to
EXPORT_FORMATS = ("shp", "geojson", "xlsx", "csv")

#: Shapefile field names (at most 10 characters) of the plan's longer columns
SHAPEFILE_NAMES: dict[str, str] = {
    "community_id": "comm_id", "subdistrict_id": "subdist_id", "n_buildings": "n_bldgs",
    "single_unit": "single_u", "community_mean": "comm_mean",
    "within_tolerance": "within_tol", "community_in_scale": "comm_scale",
    "perimeter_m": "perim_m", "polsby_popper": "polsby_pp",
    "workload_per_worker": "wl_per_wkr", "community_type": "comm_type",
    "pop_registered": "pop_regist", "pop_floating": "pop_float",
    "compound_id": "compnd_id",
}

#: the roster's columns of a grid: (column, Chinese header); missing ones are left out
GRID_HEADERS: tuple[tuple[str, str], ...] = (
    ("code", "网格编码"), ("grid_id", "网格序号"), ("subdistrict_id", "所属街道"),
    ("community_id", "所属社区"), ("kind", "网格类型"), ("households", "户数"),
    ("pop_actual", "实有人口"), ("pop_registered", "户籍人口"), ("pop_floating", "流动人口"),
    ("pop_absent", "人户分离人口"), ("elderly", "老年人"), ("shops", "商户"),
    ("cases", "事件数"), ("n_buildings", "楼栋数"), ("workload", "工作量"),
    ("workers", "网格员配置数"),
)
#: the roster's columns left empty for the grid office to fill in
TO_FILL: tuple[tuple[str, str], ...] = (
    ("grid_leader", "网格长"), ("grid_workers", "网格员"), ("phone", "联系电话"))
#: the roster's columns of a building
BUILDING_HEADERS: tuple[tuple[str, str], ...] = (
    ("id", "楼栋编号"), ("address", "地址"), ("grid_code", "所属网格编码"),
    ("households", "户数"))
#: the grid types in Chinese, for the roster
KIND_NAMES = {"community": "社区网格", "road": "道路网格", "unit": "单位网格"}

_FILES = {
    "shp": [f"{layer}.{ext}" for layer in ("grids", "buildings")
            for ext in ("shp", "shx", "dbf", "prj", "cpg")] + ["shapefile_fields.csv"],
    "geojson": ["grids.geojson", "buildings.geojson"],
    "xlsx": ["roster.xlsx"],
    "csv": ["roster_grids.csv", "roster_buildings.csv"],
}


def parse_formats(formats: str | Iterable[str] | None) -> tuple[str, ...]:
    """The formats asked for (``"shp,geojson"`` or a list), checked; () for none.

    ``xlsx`` needs openpyxl: without it the error says how to install it, before
    any work.

    Examples
    --------
    >>> parse_formats("SHP, geojson")
    ('shp', 'geojson')
    >>> parse_formats("kml")
    Traceback (most recent call last):
    ...
    gridmap._errors.OptionError: cannot export to 'kml' (--export): the formats are shp, geojson, xlsx, csv, given as a comma-separated list (e.g. --export shp,xlsx).
    """  # noqa: E501 - a doctest's exception message is one line
    if formats is None:
        return ()
    items = formats.split(",") if isinstance(formats, str) else list(formats)
    out: list[str] = []
    for item in items:
        f = str(item).strip().lower().lstrip(".")
        if not f:
            continue
        if f not in EXPORT_FORMATS:
            msg = (f"cannot export to {item!r} (--export): the formats are "
                   f"{', '.join(EXPORT_FORMATS)}, given as a comma-separated list "
                   "(e.g. --export shp,xlsx).")
            raise OptionError(msg)
        if f not in out:
            out.append(f)
    if "xlsx" in out:
        _openpyxl()
    return tuple(out)


def _openpyxl() -> Any:
    import importlib

    try:
        # imported by name: it is an optional extra, and has no type stubs
        openpyxl = importlib.import_module("openpyxl")
    except ImportError as exc:
        msg = ("the xlsx roster needs openpyxl: pip install \"gridmap[xlsx]\" (or pip "
               "install openpyxl); the csv export writes the same tables without it.")
        raise OptionError(msg) from exc
    return openpyxl


def export_files(formats: Iterable[str]) -> list[str]:
    """The files an export to ``formats`` writes (for an output folder's list)."""
    return [name for f in parse_formats(list(formats)) for name in _FILES[f]]


def export_plan(plan: GridPlan, folder: str | os.PathLike,
                formats: str | Iterable[str] = EXPORT_FORMATS, *, encoding: str = "GBK",
                datum: str | None = None, address: str | None = None) -> list[Path]:
    """Write the plan's grids and buildings in ``formats`` into ``folder``.

    See the module's docstring for the files.  ``encoding`` is the Shapefiles'
    (GBK by default; a character GBK lacks is written as ``?``); ``datum`` the
    GeoJSON's longitude/latitude (``wgs84``, ``gcj02`` or ``bd09``) and, when not
    ``wgs84``, the Shapefiles' too (else they keep the plan's CRS); ``address``
    the buildings' address column for the roster (default:
    :func:`gridmap.register.building_addresses`'s).  Returns the files written.

    Examples
    --------
    >>> import geopandas as gpd, shapely, tempfile, gridmap
    >>> from shapely import LineString
    >>> b = gpd.GeoDataFrame({"households": [100] * 4},
    ...     geometry=[shapely.box(x * 50 + 10, 10, x * 50 + 30, 30) for x in range(4)],
    ...     crs=32651)
    >>> s = gpd.GeoDataFrame({"highway": ["residential"] * 7},
    ...     geometry=[LineString([(v, -5), (v, 45)]) for v in (0, 50, 100, 150, 200)]
    ...     + [LineString([(-5, v), (205, v)]) for v in (0, 40)], crs=32651)
    >>> plan = gridmap.delineate(b, s, target=200)
    >>> [p.name for p in plan.export(tempfile.mkdtemp(), "geojson,csv")]
    ['grids.geojson', 'buildings.geojson', 'roster_grids.csv', 'roster_buildings.csv']
    """
    chosen = parse_formats(formats)
    datum = check_datum(datum or plan.params.get("output_datum") or "wgs84",
                        option="--export-datum")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    layers = {"grids": plan.grids, "buildings": plan.buildings}
    # the roster's two tables, made once for the xlsx and the csv alike
    tables = roster(plan, address=address) if {"xlsx", "csv"} & set(chosen) else None
    for f in chosen:
        if f == "shp":
            written += _shapefiles(layers, folder, encoding=encoding, datum=datum)
        elif f == "geojson":
            for name, gdf in layers.items():
                path = folder / f"{name}.geojson"
                _plain(from_wgs84(gdf, datum)).to_file(path, driver="GeoJSON",
                                                       engine="pyogrio")
                written.append(path)
        elif tables is not None:
            grids, buildings = tables
            if f == "xlsx":
                path = folder / "roster.xlsx"
                _openpyxl()
                with pd.ExcelWriter(path, engine="openpyxl") as xl:
                    grids.to_excel(xl, sheet_name="网格 grids", index=False)
                    buildings.to_excel(xl, sheet_name="楼栋 buildings", index=False)
                written.append(path)
            else:
                for name, table in (("grids", grids), ("buildings", buildings)):
                    path = folder / f"roster_{name}.csv"
                    table.to_csv(path, index=False, encoding="utf-8-sig")
                    written.append(path)
    return written


def _header(column: str, zh: str) -> str:
    return f"{zh} {column}"


def roster(plan: GridPlan, *, address: str | None = None
           ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The grid roster (网格台账): a table of grids and one of buildings.

    Headers are Chinese with the English column name beside (``网格编码 code``).
    """
    g = plan.grids.sort_values("code", kind="stable")
    grids = pd.DataFrame({_header(c, zh): g[c].to_numpy() for c, zh in GRID_HEADERS
                          if c in g.columns})
    if "workload" in g.columns:
        grids[_header("workload", "工作量")] = g["workload"].round(1).to_numpy()
    if "kind" in g.columns:
        grids[_header("kind", "网格类型")] = [KIND_NAMES.get(k, k) for k in g["kind"]]
    for c, zh in TO_FILL:
        grids[_header(c, zh)] = ""
    b = plan.buildings
    code_of = plan.grids.set_index("grid_id")["code"]
    id_col = building_id_column(plan)
    ids = b[id_col] if id_col in b.columns else pd.Series(b.index, index=b.index)
    cols = {
        "id": ids.to_numpy(),
        "address": building_addresses(b, address),
        "grid_code": b["grid_id"].map(code_of).to_numpy() if "grid_id" in b.columns
        else np.full(len(b), None),
        "households": b["households"].to_numpy() if "households" in b.columns
        else np.full(len(b), np.nan),
    }
    buildings = pd.DataFrame({_header(c, zh): cols[c] for c, zh in BUILDING_HEADERS})
    return grids.reset_index(drop=True), buildings


def _plain(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Columns every vector format takes: booleans as 0/1, objects as text."""
    out = gdf.copy()
    for c in out.columns:
        if c == out.geometry.name:
            continue
        col = out[c]
        if col.dtype == bool:
            out[c] = col.astype(np.int8)
        elif col.dtype == object:
            out[c] = [None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
                      for v in col]
    return out


def shapefile_names(columns: Iterable[str], encoding: str = "GBK") -> dict[str, str]:
    """Each column's Shapefile field name: :data:`SHAPEFILE_NAMES`, else cut to 10 bytes.

    A dBase field name holds 10 bytes in the file's encoding (a Chinese
    character is 2 in GBK); characters other than letters, digits and ``_``
    become ``_`` (as GDAL would make them).  Names are unique
    (case-insensitively, as dBase compares them).

    Examples
    --------
    >>> shapefile_names(["community_id", "addr:housenumber", "addr:housename", "人户分离人口"])
    {'community_id': 'comm_id', 'addr:housenumber': 'addr_house', 'addr:housename': 'addr_hou_1', '人户分离人口': '人户分离人'}
    """  # noqa: E501 - a doctest's output is one line
    out: dict[str, str] = {}
    taken: set[str] = set()

    def cut(text: str, room: int) -> str:
        while len(text.encode(encoding, "replace")) > room:
            text = text[:-1]
        return text

    for c in columns:
        base = "".join(ch if ch.isalnum() or ch == "_" else "_"
                       for ch in SHAPEFILE_NAMES.get(c, str(c)))
        name = cut(base, 10)
        n = 1
        while name.lower() in taken:
            suffix = f"_{n}"
            name = cut(base, 10 - len(suffix)) + suffix
            n += 1
        taken.add(name.lower())
        out[c] = name
    return out


def _shapefiles(layers: dict[str, gpd.GeoDataFrame], folder: Path, *, encoding: str,
                datum: str) -> list[Path]:
    import pyogrio

    written: list[Path] = []
    rows = []
    for layer, gdf in layers.items():
        if not len(gdf):
            continue
        shown = from_wgs84(gdf, datum) if datum != "wgs84" else gdf
        shown = _plain(shown)
        names = shapefile_names([c for c in shown.columns if c != shown.geometry.name],
                                encoding)
        for c, n in names.items():
            if shown[c].dtype == object:
                # a dBase text field holds 254 bytes; a character the encoding
                # lacks would stop the write
                shown[c] = [None if v is None else
                            v.encode(encoding, "replace")[:254].decode(encoding, "ignore")
                            for v in shown[c]]
            rows.append({"layer": layer, "field": n, "column": c})
        shown = shown.rename(columns=names)
        path = folder / f"{layer}.shp"
        pyogrio.write_dataframe(shown, path, encoding=encoding)
        written += [path.with_suffix(ext) for ext in (".shp", ".shx", ".dbf", ".prj", ".cpg")
                    if path.with_suffix(ext).exists()]
    fields = folder / "shapefile_fields.csv"
    pd.DataFrame(rows, columns=["layer", "field", "column"]).to_csv(
        fields, index=False, encoding="utf-8-sig")
    written.append(fields)
    return written
