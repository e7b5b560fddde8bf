"""The ``gridmap`` command line.

``gridmap delineate --buildings B --streets S --target 300 --out DIR`` writes
``DIR/plan.gpkg`` (layers ``grids``, ``buildings``, ``units``, ``streets``),
``DIR/metrics.json``, ``DIR/coverage.html`` and ``DIR/workload.html`` (with
``--png`` also ``coverage.png``, ``workload.png`` and ``load_chart.png``);
``gridmap map DIR/plan.gpkg`` redraws the maps of a saved plan.  The options and
the files are a contract that planners' scripts rely on: options and columns are
only ever added, never renamed.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._errors import GridmapError, OptionError, OutputFolderError
from .datum import DATUMS
from .export import export_files
from .output import OutputFolder
from .plan import METRICS_FILE, PLAN_FILE
from .postgis import is_database

if TYPE_CHECKING:
    from ._progress import StageTimer
    from .layers import LayerSources
    from .options import MapOptions, Options
    from .plan import GridPlan

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``gridmap`` command."""
    p = argparse.ArgumentParser(
        prog="gridmap",
        description="Community management grids (网格): balanced, contiguous, "
        "street-bounded.",
    )
    from . import __version__

    p.add_argument("--version", action="version", version=f"gridmap {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser(
        "delineate",
        help="partition buildings into grids and write the plan",
        description="Partition a district's buildings into balanced community grids. "
        "Layers are files GDAL reads (GeoPackage, GeoJSON, Shapefile, OSM .pbf) or "
        "GeoParquet; PATH#LAYER picks a layer of a multi-layer file.",
    )
    _plan_options(d)
    _output_options(d, no_map=True)
    mp = sub.add_parser(
        "map",
        help="redraw the maps of a saved plan",
        description="Redraw coverage.html and workload.html (and with --png the static "
        "maps) from a plan written by gridmap delineate.",
    )
    mp.add_argument("plan", help="DIR/plan.gpkg (or DIR)")
    mp.add_argument("--out", help="folder for the maps (default: the plan's folder)")
    _output_options(mp)
    rp = sub.add_parser(
        "repartition",
        help="re-balance a saved plan for new population, moving as few households as "
        "possible",
        description="Re-balance the plan DIR/plan.gpkg for the current buildings (same id "
        "column: new ids are new buildings, missing ids demolished) and population. "
        "Grid ids and codes are kept; writes the same files as delineate plus "
        "changes.csv (buildings and households moved per pair of grids), handover.csv "
        "(every building that changes grid, for the grid workers) and diff.html (old and "
        "new boundaries, what moved).",
    )
    rp.add_argument("--plan", required=True, help="the plan running now: DIR/plan.gpkg")
    rp.add_argument("--buildings", help="the current buildings (default: the plan's)")
    rp.add_argument("--population", help="new population: points or areas with counts")
    rp.add_argument("--by", help="balance field (default: the plan's)")
    rp.add_argument("--target", type=float, help="target per grid (default: the plan's)")
    rp.add_argument("--tolerance", type=float, help="tolerance (default: the plan's)")
    rp.add_argument("--lock", type=int, nargs="*", default=[], metavar="GRID_ID",
                    help="grids that must not change")
    rp.add_argument("--id-column", help="building id column (default: the plan's)")
    rp.add_argument("--seed", type=int, default=0)
    _budget_options(rp, "the balancing loop", " where grids are still out after the flow")
    _check_options(rp)
    from .options import add_arguments

    # the plan's own settings unless given again (each change is reported)
    add_arguments(rp, only=REPARTITION_OPTIONS, defaults=False)
    rp.add_argument("--out", required=True, help="output folder")
    _output_options(rp, no_map=True)
    _edit_parsers(sub)
    cp = sub.add_parser(
        "compare",
        help="grids on the register against grids on the actual population",
        description="Delineate the same district on each basis (default: registered, "
        "then actual population) with the same target, and measure every plan's grids "
        "on the reference (actual population): which grid workers a register-based "
        "plan overloads. Writes DIR/BASIS/plan.gpkg and metrics.json per basis, "
        "DIR/compare_grids.csv and DIR/compare_summary.csv.",
    )
    _plan_options(cp, by=False)
    cp.add_argument("--bases", nargs="+", default=["pop_registered", "pop_actual"],
                    help="balance fields to draw plans on (default pop_registered "
                    "pop_actual)")
    cp.add_argument("--reference", default="pop_actual",
                    help="field the real load is measured on (default pop_actual)")
    cp.add_argument("--quiet", action="store_true", help="print nothing but errors")
    _overwrite_option(cp)
    _progress_option(cp)
    cp.set_defaults(target=900.0)
    return p


