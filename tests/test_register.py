"""A household register given as a table (CSV, Excel, DataFrame), joined to the buildings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import grid_city

import gridmap
from gridmap.cli import main
from gridmap.register import normalise_address

_FULL = str.maketrans("0123456789", "０１２３４５６７８９")


def _register(b: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """One row per household, addresses written as registers write them."""
    rows = []
    for n, hh in enumerate(b["households"].astype(int).tolist(), start=1):
        for r in range(hh):
            style = r % 4
            if style == 0:
                text = f"北京市海淀区学院路{n}号{r % 3 + 1}单元{101 + r}室"
            elif style == 1:
                text = f"学院路{str(n).translate(_FULL)}号 {101 + r}室"
            elif style == 2:
                text = f"海淀区学院路{n}号"
            else:
                text = f" 学院路 {n} 号{r % 2 + 1}单元"
            rows.append({"户主": f"户{n}-{r}", "门牌地址": text, "pop_registered": 2,
                         "pop_floating": r % 2})
    return pd.DataFrame(rows)


def _city():
    rng = np.random.default_rng(7)
    b, s = grid_city(4, 4, per_block=2)
    b["households"] = rng.integers(20, 120, len(b)).astype(float)
    b["address"] = [f"学院路{n}号" for n in range(1, len(b) + 1)]
    return b, s, rng


def test_a_gbk_register_by_address_gives_the_plan_of_the_same_counts(tmp_path):
    b, s, rng = _city()
    reg = _register(b, rng)
    # 3 % of the rows name no building of the layer
    lost = rng.choice(len(reg), size=round(0.03 * len(reg)), replace=False)
    reg.loc[lost, "门牌地址"] = [f"学院路{900 + k}号" for k in range(len(lost))]
    reg = reg.sample(frac=1.0, random_state=1).reset_index(drop=True)
    path = tmp_path / "两实登记.csv"
    reg.to_csv(path, index=False, encoding="gbk")

    counted = b.copy()
    kept = reg[~reg["门牌地址"].str.contains(r"学院路9\d\d号")]
    per = kept.assign(n=kept["门牌地址"].map(normalise_address).str.extract(
        r"学院路(\d+)号")[0].astype(int))
    counted["households"] = per.groupby("n").size().reindex(
        range(1, len(b) + 1), fill_value=0).to_numpy(dtype=float)
    counted["pop_registered"] = 2 * counted["households"]
    counted["pop_floating"] = per.groupby("n")["pop_floating"].sum().reindex(
        range(1, len(b) + 1), fill_value=0).to_numpy(dtype=float)
    want = gridmap.delineate(counted, s, target=600, tolerance=0.15, seed=0)

    got = gridmap.delineate(b.drop(columns=["households"]), s, population=str(path),
                            population_address="门牌地址", address_column="address",
                            target=600, tolerance=0.15, seed=0)
    assert got.buildings["grid_id"].tolist() == want.buildings["grid_id"].tolist()
    assert got.grids["households"].tolist() == want.grids["households"].tolist()
    assert got.grids["pop_floating"].tolist() == want.grids["pop_floating"].tolist()
    r = got.metrics["register"]
    assert (r["rows"], r["unmatched_rows"]) == (len(reg), len(lost))
    assert r["households_matched"] + r["households_unmatched"] == len(reg)
    assert r["households_matched"] == pytest.approx(got.grids["households"].sum())
    un = got.unmatched
    assert len(un) == len(lost)
    assert set(un["reason"]) == {"no building at this address"}
    assert un["门牌地址"].str.match(r"学院路9\d\d号").all()
    # the row as the planner sees it in the file (the header is line 1)
    assert (reg.loc[un["row"] - 2, "户主"].to_numpy() == un["户主"].to_numpy()).all()
    assert any("matched no building" in n for n in got.metrics["notes"])


def test_a_table_keyed_by_building_id_with_a_count_column():
    b, s, _ = _city()
    # a DataFrame keyed by the buildings' own id column needs no option
    table = pd.DataFrame({"id": b["id"], "户数": b["households"].astype(int)})
    table.loc[len(table)] = ["b9-9-9", 50]
    got = gridmap.delineate(b.drop(columns=["households"]), s, population=table,
                            count_column="户数", target=600, tolerance=0.15, seed=0)
    want = gridmap.delineate(b, s, target=600, tolerance=0.15, seed=0)
    assert got.buildings["grid_id"].tolist() == want.buildings["grid_id"].tolist()
    assert got.unmatched["reason"].tolist() == ["no building with this id"]
    # ids as numbers in the table, text on the buildings: they match
    b2 = b.assign(id=range(1, len(b) + 1))
    t2 = pd.DataFrame({"楼号": [f" {i} " if i % 2 else float(i) for i in range(1, len(b) + 1)],
                       "户数": b["households"]})
    j = gridmap.delineate(b2.drop(columns=["households"]), s, population=t2,
                          population_key="楼号", count_column="户数", target=600,
                          tolerance=0.15, seed=0)
    assert j.metrics["register"]["unmatched_rows"] == 0


def test_a_register_without_a_way_to_join_is_refused_by_name():
    b, s, _ = _city()
    table = pd.DataFrame({"门牌": ["学院路1号"]})
    with pytest.raises(gridmap.LayerValidationError, match="needs a way to join it"):
        gridmap.delineate(b, s, population=table, target=600)
    with pytest.raises(gridmap.LayerValidationError, match="no column 'addr'"):
        gridmap.delineate(b, s, population=table, population_address="门牌",
                          address_column="addr", target=600)
    with pytest.raises(gridmap.LayerValidationError, match="no column 'HH'"):
        gridmap.delineate(b, s, population=table, population_address="门牌",
                          address_column="address", count_column="HH", target=600)


def test_the_command_line_writes_the_unmatched_rows(tmp_path):
    b, s, rng = _city()
    b.drop(columns=["households"]).to_file(tmp_path / "b.gpkg")
    s.to_file(tmp_path / "s.gpkg")
    reg = _register(b, rng)
    reg.loc[0, "门牌地址"] = "南京东路9号"
    reg.to_csv(tmp_path / "reg.csv", index=False, encoding="utf-8-sig")
    out = tmp_path / "out"
    assert main(["delineate", "--buildings", str(tmp_path / "b.gpkg"), "--streets",
                 str(tmp_path / "s.gpkg"), "--population", str(tmp_path / "reg.csv"),
                 "--population-address", "门牌地址", "--address-column", "address",
                 "--target", "600", "--tolerance", "0.15", "--out", str(out), "--quiet",
                 "--no-map", "--export", "csv"]) == 0
    un = pd.read_csv(out / "population_unmatched.csv", encoding="utf-8-sig")
    assert un["门牌地址"].tolist() == ["南京东路9号"] and un["row"].tolist() == [2]
    roster = pd.read_csv(out / "roster_buildings.csv", encoding="utf-8-sig")
    assert roster["地址 address"].tolist()[:2] == ["学院路1号", "学院路2号"]


@pytest.mark.parametrize(("a", "b"), [
    ("上海市黄浦区中山东一路１２号", "中山东一路12号"),
    ("中山东一路12号3幢", "中山东一路12号3栋"),
    ("中山东一路12号3号楼", "中山东一路12号3座"),
    ("广东省深圳市南山区科技园路 8 号", "科技园路8号"),
    ("浦东新区张杨路500号", "张杨路500号"),
])
def test_addresses_written_differently_are_one(a, b):
    assert normalise_address(a) == normalise_address(b)


def test_different_addresses_stay_apart():
    assert normalise_address("学院路1号") != normalise_address("学院路12号")
    # a street named like a district keeps its name
    assert normalise_address("区府路5号").startswith("区府路")


def test_an_excel_register(tmp_path):
    b, s, _ = _city()
    table = pd.DataFrame({"楼栋编号": b["id"], "户数": b["households"].astype(int)})
    table.to_excel(tmp_path / "台账.xlsx", sheet_name="楼栋", index=False)
    got = gridmap.delineate(b.drop(columns=["households"]), s,
                            population=str(tmp_path / "台账.xlsx") + "#楼栋",
                            population_key="楼栋编号", count_column="户数", target=600,
                            tolerance=0.15, seed=0)
    want = gridmap.delineate(b, s, target=600, tolerance=0.15, seed=0)
    assert got.buildings["grid_id"].tolist() == want.buildings["grid_id"].tolist()
    assert got.unmatched.empty
