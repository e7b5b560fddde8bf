"""The one objective every balancing move and every choice between plans uses.

A plan is better than another when, in this order (lexicographic):

1. fewer grids are **out of the band** (:mod:`gridmap.band`): ordinary grids
   whose deviation from their community's mean is beyond the tolerance, and
   oversize grids that hold more than their one heavy unit (the oversize
   exception is for one indivisible unit alone);
2. the **excess** beyond the band is smaller: the sum over the grids out of how
   far each is beyond it, in shares of its community's mean (an oversize grid
   holding more counts the weight of its other units);
3. in a re-partition, fewer households are **moved**: the weight of the units
   whose grid is not the one they were in (``reference``; 0 in a new plan);
4. the **largest deviation** of an ordinary grid is smaller;
5. the **cut cost** is smaller: the cost of the grid boundaries, edge by edge
   (a boundary along a main road costs little, one through a block much: see
   :data:`gridmap.adjacency.DEFAULT_CUT_COST`), so that of two plans equally
   balanced the one whose boundaries follow the streets wins.

Scores are rounded (1e-9 of a share, 1e-6 of cost) so that floating-point noise
never decides.

Worked example (see the guide): three grids of one community with target 300
±10 %, weights 300, 335 and 265: the mean is 300, the deviations 0, +11.7 % and
-11.7 %; two grids are out, the excess is 0.017 + 0.017 = 0.033, the largest
deviation 0.117.  Moving a building of 20 from the second grid to the third
(315, 285): no grid out, excess 0, largest deviation 0.05 - better, whatever the
cut cost.

Examples
--------
>>> import numpy as np
>>> s = score_weights(np.array([300.0, 335.0, 265.0]), np.zeros(3, int),
...                   np.ones(3, bool), np.array([0.1]))
>>> s.out, round(s.excess, 3), round(s.worst, 3)
(2, 0.033, 0.117)
>>> score_weights(np.array([300.0, 315.0, 285.0]), np.zeros(3, int),
...               np.ones(3, bool), np.array([0.1])) < s
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from . import band

if TYPE_CHECKING:
    from .partition import GridAssignment, UnitGraph

__all__ = ["Score", "oversize_holding_more", "score", "score_weights"]


@dataclass(frozen=True, order=True)
class Score:
    """How good a plan is; smaller is better, compared field by field."""

    out: int
    excess: float
    moved: float
    worst: float
    cut: float = 0.0

    def as_dict(self) -> dict[str, float]:
        """The score as the plan's metrics say it."""
        return {"grids_out": self.out, "excess": self.excess, "moved": self.moved,
                "largest_deviation": self.worst, "cut_cost": self.cut}


def score_weights(weight: np.ndarray, community: np.ndarray, ordinary: np.ndarray,
                  tolerance: np.ndarray, *, extra_out: int = 0,
                  extra_excess: float = 0.0, cut: float = 0.0,
                  moved: float = 0.0) -> Score:
    """The score of grids given their weights.

    ``community`` (0..n-1) of each grid, ``ordinary`` which are judged,
    ``tolerance`` per community.
    """
    weight = np.asarray(weight, dtype=float)
    community = np.asarray(community, dtype=np.int64)
    ordinary = np.asarray(ordinary, dtype=bool)
    tolerance = np.asarray(tolerance, dtype=float)
    n = max(int(community.max(initial=-1)) + 1, len(tolerance))
    mean = band.community_means(weight, community, ordinary, n)
    judged = np.flatnonzero(ordinary)
    dev = np.abs(band.deviation(weight[judged], mean[community[judged]]))
    tol = tolerance[community[judged]]
    beyond = np.maximum(dev - tol - band.TOLERANCE_EPS, 0.0)
    out = int(band.out_of_band(dev, tol).sum()) + extra_out
    return Score(out, round(float(beyond.sum()) + extra_excess, 9), round(float(moved), 6),
                 round(float(dev.max(initial=0.0)), 9), round(float(cut), 6))


def score(assignment: GridAssignment, g: UnitGraph, tolerance: np.ndarray,
          building_unit: np.ndarray | None = None, *, with_cut: bool = True,
          reference: np.ndarray | None = None) -> Score:
    """The score of a plan: its grids (``assignment``) on the units of ``g``.

    ``tolerance`` is per community; ``building_unit`` (the unit of every
    building) tells the oversize grids that hold more than their heavy unit;
    ``reference`` (a re-partition's starting grid of every unit) counts the
    weight moved.
    """
    labels = assignment.labels
    n = assignment.n_grids
    weight = np.bincount(labels, weights=g.weight, minlength=n)
    community = np.asarray(assignment.community, dtype=np.int64)
    flag = np.asarray(assignment.flag, dtype=object)
    ordinary = flag == ""
    # a community is judged only where the partition gave it ordinary grids
    judged = np.isin(community, list(assignment.mean))
    extra_out, extra_excess = 0, 0.0
    if building_unit is not None:
        laden = oversize_holding_more(labels, flag, n, building_unit)
        if len(laden):
            mean = band.community_means(weight, community, ordinary,
                                        max(int(community.max()) + 1, len(tolerance)))
            heaviest = np.zeros(n)
            np.maximum.at(heaviest, labels, g.weight)
            extra_out = len(laden)
            extra_excess = float(np.nansum((weight[laden] - heaviest[laden])
                                           / mean[community[laden]]))
    cut = 0.0
    if with_cut and len(g.i):
        cut = float(g.cut[labels[g.i] != labels[g.j]].sum())
    return score_weights(weight, community, ordinary & judged,
                         np.broadcast_to(np.asarray(tolerance, dtype=float),
                                         (max(int(community.max(initial=0)) + 1,
                                              np.size(tolerance)),)),
                         extra_out=extra_out, extra_excess=extra_excess, cut=cut,
                         moved=0.0 if reference is None
                         else float(g.weight[labels != reference].sum()))


def oversize_holding_more(labels: np.ndarray, flag: np.ndarray, n: int,
                           building_unit: np.ndarray) -> np.ndarray:
    """Oversize grids holding buildings of more than one unit."""
    holds = np.zeros(len(labels), dtype=bool)
    holds[building_unit[building_unit >= 0]] = True
    count = np.bincount(labels[holds], minlength=n)
    return np.flatnonzero((flag == "oversize") & (count > 1))
