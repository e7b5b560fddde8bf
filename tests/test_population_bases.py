"""Population categories (人户分离), further groups, balancing on workload, and the
register-versus-actual comparison."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from conftest import grid_city
from shapely import LineString

import gridmap
from gridmap.cli import main


def row_city(registered, actual, **extra):
    """Buildings in a row of street blocks 50 m wide, one building per block."""
    n = len(registered)
    b = gpd.GeoDataFrame(
        {"pop_registered": registered, "pop_actual": actual, **extra},
        geometry=[shapely.box(x * 50 + 10, 10, x * 50 + 30, 30) for x in range(n)],
        crs=32651,
    )
    s = gpd.GeoDataFrame(
        {"highway": ["residential"] * (n + 3)},
        geometry=[LineString([(v, -5), (v, 45)]) for v in range(0, 50 * n + 1, 50)]
        + [LineString([(-5, v), (50 * n + 5, v)]) for v in (0, 40)],
        crs=32651,
    )
    return b, s


def test_every_category_and_group_is_reported_per_grid():
    b, s = grid_city(4, 4, households=100)
    rng = np.random.default_rng(1)
    for col in ("pop_registered", "pop_floating", "pop_absent", "elderly", "key_persons"):
        b[col] = rng.integers(0, 50, len(b))
    plan = gridmap.delineate(b, s, target=400, groups=["key_persons"])
    for col in ("pop_registered", "pop_floating", "pop_absent", "elderly", "key_persons"):
        assert col in plan.grids, col
        assert plan.grids[col].sum() == b[col].sum()  # nothing lost
        per_grid = b.assign(g=plan.buildings["grid_id"]).groupby("g")[col].sum()
        assert (plan.grids.set_index("grid_id")[col] == per_grid).all()


def test_a_missing_group_column_is_named_with_the_columns_there_are():
    b, s = grid_city(2, 2)
    with pytest.raises(gridmap.LayerValidationError,
                       match=r"group column\(s\) \['key_persons'\] are not in the buildings"):
        gridmap.delineate(b, s, target=200, groups=["key_persons"])


def test_balance_on_workload():
    # workload = households + 2 × shops: the shop-heavy half gets more grids
    b, s = row_city([0] * 8, [0] * 8, households=[100] * 8, shops=[0] * 4 + [50] * 4)
    plan = gridmap.delineate(b, s, by="workload", target=400, tolerance=0.1,
                             workload={"households": 1, "shops": 2})
    g = plan.grids
    # 4 × 100 + 4 × 200 = 1,200 → 3 grids of 400 each
    assert len(g) == 3 and sorted(g["value"]) == [400.0, 400.0, 400.0]
    # no area term in these weights: the reported workload is the balanced one
    assert np.allclose(g["workload"], g["value"])


def test_workload_balance_without_the_columns_says_what_to_give():
    b, s = row_city([100] * 4, [100] * 4)
    with pytest.raises(gridmap.LayerValidationError, match="none of the workload formula"):
        gridmap.delineate(b, s, by="workload", target=200)


def test_register_plan_overloads_the_workers_where_floating_people_live():
    b, s = row_city([100] * 8, [100] * 4 + [200] * 4)
    c = gridmap.compare_bases(b, s, target=400, tolerance=0.1)
    assert c.summary.loc["pop_registered", "grids"] == 2
    assert c.summary.loc["pop_actual", "grids"] == 3
    over = c.overloaded("pop_registered")
    assert over["reference"].tolist() == [800.0] and over["load"].tolist() == [2.0]
    assert c.summary.loc["pop_actual", "overloaded"] == 0
    # each plan reports the other basis per grid too
    assert "pop_registered" in c.plans["pop_actual"].grids


def test_compare_from_the_command_line(tmp_path, capsys):
    b, s = row_city([100] * 8, [100] * 4 + [200] * 4)
    b.to_file(tmp_path / "b.gpkg")
    s.to_file(tmp_path / "s.gpkg")
    out = tmp_path / "cmp"
    assert main(["compare", "--buildings", str(tmp_path / "b.gpkg"), "--streets",
                 str(tmp_path / "s.gpkg"), "--target", "400", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "pop_registered" in printed and "overloaded" in printed
    grids = __import__("pandas").read_csv(out / "compare_grids.csv")
    reg = grids[grids["basis"] == "pop_registered"]
    assert reg["overloaded"].tolist().count(True) == 1
    assert (out / "pop_registered" / "plan.gpkg").exists()
    assert (out / "pop_actual" / "metrics.json").exists()


def two_communities(types=("old_town", "estate")):
    """Two communities side by side, 8 blocks of 100 households each."""
    b, s = grid_city(4, 4, households=100)
    bnd = gpd.GeoDataFrame(
        {"community_id": ["W", "E"], "community_type": list(types)},
        geometry=[shapely.box(0, 0, 200, 400), shapely.box(200, 0, 400, 400)], crs=b.crs)
    return b, s, bnd


def test_differentiated_targets_per_community_type():
    b, s, bnd = two_communities()
    plan = gridmap.delineate(b, s, boundaries=bnd, target=400,
                             targets={"old_town": (200, 0.1), "estate": 400})
    g = plan.grids
    per = g.groupby("community_id").agg(n=("grid_id", "size"), hh=("households", "sum"))
    # 800 households each: old town at 200 per grid -> 4 grids, estate at 400 -> 2
    assert per.loc["W", "n"] == 4 and per.loc["E", "n"] == 2
    assert set(g.loc[g["community_id"] == "W", "target"]) == {200.0}
    assert set(g.loc[g["community_id"] == "E", "tolerance"]) == {0.1}
    assert set(g["community_type"]) == {"old_town", "estate"}
    assert g["within_tolerance"].all()


def test_a_tolerance_per_type_decides_what_is_within_it():
    b, s, bnd = two_communities()
    # the east community's 800 households in 3 grids: 266.7 each, so 300/200-ish
    # splits; with ±40 % allowed there, nothing is out of tolerance
    plan = gridmap.delineate(b, s, boundaries=bnd, target=400,
                             targets={"estate": (267, 0.4)})
    g = plan.grids[plan.grids["community_id"] == "E"]
    assert len(g) == 3 and set(g["tolerance"]) == {0.4}
    assert g["within_tolerance"].all()
    assert any("old_town" in n for n in plan.metrics["notes"])  # no target for it


def test_types_can_come_from_the_buildings():
    b, s, bnd = two_communities()
    b["community_type"] = np.where(b.geometry.centroid.x < 200, "old_town", "estate")
    plan = gridmap.delineate(b, s, boundaries=bnd.drop(columns="community_type"),
                             target=400, targets={"old_town": 200})
    per = plan.grids.groupby("community_id").size()
    assert per["W"] == 4 and per["E"] == 2


@pytest.mark.parametrize("targets, text", [
    ({"estate": 0}, "targets must map a community type"),
    ({"estate": (300, 1.5)}, r"'estate': \(300, 1.5\)"),
])
def test_bad_target_tables_are_refused(targets, text):
    b, s, bnd = two_communities()
    with pytest.raises(gridmap.LayerValidationError, match=text):
        gridmap.delineate(b, s, boundaries=bnd, targets=targets)


def test_targets_without_a_type_column_say_which_column_is_missing():
    b, s, bnd = two_communities()
    with pytest.raises(gridmap.LayerValidationError, match="column 'kind_of_place'"):
        gridmap.delineate(b, s, boundaries=bnd, targets={"estate": 300},
                          type_column="kind_of_place")


def test_targets_from_the_command_line(tmp_path):
    b, s, bnd = two_communities()
    for name, layer in (("b", b), ("s", s), ("c", bnd)):
        layer.to_file(tmp_path / f"{name}.gpkg")
    out = tmp_path / "o"
    assert main(["delineate", "--buildings", str(tmp_path / "b.gpkg"), "--streets",
                 str(tmp_path / "s.gpkg"), "--boundaries", str(tmp_path / "c.gpkg"),
                 "--target", "400", "--target-for", "old_town=200:0.1", "--out", str(out),
                 "--no-map", "--quiet"]) == 0
    g = gpd.read_file(out / "plan.gpkg", layer="grids")
    assert (g["community_id"] == "W").sum() == 4 and (g["community_id"] == "E").sum() == 2


def test_categories_can_come_as_area_counts():
    b, s = grid_city(4, 4, households=100)
    b = b.drop(columns="households")
    areas = gpd.GeoDataFrame(
        {"households": [800, 800], "pop_actual": [2000, 2400],
         "pop_floating": [300, 900]},
        geometry=[shapely.box(0, 0, 200, 400), shapely.box(200, 0, 400, 400)], crs=b.crs)
    plan = gridmap.delineate(b, s, areas, target=400)
    g = plan.grids
    assert g["pop_floating"].sum() == 1200 and g["pop_actual"].sum() == 4400
    assert g["households"].sum() == 1600
