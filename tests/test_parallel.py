"""Communities partitioned in parallel on Dask give the same plan as one by one."""

from __future__ import annotations

import geopandas as gpd
import pytest
import shapely
from conftest import grid_city

import gridmap
from gridmap.cli import main
from gridmap.parallel import community_map

pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def city():
    b, s = grid_city(8, 4, per_block=3, households=40)
    # four communities of 2 x 4 blocks
    bnd = gpd.GeoDataFrame({"community_id": list("ABCD")},
                           geometry=[shapely.box(x, 0, x + 200, 400) for x in (0, 200, 400, 600)],
                           crs=b.crs)
    return b, s, bnd


def test_community_map_keeps_the_order():
    assert community_map(divmod, [(7, 2), (9, 4), (1, 1)], scheduler="processes") == [
        (3, 1), (2, 1), (1, 0)]


@pytest.mark.parametrize("scheduler", ["processes", "local"])
def test_the_plan_is_the_same_on_dask(city, scheduler):
    b, s, bnd = city
    serial = gridmap.delineate(b, s, boundaries=bnd, target=300, seed=3)
    on_dask = gridmap.delineate(b, s, boundaries=bnd, target=300, seed=3, scheduler=scheduler)
    assert len(serial.grids) == len(on_dask.grids) >= 8
    assert serial.buildings["grid_id"].tolist() == on_dask.buildings["grid_id"].tolist()
    assert serial.grids["code"].tolist() == on_dask.grids["code"].tolist()
    assert serial.grids.geometry.geom_equals_exact(on_dask.grids.geometry, 1e-9).all()


def test_dask_from_the_command_line(city, tmp_path):
    b, s, bnd = city
    b.to_file(tmp_path / "b.gpkg")
    s.to_file(tmp_path / "s.gpkg")
    bnd.to_file(tmp_path / "c.gpkg")
    args = ["delineate", "--buildings", str(tmp_path / "b.gpkg"), "--streets",
            str(tmp_path / "s.gpkg"), "--boundaries", str(tmp_path / "c.gpkg"),
            "--target", "300", "--no-map", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    assert main([*args, "--dask", "--out", str(tmp_path / "many")]) == 0
    one = gpd.read_file(tmp_path / "one" / "plan.gpkg", layer="buildings")
    many = gpd.read_file(tmp_path / "many" / "plan.gpkg", layer="buildings")
    assert one["grid_id"].tolist() == many["grid_id"].tolist()
