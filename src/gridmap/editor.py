"""The page a planner adjusts a plan on by hand (``edit.html``).

A drawn plan goes to the communities for their views, and the planner adjusts it
(调整完善): a building whose entrance faces the other street, a lane residents
use.  :func:`write_editor` writes one self-contained page for that: the units of
the plan coloured by grid, the grid outlines and codes; the planner picks a grid,
clicks (or brushes over) units to move them into it, and sees for every grid
touched its weight and households, its deviation from its community's mean and
from its target, whether it is in the band and still in one piece.  "Save edits"
downloads ``edits.json`` (the moves, net of the plan as loaded, the locked grids
and a note), which :func:`gridmap.apply_edits` (``gridmap apply``) applies.

The page makes no network request: Leaflet (``gridmap/_static/leaflet``) and the
page's own script and stylesheet (``gridmap/_static/editor``) are written into
it, with the data as JSON, and no base map is drawn, so that it opens on a
government intranet.  The rules of balance the page applies as the units move
are those of :mod:`gridmap.band` (and :func:`gridmap.metrics.evaluate`): a
community's mean is the mean weight of its ordinary grids (community grids
neither flagged nor one indivisible unit; all its community grids when it has
no ordinary one); a grid's deviation is its weight over the mean, minus one; it
is in the band when ``|deviation| <= tolerance`` (plus
:data:`~gridmap.band.TOLERANCE_EPS`); a grid of one indivisible unit above the
band is the ``oversize`` exception; road and unit grids have no band.

Examples
--------
>>> import geopandas as gpd, shapely, gridmap
>>> from shapely import LineString
>>> b = gpd.GeoDataFrame({"id": range(4), "households": [100] * 4},
...     geometry=[shapely.box(x * 50 + 10, 10, x * 50 + 30, 30) for x in range(4)],
...     crs=32651)
>>> s = gpd.GeoDataFrame({"highway": ["residential"] * 7},
...     geometry=[LineString([(v, -5), (v, 45)]) for v in range(0, 201, 50)]
...     + [LineString([(-5, v), (205, v)]) for v in (0, 40)], crs=32651)
>>> plan = gridmap.delineate(b, s, target=200)
>>> data = editor_data(plan)
>>> [(g["grid_id"], g["kind"]) for g in data["grids"]]
[(1, 'community'), (2, 'community')]
>>> [f["properties"]["weight"] for f in data["units"]["features"]]
[100.0, 100.0, 100.0, 100.0]
>>> data["adjacency"]
[[0, 1], [1, 2], [2, 3]]
>>> page = editor_page(plan)
>>> page.startswith("<!DOCTYPE html>"), "<script src=" in page, "<link" in page
(True, False, False)
"""

from __future__ import annotations

import html
import json
import math
import os
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ._errors import GridmapError
from .band import TOLERANCE_EPS
from .changes import ADDRESS_COLUMNS, id_key
from .colours import KIND_COLOURS, grid_colours
from .io import to_metric
from .options import UNIT_MEASURES

if TYPE_CHECKING:  # the plan's editor() method imports this module: no import back
    from .plan import GridPlan

__all__ = ["editor_data", "editor_page", "write_editor"]

#: tolerance (m) of the simplification of the units, their borders and the outline
SIMPLIFY = 0.5
#: of the streets, drawn for context only
SIMPLIFY_STREETS = 1.0
#: decimals of a coordinate in degrees: 6 is about 0.1 m
DIGITS = 6
#: shared edges of two units are found within this distance (m) of each other,
#: since cells of a split block and the block beside them differ in their vertices
BORDER_SNAP = 0.05
#: holes in the area smaller than this (m²) are seams between units, not places
PINHOLE = 1.0


