"""PostGIS in and out, against a real PostgreSQL server with PostGIS started here.

The server is a throwaway cluster in a temporary folder (``initdb``, ``pg_ctl``
from Debian's postgresql packages, PostGIS from postgresql-postgis, which
``.ci/run`` installs); the tests skip, saying why, only where no server can be
started.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from conftest import CRS, grid_city

import gridmap
from gridmap.cli import main

sqlalchemy = pytest.importorskip("sqlalchemy", reason="PostGIS needs gridmap[postgis]")
pytest.importorskip("geoalchemy2", reason="PostGIS needs gridmap[postgis]")


def _bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@pytest.fixture(scope="module")
def postgis():
    bindir = _bin()
    if bindir is None:
        pytest.skip("no PostgreSQL server here (initdb): .ci/run installs postgresql and "
                    "postgresql-postgis from Debian")
    version = bindir.parent.name
    if not glob.glob(f"/usr/share/postgresql/{version}/extension/postgis.control"):
        pytest.skip(f"PostgreSQL {version} has no PostGIS: .ci/run installs "
                    "postgresql-postgis from Debian")
    # initdb refuses root: as root the cluster belongs to the postgres user
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    data = Path(tempfile.mkdtemp(prefix="gridmap-pg-"))
    if as_user:
        shutil.chown(data, "postgres", "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def run(*cmd: str) -> None:
        subprocess.run([*as_user, *cmd], check=True, capture_output=True, text=True)

    try:
        run(str(bindir / "initdb"), "-D", str(data / "db"), "-U", "gridmap",
            "--auth=trust", "-E", "UTF8")
        run(str(bindir / "pg_ctl"), "-D", str(data / "db"), "-l", str(data / "log"), "-w",
            "-o", f"-p {port} -k {data} -c listen_addresses=127.0.0.1", "start")
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        shutil.rmtree(data, ignore_errors=True)
        pytest.skip(f"a PostgreSQL server could not be started here: {exc}")
    url = f"postgresql://gridmap@127.0.0.1:{port}"
    try:
        admin = sqlalchemy.create_engine(f"{url}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(sqlalchemy.text("CREATE DATABASE city"))
        admin.dispose()
        engine = sqlalchemy.create_engine(f"{url}/city")
        with engine.begin() as c:
            c.execute(sqlalchemy.text("CREATE EXTENSION postgis"))
        engine.dispose()
        yield f"{url}/city"
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data / "db"), "-m",
                        "fast", "stop"], capture_output=True)
        shutil.rmtree(data, ignore_errors=True)


def _layers(url: str):
    b, s = grid_city(4, 4, per_block=2, households=50)
    comm = gpd.GeoDataFrame(
        {"community_id": ["外滩", "南京东路"], "code": ["310101002001", "310101002002"]},
        geometry=[shapely.box(0, 0, 200, 400), shapely.box(200, 0, 400, 400)], crs=CRS)
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as c:
        c.execute(sqlalchemy.text("CREATE SCHEMA IF NOT EXISTS city"))
    b.to_postgis("buildings", engine, schema="city", if_exists="replace")
    s.to_postgis("streets", engine, schema="city", if_exists="replace")
    comm.to_postgis("communities", engine, schema="public", if_exists="replace")
    engine.dispose()
    return b, s, comm


def test_layers_in_plan_out_read_back_equal(postgis, tmp_path):
    b, s, comm = _layers(postgis)
    want = gridmap.delineate(b, s, boundaries=comm, target=200)
    # the layers named by URL and table; the plan written to a schema
    assert main(["delineate", "--buildings", f"{postgis}#city.buildings",
                 "--streets", f"{postgis}#city.streets", "--boundaries",
                 f"{postgis}#communities", "--target", "200", "--out",
                 f"{postgis}#plan", "--quiet"]) == 0
    back = gridmap.read_plan(f"{postgis}#plan")
    assert back.grids["code"].tolist() == want.grids["code"].tolist()
    assert back.grids["households"].tolist() == want.grids["households"].tolist()
    assert back.buildings["id"].tolist() == want.buildings["id"].tolist()
    assert back.buildings["grid_id"].tolist() == want.buildings["grid_id"].tolist()
    assert back.grids.crs == want.grids.crs
    assert np.allclose(shapely.area(back.grids.geometry.values),
                       shapely.area(want.grids.geometry.values))
    assert back.codes["code"].tolist() == want.codes["code"].tolist()
    assert back.metrics["n_grids"] == want.metrics["n_grids"]
    assert back.options == want.options
    # a re-partition reads the plan from the database and writes the next one there
    assert main(["repartition", "--plan", f"{postgis}#plan", "--out", f"{postgis}#plan2",
                 "--quiet"]) == 0
    again = gridmap.read_plan(f"{postgis}#plan2")
    assert again.grids["code"].tolist() == want.grids["code"].tolist()


def test_a_failed_write_changes_nothing_and_other_tables_stay(postgis, monkeypatch):
    b, s, comm = _layers(postgis)
    first = gridmap.delineate(b, s, boundaries=comm, target=200)
    engine = sqlalchemy.create_engine(postgis)
    with engine.begin() as c:
        c.execute(sqlalchemy.text("CREATE SCHEMA IF NOT EXISTS office"))
        c.execute(sqlalchemy.text("CREATE TABLE IF NOT EXISTS office.workers (name text)"))
        c.execute(sqlalchemy.text("INSERT INTO office.workers VALUES ('张三')"))
    written = first.to_postgis((engine, "office"))
    assert "office.grids" in written and "office.metrics" in written
    second = gridmap.delineate(b.assign(households=80), s, boundaries=comm, target=200)
    assert len(second.grids) != len(first.grids)
    real = pd.DataFrame.to_sql

    def broken(self, name, *a, **k):
        if name == "metrics":  # the last table: everything before it was written
            raise sqlalchemy.exc.OperationalError("INSERT", {}, Exception("disk full"))
        return real(self, name, *a, **k)

    monkeypatch.setattr(pd.DataFrame, "to_sql", broken)
    with pytest.raises(gridmap.OptionError, match="nothing was changed"):
        second.to_postgis((engine, "office"))
    monkeypatch.undo()
    kept = gridmap.read_plan((engine, "office"))
    assert kept.grids["code"].tolist() == first.grids["code"].tolist()
    with engine.connect() as c:
        assert c.execute(sqlalchemy.text("SELECT name FROM office.workers")).scalar() == "张三"
    engine.dispose()


def test_a_register_table_in_the_database(postgis):
    b, s, _ = _layers(postgis)
    table = pd.DataFrame({"楼栋编号": b["id"], "户数": 50})
    engine = sqlalchemy.create_engine(postgis)
    table.to_sql("register", engine, schema="city", if_exists="replace", index=False)
    got = gridmap.delineate(b.drop(columns=["households"]), s,
                            population=(engine, "city.register"), population_key="楼栋编号",
                            count_column="户数", target=200)
    want = gridmap.delineate(b, s, target=200)
    assert got.buildings["grid_id"].tolist() == want.buildings["grid_id"].tolist()
    with pytest.raises(gridmap.LayerValidationError, match="could not be read from PostGIS"):
        gridmap.delineate((engine, "city.nothing"), s, target=200)
    engine.dispose()
