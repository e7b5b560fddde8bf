"""Exports: Shapefile (GBK), GeoJSON (WGS84 / GCJ-02), the grid roster (xlsx, csv)."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from conftest import CRS, grid_city

import gridmap
from gridmap.cli import main
from gridmap.datum import (
    bd09_to_gcj02,
    from_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    to_wgs84,
    wgs84_to_gcj02,
)
from gridmap.export import SHAPEFILE_NAMES, parse_formats, shapefile_names


def _city(tmp_path):
    """A small city in Shanghai's UTM zone, two communities with Chinese names."""
    b, s = grid_city(4, 4, per_block=2, households=50)
    b["addr_street"] = "中山东一路"
    b["addr_housenumber"] = [f"{n}号" for n in range(len(b))]
    b["name:en"] = "Zhongshan Rd"
    b["楼栋类型说明"] = "住宅"
    comm = gpd.GeoDataFrame(
        {"community_id": ["外滩社区", "南京东路社区"],
         "code": ["310101002001", "310101002002"]},
        geometry=[shapely.box(0, 0, 200, 400), shapely.box(200, 0, 400, 400)], crs=CRS)
    for name, gdf in (("b", b), ("s", s), ("c", comm)):
        gdf.to_file(tmp_path / f"{name}.gpkg")
    return b, s, comm


