"""Stage 6, partition and balance: the units → a grid for every unit, in the band.

In: the :class:`~gridmap.units.Units` of stage 4/5, the
:class:`~gridmap.units.UnitMaker` that can cut them anew, the communities'
targets and tolerances (:class:`~gridmap.communities.Communities`) and the
:class:`~gridmap.options.Search` options.  Out: :class:`Balanced`, the grid of
every unit (a :class:`~gridmap.partition.GridAssignment`) and the units it is
of, which may be finer than those given.

The first partition (:func:`~gridmap.partition.partition_graph`) cuts every
community into grids; then, where grids are still out of the band:

1. rounds of splitting: the blocks of the grids out of the band and of their
   neighbours are cut between their buildings (an empty block between them into
   sectors), and the units move again (:func:`remake_units`);
2. the exact check and the walks (:func:`exact_then_walks`): the regions round
   a grid out re-cut exactly, then walks of recombinations that carry a
   shortfall through full grids to one with room;
3. open land: the split blocks round a grid still out have their cells cut to
   their plots and the land between into sectors, so that a grid can pass a
   building along the land beside it; kept only if the plan is better.

With ``restarts`` the whole is made for seeds ``seed``, ``seed + 1``, ... and
the best plan kept (:func:`plan_key`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from . import band
from .partition import (
    GridAssignment,
    UnitGraph,
    find_islands,
    partition_graph,
    refine,
    repair,
)
from .partition.exact import exact_repair
from .partition.recombine import wander
from .partition.refine import connected_without

if TYPE_CHECKING:
    from .communities import Communities
    from .options import Search
    from .units import UnitMaker, Units

__all__ = [
    "Balanced",
    "balance",
    "exact_then_walks",
    "grids_out_of_band",
    "oversize_holding_more",
    "plan_key",
    "remake_units",
]


@dataclass(frozen=True)
class Balanced:
    """Stage 6's output: the grid of every unit, the units, and the notes."""

    assignment: GridAssignment
    units: Units
    notes: list[str]
    seed: int | None


@dataclass
class _Plan:
    """One plan being balanced: its grids and the units they are made of."""

    assignment: GridAssignment
    units: Units
    notes: list[str]


def balance(units: Units, maker: UnitMaker, communities: Communities, search: Search,
            *, carve_kind: np.ndarray, cache: dict[Any, Any],
            progress: bool = False) -> Balanced:
    """Stage 6: the first partition, then the rounds that bring grids into the band.

    The plans of seeds ``seed``, ``seed + 1``, ... (``search.restarts`` of them):
    the one with the fewest grids out of the band, then the smallest largest
    deviation, is kept; the first with none out stops the search.
    """
    tolerance = communities.tolerance
    best: tuple[tuple[int, float], _Plan, int | None] | None = None
    k = 0
    for k in range(search.restarts):
        seed_k = None if search.seed is None else int(search.seed) + k
        plan = _one_plan(units, maker, communities, search, seed_k, carve_kind=carve_kind,
                         cache=cache, progress=progress)
        key = plan_key(plan.assignment, plan.units.graph, tolerance)
        if best is None or key < best[0]:
            best = (key, plan, seed_k)
        if key[0] == 0:
            break
    assert best is not None
    (n_bad, worst), plan, seed_k = best
    notes = list(plan.notes)
    if search.restarts > 1:
        notes.append(f"{k + 1} plan(s) made (restarts={search.restarts}); kept the one of "
                     f"seed {seed_k}: {n_bad} grid(s) out of the band, the largest "
                     f"deviation {worst:.1%}.")
    return Balanced(plan.assignment, plan.units, notes, seed_k)


