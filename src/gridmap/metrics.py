"""Quality figures of a grid plan, per grid and overall.

The figures are computed directly from the grid geometries and columns, with no
hidden state, so that an independent checker can recompute every one of them
from the written files:

- **balance** (均衡性): each community grid's ``by`` value against the mean of
  the community grids of its community, the coefficient of variation per
  community and overall;
- **contiguity**: the number of polygon parts of each grid;
- **compactness** (便利性): the Polsby–Popper score ``4πA/P²``;
- **coverage** (无缝覆盖): the parts of the area no grid covers (gap) and the
  area covered twice (overlap);
- **street-bounded edges** (街巷定界): the share of the internal grid boundary
  that runs along a street centre-line or a community boundary;
- **buildings**: how many are assigned to exactly one grid.

Everything is measured in the units of the layers' CRS, which must be projected
(metres).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeAlias, cast

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from . import band
from ._validate import Problems, check_layer
from .partition.exact import RegionLimits

if TYPE_CHECKING:
    from .assemble import Assembled
    from .balance import Balanced
    from .communities import Communities
    from .options import Workload
    from .population import Counts
    from .special import Carve

__all__ = ["GRID_KINDS", "evaluate", "evaluate_plan", "reasons"]

#: the three kinds of grid (社区型 / 道路型 / 单位型)
GRID_KINDS = ("community", "road", "unit")

#: slack on the tolerance test (kept here for callers; :mod:`gridmap.band` holds it)
_TOLERANCE_EPS = band.TOLERANCE_EPS

#: length (m) of a boundary segment left uncovered by the street corridor that
#: still counts as covered: floating-point crumbs where two buffers meet
_LENGTH_EPS = 1e-6

GeometryLike: TypeAlias = (
    BaseGeometry | gpd.GeoSeries | gpd.GeoDataFrame | Sequence[BaseGeometry]
)


# --------------------------------------------------------------------------- helpers
def _plain(x: Any) -> Any:
    """Turn numpy / pandas scalars into plain Python ones; NaN, ±inf, NA into None."""
    if x is None or x is pd.NA:
        return None
    if isinstance(x, (np.bool_, bool)):
        return bool(x)
    if isinstance(x, (np.integer, int)):
        return int(x)
    if isinstance(x, (np.floating, float)):
        x = float(x)
        return x if math.isfinite(x) else None
    if hasattr(x, "item"):
        return _plain(x.item())
    return x


def _nanmax(x: np.ndarray) -> float | None:
    """Return the largest value ignoring NaN; None when there is none or it is inf."""
    x = x[~np.isnan(x)]
    return _plain(x.max()) if len(x) else None


def _geometries(obj: GeometryLike | None) -> tuple[np.ndarray, Any]:
    """Return the geometries of ``obj`` as an object array, and its CRS (or None)."""
    if obj is None:
        return np.empty(0, dtype=object), None
    if isinstance(obj, BaseGeometry):
        return np.array([obj], dtype=object), None
    if isinstance(obj, (gpd.GeoSeries, gpd.GeoDataFrame)):
        return np.asarray(obj.geometry.values, dtype=object), obj.crs
    return np.asarray(list(obj), dtype=object), None


def _as_lines(geoms: np.ndarray) -> np.ndarray:
    """Single-part lines of ``geoms``: polygons give their boundary rings."""
    if len(geoms) == 0:
        return geoms
    geoms = geoms[~shapely.is_missing(geoms)]
    polygonal = np.isin(shapely.get_type_id(geoms), (3, 6))
    geoms = np.where(polygonal, shapely.boundary(geoms), geoms)
    parts = shapely.get_parts(geoms)
    keep = np.isin(shapely.get_type_id(parts), (1, 2)) & ~shapely.is_empty(parts)
    return parts[keep]


def _segments(lines: BaseGeometry) -> np.ndarray:
    """Split linework into its straight two-point segments (zero-length dropped)."""
    parts = shapely.get_parts(np.asarray([lines], dtype=object))
    parts = parts[np.isin(shapely.get_type_id(parts), (1, 2))]
    if len(parts) == 0:
        return np.empty(0, dtype=object)
    coords, idx = shapely.get_coordinates(parts, return_index=True)
    same = idx[1:] == idx[:-1]
    ends = np.stack([coords[:-1][same], coords[1:][same]], axis=1)
    ends = ends[np.any(ends[:, 0] != ends[:, 1], axis=1)]
    if len(ends) == 0:
        return np.empty(0, dtype=object)
    return shapely.linestrings(ends)


def _covered_by_corridor(
    segments: np.ndarray, lines: np.ndarray, snap: float
) -> np.ndarray:
    """Which segments lie wholly within ``snap`` of ``lines`` (flat-capped corridor).

    The corridor is the union of the lines buffered by ``snap`` with flat caps.
    It is never built as one polygon: an STRtree finds the lines near each
    segment, a segment inside one line's buffer is covered, and the others are
    cut by the buffers of all their nearby lines in turn; what remains (beyond
    floating-point crumbs) is outside the corridor.
    """
    covered = np.zeros(len(segments), dtype=bool)
    if len(segments) == 0 or len(lines) == 0:
        return covered
    tree = shapely.STRtree(lines)
    seg_i, line_i = tree.query(segments, predicate="dwithin", distance=snap)
    if len(seg_i) == 0:
        return covered
    buffers = np.empty(len(lines), dtype=object)
    used = np.unique(line_i)
    buffers[used] = shapely.buffer(lines[used], snap, cap_style="flat")
    single = shapely.covered_by(segments[seg_i], buffers[line_i])
    covered[seg_i[single]] = True
    # segments no single buffer covers: subtract every nearby buffer in turn
    todo = ~covered[seg_i]
    seg_i, line_i = seg_i[todo], line_i[todo]
    if len(seg_i) == 0:
        return covered
    order = np.argsort(seg_i, kind="stable")
    seg_i, line_i = seg_i[order], line_i[order]
    first = np.r_[0, np.flatnonzero(np.diff(seg_i)) + 1]
    rank = np.arange(len(seg_i)) - np.repeat(first, np.diff(np.r_[first, len(seg_i)]))
    rest = segments.copy()
    for k in range(int(rank.max()) + 1):
        at = rank == k
        rest[seg_i[at]] = shapely.difference(rest[seg_i[at]], buffers[line_i[at]])
    cands = np.unique(seg_i)
    covered[cands] = shapely.length(rest[cands]) <= _LENGTH_EPS
    return covered


def _check(
    grids: Any,
    buildings: Any,
    area: Any,
    streets: Any,
    community_boundaries: Any,
    exempt: Any,
    by: str,
    tolerance: float | Sequence[float],
    snap: float,
) -> None:
    """Collect every problem with the inputs and raise them together."""
    problems = Problems()
    if not isinstance(grids, gpd.GeoDataFrame):
        problems.add(
            f"evaluate: `grids` must be a GeoDataFrame, got {type(grids).__name__}. "
            "Pass plan.grids or read the grids layer with geopandas.read_file()."
        )
        problems.raise_if_any()
    check_layer(
        grids,
        "grids",
        problems,
        geometry="polygon",
        columns=("grid_id", "community_id", "kind", by),
    )
    if grids.crs is not None and grids.crs.is_geographic:
        problems.add(
            f"`grids` has geographic CRS {grids.crs.to_string()}; areas and lengths "
            "need a projected CRS in metres. Use grids.to_crs(...) (e.g. a CGCS2000 "
            "Gauss-Krüger zone) first."
        )
    if len(grids) and "grid_id" in grids.columns:
        ids = grids["grid_id"]
        if ids.isna().any():
            problems.add(
                f"`grids` has no grid_id in rows {list(grids.index[ids.isna()])[:5]}; "
                "every grid needs one."
            )
        dup = ids.duplicated(keep=False) & ids.notna()
        if dup.any():
            seen = sorted(set(ids[dup].astype(str)))[:5]
            problems.add(
                f"`grids` grid_id must be unique; {seen} occur more than once. "
                "Dissolve the grids by grid_id first."
            )
    if len(grids) and "kind" in grids.columns:
        bad = ~grids["kind"].isin(GRID_KINDS)
        if bad.any():
            seen = sorted(set(map(str, grids["kind"][bad])))
            problems.add(
                f"`grids` kind must be one of {list(GRID_KINDS)}; rows "
                f"{list(grids.index[bad])[:5]} hold {seen}."
            )
        if by in grids.columns:
            values = pd.to_numeric(grids[by], errors="coerce")
            missing = values.isna() & (grids["kind"] == "community")
            if missing.any():
                problems.add(
                    f"`grids` column {by!r} (by=) must be a number on every community "
                    f"grid; rows {list(grids.index[missing])[:5]} have none."
                )
    if buildings is not None:
        if not isinstance(buildings, (pd.DataFrame, gpd.GeoDataFrame)):
            problems.add(
                f"evaluate: `buildings` must be a GeoDataFrame, got "
                f"{type(buildings).__name__}."
            )
        elif "grid_id" not in buildings.columns:
            problems.add(
                "`buildings` has no column 'grid_id'; pass plan.buildings or the "
                "buildings layer written with the plan."
            )
    for name, layer in (
        ("buildings", buildings),
        ("area", area),
        ("streets", streets),
        ("community_boundaries", community_boundaries),
        ("exempt", exempt),
    ):
        crs = getattr(layer, "crs", None)
        if crs is not None and grids.crs is not None and not crs.equals(grids.crs):
            problems.add(
                f"`{name}` has CRS {crs.to_string()} but `grids` has "
                f"{grids.crs.to_string()}. Reproject it with .to_crs(grids.crs).",
                crs=True,
            )
    if np.ndim(tolerance):  # one per grid (differentiated targets)
        tol = np.asarray(tolerance)
        if tol.shape != (len(grids),) or not np.issubdtype(tol.dtype, np.number) \
                or not (tol >= 0).all():
            problems.add(
                f"tolerance per grid must be {len(grids)} fractions >= 0, got "
                f"{tol.shape[0] if tol.ndim == 1 else tol.shape} values."
            )
    elif not isinstance(tolerance, (int, float, np.number)) or not tolerance >= 0:
        problems.add(
            f"tolerance must be a fraction >= 0 (0.1 = ±10%), got {tolerance!r}."
        )
    if not isinstance(snap, (int, float, np.number)) or not snap > 0:
        problems.add(f"snap must be a positive distance in metres, got {snap!r}.")
    problems.raise_if_any()


# ----------------------------------------------------------------------- the figures
def _balance(
    grids: gpd.GeoDataFrame, by: str, tolerance: float | Sequence[float]
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Compute each grid's deviation from its community mean, and a summary."""
    n = len(grids)
    value = pd.to_numeric(grids[by], errors="coerce").to_numpy(dtype=float)
    is_comm = (grids["kind"] == "community").to_numpy()
    if "single_unit" in grids.columns:  # missing values mean False
        flag = grids["single_unit"]
        single = (flag.notna() & flag.astype(bool)).to_numpy()
    else:
        single = np.zeros(n, dtype=bool)
    codes, communities = pd.factorize(
        grids["community_id"][is_comm], use_na_sentinel=False
    )
    k = len(communities)
    # the mean a grid is held to is that of its community's ordinary grids: a grid
    # of one unit heavier than a grid is an exception and would drag the mean up,
    # and a grid flagged otherwise (an island cut off from the rest) would drag it
    # down (a community made only of such grids falls back to all of them)
    flagged = single.copy()
    if "flag" in grids.columns:
        flagged |= (grids["flag"].fillna("").astype(str) != "").to_numpy()
    ordinary = ~flagged[is_comm]
    has_ordinary = np.bincount(codes[ordinary], minlength=k) > 0
    use = ordinary | ~has_ordinary[codes]
    v = value[is_comm]
    count = np.bincount(codes[use], minlength=k)
    mean = band.community_means(v, codes, ordinary, k)
    with np.errstate(divide="ignore", invalid="ignore"):
        std = np.sqrt(
            np.bincount(codes[use], weights=(v[use] - mean[codes[use]]) ** 2, minlength=k)
            / count
        )
        cv = std / mean
    community_mean = np.full(n, np.nan)
    community_mean[is_comm] = mean[codes]
    deviation = band.deviation(value, community_mean)
    v = v[use]
    abs_dev = np.abs(deviation)
    tol = (np.asarray(tolerance, dtype=float) if np.ndim(tolerance)
           else cast("float", tolerance))
    within = ~band.out_of_band(deviation, tol)
    oversize = is_comm & band.oversize_exempt(single, deviation, tol)
    within = np.where(oversize | ~is_comm, True, within)
    exception = np.full(n, None, dtype=object)
    exception[oversize] = "single_unit"

    counted = is_comm & ~oversize
    out = is_comm & ~within
    ids = grids["grid_id"]
    scale, in_scale = _scale(grids, is_comm, codes, communities, mean, count, tol)
    n_off_scale = sum(not x["holds"] for x in scale.values())
    with np.errstate(divide="ignore", invalid="ignore"):
        cv_overall = float(np.std(v) / np.mean(v)) if len(v) else math.nan
    summary: dict[str, Any] = {
        "max_abs_deviation": _nanmax(abs_dev[counted]),
        "max_abs_deviation_all": _nanmax(abs_dev[is_comm]),
        "cv": _nanmax(cv),
        "cv_overall": _plain(cv_overall),
        "cv_by_community": {
            str(c): _plain(x)
            for c, x in sorted(
                zip(communities, cv, strict=True), key=lambda t: str(t[0])
            )
        },
        # grids out of the band round their community's mean, and communities
        # whose mean left the target band (规模适度): both are out of tolerance
        "n_out_of_tolerance": int(out.sum()) + n_off_scale,
        "out_of_tolerance": [_plain(x) for x in ids[out].tolist()],
        "n_grids_out_of_tolerance": int(out.sum()),
        "n_communities_out_of_scale": n_off_scale,
        "communities_out_of_scale": [c for c, x in scale.items() if not x["holds"]],
        "scale_by_community": scale,
        "n_single_unit_exceptions": int(oversize.sum()),
        "single_unit_exceptions": [_plain(x) for x in ids[oversize].tolist()],
    }
    columns = {
        "value": value,
        "community_mean": community_mean,
        "deviation": deviation,
        "within_tolerance": within.astype(bool),
        "exception": exception,
        "community_in_scale": in_scale,
    }
    return columns, summary


