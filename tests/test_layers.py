"""Stage 1, read_layers (gridmap.layers): the layers checked, renamed, in one
canonical order, in the working CRS, and the streets as classed lines."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import shapely
from conftest import CRS, grid_city
from shapely import LineString, MultiLineString

from gridmap import LayerValidationError
from gridmap.layers import LayerSources, read_layers
from gridmap.options import Balance, Inputs, Options


def _read(buildings, streets=None, **inputs):
    options = Options(balance=Balance(target=50), inputs=Inputs(**inputs))
    return read_layers(LayerSources(buildings, streets), options)


def _rows(layers):
    """Every building id with its geometry (WKB) and households, in layer order."""
    b = layers.buildings
    return list(zip(b["building_id"], shapely.to_wkb(b.geometry.values),
                    b["households"], strict=True))


def test_the_canonical_order_does_not_depend_on_the_row_order():
    b, s = grid_city(3, 3, per_block=2)
    b["households"] = np.arange(len(b), dtype=float) + 1
    first = _read(b, s)
    perm = np.random.default_rng(0).permutation(len(b))
    again = _read(b.iloc[perm], s.iloc[np.random.default_rng(1).permutation(len(s))])
    assert _rows(again) == _rows(first)
    # ordered by id, numbered 0..n-1
    assert list(first.buildings["building_id"]) == sorted(b["id"])
    assert first.buildings.index.tolist() == list(range(len(b)))
    assert shapely.to_wkb(again.street_lines.geometry).tolist() == \
        shapely.to_wkb(first.street_lines.geometry).tolist()
    # `restore` gives the input's order back (None when it already was canonical)
    assert first.restore is None
    assert again.buildings_in.iloc[again.restore].index.tolist() == b.index[perm].tolist()
    assert list(again.ids[again.restore]) == list(b["id"].iloc[perm])


def test_without_an_id_column_the_order_comes_from_the_geometry():
    b, s = grid_city(2, 2, per_block=2)
    anon = b.drop(columns="id")
    first = _read(anon, s)
    shuffled = _read(anon.iloc[::-1], s)
    # the ids are the rows' numbers in the input (1..n), in the order of the geometry
    assert first.id_column is None and sorted(first.ids) == [1, 2, 3, 4, 5, 6, 7, 8]
    assert list(shuffled.ids) == [9 - i for i in first.ids]
    assert shapely.to_wkb(first.buildings.geometry.values).tolist() == \
        shapely.to_wkb(shuffled.buildings.geometry.values).tolist()


def test_ids_are_kept_from_the_id_column():
    b, s = grid_city(2, 2)
    b["bid"] = [40, 10, 30, 20]
    layers = _read(b, s, id_column="bid")
    assert layers.id_column == "bid"
    assert list(layers.ids) == [10, 20, 30, 40]
    assert list(layers.buildings["building_id"]) == [10, 20, 30, 40]
    # the input's own columns are kept, in the same (canonical) order
    assert list(layers.buildings_in["bid"]) == [10, 20, 30, 40]
    assert list(layers.buildings_in["id"]) == list(b.set_index("bid").loc[[10, 20, 30, 40],
                                                                          "id"])
    with pytest.raises(LayerValidationError, match="`buildings` has no id column 'nope'"):
        _read(b, s, id_column="nope")


def test_columns_are_renamed_to_the_canonical_names():
    b, s = grid_city(2, 2)
    b = b.rename(columns={"households": "HH"})
    layers = _read(b, s, columns={"households": "HH"})
    assert layers.buildings["households"].tolist() == [100.0] * 4
    assert "HH" in layers.buildings_in.columns  # the input's columns as they were


def test_a_metric_crs_is_kept_and_geographic_input_gets_one():
    b, s = grid_city(2, 2)
    layers = _read(b, s)
    assert layers.work_crs.equals(pyproj.CRS(CRS)) and layers.input_crs.equals(CRS)
    # WGS84 in Shanghai: worked in UTM 51N, given back in WGS84
    b84, s84 = (x.set_geometry(x.geometry.translate(350_000, 3_457_000)).to_crs(4326)
                for x in (b, s))
    layers = _read(b84, s84)
    assert layers.work_crs.to_epsg() == 32651
    assert layers.input_crs.to_epsg() == 4326
    assert layers.buildings.crs.to_epsg() == 32651 and layers.buildings_in.crs.to_epsg() == 4326
    assert layers.buildings.geometry.area.round().tolist() == b.geometry.area.round().tolist()
    # a CRS asked for is the one worked in
    layers = _read(b84, s84, crs="EPSG:4549")
    assert layers.work_crs.to_epsg() == 4549 and layers.buildings.crs.to_epsg() == 4549


def test_street_lines_are_single_lines_with_their_class_and_name():
    b, _ = grid_city(1, 1)
    streets = gpd.GeoDataFrame(
        {"highway": ["primary_link", "residential", "subway"],
         "name": ["南京东路", None, "2号线"]},
        geometry=[MultiLineString([[(0, 0), (100, 0)], [(100, 0), (100, 100)]]),
                  LineString([(0, 0), (0, 100), (100, 100)]),
                  LineString([(0, 50), (100, 50)])], crs=CRS)
    lines = _read(b, streets).street_lines
    # the multi-line is cut into its parts; a subway closes no block and is left out
    assert len(lines) == 3
    assert sorted(lines.classes.tolist()) == ["primary", "primary", "residential"]
    got = {(c, n if isinstance(n, str) else None)
           for c, n in zip(lines.classes, lines.names, strict=True)}
    assert got == {("primary", "南京东路"), ("residential", None)}
    assert all(g.geom_type == "LineString" for g in lines.geometry)
    assert lines.overground.all()
    # classes from another column, or none at all
    no_class = streets.drop(columns="highway").assign(kind=["a", "b", "c"])
    lines = _read(b, no_class, street_column="kind").street_lines
    assert sorted(lines.classes.tolist()) == ["a", "a", "b", "c"]
    lines = _read(b, streets.drop(columns="highway")).street_lines
    assert set(lines.classes.tolist()) == {"street"} and len(lines) == 4


def test_a_tunnel_runs_under_ground():
    b, _ = grid_city(1, 1)
    streets = gpd.GeoDataFrame(
        {"highway": ["primary", "primary", "residential"], "tunnel": ["yes", None, "no"]},
        geometry=[LineString([(0, 0), (100, 0)]), LineString([(0, 100), (100, 100)]),
                  LineString([(0, 0), (0, 100)])], crs=CRS)
    lines = _read(b, streets).street_lines
    tunnel = {shapely.to_wkt(g): not o for g, o in zip(lines.geometry, lines.overground,
                                                       strict=True)}
    assert tunnel == {"LINESTRING (0 0, 100 0)": True, "LINESTRING (0 100, 100 100)": False,
                      "LINESTRING (0 0, 0 100)": False}
    tilezen = streets.drop(columns="tunnel").assign(is_tunnel=[False, True, False])
    lines = _read(b, tilezen).street_lines
    assert [shapely.to_wkt(g) for g in lines.geometry[~lines.overground]] == [
        "LINESTRING (0 100, 100 100)"]


def test_every_problem_of_the_layers_is_raised_at_once():
    b, s = grid_city(2, 2)
    b = b.set_crs(None, allow_override=True)
    with pytest.raises(LayerValidationError) as info:
        _read(b, s.iloc[:0])
    text = "\n".join(info.value.problems)
    assert len(info.value.problems) >= 2
    assert "no CRS" in text and "`streets` is empty" in text


def test_duplicate_and_missing_ids_are_said_together():
    b, s = grid_city(2, 2)
    b["bid"] = [1.0, 1.0, 2.0, np.nan]
    with pytest.raises(LayerValidationError) as info:
        _read(b, s, id_column="bid")
    assert len(info.value.problems) == 2
    assert "has duplicate values ['1.0']" in info.value.problems[0]
    assert "is empty in 1 row (rows 3)" in info.value.problems[1]


def test_the_input_is_not_changed():
    b, s = grid_city(2, 2)
    b84 = b.to_crs(4326).iloc[::-1]
    before = b84.copy()
    _read(b84, s.to_crs(4326))
    assert b84.equals(before) and b84.crs.to_epsg() == 4326
