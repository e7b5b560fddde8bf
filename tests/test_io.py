"""Tests of gridmap.io: reading layers, renaming columns, choosing the metric CRS."""

from __future__ import annotations

import os
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyproj
import pytest
import shapely
from conftest import CRS, SHARED
from shapely import LineString

from gridmap import CRSMismatchError, GridmapError, LayerValidationError
from gridmap.io import metric_crs, read_layer, rename_columns

MONACO = SHARED / "monaco-osm" / "monaco-latest.osm.pbf"


# --- helpers
def _buildings() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"bid": ["a", "b", "c"], "HH": [10, 20, 30]},
        geometry=[
            shapely.box(0, 0, 10, 10),
            shapely.box(20, 0, 30, 15),
            shapely.box(40, 0, 45, 5),
        ],
        crs=CRS,
    )


def _streets() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"highway": ["primary", "residential"]},
        geometry=[LineString([(0, -5), (50, -5)]), LineString([(15, -5), (15, 20)])],
        crs=CRS,
    )


def _same_frame(got: gpd.GeoDataFrame, want: gpd.GeoDataFrame, cols: list[str]) -> None:
    assert len(got) == len(want)
    assert got.crs is not None and got.crs.equals(want.crs)
    for c in cols:
        assert got[c].tolist() == want[c].tolist(), c
    assert shapely.equals(
        np.asarray(got.geometry.values), np.asarray(want.geometry.values)
    ).all()


@pytest.fixture
def multi_gpkg(tmp_path: Path) -> Path:
    path = tmp_path / "city.gpkg"
    _buildings().to_file(path, layer="bld", driver="GPKG", engine="pyogrio")
    _streets().to_file(path, layer="roads", driver="GPKG", engine="pyogrio")
    return path


# --- read_layer
def test_read_layer_none_gives_none():
    assert read_layer(None, role="population") is None


def test_read_layer_geodataframe_returns_an_independent_copy():
    src = _buildings()
    got = read_layer(src, role="buildings")
    assert got is not src
    _same_frame(got, src, ["bid", "HH"])
    got.loc[0, "HH"] = 999
    got["extra"] = 1
    assert src["HH"].tolist() == [10, 20, 30]
    assert "extra" not in src.columns


def test_read_layer_geoseries_becomes_a_frame_with_its_crs():
    s = gpd.GeoSeries([shapely.box(0, 0, 1, 1)], crs=CRS)
    got = read_layer(s, role="boundaries")
    assert isinstance(got, gpd.GeoDataFrame)
    assert got.crs.equals(pyproj.CRS(CRS))
    assert got.geometry.iloc[0].equals(shapely.box(0, 0, 1, 1))


def test_read_layer_plain_dataframe_is_an_error():
    df = pd.DataFrame({"x": [1.0], "y": [2.0], "households": [3]})
    with pytest.raises(
        LayerValidationError, match="`population` is a pandas DataFrame"
    ):
        read_layer(df, role="population")


@pytest.mark.parametrize("bad", [42, ["a.gpkg"], {"path": "a.gpkg"}])
def test_read_layer_other_types_are_an_error(bad):
    with pytest.raises(
        LayerValidationError, match="must be a GeoDataFrame or a file path, got"
    ):
        read_layer(bad, role="buildings")


def test_read_layer_missing_file(tmp_path):
    path = tmp_path / "nowhere" / "buildings.gpkg"
    with pytest.raises(LayerValidationError, match="file not found") as info:
        read_layer(str(path), role="buildings")
    assert str(path) in str(info.value)
    assert "`buildings`" in str(info.value)
    # one error hierarchy, catchable as ValueError too
    assert isinstance(info.value, GridmapError) and isinstance(info.value, ValueError)


def test_read_layer_missing_file_with_layer_suffix_reports_the_path(tmp_path):
    path = tmp_path / "nowhere.gpkg"
    with pytest.raises(LayerValidationError, match="file not found") as info:
        read_layer(f"{path}#roads", role="streets")
    assert repr(str(path)) in str(info.value)


def test_read_layer_geopackage_single_layer(tmp_path):
    path = tmp_path / "b.gpkg"
    _buildings().to_file(path, layer="whatever", driver="GPKG", engine="pyogrio")
    got = read_layer(str(path), role="buildings")
    _same_frame(got, _buildings(), ["bid", "HH"])
    # a pathlib.Path works as well as a str
    _same_frame(read_layer(path, role="buildings"), _buildings(), ["bid", "HH"])