def _scale(grids: gpd.GeoDataFrame, is_comm: np.ndarray, codes: np.ndarray,
           communities: pd.Index, mean: np.ndarray, count: np.ndarray,
           tol: float | np.ndarray) -> tuple[dict[str, dict[str, Any]], Any]:
    """Every community's mean (and count of grids it is over) against its target.

    Per community (by id, as text): ``mean``, ``target``, ``tolerance``,
    ``n_grids`` (the grids the mean is over), ``grids_needed``
    (:func:`gridmap.band.scale_counts`), ``holds`` (the mean within ``target ±
    tolerance``) and ``can_hold`` (some grid count would put it there); and per
    grid whether its community's scale holds (``<NA>`` for road and unit grids,
    and everywhere when the grids carry no ``target`` column).
    """
    n, k = len(grids), len(communities)
    in_scale = pd.array([pd.NA] * n, dtype="boolean")
    if "target" not in grids.columns or not k:
        return {}, in_scale
    target = pd.to_numeric(grids["target"], errors="coerce").to_numpy(dtype=float)[is_comm]
    tol_c = np.broadcast_to(np.asarray(tol, dtype=float), (n,))[is_comm]
    first = np.unique(codes, return_index=True)[1]
    total = np.nan_to_num(mean * count)
    t, tl = target[first], tol_c[first]
    known = np.isfinite(t) & (t > 0)
    tk = np.where(known, t, 1.0)
    need = band.scale_counts(total, count, tk, tl)
    holds = ~known | (total <= 0) | band.in_scale(mean, tk, tl)
    # whether any grid count could hold it: a community too small or awkward for
    # its target is out of scale with the best count it can have
    fits = ~known | (total <= 0) | band.in_scale(total / np.maximum(need, 1), tk, tl)
    scale = {
        str(c): {"mean": _plain(mean[i]) if count[i] else None,
                 "target": _plain(t[i]) if known[i] else None, "tolerance": _plain(tl[i]),
                 "n_grids": int(count[i]), "grids_needed": int(need[i]),
                 "holds": bool(holds[i]), "can_hold": bool(fits[i])}
        for i, c in sorted(enumerate(communities), key=lambda x: str(x[1]))
    }
    in_scale[is_comm] = holds[codes]
    return scale, in_scale