def _one_plan(units: Units, maker: UnitMaker, communities: Communities, search: Search,
              seed: int | None, *, carve_kind: np.ndarray, cache: dict[Any, Any],
              progress: bool) -> _Plan:
    """One plan: the partition, the rounds of splitting, the exact pass, open land."""
    # a plan's own cache: the sectors of an empty block depend on the units
    # around it, which differ from plan to plan
    cache = dict(cache)
    special = maker.special
    assignment = partition_graph(
        units.graph, units.community, target=communities.target,
        tolerance=communities.tolerance, seed=seed, fixed=special[units.block],
        fixed_kind=carve_kind, islands=search.islands, community_names=communities.ids,
        progress=progress, scheduler=search.scheduler)
    plan = _Plan(assignment, units, [])
    _split_rounds(plan, maker, communities.tolerance, seed, cache)
    exact_then_walks(plan, communities.tolerance, seed, exact=search.exact)
    _open_land_round(plan, maker, communities.tolerance, seed, cache, exact=search.exact)
    return plan


def _split_rounds(plan: _Plan, maker: UnitMaker, tolerance: np.ndarray,
                  seed: int | None, cache: dict[Any, Any], rounds: int = 3) -> None:
    """Split blocks where balance is out of reach with whole blocks, and move again.

    The blocks split (between buildings) are those of the offending grids and their
    neighbours.
    """
    n_buildings, special = maker.n_buildings, maker.special
    for _ in range(rounds):
        bad = grids_out_of_band(plan.assignment, plan.units.graph, tolerance)
        if not bad:
            return
        inner, beside = blocks_near(plan, bad)
        split = plan.units.split
        more = inner & ~split & (n_buildings > 1) & (special < 0)
        # a block with no building next to a grid out of the band (a square, a
        # park between ring roads) is split between the units around it: whole,
        # it goes to one grid, and a building cut off behind it can join no other
        more |= beside & ~split & (n_buildings == 0) & (special < 0)
        if not more.any():
            return
        remake_units(plan, maker, split | more, plan.units.opened, tolerance, seed, cache,
                     newly_split=more)


def _open_land_round(plan: _Plan, maker: UnitMaker, tolerance: np.ndarray,
                     seed: int | None, cache: dict[Any, Any], *, exact: bool) -> None:
    """Open the split blocks round a grid still out, if that makes the plan better.

    A grid still out may be walled in: its buildings' cells reach to the middle of
    the land round them, and a heavy building's cell bars the way to the light ones
    behind it.  The split blocks round it are opened (each cell cut to its
    buildings' plot, the land between cut into sectors) so that a grid can pass a
    building along the land beside it.  An oversize grid that also holds a light
    building (one cut off between heavy ones) is out too: the exception is for one
    unit alone.  Kept only if the plan is better.
    """
    def key_now() -> tuple[int, float]:
        n_out, worst = plan_key(plan.assignment, plan.units.graph, tolerance)
        return n_out + len(oversize_holding_more(plan.assignment,
                                                 plan.units.building_unit)), worst

    bad = grids_out_of_band(plan.assignment, plan.units.graph, tolerance) + \
        oversize_holding_more(plan.assignment, plan.units.building_unit)
    if not bad:
        return
    inner, _ = blocks_near(plan, bad)
    split, opened = plan.units.split, plan.units.opened
    more_open = inner & split & (maker.n_buildings > 1) & ~opened
    if not more_open.any():
        return
    before = (copy.deepcopy(plan.assignment), plan.units, len(plan.notes), key_now())
    remake_units(plan, maker, split, opened | more_open, tolerance, seed, cache,
                 newly_split=np.zeros_like(split), whole_plans=False)
    if release_from_oversize(plan.assignment, plan.units.graph, plan.units.building_unit):
        means = community_mean(plan.assignment, plan.units.graph)
        for c, ordinary, cn, sub in community_grids(plan.assignment, plan.units):
            plan.assignment.labels[cn] = refine(
                sub, plan.assignment.labels[cn], grids=ordinary, mean=means[c],
                tolerance=float(tolerance[c]))
    # the open land multiplies the units of a region, and the exact check's
    # programmes grow with them (seconds a node): the walks go first, and the
    # check gets a tenth of its work
    exact_then_walks(plan, tolerance, seed, exact=exact, node_budget=30, walks_first=True)
    after = key_now()
    if after < before[-1]:
        plan.notes.append(
            f"{int(more_open.sum())} split block(s) round the {len(bad)} grid(s) still "
            "out of the band opened (the land farther than 10 m from every building "
            f"cut into sectors a grid can pass along): {after[0]} grid(s) out after.")
    else:  # no better: the units stay as they were
        plan.assignment, plan.units = before[0], before[1]
        del plan.notes[before[2]:]