def test_read_layer_geopackage_path_hash_layer(multi_gpkg):
    got = read_layer(f"{multi_gpkg}#roads", role="streets")
    _same_frame(got, _streets(), ["highway"])
    got = read_layer(f"{multi_gpkg}#bld", role="buildings")
    _same_frame(got, _buildings(), ["bid", "HH"])


def test_read_layer_layer_argument_overrides_path_hash_layer(multi_gpkg):
    got = read_layer(f"{multi_gpkg}#roads", role="buildings", layer="bld")
    _same_frame(got, _buildings(), ["bid", "HH"])
    got = read_layer(multi_gpkg, role="x", layer="roads")
    _same_frame(got, _streets(), ["highway"])


def test_read_layer_multi_layer_without_name_lists_the_layers(multi_gpkg):
    with pytest.raises(LayerValidationError) as info:
        read_layer(multi_gpkg, role="buildings")
    msg = str(info.value)
    assert "2 layers" in msg
    assert "'bld'" in msg and "'roads'" in msg
    assert "PATH#LAYER" in msg


def test_read_layer_multi_layer_picks_the_layer_named_like_the_role(tmp_path):
    path = tmp_path / "city.gpkg"
    _streets().to_file(path, layer="roads", driver="GPKG", engine="pyogrio")
    _buildings().to_file(path, layer="buildings", driver="GPKG", engine="pyogrio")
    _streets().to_file(path, layer="streets", driver="GPKG", engine="pyogrio")
    _same_frame(read_layer(path, role="buildings"), _buildings(), ["bid", "HH"])
    _same_frame(read_layer(path, role="streets"), _streets(), ["highway"])
    with pytest.raises(LayerValidationError, match="3 layers"):
        read_layer(path, role="compounds")


def test_read_layer_unknown_layer_is_a_clear_error(multi_gpkg):
    with pytest.raises(LayerValidationError, match="could not be read") as info:
        read_layer(f"{multi_gpkg}#nope", role="streets")
    assert "`streets`" in str(info.value)


def test_read_layer_unreadable_file_is_a_clear_error(tmp_path):
    path = tmp_path / "broken.gpkg"
    path.write_text("this is not a geopackage")
    with pytest.raises(LayerValidationError, match="could not be read"):
        read_layer(path, role="buildings")


def test_read_layer_geojson(tmp_path):
    path = tmp_path / "streets.geojson"
    src = _streets().to_crs(4326)
    src.to_file(path, driver="GeoJSON", engine="pyogrio")
    got = read_layer(str(path), role="streets")
    assert got["highway"].tolist() == ["primary", "residential"]
    assert got.crs.to_epsg() == 4326
    assert got.geom_type.tolist() == ["LineString", "LineString"]
    # GeoJSON stores ~7 decimals: the lines come back within a few cm
    back = got.to_crs(CRS)
    assert (
        shapely.hausdorff_distance(
            back.geometry.values, _streets().geometry.values
        ).max()
        < 0.05
    )


def test_read_layer_shapefile(tmp_path):
    path = tmp_path / "bld.shp"
    _buildings().to_file(path, engine="pyogrio")
    got = read_layer(path, role="buildings")
    _same_frame(got, _buildings(), ["bid", "HH"])


def test_read_layer_shapefile_without_prj_has_no_crs(tmp_path):
    path = tmp_path / "bld.shp"
    _buildings().to_file(path, engine="pyogrio")
    prj = tmp_path / "bld.prj"
    assert prj.exists()
    prj.unlink()
    got = read_layer(path, role="buildings")
    assert got.crs is None
    assert got["bid"].tolist() == ["a", "b", "c"]
    assert got.geometry.iloc[1].equals(shapely.box(20, 0, 30, 15))


@pytest.mark.parametrize("suffix", [".parquet", ".geoparquet"])
def test_read_layer_geoparquet(tmp_path, suffix):
    pytest.importorskip("pyarrow")
    path = tmp_path / f"bld{suffix}"
    _buildings().to_parquet(path)
    got = read_layer(path, role="buildings")
    _same_frame(got, _buildings(), ["bid", "HH"])


