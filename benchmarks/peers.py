"""gridmap's partition stage against the peers, on the same unit graphs, in one run.

Usage::

    python benchmarks/peers.py [--quick] [--cap SECONDS] [--gerrychain-cap SECONDS]
                               [--cases a,b,c,d] [--methods gerrychain,maxp,...]
                               [--no-command] [--out TABLE.md]

The peers are GerryChain's ``recursive_tree_part`` (the strongest balanced and
contiguous baseline) and spopt's max-p, SKATER, AZP and Region-KMeans; install
them with ``pip install -e '.[bench]'``.  A peer that is not installed is shown
as "not installed"; a peer that does not finish within ``--cap`` seconds is
stopped and shown as "timed out > N s" (every method runs in a child process,
so a slow one cannot hang the run).  A peer that timed out is not run again on
a case with as many units or more.  GerryChain, the baseline of the targets,
has its own, longer cap (``--gerrychain-cap``, default 1,800 s).

The cases (``--quick``: (b) a 40 × 40 lattice into 48 grids, (c) the units of
2,000 buildings into 60 grids, no (d), a 30 s cap):

(a) ``providence``: 3,014 real 2010 census blocks of Providence, RI
    (../shared/data/providence-blocks) into 15 grids by ``TOTPOP`` at ±5 %, the
    same call as ``benchmarks/realdata.py``.
(b) ``lattice10000``: a regular 100 × 100 lattice of 10 m squares with seeded
    weights (integers 10-50) into 300 grids at ±5 %.
(c) ``wuhan10k``: the about 10,000 units gridmap makes from the 10,000
    buildings nearest the centre of the synthetic Wuhan district
    (``benchmarks/synthetic.py``: real OpenStreetMap streets, **synthetic**
    buildings), every block split into one cell per building
    (``split_above=1e-6``), weighted by estimated households, into 300 grids at
    ±5 %.  The units are made once and kept in ``--cache``.
(e) ``wuhan10k-100``: the units of (c) into 100 grids at ±5 %, the shape of the
    census city of issue 21 (10,149 blocks into 100 grids), which is not at hand.
(d) ``wuhan100k``: the same for all 100,000 buildings (``/tmp/wuhan100k``), into
    grids of about 300 households at ±5 %; gridmap and GerryChain only.  Making
    its units once took 27 minutes on the 2-core benchmark machine under load.

Every method is given the same graph: gridmap's unit adjacency
(:func:`gridmap.adjacency.build_adjacency`, units sharing an edge longer than
1 cm), as gridmap's ``UnitGraph`` for gridmap, a GerryChain ``Graph`` for
GerryChain and a libpysal ``W`` for spopt.  Building these is not timed; the
time is that of the partition call alone (``partition_graph``,
``recursive_tree_part``, ``solve()``): wall clock, and CPU (process) time, the
fairer figure on a machine shared with other work.  The same number of grids ``k`` is asked
of every method (max-p chooses its own: its floor is the lower end of the
band, ``(1 - tolerance) × total / k``).  spopt's methods minimise the spread
of an attribute within regions; they are given the units' centroid
coordinates, which makes them seek compact regions.  SKATER gets a floor of
half the units per grid (its floor counts units, not weight).

Figures, computed the same way for every method from its labels:

- grids made; max deviation from the mean, ``max |w_g / (W / n_grids) - 1|``;
  grids out of tolerance (``|w_g / mean - 1| > tolerance``);
- mean Polsby-Popper ``4πA/P²`` of each grid's dissolved unit polygons (holes
  count in the perimeter);
- contiguity: "yes" when every grid is one piece in the unit graph, else the
  number of grids in several pieces (units left without a grid count as such).

With case (c) the whole ``gridmap delineate --units`` command (reading the
file, units, adjacency, partition, metrics, maps, writing) is timed too, start
to finish in a fresh process (CPU time from ``getrusage`` of the child), against
GerryChain's call alone, with the seconds of each stage from ``metrics.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import multiprocessing as mp
import queue
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from gridmap.adjacency import build_adjacency
from gridmap.partition import UnitGraph, partition_graph

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "data"
PROVIDENCE = SHARED / "providence-blocks" / "blocks.zip"
WUHAN = Path("/tmp/wuhan100k")
CACHE = Path(tempfile.gettempdir()) / "gridmap-bench"
PEERS = ("gerrychain", "maxp", "skater", "azp", "region_kmeans")
LABELS = {
    "gridmap": "gridmap partition_graph",
    "gerrychain": "GerryChain recursive_tree_part",
    "maxp": "spopt MaxPHeuristic",
    "skater": "spopt Skater",
    "azp": "spopt AZP",
    "region_kmeans": "spopt RegionKMeansHeuristic",
    "command": "gridmap delineate --units (whole command)",
}


# --------------------------------------------------------------------------- cases
@dataclass
class Case:
    """Units to partition: polygons in a metric CRS, weights, grids wanted."""

    name: str
    what: str
    geoms: np.ndarray
    weight: np.ndarray
    k: int
    tolerance: float
    crs: Any = None
    peers: tuple[str, ...] = PEERS
    units_file: Path | None = None  # for timing the whole command
    by: str = "weight"
    edges: tuple[np.ndarray, np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    @property
    def n(self) -> int:
        return len(self.geoms)

    @property
    def mean(self) -> float:
        return float(self.weight.sum()) / self.k


def lattice_case(side: int = 100, k: int = 300, *, tolerance: float = 0.05, cell: float = 10.0,
                 seed: int = 0) -> Case:
    """A ``side`` × ``side`` lattice of squares with seeded integer weights 10-50.

    Examples
    --------
    >>> c = lattice_case(4, 2)
    >>> c.n, c.k, len(c.weight)
    (16, 2, 16)
    """
    x, y = np.meshgrid(np.arange(side) * cell, np.arange(side) * cell)
    x, y = x.ravel(), y.ravel()
    geoms = shapely.box(x, y, x + cell, y + cell)
    weight = np.random.default_rng(seed).integers(10, 51, size=side * side).astype(float)
    return Case(f"lattice{side * side}", f"regular {side}×{side} lattice, seeded weights "
                "10-50 (synthetic)", geoms, weight, k, tolerance, crs="EPSG:32650")


def providence_case() -> Case:
    """3,014 census blocks of Providence into 15 grids by TOTPOP at ±5 %."""
    blocks = gpd.read_file("zip://" + str(PROVIDENCE))
    m = blocks.to_crs(blocks.estimate_utm_crs())
    return Case("providence", "Providence 2010 census blocks, TOTPOP (real)",
                np.asarray(m.geometry.values), m["TOTPOP"].to_numpy(dtype=float), 15, 0.05,
                crs=m.crs, units_file=None)


def wuhan_units(n_buildings: int, cache: Path = CACHE) -> Path:
    """The units gridmap makes near the centre of the synthetic Wuhan district.

    One cell for each of the ``n_buildings`` buildings nearest the centre (made once).
    """
    out = cache / f"wuhan{n_buildings // 1000}k_units.gpkg"
    if out.exists():
        return out
    import gridmap

    if not (WUHAN / "buildings.gpkg").exists():
        raise FileNotFoundError(
            f"no synthetic Wuhan district in {WUHAN}; make it with "
            f"`python benchmarks/synthetic.py --buildings 100000 --out {WUHAN}`")
    b = gpd.read_file(WUHAN / "buildings.gpkg")
    s = gpd.read_file(WUHAN / "streets.gpkg")
    if n_buildings < len(b):
        c = shapely.centroid(b.geometry.values)
        x, y = shapely.get_x(c), shapely.get_y(c)
        d = np.hypot(x - np.median(x), y - np.median(y))
        b = b.iloc[np.argsort(d, kind="stable")[:n_buildings]].reset_index(drop=True)
    t = time.perf_counter()
    print(f"making the units of {len(b):,} buildings (once, kept in {out}) ...", flush=True)
    # the target only matters for the grids, which are not kept: a large one
    # keeps a single community under the 999 grids a grid code can number
    plan = gridmap.delineate(b, s, target=300 if len(b) <= 20_000 else 3_000,
                             tolerance=0.05, split_above=1e-6)
    u = plan.units[["unit_id", "households", "geometry"]]
    cache.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".part.gpkg")
    u.to_file(tmp, layer="units", engine="pyogrio")
    tmp.replace(out)  # whole or not at all
    print(f"  {len(u):,} units in {time.perf_counter() - t:.0f} s", flush=True)
    return out


def wuhan_case(n_buildings: int, k: int | None, *, tolerance: float = 0.05,
               per_grid: float = 300.0, cache: Path = CACHE) -> Case:
    """Case (c) or (d): the Wuhan units; ``k`` grids, or total / ``per_grid``."""
    path = wuhan_units(n_buildings, cache)
    u = gpd.read_file(path)
    w = u["households"].to_numpy(dtype=float)
    k = k or max(1, round(w.sum() / per_grid))
    peers = PEERS if n_buildings <= 20_000 else ("gerrychain",)
    return Case(f"wuhan{n_buildings // 1000}k",
                f"{len(u):,} units of {n_buildings:,} synthetic buildings on real Wuhan "
                "streets, households (synthetic)", np.asarray(u.geometry.values), w, k,
                tolerance, crs=u.crs, peers=peers, units_file=path, by="households")


# --------------------------------------------------------------------------- graph
def case_edges(case: Case) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The adjacency gridmap finds between the case's units: ``i``, ``j``, the cut cost."""
    if case.edges is None:
        # every unit its own block, no streets: as delineate does for --units
        adj = build_adjacency(case.geoms, block=np.arange(case.n))
        case.edges = (adj.i, adj.j, adj.length * adj.cost)
    return case.edges


