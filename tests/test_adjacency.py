"""Tests of gridmap.adjacency: neighbouring units, the cost of a grid edge."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import shapely
from shapely import LineString

from gridmap.adjacency import (
    DEFAULT_BARRIERS,
    DEFAULT_CUT_COST,
    Adjacency,
    build_adjacency,
    street_rank,
)


def _boxes(*bounds) -> np.ndarray:
    return np.array([shapely.box(*b) for b in bounds], dtype=object)


def _grid(nx_: int, ny: int, size: float = 10.0) -> np.ndarray:
    """``nx_`` × ``ny`` boxes, numbered row by row from the south-west."""
    return _boxes(
        *[
            (x * size, y * size, (x + 1) * size, (y + 1) * size)
            for y in range(ny)
            for x in range(nx_)
        ]
    )


def _edges(adj: Adjacency) -> list[tuple[int, int]]:
    return list(zip(adj.i.tolist(), adj.j.tolist(), strict=True))


def _by_edge(adj: Adjacency, attr: str) -> dict[tuple[int, int], object]:
    return dict(zip(_edges(adj), getattr(adj, attr).tolist(), strict=True))


# --- street_rank
@pytest.mark.parametrize(
    "value,rank",
    [
        ("primary_link", "primary"),
        ("motorway_link", "motorway"),
        ("trunk_link", "trunk"),
        ("residential", "residential"),
        (" Secondary ", "secondary"),
        ("rail", "railway"),
        ("light_rail", "railway"),
        ("tram", "railway"),
        ("railway", "railway"),
        ("canal", "river"),
        ("river", "river"),
        (None, "street"),
        (float("nan"), "street"),
    ],
)
def test_street_rank(value, rank):
    assert street_rank(value) == rank


def test_default_tables_agree():
    assert DEFAULT_BARRIERS == {"motorway", "trunk", "railway", "river"}
    assert set(DEFAULT_BARRIERS) <= set(DEFAULT_CUT_COST)
    # a grid edge is cheapest along a barrier and dearest through a block
    assert max(DEFAULT_CUT_COST.values()) == DEFAULT_CUT_COST["none"]
    assert (
        DEFAULT_CUT_COST["primary"]
        < DEFAULT_CUT_COST["residential"]
        < DEFAULT_CUT_COST["none"]
    )


# --- neighbours
def test_docstring_example_point_touch_is_no_neighbour():
    boxes = _boxes((0, 0, 1, 1), (1, 0, 2, 1), (2, 1, 3, 2))
    adj = build_adjacency(boxes)
    assert _edges(adj) == [(0, 1)]
    assert adj.n == 3


def test_rook_neighbours_on_a_grid():
    adj = build_adjacency(_grid(3, 3))
    # 3 × 3 boxes: 6 horizontal + 6 vertical shared edges, no diagonals
    assert sorted(_edges(adj)) == [
        (0, 1),
        (0, 3),
        (1, 2),
        (1, 4),
        (2, 5),
        (3, 4),
        (3, 6),
        (4, 5),
        (4, 7),
        (5, 8),
        (6, 7),
        (7, 8),
    ]
    assert (adj.i < adj.j).all()
    assert adj.length.tolist() == pytest.approx([10.0] * 12)
    assert adj.n == 9
    # without streets or blocks every edge is a street of unknown class
    assert set(adj.kind.tolist()) == {"street"}
    assert adj.cost.tolist() == pytest.approx([DEFAULT_CUT_COST["street"]] * 12)
    assert not adj.barrier.any()


def test_shared_length_is_exact_for_partial_edges():
    boxes = _boxes((0, 0, 10, 10), (10, 5, 20, 25), (-4, 10, 3, 12), (0, -7.5, 10, 0))
    adj = build_adjacency(boxes)
    got = _by_edge(adj, "length")
    assert sorted(got) == [(0, 1), (0, 2), (0, 3)]
    assert got[(0, 1)] == pytest.approx(5.0)
    assert got[(0, 2)] == pytest.approx(3.0)
    assert got[(0, 3)] == pytest.approx(10.0)


def test_shared_edge_made_of_several_segments():
    # an L-shaped unit wrapping a square: they share two sides, 20 m in all
    ell = shapely.Polygon([(0, 0), (20, 0), (20, 10), (10, 10), (10, 20), (0, 20)])
    sq = shapely.box(10, 10, 20, 20)
    adj = build_adjacency(np.array([ell, sq], dtype=object))
    assert _edges(adj) == [(0, 1)]
    assert adj.length.tolist() == pytest.approx([20.0])


def test_min_shared_drops_tiny_contacts():
    boxes = _boxes((0, 0, 10, 10), (10, 9.995, 20, 20), (10, -10, 20, 5))
    adj = build_adjacency(boxes)
    assert sorted(_edges(adj)) == [(0, 2)]
    adj = build_adjacency(boxes, min_shared=0.001)
    assert sorted(_edges(adj)) == [(0, 1), (0, 2)]
    assert _by_edge(adj, "length")[(0, 1)] == pytest.approx(0.005)


def test_shared_edge_plus_a_touching_point():
    # B shares x = 10, 0..5 with A and touches it again at the point (10, 10)
    a = shapely.box(0, 0, 10, 10)
    b = shapely.Polygon([(10, 0), (10, 5), (14, 7), (10, 10), (20, 10), (20, 0)])
    assert (
        shapely.intersection(a.boundary, b.boundary).geom_type == "GeometryCollection"
    )
    streets = np.array([LineString([(10, -5), (10, 5)])])
    adj = build_adjacency(
        np.array([a, b], dtype=object),
        streets=streets,
        street_classes=np.array(["secondary"]),
    )
    assert _edges(adj) == [(0, 1)]
    assert adj.length.tolist() == pytest.approx([5.0])
    assert adj.kind.tolist() == ["secondary"]


def test_no_neighbours():
    adj = build_adjacency(_boxes((0, 0, 1, 1), (5, 5, 6, 6)))
    assert _edges(adj) == []
    assert adj.n == 2
    assert len(adj.kind) == len(adj.cost) == len(adj.barrier) == len(adj.length) == 0
    g = adj.to_networkx()
    assert sorted(g.nodes) == [0, 1] and g.number_of_edges() == 0


# --- street classes
#: three units in a row; the streets run between them at x = 10 and x = 20
ROW = _boxes((0, 0, 10, 10), (10, 0, 20, 10), (20, 0, 30, 10))


def test_street_along_the_shared_edge_gives_its_class():
    streets = np.array(
        [LineString([(10, -5), (10, 15)]), LineString([(20, -5), (20, 15)])]
    )
    adj = build_adjacency(
        ROW, streets=streets, street_classes=np.array(["primary_link", "service"])
    )
    kinds = _by_edge(adj, "kind")
    assert kinds == {(0, 1): "primary", (1, 2): "service"}
    cost = _by_edge(adj, "cost")
    assert cost[(0, 1)] == pytest.approx(0.2)
    assert cost[(1, 2)] == pytest.approx(0.7)
    assert not adj.barrier.any()


def test_edge_without_a_street_is_a_boundary():
    streets = np.array([LineString([(10, -5), (10, 15)])])
    adj = build_adjacency(
        ROW, streets=streets, street_classes=np.array(["residential"])
    )
    assert _by_edge(adj, "kind") == {(0, 1): "residential", (1, 2): "boundary"}
    assert _by_edge(adj, "cost")[(1, 2)] == pytest.approx(DEFAULT_CUT_COST["boundary"])


def test_edge_round_a_building_off_the_street_costs_as_a_cut():
    # the street runs along x = 10; the edge between the blocks leaves it round a
    # building drawn across it (x 10..14, y 4..6): 8 m on the street, 10 m off,
    # and the edge's middle is off the street
    a = shapely.Polygon([(0, 0), (10, 0), (10, 4), (14, 4), (14, 6), (10, 6), (10, 10),
                         (0, 10)])
    b = shapely.Polygon([(10, 0), (20, 0), (20, 10), (10, 10), (10, 6), (14, 6), (14, 4),
                         (10, 4)])
    adj = build_adjacency(np.array([a, b], dtype=object),
                          streets=np.array([LineString([(10, -5), (10, 15)])]),
                          street_classes=np.array(["residential"]))
    assert _by_edge(adj, "kind") == {(0, 1): "residential"}
    assert _by_edge(adj, "length")[(0, 1)] == pytest.approx(18.0)
    expected = (8 * DEFAULT_CUT_COST["residential"] + 10 * DEFAULT_CUT_COST["none"]) / 18
    assert _by_edge(adj, "cost")[(0, 1)] == pytest.approx(expected)


def test_edge_round_a_building_takes_the_nearest_street_not_the_first_found():
    # the same blocks with a motorway 0.9 m beside the residential street: the
    # edge is the residential street's (nearest), not a barrier
    a = shapely.Polygon([(0, 0), (10, 0), (10, 4), (14, 4), (14, 6), (10, 6), (10, 10),
                         (0, 10)])
    b = shapely.Polygon([(10, 0), (20, 0), (20, 10), (10, 10), (10, 6), (14, 6), (14, 4),
                         (10, 4)])
    for order in ((0, 1), (1, 0)):
        lines = [LineString([(10, -5), (10, 15)]), LineString([(9.1, -5), (9.1, 15)])]
        classes = ["residential", "motorway"]
        adj = build_adjacency(np.array([a, b], dtype=object),
                              streets=np.array([lines[k] for k in order]),
                              street_classes=np.array([classes[k] for k in order]))
        assert adj.kind.tolist() == ["residential"] and not adj.barrier.any()


def test_street_a_little_off_the_edge_is_snapped():
    streets = np.array(
        [LineString([(10.8, -5), (10.8, 15)]), LineString([(21.5, -5), (21.5, 15)])]
    )
    classes = np.array(["secondary", "tertiary"])
    adj = build_adjacency(ROW, streets=streets, street_classes=classes)
    # 0.8 m is within snap = 1 m; 1.5 m is not
    assert _by_edge(adj, "kind") == {(0, 1): "secondary", (1, 2): "boundary"}
    adj = build_adjacency(ROW, streets=streets, street_classes=classes, snap=2.0)
    assert _by_edge(adj, "kind") == {(0, 1): "secondary", (1, 2): "tertiary"}


def test_nearest_street_wins():
    streets = np.array(
        [LineString([(10.6, -5), (10.6, 15)]), LineString([(10.1, -5), (10.1, 15)])]
    )
    adj = build_adjacency(
        ROW[:2], streets=streets, street_classes=np.array(["footway", "primary"])
    )
    assert adj.kind.tolist() == ["primary"]


def test_street_class_is_read_at_the_edge_midpoint():
    # a short street covers only the south end of the shared edge: not the midpoint
    streets = np.array([LineString([(10, -5), (10, 2)])])
    adj = build_adjacency(
        ROW[:2], streets=streets, street_classes=np.array(["primary"])
    )
    assert adj.kind.tolist() == ["boundary"]


def test_streets_without_classes_are_streets():
    streets = np.array([LineString([(10, -5), (10, 15)])])
    adj = build_adjacency(ROW, streets=streets)
    assert _by_edge(adj, "kind") == {(0, 1): "street", (1, 2): "boundary"}


def test_neighbours_in_the_same_block_are_separated_by_a_cut():
    streets = np.array(
        [LineString([(10, -5), (10, 15)]), LineString([(20, -5), (20, 15)])]
    )
    classes = np.array(["primary", "primary"])
    # units 1 and 2 are cells of one block: even a street there does not count
    adj = build_adjacency(
        ROW, block=np.array([0, 1, 1]), streets=streets, street_classes=classes
    )
    assert _by_edge(adj, "kind") == {(0, 1): "primary", (1, 2): "none"}
    assert _by_edge(adj, "cost")[(1, 2)] == pytest.approx(4.0)
    # without streets too
    adj = build_adjacency(ROW, block=np.array([0, 1, 1]))
    assert _by_edge(adj, "kind") == {(0, 1): "street", (1, 2): "none"}


@pytest.mark.parametrize(
    "cls,kind,barrier",
    [
        ("motorway", "motorway", True),
        ("motorway_link", "motorway", True),
        ("trunk", "trunk", True),
        ("railway", "railway", True),
        ("rail", "railway", True),
        ("river", "river", True),
        ("canal", "river", True),
        ("primary", "primary", False),
        ("residential", "residential", False),
    ],
)
def test_barrier_flag(cls, kind, barrier):
    streets = np.array([LineString([(10, -5), (10, 15)])])
    adj = build_adjacency(ROW[:2], streets=streets, street_classes=np.array([cls]))
    assert adj.kind.tolist() == [kind]
    assert adj.barrier.tolist() == [barrier]
    assert adj.cost.tolist() == pytest.approx([DEFAULT_CUT_COST[kind]])


def test_custom_barriers():
    streets = np.array(
        [LineString([(10, -5), (10, 15)]), LineString([(20, -5), (20, 15)])]
    )
    classes = np.array(["primary", "railway"])
    adj = build_adjacency(
        ROW, streets=streets, street_classes=classes, barriers={"primary"}
    )
    assert _by_edge(adj, "barrier") == {(0, 1): True, (1, 2): False}


def test_cut_cost_overrides():
    streets = np.array(
        [LineString([(10, -5), (10, 15)]), LineString([(20, -5), (20, 15)])]
    )
    classes = np.array(["primary", "busway"])
    adj = build_adjacency(ROW, streets=streets, street_classes=classes)
    # a class missing from the table costs as a street of unknown class
    assert _by_edge(adj, "cost") == pytest.approx({(0, 1): 0.2, (1, 2): 0.5})
    adj = build_adjacency(
        ROW,
        streets=streets,
        street_classes=classes,
        cut_cost={"primary": 9.0, "street": 1.5},
    )
    assert _by_edge(adj, "cost") == pytest.approx({(0, 1): 9.0, (1, 2): 1.5})
    adj = build_adjacency(
        ROW, streets=streets, street_classes=classes, cut_cost={"busway": 0.05}
    )
    assert _by_edge(adj, "cost") == pytest.approx({(0, 1): 0.2, (1, 2): 0.05})
    # the defaults are left alone
    assert DEFAULT_CUT_COST["primary"] == 0.2 and "busway" not in DEFAULT_CUT_COST


def test_street_blocks_of_a_grid_city():
    # 2 × 2 blocks cut by a primary road (x = 100) and a residential one (y = 100)
    blocks = _grid(2, 2, size=100.0)
    streets = np.array(
        [LineString([(100, -10), (100, 210)]), LineString([(-10, 100), (210, 100)])]
    )
    adj = build_adjacency(
        blocks, streets=streets, street_classes=np.array(["primary", "residential"])
    )
    assert _by_edge(adj, "kind") == {
        (0, 1): "primary",
        (2, 3): "primary",
        (0, 2): "residential",
        (1, 3): "residential",
    }
    assert adj.length.tolist() == pytest.approx([100.0] * 4)


# --- to_networkx
def test_to_networkx_nodes_and_edge_attributes():
    streets = np.array(
        [LineString([(10, -5), (10, 15)]), LineString([(20, -5), (20, 15)])]
    )
    units = np.concatenate([ROW, _boxes((50, 50, 60, 60))])
    adj = build_adjacency(
        units, streets=streets, street_classes=np.array(["motorway", "service"])
    )
    g = adj.to_networkx()
    assert isinstance(g, nx.Graph)
    assert sorted(g.nodes) == [0, 1, 2, 3]  # the isolated unit is a node too
    assert sorted(g.edges) == [(0, 1), (1, 2)]
    e = g.edges[0, 1]
    assert e["length"] == pytest.approx(10.0) and isinstance(e["length"], float)
    assert e["kind"] == "motorway" and e["barrier"] is True
    e = g.edges[2, 1]
    assert e["kind"] == "service" and e["barrier"] is False


def test_to_networkx_edges_carry_the_cost():
    streets = np.array([LineString([(10, -5), (10, 15)])])
    adj = build_adjacency(
        ROW[:2], streets=streets, street_classes=np.array(["primary"])
    )
    g = adj.to_networkx()
    assert g.edges[0, 1]["cost"] == pytest.approx(0.2)


# --- unit_graph (stage 5)
def test_unit_graph_weighs_every_unit_by_its_buildings_and_costs_its_edges():
    import geopandas as gpd

    from gridmap.adjacency import unit_graph

    # three blocks in a row (a motorway between the first two, a service road
    # between the last two) and an isolated fourth; buildings of 10, 20 and 5 in
    # the first, 7 in the third, none in the second
    units = gpd.GeoDataFrame({"block": [0, 1, 2, 3]},
                             geometry=np.concatenate([ROW, _boxes((50, 50, 60, 60))]))
    streets = np.array([LineString([(10, -5), (10, 15)]), LineString([(20, -5), (20, 15)])])
    adj, g = unit_graph(units, np.array([0, 0, 2, 0]), np.array([10.0, 20.0, 7.0, 5.0]),
                        streets=streets, street_classes=np.array(["motorway", "service"]),
                        cut_cost=None, barriers=frozenset({"motorway"}))
    assert g.n == 4 and g.weight.tolist() == [35.0, 0.0, 7.0, 0.0]
    assert g.xy.tolist() == [[5.0, 5.0], [15.0, 5.0], [25.0, 5.0], [55.0, 55.0]]
    assert sorted(zip(adj.i.tolist(), adj.j.tolist(), strict=True)) == [(0, 1), (1, 2)]
    # the cut of an edge is its length times its street's cost; a motorway bars
    cut = dict(zip(zip(g.i.tolist(), g.j.tolist(), strict=True), g.cut.tolist(),
                   strict=True))
    assert cut[(0, 1)] == pytest.approx(10 * DEFAULT_CUT_COST["motorway"])
    assert cut[(1, 2)] == pytest.approx(10 * DEFAULT_CUT_COST["service"])
    barrier = dict(zip(zip(g.i.tolist(), g.j.tolist(), strict=True),
                       g.barrier.tolist(), strict=True))
    assert barrier == {(0, 1): True, (1, 2): False}
    # without streets every edge is a plain street edge, none a barrier
    _, g = unit_graph(units, np.array([0, 0, 2, 0]), np.array([10.0, 20.0, 7.0, 5.0]),
                      streets=np.array([], dtype=object),
                      street_classes=np.array([], dtype=object), cut_cost={"none": 1.0},
                      barriers=frozenset({"motorway"}))
    assert not g.barrier.any() and g.weight.tolist() == [35.0, 0.0, 7.0, 0.0]


def _same_adjacency(a, b):
    assert a.n == b.n
    for name in ("i", "j", "length", "kind", "cost", "barrier"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


@pytest.mark.parametrize("real", [False, True])
def test_the_graph_patched_after_more_blocks_are_cut_is_the_graph_made_anew(real, bundled):
    # the balancing cuts more blocks and opens land round grids still out: the
    # edges of the units that stay the same are carried over, the rest worked out,
    # and the result is exactly the graph made from scratch
    from conftest import grid_city, run_stages

    if real:
        import geopandas as gpd

        b = gpd.read_file(bundled, layer="buildings")
        s = gpd.read_file(bundled, layer="streets")
        stages = run_stages(b, s, target=300, tolerance=0.1)
    else:
        b, s = grid_city(5, 4, per_block=3)
        stages = run_stages(b, s, target=400, tolerance=0.1)
    maker, first = stages.maker, stages.units
    cache: dict = {}
    rng = np.random.default_rng(1)
    split = first.split | ((maker.n_buildings > 1) & (rng.random(len(first.split)) < 0.3))
    opened = split & (rng.random(len(split)) < 0.3)
    before = maker.make(first.split, cache=cache)
    patched = maker.make(split, opened, cache=cache, previous=before)
    anew = maker.make(split, opened, cache=cache)
    assert split.sum() > first.split.sum()
    _same_adjacency(patched.adjacency, anew.adjacency)
    for name in ("weight", "xy", "i", "j", "cut", "barrier"):
        assert np.array_equal(getattr(patched.graph, name), getattr(anew.graph, name)), name
