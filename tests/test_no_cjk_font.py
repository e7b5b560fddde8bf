"""No CJK font on the machine: the maps are still written (issue 19).

The font search is patched to find nothing, so that these tests mean the same on a
machine with CJK fonts installed (CI installs fonts-noto-cjk) as on one without.
"""

from __future__ import annotations

import re
import types
import warnings
import xml.etree.ElementTree as ET
from urllib.parse import unquote

import numpy as np
import pandas as pd
import pytest
from conftest import grid_city
from test_render import CHROMIUM, open_in_chromium

import gridmap
from gridmap import GridmapError, GridmapWarning, static
from gridmap.chart import CHART_COLOURS, load_chart_svg

CJK = re.compile(r"[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]")
SVG_NS = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def no_cjk_font(monkeypatch):
    """The real font search, looking for fonts that no machine has."""
    monkeypatch.setattr(static, "CJK_FONTS", ("No Such CJK Font",))
    monkeypatch.setattr(static, "_FILE_HINTS", ("no-such-font-file-hint",))
    with pytest.raises(GridmapError, match="no font that draws Chinese"):
        static.cjk_font()  # asked directly, it still says so


def city():
    """4 × 4 blocks of 2 buildings of 50 households, one building of 500."""
    b, s = grid_city(4, 4, per_block=2, households=50)
    b.loc[0, "households"] = 500
    return b, s


@pytest.fixture(scope="module")
def plan():
    return gridmap.delineate(*city(), target=200, tolerance=0.1)


def bars(svg: str) -> dict[str, dict[int, float]]:
    """Bar index -> height (%) of every bar, by colour class, read from the paths."""
    root = ET.fromstring(svg)
    out: dict[str, dict[int, float]] = {}
    for path in root.iter(f"{SVG_NS}path"):
        heights: dict[int, float] = {}
        y = 0.0
        for cmd, a, b in re.findall(r"([MVHZ])\s*(-?[\d.]+)?(?:\s(-?[\d.]+))?", path.get("d")):
            if cmd == "M":
                y = float(b)
            elif cmd == "V":
                y = float(a)
            elif cmd == "H":
                heights[int(a) - 1] = y  # bar i spans [i, i + 1]
        out[path.get("class")] = heights
    return out


def test_the_hand_made_plan_is_what_the_chart_test_expects(plan):
    # 8 ordinary grids of 200, 200, ... and 150: the community mean is 1550 / 8;
    # the grid of the one building of 500 is flagged (oversize) and not counted
    g = plan.grids
    assert sorted(g["households"]) == [150] + [200] * 7 + [500]
    assert (g["flag"] == "oversize").sum() == 1
    mean = 1550 / 8
    assert np.allclose(g["community_mean"], mean)
    assert int((~g["within_tolerance"]).sum()) == 1


def test_chart_bars_heights_and_colours(plan):
    svg = load_chart_svg(plan)
    found = bars(svg)
    mean = 1550 / 8
    up, down = (200 / mean - 1) * 100, (150 / mean - 1) * 100  # +3.23 %, -22.58 %
    top = 1.15 * abs(down)  # the scale: the largest ordinary bar, not the flagged one
    # sorted: the grid out of the band first, the 7 within, the flagged one last
    assert found["out"] == {0: pytest.approx(down, abs=0.006)}
    assert found["within"] == {i: pytest.approx(up, abs=0.006) for i in range(1, 8)}
    assert found["flagged"] == {8: pytest.approx(top, abs=0.006)}  # +158 %, cut
    assert sum(len(v) for v in found.values()) == len(plan.grids)  # one bar a grid
    root = ET.fromstring(svg)
    fills = {p.get("class"): p.get("fill") for p in root.iter(f"{SVG_NS}path")}
    assert fills == {"within": "#4575b4", "out": "#d7191c", "flagged": "#fdae61"}
    (band,) = [r for r in root.iter(f"{SVG_NS}rect") if r.get("class") == "band"]
    assert (band.get("x"), band.get("width"), band.get("y"), band.get("height")) == \
        ("0", "9", "-10", "20")  # ±10 % under all 9 bars
    text = " ".join(root.itertext())
    assert "各网格负荷 Load of every grid against the ±10% band" in text
    assert "1 out, 1 flagged" in text and "bars cut at the frame" in text
    assert "网格 grids (9), sorted" in text and "偏差 deviation (%), households" in text
    assert "+20%" in text and "\u221220%" in text  # percent ticks


