"""The partition on Dask against one community after another, same district.

    python benchmarks/parallel.py [--district /tmp/wuhan100k] [--dask ADDRESS]

Runs ``gridmap delineate`` twice on a district made by ``benchmarks/synthetic.py``
(real Wuhan streets, synthetic buildings and square communities; made first
with ``--buildings 100000`` if the folder is empty): once with the communities
one after another, once with ``--dask`` (a cluster on this machine, a worker
per core, or the scheduler at ADDRESS).  Prints each stage's seconds from
``metrics.json``, the partition's speed-up, and whether the two plans are the
same building by building.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import geopandas as gpd

ROOT = Path(__file__).resolve().parents[1]


def run(district: Path, out: Path, extra: list[str]) -> tuple[float, dict]:
    cmd = [sys.executable, "-m", "gridmap.cli", "delineate",
           "--buildings", str(district / "buildings.gpkg"),
           "--streets", str(district / "streets.gpkg"),
           "--boundaries", str(district / "communities.gpkg"),
           "--target", "300", "--tolerance", "0.1", "--no-map", "--quiet",
           "--out", str(out), *extra]
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    wall = time.perf_counter() - t
    return wall, json.loads((out / "metrics.json").read_text())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--district", type=Path, default=Path("/tmp/wuhan100k"))
    ap.add_argument("--out", type=Path, default=Path("/tmp/gridmap-parallel"))
    ap.add_argument("--dask", default="", metavar="ADDRESS",
                    help="a Dask scheduler's address (default: a cluster on this machine)")
    args = ap.parse_args(argv)
    if not (args.district / "buildings.gpkg").exists():
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "synthetic.py"),
                        "--buildings", "100000", "--out", str(args.district)], check=True)
    print(f"machine: {os.cpu_count()} cores; district {args.district}", flush=True)
    serial = run(args.district, args.out / "serial", [])
    dask = run(args.district, args.out / "dask", ["--dask", *([args.dask] if args.dask else [])])
    print(f"{'stage':<12}{'one by one (s)':>16}{'on Dask (s)':>14}")
    for stage, t in serial[1]["timings"].items():
        if not isinstance(t, dict):
            continue
        d = dask[1]["timings"].get(stage, {})
        print(f"{stage:<12}{t.get('seconds', 0):>16.1f}{d.get('seconds', 0):>14.1f}")
    print(f"{'whole run':<12}{serial[0]:>16.1f}{dask[0]:>14.1f}")
    sp = serial[1]["timings"]["partition"]["seconds"] / dask[1]["timings"]["partition"]["seconds"]
    print(f"partition speed-up on Dask: {sp:.2f}x "
          f"({serial[1]['n_grids']} grids, {len(serial[1].get('cv_by_community', {}))} "
          "communities)")
    a = gpd.read_file(args.out / "serial" / "plan.gpkg", layer="buildings")
    b = gpd.read_file(args.out / "dask" / "plan.gpkg", layer="buildings")
    same = a["grid_id"].tolist() == b["grid_id"].tolist()
    print(f"same plan, building by building: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
