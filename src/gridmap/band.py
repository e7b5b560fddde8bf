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
- a community's **scale** holds when its mean is within ``target ± tolerance``
  (规模适度: grids of the size the plan was made for, not only alike); where it
  does not, :func:`scale_counts` gives the grid count that brings it back (or,
  where no count can, the count a delineation gives);
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

__all__ = ["TOLERANCE_EPS", "community_means", "deviation", "heavier_than_a_grid",
           "in_scale", "out_of_band", "oversize_exempt", "scale_counts"]

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


def heavier_than_a_grid(weight: np.ndarray | float, target: np.ndarray | float,
                        tolerance: np.ndarray | float) -> np.ndarray:
    """Whether each unit is heavier than a grid may be: ``target × (1 + tolerance)``.

    Such a unit is a grid of its own, flagged ``oversize``.

    >>> heavier_than_a_grid([330.0, 331.0], 300, 0.1).tolist()
    [False, True]
    """
    return np.asarray(weight, dtype=float) > np.asarray(target, dtype=float) * (
        1 + np.asarray(tolerance, dtype=float))


def scale_counts(total: np.ndarray | float, n_grids: np.ndarray | int,
                 target: np.ndarray | float, tolerance: np.ndarray | float) -> np.ndarray:
    """The grid count each community needs for its scale, nearest to the one it has.

    ``total`` is the weight of a community's ordinary grids and ``n_grids`` their
    number.  Where some counts put the mean ``total / count`` within ``target ±
    tolerance``, the one of them nearest to ``n_grids``; where none does (a
    community too small or awkward for the target: its scale cannot hold), the
    count a delineation gives, ``round(total / target)`` (at least one).  A
    community with no weight needs the grids it has.

    Examples
    --------
    >>> scale_counts([43_887.0, 35_141.0, 435.0, 0.0], [110, 110, 1, 3], 300, 0.1).tolist()
    [133, 110, 1, 3]
    """
    total = np.asarray(total, dtype=float)
    n = np.asarray(n_grids, dtype=np.int64)
    t = np.asarray(target, dtype=float)
    tol = np.asarray(tolerance, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        lo = np.maximum(1, np.ceil(total / (t * (1 + tol)) - TOLERANCE_EPS))
        hi = np.where(tol < 1, np.floor(total / (t * (1 - tol)) + TOLERANCE_EPS), np.inf)
        fits = lo <= hi
        near = np.clip(n, lo, np.where(fits, hi, lo))
        rounded = np.maximum(1, np.round(total / t))
    need = np.where(fits, near, rounded)
    return np.where(total > 0, need, n).astype(np.int64)


def in_scale(mean: np.ndarray | float, target: np.ndarray | float,
             tolerance: np.ndarray | float) -> np.ndarray:
    """Whether each community's mean is within ``target ± tolerance``.

    >>> in_scale([320.0, 400.0, 150.0], 300, 0.1).tolist()
    [True, False, False]
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        return ~out_of_band(np.asarray(mean, dtype=float) / np.asarray(target, dtype=float)
                            - 1.0, tolerance)