def _buildings(
    grids: gpd.GeoDataFrame, geoms: np.ndarray, buildings: pd.DataFrame | None
) -> tuple[np.ndarray | None, dict[str, Any]]:
    """Count buildings per grid, and those assigned, unassigned or misplaced."""
    if buildings is None:
        return None, {
            "n_buildings": None,
            "n_buildings_assigned": None,
            "n_buildings_unassigned": None,
            "n_buildings_unknown_grid": None,
            "n_buildings_outside_grid": None,
        }
    bid = buildings["grid_id"]
    missing = bid.isna().to_numpy()
    pos = pd.Index(grids["grid_id"]).get_indexer(pd.Index(bid))
    pos[missing] = -1
    assigned = pos >= 0
    per_grid = np.bincount(pos[assigned], minlength=len(grids))
    outside: int | None = None
    try:
        bgeoms = np.asarray(buildings.geometry.values, dtype=object)[assigned]
    except AttributeError:  # a plain DataFrame, or no active geometry column
        pass
    else:
        inside = shapely.covers(geoms[pos[assigned]], shapely.point_on_surface(bgeoms))
        outside = int((~inside).sum())
    return per_grid, {
        "n_buildings": len(buildings),
        "n_buildings_assigned": int(assigned.sum()),
        "n_buildings_unassigned": int(missing.sum()),
        "n_buildings_unknown_grid": int((~assigned & ~missing).sum()),
        "n_buildings_outside_grid": outside,
    }