def _budget_options(ap: argparse.ArgumentParser, what: str, where: str = "") -> None:
    """``--effort`` and ``--time-limit`` of a command whose balancing is ``what``."""
    from .options import effort_arg

    ap.add_argument("--effort", type=effort_arg, default="default",
                    help=f"how much work {what} may do{where}: fast, default, thorough, "
                    "or units of work (default: default)")
    ap.add_argument("--time-limit", type=float, metavar="SECONDS",
                    help=f"stop {what} after this many seconds (the plan then depends on "
                    "the machine's speed)")


def _edit_parsers(sub: Any) -> None:
    """``gridmap edit`` (the page to adjust a plan by hand) and ``gridmap apply``."""
    ep = sub.add_parser(
        "edit",
        help="write edit.html: a page to move units between grids by hand, offline",
        description="Write DIR/edit.html beside the plan DIR/plan.gpkg: one self-contained "
        "page (no network) where the planner picks a grid and clicks or brushes units "
        "into it, with the balance of every grid touched shown live; 'Save edits' "
        "downloads edits.json for gridmap apply.",
    )
    ep.add_argument("plan", help="DIR/plan.gpkg (or DIR)")
    ep.add_argument("--out", help="the page to write (default: edit.html beside the plan)")
    ep.add_argument("--overwrite", action="store_true", help="replace an existing page")
    ep.add_argument("--quiet", action="store_true", help="print nothing but errors")
    ap = sub.add_parser(
        "apply",
        help="apply edits drawn by hand (edits.json) to the plan they were drawn on",
        description="Apply edits.json (saved by the page gridmap edit writes) to the plan "
        "it was drawn on: the units moved go to their new grids, every grid polygon is "
        "made again from its units, every figure recomputed; grid ids and codes are "
        "kept. Writes the same files as repartition (plan.gpkg, metrics.json with the "
        "edits' note, changes.csv, handover.csv, diff.html and the maps).",
    )
    ap.add_argument("--plan", required=True, help="the plan edited: DIR/plan.gpkg")
    ap.add_argument("--edits", required=True, help="the edits: edits.json")
    ap.add_argument("--allow-pieces", action="store_true",
                    help="accept a grid the edits leave in pieces (noted); otherwise such "
                    "edits are refused")
    ap.add_argument("--rebalance", action="store_true",
                    help="then restore the band around the grids edited, never moving a "
                    "unit moved by hand again")
    ap.add_argument("--lock", type=int, nargs="*", default=[], metavar="GRID_ID",
                    help="grids the re-balance must not change (besides the edits' locks)")
    ap.add_argument("--seed", type=int, default=0)
    _budget_options(ap, "the re-balance")
    ap.add_argument("--out", required=True, help="output folder")
    _output_options(ap, no_map=True)


#: the options of delineate a re-partition takes too (by, target, tolerance, seed,
#: effort, time limit, id column, encoding, strictness and islands have flags of
#: its own); the rest fix what the plan is made of: its communities, streets,
#: road and unit grids and codes
REPARTITION_OPTIONS = ("input_datum", "output_datum", "population_key",
                       "population_address", "address_column", "count_column",
                       "targets", "type_column", "split_above", "max_distance",
                       "dwelling_size", "persons_per_household", "default_levels", "groups",
                       "formula", "capacity", "restarts", "exact", "columns",
                       "allow_overlaps")


