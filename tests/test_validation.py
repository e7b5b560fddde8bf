"""Bad input gets a clear answer: every row of the table in docs/guide.md is a case here.

Each case builds a small city, spoils one thing and checks the message (refused
inputs) or the warning and the plan's notes (repaired inputs).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from types import SimpleNamespace

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
from gridmap.layers import LayerSources, read_layers
from gridmap.options import Balance, Inputs, Options


def _city():
    return grid_city(2, 2)  # 4 buildings of 100 households, 4 blocks


def _communities(*boxes, ids=None):
    ids = ids or [f"C{k + 1}" for k in range(len(boxes))]
    return gpd.GeoDataFrame({"community_id": ids}, geometry=list(boxes), crs=CRS)


#: two communities that overlap by 40 m × 200 m, and two with a 40 m × 40 m gap
#: between them in the middle of the 2 × 2 city
OVERLAPPING = (shapely.box(0, 0, 120, 200), shapely.box(80, 0, 200, 200))
GAPPED = (shapely.box(0, 0, 100, 200).difference(shapely.box(80, 80, 100, 120)),
          shapely.box(100, 0, 200, 200).difference(shapely.box(100, 80, 120, 120)))


def _swap_xy(gdf):
    return gdf.set_geometry(shapely.transform(gdf.geometry.values, lambda c: c[:, ::-1]))


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
    elif case == "missing geometry":
        b.loc[1, "geometry"] = None
    elif case == "longitude and latitude swapped":
        # the city moved to Shanghai, in WGS84 longitude/latitude, read as y, x
        b = _swap_xy(b.set_geometry(b.translate(350_000, 3_450_000)).to_crs(4326))
    elif case == "coordinates far outside the CRS":
        b = b.set_geometry(b.translate(1e9, 0))
    elif case == "extent over 200 km":
        b.loc[3, "geometry"] = shapely.affinity.translate(b.geometry[3], 300_000)
    elif case == "overlapping community boundaries":
        kw["boundaries"] = _communities(*OVERLAPPING)
    elif case == "overlapping community boundaries, allow_overlaps":
        kw["boundaries"] = _communities(*OVERLAPPING)
        kw["allow_overlaps"] = True
    elif case == "gap between community boundaries":
        kw["boundaries"] = _communities(*GAPPED)
    elif case == "Shapefile in GBK without .cpg":
        b["名称"] = ["外滩小区", "豫园", "新天地", "老西门"]
        b.to_file(tmp_path / "city.shp", encoding="GBK", engine="pyogrio")
        (tmp_path / "city.cpg").unlink()
        b = str(tmp_path / "city.shp")
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
    ("longitude and latitude swapped", LayerValidationError,
     ["`buildings` has coordinates outside the range of its geographic CRS EPSG:4326",
      "in 4 rows (ids 'b0-0-0', 'b0-1-0', 'b1-0-0', 'b1-1-0'): e.g. (31.1",
      "longitude and latitude may be swapped", "Swap x and y"]),
    ("coordinates far outside the CRS", LayerValidationError,
     ["`buildings` has coordinates far outside the area of its CRS EPSG:32651",
      "e.g. (1000000079, 20), which is no place on Earth", "set_crs("]),
    ("extent over 200 km", LayerValidationError,
     ["`buildings` spans 300.2 km × 0.2 km, more than the 200 km",
      "1 row (ids 'b1-1-0') lies more than 100 km", "300.1 km away at (300150, 150)",
      "Drop or fix those rows"]),
    ("overlapping community boundaries", LayerValidationError,
     [("`boundaries` overlap: 1 pair of communities share land ('C1' and 'C2' share "
       "8,000 m² (33.3% of the smaller) around (100, 100))"), "allow_overlaps=True"]),
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
    ("missing geometry",
     [("`buildings` has no geometry (None or empty) in 1 row (ids 'b0-1-0'), holding 100 "
       "households; they were dropped and are not in the plan"), "strict=True"],
     LayerValidationError,
     ["`buildings` has no geometry (None or empty) in 1 row (ids 'b0-1-0')",
      "Give them their geometry or drop them"]),
    ("Shapefile in GBK without .cpg",
     ["has no .cpg and its text is not UTF-8; it was read as GB18030",
      "e.g. '名称', '外滩小区', '豫园'", "encoding= (--encoding)"],
     LayerValidationError,
     ["has no .cpg and its text is not UTF-8 (as GB18030 it reads '名称', '外滩小区'",
      "strict mode does not guess an encoding", "encoding='gb18030'"]),
]

#: buildings lost on purpose by a repaired case (and listed in the conservation)
LOST = {"missing geometry": ["b0-1-0"]}

#: said in a warning and the notes, in strict mode too (allowed, or nothing to repair)
WARNED = [
    ("overlapping community boundaries, allow_overlaps",
     ["`boundaries` overlap: 1 pair of communities share land ('C1' and 'C2'",
      "allowed (allow_overlaps=True): each overlap went to the community listed first"]),
    ("gap between community boundaries",
     [("`boundaries` leave 1 gap inside the area that no community covers (1,600 m² "
       "around (100, 100))"), "close the gap"]),
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
    lost = LOST.get(case, [])
    assert len(plan.buildings) == 4 - len(lost)  # nothing lost but what was said
    conservation = plan.metrics["conservation"]
    assert conservation["conserved"]
    assert conservation["buildings_in"] == conservation["buildings_out"] == 4 - len(lost)
    assert conservation["buildings_dropped"] == lost
    with pytest.raises(error) as exc:
        gridmap.delineate(b, s, strict=True, **kw)
    for w in refused:
        assert w in str(exc.value)


@pytest.mark.parametrize(("case", "warned"), WARNED, ids=[r[0] for r in WARNED])
@pytest.mark.parametrize("strict", [False, True])
def test_allowed_or_harmless_input_is_said_in_strict_too(case, warned, strict, tmp_path):
    b, s, kw = _spoil(case, tmp_path)
    with pytest.warns(GridmapWarning) as rec:
        plan = gridmap.delineate(b, s, strict=strict, **kw)
    said = " ".join(str(r.message) for r in rec)
    notes = " ".join(plan.metrics["notes"])
    for w in warned:
        assert w in said and w in notes
    assert len(plan.buildings) == 4 and plan.metrics["conservation"]["conserved"]


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
    for case, warned in WARNED:
        assert warned[0] in rows[case] and "warned" in rows[case], case
    assert len(rows) == len(REFUSED) + 2 * len(REPAIRED) + len(WARNED)


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
# rows with no geometry, coordinates, extent, community boundaries
# ---------------------------------------------------------------------------

def _validate(layers, *, strict=False):
    """Stage 1, read_layers(), on the layers (target 200 ±10 %), with the
    warnings it gives: the layers read by role, its notes and what it dropped."""
    options = Options(balance=Balance(target=200, tolerance=0.1),
                      inputs=Inputs(strict=strict))
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        got = read_layers(LayerSources(**layers), options)
    read = {role: getattr(got, "buildings_in" if role == "buildings" else role)
            for role in layers}
    return (SimpleNamespace(layers=read, notes=got.notes, dropped=got.dropped),
            [str(r.message) for r in rec if issubclass(r.category, GridmapWarning)])


@pytest.mark.parametrize("role", ["buildings", "streets", "boundaries", "population"])
@pytest.mark.parametrize("empty", [None, "empty"], ids=["None", "empty"])
def test_rows_with_no_geometry_are_dropped_in_any_layer(role, empty):
    b, s = _city()
    layers = {"buildings": b, "streets": s,
              "boundaries": _communities(shapely.box(0, 0, 100, 200),
                                         shapely.box(100, 0, 200, 200)),
              "population": gpd.GeoDataFrame(
                  {"households": [100] * 4}, crs=CRS,
                  geometry=shapely.point_on_surface(b.geometry.values))}
    gdf = layers[role].copy()
    col = gdf.geometry.name
    gdf[col] = gdf.geometry.values  # a plain copy of the column, to spoil
    gdf.loc[1, col] = shapely.Polygon() if empty else None
    layers[role] = gdf
    got, said = _validate(layers)
    assert len(got.layers[role]) == len(gdf) - 1
    assert 1 not in got.layers[role].index
    label = {"buildings": "'b0-1-0'", "boundaries": "'C2'"}.get(role, "1")
    kind = "ids" if role in ("buildings", "boundaries") else "rows"
    text = f"`{role}` has no geometry (None or empty) in 1 row ({kind} {label})"
    assert any(text in w and "not in the plan" in w for w in said), said
    assert got.notes == said
    assert got.dropped == {role: ["b0-1-0" if role == "buildings" else
                                  "C2" if role == "boundaries" else 1]}
    with pytest.raises(LayerValidationError, match="leave strict mode"):
        _validate(layers, strict=True)


def test_a_dropped_building_keeps_the_plan_whole_and_its_index():
    b, s = _city()
    b.index = [10, 11, 12, 13]
    b.loc[12, "geometry"] = None
    with pytest.warns(GridmapWarning, match="not in the plan"):
        plan = gridmap.delineate(b, s, target=200, tolerance=0.1)
    assert plan.buildings.index.tolist() == [10, 11, 13]
    assert plan.buildings["grid_id"].notna().all()
    c = plan.metrics["conservation"]
    assert c["conserved"] and c["buildings_dropped"] == ["b1-0-0"]
    assert c["totals"]["households"]["input"] == plan.grids["households"].sum() == 300


def test_swapped_coordinates_in_cgcs2000_and_metres_labelled_as_degrees():
    b, _ = _city()
    shanghai = b.set_geometry(b.translate(350_000, 3_450_000))
    with pytest.raises(LayerValidationError) as exc:
        gridmap.delineate(_swap_xy(shanghai.to_crs(4490)), target=200)
    assert "geographic CRS EPSG:4490" in str(exc.value)
    assert "longitude and latitude may be swapped" in str(exc.value)
    with pytest.raises(LayerValidationError) as exc:
        gridmap.delineate(shanghai.set_crs(4326, allow_override=True), target=200)
    assert "e.g. (350079, 3450020)" in str(exc.value)
    assert "look like metres of a projected CRS" in str(exc.value)
    # in range, well placed: nothing said
    _, said = _validate({"buildings": shanghai.to_crs(4490)})
    assert said == []


def test_coordinates_of_another_zone_are_refused_in_every_layer():
    b, s = _city()
    # Gauss-Krüger coordinates with the zone number (40) in front of the easting,
    # labelled as the zone without it
    gk = b.set_geometry(b.translate(40_350_000, 3_450_000)).set_crs(4549,
                                                                    allow_override=True)
    with pytest.raises(LayerValidationError) as exc:
        gridmap.delineate(gk, s.set_geometry(s.translate(1e9, 0)), target=200)
    problems = exc.value.problems
    assert any("`buildings` has coordinates far outside the area of its CRS EPSG:4549"
               in p and "EPSG:4513-4533" in p for p in problems)
    assert any(p.startswith("`streets` has coordinates far outside") for p in problems)
    assert not any("do not reach" in p for p in problems)  # not said on top


def test_extent_is_measured_in_metres_in_a_geographic_crs_too():
    b, _ = _city()
    b.loc[3, "geometry"] = shapely.affinity.translate(b.geometry[3], 300_000)
    with pytest.raises(LayerValidationError) as exc:
        gridmap.delineate(b.to_crs(4326), target=200)
    msg = str(exc.value)
    assert "`buildings` spans 299.8 km" in msg and "1 row (ids 'b1-1-0') lies" in msg
    # units too; 150 km is fine
    units = b.drop(columns="id")
    with pytest.raises(LayerValidationError, match="`units` spans 300.2 km"):
        gridmap.delineate(units=units, target=200)
    units.loc[3, "geometry"] = shapely.affinity.translate(b.geometry[3], -150_000)
    _validate({"units": units})


def test_the_extent_limit_is_200_km():
    b, _ = _city()
    far = b.copy()
    far.loc[3, "geometry"] = shapely.affinity.translate(b.geometry[3], 199_000)
    _validate({"buildings": far})  # 199.2 km across: taken
    far.loc[3, "geometry"] = shapely.affinity.translate(b.geometry[3], 200_500)
    with pytest.raises(LayerValidationError,
                       match=r"`buildings` spans 200.7 km × 0.2 km, more than the 200 km"):
        _validate({"buildings": far})


def test_overlaps_go_to_the_community_listed_first_when_allowed():
    b, s = _city()
    for first in ("C1", "C2"):
        bnd = _communities(*OVERLAPPING)
        if first == "C2":
            bnd = bnd.iloc[::-1]
        with pytest.warns(GridmapWarning, match="allow_overlaps=True"):
            plan = gridmap.delineate(b, s, boundaries=bnd, allow_overlaps=True,
                                     target=200, tolerance=0.1)
        grids = plan.grids.set_index("grid_id")
        at = grids[grids.geometry.contains(shapely.Point(100, 50))]
        assert at["community_id"].tolist() == [first]
    with pytest.raises(LayerValidationError, match="allow_overlaps must be True or False"):
        gridmap.delineate(b, s, boundaries=bnd, allow_overlaps="yes", target=200)


def test_overlap_slivers_are_ignored_and_many_pairs_counted():
    b, _ = _city()
    # 0.5 m² of overlap: under OVERLAP_MIN_AREA
    sliver = _communities(shapely.box(0, 0, 100.0025, 200), shapely.box(100, 0, 200, 200))
    _, said = _validate({"buildings": b, "boundaries": sliver})
    assert said == []
    # 5,000 m² over communities of 51 km²: under OVERLAP_MIN_SHARE (0.01 %)
    big = _communities(shapely.box(-5000, -5000, 100.5, 5000),
                       shapely.box(100, -5000, 5200, 5000))
    _, said = _validate({"buildings": b, "boundaries": big})
    assert not any("overlap" in w for w in said)
    # four communities all over each other: 6 pairs, the 3 largest shown
    pile = _communities(*(shapely.box(k * 10, 0, 200, 200) for k in range(4)))
    with pytest.raises(LayerValidationError) as exc:
        _validate({"buildings": b, "boundaries": pile})
    msg = str(exc.value)
    assert "6 pairs of communities share land" in msg and "(6 pairs in all)" in msg
    assert msg.count(" share ") == 4


def test_a_gap_with_buildings_names_them():
    b, _ = _city()
    holed = _communities(shapely.box(0, 0, 100, 200).difference(
        shapely.box(15, 15, 85, 85)), shapely.box(100, 0, 200, 200))
    _, said = _validate({"buildings": b, "boundaries": holed})
    gap = next(w for w in said if "gap" in w)
    assert "1 gap inside the area that no community covers (4,900 m² around (50, 50) " \
           "with 1 building in it)" in gap
    assert "The buildings in them (1 row (ids 'b0-0-0')) go to the nearest" in gap
    assert any("outside every community boundary" in w for w in said)
    # a small gap with nothing in it, and a bay open to the outside, are not said
    small = _communities(shapely.box(0, 0, 100, 200).difference(
        shapely.box(90, 90, 100, 100)), shapely.box(100, 0, 200, 200))
    bay = _communities(shapely.box(0, 0, 100, 200), shapely.box(100, 0, 200, 200)
                       .difference(shapely.box(150, 90, 200, 110)))
    for bnd in (small, bay):
        _, said = _validate({"buildings": b, "boundaries": bnd})
        assert not any("gap" in w for w in said), said


def test_the_new_checks_report_with_the_rest_at_once(tmp_path):
    b, s = _city()
    b.loc[0, "households"] = -1
    b.loc[1, "geometry"] = None
    with pytest.raises(LayerValidationError) as exc:
        gridmap.delineate(b, s, boundaries=_communities(*OVERLAPPING), strict=True,
                          encoding="no-such-codec", target=200)
    problems = exc.value.problems
    for w in ("no geometry (None or empty)", "negative counts", "`boundaries` overlap",
              "encoding='no-such-codec' is not a text encoding"):
        assert sum(w in p for p in problems) == 1, w


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