def _coverage(
    geoms: np.ndarray, area_geom: BaseGeometry | None
) -> tuple[BaseGeometry, dict[str, Any]]:
    """Measure the union of the grids, the gap, overlap and spill-over."""
    valid = shapely.is_valid(geoms) | shapely.is_missing(geoms)
    fixed = np.where(valid, geoms, shapely.make_valid(geoms))
    union = shapely.union_all(fixed)
    grids_area = float(shapely.area(geoms[~shapely.is_missing(geoms)]).sum())
    union_area = float(shapely.area(union))
    figures: dict[str, Any] = {
        "area_m2": None,
        "grids_area_m2": grids_area,
        "union_area_m2": union_area,
        "gap_m2": None,
        "overlap_m2": max(0.0, grids_area - union_area),
        "outside_m2": None,
        "gap_share": None,
        "overlap_share": None,
    }
    if area_geom is not None:
        a = float(shapely.area(area_geom))
        covered = float(shapely.area(shapely.intersection(area_geom, union)))
        figures["area_m2"] = a
        figures["gap_m2"] = max(0.0, a - covered)
        figures["outside_m2"] = max(0.0, union_area - covered)
        if a > 0:
            figures["gap_share"] = figures["gap_m2"] / a
            figures["overlap_share"] = figures["overlap_m2"] / a
    return union, figures


def _boundaries(
    geoms: np.ndarray,
    union: BaseGeometry,
    area_geom: BaseGeometry | None,
    street_lines: np.ndarray | None,
    exempt_geoms: np.ndarray,
    snap: float,
) -> dict[str, Any]:
    """Measure the internal grid boundary, and its parts on streets and exempt."""
    linework = shapely.union_all(shapely.boundary(geoms[~shapely.is_missing(geoms)]))
    segments = _segments(linework)
    outline = shapely.boundary(area_geom if area_geom is not None else union)
    corridor = shapely.buffer(outline, snap)
    shapely.prepare(corridor)
    internal = segments[~shapely.covered_by(segments, corridor)]
    lengths = shapely.length(internal)
    internal_m = float(lengths.sum())

    if street_lines is None:
        on_street = np.zeros(len(internal), dtype=bool)
    else:
        on_street = _covered_by_corridor(internal, street_lines, snap)
    on_street_m = float(lengths[on_street].sum())

    exempt_m = 0.0
    if len(exempt_geoms):
        # each segment against the exempt polygons near it: cutting every segment
        # with the union of all of them costs the size of that union each time
        off = internal[~on_street]
        tree = shapely.STRtree(exempt_geoms)
        si, bi = tree.query(off, predicate="intersects")
        pieces = shapely.intersection(off[si], exempt_geoms[bi])
        plen = shapely.length(pieces)
        pos = plen > 0
        si, pieces, plen = si[pos], pieces[pos], plen[pos]
        n_hit = np.bincount(si, minlength=len(off))
        alone = n_hit[si] == 1
        exempt_m = float(plen[alone].sum())
        # a segment in two polygons (along the edge they share): its pieces once
        rest = np.flatnonzero(~alone)
        if len(rest):
            order = rest[np.argsort(si[rest], kind="stable")]
            cut = np.flatnonzero(np.diff(si[order])) + 1
            for group in np.split(order, cut):
                exempt_m += float(shapely.length(shapely.union_all(pieces[group])))

    figures: dict[str, Any] = {
        "internal_boundary_m": internal_m,
        "on_street_m": on_street_m if street_lines is not None else None,
        "exempt_m": exempt_m,
        "street_share": None,
        "street_share_raw": None,
    }
    if street_lines is not None:
        not_exempt = internal_m - exempt_m
        figures["street_share"] = (on_street_m / not_exempt if not_exempt > _LENGTH_EPS
                                   else 1.0)
        figures["street_share_raw"] = (
            on_street_m / internal_m if internal_m > _LENGTH_EPS else 1.0
        )
    return figures