def _plan_options(d: argparse.ArgumentParser, *, by: bool = True) -> None:
    """The layers, the output folder and every option of a plan (delineate, compare).

    Made from the option objects (:func:`gridmap.options.add_arguments`).
    """
    from .options import add_arguments

    layers = d.add_argument_group("layers: files GDAL reads, GeoParquet, OSM .pbf; "
                                  "PATH#LAYER picks a layer")
    layers.add_argument("--buildings", help="building footprints (polygons)")
    layers.add_argument("--streets", help="street centre-lines with a class column")
    layers.add_argument("--population", help="population: points or areas with counts")
    layers.add_argument("--boundaries", help="community boundaries (polygons)")
    layers.add_argument("--compounds", help="compound (小区) polygons, kept whole")
    layers.add_argument("--units",
                        help="units to partition as they are (census blocks...)")
    layers.add_argument("--sites", help="sites of schools, hospitals, markets... "
                        "(polygons, e.g. OSM landuse): unit-type grids")
    d.add_argument("--out", required=True, help="output folder")
    add_arguments(d, exclude=() if by else ("by",))


def _check_options(p: argparse.ArgumentParser) -> None:
    """--strict, --islands and --encoding: how bad or awkward input is handled."""
    p.add_argument("--encoding",
                   help="text encoding of Shapefiles and CSVs without a .cpg (e.g. GBK, "
                   "GB18030, UTF-8); default: UTF-8, else GB18030 with a note")
    p.add_argument("--strict", action="store_true",
                   help="refuse, instead of repairing and reporting, invalid polygons, "
                   "layers in different CRSs, buildings outside every boundary and "
                   "streets that enclose no block")
    p.add_argument("--islands", choices=("own", "nearest", "error"), default="own",
                   help="a part of a community cut off from the rest: own grid(s) "
                   "(default), join the nearest grid, or stop with an error")


def _output_options(p: argparse.ArgumentParser, *, no_map: bool = False) -> None:
    """--no-map (where maps are optional), --overwrite, the map options, and --quiet."""
    if no_map:
        _overwrite_option(p)
    if no_map:
        p.add_argument("--no-map", action="store_true",
                       help="do not write coverage.html and workload.html")
        _export_options(p)
    _map_options(p)
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    _progress_option(p)


def _export_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--export", default=None, metavar="FORMATS",
                   help="also write the plan as shp, geojson, xlsx (the grid roster), csv "
                   "(the roster as UTF-8 CSV): a comma-separated list, e.g. shp,xlsx")
    p.add_argument("--export-encoding", default="GBK",
                   help="text encoding of the exported Shapefiles (default GBK, with a "
                   ".cpg naming it)")
    p.add_argument("--export-datum", default=None, choices=DATUMS,
                   help="longitude/latitude of the exported GeoJSON (and Shapefiles, when "
                   "not wgs84): wgs84, gcj02 (AMap, Tencent), bd09 (Baidu); default the "
                   "plan's output datum (wgs84 unless --input-datum said otherwise)")


def _exports_of(args: argparse.Namespace) -> tuple[str, ...]:
    """The export formats asked for, checked before any work."""
    from .export import parse_formats

    return parse_formats(getattr(args, "export", None))


def _write_exports(plan: GridPlan, folder: Path, args: argparse.Namespace) -> None:
    formats = _exports_of(args)
    if formats:
        plan.export(folder, formats, encoding=args.export_encoding,
                    datum=args.export_datum, address=getattr(args, "address_column", None))


def _unmatched_file(args: argparse.Namespace) -> list[str]:
    """population_unmatched.csv, where the population is a table (a register)."""
    from .plan import UNMATCHED_FILE
    from .register import is_table

    return [UNMATCHED_FILE] if is_table(getattr(args, "population", None)) else []


