"""The colours of gridmap's maps and charts, in one place.

The web maps (:mod:`gridmap.render`), the static maps (:mod:`gridmap.static`)
and the load chart (:mod:`gridmap.chart`) draw with these, so that a grid, a
class of workload or a change looks the same in each: the palette of grids,
which neighbours never share (:func:`grid_colours`); the sequential ramps of
classed maps and the classes themselves (:func:`classify`, with mapclassify);
the fills of road and unit grids, of a re-partition's changes and of the load
chart.
"""

from __future__ import annotations

from collections.abc import Sequence

import geopandas as gpd
import networkx as nx
import numpy as np
import shapely

from ._errors import GridmapError

__all__ = [
    "CHART_COLOURS",
    "DIFF_COLOURS",
    "KIND_COLOURS",
    "PALETTE",
    "RAMP",
    "classify",
    "grid_colours",
]

#: fill colours for grids; neighbours never share one (a greedy colouring of the
#: grids' adjacency rarely needs more than five)
PALETTE = (
    "#8dd3c7", "#ffffb3", "#bebada", "#fb8072", "#80b1d3",
    "#fdb462", "#b3de69", "#fccde5", "#d9d9d9", "#bc80bd",
)

#: fills of road and unit grids (community grids take the palette)
KIND_COLOURS = {"road": "#969696", "unit": "#6baed6"}

#: colours of the diff map
DIFF_COLOURS = {"kept": "#f0f0f0", "changed": "#fdd49e", "new": "#a1d99b",
                "moved": "#e31a1c", "new_building": "#31a354", "demolished": "#636363",
                "before": "#2166ac", "area": "#fb6a4a"}

#: fills of the load chart (:func:`gridmap.chart.load_chart_svg` and
#: :func:`gridmap.static.load_chart`)
CHART_COLOURS = {
    "within": "#4575b4",   # a grid within its band
    "out": "#d7191c",      # a grid out of its band
    "flagged": "#fdae61",  # one unit heavier than a grid, or an island
    "band": "#a6d96a",     # the band ±tolerance (drawn at 35% opacity)
}

#: sequential colour ramps (ColorBrewer YlOrRd) by number of classes
RAMP: dict[int, Sequence[str]] = {
    1: ("#fd8d3c",),
    2: ("#fecc5c", "#e31a1c"),
    3: ("#ffeda0", "#feb24c", "#f03b20"),
    4: ("#ffffb2", "#fecc5c", "#fd8d3c", "#e31a1c"),
    5: ("#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026"),
    6: ("#ffffb2", "#fed976", "#feb24c", "#fd8d3c", "#f03b20", "#bd0026"),
    7: ("#ffffb2", "#fed976", "#feb24c", "#fd8d3c", "#fc4e2a", "#e31a1c", "#b10026"),
}


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
    g: nx.Graph[int] = nx.Graph()
    g.add_nodes_from(range(len(geoms)))
    g.add_edges_from(zip(a[shared > 0].tolist(), b[shared > 0].tolist(), strict=True))
    colouring = nx.greedy_color(g, strategy="largest_first")
    return [PALETTE[colouring[i] % len(PALETTE)] for i in range(len(geoms))]


def classify(values: np.ndarray, *, scheme: str = "Quantiles",
             k: int = 5) -> tuple[list[float], np.ndarray]:
    """Class upper bounds and the class of every value (mapclassify).

    ``scheme`` is any mapclassify classifier (``Quantiles``, ``EqualInterval``,
    ``FisherJenks``, ``HeadTailBreaks``, ``NaturalBreaks``...); ``k`` is capped
    at 7 and at the number of distinct values.  The default, ``Quantiles``, is
    deterministic; ``NaturalBreaks`` uses random k-means starts and may draw
    different classes from run to run.  Class ``i`` is drawn in ``RAMP[len(bins)][i]``.
    """
    values = np.nan_to_num(np.asarray(values, dtype=float))
    distinct = len(np.unique(values))
    k = max(1, min(int(k), 7, distinct))
    if k == 1:
        return [float(values.max(initial=0.0))], np.zeros(len(values), dtype=int)
    if scheme == "Quantiles":
        # mapclassify's Quantiles, worked out here: importing mapclassify (and
        # scikit-learn with it) takes longer than drawing the map
        bins_q = quantile_bins(values, k)
        return [float(b) for b in bins_q], np.searchsorted(bins_q, values, side="left")
    try:
        import mapclassify
    except ImportError as exc:
        msg = "gridmap's workload maps need mapclassify: pip install mapclassify"
        raise ImportError(msg) from exc
    cls = getattr(mapclassify, scheme, None)
    if cls is None:
        msg = (f"unknown classification scheme {scheme!r}; use one of mapclassify's, "
               "e.g. NaturalBreaks, Quantiles, EqualInterval, FisherJenks")
        raise GridmapError(msg)
    kwargs = {} if scheme in ("HeadTailBreaks", "StdMean", "BoxPlot", "Percentiles") \
        else {"k": k}
    c = cls(values, **kwargs)
    bins = [float(b) for b in c.bins]
    yb = np.minimum(np.asarray(c.yb, dtype=int), min(len(bins), 7) - 1)
    bins = bins[:7]
    return bins, yb


def quantile_bins(values: np.ndarray, k: int) -> np.ndarray:
    """The upper bounds of ``k`` quantile classes, as mapclassify's ``Quantiles`` has them.

    The ``100 / k``, ``200 / k`` ... 100th percentiles (linear interpolation),
    ties collapsed (fewer classes where values repeat).

    Examples
    --------
    >>> quantile_bins(np.arange(1000.0), 4).tolist()
    [249.75, 499.5, 749.25, 999.0]
    """
    step = 100.0 / k
    pct = np.arange(step, 100 + step, step)
    pct[-1] = min(pct[-1], 100.0)
    return np.unique(np.percentile(np.asarray(values, dtype=float), pct))
