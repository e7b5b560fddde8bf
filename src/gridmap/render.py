"""Maps of a plan that open anywhere, offline.

Government networks are often offline intranets, so a map never fetches a script
or a stylesheet: Leaflet (BSD-2-Clause, shipped in ``gridmap/_static/leaflet``)
is written into the page itself, and no base map is drawn unless one is asked for.
"""

from __future__ import annotations

import html
from importlib import resources
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import shapely

__all__ = ["coverage_map", "offline", "grid_colours", "PALETTE"]

#: fill colours for grids; neighbours never share one (a greedy colouring of the
#: grids' adjacency rarely needs more than five)
PALETTE = (
    "#8dd3c7", "#ffffb3", "#bebada", "#fb8072", "#80b1d3",
    "#fdb462", "#b3de69", "#fccde5", "#d9d9d9", "#bc80bd",
)

_TILES = {
    "osm": (
        "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
        "&copy; OpenStreetMap contributors",
    ),
}


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


def grid_colours(grids: gpd.GeoDataFrame) -> list[str]:
    """A colour per grid such that grids sharing an edge never share a colour."""
    geoms = np.asarray(grids.geometry.values)
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate="intersects")
    keep = a < b
    a, b = a[keep], b[keep]
    shared = shapely.length(
        shapely.intersection(shapely.boundary(geoms[a]), shapely.boundary(geoms[b]))
    )
    g = nx.Graph()
    g.add_nodes_from(range(len(geoms)))
    g.add_edges_from(zip(a[shared > 0].tolist(), b[shared > 0].tolist(), strict=True))
    colouring = nx.greedy_color(g, strategy="largest_first")
    return [PALETTE[colouring[i] % len(PALETTE)] for i in range(len(geoms))]