def _overwrite_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--overwrite", action="store_true",
                   help="remove files of an earlier plan in the output folder that this "
                   "run does not write (maps, changes.csv...), and let a re-partition "
                   "write into the folder of the plan it reads")


def _progress_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bars on stderr (--quiet turns them off too)")


def _progress(args: argparse.Namespace) -> bool:
    """Bars unless --quiet or --no-progress."""
    return not (getattr(args, "quiet", False) or getattr(args, "no_progress", False))


def _map_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tiles", default=None,
                   help="base map for the HTML maps: none (default, works offline), osm, "
                   "amap, tencent (both GCJ-02), or a tile URL template")
    p.add_argument("--gcj02", action="store_true",
                   help="shift the overlay to GCJ-02 for a GCJ-02 tile URL (automatic for "
                   "amap and tencent)")
    p.add_argument("--no-buildings-layer", action="store_true",
                   help="leave the buildings out of the HTML map (smaller file)")
    p.add_argument("--buildings-layer", action="store_true",
                   help="draw the buildings even above 20,000 (slow to open)")
    p.add_argument("--privacy-threshold", type=int, default=5,
                   help="counts under this show as <N in the maps (default 5)")
    p.add_argument("--scheme", default="Quantiles",
                   help="mapclassify scheme of the workload map (default Quantiles)")
    p.add_argument("--classes", type=int, default=5,
                   help="number of workload classes (default 5, at most 7)")
    p.add_argument("--png", action="store_true",
                   help="also write coverage.png, workload.png and load_chart.png")
    p.add_argument("--font", help="a CJK font file for the PNG maps (default: one found)")


def _sized(path) -> str:
    size = path.stat().st_size
    return f"{path} ({size / 1e6:.1f} MB)" if size >= 1e5 else f"{path} ({size / 1e3:.0f} kB)"


def _maps_of(args: argparse.Namespace) -> MapOptions:
    """The map options of the command, checked (before any work)."""
    from .options import MapOptions

    return MapOptions(
        tiles=args.tiles, gcj02=True if args.gcj02 else None,
        buildings=(False if args.no_buildings_layer else
                   True if args.buildings_layer else None),
        privacy_threshold=args.privacy_threshold, scheme=args.scheme, classes=args.classes,
        png=args.png, font=args.font)


def _map_files(maps: MapOptions | None) -> list[str]:
    """The files the maps of a run are written to."""
    if maps is None:
        return []
    files = ["coverage.html", "workload.html"]
    return files + (["coverage.png", "workload.png", "load_chart.png"] if maps.png else [])


def _write_maps(plan: GridPlan, folder: Path, maps: MapOptions) -> None:
    """Write the HTML maps (and with ``png`` the static ones) into ``folder``."""
    cov = plan.coverage_map(tiles=maps.tiles, gcj02=maps.gcj02, buildings=maps.buildings,
                            privacy_threshold=maps.privacy_threshold)
    cov.save(str(folder / "coverage.html"))
    work = plan.workload_map(tiles=maps.tiles, gcj02=maps.gcj02, scheme=maps.scheme,
                             k=maps.classes, privacy_threshold=maps.privacy_threshold)
    work.save(str(folder / "workload.html"))
    if maps.png:
        import matplotlib.pyplot as plt

        for name in ("coverage", "workload"):
            fig = plan.static_map(None, kind=name, font=maps.font, scheme=maps.scheme,
                                  k=maps.classes)
            fig.savefig(folder / f"{name}.png", dpi=200, format="png")
            plt.close(fig)
        fig = plan.load_chart(font=maps.font)
        fig.savefig(folder / "load_chart.png", dpi=150, format="png")
        plt.close(fig)


