"""Reading input layers and bringing them to canonical names and a metric CRS.

Layers come from any file GDAL reads (GeoPackage, GeoJSON, Shapefile, OSM
``.pbf``/``.osm``), from GeoParquet, or as GeoDataFrames.  Source column names are
mapped to gridmap's canonical names by the user (``columns={"canonical": "source"}``).
"""

from __future__ import annotations

import codecs
import functools
import itertools
import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeAlias

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj

from ._errors import CRSMismatchError, GridmapWarning, LayerValidationError

__all__ = [
    "CANONICAL_COLUMNS",
    "FALLBACK_ENCODING",
    "LayerSource",
    "metric_crs",
    "read_layer",
    "rename_columns",
    "to_metric",
]

LayerSource: TypeAlias = str | os.PathLike | gpd.GeoDataFrame

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
#: formats whose text is UTF-8 by definition: ``encoding=`` does not apply to them
_UTF8_SUFFIXES = (".gpkg", ".geojson", ".json", ".geojsonl", ".geojsons", ".fgb")
#: the encoding a Shapefile or CSV without a declared one is read in when its text
#: is not UTF-8: GB18030 (a superset of GBK and GB2312), what Chinese desktop GIS
#: writes
FALLBACK_ENCODING = "GB18030"
_OSM_TAG_RE = re.compile(r'"([^"]+)"=>"((?:[^"\\]|\\.)*)"')