def _fmt(value: Any, threshold: int) -> str:
    """A count for a popup; counts under the privacy threshold show as "<N"."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    v = float(value)
    if 0 < v < threshold:
        return f"&lt;{threshold}"
    return f"{v:,.0f}"


def coverage_map(
    plan: Any,
    *,
    tiles: str | None = None,
    attribution: str | None = None,
    buildings: bool = False,
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
        ``None`` (default): no base map, nothing fetched. ``"osm"``: OpenStreetMap
        tiles. Any other string: a tile URL template (an intranet tile server,
        Tianditu), with ``attribution``.
    buildings
        Also draw the buildings, coloured by their grid.
    simplify
        Tolerance in metres for simplifying grid outlines for display.
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
    grids = plan.grids
    metric = grids.to_crs(grids.estimate_utm_crs()) if grids.crs.is_geographic else grids
    colours = grid_colours(metric)
    shown = metric.copy()
    shown["geometry"] = shapely.simplify(np.asarray(metric.geometry.values), simplify,
                                         preserve_topology=True)
    shown = shown.to_crs(4326)
    shown["geometry"] = shapely.set_precision(np.asarray(shown.geometry.values), 1e-6)
    shown["_colour"] = colours
    within = shown["within_tolerance"] if "within_tolerance" in shown else True
    shown["_problem"] = ~np.asarray(within, dtype=bool) | (shown.get("flag", "") != "")
    est = shown["estimated"] if "estimated" in shown else False
    shown["_estimated"] = np.asarray(est, dtype=bool) & np.ones(len(shown), dtype=bool)

    bounds = shown.total_bounds
    m = folium.Map(tiles=None, control_scale=True, prefer_canvas=True)
    m.fit_bounds([[bounds[1], bounds[0]], [bounds[3], bounds[2]]])
    if tiles:
        url, attr = _TILES.get(tiles, (tiles, attribution or tiles))
        folium.TileLayer(url, attr=attr, name="base map").add_to(m)

    # one GeoJSON layer: popups and tooltips built from properties by Leaflet itself
    # (folium's HTML popups need jQuery, which an offline page does not have)
    props = {
        "code": ("网格编码 code", shown["code"].astype(str)),
        "kind": ("类型 kind", shown["kind"].astype(str)),
    }
    for col, name in (
        ("households", "户数 households"),
        ("pop_actual", "实有人口 actual population"),
        ("pop_registered", "户籍人口 registered"),
        ("pop_floating", "流动人口 floating"),
        ("workload", "工作量 workload"),
        ("workers", "网格员 workers"),
    ):
        if col in shown and shown[col].notna().any():
            props[f"p_{col}"] = (name, shown[col].map(lambda v: _fmt(v, privacy_threshold)))
    if "deviation" in shown:
        props["p_dev"] = ("偏差 deviation from community mean",
                          shown["deviation"].map(lambda v: "–" if v != v else f"{v:+.1%}"))
    props["p_flag"] = ("标记 flag", shown.get("flag", "").fillna("").astype(str).map(
        lambda f: {"oversize": "one unit bigger than a grid", "island": "island"}.get(f, "")))
    if shown["_estimated"].any():
        props["p_est"] = ("人口 population", np.where(shown["_estimated"],
                                                     "estimated from floor area", "given"))
    if "reason" in shown:
        props["p_reason"] = ("超出容差 out of tolerance", shown["reason"].fillna("").astype(str))
    data = gpd.GeoDataFrame(
        {k: np.asarray(v) for k, (_, v) in props.items()},
        geometry=shown.geometry.values, crs=4326,
    )
    data["_fill"] = shown["_colour"].to_numpy()
    data["_line"] = np.where(shown["_problem"], "#d7191c", "#333333")
    data["_weight"] = np.where(shown["_problem"], 3, 1)
    data["_dash"] = np.where(shown["_estimated"], "4 3", "")
    fields = list(props)
    folium.GeoJson(
        data.__geo_interface__,
        name="grids",
        style_function=lambda f: {
            "fillColor": f["properties"]["_fill"],
            "color": f["properties"]["_line"],
            "weight": f["properties"]["_weight"],
            "dashArray": f["properties"]["_dash"] or None,
            "fillOpacity": 0.55,
        },
        tooltip=folium.GeoJsonTooltip(fields=["code"], aliases=["网格 grid"]),
        popup=folium.GeoJsonPopup(fields=fields, aliases=[props[f][0] for f in fields]),
    ).add_to(m)

    if labels:
        lab = folium.FeatureGroup(name="grid codes")
        pts = shapely.point_on_surface(np.asarray(shown.geometry.values))
        for code, pt in zip(shown["code"], pts, strict=True):
            folium.Marker(
                [pt.y, pt.x],
                icon=folium.DivIcon(
                    html=f"<div style='font:10px sans-serif;color:#111;white-space:nowrap;"
                    f"transform:translate(-50%,-50%)'>{html.escape(str(code)[-3:])}</div>"
                ),
            ).add_to(lab)
        lab.add_to(m)

    if buildings and len(plan.buildings):
        colour_of = dict(zip(grids["grid_id"], colours, strict=True))
        b = plan.buildings[["grid_id", plan.buildings.geometry.name]].to_crs(4326)
        b["_colour"] = b["grid_id"].map(colour_of)
        folium.GeoJson(
            b.__geo_interface__,
            name="buildings",
            style_function=lambda f: {"fillColor": f["properties"]["_colour"],
                                      "color": "#555", "weight": 0.5, "fillOpacity": 0.9},
        ).add_to(m)

    legend = (
        "<div style='position:fixed;bottom:24px;left:12px;z-index:9999;background:#fff;"
        "padding:6px 9px;border:1px solid #999;font:12px sans-serif'>"
        f"<b>{len(grids)} grids</b><br>"
        "<span style='border:2px solid #d7191c;padding:0 8px'></span> out of tolerance"
        " or flagged<br>"
        "<span style='border:1px dashed #333;padding:0 8px'></span> population estimated<br>"
        "<span style='border:1px solid #333;background:#8dd3c7;padding:0 8px'></span>"
        " grid (neighbours differ in colour)</div>"
    )
    m.get_root().html.add_child(folium.Element(legend))
    folium.LayerControl(collapsed=False).add_to(m)
    return offline(m)