# --------------------------------------------------------------------------- public
def evaluate(
    grids: gpd.GeoDataFrame,
    *,
    buildings: pd.DataFrame | None = None,
    area: GeometryLike | None = None,
    streets: GeometryLike | None = None,
    community_boundaries: GeometryLike | None = None,
    exempt: GeometryLike | None = None,
    by: str = "households",
    tolerance: float | Sequence[float] = 0.1,
    snap: float = 1.0,
    count_fields: Sequence[str] = ("households", "pop_actual"),
) -> tuple[pd.DataFrame, dict[str, Any]]:
    r"""Compute the quality figures of a grid plan, per grid and overall.

    Parameters
    ----------
    grids
        One row per grid, in a projected CRS (metres), with columns ``grid_id``
        (unique), ``community_id``, ``kind`` (``"community"``, ``"road"`` or
        ``"unit"``), the balance column ``by``, the ``count_fields``, an optional
        bool ``single_unit`` (the grid is one indivisible unit) and a Polygon or
        MultiPolygon geometry.
    buildings
        Buildings with a ``grid_id`` column (missing for unassigned ones), and
        optionally their geometry, to count buildings per grid and check that
        each lies in its grid.
    area
        The jurisdiction the grids should tile: a (Multi)Polygon, or a layer whose
        union is taken. Without it, gap figures are ``None`` and the outline is
        that of the union of the grids.
    streets
        Street centre-lines.
    community_boundaries
        Community polygons (or their boundary lines); their boundaries count as
        streets.
    exempt
        Polygons of blocks that alone hold more than a grid: boundary inside them
        that is not on a street (cuts between their buildings) is reported as
        ``exempt_m`` and left out of ``street_share``.
    by
        The balance column, e.g. ``"households"`` or ``"pop_actual"``.
    tolerance
        Allowed relative deviation from the community mean (0.1 means ±10%);
        one for all grids, or one per grid (differentiated targets).
    snap
        Distance (m) within which a boundary counts as lying on a street, a
        community boundary or the area's outline.
    count_fields
        Columns of ``grids`` copied to the per-grid table and totalled; those
        absent from ``grids`` are skipped.

    Returns
    -------
    per_grid : pandas.DataFrame
        Indexed like ``grids``: ``grid_id``, ``community_id``, ``kind``, ``value``
        (the ``by`` column), ``community_mean`` (mean of ``by`` over the community
        grids of the same community; NaN for road and unit grids), ``deviation``
        (``value / community_mean - 1``), ``within_tolerance`` (``|deviation| <=
        tolerance``; always True for road and unit grids and for ``single_unit``
        grids above the tolerance, whose ``exception`` is ``"single_unit"``;
        missing otherwise), ``exception``, ``community_in_scale`` (the
        community's mean within ``target`` ± tolerance), ``n_parts`` (polygon parts; 1 is
        contiguous, 0 empty), ``area_m2``, ``perimeter_m`` (including holes),
        ``polsby_popper`` (:math:`4\pi A/P^2`),
        ``n_buildings`` (buildings whose ``grid_id`` is the grid's; ``<NA>``
        without ``buildings``) and the ``count_fields``.
    overall : dict
        JSON-serialisable figures (plain ``int``/``float``/``bool``/``str``,
        ``None`` where undefined); see the notes.

    Raises
    ------
    LayerValidationError
        Every problem with the inputs at once: not a GeoDataFrame, missing
        columns, unknown kinds, duplicate grid ids, geographic CRS, bad
        ``tolerance`` or ``snap``.
    CRSMismatchError
        A layer's CRS differs from that of ``grids``.

    Notes
    -----
    Balance is judged over community grids only. ``max_abs_deviation`` leaves
    out ``single_unit`` exceptions, ``max_abs_deviation_all`` does not. ``cv`` is
    the largest coefficient of variation (population standard deviation over the
    mean) of ``by`` within a community, ``cv_by_community`` gives each, and
    ``cv_overall`` pools all community grids.

    Scale (规模适度), with a ``target`` column: ``scale_by_community``;
    ``n_out_of_tolerance`` adds ``n_communities_out_of_scale`` to the grids out.

    Coverage: ``gap_m2 = area - |area ∩ ∪grids|``, ``overlap_m2 = Σ|grid| -
    |∪grids|``, ``outside_m2 = |∪grids| - |area ∩ ∪grids|``; shares are over the
    area. Figures that rounding makes negative are reported as 0.

    Boundaries: the boundaries of all grids are unioned (a shared edge counts
    once) and split into straight segments between consecutive vertices. A
    segment lying wholly within ``snap`` of the outline of ``area`` is outline;
    the others sum to ``internal_boundary_m``. An internal segment lying wholly
    within the ``snap`` corridor (flat caps) around the streets and community
    boundaries adds to ``on_street_m``, so an edge crossing a street is not
    counted as following it. ``exempt_m`` is the length of the other internal
    segments inside ``exempt`` polygons. ``street_share = on_street_m /
    (internal_boundary_m - exempt_m)`` and ``street_share_raw = on_street_m /
    internal_boundary_m``, each 1.0 when its denominator is 0, ``None``
    without streets and community boundaries.

    Buildings: ``n_buildings_assigned`` have a ``grid_id`` naming a grid,
    ``n_buildings_unassigned`` have none, ``n_buildings_unknown_grid`` name no
    grid; ``n_buildings_outside_grid`` counts assigned buildings whose
    representative point (``point_on_surface``) is not covered by their grid.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import box, LineString
    >>> grids = gpd.GeoDataFrame(
    ...     {"grid_id": ["A", "B"], "community_id": [1, 1],
    ...      "kind": ["community", "community"], "households": [290, 310],
    ...      "pop_actual": [900, 1000]},
    ...     geometry=[box(0, 0, 500, 500), box(500, 0, 1000, 500)], crs="EPSG:4547")
    >>> per_grid, overall = evaluate(
    ...     grids, area=box(0, 0, 1000, 500),
    ...     streets=gpd.GeoSeries([LineString([(500, -10), (500, 510)])], crs=4547))
    >>> per_grid[["grid_id", "deviation", "within_tolerance"]].round(3)
      grid_id  deviation  within_tolerance
    0       A     -0.033              True
    1       B      0.033              True
    >>> overall["street_share"], overall["gap_m2"], overall["internal_boundary_m"]
    (1.0, 0.0, 500.0)
    """
    _check(grids, buildings, area, streets, community_boundaries, exempt, by,
           tolerance, snap)
    geoms = np.asarray(grids.geometry.values, dtype=object)
    present = [c for c in count_fields if c in grids.columns]
    balance_cols, balance = _balance(grids, by, tolerance)
    shapes = _grid_shapes(geoms)
    per_building, building_figures = _buildings(grids, geoms, buildings)
    per_grid = _per_grid_table(grids, balance_cols, shapes, per_building, present)
    area_geom = _jurisdiction(area)
    union, coverage = _coverage(geoms, area_geom)
    boundary = _boundaries(geoms, union, area_geom,
                           _street_lines(streets, community_boundaries),
                           _exempt_blocks(exempt), snap)
    overall: dict[str, Any] = {
        **_plan_settings(grids, by, tolerance, snap), **balance,
        **_shape_figures(geoms, shapes), **coverage, **boundary, **building_figures,
        "totals": {c: _plain(grids[c].sum()) for c in present},
    }
    return per_grid, overall


