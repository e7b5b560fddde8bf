"""Edits drawn by hand (edits.json) applied to the plan they were drawn on (issue 25)."""

from __future__ import annotations

import json

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely
from conftest import grid_city

import gridmap
from gridmap import EditError, apply_edits
from gridmap.cli import main
from gridmap.edits import read_edits


@pytest.fixture(scope="module")
def plan():
    # 16 blocks of 2 buildings (200 households each): 8 grids of 2 blocks at 400
    b, s = grid_city(4, 4, per_block=2)
    return gridmap.delineate(b, s, target=400)


def movable(plan, n=1, *, grids_used=()):
    """``n`` moves of a unit with buildings into a neighbouring grid of its
    community that keep the grid it leaves in one piece and with buildings, each
    between grids no other move touches."""
    label = plan.units["grid_id"].to_numpy()
    comm = plan.units["grid_id"].map(plan.grids.set_index("grid_id")["community_id"])
    kind = plan.units["grid_id"].map(plan.grids.set_index("grid_id")["kind"]).to_numpy()
    used, moves = set(grids_used), []
    housed = set(plan.buildings["unit_id"])
    for u in plan.graph.nodes:
        a = label[u]
        if a in used or kind[u] != "community" or (label == a).sum() < 2 \
                or plan.units["unit_id"].iloc[u] not in housed:
            continue
        rest = [v for v in np.flatnonzero(label == a) if v != u]
        if not nx.is_connected(plan.graph.subgraph(rest)) or \
                not plan.units["unit_id"].iloc[rest].isin(housed).any():
            continue
        for v in plan.graph.neighbors(u):
            b = label[v]
            if b != a and b not in used and kind[v] == "community" and \
                    comm.iloc[v] == comm.iloc[u]:
                moves.append({"unit_id": int(plan.units["unit_id"].iloc[u]),
                              "from": int(a), "to": int(b)})
                used |= {a, b}
                break
        if len(moves) == n:
            return moves
    raise AssertionError("no unit to move")


def grid_of_buildings(p):
    id_col = p.params.get("id_column") or "id"
    return p.buildings.set_index(id_col)["grid_id"]


def check_plan(p, by="households"):
    """Invariants recomputed from the plan's own layers, not its metrics."""
    g = p.grids.to_crs(p.grids.estimate_utm_crs()) if p.grids.crs.is_geographic \
        else p.grids
    # every building in exactly one grid, and in that grid's polygon
    assert p.buildings["grid_id"].notna().all()
    assert set(p.buildings["grid_id"]) <= set(g["grid_id"])
    # the grid's figures are those of its buildings
    sums = p.buildings.groupby("grid_id")[by].sum()
    assert np.allclose(g.set_index("grid_id")[by].loc[sums.index], sums)
    # every grid in one piece; no overlap; no gap against the plan's area
    assert all(geom.geom_type == "Polygon" for geom in g.geometry), g.geom_type.tolist()
    union = shapely.union_all(g.geometry.values)
    assert abs(union.area - g.geometry.area.sum()) < 1.0
    assert p.metrics["gap_m2"] < 1.0 and p.metrics["overlap_m2"] < 1.0
    # deviation from the community mean of the ordinary grids, as the metrics say
    comm = g[g["kind"] == "community"]
    ordinary = comm[(comm["flag"].fillna("") == "") & ~comm["single_unit"].fillna(False)
                    .astype(bool)]
    mean = ordinary.groupby("community_id")[by].mean()
    dev = comm[by] / comm["community_id"].map(mean) - 1
    assert np.allclose(dev, comm["deviation"], equal_nan=True)