def test_the_command_line_exports_every_format(tmp_path):
    b, _, _ = _city(tmp_path)
    out = tmp_path / "out"
    assert main(["delineate", "--buildings", str(tmp_path / "b.gpkg"), "--streets",
                 str(tmp_path / "s.gpkg"), "--boundaries", str(tmp_path / "c.gpkg"),
                 "--target", "200", "--out", str(out), "--quiet", "--no-map",
                 "--export", "shp,geojson,xlsx,csv"]) == 0
    plan = gridmap.read_plan(out)
    n = len(plan.grids)

    # Shapefile: GBK with a .cpg saying so; GDAL reads the Chinese back through it
    assert (out / "grids.cpg").read_text().strip().upper() == "GBK"
    assert "外滩社区".encode("gbk") in (out / "grids.dbf").read_bytes()
    shp = pyogrio.read_dataframe(out / "grids.shp")
    assert len(shp) == n
    assert set(shp["comm_id"]) == {"外滩社区", "南京东路社区"}
    assert all(len(c) <= 10 for c in shp.columns)
    assert sorted(shp["code"]) == sorted(plan.grids["code"])
    fields = pd.read_csv(out / "shapefile_fields.csv", encoding="utf-8-sig")
    grid_fields = fields[fields["layer"] == "grids"].set_index("column")["field"]
    assert grid_fields["community_id"] == "comm_id"
    assert grid_fields["workload_per_worker"] == SHAPEFILE_NAMES["workload_per_worker"]
    bshp = pyogrio.read_dataframe(out / "buildings.shp")
    assert len(bshp) == len(b) and set(bshp["addr_stree"]) == {"中山东一路"}
    # the fields listed are the fields GDAL reads back, Chinese names too
    for layer, shp_ in (("grids", shp), ("buildings", bshp)):
        listed = set(fields.loc[fields["layer"] == layer, "field"])
        assert listed == set(shp_.columns) - {"geometry"}, (layer, listed ^ set(shp_.columns))
    assert set(bshp["楼栋类型说"]) == {"住宅"}

    # GeoJSON in WGS84 longitude/latitude, near the Bund's
    gj = json.loads((out / "grids.geojson").read_text(encoding="utf-8"))
    assert len(gj["features"]) == n
    lon, lat = np.array(gj["features"][0]["geometry"]["coordinates"][0][0])
    assert 118 < lon < 124 and 0 <= lat < 1  # near UTM zone 51N's origin

    # the roster: one row per grid, Chinese headers with the English beside
    import openpyxl

    wb = openpyxl.load_workbook(out / "roster.xlsx")
    assert wb.sheetnames == ["网格 grids", "楼栋 buildings"]
    rows = list(wb["网格 grids"].values)
    head = rows[0]
    assert head[0] == "网格编码 code"
    assert {"户数 households", "所属社区 community_id", "网格员配置数 workers",
            "网格长 grid_leader", "网格员 grid_workers", "联系电话 phone"} <= set(head)
    assert len(rows) - 1 == n
    hh = head.index("户数 households")
    assert sum(r[hh] for r in rows[1:]) == pytest.approx(plan.grids["households"].sum())
    kinds = {r[head.index("网格类型 kind")] for r in rows[1:]}
    assert kinds == {"社区网格"}
    brows = list(wb["楼栋 buildings"].values)
    assert len(brows) - 1 == len(b)
    assert brows[1][1].startswith("中山东一路") and brows[1][2][:12] in {
        "310101002001", "310101002002"}

    # the same tables as CSV with a byte-order mark
    raw = (out / "roster_grids.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    csv = pd.read_csv(out / "roster_grids.csv", encoding="utf-8-sig", dtype={0: str})
    assert len(csv) == n and csv.columns[0] == "网格编码 code"


def test_geojson_in_gcj02_is_shifted_by_the_published_offset(tmp_path):
    b, s, comm = _city(tmp_path)
    plan = gridmap.delineate(b, s, boundaries=comm, target=200)
    wgs = plan.export(tmp_path / "w", "geojson")
    gcj = plan.export(tmp_path / "g", "geojson", datum="gcj02")
    a = gpd.read_file(wgs[0])
    g = gpd.read_file(gcj[0])
    x, y = wgs84_to_gcj02(*shapely.get_coordinates(a.geometry.values).T)
    assert np.allclose(shapely.get_coordinates(g.geometry.values), np.column_stack([x, y]),
                       atol=1e-6)


def test_bad_formats_and_a_missing_openpyxl_are_said(monkeypatch):
    with pytest.raises(gridmap.OptionError, match=r"cannot export to 'kml'"):
        parse_formats("shp,kml")
    assert parse_formats(" GeoJSON ,shp,shp") == ("geojson", "shp")
    import importlib

    real = importlib.import_module

    def no_openpyxl(name, *a, **k):
        if name == "openpyxl":
            raise ImportError(name)
        return real(name, *a, **k)

    monkeypatch.setattr(importlib, "import_module", no_openpyxl)
    with pytest.raises(gridmap.OptionError, match=r'pip install "gridmap\[xlsx\]"'):
        parse_formats("xlsx")
    assert parse_formats("csv") == ("csv",)


def test_shapefile_names_are_unique_and_short():
    names = shapefile_names(["addr_housenumber", "addr_housename", "addr_house", "id"])
    assert len(set(v.lower() for v in names.values())) == 4
    assert all(len(v) <= 10 for v in names.values())


# published reference points (wandergis/coordtransform's test; a railway station
# in Beijing as AMap and Baidu give it)
def test_datum_conversions_match_published_points():
    x, y = gcj02_to_bd09(np.array([116.404]), np.array([39.915]))
    assert (x[0], y[0]) == pytest.approx((116.41036949371029, 39.92133699351021), abs=1e-9)
    x, y = bd09_to_gcj02(np.array([116.404]), np.array([39.915]))
    assert (x[0], y[0]) == pytest.approx((116.39762729119315, 39.90865673957631), abs=1e-9)
    x, y = wgs84_to_gcj02(np.array([116.404]), np.array([39.915]))
    assert (x[0], y[0]) == pytest.approx((116.41024449916938, 39.91640428150164), abs=1e-9)
    # coordtransform's inverse is one step (about a metre off); ours is iterated
    x, y = gcj02_to_wgs84(np.array([116.404]), np.array([39.915]))
    assert (x[0], y[0]) == pytest.approx((116.39775550083061, 39.91359571849836), abs=2e-5)
    fx, fy = wgs84_to_gcj02(x, y)
    assert (fx[0], fy[0]) == pytest.approx((116.404, 39.915), abs=1e-9)
    x, y = bd09_to_gcj02(np.array([116.43351]), np.array([39.90851]))
    assert (x[0], y[0]) == pytest.approx((116.42703, 39.90245), abs=1e-5)


def test_layers_go_to_wgs84_and_back():
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy([121.49, 116.40, 2.35],
                                                       [31.24, 39.91, 48.85]), crs=4326)
    for datum in ("gcj02", "bd09"):
        there = from_wgs84(pts, datum)
        moved = shapely.get_coordinates(there.geometry.values)
        # shifted a few hundred metres in China, not at all in Paris
        assert 1e-3 < abs(moved[0, 0] - 121.49) < 2e-2
        assert moved[2].tolist() == [2.35, 48.85]
        back = to_wgs84(there, datum)
        assert np.allclose(shapely.get_coordinates(back.geometry.values),
                           shapely.get_coordinates(pts.geometry.values), atol=1e-8)
    with pytest.raises(gridmap.OptionError, match="gcj02 for data traced from AMap"):
        to_wgs84(pts, "gcj-2")
    with pytest.raises(gridmap.LayerValidationError, match="must be in longitude/latitude"):
        to_wgs84(pts.to_crs(32651), "gcj02")