def test_read_layer_hash_in_an_existing_path_is_not_a_layer(tmp_path):
    folder = tmp_path / "data#2024"
    folder.mkdir()
    path = folder / "bld.gpkg"
    _buildings().to_file(path, layer="one", driver="GPKG", engine="pyogrio")
    _same_frame(read_layer(str(path), role="buildings"), _buildings(), ["bid", "HH"])



# --- encodings: Shapefiles and CSVs whose text is not declared
NAMES = ["外滩小区", "豫园", "abc"]


def _chinese(tmp_path: Path, encoding: str | None = "GBK", *, cpg: bool = False,
             name: str = "bld") -> Path:
    """A Shapefile with a column 名称, written in ``encoding``, without its .cpg."""
    path = tmp_path / f"{name}.shp"
    gdf = _buildings().assign(名称=NAMES)
    gdf.to_file(path, engine="pyogrio", **({"encoding": encoding} if encoding else {}))
    if not cpg:
        (tmp_path / f"{name}.cpg").unlink()
    return path


def _read_quietly(path, **kw):
    import warnings

    from gridmap import GridmapWarning

    with warnings.catch_warnings():
        warnings.simplefilter("error", GridmapWarning)
        return read_layer(path, role="buildings", **kw)


def test_gbk_shapefile_without_cpg_is_read_as_gb18030_and_said(tmp_path):
    from gridmap import GridmapWarning

    path = _chinese(tmp_path)
    with pytest.warns(GridmapWarning) as rec:
        got = read_layer(path, role="buildings")
    assert list(got.columns[:3]) == ["bid", "HH", "名称"]
    assert got["名称"].tolist() == NAMES
    msg = str(rec[0].message)
    assert f"`buildings` file {str(path)!r} has no .cpg and its text is not UTF-8" in msg
    assert "read as GB18030" in msg and "e.g. '名称', '外滩小区', '豫园'" in msg
    assert "encoding= (--encoding)" in msg and "strict=True" in msg
    with pytest.raises(LayerValidationError) as info:
        read_layer(path, role="buildings", strict=True)
    assert "strict mode does not guess an encoding" in str(info.value)
    assert "encoding='gb18030' (--encoding gb18030)" in str(info.value)


@pytest.mark.parametrize("encoding", ["gbk", "GB18030", "cp936"])
def test_an_encoding_given_is_used_without_a_word(tmp_path, encoding):
    got = _read_quietly(_chinese(tmp_path), encoding=encoding)
    assert got["名称"].tolist() == NAMES
    # it overrides a .cpg that is wrong
    (tmp_path / "bld.cpg").write_text("UTF-8")
    assert _read_quietly(tmp_path / "bld.shp", encoding=encoding)["名称"].tolist() == NAMES


def test_utf8_shapefile_without_cpg_and_ascii_ones_are_read_as_they_are(tmp_path):
    utf8 = _chinese(tmp_path, None, name="utf8")
    assert _read_quietly(utf8)["名称"].tolist() == NAMES
    ascii_only = tmp_path / "ascii.shp"
    _buildings().to_file(ascii_only, engine="pyogrio")
    (tmp_path / "ascii.cpg").unlink()
    assert _read_quietly(ascii_only)["bid"].tolist() == ["a", "b", "c"]
    # a .cpg is GDAL's to honour, and so is a code page in the .dbf header
    assert _read_quietly(_chinese(tmp_path, "GBK", cpg=True, name="cpg"))[
        "名称"].tolist() == NAMES


def test_dbf_text_takes_names_and_character_fields_only(tmp_path):
    """Pins the sniffing of a Shapefile's text encoding: only the .dbf's field
    names and character fields are looked at, and UTF-8 cut at a field's width
    is still UTF-8.  Which bytes it reads decides how a file is read; the
    behaviour through read_layer is in the tests above."""
    from gridmap.io import _dbf_text, _is_utf8

    path = _chinese(tmp_path)
    text, ldid = _dbf_text((tmp_path / "bld.dbf").read_bytes())
    assert ldid == 0
    lines = [t.strip() for t in text.decode("gbk").split("\n")]
    assert lines[:3] == ["bid", "HH", "名称"]
    assert "外滩小区" in lines and "a" in lines and "10" not in lines
    assert not _is_utf8(text)
    assert _is_utf8(("外滩小区".encode()[:-1] + b"\n") * 3)  # cut at the field's end
    assert not _is_utf8("外滩小区".encode("gbk"))
    assert _dbf_text(b"not a dbf") is None
    assert path.exists()