def unit_graph(case: Case) -> UnitGraph:
    i, j, cut = case_edges(case)
    c = shapely.centroid(case.geoms)
    xy = np.column_stack([shapely.get_x(c), shapely.get_y(c)])
    return UnitGraph.from_edges(case.n, case.weight, xy, i, j, cut)


# --------------------------------------------------------------------------- methods
# Each method is prepared (its graph built: not timed), then solved (timed).
Solve = Callable[[], np.ndarray]


def prep_gridmap(case: Case, seed: int = 0) -> Solve:
    g = unit_graph(case)
    return lambda: partition_graph(g, np.zeros(case.n, dtype=np.int64), target=case.mean,
                                   tolerance=case.tolerance, seed=seed).labels


def prep_gerrychain(case: Case, seed: int = 0) -> Solve:
    import networkx as nx
    from gerrychain import Graph
    from gerrychain.partition import recursive_tree_part

    i, j, _ = case_edges(case)
    nxg = nx.Graph()
    nxg.add_nodes_from((u, {"pop": float(w)}) for u, w in enumerate(case.weight.tolist()))
    nxg.add_edges_from(zip(i.tolist(), j.tolist(), strict=True))
    graph = Graph.from_networkx(nxg)

    def solve() -> np.ndarray:
        assign = recursive_tree_part(graph, range(case.k), case.mean, "pop", case.tolerance,
                                     rng=seed)
        lab = np.full(case.n, -1, dtype=np.int64)
        for node, part in assign.items():
            lab[int(node)] = int(part)
        return lab

    return solve