def _write_plan(plan: GridPlan, run: OutputFolder, maps: MapOptions | None,
                timer: StageTimer | None = None, *, args: argparse.Namespace
                ) -> tuple[list[Path], list[str]]:
    """The whole set of a plan's files, staged and put in place together.

    The GeoPackage, the exports, the maps, the tables of a re-partition, and
    metrics.json last (with the time the others took).  Returns the files and the
    notes of the maps (what they worked around, e.g. a static map without a CJK
    font).
    """
    if timer is not None:
        timer.stage("write")
    written = plan._write_layers(run.staging)
    _write_exports(plan, run.staging, args)
    if plan.previous is not None:
        _write_changes(plan, run.staging)
    notes: list[str] = []
    if maps is not None:
        if timer is not None:
            timer.stage("maps")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            _write_maps(plan, run.staging, maps)
            if plan.previous is not None:
                diff = plan.diff_map(tiles=maps.tiles, gcj02=maps.gcj02,
                                     privacy_threshold=maps.privacy_threshold)
                diff.save(str(run.staging / "diff.html"))
        notes = list(dict.fromkeys(str(w.message).strip() for w in caught))
    # the stages of the whole command as its timer saw them, else the write alone
    timings = dict(timer.done()) if timer is not None else {"write": written}
    plan._write_metrics(run.staging, timings=timings, notes=notes)
    return run.commit(), notes


def _write_changes(plan: GridPlan, folder: Path) -> None:
    """Write changes.csv (per pair of grids) and handover.csv (per building).

    The tables of a re-partition.
    """
    import pandas as pd

    by = plan.params.get("by", "households")
    table = pd.DataFrame(plan.metrics["changes"]["moves"],
                         columns=["old", "new", "buildings", by])
    table = table.rename(columns={"old": "from_grid", "new": "to_grid"})
    # the codes of both grids, after the columns planners' scripts read
    before = plan.previous.grids if plan.previous is not None else plan.grids
    table["from_code"] = table["from_grid"].map(before.set_index("grid_id")["code"])
    table["to_code"] = table["to_grid"].map(plan.grids.set_index("grid_id")["code"])
    table.to_csv(folder / "changes.csv", index=False, encoding="utf-8")
    # the table for the grid workers opens in Excel with its Chinese intact (BOM)
    plan.handover.to_csv(folder / "handover.csv", index=False, encoding="utf-8-sig")


def _map(args: argparse.Namespace) -> int:
    from .plan import PLAN_FILE, read_plan

    maps = _maps_of(args)
    src = Path(args.plan)
    if not (src / PLAN_FILE if src.is_dir() else src).exists():
        msg = (f"no plan at {args.plan!r}: expected a folder holding {PLAN_FILE} or the "
               "file")
        raise OutputFolderError(msg)
    out = Path(args.out) if args.out else (src if src.is_dir() else src.parent)
    with OutputFolder(out, writes=_map_files(maps), overwrite=True) as run:
        plan = read_plan(args.plan)
        _write_maps(plan, run.staging, maps)
        written = run.commit()
    if not args.quiet:
        print("wrote " + ", ".join(_sized(p) for p in written))
    return 0


def _options_of(args: argparse.Namespace) -> Options:
    """The plan's options from the command line, every bad value said at once."""
    from .options import (
        Balance,
        Inputs,
        Options,
        Population,
        Search,
        SpecialGrids,
        Workload,
        from_arguments,
    )

    made: dict[str, Any] = {}
    problems: list[str] = []
    for name, kind in (("balance", Balance), ("population", Population),
                       ("special", SpecialGrids), ("workload", Workload),
                       ("search", Search), ("inputs", Inputs)):
        try:
            made[name] = from_arguments(kind, args)
        except OptionError as exc:
            problems += exc.problems
    if problems:
        raise OptionError(problems)
    return Options(**made)


def _sources(args: argparse.Namespace) -> LayerSources:
    from .layers import LayerSources

    return LayerSources(args.buildings, args.streets, args.population, args.boundaries,
                        args.compounds, args.units, args.sites)