def test_gbk_csv_is_read_as_gb18030_and_said(tmp_path):
    from gridmap import GridmapWarning

    path = tmp_path / "people.csv"
    path.write_bytes("名称,households,WKT\n外滩小区,10,POINT (1 2)\n".encode("gbk"))
    with pytest.warns(GridmapWarning, match="has text that is not UTF-8"):
        got = read_layer(path, role="population")
    assert got["名称"].tolist() == ["外滩小区"]
    assert _read_quietly(path, encoding="gbk")["名称"].tolist() == ["外滩小区"]


def test_encoding_does_not_apply_to_utf8_formats_and_unknown_ones_are_refused(tmp_path):
    path = tmp_path / "b.gpkg"
    _buildings().assign(名称=NAMES).to_file(path, engine="pyogrio")
    assert _read_quietly(path, encoding="gbk")["名称"].tolist() == NAMES
    with pytest.raises(LayerValidationError, match="encoding='klingon' is not a text"):
        read_layer(path, role="buildings", encoding="klingon")
    # text that is a wrong encoding by the user's word is said, not a traceback
    csv = tmp_path / "people.csv"
    csv.write_bytes("名称,WKT\n外滩小区,POINT (1 2)\n".encode("gbk"))
    with pytest.raises(LayerValidationError, match="its text is not in utf-8"):
        read_layer(csv, role="population", encoding="utf-8")


def test_encoding_through_delineate_repartition_and_compare_bases(tmp_path):
    import warnings

    from conftest import grid_city

    import gridmap
    from gridmap import GridmapWarning

    b, s = grid_city(2, 2)
    b["名称"] = ["外滩小区", "豫园", "新天地", "老西门"]
    b["pop_actual"] = [250, 250, 250, 250]
    b["户籍人口"] = [100, 200, 300, 400]  # a Chinese column name, mapped below
    b.to_file(tmp_path / "city.shp", encoding="GBK", engine="pyogrio")
    (tmp_path / "city.cpg").unlink()
    path = str(tmp_path / "city.shp")
    with pytest.warns(GridmapWarning, match="read as GB18030"):
        plan = gridmap.delineate(path, s, target=200, tolerance=0.1)
    assert plan.buildings["名称"].tolist() == b["名称"].tolist()
    assert any("read as GB18030" in n for n in plan.metrics["notes"])
    with warnings.catch_warnings():
        warnings.simplefilter("error", GridmapWarning)
        plan = gridmap.delineate(path, s, target=200, tolerance=0.1, encoding="gbk")
        new = gridmap.repartition(plan, path, encoding="gbk")
        cmp_ = gridmap.compare_bases(path, s, target=500, tolerance=0.2, encoding="gbk",
                                     columns={"pop_registered": "户籍人口"})
    assert new.buildings["名称"].tolist() == b["名称"].tolist()
    assert cmp_.plans["pop_actual"].buildings["名称"].tolist() == b["名称"].tolist()
    with pytest.warns(GridmapWarning, match="read as GB18030"):
        new = gridmap.repartition(plan, path)
    assert any("read as GB18030" in n for n in new.metrics["notes"])


# --- OSM
@pytest.fixture(scope="module")
def monaco_buildings():
    if not MONACO.exists():
        pytest.skip("Monaco OSM extract missing")
    return read_layer(str(MONACO), role="buildings")


@pytest.fixture(scope="module")
def monaco_streets():
    if not MONACO.exists():
        pytest.skip("Monaco OSM extract missing")
    return read_layer(str(MONACO), role="streets")


@pytest.fixture(scope="module")
def monaco_raw():
    if not MONACO.exists():
        pytest.skip("Monaco OSM extract missing")
    os.environ.setdefault("OSM_USE_CUSTOM_INDEXING", "NO")
    polys = pyogrio.read_dataframe(
        str(MONACO), layer="multipolygons", read_geometry=False
    )
    lines = pyogrio.read_dataframe(str(MONACO), layer="lines", read_geometry=False)
    return polys, lines