def _in_shanghai():
    """A small city moved to Shanghai (UTM 51N), as longitude/latitude in WGS84."""
    b, s = grid_city(4, 4, per_block=2, households=50)
    for gdf in (b, s):
        gdf.geometry = gdf.geometry.translate(352_000, 3_456_000)
    return b.to_crs(4326), s.to_crs(4326)


def test_layers_traced_in_gcj02_give_the_same_plan_written_back_in_gcj02(tmp_path):
    b, s = _in_shanghai()
    plan = gridmap.delineate(b, s, target=200)
    gb, gs = from_wgs84(b, "gcj02"), from_wgs84(s, "gcj02")
    traced = gridmap.delineate(gb, gs, target=200, input_datum="gcj02")
    assert traced.buildings["grid_id"].tolist() == plan.buildings["grid_id"].tolist()
    assert traced.params["output_datum"] == "gcj02"
    assert any("converted to WGS84" in n for n in traced.metrics["notes"])
    # in memory the plan is in WGS84 (its maps line up with OSM)
    assert np.allclose(shapely.get_coordinates(traced.buildings.geometry.values),
                       shapely.get_coordinates(b.geometry.values), atol=1e-8)
    # its files are in GCJ-02, as it came in; read back, WGS84 again
    traced.to_file(tmp_path / "p")
    on_disk = gpd.read_file(tmp_path / "p" / "plan.gpkg", layer="buildings")
    assert np.allclose(shapely.get_coordinates(on_disk.geometry.values),
                       shapely.get_coordinates(gb.geometry.values), atol=1e-8)
    back = gridmap.read_plan(tmp_path / "p")
    assert np.allclose(shapely.get_coordinates(back.buildings.geometry.values),
                       shapely.get_coordinates(b.geometry.values), atol=1e-8)
    # the GeoJSON export defaults to the plan's datum; WGS84 on request
    gj = gpd.read_file(traced.export(tmp_path / "x", "geojson")[1])
    assert np.allclose(shapely.get_coordinates(gj.geometry.values),
                       shapely.get_coordinates(gb.geometry.values), atol=1e-7)
    # a re-partition takes the new buildings in the plan's datum
    again = gridmap.repartition(back, gb)
    assert again.metrics["changes"]["buildings_moved"] == 0
    # a projected layer cannot be in GCJ-02
    with pytest.raises(gridmap.LayerValidationError, match="must be in longitude/latitude"):
        gridmap.delineate(gb.to_crs(32651), gs.to_crs(32651), target=200, input_datum="gcj02")
    with pytest.raises(gridmap.GridmapError, match="input_datum must be one of"):
        gridmap.delineate(gb, gs, target=200, input_datum="baidu")


def test_input_datum_on_the_command_line(tmp_path):
    b, s = _in_shanghai()
    gb, gs = from_wgs84(b, "bd09"), from_wgs84(s, "bd09")
    gb.to_file(tmp_path / "b.gpkg")
    gs.to_file(tmp_path / "s.gpkg")
    out = tmp_path / "out"
    assert main(["delineate", "--buildings", str(tmp_path / "b.gpkg"), "--streets",
                 str(tmp_path / "s.gpkg"), "--target", "200", "--input-datum", "bd09",
                 "--output-datum", "gcj02", "--export", "geojson", "--out", str(out),
                 "--quiet", "--no-map"]) == 0
    written = gpd.read_file(out / "buildings.geojson")
    want = from_wgs84(b, "gcj02")
    assert np.allclose(shapely.get_coordinates(written.geometry.values),
                       shapely.get_coordinates(want.geometry.values), atol=1e-7)
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert (metrics["params"]["input_datum"], metrics["params"]["output_datum"]) == (
        "bd09", "gcj02")
