"""Stage 6, partition and balance: the units → a grid for every unit, in the band.

In: the :class:`~gridmap.units.Units` of stage 4/5, the
:class:`~gridmap.units.UnitMaker` that can cut them anew, the communities'
targets and tolerances (:class:`~gridmap.communities.Communities`) and the
:class:`~gridmap.options.Search` options.  Out: :class:`Balanced`, the grid of
every unit (a :class:`~gridmap.partition.GridAssignment`), the units it is of
(which may be finer than those given), and what the search did.

The first partition (:func:`~gridmap.partition.partition_graph`) cuts every
community into grids.  Then one loop (:func:`improve`, the shape of GerryChain's
``MarkovChain``, but optimising) runs *moves* with one signature, cheapest first
(:data:`MOVES`): local moves, recombinations, the exact re-cut, walks of
recombinations, splitting blocks, seeded plans, opening land.  A move's plan is
kept where it is no worse by the one objective (:mod:`gridmap.objective`); a
better plan sends the loop back to the cheapest move.  It stops when no grid is
out of the band, no move helps, or the budget of work (:mod:`gridmap.effort`) is
spent.  With the thorough effort, where no move helps and the work left could
pay for another plan as long as the first, the only move left is a new first
partition: the plans of the next seeds are made in it, each held to the work the
first took, while it lasts, and the best is kept.  With ``restarts`` the plans
of seeds ``seed``, ``seed + 1``, ... are made, each with the effort's budget (the
time limit is shared), and the best is kept.
"""

from __future__ import annotations

import copy
import functools
import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from . import band, effort, objective
from .partition import (
    GridAssignment,
    UnitGraph,
    find_islands,
    most_touched_road,
    partition_graph,
    recombine,
    refine,
    repair,
)
from .partition.exact import RegionLimits, exact_repair
from .partition.recombine import wander
from .partition.refine import connected_without

if TYPE_CHECKING:
    from .communities import Communities
    from .options import Search
    from .units import UnitMaker, Units

__all__ = [
    "MOVES",
    "REFUSED",
    "REPARTITION_MOVES",
    "Balanced",
    "Held",
    "balance",
    "exact_recut",
    "grids_out_of_band",
    "improve",
    "improve_held",
    "local_moves",
    "no_worse",
    "open_land",
    "oversize_holding_more",
    "recombinations",
    "remake_units",
    "seeded_plans",
    "split_blocks",
    "walks",
    "within_share",
]


@dataclass(frozen=True)
class Balanced:
    """Stage 6's output: the grid of every unit, the units, the notes, the search.

    ``report`` says what the search did: the effort, the work used, why it
    stopped, and what each move tried and gained.
    """

    assignment: GridAssignment
    units: Units
    notes: list[str]
    seed: int | None
    report: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Plan:
    """One plan being balanced: its grids and the units they are made of."""

    assignment: GridAssignment
    units: Units
    notes: list[str]

    def copy(self) -> _Plan:
        """A copy whose labels, checks and notes can change without touching this."""
        a = copy.copy(self.assignment)
        a.labels = self.assignment.labels.copy()
        a.checks = dict(self.assignment.checks)
        return _Plan(a, self.units, list(self.notes))


@dataclass
class _Context:
    """What every move needs besides the plan.

    How to cut units anew, the tolerance of every community, the cells cut so far
    and the budget of work.
    """

    maker: UnitMaker
    tolerance: np.ndarray
    exact: bool
    cache: dict[Any, Any]
    work: effort.Work
    #: a re-partition's own limits: the grids no move may change, the grid every
    #: unit was in, and the weight each community may move (None: a new plan)
    held: Held | None = None

    def score(self, plan: _Plan) -> objective.Score:
        """The objective (:mod:`gridmap.objective`) of a plan.

        In a re-partition with households moved as its third term; a plan moving
        more than a community's budget scores :data:`REFUSED`.
        """
        held = self.held
        if held is not None:
            g, labels = plan.units.graph, plan.assignment.labels
            moved = labels != held.reference
            per = np.bincount(plan.units.community[moved], weights=g.weight[moved],
                              minlength=len(held.budget))
            if (per > held.budget + 1e-9).any():
                return REFUSED
        return objective.score(plan.assignment, plan.units.graph, self.tolerance,
                               plan.units.building_unit,
                               reference=None if held is None else held.reference)

    @property
    def frozen(self) -> np.ndarray | None:
        """The grids no move may change (a re-partition's; None: any may)."""
        return None if self.held is None else self.held.frozen

    def bad(self, plan: _Plan) -> list[int]:
        """The grids out of the band, oversize grids holding more included.

        Not those a re-partition holds.
        """
        bad = (grids_out_of_band(plan.assignment, plan.units.graph, self.tolerance)
               + oversize_holding_more(plan.assignment, plan.units.building_unit))
        if self.held is not None:
            bad = [x for x in bad if not self.held.frozen[x]]
        return bad


