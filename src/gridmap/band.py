"""The band round a community's mean: the one definition of balance (规模适度).

Every figure of balance in gridmap comes from here:

- a community's **mean** is the mean weight (on the balance field) of its
  *ordinary* grids: flagged grids (``oversize``, one indivisible unit heavier
  than a grid; ``island``, a part nothing connects to the rest) are exceptions
  and would drag the mean up or down; a community of flagged grids only is
  judged on all of them;
- a grid's **deviation** is its weight over its community's mean, minus one;
- a grid is **out of the band** when ``|deviation| > tolerance`` (with
  :data:`TOLERANCE_EPS` of slack for floating-point rounding);
- the **oversize exception**: a grid that is one indivisible unit (or one
  building) heavier than the band is not out; an oversize grid that also holds
  another unit is (:func:`oversize_exempt`).

Examples
--------
>>> import numpy as np
>>> w = np.array([300.0, 330.0, 270.0, 900.0])  # the last an oversize grid
>>> mean = community_means(w, np.zeros(4, dtype=int), np.array([1, 1, 1, 0], bool), 1)
>>> mean.tolist()
[300.0]
>>> dev = deviation(w, mean[[0, 0, 0, 0]])
>>> dev.round(2).tolist(), out_of_band(dev, 0.1).tolist()
([0.0, 0.1, -0.1, 2.0], [False, False, False, True])
"""

from __future__ import annotations

import numpy as np

__all__ = ["TOLERANCE_EPS", "community_means", "deviation", "out_of_band",
           "oversize_exempt"]

#: slack on the tolerance test, so that a deviation of exactly ``tolerance``
#: passes despite floating-point rounding
TOLERANCE_EPS = 1e-9


def community_means(weight: np.ndarray, community: np.ndarray, ordinary: np.ndarray,
                    n_communities: int) -> np.ndarray:
    """The mean weight of the ordinary grids of every community (0..n-1).

    Of all its grids where a community has no ordinary grid; NaN where it has none.
    """
    weight = np.asarray(weight, dtype=float)
    community = np.asarray(community, dtype=np.int64)
    ordinary = np.asarray(ordinary, dtype=bool)
    has_ordinary = np.bincount(community[ordinary], minlength=n_communities) > 0
    use = ordinary | ~has_ordinary[community]
    count = np.bincount(community[use], minlength=n_communities)
    total = np.bincount(community[use], weights=weight[use], minlength=n_communities)
    with np.errstate(divide="ignore", invalid="ignore"):
        return total / count


def deviation(weight: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Each grid's deviation from its community's mean: ``weight / mean - 1``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(weight, dtype=float) / np.asarray(mean, dtype=float) - 1.0


def out_of_band(dev: np.ndarray, tolerance: float | np.ndarray) -> np.ndarray:
    """Whether each deviation is outside ``±tolerance``.

    An undefined deviation (NaN) is not within it.
    """
    return ~(np.abs(np.asarray(dev, dtype=float)) <= np.asarray(tolerance) + TOLERANCE_EPS)


def oversize_exempt(single_unit: np.ndarray, dev: np.ndarray,
                    tolerance: float | np.ndarray) -> np.ndarray:
    """The grids the oversize exception covers.

    One indivisible unit (or one building) above the band.
    """
    return np.asarray(single_unit, dtype=bool) & (
        np.asarray(dev, dtype=float) > np.asarray(tolerance) + TOLERANCE_EPS)
