"""Workload per grid, the workload map, static maps with Chinese labels, GCJ-02."""

from __future__ import annotations

import re
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from conftest import grid_city

import gridmap
from gridmap import GridmapError
from gridmap.render import wgs84_to_gcj02
from gridmap.static import cjk_font, classify
from gridmap.workload import grid_workload


@pytest.fixture(scope="module")
def plan():
    b, s = grid_city(4, 4, per_block=2, households=50)
    b["elderly"] = np.arange(len(b)) % 7
    return gridmap.delineate(b, s, target=200, tolerance=0.1)


def test_workload_is_the_weighted_sum_and_workers_round_up():
    g = pd.DataFrame({"households": [300, 500, 0], "elderly": [40, 0, 0]})
    w, rep = grid_workload(g, weights={"households": 1, "elderly": 0.5, "shops": 2},
                           capacity=250)
    assert w["workload"].tolist() == [320.0, 500.0, 0.0]
    assert w["workers"].tolist() == [2, 2, 1]  # at least one worker per grid
    assert w["workload_per_worker"].tolist() == [160.0, 250.0, 0.0]
    assert rep["used"] == ["households", "elderly"] and rep["missing"] == ["shops"]


@pytest.mark.parametrize("kw, text", [
    ({"capacity": 0}, "worker capacity must be a positive number, got 0"),
    ({"weights": {"households": -1}}, "non-negative numbers, got {'households': -1}"),
])
def test_bad_workload_settings_are_refused(kw, text):
    with pytest.raises(GridmapError, match=text.replace("{", r"\{").replace("}", r"\}")):
        grid_workload(pd.DataFrame({"households": [1]}), **kw)


def test_bad_workload_settings_are_refused_before_the_partition():
    b, s = grid_city(2, 2)
    with pytest.raises(GridmapError, match="worker capacity"):
        gridmap.delineate(b, s, target=200, worker_capacity=-3)


def test_every_grid_has_its_workload(plan):
    g = plan.grids
    metric_area = g.to_crs(32651).area / 1e6
    expect = g["households"] + 0.5 * g["elderly"] + 50 * metric_area
    assert np.allclose(g["workload"], expect)
    assert (g["workers"] >= 1).all()
    assert plan.metrics["workload"]["total_workers"] == int(g["workers"].sum())


def test_workload_map_has_both_layers_class_bounds_and_the_chart(plan):
    html = plan.workload_map(k=3).get_root().render()
    assert "workload per grid" in html and "workload per worker" in html
    bins, _ = classify(plan.grids["workload"].to_numpy(), k=3)
    assert f"{bins[-1]:,.0f}" in html  # the legend gives the class bounds
    # the load chart is SVG in the page, drawn by the browser, with a link to save it
    assert "<svg xmlns='http://www.w3.org/2000/svg' id='gridmap-load-chart'" in html
    assert "download='load_chart.svg'>save chart as SVG</a>" in html
    assert "data:image/png" not in html
    assert "cdn." not in html


def test_classes_cover_every_value_and_tolerate_few_distinct_values():
    v = np.array([5.0, 5.0, 5.0])
    bins, cls = classify(v, k=5)
    assert bins == [5.0] and cls.tolist() == [0, 0, 0]
    v = np.arange(100.0)
    bins, cls = classify(v, k=4)
    assert len(bins) == 4 and bins[-1] == 99 and set(cls.tolist()) == {0, 1, 2, 3}
    with pytest.raises(GridmapError, match="unknown classification scheme 'Nope'"):
        classify(v, scheme="Nope")


@pytest.mark.parametrize("kind, suffix", [("coverage", ".png"), ("workload", ".pdf")])
def test_static_maps_render_chinese_labels(plan, tmp_path, kind, suffix):
    # (without a CJK font they fall back to English labels: test_no_cjk_font.py)
    try:
        cjk_font()
    except GridmapError:
        pytest.skip("no CJK font on this machine (CI installs fonts-noto-cjk)")
    from matplotlib.text import Text

    path = tmp_path / f"{kind}{suffix}"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig = plan.static_map(path, kind=kind)
        plan.load_chart().savefig(tmp_path / "chart.png")
    missing = [str(w.message) for w in caught if "missing from font" in str(w.message)]
    assert not missing, missing[:3]  # no empty boxes for 网格, 工作量 ...
    assert not [w for w in caught if issubclass(w.category, gridmap.GridmapWarning)]
    texts = [t.get_text() for t in fig.findobj(Text)]
    assert any(t.startswith(("网格覆盖图 Coverage", "网格工作量 Workload")) for t in texts)
    assert path.stat().st_size > 10_000


def test_a_named_font_that_does_not_exist_is_a_clear_error(tmp_path):
    with pytest.raises(GridmapError, match="does not exist"):
        cjk_font(tmp_path / "nope.ttf")