def _delineate(args: argparse.Namespace) -> int:
    from ._progress import STAGES, StageTimer
    from .delineation import make_plan

    options = _options_of(args)
    if is_database(args.out):
        timer = StageTimer(_progress(args), stages=STAGES[:-2])
        try:
            plan = _to_database(args, lambda: make_plan(_sources(args), options,
                                                        timer=timer))
        finally:
            timer.close()
        return 0
    maps = None if args.no_map else _maps_of(args)
    exports = export_files(_exports_of(args)) + _unmatched_file(args)
    with OutputFolder(args.out, writes=[PLAN_FILE, METRICS_FILE, *_map_files(maps),
                                        *exports], overwrite=args.overwrite) as run:
        # one stage bar for the whole command, maps and write included
        timer = StageTimer(_progress(args),
                           stages=STAGES if maps is not None else (*STAGES[:-2], "write"))
        try:
            plan = make_plan(_sources(args), options, timer=timer)
            written, notes = _write_plan(plan, run, maps, timer, args=args)
        finally:
            timer.close()
    if not args.quiet:
        _say_plan(plan, args, notes)
        print("wrote " + ", ".join(_sized(p) for p in written))
    return 0


def _to_database(args: argparse.Namespace, make: Callable[[], GridPlan]) -> GridPlan:
    """Make the plan and write it to the PostGIS schema of ``--out``; said unless quiet.

    The maps and exports are files: asked for with a database, they are refused
    before any work.
    """
    if _exports_of(args):
        msg = ("--export writes files, and --out names a PostGIS schema: write the plan to "
               "a folder for the exports (or export it in Python with plan.export).")
        raise OptionError(msg)
    plan = make()
    tables = plan.to_postgis(args.out)
    if not args.quiet:
        _say_plan(plan, args)
        print(f"wrote {len(tables)} tables to PostGIS: {', '.join(tables)} (no maps: they "
              "are files; draw them with gridmap.read_plan(URL).coverage_map())")
    return plan


def _say_plan(plan: GridPlan, args: argparse.Namespace, more: Sequence[str] = ()) -> None:
    """The plan's summary and its notes, with those of its maps.

    The warnings then need not repeat the maps' notes.
    """
    print(plan)
    notes = plan.metrics.get("notes", [])
    for note in [*notes, *(n for n in more if n not in notes)]:
        print(f"  note: {note}")
        args.said.add(str(note).strip())


def _repartition(args: argparse.Namespace) -> int:
    from .repartition import repartition

    maps = None if args.no_map else _maps_of(args)
    plan_dir = None if is_database(args.plan) else \
        Path(args.plan) if Path(args.plan).is_dir() else Path(args.plan).parent
    if plan_dir is not None:
        _check_locks(args.plan, args.lock)
    writes = [PLAN_FILE, METRICS_FILE, "changes.csv", "handover.csv", *_map_files(maps),
              *(["diff.html"] if maps is not None else []),
              *export_files(_exports_of(args)), *_unmatched_file(args)]
    from .options import keywords_from_arguments

    given = keywords_from_arguments(args, only=REPARTITION_OPTIONS)
    if "formula" in given:
        given["workload"] = given.pop("formula")
    def make() -> GridPlan:
        return repartition(args.plan, args.buildings, args.population, by=args.by,
                           target=args.target, tolerance=args.tolerance, lock=args.lock,
                           seed=args.seed, id_column=args.id_column,
                           progress=_progress(args), strict=args.strict,
                           islands=args.islands, encoding=args.encoding,
                           effort=args.effort, time_limit=args.time_limit, **given)

    if is_database(args.out):
        _to_database(args, make)
        return 0
    with OutputFolder(args.out, writes=writes, overwrite=args.overwrite,
                      protect=plan_dir) as run:
        plan = make()
        written, notes = _write_plan(plan, run, maps, args=args)
    if not args.quiet:
        ch = plan.metrics["changes"]
        by = plan.params.get("by", "households")
        _say_plan(plan, args, notes)
        print(f"  {ch['share_households_kept']:.1%} of {by} keep their grid "
              f"({ch['share_moved']:.1%} moved; at least {ch['least_share_moved']:.1%} "
              f"had to for these grid counts); {ch['buildings_moved']} building(s) "
              f"moved, {ch['buildings_new']} new, "
              f"{ch['buildings_demolished']} demolished; new grids {ch['grids_new']}, "
              f"grids gone {ch['grids_gone']}")
        for name, (was, now) in ch.get("settings_changed", {}).items():
            print(f"  setting changed: {name} {was!r} -> {now!r}")
        print("wrote " + ", ".join(_sized(p) for p in written))
    return 0


