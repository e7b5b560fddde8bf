"""No failure ever damages a plan: options checked before the work, the files of a
run put in place together, one run at a time, interrupts that leave nothing behind.

Every case starts from a good plan already in the output folder and checks that
the folder is byte-for-byte what it was after a refused or interrupted run.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import grid_city

import gridmap
from gridmap.cli import main
from gridmap.output import LOCK_FILE, OutputFolder

ROOT = Path(__file__).resolve().parents[1]


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (hidden ones too) and the hash of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def leftovers(folder: Path) -> list[str]:
    """Temporary files or folders of gridmap beside or inside ``folder``."""
    near = [p.name for p in folder.parent.iterdir() if ".gridmap-" in p.name]
    inside = [p.name for p in folder.iterdir()
              if ".gridmap-" in p.name or p.name.endswith(".tmp") or p.name == LOCK_FILE] \
        if folder.exists() else []
    return near + inside


@pytest.fixture
def layers(tmp_path):
    b, s = grid_city(4, 4)
    b.to_file(tmp_path / "b.gpkg")
    s.to_file(tmp_path / "s.gpkg")
    return ["--buildings", str(tmp_path / "b.gpkg"), "--streets", str(tmp_path / "s.gpkg")]


@pytest.fixture
def good(tmp_path, layers):
    """A good plan (with its maps) already in ``tmp_path / "out"``."""
    out = tmp_path / "out"
    assert main(["delineate", *layers, "--target", "400", "--out", str(out), "--quiet"]) == 0
    return out


#: bad options and the words of their message (each a row of the guide's section 1b)
BAD_OPTIONS = [
    (["--scheme", "UserDefined"], "needs class bounds of its own"),
    (["--scheme", "Bogus"], "scheme 'Bogus' is not a classification scheme"),
    (["--privacy-threshold", "-1"], "privacy_threshold must be a whole number of at least 1"),
    (["--png", "--font", "/nonexistent.ttf"], "font file '/nonexistent.ttf' does not exist"),
    (["--classes", "0"], "classes must be a whole number from 2 to 7, got 0"),
    (["--classes", "99"], "classes must be a whole number from 2 to 7, got 99"),
    (["--tiles", "bogus"], "tiles 'bogus' is neither a base map gridmap knows"),
    (["--crs", "EPSG:999999"], "crs 'EPSG:999999' is not a CRS PROJ knows"),
    (["--crs", "EPSG:4326"], "is not a projected CRS in metres"),
]
#: what the guide's section 1b says of the folder and of interrupts, as the tests see it
FOLDER_CASES = ["holds files of an earlier plan that this run would not replace",
                "is the folder of the plan being read", "another gridmap run is writing to",
                "--lock names grid(s) [999]", "was left as it was",
                "gridmap: interrupted; DIR unchanged", "gridmap: terminated; DIR unchanged",
                "changes.csv, diff.html, handover.csv"]


def test_the_guide_shows_every_case():
    guide = (ROOT / "docs" / "guide.md").read_text(encoding="utf-8")
    section = guide.split("## 1b.")[1].split("\n## ")[0]
    for option, words in BAD_OPTIONS:
        assert words in section and f"`{' '.join(option)}`" in section, option
    for words in FOLDER_CASES:
        assert words in section, words


@pytest.mark.parametrize(("option", "words"), BAD_OPTIONS)
def test_bad_option_refused_before_any_work(good, layers, capsys, option, words):
    before = snapshot(good)
    rc = main(["delineate", *layers, "--target", "200", "--out", str(good), *option])
    err = capsys.readouterr().err
    assert rc == 1
    assert words in err and "Traceback" not in err
    assert snapshot(good) == before
    assert not leftovers(good)


def test_every_bad_option_is_said_at_once(good, layers, capsys):
    rc = main(["delineate", *layers, "--out", str(good), "--scheme", "Bogus",
               "--classes", "0", "--tiles", "bogus"])
    err = capsys.readouterr().err
    assert rc == 1 and "3 problems in the options" in err


def test_a_font_that_is_no_font_is_refused(good, layers, tmp_path, capsys):
    junk = tmp_path / "junk.ttf"
    junk.write_bytes(b"not a font")
    before = snapshot(good)
    assert main(["delineate", *layers, "--out", str(good), "--png", "--font",
                 str(junk)]) == 1
    assert "is not a font matplotlib can read" in capsys.readouterr().err
    assert snapshot(good) == before


def test_scheme_in_any_case_is_taken(tmp_path, layers):
    out = tmp_path / "o"
    assert main(["delineate", *layers, "--target", "400", "--out", str(out),
                 "--scheme", "equalinterval", "--quiet"]) == 0
    assert "EqualInterval" in (out / "workload.html").read_text(encoding="utf-8")


def test_no_map_into_a_folder_with_maps_refuses_naming_them(good, layers, capsys):
    before = snapshot(good)
    rc = main(["delineate", *layers, "--target", "200", "--out", str(good), "--no-map"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "coverage.html, workload.html" in err and "--overwrite" in err
    assert snapshot(good) == before
    # with --overwrite the earlier plan's maps go with it
    rc = main(["delineate", *layers, "--target", "200", "--out", str(good), "--no-map",
               "--overwrite", "--quiet"])
    assert rc == 0
    assert sorted(p.name for p in good.iterdir()) == ["metrics.json", "plan.gpkg"]
    assert json.loads((good / "metrics.json").read_text())["params"]["target"] == 200


def test_delineate_into_a_repartition_folder_refuses_its_tables(good, layers, capsys):
    out = good.parent / "re"
    assert main(["repartition", "--plan", str(good / "plan.gpkg"), "--out", str(out),
                 "--quiet"]) == 0
    assert {"changes.csv", "handover.csv", "diff.html"} <= {p.name for p in out.iterdir()}
    before = snapshot(out)
    assert main(["delineate", *layers, "--target", "400", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "changes.csv, diff.html, handover.csv" in err
    assert snapshot(out) == before


def test_repartition_into_its_own_plans_folder_needs_overwrite(good, capsys):
    before = snapshot(good)
    assert main(["repartition", "--plan", str(good / "plan.gpkg"), "--out",
                 str(good)]) == 1
    assert "is the folder of the plan being read" in capsys.readouterr().err
    assert snapshot(good) == before
    assert main(["repartition", "--plan", str(good / "plan.gpkg"), "--out", str(good),
                 "--overwrite", "--quiet"]) == 0
    assert (good / "changes.csv").exists()


def test_repartition_takes_the_effort_of_its_balancing_loop(good, tmp_path, capsys):
    out = tmp_path / "re"
    assert main(["repartition", "--plan", str(good / "plan.gpkg"), "--out", str(out),
                 "--effort", "fast", "--time-limit", "60", "--no-map", "--quiet"]) == 0
    search = json.loads((out / "metrics.json").read_text())["search"]
    assert search["effort"] == "fast" and search["time_limit"] == 60
    with pytest.raises(SystemExit) as stop:
        main(["repartition", "--plan", str(good / "plan.gpkg"), "--out",
              str(tmp_path / "re2"), "--effort", "hard"])
    assert stop.value.code == 2
    assert "--effort takes one of fast, default, thorough" in capsys.readouterr().err


def test_lock_of_a_grid_the_plan_does_not_have_is_refused(good, tmp_path, capsys):
    out = tmp_path / "re"
    assert main(["repartition", "--plan", str(good / "plan.gpkg"), "--out", str(out),
                 "--lock", "999"]) == 1
    err = capsys.readouterr().err
    assert "--lock names grid(s) [999]" in err
    assert not out.exists()


def test_a_failure_after_the_work_leaves_the_folder_as_it_was(good, layers, monkeypatch,
                                                              capsys):
    """A defect while the maps are drawn: the new plan.gpkg is not put in place."""
    import gridmap.render

    def broken(*args, **kwargs):
        raise RuntimeError("the map broke")

    monkeypatch.setattr(gridmap.render, "workload_map", broken)
    before = snapshot(good)
    rc = main(["delineate", *layers, "--target", "200", "--out", str(good)])
    err = capsys.readouterr().err
    assert rc == 2 and "the map broke" in err and f"{good} was left as it was" in err
    assert snapshot(good) == before
    assert not leftovers(good)


def test_a_failed_run_into_a_new_folder_leaves_no_folder(tmp_path, layers):
    out = tmp_path / "new" / "deeper"
    assert main(["delineate", *layers, "--target", "5000", "--out", str(out)]) == 1
    assert not (tmp_path / "new").exists()


def test_to_file_refuses_an_earlier_plans_maps_unless_overwrite(good, city4):
    plan = gridmap.delineate(*city4, target=800)
    before = snapshot(good)
    with pytest.raises(gridmap.OutputFolderError, match="coverage.html, workload.html"):
        plan.to_file(good)
    assert snapshot(good) == before
    plan.to_file(good, overwrite=True)
    assert sorted(p.name for p in good.iterdir()) == ["metrics.json", "plan.gpkg"]
    assert len(gridmap.read_plan(good).grids) == 2


def test_commit_rolls_back_when_a_move_fails(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "plan.gpkg").write_text("old plan")
    (out / "metrics.json").write_text("old metrics")
    real = os.replace
    calls = []

    def flaky(src, dst):
        calls.append(dst)
        # the second file of the new plan cannot be moved in
        if str(dst).endswith("metrics.json") and ".gridmap-old-" not in str(dst) and \
                ".gridmap-new-" in str(src):
            raise OSError("disk full")
        return real(src, dst)

    with OutputFolder(out, writes=["plan.gpkg", "metrics.json"]) as run:
        (run.staging / "plan.gpkg").write_text("new plan")
        (run.staging / "metrics.json").write_text("new metrics")
        monkeypatch.setattr(os, "replace", flaky)
        with pytest.raises(OSError, match="disk full"):
            run.commit()
        monkeypatch.setattr(os, "replace", real)
    assert (out / "plan.gpkg").read_text() == "old plan"
    assert (out / "metrics.json").read_text() == "old metrics"
    assert not leftovers(out)


def test_unrelated_files_in_the_folder_are_kept(good, layers):
    (good / "notes.txt").write_text("the planner's own")
    assert main(["delineate", *layers, "--target", "200", "--out", str(good),
                 "--quiet"]) == 0
    assert (good / "notes.txt").read_text() == "the planner's own"


# -- real processes --------------------------------------------------------------

def _cli(args: list[str], *, slow: str | None = None) -> subprocess.Popen:
    """``gridmap ARGS`` in a real process; ``slow`` names a function of
    gridmap.render to hold up for a minute (the step to interrupt in)."""
    code = "import sys\n"
    if slow:
        code += ("import time, gridmap.render as r\n"
                 f"orig = r.{slow}\n"
                 "def held(*a, **k):\n"
                 "    print('holding', flush=True)\n"
                 "    time.sleep(60)\n"
                 "    return orig(*a, **k)\n"
                 f"r.{slow} = held\n")
    code += "from gridmap.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    return subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)


def _wait_for(proc: subprocess.Popen, text: str, timeout: float = 120) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        line = proc.stdout.readline()
        if text in line:
            return
        if proc.poll() is not None:
            break
    raise AssertionError(f"the run never got to {text!r}: {proc.communicate()}")


@pytest.mark.parametrize(("sig", "status", "word"), [
    (signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")])
def test_interrupt_during_the_maps_leaves_the_plan_unchanged(good, layers, sig, status,
                                                              word):
    before = snapshot(good)
    proc = _cli(["delineate", *layers, "--target", "200", "--out", str(good),
                 "--no-progress"], slow="coverage_map")
    _wait_for(proc, "holding")  # the new plan.gpkg is written; the maps are being drawn
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == status
    assert err.strip() == f"gridmap: {word}; {good} unchanged"
    assert snapshot(good) == before
    assert not leftovers(good)


def test_two_runs_into_one_folder_the_second_refuses_at_once(good, layers):
    first = _cli(["delineate", *layers, "--target", "200", "--out", str(good),
                  "--no-progress"], slow="workload_map")
    _wait_for(first, "holding")
    t0 = time.monotonic()
    second = _cli(["delineate", *layers, "--target", "800", "--out", str(good),
                   "--no-progress"])
    _, err = second.communicate(timeout=60)
    assert second.returncode == 1
    assert time.monotonic() - t0 < 30  # at once: before any work
    assert "another gridmap run is writing to" in err and "Traceback" not in err
    first.send_signal(signal.SIGINT)
    first.communicate(timeout=60)
    assert not leftovers(good)


def test_two_runs_at_once_never_mix_their_plans(good, layers):
    """Started together: one writes its whole plan, the other refuses; the files
    in the folder are all of one run."""
    runs = [_cli(["delineate", *layers, "--target", str(t), "--out", str(good),
                  "--no-progress", "--no-map", "--overwrite"]) for t in (200, 800)]
    status = [r.communicate(timeout=120) and r.returncode for r in runs]
    assert 0 in status
    metrics = json.loads((good / "metrics.json").read_text())
    plan = gridmap.read_plan(good)
    assert len(plan.grids) == metrics["n_grids"] == 1600 // metrics["params"]["target"]
    assert not leftovers(good)


def test_quiet_prints_nothing_but_errors(tmp_path, layers):
    """A run that repairs a polygon (a gridmap warning) and meets a library's
    warning prints nothing with --quiet; without it, each once, as a note."""
    import geopandas as gpd
    import shapely

    b = gpd.read_file(layers[1])
    b.loc[0, "geometry"] = shapely.Polygon([(25, 25), (75, 75), (75, 25), (25, 75)])
    b.to_file(tmp_path / "bad.gpkg")
    args = ["delineate", "--buildings", str(tmp_path / "bad.gpkg"), "--streets",
            layers[3], "--target", "400", "--out", str(tmp_path / "q")]
    code = ("import sys, warnings\nfrom gridmap.cli import main\n"
            "import gridmap.delineation as d\norig = d.make_plan\n"
            "def noisy(*a, **k):\n"
            "    warnings.warn('a library says so', DeprecationWarning)\n"
            "    return orig(*a, **k)\n"
            "d.make_plan = noisy\nsys.exit(main(sys.argv[1:]))\n")
    quiet = subprocess.run([sys.executable, "-c", code, *args, "--quiet"],
                           capture_output=True, text=True, cwd=ROOT, check=False)
    assert quiet.returncode == 0
    assert quiet.stdout == "" and quiet.stderr == ""
    loud = subprocess.run([sys.executable, "-c", code, *args, "--overwrite",
                           "--no-progress"],
                          capture_output=True, text=True, cwd=ROOT, check=False)
    assert loud.returncode == 0
    assert loud.stderr.count("gridmap: note: a library says so") == 1
    assert "DeprecationWarning" not in loud.stderr and "make_valid" in loud.stdout


def _swapped(b):
    """The 2 × 2 city in longitude/latitude with the two swapped."""
    import shapely

    wgs = b.to_crs(4326)
    wgs.geometry = shapely.transform(wgs.geometry.values, lambda xy: xy[:, ::-1])
    return wgs


def _shifted(b):
    import shapely

    out = b.copy()
    out.geometry = shapely.transform(out.geometry.values, lambda xy: xy + [1e9, 0])
    return out


def _overlapping(b):
    import geopandas as gpd
    import shapely

    return gpd.GeoDataFrame({"community_id": ["C1", "C2"]},
                            geometry=[shapely.box(0, 0, 250, 400),
                                      shapely.box(150, 0, 400, 400)], crs=b.crs)


@pytest.mark.parametrize(("bad", "role", "words"), [
    (_swapped, "buildings", "longitude and latitude may be swapped"),
    (_shifted, "buildings", "far outside the area of its CRS"),
    (_overlapping, "boundaries", "`boundaries` overlap"),
])
def test_bad_coordinates_and_boundaries_refused_on_the_command_line(
        good, layers, tmp_path, capsys, bad, role, words):
    b, _ = grid_city(4, 4)
    path = tmp_path / f"bad_{role}.gpkg"
    bad(b).to_file(path)
    args = list(layers)
    if role == "buildings":
        args[1] = str(path)
    else:
        args += ["--boundaries", str(path)]
    before = snapshot(good)
    rc = main(["delineate", *args, "--target", "400", "--out", str(good)])
    err = capsys.readouterr().err
    assert rc == 1 and words in err and "Traceback" not in err
    assert snapshot(good) == before and not leftovers(good)


def test_allow_overlaps_from_the_command_line(tmp_path, layers):
    b, _ = grid_city(4, 4)
    _overlapping(b).to_file(tmp_path / "bnd.gpkg")
    out = tmp_path / "o"
    assert main(["delineate", *layers, "--boundaries", str(tmp_path / "bnd.gpkg"),
                 "--target", "400", "--out", str(out), "--allow-overlaps", "--quiet"]) == 0
    notes = json.loads((out / "metrics.json").read_text())["notes"]
    assert any("overlap" in n for n in notes)


def test_gbk_shapefile_without_cpg_from_the_command_line(tmp_path, layers, capsys):
    b, _ = grid_city(4, 4)
    b["名称"] = "外滩小区"
    b.to_file(tmp_path / "b.shp", encoding="GBK", engine="pyogrio")
    (tmp_path / "b.cpg").unlink(missing_ok=True)
    out = tmp_path / "o"
    args = ["delineate", "--buildings", str(tmp_path / "b.shp"), "--streets", layers[3],
            "--target", "400", "--out", str(out), "--no-map", "--no-progress"]
    assert main(args) == 0
    said = capsys.readouterr()
    assert "read as GB18030" in said.out + said.err
    back = gridmap.read_plan(out).buildings
    assert set(back["名称"]) == {"外滩小区"}
    # said plainly, nothing is guessed or said
    assert main([*args, "--encoding", "GBK", "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    assert set(gridmap.read_plan(out).buildings["名称"]) == {"外滩小区"}
