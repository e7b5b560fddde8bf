"""The balancing's moves and loop (gridmap.balance) on random small cities.

Every move gives a plan no worse by the objective (or None), every grid stays in
one piece and no unit or weight is lost; the loop stops where the budget of work
is spent, and the same seed and effort give the same plan.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
from conftest import grid_city, run_stages
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridmap import effort
from gridmap.balance import MOVES, _Context, _first_partition, balance, improve
from gridmap.options import Search


def _city(seed: int, nx_: int, ny: int, per_block: int):
    rng = np.random.default_rng(seed)
    b, s = grid_city(nx_, ny, per_block=per_block)
    b["households"] = rng.choice([10, 40, 80, 150], size=len(b)).astype(float)
    total = float(b["households"].sum())
    return b, s, max(100.0, round(total / max(2, len(b) // 3)))


def _contiguous(plan) -> bool:
    a, units = plan.assignment, plan.units
    graph = units.adjacency.to_networkx()
    graph.add_nodes_from(range(len(units.table)))
    for gid in np.unique(a.labels):
        members = np.flatnonzero(a.labels == gid).tolist()
        if not nx.is_connected(graph.subgraph(members)):
            return False
    return True


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), nx_=st.integers(2, 4), ny=st.integers(2, 3),
       per_block=st.integers(1, 3))
def test_every_move_is_no_worse_keeps_grids_whole_and_loses_nothing(seed, nx_, ny,
                                                                    per_block):
    b, s, target = _city(seed, nx_, ny, per_block)
    stages = run_stages(b, s, target=target, tolerance=0.05)
    search = Search(seed=seed)
    plan = _first_partition(stages.units, stages.maker, stages.communities, search, seed,
                            carve_kind=stages.carve.kind, progress=False)
    work = effort.Work(5_000)
    ctx = _Context(stages.maker, stages.communities.tolerance, True, {}, work)
    total = float(stages.units.graph.weight.sum())
    rng = np.random.default_rng(seed)
    with effort.active(work):
        for name, move, _ in MOVES:
            before = ctx.score(plan)
            new = move(plan, ctx, rng)
            if new is None:
                continue
            assert ctx.score(new) <= before, name
            assert _contiguous(new), name
            assert (new.assignment.labels >= 0).all(), name
            assert float(new.units.graph.weight.sum()) == total, name
            plan = new


def test_the_loop_stops_where_the_budget_is_spent():
    b, s, target = _city(7, 5, 4, 2)
    stages = run_stages(b, s, target=300, tolerance=0.05)
    plan = _first_partition(stages.units, stages.maker, stages.communities, Search(), 0,
                            carve_kind=stages.carve.kind, progress=False)
    work = effort.Work(50)
    ctx = _Context(stages.maker, stages.communities.tolerance, True, {}, work)
    stats = {name: {"tried": 0, "kept": 0, "improved": 0, "grids_in": 0, "work": 0.0,
                    "seconds": 0.0} for name, _, _ in MOVES}
    with effort.active(work):
        steps = list(improve(plan, ctx, np.random.default_rng(0), stats))
    why = steps[-1][2]
    assert why in ("effort spent", "no grid out of the band")
    if why == "effort spent":
        assert work.used >= work.limit
        # no move starts once the budget is spent: the last one tried overshot it
        assert sum(s["tried"] for s in stats.values()) <= len(MOVES)


def test_same_seed_and_effort_same_plan_and_more_effort_no_worse():
    b, s, _ = _city(3, 5, 4, 2)
    stages = run_stages(b, s, target=300, tolerance=0.05)

    def run(units):
        return balance(stages.units, stages.maker, stages.communities,
                       Search(seed=1, effort=units), carve_kind=stages.carve.kind,
                       cache={})

    a, again, more = run(800), run(800), run(4_000)
    assert a.assignment.labels.tolist() == again.assignment.labels.tolist()
    assert a.report["work_used"] == again.report["work_used"]
    assert a.report["work_used"] <= 800 * 2
    score = lambda r: (r.report["objective"]["grids_out"], r.report["objective"]["excess"])  # noqa: E731
    assert score(more) <= score(a)