@dataclass(frozen=True)
class Held:
    """What a re-partition's balancing must keep.

    ``frozen`` marks the grids no move may change (locked, held as they were, or
    of a community the re-partition leaves alone); ``reference`` is the grid every
    unit was in (households moved are counted against it); ``budget`` the weight
    each community may move in all.
    """

    frozen: np.ndarray
    reference: np.ndarray
    budget: np.ndarray


#: the score of a plan a re-partition may not take (it moves too many households)
REFUSED = objective.Score(2**62, float("inf"), float("inf"), float("inf"), float("inf"))


#: A move: the plan, the context and a random generator in; a new plan out (None:
#: nothing to try).  The loop keeps it only where it is no worse by the objective.
Move = Callable[[_Plan, _Context, np.random.Generator], "_Plan | None"]


def balance(units: Units, maker: UnitMaker, communities: Communities, search: Search,
            *, carve_kind: np.ndarray, cache: dict[Any, Any],
            progress: bool = False) -> Balanced:
    """Stage 6: the first partition, then moves until no grid is out or the work is spent.

    After the first partition of a seed, :func:`improve` runs the moves, cheapest
    first (:data:`MOVES`), keeping what the objective (:mod:`gridmap.objective`)
    says is no worse, until no grid is out of the band, no move helps, or the
    budget of work (``search.effort``, and ``search.time_limit``) is spent.  With
    the efforts of :data:`gridmap.effort.RENEWING` (``"thorough"``), where no move
    helps and the work left is at least what that plan took (its first partition
    too), the plans of the next seeds (``seed + restarts``, ``seed + 2 ×
    restarts``, ...) are made with it, first partitions counted, each plan's
    moves held to the work the first plan's took, while it lasts.  With
    ``search.restarts``, the plans of seeds ``seed``, ``seed + 1``, ... are made,
    each with the effort's budget of work (so that the plan of a seed is the same
    alone or among restarts); the time limit is shared; the best plan is kept.
    """
    started = time.perf_counter()
    works: list[effort.Work] = []
    first_work: list[float] = []
    stats = _new_stats(MOVES)
    best: tuple[objective.Score, _Plan, int | None] | None = None
    k, stopped, made, budget = 0, "no grid out of the band", 0, 0.0
    for k in range(search.restarts):
        pool, cap, first = None, float("inf"), 0.0
        for j in itertools.count():
            # plan j of restart k: seeds seed + k, then seed + k + restarts, ...
            seed_k = None if search.seed is None else \
                int(search.seed) + k + j * search.restarts
            # the budget is set once the first partition says how many grids there are
            work = effort.Work(float("inf"), search.time_limit, start=started)
            works.append(work)
            with effort.active(work):
                ctx = _Context(maker, communities.tolerance, search.exact,
                               # a plan's own cells: the sectors of an empty block depend
                               # on the units around it, which differ from plan to plan
                               dict(cache), work)
                plan = _first_partition(units, maker, communities, search, seed_k,
                                        carve_kind=carve_kind, progress=progress)
                # the budget is the moves': the first partition's work is not theirs,
                # but for the plans made with the work they left
                first_work.append(work.used)
                if pool is None:
                    pool = float(effort.units_of(search.effort, plan.assignment.n_grids))
                    budget += pool
                    first = work.used
                else:
                    pool -= work.used
                work.used = 0.0
                work.limit = max(min(pool, cap), 0.0)
                plan, stopped = _improve_with_bar(plan, ctx, seed_k, stats, progress)
            made += 1
            pool -= work.used
            score = ctx.score(plan)
            if best is None or score < best[0]:
                best = (score, plan, seed_k)
            # where the effort makes new plans and the first stopped short of its
            # budget (no move helps) with room for another as long, first partition
            # and all: the only move left is a new first partition, the plan of the
            # next seed, each held to the work the first plan's moves took
            if j == 0:
                cap = work.used
            if (search.effort not in effort.RENEWING or score.out == 0 or work.timed_out
                    or cap <= 0 or pool < cap + first):
                break
        assert best is not None
        if best[0].out == 0 or work.timed_out:
            break
    assert best is not None
    score, plan, seed_k = best
    notes = list(plan.notes)
    report = _report(search, works, stats, score, stopped, notes, budget)
    report["plans_made"] = made
    report["first_partition_work"] = round(sum(first_work), 1)
    renewed = made - (k + 1)  # every restart makes one plan, the rest are renewals
    if search.restarts > 1 or renewed:
        why = []
        if search.restarts > 1:
            why.append(f"restarts={search.restarts}")
        if renewed:
            why.append(f"{renewed} made with the work left where no move helped")
        notes.append(f"{made} plan(s) made ({'; '.join(why)}); kept the one of "
                     f"seed {seed_k}: {score.out} grid(s) out of the band, the largest "
                     f"deviation {score.worst:.1%}.")
    return Balanced(plan.assignment, plan.units, notes, seed_k, report)