def test_apply_moves_the_units_and_recomputes_everything(plan):
    (move,) = movable(plan)
    after = apply_edits(plan, {"plan": plan.plan_id, "moves": [move], "note": "lane"})
    unit = move["unit_id"]
    moved_ids = plan.buildings.loc[plan.buildings["unit_id"] == unit, "id"]
    assert len(moved_ids) == 2
    now = grid_of_buildings(after)
    assert (now.loc[moved_ids] == move["to"]).all()
    # everything else where it was, ids and codes kept
    was = grid_of_buildings(plan)
    rest = was.index.difference(moved_ids)
    assert (now.loc[rest] == was.loc[rest]).all()
    codes = after.grids.set_index("grid_id")["code"]
    assert (codes == plan.grids.set_index("grid_id")["code"].loc[codes.index]).all()
    check_plan(after)
    # the two grids edited: 200 and 600 households; the others untouched
    hh = after.grids.set_index("grid_id")["households"]
    assert hh[move["from"]] == 200 and hh[move["to"]] == 600
    untouched = plan.grids[~plan.grids["grid_id"].isin([move["from"], move["to"]])]
    for gid, geom in zip(untouched["grid_id"], untouched.geometry, strict=True):
        new = after.grids.loc[after.grids["grid_id"] == gid].geometry.iloc[0]
        assert new.symmetric_difference(geom).area < 1e-6
    assert after.metrics["n_grids_out_of_tolerance"] == 2
    assert after.metrics["edits"]["note"] == "lane"
    assert after.metrics["changes"]["buildings_moved"] == 2
    assert after.previous is plan
    assert sorted(after.handover["id"].tolist()) == sorted(moved_ids.tolist())
    # the adjusted plan is another plan
    assert after.plan_id != plan.plan_id


def test_no_edits_give_the_same_plan(plan):
    after = apply_edits(plan, {"plan": plan.plan_id, "moves": []})
    assert after.plan_id == plan.plan_id
    assert after.metrics["changes"]["buildings_moved"] == 0


def test_a_building_id_moves_its_unit(plan):
    (move,) = movable(plan)
    bid = plan.buildings.loc[plan.buildings["unit_id"] == move["unit_id"], "id"].iloc[0]
    after = apply_edits(plan, {"plan": plan.plan_id,
                               "moves": [{"id": f" {bid} ", "from": str(move["from"]),
                                          "to": move["to"]}]})
    assert grid_of_buildings(after).loc[bid] == move["to"]
    assert after.metrics["edits"]["units_moved"] == 1
    assert after.metrics["changes"]["buildings_moved"] == 2  # its unit's two


def refused(plan, edits, *needles, **kw):
    with pytest.raises(EditError) as info:
        apply_edits(plan, {"plan": plan.plan_id, **edits}, **kw)
    for needle in needles:
        assert needle in str(info.value), str(info.value)
    return str(info.value)


def test_bad_edits_are_refused_with_what_is_wrong(plan):
    (move,) = movable(plan)
    with pytest.raises(EditError, match="drawn on plan 0000000000000000"):
        apply_edits(plan, {"plan": "0000000000000000", "moves": [move]})
    refused(plan, {"moves": [{**move, "from": move["to"]}]},
            f"the unit is in grid {move['from']}, not {move['to']}")
    refused(plan, {"moves": [{**move, "unit_id": 999}]}, "no unit 999")
    refused(plan, {"moves": [{**move, "to": 77}]}, "no grid '77'")
    refused(plan, {"moves": [{"id": "nobody", "from": 1, "to": 2}]},
            "no building with id 'nobody'")
    refused(plan, {"moves": [move, move]}, "moved twice")
    refused(plan, {"moves": [move], "locks": [move["to"]]}, "is locked")
    # both units of a grid moved out: it would be empty
    a = move["from"]
    units = plan.units.loc[plan.units["grid_id"] == a, "unit_id"].tolist()
    label = dict(zip(plan.units["unit_id"], plan.units["grid_id"], strict=True))
    pos = {u: i for i, u in enumerate(plan.units["unit_id"])}
    moves = []
    for u in units:
        near = [label[int(plan.units["unit_id"].iloc[v])]
                for v in plan.graph.neighbors(pos[u])]
        moves.append({"unit_id": u, "from": a, "to": next(b for b in near if b != a)})
    refused(plan, {"moves": moves}, f"grid {a} would be empty")