def test_osm_buildings(monaco_buildings, monaco_raw):
    b = monaco_buildings
    raw_polys, _ = monaco_raw
    assert isinstance(b, gpd.GeoDataFrame)
    assert len(b) == int(raw_polys["building"].notna().sum()) == 1207
    assert b["building"].notna().all()
    assert set(b.geom_type) <= {"Polygon", "MultiPolygon"}
    assert b.crs.to_epsg() == 4326
    assert list(b.index) == list(range(len(b)))
    assert "other_tags" not in b.columns
    # an id for every building, unique: relations by osm_id, ways as "w<way id>"
    assert "id" in b.columns
    assert b["id"].notna().all() and b["id"].is_unique
    ways = b["osm_id"].isna()
    assert ways.any()
    assert (b.loc[ways, "id"] == "w" + b.loc[ways, "osm_way_id"].astype(str)).all()
    assert (b.loc[~ways, "id"] == b.loc[~ways, "osm_id"]).all()


def test_osm_buildings_levels_lifted_from_other_tags(monaco_buildings, monaco_raw):
    b = monaco_buildings
    raw_polys, _ = monaco_raw
    for col in (
        "building:levels",
        "height",
        "building:height",
        "name:zh",
        "addr:street",
    ):
        assert col in b.columns
    raw = raw_polys[raw_polys["building"].notna()].reset_index(drop=True)
    assert len(raw) == len(b)
    has = raw["other_tags"].fillna("").str.contains('"building:levels"=>', regex=False)
    assert has.sum() > 50
    assert (b["building:levels"].notna() == has).all()
    # the value is the tag's own value
    for text, value in zip(
        raw.loc[has, "other_tags"], b.loc[has, "building:levels"], strict=True
    ):
        assert f'"building:levels"=>"{value}"' in text


def test_osm_streets(monaco_streets, monaco_raw):
    s = monaco_streets
    _, raw_lines = monaco_raw
    assert "highway" in s.columns
    assert s["highway"].notna().all()
    assert set(s.geom_type) <= {"LineString", "MultiLineString"}
    assert "other_tags" not in s.columns
    assert {"tunnel", "bridge", "name:zh"} <= set(s.columns)
    # every road, plus the rail lines (which have no highway tag) as "railway"
    roads = int(raw_lines["highway"].notna().sum())
    rails = raw_lines["highway"].isna() & raw_lines["railway"].isin(
        ["rail", "light_rail", "subway", "tram", "narrow_gauge"]
    )
    rivers = (
        raw_lines["highway"].isna()
        & ~rails
        & raw_lines["waterway"].isin(["river", "canal"])
    )
    assert int(rails.sum()) == 13
    assert len(s) == roads + int(rails.sum()) + int(rivers.sum())
    assert (s["highway"] == "river").sum() == int(rivers.sum())
    is_rail = s["railway"].isin(
        ["rail", "light_rail", "subway", "tram", "narrow_gauge"]
    )
    assert (s.loc[is_rail & (s["highway"] == "railway")].shape[0]) == int(rails.sum())
    assert (s["highway"] == "railway").sum() == int(rails.sum())
    # a road on an abandoned railway keeps its road class
    ab = s["railway"] == "abandoned"
    assert ab.any() and (s.loc[ab, "highway"] != "railway").all()
    assert {"primary", "residential", "footway"} <= set(s["highway"])


_TWO_BUILDINGS_OSM = """<?xml version='1.0' encoding='UTF-8'?>
<osm version="0.6" generator="hand">
  <node id="1" lat="31.0" lon="121.0" version="1"/>
  <node id="2" lat="31.0" lon="121.001" version="1"/>
  <node id="3" lat="31.001" lon="121.001" version="1"/>
  <node id="4" lat="31.001" lon="121.0" version="1"/>
  <node id="5" lat="31.0" lon="121.002" version="1"/>
  <node id="6" lat="31.001" lon="121.002" version="1"/>
  <way id="20" version="1"><nd ref="1"/><nd ref="2"/><nd ref="3"/><nd ref="4"/>
    <nd ref="1"/><tag k="building" v="yes"/><tag k="building:levels" v="5"/>
    <tag k="height" v="17.5"/></way>
  <way id="21" version="1"><nd ref="2"/><nd ref="5"/><nd ref="6"/><nd ref="3"/>
    <nd ref="2"/><tag k="building" v="yes"/><tag k="name:zh" v="外滩"/></way>
</osm>
"""