def editor_data(plan: GridPlan) -> dict[str, Any]:
    """The data the page embeds: grids, units, adjacency, buildings, streets.

    Parameters
    ----------
    plan : GridPlan
        The plan to adjust; it must have its units (``plan.units``).

    Returns
    -------
    dict
        JSON-able, with coordinates in WGS84 to 6 decimals and geometry
        simplified by :data:`SIMPLIFY` metres:

        - ``plan``: :attr:`GridPlan.plan_id`; ``by``: the balance field;
          ``id_column``: the buildings' id column (None: their index);
          ``tolerance_eps``: :data:`~gridmap.band.TOLERANCE_EPS`;
        - ``grids``: one dict per grid, ``grid_id``, ``code``,
          ``community_id``, ``kind``, ``flag`` (``""`` or e.g. ``oversize``),
          ``single_unit``, ``n_buildings``, ``target`` (None where the grid
          has none), ``tolerance``, ``colour`` (the coverage map's) and
          ``label`` (``[lat, lon]`` of a point inside it);
        - ``units``: a GeoJSON FeatureCollection (``[lon, lat]``), one feature
          per unit in the row order of ``plan.units``, with ``unit_id``,
          ``grid_id``, ``weight`` (the ``by`` field of its buildings, or the
          unit's own), ``households``, ``n_buildings`` and ``point`` (``[lat,
          lon]`` inside it);
        - ``adjacency``: ``[i, j]`` pairs of neighbouring units (feature
          positions, ``i < j``), the edges of ``plan.graph``; ``borders``: for
          each pair, the edge the two units share, as lines of ``[lat, lon]``;
          ``outline``: the outline of the area, as lines of ``[lat, lon]``;
        - ``buildings``: ``{"id", "unit_id", "address", "point"}`` per building
          (``point`` is ``[lat, lon]``; ``address`` the first of the plan's
          ``address_column`` and :data:`gridmap.changes.ADDRESS_COLUMNS` the
          buildings have, or None);
        - ``streets``: a GeoJSON FeatureCollection of the streets (``class``),
          or None.

    Raises
    ------
    GridmapError
        A plan without units, a unit in a grid the plan does not have, or a
        balance field neither the buildings nor the units carry.
    """
    units = plan.units
    if not len(units):
        msg = (f"plan {plan.plan_id} has no units: the editor moves units between "
               "grids; read the plan from a plan.gpkg written with its units (the "
               "default of GridPlan.to_file and of gridmap delineate)")
        raise GridmapError(msg)
    by = str(plan.params.get("by", "households"))
    metric = to_metric(units)
    geoms = np.asarray(metric.geometry.values)
    pairs = _adjacency(plan, geoms)
    shown = _simplified(geoms, SIMPLIFY)
    points = _latlon(shapely.point_on_surface(shown), metric.crs)
    weight, households, n_buildings = _unit_figures(plan, geoms, by)
    features = [
        {"type": "Feature", "geometry": geometry,
         "properties": {"unit_id": unit_id, "grid_id": grid_id, "weight": w,
                        "households": h, "n_buildings": n, "point": p}}
        for geometry, unit_id, grid_id, w, h, n, p in zip(
            _geojson(shown, metric.crs), _plain(units["unit_id"]), _plain(units["grid_id"]),
            weight.tolist(), households, n_buildings.tolist(), points, strict=True)]
    return {
        "plan": plan.plan_id,
        "by": by,
        "id_column": _id_column(plan.buildings, plan.params),
        "tolerance_eps": TOLERANCE_EPS,
        "grids": _grid_rows(plan),
        "units": {"type": "FeatureCollection", "features": features},
        "adjacency": pairs.tolist(),
        "borders": _borders(geoms, pairs, metric.crs),
        "outline": _outline(plan, geoms, metric.crs),
        "buildings": _building_rows(plan),
        "streets": _streets(plan),
    }


def _plain(values: Any) -> list[Any]:
    """Values as JSON takes them: Python scalars, None for a missing one."""
    out = pd.Series(values).astype(object).tolist()
    return [None if v is None or (isinstance(v, float) and math.isnan(v)) else v
            for v in out]


def _simplified(geoms: np.ndarray, tolerance: float) -> np.ndarray:
    """``geoms`` simplified (metres); a sliver that would vanish is kept as it is."""
    simple = shapely.simplify(geoms, tolerance, preserve_topology=True)
    return np.where(shapely.is_empty(simple) & ~shapely.is_empty(geoms), geoms, simple)


def _wgs84(geoms: np.ndarray, crs: Any) -> np.ndarray:
    """Metric ``geoms`` in WGS84, every coordinate rounded to :data:`DIGITS`."""
    out = np.asarray(gpd.GeoSeries(geoms, crs=crs).to_crs(4326).values)
    return shapely.transform(out, lambda xy: np.round(xy, DIGITS))


