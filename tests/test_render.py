"""Maps: self-contained HTML that draws its grids with no internet."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from conftest import grid_city

import gridmap
from gridmap.render import grid_colours

EXTERNAL = re.compile(r"<(?:script|link)[^>]+(?:src|href)=[\"']https?://", re.IGNORECASE)


@pytest.fixture(scope="module")
def plan():
    b, s = grid_city(4, 4, per_block=2, households=50)
    return gridmap.delineate(b, s, target=200, tolerance=0.1)


def test_neighbouring_grids_never_share_a_colour(plan):
    g = plan.grids.to_crs("EPSG:32651")
    colours = grid_colours(g)
    geoms = g.geometry.values
    for i in range(len(g)):
        for j in range(i + 1, len(g)):
            if geoms[i].intersection(geoms[j]).length > 0:
                assert colours[i] != colours[j]


def test_map_fetches_nothing(plan):
    html = plan.coverage_map().get_root().render()
    assert not EXTERNAL.search(html)
    assert "L.map(" in html and "Leaflet" in html  # Leaflet is inlined
    for code in plan.grids["code"]:
        assert code in html


def _popup_households(plan, threshold):
    """The households of every grid as its popup on the coverage map shows them."""
    html = plan.coverage_map(privacy_threshold=threshold).get_root().render()
    return [json.loads(f'"{v}"') for v in re.findall(r'"p_households": "([^"]*)"', html)]


def test_small_counts_are_hidden(plan):
    n = len(plan.grids)
    assert set(plan.grids["households"]) == {200.0}
    assert _popup_households(plan, 5) == ["200"] * n
    assert _popup_households(plan, 200) == ["200"] * n
    assert _popup_households(plan, 201) == ["&lt;201"] * n  # shown as <201
    b, s = grid_city(2, 2, households=617)
    big = gridmap.delineate(b, s, target=1234, tolerance=0.1)
    assert _popup_households(big, 5) == ["1,234", "1,234"]


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


BROWSER_SERVICES = r"https?://([a-z0-9-]+\.)*(google\.com|googleapis\.com|gvt1\.com)/"


def open_in_chromium(page, tmp_path, *, size="900,700"):
    """Open ``page`` in headless Chromium with every host name unresolvable.

    Returns the console lines, the screenshot (array) and the URLs of every
    network request the page made (from Chromium's own net log).
    """
    shot = tmp_path / f"{page.stem}.png"
    netlog = tmp_path / f"{page.stem}-netlog.json"
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--no-first-run", "--disable-sync",
         "--disable-component-update", f"--user-data-dir={tmp_path / 'profile'}",
         # every host name fails: nothing can leave the machine
         "--host-resolver-rules=MAP * ~NOTFOUND", "--enable-logging=stderr", "--v=0",
         f"--log-net-log={netlog}",
         # the browser's own clock check is not the page's request
         "--disable-features=NetworkTimeServiceQuerying",
         f"--window-size={size}", "--virtual-time-budget=4000",
         f"--screenshot={shot}", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )
    console = [ln for ln in proc.stderr.splitlines() if "CONSOLE" in ln]
    assert shot.exists(), proc.stderr[-2000:]
    from matplotlib.image import imread

    urls = set(re.findall(r'"url":"(https?://[^"]+)"', netlog.read_text(errors="replace")))
    # Chromium's own services (clock, component updates) are the browser's, not the page's
    requests = {u for u in urls if not re.match(BROWSER_SERVICES, u)}
    return console, imread(shot), requests


def n_colours(img) -> int:
    return len({tuple(np.round(px[:3], 2)) for px in img.reshape(-1, img.shape[-1])[::97]})


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
@pytest.mark.parametrize("kind", ["coverage", "workload", "diff"])
def test_map_draws_in_headless_chromium_offline(plan, tmp_path, kind):
    page = tmp_path / f"{kind}.html"
    if kind == "diff":
        # a re-partition after the households of one block row doubled
        now = plan.buildings.drop(columns=["grid_id", "unit_id"])
        row = now.geometry.centroid.y < 100
        now.loc[row, "households"] *= 2
        m = gridmap.repartition(plan, now).diff_map()
    else:
        m = plan.coverage_map(buildings=True) if kind == "coverage" else plan.workload_map()
    m.save(str(page))
    console, img, requests = open_in_chromium(page, tmp_path)
    assert not [ln for ln in console if "Uncaught" in ln or "rror" in ln
                or "Failed to load" in ln], console
    assert not requests, requests  # no request tried to leave the machine
    # the grids are drawn: many colours, not a blank or grey page
    assert n_colours(img) > 10
    if kind == "diff":
        # the buildings that changed grid are drawn in red (#e31a1c)
        px = img.reshape(-1, img.shape[-1])[:, :3]
        red = (np.abs(px - np.array([0xE3, 0x1A, 0x1C]) / 255).max(axis=1) < 0.03).sum()
        assert red > 50, red


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_the_request_check_sees_a_base_map(plan, tmp_path):
    # the control: a page with a tile layer does try the network, and the net log shows it
    page = tmp_path / "tiles.html"
    plan.coverage_map(tiles="osm").save(str(page))
    _, img, requests = open_in_chromium(page, tmp_path)
    assert any("tile.openstreetmap.org" in u for u in requests)
    assert n_colours(img) > 10  # the grids still draw without their base map


def test_sub_district_outlines_are_the_union_of_their_grids():
    # a sub-district's area is taken from its communities' (once per plan, for
    # both maps): it must be the union of its grids all the same
    import geopandas as gpd
    import shapely

    from gridmap.io import to_metric
    from gridmap.render import _areas

    b, s = grid_city(6, 4, per_block=2, households=50)
    bnd = gpd.GeoDataFrame(
        {"community_id": ["A", "B", "C"], "subdistrict_id": ["S1", "S1", "S2"]},
        geometry=[shapely.box(0, 0, 200, 400), shapely.box(200, 0, 400, 400),
                  shapely.box(400, 0, 600, 400)], crs=b.crs)
    plan = gridmap.delineate(b, s, boundaries=bnd, target=200)
    areas = _areas(plan)
    assert _areas(plan) is areas  # the coverage and workload maps share them
    g = to_metric(plan.grids)
    names, polys, _ = areas["subdistrict_id"]
    assert names == ["S1", "S2"]
    for name, poly in zip(names, polys, strict=True):
        union = shapely.union_all(g.geometry[g["subdistrict_id"] == name].to_numpy())
        assert abs(poly.area - union.area) < 1.0
        assert shapely.get_num_geometries(poly) == 1
    # another plan gets its own
    other = gridmap.delineate(b, s, target=200)
    assert _areas(other) is not areas
