"""A synthetic district on a real street network: Wuhan's streets, generated buildings.

    python benchmarks/synthetic.py --buildings 100000 --out /tmp/wuhan100k

The streets are real (OpenStreetMap, ../shared/data/wuhan-streets, ODbL); the
buildings are **synthetic**: a seeded generator fills every street block of a
square window around the city centre with rectangular footprints in rows, set
back from the streets, with storeys drawn from a mix of low-rise and towers.
Households are left to gridmap's floor-area estimate, as with OSM data.  The
window grows until it holds the number of buildings asked for.  The same seed
gives the same district.

Community boundaries are synthetic too: squares of ``--community-km`` km a
side.  They are not drawn along streets because the OSM drive network has blocks
of several km² with no street inside (no service roads), which would make
street-bounded communities very unequal; gridmap cuts blocks along community
outlines and counts those outlines as streets.

Writes ``buildings.gpkg``, ``streets.gpkg`` and ``communities.gpkg`` into
``--out`` and prints what it made.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

HERE = Path(__file__).resolve().parent
WUHAN = HERE.parent.parent / "shared" / "data" / "wuhan-streets" / "wuhan_8989_original.parquet"
# the centre of the window: Wuhan's old town by the Yangtze (Jianghan / Jiang'an), UTM 50N
CENTRE = (238_500.0, 3_386_000.0)


def blocks_in(streets: gpd.GeoDataFrame, half: float) -> tuple[gpd.GeoDataFrame, np.ndarray]:
    """Streets clipped to a square window and the blocks (faces) they enclose."""
    cx, cy = CENTRE
    window = shapely.box(cx - half, cy - half, cx + half, cy + half)
    s = streets[streets.intersects(window)].copy()
    s["geometry"] = s.geometry.intersection(window)
    s = s[~s.geometry.is_empty]
    lines = np.asarray(s.geometry.values)
    noded = shapely.union_all(np.append(lines, window.boundary), grid_size=0.01)
    faces = np.asarray(shapely.get_parts(shapely.polygonize(shapely.get_parts(noded))))
    return s, faces


def fill(faces: np.ndarray, rng: np.random.Generator, *, setback: float = 6.0,
         spacing: float = 26.0) -> tuple[np.ndarray, np.ndarray]:
    """Rectangular buildings in rows inside every block; returns footprints, storeys."""
    out, levels = [], []
    inner = shapely.buffer(faces, -setback, join_style="mitre")
    for blk in inner:
        if blk.is_empty or blk.area < 150:
            continue
        x0, y0, x1, y1 = blk.bounds
        xs = np.arange(x0 + spacing / 2, x1, spacing)
        ys = np.arange(y0 + spacing / 2, y1, spacing)
        if not len(xs) or not len(ys):
            continue
        gx, gy = np.meshgrid(xs, ys)
        gx = gx.ravel() + rng.uniform(-2, 2, gx.size)
        gy = gy.ravel() + rng.uniform(-2, 2, gy.size)
        w = rng.uniform(9, 18, gx.size)
        h = rng.uniform(9, 20, gx.size)
        boxes = shapely.box(gx - w / 2, gy - h / 2, gx + w / 2, gy + h / 2)
        keep = shapely.contains(blk, boxes)
        out.append(boxes[keep])
        k = int(keep.sum())
        # mostly 3-7 storeys (old town, work-unit housing), some towers
        tower = rng.random(k) < 0.08
        levels.append(np.where(tower, rng.integers(15, 33, k), rng.integers(3, 8, k)))
    return np.concatenate(out), np.concatenate(levels)


def district(n_buildings: int = 100_000, *, seed: int = 0,
             streets_path: Path = WUHAN) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """About ``n_buildings`` synthetic buildings on the real Wuhan streets."""
    streets = gpd.read_parquet(streets_path)[["highway", "geometry"]]
    streets["highway"] = streets["highway"].astype(str)
    half = 1500.0
    while True:
        rng = np.random.default_rng(seed)
        s, faces = blocks_in(streets, half)
        geoms, levels = fill(faces, rng)
        if len(geoms) >= n_buildings or half > 25_000:
            break
        half *= max(1.05, min(1.6, np.sqrt(n_buildings / max(len(geoms), 1))))
    # keep the n nearest the centre, so the count is exact and the district compact
    c = shapely.centroid(geoms)
    d = np.hypot(shapely.get_x(c) - CENTRE[0], shapely.get_y(c) - CENTRE[1])
    order = np.argsort(d, kind="stable")[:n_buildings]
    order.sort()
    b = gpd.GeoDataFrame(
        {"id": np.arange(1, len(order) + 1), "building": "residential",
         "building:levels": levels[order]},
        geometry=geoms[order], crs=streets.crs,
    )
    reach = shapely.buffer(shapely.box(*b.total_bounds), 200)
    return b, s[s.intersects(reach)].reset_index(drop=True)


def communities(buildings: gpd.GeoDataFrame, size: float = 1200.0) -> gpd.GeoDataFrame:
    """Square communities of ``size`` metres over the buildings (synthetic)."""
    x0, y0, x1, y1 = buildings.total_bounds
    x0, y0, x1, y1 = x0 - 100, y0 - 100, x1 + 100, y1 + 100
    xs = np.arange(x0, x1, size)
    ys = np.arange(y0, y1, size)
    boxes = [shapely.box(x, y, min(x + size, x1), min(y + size, y1)) for y in ys for x in xs]
    c = gpd.GeoDataFrame(geometry=boxes, crs=buildings.crs)
    held = np.unique(shapely.STRtree(np.asarray(c.geometry.values))
                     .query(shapely.centroid(buildings.geometry.values), predicate="within")[1])
    c = c.iloc[held].reset_index(drop=True)
    c.insert(0, "community_id", [f"C{k + 1:03d}" for k in range(len(c))])
    c.insert(1, "subdistrict_id", "S01")
    return c


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--buildings", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--community-km", type=float, default=1.2)
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    t = time.perf_counter()
    b, s = district(a.buildings, seed=a.seed)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    b.to_file(out / "buildings.gpkg", engine="pyogrio")
    s.to_file(out / "streets.gpkg", engine="pyogrio")
    c = communities(b, a.community_km * 1000)
    c.to_file(out / "communities.gpkg", engine="pyogrio")
    x0, y0, x1, y1 = b.total_bounds
    print(f"{len(b):,} synthetic buildings, {len(s):,} real street segments, "
          f"{len(c)} communities, {(x1 - x0) / 1000:.1f} × {(y1 - y0) / 1000:.1f} km, "
          f"{time.perf_counter() - t:.1f} s -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
