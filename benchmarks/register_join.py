"""A household register by address, joined to real buildings: the same plan as the counts.

Usage::

    python benchmarks/register_join.py [NAME ...]

For each of ``benchmarks/realdata.py``'s OSM data sets (default: bundled,
monaco-osm, hongkong-tst-osm, beijing-tsinghua-osm) the buildings' own
OpenStreetMap addresses (``addr:street`` + ``addr:housenumber``) are used: a
register of one row per household (the plan's estimated households, rounded)
is written for every building that has an address, each row's address spelled
as registers spell it (a city and district prefix, full-width digits, a room
or unit after the number), 3 % of the rows given addresses no building has,
saved as GBK.  Then the district is delineated twice: with that CSV as
``population`` joined by address, and with the same counts put on the buildings
(0 where a building has no address, or one it shares with another building).
Printed: buildings with an address of their own, rows,
rows matched and unmatched, whether both plans give every building the same
grid, and the seconds of each run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import realdata

import gridmap
from gridmap.register import building_addresses

DEFAULT = ("bundled", "monaco-osm", "hongkong-tst-osm", "beijing-tsinghua-osm")
_FULL = str.maketrans("0123456789", "０１２３４５６７８９")


def register_for(addresses: np.ndarray, households: np.ndarray,
                 rng: np.random.Generator) -> pd.DataFrame:
    """One row per household of every addressed building, 3 % of them unmatched."""
    rows = []
    for a, hh in zip(addresses.tolist(), households.tolist(), strict=True):
        if not a:
            continue
        for r in range(round(hh)):
            style = r % 3
            # a number ending the address takes 号 before a unit, as registers write it
            unit = f"{a}号" if a[-1:].isdigit() else a
            text = (f"上海市黄浦区{a} {r + 1}室" if style == 0 else
                    a.translate(_FULL) if style == 1 else f"{unit}{r % 4 + 1}单元")
            rows.append({"户号": f"H{len(rows) + 1:06d}", "门牌地址": text})
    reg = pd.DataFrame(rows)
    lost = rng.choice(len(reg), size=round(0.03 * len(reg)), replace=False)
    reg.loc[lost, "门牌地址"] = [f"无此路{900 + k}号" for k in range(len(lost))]
    return reg


def run(name: str, folder: Path) -> dict[str, object]:
    spec = realdata.DATASETS[name]()
    kw = {k: v for k, v in spec.kwargs.items() if k != "buildings"}
    b = spec.items.copy()
    if "other_tags" in b.columns:  # an extract read raw: its addresses are in other_tags
        for tag in ("addr:street", "addr:housenumber"):
            b[tag] = b["other_tags"].str.extract(rf'"{tag}"=>"([^"]*)"')[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = gridmap.delineate(buildings=b, **kw)
        # the plan's buildings are the input's, in the input's order
        hh = first.buildings["households"].to_numpy(dtype=float)
        addresses = building_addresses(b)
        # an address several buildings share (a footprint in parts) sends its rows
        # to the first of them: left out, so that the counts can be put on the
        # buildings the register names
        shared = pd.Series(addresses).map(pd.Series(addresses).value_counts()) > 1
        addresses = np.where(shared.to_numpy(), "", addresses)
        reg = register_for(addresses, hh, np.random.default_rng(0))
        # few buildings carry an address in OSM: a target the register can fill
        kw["target"] = min(float(kw["target"]), 0.97 * len(reg) / 4)
        path = folder / f"{name}_register.csv"
        reg.to_csv(path, index=False, encoding="gbk")
        bare = b.drop(columns=[c for c in ("households", "pop_actual") if c in b.columns])
        t0 = time.perf_counter()
        joined = gridmap.delineate(buildings=bare, population=str(path),
                                   population_address="门牌地址", **kw)
        t_reg = time.perf_counter() - t0
        counts = bare.copy()
        counts["households"] = np.where(addresses != "", np.round(hh), 0.0)
        # the rows the register lost are not in the counts either
        lost = joined.unmatched
        t0 = time.perf_counter()
        want = gridmap.delineate(buildings=counts.assign(
            households=_less(counts, addresses, reg, lost)), **kw)
        t_cnt = time.perf_counter() - t0
    r = joined.metrics["register"]
    same = joined.buildings["grid_id"].tolist() == want.buildings["grid_id"].tolist()
    return {"data": name, "buildings": len(b), "addressed": int((addresses != "").sum()),
            "rows": r["rows"], "matched": r["matched_rows"], "unmatched": r["unmatched_rows"],
            "same plan": same, "grids": len(joined.grids),
            "s (register)": round(t_reg, 1), "s (counts)": round(t_cnt, 1)}


def _less(counts: pd.DataFrame, addresses: np.ndarray, reg: pd.DataFrame,
          lost: pd.DataFrame) -> np.ndarray:
    """The counts less the rows that matched no building (they were households too)."""
    hh = counts["households"].to_numpy(dtype=float).copy()
    gone = reg.loc[lost["row"].to_numpy() - 2, "户号"]
    # the register's rows run building by building: map each row back to its building
    owner = np.repeat(np.flatnonzero(addresses != ""),
                      np.round(hh[addresses != ""]).astype(int))
    np.subtract.at(hh, owner[reg.index[reg["户号"].isin(gone)]], 1.0)
    return hh


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", default=list(DEFAULT))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run(n, Path(tmp)) for n in args.names]
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
