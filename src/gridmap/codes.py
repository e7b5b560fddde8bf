"""Hierarchical grid codes.

The layout follows the unit-grid codes of GB/T 30428.1 as used by local
standards (e.g. Beijing's): a 6-digit county-level division code, a 3-digit
sub-district number, a 3-digit community number and a 3-digit grid sequence,
15 digits in all.  Grids are numbered west to east, north to south within their
community.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["REGISTER_COLUMNS", "grid_code", "number_in_order", "reading_order",
           "register_of", "update_register"]


def grid_code(division: str, subdistrict: int, community: int, grid: int) -> str:
    """The 15-digit code of one grid.

    Examples
    --------
    >>> grid_code("310101", 2, 14, 7)
    '310101002014007'
    """
    division = str(division)
    if len(division) != 6 or not division.isdigit():
        msg = (
            f"division_code must be a 6-digit administrative division code (e.g. "
            f"'310101' for Shanghai Huangpu), got {division!r}."
        )
        raise ValueError(msg)
    for name, value in (("subdistrict", subdistrict), ("community", community), ("grid", grid)):
        if not 0 <= int(value) <= 999:
            msg = f"{name} number {value} does not fit the 3 digits of a grid code (0-999)."
            raise ValueError(msg)
    return f"{division}{int(subdistrict):03d}{int(community):03d}{int(grid):03d}"


def reading_order(x: np.ndarray, y: np.ndarray, band: float) -> np.ndarray:
    """Order of points read north to south in bands of ``band`` metres, west to east.

    Examples
    --------
    >>> reading_order(np.array([0., 10., 0.]), np.array([10., 10., 0.]), 5.0).tolist()
    [0, 1, 2]
    """
    if len(x) == 0:
        return np.array([], dtype=np.int64)
    row = np.floor((np.max(y) - np.asarray(y)) / max(band, 1e-9))
    return np.lexsort((np.asarray(x), row))


def number_in_order(
    groups: pd.Series, x: np.ndarray, y: np.ndarray, band: pd.Series
) -> np.ndarray:
    """Sequence number (1, 2, ...) of every item within its group, in reading order."""
    seq = np.zeros(len(groups), dtype=np.int64)
    gv = groups.to_numpy()
    for gval in pd.unique(gv):
        idx = np.flatnonzero(gv == gval)
        order = reading_order(x[idx], y[idx], float(band[gval]))
        seq[idx[order]] = np.arange(1, len(idx) + 1)
    return seq


#: the columns of a plan's code register
REGISTER_COLUMNS = ("code", "grid_id", "community_id", "status", "since", "until")


def register_of(grids: pd.DataFrame, *, since: str) -> pd.DataFrame:
    """The code register of a new plan: every grid's code, active since ``since``.

    Examples
    --------
    >>> g = pd.DataFrame({"code": ["310101001001001"], "grid_id": [1],
    ...                   "community_id": ["C1"]})
    >>> register_of(g, since="2026-12-03").to_dict("records")  # doctest: +NORMALIZE_WHITESPACE
    [{'code': '310101001001001', 'grid_id': 1, 'community_id': 'C1', 'status': 'active',
      'since': '2026-12-03', 'until': None}]
    """
    return pd.DataFrame({
        "code": grids["code"].astype(str).to_numpy(),
        "grid_id": grids["grid_id"].to_numpy(),
        "community_id": grids["community_id"].to_numpy() if "community_id" in grids
        else None,
        "status": "active", "since": since, "until": None})[list(REGISTER_COLUMNS)]


def update_register(register: pd.DataFrame, grids: pd.DataFrame, *,
                    today: str) -> pd.DataFrame:
    """The register after a re-partition: codes gone retired, new codes active.

    A code active before and not among ``grids`` is retired ``until`` today; a
    code of ``grids`` not in the register is added, active ``since`` today.
    Nothing is removed: a code once used stays in the register for ever.

    Examples
    --------
    >>> before = register_of(pd.DataFrame({"code": ["a1", "a2"], "grid_id": [1, 2],
    ...                                    "community_id": "C"}), since="2026-01-01")
    >>> after = update_register(before, pd.DataFrame({"code": ["a1", "a3"],
    ...     "grid_id": [1, 3], "community_id": "C"}), today="2026-12-03")
    >>> after[["code", "status", "until"]].values.tolist()
    [['a1', 'active', None], ['a2', 'retired', '2026-12-03'], ['a3', 'active', None]]
    """
    reg = register.copy()
    now = set(grids["code"].astype(str))
    gone = (reg["status"] == "active") & ~reg["code"].astype(str).isin(now)
    reg["until"] = reg["until"].astype(object)
    reg.loc[gone, "status"] = "retired"
    reg.loc[gone, "until"] = today
    new = grids[~grids["code"].astype(str).isin(set(reg["code"].astype(str)))]
    if len(new):
        reg = pd.concat([reg, register_of(new, since=today)], ignore_index=True)
    return reg.reset_index(drop=True)
