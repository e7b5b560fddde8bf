"""The page to adjust a plan by hand (edit.html): its data, and a real browser on it.

The data (:func:`gridmap.editor.editor_data`) is checked against the plan; the
page is opened in Debian's chromium, driven by Selenium through chromedriver,
with every host name unresolvable: a real click moves a unit, the figures the
page shows are compared with those computed here from the plan's buildings,
undo and redo are pressed, and "Save edits" downloads ``edits.json``.

``GRIDMAP_SCREENSHOTS=1`` also saves the screenshot of the small plan as
``docs/_static/edit_small.png`` (``benchmarks/editor_page.py`` saves the Bund's).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, grid_city
from test_render import CHROMIUM, open_in_chromium

import gridmap
from gridmap.band import TOLERANCE_EPS
from gridmap.cli import main
from gridmap.editor import editor_data, editor_page, write_editor

CHROMIUM_BIN = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
try:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    SELENIUM = True
except ImportError:
    SELENIUM = False

NO_BROWSER = (
    "selenium is not installed (pip install selenium)" if not SELENIUM
    else f"chromium is not installed at {CHROMIUM_BIN} (Debian: apt-get install chromium)"
    if not Path(CHROMIUM_BIN).exists()
    else f"chromedriver is not installed at {CHROMEDRIVER} (Debian: apt-get install "
         "chromium-driver)" if not Path(CHROMEDRIVER).exists() else "")
browser = pytest.mark.skipif(bool(NO_BROWSER), reason=NO_BROWSER or "browser found")

SHOTS = ROOT / "docs" / "_static"


def _city_with_addresses(nx_, ny, **kw):
    b, s = grid_city(nx_, ny, **kw)
    b["address"] = [f"Lane {i // 2} No. {i % 2 + 1}" for i in range(len(b))]
    return b, s


@pytest.fixture(scope="module")
def plan():
    """4 × 4 blocks of 2 buildings of 100 households: 8 grids of 2 blocks at 400."""
    b, s = _city_with_addresses(4, 4, per_block=2)
    return gridmap.delineate(b, s, target=400)


@pytest.fixture(scope="module")
def pieces_plan():
    """4 × 4 blocks of 100 households at 300: grids of three blocks, some bent."""
    b, s = grid_city(4, 4, per_block=1, households=100)
    return gridmap.delineate(b, s, target=300)


@pytest.fixture(scope="module")
def flagged_plan():
    """One building of 2,000 households: an oversize grid of one unit."""
    b, s = _city_with_addresses(4, 4, per_block=2)
    b.loc[0, "households"] = 2000.0
    return gridmap.delineate(b, s, target=400)


# ---------------------------------------------------------------------- the data
def test_every_unit_once_with_its_ids(plan):
    data = editor_data(plan)
    units = data["units"]
    assert units["type"] == "FeatureCollection"
    props = [f["properties"] for f in units["features"]]
    assert [p["unit_id"] for p in props] == plan.units["unit_id"].tolist()
    assert len({p["unit_id"] for p in props}) == len(plan.units)
    assert [p["grid_id"] for p in props] == plan.units["grid_id"].tolist()
    # ids stay what they are in the plan: numbers as numbers, text as text
    assert all(type(p["unit_id"]) is int and type(p["grid_id"]) is int for p in props)
    assert [g["grid_id"] for g in data["grids"]] == plan.grids["grid_id"].tolist()
    assert [b["id"] for b in data["buildings"]] == plan.buildings["id"].tolist()
    assert all(isinstance(b["id"], str) for b in data["buildings"])
    assert data["plan"] == plan.plan_id and data["by"] == "households"
    assert data["id_column"] == "id" and data["tolerance_eps"] == TOLERANCE_EPS
    # a unit weighs its buildings: per grid, the grid's households
    w = pd.Series([p["weight"] for p in props]).groupby(
        [p["grid_id"] for p in props]).sum()
    assert w.to_dict() == plan.grids.set_index("grid_id")["households"].to_dict()
    assert sum(p["n_buildings"] for p in props) == len(plan.buildings)
    # WGS84, 6 decimals, [lon, lat] in GeoJSON and [lat, lon] for points
    ring = units["features"][0]["geometry"]["coordinates"][0]
    lon, lat = ring[0]
    assert 118 < lon < 119 and 0 <= lat < 0.01 and round(lon, 6) == lon
    point = props[0]["point"]
    assert 0 <= point[0] < 0.01 and 118 < point[1] < 119
    # and all of it survives JSON
    assert json.loads(json.dumps(data, allow_nan=False)) == data


def test_adjacency_is_the_plans_graph(plan):
    data = editor_data(plan)
    pairs = [tuple(p) for p in data["adjacency"]]
    assert all(i < j for i, j in pairs) and len(set(pairs)) == len(pairs)
    assert set(pairs) == {tuple(sorted(e)) for e in plan.graph.edges()}
    nbrs: dict[int, set[int]] = {}
    for i, j in pairs:
        nbrs.setdefault(i, set()).add(j)
        nbrs.setdefault(j, set()).add(i)
    assert all(i in nbrs[j] for i in nbrs for j in nbrs[i])  # symmetric
    # one shared edge per pair, drawn where the two units meet (100 m blocks)
    assert len(data["borders"]) == len(pairs)
    assert all(len(lines) >= 1 for lines in data["borders"])
    # a plan without its graph has it rebuilt from the units
    bare = dataclasses.replace(plan, graph=nx.Graph())
    assert editor_data(bare)["adjacency"] == data["adjacency"]


def test_addresses_and_streets(plan):
    data = editor_data(plan)
    assert data["buildings"][0]["address"] == "Lane 0 No. 1"
    units = {f["properties"]["unit_id"] for f in data["units"]["features"]}
    assert {b["unit_id"] for b in data["buildings"]} <= units
    assert data["streets"]["features"] and all(
        f["properties"]["class"] == "residential" for f in data["streets"]["features"])
    # the plan's own address column comes first
    b = plan.buildings.copy()
    b["门牌"] = "门牌 " + b["id"]
    own = dataclasses.replace(plan, buildings=b, metrics={
        **plan.metrics, "params": {**plan.params, "address_column": "门牌"}})
    assert editor_data(own)["buildings"][0]["address"] == "门牌 b0-0-0"


def test_flags_targets_and_weights_by_area(flagged_plan):
    data = editor_data(flagged_plan)
    g = flagged_plan.grids
    assert [x["flag"] for x in data["grids"]] == g["flag"].fillna("").tolist()
    assert [x["single_unit"] for x in data["grids"]] == g["single_unit"].tolist()
    assert "oversize" in [x["flag"] for x in data["grids"]]
    assert {x["target"] for x in data["grids"]} == {400.0}
    b, s = grid_city(4, 4, per_block=2)
    by_area = gridmap.delineate(b, s, target=8000, by="area", tolerance=0.2)
    props = [f["properties"] for f in editor_data(by_area)["units"]["features"]]
    w = pd.Series([p["weight"] for p in props]).groupby(
        [p["grid_id"] for p in props]).sum()
    assert np.allclose(w.sort_index().to_numpy(),
                       by_area.grids.set_index("grid_id")["area"].sort_index().to_numpy(),
                       rtol=1e-6)


def test_page_is_self_contained(plan, tmp_path):
    page = editor_page(plan, title="调整 <test>")
    assert page.startswith("<!DOCTYPE html>")
    assert "<title>调整 &lt;test&gt;</title>" in page
    assert not re.search(r"<(script|img|iframe)[^>]*\ssrc=|<link\b", page, re.I)
    # the only URLs are in Leaflet's own text (its licence comment, its attribution)
    from importlib import resources

    static = resources.files("gridmap") / "_static" / "leaflet"
    own = page
    for name in ("leaflet.js", "leaflet.css"):
        own = own.replace((static / name).read_text(encoding="utf-8"), "")
    assert own != page
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", own, re.I), \
        re.search(r".{60}https?://.{60}", own)
    assert "L.svg(" in page  # an SVG renderer: every unit is a path of the page
    path = write_editor(plan, tmp_path / "edit.html")
    assert path.read_text(encoding="utf-8") == page.replace(
        "调整 &lt;test&gt;", f"网格调整 adjust grids — plan {plan.plan_id}")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_page_loads_nothing(plan, tmp_path):
    page = write_editor(plan, tmp_path / "edit.html")
    console, img, requests = open_in_chromium(page, tmp_path, size="1200,800")
    assert not requests, requests  # no request tried to leave the machine
    assert not [ln for ln in console if "Uncaught" in ln or "rror" in ln], console
    colours = {tuple(np.round(px[:3], 2)) for px in img.reshape(-1, img.shape[-1])[::53]}
    assert len(colours) > 10  # the units are drawn


# ---------------------------------------------------------------------- the browser
def _driver(tmp_path: Path, downloads: Path):
    options = Options()
    options.binary_location = CHROMIUM_BIN
    for arg in ("--headless", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--no-first-run", "--disable-sync",
                "--disable-component-update", "--host-resolver-rules=MAP * ~NOTFOUND",
                "--disable-features=NetworkTimeServiceQuerying",
                f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,900"):
        options.add_argument(arg)
    # the DevTools events of the tab: every request the page makes
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    options.add_experimental_option("prefs", {
        "download.default_directory": str(downloads),
        "download.prompt_for_download": False, "download.directory_upgrade": True})
    # a confirm() stays open for the test to answer
    options.unhandled_prompt_behavior = "ignore"
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Page.setDownloadBehavior",
                           {"behavior": "allow", "downloadPath": str(downloads)})
    return driver


def _requests(driver) -> set[str]:
    """The URLs of every request the page made so far (the tab's, not the browser's)."""
    urls = set()
    for entry in driver.get_log("performance"):
        event = json.loads(entry["message"])["message"]
        if event["method"] == "Network.requestWillBeSent":
            urls.add(event["params"]["request"]["url"])
    return urls


def _open(driver, page: Path) -> None:
    driver.get_log("performance")  # the browser's own start (its new-tab page) left out
    driver.get(page.as_uri())
    WebDriverWait(driver, 30).until(lambda d: d.execute_script(
        "return !!(window.gridmapEditor && window.gridmapEditor.ready)"))


def _click_unit(driver, unit_id) -> None:
    """A real mouse click on a point inside the unit."""
    x, y = driver.execute_script("return gridmapEditor.unitPoint(arguments[0])", unit_id)
    box = driver.find_element(By.ID, "gm-map")
    w, h = box.size["width"], box.size["height"]
    assert 0 <= x < w and 0 <= y < h, (x, y, w, h)
    ActionChains(driver).move_to_element_with_offset(
        box, round(x - w / 2), round(y - h / 2)).click().perform()


def _expected(plan, moves: dict) -> pd.DataFrame:
    """Every grid's figures after ``moves`` (unit id -> grid id), from the buildings."""
    unit_grid = plan.units.set_index("unit_id")["grid_id"].to_dict()
    unit_grid.update(moves)
    b = plan.buildings
    households = b["households"].groupby(b["unit_id"].map(unit_grid)).sum()
    g = plan.grids.set_index("grid_id")
    out = pd.DataFrame({"households": households.reindex(g.index, fill_value=0.0)})
    n_units = pd.Series(unit_grid).value_counts().reindex(g.index, fill_value=0)
    flagged = (g["flag"].fillna("") != "") | g["single_unit"].astype(bool)
    ordinary = (g["kind"] == "community") & ~flagged & (n_units > 0)
    means = {}
    for c, rows in g[g["kind"] == "community"].groupby("community_id"):
        use = rows.index[ordinary[rows.index]]
        use = use if len(use) else rows.index
        means[c] = out.loc[use, "households"].mean()
    out["mean"] = g["community_id"].map(means)
    out["deviation"] = out["households"] / out["mean"] - 1
    out["deviation_target"] = out["households"] / g["target"] - 1
    out["in_band"] = out["deviation"].abs() <= g["tolerance"] + TOLERANCE_EPS
    return out


