"""Delineation features: communities, compounds, barriers, population forms, real data."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import shapely
from conftest import CRS, SHARED, grid_city
from shapely import LineString

import gridmap


def test_grids_never_cross_community_boundaries():
    b, s = grid_city(4, 4, per_block=2, households=50)
    west = shapely.box(0, 0, 200, 400)
    east = shapely.box(200, 0, 400, 400)
    comm = gpd.GeoDataFrame(
        {"community_id": ["W", "E"], "subdistrict_id": ["S1", "S1"]},
        geometry=[west, east], crs=CRS,
    )
    plan = gridmap.delineate(b, s, boundaries=comm, target=200, tolerance=0.1)
    g = plan.grids.to_crs(CRS)
    assert set(g["community_id"]) == {"W", "E"}
    for _, row in g.iterrows():
        home = west if row["community_id"] == "W" else east
        assert shapely.area(shapely.difference(row.geometry, home)) < 1e-3
    # codes: sub-district 001, communities 001 and 002 in the order of the layer
    assert {c[6:12] for c in g["code"]} == {"001001", "001002"}
    assert plan.metrics["area_source"] == "boundaries"
    assert len(g) == 8 and (g["households"] == 200).all()


def test_compound_is_kept_whole():
    # a lane through the middle of block (0,0)-(100,100) would cut it in two;
    # the compound covering it keeps it one unit
    b, s = grid_city(2, 2, per_block=2, households=75)
    lane = gpd.GeoDataFrame({"highway": ["service"]},
                            geometry=[LineString([(50, 0), (50, 100)])], crs=CRS)
    s2 = gpd.GeoDataFrame(
        {"highway": list(s["highway"]) + ["service"]},
        geometry=list(s.geometry) + list(lane.geometry), crs=CRS,
    )
    compound = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 100, 100)], crs=CRS)
    with_c = gridmap.delineate(b, s2, compounds=compound, target=300, tolerance=0.1)
    units = with_c.units.to_crs(CRS)
    in_compound = units[units.representative_point().within(shapely.box(0, 0, 100, 100))]
    assert len(in_compound) == 1
    inside = b.geometry.representative_point().within(shapely.box(0, 0, 100, 100))
    assert with_c.buildings.loc[inside, "grid_id"].nunique() == 1
    without = gridmap.delineate(b, s2, target=300, tolerance=0.1)
    units = without.units.to_crs(CRS)
    assert (units.representative_point().within(shapely.box(0, 0, 100, 100))).sum() == 2


def test_grids_do_not_straddle_a_railway_when_balance_allows():
    b, s = grid_city(4, 2, households=100)
    rail = gpd.GeoDataFrame({"highway": ["rail"]},
                            geometry=[LineString([(200, -10), (200, 210)])], crs=CRS)
    s2 = gpd.GeoDataFrame({"highway": list(s["highway"]) + ["rail"]},
                          geometry=list(s.geometry) + list(rail.geometry), crs=CRS)
    plan = gridmap.delineate(b, s2, target=400, tolerance=0.1)
    g = plan.grids.to_crs(CRS)
    assert len(g) == 2
    for geom in g.geometry:
        xs = shapely.get_coordinates(geom)[:, 0]
        assert xs.max() <= 200 + 1e-6 or xs.min() >= 200 - 1e-6


def test_population_points_are_joined_to_buildings(city4):
    b, s = city4
    b = b.drop(columns="households")
    pts = gpd.GeoDataFrame(
        geometry=[g.representative_point() for g in b.geometry for _ in range(100)], crs=CRS
    )
    plan = gridmap.delineate(b, s, pts, target=400, tolerance=0.1)
    assert plan.grids["households"].tolist() == [400.0] * 4
    assert plan.metrics["population"]["method"] == "points"


def test_population_areas_are_spread_and_conserved(city4):
    b, s = city4
    b = b.drop(columns="households")
    areas = gpd.GeoDataFrame(
        {"households": [777, 823]},
        geometry=[shapely.box(0, 0, 200, 400), shapely.box(200, 0, 400, 400)], crs=CRS,
    )
    plan = gridmap.delineate(b, s, areas, target=400, tolerance=0.1)
    assert plan.buildings["households"].sum() == 1600
    assert plan.grids["households"].sum() == 1600
    assert plan.metrics["population"]["method"] == "areas"


def test_estimate_is_marked_everywhere(city4):
    b, s = city4
    b = b.drop(columns="households")
    plan = gridmap.delineate(b, s, target=20, tolerance=0.1, dwelling_size=50)
    assert plan.buildings["estimated"].all()
    assert plan.grids["estimated"].all()
    assert plan.metrics["population"]["method"] == "estimate"


def test_geoparquet_and_shapefile_inputs(tmp_path, city4):
    pytest.importorskip("pyarrow")
    b, s = city4
    b.to_parquet(tmp_path / "b.parquet")
    s.to_file(tmp_path / "s.shp")
    plan = gridmap.delineate(str(tmp_path / "b.parquet"), str(tmp_path / "s.shp"), target=400)
    assert len(plan.grids) == 4


def test_plan_to_file_round_trip(tmp_path, city4):
    b, s = city4
    plan = gridmap.delineate(b, s, target=400)
    out = plan.to_file(tmp_path / "plan")
    grids = gpd.read_file(out / "plan.gpkg", layer="grids")
    assert grids["grid_id"].tolist() == plan.grids["grid_id"].tolist()
    m = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert m["params"]["target"] == 400
    # nothing half-written is left behind
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "plan.gpkg"]


@pytest.mark.slow
# Monaco's extract has a self-intersecting footprint, repaired and said (expected)
@pytest.mark.filterwarnings("ignore:`buildings` had invalid polygons:gridmap.GridmapWarning")
@pytest.mark.parametrize("name", ["monaco-osm/monaco-latest.osm.pbf"])
def test_real_osm_extract(name):
    path = SHARED / name
    if not path.exists():
        pytest.skip(f"{path} not available")
    plan = gridmap.delineate(str(path), str(path), target=300, tolerance=0.1)
    m = plan.metrics
    assert m["n_buildings_unassigned"] == 0
    assert m["n_buildings_assigned"] == len(plan.buildings)
    assert m["gap_share"] < 0.001 and m["overlap_share"] < 0.001
    assert m["contiguous"]
    assert m["n_out_of_tolerance"] == 0
    assert m["street_share"] >= 0.9


@pytest.mark.slow
def test_bundled_real_data_invariants(bundled_plan):
    plan = bundled_plan
    m = plan.metrics
    assert len(plan.buildings) == 1321 and plan.buildings["grid_id"].notna().all()
    # buildings drawn across a street are whole in their grid (three on the Bund)
    assert m["n_buildings_outside_grid"] == 0
    assert m["gap_share"] < 0.001 and m["overlap_share"] < 0.001
    assert m["contiguous"]
    assert m["street_share"] >= 0.9
    # neighbours share their edges exactly, as written: no hairline crack between
    # grids (there were 176 before the grids were sealed) and no sliver of overlap
    g = plan.grids.to_crs(plan.grids.estimate_utm_crs())
    union = shapely.union_all(g.geometry.values)
    assert not [r for p in shapely.get_parts(union) for r in p.interiors]
    assert float(g.area.sum() - union.area) < 1e-3
    # every grid out of tolerance is reported with a reason
    bad = plan.grids[~plan.grids["within_tolerance"]]
    assert (bad["reason"] != "").all()
    assert len(m["violations"]) == len(bad)
    # at the default effort (the README's command) at most two grids of the Bund
    # stay out of the band (the thorough effort brings all in: benchmarks and the
    # guide); every oversize grid is a single building; the plan says what the
    # balancing did and why it stopped
    assert len(bad) <= 2
    ordinary = plan.grids[plan.grids["flag"].fillna("") == ""]
    assert (ordinary["deviation"].abs() > 0.1 + 1e-9).sum() == len(bad)
    over = plan.grids[plan.grids["flag"] == "oversize"]
    assert over["single_unit"].all()
    search = m["search"]
    # the default rate, 200 units of work a grid
    assert search["effort"] == "default" and search["work_budget"] == 200 * len(plan.grids)
    assert search["work_used"] <= search["work_budget"] * 1.2
    assert search["objective"]["grids_out"] == len(bad)
    assert any(n.startswith("balancing (default effort") for n in m["notes"])


@pytest.mark.slow
def test_providence_blocks_as_units():
    path = SHARED / "providence-blocks" / "blocks.zip"
    if not path.exists():
        pytest.skip("providence-blocks not available")
    blocks = gpd.read_file(f"zip://{path}")
    plan = gridmap.delineate(units=blocks, by="TOTPOP", target=blocks["TOTPOP"].sum() / 15,
                             tolerance=0.05, id_column="GEOID10")
    g = plan.grids
    assert len(g) == 15
    dev = np.abs(g["TOTPOP"] / g["TOTPOP"].mean() - 1)
    assert dev.max() <= 0.05
    assert plan.metrics["contiguous"]
    # the real ward plan: max deviation 4.9 %, mean Polsby-Popper 0.41
    assert plan.metrics["polsby_popper_mean"] > 0.41
    assert plan.units["GEOID10"].tolist() == blocks["GEOID10"].tolist()


def test_communities_are_numbered_within_their_subdistrict():
    b, s = grid_city(4, 4, per_block=2, households=50)
    comm = gpd.GeoDataFrame(
        {"community_id": ["W", "E"], "subdistrict_id": ["S1", "S2"]},
        geometry=[shapely.box(0, 0, 200, 400), shapely.box(200, 0, 400, 400)], crs=CRS,
    )
    plan = gridmap.delineate(b, s, boundaries=comm, target=200, division_code="310101")
    codes = plan.grids.set_index("community_id")["code"]
    assert {c[:12] for c in codes["W"]} == {"310101001001"}
    assert {c[:12] for c in codes["E"]} == {"310101002001"}


def test_a_community_with_more_grids_than_a_code_can_number_is_refused_early():
    # 1,120 buildings of 10 households at a target of 10: about 1,120 grids in the
    # one community there is, but grid codes number at most 999 per community
    b, s = grid_city(4, 4, per_block=70, households=10)
    with pytest.raises(gridmap.InfeasiblePartitionError,
                       match=r"community 1 would have about 1,120 grids .*at most 999"):
        gridmap.delineate(b, s, target=10)


def _two_communities(**columns):
    return gpd.GeoDataFrame(
        {"community_id": ["W", "E"], **columns},
        geometry=[shapely.box(0, 0, 200, 400), shapely.box(200, 0, 400, 400)], crs=CRS)


def test_official_community_codes_start_every_grid_code():
    b, s = grid_city(4, 4, per_block=2, households=50)
    # read from a spreadsheet the codes are often numbers: both are taken
    comm = _two_communities(code=[110101007015, "110101008002"],
                            subdistrict_id=["110101007", "110101008"])
    plan = gridmap.delineate(b, s, boundaries=comm, target=200)
    codes = plan.grids.set_index("community_id")["code"]
    assert sorted(codes["W"]) == [f"110101007015{q:03d}" for q in range(1, 5)]
    assert sorted(codes["E"]) == [f"110101008002{q:03d}" for q in range(1, 5)]
    assert plan.params["codes"] == "official"
    assert not any("provisional" in n for n in plan.metrics["notes"])
    # numbered west→east, north→south within the community, as before
    w = plan.grids[plan.grids["community_id"] == "W"].sort_values("code")
    first = w.geometry.iloc[0].centroid
    assert first.y >= max(g.centroid.y for g in w.geometry) - 100
    # another column named; the division code agrees
    named = gridmap.delineate(b, s, boundaries=comm.rename(columns={"code": "DM"}),
                              target=200, code_column="DM", division_code="110101")
    assert sorted(named.grids["code"]) == sorted(plan.grids["code"])


def test_without_official_codes_the_codes_are_provisional():
    b, s = grid_city(4, 4, per_block=2, households=50)
    plan = gridmap.delineate(b, s, boundaries=_two_communities(), target=200)
    assert plan.params["codes"] == "provisional"
    assert any("codes are provisional" in n for n in plan.metrics["notes"])
    assert {c[:12] for c in plan.grids["code"]} == {"000000000001", "000000000002"}


@pytest.mark.parametrize(("columns", "kw", "match"), [
    ({"code": ["11010100701", "110101008002"]}, {}, r"must be 12 digits.*'11010100701'.*'W'"),
    ({"code": ["110101007015", None]}, {}, r"missing for 1 community \(E\)"),
    ({"code": ["110101007015", "110101007015"]}, {}, r"'W' and 'E' have the same"),
    ({"code": ["110101007015", "110101008002"], "subdistrict_code": ["110101007", "110101007"]},
     {}, r"'E', '110101008002', does not start with its sub-district's code '110101007'"),
    ({"code": ["110101007015", "110101008002"]}, {"division_code": "310101"},
     r"do not start with the division code '310101'"),
    ({}, {"code_column": "DM"}, r"no column 'DM' of official community codes"),
])
def test_bad_official_codes_are_refused_by_name(columns, kw, match):
    b, s = grid_city(4, 4, per_block=2, households=50)
    with pytest.raises(gridmap.LayerValidationError, match=match):
        gridmap.delineate(b, s, boundaries=_two_communities(**columns), target=200, **kw)


def test_a_re_partition_keeps_official_codes_for_new_grids():
    b, s = grid_city(4, 4, per_block=2, households=50)
    comm = _two_communities(code=["110101007015", "110101008002"])
    plan = gridmap.delineate(b, s, boundaries=comm, target=200)
    grown = plan.buildings.drop(columns=["grid_id", "unit_id", "pop_actual", "estimated"],
                                errors="ignore")
    east = grown.geometry.centroid.x > 200
    grown.loc[east, "households"] = 100  # the east community doubles
    new = gridmap.repartition(plan, grown)
    codes = new.grids.set_index("community_id")["code"]
    assert len(codes["E"]) > 4
    assert all(c.startswith("110101008002") for c in codes["E"])
    assert all(c.startswith("110101007015") for c in codes["W"])


def test_grids_by_area_weigh_the_units_own_area():
    # city-management grids (城市管理网格) are sized by area: 16 blocks of 100 m ×
    # 100 m at 20,000 m² a grid make 8 grids of two blocks each
    b, s = grid_city(4, 4, per_block=2, households=50)
    plan = gridmap.delineate(b, s, by="area", target=20_000, tolerance=0.1)
    assert len(plan.grids) == 8
    assert plan.grids["area"].tolist() == pytest.approx([20_000.0] * 8)
    assert plan.metrics["max_abs_deviation"] == pytest.approx(0.0, abs=1e-9)
    # the population is still counted, and conserved
    assert plan.grids["households"].sum() == b["households"].sum()
    assert "target 20000 m²" in repr(plan)
    # a block with no building weighs its area too: one block emptied
    empty = b[~b["id"].str.startswith("b3-3")]
    again = gridmap.delineate(empty, s, by="area", target=20_000, tolerance=0.1)
    assert again.grids["area"].sum() == pytest.approx(float(again.area.area.sum()))
    assert again.grids["within_tolerance"].all()
    with pytest.raises(gridmap.InfeasiblePartitionError, match="above the area's 160,000 m²"):
        gridmap.delineate(b, s, by="area", target=200_000)


def test_by_area_the_land_of_a_large_block_is_cut_on_a_lattice():
    # 9 blocks with one small building in a corner each (the area the streets
    # round them enclose: 72,359 m²), at 6,000 m² ±10 %: whole blocks or one cell
    # per building cannot make grids of 5,400-6,600 m²; their land cut on a
    # lattice can, every grid within the band
    b, s = grid_city(3, 3, per_block=1, households=20)
    b["geometry"] = [shapely.box(x0 + 5, y0 + 5, x0 + 20, y0 + 20) for x0, y0 in
                     zip(b.geometry.bounds["minx"].round(-2), b.geometry.bounds["miny"]
                         .round(-2), strict=True)]
    plan = gridmap.delineate(b, s, by="area", target=6_000, tolerance=0.1, seed=0)
    g = plan.grids
    assert g["area"].sum() == pytest.approx(float(plan.area.area.sum()))
    assert len(g) == 12 and (g["flag"] == "").all()
    assert g["within_tolerance"].all()
    assert ((g["area"] >= 5_400) & (g["area"] <= 6_600)).all()
    # every building in one grid, whole, in the unit of its block's land round it
    assert plan.buildings["grid_id"].notna().all()
    assert plan.metrics["contiguous"] and plan.metrics["gap_share"] < 1e-6
    # the lattice cells hold no building: more units than buildings
    assert len(plan.units) > 3 * len(b)


def test_lattice_points_leave_the_buildings_and_the_edge_alone():
    from gridmap.units import lattice_points

    block = shapely.box(0, 0, 100, 100)
    house = np.array([shapely.box(0, 0, 30, 30)])
    pts = lattice_points(block, house, 25.0)
    xy = shapely.get_coordinates(pts)
    # 25, 50, 75 each way, less the one within 6.25 m of the house (in it)
    assert sorted(map(tuple, xy.tolist())) == [
        (25.0, 50.0), (25.0, 75.0), (50.0, 25.0), (50.0, 50.0), (50.0, 75.0), (75.0, 25.0),
        (75.0, 50.0), (75.0, 75.0)]
    assert (shapely.distance(pts, house[0]) >= 6.25).all()
    # fixed to the coordinates: the same points for the block moved by one lattice step
    moved = lattice_points(shapely.box(25, 0, 125, 100), np.array([]), 25.0)
    assert len(moved) == 9 and shapely.get_coordinates(moved)[:, 0].min() == 50.0
    # a square kilometre at 2.5 m would be 160,000 cells: at most 2,000
    from gridmap.units import MAX_LATTICE_CELLS

    huge = lattice_points(shapely.box(0, 0, 1000, 1000), np.array([]), 2.5)
    assert 1_500 < len(huge) <= MAX_LATTICE_CELLS


TSINGHUA = SHARED / "beijing-tsinghua-osm"


@pytest.mark.slow
@pytest.mark.skipif(not TSINGHUA.exists(), reason="needs ../shared/data")
def test_tsinghua_by_area_gives_grids_of_nine_to_eleven_thousand_square_metres():
    b = gpd.read_file(TSINGHUA / "tsinghua_buildings.geojson")
    r = gpd.read_file(TSINGHUA / "tsinghua_roads.geojson")
    r = r[r.geom_type.isin(["LineString", "MultiLineString"])]
    b = b.assign(uid=b["element"].astype(str) + "/" + b["id"].astype(str))
    plan = gridmap.delineate(b, r, street_column="highway", id_column="uid", by="area",
                             target=10_000, tolerance=0.1, seed=0)
    g = plan.grids
    alone = g["flag"] == "oversize"
    # a grid larger is a single unit larger than a grid (a building and its plot)
    assert (g.loc[alone, "single_unit"]).all() and (g.loc[alone, "area"] > 11_000).all()
    ordinary = g[~alone & (g["kind"] == "community")]
    assert ordinary["within_tolerance"].all()
    # the band is round the community's mean (here 10,009 m²), so a grid may be a
    # few m² over 11,000 and still in it
    assert ordinary["area"].between(9_000 - 50, 11_000 + 50).all()
    assert (ordinary["area"].between(9_000, 11_000)).mean() > 0.99
    assert plan.metrics["contiguous"] and plan.metrics["gap_share"] < 0.001
    assert plan.buildings["grid_id"].notna().all() and len(plan.buildings) == len(b)


def test_units_given_directly_by_area():
    cells = gpd.GeoDataFrame(
        {"id": [f"u{i}" for i in range(12)], "households": 10},
        geometry=[shapely.box(x * 50, y * 50, x * 50 + 50, y * 50 + 50)
                  for x in range(4) for y in range(3)], crs=CRS)
    plan = gridmap.delineate(units=cells, by="area", target=7_500, tolerance=0.05)
    assert len(plan.grids) == 4
    assert plan.grids["area"].tolist() == pytest.approx([7_500.0] * 4)


def test_a_compound_heavier_than_a_grid_is_divided_into_grids_of_the_band():
    # a 300 m × 200 m compound (小区) of 12 buildings, 705 households, in a city of
    # 50-household buildings at 300 ±10%: 2.35 grids' worth.  Kept whole it was
    # one oversize grid; divided, its buildings lie in 3 grids (235 a piece, too
    # light alone, so each takes buildings from outside), every grid in the band
    b, s = grid_city(6, 4, per_block=2, households=50)
    inside = b.geometry.representative_point().within(shapely.box(0, 0, 300, 200))
    hh = np.full(inside.sum(), 705 / inside.sum())
    hh = np.floor(hh)
    hh[: 705 - int(hh.sum())] += 1
    b.loc[inside, "households"] = hh
    compound = gpd.GeoDataFrame({"compound_id": ["阳光小区"]},
                                geometry=[shapely.box(0, 0, 300, 200)], crs=CRS)
    plan = gridmap.delineate(b, s, compounds=compound, target=300, tolerance=0.1, seed=0)
    grids = plan.grids.set_index("grid_id")
    holding = plan.buildings.loc[inside.to_numpy(), "grid_id"].unique()
    assert 2 <= len(holding) <= 3
    assert (grids.loc[holding, "compound_part"] == "阳光小区").all()
    assert grids["within_tolerance"].all() and (grids["flag"] == "").all()
    assert plan.metrics["n_out_of_tolerance"] == 0
    assert any("divided between its buildings into 3 pieces" in n
               for n in plan.metrics["notes"])
    # each piece is whole in its grid: the compound's buildings of one grid touch
    for gid in holding:
        part = shapely.union_all(plan.buildings.loc[
            inside.to_numpy() & (plan.buildings["grid_id"] == gid).to_numpy()]
            .geometry.buffer(60).to_numpy())
        assert part.geom_type == "Polygon"
    # a compound that fits a grid stays whole, as before
    small = b.copy()
    small.loc[inside, "households"] = 20  # 240 households: a grid holds it
    kept = gridmap.delineate(small, s, compounds=compound, target=300, tolerance=0.1)
    assert kept.buildings.loc[inside.to_numpy(), "grid_id"].nunique() == 1
    assert "compound_part" not in kept.grids.columns