def _latlon(points: np.ndarray, crs: Any) -> list[list[float] | None]:
    """Metric points as ``[lat, lon]`` (None for an empty one)."""
    pts = _wgs84(points, crs)
    ok = ~(shapely.is_missing(pts) | shapely.is_empty(pts))
    lat, lon = np.full(len(pts), np.nan), np.full(len(pts), np.nan)
    lat[ok], lon[ok] = shapely.get_y(pts[ok]), shapely.get_x(pts[ok])
    return [[float(y), float(x)] if good else None
            for y, x, good in zip(lat.tolist(), lon.tolist(), ok.tolist(), strict=True)]


def _geojson(geoms: np.ndarray, crs: Any) -> list[dict[str, Any] | None]:
    """Metric ``geoms`` as GeoJSON geometries in WGS84 (None for an empty one)."""
    shown = _wgs84(geoms, crs).copy()
    empty = shapely.is_missing(shown) | shapely.is_empty(shown)
    shown[empty] = None
    return [None if gone else json.loads(text)
            for text, gone in zip(shapely.to_geojson(shown).tolist(), empty.tolist(),
                                  strict=True)]


def _lines(geom: Any) -> list[list[list[float]]]:
    """The lines of a (multi)line in WGS84 as lists of ``[lat, lon]``."""
    merged = shapely.line_merge(geom) if shapely.get_type_id(geom) == 5 else geom
    out = []
    for part in shapely.get_parts(merged):
        if shapely.get_type_id(part) not in (1, 2):  # points where units meet at a corner
            continue
        xy = shapely.get_coordinates(part)
        if len(xy) >= 2:
            out.append([[float(y), float(x)] for x, y in xy.tolist()])
    return out


def _adjacency(plan: GridPlan, geoms: np.ndarray) -> np.ndarray:
    """The ``[i, j]`` pairs of neighbouring units (``i < j``, sorted) of the plan.

    From ``plan.graph``; a plan without one has its graph rebuilt from the units
    as :func:`gridmap.plan.read_plan` does.
    """
    graph = plan.graph
    if graph.number_of_nodes() == 0 and len(geoms) > 1:
        from .adjacency import build_adjacency

        graph = build_adjacency(geoms).to_networkx()
    edges = np.array([sorted((int(a), int(b))) for a, b in graph.edges() if a != b],
                     dtype=np.int64).reshape(-1, 2)
    bad = (edges < 0) | (edges >= len(geoms))
    if bad.any():
        msg = (f"the plan's unit graph names unit position {int(edges[bad][0])}, and the "
               f"plan has {len(geoms)} units (positions 0-{len(geoms) - 1}): the graph "
               "is of other units; read the plan again (gridmap.read_plan) to rebuild it")
        raise GridmapError(msg)
    return np.unique(edges, axis=0)


def _borders(geoms: np.ndarray, pairs: np.ndarray, crs: Any) -> list[Any]:
    """The edge each pair of neighbouring units shares, as lines of ``[lat, lon]``.

    The page draws a pair's edge as a grid outline when the two units are in
    different grids, so outlines follow the units as they move.
    """
    if not len(pairs):
        return []
    rings = shapely.boundary(geoms)
    near = shapely.buffer(rings, BORDER_SNAP, quad_segs=2)
    shared = shapely.intersection(rings[pairs[:, 0]], near[pairs[:, 1]])
    shared = _wgs84(_simplified(shared, SIMPLIFY), crs)
    return [_lines(g) for g in shared]


def _outline(plan: GridPlan, geoms: np.ndarray, crs: Any) -> list[list[list[float]]]:
    """The outline of the area the grids cover (always a grid outline).

    The plan's area, else the union of its units; holes under
    :data:`PINHOLE` m² are seams between units, not places, and are left out.
    """
    area = plan.area.to_crs(crs).union_all() if len(plan.area) else None
    if area is None or area.is_empty:
        area = shapely.union_all(geoms, grid_size=0.01)
    parts = [shapely.Polygon(p.exterior, [r for r in p.interiors
                                          if shapely.Polygon(r).area >= PINHOLE])
             for p in shapely.get_parts(area) if shapely.get_type_id(p) == 3]
    ring = shapely.boundary(shapely.multipolygons(parts)) if parts else shapely.boundary(area)
    return _lines(_wgs84(_simplified(np.array([ring]), SIMPLIFY), crs)[0])