def _panel(driver, grid_id) -> dict:
    """The figures of a grid as its card in the panel shows them."""
    card = driver.find_element(By.CSS_SELECTOR, f'#gm-rows .gm-grid[data-grid-id="{grid_id}"]')
    out = {"status": card.get_attribute("data-status")}
    for name in ("households", "mean", "dev", "devt", "piece"):
        v = card.find_element(By.CSS_SELECTOR, f".gm-c-{name} .gm-v")
        out[name] = (v.text, v.get_attribute("data-value"))
    return out


def _wait_for_file(path: Path, seconds: float = 15) -> Path:
    end = time.time() + seconds
    while time.time() < end:
        if path.exists() and path.stat().st_size and not list(
                path.parent.glob("*.crdownload")):
            return path
        time.sleep(0.1)
    raise AssertionError(f"{path.name} was not downloaded into {path.parent}: "
                         f"{sorted(p.name for p in path.parent.iterdir())}")


def _neighbour_to_take(plan):
    """A grid A and a unit of a neighbouring grid B that B can give and stay whole."""
    label = plan.units["grid_id"].to_numpy()
    graph = plan.graph
    for u in range(len(label)):
        a = label[u]
        for v in sorted(graph[u]):
            b = label[v]
            rest = [w for w in range(len(label)) if label[w] == b and w != v]
            if b != a and rest and nx.is_connected(graph.subgraph(rest)):
                return int(a), int(b), int(plan.units["unit_id"].iloc[v])
    raise AssertionError("no unit to move in this plan")


