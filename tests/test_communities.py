"""Stage 4b, find_communities (gridmap.communities): the community of every
block, communities delineated first where asked, the target of each; and
check_grid_count, which refuses a community a grid code cannot number."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from conftest import CRS, grid_city, run_stages

import gridmap
from gridmap import InfeasiblePartitionError, LayerValidationError
from gridmap.communities import check_grid_count, find_communities
from gridmap.options import Balance


def _find(st, balance, boundaries=None, buildings=None):
    """find_communities again on the blocks of ``st`` (stages 1-4 of run_stages)."""
    notes: list[str] = []
    got = find_communities(
        st.maker.blocks, boundaries, st.layers.buildings if buildings is None else buildings,
        st.counts.weight, balance, graph_of=st.maker.graph,
        building_geoms=st.maker.building_geoms, seed=0, notes=notes)
    return got, notes


def _two(**columns):
    """West and east halves of a 4 × 4 city of 100 households a block."""
    return gpd.GeoDataFrame(columns, geometry=[shapely.box(0, 0, 200, 400),
                                               shapely.box(200, 0, 400, 400)], crs=CRS)


def _community_weight(communities, weight):
    blocks = communities.blocks
    return np.bincount(blocks.community, weights=blocks.loads(weight))


def test_without_boundaries_the_area_is_one_community():
    b, s = grid_city(4, 4)
    st = run_stages(b, s, target=400, tolerance=0.1)
    c = st.communities
    assert c.ids == [1] and c.subdistrict_ids == [None] and c.polygons is None
    assert c.target.tolist() == [400.0] and c.tolerance.tolist() == [0.1]
    assert c.kind is None
    assert set(c.blocks.community.tolist()) == {0}


def test_boundaries_give_the_ids_and_the_community_of_every_block():
    b, s = grid_city(4, 4)
    bnd = _two(community_id=["W", "E"], subdistrict_id=["S1", "S2"])
    st = run_stages(b, s, boundaries=bnd, target=400)
    c = st.communities
    assert c.ids == ["W", "E"] and c.subdistrict_ids == ["S1", "S2"]
    assert len(c.polygons) == 2 and c.target.tolist() == [400.0, 400.0]
    x = shapely.get_x(shapely.centroid(c.blocks.geometry))
    assert (c.blocks.community == np.where(x < 200, 0, 1)).all()
    assert _community_weight(c, st.counts.weight).tolist() == [800.0, 800.0]
    # without an id column the communities are numbered 1..n in the layer's order
    c, _ = _find(st, Balance(target=400), boundaries=bnd.drop(
        columns=["community_id", "subdistrict_id"]))
    assert c.ids == [1, 2] and c.subdistrict_ids == [None, None]


def test_community_target_delineates_contiguous_communities_of_about_the_target():
    b, s = grid_city(6, 4)  # 24 blocks of 100 households
    st = run_stages(b, s, target=200, community_target=800, community_tolerance=0.2)
    c = st.communities
    assert c.ids == ["C001", "C002", "C003"] and c.subdistrict_ids == [None] * 3
    weight = _community_weight(c, st.counts.weight)
    assert ((weight >= 800 * 0.8) & (weight <= 800 * 1.2)).all() and weight.sum() == 2400
    blocks = c.blocks
    for k in range(3):
        # one piece, the union of its blocks
        assert shapely.get_num_geometries(c.polygons[k]) == 1
        mine = shapely.union_all(blocks.geometry[blocks.community == k], grid_size=1e-3)
        assert shapely.symmetric_difference(mine, c.polygons[k]).area < 1e-3
    # numbered like grids: north to south, west to east
    p = shapely.get_coordinates(shapely.point_on_surface(c.polygons))
    assert np.lexsort((np.round(p[:, 0]), -np.round(p[:, 1]))).tolist() == [0, 1, 2]
    assert c.target.tolist() == [200.0] * 3
    assert any("3 communities delineated first" in n for n in st.notes)


def test_community_target_is_not_used_with_boundaries():
    b, s = grid_city(4, 4)
    st = run_stages(b, s, boundaries=_two(community_id=["W", "E"]), target=400)
    c, notes = _find(st, Balance(target=400, community_target=400),
                     boundaries=_two(community_id=["W", "E"]))
    assert c.ids == ["W", "E"]
    assert notes == ["community_target was not used: community boundaries were given."]


def test_targets_per_community_type_from_the_boundaries():
    b, s = grid_city(4, 4)
    bnd = _two(community_id=["W", "E"], community_type=["old_town", "estate"])
    st = run_stages(b, s, boundaries=bnd, target=400)
    balance = Balance(target=400, tolerance=0.1,
                      targets={"old_town": (200, 0.15), "estate": 300})
    c, notes = _find(st, balance, boundaries=bnd)
    assert c.kind == ["old_town", "estate"]
    assert c.target.tolist() == [200.0, 300.0] and c.tolerance.tolist() == [0.15, 0.1]
    assert notes == []
    # a type with no target takes the plan's, and says so
    c, notes = _find(st, Balance(target=400, targets={"estate": 300}), boundaries=bnd)
    assert c.target.tolist() == [400.0, 300.0]
    assert len(notes) == 1 and "['old_town']" in notes[0] and "target 400" in notes[0]


def test_a_communitys_type_from_the_buildings_is_the_one_holding_most_weight():
    b, s = grid_city(4, 4)
    x = b.geometry.centroid.x
    # the west half mostly old town (one estate building), the east all estate
    b["community_type"] = np.where(x < 200, "old_town", "estate")
    b.loc[b.index[0], "community_type"] = "estate"
    bnd = _two(community_id=["W", "E"])
    st = run_stages(b, s, boundaries=bnd, target=400)
    c, _ = _find(st, Balance(target=400, targets={"old_town": 200, "estate": 400}),
                 boundaries=bnd)
    assert c.kind == ["old_town", "estate"] and c.target.tolist() == [200.0, 400.0]


def test_targets_without_a_type_column_name_it():
    b, s = grid_city(4, 4)
    bnd = _two(community_id=["W", "E"])
    st = run_stages(b, s, boundaries=bnd, target=400)
    with pytest.raises(LayerValidationError, match="column 'kind_of_place'"):
        _find(st, Balance(target=400, targets={"estate": 300}, type_column="kind_of_place"),
              boundaries=bnd)


def test_check_grid_count_refuses_more_than_999_grids_in_a_community():
    community = np.zeros(1000, dtype=np.int64)
    check_grid_count(np.full(999, 300.0), community[:999], 300, 0.1, [1])
    with pytest.raises(InfeasiblePartitionError,
                       match=r"community 1 would have about 1,000 grids \(300,000 on the "
                       r"balance field at a target of 300\).*at most 999.*give community "
                       r"boundaries"):
        check_grid_count(np.full(1000, 300.0), community, 300, 0.1, [1])


def test_check_grid_count_counts_oversize_units_as_grids_and_each_community_alone():
    # 990 grids' worth, plus 10 units each heavier than a grid: 1,000
    weight = np.r_[np.full(990, 300.0), np.full(10, 5000.0)]
    with pytest.raises(InfeasiblePartitionError, match="about 1,000 grids"):
        check_grid_count(weight, np.zeros(1000, dtype=np.int64), 300, 0.1, [1])
    # two communities of 200 grids each pass; with a target per community, the
    # one that would have too many is named
    community = np.repeat([0, 1], 1200)
    weight = np.full(2400, 50.0)
    check_grid_count(weight, community, 300, 0.1, ["A", "B"])
    with pytest.raises(InfeasiblePartitionError,
                       match="community 'B' would have about 1,200 grids.*split that "
                       "community into smaller ones"):
        check_grid_count(weight, community, np.array([300.0, 50.0]), np.array([0.1, 0.1]),
                         ["A", "B"])


def test_a_community_target_that_makes_grids_far_from_the_target_is_reported():
    # communities of about 450 households hold one grid of 360 (+20%) or two of 240
    # (-20%): every grid is at its community's mean (max deviation 0), but none is
    # near the target 300 ±10%, and the plan says so
    b, s = grid_city(6, 6, per_block=3, households=40)
    plan = gridmap.delineate(b, s, target=300, community_target=450)
    m = plan.metrics
    assert m["max_abs_deviation"] == 0 and m["n_grids_out_of_tolerance"] == 0
    scale = m["scale_by_community"]
    off = sorted(c for c, x in scale.items() if abs(x["mean"] / 300 - 1) > 0.1)
    assert off and m["communities_out_of_scale"] == off
    assert m["n_out_of_tolerance"] == len(off)
    assert sum(f"community {c}:" in n and "out of scale" in n for c in off
               for n in m["notes"]) == len(off)
    assert "community(ies) out of scale" in repr(plan)
    # at a community target of ten grids, every community is in scale
    ok = gridmap.delineate(b, s, target=300, community_target=3000).metrics
    assert not ok["communities_out_of_scale"] and ok["n_out_of_tolerance"] == 0