def _unit_figures(plan: GridPlan, geoms: np.ndarray,
                  by: str) -> tuple[np.ndarray, list[float | None], np.ndarray]:
    """Every unit's weight (the ``by`` field), households and number of buildings.

    A unit weighs its buildings' ``by`` field, as the partition weighed it; by
    area (:data:`gridmap.options.UNIT_MEASURES`), its own area; a plan without
    buildings, the units' own ``by`` column.
    """
    units, b = plan.units, plan.buildings
    keys = id_key(units["unit_id"]).to_numpy()
    has_b = len(b) > 0 and "unit_id" in b.columns
    of_unit = id_key(b["unit_id"]).to_numpy() if has_b else np.array([], dtype=object)
    n_buildings = pd.Series(of_unit).value_counts().reindex(keys, fill_value=0) \
        .to_numpy(dtype=np.int64)

    def summed(col: str) -> np.ndarray | None:
        if has_b and col in b.columns:
            value = pd.to_numeric(b[col], errors="coerce").fillna(0.0).to_numpy(float)
            return pd.Series(value).groupby(of_unit).sum().reindex(keys, fill_value=0.0) \
                .to_numpy(dtype=float)
        if col in units.columns:
            return pd.to_numeric(units[col], errors="coerce").fillna(0.0).to_numpy(float)
        return None

    if by in UNIT_MEASURES:
        weight = pd.to_numeric(units[by], errors="coerce").to_numpy(float) \
            if by in units.columns else shapely.area(geoms)
    else:
        found = summed(by)
        if found is None:
            msg = (f"the plan is balanced by {by!r}, which neither its buildings "
                   f"(columns {sorted(map(str, b.columns))}) nor its units carry, so the "
                   "page cannot weigh a unit; add the column to the buildings layer of "
                   "plan.gpkg, or draw the plan again by a field the buildings have")
            raise GridmapError(msg)
        weight = found
    hh = summed("households")
    households = [None] * len(units) if hh is None else hh.tolist()
    return weight, households, n_buildings


def _grid_rows(plan: GridPlan) -> list[dict[str, Any]]:
    """One dict per grid: ids, kind, flag, target, tolerance, colour and label."""
    grids = plan.grids
    known = set(id_key(grids["grid_id"]))
    stray = sorted(set(id_key(plan.units["grid_id"])) - known)
    if stray:
        msg = (f"units of the plan are in grid(s) {stray[:5]} that its grids layer does not "
               "have: the layers are of different plans; read the plan from one "
               "plan.gpkg (gridmap.read_plan)")
        raise GridmapError(msg)
    metric = to_metric(grids)
    n = len(grids)
    kinds = grids["kind"].astype(str).tolist() if "kind" in grids else ["community"] * n
    colours = [KIND_COLOURS.get(k, c) for k, c in zip(kinds, grid_colours(metric),
                                                      strict=True)]
    flags = grids["flag"].fillna("").astype(str).tolist() if "flag" in grids else [""] * n
    single = grids["single_unit"].fillna(False).astype(bool).tolist() \
        if "single_unit" in grids else [False] * n
    default_tol = float(plan.params.get("tolerance") or 0.0)

    def column(name: str, default: Any) -> list[Any]:
        if name not in grids:
            return [default] * n
        return [default if v is None else v for v in _plain(grids[name])]

    labels = _latlon(shapely.point_on_surface(np.asarray(metric.geometry.values)),
                     metric.crs)
    rows = zip(_plain(grids["grid_id"]), column("code", ""), column("community_id", None),
               kinds, flags, single, column("n_buildings", 0), column("target", None),
               column("tolerance", default_tol), colours, labels, strict=True)
    return [{"grid_id": gid, "code": str(code), "community_id": comm, "kind": kind,
             "flag": flag, "single_unit": bool(one), "n_buildings": int(nb),
             "target": None if target is None else float(target),
             "tolerance": float(tol), "colour": colour, "label": label}
            for gid, code, comm, kind, flag, one, nb, target, tol, colour, label in rows]


def _id_column(buildings: pd.DataFrame, params: dict[str, Any]) -> str | None:
    """The buildings' id column: the plan's ``id_column``, else ``id``; None: the index."""
    for name in (params.get("id_column"), "id"):
        if name and name in buildings.columns:
            return str(name)
    return None