@browser
def test_click_moves_a_unit_undo_redo_and_save(plan, tmp_path):
    folder = plan.to_file(tmp_path / "plan")
    written = gridmap.read_plan(folder)  # the plan `gridmap apply --plan` reads
    page = write_editor(written, folder / "edit.html")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    a, b, unit = _neighbour_to_take(written)
    driver = _driver(tmp_path, downloads)
    try:
        _open(driver, page)
        ready = driver.execute_script(
            "return performance.getEntriesByName('gridmap-ready')[0].startTime")
        assert 0 < ready < 10_000
        driver.execute_script("gridmapEditor.select(arguments[0])", a)
        before = driver.execute_script("return gridmapEditor.figures(arguments[0])", b)
        assert before["one_piece"] and before["n_units"] == 2
        _click_unit(driver, unit)
        assert driver.execute_script("return gridmapEditor.gridOf(arguments[0])", unit) == a
        want = _expected(written, {unit: a})
        for grid in (a, b):
            got = driver.execute_script("return gridmapEditor.figures(arguments[0])", grid)
            exp = want.loc[grid]
            assert got["households"] == exp["households"] == got["weight"]
            assert got["mean"] == pytest.approx(exp["mean"], rel=1e-12)
            assert got["deviation"] == pytest.approx(exp["deviation"], rel=1e-12)
            assert got["deviation_target"] == pytest.approx(exp["deviation_target"])
            assert got["in_band"] == bool(exp["in_band"]) and got["one_piece"]
            shown = _panel(driver, grid)
            assert float(shown["households"][1]) == exp["households"]
            assert shown["households"][0] == f"{exp['households']:,.0f}"
            assert float(shown["mean"][1]) == pytest.approx(exp["mean"], rel=1e-12)
            assert float(shown["dev"][1]) == pytest.approx(exp["deviation"], rel=1e-12)
            assert shown["dev"][0] == f"{exp['deviation']:+.1%}"
            assert shown["status"] == ("in" if exp["in_band"] else "out")
        assert (want.loc[a, "households"], want.loc[b, "households"]) == (600.0, 200.0)
        move = {"unit_id": unit, "from": b, "to": a}
        assert driver.execute_script("return gridmapEditor.edits()")["moves"] == [move]
        # undo (the button), then redo (the keyboard)
        driver.find_element(By.ID, "gm-undo").click()
        assert driver.execute_script("return gridmapEditor.gridOf(arguments[0])", unit) == b
        assert driver.execute_script("return gridmapEditor.figures(arguments[0])", b) == before
        assert driver.execute_script("return gridmapEditor.edits()")["moves"] == []
        ActionChains(driver).key_down(Keys.CONTROL).send_keys("y").key_up(Keys.CONTROL) \
            .perform()
        assert driver.execute_script("return gridmapEditor.gridOf(arguments[0])", unit) == a
        driver.find_element(By.ID, "gm-note").send_keys("entrance faces the east street")
        if os.environ.get("GRIDMAP_SCREENSHOTS"):
            SHOTS.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(SHOTS / "edit_small.png"))
        driver.save_screenshot(str(tmp_path / "edit_small.png"))
        driver.find_element(By.ID, "gm-save").click()
        edits_file = _wait_for_file(downloads / "edits.json")
        # the page itself, and the file it saved: nothing from any network
        requests = _requests(driver)
        assert page.as_uri() in requests, requests
        assert not [u for u in requests if re.match(r"(https?|wss?|ftp):", u)], requests
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
    finally:
        driver.quit()
    edits = json.loads(edits_file.read_text(encoding="utf-8"))
    assert list(edits) == ["plan", "by", "moves", "locks", "note"]
    assert edits == {"plan": written.plan_id, "by": "households", "moves": [move],
                     "locks": [], "note": "entrance faces the east street"}
    assert edits["plan"] == json.loads((folder / "metrics.json").read_text())["plan_id"]
    # the file the page saved, applied from the command line: the unit is in its new
    # grid, with the households the page showed
    out = tmp_path / "adjusted"
    assert main(["apply", "--plan", str(folder / "plan.gpkg"), "--edits", str(edits_file),
                 "--out", str(out), "--quiet"]) == 0
    after = gridmap.read_plan(out)
    moved = written.buildings.loc[written.buildings["unit_id"] == unit, "id"]
    assert len(moved) and (after.buildings.set_index("id").loc[moved, "grid_id"] == a).all()
    households = after.grids.set_index("grid_id")["households"]
    assert (households[a], households[b]) == (want.loc[a, "households"],
                                              want.loc[b, "households"])
    assert json.loads((out / "metrics.json").read_text(encoding="utf-8"))["edits"][
        "note"] == "entrance faces the east street"


