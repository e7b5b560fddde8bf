"""Delineation end to end: invariants on hand-made cities with exact answers."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from conftest import CRS, grid_city

import gridmap
from gridmap import InfeasiblePartitionError, LayerValidationError


def _check_invariants(plan, buildings, *, tolerance=0.1):
    g = plan.grids
    # every building in exactly one grid, ids and index preserved
    assert len(plan.buildings) == len(buildings)
    assert plan.buildings.index.equals(buildings.index)
    assert plan.buildings["grid_id"].notna().all()
    assert set(plan.buildings["grid_id"]) <= set(g["grid_id"])
    assert plan.buildings.crs == buildings.crs and g.crs == buildings.crs
    # grids tile the area: no gap, no overlap
    gm = g.to_crs(CRS)
    area = plan.area.to_crs(CRS).iloc[0]
    union = shapely.union_all(gm.geometry.values)
    assert abs(gm.area.sum() - union.area) < 1e-3 * area.area
    assert shapely.symmetric_difference(union, area).area < 1e-3 * area.area
    # each grid one piece
    assert (shapely.get_num_geometries(gm.geometry.values) == 1).all()
    return g


def test_sixteen_blocks_make_four_equal_grids(city4):
    b, s = city4
    plan = gridmap.delineate(b, s, target=400, tolerance=0.1)
    g = _check_invariants(plan, b)
    assert len(g) == 4
    assert g["households"].tolist() == [400.0] * 4
    # each grid is a 2 x 2 square of blocks: 200 m x 200 m
    assert np.allclose(g.to_crs(CRS).area, 40_000)
    assert plan.metrics["street_share"] == pytest.approx(1.0)
    assert plan.metrics["max_abs_deviation"] == pytest.approx(0.0)
    assert plan.metrics["contiguous"] is True
    # codes: 15 digits, numbered west to east, north to south
    assert all(len(c) == 15 for c in g["code"])
    first = g.set_index("code").to_crs(CRS).geometry.centroid
    xs, ys = first.x.to_numpy(), first.y.to_numpy()
    assert ys[0] > ys[2] and xs[0] < xs[1]


def test_input_not_mutated_and_ids_kept(city4):
    b, s = city4
    before = b.copy()
    plan = gridmap.delineate(b, s, target=400)
    pd.testing.assert_frame_equal(b, before)
    assert plan.buildings["id"].tolist() == b["id"].tolist()


def test_same_seed_same_plan():
    b, s = grid_city(6, 6, per_block=3, households=37)
    a = gridmap.delineate(b, s, target=300, seed=7)
    c = gridmap.delineate(b, s, target=300, seed=7)
    assert a.buildings["grid_id"].tolist() == c.buildings["grid_id"].tolist()


def test_balance_within_tolerance_on_finer_city():
    b, s = grid_city(6, 6, per_block=3, households=37)
    plan = gridmap.delineate(b, s, target=300, tolerance=0.1)
    g = _check_invariants(plan, b)
    assert len(g) == round(b["households"].sum() / 300)
    mean = g["households"].mean()
    assert (abs(g["households"] / mean - 1) <= 0.1 + 1e-9).all()


def test_building_bigger_than_a_grid_is_its_own_flagged_grid(city4):
    b, s = city4
    b = b.copy()
    b.loc[0, "households"] = 1000
    plan = gridmap.delineate(b, s, target=400, tolerance=0.1)
    g = _check_invariants(plan, b)
    big = g[g["flag"] == "oversize"]
    assert len(big) == 1 and big["households"].iloc[0] == 1000
    assert big["n_buildings"].iloc[0] == 1


def test_block_bigger_than_a_grid_is_split_between_buildings():
    b, s = grid_city(1, 1, per_block=4, households=150)
    plan = gridmap.delineate(b, s, target=300, tolerance=0.1)
    g = _check_invariants(plan, b)
    assert sorted(g["households"]) == [300.0, 300.0]
    # the cut runs between buildings: no building is split by a grid edge
    gm = g.to_crs(CRS)
    for geom in b.geometry:
        inside = shapely.area(shapely.intersection(gm.geometry.values, geom))
        assert inside.max() == pytest.approx(geom.area)
    assert plan.metrics["exempt_m"] > 0


def test_outputs_in_input_crs_for_wgs84(city4):
    b, s = city4
    b4, s4 = b.to_crs(4326), s.to_crs(4326)
    plan = gridmap.delineate(b4, s4, target=400)
    assert plan.grids.crs.to_epsg() == 4326
    assert plan.buildings.crs.to_epsg() == 4326
    assert len(plan.grids) == 4


def test_units_given_directly():
    boxes = [shapely.box(x, y, x + 1, y + 1) for x in range(4) for y in range(4)]
    units = gpd.GeoDataFrame({"pop": [10] * 16}, geometry=boxes, crs=CRS)
    plan = gridmap.delineate(units=units, target=40, by="pop", tolerance=0.05)
    assert len(plan.grids) == 4
    assert plan.grids["pop"].tolist() == [40.0] * 4


def test_oversize_grid_that_takes_a_leftover_is_not_an_exception():
    # a row: two light units, a tower, a small unit between two towers, two light
    # units; the small unit touches only towers, so it joins the first one, and
    # that grid is no longer one indivisible unit: judged, out, and said why
    w = [40, 40, 100, 5, 100, 40, 40]
    units = gpd.GeoDataFrame({"pop": w}, crs=CRS,
                             geometry=[shapely.box(x, 0, x + 1, 1) for x in range(7)])
    plan = gridmap.delineate(units=units, target=80, by="pop", tolerance=0.1)
    g = plan.grids.set_index("grid_id")
    towers = g[g["flag"] == "oversize"].sort_values("pop")
    assert towers["pop"].tolist() == [100.0, 105.0]
    assert towers["single_unit"].tolist() == [True, False]
    took = towers.iloc[1]
    assert not took["within_tolerance"] and pd.isna(took["exception"])
    assert "also holds 1 other unit(s) of 5 pop, so it is not one indivisible" in \
        took["reason"]
    assert plan.metrics["n_out_of_tolerance"] == 1
    assert plan.metrics["n_single_unit_exceptions"] == 1


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"by": "pop_registered"}, "pop_registered"),
        ({"target": 0}, "target must be a positive number"),
        ({"tolerance": 1.5}, "tolerance must be a fraction"),
        ({"target": 10**9}, "above the total"),
    ],
)
def test_bad_parameters_get_clear_errors(city4, kwargs, needle):
    b, s = city4
    with pytest.raises((LayerValidationError, InfeasiblePartitionError)) as err:
        gridmap.delineate(b, s, **kwargs)
    assert needle in str(err.value)


def test_no_crs_and_empty_layer_reported_together(city4):
    b, s = city4
    b = b.set_crs(None, allow_override=True)
    with pytest.raises(LayerValidationError) as err:
        gridmap.delineate(b, s.iloc[:0])
    msg = str(err.value)
    assert "no CRS" in msg and "`streets` is empty" in msg


def test_missing_file_is_a_clear_error():
    with pytest.raises(LayerValidationError, match="file not found"):
        gridmap.delineate("no/such/buildings.gpkg")


def test_duplicate_ids_rejected(city4):
    b, s = city4
    b = b.copy()
    b.loc[1, "id"] = b.loc[0, "id"]
    with pytest.raises(LayerValidationError, match="duplicate"):
        gridmap.delineate(b, s, target=400)


def _trapped_pair():
    """Two buildings of 70 on a cul-de-sac block X at the area's south edge, with
    an empty block H (a square) wrapped round it; 30 households west of H and 30
    east of it.  Target 100: each of X's buildings must reach one side through H.
    """
    blds = gpd.GeoDataFrame(
        {"id": ["c", "a", "b", "d"], "households": [30, 70, 70, 30]},
        geometry=[shapely.box(20, 30, 80, 70), shapely.box(135, 5, 147, 50),
                  shapely.box(153, 5, 165, 50), shapely.box(220, 30, 280, 70)], crs=CRS)
    lines = [shapely.LineString(c) for c in (
        [(0, 0), (300, 0)], [(0, 100), (300, 100)], [(0, 0), (0, 100)],
        [(300, 0), (300, 100)], [(100, 0), (100, 100)], [(200, 0), (200, 100)],
        [(130, 0), (130, 60), (170, 60), (170, 0)])]
    streets = gpd.GeoDataFrame({"highway": ["residential"] * len(lines)}, geometry=lines,
                               crs=CRS)
    bnd = gpd.GeoDataFrame({"community_id": ["C1"]}, geometry=[shapely.box(0, 0, 300, 100)],
                           crs=CRS)
    return blds, streets, bnd


def test_an_empty_block_the_grids_around_it_must_share_is_split_into_sectors():
    # whole, the square goes to one grid and the other building of X reaches no
    # one: every plan of whole blocks has a grid of 70 and one of 130
    blds, streets, bnd = _trapped_pair()
    plan = gridmap.delineate(blds, streets, boundaries=bnd, target=100, tolerance=0.1)
    _check_invariants(plan, blds)
    assert sorted(plan.grids["households"].tolist()) == [100, 100]
    grid = plan.buildings.set_index("id")["grid_id"]
    assert grid["a"] != grid["b"]
    assert {grid["a"], grid["c"]} != {grid["b"], grid["d"]}
    # the square is cut into sectors, shared by both grids; nothing else changes
    units = plan.units
    empty = units[units["households"] == 0]
    assert empty["split"].all() and empty["block"].nunique() == 1
    assert empty["grid_id"].nunique() == 2
    assert abs(empty.area.sum() - (100 * 100 - 40 * 60)) < 1e-3


def _row_in_a_deep_block():
    # one block 200 m x 120 m (streets all round), four buildings in a row across
    # its middle: 92, 93, 8 and 7 households.  Their cells span the block's depth,
    # so a grid of cells is a run along the row, and no run of 92 93 8 7 splits
    # into two of 95-105 (92 | 108, 185 | 15, ...)
    households = [92, 93, 8, 7]
    b = gpd.GeoDataFrame(
        {"id": [f"b{k}" for k in range(4)], "households": households},
        geometry=[shapely.box(x0, 55, x0 + 46, 65) for x0 in (2, 52, 102, 152)], crs=CRS)
    ring = [(0, 0), (200, 0), (200, 120), (0, 120), (0, 0)]
    s = gpd.GeoDataFrame({"highway": ["residential"] * 4},
                         geometry=[shapely.LineString(ring[k:k + 2]) for k in range(4)],
                         crs=CRS)
    return b, s


def test_a_grid_walled_in_by_cells_passes_along_the_open_land(monkeypatch):
    b, s = _row_in_a_deep_block()
    plan = gridmap.delineate(b, s, target=100, tolerance=0.05, seed=0)
    g = _check_invariants(plan, b, tolerance=0.05)
    # the land beyond 10 m of the row is opened: one grid takes the first and
    # last buildings round one side, the other the middle two
    assert sorted(g["households"].tolist()) == [99, 101]
    grid = plan.buildings.set_index("id")["grid_id"]
    assert grid["b0"] == grid["b3"] != grid["b1"] == grid["b2"]
    assert g["within_tolerance"].all()
    assert any("opened" in n for n in plan.metrics["notes"])
    units = plan.units
    assert len(units) == 12 and (units["households"] == 0).sum() == 8
    again = gridmap.delineate(b, s, target=100, tolerance=0.05, seed=0)
    assert again.buildings["grid_id"].tolist() == plan.buildings["grid_id"].tolist()
    # without the open land (cells only) the same plan leaves both grids out
    import gridmap.units as gu

    monkeypatch.setattr(gu, "open_land", lambda block, cells, *a, **k: (
        np.asarray(cells, dtype=object), np.array([], dtype=object)))
    shut = gridmap.delineate(b, s, target=100, tolerance=0.05, seed=0)
    assert sorted(shut.grids["households"].tolist()) == [92, 108]
    assert not any("opened" in n for n in shut.metrics["notes"])


def _plan_key(plan):
    g = plan.grids
    ordinary = g[g["flag"].fillna("") == ""]
    out = int((~ordinary["within_tolerance"]).sum())
    return out, float(ordinary["deviation"].abs().max())


def test_restarts_keep_the_best_of_the_seeds_plans():
    # coarse, uneven households: how far the grids stay out depends on the seed
    # (without the exact pass, seed 5 leaves a grid 9.2 % off, seed 6 only 7.6 %)
    rng = np.random.default_rng(3)
    blds, streets = grid_city(5, 4, per_block=2)
    blds["households"] = rng.choice([20, 60, 110, 150], size=len(blds))
    kw = {"target": 300, "tolerance": 0.05, "exact": False, "effort": 1500}
    plans = [gridmap.delineate(blds, streets, seed=s, **kw) for s in (5, 6)]
    keys = [_plan_key(p) for p in plans]
    assert keys[1] < keys[0]
    plan = gridmap.delineate(blds, streets, seed=5, restarts=2, **kw)
    assert _plan_key(plan) == keys[1]
    assert plan.buildings["grid_id"].tolist() == plans[1].buildings["grid_id"].tolist()
    assert any("restarts=2" in n and "seed 6" in n for n in plan.metrics["notes"])
    _check_invariants(plan, blds)
    # one restart is the plan of the seed itself
    one = gridmap.delineate(blds, streets, seed=5, restarts=1, **kw)
    assert one.buildings["grid_id"].tolist() == plans[0].buildings["grid_id"].tolist()


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_restarts_must_be_a_whole_number_of_one_or_more(city4, bad):
    blds, streets = city4
    with pytest.raises(LayerValidationError, match="restarts must be"):
        gridmap.delineate(blds, streets, target=200, restarts=bad)
