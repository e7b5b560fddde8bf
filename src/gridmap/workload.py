"""Workload per grid and the grid workers (网格员) it needs.

A grid worker's load is not households alone: staffing is set "by the number,
extent, characteristics and needs of the people served".  The workload of a
grid is a weighted sum of what it holds::

    workload = Σ weight[c] × grid[c]      over the terms c the plan has

and the workers it needs are ``max(1, ceil(workload / capacity))``, one
full-time worker per grid at least.  A term whose column the plan does not have
counts zero and is reported, so the same formula works on a plan with
households only and on one with the full population categories.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["DEFAULT_CAPACITY", "DEFAULT_WORKLOAD", "grid_workload"]

#: Default weights: one unit of load per household; floating residents and the
#: elderly (60+) need more visits than the register suggests (seed 000, 004),
#: half a household each; a shop or merchant two; a reported case one; each
#: km² of area fifty (patrol distance).  ``area_km2`` is the grid's own area.
DEFAULT_WORKLOAD: dict[str, float] = {
    "households": 1.0,
    "pop_floating": 0.5,
    "elderly": 0.5,
    "shops": 2.0,
    "cases": 1.0,
    "area_km2": 50.0,
}

#: Load one full-time grid worker carries (a 300-500 household urban grid).
DEFAULT_CAPACITY = 500.0


def grid_workload(
    grids: pd.DataFrame,
    *,
    weights: Mapping[str, float] | None = None,
    capacity: float = DEFAULT_CAPACITY,
    area_km2: Any = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Workload, workers and load per worker of every grid.

    Parameters
    ----------
    grids
        One row per grid with the count columns the weights name.
    weights
        Weight per column (default :data:`DEFAULT_WORKLOAD`); ``area_km2`` is
        the grid's area.
    capacity
        Load one worker carries; workers = max(1, ceil(workload / capacity)).
    area_km2
        Area of every grid in km² (for the ``area_km2`` term).

    Returns
    -------
    (pandas.DataFrame, dict)
        Columns ``workload``, ``workers``, ``workload_per_worker`` (same index
        as ``grids``), and a report: the weights, the capacity, the terms used
        and the terms the plan had no column for.

    Examples
    --------
    >>> import pandas as pd
    >>> g = pd.DataFrame({"households": [300, 640], "pop_floating": [100, 0]})
    >>> w, report = grid_workload(g, weights={"households": 1, "pop_floating": 0.5},
    ...                           capacity=500)
    >>> w["workload"].tolist(), w["workers"].tolist()
    ([350.0, 640.0], [1, 2])
    >>> report["missing"]
    []
    """
    from ._errors import GridmapError

    weights = dict(DEFAULT_WORKLOAD if weights is None else weights)
    if not (isinstance(capacity, (int, float)) and math.isfinite(capacity) and capacity > 0):
        msg = (f"worker capacity must be a positive number, got {capacity!r}; "
               f"the default is {DEFAULT_CAPACITY:g} load units per worker")
        raise GridmapError(msg)
    bad = {k: v for k, v in weights.items()
           if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0}
    if bad:
        msg = (f"workload weights must be non-negative numbers, got {bad}; "
               f"e.g. {{'households': 1.0, 'pop_floating': 0.5}}")
        raise GridmapError(msg)
    load = np.zeros(len(grids))
    used, missing = [], []
    for col, wgt in weights.items():
        if col == "area_km2" and area_km2 is not None:
            values = np.asarray(area_km2, dtype=float)
        elif col in grids.columns:
            values = pd.to_numeric(grids[col], errors="coerce").to_numpy(dtype=float)
        else:
            missing.append(col)
            continue
        load += wgt * np.nan_to_num(values)
        used.append(col)
    workers = np.maximum(1, np.ceil(load / capacity - 1e-9)).astype(int)
    out = pd.DataFrame(
        {"workload": load, "workers": workers, "workload_per_worker": load / workers},
        index=grids.index,
    )
    report = {"weights": weights, "capacity": float(capacity), "used": used,
              "missing": missing}
    return out, report
