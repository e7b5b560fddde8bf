"""Stage 7, assemble (gridmap.assemble): grids dissolved from their units, one
polygon each, sealed, counted, coded west→east north→south and numbered 1..n
by code."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from conftest import CRS, grid_city, run_stages

from gridmap.assemble import _seal, assemble, dissolve_units
from gridmap.balance import Balanced, balance
from gridmap.codes import grid_code
from gridmap.partition import GridAssignment


def _assemble(st, balanced, division_code="310101"):
    return assemble(balanced, st.communities, st.counts, area=st.area, carve=st.carve,
                    division_code=division_code, has_buildings=True,
                    work_crs=st.layers.work_crs)


def _by_hand(st, labels, n_grids, community=0):
    """A Balanced of the units of ``st`` with the grid of every unit given."""
    a = GridAssignment(np.asarray(labels, dtype=np.int64))
    for _ in range(n_grids):
        a.new_grid(community)
    a.mean[community] = float(st.counts.weight.sum()) / n_grids
    return Balanced(a, st.units, [], 0)


def _centres(geoms):
    return shapely.get_coordinates(shapely.centroid(np.asarray(geoms)))


def _check_counts_and_cover(st, out):
    """Each grid's households are those of its buildings; the grids tile the area."""
    grids = out.grids
    hh = st.counts.table["households"].to_numpy()
    per_id = np.bincount(out.building_grid_id, weights=hh, minlength=len(grids) + 1)[1:]
    assert grids["households"].tolist() == per_id.tolist()
    assert grids["n_buildings"].tolist() == np.bincount(
        out.building_grid_id, minlength=len(grids) + 1)[1:].tolist()
    union = shapely.union_all(grids.geometry.values)
    assert union.area == pytest.approx(st.area.area)
    assert grids.geometry.area.sum() == pytest.approx(union.area)
    # the grid id of every building is that of its unit's grid
    assert (out.building_grid_id == out.new_id[out.labels[st.units.building_unit]]).all()


def test_codes_run_west_to_east_north_to_south_and_ids_follow_the_codes():
    b, s = grid_city(4, 4)
    st = run_stages(b, s, target=400, tolerance=0.1)
    xy = _centres(st.units.table.geometry.values)
    west, north = xy[:, 0] < 200, xy[:, 1] > 200
    # grid numbers that say nothing of where the grids are: SE 0, NW 1, SW 2, NE 3
    labels = np.select([~west & ~north, west & north, west & ~north], [0, 1, 2], 3)
    out = _assemble(st, _by_hand(st, labels, 4))
    grids = out.grids
    assert grids["grid_id"].tolist() == [1, 2, 3, 4]
    assert grids["code"].tolist() == [grid_code("310101", 0, 1, k) for k in (1, 2, 3, 4)]
    assert grids["code"].tolist() == ["310101000001001", "310101000001002",
                                      "310101000001003", "310101000001004"]
    # rows in code order: NW, NE, SW, SE
    c = _centres(grids.geometry.values)
    assert c.tolist() == [[100.0, 300.0], [300.0, 300.0], [100.0, 100.0], [300.0, 100.0]]
    assert out.order.tolist() == [1, 3, 2, 0]
    assert out.new_id.tolist() == [4, 1, 3, 2]
    assert grids["households"].tolist() == [400.0] * 4
    assert grids.geometry.geom_type.tolist() == ["Polygon"] * 4
    assert out.n_units.tolist() == [4, 4, 4, 4]
    assert grids["kind"].tolist() == ["community"] * 4
    assert grids["community_id"].tolist() == [1] * 4
    assert grids.crs.equals(CRS) and out.notes == []
    _check_counts_and_cover(st, out)


def test_communities_are_numbered_within_their_sorted_subdistricts():
    b, s = grid_city(6, 2)  # three strips of 2 × 2 blocks, 100 households each
    bnd = gpd.GeoDataFrame(
        {"community_id": ["A", "B", "C"], "subdistrict_id": ["S1", "S2", "S1"]},
        geometry=[shapely.box(x, 0, x + 200, 200) for x in (0, 200, 400)], crs=CRS)
    st = run_stages(b, s, boundaries=bnd, target=200, tolerance=0.1)
    balanced = balance(st.units, st.maker, st.communities, st.options.search,
                       carve_kind=st.carve.kind, cache={})
    out = _assemble(st, balanced, division_code="310105")
    grids = out.grids
    # sub-districts by sorted id (S1 = 001, S2 = 002); communities in the layer's
    # order within their sub-district (A = 001, C = 002; B = 001 of S2)
    prefix = {"A": "310105001001", "B": "310105002001", "C": "310105001002"}
    for cid, code in zip(grids["community_id"], grids["code"], strict=True):
        assert code[:12] == prefix[cid]
    assert grids["community_id"].tolist() == ["A", "A", "C", "C", "B", "B"]
    assert grids["subdistrict_id"].tolist() == ["S1", "S1", "S1", "S1", "S2", "S2"]
    assert grids["grid_id"].tolist() == [1, 2, 3, 4, 5, 6]
    assert [c[12:] for c in grids["code"]] == ["001", "002"] * 3
    # within a community, 001 is the north (or west) one of its two grids
    c = _centres(grids.geometry.values)
    for k in (0, 2, 4):
        (x1, y1), (x2, y2) = c[k], c[k + 1]
        assert y1 > y2 or (y1 == y2 and x1 < x2)
    assert grids["households"].tolist() == [200.0] * 6
    _check_counts_and_cover(st, out)


