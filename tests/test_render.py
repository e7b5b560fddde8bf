"""Maps: self-contained HTML that draws its grids with no internet."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest
from conftest import grid_city

import gridmap
from gridmap.render import grid_colours

EXTERNAL = re.compile(r"<(?:script|link)[^>]+(?:src|href)=[\"']https?://", re.I)


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


def test_small_counts_are_hidden():
    from gridmap.render import _fmt

    assert _fmt(3, 5) == "&lt;5" and _fmt(0, 5) == "0" and _fmt(1234, 5) == "1,234"


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_map_draws_in_headless_chromium_offline(plan, tmp_path):
    page = tmp_path / "coverage.html"
    plan.coverage_map(buildings=True).save(str(page))
    shot = tmp_path / "shot.png"
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--no-first-run", "--disable-sync",
         "--disable-component-update", f"--user-data-dir={tmp_path / 'profile'}",
         # every host name fails: nothing can leave the machine
         "--host-resolver-rules=MAP * ~NOTFOUND", "--enable-logging=stderr", "--v=0",
         "--window-size=900,700", "--virtual-time-budget=4000",
         f"--screenshot={shot}", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    console = [ln for ln in proc.stderr.splitlines() if "CONSOLE" in ln]
    assert not [ln for ln in console if "Uncaught" in ln or "rror" in ln], console
    assert shot.exists()
    from matplotlib.image import imread

    img = imread(shot)
    # the grids are drawn: many colours, not a blank or grey page
    colours = {tuple(np.round(px[:3], 2)) for px in img.reshape(-1, img.shape[-1])[::97]}
    assert len(colours) > 10
