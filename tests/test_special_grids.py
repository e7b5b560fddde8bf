"""Road-type (道路型) and unit-type (单位型) grids carved out of the community grids."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from conftest import SHARED, grid_city, run_stages

import gridmap
from gridmap.cli import main


def city_with_main_road():
    # 4 × 4 blocks of 100 m; the street at x = 100 is a primary road
    b, s = grid_city(4, 4, households=100)
    s["highway"] = np.where(
        [ls.coords[0][0] == 100 and ls.coords[-1][0] == 100 for ls in s.geometry],
        "primary", "residential")
    s["name"] = np.where(s["highway"] == "primary", "Main Road", None)
    school = gpd.GeoDataFrame({"amenity": ["school"], "name": ["No. 1 School"]},
                              geometry=[shapely.box(0, 0, 100, 100)], crs=b.crs)
    return b, s, school


def test_road_and_unit_grids_tile_the_area_with_the_community_grids():
    b, s, school = city_with_main_road()
    # the road cuts the community in two: 300 households west (the school's block
    # is its own grid) and 1,200 east: 1 grid and 4 grids of 300
    plan = gridmap.delineate(b, s, target=300, tolerance=0.1, sites=school,
                             road_grids=True, road_depth=10, road_max_length=250)
    g = plan.grids.to_crs(32651)
    kinds = g["kind"].value_counts().to_dict()
    # the corridor x 90-110, cut by the cross streets every 100 m into 4 pieces,
    # joined two by two (200 m ≤ 250 m): 2 road grids; the school: 1 unit grid,
    # which keeps its whole site (the corridor gives way to it)
    assert kinds["road"] == 2 and kinds["unit"] == 1
    roads = g[g["kind"] == "road"]
    assert sorted(roads.area.round(3)) == [3000.0, 4000.0]  # 20 m × 200 m, less 10 × 100
    assert set(roads["label"]) == {"Main Road"}
    unit = g[g["kind"] == "unit"].iloc[0]
    assert unit["label"] == "school No. 1 School" and unit["n_buildings"] == 1
    assert unit.geometry.symmetric_difference(shapely.box(0, 0, 100, 100)).area < 1e-3
    # all grids together: no gap, no overlap, each one piece
    union = shapely.union_all(g.geometry.values)
    assert abs(union.area - 400 * 400) < 1e-3
    assert abs(g.area.sum() - union.area) < 1e-3
    assert (shapely.get_num_geometries(g.geometry.values) == 1).all()
    # every building in exactly one grid; the community grids balanced without the
    # road and unit grids
    assert plan.buildings["grid_id"].notna().all() and len(plan.buildings) == len(b)
    comm = g[g["kind"] == "community"]
    assert comm["households"].sum() == 1500  # 16 blocks minus the school's
    assert sorted(comm["households"]) == [300.0] * 5 and comm["within_tolerance"].all()
    assert {"workload", "workers"} <= set(g.columns)
    # the map tells road and unit grids apart
    from gridmap.render import KIND_COLOURS

    html = plan.coverage_map().get_root().render()
    assert KIND_COLOURS["road"] in html and KIND_COLOURS["unit"] in html
    assert "road grid" in html and "unit grid" in html


def test_no_site_big_enough_makes_no_unit_grid_and_says_so():
    b, s, school = city_with_main_road()
    plan = gridmap.delineate(b, s, target=400, sites=school, unit_min_area=20_000)
    assert (plan.grids["kind"] == "community").all()
    assert any("no unit grids" in n for n in plan.metrics["notes"])


def test_road_grids_from_the_command_line(tmp_path):
    b, s, school = city_with_main_road()
    for name, layer in (("b", b), ("s", s), ("u", school)):
        layer.to_file(tmp_path / f"{name}.gpkg")
    out = tmp_path / "o"
    assert main(["delineate", "--buildings", str(tmp_path / "b.gpkg"), "--streets",
                 str(tmp_path / "s.gpkg"), "--sites", str(tmp_path / "u.gpkg"),
                 "--road-grids", "--road-depth", "10", "--road-max-length", "250",
                 "--target", "300", "--out", str(out), "--no-map", "--quiet"]) == 0
    g = gpd.read_file(out / "plan.gpkg", layer="grids")
    assert (g["kind"] == "road").sum() == 2 and (g["kind"] == "unit").sum() == 1


BUND = SHARED / "shanghai-bund-osm" / "shanghai_bund_osm.gpkg"


@pytest.mark.slow
@pytest.mark.skipif(not BUND.exists(), reason="needs ../shared/data")
def test_bund_road_grids_unit_grids_and_community_grids():
    plan = gridmap.delineate(f"{BUND}#buildings", f"{BUND}#streets", target=300,
                             sites=f"{BUND}#landuse", road_grids=True)
    m = plan.metrics
    g = plan.grids
    assert m["n_grids_by_kind"]["road"] > 20 and m["n_grids_by_kind"]["unit"] == 2
    assert set(g.loc[g["kind"] == "unit", "label"]) == {"hospital", "school"}
    assert m["gap_share"] < 1e-3 and m["overlap_share"] < 1e-3 and m["contiguous"]
    assert m["n_buildings_assigned"] == m["n_buildings"] == 1450
    # road grids follow the primary and secondary roads
    roads = g[g["kind"] == "road"].to_crs(32651)
    st = gpd.read_file(BUND, layer="streets").to_crs(32651)
    main_roads = shapely.union_all(
        st[st["kind_detail"].isin(["primary", "secondary", "primary_link",
                                   "secondary_link"])].geometry.values)
    assert (roads.geometry.intersects(main_roads)).mean() > 0.9


def test_communities_first_then_grids_nested_and_coded(tmp_path):
    # 36 blocks of 100 households, no boundaries: communities of 1,200 first
    b, s = grid_city(6, 6, households=100)
    plan = gridmap.delineate(b, s, target=300, community_target=1200)
    g = plan.grids
    per = g.groupby("community_id").agg(n=("grid_id", "size"), hh=("households", "sum"))
    assert per["hh"].tolist() == [1200.0] * 3 and per["n"].tolist() == [4] * 3
    # codes: community number in digits 10-12, grid sequence within it in 13-15
    for cid, grp in g.groupby("community_id"):
        assert {c[9:12] for c in grp["code"]} == {f"{int(cid[1:]):03d}"}
        assert sorted(c[12:] for c in grp["code"]) == ["001", "002", "003", "004"]
    # each community is one piece and its grids tile it
    gm = g.to_crs(32651)
    for _, grp in gm.groupby("community_id"):
        assert shapely.get_num_geometries(shapely.union_all(grp.geometry.values)) == 1
    assert g["within_tolerance"].all()
    out = tmp_path / "o"
    b.to_file(tmp_path / "b.gpkg")
    s.to_file(tmp_path / "s.gpkg")
    assert main(["delineate", "--buildings", str(tmp_path / "b.gpkg"), "--streets",
                 str(tmp_path / "s.gpkg"), "--target", "300", "--community-target", "1200",
                 "--out", str(out), "--no-map", "--quiet"]) == 0
    assert gpd.read_file(out / "plan.gpkg", layer="grids")["community_id"].nunique() == 3


def test_named_and_commercial_streets_get_road_grids():
    b, s, _ = city_with_main_road()
    s["highway"] = "residential"
    s["name"] = None
    vertical = [ls.coords[0][0] == ls.coords[-1][0] for ls in s.geometry]
    xs = [ls.coords[0][0] for ls in s.geometry]
    s.loc[[v and x == 100 for v, x in zip(vertical, xs)], "name"] = "Market Street"
    s.loc[[v and x == 300 for v, x in zip(vertical, xs)], "name"] = "南京路步行街"
    # the two corridors cut the city into 400, 800 and 400 households: at 400 a
    # grid every piece makes whole grids (at 300 the stretches would be left)
    plan = gridmap.delineate(b, s, target=400, road_names=["Market Street"],
                             road_grids=True, road_depth=10, road_max_length=1000)
    roads = plan.grids[plan.grids["kind"] == "road"]
    assert set(roads["label"]) == {"Market Street", "南京路步行街"}
    off = gridmap.delineate(b, s, target=400, road_grids=True, road_classes=())
    assert set(off.grids.loc[off.grids["kind"] == "road", "label"]) == {"南京路步行街"}


def test_road_stretches_stop_at_a_load():
    b, s, _ = city_with_main_road()
    # shops on the main road's frontage, 40 households each, one per block side
    shops = gpd.GeoDataFrame(
        {"id": [f"shop{k}" for k in range(8)], "households": [40] * 8},
        geometry=[shapely.box(x, y + 40, x + 6, y + 60) for x in (92, 102)
                  for y in range(0, 400, 100)], crs=b.crs)
    b2 = gpd.GeoDataFrame(__import__("pandas").concat([b, shops], ignore_index=True),
                          crs=b.crs)
    # the corridor leaves 400 households west of it and 1,200 east: whole grids of 400
    long = gridmap.delineate(b2, s, target=400, road_grids=True, road_depth=10,
                             road_max_length=1000)
    short = gridmap.delineate(b2, s, target=400, road_grids=True, road_depth=10,
                              road_max_length=1000, road_max_load=160)
    n_long = (long.grids["kind"] == "road").sum()
    n_short = (short.grids["kind"] == "road").sum()
    assert n_long == 1 and n_short == 2  # 4 pieces of 80 households: 2 per stretch
    roads = short.grids[short.grids["kind"] == "road"]
    assert roads["households"].tolist() == [160.0, 160.0]


def test_a_site_with_many_people_is_a_unit_grid_whatever_its_size():
    b, s, school = city_with_main_road()
    school["geometry"] = [shapely.box(0, 0, 50, 50)]  # 2,500 m², under 5,000
    school["staff_and_pupils"] = 1200
    small = gridmap.delineate(b, s, target=300, sites=school)
    assert (small.grids["kind"] == "unit").sum() == 0
    big = gridmap.delineate(b, s, target=300, sites=school,
                            headcount_column="staff_and_pupils", unit_min_headcount=1000)
    assert (big.grids["kind"] == "unit").sum() == 1


# --- carve_special_grids (stage 3)
def _carve(st, special, *, sites=None, given_units=False):
    from gridmap.special import carve_special_grids

    notes: list[str] = []
    carve = carve_special_grids(sites, st.layers.street_lines, st.area, special,
                                given_units=given_units,
                                buildings=np.asarray(st.layers.buildings.geometry.values),
                                load=st.counts.weight, notes=notes)
    return carve, notes


def test_carve_cuts_unit_sites_and_road_stretches_out_of_the_area():
    from gridmap.options import SpecialGrids

    b, s, school = city_with_main_road()
    st = run_stages(b, s, sites=school, target=300, road_grids=True, road_depth=10,
                    road_max_length=250)
    carve = st.carve
    assert carve.kind.tolist() == ["unit", "road", "road"]
    assert carve.label.tolist() == ["school No. 1 School", "Main Road", "Main Road"]
    assert shapely.area(carve.geometry).round(3).tolist() == [10000.0, 4000.0, 3000.0]
    # disjoint: the corridor gives way to the school
    assert shapely.area(shapely.union_all(carve.geometry)) == pytest.approx(17000.0)
    # a site too small is no unit grid, and that is said
    sites = st.layers.sites
    carve, notes = _carve(st, SpecialGrids(unit_min_area=20000), sites=sites)
    assert len(carve) == 0
    assert notes == ["no site of the kinds asked for is at least 20000 m²: no unit grids."]
    # unless it holds many people
    many = sites.assign(staff=[800])
    carve, _ = _carve(st, SpecialGrids(unit_min_area=20000, headcount_column="staff"),
                      sites=many)
    assert carve.kind.tolist() == ["unit"]


def test_a_road_in_a_tunnel_has_no_road_grid():
    from gridmap.options import SpecialGrids

    b, s, _ = city_with_main_road()
    s["tunnel"] = np.where(s["highway"] == "primary", "yes", None)
    st = run_stages(b, s, target=300)
    carve, notes = _carve(st, SpecialGrids(road_grids=True))
    assert len(carve) == 0
    assert notes == ["no street of the classes ['primary', 'secondary'] or names []: no "
                     "road grids."]
    # over ground, the same road has one (800 m at most a stretch)
    st = run_stages(b, s.drop(columns="tunnel"), target=300)
    carve, notes = _carve(st, SpecialGrids(road_grids=True))
    assert carve.kind.tolist() == ["road"] and notes == []


def test_no_special_grids_of_units_given_directly_and_none_of_roads_without_streets():
    from gridmap.options import SpecialGrids

    b, s, school = city_with_main_road()
    st = run_stages(b, s, target=300)
    carve, notes = _carve(st, SpecialGrids(road_grids=True), sites=school, given_units=True)
    assert len(carve) == 0 and notes == [
        "road and unit grids need buildings and streets; with units given directly none "
        "were made."]
    carve, notes = _carve(st, SpecialGrids())
    assert len(carve) == 0 and notes == []


def test_museums_libraries_and_youth_centres_are_unit_grids_by_default():
    from gridmap.special import unit_sites

    area = shapely.box(0, 0, 1000, 1000)
    sites = gpd.GeoDataFrame(
        {"tourism": ["museum", None, None, None, None],
         "amenity": [None, "library", "community_centre", "arts_centre", "cafe"],
         "community_centre": [None, None, "youth_centre", None, None],
         "name": ["上海博物馆", "图书馆", "青少年活动中心", "文化馆", "咖啡"]},
        geometry=[shapely.box(x * 200, 0, x * 200 + 100, 100) for x in range(5)],
        crs=CRS_M)
    polys, labels = unit_sites(sites, area)
    assert sorted(labels) == ["arts_centre 文化馆", "library 图书馆", "museum 上海博物馆",
                              "youth_centre 青少年活动中心"]
    # the list is the planner's to change: only museums
    _, only = unit_sites(sites, area, kinds={"museum"})
    assert list(only) == ["museum 上海博物馆"]


CRS_M = "EPSG:32651"


def test_short_road_stretches_join_the_next_stretch_of_the_road():
    b, s, school = city_with_main_road()
    kw = dict(target=300, tolerance=0.1, sites=school, road_grids=True, road_depth=10,
              road_max_length=100)
    # stretches of 100 m of centre-line each, the southern one 10 m wide (the
    # school's block takes the rest): kept at the default minimum of 100 m ...
    plan = gridmap.delineate(b, s, **kw)
    roads = plan.grids.to_crs(32651).query("kind == 'road'")
    assert sorted(roads.area.round(3)) == [1000.0, 2000.0, 2000.0, 2000.0]
    # ... joined to the next stretch of the road, the smallest first, under 150 m:
    # the thin one with its neighbour, then the next short one with the last
    plan = gridmap.delineate(b, s, **kw, road_min_length=150)
    roads = plan.grids.to_crs(32651).query("kind == 'road'")
    assert sorted(roads.area.round(3)) == [3000.0, 4000.0]
    assert (roads.geom_type == "Polygon").all()
    # still a tiling: no gap, no overlap
    assert plan.metrics["gap_m2"] < 1e-6 and plan.metrics["overlap_m2"] < 1e-6


def test_land_the_corridor_cuts_off_too_light_for_a_grid_joins_the_road_grid():
    b, s, school = city_with_main_road()
    # the three blocks west of the main road (the school has the fourth) hold
    # 90 households: under half a grid, cut off from the rest by the corridor
    west = b.geometry.centroid.x < 100
    b.loc[west, "households"] = 30
    plan = gridmap.delineate(b, s, target=300, tolerance=0.1, sites=school,
                             road_grids=True, road_depth=10, road_max_length=250)
    g = plan.grids.set_index("grid_id")
    assert not (g["flag"].fillna("") == "island").any()
    kinds = plan.buildings.loc[west & ~b.geometry.within(school.geometry.iloc[0]),
                               "grid_id"].map(g["kind"])
    assert set(kinds) == {"road"}
    assert any("joined the road grid round it" in n for n in plan.metrics["notes"])
    # every grid in one piece
    assert (plan.grids.geom_type == "Polygon").all()


def test_light_land_an_oversize_grid_was_left_with_behind_a_corridor_joins_the_road():
    b, s, school = city_with_main_road()
    # west of the main road: a building of 400 households (more than a grid) and
    # two of 20 behind it, cut off from every other community grid by the corridor
    cx, cy = b.geometry.centroid.x, b.geometry.centroid.y
    west = cx < 100
    heavy = west & (cy > 100) & (cy < 200)
    b.loc[west, "households"] = 20
    b.loc[heavy, "households"] = 400
    plan = gridmap.delineate(b, s, target=300, tolerance=0.1, sites=school,
                             road_grids=True, road_depth=10, road_max_length=250)
    g = plan.grids.set_index("grid_id")
    kind = plan.buildings["grid_id"].map(g["kind"])
    oversize = plan.buildings.loc[heavy, "grid_id"].iloc[0]
    assert g.loc[oversize, "flag"] == "oversize"
    # the oversize grid holds its building alone (the exception of the rule), the
    # light ones went to the road grid beside them
    assert (plan.buildings["grid_id"] == oversize).sum() == 1
    light = west & ~heavy & ~b.geometry.within(school.geometry.iloc[0])
    assert set(kind[light]) == {"road"}
    assert plan.metrics["n_grids_out_of_tolerance"] == 0
    assert (plan.grids.geom_type == "Polygon").all()


def test_a_corridor_cutting_off_land_no_whole_number_of_grids_holds_is_left():
    # the main road at x = 100 cuts the city into 400 households west of it and
    # 600 east: at 250 ±10 % a grid neither makes whole grids (400 is one too
    # heavy or two too light), so the stretch is left to the community grids (its
    # street runs through them), and the 1,000 make 4 grids of 250
    b, s, _ = city_with_main_road()
    b["households"] = np.where((b.geometry.centroid.x < 100).to_numpy(), 100, 50)
    plan = gridmap.delineate(b, s, target=250, tolerance=0.1, road_grids=True,
                             road_depth=10, road_max_length=1000)
    g = plan.grids
    assert (g["kind"] == "road").sum() == 0
    assert g["households"].tolist() == [250.0] * 4 and g["within_tolerance"].all()
    note = [n for n in plan.metrics["notes"] if "left to the community grids" in n]
    assert note and "Main Road (cut off 600; joined 1000)" in note[0]
    # at 200 a grid both sides make whole grids (2 and 3): the road grid stays
    kept = gridmap.delineate(b, s, target=200, tolerance=0.1, road_grids=True,
                             road_depth=10, road_max_length=1000)
    assert (kept.grids["kind"] == "road").sum() == 1
    assert kept.grids["within_tolerance"].all()
    assert not any("left to the community" in n for n in kept.metrics["notes"])


def test_grids_fit_and_land_walled_in_by_a_heavy_building():
    from gridmap.special import grids_fit, leave_balanceable

    assert [grids_fit(w, 300, 0.1) for w in (100, 270, 330, 418, 540, 600, 700, 900)] \
        == [True, True, True, False, True, True, False, True]
    # a strip of land cut by one corridor (x 95-105): west, a heavy building (500,
    # a grid of its own) and 100 households it walls in; east, 540 (two grids).
    # 100 alone would join the road grid, but walled in it would join the heavy
    # building's grid: the stretch is left, and 640 make two grids
    land = shapely.box(0, 0, 200, 100)
    road = np.array([shapely.box(95, 0, 105, 100)], dtype=object)
    heavy = shapely.box(0, 0, 30, 30)
    houses = np.array([shapely.box(60, 40, 70, 50), heavy]
                      + [shapely.box(x, 40, x + 10, 50) for x in (120, 150, 180)],
                      dtype=object)
    load = np.array([100, 500, 180, 180, 180.0])

    def left(keep):
        notes: list[str] = []
        kept, _ = leave_balanceable(road, np.array(["R"], dtype=object), land,
                                    buildings=houses[keep], load=load[keep], target=300,
                                    tolerance=0.1, notes=notes)
        return len(kept), notes

    n, notes = left(np.ones(len(houses), dtype=bool))
    assert n == 0 and "R (cut off 100; joined 640)" in notes[0]
    # without the heavy building the light land is not walled in: it joins the
    # road grid, and the stretch stays
    assert left(load != 500) == (1, [])