def test_chart_with_thousands_of_grids_stays_small():
    rng = np.random.default_rng(1)
    n = 5000
    dev = rng.normal(0, 0.06, n)
    flag = np.where(rng.random(n) < 0.01, "island", "")
    grids = pd.DataFrame({"deviation": dev, "flag": flag, "kind": "community",
                          "within_tolerance": np.abs(dev) <= 0.1})
    fake = types.SimpleNamespace(grids=grids, params={"by": "households", "tolerance": 0.1})
    svg = load_chart_svg(fake)
    found = bars(svg)
    assert sum(len(v) for v in found.values()) == n
    assert len(found["flagged"]) == (flag != "").sum()
    assert len(found["out"]) == ((np.abs(dev) > 0.1) & (flag == "")).sum()
    # three paths (one a colour), not 5,000 elements; about 12 bytes a bar
    assert svg.count("<path") == 3 and svg.count("<rect") < 10
    assert len(svg) < 90_000, len(svg)
    ordered = sorted(dev * 100)
    heights = {**found["within"], **found["out"], **found["flagged"]}
    assert [heights[i] for i in range(n)] == pytest.approx(ordered, abs=0.006)


def test_chart_draws_each_communitys_band_and_escapes_text():
    grids = pd.DataFrame({
        "deviation": [0.04, -0.06, 0.12, -0.03, 0.0, np.nan],
        "tolerance": [0.05, 0.05, 0.15, 0.15, 0.15, np.nan],
        "within_tolerance": [True, False, True, True, True, True],
        "flag": ["", "", "", "", "", ""],
        "kind": ["community"] * 5 + ["road"],
    })
    fake = types.SimpleNamespace(grids=grids, params={"by": "a<b&'c", "tolerance": 0.1})
    svg = load_chart_svg(fake)
    root = ET.fromstring(svg)  # well-formed, whatever the column is called
    bands = [(r.get("x"), r.get("width"), r.get("y")) for r in root.iter(f"{SVG_NS}rect")
             if r.get("class") == "band"]
    assert bands == [("0", "2", "-5"), ("2", "3", "-15")]
    found = bars(svg)
    assert found["out"] == {0: -6.0}
    assert found["within"] == {1: 4.0, 2: -3.0, 3: 0.0, 4: 12.0}
    text = " ".join(root.itertext())
    assert "a<b&'c" in text and "a&lt;b&amp;&#x27;c" in svg
    assert "its community's band (±5–15%)" in text
    assert "1 road/unit grids not balanced" in text


def test_workload_map_draws_the_chart_as_svg_without_a_font(plan, no_cjk_font):
    with warnings.catch_warnings():
        warnings.simplefilter("error", GridmapWarning)  # nothing to warn about
        page = gridmap.render.workload_map(plan, font=None).get_root().render()
        with_font = plan.workload_map(font="any/path/it/is/ignored.ttf")
    assert "<img" not in page and "data:image/png" not in page
    start = page.rindex("<svg", 0, page.index("id='gridmap-load-chart'"))
    svg = page[start:page.index("</svg>", start) + len("</svg>")]
    found = bars(svg)
    assert len(found["within"]) == 7 and len(found["out"]) == 1
    assert len(found["flagged"]) == 1
    # the link saves the very same chart
    uri = re.search(r"href='data:image/svg\+xml;charset=utf-8,([^']+)' "
                    r"download='load_chart\.svg'>save chart as SVG</a>", page)
    assert uri and unquote(uri.group(1)) == svg
    assert "gridmap-load-chart" in with_font.get_root().render()


