"""Partition the unit graph into grids, community by community.

In each community: units heavier than a grid alone become grids of their own
(flagged ``oversize``); the rest is split into parts that no barrier crosses,
merged across a barrier only where a part alone cannot make balanced grids; each
part gets ``round(weight / target)`` grids by recursive spanning-tree bisection;
local moves then restore balance and shorten the boundaries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from .._errors import DisconnectedUnitsError
from ..band import heavier_than_a_grid
from ._graph import UnitGraph
from .bisection import recursive_bisection
from .recombine import recombine, wander
from .refine import connected_without, refine

__all__ = [
    "GridAssignment",
    "UnitGraph",
    "connected_without",
    "find_islands",
    "most_touched_road",
    "partition_graph",
    "recombine",
    "refine",
    "repair",
    "wander",
]


@dataclass
class GridAssignment:
    """The grid of every unit and what is known of each grid.

    ``labels[u]`` is the grid number of unit ``u`` (0..n_grids-1);
    ``community[g]`` the community of grid ``g``; ``flag[g]`` is ``""`` for an
    ordinary grid, ``"oversize"`` for a grid of one unit heavier than a grid, or
    ``"island"`` for a part too small for a grid that nothing else connects to.
    ``mean[c]`` is the weight the ordinary grids of community ``c`` aim at.
    ``kind[g]`` is ``"community"``, or ``"road"``/``"unit"`` for a grid carved
    out first (its ``flag`` is its kind too, so that balance leaves it alone);
    ``special[g]`` is the carved polygon a road or unit grid is.  ``keep[g]``
    is the ``(grid_id, code)`` a grid keeps from an earlier plan (re-partition).
    """

    labels: np.ndarray
    community: list[int] = field(default_factory=list)
    flag: list[str] = field(default_factory=list)
    mean: dict[int, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    kind: list[str] = field(default_factory=list)
    special: dict[int, int] = field(default_factory=dict)
    keep: dict[int, tuple[int, str]] = field(default_factory=dict)
    #: parts of a community cut off from the rest: ``{"community", "units", "weight"}``
    islands: list[dict] = field(default_factory=list)
    #: grid -> what the exact re-cut found for it (see :func:`.exact.exact_repair`)
    checks: dict[int, dict] = field(default_factory=dict)

    @property
    def n_grids(self) -> int:
        """How many grids there are so far."""
        return len(self.community)

    def new_grid(self, community: int, flag: str = "", kind: str = "community") -> int:
        """Add a grid of ``community`` with its ``flag`` and ``kind``; returns its number."""
        self.community.append(int(community))
        self.flag.append(flag)
        self.kind.append(kind)
        return len(self.community) - 1


def _parts(
    g: UnitGraph, nodes: np.ndarray, target: float, tolerance: float
) -> list[np.ndarray]:
    """Barrier-free parts of ``nodes``, merged across barriers where needed."""
    nob = ~g.barrier
    lab = g.components(nodes, nob)
    full = g.components(nodes)
    groups: dict[int, list[int]] = {}
    for c in np.unique(lab):
        groups.setdefault(int(full[np.flatnonzero(lab == c)[0]]), []).append(int(c))
    parts: list[np.ndarray] = []
    for comps in groups.values():
        members = {c: nodes[lab == c] for c in comps}
        while len(members) > 1:
            # a part that cannot make grids within half the tolerance joins a neighbour
            def badness(ns: np.ndarray) -> float:
                wsum = float(g.weight[ns].sum())
                k = max(1, round(wsum / target))
                return abs(wsum / k - target) / target

            worst = max(members, key=lambda c: (badness(members[c]), -len(members[c]), c))
            if badness(members[worst]) <= tolerance / 2:
                break
            # neighbour parts across a barrier edge
            owner = np.full(g.n, -1, dtype=np.int64)
            for c, ns in members.items():
                owner[ns] = c
            ew = (owner[g.i] == worst) | (owner[g.j] == worst)
            other = set(owner[g.i[ew]].tolist()) | set(owner[g.j[ew]].tolist())
            other -= {worst, -1}
            if not other:
                break
            into = min(other, key=lambda c: (float(g.weight[members[c]].sum()), c))
            members[into] = np.concatenate([members[into], members.pop(worst)])
        parts.extend(np.sort(ns) for ns in members.values())
    return parts


def partition_graph(
    g: UnitGraph,
    community: np.ndarray,
    *,
    target: float | np.ndarray,
    tolerance: float | np.ndarray,
    seed: int | None = 0,
    n_trees: int = 6,
    n_starts: int = 4,
    fixed: np.ndarray | None = None,
    fixed_kind: np.ndarray | None = None,
    islands: str = "own",
    community_names: list | None = None,
    progress: bool = False,
    scheduler: str | None = None,
    repair_cuts: bool = True,
) -> GridAssignment:
    """Partition every community's units into balanced, contiguous grids.

    Parameters
    ----------
    g
        The unit graph (weights are the balance field).
    community
        Community number of every unit; no grid crosses a community.
    target, tolerance
        Target weight per grid and the allowed relative deviation from the
        community's mean: one for all, or an array indexed by community.
    seed
        Seed of the random jitter of the spanning trees: the same input and seed
        give the same plan.
    fixed, fixed_kind
        For every unit, the carved polygon (road or unit grid) it belongs to, or
        -1; and the kind of every carved polygon.  Each carved polygon is one
        grid, made first and left out of the balance.
    islands
        Policy for a part of a community that nothing connects to the rest:
        ``"own"`` gives it its own grid(s), ``"nearest"`` joins a part too light
        for a grid to the nearest grid of its community, ``"error"`` raises
        :class:`~gridmap.DisconnectedUnitsError`.  Every island is recorded in
        ``GridAssignment.islands``.
    community_names
        Names of the communities for messages (default: their numbers).
    progress
        A bar of the communities on stderr.
    scheduler
        Where the communities are partitioned: None here, one after the other;
        ``"local"`` a Dask cluster on this machine; or a Dask scheduler's address
        (see :func:`gridmap.parallel.community_map`).  The plan is the same.
    repair_cuts
        Where a community's best cut leaves grids out of the band, repair it
        (:func:`repair`: recombinations and seeded plans) before returning; the
        balancing stage (:mod:`gridmap.balance`) passes False and spends its own
        budget of work on that instead.
    """
    labels = np.full(g.n, -1, dtype=np.int64)
    out = GridAssignment(labels)
    free = _carve_special_grids(g, community, out, fixed, fixed_kind)
    todo = _communities_to_cut(g, community, free, out, target=target,
                               tolerance=tolerance, islands=islands,
                               community_names=community_names)
    cuts = _cut_communities(todo, seed=seed, n_trees=n_trees, n_starts=n_starts,
                            scheduler=scheduler, progress=progress, repair_cuts=repair_cuts)
    to_refine = []
    for one, cut in zip(todo, cuts, strict=True):
        refinement = _place_community_grids(g, one, cut, out, islands=islands)
        if refinement is not None:
            to_refine.append(refinement)
    _refine_communities(to_refine, labels, scheduler=scheduler)
    out.labels = labels
    return out


# the steps of partition_graph

@dataclass
class _CommunityToCut:
    """One community to cut into grids.

    Its number, its units (global positions, sorted), its own unit graph (no grid
    leaves it, and arrays the size of the whole district in the inner loops would
    make the run quadratic), its free units (local positions: neither carved nor
    oversize) and its target and tolerance.
    """

    community: int
    units: np.ndarray
    graph: UnitGraph
    free: np.ndarray
    target: float
    tolerance: float


def _carve_special_grids(g: UnitGraph, community: np.ndarray, out: GridAssignment,
                         fixed: np.ndarray | None, fixed_kind: np.ndarray | None
                         ) -> np.ndarray:
    """The road and unit grids, made first: one grid per carved polygon.

    In: the carved polygon of every unit (``fixed``, -1 for none) and the kind
    of every carved polygon.  Each grid is put in the community it lies in most
    (by weight) and its units are labelled in ``out``.  Out: for every unit,
    whether it is free (in no carved polygon).
    """
    labels = out.labels
    free = np.ones(g.n, dtype=bool)
    if fixed is not None and (np.asarray(fixed) >= 0).any():
        fixed = np.asarray(fixed)
        for sp in np.unique(fixed[fixed >= 0]).tolist():
            members = np.flatnonzero(fixed == sp)
            kind = str(fixed_kind[sp]) if fixed_kind is not None else "unit"
            # the community it lies in most
            c = int(np.bincount(community[members],
                                weights=g.weight[members] + 1e-9).argmax())
            gid = out.new_grid(c, kind, kind=kind)
            out.special[gid] = int(sp)
            labels[members] = gid
            free[members] = False
    return free


def _communities_to_cut(g: UnitGraph, community: np.ndarray, free: np.ndarray,
                        out: GridAssignment, *, target: float | np.ndarray,
                        tolerance: float | np.ndarray, islands: str,
                        community_names: list | None) -> list[_CommunityToCut]:
    """Every community, in the order of their numbers, made ready to cut.

    In each: a free unit heavier than a grid (above the target and its
    tolerance) becomes a grid of its own, flagged ``oversize``; the parts cut
    off from the rest are recorded as islands (:func:`_record_islands`).  Out:
    the communities with free units left, each with its own target and
    tolerance (差异性), or the one for all.
    """
    labels = out.labels
    targets, tolerances = target, tolerance
    order = np.argsort(community, kind="stable")
    cvals, cstart = np.unique(community[order], return_index=True)
    cbounds = np.r_[cstart, len(order)]
    todo = []
    for ci, c in enumerate(cvals.tolist()):
        # a target and tolerance per community (差异性), or one for all
        target = _of_community(targets, c)
        tolerance = _of_community(tolerances, c)
        units = np.sort(order[cbounds[ci]:cbounds[ci + 1]])
        graph = g.subgraph(units)
        nodes = np.flatnonzero(free[units])  # local
        oversize = heavier_than_a_grid(graph.weight[nodes], target, tolerance)
        for u in nodes[oversize].tolist():
            labels[units[u]] = out.new_grid(c, "oversize")
        rest = nodes[~oversize]
        if not len(rest):
            continue
        _record_islands(g, community, c, out, islands=islands,
                        community_names=community_names)
        todo.append(_CommunityToCut(c, units, graph, rest, target, tolerance))
    return todo


def _of_community(value: float | np.ndarray, c: int) -> float:
    """``value[c]`` where ``value`` has one per community, else ``value``."""
    if np.ndim(value):
        return float(cast("np.ndarray", value)[c])
    return float(value)


def _record_islands(g: UnitGraph, community: np.ndarray, c: int, out: GridAssignment,
                    *, islands: str, community_names: list | None) -> None:
    """The parts of community ``c`` cut off from the rest, recorded in ``out.islands``.

    Road and unit grids count as part of the community (a part beyond a road grid
    is not an island); with ``islands="error"`` the parts raise
    :class:`~gridmap.DisconnectedUnitsError`.
    """
    found = find_islands(g, np.flatnonzero(community == c))
    for part in found:
        out.islands.append({"community": int(c), "units": part,
                            "weight": float(g.weight[part].sum())})
    if found and islands == "error":
        name = community_names[c] if community_names and c < len(community_names) \
            else c
        xy = [g.xy[p].mean(axis=0).round(1).tolist() for p in found[:3]]
        msg = (
            f"community {name!r} is in {len(found) + 1} parts that nothing connects "
            f"(islands={islands!r}): {len(found)} island(s) of "
            f"{', '.join(str(len(p)) for p in found[:5])} unit(s) and weight "
            f"{', '.join(f'{float(g.weight[p].sum()):g}' for p in found[:5])}, "
            f"around {xy} (working CRS). Use islands='own' to give each its own "
            "grid, islands='nearest' to join it to the nearest grid, or fix the "
            "community boundary."
        )
        raise DisconnectedUnitsError(msg)


def _community_seed(seed: int | None, c: int) -> Any:
    """The seed of community ``c``'s own random stream.

    The communities are cut independently, each with its own random stream, so
    that they may run anywhere, in any order, and give the same plan.  The first
    community draws from the seed itself: a plan of one community is the same as
    when all communities shared one stream.
    """
    return None if seed is None else int(seed) if c == 0 else [int(seed), int(c)]


def _cut_communities(todo: list[_CommunityToCut], *, seed: int | None, n_trees: int,
                     n_starts: int, scheduler: str | None, progress: bool,
                     repair_cuts: bool = True
                     ) -> list[tuple[list[np.ndarray], list[np.ndarray], float]]:
    """Every community cut into grids (:func:`_cut_community`).

    Here one after the other or on a Dask ``scheduler``.

    Out: for each community of ``todo``, its pieces, its parts too light for a
    grid (local positions) and the weight of the pieces.
    """
    from .._progress import bar
    from ..parallel import community_map

    tasks = [(one.graph, one.free, one.target, one.tolerance,
              _community_seed(seed, one.community), n_trees, n_starts, repair_cuts)
             for one in todo]
    if scheduler is None:
        return [_cut_community(*t) for t in bar(tasks, desc="partition: communities",
                                                 enabled=progress)]
    return community_map(_cut_community, tasks, scheduler=scheduler)


def _place_community_grids(g: UnitGraph, one: _CommunityToCut,
                           cut: tuple[list[np.ndarray], list[np.ndarray], float],
                           out: GridAssignment, *, islands: str
                           ) -> tuple[np.ndarray, tuple] | None:
    """The grids of one cut community, made and labelled in ``out``.

    In: the community and its cut (pieces, parts too light for a grid, weight
    of the pieces).  Each piece is an ordinary grid; each light part is placed
    by :func:`_place_light_part`; the community's mean is set.  Out: the
    community's units and the task of its balance moves
    (:func:`_refine_community`), or None with fewer than two ordinary grids.
    """
    labels = out.labels
    c, units = one.community, one.units
    pieces, pending, total_w = cut
    ordinary: list[int] = []
    for p in pieces:
        gid = out.new_grid(c)
        labels[units[p]] = gid
        ordinary.append(gid)
    # global positions: they may touch carved grids
    for part in (units[p] for p in pending):
        _place_light_part(g, part, c, out, islands=islands)
    mean = total_w / len(pieces) if pieces else one.target
    out.mean[c] = mean
    if len(ordinary) <= 1:
        return None
    return units, (one.graph, labels[units], np.array(ordinary), mean, one.tolerance)


def _place_light_part(g: UnitGraph, part: np.ndarray, c: int, out: GridAssignment, *,
                      islands: str) -> None:
    """A part of community ``c`` too light for a grid (global positions), labelled.

    The label goes in ``out``: it joins an adjacent grid, else stands alone.

    It joins a community grid of this community that it touches, an ordinary one
    first (an oversize grid should stay one unit), never a road or unit grid;
    an empty leftover touching only a road or unit grid goes with it; with
    ``islands="nearest"`` it joins the nearest ordinary grid; else it is a grid
    of its own (flagged ``island``), unless, with ``islands="own"``, road grids
    cut it off: then the road grid it touches most takes it.  The last three are
    said in ``out.notes``.
    """
    labels = out.labels
    touching = {x for x in g.adjacent_labels(labels, part)
                if out.kind[x] == "community" and out.community[x] == c}
    carved = {x for x in g.adjacent_labels(labels, part) if out.kind[x] != "community"}
    if touching:
        gid = min(touching, key=lambda x: (out.flag[x] == "oversize", x))
        labels[part] = gid
    elif carved and float(g.weight[part].sum()) == 0:
        # an empty leftover between a road or unit grid and the area's
        # edge (a strip of pavement, a corner) goes with that grid
        labels[part] = min(carved, key=lambda x: (out.kind[x] != "road", x))
    elif islands == "own" and (road := most_touched_road(g, labels, part, out)) is not None:
        # land the corridors cut off, too light for a grid (under half of one): an
        # island grid of a few households helps nobody, and a community grid across
        # the corridor would be in two pieces; the road grid round it takes it
        labels[part] = road
        out.notes.append(
            f"community {c}: a part of {len(part)} units and weight "
            f"{float(g.weight[part].sum()):g}, cut off by road grids and too light for "
            f"a grid, joined the road grid round it")
    elif islands == "nearest" and (
            near := _nearest_grid(g, labels, part, out, c)) is not None:
        labels[part] = near
        out.notes.append(
            f"community {c}: a part of {len(part)} units and weight "
            f"{float(g.weight[part].sum()):g} is cut off from the rest; it "
            "joined the nearest grid (islands='nearest')"
        )
    else:
        gid = out.new_grid(c, "island")
        labels[part] = gid
        out.notes.append(
            f"community {c}: a part of {len(part)} units and weight "
            f"{float(g.weight[part].sum()):g} is cut off from the rest; "
            "it is a grid of its own"
        )


def _refine_communities(to_refine: list[tuple[np.ndarray, tuple]], labels: np.ndarray,
                        *, scheduler: str | None) -> None:
    """The balance moves, community by community (they touch only their own units).

    Each community's units are relabelled in ``labels``, here or on a Dask
    ``scheduler``.
    """
    from ..parallel import community_map

    tasks = [task for _, task in to_refine]
    refined = (community_map(_refine_community, tasks, scheduler=scheduler)
               if scheduler is not None else [_refine_community(*t) for t in tasks])
    for (units, _), lab in zip(to_refine, refined, strict=True):
        labels[units] = lab


def _cut_community(sub: UnitGraph, rest: np.ndarray, target: float, tolerance: float,
                   seed: Any, n_trees: int, n_starts: int, repair_cuts: bool = True,
                   ) -> tuple[list[np.ndarray], list[np.ndarray], float]:
    """One community cut into grids.

    The pieces, the parts too light for a grid (local positions) and the weight of
    the pieces.
    """
    rng = np.random.default_rng(seed)
    pieces: list[np.ndarray] = []
    pending: list[np.ndarray] = []
    total_w = 0.0
    for part in _parts(sub, rest, target, tolerance):
        wsum = float(sub.weight[part].sum())
        k = round(wsum / target)
        if k == 0:
            pending.append(part)
            continue
        k = min(k, len(part))
        pieces.extend(_best_of(sub, part, k, wsum / k, tolerance, rng, n_trees, n_starts,
                               repair_cuts=repair_cuts))
        total_w += wsum
    return pieces, pending, total_w


def _refine_community(sub: UnitGraph, labels: np.ndarray, grids: np.ndarray, mean: float,
                      tolerance: float) -> np.ndarray:
    return refine(sub, labels, grids=grids, mean=mean, tolerance=tolerance)


def find_islands(g: UnitGraph, nodes: np.ndarray) -> list[np.ndarray]:
    """The parts of ``nodes`` cut off from their main part (heaviest, then largest).

    Examples
    --------
    >>> import numpy as np
    >>> g = UnitGraph.from_edges(3, np.array([5.0, 5.0, 1.0]), np.zeros((3, 2)),
    ...                          np.array([0]), np.array([1]), np.array([1.0]),
    ...                          np.array([False]))
    >>> [p.tolist() for p in find_islands(g, np.arange(3))]
    [[2]]
    """
    if len(nodes) < 2:
        return []
    comp = g.components(nodes)
    keys = np.unique(comp)
    if len(keys) < 2:
        return []
    parts = [np.sort(nodes[comp == k]) for k in keys]
    # the main part: the heaviest, then the largest, then the one with the lowest unit
    main = max(range(len(parts)), key=lambda i: (float(g.weight[parts[i]].sum()),
                                                  len(parts[i]), -int(parts[i][0])))
    return [p for i, p in enumerate(parts) if i != main]


def most_touched_road(g: UnitGraph, labels: np.ndarray, part: np.ndarray,
                      out: GridAssignment, *, over_barriers: bool = True,
                      frozen: np.ndarray | None = None) -> int | None:
    """The road grid ``part`` shares most edges with (None: it touches none).

    Ties go to the lowest grid id.  Without ``over_barriers``, edges across a
    barrier do not count; grids ``frozen`` are not taken.
    """
    part = np.asarray(part, dtype=np.int64)
    inside = np.zeros(g.n, dtype=bool)
    inside[part] = True
    # the part's own edges (a unit's few, not the graph's all: called unit by unit)
    slots = g.neighbour_slots(part)
    other = g.nbr[slots]
    keep = ~inside[other]
    if not over_barriers:
        keep &= ~g.barrier[g.eid[slots]]
    across = labels[other[keep]]
    roads = [int(x) for x in across if x >= 0 and out.kind[int(x)] == "road"
             and (frozen is None or not frozen[int(x)])]
    if not roads:
        return None
    return int(np.argmax(np.bincount(roads)))


def _nearest_grid(g: UnitGraph, labels: np.ndarray, part: np.ndarray,
                  out: GridAssignment, c: int) -> int | None:
    """The ordinary grid of community ``c`` whose nearest unit is nearest ``part``."""
    ok = np.array([out.kind[x] == "community" and out.community[x] == c
                   and out.flag[x] == "" for x in range(out.n_grids)], dtype=bool)
    cand = np.flatnonzero((labels >= 0) & ok[np.maximum(labels, 0)])
    if not len(cand):
        return None
    d = np.linalg.norm(g.xy[cand][:, None, :] - g.xy[part][None, :, :], axis=2).min(axis=1)
    return int(labels[cand[int(np.argmin(d))]])


def _best_of(
    g: UnitGraph,
    part: np.ndarray,
    k: int,
    mean: float,
    tolerance: float,
    rng: np.random.Generator,
    n_trees: int,
    n_starts: int,
    *,
    repair_cuts: bool = True,
) -> list[np.ndarray]:
    """Bisect and refine ``part`` up to ``n_starts`` times; keep the best.

    Best means fewest grids out of tolerance, then the smallest largest deviation.
    Stops at the first plan with every grid within tolerance.
    """
    best = None
    for _ in range(max(1, n_starts)):
        pieces = recursive_bisection(
            g, part, k, tolerance=tolerance, rng=rng, mean=mean, n_trees=n_trees
        )
        lab = np.full(g.n, -1, dtype=np.int64)
        for n_, p in enumerate(pieces):
            lab[p] = n_
        if len(pieces) > 1:
            lab = refine(g, lab, grids=np.arange(len(pieces)), mean=mean, tolerance=tolerance)
        key = _score(g, lab, len(pieces), mean, tolerance)
        if best is None or key < best[0]:
            best = (key, lab)
        if key[0] == 0:
            break
    assert best is not None
    key, lab = best
    if key[0] and k > 1 and repair_cuts:
        lab = repair(g, lab, grids=np.arange(k), mean=mean, tolerance=tolerance, rng=rng,
                     n_trees=n_trees)
    return [np.flatnonzero(lab == n_) for n_ in range(k)]


def repair(
    g: UnitGraph,
    labels: np.ndarray,
    *,
    grids: np.ndarray,
    mean: float,
    tolerance: float,
    rng: np.random.Generator,
    n_trees: int = 6,
) -> np.ndarray:
    """Repair grids out of tolerance among ``grids``; returns new labels.

    First merge and re-split neighbouring grids, then move units again; if grids
    are still out, try plans grown around the coarse units (:func:`_seeded`) and
    keep the best.  The units of ``grids`` keep to those grid ids.
    """
    grids = np.asarray(grids, dtype=np.int64)
    k = len(grids)
    part = np.flatnonzero(np.isin(labels, grids))
    pos = {int(gid): n for n, gid in enumerate(grids)}
    lab = np.full(g.n, -1, dtype=np.int64)
    lab[part] = [pos[int(x)] for x in labels[part]]
    local = np.arange(k)
    key = _score(g, lab, k, mean, tolerance)
    if key[0] and k > 1:
        # coarse units: merge and re-split neighbouring grids, then move again
        lab = recombine(g, lab, grids=local, mean=mean, tolerance=tolerance, rng=rng)
        lab = refine(g, lab, grids=local, mean=mean, tolerance=tolerance)
        key = _score(g, lab, k, mean, tolerance)
        if key[0]:
            # still out: grow a grid around every unit that is most of a grid
            # alone, then split the rest, and keep whichever plan is better
            # the recombination is the costly step: only the most promising of
            # the seeded plans (after the unit moves) gets it
            seeded = []
            for share in (0.5, 0.6, 0.7, 0.8):
                alt = _seeded(g, part, k, mean, tolerance, rng, n_trees, coarse_share=share)
                if alt is None:
                    continue
                alt = refine(g, alt, grids=local, mean=mean, tolerance=tolerance)
                alt_key = _score(g, alt, k, mean, tolerance)
                if alt_key < key:
                    lab, key = alt, alt_key
                if key[0] == 0:
                    break
                seeded.append((alt_key, share, alt))
            if key[0] and seeded:
                _, _, alt = min(seeded, key=lambda t: t[:2])
                alt = recombine(g, alt, grids=local, mean=mean, tolerance=tolerance, rng=rng)
                alt = refine(g, alt, grids=local, mean=mean, tolerance=tolerance)
                alt_key = _score(g, alt, k, mean, tolerance)
                if alt_key < key:
                    lab, key = alt, alt_key
    out = labels.copy()
    out[part] = grids[lab[part]]
    return out


def _seeded(
    g: UnitGraph,
    part: np.ndarray,
    k: int,
    mean: float,
    tolerance: float,
    rng: np.random.Generator,
    n_trees: int,
    coarse_share: float = 0.5,
) -> np.ndarray | None:
    """Grids grown around coarse units first, the rest split by bisection.

    A unit holding half a grid or more cannot share a grid with another such
    unit; left to the bisection, two of them often end up together.  Here each
    gets a grid of its own, filled up to the band with the small units around it;
    what is left is split as usual.  Returns labels 0..k-1, or None when this
    does not give exactly ``k`` grids.
    """
    w = g.weight
    lab = np.full(g.n, -1, dtype=np.int64)
    inpart = np.zeros(g.n, dtype=bool)
    inpart[part] = True
    coarse = part[w[part] >= coarse_share * mean]
    coarse = coarse[np.lexsort((coarse, -w[coarse]))]
    is_coarse = np.zeros(g.n, dtype=bool)
    is_coarse[coarse] = True
    lo, hi = mean * (1 - tolerance / 2), mean * (1 + tolerance / 2)
    adj = g.adjacency_lists
    gid = 0
    for u in coarse.tolist():
        lab[u] = gid
        tot = float(w[u])
        # the units next to the grid so far, kept as it grows (not gathered again
        # from every member at every step)
        frontier = set(adj[u])
        while tot < lo:
            cands = [x for x in frontier
                     if inpart[x] and lab[x] < 0 and not is_coarse[x] and tot + w[x] <= hi]
            if not cands:
                break
            x = min(cands, key=lambda c: (abs(mean - tot - float(w[c])), c))
            lab[x] = gid
            tot += float(w[x])
            frontier.update(adj[x])
        gid += 1
    rest = part[lab[part] < 0]
    k_rest = k - gid
    if k_rest < 0:
        return None
    if len(rest):
        comp = g.components(rest)
        labels_c = np.unique(comp)
        wc = np.array([float(w[rest[comp == c]].sum()) for c in labels_c])
        # the grids left are shared out in proportion to weight (largest remainder)
        quota = wc / max(wc.sum(), 1e-12) * k_rest
        kcs = np.floor(quota).astype(int)
        short = k_rest - int(kcs.sum())
        if short > 0:
            kcs[np.argsort(-(quota - kcs), kind="stable")[:short]] += 1
        for c, share in zip(labels_c.tolist(), kcs.tolist(), strict=True):
            nodes = rest[comp == c]
            wsum = float(w[nodes].sum())
            kc = min(share, len(nodes))
            if kc == 0:
                # too light for a grid: join the lightest grid it touches
                near = sorted(g.adjacent_labels(lab, nodes))
                if not near:
                    return None
                wts = np.bincount(lab[lab >= 0], weights=w[lab >= 0])
                lab[nodes] = min(near, key=lambda h: (wts[h], h))
                continue
            for p in recursive_bisection(g, nodes, kc, tolerance=tolerance, rng=rng,
                                         mean=wsum / kc, n_trees=n_trees):
                lab[p] = gid
                gid += 1
    if gid != k:
        return None
    return lab


def _score(g: UnitGraph, lab: np.ndarray, k: int, mean: float, tolerance: float):
    w = np.bincount(lab[lab >= 0], weights=g.weight[lab >= 0], minlength=k)
    dev = np.abs(w / mean - 1)
    return int((dev > tolerance + 1e-9).sum()), float(dev.max())


