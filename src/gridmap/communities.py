"""Stage 4b, communities: which community every block is in, and each one's target.

In: the street blocks (:class:`~gridmap.units.Blocks`), the community boundaries
if given, the weight of every building and the :class:`~gridmap.options.Balance`
options.  Out: :class:`Communities`: with no boundaries but a
``community_target``, communities delineated first (whole street blocks grouped
into contiguous communities of about that weight); the ids of the communities
and sub-districts; and the target, tolerance and type of every community
(差异性 targets).  A community that would need more grids than a grid code can
number is refused here, before the grids are made.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ._errors import InfeasiblePartitionError, LayerValidationError
from .band import heavier_than_a_grid
from .codes import official_codes
from .partition import UnitGraph, partition_graph
from .units import Blocks, build_units

if TYPE_CHECKING:
    from .options import Balance

__all__ = ["Communities", "check_grid_count", "community_targets", "delineate_communities",
           "find_communities"]


@dataclass(frozen=True)
class Communities:
    """The communities of a plan (stage 4b).

    ``ids`` and ``subdistrict_ids`` are the communities' own (``[1]`` when the
    whole area is one community); ``polygons`` their outlines in the working CRS
    (None when there were no boundaries and none were delineated); ``target``,
    ``tolerance`` and ``kind`` the target, tolerance and type of each (by
    position); ``blocks`` the blocks with their community; ``codes`` the
    communities' official 12-digit codes (None: none given, the grid codes are
    provisional).
    """

    ids: list[Any]
    subdistrict_ids: list[Any]
    polygons: np.ndarray | None
    target: np.ndarray
    tolerance: np.ndarray
    kind: list[str] | None
    blocks: Blocks
    codes: list[str] | None = None


def find_communities(blocks: Blocks, boundaries: gpd.GeoDataFrame | None,
                     buildings: gpd.GeoDataFrame | None, weight: np.ndarray,
                     balance: Balance, *, graph_of: Callable[..., tuple[Any, UnitGraph]],
                     building_geoms: np.ndarray, seed: int | None,
                     notes: list[str], code_column: str | None = None,
                     division_code: str = "000000") -> Communities:
    """Stage 4b: the communities, delineated first where asked, and their targets.

    And their official codes (:func:`~gridmap.codes.official_codes`: the column
    ``code_column`` of the boundaries, default ``code`` when present).
    """
    community_ids: list[Any] = [1]  # no boundaries: the whole area is community 1
    subdistrict_ids: list[Any] = [None]
    polygons = None
    codes = None
    if boundaries is not None:
        bnd = boundaries.reset_index(drop=True)
        polygons = np.asarray(shapely.make_valid(bnd.geometry.values))
        community_ids = (bnd["community_id"].tolist() if "community_id" in bnd
                         else list(range(1, len(bnd) + 1)))
        subdistrict_ids = (bnd["subdistrict_id"].tolist() if "subdistrict_id" in bnd
                           else [None] * len(bnd))
        codes = official_codes(bnd, code_column=code_column, division_code=division_code,
                               names=community_ids)
    elif code_column is not None:
        msg = (f"code_column={code_column!r} (--code-column) names the official codes on "
               "the community boundaries, but no boundaries were given (boundaries, "
               "--boundaries).")
        raise LayerValidationError(msg)
    if balance.community_target is not None:
        if boundaries is not None:
            notes.append("community_target was not used: community boundaries were given.")
        else:
            blocks, polygons, community_ids = delineate_communities(
                blocks, building_geoms, graph_of, balance.community_target,
                balance.community_tolerance, seed)
            subdistrict_ids = [None] * len(community_ids)
            notes.append(f"{len(community_ids)} communities delineated first (target "
                         f"{balance.community_target:g} ±{balance.community_tolerance:.0%} "
                         f"on {balance.by!r}), then the grids inside each.")
    target, tolerance, kind = community_targets(
        balance, boundaries=boundaries, buildings=buildings, blocks=blocks, weight=weight,
        n_communities=len(community_ids), notes=notes)
    return Communities(community_ids, subdistrict_ids, polygons, target, tolerance, kind,
                       blocks, codes)


def check_grid_count(weight: np.ndarray, community: np.ndarray, target: Any,
                     tolerance: Any, community_ids: list[Any]) -> None:
    """Refuse, before the partition, a community that would have over 999 grids.

    A grid code numbers grids within their community in 3 digits (GB/T 30428.1).
    ``target`` and ``tolerance`` are one for all or arrays per community.
    """
    n = int(community.max(initial=0)) + 1
    t = np.broadcast_to(np.asarray(target, dtype=float), (n,)) if np.ndim(target) == 0 \
        else np.asarray(target, dtype=float)
    tol = np.broadcast_to(np.asarray(tolerance, dtype=float), (n,)) \
        if np.ndim(tolerance) == 0 else np.asarray(tolerance, dtype=float)
    heavy = heavier_than_a_grid(weight, t[community], tol[community])
    w = np.bincount(community, weights=weight, minlength=n)
    # oversize units are grids of their own; the rest is shared out by the target
    big = np.bincount(community, weights=heavy, minlength=n)
    rest = np.bincount(community, weights=np.where(heavy, 0, weight), minlength=n)
    k = big + np.round(rest / t[:n])
    worst = int(np.argmax(k))
    if k[worst] > 999:
        name = community_ids[worst] if worst < len(community_ids) else worst
        msg = (
            f"community {name!r} would have about {int(k[worst]):,} grids "
            f"({w[worst]:,.0f} on the balance field at a target of {t[worst]:g}), but a "
            "grid code numbers the grids of a community in 3 digits (at most 999, "
            "GB/T 30428.1); "
            + ("give community boundaries (`boundaries`, --boundaries) so that each "
               "community holds fewer grids" if len(community_ids) <= 1 else
               "split that community into smaller ones")
            + ", or use a larger target"
        )
        raise InfeasiblePartitionError(msg)


def community_targets(
    balance: Balance, *, boundaries: gpd.GeoDataFrame | None,
    buildings: gpd.GeoDataFrame | None, blocks: Blocks, weight: np.ndarray,
    n_communities: int, notes: list[str],
) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    """Target, tolerance and type of every community (差异性 targets)."""
    targets: Mapping[str, Any] | None = balance.targets
    type_column = balance.type_column
    n = max(n_communities, 1)
    ctarget = np.full(n, float(balance.target))
    ctol = np.full(n, float(balance.tolerance))
    if targets is None:
        return ctarget, ctol, None
    table = {k: (v if isinstance(v, tuple) else (v, balance.tolerance))
             for k, v in targets.items()}
    if boundaries is not None and type_column in boundaries.columns:
        ctype = boundaries[type_column].astype(str).tolist()[:n]
        source = "the boundaries"
    elif buildings is not None and type_column in buildings.columns:
        # the type that holds most of the community's balance weight
        comm = np.asarray(blocks.community)[blocks.building_block]
        df = pd.DataFrame({"c": comm, "t": buildings[type_column].astype(str).to_numpy(),
                           "w": weight + 1e-9})
        best = df.groupby(["c", "t"])["w"].sum().reset_index() \
            .sort_values(["c", "w", "t"], ascending=[True, False, True]) \
            .drop_duplicates("c").set_index("c")["t"]
        ctype = [str(best.get(c, "")) for c in range(n)]
        source = "the buildings"
    else:
        cols = sorted(map(str, (boundaries.columns if boundaries is not None
                                else buildings.columns if buildings is not None else [])))
        msg = (f"targets per community type were given, but neither the boundaries "
               f"nor the buildings have a column {type_column!r} (type_column=); "
               f"columns: {cols}")
        raise LayerValidationError(msg)
    unknown = sorted({t for t in ctype if t not in table})
    for c, t in enumerate(ctype):
        if t in table:
            ctarget[c], ctol[c] = table[t]
    if unknown:
        notes.append(f"community type(s) {unknown} (from {source}) have no target in "
                     f"the table; they use target {balance.target:g} "
                     f"±{balance.tolerance:.0%}.")
    return ctarget, ctol, ctype


def delineate_communities(blocks: Blocks, building_geoms: np.ndarray,
                          graph_of: Callable[..., tuple[Any, UnitGraph]], target: float,
                          tolerance: float, seed: int | None
                          ) -> tuple[Blocks, np.ndarray, list[str]]:
    """Group whole street blocks into contiguous communities of about ``target``.

    Returns the blocks with their community, the communities' outlines and their
    ids (``C001``, ... numbered west→east, north→south, like grids).
    """
    whole = np.zeros(len(blocks.geometry), dtype=bool)
    umap0, bu0 = build_units(blocks, building_geoms, whole)
    _, g0 = graph_of(umap0, bu0)
    part = partition_graph(g0, np.zeros(g0.n, dtype=np.int64), target=target,
                           tolerance=tolerance, seed=seed)
    comm = np.full(len(blocks.geometry), -1, dtype=np.int64)
    comm[umap0["block"].to_numpy()] = part.labels
    lost = np.flatnonzero(comm < 0)
    if len(lost):  # slivers merged into a neighbour: that neighbour's community
        tree = shapely.STRtree(np.asarray(umap0.geometry.values))
        near = tree.nearest(np.asarray(blocks.geometry)[lost])
        comm[lost] = part.labels[near]
    labels = np.unique(comm)
    polys = np.array([shapely.union_all(np.asarray(blocks.geometry)[comm == k],
                                        grid_size=1e-3) for k in labels], dtype=object)
    c = shapely.get_coordinates(shapely.point_on_surface(polys))
    order = np.lexsort((np.round(c[:, 0], 0), -np.round(c[:, 1], 0)))
    rank = np.empty(len(labels), dtype=np.int64)
    rank[order] = np.arange(len(labels))
    remap = dict(zip(labels.tolist(), rank.tolist(), strict=True))
    comm = np.array([remap[int(x)] for x in comm], dtype=np.int64)
    ids = [f"C{k + 1:03d}" for k in range(len(labels))]
    return dataclasses.replace(blocks, community=comm), polys[order], ids