def _new_stats(moves: tuple[tuple[str, Move, bool], ...]) -> dict[str, dict[str, float]]:
    return {name: {"tried": 0, "kept": 0, "improved": 0, "grids_in": 0, "work": 0.0,
                   "seconds": 0.0} for name, _, _ in moves}


def _report(search: Search, works: list[effort.Work], stats: dict[str, dict[str, float]],
            score: objective.Score, stopped: str, notes: list[str],
            budget: float) -> dict[str, Any]:
    """What the search did, for ``metrics["search"]``; a line of it in ``notes``.

    ``budget``: the work the effort gave (a renewed plan's limit is part of it).
    """
    used = sum(w.used for w in works)
    gains = [f"{int(st['grids_in'])} by {name}" for name, st in stats.items()
             if st["grids_in"] > 0]
    if any(st["tried"] for st in stats.values()):
        notes.append(f"balancing ({search.effort} effort, {used:,.0f} of "
                     f"{budget:,.0f} units of work): "
                     + (f"grids brought into the band: {', '.join(gains)}; "
                        if gains else "")
                     + f"{score.out} grid(s) out of the band; stopped: {stopped}.")
    return {
        "effort": search.effort, "work_budget": budget,
        "work_used": round(used, 1), "time_limit": search.time_limit,
        "stopped": stopped, "plans_made": 1,
        "objective": score.as_dict(),
        "moves": {name: {key: round(v, 1) if isinstance(v, float) else v
                         for key, v in st.items()} for name, st in stats.items()},
    }


def improve_held(assignment: GridAssignment, units: Units, maker: UnitMaker,
                 tolerance: np.ndarray, search: Search, held: Held, *,
                 progress: bool = False
                 ) -> tuple[GridAssignment, list[str], dict[str, Any]]:
    """A re-partition's balancing: the loop of moves, within what it must keep.

    After the re-partition's own flow and re-splits
    (:func:`gridmap.previous.rebalance`), the moves that keep the units
    (:data:`REPARTITION_MOVES`) run on the grids still out that are not held,
    each kept only where the plan is better by the objective with households
    moved as its third term (:meth:`_Context.score`) and no community moves more
    than its budget.  Returns the grids, the notes and the search's report.
    """
    work = effort.Work(float("inf"), search.time_limit)
    work.limit = effort.units_of(search.effort, assignment.n_grids)
    ctx = _Context(maker, tolerance, False, {}, work, held)
    stats = _new_stats(REPARTITION_MOVES)
    plan = _Plan(assignment, units, [])
    with effort.active(work):
        plan, stopped = _improve_with_bar(plan, ctx, search.seed, stats, progress,
                                          moves=REPARTITION_MOVES)
    notes: list[str] = []
    report = _report(search, [work], stats, ctx.score(plan), stopped, notes, work.limit)
    return plan.assignment, notes, report


