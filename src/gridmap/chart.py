"""The load chart as SVG, for web pages: the browser draws it, text and all.

Nothing here needs matplotlib or a font on the machine that writes the page: the
chart is SVG markup whose Chinese labels are drawn by the browser that opens it,
with the fonts of the machine it runs on.  It is what :func:`gridmap.static.load_chart`
draws for reports: every grid's deviation from its community mean, sorted, against
the tolerance band.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import numpy as np

from .colours import CHART_COLOURS

if TYPE_CHECKING:  # charts take a plan; the plan's module imports them, not the reverse
    from .plan import GridPlan

__all__ = ["CHART_COLOURS", "load_chart_svg"]


def _num(v: float) -> str:
    """A coordinate with at most two decimals and no trailing zeros."""
    s = f"{v:.2f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _pct(v: float) -> str:
    """A tick label: ``+10%``, ``0%``, ``−10%``."""
    s = f"{abs(v):g}%"
    return "0%" if v == 0 else ("+" if v > 0 else "\u2212") + s


def _chart_data(plan: GridPlan) -> dict[str, Any]:
    """Deviation (%), tolerance (%) and colour of every charted grid, in bar order.

    Charted are the community grids that have a deviation (road and unit grids
    are not balanced and have none).  Bars are sorted by deviation; when
    communities have different tolerances, by tolerance first, so that each
    band is one stretch of the chart.
    """
    g = plan.grids
    n = len(g)
    dev = g["deviation"].to_numpy(dtype=float) if "deviation" in g else np.full(n, np.nan)
    keep = np.isfinite(dev)
    if "kind" in g:
        keep &= (g["kind"].astype(str) == "community").to_numpy()
    default = plan.params.get("tolerance", 0.1)
    default = float(default) if np.ndim(default) == 0 else np.nan
    tol = g["tolerance"].to_numpy(dtype=float) if "tolerance" in g else np.full(n, default)
    tol = np.where(np.isfinite(tol), tol, default)
    flag = (g["flag"].fillna("").astype(str) != "").to_numpy() if "flag" in g \
        else np.zeros(n, dtype=bool)
    if "within_tolerance" in g:
        out = ~g["within_tolerance"].fillna(True).astype(bool).to_numpy()
    else:
        out = np.abs(dev) > tol + 1e-9
    dev, tol, flag, out = dev[keep] * 100, tol[keep] * 100, flag[keep], out[keep]
    order = np.lexsort((np.arange(len(dev)), dev, tol))
    dev, tol, flag, out = dev[order], tol[order], flag[order], out[order]
    colour = np.where(flag, "flagged", np.where(out, "out", "within"))
    return {"dev": dev, "tol": tol, "colour": colour, "n_other": int(n - keep.sum())}


def _staircase(heights: np.ndarray, start: int) -> str:
    """One subpath for a run of adjacent bars: up to each height, across one bar.

    Bar ``i`` spans ``[i, i + 1]``; each bar is one ``H`` command, at the height
    of the ``V`` before it (a ``V`` is left out when the height repeats).
    """
    parts = [f"M{start} 0"]
    last = None
    for i, h in enumerate(heights, start=start):
        y = _num(h)
        if y != last:
            parts.append(f"V{y}")
            last = y
        parts.append(f"H{i + 1}")
    parts.append("V0Z")
    return "".join(parts)


def _ticks(top: float) -> list[float]:
    """Round percentages for the axis: at most three on each side of zero."""
    for step in (1, 2, 2.5, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000):
        if top / step <= 3:
            break
    k = int(np.floor(top / step + 1e-9))
    return [i * step for i in range(-k, k + 1)]


def load_chart_svg(plan: GridPlan, *, width: int = 480, height: int = 230,
                   element_id: str = "gridmap-load-chart") -> str:
    """The load of every grid against the tolerance band, as SVG markup.

    The chart of :func:`gridmap.static.load_chart`, drawn by the browser: every
    community grid's deviation from its community mean on the balance field
    (``plan.params["by"]``), sorted, one bar each; the band ``±tolerance``
    shaded (each community's own when they differ); grids out of their band red,
    flagged grids (one unit heavier than a grid, islands) orange, the others
    blue.  The scale is set by the grids that are not flagged; taller bars are
    cut at the frame and the chart says so.  Bars of one colour are one path,
    so that a chart of thousands of grids stays small (5,000 bars: about 40 kB).

    Parameters
    ----------
    plan : GridPlan
        The plan to chart.
    width, height
        Size in CSS pixels (the drawing scales: it has a ``viewBox``).
    element_id
        ``id`` of the ``<svg>`` element.

    Returns
    -------
    str
        A standalone ``<svg>`` element (with its namespace): inline it in HTML,
        or write it to a ``.svg`` file.  No font is needed to make it; the
        browser that shows it draws the Chinese labels with its own fonts.

    Examples
    --------
    >>> import geopandas as gpd, shapely, gridmap
    >>> from shapely import LineString
    >>> b = gpd.GeoDataFrame({"households": [100, 100, 100, 100, 50, 100]},
    ...     geometry=[shapely.box(x * 50 + 10, 10, x * 50 + 30, 30) for x in range(6)],
    ...     crs=32651)
    >>> s = gpd.GeoDataFrame({"highway": ["residential"] * 9},
    ...     geometry=[LineString([(v, -5), (v, 45)]) for v in range(0, 301, 50)]
    ...     + [LineString([(-5, v), (305, v)]) for v in (0, 40)], crs=32651)
    >>> plan = gridmap.delineate(b, s, target=100, tolerance=0.1)
    >>> svg = load_chart_svg(plan)
    >>> svg.startswith("<svg") and "id='gridmap-load-chart'" in svg
    True
    >>> "1 out, 0 flagged" in svg  # the grid of 50 households, 45% under the mean
    True
    """
    d = _chart_data(plan)
    dev, tol, colour = d["dev"], d["tol"], d["colour"]
    n = len(dev)
    by = str(plan.params.get("by", "households"))
    esc = html.escape
    n_out = int((colour == "out").sum())
    n_flag = int((colour == "flagged").sum())
    tols = sorted({float(t) for t in tol if np.isfinite(t)})
    band = (f"±{tols[0]:g}%" if len(tols) == 1 else
            f"±{tols[0]:g}–{tols[-1]:g}%" if tols else "tolerance")
    # plot area
    x0, x1 = 48.0, width - 10.0
    y0, y1 = 36.0, height - 46.0
    mid = (y0 + y1) / 2
    ordinary = np.abs(dev[colour != "flagged"])
    top = max(2 * (tols[-1] if tols else 10.0), float(ordinary.max(initial=0))) * 1.15
    shown = np.clip(dev, -top, top)
    sx = (x1 - x0) / max(n, 1)
    sy = (y1 - y0) / (2 * top)
    title = (f"各网格负荷 Load of every grid against the {band} band"
             if len(tols) <= 1 else
             f"各网格负荷 Load of every grid against its community's band ({band})")
    out = [
        (f"<svg xmlns='http://www.w3.org/2000/svg' id='{esc(element_id)}' "
         f"width='{width}' height='{height}' viewBox='0 0 {width} {height}' "
         "role='img' font-family='sans-serif' style='display:block;background:#fff'>"),
        f"<title>{esc(title)}: {n_out} out, {n_flag} flagged</title>",
        (f"<text x='{width / 2:g}' y='14' text-anchor='middle' font-size='11.5' "
         f"font-weight='bold'>{esc(title)}</text>"),
        (f"<text x='{width / 2:g}' y='28' text-anchor='middle' font-size='11'>"
         f"{n_out} out, {n_flag} flagged</text>"),
    ]
    # axis: ticks and light grid lines, in pixels
    for t in _ticks(top):
        y = mid - t * sy
        out.append(f"<line x1='{x0:g}' x2='{x1:g}' y1='{_num(y)}' y2='{_num(y)}' "
                   "stroke='#e5e5e5' stroke-width='0.6'/>")
        out.append(f"<text x='{x0 - 4:g}' y='{_num(y + 3.5)}' text-anchor='end' "
                   f"font-size='10'>{_pct(t)}</text>")
    # band and bars, in bar units across and percent up
    out.append(f"<g class='bars' transform='translate({x0:g} {_num(mid)}) "
               f"scale({sx:.6g} {-sy:.6g})'>")
    start = 0
    while start < n:
        stop = start + 1
        while stop < n and tol[stop] == tol[start]:
            stop += 1
        if np.isfinite(tol[start]):
            out.append(f"<rect class='band' x='{start}' width='{stop - start}' "
                       f"y='{_num(-tol[start])}' height='{_num(2 * tol[start])}' "
                       f"fill='{CHART_COLOURS['band']}' fill-opacity='0.35'/>")
        start = stop
    for key, words in (("within", "within the band"), ("out", "out of the band"),
                       ("flagged", "flagged")):
        idx = np.flatnonzero(colour == key)
        if not len(idx):
            continue
        # runs of adjacent bars of this colour, one subpath each
        breaks = np.flatnonzero(np.diff(idx) > 1) + 1
        runs = np.split(idx, breaks)
        path = "".join(_staircase(shown[r], int(r[0])) for r in runs)
        out.append(f"<path class='{key}' fill='{CHART_COLOURS[key]}' d='{path}'>"
                   f"<title>{len(idx)} grid{'s' if len(idx) != 1 else ''} {words}"
                   "</title></path>")
    out.append("</g>")
    out.append(f"<line x1='{x0:g}' x2='{x1:g}' y1='{_num(mid)}' y2='{_num(mid)}' "
               "stroke='#333' stroke-width='0.8'/>")
    out.append(f"<rect x='{x0:g}' y='{y0:g}' width='{x1 - x0:g}' height='{y1 - y0:g}' "
               "fill='none' stroke='#999' stroke-width='0.6'/>")
    if n and (np.abs(dev) > top).any():
        out.append(f"<text x='{x1 - 3:g}' y='{y0 + 10:g}' text-anchor='end' "
                   "font-size='9' fill='#555'>bars cut at the frame</text>")
    if not n:
        out.append(f"<text x='{(x0 + x1) / 2:g}' y='{_num(mid - 6)}' text-anchor='middle' "
                   "font-size='11' fill='#555'>no community grid to chart</text>")
    other = f"; {d['n_other']} road/unit grids not balanced" if d["n_other"] else ""
    out.append(f"<text x='{(x0 + x1) / 2:g}' y='{y1 + 13:g}' text-anchor='middle' "
               f"font-size='10'>网格 grids ({n}), sorted{esc(other)}</text>")
    out.append(f"<text transform='translate(11 {_num(mid)}) rotate(-90)' "
               f"text-anchor='middle' font-size='10'>偏差 deviation (%), {esc(by)}</text>")
    # legend
    x = x0
    for key, words in (("within", "within"), ("out", "out of band"),
                       ("flagged", "flagged"), ("band", f"band {band}")):
        opacity = " fill-opacity='0.35'" if key == "band" else ""
        out.append(f"<rect x='{x:g}' y='{height - 17}' width='12' height='9' "
                   f"fill='{CHART_COLOURS[key]}'{opacity}/>")
        out.append(f"<text x='{x + 16:g}' y='{height - 9}' font-size='10'>"
                   f"{esc(words)}</text>")
        x += 28 + 6 * len(words)
    out.append("</svg>")
    return "".join(out)
