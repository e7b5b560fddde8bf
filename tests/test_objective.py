"""The one objective (gridmap.objective): an order of hand-made plans."""

from __future__ import annotations

import numpy as np
import pytest

from gridmap.objective import Score, score, score_weights
from gridmap.partition import GridAssignment, UnitGraph

TOL = np.array([0.1])


def _s(*weights, cut=0.0):
    w = np.array(weights, dtype=float)
    return score_weights(w, np.zeros(len(w), dtype=int), np.ones(len(w), dtype=bool),
                         TOL, cut=cut)


def test_the_worked_example_of_the_guide():
    s = _s(300, 335, 265)
    assert (s.out, round(s.excess, 3), round(s.worst, 3)) == (2, 0.033, 0.117)
    assert _s(300, 315, 285) < s


@pytest.mark.parametrize(("better", "worse", "why"), [
    ((300, 300, 300), (300, 335, 265), "fewer grids out"),
    ((300, 340, 260), (300, 400, 200), "one out each but the first far less out"),
    ((300, 336, 264), (290, 345, 265), "as many out, less excess"),
    ((300, 320, 280), (300, 325, 275), "none out: the smaller largest deviation"),
])
def test_order_of_hand_made_plans(better, worse, why):
    assert _s(*better) < _s(*worse), why


def test_the_cut_cost_decides_only_between_plans_equally_balanced():
    assert _s(300, 310, 290, cut=10) < _s(300, 310, 290, cut=11)
    assert _s(300, 300, 300, cut=1000) < _s(300, 310, 290, cut=0)


def test_two_communities_each_judged_against_its_own_mean():
    w = np.array([100.0, 100.0, 300.0, 330.0])
    s = score_weights(w, np.array([0, 0, 1, 1]), np.ones(4, dtype=bool),
                      np.array([0.05, 0.05]))
    # community 1's mean is 315: both of its grids are 4.8 % off, within 5 %
    assert s.out == 0 and s.worst == pytest.approx(15 / 315, abs=1e-9)


def test_flagged_grids_are_not_judged_but_an_oversize_grid_holding_more_is_out():
    # units 0-3 in grids 0 and 1 (ordinary), unit 4 (900) alone in oversize grid 2,
    # unit 5 (20) joined to it: the exception is for one unit alone
    g = UnitGraph.from_edges(6, np.array([150, 150, 150, 150, 900, 20.0]),
                             np.zeros((6, 2)), np.array([0, 1, 2, 3, 4]),
                             np.array([1, 2, 3, 4, 5]), np.ones(5))
    a = GridAssignment(np.array([0, 0, 1, 1, 2, 2]))
    a.new_grid(0)
    a.new_grid(0)
    a.new_grid(0, "oversize")
    a.mean = {0: 300.0}
    alone = score(a, g, TOL, np.array([0, 1, 2, 3, 4]))
    assert alone.out == 0  # the oversize grid holds one building's unit
    laden = score(a, g, TOL, np.array([0, 1, 2, 3, 4, 5]))
    assert laden.out == 1 and laden.excess == pytest.approx(20 / 300, abs=1e-9)
    assert alone < laden


def test_scores_compare_field_by_field():
    assert Score(1, 0.0, 0.0, 0.0) > Score(0, 5.0, 0.0, 5.0)
    assert Score(1, 0.1, 0.0, 0.0) < Score(1, 0.2, 0.0, 0.0)
    # households moved come after the balance, before the largest deviation
    assert Score(0, 0.0, 40.0, 0.01) > Score(0, 0.0, 20.0, 0.09)
    assert Score(0, 0.0, 40.0, 0.01) < Score(0, 0.01, 0.0, 0.0)


def test_households_moved_are_counted_against_the_reference():
    g = UnitGraph.from_edges(4, np.array([100.0, 100, 100, 100]), np.zeros((4, 2)),
                             np.array([0, 1, 2]), np.array([1, 2, 3]), np.ones(3))
    a = GridAssignment(np.array([0, 0, 1, 1]))
    a.new_grid(0)
    a.new_grid(0)
    a.mean = {0: 200.0}
    same = score(a, g, TOL, reference=np.array([0, 0, 1, 1]))
    assert same.moved == 0
    assert score(a, g, TOL, reference=np.array([0, 1, 1, 1])).moved == 100
    assert score(a, g, TOL).moved == 0  # a new plan moves nobody