def static_figures(plan, kind, font=None):
    if kind == "chart":
        return static.load_chart(plan, font=font)
    return static.static_map(plan, None, kind=kind, font=font)


@pytest.mark.parametrize("kind", ["coverage", "workload", "chart"])
def test_static_maps_fall_back_to_english_labels(plan, no_cjk_font, kind):
    import matplotlib.pyplot as plt
    from matplotlib.text import Text

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig = static_figures(plan, kind)
        fig.canvas.draw()
    ours = [w for w in caught if issubclass(w.category, GridmapWarning)]
    assert len(ours) == 1, [str(w.message) for w in ours]
    msg = str(ours[0].message)
    assert "English only" in msg and "Chinese parts are left out" in msg
    assert "apt-get install fonts-noto-cjk" in msg and "font=" in msg
    assert "\n" not in msg
    assert ours[0].filename == __file__  # it points at the call, not at gridmap
    assert not [w for w in caught if "missing from font" in str(w.message)]
    texts = [t.get_text() for t in fig.findobj(Text) if t.get_text()]
    assert not [t for t in texts if CJK.search(t)]
    title = {"coverage": "Coverage: 9 grids", "workload": "Workload per grid",
             "chart": "Load of every grid against the ±10% band: 1 out, 1 flagged"}[kind]
    assert any(t.startswith(title) for t in texts), texts
    if kind != "coverage":
        assert "grids (9), sorted" in texts and "deviation (%), households" in texts
    if kind == "workload":
        assert "workload" in texts  # the legend's title, "工作量 workload" before
    plt.close(fig)


def test_a_named_font_that_does_not_exist_is_still_an_error(plan, no_cjk_font, tmp_path):
    for kind in ("coverage", "chart"):
        with pytest.raises(GridmapError, match="nope.ttf' does not exist"):
            static_figures(plan, kind, font=tmp_path / "nope.ttf")


def test_labels_lose_only_their_chinese(no_cjk_font):
    """Without a CJK font a label keeps all but its Chinese: a balance field named
    in Chinese goes with the comma before it."""
    import matplotlib.pyplot as plt
    from matplotlib.text import Text

    b, s = city()
    b = b.rename(columns={"households": "户数"})
    plan = gridmap.delineate(b, s, target=200, tolerance=0.1, by="户数")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GridmapWarning)
        fig = static.load_chart(plan)
        fig.canvas.draw()
    texts = [t.get_text() for t in fig.findobj(Text) if t.get_text()]
    assert "deviation (%)" in texts and "grids (9), sorted" in texts
    assert not [t for t in texts if CJK.search(t)]
    plt.close(fig)


@pytest.fixture
def layers(tmp_path):
    b, s = city()
    b.to_file(tmp_path / "b.gpkg")
    s.to_file(tmp_path / "s.gpkg")
    return tmp_path / "b.gpkg", tmp_path / "s.gpkg"


def run_cli(layers, out, *extra):
    from gridmap.cli import main

    return main(["delineate", "--buildings", str(layers[0]), "--streets", str(layers[1]),
                 "--target", "200", "--tolerance", "0.1", "--by", "households",
                 "--out", str(out), "--quiet", *extra])


def test_the_command_writes_every_file_without_a_cjk_font(layers, tmp_path, no_cjk_font,
                                                          capsys):
    out = tmp_path / "out"
    assert run_cli(layers, out) == 0
    for name in ("plan.gpkg", "metrics.json", "coverage.html", "workload.html"):
        assert (out / name).stat().st_size > 1000, name
    page = (out / "workload.html").read_text(encoding="utf-8")
    assert "id='gridmap-load-chart'" in page and "save chart as SVG" in page
    assert not capsys.readouterr().err


