"""Maps of a plan that open anywhere, offline.

Government networks are often offline intranets, so a map never fetches a script
or a stylesheet: Leaflet (BSD-2-Clause, shipped in ``gridmap/_static/leaflet``)
is written into the page itself, and no base map is drawn unless one is asked for.
"""

from __future__ import annotations

import html
import json
import weakref
from collections.abc import Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ._errors import GridmapError
from .changes import building_id_column, handover
from .chart import load_chart_svg
from .colours import DIFF_COLOURS, KIND_COLOURS, PALETTE, RAMP, classify, grid_colours
from .datum import wgs84_to_gcj02
from .io import to_metric
from .workload import grid_workload

if TYPE_CHECKING:  # maps take a plan; the plan's module imports them, not the reverse
    from .plan import GridPlan

__all__ = [
    "PALETTE",
    "TILES",
    "coverage_map",
    "diff_map",
    "grid_colours",
    "offline",
    "wgs84_to_gcj02",
    "workload_map",
]

#: base-map presets: URL template, attribution, whether the tiles are in GCJ-02
TILES: dict[str, tuple[str, str, bool]] = {
    "osm": (
        "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
        "&copy; OpenStreetMap contributors",
        False,
    ),
    "amap": (
        ("https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8"
        "&x={x}&y={y}&z={z}"),
        "&copy; 高德地图 AMap (GCJ-02)",
        True,
    ),
    "tencent": (
        "https://rt{s}.map.gtimg.com/tile?z={z}&x={x}&y={-y}&type=vector&styleid=0",
        "&copy; 腾讯地图 Tencent (GCJ-02)",
        True,
    ),
}
_SUBDOMAINS = {"amap": "1234", "tencent": "0123"}

#: above this many buildings the coverage map leaves them out unless asked
BUILDINGS_SHOWN = 20_000


def _folium():
    try:
        import folium
    except ImportError as exc:  # folium is a core dependency; say so if it is gone
        msg = "gridmap's maps need folium: pip install folium"
        raise ImportError(msg) from exc
    return folium


def offline(m: Any) -> Any:
    """Make a folium map self-contained: Leaflet inlined, nothing fetched.

    folium's default scripts and stylesheets (Leaflet, jQuery, Bootstrap, icon
    fonts from CDNs) are dropped; Leaflet's own script and stylesheet, from the
    installed gridmap package, are written into the page's head.
    """
    folium = _folium()
    static = resources.files("gridmap") / "_static" / "leaflet"
    js = (static / "leaflet.js").read_text(encoding="utf-8")
    css = (static / "leaflet.css").read_text(encoding="utf-8")
    m.default_js = []
    m.default_css = []
    # folium adds Bootstrap and friends through elements that carry their own lists
    for child in list(m._children.values()):
        if hasattr(child, "default_js"):
            child.default_js = []
        if hasattr(child, "default_css"):
            child.default_css = []
    root = m.get_root()
    root.header.add_child(folium.Element(f"<style>{css}</style>"), name="leaflet_css")
    root.header.add_child(folium.Element(f"<script>{js}</script>"), name="leaflet_js")
    return m