def _first_partition(units: Units, maker: UnitMaker, communities: Communities,
                     search: Search, seed: int | None, *, carve_kind: np.ndarray,
                     progress: bool) -> _Plan:
    """The first partition of a seed, its repairs left to the moves.

    (:func:`~gridmap.partition.partition_graph` with ``repair_cuts=False``.)
    """
    assignment = partition_graph(
        units.graph, units.community, target=communities.target,
        tolerance=communities.tolerance, seed=seed, fixed=maker.special[units.block],
        fixed_kind=carve_kind, islands=search.islands, community_names=communities.ids,
        progress=progress, scheduler=search.scheduler, repair_cuts=False)
    # a light unit an oversize grid was left with that only road grids touch
    # besides it (cut off by the corridors) goes to the road grid, as a part
    # cut off by corridors does
    release_from_oversize(assignment, units.graph, units.building_unit, cut_off_only=True)
    return _Plan(assignment, units, [])


def _improve_with_bar(plan: _Plan, ctx: _Context, seed: int | None,
                      stats: dict[str, dict[str, float]], progress: bool, *,
                      moves: tuple[tuple[str, Move, bool], ...] | None = None
                      ) -> tuple[_Plan, str]:
    """Run :func:`improve` to its end, with a bar of the grids out of the band."""
    rng = np.random.default_rng(seed)
    start = ctx.score(plan)
    bar = None
    if progress and start.out:
        from tqdm.auto import tqdm

        bar = tqdm(total=start.out, desc="balance: grids out of the band", leave=False,
                   unit="grid")
    stopped = "no grid out of the band"
    try:
        for state, score, why in improve(plan, ctx, rng, stats, moves=moves):
            plan, stopped = state, why
            if bar is not None:
                bar.n = start.out - score.out
                bar.set_postfix_str(f"{score.out} out")
                bar.refresh()
    finally:
        if bar is not None:
            bar.close()
    return plan, stopped


def improve(plan: _Plan, ctx: _Context, rng: np.random.Generator,
            stats: dict[str, dict[str, float]], *,
            moves: tuple[tuple[str, Move, bool], ...] | None = None
            ) -> Iterator[tuple[_Plan, objective.Score, str]]:
    """The loop: moves, cheapest first, each kept where the plan is no worse.

    A move that makes the plan better (fewer grids out, or less out in sum), or
    that cuts the units anew, sends the loop back to the cheapest move; one that
    does not passes on to the next.  Yields ``(plan, score, why)`` after every
    move kept, and last why it stopped: no grid out, the budget spent, the time
    limit, or no move helps.  ``stats`` counts, per move, the tries, the plans
    kept, those better, the grids brought in and the work spent.
    """
    moves = MOVES if moves is None else moves
    current = ctx.score(plan)
    i = 0
    while True:
        if current.out == 0:
            yield plan, current, "no grid out of the band"
            return
        if ctx.work.spent:
            why = "time limit" if ctx.work.timed_out else "effort spent"
            yield plan, current, why
            return
        if i == len(moves):
            yield plan, current, "no move helps"
            return
        name, move, must_improve = moves[i]
        st = stats[name]
        used, t0 = ctx.work.used, time.perf_counter()
        new = move(plan, ctx, rng)
        st["seconds"] += time.perf_counter() - t0
        st["tried"] += 1
        i += 1
        if new is not None:
            score = ctx.score(new)
            better = (score.out, score.excess) < (current.out, current.excess)
            if score < current or (score == current and not must_improve):
                st["kept"] += 1
                st["improved"] += int(better)
                st["grids_in"] += current.out - score.out
                recut = new.units is not plan.units
                plan, current = new, score
                if better or recut:
                    i = 0
                yield plan, current, "moving"
        st["work"] += ctx.work.used - used


def _communities_out(plan: _Plan, ctx: _Context) -> set[int]:
    """The communities holding a grid out of the band."""
    return {plan.assignment.community[x] for x in ctx.bad(plan)}


def _per_region(plan: _Plan, ctx: _Context, rings: int,
                cut: Callable[..., np.ndarray]) -> _Plan | None:
    """A move made region by region round the grids out (:func:`regions_out`).

    ``cut(sub, labels, grids=, mean=, tolerance=)`` gives the region's new labels.
    """
    bad = ctx.bad(plan)
    if not bad:
        return None
    new = plan.copy()
    labels = new.assignment.labels
    means = community_mean(new.assignment, new.units.graph)
    for c, grids, members, sub in regions_out(new.assignment, new.units, bad, rings,
                                              ctx.frozen):
        labels[members] = cut(sub, labels[members], grids=grids, mean=means[c],
                              tolerance=float(ctx.tolerance[c]))
    return new


