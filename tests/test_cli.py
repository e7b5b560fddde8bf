"""The command line: the files it writes are a contract planners' scripts rely on."""

from __future__ import annotations

import json

import geopandas as gpd
import pyogrio
import pytest
from conftest import grid_city

from gridmap.cli import main

GRID_COLUMNS = {"grid_id", "code", "kind", "community_id", "households", "pop_actual"}


def test_delineate_writes_plan_and_metrics(tmp_path):
    b, s = grid_city(4, 4)
    b.to_file(tmp_path / "b.gpkg")
    s.to_file(tmp_path / "s.geojson", driver="GeoJSON")
    out = tmp_path / "out"
    rc = main(["delineate", "--buildings", str(tmp_path / "b.gpkg"), "--streets",
               str(tmp_path / "s.geojson"), "--target", "400", "--tolerance", "0.1",
               "--by", "households", "--out", str(out), "--quiet"])
    assert rc == 0
    layers = {name for name, _ in pyogrio.list_layers(out / "plan.gpkg")}
    assert {"grids", "buildings"} <= layers
    grids = gpd.read_file(out / "plan.gpkg", layer="grids")
    assert GRID_COLUMNS <= set(grids.columns)
    assert len(grids) == 4
    bld = gpd.read_file(out / "plan.gpkg", layer="buildings")
    assert len(bld) == len(b) and bld["id"].tolist() == b["id"].tolist()
    assert set(bld["grid_id"]) == set(grids["grid_id"])
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["n_grids"] == 4 and metrics["max_abs_deviation"] == 0
    assert set(metrics["timings"]) >= {"read", "population", "units", "partition"}
    html = (out / "coverage.html").read_text(encoding="utf-8")
    assert "L.map(" in html and 'src="https://' not in html