def test_a_grid_left_in_pieces_is_refused_unless_allowed():
    # a row of 3 blocks in one grid: taking the middle one cuts it in two
    b, s = grid_city(6, 1, per_block=1, households=100)
    plan = gridmap.delineate(b, s, target=300)
    label = plan.units["grid_id"].to_numpy()
    middle = next(u for u in plan.graph.nodes
                  if len({label[v] for v in plan.graph.neighbors(u)} | {label[u]}) == 1
                  and plan.graph.degree(u) == 2)
    other = next(int(g) for g in set(label) if g != label[middle])
    grid = int(label[middle])
    move = {"unit_id": int(plan.units["unit_id"].iloc[middle]), "from": grid, "to": other}
    # grid `other` does not touch the middle unit: the result is in pieces on both sides
    msg = refused(plan, {"moves": [move]}, f"grid {grid} would be in 2 pieces",
                  "--allow-pieces")
    assert "empty" not in msg
    after = apply_edits(plan, {"plan": plan.plan_id, "moves": [move]}, allow_pieces=True)
    assert grid in after.metrics["edits"]["grids_in_pieces"]
    assert any("in pieces" in n for n in after.metrics["notes"])


def test_the_form_of_edits_json_is_checked(tmp_path):
    with pytest.raises(EditError) as info:
        read_edits({"moves": [{"unit_id": 1, "id": 2, "to": 3}, 5], "locks": 3})
    text = str(info.value)
    for needle in ("no 'plan'", "moves[0] names both", "moves[0] has no 'from'",
                   "moves[1] is 5", "'locks' is 3"):
        assert needle in text, text
    bad = tmp_path / "edits.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(EditError, match="is not JSON"):
        read_edits(bad)
    with pytest.raises(EditError, match="no edits at"):
        read_edits(tmp_path / "missing.json")


def test_rebalance_restores_the_band_and_keeps_the_hand_moves():
    # 24 blocks of 100 households at 300: 8 grids of 3 blocks
    b, s = grid_city(6, 4, per_block=1, households=100)
    plan = gridmap.delineate(b, s, target=300)
    (move,) = movable(plan)
    edits = {"plan": plan.plan_id, "moves": [move]}
    plain = apply_edits(plan, edits)
    assert plain.metrics["n_grids_out_of_tolerance"] == 2
    after = apply_edits(plan, edits, rebalance=True)
    unit_buildings = plan.buildings.loc[plan.buildings["unit_id"] == move["unit_id"], "id"]
    assert (grid_of_buildings(after).loc[unit_buildings] == move["to"]).all()
    assert after.metrics["n_grids_out_of_tolerance"] == 0
    assert after.metrics["edits"]["rebalance_rounds"] >= 1
    check_plan(after)
    # the budget of the re-balance is the caller's
    fast = apply_edits(plan, edits, rebalance=True, effort="fast")
    assert fast.metrics["search"]["effort"] == "fast"