def local_moves(plan: _Plan, ctx: _Context, rng: np.random.Generator) -> _Plan | None:
    """Units moved one by one across grid boundaries, round the grids out of the band.

    Tabu search, ejection chains, then shorter boundaries
    (:func:`~gridmap.partition.refine`), on the region of the grids out and the
    grids :data:`LOCAL_RINGS` steps round them.
    """
    return _per_region(plan, ctx, LOCAL_RINGS, refine)


def recombinations(plan: _Plan, ctx: _Context, rng: np.random.Generator) -> _Plan | None:
    """A grid out of the band merged with one or two neighbours and split again.

    The group is split along spanning trees (:func:`~gridmap.partition.recombine`).
    """
    return _per_region(plan, ctx, 1, functools.partial(recombine, rng=rng))


#: how many steps of neighbouring grids round the grids out a move may change
LOCAL_RINGS = 2

#: the share of the budget of work after which no block is split any more: each
#: split re-cuts a large region (on the Bund a fifth of the budget a time), and left
#: alone it took the whole budget in rounds that brought in fewer and fewer grids,
#: leaving none for the moves that rearrange the grids of the finer units
SPLIT_SHARE = 0.45

#: the work a node of the exact re-cut's programmes is counted as (for its budget)
EXACT_NODE_WORK = 40.0
#: the share of the work left that open land's short exact check may take
OPEN_LAND_CHECK_SHARE = 0.25
#: the work that must be left for the exact re-cut to hand programmes the search
#: does not settle to HiGHS (seconds each): the thorough effort only
SOLVER_WORK = 100_000.0


def exact_recut(plan: _Plan, ctx: _Context, rng: np.random.Generator) -> _Plan | None:
    """The region round a grid out re-cut exactly, where all of it can be in the band.

    A search, and with the thorough effort a small integer programme
    (:func:`~gridmap.partition.exact`).
    """
    if not ctx.exact or not grids_out_of_band(plan.assignment, plan.units.graph,
                                              ctx.tolerance):
        return None
    budget = int(min(300, ctx.work.left / EXACT_NODE_WORK))
    if budget < 1:
        return None
    new = plan.copy()
    _exact(new.assignment, new.units, ctx.tolerance, [], node_budget=budget,
           solver=ctx.work.left >= SOLVER_WORK)
    return new


def walks(plan: _Plan, ctx: _Context, rng: np.random.Generator) -> _Plan | None:
    """Walks of recombinations: a shortfall (or excess) carried to a grid with room.

    It travels through full grids (:func:`~gridmap.partition.recombine.wander`).
    """
    if not grids_out_of_band(plan.assignment, plan.units.graph, ctx.tolerance):
        return None
    new = plan.copy()
    if not _walks(new.assignment, new.units, ctx.tolerance, rng, [], frozen=ctx.frozen):
        return None
    return new


def split_blocks(plan: _Plan, ctx: _Context, rng: np.random.Generator) -> _Plan | None:
    """The blocks round the grids out of the band cut, then the grids cut anew.

    The blocks of the grids out of the band and of their neighbours are cut
    between their buildings (an empty block beside them into sectors), every unit
    starts in the grid it was in, then local moves, recombinations and seeded
    plans (:func:`~gridmap.partition.repair`) use the finer units.
    """
    bad = ctx.bad(plan)
    if not bad:
        return None
    maker = ctx.maker
    n_buildings, special = maker.n_buildings, maker.special
    inner, beside = blocks_near(plan, bad)
    split = plan.units.split
    # by area (a lattice cuts the land) any block can be cut, else one of buildings
    cuttable = (n_buildings > 1) if maker.spacing is None else np.ones_like(split)
    more = inner & ~split & cuttable & (special < 0)
    # a block with no building next to a grid out of the band (a square, a park
    # between ring roads) is split between the units around it: whole, it goes
    # to one grid, and a building cut off behind it can join no other
    more |= beside & ~split & (n_buildings == 0) & (special < 0)
    if not more.any():
        return None
    new = plan.copy()
    remake_units(new, maker, split | more, plan.units.opened, ctx.tolerance,
                 int(rng.integers(2**31)), ctx.cache, newly_split=more, whole_plans=True)
    return new