# --------------------------------------------------------------- the steps of evaluate
def _grid_shapes(geoms: np.ndarray) -> dict[str, np.ndarray]:
    r"""The shape of every grid (contiguity and compactness).

    In: the grid geometries.  Out: per grid, ``n_parts`` (polygon parts),
    ``area_m2``, ``perimeter_m`` (holes included) and ``polsby_popper``
    (:math:`4\pi A/P^2`, NaN without a perimeter).
    """
    n_parts = shapely.get_num_geometries(geoms)
    area_m2 = shapely.area(geoms)
    perimeter = shapely.length(geoms)
    with np.errstate(divide="ignore", invalid="ignore"):
        pp = np.where(perimeter > 0, 4.0 * np.pi * area_m2 / perimeter**2, np.nan)
    return {"n_parts": n_parts, "area_m2": area_m2, "perimeter_m": perimeter,
            "polsby_popper": pp}


def _per_grid_table(grids: gpd.GeoDataFrame, balance_cols: dict[str, Any],
                    shapes: dict[str, np.ndarray], per_building: np.ndarray | None,
                    present: list[str]) -> pd.DataFrame:
    """The per-grid table of :func:`evaluate`, indexed like ``grids``.

    In: the grids, their balance columns (:func:`_balance`), their shapes
    (:func:`_grid_shapes`), the buildings of each (None without buildings) and
    the count fields present.  Out: ids, community, kind, balance, shape,
    ``n_buildings`` and the count fields.
    """
    per_grid = pd.DataFrame(
        {
            "grid_id": grids["grid_id"].to_numpy(),
            "community_id": grids["community_id"].to_numpy(),
            "kind": grids["kind"].to_numpy(),
            **balance_cols,
            "n_parts": shapes["n_parts"].astype(int),
            "area_m2": shapes["area_m2"],
            "perimeter_m": shapes["perimeter_m"],
            "polsby_popper": shapes["polsby_popper"],
            "n_buildings": pd.array(
                per_building if per_building is not None else [pd.NA] * len(grids),
                dtype="Int64",
            ),
        },
        index=grids.index,
    )
    for c in present:
        per_grid[c] = grids[c].to_numpy()
    return per_grid