def _spopt_inputs(case: Case) -> tuple[gpd.GeoDataFrame, Any]:
    from libpysal.weights import W

    i, j, _ = case_edges(case)
    nbrs: dict[int, list[int]] = {u: [] for u in range(case.n)}
    for a, b in zip(i.tolist(), j.tolist(), strict=True):
        nbrs[a].append(b)
        nbrs[b].append(a)
    w = W(nbrs, silence_warnings=True)
    c = shapely.centroid(case.geoms)
    x, y = shapely.get_x(c), shapely.get_y(c)
    gdf = gpd.GeoDataFrame(
        {"x": (x - x.mean()) / (x.std() or 1), "y": (y - y.mean()) / (y.std() or 1),
         "weight": case.weight}, geometry=case.geoms, crs=case.crs)
    return gdf, w


def _solve_spopt(model: Any) -> Solve:
    def solve() -> np.ndarray:
        model.solve()
        return np.asarray(model.labels_, dtype=np.int64)

    return solve


def prep_maxp(case: Case, seed: int = 0) -> Solve:
    from spopt.region import MaxPHeuristic

    gdf, w = _spopt_inputs(case)
    np.random.seed(seed)  # noqa: NPY002 - spopt's max-p draws from the global generator
    return _solve_spopt(MaxPHeuristic(
        gdf, w, ["x", "y"], "weight", case.mean * (1 - case.tolerance), top_n=2,
        max_iterations_construction=10, max_iterations_sa=10))


