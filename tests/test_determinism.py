"""The same input and seed give the same plan, whatever the row order of the input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import shapely
from test_random_cities import random_city

import gridmap


def _by_building(plan):
    """Every building id with its grid id and its grid's geometry (normalised WKB)."""
    grids = plan.grids.set_index("grid_id").geometry
    wkb = {int(k): shapely.to_wkb(shapely.normalize(g)) for k, g in grids.items()}
    return {b: (int(g), wkb[int(g)])
            for b, g in zip(plan.buildings["id"], plan.buildings["grid_id"], strict=True)}


@pytest.mark.parametrize("seed", [1, 5, 12, 31])
def test_shuffled_rows_give_the_same_plan(seed):
    buildings, streets = random_city(seed, 4, 4, 0.8, seed % 2 == 1)
    target = max(100.0, buildings["households"].sum() / 6)
    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gridmap.GridmapWarning)
        plan = gridmap.delineate(buildings, streets, target=target, tolerance=0.2, seed=7)
        shuffled = gridmap.delineate(buildings.iloc[rng.permutation(len(buildings))],
                                     streets.iloc[rng.permutation(len(streets))],
                                     target=target, tolerance=0.2, seed=7)
    assert _by_building(shuffled) == _by_building(plan)
    # the output keeps the input's own row order and index
    assert shuffled.buildings["id"].tolist() != plan.buildings["id"].tolist()
    assert plan.buildings.index.equals(buildings.index)


def test_without_an_id_column_the_order_is_taken_from_the_geometry():
    buildings, streets = random_city(1, 4, 4, 0.8, False)  # seed 1 broke before the fix
    target = max(100.0, buildings["households"].sum() / 6)
    anon = buildings.drop(columns="id")
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(anon))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gridmap.GridmapWarning)
        a = gridmap.delineate(anon, streets, target=target, tolerance=0.2)
        b = gridmap.delineate(anon.iloc[perm], streets, target=target, tolerance=0.2)
    # the same building (by its original index) is in a grid of the same shape
    ga = a.grids.set_index("grid_id").geometry.normalize()
    gb = b.grids.set_index("grid_id").geometry.normalize()
    shape_a = ga.loc[a.buildings["grid_id"]].to_wkb().to_numpy()
    shape_b = gb.loc[b.buildings.loc[a.buildings.index, "grid_id"]].to_wkb().to_numpy()
    assert (shape_a == shape_b).all()
