"""Bad input gets a clear answer: every row of the table in docs/guide.md is a case here.

Each case builds a small city, spoils one thing and checks the message (refused
inputs) or the warning and the plan's notes (repaired inputs).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from conftest import CRS, grid_city
from shapely import LineString, Polygon

import gridmap
from gridmap import (
    CRSMismatchError,
    DisconnectedUnitsError,
    GridmapWarning,
    LayerValidationError,
)
from gridmap.cli import main


def _city():
    return grid_city(2, 2)  # 4 buildings of 100 households, 4 blocks


def _bowtie(geom):
    x0, y0, x1, y1 = geom.bounds
    return Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])


def _spoil(case: str, tmp_path):
    """The delineate() keyword arguments of one bad input."""
    b, s = _city()
    kw = {"target": 200, "tolerance": 0.1}
    if case == "empty layer":
        b = b.iloc[:0]
    elif case == "wrong geometry type":
        b = b.set_geometry(b.centroid)
    elif case == "invalid polygon":
        b.loc[1, "geometry"] = _bowtie(b.geometry[1])
    elif case == "missing CRS":
        b = b.set_crs(None, allow_override=True)
    elif case == "different CRS":
        s = s.to_crs(4326)
    elif case == "misspelt balance column":
        kw["by"] = "houshold"
    elif case == "misspelt column mapping":
        kw["columns"] = {"households": "HH"}
    elif case == "misspelt id column":
        kw["id_column"] = "ID"
    elif case == "population NaN":
        b.loc[2, "households"] = np.nan
    elif case == "population negative":
        b.loc[2, "households"] = -5
    elif case == "population non-numeric":
        b["households"] = b["households"].astype(object)
        b.loc[2, "households"] = "a lot"
    elif case == "population fractional":
        b.loc[2, "households"] = 12.5
    elif case == "duplicate building ids":
        b.loc[1, "id"] = b.loc[0, "id"]
    elif case == "buildings outside every boundary":
        kw["boundaries"] = gpd.GeoDataFrame(
            {"community_id": ["C1"]}, geometry=[shapely.box(0, 0, 200, 100)], crs=CRS)
    elif case == "streets enclose no block":
        s = gpd.GeoDataFrame({"highway": ["residential"]},
                             geometry=[LineString([(100, -10), (100, 210)])], crs=CRS)
    elif case == "streets far from the buildings":
        s = s.set_geometry(s.translate(50_000, 0))
    elif case == "target 0":
        kw["target"] = 0
    elif case == "target above the total":
        kw["target"] = 10_000
    elif case == "tolerance 0":
        kw["tolerance"] = 0
    elif case == "tolerance 1.5":
        kw["tolerance"] = 1.5
    elif case == "missing file":
        b = str(tmp_path / "nowhere.gpkg")
    elif case == "unreadable file":
        (tmp_path / "junk.gpkg").write_bytes(b"this is not a geopackage")
        b = str(tmp_path / "junk.gpkg")
    else:  # pragma: no cover
        raise AssertionError(case)
    return b, s, kw


#: (case, error type or None for a warning, words of the message, also refused in strict)
REFUSED = [
    ("empty layer", LayerValidationError, ["`buildings` is empty (0 rows)"]),
    ("wrong geometry type", LayerValidationError,
     ["`buildings` must hold polygon geometries", "are Point"]),
    ("missing CRS", CRSMismatchError, ["`buildings` has no CRS", "set_crs('EPSG:4490')"]),
    ("misspelt balance column", LayerValidationError,
     ["no column 'houshold' to balance on", "Did you mean 'households'?", "'id'"]),
    ("misspelt column mapping", LayerValidationError,
     ["no layer has a column 'HH'", "columns are"]),
    ("misspelt id column", LayerValidationError,
     ["no id column 'ID'", "Did you mean 'id'?"]),
    ("population NaN", LayerValidationError,
     ["buildings['households'] has missing values (NaN) in row 2", "fill them"]),
    ("population negative", LayerValidationError,
     ["buildings['households'] has negative counts in row 2 (value -5.0)"]),
    ("population non-numeric", LayerValidationError,
     ["buildings['households'] has non-numeric values in row 2 (value 'a lot')"]),
    ("population fractional", LayerValidationError,
     ["buildings['households'] has fractional counts in row 2 (value 12.5)", "round()"]),
    ("duplicate building ids", LayerValidationError,
     ["id column 'id' has duplicate values ['b0-0-0']", "2 rows (ids 'b0-0-0', 'b0-0-0')"]),
    ("streets far from the buildings", LayerValidationError,
     ["`streets` do not reach the buildings"]),
    ("target 0", LayerValidationError, ["target must be a positive number", "got 0"]),
    ("target above the total", LayerValidationError,
     ["target 10000 is above the total of 'households' (400)", "Lower the target"]),
    ("tolerance 0", LayerValidationError, ["tolerance must be a fraction", "got 0"]),
    ("tolerance 1.5", LayerValidationError, ["tolerance must be a fraction", "got 1.5"]),
    ("missing file", LayerValidationError, ["`buildings` file not found", "nowhere.gpkg"]),
    ("unreadable file", LayerValidationError, ["`buildings` file", "could not be read"]),
]

#: repaired (or worked around) and reported by default, refused with strict=True
REPAIRED = [
    ("invalid polygon", ["`buildings` had invalid polygons in 1 row (ids 'b0-1-0')",
                         "Self-intersection", "repaired with make_valid"],
     LayerValidationError, ["`buildings` has invalid polygons in 1 row", "Fix them"]),
    ("different CRS", ["`streets` is in EPSG:4326 but `buildings` in EPSG:32651",
                       "reprojected"],
     CRSMismatchError, ["strict mode does not reproject", "to_crs"]),
    ("buildings outside every boundary",
     [("`buildings` has 2 rows (ids 'b0-1-0', 'b1-1-0') outside every community "
       "boundary"), "nearest block"],
     LayerValidationError, ["outside every community boundary", "Extend the boundaries"]),
    ("streets enclose no block", ["`streets` enclose no block"],
     LayerValidationError, ["`streets` enclose no block", "meeting at the intersections"]),
]


@pytest.mark.parametrize(("case", "error", "words"), REFUSED, ids=[r[0] for r in REFUSED])
def test_bad_input_is_refused_with_a_clear_message(case, error, words, tmp_path):
    b, s, kw = _spoil(case, tmp_path)
    with pytest.raises(error) as exc:
        gridmap.delineate(b, s, **kw)
    for w in words:
        assert w in str(exc.value)


@pytest.mark.parametrize(("case", "warned", "error", "refused"), REPAIRED,
                         ids=[r[0] for r in REPAIRED])
def test_repairable_input_is_repaired_and_said_or_refused_in_strict(
        case, warned, error, refused, tmp_path):
    b, s, kw = _spoil(case, tmp_path)
    with pytest.warns(GridmapWarning) as rec:
        plan = gridmap.delineate(b, s, **kw)
    said = " ".join(str(r.message) for r in rec)
    notes = " ".join(plan.metrics["notes"])
    for w in warned:
        assert w in said and w in notes
    assert len(plan.buildings) == len(b)  # nothing lost
    with pytest.raises(error) as exc:
        gridmap.delineate(b, s, strict=True, **kw)
    for w in refused:
        assert w in str(exc.value)


def _guide_rows() -> dict[str, str]:
    guide = (Path(__file__).resolve().parents[1] / "docs" / "guide.md").read_text(
        encoding="utf-8")
    section = guide.split("## 1a.")[1].split("\n## ")[0]
    return {line.split("|")[1].strip(): line for line in section.splitlines()
            if line.startswith("| ") and line.count("|") >= 4
            and not line.startswith("| bad input |")}


def test_the_guide_shows_every_case_with_its_message():
    rows = _guide_rows()
    for case, _, words in REFUSED:
        assert all(w.replace("{", "") in rows[case] for w in words[:1]), case
        assert "refused" in rows[case]
    for case, warned, _, refused in REPAIRED:
        assert warned[0] in rows[case] and "warned" in rows[case], case
        assert refused[0] in rows[f"{case}, strict"], case
    assert len(rows) == len(REFUSED) + 2 * len(REPAIRED)


def test_every_problem_is_reported_at_once(tmp_path):
    b, s = _city()
    b.loc[0, "households"] = -1
    b.loc[1, "id"] = b.loc[2, "id"]
    b.loc[3, "geometry"] = _bowtie(b.geometry[3])
    with pytest.raises(LayerValidationError) as exc:
        gridmap.delineate(b, s.to_crs(4326), compounds=str(tmp_path / "compounds.gpkg"),
                          target=0, tolerance=2, strict=True)
    problems = exc.value.problems
    text = str(exc.value)
    assert text.startswith(f"{len(problems)} problems in the input:")
    for w in ("`compounds` file not found", "target must be", "tolerance must be",
              "invalid polygons", "duplicate values", "negative counts",
              "strict mode does not reproject"):
        assert sum(w in p for p in problems) == 1, w


def test_clean_input_gives_no_warning():
    b, s = _city()
    with warnings.catch_warnings():
        warnings.simplefilter("error", GridmapWarning)
        plan = gridmap.delineate(b, s, target=200, tolerance=0.1, strict=True)
    assert len(plan.grids) == 2


def test_strict_and_islands_are_checked():
    b, s = _city()
    with pytest.raises(LayerValidationError, match="strict must be True or False"):
        gridmap.delineate(b, s, target=200, strict="yes")
    with pytest.raises(LayerValidationError, match="islands must be one of"):
        gridmap.delineate(b, s, target=200, islands="drop")


@pytest.mark.parametrize(("case", "error", "words"), [REFUSED[6], REFUSED[16]],
                         ids=["NaN", "missing file"])
def test_cli_exits_nonzero_with_the_message_and_no_traceback(case, error, words, tmp_path,
                                                              capsys):
    b, s, _ = _spoil(case, tmp_path)
    if not isinstance(b, str):
        b.to_file(tmp_path / "b.gpkg")
        b = str(tmp_path / "b.gpkg")
    s.to_file(tmp_path / "s.gpkg")
    rc = main(["delineate", "--buildings", b, "--streets", str(tmp_path / "s.gpkg"),
               "--target", "200", "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 1
    assert words[0] in err and "Traceback" not in err
    assert not (tmp_path / "out" / "plan.gpkg").exists()


def test_cli_strict_refuses_what_it_would_repair(tmp_path, capsys):
    b, s, _ = _spoil("invalid polygon", tmp_path)
    b.to_file(tmp_path / "b.gpkg")
    s.to_file(tmp_path / "s.gpkg")
    args = ["delineate", "--buildings", str(tmp_path / "b.gpkg"), "--streets",
            str(tmp_path / "s.gpkg"), "--target", "200", "--no-map", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b"), "--strict"]) == 1
    assert "invalid polygons" in capsys.readouterr().err
    assert not (tmp_path / "b" / "plan.gpkg").exists()


# ---------------------------------------------------------------------------
# islands: parts of a community that nothing connects to the rest
# ---------------------------------------------------------------------------

def _islanded_units():
    boxes = [shapely.box(x, y, x + 1, y + 1) for x in range(4) for y in range(4)]
    boxes.append(shapely.box(10, 10, 11, 11))  # cut off from the rest
    return gpd.GeoDataFrame({"pop": [10] * 16 + [5]}, geometry=boxes, crs=CRS)


def test_island_own_grid_by_default():
    with pytest.warns(GridmapWarning, match="1 island"):
        plan = gridmap.delineate(units=_islanded_units(), target=40, by="pop",
                                 tolerance=0.2)
    isl = plan.metrics["islands"]
    assert len(isl) == 1 and isl[0]["action"] == "own grid(s)" and isl[0]["weight"] == 5
    own = plan.grids.set_index("grid_id").loc[isl[0]["grid_ids"][0]]
    assert own["flag"] == "island" and own["pop"] == 5
    assert plan.metrics["contiguous"]
    assert plan.grids["pop"].sum() == 165


def test_island_joins_the_nearest_grid():
    with pytest.warns(GridmapWarning, match="joined the nearest grid"):
        plan = gridmap.delineate(units=_islanded_units(), target=40, by="pop",
                                 tolerance=0.2, islands="nearest")
    isl = plan.metrics["islands"]
    assert isl[0]["action"] == "joined the nearest grid"
    assert len(plan.grids) == 4 and sorted(plan.grids["pop"]) == [40, 40, 40, 45]
    # the joined grid is the one whose units are nearest the island (top right)
    joined = plan.grids.set_index("grid_id").loc[isl[0]["grid_ids"][0]]
    assert joined.geometry.bounds[2] == 11 and joined.geometry.bounds[3] == 11


def test_island_error_names_the_community_and_the_part():
    with pytest.raises(DisconnectedUnitsError) as exc:
        gridmap.delineate(units=_islanded_units(), target=40, by="pop", tolerance=0.2,
                          islands="error")
    msg = str(exc.value)
    assert "community 1 is in 2 parts" in msg and "weight 5" in msg
    assert "[[10.5, 10.5]]" in msg and "islands='own'" in msg


def test_cli_islands_option(tmp_path, capsys):
    _islanded_units().to_file(tmp_path / "u.gpkg")
    args = ["delineate", "--units", str(tmp_path / "u.gpkg"), "--by", "pop", "--target",
            "40", "--tolerance", "0.2", "--no-map", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "a"), "--islands", "error"]) == 1
    assert "islands='error'" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "b"), "--islands", "nearest"]) == 0
    import json

    m = json.loads((tmp_path / "b" / "metrics.json").read_text(encoding="utf-8"))
    assert m["islands"][0]["action"] == "joined the nearest grid"
