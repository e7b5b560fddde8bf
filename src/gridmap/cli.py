"""The ``gridmap`` command line.

``gridmap delineate --buildings B --streets S --target 300 --out DIR`` writes
``DIR/plan.gpkg`` (layers ``grids``, ``buildings``, ``units``) and
``DIR/metrics.json``.  The options and the files are a contract that planners'
scripts rely on: options and columns are only ever added, never renamed.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from ._errors import GridmapError

__all__ = ["main", "build_parser"]


def _column_pair(text: str) -> tuple[str, str]:
    if "=" not in text:
        msg = f"--column takes CANONICAL=SOURCE (e.g. households=HH), got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    a, b = text.split("=", 1)
    return a.strip(), b.strip()


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
    d.add_argument("--buildings", help="building footprints (polygons)")
    d.add_argument("--streets", help="street centre-lines with a class column")
    d.add_argument("--population", help="population: points or areas with counts")
    d.add_argument("--boundaries", help="community boundaries (polygons)")
    d.add_argument("--compounds", help="compound (小区) polygons, kept whole")
    d.add_argument("--units", help="units to partition as they are (census blocks...)")
    d.add_argument("--id-column", help="building (or unit) id column (default: id)")
    d.add_argument("--target", type=float, default=300.0,
                   help="target per grid on the balance field (default 300)")
    d.add_argument("--tolerance", type=float, default=0.1,
                   help="allowed deviation from the community mean (default 0.1 = ±10%%)")
    d.add_argument("--by", default="households",
                   help="balance field: households, pop_actual or any numeric column")
    d.add_argument("--out", required=True, help="output folder")
    d.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    d.add_argument("--crs", default="auto", help="metric CRS to work in (default auto)")
    d.add_argument("--division-code", default="000000",
                   help="6-digit administrative division code for grid codes")
    d.add_argument("--street-column", help="street class column (default: highway, ...)")
    d.add_argument("--column", action="append", type=_column_pair, default=[],
                   metavar="CANONICAL=SOURCE",
                   help="map a source column to a canonical name (repeatable)")
    d.add_argument("--split-above", type=float,
                   help="split blocks holding more than this (default: the target)")
    d.add_argument("--max-distance", type=float, default=50.0,
                   help="metres within which a population point joins the nearest building")
    d.add_argument("--dwelling-size", type=float, default=90.0,
                   help="floor area per household for estimates, m² (default 90)")
    d.add_argument("--persons-per-household", type=float, default=2.62,
                   help="persons per household for estimates (default 2.62)")
    d.add_argument("--default-levels", type=float, default=1.0,
                   help="storeys of a building with no levels or height (default 1)")
    d.add_argument("--no-map", action="store_true", help="do not write coverage.html")
    d.add_argument("--tiles", default=None,
                   help="base map for the HTML map: none (default, works offline), osm, "
                   "or a tile URL template")
    d.add_argument("--no-buildings-layer", action="store_true",
                   help="leave the buildings out of the HTML map (smaller file)")
    d.add_argument("--quiet", action="store_true", help="print nothing but errors")
    mp = sub.add_parser(
        "map",
        help="redraw the maps of a saved plan",
        description="Redraw coverage.html from a plan written by gridmap delineate.",
    )
    mp.add_argument("plan", help="DIR/plan.gpkg (or DIR)")
    mp.add_argument("--out", help="folder for the maps (default: the plan's folder)")
    mp.add_argument("--tiles", default=None,
                    help="base map: none (default, works offline), osm, or a tile URL")
    mp.add_argument("--no-buildings-layer", action="store_true",
                    help="leave the buildings out of the HTML map (smaller file)")
    mp.add_argument("--quiet", action="store_true", help="print nothing but errors")
    return p


def _map(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .plan import read_plan

    plan = read_plan(args.plan)
    src = Path(args.plan)
    out = Path(args.out) if args.out else (src if src.is_dir() else src.parent)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "coverage.html"
    plan.coverage_map(tiles=args.tiles, buildings=not args.no_buildings_layer).save(str(path))
    if not args.quiet:
        print(f"wrote {path}")
    return 0


def _delineate(args: argparse.Namespace) -> int:
    from .delineation import delineate

    plan = delineate(
        args.buildings,
        args.streets,
        args.population,
        boundaries=args.boundaries,
        compounds=args.compounds,
        units=args.units,
        columns=dict(args.column) or None,
        id_column=args.id_column,
        target=args.target,
        tolerance=args.tolerance,
        by=args.by,
        crs=args.crs,
        seed=args.seed,
        split_above=args.split_above,
        street_column=args.street_column,
        max_distance=args.max_distance,
        dwelling_size=args.dwelling_size,
        persons_per_household=args.persons_per_household,
        default_levels=args.default_levels,
        division_code=args.division_code,
        progress=not args.quiet,
    )
    out = plan.to_file(args.out)
    written = [out / "plan.gpkg", out / "metrics.json"]
    if not args.no_map:
        path = out / "coverage.html"
        plan.coverage_map(tiles=args.tiles, buildings=not args.no_buildings_layer).save(
            str(path)
        )
        written.append(path)
    if not args.quiet:
        print(plan)
        for note in plan.metrics.get("notes", []):
            print(f"  note: {note}")
        print("wrote " + ", ".join(str(p) for p in written))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``gridmap`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "quiet", False):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger = logging.getLogger("gridmap")
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    try:
        if args.command == "delineate":
            return _delineate(args)
        if args.command == "map":
            return _map(args)
    except GridmapError as exc:
        print(f"gridmap: error: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:  # unreadable files, bad values
        print(f"gridmap: error: {exc}", file=sys.stderr)
        return 1
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