def test_bad_input_exits_nonzero_without_traceback(tmp_path, capsys):
    rc = main(["delineate", "--buildings", str(tmp_path / "missing.gpkg"), "--out",
               str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 1
    assert "file not found" in err and "Traceback" not in err
    assert not (tmp_path / "o" / "plan.gpkg").exists()


def test_missing_balance_column_is_named(tmp_path, capsys):
    b, _s = grid_city(2, 2)
    b.to_file(tmp_path / "b.gpkg")
    rc = main(["delineate", "--buildings", str(tmp_path / "b.gpkg"), "--by", "pop_x",
               "--target", "100", "--out", str(tmp_path / "o")])
    assert rc == 1
    assert "pop_x" in capsys.readouterr().err


@pytest.mark.slow
def test_bundled_demo_runs(bundled_demo):
    # the README's demo command (run once for the session by the fixture)
    out = bundled_demo
    assert (out / "coverage.html").exists() and (out / "workload.html").exists()
    grids = gpd.read_file(out / "plan.gpkg", layer="grids")
    bld = gpd.read_file(out / "plan.gpkg", layer="buildings")
    assert len(bld) == 1321 and bld["grid_id"].notna().all()
    assert grids.crs.to_epsg() == 4326
    m = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert m["gap_share"] < 0.001 and m["overlap_share"] < 0.001
    assert m["population"]["method"] == "estimate"


def test_map_redraws_a_saved_plan(tmp_path):
    b, s = grid_city(2, 2)
    b.to_file(tmp_path / "b.gpkg")
    s.to_file(tmp_path / "s.gpkg")
    out = tmp_path / "out"
    assert main(["delineate", "--buildings", str(tmp_path / "b.gpkg"), "--streets",
                 str(tmp_path / "s.gpkg"), "--target", "200", "--out", str(out),
                 "--no-map", "--quiet"]) == 0
    assert not (out / "coverage.html").exists()
    assert not (out / "workload.html").exists()
    assert main(["map", str(out / "plan.gpkg"), "--quiet", "--png"]) == 0
    html = (out / "coverage.html").read_text(encoding="utf-8")
    assert "L.map(" in html
    work = (out / "workload.html").read_text(encoding="utf-8")
    assert "gridmap-load-chart" in work and "<svg" in work  # the chart, drawn in the page
    for name in ("coverage.png", "workload.png", "load_chart.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in out.parent.rglob("*") if ".gridmap-" in p.name]  # all moved in


def test_workload_formula_and_privacy_threshold_from_the_command_line(tmp_path, capsys):
    b, s = grid_city(2, 2, households=3)
    b["pop_floating"] = 2
    b.to_file(tmp_path / "b.gpkg")
    s.to_file(tmp_path / "s.gpkg")
    out = tmp_path / "out"
    assert main(["delineate", "--buildings", str(tmp_path / "b.gpkg"), "--streets",
                 str(tmp_path / "s.gpkg"), "--target", "6", "--out", str(out),
                 "--workload", "households=2", "--workload", "pop_floating=1",
                 "--worker-capacity", "7", "--privacy-threshold", "10", "--quiet"]) == 0
    grids = gpd.read_file(out / "plan.gpkg", layer="grids")
    # 2 × 3 households + 1 × 2 floating per building, 2 buildings per grid
    assert grids["workload"].tolist() == [16.0] * len(grids)
    assert grids["workers"].tolist() == [3] * len(grids)  # ceil(16 / 7)
    html = (out / "coverage.html").read_text(encoding="utf-8")
    # 6 households per grid, under the threshold; the 3 workers are staff, shown
    assert '"p_households": "\\u0026lt;10"' in html and '"p_workers": "3"' in html
    assert main(["map", str(out), "--privacy-threshold", "0", "--quiet"]) == 1
    assert "privacy_threshold must be" in capsys.readouterr().err


def test_map_of_a_missing_plan_is_a_clear_error(tmp_path, capsys):
    assert main(["map", str(tmp_path / "nothing.gpkg")]) == 1
    assert "no plan at" in capsys.readouterr().err


def test_the_command_line_builds_the_option_objects():
    """Every option of ``delineate`` comes from the option objects: the defaults
    on the command line are the objects' own, and flags map to their fields."""
    from gridmap.cli import build_parser
    from gridmap.options import (
        Balance,
        Inputs,
        Population,
        Search,
        SpecialGrids,
        Workload,
        from_arguments,
    )

    base = ["delineate", "--buildings", "b.gpkg", "--out", "out"]
    args = build_parser().parse_args(base)
    for kind in (Balance, Population, SpecialGrids, Workload, Search, Inputs):
        assert from_arguments(kind, args) == kind()
    args = build_parser().parse_args(
        [*base, "--no-exact", "--restarts", "3", "--target-for", "old=250:0.15",
         "--road-name", "南京东路", "--workload", "households=1", "--column",
         "households=HH", "--dask"])
    search = from_arguments(Search, args)
    assert (search.exact, search.restarts, search.scheduler) == (False, 3, "local")
    assert from_arguments(Balance, args).targets == {"old": (250.0, 0.15)}
    special = from_arguments(SpecialGrids, args)
    assert special.road_names == ("南京东路",) and special.road_grids
    assert from_arguments(Workload, args).formula == {"households": 1.0}
    assert from_arguments(Inputs, args).columns == {"households": "HH"}



def test_official_codes_from_a_named_column_on_the_command_line(tmp_path, capsys):
    import shapely

    b, s = grid_city(4, 4, per_block=2, households=50)
    b.to_file(tmp_path / "b.gpkg")
    s.to_file(tmp_path / "s.gpkg")
    comm = gpd.GeoDataFrame(
        {"community_id": ["W", "E"], "DM": ["110101007015", "110101008002"]},
        geometry=[shapely.box(0, 0, 200, 400), shapely.box(200, 0, 400, 400)], crs=b.crs)
    comm.to_file(tmp_path / "c.gpkg")
    base = ["delineate", "--buildings", str(tmp_path / "b.gpkg"), "--streets",
            str(tmp_path / "s.gpkg"), "--boundaries", str(tmp_path / "c.gpkg"),
            "--target", "200", "--quiet"]
    assert main([*base, "--code-column", "DM", "--out", str(tmp_path / "o")]) == 0
    grids = gpd.read_file(tmp_path / "o" / "plan.gpkg", layer="grids")
    assert {c[:12] for c in grids["code"]} == {"110101007015", "110101008002"}
    assert main([*base, "--code-column", "XX", "--out", str(tmp_path / "x")]) == 1
    assert "no column 'XX' of official community codes" in capsys.readouterr().err