def _unit_that_cuts(plan):
    """A unit whose grid falls in pieces without it, and a neighbouring grid."""
    label = plan.units["grid_id"].to_numpy()
    graph = plan.graph
    for u in range(len(label)):
        b = label[u]
        rest = [w for w in range(len(label)) if label[w] == b and w != u]
        near = sorted({int(label[v]) for v in graph[u] if label[v] != b})
        if len(rest) > 1 and near and not nx.is_connected(graph.subgraph(rest)):
            return near[0], int(b), int(plan.units["unit_id"].iloc[u])
    raise AssertionError("no unit that cuts its grid in this plan")


@browser
def test_a_move_that_cuts_a_grid_asks_first(pieces_plan, tmp_path):
    page = write_editor(pieces_plan, tmp_path / "edit.html")
    a, b, unit = _unit_that_cuts(pieces_plan)
    driver = _driver(tmp_path, tmp_path)
    try:
        _open(driver, page)
        driver.execute_script("gridmapEditor.select(arguments[0])", a)
        before = driver.execute_script("return gridmapEditor.figures(arguments[0])", b)
        _click_unit(driver, unit)
        alert = WebDriverWait(driver, 5).until(expected_conditions.alert_is_present())
        assert "pieces" in alert.text, alert.text
        alert.dismiss()  # declined: nothing moves
        assert driver.execute_script("return gridmapEditor.gridOf(arguments[0])", unit) == b
        assert driver.execute_script("return gridmapEditor.figures(arguments[0])", b) == before
        assert driver.execute_script("return gridmapEditor.edits()")["moves"] == []
        assert "not moved" in driver.find_element(By.ID, "gm-message").text
        _click_unit(driver, unit)
        WebDriverWait(driver, 5).until(expected_conditions.alert_is_present()).accept()
        after = driver.execute_script("return gridmapEditor.figures(arguments[0])", b)
        assert not after["one_piece"] and after["pieces"] == 2
        assert _panel(driver, b)["piece"][0].endswith("2 pieces")
    finally:
        driver.quit()