def _jurisdiction(area: GeometryLike | None) -> BaseGeometry | None:
    """The jurisdiction the grids should tile: the union of ``area``, None without."""
    area_geoms, _ = _geometries(area)
    return shapely.union_all(area_geoms) if len(area_geoms) else None


def _street_lines(streets: GeometryLike | None,
                  community_boundaries: GeometryLike | None) -> np.ndarray | None:
    """The lines a grid boundary may follow.

    Street centre-lines and community boundaries, as lines; None when neither is
    given.
    """
    street_geoms = np.concatenate(
        [_geometries(streets)[0], _geometries(community_boundaries)[0]]
    )
    return (
        _as_lines(street_geoms)
        if streets is not None or community_boundaries is not None
        else None
    )


def _exempt_blocks(exempt: GeometryLike | None) -> np.ndarray:
    """The polygons of the blocks exempt from the street share (none missing)."""
    exempt_geoms, _ = _geometries(exempt)
    return exempt_geoms[~shapely.is_missing(exempt_geoms)]


def _plan_settings(grids: gpd.GeoDataFrame, by: str,
                   tolerance: float | Sequence[float], snap: float) -> dict[str, Any]:
    """The first overall figures: how many grids of each kind, and the settings.

    The settings they were judged with: ``by``, ``tolerance`` (one, or
    ``"per grid"``) and ``snap``.
    """
    kinds = grids["kind"].value_counts()
    by_kind = {k: int(kinds.get(k, 0)) for k in GRID_KINDS}
    if not np.ndim(tolerance):
        judged: Any = _plain(tolerance)
    else:
        each = np.asarray(tolerance)
        judged = float(each[0]) if len(set(each.tolist())) == 1 else "per grid"
    return {
        "n_grids": len(grids),
        "n_grids_by_kind": by_kind,
        "by": by,
        "tolerance": judged,
        "snap": _plain(snap),
    }


def _shape_figures(geoms: np.ndarray, shapes: dict[str, np.ndarray]) -> dict[str, Any]:
    """The overall figures of the grids' shapes.

    In: the grid geometries and their shapes (:func:`_grid_shapes`).  Out:
    contiguity (``contiguous``, ``n_noncontiguous``, ``n_empty``), ``n_invalid``
    and the mean and least Polsby–Popper score.
    """
    n_parts, pp = shapes["n_parts"], shapes["polsby_popper"]
    finite_pp = pp[np.isfinite(pp)]
    return {
        "contiguous": bool((n_parts == 1).all()),
        "n_noncontiguous": int((n_parts > 1).sum()),
        "n_empty": int((n_parts == 0).sum()),
        "n_invalid": int((~shapely.is_valid(geoms[~shapely.is_missing(geoms)])).sum()),
        "polsby_popper_mean": _plain(finite_pp.mean()) if len(finite_pp) else None,
        "polsby_popper_min": _plain(finite_pp.min()) if len(finite_pp) else None,
    }


# ----------------------------------------------------------------------------
# stage 8 of a plan: every figure of the grids, once
# ----------------------------------------------------------------------------
def evaluate_plan(assembled: Assembled, balanced: Balanced, counts: Counts,
                  communities: Communities, *, area: shapely.Geometry,
                  streets: np.ndarray, carve: Carve, buildings: gpd.GeoDataFrame | None,
                  exempt_blocks: np.ndarray, block_geoms: np.ndarray,
                  workload: Workload, work_crs: Any
                  ) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """Stage 8: the figures of every grid and of the plan, and the workload.

    In: the assembled grids (stage 7, working CRS), the balanced assignment and
    its units, the counts, the communities, the area, the streets, the blocks
    split before the balancing (their off-street edges are exempt from the street
    share) and the :class:`~gridmap.options.Workload`.  Out: the grids with
    every per-grid figure, workload, workers and the reason of every grid out of
    the band; and the overall figures (:func:`evaluate`'s, with the violations).
    """
    from .workload import grid_workload

    grids = assembled.grids.copy()
    exempt = gpd.GeoSeries(block_geoms[exempt_blocks], crs=work_crs)
    # the exception is a grid that is one indivisible unit (or one building): an
    # oversize grid that had to take a leftover no other grid touches is judged
    grids["single_unit"] = (grids["flag"] == "oversize") & (
        (assembled.n_units == 1) | (grids["n_buildings"].to_numpy() == 1))
    located = None
    if buildings is not None:
        located = gpd.GeoDataFrame({"grid_id": assembled.building_grid_id},
                                   geometry=buildings.geometry.values, crs=work_crs)
    outlines = [np.asarray(x, dtype=object) for x in (communities.polygons, carve.geometry)
                if x is not None and len(x)]
    per_grid, overall = evaluate(
        grids,
        buildings=located,
        area=area,
        streets=gpd.GeoSeries(streets, crs=work_crs) if len(streets) else None,
        # community outlines and the outlines of road and unit grids bound grids
        # the way streets do
        community_boundaries=gpd.GeoSeries(np.concatenate(outlines), crs=work_crs)
        if outlines else None,
        exempt=exempt if len(exempt) else None,
        by=counts.by,
        tolerance=grids["tolerance"].to_numpy(),
        count_fields=counts.fields,
    )
    for col in per_grid.columns:
        if col not in grids.columns:
            grids[col] = per_grid[col].to_numpy()
    load, load_report = grid_workload(grids, weights=workload.formula,
                                      capacity=workload.capacity,
                                      area_km2=grids.geometry.area.to_numpy() / 1e6)
    for col in load.columns:
        grids[col] = load[col].to_numpy()
    load_report["total_workload"] = float(load["workload"].sum())
    load_report["total_workers"] = int(load["workers"].sum())
    grids["reason"] = reasons(grids, assembled.labels, assembled.order, assembled.new_id,
                              balanced.units.graph, counts.by,
                              grids["tolerance"].to_numpy(),
                              checks=balanced.assignment.checks)
    overall["violations"] = [
        {
            "grid_id": int(r.grid_id),
            "code": r.code,
            "value": float(getattr(r, "value", np.nan)),
            "deviation": float(r.deviation),
            "reason": r.reason,
        }
        for r in grids[grids["reason"] != ""].itertuples()
    ]
    overall["workload"] = load_report
    return grids, overall