# which columns of OSM's other_tags to lift into columns, per role
_OSM_TAGS = ("building:levels", "height", "building:height", "name:zh", "addr:street",
             "addr:housenumber", "community_centre")


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
    encoding: str | None = None,
    strict: bool = False,
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
    encoding
        The encoding of the text (column names and values) of a file whose
        format does not fix one: a Shapefile's ``.dbf`` (overriding its
        ``.cpg``), a CSV, MapInfo... (e.g. ``"gbk"``, ``"gb18030"``,
        ``"utf-8"``).  GeoPackage, GeoJSON, FlatGeobuf, GeoParquet and OSM are
        UTF-8 by definition and ignore it.  Default None: a Shapefile's ``.cpg``
        (or the code page in its ``.dbf`` header); a Shapefile declaring none, or
        a CSV, whose text is not UTF-8 is read as GB18030 (what Chinese desktop
        GIS writes) with a :class:`~gridmap.GridmapWarning`.
    strict
        Refuse (:class:`~gridmap.LayerValidationError`) rather than guess the
        encoding of a file that declares none and is not UTF-8.

    Returns
    -------
    geopandas.GeoDataFrame or None
        A new frame (the input is never modified), or None when ``source`` is None.

    Raises
    ------
    LayerValidationError
        The file is missing or unreadable, ``encoding`` is unknown, or (with
        ``strict``) its encoding would have to be guessed.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> gdf = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 1, 1)], crs=32651)
    >>> read_layer(gdf, role="buildings") is gdf
    False
    """
    gdf, notes = read_layer_noted(source, role=role, layer=layer, encoding=encoding,
                                  strict=strict)
    for note in notes:
        warnings.warn(note, GridmapWarning, stacklevel=2)
    return gdf


def read_layer_noted(
    source: LayerSource | None,
    *,
    role: str,
    layer: str | None = None,
    encoding: str | None = None,
    strict: bool = False,
) -> tuple[gpd.GeoDataFrame | None, list[str]]:
    """:func:`read_layer`, with what it guessed returned as notes, not warned.

    Returns
    -------
    tuple
        The frame (or None) and the notes (an encoding guessed), for
        :func:`gridmap._validate.validate_inputs` to report with the rest.
    """
    if encoding is not None:
        _check_encoding(encoding)
    if source is None:
        return None, []
    if isinstance(source, gpd.GeoDataFrame):
        return source.copy(), []
    from .postgis import is_database

    if is_database(source):
        from .postgis import read_database

        frame = read_database(source, role=role)
        if not isinstance(frame, gpd.GeoDataFrame):
            msg = (f"`{role}` table in PostGIS has no geometry column; its columns are "
                   f"{list(frame.columns)}.")
            raise LayerValidationError(msg)
        return frame, []
    if isinstance(source, (pd.DataFrame, gpd.GeoSeries)):
        if isinstance(source, gpd.GeoSeries):
            return gpd.GeoDataFrame(geometry=source.copy()), []
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
    notes: list[str] = []
    try:
        if suffix.endswith(_PARQUET_SUFFIXES):
            return gpd.read_parquet(path), notes
        if suffix.endswith(_OSM_SUFFIXES):
            return _read_osm(path, role), notes
        if suffix.endswith(_UTF8_SUFFIXES):
            encoding = None
        elif encoding is None:
            encoding, note = _guess_encoding(path, role, strict=strict)
            notes += [note] if note else []
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
        kw = {"encoding": encoding} if encoding else {}
        return gpd.read_file(path, layer=layer, engine="pyogrio", **kw), notes
    except LayerValidationError:
        raise
    except UnicodeDecodeError as exc:
        msg = (
            f"`{role}` file {path!r} could not be read: its text is not in "
            f"{encoding or 'UTF-8'} ({exc.reason} at byte {exc.start}). Give its "
            "encoding with encoding= (--encoding), e.g. encoding='gb18030' for text "
            "written by Chinese GIS software."
        )
        raise LayerValidationError(msg) from exc
    except Exception as exc:  # GDAL/arrow errors become one clear message
        msg = f"`{role}` file {path!r} could not be read: {exc}"
        raise LayerValidationError(msg) from exc


def _check_encoding(encoding: Any) -> None:
    """Refuse an encoding name Python does not know (GDAL knows the same ones)."""
    try:
        codecs.lookup(encoding if isinstance(encoding, str) else "")
    except LookupError:
        msg = (
            f"encoding={encoding!r} is not a text encoding Python knows; give one such "
            "as 'gb18030', 'gbk', 'big5' or 'utf-8' (encoding=, --encoding)."
        )
        raise LayerValidationError(msg) from None


# ---------------------------------------------------------------------------
# the encoding of a Shapefile or CSV that declares none
# ---------------------------------------------------------------------------

_TRUNCATED_UTF8 = re.compile(rb"[\xc0-\xff][\x80-\xbf]*(?=\n|$)")
_NON_ASCII_LINE = re.compile(rb"[^\n]*[\x80-\xff][^\n]*")


def _dbf_text(data: bytes) -> tuple[bytes, int] | None:
    """The text of a ``.dbf``: its field names and character fields, one a line.

    Returns the text and the language driver id (byte 29 of the header; 0 when
    the file declares no code page), or None when ``data`` is no dBase file.
    Only the character (``C``) fields are taken: the header and the numeric and
    binary fields hold bytes that are no text.
    """
    if len(data) < 33:
        return None
    n = int.from_bytes(data[4:8], "little")
    head = int.from_bytes(data[8:10], "little")
    width = int.from_bytes(data[10:12], "little")
    if head < 33 or head > len(data) or width < 1:
        return None
    names: list[bytes] = []
    spans: list[tuple[int, int]] = []
    start = 1  # each record opens with its deletion flag
    for pos in range(32, head - 1, 32):
        desc = data[pos:pos + 32]
        if len(desc) < 32 or desc[0] == 0x0D:
            break
        kind = chr(desc[11])
        size = desc[16] + (desc[17] << 8 if kind == "C" else 0)  # shapelib's rule
        names.append(desc[:11].split(b"\0", 1)[0])
        if kind == "C":
            spans.append((start, start + size))
        start += size
    n = max(0, min(n, (len(data) - head) // width))
    lines = b"\n".join(names)
    if spans and n:
        records = np.frombuffer(data, dtype=np.uint8, count=n * width,
                                offset=head).reshape(n, width)
        newline = np.full((n, 1), 0x0A, dtype=np.uint8)
        parts = [p for a, b in spans if b <= width for p in (records[:, a:b], newline)]
        if parts:
            lines += b"\n" + np.hstack(parts).tobytes()
    return lines, data[29]


def _is_utf8(text: bytes) -> bool:
    """Whether ``text`` is UTF-8, forgiving a character cut at a field's end."""
    try:
        _TRUNCATED_UTF8.sub(b"", text).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _guess_encoding(path: str, role: str, *, strict: bool) -> tuple[str | None, str | None]:
    """The encoding to read a Shapefile or CSV that declares none in, and a note.

    A Shapefile with a ``.cpg``, or with a code page in its ``.dbf`` header, is
    left to GDAL.  Otherwise pure ASCII is left as it is (no note), UTF-8 is read
    as UTF-8 (GDAL would take it for ISO-8859-1), and anything else is read as
    :data:`FALLBACK_ENCODING` with a note, or refused in strict mode.
    """
    p = Path(path)
    ext = p.suffix.lower()
    if ext in (".shp", ".dbf"):
        if any(p.with_suffix(s).exists() for s in (".cpg", ".CPG")):
            return None, None
        dbf = next((q for q in (p.with_suffix(".dbf"), p.with_suffix(".DBF")) if q.exists()),
                   None)
        if dbf is None:
            return None, None
        got = _dbf_text(dbf.read_bytes())
        if got is None or got[1] != 0:
            return None, None
        text, where = got[0], f"file {path!r} has no .cpg and its text"
        fix = "or add a .cpg file beside it holding the encoding's name"
    elif ext in (".csv", ".tsv"):
        text, where = p.read_bytes(), f"file {path!r} has text that"
        fix = "or save it as UTF-8"
    else:
        return None, None
    if text.isascii():
        return None, None
    if _is_utf8(text):
        return "UTF-8", None
    # the first few pieces of text that are not ASCII, for the user to judge
    samples = [m.group(0) for m in itertools.islice(_NON_ASCII_LINE.finditer(text), 3)]
    try:
        text.decode(FALLBACK_ENCODING)
    except UnicodeDecodeError:
        shown = ", ".join(repr(t.decode("latin-1").strip()[:40]) for t in samples)
        msg = (
            f"`{role}` {where} is neither UTF-8 nor {FALLBACK_ENCODING} (e.g. "
            f"{shown}). Give its encoding with encoding= (--encoding), {fix}."
        )
        raise LayerValidationError(msg) from None
    seen = ", ".join(repr(t.decode(FALLBACK_ENCODING).strip()[:40]) for t in samples)
    if strict:
        msg = (
            f"`{role}` {where} is not UTF-8 (as {FALLBACK_ENCODING} it reads "
            f"{seen}); strict mode does not guess an encoding. Give it with "
            f"encoding='gb18030' (--encoding gb18030) or the right one, {fix}, or "
            "leave strict mode."
        )
        raise LayerValidationError(msg)
    note = (
        f"`{role}` {where} is not UTF-8; it was read as {FALLBACK_ENCODING} (the "
        f"encoding Chinese GIS software writes), which gives e.g. {seen}. If the text "
        "looks wrong, give the right encoding with encoding= (--encoding), e.g. "
        f"encoding='big5', {fix}. Use strict=True (--strict) to refuse a guess."
    )
    return FALLBACK_ENCODING, note


def rename_columns(
    gdf: gpd.GeoDataFrame, columns: Mapping[str, str] | None, *, role: str
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
    return _utm_crs(src.to_wkt(), tuple(float(b) for b in gdf.total_bounds))


@functools.lru_cache(maxsize=64)
def _utm_crs(crs_wkt: str, bounds: tuple[float, ...]) -> pyproj.CRS:
    """The UTM zone geopandas' ``estimate_utm_crs`` gives, asked of PROJ's database once.

    (A query takes about 80 ms; the maps of a plan ask it for the same layers
    several times.)
    """
    frame = gpd.GeoDataFrame(geometry=gpd.points_from_xy(bounds[::2], bounds[1::2]),
                             crs=crs_wkt)
    return frame.estimate_utm_crs()


def to_metric(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``gdf`` in the metric CRS :func:`metric_crs` picks (itself when already metric)."""
    crs = metric_crs(gdf)
    return gdf if gdf.crs is not None and crs.equals(gdf.crs) else gdf.to_crs(crs)
