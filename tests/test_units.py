"""Tests of gridmap.units: street blocks, the study area, building cells, units.

Stage 4 (make_blocks, UnitMaker / build_units) is tested through its functions;
the tests of tessellate, sectors, open_land and keep_buildings_whole pin the
algorithms that cut the blocks into cells, sectors and open land: a change in
them changes the units, so the plans (the golden test sees it too)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
import shapely.affinity
from conftest import grid_city
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely import LineString

from gridmap.units import (
    Blocks,
    assign_by_overlap,
    block_table,
    build_units,
    make_blocks,
    open_land,
    sectors,
    street_blocks,
    study_area,
    tessellate,
)

SQUARE = shapely.box(0, 0, 100, 100)
#: a street cross through the square, overshooting its edge
CROSS = np.array(
    [LineString([(50, -10), (50, 110)]), LineString([(-10, 50), (110, 50)])]
)
L_BLOCK = shapely.Polygon([(0, 0), (100, 0), (100, 40), (40, 40), (40, 100), (0, 100)])
U_BLOCK = shapely.difference(shapely.box(0, 0, 100, 100), shapely.box(30, 30, 70, 100))


def _boxes(*bounds) -> np.ndarray:
    return np.array([shapely.box(*b) for b in bounds], dtype=object)


def _assert_tiles(pieces, whole, rel=1e-6) -> None:
    """``pieces`` cover ``whole`` exactly, without overlaps."""
    pieces = np.asarray(pieces, dtype=object)
    area = whole.area
    assert shapely.is_valid(pieces).all()
    assert shapely.area(pieces).sum() == pytest.approx(area, rel=rel)
    assert shapely.union_all(pieces).area == pytest.approx(area, rel=rel)
    assert (
        shapely.symmetric_difference(shapely.union_all(pieces), whole).area
        <= rel * area
    )
    tree = shapely.STRtree(pieces)
    a, b = tree.query(pieces, predicate="intersects")
    keep = a < b
    if keep.any():
        overlap = shapely.area(shapely.intersection(pieces[a[keep]], pieces[b[keep]]))
        assert overlap.max() <= rel * area


def _bounds(geoms) -> list[tuple[float, ...]]:
    return [tuple(round(v, 6) for v in g.bounds) for g in geoms]


# --- street_blocks
def test_street_blocks_cross_gives_four_quarters():
    blocks = street_blocks(CROSS, SQUARE)
    assert len(blocks) == 4
    assert shapely.area(blocks).tolist() == pytest.approx([2500.0] * 4)
    assert sorted(_bounds(blocks)) == [
        (0, 0, 50, 50),
        (0, 50, 50, 100),
        (50, 0, 100, 50),
        (50, 50, 100, 100),
    ]
    assert shapely.get_type_id(blocks).tolist() == [3, 3, 3, 3]
    _assert_tiles(blocks, SQUARE)


def test_street_blocks_uneven_cut():
    streets = np.array(
        [LineString([(30, -5), (30, 105)]), LineString([(30, 80), (105, 80)])]
    )
    blocks = street_blocks(streets, SQUARE)
    assert sorted(np.round(shapely.area(blocks), 6).tolist()) == [
        1400.0,
        3000.0,
        5600.0,
    ]
    _assert_tiles(blocks, SQUARE)


def test_street_blocks_dead_end_street_does_not_cut():
    streets = np.array([LineString([(50, -10), (50, 60)])])
    blocks = street_blocks(streets, SQUARE)
    assert len(blocks) == 1
    assert blocks[0].area == pytest.approx(10000.0)


def test_street_blocks_outside_streets_do_not_cut():
    streets = np.array(
        [LineString([(150, -10), (150, 110)]), LineString([(-10, 200), (110, 200)])]
    )
    blocks = street_blocks(streets, SQUARE)
    assert len(blocks) == 1
    assert shapely.equals(blocks[0], SQUARE)


def test_street_blocks_drop_slivers_along_the_outline():
    streets = np.array([LineString([(-10, 100 - 1e-9), (110, 100 - 1e-9)]), CROSS[0]])
    blocks = street_blocks(streets, SQUARE)
    assert len(blocks) == 2
    assert sorted(np.round(shapely.area(blocks), 3).tolist()) == [5000.0, 5000.0]


def test_street_blocks_area_with_a_hole():
    ring = shapely.difference(shapely.box(0, 0, 100, 100), shapely.box(40, 40, 60, 60))
    blocks = street_blocks(CROSS, ring)
    assert len(blocks) == 4
    assert shapely.area(blocks).tolist() == pytest.approx([2400.0] * 4)
    _assert_tiles(blocks, ring)


# --- study_area
def test_study_area_is_the_union_of_the_boundaries():
    b, s = grid_city(2, 2)
    bnd = gpd.GeoSeries([shapely.box(0, 0, 100, 200), shapely.box(100, 0, 250, 200)])
    area, source = study_area(b.geometry, s.geometry.values, boundaries=bnd)
    assert source == "boundaries"
    assert shapely.equals(area, shapely.box(0, 0, 250, 200))


def test_study_area_empty_boundaries_fall_back_to_streets():
    b, s = grid_city(2, 2)
    area, source = study_area(
        b.geometry, s.geometry.values, boundaries=gpd.GeoSeries([])
    )
    assert source == "streets"
    assert shapely.equals(area, shapely.box(0, 0, 200, 200))


def test_study_area_from_streets_is_the_built_blocks():
    b, s = grid_city(3, 2)
    area, source = study_area(b.geometry, s.geometry.values)
    assert source == "streets"
    assert area.geom_type == "Polygon"
    assert area.area == pytest.approx(300 * 200)
    assert shapely.equals(area, shapely.box(0, 0, 300, 200))
    assert shapely.contains(area, b.geometry.values).all()


def test_study_area_fills_an_empty_block_surrounded_by_built_ones():
    b, s = grid_city(3, 3)
    centre = b["id"] == "b1-1-0"
    assert centre.sum() == 1
    area, _ = study_area(b.geometry[~centre], s.geometry.values)
    assert shapely.equals(area, shapely.box(0, 0, 300, 300))


def test_study_area_leaves_out_empty_blocks_at_the_edge():
    b, s = grid_city(3, 1)
    # only the west and middle blocks have buildings: the east block stays out
    keep = b["id"].isin(["b0-0-0", "b1-0-0"]).to_numpy()
    area, _ = study_area(b.geometry[keep], s.geometry.values)
    assert shapely.equals(area, shapely.box(0, 0, 200, 100))


def test_study_area_joins_blocks_across_a_dual_carriageway():
    # two built blocks 10 m apart (the two carriageways of one road)
    blds = gpd.GeoSeries([shapely.box(20, 20, 80, 80), shapely.box(120, 20, 180, 80)])
    lines = np.array(
        [LineString([(x, -50), (x, 150)]) for x in (0, 100, 110, 210)]
        + [LineString([(-50, y), (260, y)]) for y in (0, 100)]
    )
    area, _ = study_area(blds, lines)
    box = shapely.box(0, 0, 210, 100)
    # the corridor joins in; the closing leaves it a little short (< 0.5 m) at its ends
    assert shapely.difference(area, box).area == 0
    assert shapely.difference(box, area).area < 0.5 * 10 * 2
    assert shapely.covers(area, shapely.box(0, 0, 100, 100))
    assert shapely.covers(area, shapely.box(110, 0, 210, 100))
    assert shapely.covers(area, shapely.box(100, 1, 110, 99))
    # without the closing, the separate pieces are still joined, by the street
    # face between them (the corridor), exactly
    area, _ = study_area(blds, lines, closing=0)
    assert area.geom_type == "Polygon"
    assert area.area == pytest.approx(21000.0)


def test_study_area_joins_a_far_cluster_by_the_faces_between():
    # two built blocks 100 m apart, an empty block between them
    blds = gpd.GeoSeries([shapely.box(20, 20, 80, 80), shapely.box(220, 20, 280, 80)])
    lines = np.array(
        [LineString([(x, -50), (x, 150)]) for x in (0, 100, 200, 300)]
        + [LineString([(-50, y), (350, y)]) for y in (0, 100)]
    )
    area, _ = study_area(blds, lines, closing=0)
    assert area.geom_type == "Polygon"
    assert shapely.covers(area, shapely.box(0, 0, 300, 100))


def test_study_area_without_streets_is_the_widened_hull():
    blds = gpd.GeoSeries([shapely.box(0, 0, 10, 10), shapely.box(100, 0, 110, 10)])
    area, source = study_area(blds, np.array([], dtype=object), margin=20)
    assert source == "buildings"
    assert shapely.contains(area, blds.values).all()
    hull = shapely.convex_hull(shapely.union_all(blds.values)).buffer(20)
    assert area.area == pytest.approx(hull.area, rel=1e-5)  # noded on a 1 mm grid


# --- assign_by_overlap
TWO = _boxes((0, 0, 10, 10), (10, 0, 20, 10))


def test_assign_by_overlap_larger_overlap_wins():
    idx, share = assign_by_overlap(_boxes((8, 2, 14, 4), (1, 1, 11, 2)), TWO)
    assert idx.tolist() == [1, 0]
    assert share.tolist() == pytest.approx([8 / 12, 9 / 10])


def test_assign_by_overlap_inside_one_polygon():
    idx, share = assign_by_overlap(_boxes((12, 2, 14, 4), (1, 1, 2, 2)), TWO)
    assert idx.tolist() == [1, 0]
    assert share.tolist() == [1.0, 1.0]


def test_assign_by_overlap_tie_goes_to_the_lower_index():
    g = _boxes((8, 2, 12, 4))
    idx, share = assign_by_overlap(g, TWO)
    assert idx.tolist() == [0] and share.tolist() == [0.5]
    idx, share = assign_by_overlap(g, TWO[::-1].copy())
    assert idx.tolist() == [0] and share.tolist() == [0.5]


def test_assign_by_overlap_outside_goes_to_the_nearest():
    g = _boxes((30, 0, 32, 2), (-9, 0, -5, 3), (3, 20, 5, 22))
    idx, share = assign_by_overlap(g, TWO)
    assert idx.tolist() == [1, 0, 0]
    assert share.tolist() == [0.0, 0.0, 0.0]


def test_assign_by_overlap_touching_only_an_edge():
    idx, share = assign_by_overlap(_boxes((20, 2, 25, 4)), TWO)
    assert idx.tolist() == [1]
    assert share.tolist() == [0.0]


def test_assign_by_overlap_points():
    pts = shapely.points([(15, 5), (2, 2), (10, 5), (50, 5)])
    idx, share = assign_by_overlap(pts, TWO)
    # a point on the shared edge goes to the lower index; one outside to the nearest
    assert idx.tolist() == [1, 0, 0, 1]
    assert share.tolist() == [1.0, 1.0, 1.0, 0.0]


def test_assign_by_overlap_empty_inputs():
    idx, share = assign_by_overlap(np.array([], dtype=object), TWO)
    assert idx.shape == (0,) and share.shape == (0,)
    idx, share = assign_by_overlap(_boxes((0, 0, 1, 1)), np.array([], dtype=object))
    assert idx.tolist() == [-1] and share.tolist() == [0.0]


# --- make_blocks
#: one building per quarter of SQUARE, in the order SW, SE, NW, NE
QUARTER_BLDS = _boxes(
    (10, 10, 20, 20), (60, 10, 70, 20), (10, 60, 20, 70), (60, 60, 70, 70)
)


def test_make_blocks_orders_north_west_first():
    blocks = make_blocks(QUARTER_BLDS, CROSS, SQUARE)
    assert isinstance(blocks, Blocks)
    # NW, NE, SW, SE
    assert _bounds(blocks.geometry) == [
        (0, 50, 50, 100),
        (50, 50, 100, 100),
        (0, 0, 50, 50),
        (50, 0, 100, 50),
    ]
    assert blocks.building_block.tolist() == [2, 3, 0, 1]
    assert blocks.community.tolist() == [0, 0, 0, 0]
    assert blocks.compound.tolist() == [-1, -1, -1, -1]
    assert blocks.outside.tolist() == []
    assert blocks.loads(np.array([1.0, 2.0, 4.0, 8.0])).tolist() == [4.0, 8.0, 1.0, 2.0]


def test_make_blocks_merges_the_faces_inside_a_compound():
    compound = np.array([shapely.box(0, 0, 100, 50)])
    blocks = make_blocks(QUARTER_BLDS, CROSS, SQUARE, compounds=compound)
    assert len(blocks.geometry) == 3
    _assert_tiles(blocks.geometry, SQUARE)
    assert _bounds(blocks.geometry) == [
        (0, 50, 50, 100),
        (50, 50, 100, 100),
        (0, 0, 100, 50),
    ]
    assert shapely.equals(blocks.geometry[2], shapely.box(0, 0, 100, 50))
    assert blocks.building_block.tolist() == [2, 2, 0, 1]
    assert blocks.compound.tolist() == [0, 0, -1, -1]


def test_make_blocks_two_compounds():
    compounds = np.array([shapely.box(50, 0, 100, 100), shapely.box(0, 0, 50, 50)])
    blocks = make_blocks(QUARTER_BLDS, CROSS, SQUARE, compounds=compounds)
    # the east compound merges two faces, the south-west one holds one face
    assert len(blocks.geometry) == 3
    _assert_tiles(blocks.geometry, SQUARE)
    east = int(blocks.building_block[1])
    assert shapely.equals(blocks.geometry[east], shapely.box(50, 0, 100, 100))
    assert blocks.building_block[3] == east
    assert blocks.compound.tolist() == [1, 0, -1, 0]


def test_make_blocks_community_of_each_block():
    # one east-west street; the community boundary (x = 50) cuts the blocks too
    comms = np.array([shapely.box(0, 0, 50, 100), shapely.box(50, 0, 100, 100)])
    blocks = make_blocks(QUARTER_BLDS, CROSS[1:], SQUARE, communities=comms)
    assert _bounds(blocks.geometry) == [
        (0, 50, 50, 100),
        (50, 50, 100, 100),
        (0, 0, 50, 50),
        (50, 0, 100, 50),
    ]
    assert blocks.community.tolist() == [0, 1, 0, 1]
    assert blocks.building_block.tolist() == [2, 3, 0, 1]


def test_make_blocks_building_outside_the_area():
    blds = np.concatenate([QUARTER_BLDS, _boxes((120, 80, 130, 90), (95, 20, 105, 30))])
    blocks = make_blocks(blds, CROSS, SQUARE)
    # the first lies wholly outside (nearest block NE); the second straddles the edge
    assert blocks.outside.tolist() == [4]
    assert blocks.building_block.tolist() == [2, 3, 0, 1, 1, 3]


def test_make_blocks_keep_a_building_across_a_street_whole():
    # a building drawn across the street x=50 (6 m west, 2 m east of it): its
    # block takes the 2 m on the far side, the blocks still tile the square
    blds = np.concatenate([QUARTER_BLDS, _boxes((44, 60, 52, 70))])
    blocks = make_blocks(blds, CROSS, SQUARE)
    own = blocks.building_block[-1]
    assert blocks.geometry[own].covers(blds[-1])
    assert all(shapely.get_type_id(f) == 3 for f in blocks.geometry)
    assert sum(f.area for f in blocks.geometry) == pytest.approx(SQUARE.area)
    assert shapely.union_all(blocks.geometry).equals(SQUARE)
    areas = sorted(round(f.area) for f in blocks.geometry)
    assert areas == [2480, 2500, 2500, 2520]
    # given units are never changed
    units = _boxes((0, 0, 50, 100), (50, 0, 100, 100))
    given = make_blocks(blds, CROSS, SQUARE, given_units=units)
    assert _bounds(given.geometry) == [(0, 0, 50, 100), (50, 0, 100, 100)]


def test_keep_buildings_whole_across_a_path_and_what_it_leaves():
    """Pins keep_buildings_whole, which make_blocks runs (the part of a block a
    building crosses into goes with it): a change here changes the blocks, so
    the plans.  Through make_blocks: test_make_blocks_keep_a_building_across_a_street_whole."""
    from gridmap.units import keep_buildings_whole

    # a thin block (a path) between two wide ones and a building across all
    # three from the west one: the path keeps its larger part (north, 5 m²), the
    # part cut off (3 m²) goes with the building, and then the east part can too
    faces = _boxes((0, 0, 10, 10), (10, 0, 11, 10), (11, 0, 20, 10))
    b = _boxes((2, 3, 15, 5))
    out = keep_buildings_whole(faces, b, np.array([0]))
    assert out[0].covers(b[0])
    assert [round(f.area, 6) for f in out] == [113, 5, 82]
    assert _bounds(out[1:2]) == [(10, 5, 11, 10)]
    # a building of the path in the part cut off: the path stays whole, and the
    # east part, which would not touch the west block, stays too
    b3 = np.concatenate([b, _boxes((10.2, 0.5, 10.8, 1.5))])
    out = keep_buildings_whole(faces, b3, np.array([0, 1]))
    assert [round(f.area, 6) for f in out] == [100, 10, 90]
    # a part that overlaps another building of that block stays too
    faces = _boxes((0, 0, 10, 10), (10, 0, 20, 10))
    b2 = _boxes((2, 4, 15, 6), (13, 5, 16, 8))
    out = keep_buildings_whole(faces, b2, np.array([0, 1]))
    assert out[0].area == pytest.approx(100) and out[1].area == pytest.approx(100)
    # without that building the part moves
    out = keep_buildings_whole(faces, b2[:1], np.array([0]))
    assert out[0].area == pytest.approx(110) and out[0].covers(b2[0])


def test_make_blocks_keep_a_community_boundary_as_drawn():
    # the street x=50 is also the boundary of two communities: a building across
    # it stays split between them (its block is the west one, by overlap)
    blds = np.concatenate([QUARTER_BLDS, _boxes((44, 60, 52, 70))])
    west, east = shapely.box(0, 0, 50, 100), shapely.box(50, 0, 100, 100)
    blocks = make_blocks(blds, CROSS, SQUARE, communities=np.array([west, east]))
    assert sorted(round(f.area) for f in blocks.geometry) == [2500] * 4
    assert not blocks.geometry[blocks.building_block[-1]].covers(blds[-1])
    # one community over both sides: the building is whole in its block
    blocks = make_blocks(blds, CROSS, SQUARE, communities=np.array([SQUARE]))
    assert blocks.geometry[blocks.building_block[-1]].covers(blds[-1])


def test_keep_buildings_whole_whatever_the_order_of_the_buildings():
    """Pins keep_buildings_whole, which make_blocks runs (the part of a block a
    building crosses into goes with it): a change here changes the blocks, so
    the plans.  Through make_blocks: test_make_blocks_keep_a_building_across_a_street_whole."""
    from gridmap.units import keep_buildings_whole

    # b1 crosses a path from the west block; b2, of the east block, pokes into the
    # part of the path b1 cuts off. b2's part moves first, whatever the order, and
    # then b1's: both whole, the same blocks either way
    faces = _boxes((0, 0, 10, 10), (10, 0, 11, 10), (11, 0, 20, 10))
    b = _boxes((2, 3, 15, 5), (10.5, 0.5, 14, 1.5))
    one = keep_buildings_whole(faces, b, np.array([0, 2]))
    two = keep_buildings_whole(faces, b[::-1], np.array([2, 0]))
    assert one[0].covers(b[0]) and one[2].covers(b[1])
    assert [f.normalize().wkt for f in one] == [f.normalize().wkt for f in two]


def test_keep_buildings_whole_tiles_exactly_when_rotated_far_from_the_origin():
    """Pins keep_buildings_whole, which make_blocks runs (the part of a block a
    building crosses into goes with it): a change here changes the blocks, so
    the plans.  Through make_blocks: test_make_blocks_keep_a_building_across_a_street_whole."""
    import shapely.affinity as aff

    from gridmap.units import keep_buildings_whole

    def place(g):
        return aff.translate(aff.rotate(g, 17, origin=(0, 0)), 351234.5678, 3456789.1234)

    # three blocks in a row, a path between them, buildings across the streets
    faces = np.array([place(f) for f in _boxes((0, 0, 10, 10), (10, 0, 11, 10),
                                                (11, 0, 20, 10))])
    faces = shapely.set_precision(faces, 1e-3)  # street blocks are on the mm grid
    b = np.array([place(g) for g in _boxes((2, 3, 15, 5), (12, 6, 18, 9.9),
                                            (8, 7, 10.4, 8))])
    out = keep_buildings_whole(faces, b, np.array([0, 2, 0]))
    whole = shapely.union_all(faces)
    assert shapely.union_all(out).symmetric_difference(whole).area < 1e-6
    assert sum(f.area for f in out) == pytest.approx(whole.area, abs=1e-6)
    assert all(shapely.get_type_id(f) == 3 for f in out)
    assert out[0].buffer(1e-3).covers(b[0]) and out[0].buffer(1e-3).covers(b[2])


def test_keep_buildings_whole_takes_a_part_beyond_the_next_block_too():
    """Pins keep_buildings_whole, which make_blocks runs (the part of a block a
    building crosses into goes with it): a change here changes the blocks, so
    the plans.  Through make_blocks: test_make_blocks_keep_a_building_across_a_street_whole."""
    from gridmap.units import keep_buildings_whole

    # an L-shaped building from block 0 through block 2 into block 1: the part in
    # block 1 touches block 0 only once the part in block 2 has joined it
    faces = _boxes((0, 0, 10, 10), (10, 10, 20, 20), (10, 0, 20, 10), (0, 10, 10, 20))
    b = np.array([shapely.union(shapely.box(2, 4, 14, 8), shapely.box(10, 8, 12, 14))])
    out = keep_buildings_whole(faces, b, np.array([0]))
    assert out[0].covers(b[0])
    assert [round(f.area) for f in out] == [128, 92, 80, 100]
    assert all(shapely.get_type_id(f) == 3 for f in out)


def test_make_blocks_given_units_are_taken_as_they_are():
    units = _boxes((0, 0, 30, 100), (30, 0, 100, 100))
    blocks = make_blocks(QUARTER_BLDS, CROSS, SQUARE, given_units=units)
    assert _bounds(blocks.geometry) == [(0, 0, 30, 100), (30, 0, 100, 100)]
    assert blocks.building_block.tolist() == [0, 1, 0, 1]


def test_block_table_sums_per_block():
    blocks = make_blocks(QUARTER_BLDS[[0, 1, 3]], CROSS, SQUARE)
    table = block_table(blocks, pd.DataFrame({"households": [10.0, 20.0, 40.0]}))
    assert table["households"].tolist() == [0.0, 40.0, 10.0, 20.0]
    assert table["n_buildings"].tolist() == [0, 1, 1, 1]


# --- tessellate
def _check_cells(block, blds, groups, cell_of, cells) -> None:
    """Cells tile the block, one polygon per group, each building in its own."""
    n_groups = len(np.unique(groups))
    assert len(cells) == n_groups
    assert shapely.get_type_id(cells).tolist() == [3] * n_groups  # single polygons
    _assert_tiles(cells, block)
    assert cell_of.shape == (len(blds),)
    # buildings of one group share a cell, different groups have different cells
    for g in np.unique(groups):
        assert len(set(cell_of[groups == g].tolist())) == 1
    assert len(set(cell_of.tolist())) == n_groups
    # no cell cuts through a building
    inside = shapely.area(shapely.intersection(blds, cells[cell_of]))
    np.testing.assert_allclose(inside, shapely.area(blds), rtol=1e-9)


def test_tessellate_one_group_is_the_whole_block():
    blds = _boxes((10, 10, 20, 20), (60, 60, 70, 70))
    cell_of, cells = tessellate(SQUARE, blds, np.array([4, 4]))
    assert cell_of.tolist() == [0, 0]
    assert len(cells) == 1 and cells[0].equals(SQUARE)


def test_tessellate_two_buildings_side_by_side_cut_midway():
    blds = _boxes((20, 20, 40, 80), (60, 20, 80, 80))
    cell_of, cells = tessellate(SQUARE, blds, np.array([0, 1]))
    _check_cells(SQUARE, blds, np.array([0, 1]), cell_of, cells)
    assert cell_of.tolist() == [0, 1]
    assert shapely.equals(cells[0], shapely.box(0, 0, 50, 100))
    assert shapely.equals(cells[1], shapely.box(50, 0, 100, 100))


IRREGULAR = _boxes(
    (12.3, 11.7, 38.1, 41.9),
    (61.2, 8.8, 88.4, 37.3),
    (9.6, 57.2, 41.1, 87.5),
    (63.3, 61.9, 92.2, 90.4),
)


def test_tessellate_four_buildings_in_a_square():
    groups = np.arange(4)
    cell_of, cells = tessellate(SQUARE, IRREGULAR, groups)
    _check_cells(SQUARE, IRREGULAR, groups, cell_of, cells)
    # each cell holds the corner of the block next to its building
    corners = shapely.points([(1, 1), (99, 1), (1, 99), (99, 99)])
    assert shapely.contains(cells[cell_of], corners).all()


def test_tessellate_compound_groups_share_one_cell():
    groups = np.array([-1, 5, -1, 7])
    cell_of, cells = tessellate(SQUARE, IRREGULAR, groups)
    _check_cells(SQUARE, IRREGULAR, groups, cell_of, cells)
    assert len(cells) == 3
    assert cell_of[0] == cell_of[2]
    assert cell_of[1] != cell_of[3] and cell_of[0] not in (cell_of[1], cell_of[3])
    # cells are numbered by sorted group label
    assert cell_of.tolist() == [0, 1, 0, 2]


def test_tessellate_buildings_sharing_a_wall():
    block = shapely.box(0, 0, 100, 50)
    blds = _boxes((10, 10, 30, 40), (30, 10, 50, 40), (60, 5, 90, 45))
    groups = np.arange(3)
    cell_of, cells = tessellate(block, blds, groups)
    _check_cells(block, blds, groups, cell_of, cells)
    # the cut between the two runs along their common wall
    shared = shapely.intersection(
        shapely.boundary(cells[cell_of[0]]), shapely.boundary(cells[cell_of[1]])
    )
    wall = LineString([(30, 10), (30, 40)])
    assert shapely.covers(shared.buffer(1e-6), wall)


def test_tessellate_buildings_sharing_a_wall_offset():
    block = shapely.box(0, 0, 100, 50)
    blds = _boxes((10, 10, 30, 40), (30, 13.3, 50, 37.7), (60, 5, 90, 45))
    groups = np.arange(3)
    cell_of, cells = tessellate(block, blds, groups)
    _check_cells(block, blds, groups, cell_of, cells)


def test_tessellate_l_shaped_block():
    blds = _boxes(
        (61.3, 6.2, 92.7, 31.1), (6.1, 61.4, 31.8, 92.3), (7.2, 6.6, 29.4, 33.1)
    )
    groups = np.arange(3)
    cell_of, cells = tessellate(L_BLOCK, blds, groups)
    _check_cells(L_BLOCK, blds, groups, cell_of, cells)
    # each arm's end belongs to the building in that arm
    assert shapely.contains(cells[cell_of[0]], shapely.Point(99, 1))
    assert shapely.contains(cells[cell_of[1]], shapely.Point(1, 99))


def test_tessellate_u_shaped_block_gives_cut_off_pieces_to_a_neighbour():
    # the west building's Voronoi region reaches across the notch into the top
    # of the east arm; that piece is cut off from it and goes to the east cell
    blds = _boxes((5.3, 71.33, 25.1, 95.7), (75.4, 3.1, 95.2, 9.43))
    groups = np.arange(2)
    cell_of, cells = tessellate(U_BLOCK, blds, groups)
    _check_cells(U_BLOCK, blds, groups, cell_of, cells)
    west, east = cells[cell_of[0]], cells[cell_of[1]]
    assert shapely.contains(east, shapely.Point(85, 95))
    assert shapely.contains(west, shapely.Point(15, 40))
    assert shapely.contains(east, shapely.Point(15, 5))  # nearer the east building


def test_tessellate_building_mostly_outside_the_block_gets_a_cell_of_its_own():
    # the third building's own representative point lies outside the block; its
    # part inside still gets a cell of its own (it used to join the nearest
    # cell, and in Monaco a stadium's part then went to another cell than it)
    blds = _boxes(
        (10.3, 10.2, 30.7, 30.1),
        (60.4, 60.2, 80.1, 80.9),
        (91.37, 20.23, 131.71, 28.93),
    )
    assert not SQUARE.contains(shapely.point_on_surface(blds[2]))
    cell_of, cells = tessellate(SQUARE, blds, np.arange(3))
    assert cell_of.tolist() == [0, 1, 2]
    assert len(cells) == 3
    assert shapely.get_type_id(cells).tolist() == [3, 3, 3]
    _assert_tiles(cells, SQUARE)
    inside = shapely.area(shapely.intersection(blds, cells[cell_of]))
    np.testing.assert_allclose(
        inside, shapely.area(shapely.intersection(blds, SQUARE)), rtol=1e-9
    )


# Layouts on which GEOS' Voronoi diagram of the sample points comes out corrupt
# (self-overlapping cells): tessellate uses it unchecked and then crashes in
# union_all, or returns overlapping cells, gaps, and buildings cut in two.
_GEOS_VORONOI_BUG = (
    "BUG: tessellate (units.py:289-305) trusts shapely.voronoi_polygons, "
    "whose output is "
    "corrupt (overlapping/invalid cells) for regular sample points: it then raises "
    "GEOSException in union_all or returns overlapping cells / gaps"
)


@pytest.mark.parametrize(
    "block,bounds",
    [
        pytest.param(
            SQUARE,
            [(10, 10, 40, 40), (60, 10, 90, 40), (10, 60, 40, 90), (60, 60, 90, 90)],
            id="2x2-equal-buildings-crash",

        ),
        pytest.param(
            SQUARE,
            [(5, 60, 30, 90), (5, 5, 30, 30)],
            id="two-stacked-overlap",

        ),
        pytest.param(
            U_BLOCK,
            [(6, 71.37, 24, 95), (76, 3, 95, 9.37)],
            id="u-block-gap",

        ),
        pytest.param(
            L_BLOCK,
            [(60, 5, 90, 30), (5, 60, 30, 90), (5, 5, 30, 30)],
            id="l-block-crash",

        ),
        pytest.param(
            shapely.affinity.translate(L_BLOCK, 354000, 3456000),
            [
                (354060, 3456005, 354090, 3456030),
                (354005, 3456060, 354030, 3456090),
                (354005, 3456005, 354030, 3456030),
            ],
            id="l-block-utm-coordinates-crash",

        ),
        pytest.param(
            SQUARE,
            [(10, 10, 90, 20), (10, 30, 90, 40), (10, 50, 90, 60), (10, 70, 90, 80)],
            id="four-slabs",
        ),
    ],
)
def test_tessellate_regular_layouts(block, bounds):
    blds = _boxes(*bounds)
    groups = np.arange(len(blds))
    cell_of, cells = tessellate(block, blds, groups)
    _check_cells(block, blds, groups, cell_of, cells)


# --- build_units
def _two_block_case():
    """West block (x < 50) with three buildings, east block with two, cut by x = 50."""
    blds = _boxes(
        (5.3, 6.1, 21.7, 38.2),
        (27.1, 55.4, 44.6, 91.3),
        (6.7, 61.7, 19.1, 93.9),  # west
        (61.3, 12.2, 88.9, 41.4),
        (58.7, 62.9, 91.1, 87.3),  # east
    )
    streets = np.array([LineString([(50, -10), (50, 110)])])
    return blds, streets


def test_build_units_unsplit_blocks_are_the_units():
    blds, streets = _two_block_case()
    blocks = make_blocks(blds, streets, SQUARE)
    units, bunit = build_units(blocks, blds, np.array([False, False]))
    assert len(units) == 2
    assert units["block"].tolist() == [0, 1]
    assert units["split"].tolist() == [False, False]
    assert units["community"].tolist() == [0, 0]
    assert bunit.tolist() == blocks.building_block.tolist() == [0, 0, 0, 1, 1]
    assert shapely.equals(units.geometry.iloc[0], shapely.box(0, 0, 50, 100))
    _assert_tiles(units.geometry.values, SQUARE)


def test_build_units_split_block_gives_one_cell_per_building():
    blds, streets = _two_block_case()
    blocks = make_blocks(blds, streets, SQUARE)
    assert blocks.building_block.tolist() == [0, 0, 0, 1, 1]
    units, bunit = build_units(blocks, blds, np.array([True, False]))
    assert len(units) == 4
    assert units["block"].tolist() == [0, 0, 0, 1]
    assert units["split"].tolist() == [True, True, True, False]
    # the west buildings get a cell each, the east ones share their block
    assert bunit.tolist() == [0, 1, 2, 3, 3]
    _assert_tiles(units.geometry.values, SQUARE)
    inside = shapely.area(shapely.intersection(blds, units.geometry.values[bunit]))
    np.testing.assert_allclose(inside, shapely.area(blds), rtol=1e-9)
    # the cells of the west block tile it
    _assert_tiles(units.geometry.values[:3], shapely.box(0, 0, 50, 100))


def test_build_units_split_block_keeps_a_compound_whole():
    blds, streets = _two_block_case()
    compound = np.array([shapely.box(1, 50, 49, 99)])  # the two northern west buildings
    blocks = make_blocks(blds, streets, SQUARE, compounds=compound)
    # the compound holds no whole face, so the blocks stay as they were
    assert len(blocks.geometry) == 2
    assert blocks.compound.tolist() == [-1, 0, 0, -1, -1]
    units, bunit = build_units(blocks, blds, np.array([True, True]))
    assert len(units) == 4
    assert bunit[1] == bunit[2] != bunit[0]
    assert bunit[3] != bunit[4]
    assert bunit.tolist() == [
        1,
        0,
        0,
        2,
        3,
    ]  # cells in order of group label: compound first
    _assert_tiles(units.geometry.values, SQUARE)


def test_build_units_block_with_one_building_stays_whole_an_empty_one_gets_sectors():
    blds = _boxes((10, 10, 20, 20))
    blocks = make_blocks(blds, CROSS, SQUARE)
    n = np.bincount(blocks.building_block, minlength=4)
    assert n.tolist() == [0, 0, 1, 0]
    units, bunit = build_units(blocks, blds, np.array([True, True, True, True]))
    # the block of the building is one unit; each empty quarter touches two others
    # along 50 m and gets a sector facing each
    assert units["block"].tolist() == [0, 0, 1, 1, 2, 3, 3]
    assert bunit.tolist() == [4]
    _assert_tiles(units.geometry.values, SQUARE)
    assert shapely.equals(units.geometry.values[4], blocks.geometry[2])


def test_build_units_carry_the_community():
    blds, _ = _two_block_case()
    comms = np.array([shapely.box(0, 0, 50, 100), shapely.box(50, 0, 100, 100)])
    blocks = make_blocks(blds, np.array([], dtype=object), SQUARE, communities=comms)
    units, bunit = build_units(blocks, blds, np.array([False, True]))
    assert units["community"].tolist() == [0, 1, 1]
    assert units["block"].tolist() == [0, 1, 1]
    assert bunit[:3].tolist() == [0, 0, 0]
    assert sorted(bunit[3:].tolist()) == [1, 2]
    _assert_tiles(units.geometry.values, SQUARE)


def test_build_units_on_a_grid_city():
    b, s = grid_city(2, 2, per_block=3)
    blds = b.geometry.values
    area = shapely.box(0, 0, 200, 200)
    blocks = make_blocks(blds, s.geometry.values, area)
    assert len(blocks.geometry) == 4
    assert np.bincount(blocks.building_block).tolist() == [3, 3, 3, 3]
    split = np.array([True, False, True, False])
    units, bunit = build_units(blocks, blds, split)
    assert len(units) == 3 + 1 + 3 + 1
    assert np.bincount(bunit).tolist() == [1, 1, 1, 3, 1, 1, 1, 3]
    _assert_tiles(units.geometry.values, area)
    inside = shapely.area(shapely.intersection(blds, units.geometry.values[bunit]))
    np.testing.assert_allclose(inside, shapely.area(blds), rtol=1e-9)


# --- sectors of an empty block
def test_sectors_one_per_unit_around_each_facing_its_unit():
    around = _boxes((-50, 0, 0, 100), (100, 0, 150, 100), (0, 100, 100, 130))
    parts = sectors(SQUARE, around)
    assert len(parts) == 3
    _assert_tiles(parts, SQUARE)
    assert (shapely.get_type_id(parts) == 3).all()
    # each sector faces one unit along most of that unit's side: the west and east
    # sides (100 m) and the north side
    shared = np.array([[shapely.length(shapely.intersection(shapely.boundary(p),
                                                            shapely.boundary(u)))
                        for u in around] for p in parts])
    assert sorted(shared.argmax(axis=1).tolist()) == [0, 1, 2]
    assert (shared.max(axis=1) > 60).all()


def test_sectors_a_unit_at_a_corner_gets_none():
    # the third unit touches the square along 2 m only
    around = _boxes((-50, 0, 0, 100), (100, 0, 150, 100), (49, 100, 51, 130))
    parts = sectors(SQUARE, around)
    assert len(parts) == 2
    _assert_tiles(parts, SQUARE)


def test_sectors_facing_one_unit_is_the_block():
    parts = sectors(SQUARE, _boxes((-50, 0, 0, 100)))
    assert len(parts) == 1 and shapely.equals(parts[0], SQUARE)


def test_build_units_splits_an_empty_block_into_sectors():
    # west block with a building | empty middle block | east block with a building
    blds = _boxes((10, 20, 20, 80), (80, 20, 90, 80))
    streets = np.array([LineString([(30, -10), (30, 110)]), LineString([(70, -10), (70, 110)])])
    blocks = make_blocks(blds, streets, SQUARE)
    assert np.bincount(blocks.building_block, minlength=3).tolist() == [1, 0, 1]
    cache: dict = {}
    units, bunit = build_units(blocks, blds, np.array([False, True, False]), cache=cache)
    assert units["block"].tolist() == [0, 1, 1, 2]
    assert units["split"].tolist() == [False, True, True, False]
    # the buildings after the sectors moved up by one
    assert bunit.tolist() == [0, 3]
    _assert_tiles(units.geometry.values, SQUARE)
    middle = shapely.box(30, 0, 70, 100)
    _assert_tiles(units.geometry.values[1:3], middle)
    # each sector faces its own side
    xs = sorted(shapely.get_x(shapely.centroid(units.geometry.values[1:3])).tolist())
    assert xs[0] < 50 < xs[1]
    # the sectors are made once: a second call gives them back as they were
    again, _ = build_units(blocks, blds, np.array([True, True, True]), cache=cache)
    got = again.geometry.values[again["block"].to_numpy() == 1]
    assert all(shapely.equals(a, b) for a, b in zip(got, units.geometry.values[1:3]))


def _row_block():
    # a block 200 m x 120 m, four buildings in a row across its middle, each
    # within 2 m of the next (or of the block's edge): the land north and south
    # of the row is farther than 10 m from every building
    block = shapely.box(0, 0, 200, 120)
    houses = np.array([shapely.box(x0, 55, x0 + 46, 65) for x0 in (2, 52, 102, 152)])
    return block, houses


def test_open_land_cuts_cells_to_plots_and_the_land_beyond_into_sectors():
    block, houses = _row_block()
    cell_of, cells = tessellate(block, houses, np.arange(4))
    plots, land = open_land(block, cells, houses, cell_of)
    assert len(plots) == 4
    # each plot holds its building and reaches 10 m beyond it (the row's ends:
    # to the block's edge), no farther
    for k in range(4):
        assert plots[k].contains(houses[k])
        assert plots[k].bounds[1] == pytest.approx(45.0, abs=0.01)
        assert plots[k].bounds[3] == pytest.approx(75.0, abs=0.01)
    # the strips north and south are cut into one sector per plot each side
    assert len(land) == 8
    assert not shapely.intersects(land, shapely.union_all(houses)).any()
    north = sorted(round(p.centroid.x) for p in land if p.centroid.y > 60)
    assert len(north) == 4 and north[0] < 50 < north[1] < 100 < north[2] < 150 < north[3]
    for sec in land:  # every sector faces a plot along an edge
        assert max(shapely.length(shapely.intersection(sec.boundary, plots))) > 10
    # together they tile the block
    pieces = np.concatenate([plots, land])
    assert abs(shapely.area(pieces).sum() - block.area) < 1e-6
    assert abs(shapely.union_all(pieces).area - block.area) < 1e-6


def test_open_land_leaves_a_block_without_far_land_as_it_was():
    block = shapely.box(0, 0, 60, 30)
    houses = np.array([shapely.box(5, 5, 25, 25), shapely.box(35, 5, 55, 25)])
    cell_of, cells = tessellate(block, houses, np.arange(2))
    plots, land = open_land(block, cells, houses, cell_of)
    assert len(land) == 0
    assert all(p.equals(c) for p, c in zip(plots, cells, strict=True))


def test_build_units_opens_only_the_blocks_it_is_told_to():
    block, houses = _row_block()
    blocks = Blocks(np.array([block, shapely.box(200, 0, 400, 120)], dtype=object),
                    np.zeros(4, dtype=np.int64), np.zeros(2, dtype=np.int64),
                    np.full(4, -1, dtype=np.int64))
    split = np.array([True, False])
    units, bu = build_units(blocks, houses, split)
    assert len(units) == 5 and bu.tolist() == [0, 1, 2, 3]
    units, bu = build_units(blocks, houses, split, opened=np.array([True, False]))
    # four plots (the buildings keep their units), eight sectors, the other block
    assert len(units) == 13 and bu.tolist() == [0, 1, 2, 3]
    assert units["block"].tolist() == [0] * 12 + [1]
    assert abs(units.area.sum() - 2 * block.area) < 1e-3



@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(2, 170), st.floats(2, 90), st.floats(4, 25),
                          st.floats(4, 25)), min_size=2, max_size=8),
       st.floats(4.0, 20.0))
def test_open_land_tiles_the_block_and_keeps_every_building_in_its_plot(boxes, reach):
    block = shapely.box(0, 0, 200, 120)
    houses = np.array([shapely.box(x, y, min(x + w, 198), min(y + h, 118))
                       for x, y, w, h in boxes])
    # buildings do not overlap: drop any that meets one kept before it
    keep = []
    for k, h in enumerate(houses):
        if not any(h.buffer(0.5).intersects(houses[j]) for j in keep):
            keep.append(k)
    houses = houses[keep]
    cell_of, cells = tessellate(block, houses, np.arange(len(houses)))
    plots, land = open_land(block, cells, houses, cell_of, reach=reach)
    assert len(plots) == len(cells)
    pieces = np.concatenate([plots, land])
    assert (shapely.get_type_id(pieces) == 3).all()
    assert abs(shapely.area(pieces).sum() - block.area) < 1e-6 * block.area
    assert abs(shapely.union_all(pieces).area - block.area) < 1e-6 * block.area
    # every building wholly in its own plot; the open land holds none
    for k, h in enumerate(houses):
        assert shapely.intersection(plots[cell_of[k]], h).area >= h.area * (1 - 1e-6)
    if len(land):
        assert shapely.intersection(shapely.union_all(land),
                                    shapely.union_all(houses)).area < 1e-6


def test_a_unit_without_buildings_in_pieces_becomes_one_unit_per_piece():
    from gridmap.units import _one_piece_each

    square = shapely.box(0, 0, 10, 10)
    apart = shapely.MultiPolygon([shapely.box(20, 0, 30, 10), shapely.box(40, 0, 41, 1)])
    held = shapely.MultiPolygon([shapely.box(50, 0, 60, 10), shapely.box(70, 0, 71, 1)])
    geoms = np.array([square, apart, held], dtype=object)
    # buildings in units 0 and 2: a unit holding a building is kept as it is
    geoms2, block, building_unit = _one_piece_each(geoms, np.array([5, 6, 7]),
                                                   np.array([0, 2, 2, -1]))
    assert [g.geom_type for g in geoms2] == ["Polygon", "Polygon", "Polygon",
                                             "MultiPolygon"]
    assert shapely.area(geoms2).tolist() == [100.0, 100.0, 1.0, 101.0]  # largest first
    assert block.tolist() == [5, 6, 6, 7]
    assert building_unit.tolist() == [0, 3, 3, -1]