def reasons(grids: gpd.GeoDataFrame, labels: np.ndarray, order: np.ndarray,
             new_id: np.ndarray, g, by: str, tolerance: np.ndarray,
             checks: dict[int, dict] | None = None) -> list[str]:
    """Why each grid out of tolerance is so: its units and its neighbours.

    ``tolerance`` is that of every grid (row); ``checks`` what the exact re-cut
    found for a grid (by its number in the assignment).
    """
    out = [""] * len(grids)
    dev = dict(zip(grids["grid_id"], grids["deviation"], strict=True))
    # the grids judged against the mean: ordinary community grids, by community
    plain = (grids["kind"] == "community") & (grids["flag"].fillna("") == "")
    judged = dict(zip(grids["grid_id"], grids["community_id"].where(plain), strict=True))
    for row, r in enumerate(grids.itertuples()):
        if bool(r.within_tolerance) or r.kind != "community":
            continue
        old = int(order[row])
        units = np.flatnonzero(labels == old)
        w = g.weight[units]
        mean = float(r.community_mean)
        big = int(units[np.argmax(w)])
        nbrs = sorted({int(new_id[labels[x]]) for u in units.tolist()
                       for x in g.neighbours(u).tolist() if labels[x] != old})
        around = ", ".join(f"{n} ({dev.get(n, float('nan')):+.0%})" for n in nbrs[:8])
        side = "below" if r.deviation < 0 else "above"
        tol = float(tolerance[row])
        if r.flag == "oversize" and len(units) > 1:
            rest = units[units != big]
            text = (
                f"unit {big + 1} alone holds {w.max():g} {by}, "
                f"{w.max() / mean:.0%} of the community mean {mean:g}, more than a grid; "
                f"the grid also holds {len(rest)} other unit(s) of "
                f"{float(g.weight[rest].sum()):g} {by}, so it is not one indivisible unit"
            )
        elif len(units) == 1:
            text = (
                f"one indivisible unit (unit {big + 1}) of {w.max():g} {by}, "
                f"{w.max() / mean:.0%} of the community mean {mean:g}: {side} the "
                f"±{tol:.0%} band alone"
            )
        else:
            text = (
                f"{len(units)} units, the largest (unit {big + 1}) {w.max():g} {by} = "
                f"{w.max() / mean:.0%} of the community mean {mean:g}: "
            )
            peers = [n for n in nbrs if pd.notna(judged.get(n))
                     and judged.get(n) == r.community_id]
            sign = -1 if r.deviation < 0 else 1
            if peers and all(sign * dev[n] > tol / 2 for n in peers):
                # no neighbour has weight to spare (or room for more): the grids
                # of the area are too many (too few) for it, whatever the units
                text += (f"every neighbouring grid of its community is "
                         f"{'light' if sign < 0 else 'heavy'} too (beyond half the band): "
                         f"the area has "
                         f"{'more' if sign < 0 else 'fewer'} grids than its {by} fill")
            else:
                text += f"the units here are too coarse to trade within ±{tol:.0%}"
        out[row] = f"{text}; neighbouring grids {around or 'none'}"
        check = (checks or {}).get(old)
        if check and check["verdict"] == "infeasible":
            others = ", ".join(str(int(new_id[x])) for x in check["region"] if x != old)
            out[row] += (
                f"; exact check: no plan of this grid and the {check['grids'] - 1} "
                f"grid(s) around it, {others} ({check['units']} units), has every "
                "grid within the band"
            )
            if check.get("reach") is not None:
                # the proof covers only plans that move units a few steps
                out[row] += f" (plans moving units up to {check['reach']} units away)"
        elif check and check["verdict"] == "limit":
            out[row] += "; exact check: undecided (solver limit)"
        elif check and check["verdict"] == "not checked":
            lim = RegionLimits()
            out[row] += ("; exact check: not run (no neighbouring grid of its community "
                         f"fits a region of up to {lim.max_grids} grids, {lim.max_units} "
                         f"units and {lim.max_nodes} programme nodes, or the plan's "
                         "solver budget was spent)")
    return out