def test_a_grid_whose_units_meet_only_at_a_corner_becomes_one_polygon():
    b, s = grid_city(2, 2)
    st = run_stages(b, s, target=200, tolerance=0.1)
    xy = _centres(st.units.table.geometry.values)
    # a chequerboard: each grid two blocks that touch at the middle point only
    labels = np.where((xy[:, 0] < 100) == (xy[:, 1] < 100), 0, 1)
    assert shapely.union_all(st.units.table.geometry.values[labels == 0]).geom_type == \
        "MultiPolygon"
    out = _assemble(st, _by_hand(st, labels, 2))
    assert out.grids.geometry.geom_type.tolist() == ["Polygon", "Polygon"]
    assert out.labels.tolist() != labels.tolist()
    assert out.notes == ["2 unit(s) touching the rest of their grid only at a corner were "
                         "moved to the neighbouring grid they share an edge with."]
    assert out.n_units.sum() == 4
    _check_counts_and_cover(st, out)


def test_assemble_leaves_the_assignment_it_is_given_as_it_was():
    b, s = grid_city(2, 2)
    st = run_stages(b, s, target=200, tolerance=0.1)
    xy = _centres(st.units.table.geometry.values)
    labels = np.where((xy[:, 0] < 100) == (xy[:, 1] < 100), 0, 1)
    given = _by_hand(st, labels, 2)
    _assemble(st, given)
    assert given.assignment.labels.tolist() == labels.tolist()


def test_grids_with_a_hairline_crack_between_them_are_sealed():
    """Pins the algorithm that seals grids (one noded arrangement of their edges):
    a change here changes the plans' geometry."""
    # two grids whose shared edge differs by 2 mm in the middle: a thin triangle
    # between them that no grid covers; sealed, they share the edge exactly
    a = shapely.box(0, 0, 10, 10)
    b = shapely.Polygon([(10, 0), (20, 0), (20, 10), (10, 10), (10.002, 5)])
    # as drawn they meet only at two corners
    assert shapely.union_all([a, b]).geom_type == "MultiPolygon"
    out = _seal(np.array([a, b], dtype=object))
    union = shapely.union_all(out)
    assert union.geom_type == "Polygon" and not union.interiors
    assert union.area == pytest.approx(200.0)
    assert float(shapely.area(out).sum()) == pytest.approx(union.area)
    assert shapely.intersection(out[0], out[1]).length == pytest.approx(10.0, abs=1e-2)


def test_a_crack_open_to_the_area_outline_is_sealed():
    """Pins the sealing against the area's outline (see above): a change here
    changes the plans' geometry."""
    # a 2 mm gap along the whole shared edge, open at both ends: sealed against
    # the area's outline, the two grids cover the area
    out = _seal(np.array([shapely.box(0, 0, 9.998, 10), shapely.box(10, 0, 20, 10)],
                         dtype=object), area=shapely.box(0, 0, 20, 10))
    union = shapely.union_all(out)
    assert union.geom_type == "Polygon" and union.area == pytest.approx(200.0)
    assert float(shapely.area(out).sum()) == pytest.approx(200.0)


def test_units_are_dissolved_into_one_polygon_per_grid_with_or_without_shared_vertices():
    """Units meeting vertex for vertex take the coverage union, exact (no snapping);
    a seam where they do not (a hair's gap), or a grid round a hole, takes the
    overlay on a millimetre grid; every grid is one polygon of its units' area."""
    box = shapely.box
    x = 0.0004  # off the millimetre grid: the overlay would snap it to 0
    units = np.array([
        box(x, 0, 1, 1), box(1, 0, 2, 1),            # grid 0: a shared edge, same vertices
        box(0, 1, 1, 2), box(1, 1.0000001, 2, 2),    # grid 1: a seam of 0.1 µm between them
        shapely.Polygon([(3, 0), (6, 0), (6, 3), (3, 3)], [[(4, 1), (5, 1), (5, 2), (4, 2)]]),
        box(6, 0, 7, 3),                             # grid 2: round a hole
    ], dtype=object)
    labels = np.array([0, 0, 1, 1, 2, 2])
    out = dissolve_units(units, labels, 3)
    assert (shapely.get_type_id(out) == 3).all()
    assert np.allclose(shapely.area(out), [2.0 - x, 2.0 - 1e-7, 11.0], atol=1e-3)
    assert shapely.equals(out[0], box(x, 0, 2, 1))  # the coverage union: not snapped
    assert shapely.get_coordinates(out[1])[:, 1].min() == 1.0  # the overlay: snapped
    assert shapely.get_num_interior_rings(out[2]) == 1
    assert shapely.is_valid(out).all()
