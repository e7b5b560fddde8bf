"""The plan running, carried over into a re-partition: where every unit starts.

A re-partition (:func:`gridmap.repartition`) makes its plan with the stages of a
new one (:func:`gridmap.delineation.make_plan`), given a :class:`PreviousPlan`:
the grid every building was in, the blocks the plan split, the weights it had,
the grids to lock.  Two stages then differ: the blocks whose buildings were in
several grids, and the blocks of communities whose population changed, are
split between their buildings (:func:`split_again`), so that grid edges can move
building by building; and instead of a new partition every unit starts in the
grid its buildings were in and only what is out of balance moves
(:func:`rebalance_previous`).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from . import band, objective
from .balance import Balanced, Held, improve_held, release_from_oversize
from .partition import GridAssignment, UnitGraph, refine, repair
from .partition.bisection import recursive_bisection
from .partition.flow import flow_rebalance, grow_grid
from .partition.refine import connected_without

if TYPE_CHECKING:
    from .communities import Communities
    from .options import Options
    from .units import UnitMaker, Units

__all__ = ["PreviousPlan", "rebalance", "rebalance_previous", "seed_assignment",
           "split_again"]


@dataclass(frozen=True)
class PreviousPlan:
    """What the plan running says, for its re-partition.

    ``building_grid`` is the grid of every building by id; ``grids`` the plan's
    grids (its CRS); ``lock`` the grid ids that must not change; ``move_budget``
    bounds the households moved per household of change; ``grid_weight`` and
    ``building_weight`` the balance field per grid and per building id in the
    plan running; ``split_buildings`` the ids of the buildings of the blocks the
    plan split; ``demolished_grids`` the grids that lost a building; ``used``
    every code and the highest grid id the plan's register holds;
    ``pinned_buildings`` the ids of buildings whose units must stay in the grid
    they start in (moved there by hand: :func:`gridmap.apply_edits`).
    """

    building_grid: pd.Series
    grids: gpd.GeoDataFrame
    lock: tuple[int, ...] = ()
    move_budget: float | None = 2.0
    grid_weight: pd.Series | None = None
    building_weight: pd.Series | None = None
    split_buildings: frozenset[Any] = field(default_factory=frozenset)
    demolished_grids: tuple[Any, ...] = ()
    #: every code and the highest grid id the plan ever used (its register)
    used: tuple[frozenset[str], int] = (frozenset(), 0)
    pinned_buildings: frozenset[Any] = field(default_factory=frozenset)

    def old_grid(self, ids: np.ndarray) -> np.ndarray:
        """The grid every building (by id) was in; NaN for a new building."""
        return pd.Series(ids).map(self.building_grid).to_numpy(dtype=float)


def split_again(previous: PreviousPlan, maker: UnitMaker, split: np.ndarray, *,
                ids: np.ndarray, weight: np.ndarray, community_ids: list[Any]) -> np.ndarray:
    """The blocks a re-partition splits between their buildings.

    Those whose buildings were in several grids, those the plan split, and every
    block of a community whose population changed.
    """
    blocks = maker.blocks
    n_buildings, special = maker.n_buildings, maker.special
    split = split.copy()
    # the grid every building was in; a block whose buildings were in several
    # grids is split between them again
    bb = pd.DataFrame({"b": blocks.building_block, "g": previous.old_grid(ids)}).dropna()
    spans = bb.groupby("b")["g"].nunique()
    many = np.zeros(len(blocks.geometry), dtype=bool)
    many[spans.index[spans > 1].to_numpy(dtype=np.int64)] = True
    split |= many & (n_buildings > 1) & (special < 0)
    if previous.split_buildings:
        was = pd.Series(ids).isin(previous.split_buildings).to_numpy()
        split[np.unique(blocks.building_block[was])] |= True
        split &= (n_buildings > 1) & (special < 0)
    # in a community whose population changed, blocks are split between their
    # buildings from the start: grid edges can then move building by building
    # instead of block by block, and fewer households change grid
    if previous.building_weight is not None:
        before_w = pd.Series(ids).map(previous.building_weight).to_numpy(dtype=float)
        changed = np.isnan(before_w) | (np.abs(weight - np.nan_to_num(before_w)) > 1e-9)
        community = np.asarray(blocks.community, dtype=np.int64)
        touched = set(community[blocks.building_block[changed]].tolist())
        if len(previous.demolished_grids):
            gmap = previous.grids.set_index("grid_id")["community_id"].astype(str)
            cpos = {str(cid): k for k, cid in enumerate(community_ids)}
            touched |= {cpos[gmap[x]] for x in previous.demolished_grids
                        if x in gmap and gmap[x] in cpos}
        split |= np.isin(community, list(touched)) & (n_buildings > 1) & (special < 0)
    return split


def rebalance_previous(previous: PreviousPlan, units: Units, communities: Communities,
                       options: Options, *, ids: np.ndarray, work_crs: Any,
                       maker: UnitMaker, progress: bool = False) -> Balanced:
    """Stage 6 of a re-partition: every unit in its old grid, then balance restored.

    Every unit goes in the grid its buildings were in, then balance is restored with
    as few moves as possible (:func:`rebalance`); where grids are still out, the
    balancing loop's moves that keep the units run on them
    (:func:`~gridmap.balance.improve_held`), judged by the one objective with the
    households moved as its third term, within each community's move budget and
    never changing a grid locked or held.
    """
    notes: list[str] = []
    balanced_units = units
    if previous.pinned_buildings:
        # the units moved by hand stay where the planner put them
        pinned = np.zeros(units.graph.n, dtype=bool)
        pinned[units.building_unit[np.isin(ids, list(previous.pinned_buildings))]] = True
        units = dataclasses.replace(units, graph=dataclasses.replace(units.graph,
                                                                     pinned=pinned))
    assignment = seed_assignment(previous, units.graph, units.table, units.building_unit,
                                 previous.old_grid(ids), communities.ids,
                                 grids_work=previous.grids.to_crs(work_crs))
    start = _kept_ids(assignment)[assignment.labels]
    before = previous.grid_weight
    opened: dict[int, tuple[float, set[int]]] = {}
    assignment = rebalance(assignment, units.graph, communities.tolerance, previous.lock,
                           options.search.seed, notes, target=communities.target,
                           building_unit=units.building_unit,
                           before=None if before is None else before.to_dict(),
                           move_budget=previous.move_budget, opened=opened)
    # then the balancing loop, where grids are still out, within the same limits
    held = _held(assignment, units, start, opened, len(communities.ids))
    assignment, more, report = improve_held(assignment, units, maker,
                                            communities.tolerance, options.search, held,
                                            progress=progress)
    return Balanced(assignment, balanced_units, notes + more, options.search.seed, report)


def _kept_ids(a: GridAssignment) -> np.ndarray:
    """The id in the plan running of every grid (-1: a new grid)."""
    ids = np.full(a.n_grids, -1, dtype=np.int64)
    for k, (gid, _) in a.keep.items():
        ids[k] = gid
    return ids


def _held(a: GridAssignment, units: Units, start: np.ndarray,
          opened: dict[int, tuple[float, set[int]]], n_communities: int) -> Held:
    """What the re-partition's loop must keep (:class:`~gridmap.balance.Held`).

    Every grid of a community :func:`rebalance` left alone, and the grids it held,
    are frozen; households moved are counted from ``start`` (the id, in the plan
    running, of every unit's grid); each community may move its budget in all.
    """
    keep_id = _kept_ids(a)
    community = np.asarray(a.community, dtype=np.int64)
    frozen = np.array([int(community[k]) not in opened
                       or int(keep_id[k]) in opened[int(community[k])][1]
                       for k in range(a.n_grids)], dtype=bool)
    # the reference in the plan's grid numbers: a unit whose grid is gone (or that
    # started in no grid of the plan) moved
    grid_of_id = np.full(int(max(keep_id.max(initial=0), start.max(initial=0))) + 1, -1,
                         dtype=np.int64)
    kept = np.flatnonzero(keep_id >= 0)
    grid_of_id[keep_id[kept]] = kept
    reference = np.where(start >= 0, grid_of_id[np.maximum(start, 0)], -1)
    budget = np.zeros(max(n_communities, int(community.max(initial=-1)) + 1))
    for c, (b, _) in opened.items():
        budget[c] = b
    return Held(frozen, reference, budget)


def seed_assignment(previous: PreviousPlan, g: UnitGraph, umap: gpd.GeoDataFrame,
                    building_unit: np.ndarray, old_grid: np.ndarray,
                    community_ids: list[Any], *, grids_work: gpd.GeoDataFrame
                    ) -> GridAssignment:
    """Every unit in the grid its buildings were in (the area it lies in if empty)."""
    grids = previous.grids
    gw = grids_work
    unit_grid = np.full(len(umap), np.nan)
    df = pd.DataFrame({"u": building_unit, "g": old_grid}).dropna()
    if len(df):
        mode = (df.groupby(["u", "g"]).size().reset_index(name="n")
                .sort_values(["u", "n", "g"], ascending=[True, False, True])
                .drop_duplicates("u"))
        unit_grid[mode["u"].to_numpy(dtype=np.int64)] = mode["g"].to_numpy()
    rest = np.flatnonzero(np.isnan(unit_grid))
    if len(rest):
        pts = shapely.point_on_surface(np.asarray(umap.geometry.values)[rest])
        geoms = np.asarray(gw.geometry.values)
        tree = shapely.STRtree(geoms)
        near = tree.nearest(pts)
        unit_grid[rest] = gw["grid_id"].to_numpy()[near]
    present = sorted({int(x) for x in unit_grid})
    pos = {gid: k for k, gid in enumerate(present)}
    labels = np.array([pos[int(x)] for x in unit_grid], dtype=np.int64)
    out = GridAssignment(labels)
    info = grids.set_index("grid_id")
    cindex = {str(c): k for k, c in enumerate(community_ids)}
    for gid in present:
        row = info.loc[gid]
        flag = "" if pd.isna(row.get("flag", "")) else str(row.get("flag", ""))
        kind = str(row.get("kind", "community"))
        c = cindex.get(str(row["community_id"]), 0)
        k = out.new_grid(c, flag if kind == "community" else kind, kind=kind)
        out.keep[k] = (int(gid), str(row["code"]))
    return out


def _seed_unit(g: UnitGraph, labels: np.ndarray, w: dict[int, float], cands: list[int],
               mean: float, tol: float) -> int | None:
    """The unit to start a new grid from: on the edge of the heaviest grids.

    Among the units of the heaviest grids (that can leave their grid without
    cutting it in two), the one touching most grids above the mean, then the
    most weight above the mean around it, then the lightest.
    """
    for k in sorted(cands, key=lambda x: (-w[x], x)):
        if w[k] <= mean:
            return None
        best = None
        for u in np.flatnonzero(labels == k).tolist():
            wu = float(g.weight[u])
            if wu > mean * (1 + tol):
                continue
            near = {int(x) for x in labels[g.neighbours(u)]} & set(cands)
            heavy = [x for x in near | {k} if w[x] > mean]
            key = (-len(heavy), -sum(w[x] - mean for x in heavy), wu, u)
            if best is not None and key >= best[0]:
                continue
            if not connected_without(g, labels, u):
                continue
            best = (key, u)
        if best is not None:
            return best[1]
    return None


def _drop_empty(a: GridAssignment) -> GridAssignment:
    used = np.unique(a.labels)
    if len(used) == a.n_grids:
        return a
    remap = {int(old): new for new, old in enumerate(used.tolist())}
    b = GridAssignment(np.array([remap[int(x)] for x in a.labels], dtype=np.int64))
    for old in used.tolist():
        k = b.new_grid(a.community[old], a.flag[old], kind=a.kind[old])
        if old in a.keep:
            b.keep[k] = a.keep[old]
        if old in a.special:
            b.special[k] = a.special[old]
    b.mean, b.notes = dict(a.mean), list(a.notes)
    return b


def _flag_oversize(a: GridAssignment, g: UnitGraph, target: np.ndarray,
                   tolerance: np.ndarray) -> None:
    """Flag ``oversize`` the grids of one unit now heavier than a grid.

    The rule of a new plan (:func:`gridmap.band.heavier_than_a_grid`): such a
    unit is a grid of its own, an exception to the band and out of its
    community's mean.  A building that grew past it is one too; left ordinary,
    its grid would count as out with nothing to move.  ``target`` and
    ``tolerance`` are per community.
    """
    w = np.bincount(a.labels, weights=g.weight, minlength=a.n_grids)
    n_units = np.bincount(a.labels, minlength=a.n_grids)
    comm = np.asarray(a.community, dtype=np.int64)
    plain = np.array([not f and k == "community" for f, k in zip(a.flag, a.kind, strict=True)],
                     dtype=bool)
    heavy = band.heavier_than_a_grid(w, target[comm], tolerance[comm])
    for k in np.flatnonzero(plain & (n_units == 1) & heavy).tolist():
        a.flag[k] = "oversize"


def rebalance(a: GridAssignment, g: UnitGraph, tolerance: Any, lock: Iterable[int],
              seed: int | None, notes: list[str], target: Any = 300.0,
              before: Mapping[Hashable, float] | None = None,
              move_budget: float | None = 2.0,
              opened: dict[int, tuple[float, set[int]]] | None = None,
              building_unit: np.ndarray | None = None) -> GridAssignment:
    """Restore balance community by community with as few moves as possible.

    A community is left alone while its grids are within the band.  Otherwise
    weight flows between neighbouring grids along a minimum-cost flow
    (:func:`~gridmap.partition.flow.flow_rebalance`); where the community's
    grids have, on average, left the target band, or where splitting or merging
    moves fewer households, grids are split (the heaviest, in two) or removed
    (the lightest, shared out among its neighbours) first, to the count nearest
    to the one it has that puts its mean within ``target ± tolerance``
    (:func:`gridmap.band.scale_counts`).  A plan back in scale is kept first,
    then the one that leaves fewest grids out of the band, then moves fewest
    households; a plan no better than the one running is
    not adopted.  ``before`` (grid id → weight in the plan running) bounds the
    disruption: a community may move at most ``move_budget`` households per
    household its grids gained or lost (plus one grid's worth); a plan that
    moves more is not adopted (``None``: no bound).  ``opened``, if given, is
    filled with the communities that had grids out and a change: their move
    budget and the ids of the grids held (locked, or out before and unchanged).
    With ``building_unit``, an oversize grid's light units go to a neighbour
    first (:func:`~gridmap.balance.release_from_oversize`).
    """
    rng = np.random.default_rng(seed)
    lock_ids = {int(x) for x in lock}
    n_communities = max(max(a.community, default=0) + 1, int(np.size(tolerance)),
                        int(np.size(target)))
    # one target and tolerance per community
    tolerances, targets = (np.broadcast_to(np.asarray(x, dtype=float), (n_communities,))
                           if np.ndim(x) == 0 else np.asarray(x, dtype=float)
                           for x in (tolerance, target))
    _flag_oversize(a, g, targets, tolerances)
    if building_unit is not None:
        # a block split again (a unit now heavier than a grid) leaves the grid that
        # held it whole with its heavy building and light ones: those go to a
        # neighbour first, as in a new plan (an oversize grid is its unit alone),
        # so that the community's mean counts them where they end up
        locked = np.isin(_kept_ids(a), list(lock_ids))
        if release_from_oversize(a, g, building_unit, frozen=locked):
            notes.append("light buildings that shared a block with one heavier than a "
                         "grid went to a neighbouring grid (the heavy one is a grid of "
                         "its own, flagged oversize).")
    for c in sorted(set(a.community)):
        _CommunityRebalance(a, g, c, float(tolerances[c]), float(targets[c]), lock_ids, rng,
                            notes, tolerances, opened).run(before, move_budget)
    # a grid the moves left holding one building grown past a grid is an
    # exception like any other of one unit (before the balancing loop, which
    # then judges the others against the mean without it)
    _flag_oversize(a, g, targets, tolerances)
    return _drop_empty(a)


class _CommunityRebalance:
    """The re-balancing of one community's grids (see :func:`rebalance`)."""

    def __init__(self, a: GridAssignment, g: UnitGraph, c: int, tol: float, tgt: float,
                 lock_ids: set[int], rng: np.random.Generator, notes: list[str],
                 tolerance: np.ndarray,
                 opened: dict[int, tuple[float, set[int]]] | None = None) -> None:
        self.a, self.g, self.c, self.tol, self.tgt = a, g, c, tol, tgt
        self.opened = opened
        self.tolerance = tolerance  # of every community, for the objective
        self.rng, self.notes = rng, notes
        self.locked = {k for k in self.ordinary() if a.keep.get(k, (None,))[0] in lock_ids}

    def ordinary(self) -> list[int]:
        """The community's ordinary grids that hold units."""
        a = self.a
        # one count of every grid's units, not a scan of all units per grid
        present = np.bincount(a.labels, minlength=a.n_grids) > 0
        return [k for k in range(a.n_grids) if a.community[k] == self.c and not a.flag[k]
                and present[k]]

    def weights(self) -> dict[int, float]:
        w = np.bincount(self.a.labels, weights=self.g.weight, minlength=self.a.n_grids)
        return {k: float(w[k]) for k in self.ordinary()}

    def out_of_band(self, mean: float) -> list[int]:
        return [k for k, w in self.weights().items()
                if k not in self.locked and abs(w / mean - 1) > self.tol + 1e-9]

    def run(self, before: Mapping[Hashable, float] | None,
            move_budget: float | None) -> None:
        """Re-balance the community, or leave it as it was (and say why)."""
        a, c, tol, tgt, notes = self.a, self.c, self.tol, self.tgt, self.notes
        grids = self.ordinary()
        if not grids:
            return
        # a grid that was out of tolerance in the plan running and has the same
        # households now is held as it is: it was out for want of a better cut,
        # and reshuffling its neighbours for it is not what the change asks
        old_w: dict[int, float | None] = {}
        known: list[float] = []
        if before:
            old_w = {k: before.get(a.keep[k][0]) if k in a.keep else None for k in grids}
            known = [x for x in old_w.values() if x is not None]
            old_mean = sum(known) / len(known) if known else 0.0
            now_w = self.weights()
            self.locked |= {k for k, x in old_w.items() if x is not None and old_mean > 0
                            and abs(x / old_mean - 1) > tol + 1e-9
                            and abs(now_w[k] - x) < 1e-9}
        total = sum(self.weights().values())
        mean = total / len(grids)
        a.mean[c] = mean
        n_out_before = len(self.out_of_band(mean))
        # 规模适度: the community's mean is held to its target as well as its grids
        # to the mean; a community grown or shrunk out of target ± tolerance gets
        # the grid count nearest to the one it has that brings it back
        k_new = int(band.scale_counts(total, len(grids), tgt, tol))
        must_resize = k_new != len(grids)
        counts = [k_new] if must_resize else []
        old_total = sum(known) if before and len(known) == len(old_w) else 0.0
        if old_total > 0:
            # also as many grids as the plan had, scaled by the change, where that
            # keeps the scale: a new estate gets grids of its own instead of
            # swelling every grid of its community a little
            k_same = max(1, round(len(grids) * total / old_total))
            if k_same not in (len(grids), k_new) and \
                    int(band.scale_counts(total, k_same, tgt, tol)) == k_same:
                counts.append(k_same)
        w0 = self.weights()
        change = sum(abs(w0[k] - (before.get(a.keep[k][0], w0[k]) if k in a.keep else w0[k]))
                     for k in grids) if before else 0.0
        # a grid added or removed for the scale moves about a grid's worth on top
        budget = np.inf if move_budget is None or not before else \
            move_budget * change + mean * (1 + abs(k_new - len(grids)))
        if not n_out_before and not must_resize:
            return  # balanced: nothing moves
        if before and change < 1e-9:
            return  # nobody moved in or out: what was out of tolerance stays as it was
        self.saved = (a.labels.copy(), a.n_grids, dict(a.mean), len(notes))
        if self.opened is not None:
            # the balancing loop may go on here, within the same budget, the
            # locked and held grids kept (by their ids in the plan running)
            self.opened[c] = (float(budget), {a.keep[k][0] for k in self.locked
                                              if k in a.keep})
        best = self.best_try(must_resize, counts, budget)
        if best is None:
            self.restore()
            notes.append(f"community {c}: {n_out_before} grid(s) out of tolerance; "
                         f"bringing them back would move more than {budget:,.0f} "
                         f"({move_budget:g} per unit of change); left as they were")
            return
        (labels, comm_, flag_, kind_, means_, notes_, grids, mean, resized) = best
        a.labels, a.community, a.flag, a.kind, a.mean = labels, comm_, flag_, kind_, means_
        notes[:] = notes_
        if must_resize and resized is None:
            notes.append(f"community {c}: its grids average {mean:,.0f}, "
                         f"{mean / tgt - 1:+.0%} from the target {tgt:g}; {k_new} grids "
                         "instead would move more households than the move budget allows "
                         "or leave more grids out of tolerance, so the grid count was kept "
                         "(raise move_budget, or delineate the community again)")
        n_out = len(self.out_of_band(mean))
        if not (must_resize and resized is not None) and n_out >= n_out_before:
            # moving did not bring a grid back into the band: move nothing (what
            # could not be balanced before cannot now, and households stay put)
            self.restore()
            notes.append(f"community {c}: {n_out_before} grid(s) out of tolerance could "
                         "not be brought back by moves, splits or merges; left as they were")

    def best_try(self, must_resize: bool, counts: list[int],
                 budget: float) -> tuple | None:
        """Moves alone (the grids as they are), and each grid count of ``counts``.

        ``counts`` starts with the count the scale needs where ``must_resize``,
        and those are tried first.  The better plan is kept: one whose community
        is back in scale, then fewer grids out (of the grids not locked), then by
        the objective (:mod:`gridmap.objective`): the excess beyond the band, the
        households moved, the largest deviation, the cut cost.  None when every
        try moves more than the budget.
        """
        a, g = self.a, self.g
        best = None
        tries: list[int | None] = [*counts, None] if must_resize else [None, *counts]
        # "flow": the flow, then moves that stop at the band; "flow+local": the
        # flow, then the local search aiming inside the band; "local": the local
        # search alone, with re-splitting as a last resort
        for k, method in itertools.product(tries, ("flow", "flow+local", "local")):
            self.restore()
            self.attempt(k, method)
            grids = self.ordinary()
            mean = sum(self.weights().values()) / len(grids)
            # the one objective (gridmap.objective), households moved its third
            # term; a try that keeps the grid count where the community left its
            # scale comes after every one that brings it back
            score = objective.score(a, g, self.tolerance, reference=self.saved[0])
            moved = score.moved
            key = (must_resize and k is None, len(self.out_of_band(mean)), score)
            state = (a.labels.copy(), list(a.community), list(a.flag), list(a.kind),
                     dict(a.mean), list(self.notes), grids, mean, k)
            if moved > budget + 1e-9:
                continue  # it would move more households than the change warrants
            if best is None or key < best[0]:
                best = (key, state)
            if method == "local" and best is not None and not best[0][0] and best[0][1] == 0:
                break  # good enough: no grid out, and as many grids as needed
        return None if best is None else best[1]

    def restore(self) -> None:
        labels, n_grids, means, n_notes = self.saved
        a = self.a
        a.labels = labels.copy()
        del self.notes[n_notes:]
        del a.community[n_grids:], a.flag[n_grids:], a.kind[n_grids:]
        a.mean = dict(means)

    def attempt(self, k_new: int | None, method: str) -> None:
        """One try: grids added or removed to ``k_new``, then weight moved by ``method``.

        ``k_new`` None keeps the grids there are.
        """
        remove = self.resize(method, k_new) if k_new is not None else set()
        self.spread(method, remove, aim=1.0 if k_new is not None else 0.9)

    def resize(self, method: str, k_new: int) -> set[int]:
        """Grids added or marked for removal until there are ``k_new``.

        A new grid is grown where heavy grids meet, or the heaviest is split in two; the
        lightest are marked for removal.  Returns the grids to remove.
        """
        a, g, c, tol, notes = self.a, self.g, self.c, self.tol, self.notes
        remove: set[int] = set()
        for _ in range(abs(k_new - len(self.ordinary()))):
            w = {k: x for k, x in self.weights().items() if k not in remove}
            cands = [k for k in w if k not in self.locked]
            if not cands:
                break
            if k_new > len(w) and method != "local":
                # a new grid starts as one unit where heavy grids meet and the
                # flow fills it from all of them: each gives a little
                mean_k = sum(w.values()) / k_new
                seed = _seed_unit(g, a.labels, w, cands, mean_k, tol)
                if seed is None:
                    break
                k = int(a.labels[seed])
                knew = a.new_grid(c)
                a.labels[seed] = knew
                a.labels = grow_grid(g, a.labels, knew, donors=cands, mean=mean_k,
                                     tolerance=tol)
                notes.append(f"grid {a.keep.get(k, (k,))[0]} and its neighbours grew: a "
                             "new grid between them")
            elif k_new > len(w):
                # split the heaviest in two; the lighter piece is the new grid
                k = max(cands, key=lambda x: (w[x], -x))
                nodes = np.flatnonzero(a.labels == k)
                if len(nodes) < 2:
                    break
                pieces = recursive_bisection(g, nodes, 2, tolerance=tol, rng=self.rng,
                                             mean=w[k] / 2)
                if len(pieces) != 2:
                    break
                small = min(pieces, key=lambda p: (float(g.weight[p].sum()), int(p[0])))
                a.labels[small] = a.new_grid(c)
                notes.append(f"grid {a.keep.get(k, (k,))[0]} grew to {w[k]:g}: split in two")
            else:
                # the lightest grid is shared out among its neighbours
                k = min(cands, key=lambda x: (w[x], x))
                remove.add(k)
                notes.append(f"grid {a.keep.get(k, (k,))[0]} shrank to {w[k]:g}: merged "
                             "into its neighbours")
        return remove

    def spread(self, method: str, remove: set[int], *, aim: float = 0.9) -> None:
        """Weight moved between the grids (and the grids in ``remove`` shared out).

        By a flow, local moves, or both; re-splitting as a last resort.  The flow
        aims at ``aim × tolerance``; after grids were added or removed every grid
        is judged against a new mean, and aiming at the band itself moves fewer.
        """
        a, g, c, tol, locked = self.a, self.g, self.c, self.tol, self.locked
        grids = self.ordinary()
        if method != "local":
            mean = sum(self.weights().values()) / max(1, len(grids) - len(remove))
            a.labels = flow_rebalance(g, a.labels, grids=grids, mean=mean,
                                      tolerance=tol, locked=locked, remove=remove, aim=aim)
        else:
            for k in sorted(remove):
                w = self.weights()
                nbrs = [x for x in g.adjacent_labels(a.labels, np.flatnonzero(
                    a.labels == k)) if x in w and x not in locked and x not in remove]
                if nbrs:
                    a.labels[a.labels == k] = min(nbrs, key=lambda x: (w[x], x))
        grids = self.ordinary()
        mean = sum(self.weights().values()) / len(grids)
        a.mean[c] = mean
        # what is left out: local moves near the grids still out of band (they
        # and the grids within `rings` steps); the rest of the community holds
        # still.  After a flow they stop at the band, every move costing a
        # household; alone they aim a little inside it.
        region: set[int] = set()
        for rings in (1, 2, 4, len(grids)) if method == "flow" else (1, 2, 4):
            bad = self.out_of_band(mean)
            if not bad:
                break
            region = set(bad)
            for _ in range(rings):
                for k in list(region):
                    region |= {x for x in g.adjacent_labels(
                        a.labels, np.flatnonzero(a.labels == k)) if x in set(grids)}
            still = (set(grids) - region) | locked
            a.labels = refine(g, a.labels, grids=np.array(grids), mean=mean,
                              tolerance=tol, locked=still, compact_passes=0,
                              inner=1.0 if method == "flow" else 0.8)
        free = [k for k in region if k not in locked] if self.out_of_band(mean) else []
        if method == "local" and len(free) > 1:
            # the last resort re-splits neighbouring grids: never the locked ones
            try:
                a.labels = repair(g, a.labels, grids=np.array(sorted(free)),
                                  mean=mean, tolerance=tol, rng=self.rng)
            except RuntimeError:
                # a grid in two pieces cannot be re-split; keep the moves made
                self.notes.append(f"community {c}: re-splitting grids was skipped "
                                  "(a grid is in two pieces)")
