"""Timings of every stage and progress bars: in the plan, in metrics.json, on stderr."""

from __future__ import annotations

import json

from conftest import grid_city

import gridmap
from gridmap.cli import main

LIBRARY_STAGES = {"read", "population", "units", "adjacency", "partition", "plan", "metrics"}
ALL_STAGES = LIBRARY_STAGES | {"maps", "write"}


def _check(timings, stages):
    assert set(timings) >= stages
    for name in stages:
        t = timings[name]
        assert t["seconds"] >= 0, name
        assert t["cpu_seconds"] >= 0, name
        assert t["peak_mb"] is None or t["peak_mb"] > 0, name


def test_plan_carries_timings_of_every_stage(tmp_path):
    b, s = grid_city(4, 4)
    plan = gridmap.delineate(b, s, target=400, progress=False)
    _check(plan.timings, LIBRARY_STAGES)
    assert plan.timings is plan.metrics["timings"]
    assert "write" not in plan.timings and "maps" not in plan.timings
    plan.to_file(tmp_path)
    # writing is not the plan's own stage: metrics.json has it, the plan is unchanged
    assert "write" not in plan.timings
    saved = json.loads((tmp_path / "metrics.json").read_text(encoding="utf-8"))
    _check(saved["timings"], LIBRARY_STAGES | {"write"})


def test_cli_metrics_json_times_maps_and_write(tmp_path, capsys):
    b, s = grid_city(4, 4)
    b.to_file(tmp_path / "b.gpkg")
    s.to_file(tmp_path / "s.gpkg")
    out = tmp_path / "out"
    rc = main(["delineate", "--buildings", str(tmp_path / "b.gpkg"), "--streets",
               str(tmp_path / "s.gpkg"), "--target", "400", "--out", str(out)])
    assert rc == 0
    saved = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    _check(saved["timings"], ALL_STAGES)
    # the bar goes to stderr and names the stages; stdout keeps the summary
    err = capsys.readouterr().err
    assert "gridmap" in err and "stages" in err


def test_no_progress_and_quiet_draw_no_bar(tmp_path, capsys):
    b, s = grid_city(2, 2)
    b.to_file(tmp_path / "b.gpkg")
    s.to_file(tmp_path / "s.gpkg")
    for flag in ("--no-progress", "--quiet"):
        rc = main(["delineate", "--buildings", str(tmp_path / "b.gpkg"), "--streets",
                   str(tmp_path / "s.gpkg"), "--target", "200", "--no-map",
                   "--out", str(tmp_path / flag.strip("-")), flag])
        assert rc == 0
        assert "stages" not in capsys.readouterr().err, flag
        saved = json.loads((tmp_path / flag.strip("-") / "metrics.json").read_text())
        _check(saved["timings"], LIBRARY_STAGES | {"write"})


def test_library_bar_only_when_asked(capsys):
    b, s = grid_city(2, 2)
    gridmap.delineate(b, s, target=200, progress=True)
    assert "stages" in capsys.readouterr().err
    gridmap.delineate(b, s, target=200, progress=False)
    assert "stages" not in capsys.readouterr().err
    # default: off when stderr is not a terminal (as under pytest)
    gridmap.delineate(b, s, target=200)
    assert "stages" not in capsys.readouterr().err


def test_a_stage_opened_twice_adds_up_in_the_plans_timings(monkeypatch):
    """The plan stage is opened for the assembly and again, after the metrics,
    for the outputs: one entry, holding the time of both."""
    import time

    import gridmap.delineation as d

    def slow(function):
        def wrapped(*args, **kwargs):
            time.sleep(0.15)
            return function(*args, **kwargs)
        return wrapped

    monkeypatch.setattr(d, "assemble", slow(d.assemble))  # before the metrics
    monkeypatch.setattr(d, "to_output", slow(d.to_output))  # after them (twice)
    b, s = grid_city(2, 2)
    plan = gridmap.delineate(b, s, target=200, progress=False)
    assert list(plan.timings) == ["read", "population", "units", "adjacency", "partition",
                                  "plan", "metrics"]
    assert plan.timings["plan"]["seconds"] >= 0.45
    assert plan.timings["metrics"]["seconds"] < 0.15
