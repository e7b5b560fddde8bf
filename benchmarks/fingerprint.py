"""Fingerprints of the plans of the real data sets, to tell whether a change changed a plan.

Usage::

    python benchmarks/fingerprint.py [NAME ...] [--seed 0] [--json FILE]

NAME is one of ``benchmarks/realdata.py``'s data sets (default: bundled,
monaco-osm, beijing-tsinghua-osm, providence-blocks).  For each plan it prints
the number of grids, grids out of tolerance, the seconds taken, and four hashes:
the grid ids with their codes, every building's (or unit's) grid, the grids'
geometry (WKB on a millimetre grid) and the grids' figures (households and
deviation to 1e-9).  Two versions make the same plan when all four agree.  With
``--json`` the fingerprints are written to FILE, and compared with FILE when it
exists (exit 1 when a plan differs).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parent))
import realdata

import gridmap

DEFAULT = ("bundled", "monaco-osm", "beijing-tsinghua-osm", "providence-blocks")


def _digest(parts: Any) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def fingerprint(plan: gridmap.GridPlan, id_col: str | None) -> dict[str, Any]:
    """The hashes of a plan (see the module's docstring)."""
    g = plan.grids.sort_values("grid_id")
    rows = plan.buildings if len(plan.buildings) else plan.units
    key = id_col if id_col is not None and id_col in rows else None
    ids = rows[key].astype(str).tolist() if key else list(range(len(rows)))
    geoms = shapely.set_precision(np.asarray(g.to_crs(g.estimate_utm_crs()).geometry.values),
                                  1e-3)
    value = "households" if "households" in g else plan.params.get("by", "households")
    return {
        "grids": len(g),
        "out": int(plan.metrics.get("n_out_of_tolerance", 0)),
        "ids_codes": _digest(list(zip(g["grid_id"].tolist(), g["code"].astype(str).tolist(),
                                      strict=True))),
        "assignment": _digest(sorted(zip(ids, rows["grid_id"].tolist(), strict=True))),
        "geometry": _digest([shapely.to_wkb(x, hex=True) for x in
                             shapely.normalize(geoms)]),
        "figures": _digest([round(float(v), 9) for v in g[value].tolist()]
                           + [round(float(v), 9) for v in g["deviation"].fillna(0).tolist()]),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", default=list(DEFAULT))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    found: dict[str, Any] = {}
    for name in args.names:
        spec = realdata.DATASETS[name]()
        t0 = time.perf_counter()
        plan = gridmap.delineate(**{**spec.kwargs, "seed": args.seed, "progress": False})
        fp = fingerprint(plan, spec.item_id)
        fp["seconds"] = round(time.perf_counter() - t0, 1)
        found[name] = fp
        print(name, json.dumps(fp), flush=True)
    if args.json is None:
        return 0
    if args.json.exists():
        before = json.loads(args.json.read_text())
        differ = [n for n in found if n in before and
                  {k: v for k, v in before[n].items() if k != "seconds"}
                  != {k: v for k, v in found[n].items() if k != "seconds"}]
        print("same plans" if not differ else f"plans differ: {differ}")
        return 1 if differ else 0
    args.json.write_text(json.dumps(found, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