def remake_units(plan: _Plan, maker: UnitMaker, split: np.ndarray, opened: np.ndarray,
                 tolerance: np.ndarray, seed: int | None, cache: dict[Any, Any], *,
                 newly_split: np.ndarray, whole_plans: bool = True) -> None:
    """The units made again, every unit in the grid it was in, then the moves.

    Blocks in ``split`` are cut, those in ``opened`` opened; with ``whole_plans``,
    the moves include :func:`~gridmap.partition.repair`'s recombinations and new
    plans too.
    """
    old, assignment = plan.units, plan.assignment
    labels = assignment.labels
    old_block = old.block
    block_grid = np.full(len(maker.blocks.geometry), -1, dtype=np.int64)
    # unsplit blocks are whole units: their grid carries over to their cells
    whole = ~old.table["split"].to_numpy()
    block_grid[old_block[whole]] = labels[whole]
    old_building_grid = labels[old.building_unit]
    units = maker.make(split, opened, cache=cache)
    new_labels = block_grid[units.block]
    # cells of blocks split before keep the grid of their buildings
    cell_has = np.full(len(units.table), -1, dtype=np.int64)
    cell_has[units.building_unit] = old_building_grid
    new_labels = np.where(cell_has >= 0, cell_has, new_labels)
    # the sectors of an empty block split before keep their grids (they are
    # made once: the cache keeps them)
    new_block = units.block
    kept = split & ~newly_split & (maker.n_buildings == 0)
    was = np.flatnonzero(kept[old_block])
    now = np.flatnonzero(kept[new_block])
    was = was[np.argsort(old_block[was], kind="stable")]
    now = now[np.argsort(new_block[now], kind="stable")]
    if np.array_equal(old_block[was], new_block[now]):  # the same sectors, in order
        new_labels[now] = labels[was]
    # a unit holding no building (open land, rarely a cell) joins the grid it
    # shares most edge with
    fill_from_neighbours(units.adjacency, new_labels,
                         np.flatnonzero([bool(f) for f in assignment.flag]))
    assignment.labels = reconnect(units.graph, new_labels, assignment)
    plan.units = units
    means = community_mean(assignment, units.graph)
    for c, ordinary, cn, sub in community_grids(assignment, units):
        mean = means[c]
        labels_c = refine(sub, assignment.labels[cn], grids=ordinary, mean=mean,
                          tolerance=float(tolerance[c]))
        if whole_plans:
            labels_c = repair(sub, labels_c, grids=ordinary, mean=mean,
                              tolerance=float(tolerance[c]), rng=np.random.default_rng(seed))
        assignment.labels[cn] = labels_c


