"""The golden plan: the bundled data's plan at seed 0, stored and compared exactly.

The README's command (``gridmap delineate --buildings data/shanghai_bund.gpkg
--streets data/shanghai_bund.gpkg --target 300 --tolerance 0.1 --by
households``) gives one plan; its grid ids, codes and households per grid
(``golden/bund_seed0_grids.csv``) and every building's grid
(``golden/bund_seed0_buildings.csv``) were saved from the code *before* the
restructuring of issue 20, which gave exactly these; they were made again when
issue 21 (one objective and a budget of work for the balancing, default effort)
changed the plan on purpose.  A refactor must give exactly these; a change that
changes a plan shows here at once, with the grids and buildings that differ.

When a change of plan is intended, regenerate the files (about a minute) and
say why in the changelog::

    python tests/test_golden.py

which runs the README's command into a temporary folder and writes both CSVs
(the same as ``gridmap delineate ... --out DIR`` then :func:`write_golden` on
``gridmap.read_plan(DIR)``).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

GOLDEN = Path(__file__).resolve().parent / "golden"
BUILDINGS = GOLDEN / "bund_seed0_buildings.csv"
GRIDS = GOLDEN / "bund_seed0_grids.csv"
#: how many differing rows a failure lists
SHOWN = 15


def _grids(plan) -> pd.DataFrame:
    g = plan.grids[["grid_id", "code", "households"]].copy()
    g["grid_id"] = g["grid_id"].astype("int64")
    g["code"] = g["code"].astype(str)
    g["households"] = g["households"].astype(float)
    return g.sort_values("grid_id").reset_index(drop=True)


def _buildings(plan) -> pd.DataFrame:
    b = pd.DataFrame({"id": plan.buildings["id"].astype(str).to_numpy(),
                      "grid_id": plan.buildings["grid_id"].astype("int64").to_numpy()})
    return b


def write_golden(plan) -> None:
    """Write ``plan``'s grids and buildings as the golden files."""
    GOLDEN.mkdir(exist_ok=True)
    _grids(plan).to_csv(GRIDS, index=False)
    _buildings(plan).to_csv(BUILDINGS, index=False)


def _read_golden() -> tuple[pd.DataFrame, pd.DataFrame]:
    grids = pd.read_csv(GRIDS, dtype={"grid_id": "int64", "code": str,
                                      "households": float})
    buildings = pd.read_csv(BUILDINGS, dtype={"id": str, "grid_id": "int64"})
    return grids, buildings


def _grid_differences(want: pd.DataFrame, got: pd.DataFrame) -> list[str]:
    w, g = want.set_index("grid_id"), got.set_index("grid_id")
    out = [f"grid {i} missing (was code {w.at[i, 'code']}, {w.at[i, 'households']:g} "
           "households)" for i in w.index.difference(g.index)]
    out += [f"grid {i} new (code {g.at[i, 'code']}, {g.at[i, 'households']:g} households)"
            for i in g.index.difference(w.index)]
    for i in w.index.intersection(g.index):
        a, b = w.loc[i], g.loc[i]
        if a["code"] != b["code"] or a["households"] != b["households"]:
            out.append(f"grid {i}: code {a['code']} → {b['code']}, households "
                       f"{a['households']:g} → {b['households']:g}")
    return out


def _building_differences(want: pd.DataFrame, got: pd.DataFrame) -> list[str]:
    w = want.set_index("id")["grid_id"]
    g = got.set_index("id")["grid_id"]
    out = [f"building {i} missing (was in grid {w[i]})" for i in w.index.difference(g.index)]
    out += [f"building {i} new (in grid {g[i]})" for i in g.index.difference(w.index)]
    both = w.index.intersection(g.index)
    moved = both[(w[both] != g[both]).to_numpy()]
    out += [f"building {i}: grid {w[i]} → {g[i]}" for i in moved]
    return out


def _say(what: str, diffs: list[str]) -> str:
    more = f"\n  … and {len(diffs) - SHOWN} more" if len(diffs) > SHOWN else ""
    return (f"{len(diffs)} {what} differ from the golden plan (tests/golden; see this "
            "module's docstring to regenerate when the change is intended):\n  "
            + "\n  ".join(diffs[:SHOWN]) + more)


def test_the_bundled_plan_is_the_golden_plan(bundled_plan):
    """Same grid ids, codes and households, and every building in the same grid."""
    want_grids, want_buildings = _read_golden()
    got_grids, got_buildings = _grids(bundled_plan), _buildings(bundled_plan)
    assert not got_buildings["id"].duplicated().any()
    diffs = _grid_differences(want_grids, got_grids)
    assert not diffs, _say("grid(s)", diffs)
    diffs = _building_differences(want_buildings, got_buildings)
    assert not diffs, _say("building(s)", diffs)


def test_the_golden_comparison_names_what_differs():
    """The messages say which grids and buildings differ (the check can fail)."""
    grids, buildings = _read_golden()
    assert len(grids) > 100 and len(buildings) > 1000
    assert grids["grid_id"].tolist() == list(range(1, len(grids) + 1))
    assert grids["code"].is_monotonic_increasing and grids["code"].str.len().eq(15).all()
    changed = grids.copy()
    changed.loc[2, "households"] += 1
    changed = changed.drop(index=5)
    diffs = _grid_differences(grids, changed)
    assert len(diffs) == 2
    assert diffs[0].startswith("grid 6 missing")
    assert diffs[1].startswith("grid 3: code") and "→" in diffs[1]
    moved = buildings.copy()
    moved.loc[0, "grid_id"] = 999
    diffs = _building_differences(buildings, moved)
    assert diffs == [f"building {buildings.at[0, 'id']}: grid "
                     f"{buildings.at[0, 'grid_id']} → 999"]
    assert "1 building(s) differ" in _say("building(s)", diffs)


if __name__ == "__main__":  # regenerate the golden files (an intended change of plan)
    import tempfile

    import gridmap
    from gridmap.cli import main

    data = Path(__file__).resolve().parents[1] / "data" / "shanghai_bund.gpkg"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "shanghai"
        rc = main(["delineate", "--buildings", str(data), "--streets", str(data),
                   "--target", "300", "--tolerance", "0.1", "--by", "households",
                   "--out", str(out), "--quiet"])
        if rc:
            raise SystemExit(rc)
        write_golden(gridmap.read_plan(out))
    print(f"wrote {GRIDS} and {BUILDINGS}")