@browser
def test_locks_search_and_the_rules_on_flagged_grids(flagged_plan, tmp_path):
    page = write_editor(flagged_plan, tmp_path / "edit.html")
    a, b, unit = _neighbour_to_take(flagged_plan)
    driver = _driver(tmp_path, tmp_path)
    try:
        _open(driver, page)
        # before any move, every grid's figures are the plan's own
        g = flagged_plan.grids
        for row in g.itertuples():
            got = driver.execute_script("return gridmapEditor.figures(arguments[0])",
                                        row.grid_id)
            assert got["mean"] == pytest.approx(row.community_mean, rel=1e-12)
            assert got["deviation"] == pytest.approx(row.deviation, rel=1e-12)
            assert got["single_unit"] == bool(row.single_unit)
            assert (got["status"] != "out") == bool(row.within_tolerance), row
            assert (got["status"] == "oversize") == (row.exception == "single_unit")
        assert "oversize" in {driver.execute_script(
            "return gridmapEditor.figures(arguments[0]).status", x) for x in g["grid_id"]}
        # a locked grid neither gives nor takes a unit
        driver.execute_script("gridmapEditor.select(arguments[0]); "
                              "gridmapEditor.lock(arguments[1])", a, b)
        assert driver.execute_script("return gridmapEditor.move(arguments[0])", unit) is False
        assert "locked" in driver.find_element(By.ID, "gm-message").text
        assert driver.execute_script("return gridmapEditor.edits()")["locks"] == [b]
        driver.execute_script("gridmapEditor.unlock(arguments[0])", b)
        assert driver.execute_script("return gridmapEditor.move(arguments[0])", unit) is True
        # a building found by id, and by a piece of its address
        building = flagged_plan.buildings.iloc[5]
        box = driver.find_element(By.ID, "gm-search")
        box.send_keys(building["id"] + Keys.ENTER)
        msg = driver.find_element(By.ID, "gm-message").text
        assert building["id"] in msg and f"unit {building['unit_id']}" in msg
        b = flagged_plan.buildings.set_index("address")
        found = driver.execute_script("return gridmapEditor.search('lane 7 no. 2')")
        assert found["id"] == b.loc["Lane 7 No. 2", "id"]
        assert found["unit_id"] == int(b.loc["Lane 7 No. 2", "unit_id"])
    finally:
        driver.quit()