def _building_rows(plan: GridPlan) -> list[dict[str, Any]]:
    """``{"id", "unit_id", "address", "point"}`` of every building, for the search."""
    b = plan.buildings
    if not len(b):
        return []
    id_col = _id_column(b, plan.params)
    ids = _plain(b[id_col] if id_col else b.index.to_series())
    unit_ids = _plain(b["unit_id"]) if "unit_id" in b.columns else [None] * len(b)
    names = [plan.params.get("address_column"), *ADDRESS_COLUMNS]
    # the first address column that holds anything (a column all empty finds nothing)
    col = next((c for c in names if c and c in b.columns and b[c].notna().any()), None)
    address = [None if v is None else str(v) for v in _plain(b[col])] if col \
        else [None] * len(b)
    metric = to_metric(b)
    points = _latlon(shapely.point_on_surface(np.asarray(metric.geometry.values)),
                     metric.crs)
    return [{"id": i, "unit_id": u, "address": a, "point": p}
            for i, u, a, p in zip(ids, unit_ids, address, points, strict=True)]


def _streets(plan: GridPlan) -> dict[str, Any] | None:
    """The streets, simplified, as a GeoJSON FeatureCollection with their class."""
    st = plan.streets
    if st is None or not len(st):
        return None
    metric = to_metric(st)
    # pieces joined end to end: fewer, longer lines to write and to draw
    shown = _simplified(shapely.line_merge(np.asarray(metric.geometry.values)),
                        SIMPLIFY_STREETS)
    classes = _plain(st["class"]) if "class" in st.columns else [None] * len(st)
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": g, "properties": {"class": c}}
        for g, c in zip(_geojson(shown, metric.crs), classes, strict=True) if g is not None]}


def _static(folder: str, name: str) -> str:
    """A file shipped in ``gridmap/_static/<folder>``."""
    return (resources.files("gridmap") / "_static" / folder / name).read_text(
        encoding="utf-8")


def _script(name: str) -> str:
    """The page's own script, checked to hold nothing that would end its element."""
    text = _static("editor", name)
    if "</" in text or "<!--" in text:
        msg = (f"gridmap/_static/editor/{name} holds '</' or '<!--', which would end the "
               "<script> it is written into; write '<\\/' in the script instead")
        raise GridmapError(msg)
    return text


def editor_page(plan: GridPlan, *, title: str | None = None) -> str:
    """The page to adjust ``plan`` by hand: one self-contained HTML document.

    Leaflet's script and stylesheet, the page's own (``gridmap/_static/editor``)
    and the data (:func:`editor_data`) are written into the page; it loads
    nothing from anywhere, and draws no base map.  The units are drawn with
    Leaflet's SVG renderer, each a path of the page.

    Parameters
    ----------
    plan : GridPlan
        The plan to adjust.
    title : str, optional
        The page's title; default "网格调整 adjust grids" and the plan's id.

    Returns
    -------
    str
        The HTML document.  The page sets ``window.gridmapEditor.ready`` and
        the performance mark ``gridmap-ready`` once drawn.
    """
    data = editor_data(plan)
    title = title if title is not None else f"网格调整 adjust grids — plan {data['plan']}"
    # "<" only ever in a string (an address): as \u003c no text can end the element
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"),
                         allow_nan=False).replace("<", "\\u003c")
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="zh-CN">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_static('leaflet', 'leaflet.css')}</style>",
        f"<style>{_static('editor', 'editor.css')}</style>",
        f"<script>{_static('leaflet', 'leaflet.js')}</script>",
        "</head>",
        "<body>",
        '<div id="gm-map"></div>',
        '<div id="gm-panel"></div>',
        f'<script type="application/json" id="gridmap-data">{payload}</script>',
        f"<script>{_script('editor.js')}</script>",
        "</body>",
        "</html>",
        "",
    ])


def write_editor(plan: GridPlan, path: str | os.PathLike) -> Path:
    """Write the page to adjust ``plan`` by hand (:func:`editor_page`) to ``path``.

    Returns the path written (UTF-8).
    """
    out = Path(path)
    if out.is_dir():
        msg = (f"{out} is a folder; give the page's file name, e.g. "
               f"{out / 'edit.html'}")
        raise GridmapError(msg)
    out.write_text(editor_page(plan), encoding="utf-8")
    return out