def _edit(args: argparse.Namespace) -> int:
    from .editor import write_editor
    from .plan import read_plan

    src = Path(args.plan)
    page = Path(args.out) if args.out else (src if src.is_dir() else src.parent) / "edit.html"
    if page.exists() and not args.overwrite:
        msg = f"{page} exists: pass --overwrite to replace it, or --out another file"
        raise OutputFolderError(msg)
    plan = read_plan(args.plan)
    write_editor(plan, page)
    if not args.quiet:
        print(f"wrote {_sized(page)}: open it in a browser, move units, 'Save edits', then "
              f"gridmap apply --plan {args.plan} --edits edits.json --out DIR")
    return 0


def _apply(args: argparse.Namespace) -> int:
    from .edits import apply_edits, read_edits

    maps = None if args.no_map else _maps_of(args)
    plan_dir = None if is_database(args.plan) else \
        Path(args.plan) if Path(args.plan).is_dir() else Path(args.plan).parent
    if plan_dir is not None:
        _check_locks(args.plan, args.lock)
    edits = read_edits(args.edits)  # its form checked before any work
    writes = [PLAN_FILE, METRICS_FILE, "changes.csv", "handover.csv", *_map_files(maps),
              *(["diff.html"] if maps is not None else []),
              *export_files(_exports_of(args))]
    with OutputFolder(args.out, writes=writes, overwrite=args.overwrite,
                      protect=plan_dir) as run:
        plan = apply_edits(args.plan, edits, allow_pieces=args.allow_pieces,
                           rebalance=args.rebalance, lock=args.lock, seed=args.seed,
                           effort=args.effort, time_limit=args.time_limit,
                           progress=_progress(args))
        written, notes = _write_plan(plan, run, maps, args=args)
    if not args.quiet:
        ch, ed = plan.metrics["changes"], plan.metrics["edits"]
        _say_plan(plan, args, notes)
        print(f"  {ed['units_moved']} unit(s) moved by hand ({ch['buildings_moved']} "
              f"building(s), {ch['share_moved']:.1%} of {plan.params.get('by')}); grids "
              f"edited {', '.join(str(g) for g in ed['grids_edited']) or 'none'}"
              + (f"; re-balanced in {ed['rebalance_rounds']} round(s)"
                 if ed["rebalance"] else ""))
        print("wrote " + ", ".join(_sized(p) for p in written))
    return 0


def _check_locks(plan: str, lock: Sequence[int]) -> None:
    """Refuse, before any work, grids to lock that the plan does not have."""
    if not lock:
        return
    import pyogrio

    from .plan import PLAN_FILE

    p = Path(plan)
    gpkg = p / PLAN_FILE if p.is_dir() else p
    if not gpkg.exists():
        return  # repartition says what is missing
    try:
        ids = pyogrio.read_dataframe(gpkg, layer="grids", columns=["grid_id"],
                                     read_geometry=False)["grid_id"]
    except Exception:  # noqa: BLE001 - not a plan: repartition says so
        return
    from .repartition import check_locks

    check_locks(ids, lock, option="--lock", plan=f"the plan {gpkg}")