def blocks_near(plan: _Plan, grids: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """The blocks of the units of ``grids`` and of the grids touching them.

    And the blocks of the units along their edges.
    """
    labels, units = plan.assignment.labels, plan.units
    g, block = units.graph, units.block
    touch = np.isin(labels[g.i], grids) | np.isin(labels[g.j], grids)
    beside = np.concatenate([g.i[touch], g.j[touch]])
    near = np.union1d(grids, labels[beside])
    n_blocks = len(units.split)
    inner = np.zeros(n_blocks, dtype=bool)
    inner[block[np.isin(labels, near)]] = True
    edge = np.zeros(n_blocks, dtype=bool)
    edge[block[beside]] = True
    return inner, edge


def exact_then_walks(plan: _Plan, tolerance: np.ndarray, seed: int | None, *,
                     exact: bool, node_budget: int = 300, walks_first: bool = False) -> None:
    """The exact check, then walks and the exact check again on what they change.

    With ``walks_first``, walks before it all (done if they leave no grid out).
    """
    a, units = plan.assignment, plan.units
    if walks_first and _walks(a, units, tolerance, np.random.default_rng(seed),
                              plan.notes) and not grids_out_of_band(a, units.graph,
                                                                    tolerance):
        return
    if exact:
        # what the moves could not balance, an exact re-cut of the grids around it
        # may: kept only where every grid of the region ends in the band
        _exact(a, units, tolerance, plan.notes, node_budget=node_budget)
    # what is still out may be short (or over) only where it is: walks of
    # recombinations carry the shortfall to grids with room (never to a plan
    # with more grids out), and the exact check looks again at what they leave
    if _walks(a, units, tolerance, np.random.default_rng(seed), plan.notes) and exact:
        _exact(a, units, tolerance, plan.notes, node_budget=node_budget)


def community_grids(assignment: GridAssignment, units: Units
                    ) -> Iterator[tuple[int, np.ndarray, np.ndarray, UnitGraph]]:
    """Every community with two or more ordinary grids.

    ``(c, ordinary grids, its units, its own graph)``; on its own graph a community's
    grids never leave it.
    """
    community_of_unit = units.community
    grid_community = np.asarray(assignment.community)
    flagged = np.array([bool(f) for f in assignment.flag], dtype=bool)
    for c in assignment.mean:
        ordinary = np.flatnonzero((grid_community == c) & ~flagged)
        if len(ordinary) > 1:
            members = np.flatnonzero(community_of_unit == c)
            yield c, ordinary, members, units.graph.subgraph(members)


def _walks(assignment: GridAssignment, units: Units, tolerance: np.ndarray,
           rng: np.random.Generator, notes: list[str]) -> bool:
    """Walks of recombinations in every community with ordinary grids out of the band.

    The walks are :func:`~gridmap.partition.recombine.wander`'s; labels change in
    place.  Returns whether any changed.
    """
    g = units.graph
    bad = set(grids_out_of_band(assignment, g, tolerance))
    if not bad:
        return False
    means = community_mean(assignment, g)
    changed = False
    for c, ordinary, members, sub in community_grids(assignment, units):
        if not bad & set(ordinary.tolist()):
            continue
        # the mean the plan is judged by: that of the ordinary grids as they are
        mean = means[c]
        before = assignment.labels[members]
        labels = wander(sub, before, grids=ordinary, mean=mean,
                        tolerance=float(tolerance[c]), rng=rng)
        if (labels != before).any():
            changed = True
            # the walk's sideways steps cut pairs of grids anew: straighten their
            # edges onto the streets again, without leaving the band
            labels = refine(sub, labels, grids=ordinary, mean=mean,
                            tolerance=float(tolerance[c]), max_moves=0)
        assignment.labels[members] = labels
    now = len(grids_out_of_band(assignment, g, tolerance))
    if now < len(bad):
        notes.append(f"{len(bad) - now} grid(s) out of the band brought into it by walks "
                     "of recombinations (a neighbouring pair re-split at a time, the "
                     "shortfall or excess passed on to grids with room).")
    return changed


def _exact(assignment: GridAssignment, units: Units, tolerance: np.ndarray,
           notes: list[str], *, node_budget: int = 300) -> None:
    """Exact re-cuts of every community's ordinary grids out of the band.

    The re-cuts are :func:`~gridmap.partition.exact.exact_repair`'s; the labels change
    in place.
    """
    # one budget of solver work for the whole pass (``node_budget``: programmes,
    # HiGHS's nodes and 10,000 search steps each count one); not seconds, for
    # the plan must not depend on the machine
    stats = {"nodes": 0}
    fixed = 0
    means = community_mean(assignment, units.graph)
    for c, ordinary, members, sub in community_grids(assignment, units):
        # the mean the plan is judged by: that of the ordinary grids as they are
        mean = means[c]
        labels, report = exact_repair(sub, assignment.labels[members], grids=ordinary,
                                      mean=mean, tolerance=float(tolerance[c]),
                                      node_budget=node_budget, stats=stats)
        assignment.labels[members] = labels
        fixed += sum(r["verdict"] == "recut" for r in report)
        assignment.checks.update({int(r["grid"]): r for r in report})
    if fixed:
        notes.append(f"{fixed} region(s) of grids out of the band re-cut exactly "
                     "(every grid of each within the band).")


def fill_from_neighbours(adjacency: Any, labels: np.ndarray, avoid: np.ndarray) -> None:
    """Every unit without a grid (``-1``) takes the grid of a neighbour, in place.

    The neighbour is the one it shares most edge with; units reached only through
    other such units take theirs once those have one.  A grid in ``avoid`` (a
    flagged grid: one building heavier than a grid) is taken only where no other
    can be.
    """
    i, j, length = adjacency.i, adjacency.j, adjacency.length
    while (labels < 0).any():
        li, lj = labels[i], labels[j]
        # (unit without a grid, labelled neighbour's grid, shared length)
        a = np.concatenate([i[(li < 0) & (lj >= 0)], j[(lj < 0) & (li >= 0)]])
        to = np.concatenate([lj[(li < 0) & (lj >= 0)], li[(lj < 0) & (li >= 0)]])
        ln = np.concatenate([length[(li < 0) & (lj >= 0)], length[(lj < 0) & (li >= 0)]])
        if not len(a):
            labels[labels < 0] = 0  # touching nothing with a grid: none should be
            return
        bad = np.isin(to, avoid)
        if not bad.all():
            a, to, ln = a[~bad], to[~bad], ln[~bad]
        order = np.lexsort((to, -ln, a))
        first = order[np.r_[True, a[order][1:] != a[order][:-1]]]
        labels[a[first]] = to[first]


def reconnect(g: UnitGraph, labels: np.ndarray, assignment: GridAssignment) -> np.ndarray:
    """Every grid in one piece again after its units were remade.

    Two blocks that touched whole can touch no longer once one of them is cut
    into cells or sectors (their shared edge now split where the other's is
    not), and a grid through them falls in two.  Each piece of a grid but its
    heaviest (then largest) joins the community grid of its community it shares
    most edges with, an ordinary one first, before the moves rebalance.
    """
    labels = labels.copy()
    same = labels[g.i] == labels[g.j]
    comp = g.components(np.arange(g.n), same)
    pairs = np.unique(np.column_stack([labels, comp]), axis=0)
    gids, n_pieces = np.unique(pairs[:, 0], return_counts=True)
    for gid in gids[n_pieces > 1].tolist():
        if assignment.kind[gid] != "community":
            continue
        # its pieces but the main one (heaviest, then largest)
        for part in find_islands(g, np.flatnonzero(labels == gid)):
            inset = np.zeros(g.n, dtype=bool)
            inset[part] = True
            e = inset[g.i] ^ inset[g.j]
            other = labels[np.where(inset[g.i[e]], g.j[e], g.i[e])]
            ok = [int(x) for x in other if x != gid and assignment.kind[x] == "community"
                  and assignment.community[x] == assignment.community[gid]]
            if not ok:
                continue
            counts = np.bincount(ok)
            to = min(set(ok), key=lambda x: (assignment.flag[x] != "", -counts[x], x))
            labels[part] = to
    return labels


def grid_weights(assignment: GridAssignment, g: UnitGraph) -> np.ndarray:
    """The weight of every grid of ``assignment``."""
    return np.bincount(assignment.labels, weights=g.weight, minlength=assignment.n_grids)


def community_mean(assignment: GridAssignment, g: UnitGraph) -> dict[int, float]:
    """The mean weight of every community's ordinary grids as they are now.

    See :func:`gridmap.band.community_means`.
    """
    w = grid_weights(assignment, g)
    comm = np.asarray(assignment.community, dtype=np.int64)
    ordinary = np.array([not f for f in assignment.flag], dtype=bool)
    n = int(comm.max(initial=-1)) + 1
    means = band.community_means(w, comm, ordinary, n)
    return {c: float(means[c]) for c in assignment.mean}


def _deviations(assignment: GridAssignment, g: UnitGraph,
                tolerance: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ordinary grids, their deviation and their community's tolerance.

    The deviation is from their community's mean.
    """
    w = grid_weights(assignment, g)
    means = community_mean(assignment, g)
    gids = np.array([gid for gid in range(assignment.n_grids) if not assignment.flag[gid]
                     and assignment.mean.get(assignment.community[gid])], dtype=np.int64)
    comm = [assignment.community[gid] for gid in gids.tolist()]
    mean = np.array([means[c] for c in comm], dtype=float)
    tol = np.array([float(tolerance[c]) if np.ndim(tolerance) else float(tolerance)
                    for c in comm], dtype=float)
    return gids, np.abs(band.deviation(w[gids], mean)) if len(gids) else np.zeros(0), tol


def plan_key(assignment: GridAssignment, g: UnitGraph, tolerance: Any) -> tuple[int, float]:
    """How good a plan is (smaller is better).

    The ordinary grids out of the band, then the largest deviation of an ordinary
    grid from its community's mean.
    """
    _, dev, tol = _deviations(assignment, g, tolerance)
    return int(band.out_of_band(dev, tol).sum()), float(dev.max(initial=0.0))


def grids_out_of_band(assignment: GridAssignment, g: UnitGraph, tolerance: Any) -> list[int]:
    """The ordinary grids out of their community's band."""
    gids, dev, tol = _deviations(assignment, g, tolerance)
    return gids[band.out_of_band(dev, tol)].tolist()


def oversize_holding_more(assignment: GridAssignment, building_unit: np.ndarray) -> list[int]:
    """Oversize grids holding buildings of more than one unit.

    The balance rule's exception is for one indivisible unit alone, so these count as
    out.
    """
    holds = np.zeros(len(assignment.labels), dtype=bool)
    holds[building_unit[building_unit >= 0]] = True
    n = np.bincount(assignment.labels[holds], minlength=assignment.n_grids)
    return [gid for gid in range(assignment.n_grids)
            if assignment.flag[gid] == "oversize" and n[gid] > 1]


def release_from_oversize(assignment: GridAssignment, g: UnitGraph,
                          building_unit: np.ndarray) -> int:
    """Units an oversize grid holds beside its heaviest go to a light grid, in place.

    Such a unit (a light building it was left with, nothing else touching it) goes
    to the lightest ordinary grid of the community it touches, where the oversize
    grid stays in one piece without it.  Returns how many moved.
    """
    labels = assignment.labels
    w = grid_weights(assignment, g)
    moved = 0
    for gid in oversize_holding_more(assignment, building_unit):
        c = assignment.community[gid]
        members = np.flatnonzero(labels == gid)
        heaviest = int(members[np.argmax(g.weight[members])])
        changed = True
        while changed:
            changed = False
            for u in np.flatnonzero(labels == gid).tolist():
                if u == heaviest:
                    continue
                s, e = g.indptr[u], g.indptr[u + 1]
                nb = g.nbr[s:e][~g.barrier[g.eid[s:e]]]
                to = {int(x) for x in labels[nb]
                      if not assignment.flag[x] and assignment.community[x] == c}
                if not to or not connected_without(g, labels, u):
                    continue
                dst = min(to, key=lambda x: (w[x], x))
                labels[u] = dst
                w[dst] += g.weight[u]
                w[gid] -= g.weight[u]
                moved += 1
                changed = True
    return moved