def _two_units_in_a_row(plan):
    """Grid A, and two neighbouring units of another grid next to A that it can give."""
    label = plan.units["grid_id"].to_numpy()
    ids = plan.units["unit_id"].to_numpy()
    graph = plan.graph
    for i in range(len(label)):
        for j in sorted(graph[i]):
            for k in sorted(graph[j]):
                if k == i or not label[j] == label[k] != label[i]:
                    continue
                rest = [w for w in range(len(label)) if label[w] == label[j] and w not in (j, k)]
                if rest and nx.is_connected(graph.subgraph(rest)):
                    return int(label[i]), int(label[j]), int(ids[j]), int(ids[k])
    raise AssertionError("no two units to brush in this plan")


@browser
def test_brush_moves_every_unit_passed_over(tmp_path):
    b, s = grid_city(6, 6, per_block=1, households=100)
    plan = gridmap.delineate(b, s, target=600)
    page = write_editor(plan, tmp_path / "edit.html")
    a, b_, first, second = _two_units_in_a_row(plan)
    driver = _driver(tmp_path, tmp_path)

    def at(unit):
        x, y = driver.execute_script("return gridmapEditor.unitPoint(arguments[0])", unit)
        box = driver.find_element(By.ID, "gm-map")
        return round(x - box.size["width"] / 2), round(y - box.size["height"] / 2)

    def stroke(chain):
        box = driver.find_element(By.ID, "gm-map")
        (x1, y1), (x2, y2) = at(first), at(second)
        return chain.move_to_element_with_offset(box, x1, y1).click_and_hold() \
            .move_to_element_with_offset(box, (x1 + x2) // 2, (y1 + y2) // 2) \
            .move_to_element_with_offset(box, x2, y2).release()

    both = [{"unit_id": first, "from": b_, "to": a}, {"unit_id": second, "from": b_, "to": a}]
    try:
        _open(driver, page)
        where = "var c = gridmapEditor.map.getCenter(); return [c.lat, c.lng]"
        centre = driver.execute_script(where)
        driver.execute_script("gridmapEditor.select(arguments[0]); "
                              "gridmapEditor.setMode('brush')", a)
        stroke(ActionChains(driver)).perform()
        assert driver.execute_script("return gridmapEditor.edits()")["moves"] == both
        # the drag was the brush, not a pan of the map
        assert driver.execute_script(where) == centre
        # one stroke, one undo (Ctrl+Z)
        ActionChains(driver).key_down(Keys.CONTROL).send_keys("z").key_up(Keys.CONTROL) \
            .perform()
        assert driver.execute_script("return gridmapEditor.edits()")["moves"] == []
        # in move mode, Shift held brushes too
        driver.execute_script("gridmapEditor.setMode('move')")
        stroke(ActionChains(driver).key_down(Keys.SHIFT)).key_up(Keys.SHIFT).perform()
        assert driver.execute_script("return gridmapEditor.edits()")["moves"] == both
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def special_plan():
    """A primary road carved into road grids, and a school's unit grid."""
    from test_special_grids import city_with_main_road

    b, s, school = city_with_main_road()
    return gridmap.delineate(b, s, target=300, tolerance=0.1, sites=school,
                             road_grids=True, road_depth=10, road_max_length=250)


def test_road_and_unit_grids_in_the_data(special_plan):
    from gridmap.colours import KIND_COLOURS

    data = editor_data(special_plan)
    kinds = {g["grid_id"]: g["kind"] for g in data["grids"]}
    assert sorted(kinds.values()).count("road") == 2 and "unit" in kinds.values()
    for g in data["grids"]:
        if g["kind"] != "community":
            assert g["colour"] == KIND_COLOURS[g["kind"]]
    road_units = [f for f in data["units"]["features"]
                  if kinds[f["properties"]["grid_id"]] == "road"]
    assert road_units and all(f["properties"]["weight"] == 0 for f in road_units)


@browser
def test_road_and_unit_grids_take_no_unit_by_hand(special_plan, tmp_path):
    page = write_editor(special_plan, tmp_path / "edit.html")
    units = special_plan.units
    kind = special_plan.grids.set_index("grid_id")["kind"]
    road = int(units.loc[units["grid_id"].map(kind) == "road", "unit_id"].iloc[0])
    community = int(special_plan.grids.loc[special_plan.grids["kind"] == "community",
                                           "grid_id"].iloc[0])
    driver = _driver(tmp_path, tmp_path)
    try:
        _open(driver, page)
        driver.execute_script("gridmapEditor.select(arguments[0])", community)
        assert driver.execute_script("return gridmapEditor.move(arguments[0])", road) is False
        assert "road grid" in driver.find_element(By.ID, "gm-message").text
        got = driver.execute_script("return gridmapEditor.figures(arguments[0])",
                                    int(units.set_index("unit_id").loc[road, "grid_id"]))
        assert got["status"] == "no band" and got["mean"] is None and got["in_band"] is None
        assert driver.execute_script("return gridmapEditor.edits()")["moves"] == []
    finally:
        driver.quit()


def test_the_page_inline_in_jupyter(plan):
    shown = plan.editor(height=500)
    html_text = shown.data if hasattr(shown, "data") else shown
    assert html_text.startswith("<iframe srcdoc=") and "height:500px" in html_text
    assert plan.plan_id in html_text