def _compare(args: argparse.Namespace) -> int:
    from .compare import compare_bases

    options = _options_of(args)
    tables = ("compare_grids.csv", "compare_summary.csv")
    writes = [f"{b}/{f}" for b in args.bases for f in (PLAN_FILE, METRICS_FILE)]
    with OutputFolder(args.out, writes=[*writes, *tables],
                      overwrite=args.overwrite) as run:
        src = _sources(args)
        c = compare_bases(src.buildings, src.streets, src.population, bases=args.bases,
                          reference=args.reference, target=options.balance.target,
                          tolerance=options.balance.tolerance,
                          boundaries=src.boundaries, compounds=src.compounds,
                          units=src.units, sites=src.sites, balance=options.balance,
                          population_model=options.population, special=options.special,
                          workload=options.workload, search=options.search,
                          inputs=options.inputs, progress=_progress(args))
        for basis, plan in c.plans.items():
            (run.staging / basis).mkdir()
            took = plan._write_layers(run.staging / basis)
            plan._write_metrics(run.staging / basis, timings={"write": took})
        c.grids.to_csv(run.staging / tables[0], index=False, encoding="utf-8")
        c.summary.rename_axis("basis").to_csv(run.staging / tables[1], index=True,
                                              encoding="utf-8")
        written = run.commit()
    if not args.quiet:
        print(f"measured on {c.reference}, target {c.target:g} ±{c.tolerance:.0%}:")
        print(c.summary.to_string(float_format=lambda v: f"{v:.3f}"))
        print("wrote " + ", ".join(str(p) for p in written))
    return 0


class _Terminated(BaseException):
    """SIGTERM, raised where the run is so that every clean-up runs as for Ctrl-C."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Terminated


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``gridmap`` command; returns the exit status.

    0 on success; 1 for bad input, bad options or an output folder that cannot
    take the plan; 2 for a defect; 130 and 143 when interrupted (SIGINT,
    SIGTERM).  Whatever the status, the output folder holds either the whole set
    of files of this run or exactly what it held before.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    args.said = set()  # the notes printed with the plan
    quiet = bool(getattr(args, "quiet", False))
    logger = logging.getLogger("gridmap")
    handler = None
    level = logger.level
    if not quiet:
        # for this run only: a second run (a script, a notebook, the tests) must not
        # print twice, nor write to a stream that has since been closed
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    try:
        old_term = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread: SIGTERM keeps its handler
        old_term = None
    try:
        with warnings.catch_warnings(record=True) as caught:
            # every warning, gridmap's or a library's, is said once as gridmap's
            # own note (what was repaired is among the plan's notes already);
            # --quiet says none
            warnings.simplefilter("default")
            status = _run(parser, args)
        if not quiet:
            _say_warnings(caught, args.said)
        return status
    finally:
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)
        if handler is not None:
            logger.removeHandler(handler)
            logger.setLevel(level)


def _say_warnings(caught: list[warnings.WarningMessage], said: set[str]) -> None:
    """Warnings the run raised, each once, as notes, unless printed already."""
    for w in caught:
        text = str(w.message).strip()
        if text in said:
            continue
        said.add(text)
        print(f"gridmap: note: {text}", file=sys.stderr)


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    where = getattr(args, "out", None)
    if args.command == "map" and where is None:
        where = args.plan
    try:
        if args.command == "delineate":
            return _delineate(args)
        if args.command == "map":
            return _map(args)
        if args.command == "compare":
            return _compare(args)
        if args.command == "repartition":
            return _repartition(args)
        if args.command == "edit":
            return _edit(args)
        if args.command == "apply":
            return _apply(args)
    except KeyboardInterrupt:
        print(f"gridmap: interrupted; {where} unchanged", file=sys.stderr)
        return 130
    except _Terminated:
        print(f"gridmap: terminated; {where} unchanged", file=sys.stderr)
        return 143
    except GridmapError as exc:
        print(f"gridmap: error: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:  # unreadable files, bad values
        print(f"gridmap: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # a defect: say so plainly; GRIDMAP_DEBUG=1 shows where
        if os.environ.get("GRIDMAP_DEBUG"):
            raise
        print(f"gridmap: internal error ({type(exc).__name__}): {exc}. {where} was left "
              "as it was. Please report this with the command you ran; set "
              "GRIDMAP_DEBUG=1 to see where it happened.", file=sys.stderr)
        return 2
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