def prep_skater(case: Case, seed: int = 0) -> Solve:
    from spopt.region import Skater

    gdf, w = _spopt_inputs(case)
    return _solve_spopt(Skater(gdf, w, ["x", "y"], n_clusters=case.k,
                               floor=case.n // (2 * case.k), islands="ignore"))


def prep_azp(case: Case, seed: int = 0) -> Solve:
    from spopt.region import AZP

    gdf, w = _spopt_inputs(case)
    return _solve_spopt(AZP(gdf, w, ["x", "y"], n_clusters=case.k, random_state=seed))


def prep_region_kmeans(case: Case, seed: int = 0) -> Solve:
    from spopt.region import RegionKMeansHeuristic

    gdf, w = _spopt_inputs(case)
    return _solve_spopt(RegionKMeansHeuristic(gdf[["x", "y"]].to_numpy(), case.k, w,
                                              seed=seed))


RUNNERS: dict[str, Callable[[Case, int], Solve]] = {
    "gridmap": prep_gridmap,
    "gerrychain": prep_gerrychain,
    "maxp": prep_maxp,
    "skater": prep_skater,
    "azp": prep_azp,
    "region_kmeans": prep_region_kmeans,
}
IMPORTS = {"gerrychain": "gerrychain", "maxp": "spopt", "skater": "spopt", "azp": "spopt",
           "region_kmeans": "spopt"}
SETUP_CAP = 600.0  # seconds allowed to build a method's graph (not timed)


def installed(method: str) -> bool:
    """Whether the package a method needs can be imported."""
    import importlib.util

    mod = IMPORTS.get(method)
    return mod is None or importlib.util.find_spec(mod) is not None


def _child(method: str, case: Case, seed: int, out: Any) -> None:
    try:
        solve = RUNNERS[method](case, seed)
        out.put(("start",))
        t, c = time.perf_counter(), time.process_time()
        labels = solve()
        out.put(("ok", labels, time.perf_counter() - t, time.process_time() - c))
    except BaseException as e:  # noqa: BLE001 - reported in the table
        out.put(("error", f"{type(e).__name__}: {e}".splitlines()[0][:120],
                 traceback.format_exc()))


def run_capped(method: str, case: Case, *, cap: float, seed: int = 0) -> dict[str, Any]:
    """Run one method in a child process; stop it after ``cap`` seconds.

    The child builds the method's graph first (allowed ``SETUP_CAP`` seconds,
    not timed), then solves.  Returns ``{"status": "ok", "labels": ...,
    "seconds": ...}``, or a status of ``"timeout"`` or ``"error"`` (with the
    message under ``"error"``).
    """
    case_edges(case)  # computed once here, inherited by the child
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(method, case, seed, q), daemon=True)
    p.start()
    res: tuple | None = None
    t = time.perf_counter()
    try:
        res = q.get(timeout=SETUP_CAP)
        if res[0] == "start":
            t = time.perf_counter()
            res = q.get(timeout=cap)
    except queue.Empty:
        res = None
    wall = time.perf_counter() - t
    if p.is_alive():
        p.terminate()
    p.join(10)
    if p.is_alive():
        p.kill()
        p.join()
    if res is None:
        return {"status": "timeout", "wall": wall}
    if res[0] == "error":
        return {"status": "error", "error": res[1], "trace": res[2], "wall": wall}
    _, labels, seconds, cpu = res
    return {"status": "ok", "labels": labels, "seconds": seconds, "cpu": cpu, "wall": wall}


# --------------------------------------------------------------------------- figures
def polsby_popper(geoms: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """4πA/P² of the union of the units of every grid (labels >= 0).

    Examples
    --------
    >>> c = lattice_case(2, 1)
    >>> polsby_popper(c.geoms, np.zeros(4, dtype=int)).round(4).tolist()
    [0.7854]
    """
    ok = labels >= 0
    order = np.argsort(labels[ok], kind="stable")
    lab = labels[ok][order]
    gs = np.asarray(geoms)[ok][order]
    starts = np.flatnonzero(np.r_[True, lab[1:] != lab[:-1]])
    ends = np.r_[starts[1:], len(lab)]
    out = np.empty(len(starts))
    for n, (a, b) in enumerate(zip(starts, ends, strict=True)):
        u = shapely.union_all(gs[a:b], grid_size=1e-3)
        p = shapely.length(u)
        out[n] = 4 * math.pi * shapely.area(u) / p**2 if p > 0 else 0.0
    return out


def pieces_per_grid(n: int, i: np.ndarray, j: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Number of pieces of every grid in the unit graph (index = label)."""
    same = (labels[i] == labels[j]) & (labels[i] >= 0)
    a = coo_matrix((np.ones(int(same.sum())), (i[same], j[same])), shape=(n, n))
    _, comp = connected_components(a, directed=False)
    ok = labels >= 0
    pairs = np.unique(np.column_stack([labels[ok], comp[ok]]), axis=0)
    return np.bincount(pairs[:, 0])


def figures(case: Case, labels: np.ndarray) -> dict[str, Any]:
    """Grids made, max deviation, grids out of tolerance, mean PP, contiguity."""
    labels = np.asarray(labels, dtype=np.int64)
    ok = labels >= 0
    _, lab = np.unique(labels[ok], return_inverse=True)
    dense = np.full(case.n, -1, dtype=np.int64)
    dense[ok] = lab
    n_grids = int(lab.max()) + 1 if len(lab) else 0
    w = np.bincount(dense[ok], weights=case.weight[ok], minlength=n_grids)
    mean = float(case.weight.sum()) / max(n_grids, 1)
    dev = np.abs(w / mean - 1)
    i, j, _ = case_edges(case)
    pieces = pieces_per_grid(case.n, i, j, dense)
    split = int((pieces > 1).sum()) + int((~ok).sum())
    pp = polsby_popper(case.geoms, dense)
    return {"grids": n_grids, "max_dev": float(dev.max()) if n_grids else math.nan,
            "out": int((dev > case.tolerance + 1e-9).sum()),
            "pp": float(pp.mean()) if len(pp) else math.nan,
            "contiguous": split == 0, "split": split, "unassigned": int((~ok).sum())}


def time_command(case: Case, cap: float) -> dict[str, Any]:
    """Wall-clock time of ``gridmap delineate --units`` in a fresh process."""
    exe = shutil.which("gridmap") or str(Path(sys.executable).parent / "gridmap")
    out = Path(tempfile.mkdtemp(prefix="gridmap-bench-"))
    cmd = [exe, "delineate", "--units", str(case.units_file), "--by", case.by,
           "--target", f"{case.mean:.6f}", "--tolerance", str(case.tolerance),
           "--out", str(out), "--quiet"]
    t = time.perf_counter()
    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=cap, check=False)
    except subprocess.TimeoutExpired:
        return {"status": "timeout"}
    finally:
        dt = time.perf_counter() - t
        c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (c1.ru_utime + c1.ru_stime) - (c0.ru_utime + c0.ru_stime)
    if r.returncode:
        return {"status": "error", "error": (r.stderr.strip().splitlines() or ["?"])[-1]}
    grids = gpd.read_file(out / "plan.gpkg", layer="grids")
    # where the time goes: the stages delineate times itself (the rest of the
    # wall clock is starting Python, importing and writing the files)
    mj = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    stages = {k: v.get("seconds") for k, v in (mj.get("timings") or {}).items()}
    shutil.rmtree(out, ignore_errors=True)
    return {"status": "ok", "seconds": dt, "cpu": cpu, "grids_written": len(grids),
            "cmd": cmd, "stages": stages}


# --------------------------------------------------------------------------- table
HEADERS = ("case", "method", "time (s)", "× gridmap", "CPU (s)", "CPU × gridmap", "grids",
           "max dev", "out of tol", "mean PP", "contiguous")


def _row(case: Case, method: str, res: dict[str, Any], base: dict[str, Any]) -> tuple:
    name = LABELS.get(method, method)
    if res["status"] != "ok":
        why = {"timeout": f"timed out > {res.get('cap', 0):g} s",
               "missing": "not installed", "skipped": res.get("why", "skipped"),
               "error": f"failed: {res.get('error', '')}"}[res["status"]]
        return (case.name, name, why) + ("",) * (len(HEADERS) - 3)
    s, c = res["seconds"], res.get("cpu")
    ratio = f"{s / base['seconds']:,.1f}" if base.get("seconds") else ""
    cratio = f"{c / base['cpu']:,.1f}" if c is not None and base.get("cpu") else ""
    times = (f"{s:,.2f}", ratio, "" if c is None else f"{c:,.2f}", cratio)
    f = res.get("fig")
    if f is None:  # the whole command: time only
        return (case.name, name, *times, str(res.get("grids_written", "")), "", "", "", "")
    cont = "yes" if f["contiguous"] else f"no ({f['split']})"
    return (case.name, name, *times, f"{f['grids']:,}",
            f"{100 * f['max_dev']:.1f}%", f"{f['out']:,}", f"{f['pp']:.3f}", cont)


def markdown(rows: list[tuple]) -> str:
    out = ["| " + " | ".join(HEADERS) + " |", "|" + "|".join("---" for _ in HEADERS) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def plain(rows: list[tuple]) -> str:
    w = [max(len(h), *(len(str(r[n])) for r in rows)) for n, h in enumerate(HEADERS)]
    lines = ["  ".join(h.ljust(w[n]) for n, h in enumerate(HEADERS)),
             "  ".join("-" * x for x in w)]
    lines += ["  ".join(str(c).ljust(w[n]) for n, c in enumerate(r)) for r in rows]
    return "\n".join(lines)


def run_case(case: Case, *, cap: float, seed: int, timed_out: dict[str, int],
             command: bool, caps: dict[str, float] | None = None,
             summary: list[str] | None = None) -> list[tuple]:
    """Every method on one case; the rows of the table."""
    t = time.perf_counter()
    i, _, _ = case_edges(case)
    print(f"\n[{case.name}] {case.what}: {case.n:,} units, {len(i):,} edges, k = {case.k}, "
          f"±{case.tolerance:.0%} (graph {time.perf_counter() - t:.1f} s, not timed)",
          flush=True)
    results: dict[str, dict[str, Any]] = {}
    for method in ("gridmap", *case.peers):
        if not installed(method):
            res = {"status": "missing"}
        elif method in timed_out and case.n >= timed_out[method]:
            res = {"status": "skipped",
                   "why": f"not run (timed out at {timed_out[method]:,} units)"}
        else:
            mcap = (caps or {}).get(method, cap)
            res = run_capped(method, case, cap=mcap, seed=seed)
            res["cap"] = mcap
            if res["status"] == "timeout":
                timed_out[method] = min(timed_out.get(method, case.n), case.n)
            if res["status"] == "ok":
                res["fig"] = figures(case, res["labels"])
        results[method] = res
        s = res.get("seconds")
        print(f"  {method:14s} {res['status']:8s}" + (f" {s:9.2f} s" if s is not None else "")
              + (f"  {res.get('error', '')}" if res["status"] == "error" else ""), flush=True)
    if command and case.units_file is not None:
        res = time_command(case, cap)
        res["cap"] = cap
        results["command"] = res
        print(f"  {'command':14s} {res['status']:8s}"
              + (f" {res['seconds']:9.2f} s" if res.get("seconds") else ""), flush=True)
    base = results["gridmap"]
    if summary is not None:
        summary.extend(targets(case, results))
    return [_row(case, m, r, base) for m, r in results.items()]


def targets(case: Case, results: dict[str, dict[str, Any]]) -> list[str]:
    """The issue's targets on one case, as lines of text."""
    gm, gc, cmd = (results.get(m, {}) for m in ("gridmap", "gerrychain", "command"))
    st = ""
    if cmd.get("status") == "ok":
        st = (f"{case.name}: the command's {cmd['seconds']:.2f} s by stage (s): "
              + ", ".join(f"{k} {v:.2f}" for k, v in cmd.get("stages", {}).items()
                          if v is not None))
    if gm.get("status") != "ok" or gc.get("status") != "ok":
        return [f"{case.name}: no GerryChain figure to compare with"] + ([st] if st else [])
    r = gc["seconds"] / gm["seconds"]
    rc = gc["cpu"] / gm["cpu"]
    pp_gm, pp_gc = gm["fig"]["pp"], gc["fig"]["pp"]
    out = [(f"{case.name}: partition stage {r:,.1f}× faster than recursive_tree_part "
            f"({rc:,.1f}× in CPU time; target ≥ 50×: {'met' if r >= 50 else 'missed'}); "
            "mean Polsby-Popper "
            f"{pp_gm:.3f} vs {pp_gc:.3f} ({'higher' if pp_gm > pp_gc else 'not higher'})")]
    if cmd.get("status") == "ok":
        rw = gc["seconds"] / cmd["seconds"]
        rc = gc["cpu"] / cmd["cpu"]
        out.append(f"{case.name}: whole delineate command {rw:,.1f}× faster than the "
                   f"recursive_tree_part call alone ({rc:,.1f}× in CPU time; target ≥ 10×: "
                   f"{'met' if rw >= 10 else 'missed'})")
        out.append(st)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="smaller cases (b) and (c), no (d), shorter cap")
    ap.add_argument("--cap", type=float, default=None,
                    help="seconds allowed per method and case (default 120, --quick 30)")
    ap.add_argument("--gerrychain-cap", type=float, default=None,
                    help="seconds allowed to GerryChain per case (default: 1,800, "
                    "--quick: --cap)")
    ap.add_argument("--cases", default=None,
                    help="comma-separated, of a,b,c,d,e (default a,b,c,d; --quick a,b,c)")
    ap.add_argument("--methods", default=None,
                    help="comma-separated peers to run beside gridmap (default all: "
                    + ",".join(PEERS) + ")")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", type=Path, default=CACHE,
                    help=f"where the Wuhan units are kept (default {CACHE})")
    ap.add_argument("--no-command", action="store_true",
                    help="do not time the whole gridmap delineate command on (c)")
    ap.add_argument("--out", type=Path, default=None, help="write the table as Markdown here")
    args = ap.parse_args(argv)
    cap = args.cap or (30.0 if args.quick else 120.0)
    caps = {"gerrychain": args.gerrychain_cap or (cap if args.quick else max(cap, 1800.0))}
    which = (args.cases or ("a,b,c" if args.quick else "a,b,c,d")).split(",")
    makers: dict[str, Callable[[], Case]] = {
        "a": providence_case,
        "b": (lambda: lattice_case(40, 48)) if args.quick else (lambda: lattice_case(100, 300)),
        "c": (lambda: wuhan_case(2_000, 60, cache=args.cache)) if args.quick
        else (lambda: wuhan_case(10_000, 300, cache=args.cache)),
        "d": lambda: wuhan_case(100_000, None, cache=args.cache),
        "e": lambda: dataclasses.replace(wuhan_case(10_000, 100, cache=args.cache),
                                         name="wuhan10k-100"),
    }
    bad = [c for c in which if c not in makers]
    if bad:
        ap.error(f"--cases: unknown case(s) {bad}; choose from a, b, c, d, e")
    bad = [m for m in (args.methods or "").split(",") if m and m not in PEERS]
    if bad:
        ap.error(f"--methods: unknown method(s) {bad}; choose from {', '.join(PEERS)}")
    rows: list[tuple] = []
    summary: list[str] = []
    timed_out: dict[str, int] = {}
    t0 = time.perf_counter()
    for c in which:
        try:
            case = makers[c]()
        except FileNotFoundError as e:
            print(f"\n[{c}] skipped: {e}", flush=True)
            continue
        if args.methods is not None:
            case.peers = tuple(m for m in case.peers if m in args.methods.split(","))
        rows += run_case(case, cap=cap, seed=args.seed, timed_out=timed_out,
                         command=not args.no_command, caps=caps, summary=summary)
    print()
    print(plain(rows))
    print()
    print("\n".join(summary))
    print(f"\n{time.perf_counter() - t0:.0f} s in all; time = wall clock of the partition "
          "call alone, CPU = its process time (fairer on a shared machine) "
          f"(graph building not timed); cap {cap:g} s per method and case "
          f"(GerryChain {caps['gerrychain']:g} s).")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(markdown(rows) + "\n\n" + "\n".join(f"- {x}" for x in summary)
                            + "\n", encoding="utf-8")
        print(f"table written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