def seeded_plans(plan: _Plan, ctx: _Context, rng: np.random.Generator) -> _Plan | None:
    """The grids round the grids out of the band cut anew.

    Recombinations, then plans grown round the heaviest units
    (:func:`~gridmap.partition.repair`).
    """
    return _per_region(plan, ctx, LOCAL_RINGS, functools.partial(repair, rng=rng))


def open_land(plan: _Plan, ctx: _Context, rng: np.random.Generator) -> _Plan | None:
    """The split blocks round the grids still out opened, so a grid can pass a building.

    A grid still out may be walled in: its buildings' cells reach to the middle
    of the land round them, and a heavy building's cell bars the way to the light
    ones behind it.  Each cell is cut to its buildings' plot and the land between
    into sectors; an oversize grid holding a light building gives it away; then
    the walks and a short exact check.  Kept only where the plan is better.
    """
    bad = ctx.bad(plan)
    if not bad:
        return None
    inner, _ = blocks_near(plan, bad)
    split, opened = plan.units.split, plan.units.opened
    more_open = inner & split & (ctx.maker.n_buildings > 1) & ~opened
    if not more_open.any():
        return None
    new = plan.copy()
    remake_units(new, ctx.maker, split, opened | more_open, ctx.tolerance, None,
                 ctx.cache, newly_split=np.zeros_like(split), whole_plans=False)
    if release_from_oversize(new.assignment, new.units.graph, new.units.building_unit):
        means = community_mean(new.assignment, new.units.graph)
        for c, ordinary, cn, sub in community_grids(new.assignment, new.units):
            new.assignment.labels[cn] = refine(
                sub, new.assignment.labels[cn], grids=ordinary, mean=means[c],
                tolerance=float(ctx.tolerance[c]))
    # the open land multiplies the units of a region, and the exact check's
    # programmes grow with them: the walks go first, and the check gets little (a
    # share of the work left: the exact re-cut comes after with the rest)
    if _walks(new.assignment, new.units, ctx.tolerance, rng, []) and ctx.exact \
            and grids_out_of_band(new.assignment, new.units.graph, ctx.tolerance):
        budget = int(min(30, OPEN_LAND_CHECK_SHARE * ctx.work.left / EXACT_NODE_WORK))
        if budget >= 1:
            _exact(new.assignment, new.units, ctx.tolerance, [], node_budget=budget,
                   solver=ctx.work.left >= SOLVER_WORK)
    after = ctx.score(new)
    before = ctx.score(plan)
    if (after.out, after.excess) < (before.out, before.excess):
        new.notes.append(
            f"{int(more_open.sum())} split block(s) round the {len(bad)} grid(s) still "
            "out of the band opened (the land farther than 10 m from every building "
            f"cut into sectors a grid can pass along): {after.out} grid(s) out after.")
    return new


def within_share(move: Move, share: float) -> Move:
    """``move``, tried only while less than ``share`` of the budget of work is used.

    For a costly move whose rounds would otherwise take the whole budget and leave
    none for the moves after it.
    """
    def limited(plan: _Plan, ctx: _Context, rng: np.random.Generator) -> _Plan | None:
        if ctx.work.used >= share * ctx.work.limit:
            return None
        return move(plan, ctx, rng)

    limited.__name__ = move.__name__
    limited.__doc__ = move.__doc__
    return limited


def no_worse(move: Move) -> Move:
    """``move``, giving a plan only where it is no worse by the objective."""
    def guarded(plan: _Plan, ctx: _Context, rng: np.random.Generator) -> _Plan | None:
        new = move(plan, ctx, rng)
        if new is None or ctx.score(new) > ctx.score(plan):
            return None
        return new

    guarded.__name__ = move.__name__
    guarded.__doc__ = move.__doc__
    return guarded


#: the moves, cheapest first: (name, move, kept only where the plan is better);
#: each gives a plan no worse by the objective, or None
MOVES: tuple[tuple[str, Move, bool], ...] = (
    ("local moves", no_worse(local_moves), False),
    ("split blocks", no_worse(within_share(split_blocks, SPLIT_SHARE)), False),
    ("recombinations", no_worse(recombinations), False),
    ("walks", no_worse(walks), False),
    ("seeded plans", no_worse(seeded_plans), False),
    ("open land", no_worse(open_land), True),
    ("exact re-cut", no_worse(exact_recut), False),
)