# eviltransform's published test vectors (WGS84 lat, lon -> GCJ-02 lat, lon)
VECTORS = [
    ((31.1774276, 121.5272106), (31.17530398364597, 121.531541859215)),  # Shanghai
    ((22.543847, 113.912316), (22.540796131694766, 113.9171764808363)),  # Shenzhen
    ((39.911954, 116.377817), (39.91334545536069, 116.38404722455657)),  # Beijing
]


def test_gcj02_matches_the_published_vectors_and_leaves_other_countries_alone():
    lat = np.array([v[0][0] for v in VECTORS] + [43.73])
    lon = np.array([v[0][1] for v in VECTORS] + [7.42])  # the last is Monaco
    x, y = wgs84_to_gcj02(lon, lat)
    assert np.allclose(y[:3], [v[1][0] for v in VECTORS], atol=1e-9)
    assert np.allclose(x[:3], [v[1][1] for v in VECTORS], atol=1e-9)
    assert (x[3], y[3]) == (7.42, 43.73)


def _first_corner(plan, **kw):
    """The first vertex of the first grid as the coverage map draws it (lon, lat)."""
    html = plan.coverage_map(**kw).get_root().render()
    x, y = re.search(r'"coordinates": \[\[\[(-?[\d.]+), (-?[\d.]+)\]', html).groups()
    return float(x), float(y), "overlay shifted to GCJ-02" in html


def test_amap_tiles_shift_the_overlay_and_osm_does_not():
    b, s = grid_city(2, 2)
    b, s = (x.set_geometry(x.translate(350_000, 3_457_000)) for x in (b, s))  # Shanghai
    plan = gridmap.delineate(b, s, target=200, tolerance=0.1)
    plain = _first_corner(plan)
    assert _first_corner(plan, tiles="osm") == plain and not plain[2]
    shifted = _first_corner(plan, tiles="amap")
    assert shifted[2]
    d = gpd.GeoSeries([shapely.Point(plain[:2]), shapely.Point(shifted[:2])],
                      crs=4326).to_crs(32651)
    assert 300 < d.iloc[0].distance(d.iloc[1]) < 700  # GCJ-02 moves Shanghai ~half a km
    assert _first_corner(plan, tiles="tencent") == shifted
    # said outright: a GCJ-02 server of one's own, or amap's tiles left unshifted
    assert _first_corner(plan, tiles="https://intranet/{z}/{x}/{y}.png",
                         gcj02=True) == shifted
    assert _first_corner(plan, tiles="amap", gcj02=False)[:2] == plain[:2]


def test_plan_keeps_its_streets_for_the_maps(plan, tmp_path):
    assert plan.streets is not None and len(plan.streets) and "class" in plan.streets
    back = gridmap.read_plan(plan.to_file(tmp_path))
    assert len(back.streets) == len(plan.streets)
    html = back.coverage_map().get_root().render()
    assert "道路 streets" in html or "\\u9053\\u8def streets" in html


def test_large_plans_leave_out_buildings_and_show_codes_only_zoomed_in(plan, monkeypatch):
    from gridmap import render

    monkeypatch.setattr(render, "BUILDINGS_SHOWN", 5)
    monkeypatch.setattr(render, "MANY_GRIDS", 3)
    html = plan.coverage_map(buildings=None).get_root().render()
    assert f"{len(plan.buildings):,} buildings not drawn" in html
    assert "m.getZoom() >= 15" in html
    forced = plan.coverage_map(buildings=True).get_root().render()
    assert "not drawn" not in forced
    monkeypatch.setattr(render, "BUILDINGS_SHOWN", 10_000)
    small = plan.coverage_map(buildings=None).get_root().render()
    assert "not drawn" not in small


def test_quantile_classes_are_mapclassify_s_without_importing_it():
    # the default scheme is worked out by gridmap (importing mapclassify and
    # scikit-learn took longer than the map): the same classes as mapclassify's
    import subprocess
    import sys

    import mapclassify

    rng = np.random.default_rng(0)
    for trial in range(150):
        n = int(rng.integers(2, 300))
        v = [rng.random(n) * 100, rng.integers(0, 5, n).astype(float),
             np.round(rng.exponential(30, n))][trial % 3]
        k = int(rng.integers(2, 8))
        kk = min(k, 7, len(np.unique(v)))
        if kk < 2:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # mapclassify warns about ties
            ref = mapclassify.Quantiles(v, k=kk)
        bins, cls = classify(v, k=k)
        assert np.allclose(bins, ref.bins)
        assert np.array_equal(cls, ref.yb)
    code = ("import sys, gridmap, numpy as np; from gridmap.colours import classify; "
            "classify(np.arange(50.0), k=5); print('mapclassify' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"