def test_gridmap_apply_on_the_bundled_plan(bundled_demo, tmp_path):
    """Hand-written edits on the plan of the bundled data, applied from the command
    line, checked from the files it writes."""
    before = gridmap.read_plan(bundled_demo)
    moves = movable(before, 3)
    edits = tmp_path / "edits.json"
    edits.write_text(json.dumps({"plan": before.plan_id, "by": "households",
                                 "moves": moves, "note": "入口朝南京东路"},
                                ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "adjusted"
    rc = main(["apply", "--plan", str(bundled_demo / "plan.gpkg"), "--edits", str(edits),
               "--out", str(out), "--quiet"])
    assert rc == 0
    for name in ("plan.gpkg", "metrics.json", "changes.csv", "handover.csv", "diff.html",
                 "coverage.html", "workload.html"):
        assert (out / name).exists(), name
    after = gridmap.read_plan(out)
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["edits"]["note"] == "入口朝南京东路"
    assert metrics["plan_id"] == after.plan_id != before.plan_id
    # the moved buildings are in their new grids, the rest where they were
    was, now = grid_of_buildings(before), grid_of_buildings(after)
    id_col = before.params.get("id_column") or "id"
    expect = was.copy()
    for m in moves:
        ids = before.buildings.loc[before.buildings["unit_id"] == m["unit_id"], id_col]
        assert len(ids)
        expect.loc[ids] = m["to"]
    assert (now.loc[expect.index] == expect).all()
    # figures recomputed independently from the buildings written
    check_plan(after)
    hh = after.buildings.groupby("grid_id")["households"].sum()
    changes = pd.read_csv(out / "changes.csv")
    assert int(changes["buildings"].sum()) == int((now.loc[expect.index] != was).sum())
    touched = {m["from"] for m in moves} | {m["to"] for m in moves}
    for g in touched:
        assert after.grids.set_index("grid_id").loc[g, "households"] == \
            pytest.approx(hh[g])
    # codes kept; grids no move touched keep their polygons
    old = before.grids.set_index("grid_id")
    new = after.grids.set_index("grid_id")
    assert (new["code"] == old["code"].loc[new.index]).all()
    assert set(new.index) == set(old.index)
    # the workers of every grid from its workload and the plan's capacity
    capacity = metrics["workload"]["capacity"]
    assert (new["workers"] == np.maximum(1, np.ceil(new["workload"] / capacity - 1e-9))).all()
    for g in touched:  # the workload follows the households moved
        assert new.loc[g, "workload"] != old.loc[g, "workload"]
    for g in set(old.index) - touched:
        assert new.geometry.loc[g].symmetric_difference(old.geometry.loc[g]).area < 1.0, g
    handover = pd.read_csv(out / "handover.csv", encoding="utf-8-sig")
    assert len(handover) == int((now.loc[expect.index] != was).sum())


def test_gridmap_apply_says_what_is_wrong_and_writes_nothing(plan, tmp_path, capsys):
    folder = plan.to_file(tmp_path / "plan")
    (move,) = movable(plan)
    edits = tmp_path / "edits.json"
    edits.write_text(json.dumps({"plan": plan.plan_id,
                                 "moves": [{**move, "from": move["to"]}]}), encoding="utf-8")
    out = tmp_path / "adjusted"
    rc = main(["apply", "--plan", str(folder), "--edits", str(edits), "--out", str(out),
               "--quiet", "--no-map"])
    assert rc == 1
    err = capsys.readouterr().err
    assert f"the unit is in grid {move['from']}, not {move['to']}" in err, err
    assert not out.exists() or not any(out.iterdir())
    # and the same edits, right, go through, read from the folder's plan
    edits.write_text(json.dumps({"plan": plan.plan_id, "moves": [move]}), encoding="utf-8")
    rc = main(["apply", "--plan", str(folder), "--edits", str(edits), "--out", str(out),
               "--no-map"])
    assert rc == 0
    said = capsys.readouterr().out
    assert "1 unit(s) moved by hand (2 building(s)" in said, said
    changes = pd.read_csv(out / "changes.csv")
    assert changes[["from_grid", "to_grid", "buildings"]].values.tolist() == [
        [move["from"], move["to"], 2]]


def test_gridmap_edit_writes_the_page_beside_the_plan(plan, tmp_path, capsys):
    folder = plan.to_file(tmp_path / "plan")
    assert main(["edit", str(folder)]) == 0
    page = folder / "edit.html"
    assert plan.plan_id in page.read_text(encoding="utf-8")
    assert "gridmap apply --plan" in capsys.readouterr().out
    # not over an existing page unless asked
    assert main(["edit", str(folder / "plan.gpkg")]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert main(["edit", str(folder), "--overwrite", "--quiet",
                 "--out", str(tmp_path / "mine.html")]) == 0
    assert (tmp_path / "mine.html").exists()