def _fmt(value: Any, threshold: int) -> str:
    """A count for a popup; counts under the privacy threshold show as "<N"."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    v = float(value)
    if 0 < v < threshold:
        return f"&lt;{threshold}"
    return f"{v:,.0f}"


def _display(gdf: gpd.GeoDataFrame, simplify: float, gcj02: bool) -> gpd.GeoDataFrame:
    """Geometry for a web map: simplified in metres, WGS84 (or GCJ-02), ~0.1 m."""
    metric = to_metric(gdf)
    shown = metric.copy()
    geoms = np.asarray(metric.geometry.values)
    if simplify > 0:
        simple = shapely.simplify(geoms, simplify, preserve_topology=True)
        # a sliver of a grid can vanish when simplified: keep it as it is
        geoms = np.where(shapely.is_empty(simple) & ~shapely.is_empty(geoms), geoms, simple)
    shown["geometry"] = geoms
    shown = shown.to_crs(4326)
    geoms = np.asarray(shown.geometry.values)
    if gcj02:
        geoms = shapely.transform(geoms, lambda xy: np.column_stack(
            wgs84_to_gcj02(xy[:, 0], xy[:, 1])))
    shown["geometry"] = shapely.set_precision(geoms, 1e-6)
    return shown


def _base_map(bounds: np.ndarray, tiles: str | None, attribution: str | None) -> Any:
    folium = _folium()
    m = folium.Map(tiles=None, control_scale=False, prefer_canvas=True)
    m.fit_bounds([[bounds[1], bounds[0]], [bounds[3], bounds[2]]])
    # a metric scale bar only (a child of the map, so it runs once the map exists)
    from branca.element import MacroElement
    from jinja2 import Template

    scale = MacroElement()
    scale._template = Template(
        "{% macro script(this, kwargs) %}L.control.scale({imperial: false, maxWidth: 160})"
        ".addTo({{ this._parent.get_name() }});{% endmacro %}")
    m.add_child(scale)
    if tiles:
        url, attr, _ = TILES.get(tiles, (tiles, attribution or tiles, False))
        kw = {"subdomains": _SUBDOMAINS[tiles]} if tiles in _SUBDOMAINS else {}
        folium.TileLayer(url, attr=attr, name="base map", **kw).add_to(m)
    return m


def _is_gcj02(tiles: str | None, gcj02: bool | None) -> bool:
    if gcj02 is not None:
        return bool(gcj02)
    return bool(tiles in TILES and TILES[tiles][2])


def _grid_props(shown: gpd.GeoDataFrame, threshold: int) -> dict[str, tuple[str, Any]]:
    """Popup fields per grid: name shown and values (aggregates only)."""
    props: dict[str, tuple[str, Any]] = {
        "code": ("网格编码 code", shown["code"].astype(str)),
        "kind": ("类型 kind", shown["kind"].astype(str)),
    }
    for col, name, people in (
        ("area_m2", "面积 area (m²)", False),
        ("households", "户数 households", True),
        ("pop_actual", "实有人口 actual population", True),
        ("pop_registered", "户籍人口 registered", True),
        ("pop_floating", "流动人口 floating", True),
        ("pop_absent", "人户分离 registered, absent", True),
        ("elderly", "老年人 elderly (60+)", True),
        ("workload", "工作量 workload", False),
        ("workers", "网格员 workers", False),
        ("workload_per_worker", "人均工作量 workload per worker", False),
    ):
        if col in shown and shown[col].notna().any():
            # the privacy threshold hides small counts of people, not of staff
            t = threshold if people else 0
            props[f"p_{col}"] = (name, shown[col].map(lambda v, t=t: _fmt(v, t)))
    if "deviation" in shown:
        props["p_dev"] = ("偏差 deviation from community mean",
                          shown["deviation"].map(lambda v: "–" if pd.isna(v) else f"{v:+.1%}"))
    if "community_in_scale" in shown:
        props["p_scale"] = ("社区规模 community scale", shown["community_in_scale"].map(
            lambda v: "–" if pd.isna(v) else "holds" if v
            else "out of scale (mean beyond target ± tolerance)"))
    flag = shown["flag"].fillna("").astype(str) if "flag" in shown else \
        pd.Series([""] * len(shown), index=shown.index)
    props["p_flag"] = ("标记 flag", flag.map(
        lambda f: {"oversize": "one unit bigger than a grid", "island": "island"}.get(f, "")))
    est = np.asarray(shown["estimated"], dtype=bool) if "estimated" in shown else \
        np.zeros(len(shown), dtype=bool)
    if est.any():
        props["p_est"] = ("人口 population", np.where(est, "estimated from floor area", "given"))
    if "reason" in shown:
        props["p_reason"] = ("超出容差 out of tolerance", shown["reason"].fillna("").astype(str))
    return props


def _problem(shown: gpd.GeoDataFrame) -> np.ndarray:
    within = shown.get("within_tolerance", True)
    flag = shown["flag"].fillna("").astype(str) if "flag" in shown else ""
    return np.asarray(~np.asarray(within, dtype=bool) | (flag != ""), dtype=bool) & \
        np.ones(len(shown), dtype=bool)


def _grid_layer(m: Any, shown: gpd.GeoDataFrame, fill: Sequence[str], name: str,
                threshold: int, *, show: bool = True, dashed: np.ndarray | None = None) -> None:
    """One GeoJSON layer of grids with popups and tooltips built by Leaflet itself.

    (folium's HTML popups need jQuery, which an offline page does not have.)
    """
    folium = _folium()
    props = _grid_props(shown, threshold)
    data = gpd.GeoDataFrame({k: np.asarray(v) for k, (_, v) in props.items()},
                            geometry=shown.geometry.values, crs=4326)
    problem = _problem(shown)
    data["_fill"] = list(fill)
    data["_line"] = np.where(problem, "#d7191c", "#333333")
    data["_weight"] = np.where(problem, 3, 1)
    data["_dash"] = np.where(dashed, "4 3", "") if dashed is not None else ""
    fields = list(props)
    folium.GeoJson(
        data.__geo_interface__,
        name=name,
        show=show,
        style_function=lambda f: {
            "fillColor": f["properties"]["_fill"],
            "color": f["properties"]["_line"],
            "weight": f["properties"]["_weight"],
            "dashArray": f["properties"]["_dash"] or None,
            "fillOpacity": 0.6,
        },
        tooltip=folium.GeoJsonTooltip(fields=["code"], aliases=["网格 grid"]),
        popup=folium.GeoJsonPopup(fields=fields, aliases=[props[f][0] for f in fields]),
    ).add_to(m)


def _without_pinholes(geom: Any, smallest: float = 1000.0) -> Any:
    """The polygon(s) without holes under ``smallest`` m² (seams, not places)."""
    parts = []
    for p in shapely.get_parts(geom):
        if shapely.get_type_id(p) != 3:
            continue
        holes = [r for r in p.interiors if shapely.Polygon(r).area >= smallest]
        parts.append(shapely.Polygon(p.exterior, holes))
    return shapely.union_all(parts) if parts else geom


#: the community and sub-district areas of the last plan drawn, by the identity
#: of its grids: a plan's coverage and workload maps draw the same outlines
_AREAS: dict[int, tuple[Any, dict[str, tuple[list[str], list[Any], Any]]]] = {}


def _areas(plan: GridPlan) -> dict[str, tuple[list[str], list[Any], Any]]:
    """Per column (``community_id``, ``subdistrict_id``): its ids, areas and CRS.

    A community is the snapped union of its grids (the reprojected grid edges
    differ by nanometres, and an exact union would leave those seams as
    hair-lines inside it); a sub-district the union of its communities (of the
    grids of any community it shares), not of all its grids again.
    """
    grids = plan.grids
    hit = _AREAS.get(id(grids))
    if hit is not None and hit[0]() is grids:
        return hit[1]
    metric = to_metric(grids)
    geoms = np.asarray(metric.geometry.values)
    out: dict[str, tuple[list[str], list[Any], Any]] = {}
    comm = metric["community_id"].astype(str).to_numpy() \
        if "community_id" in metric else None
    if comm is not None:
        names = sorted(set(comm))
        out["community_id"] = (names, [shapely.union_all(geoms[comm == k], grid_size=0.05)
                                       for k in names], metric.crs)
    if "subdistrict_id" in metric:
        sub = metric["subdistrict_id"].astype(str).to_numpy()
        whole: dict[str, Any] = {}
        if comm is not None:
            per = pd.DataFrame({"c": comm, "s": sub}).groupby("c")["s"].nunique()
            cnames, careas, _ = out["community_id"]
            whole = {c: a for c, a in zip(cnames, careas, strict=True) if per[c] == 1}
        names = sorted(set(sub))
        areas = []
        for k in names:
            mine = sub == k
            inside = sorted({c for c in comm[mine] if c in whole}) if comm is not None else []
            rest = mine & ~np.isin(comm, inside) if comm is not None else mine
            areas.append(shapely.union_all(
                np.concatenate([np.array([whole[c] for c in inside], dtype=object),
                                geoms[rest]]), grid_size=0.05))
        out["subdistrict_id"] = (names, areas, metric.crs)
    _AREAS.clear()  # one plan at a time, held weakly: the cache keeps no plan alive
    _AREAS[id(grids)] = (weakref.ref(grids), out)
    return out


def _context_layers(m: Any, plan: GridPlan, shown: gpd.GeoDataFrame, simplify: float,
                    gcj02: bool, *, streets: bool = True) -> None:
    """Community and sub-district boundaries, and the streets, as layers."""
    folium = _folium()
    for col, name, weight, colour in (
        ("subdistrict_id", "街道 sub-district boundaries", 4, "#542788"),
        ("community_id", "社区 community boundaries", 2.5, "#111111"),
    ):
        if col not in shown or shown[col].isna().all():
            continue
        names, areas, crs = _areas(plan)[col]
        outline = [shapely.boundary(_without_pinholes(x)) for x in areas]
        merged = gpd.GeoDataFrame({col: names}, geometry=outline, crs=crs)
        scale = (plan.metrics or {}).get("scale_by_community", {}) \
            if col == "community_id" else {}
        # a community whose mean left its target ± tolerance (规模适度) is drawn
        # red and dashed, its figures in the tooltip
        off = [k in scale and not scale[k]["holds"] for k in names]
        merged["_scale"] = [
            f"{k}: out of scale, mean {scale[k]['mean']:,.0f} vs target "
            f"{scale[k]['target']:g} ±{scale[k]['tolerance']:.0%}" if o else str(k)
            for k, o in zip(names, off, strict=True)]
        merged["_off"] = off
        lines = _display(merged, simplify, gcj02)
        folium.GeoJson(
            lines.__geo_interface__, name=name,
            style_function=lambda f, w=weight, c=colour: {
                "color": "#d7191c" if f["properties"]["_off"] else c,
                "dashArray": "8 6" if f["properties"]["_off"] else None,
                "weight": w + 1 if f["properties"]["_off"] else w, "opacity": 0.9},
            tooltip=folium.GeoJsonTooltip(fields=["_scale"], aliases=[name.split(" ")[0]]),
        ).add_to(m)
    st = getattr(plan, "streets", None)
    if streets and st is not None and len(st):
        lines = _display(st[["class", st.geometry.name]], simplify, gcj02)
        folium.GeoJson(
            lines.__geo_interface__, name="道路 streets", show=False,
            style_function=lambda f: {"color": "#666", "weight": 1.2, "opacity": 0.8},
            tooltip=folium.GeoJsonTooltip(fields=["class"], aliases=["道路 street"]),
        ).add_to(m)


#: a legend swatch for a line, centred on the text
_LINE = "display:inline-block;width:16px;vertical-align:middle;"

def _scale_legend(plan: GridPlan) -> str:
    """The legend line of a community out of scale, where the plan has one."""
    if not (plan.metrics or {}).get("communities_out_of_scale"):
        return ""
    return (f"<br><span style='{_LINE}border-top:3px dashed #d7191c'></span> community "
            "out of scale (mean beyond target ± tolerance)")


#: with more grids than this, the code labels show only when zoomed in to
#: LABEL_ZOOM or closer (thousands of labels at city scale are unreadable and slow)
MANY_GRIDS = 300
LABEL_ZOOM = 15


def _code_labels(m: Any, shown: gpd.GeoDataFrame) -> None:
    folium = _folium()
    lab = folium.FeatureGroup(name="网格编码 grid codes")
    if len(shown) > MANY_GRIDS:
        from branca.element import MacroElement
        from jinja2 import Template

        follow = MacroElement()
        follow._template = Template(
            "{% macro script(this, kwargs) %}(function () {"
            " var m = {{ this._parent.get_name() }}, l = " + lab.get_name() + ";"
            " function f() { if (m.getZoom() >= " + str(LABEL_ZOOM) + ") {"
            " if (!m.hasLayer(l)) { m.addLayer(l); } }"
            " else if (m.hasLayer(l)) { m.removeLayer(l); } }"
            " m.on('zoomend', f); f(); })();{% endmacro %}")
        m.add_child(follow)
    pts = shapely.point_on_surface(np.asarray(shown.geometry.values))
    ok = ~(shapely.is_missing(pts) | shapely.is_empty(pts))
    data = [[round(float(y), 7), round(float(x), 7), str(code)[-3:]]
            for code, x, y in zip(shown["code"].to_numpy()[ok], shapely.get_x(pts[ok]),
                                  shapely.get_y(pts[ok]), strict=True)]
    lab.add_to(m)
    # one script draws every label (a folium Marker each compiles templates: a
    # minute at city scale); the text is set as text, never parsed as HTML
    from branca.element import MacroElement
    from jinja2 import Template

    labels = MacroElement()
    labels._template = Template(
        "{% macro script(this, kwargs) %}(function () {"
        " var l = " + lab.get_name() + ";"
        " " + json.dumps(data, ensure_ascii=True).replace("</", "<\\/") + ".forEach("
        "function (p) { var e = document.createElement('div');"
        " e.style.cssText = 'font:10px sans-serif;color:#111;white-space:nowrap;"
        "transform:translate(-50%,-50%)'; e.textContent = p[2];"
        " L.marker([p[0], p[1]], {icon: L.divIcon({html: e, className: 'empty'})})"
        ".addTo(l); }); })();{% endmacro %}")
    m.add_child(labels)
    if len(shown) > MANY_GRIDS:
        # the zoom rule runs after the labels exist
        m._children.move_to_end(follow.get_name())


def _box(m: Any, inner: str, where: str = "bottom:40px;left:12px") -> None:
    folium = _folium()
    m.get_root().html.add_child(folium.Element(
        f"<div style='position:fixed;{where};z-index:9999;background:#fff;"
        f"padding:6px 9px;border:1px solid #999;font:12px sans-serif'>{inner}</div>"))


def coverage_map(
    plan: GridPlan,
    *,
    tiles: str | None = None,
    attribution: str | None = None,
    gcj02: bool | None = None,
    buildings: bool | None = False,
    simplify: float = 1.0,
    privacy_threshold: int = 5,
    labels: bool = True,
) -> Any:
    """A coverage map of a plan: every grid filled, outlined and labelled.

    Parameters
    ----------
    plan : GridPlan
        The plan to draw.
    tiles
        ``None`` (default): no base map, nothing fetched. ``"osm"``: OpenStreetMap;
        ``"amap"`` (高德) or ``"tencent"`` (腾讯): their tiles, which are in
        GCJ-02. Any other string: a tile URL template (an intranet tile server,
        Tianditu), with ``attribution``.
    gcj02
        Shift the overlay from WGS84 to GCJ-02 so that it lines up with GCJ-02
        tiles. Default: on for ``"amap"`` and ``"tencent"``, off otherwise (say
        ``gcj02=True`` for your own GCJ-02 tile server).
    buildings
        Also draw the buildings, coloured by their grid. ``None``: only when the
        plan has at most :data:`BUILDINGS_SHOWN` buildings (a browser parses every
        building even when the layer is off: 100,000 take over a minute).
    simplify
        Tolerance in metres for simplifying outlines for display.
    privacy_threshold
        Counts under this show as ``<N`` in popups (default 5).
    labels
        Write each grid's code at its centre.

    Returns
    -------
    folium.Map
        Self-contained: it draws without internet.

    Examples
    --------
    >>> import geopandas as gpd, shapely, gridmap
    >>> from shapely import LineString
    >>> b = gpd.GeoDataFrame({"households": [100] * 4},
    ...     geometry=[shapely.box(x * 50 + 10, 10, x * 50 + 30, 30) for x in range(4)],
    ...     crs=32651)
    >>> s = gpd.GeoDataFrame({"highway": ["residential"] * 7},
    ...     geometry=[LineString([(v, -5), (v, 45)]) for v in (0, 50, 100, 150, 200)]
    ...     + [LineString([(-5, v), (205, v)]) for v in (0, 40)], crs=32651)
    >>> m = coverage_map(gridmap.delineate(b, s, target=200))
    >>> "cdn." in m.get_root().render()
    False
    """
    folium = _folium()
    _check_threshold(privacy_threshold)
    shift = _is_gcj02(tiles, gcj02)
    grids = plan.grids
    metric = to_metric(grids)
    colours = grid_colours(metric)
    # road and unit grids are told apart from community grids at a glance
    kinds = grids["kind"].astype(str).to_numpy() if "kind" in grids else None
    if kinds is not None:
        colours = [KIND_COLOURS.get(k, col) for k, col in zip(kinds, colours, strict=True)]
    shown = _display(grids, simplify, shift)
    est = np.asarray(shown["estimated"], dtype=bool) if "estimated" in shown else None
    m = _base_map(shown.total_bounds, tiles, attribution)
    _grid_layer(m, shown, colours, "网格 grids", privacy_threshold, dashed=est)
    _context_layers(m, plan, shown, simplify, shift)
    if labels:
        _code_labels(m, shown)
    n_b = len(plan.buildings)
    if buildings is None:
        buildings = n_b <= BUILDINGS_SHOWN
    left_out = "" if buildings or not n_b else (
        f"<br>{n_b:,} buildings not drawn (a map with them is slow to open)")
    if buildings and n_b:
        colour_of = dict(zip(grids["grid_id"], colours, strict=True))
        b = _display(plan.buildings[["grid_id", plan.buildings.geometry.name]],
                     0.5 * simplify, shift)
        b["_colour"] = b["grid_id"].map(colour_of).fillna("#999999")
        folium.GeoJson(
            b.__geo_interface__,
            name="楼栋 buildings",
            style_function=lambda f: {"fillColor": f["properties"]["_colour"],
                                      "color": "#555", "weight": 0.5, "fillOpacity": 0.9},
        ).add_to(m)
    _box(m,
         f"<b>{len(grids)} grids</b><br>"
         "<span style='border:2px solid #d7191c;padding:0 8px'></span> out of tolerance"
         " or flagged<br>"
         "<span style='border:1px dashed #333;padding:0 8px'></span> population estimated<br>"
         "<span style='border:1px solid #333;background:#8dd3c7;padding:0 8px'></span>"
         " grid (neighbours differ in colour)<br>"
         f"<span style='{_LINE}border-top:3px solid #111'></span> community boundary"
         + _scale_legend(plan)
         + "".join(f"<br><span style='border:1px solid #333;background:{KIND_COLOURS[k]};"
                   f"padding:0 8px'></span> {label}" for k, label in
                   (("road", "道路型 road grid"), ("unit", "单位型 unit grid"))
                   if kinds is not None and k in set(kinds))
         + ("<br>overlay shifted to GCJ-02" if shift else "") + left_out)
    folium.LayerControl(collapsed=False).add_to(m)
    return offline(m)


def workload_map(
    plan: GridPlan,
    *,
    scheme: str = "Quantiles",
    k: int = 5,
    tiles: str | None = None,
    attribution: str | None = None,
    gcj02: bool | None = None,
    simplify: float = 1.0,
    privacy_threshold: int = 5,
    chart: bool = True,
    font: str | None = None,
) -> Any:
    """A workload map: workload per grid and per grid worker, classed.

    Two layers, each a choropleth classed by mapclassify (``scheme``, ``k``)
    with its class bounds in a legend: the workload of every grid, and the
    workload per grid worker (switch in the layer control).  Bottom right, a chart
    of every grid's load against the tolerance band
    (:func:`gridmap.chart.load_chart_svg`), drawn in the page as SVG, with a link
    that saves it as ``load_chart.svg``.  The browser draws its text: writing the
    page needs neither matplotlib nor a CJK font.

    Parameters
    ----------
    plan : GridPlan
    scheme, k
        mapclassify classifier and number of classes (at most 7); the default,
        ``Quantiles``, is deterministic.
    tiles, attribution, gcj02, simplify, privacy_threshold
        As for :func:`coverage_map`.
    chart
        Draw the load chart in the page.
    font
        Ignored, and kept so that calls that pass it keep working: the chart
        was a PNG drawn with this CJK font; it is now SVG, drawn by the browser.
        (Static maps still take a font: :func:`gridmap.static.static_map`.)

    Returns
    -------
    folium.Map
        Self-contained: it draws without internet.

    Examples
    --------
    >>> import geopandas as gpd, shapely, gridmap
    >>> from shapely import LineString
    >>> b = gpd.GeoDataFrame({"households": [100] * 4},
    ...     geometry=[shapely.box(x * 50 + 10, 10, x * 50 + 30, 30) for x in range(4)],
    ...     crs=32651)
    >>> s = gpd.GeoDataFrame({"highway": ["residential"] * 7},
    ...     geometry=[LineString([(v, -5), (v, 45)]) for v in (0, 50, 100, 150, 200)]
    ...     + [LineString([(-5, v), (205, v)]) for v in (0, 40)], crs=32651)
    >>> page = workload_map(gridmap.delineate(b, s, target=100)).get_root().render()
    >>> "<svg" in page, "id='gridmap-load-chart'" in page, "cdn." in page
    (True, True, False)
    """
    from urllib.parse import quote

    del font  # the chart is SVG now: the browser draws its text

    _check_threshold(privacy_threshold)
    shift = _is_gcj02(tiles, gcj02)
    grids = plan.grids
    if "workload" not in grids:
        metric = to_metric(grids)
        load, _ = grid_workload(grids, area_km2=metric.geometry.area.to_numpy() / 1e6)
        grids = grids.join(load)
    shown = _display(grids, simplify, shift)
    m = _base_map(shown.total_bounds, tiles, attribution)
    legends = []
    for col, name, show in (
        ("workload", "工作量 workload per grid", True),
        ("workload_per_worker", "人均工作量 workload per worker", False),
    ):
        values = shown[col].to_numpy(dtype=float)
        bins, cls = classify(values, scheme=scheme, k=k)
        ramp = RAMP[len(bins)]
        _grid_layer(m, shown, [ramp[c] for c in cls], name, privacy_threshold, show=show)
        lows = [float(np.nanmin(values)), *bins[:-1]]
        rows = "".join(
            f"<br><span style='background:{ramp[i]};border:1px solid #333;padding:0 8px'>"
            f"</span> {lows[i]:,.0f} – {bins[i]:,.0f}" for i in range(len(bins)))
        legends.append(f"<b>{html.escape(name)}</b> ({html.escape(scheme)}){rows}")
    _context_layers(m, plan, shown, simplify, shift)
    _code_labels(m, shown)
    total_w = float(np.nansum(shown["workload"]))
    workers = int(np.nansum(shown["workers"]))
    _box(m, "<br>".join(legends) + f"<br>total workload {total_w:,.0f}, {workers} workers"
         "<br><span style='border:2px solid #d7191c;padding:0 8px'></span> out of tolerance"
         " or flagged" + _scale_legend(plan))
    if chart:
        svg = load_chart_svg(plan)
        # the same markup, as a file to save (percent-encoded: no quote, #, < or >)
        uri = "data:image/svg+xml;charset=utf-8," + quote(svg, safe="/:=,.;()")
        _box(m,
             f"{svg}<a href='{uri}' download='load_chart.svg'>save chart as SVG</a>",
             where="bottom:24px;right:12px")
    _folium().LayerControl(collapsed=False).add_to(m)
    return offline(m)


def diff_map(
    plan: GridPlan,
    previous: GridPlan | None = None,
    *,
    tiles: str | None = None,
    attribution: str | None = None,
    gcj02: bool | None = None,
    simplify: float = 1.0,
    privacy_threshold: int = 5,
    labels: bool = True,
) -> Any:
    """What a re-partition changed: old and new boundaries, what moved.

    Layers: the grids after, filled by what happened to them (unchanged grey,
    changed orange, new green), with their population before and after in the
    popup; the area that changed grid (red); the grid boundaries before (blue,
    dashed) over those after (black); the buildings that changed grid (red),
    the new ones (green) and the demolished ones (grey outline), each with the
    grid it leaves and the grid it joins.

    Parameters
    ----------
    plan : GridPlan
        A plan made by :func:`gridmap.repartition`.
    previous : GridPlan, optional
        The plan before; default ``plan.previous``.
    tiles, attribution, gcj02, simplify, privacy_threshold, labels
        As for :func:`coverage_map`.

    Returns
    -------
    folium.Map
        Self-contained: it draws without internet.

    Examples
    --------
    >>> import geopandas as gpd, shapely, gridmap
    >>> from shapely import LineString
    >>> b = gpd.GeoDataFrame({"id": range(8), "households": [100] * 8},
    ...     geometry=[shapely.box(x * 50 + 10, 10, x * 50 + 30, 30) for x in range(8)],
    ...     crs=32651)
    >>> s = gpd.GeoDataFrame({"highway": ["residential"] * 11},
    ...     geometry=[LineString([(v, -5), (v, 45)]) for v in range(0, 401, 50)]
    ...     + [LineString([(-5, v), (405, v)]) for v in (0, 40)], crs=32651)
    >>> plan = gridmap.delineate(b, s, target=400)
    >>> m = diff_map(gridmap.repartition(plan))
    >>> "cdn." in m.get_root().render()
    False
    """
    folium = _folium()
    _check_threshold(privacy_threshold)
    previous = previous if previous is not None else getattr(plan, "previous", None)
    if previous is None:
        msg = ("diff_map needs the plan before: pass previous=..., or draw a plan made "
               "by gridmap.repartition(), which remembers it")
        raise GridmapError(msg)
    shift = _is_gcj02(tiles, gcj02)
    by = plan.params.get("by", "households")
    table = handover(previous, plan)
    grids, before = plan.grids, previous.grids.to_crs(plan.grids.crs)
    touched = set(table["from_grid"].dropna().tolist()) | set(table["to_grid"].dropna().tolist())
    is_new = ~grids["grid_id"].isin(before["grid_id"]).to_numpy()
    state = np.where(is_new, "new", np.where(grids["grid_id"].isin(touched), "changed", "kept"))
    shown = _display(grids, simplify, shift)
    old_w = before.set_index("grid_id")[by] if by in before else pd.Series(dtype=float)
    data = gpd.GeoDataFrame({
        "code": shown["code"].astype(str).to_numpy(),
        "state": pd.Series(state).map({"new": "新网格 new grid", "changed": "调整 changed",
                                       "kept": "未变 unchanged"}).to_numpy(),
        "before": shown["grid_id"].map(old_w).map(
            lambda v: "–" if pd.isna(v) else _fmt(v, privacy_threshold)).to_numpy(),
        "after": shown[by].map(lambda v: _fmt(v, privacy_threshold)).to_numpy()
        if by in shown else "",
        "_fill": [DIFF_COLOURS[k] for k in state],
    }, geometry=shown.geometry.values, crs=4326)
    m = _base_map(shown.total_bounds, tiles, attribution)
    folium.GeoJson(
        data.__geo_interface__, name="网格（调整后） grids after",
        style_function=lambda f: {"fillColor": f["properties"]["_fill"], "color": "#111",
                                  "weight": 1.5, "fillOpacity": 0.6},
        tooltip=folium.GeoJsonTooltip(fields=["code"], aliases=["网格 grid"]),
        popup=folium.GeoJsonPopup(fields=["code", "state", "before", "after"], aliases=[
            "网格编码 code", "变化 change", f"调整前 {by} before", f"调整后 {by} after"]),
    ).add_to(m)
    _changed_area_layer(m, grids, before, is_new, simplify, shift)
    old_lines = before[["grid_id", before.geometry.name]].copy()
    old_lines["geometry"] = shapely.boundary(np.asarray(old_lines.geometry.values))
    folium.GeoJson(
        _display(old_lines, simplify, shift).__geo_interface__, name="原网格边界 boundaries before",
        style_function=lambda f: {"color": DIFF_COLOURS["before"], "weight": 2.5,
                                  "dashArray": "6 4", "opacity": 0.9},
    ).add_to(m)
    if len(table):
        _moved_buildings_layer(m, plan, previous, table, simplify, shift, privacy_threshold)
    if labels:
        _code_labels(m, shown)
    _diff_legend(m, plan, table, shift)
    folium.LayerControl(collapsed=False).add_to(m)
    return offline(m)


def _changed_area_layer(m: Any, grids: gpd.GeoDataFrame, before: gpd.GeoDataFrame,
                        is_new: np.ndarray, simplify: float, shift: bool) -> None:
    """The diff map's layer of the area that changed hands.

    Each grid's polygon outside its old self (a new grid is all new: its green says
    so without red).
    """
    folium = _folium()
    metric_new = to_metric(grids)
    metric_old = before.to_crs(metric_new.crs).set_index("grid_id").geometry
    old_same = metric_old.reindex(grids["grid_id"]).to_numpy()
    new_geoms = np.asarray(metric_new.geometry.values)
    gained = np.where(pd.isna(old_same), new_geoms,
                      shapely.difference(new_geoms, np.where(pd.isna(old_same), None, old_same),
                                         grid_size=0.01))
    gained = shapely.buffer(shapely.buffer(gained, -0.5), 0.5)  # seams are not areas
    keep = ~is_new & ~shapely.is_empty(gained) & (shapely.area(gained) > 1.0)
    if keep.any():
        area = gpd.GeoDataFrame({"code": grids["code"].astype(str).to_numpy()[keep]},
                                geometry=gained[keep], crs=metric_new.crs)
        folium.GeoJson(
            _display(area, simplify, shift).__geo_interface__,
            name="换网格的区域 area that changed grid",
            style_function=lambda f: {"fillColor": DIFF_COLOURS["area"],
                                      "color": DIFF_COLOURS["area"],
                                      "weight": 0.5, "fillOpacity": 0.45},
            tooltip=folium.GeoJsonTooltip(fields=["code"], aliases=["now in grid 现属网格"]),
        ).add_to(m)


def _moved_buildings_layer(m: Any, plan: GridPlan, previous: GridPlan, table: pd.DataFrame,
                           simplify: float, shift: bool, privacy_threshold: int) -> None:
    """The diff map's layer of the buildings in the handover ``table``.

    Moved (red), new (green), demolished (dashed outline, drawn where it stood).
    """
    folium = _folium()
    by = plan.params.get("by", "households")
    grids = plan.grids
    key = building_id_column(plan)
    geom_of = pd.concat([previous.buildings.to_crs(grids.crs).set_index(key).geometry,
                         plan.buildings.set_index(key).geometry])
    geom_of = geom_of[~geom_of.index.duplicated(keep="last")]
    id_col = table.columns[0]
    moved = gpd.GeoDataFrame({
        "id": table[id_col].astype(str).to_numpy(),
        "change": table["change"].to_numpy(),
        "from": table["from_code"].fillna("–").astype(str).to_numpy(),
        "to": table["to_code"].fillna("–").astype(str).to_numpy(),
        by: table[by].map(lambda v: "–" if pd.isna(v) else _fmt(v, privacy_threshold))
        .to_numpy(),
    }, geometry=geom_of.reindex(table[id_col]).to_numpy(), crs=grids.crs)
    moved = _display(moved, 0.5 * simplify, shift)
    style = {"moved": (DIFF_COLOURS["moved"], 0.9, ""),
             "new": (DIFF_COLOURS["new_building"], 0.9, ""),
             "demolished": ("#ffffff", 0.0, "3 2")}
    moved["_fill"] = moved["change"].map(lambda c: style[c][0])
    moved["_op"] = moved["change"].map(lambda c: style[c][1])
    moved["_dash"] = moved["change"].map(lambda c: style[c][2])
    folium.GeoJson(
        moved.__geo_interface__, name="换网格的楼栋 buildings that change grid",
        style_function=lambda f: {"fillColor": f["properties"]["_fill"],
                                  "fillOpacity": f["properties"]["_op"],
                                  "color": "#333", "weight": 1,
                                  "dashArray": f["properties"]["_dash"] or None},
        tooltip=folium.GeoJsonTooltip(fields=["id"], aliases=["楼栋 building"]),
        popup=folium.GeoJsonPopup(fields=["id", "change", "from", "to", by], aliases=[
            "楼栋 building", "变化 change", "原网格 from grid", "新网格 to grid", by]),
    ).add_to(m)


def _diff_legend(m: Any, plan: GridPlan, table: pd.DataFrame, shift: bool) -> None:
    """The diff map's box: what changed, in figures, and what each colour means."""
    by = plan.params.get("by", "households")
    counts = table["change"].value_counts()
    ch = plan.metrics.get("changes", {})
    kept = ch.get("share_households_kept")

    def swatch(colour: str, border: str = "1px solid #333") -> str:
        return (f"<span style='display:inline-block;width:14px;height:10px;border:{border};"
                f"background:{colour};vertical-align:middle'></span>")

    def line(style: str) -> str:
        return (f"<span style='display:inline-block;width:22px;height:0;border-top:{style};"
                "vertical-align:middle'></span>")

    _box(m,
         "<b>调整 what changed</b><br>"
         + (f"{kept:.1%} of {by} keep their grid<br>" if kept is not None else "")
         + f"{int(counts.get('moved', 0)):,} buildings change grid, "
         f"{int(counts.get('new', 0)):,} new, {int(counts.get('demolished', 0)):,} demolished<br>"
         f"{swatch(DIFF_COLOURS['changed'])} grid changed &nbsp;"
         f"{swatch(DIFF_COLOURS['new'])} new grid &nbsp;"
         f"{swatch(DIFF_COLOURS['kept'])} unchanged<br>"
         f"{swatch(DIFF_COLOURS['area'])} area that changed grid<br>"
         f"{line('3px dashed ' + DIFF_COLOURS['before'])} boundary before &nbsp;"
         f"{line('2px solid #111')} boundary after<br>"
         f"{swatch(DIFF_COLOURS['moved'])} building moved &nbsp;"
         f"{swatch(DIFF_COLOURS['new_building'])} new &nbsp;"
         f"{swatch('#fff', '1px dashed #333')} demolished"
         + ("<br>overlay shifted to GCJ-02" if shift else ""))


def _check_threshold(threshold: Any) -> None:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, np.integer)) \
            or threshold < 1:
        msg = (f"privacy_threshold must be a whole number of at least 1, got {threshold!r}; "
               "counts under it show as '<N' (default 5)")
        raise GridmapError(msg)