def test_tags_in_other_tags_become_columns_empty_where_a_building_lacks_them(tmp_path):
    path = tmp_path / "two.osm"
    path.write_text(_TWO_BUILDINGS_OSM, encoding="utf-8")
    b = read_layer(path, role="buildings").set_index("id")
    assert sorted(b.index) == ["w20", "w21"]
    assert b.loc["w20", "building:levels"] == "5" and b.loc["w20", "height"] == "17.5"
    assert b.loc["w21", "name:zh"] == "外滩"
    cols = ["building:levels", "height", "name:zh"]
    assert b.loc[["w20", "w21"], cols].isna().to_numpy().tolist() == [
        [False, False, True],
        [True, True, False],
    ]


_TINY_OSM = """<?xml version='1.0' encoding='UTF-8'?>
<osm version="0.6" generator="hand">
  <node id="1" lat="31.0" lon="121.0" version="1"/>
  <node id="2" lat="31.0" lon="121.001" version="1"/>
  <node id="3" lat="31.001" lon="121.001" version="1"/>
  <node id="4" lat="31.001" lon="121.0" version="1"/>
  <node id="5" lat="31.002" lon="121.0" version="1"/>
  <node id="6" lat="31.002" lon="121.002" version="1"/>
  <way id="10" version="1"><nd ref="1"/><nd ref="2"/><nd ref="3"/><nd ref="4"/>
    <nd ref="1"/>
    <tag k="building" v="apartments"/><tag k="name:zh" v='一号"外滩"'/>
    <tag k="building:levels" v="5"/></way>
  <way id="11" version="1"><nd ref="5"/><nd ref="6"/>
    <tag k="highway" v="primary_link"/><tag k="bridge" v="yes"/></way>
  <way id="12" version="1"><nd ref="4"/><nd ref="5"/><tag k="railway" v="rail"/></way>
  <way id="13" version="1"><nd ref="3"/><nd ref="6"/><tag k="waterway" v="river"/></way>
  <way id="14" version="1"><nd ref="2"/><nd ref="6"/>
    <tag k="railway" v="abandoned"/></way>
</osm>
"""


@pytest.fixture
def tiny_osm(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.osm"
    path.write_text(_TINY_OSM, encoding="utf-8")
    return path


def test_osm_xml_buildings_hand_made(tiny_osm):
    b = read_layer(tiny_osm, role="buildings")
    assert len(b) == 1
    assert b.loc[0, "id"] == "w10"
    assert b.loc[0, "building"] == "apartments"
    assert b.loc[0, "building:levels"] == "5"
    assert b.crs.to_epsg() == 4326
    assert b.geom_type.tolist() == ["MultiPolygon"]
    ring = shapely.box(121.0, 31.0, 121.001, 31.001)
    assert shapely.equals(b.geometry.iloc[0], ring)


def test_osm_xml_streets_hand_made(tiny_osm):
    s = read_layer(tiny_osm, role="streets")
    # the road, the railway and the river; the abandoned railway is no street
    assert s["osm_id"].tolist() == ["11", "12", "13"]
    assert s["highway"].tolist() == ["primary_link", "railway", "river"]
    assert s.loc[0, "bridge"] == "yes"
    assert s.loc[1:, "bridge"].isna().all()


def test_osm_xml_tag_values_are_unescaped(tiny_osm):
    b = read_layer(tiny_osm, role="buildings")
    assert b.loc[0, "name:zh"] == '一号"外滩"'


# --- rename_columns
def test_rename_columns_maps_source_to_canonical():
    src = _buildings()
    got = rename_columns(
        src, {"households": "HH", "building_id": "bid"}, role="buildings"
    )
    assert list(got.columns) == ["building_id", "households", "geometry"]
    assert got["households"].tolist() == [10, 20, 30]
    assert got["building_id"].tolist() == ["a", "b", "c"]
    # the input is left as it was
    assert list(src.columns) == ["bid", "HH", "geometry"]


@pytest.mark.parametrize("columns", [None, {}, {"households": "households"}])
def test_rename_columns_nothing_to_do(columns):
    src = _buildings().rename(columns={"HH": "households"})
    got = rename_columns(src, columns, role="buildings")
    assert list(got.columns) == ["bid", "households", "geometry"]
    assert got["households"].tolist() == [10, 20, 30]


def test_rename_columns_skips_sources_the_layer_lacks():
    # the same mapping is applied to every layer: streets have no households
    got = rename_columns(_streets(), {"households": "HH"}, role="streets")
    assert list(got.columns) == ["highway", "geometry"]


def test_rename_columns_keeps_a_clashing_canonical_column_as_source():
    src = _buildings().assign(households=[1, 2, 3])
    got = rename_columns(src, {"households": "HH"}, role="buildings")
    assert got["households"].tolist() == [10, 20, 30]
    assert got["households_source"].tolist() == [1, 2, 3]
    assert "HH" not in got.columns


def test_rename_columns_chained_mapping():
    # the source's 'households' column really holds people; 'hh' holds households
    src = gpd.GeoDataFrame(
        {"households": [30.0], "hh": [10.0]},
        geometry=[shapely.box(0, 0, 1, 1)],
        crs=CRS,
    )
    got = rename_columns(
        src, {"pop_actual": "households", "households": "hh"}, role="buildings"
    )
    assert got["households"].tolist() == [10.0]
    assert got["pop_actual"].tolist() == [30.0]


# --- metric_crs
def _points(lon: float, lat: float, crs) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        geometry=[
            shapely.Point(lon - 0.01, lat - 0.01),
            shapely.Point(lon + 0.01, lat + 0.01),
        ],
        crs=crs,
    )