#: the moves of a re-partition's loop (:func:`improve_held`): those that keep the
#: units (a re-partition's grids stay unions of the plan's units) and the grids
REPARTITION_MOVES: tuple[tuple[str, Move, bool], ...] = tuple(
    m for m in MOVES if m[0] in ("local moves", "recombinations", "walks"))


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
    units = maker.make(split, opened, cache=cache, previous=old)
    # the cells of the blocks cut or opened now are the work (their shapes, then
    # their edges): a unit of work a cell, about what one costs
    remade = (split != old.split) | (opened != old.opened)
    effort.charge(float(np.count_nonzero(remade[units.block])))
    new_labels = block_grid[units.block]
    # cells of blocks split before keep the grid of their buildings
    cell_has = np.full(len(units.table), -1, dtype=np.int64)
    cell_has[units.building_unit] = old_building_grid
    new_labels = np.where(cell_has >= 0, cell_has, new_labels)
    # the sectors of an empty block split before keep their grids (they are
    # made once: the cache keeps them)
    new_block = units.block
    kept = split & ~newly_split & ((maker.n_buildings == 0) | (maker.spacing is not None))
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
    bad = (grids_out_of_band(assignment, units.graph, tolerance)
           + oversize_holding_more(assignment, units.building_unit))
    for c, grids, cn, sub in regions_out(assignment, units, bad, LOCAL_RINGS):
        mean = means[c]
        labels_c = refine(sub, assignment.labels[cn], grids=grids, mean=mean,
                          tolerance=float(tolerance[c]))
        if whole_plans:
            labels_c = repair(sub, labels_c, grids=grids, mean=mean,
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


def regions_out(assignment: GridAssignment, units: Units, bad: list[int], rings: int,
                frozen: np.ndarray | None = None
                ) -> Iterator[tuple[int, np.ndarray, np.ndarray, UnitGraph]]:
    """Round the grids out of the band, community by community, the region to move.

    The region is the grids out and the ordinary grids within ``rings`` steps of
    them: ``(c, the region's grids, its units, its own graph)``.  A move made on
    the region costs what the region holds, not what the community holds, and
    leaves the rest of the community as it is.  Grids ``frozen`` are never in it.
    """
    g, labels = units.graph, assignment.labels
    grid_community = np.asarray(assignment.community)
    ordinary = np.array([not f for f in assignment.flag], dtype=bool)
    if frozen is not None:
        ordinary &= ~frozen
    a, b = labels[g.i], labels[g.j]
    cross = a != b
    a, b = a[cross], b[cross]
    for c in sorted({int(grid_community[x]) for x in bad} & set(assignment.mean)):
        mine = ordinary & (grid_community == c)
        region = np.zeros(assignment.n_grids, dtype=bool)
        region[[x for x in bad if grid_community[x] == c and mine[x]]] = True
        # an oversize grid holding more than its unit gives to its neighbours
        seeds = np.zeros(assignment.n_grids, dtype=bool)
        seeds[[x for x in bad if grid_community[x] == c]] = True
        for _ in range(rings):
            near = np.zeros(assignment.n_grids, dtype=bool)
            near[b[(region | seeds)[a]]] = True
            near[a[(region | seeds)[b]]] = True
            region |= near & mine
        grids = np.flatnonzero(region)
        if len(grids) < 2:
            continue
        members = np.flatnonzero(region[labels])
        yield c, grids, members, g.subgraph(members)


def _walks(assignment: GridAssignment, units: Units, tolerance: np.ndarray,
           rng: np.random.Generator, notes: list[str], *,
           frozen: np.ndarray | None = None) -> bool:
    """Walks of recombinations in every community with ordinary grids out of the band.

    The walks are :func:`~gridmap.partition.recombine.wander`'s; labels change in
    place; grids ``frozen`` neither give nor take.  Returns whether any changed.
    """
    g = units.graph
    bad = set(grids_out_of_band(assignment, g, tolerance))
    if frozen is not None:
        bad = {x for x in bad if not frozen[x]}
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
        locked = frozenset() if frozen is None else \
            frozenset(int(x) for x in ordinary if frozen[x])
        labels = wander(sub, before, grids=ordinary, mean=mean,
                        tolerance=float(tolerance[c]), rng=rng, locked=locked)
        if (labels != before).any():
            changed = True
            # the walk's sideways steps cut pairs of grids anew: straighten their
            # edges onto the streets again, without leaving the band
            labels = refine(sub, labels, grids=ordinary, mean=mean,
                            tolerance=float(tolerance[c]), max_moves=0, locked=locked)
        assignment.labels[members] = labels
    now = len(grids_out_of_band(assignment, g, tolerance))
    if now < len(bad):
        notes.append(f"{len(bad) - now} grid(s) out of the band brought into it by walks "
                     "of recombinations (a neighbouring pair re-split at a time, the "
                     "shortfall or excess passed on to grids with room).")
    return changed


def _exact(assignment: GridAssignment, units: Units, tolerance: np.ndarray,
           notes: list[str], *, node_budget: int = 300, solver: bool = True) -> int:
    """Exact re-cuts of every community's ordinary grids out of the band.

    The re-cuts are :func:`~gridmap.partition.exact.exact_repair`'s; the labels change
    in place.  Returns the solver work done (nodes).
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
                                      node_budget=node_budget, stats=stats,
                                      limits=RegionLimits(solver=solver))
        assignment.labels[members] = labels
        fixed += sum(r["verdict"] == "recut" for r in report)
        assignment.checks.update({int(r["grid"]): r for r in report})
    if fixed:
        notes.append(f"{fixed} region(s) of grids out of the band re-cut exactly "
                     "(every grid of each within the band).")
    return int(stats["nodes"])


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


def grids_out_of_band(assignment: GridAssignment, g: UnitGraph, tolerance: Any) -> list[int]:
    """The ordinary grids out of their community's band."""
    gids, dev, tol = _deviations(assignment, g, tolerance)
    return gids[band.out_of_band(dev, tol)].tolist()


def oversize_holding_more(assignment: GridAssignment, building_unit: np.ndarray) -> list[int]:
    """Oversize grids holding buildings of more than one unit.

    The balance rule's exception is for one indivisible unit alone, so these count as
    out (:func:`gridmap.objective.oversize_holding_more`).
    """
    return objective.oversize_holding_more(
        assignment.labels, np.asarray(assignment.flag, dtype=object), assignment.n_grids,
        building_unit).tolist()


def release_from_oversize(assignment: GridAssignment, g: UnitGraph,
                          building_unit: np.ndarray, *,
                          frozen: np.ndarray | None = None,
                          cut_off_only: bool = False) -> int:
    """Units an oversize grid holds beside its heaviest go to a light grid, in place.

    Such a unit (a light building it was left with, nothing else touching it) goes
    to the lightest ordinary grid of the community it touches, where the oversize
    grid stays in one piece without it; a unit that touches no ordinary grid but a
    road grid (land the corridors cut off) goes to the road grid it touches most,
    as a part cut off by corridors does.  With ``cut_off_only``, only those move.
    Grids ``frozen`` (a re-partition's locked ones) neither give nor take.  Returns
    how many moved.
    """
    labels = assignment.labels
    w = grid_weights(assignment, g)
    housed = np.zeros(len(labels), dtype=bool)
    housed[building_unit] = True
    moved = 0
    for gid in oversize_holding_more(assignment, building_unit):
        if frozen is not None and frozen[gid]:
            continue
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
                nb = labels[g.nbr[s:e][~g.barrier[g.eid[s:e]]]].tolist()
                open_ = [x for x in nb if frozen is None or not frozen[x]]
                to = {x for x in open_
                      if not assignment.flag[x] and assignment.community[x] == c}
                # only a unit with buildings in it makes the grid hold more; empty
                # land stays (a square beside a tower would swell the road grid)
                road = most_touched_road(g, labels, np.array([u]), assignment,
                                         over_barriers=False, frozen=frozen) \
                    if housed[u] and not to else None
                if (cut_off_only and to) or not (to or road is not None) \
                        or not connected_without(g, labels, u):
                    continue
                dst = min(to, key=lambda x: (w[x], x)) if to else road
                labels[u] = dst
                w[dst] += g.weight[u]
                w[gid] -= g.weight[u]
                moved += 1
                changed = True
    return moved

