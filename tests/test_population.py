"""Tests for gridmap.population: population onto buildings, from every form.

Hand-made layers from ``shapely.box`` in a projected CRS, with results worked out
by hand (see the comments), plus one slow test on real OSM buildings of the Bund.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from geopandas.testing import assert_geodataframe_equal
from shapely import LineString, Point, box

import gridmap
from gridmap import CRSMismatchError, LayerValidationError
from gridmap.population import (
    DEFAULT_NON_RESIDENTIAL,
    PopulationResult,
    floor_area,
    is_residential,
    levels,
    population_onto_buildings,
)

CRS = "EPSG:32651"
BUND = Path("/work/shared/data/shanghai-bund-osm/shanghai_bund_osm.gpkg")


def make_buildings(geoms, **columns) -> gpd.GeoDataFrame:
    data = {"building_id": [f"b{i}" for i in range(len(geoms))], **columns}
    return gpd.GeoDataFrame(data, geometry=list(geoms), crs=CRS)


def make_layer(geoms, index=None, **columns) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(columns or None, geometry=list(geoms), crs=CRS, index=index)


def check_result(result: PopulationResult, buildings: gpd.GeoDataFrame) -> None:
    """Properties every result has."""
    counts = result.counts
    assert counts.index.equals(buildings.index)
    assert list(counts.columns) == [*result.fields, "estimated"]
    assert counts["estimated"].dtype == bool
    values = counts[list(result.fields)].to_numpy()
    assert values.dtype == np.float64
    assert np.all(values >= 0)
    assert np.all(values == np.round(values))
    report = result.report
    json.dumps(report)  # serialisable
    assert report["method"] == result.method
    for f in result.fields:
        assert report["totals_out"][f] == int(counts[f].sum())
        assert (
            report["totals_in"][f]
            == report["totals_out"][f] + report["totals_unplaced"][f]
        )
    assert "reason" in result.unplaced.columns


# ---------------------------------------------------------------------------
# levels and floor area
# ---------------------------------------------------------------------------


@pytest.fixture
def storeyed() -> gpd.GeoDataFrame:
    # every footprint is 10 m x 10 m = 100 m²
    return make_buildings(
        [box(20 * i, 0, 20 * i + 10, 10) for i in range(6)],
        **{
            "building:levels": ["5", "junk", None, "0", None, " 7 "],
            # row 1: 10/3 -> 3; row 2: 4.5/3 = 1.5 -> 2 (half up);
            # row 3: levels "0" is unusable, 1/3 -> 0 -> at least 1
            "height": [30.0, 10.0, 4.5, 1.0, None, None],
        },
    )


def test_levels_sources(storeyed):
    storeys, source = levels(storeyed)
    assert storeys.tolist() == [5.0, 3.0, 2.0, 1.0, 1.0, 7.0]
    assert source.tolist() == [
        "levels",
        "height",
        "height",
        "height",
        "default",
        "levels",
    ]
    assert storeys.index.equals(storeyed.index)


def test_floor_area(storeyed):
    area = floor_area(storeyed)
    assert area.name == "floor_area"
    assert area.tolist() == [500.0, 300.0, 200.0, 100.0, 100.0, 700.0]
    doubled = floor_area(storeyed, default_levels=2.0, storey_height=2.5)
    # heights: 10/2.5 = 4, 4.5/2.5 = 1.8 -> 2, 1/2.5 = 0.4 -> 1; default 2
    assert doubled.tolist() == [500.0, 400.0, 200.0, 100.0, 200.0, 700.0]


def test_floor_area_named_columns_and_index():
    buildings = make_buildings(
        [box(0, 0, 10, 20), box(30, 0, 40, 10), box(50, 0, 60, 10)],
        floors=[2, np.nan, 3],
        levels=[9, 9, 9],  # ignored: floors is named
        h=["12 m", "12 m", "x"],
    ).set_index(pd.Index([10, 20, 30]))
    area = floor_area(buildings, levels_column="floors", height_column="h")
    assert area.index.equals(buildings.index)
    assert area.tolist() == [400.0, 400.0, 300.0]


def test_floor_area_without_columns_uses_default():
    buildings = make_buildings([box(0, 0, 10, 20)])
    _, source = levels(buildings)
    assert source.tolist() == ["default"]
    assert floor_area(buildings, default_levels=3).tolist() == [600.0]


def test_levels_errors(storeyed):
    with pytest.raises(LayerValidationError, match="no column 'storeys_n'") as err:
        levels(storeyed, levels_column="storeys_n", storey_height=0)
    assert len(err.value.problems) == 2  # both problems at once
    with pytest.raises(LayerValidationError, match="default_levels"):
        floor_area(storeyed, default_levels=-1)


def test_floor_area_needs_projected_crs(storeyed):
    with pytest.raises(LayerValidationError, match="geographic CRS EPSG:4326"):
        floor_area(storeyed.to_crs(4326))
    with pytest.raises(LayerValidationError, match="must be a GeoDataFrame"):
        floor_area(pd.DataFrame(storeyed))


# ---------------------------------------------------------------------------
# residential
# ---------------------------------------------------------------------------


def test_is_residential_values():
    frame = pd.DataFrame(
        {
            "building": [
                "apartments",
                " School",
                "YES",
                None,
                "garages",
                "house",
                "Retail ",
            ]
        }
    )
    result = is_residential(frame)
    assert result.name == "residential"
    assert result.tolist() == [True, False, True, True, False, True, False]


def test_is_residential_column_detection():
    both = pd.DataFrame(
        {"kind_detail": ["office", "office"], "building": ["yes", "office"]}
    )
    assert is_residential(both).tolist() == [True, False]  # "building" comes first
    assert is_residential(both, column="kind_detail").tolist() == [False, False]
    assert is_residential(pd.DataFrame({"x": [1, 2]})).tolist() == [True, True]
    custom = is_residential(both, non_residential={"YES"})
    assert custom.tolist() == [False, True]
    with pytest.raises(LayerValidationError, match="no column 'btype'"):
        is_residential(both, column="btype")


def test_default_non_residential_set():
    for value in ("commercial", "school", "garage", "hotel", "place_of_worship"):
        assert value in DEFAULT_NON_RESIDENTIAL
    for value in ("yes", "house", "apartments", "residential", "dormitory", "cabin"):
        assert value not in DEFAULT_NON_RESIDENTIAL


# ---------------------------------------------------------------------------
# (a) counts already on buildings
# ---------------------------------------------------------------------------


def test_counts_on_buildings():
    buildings = make_buildings(
        [box(0, 0, 10, 10), box(20, 0, 30, 10)],
        households=[10, 20.0],
        pop_actual=["25", 51],
        elderly=[3, 4],
    )
    before = buildings.copy()
    result = population_onto_buildings(buildings)
    assert result.method == "buildings"
    assert result.fields == ("households", "pop_actual")
    assert result.counts["households"].tolist() == [10.0, 20.0]
    assert result.counts["pop_actual"].tolist() == [25.0, 51.0]
    assert not result.counts["estimated"].any()
    assert result.unplaced.empty
    check_result(result, buildings)
    assert_geodataframe_equal(buildings, before)

    only = population_onto_buildings(buildings, fields=["elderly"])
    assert only.fields == ("elderly",)
    assert only.counts["elderly"].tolist() == [3.0, 4.0]
    assert "PopulationResult(method='buildings'" in repr(only)


def test_counts_on_buildings_defaults_take_those_present():
    buildings = make_buildings([box(0, 0, 10, 10)], households=[7])
    result = population_onto_buildings(buildings)
    assert result.fields == ("households",)


def test_counts_on_buildings_errors():
    buildings = make_buildings(
        [box(10 * i, 0, 10 * i + 5, 5) for i in range(4)],
        households=[1.0, np.nan, -2.0, 2.5],
        pop_actual=["3", "three", 4, 5],
    )
    with pytest.raises(LayerValidationError) as err:
        population_onto_buildings(buildings)
    message = str(err.value)
    assert len(err.value.problems) == 4
    assert "buildings['households'] has missing values (NaN) in row 1" in message
    assert "negative counts in row 2 (value -2.0)" in message
    assert "fractional counts in row 3 (value 2.5)" in message
    assert "non-numeric values in row 1 (value 'three')" in message


def test_counts_on_buildings_partial_fields_error():
    buildings = make_buildings([box(0, 0, 10, 10)], households=[3])
    with pytest.raises(LayerValidationError, match=r"not \['pop_actual'\]"):
        population_onto_buildings(buildings, fields=["households", "pop_actual"])
    with pytest.raises(LayerValidationError, match=r"not \['elderly'\]"):
        population_onto_buildings(make_buildings([box(0, 0, 1, 1)]), fields=["elderly"])


# ---------------------------------------------------------------------------
# (b) points
# ---------------------------------------------------------------------------


@pytest.fixture
def three_buildings() -> gpd.GeoDataFrame:
    return make_buildings([box(0, 0, 10, 10), box(20, 0, 40, 20), box(100, 0, 110, 10)])


@pytest.fixture
def household_points() -> gpd.GeoDataFrame:
    return make_layer(
        [
            Point(5, 5),  # inside b0
            Point(30, 10),  # inside b1
            Point(30, 15),  # inside b1
            Point(15, 5),  # 5 m from b0 and from b1: tie -> b0 (lower position)
            Point(105, 30),  # 20 m from b2
            Point(300, 300),  # far from everything
            Point(10, 5),  # on b0's edge: counts as inside
        ],
        index=list("abcdefg"),
    )


def test_points_households_and_derived_pop(three_buildings, household_points):
    before = household_points.copy()
    result = population_onto_buildings(three_buildings, household_points)
    check_result(result, three_buildings)
    assert result.method == "points"
    assert result.fields == ("households", "pop_actual")
    assert result.counts["households"].tolist() == [3.0, 2.0, 1.0]
    # quotas 7.86, 5.24, 2.62 -> floors 7, 5, 2; total round(6 * 2.62) = 16;
    # the 2 missing go to the largest remainders .86 (b0) and .62 (b2)
    assert result.counts["pop_actual"].tolist() == [8.0, 5.0, 3.0]
    assert result.counts["estimated"].all()  # pop_actual is derived everywhere
    report = result.report
    assert report["points"]["inside"] == 4
    assert report["points"]["nearest"] == 2
    assert report["points"]["unplaced"] == 1
    assert report["points"]["nearest_positions"] == [3, 4]
    assert report["points"]["unplaced_positions"] == [5]
    assert report["points"]["largest_nearest_distance_m"] == 20.0
    assert report["totals_in"] == {"households": 7, "pop_actual": 18}
    assert report["totals_unplaced"] == {"households": 1, "pop_actual": 2}
    assert report["sources"]["households"] == "1 per point"
    assert report["sources"]["pop_actual"].startswith("derived")
    assert list(result.unplaced.index) == ["f"]
    assert result.unplaced["reason"].iloc[0].startswith("outside every building")
    assert_geodataframe_equal(household_points, before)


@pytest.mark.parametrize(
    ("max_distance", "expected", "unplaced"),
    [
        (10.0, [3.0, 2.0, 0.0], [4, 5]),  # the point 20 m away is now too far
        (0.0, [2.0, 2.0, 0.0], [3, 4, 5]),  # only points inside
        (None, [3.0, 2.0, 2.0], []),  # no limit: the far point goes to b2
    ],
)
def test_points_max_distance(
    three_buildings, household_points, max_distance, expected, unplaced
):
    result = population_onto_buildings(
        three_buildings, household_points, max_distance=max_distance
    )
    check_result(result, three_buildings)
    assert result.counts["households"].tolist() == expected
    assert result.report["points"]["unplaced_positions"] == unplaced


def test_points_with_count_columns(three_buildings):
    points = make_layer(
        [Point(5, 5), Point(6, 6), Point(30, 10), Point(112, 5)],
        households=[1, 1, 1, 2],
        pop_actual=[3, 1, 2, 5],
        pop_floating=[0, 1, 2, 3],
    )
    result = population_onto_buildings(three_buildings, points)
    check_result(result, three_buildings)
    assert result.counts["households"].tolist() == [2.0, 1.0, 2.0]
    assert result.counts["pop_actual"].tolist() == [4.0, 2.0, 5.0]
    assert not result.counts["estimated"].any()
    floating = population_onto_buildings(
        three_buildings, points, fields=["pop_actual", "pop_floating"]
    )
    assert floating.counts["pop_floating"].tolist() == [1.0, 2.0, 3.0]


def test_points_households_column_pop_derived(three_buildings):
    points = make_layer([Point(5, 5), Point(30, 10)], households=[2, 1])
    result = population_onto_buildings(three_buildings, points)
    # 2 * 2.62 = 5.24 and 2.62 -> floors 5, 2; total round(3 * 2.62) = 8 -> b1 +1
    assert result.counts["pop_actual"].tolist() == [5.0, 3.0, 0.0]


def test_points_as_persons_and_point_weight(three_buildings):
    persons = make_layer([Point(5, 5), Point(6, 6), Point(30, 10)], units=[2, 3, 4])
    result = population_onto_buildings(three_buildings, persons, fields="pop_actual")
    assert result.fields == ("pop_actual",)
    assert result.counts["pop_actual"].tolist() == [2.0, 1.0, 0.0]
    weighted = population_onto_buildings(
        three_buildings, persons, fields="households", point_weight="units"
    )
    assert weighted.counts["households"].tolist() == [5.0, 4.0, 0.0]
    assert (
        weighted.report["sources"]["households"]
        == "column 'units' of population points"
    )
    twice = population_onto_buildings(
        three_buildings, persons, fields="households", point_weight=2
    )
    assert twice.counts["households"].tolist() == [4.0, 2.0, 0.0]


def test_points_smallest_building_then_lowest_position():
    buildings = make_buildings(
        [box(0, 0, 20, 20), box(5, 5, 10, 10), box(30, 0, 40, 10), box(40, 0, 50, 10)]
    )
    points = make_layer([Point(7, 7), Point(1, 1), Point(40, 5)])
    result = population_onto_buildings(buildings, points, fields="households")
    # (7, 7) is in both b0 and b1 -> smaller b1; (40, 5) is on the shared edge of
    # two equal buildings -> lower position b2
    assert result.counts["households"].tolist() == [1.0, 1.0, 1.0, 0.0]


def test_points_errors(three_buildings):
    partial = make_layer([Point(5, 5)], households=[1])
    with pytest.raises(
        LayerValidationError, match=r"not \['pop_actual'\]. Its columns"
    ):
        population_onto_buildings(
            three_buildings, partial, fields=["households", "pop_actual"]
        )
    bad = make_layer([Point(5, 5), Point(6, 6)], households=[1, None])
    with pytest.raises(LayerValidationError, match="missing values"):
        population_onto_buildings(three_buildings, bad)
    with pytest.raises(LayerValidationError, match="point_weight must be a whole"):
        population_onto_buildings(three_buildings, partial, point_weight=1.5)


# ---------------------------------------------------------------------------
# (c) areas
# ---------------------------------------------------------------------------


@pytest.fixture
def area_buildings() -> gpd.GeoDataFrame:
    return make_buildings(
        [
            box(0, 0, 10, 10),  # b0: floor area 100
            box(20, 0, 40, 10),  # b1: 200
            box(50, 0, 60, 10),  # b2: 100 x 3 levels = 300
            box(70, 0, 90, 10),  # b3: commercial, receives nothing in area A
            box(210, 0, 220, 10),  # b4: office, 100
            box(230, 0, 250, 10),  # b5: retail, 200
        ],
        building=["house", "yes", "apartments", "commercial", "office", "retail"],
        levels=[1, 1, 3, None, None, None],
    )


@pytest.fixture
def areas() -> gpd.GeoDataFrame:
    return make_layer(
        [
            box(0, 0, 100, 100),  # A: b0-b3, residential b0-b2
            box(200, 0, 300, 100),  # B: only non-residential b4, b5
            box(400, 0, 500, 100),  # C: no building, positive counts
            box(600, 0, 700, 100),  # D: no building, zero counts
            box(0, 0, 35, 35),  # E: overlaps A, covers b0 and b1
        ],
        index=["A", "B", "C", "D", "E"],
        households=[10, 7, 5, 0, 3],
        pop_actual=[25, 0, 0, 0, 0],
    )


def test_areas_split_by_floor_area(area_buildings, areas):
    before = areas.copy()
    result = population_onto_buildings(area_buildings, areas)
    check_result(result, area_buildings)
    assert result.method == "areas"
    # A households 10 over floor areas 100/200/300: 1.67, 3.33, 5 -> 1, 3, 5 (+1 to b0)
    # B 7 over 100/200: 2.33, 4.67 -> 2, 4 (+1 to b5); E 3 over 100/200: 1, 2
    assert result.counts["households"].tolist() == [3.0, 5.0, 5.0, 0.0, 2.0, 5.0]
    # A pop 25: 4.17, 8.33, 12.5 -> 4, 8, 12 (+1 to b2)
    assert result.counts["pop_actual"].tolist() == [4.0, 8.0, 13.0, 0.0, 0.0, 0.0]
    assert result.counts["estimated"].tolist() == [True, True, True, False, True, True]
    report = result.report
    assert report["totals_in"] == {"households": 25, "pop_actual": 25}
    assert report["totals_out"] == {"households": 20, "pop_actual": 25}
    assert report["totals_unplaced"] == {"households": 5, "pop_actual": 0}
    assert report["areas"]["to_all_buildings_positions"] == [1]
    assert report["areas"]["unplaced_positions"] == [2]
    assert report["areas"]["empty_without_buildings"] == 1
    assert report["areas"]["buildings_in_several_areas"] == 2
    assert report["floor_area"]["levels_source"] == {
        "levels": 3,
        "height": 0,
        "default": 3,
    }
    assert list(result.unplaced.index) == ["C"]
    assert_geodataframe_equal(areas, before)


def test_areas_ties_go_to_lowest_position():
    buildings = make_buildings(
        [box(0, 0, 10, 10), box(20, 0, 30, 10), box(40, 0, 50, 10)]
    )
    area = make_layer([box(-5, -5, 60, 20)], households=[2])
    result = population_onto_buildings(buildings, area, fields="households")
    assert result.counts["households"].tolist() == [1.0, 1.0, 0.0]


def test_areas_custom_residential_and_fields(area_buildings, areas):
    everyone = np.ones(len(area_buildings), dtype=bool)
    result = population_onto_buildings(
        area_buildings, areas.iloc[[0]], fields=["households"], residential=everyone
    )
    # A 10 over 100/200/300/200: 1.25, 2.5, 3.75, 2.5 -> floors 1, 2, 3, 2 = 8;
    # the 2 missing go to b2 (.75) and, of the tied .5, to the lower position b1
    assert result.counts["households"].tolist() == [1.0, 3.0, 4.0, 2.0, 0.0, 0.0]


def test_areas_conserve_totals_exactly():
    rng = np.random.default_rng(7)
    xy = rng.uniform(0, 500, size=(300, 2))
    sizes = rng.uniform(5, 30, size=(300, 2))
    buildings = make_buildings(
        [box(x, y, x + w, y + h) for (x, y), (w, h) in zip(xy, sizes, strict=True)],
        levels=rng.integers(1, 30, size=300),
    )
    cells = [
        box(x, y, x + 100, y + 100)
        for x in range(0, 500, 100)
        for y in range(0, 500, 100)
    ]
    grid = make_layer(
        cells,
        households=rng.integers(0, 400, size=len(cells)),
        pop_actual=rng.integers(0, 1000, size=len(cells)),
    )
    result = population_onto_buildings(buildings, grid)
    check_result(result, buildings)
    # every cell's counts land on the buildings whose representative point it holds
    inside = gpd.sjoin(
        gpd.GeoDataFrame(geometry=buildings.representative_point(), crs=CRS),
        grid[["geometry"]],
        predicate="within",
    )
    assert inside.index.is_unique  # no point on a cell edge
    per_cell = (
        result.counts.loc[inside.index].groupby(inside["index_right"].to_numpy()).sum()
    )
    for field in ("households", "pop_actual"):
        expected = grid.loc[per_cell.index, field].to_numpy()
        assert per_cell[field].to_numpy().tolist() == expected.astype(float).tolist()


def test_areas_errors(area_buildings, areas):
    with pytest.raises(LayerValidationError, match="none of the default count columns"):
        population_onto_buildings(area_buildings, areas[["geometry"]])
    bad = areas.assign(households=[1, -1, np.nan, 0, 2])
    with pytest.raises(LayerValidationError) as err:
        population_onto_buildings(area_buildings, bad)
    assert len(err.value.problems) == 2
    with pytest.raises(LayerValidationError, match=r"no column 'elderly'; its columns"):
        population_onto_buildings(area_buildings, areas, fields=["elderly"])


# ---------------------------------------------------------------------------
# (d) estimate
# ---------------------------------------------------------------------------


@pytest.fixture
def estimate_buildings() -> gpd.GeoDataFrame:
    return make_buildings(
        [
            box(0, 0, 30, 30),  # 900 m² x 6 levels = 5400 -> 60 households
            box(100, 0, 120, 30),  # 600 m² x 15 m / 3 = 5 -> 3000 -> 33.33
            box(200, 0, 210, 9),  # 90 m² x 1 (default) -> 1
            box(300, 0, 340, 40),  # school -> 0
            box(400, 0, 405, 9),  # 45 m² -> 0.5
        ],
        building=["apartments", "residential", None, "school", "house"],
        **{
            "building:levels": ["6", None, None, "3", None],
            "height": [None, 15.0, None, None, None],
        },
    )


def test_estimate(estimate_buildings):
    before = estimate_buildings.copy()
    result = population_onto_buildings(estimate_buildings)
    check_result(result, estimate_buildings)
    assert result.method == "estimate"
    # quotas 60, 33.33, 1, 0, 0.5: total round(94.83) = 95 -> the one missing to b4
    assert result.counts["households"].tolist() == [60.0, 33.0, 1.0, 0.0, 1.0]
    # x 2.62: 157.2, 86.46, 2.62, 0, 2.62; total round(95 x 2.62 = 248.9) = 249;
    # floors sum 247 -> +1 to the two .62 remainders (b2, b4)
    assert result.counts["pop_actual"].tolist() == [157.0, 86.0, 3.0, 0.0, 3.0]
    assert result.counts["estimated"].all()
    report = result.report
    assert report["estimate"]["dwelling_size_m2"] == 90.0
    assert report["estimate"]["persons_per_household"] == 2.62
    assert report["estimate"]["residential_buildings"] == 4
    assert report["estimate"]["residential_floor_area_m2"] == 8535.0
    assert report["floor_area"]["levels_source"] == {
        "levels": 2,
        "height": 1,
        "default": 2,
    }
    assert report["floor_area"]["levels_column"] == "building:levels"
    assert_geodataframe_equal(estimate_buildings, before)


def test_estimate_options(estimate_buildings):
    result = population_onto_buildings(
        estimate_buildings,
        fields="pop_actual",
        dwelling_size=100.0,
        persons_per_household=3.0,
        residential=pd.Series([True, True, True, True, False]),
    )
    assert result.fields == ("pop_actual",)
    # floor areas 5400, 3000, 90, 4800, 45 (b4 excluded): households 54, 30, .9, 48
    # -> total round(132.9) = 133 -> 54, 30, 1, 48; people x 3
    assert result.counts["pop_actual"].tolist() == [162.0, 90.0, 3.0, 144.0, 0.0]


def test_estimate_cannot_make_other_fields(estimate_buildings):
    with pytest.raises(LayerValidationError, match=r"only .* can be estimated"):
        population_onto_buildings(estimate_buildings, fields=["pop_floating"])


# ---------------------------------------------------------------------------
# layer errors
# ---------------------------------------------------------------------------


def test_layer_errors(three_buildings):
    empty = make_layer([]).iloc[:0]
    with pytest.raises(LayerValidationError, match="population is empty"):
        population_onto_buildings(three_buildings, empty)
    mixed = make_layer(
        [Point(1, 1), box(0, 0, 5, 5), Point(2, 2)], households=[1, 2, 3]
    )
    with pytest.raises(LayerValidationError, match="mixes geometry types: 2 points"):
        population_onto_buildings(three_buildings, mixed)
    lines = make_layer([LineString([(0, 0), (1, 1)])], households=[1])
    with pytest.raises(LayerValidationError, match="LineString geometries in row 0"):
        population_onto_buildings(three_buildings, lines)
    holes = make_layer([Point(1, 1), None], households=[1, 1])
    with pytest.raises(
        LayerValidationError, match="missing or empty geometries in row 1"
    ):
        population_onto_buildings(three_buildings, holes)
    with pytest.raises(CRSMismatchError, match="EPSG:32650"):
        population_onto_buildings(
            three_buildings,
            make_layer([Point(1, 1)]).set_crs(32650, allow_override=True),
        )
    with pytest.raises(LayerValidationError, match="got DataFrame"):
        population_onto_buildings(three_buildings, pd.DataFrame({"households": [1]}))
    with pytest.raises(LayerValidationError, match="buildings has Point"):
        population_onto_buildings(make_layer([Point(0, 0)]))
    with pytest.raises(LayerValidationError, match="max_distance") as err:
        population_onto_buildings(
            three_buildings, max_distance=-1, fields=["households", "households"]
        )
    assert len(err.value.problems) == 2
    with pytest.raises(LayerValidationError, match="one bool per building"):
        population_onto_buildings(three_buildings, residential=[True])


def test_population_as_geoseries(three_buildings):
    points = gpd.GeoSeries([Point(5, 5), Point(30, 5)], crs=CRS)
    result = population_onto_buildings(three_buildings, points, fields="households")
    assert result.counts["households"].tolist() == [1.0, 1.0, 0.0]


# ---------------------------------------------------------------------------
# real data: OSM buildings of the Bund, Shanghai
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bund() -> gpd.GeoDataFrame:
    if not BUND.exists():
        pytest.skip(f"{BUND} not found")
    raw = gpd.read_file(BUND, layer="buildings").to_crs(32651)
    raw = raw[raw["kind"] != "building_part"]
    raw = raw.assign(building_id=raw["osm_id"].astype(str)).reset_index(drop=True)
    return raw


@pytest.mark.slow
def test_bund_estimate_and_areas(bund):
    result = population_onto_buildings(bund)
    check_result(result, bund)
    residential = is_residential(bund)  # from kind_detail
    assert 0 < residential.sum() < len(bund)
    area = floor_area(bund)
    households = int(np.floor((area[residential].sum()) / 90.0 + 0.5))
    assert result.report["totals_out"]["households"] == households
    assert result.report["totals_out"]["pop_actual"] == int(
        np.floor(households * 2.62 + 0.5)
    )
    assert (
        (result.counts.loc[~residential, ["households", "pop_actual"]] == 0).all().all()
    )
    sources = result.report["floor_area"]["levels_source"]
    assert sources["levels"] == 0
    assert sources["height"] == int(bund["height"].gt(0).sum())
    assert sum(sources.values()) == len(bund)

    # a synthetic 500 m population grid, spread and conserved exactly
    xmin, ymin, xmax, ymax = bund.total_bounds
    cells = [
        box(x, y, x + 500, y + 500)
        for x in np.arange(np.floor(xmin), xmax, 500)
        for y in np.arange(np.floor(ymin), ymax, 500)
    ]
    rng = np.random.default_rng(42)
    grid = gpd.GeoDataFrame(
        {
            "households": rng.integers(0, 3000, len(cells)),
            "pop_actual": rng.integers(0, 8000, len(cells)),
        },
        geometry=cells,
        crs=bund.crs,
    )
    spread = population_onto_buildings(bund, grid)
    check_result(spread, bund)
    points = gpd.GeoDataFrame(geometry=bund.representative_point(), crs=bund.crs)
    placed = gpd.sjoin(grid, points, predicate="intersects").index.unique()
    assert spread.report["areas"]["placed"] == len(placed)
    for field in ("households", "pop_actual"):
        assert spread.counts[field].sum() == grid.loc[placed, field].sum()
        assert spread.report["totals_in"][field] == grid[field].sum()


# --- place_population (stage 2)
def _place(buildings=None, population=None, units=None, workload=None, **keywords):
    from gridmap.layers import COUNT_FIELDS, EXTRA_FIELDS
    from gridmap.options import options_from_keywords
    from gridmap.population import place_population

    options, problems = options_from_keywords({"workload": workload},
                                              {"target": 50, **keywords})
    assert problems == []
    notes: list[str] = []
    counts = place_population(buildings, population, units, options,
                              count_fields=COUNT_FIELDS, extra_fields=EXTRA_FIELDS,
                              notes=notes)
    return counts, notes


def test_place_population_takes_the_counts_on_the_buildings():
    b = make_buildings([box(0, 0, 10, 10), box(20, 0, 30, 10), box(40, 0, 50, 10)],
                       households=[40, 30, 20], pop_actual=[100, 80, 50], elderly=[5, 0, 1])
    counts, notes = _place(b)
    assert counts.by == "households" and counts.weight.tolist() == [40.0, 30.0, 20.0]
    assert counts.fields[:2] == ("households", "pop_actual") and "elderly" in counts.fields
    assert counts.table["elderly"].tolist() == [5.0, 0.0, 1.0]
    assert counts.report["method"] == "buildings" and not counts.estimated
    assert notes == []
    # on another field; on the workload (its formula over the counts, no area term)
    assert _place(b, by="pop_actual")[0].weight.tolist() == [100.0, 80.0, 50.0]
    counts, _ = _place(b, by="workload", workload={"households": 1, "elderly": 2,
                                                   "area_km2": 50})
    assert counts.weight.tolist() == [50.0, 30.0, 22.0] and "workload" in counts.fields


def test_place_population_refuses_what_makes_no_grid():
    b = make_buildings([box(0, 0, 10, 10), box(20, 0, 30, 10)], households=[20, 10])
    with pytest.raises(gridmap.InfeasiblePartitionError,
                       match="target 50 is above the total of 'households' \\(30\\)"):
        _place(b)
    with pytest.raises(gridmap.InfeasiblePartitionError, match="the total of 'households' "
                       "is 0: there is nothing to balance"):
        _place(b.assign(households=[0, 0]))
    with pytest.raises(LayerValidationError, match=r"group column\(s\) \['key_persons'\]"):
        _place(b, target=10, groups=("key_persons",))


def test_place_population_of_units_given_directly():
    units = make_buildings([box(0, 0, 10, 10), box(10, 0, 20, 10)],
                           households=[30, None], pop_actual=[60, 40])
    counts, _ = _place(units=units.assign(households=[30, 25]))
    assert counts.weight.tolist() == [30.0, 25.0] and counts.report == {"method": "units"}
    assert counts.table["pop_actual"].tolist() == [60.0, 40.0]
    with pytest.raises(LayerValidationError, match=r"`units` column 'households' is empty "
                       r"or negative in rows \[1\]"):
        _place(units=units)