@pytest.mark.parametrize("code", [32651, 4549, 32650])
def test_metric_crs_keeps_a_projected_metric_crs(code):
    g = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 10, 10)], crs=code)
    assert metric_crs(g) == pyproj.CRS.from_epsg(code)
    assert metric_crs(g, "auto") == pyproj.CRS.from_epsg(code)
    assert metric_crs(g, None) == pyproj.CRS.from_epsg(code)


def test_metric_crs_wgs84_in_shanghai_is_utm_51n():
    assert metric_crs(_points(121.49, 31.24, 4326)).to_epsg() == 32651


def test_metric_crs_wgs84_in_beijing_is_utm_50n():
    assert metric_crs(_points(116.40, 39.90, 4326)).to_epsg() == 32650


def test_metric_crs_cgcs2000_gets_gauss_kruger_3_degree_zone():
    got = metric_crs(_points(121.5, 31.2, 4490))
    assert got.to_epsg() == 4549
    assert got.name == "CGCS2000 / 3-degree Gauss-Kruger CM 120E"
    # Beijing, 116.4 E: the zone of central meridian 117 E
    got = metric_crs(_points(116.4, 39.9, 4490))
    assert got.to_epsg() == 4548
    assert got.name == "CGCS2000 / 3-degree Gauss-Kruger CM 117E"
    # Urumqi, 87.6 E: 87 E
    assert (
        metric_crs(_points(87.6, 43.8, 4490)).name
        == "CGCS2000 / 3-degree Gauss-Kruger CM 87E"
    )


def test_metric_crs_cgcs2000_from_an_esri_prj():
    esri = (
        'GEOGCS["GCS_China_Geodetic_Coordinate_System_2000",DATUM["D_China_2000",'
        'SPHEROID["CGCS2000",6378137.0,298.257222101]],PRIMEM["Greenwich",0.0],'
        'UNIT["Degree",0.0174532925199433]]'
    )
    assert metric_crs(_points(121.5, 31.2, esri)).to_epsg() == 4549


def test_metric_crs_cgcs2000_3d_gets_gauss_kruger():
    assert metric_crs(_points(121.5, 31.2, 4480)).to_epsg() == 4549


def test_metric_crs_outside_china_cgcs2000_falls_back_to_utm():
    # CGCS2000 coordinates far outside China's GK zones
    assert metric_crs(_points(2.35, 48.85, 4490)).to_epsg() == 32631


def test_metric_crs_explicit_crs_is_used():
    g = _points(121.49, 31.24, 4326)
    assert metric_crs(g, 32650) == pyproj.CRS.from_epsg(32650)
    assert metric_crs(g, "EPSG:4549").to_epsg() == 4549
    assert metric_crs(g, pyproj.CRS.from_epsg(32651)).to_epsg() == 32651


@pytest.mark.parametrize("bad", [4326, 4490, "EPSG:2263"])
def test_metric_crs_explicit_non_metric_crs_is_an_error(bad):
    g = _points(121.49, 31.24, 4326)
    with pytest.raises(CRSMismatchError, match="not a projected CRS in metres"):
        metric_crs(g, bad)


def test_metric_crs_projected_in_feet_is_replaced_by_utm():
    # New York long island state plane (US feet): gridmap works in metres
    g = _points(-73.98, 40.75, 4326).to_crs(2263)
    assert metric_crs(g).to_epsg() == 32618
