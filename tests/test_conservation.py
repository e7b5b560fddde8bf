"""Nothing lost: every building and every person of the input is in the plan, or listed."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from conftest import CRS, grid_city

import gridmap


def _assert_conserved(plan, n_buildings, fields=("households",)):
    c = plan.metrics["conservation"]
    assert c["conserved"]
    assert c["buildings_in"] == c["buildings_out"] == n_buildings == len(plan.buildings)
    assert c["buildings_without_grid"] == []
    assert plan.buildings["grid_id"].isin(plan.grids["grid_id"]).all()
    for f in fields:
        t = c["totals"][f]
        assert t["per_building"] and t["per_community"]
        assert t["in_grids"] == t["on_buildings"] == plan.grids[f].sum()
        assert t["input"] == t["on_buildings"] + t["unplaced"]
    return c


def test_counts_on_buildings_are_conserved_per_building_community_and_overall():
    b, s = grid_city(4, 4, per_block=3)
    rng = np.random.default_rng(3)
    b["households"] = rng.integers(0, 90, len(b))
    b["pop_actual"] = b["households"] * 3 + 1
    bnd = gpd.GeoDataFrame({"community_id": ["W", "E"]},
                           geometry=[shapely.box(0, 0, 200, 400), shapely.box(200, 0, 400, 400)],
                           crs=CRS)
    plan = gridmap.delineate(b, s, boundaries=bnd, target=200, tolerance=0.2)
    c = _assert_conserved(plan, len(b), ("households", "pop_actual"))
    assert c["totals"]["households"]["input"] == b["households"].sum()
    assert c["totals"]["pop_actual"]["in_grids"] == b["pop_actual"].sum()
    # per community, to the unit
    west = b.geometry.centroid.x < 200
    by_comm = plan.grids.groupby("community_id")["households"].sum()
    assert by_comm["W"] == b.loc[west, "households"].sum()
    assert by_comm["E"] == b.loc[~west, "households"].sum()
    # per building: the output keeps every building's own count
    out = plan.buildings.set_index("id")["households"]
    assert (out.loc[b["id"]].to_numpy() == b["households"].to_numpy()).all()


def test_population_points_nobody_can_place_are_listed_with_the_reason():
    b, s = grid_city(2, 2)
    b = b.drop(columns="households")
    pts = gpd.GeoDataFrame(
        geometry=[b.geometry[0].centroid] * 3 + [b.geometry[3].centroid] * 2
        + [shapely.Point(5000, 5000)], crs=CRS)
    plan = gridmap.delineate(b, s, pts, target=2, tolerance=0.5)
    c = _assert_conserved(plan, len(b))
    t = c["totals"]["households"]
    assert (t["input"], t["in_grids"], t["unplaced"]) == (6, 5, 1)
    assert c["population_unplaced"] == [
        {"population_row": 5,
         "reason": "outside every building and none within max_distance (50 m)"}]


def test_buildings_outside_the_boundaries_are_placed_and_said():
    b, s = grid_city(2, 2)
    bnd = gpd.GeoDataFrame({"community_id": [1]}, geometry=[shapely.box(0, 0, 200, 100)],
                           crs=CRS)
    with pytest.warns(gridmap.GridmapWarning, match="outside every community boundary"):
        plan = gridmap.delineate(b, s, boundaries=bnd, target=200, tolerance=0.1)
    _assert_conserved(plan, len(b))
    assert plan.grids["households"].sum() == 400


def test_repaired_and_reprojected_input_loses_nothing():
    b, s = grid_city(3, 3, per_block=2)
    x0, y0, x1, y1 = b.geometry[4].bounds
    b.loc[4, "geometry"] = shapely.Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])
    with pytest.warns(gridmap.GridmapWarning):
        plan = gridmap.delineate(b, s.to_crs(4326), target=300, tolerance=0.2)
    _assert_conserved(plan, len(b))
    assert plan.buildings["id"].tolist() == b["id"].tolist()


@pytest.mark.slow
def test_bundled_data_conserves_buildings_and_population(bundled, bundled_plan):
    b = gpd.read_file(bundled, layer="buildings")
    plan = bundled_plan
    c = _assert_conserved(plan, len(b), ("households", "pop_actual"))
    assert c["buildings_in"] == 1321
    assert plan.buildings["grid_id"].notna().all()
    # each building's estimate is in exactly one grid: the sums per grid are the grids'
    per_grid = plan.buildings.groupby("grid_id")["households"].sum()
    assert (per_grid.sort_index().to_numpy()
            == plan.grids.set_index("grid_id")["households"].sort_index().to_numpy()).all()