def test_the_command_with_png_falls_back_and_warns(layers, tmp_path, no_cjk_font,
                                                   monkeypatch):
    issued = []
    warn = warnings.warn

    def spy(message, category=None, *args, **kwargs):
        issued.append((str(message), category))
        return warn(message, category, *args, **kwargs)

    # the command silences GridmapWarning (it prints the plan's notes instead), so
    # the warning is watched where it is issued
    monkeypatch.setattr(warnings, "warn", spy)
    out = tmp_path / "out"
    assert run_cli(layers, out, "--png") == 0
    for name in ("coverage.png", "workload.png", "load_chart.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    ours = [m for m, c in issued if c is GridmapWarning and m == static.NO_CJK_FONT]
    assert len(ours) == 3  # one for each picture, once each
    assert (out / "workload.html").exists()


def chart_pixels(img, colour, box):
    """Pixels of ``colour`` (hex) within ``box`` (x0, y0, x1, y1) of the screenshot."""
    x0, y0, x1, y1 = box
    px = img[y0:y1, x0:x1, :3]
    rgb = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)]) / 255
    ys, xs = np.nonzero(np.abs(px - rgb).max(axis=2) < 0.03)
    return xs + x0, ys + y0


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_the_chart_draws_in_headless_chromium(layers, tmp_path, no_cjk_font):
    out = tmp_path / "out"
    assert run_cli(layers, out) == 0
    page = out / "workload.html"
    width, height = 1100, 800
    console, img, requests = open_in_chromium(page, tmp_path, size=f"{width},{height}")
    assert not [ln for ln in console if "Uncaught" in ln or "rror" in ln], console
    assert not requests, requests
    assert img.shape[:2] == (height, width)
    # the chart: 480 × 230 px at the bottom right (the box is 12 px from the right,
    # 24 px from the bottom); its plot area, without the legend's swatches and the
    # link to save it below (the bottom 70 px)
    box = (width - 12 - 500, height - 24 - 280, width - 12, height - 24 - 70)
    red = chart_pixels(img, CHART_COLOURS["out"], box)
    blue = chart_pixels(img, CHART_COLOURS["within"], box)
    orange = chart_pixels(img, CHART_COLOURS["flagged"], box)
    # the band: #a6d96a at 35 % over white
    band_rgb = [round(255 - 0.35 * (255 - c)) for c in (0xA6, 0xD9, 0x6A)]
    band = chart_pixels(img, "#" + "".join(f"{c:02x}" for c in band_rgb), box)
    # each bar is 422 / 9 = 47 px wide: the red one 64 px tall, the orange 74,
    # the 7 blue ones 9; the band shows above and below them
    assert 2000 < len(red[0]) < 4000, len(red[0])
    assert 2500 < len(orange[0]) < 4500, len(orange[0])
    assert 2000 < len(blue[0]) < 4000, len(blue[0])
    assert len(band[0]) > 5000, len(band[0])
    # sorted left to right: red, blue, orange; red hangs below zero, orange stands up
    assert red[0].max() < blue[0].mean() < orange[0].min()
    assert red[1].mean() > blue[1].max() and orange[1].mean() < blue[1].max()
    # nothing of the chart outside its box: the map's left part has no orange bars
    far = chart_pixels(img, CHART_COLOURS["flagged"], (0, 0, width // 2, height))
    assert len(far[0]) == 0


def test_with_a_cjk_font_the_labels_stay_bilingual(plan, monkeypatch):
    # the other way round: a CJK font found, nothing left out, nothing said
    from matplotlib.text import Text

    monkeypatch.setattr(static, "cjk_font", lambda path=None: "DejaVu Sans")
    with warnings.catch_warnings():
        warnings.simplefilter("error", GridmapWarning)
        # (DejaVu Sans stands in for the CJK font: it has no glyph for them)
        warnings.filterwarnings("ignore", "Glyph .* missing from font", UserWarning)
        fig = static.static_map(plan, None, kind="workload")
    texts = [t.get_text() for t in fig.findobj(Text)]
    assert "工作量 workload" in texts and "网格 grids (9), sorted" in texts
    assert any(t.startswith("网格工作量 Workload per grid") for t in texts)
