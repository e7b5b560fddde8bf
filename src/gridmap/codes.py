"""Hierarchical grid codes.

The layout follows the unit-grid codes of GB/T 30428.1 as used by local
standards (e.g. Beijing's) and the statistical division codes (统计用区划代码):
a 6-digit county-level division code, a 3-digit sub-district part and a 3-digit
community part (together the community's official 12-digit code), then a 3-digit
grid sequence, 15 digits in all.  Grids are numbered west to east, north to
south within their community.

With official codes on the boundaries (:func:`official_codes`) a grid's code is
its community's code and the sequence; without, the sub-district and community
parts are gridmap's own running numbers, and the codes are provisional.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["REGISTER_COLUMNS", "grid_code", "number_in_order", "official_codes",
           "reading_order", "register_of", "update_register"]

#: the column of official community codes on the boundaries when none is named
CODE_COLUMN = "code"
#: the column of official sub-district codes on the boundaries, if any
SUBDISTRICT_CODE_COLUMN = "subdistrict_code"


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


def _as_code(value: Any) -> str | None:
    """A code as text: ``110101007015`` (a number read from a spreadsheet too)."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return None
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def official_codes(boundaries: pd.DataFrame, *, code_column: str | None,
                   division_code: str, names: list[Any]) -> list[str] | None:
    """The official 12-digit code of every community on ``boundaries``, checked.

    ``code_column`` names the column (default :data:`CODE_COLUMN` when the layer
    has one; None and no such column: no official codes, None returned).  Every
    code must be 12 digits, none missing, none twice; where the layer has
    sub-district codes (a :data:`SUBDISTRICT_CODE_COLUMN` column, or a
    ``subdistrict_id`` of 9 digits) a community's code must start with its
    sub-district's, and with ``division_code`` unless that is ``000000``.
    ``names`` are the communities' ids, for the messages.

    Examples
    --------
    >>> b = pd.DataFrame({"code": [110101007015, "110101007016"],
    ...                   "subdistrict_id": ["110101007", "110101007"]})
    >>> official_codes(b, code_column=None, division_code="000000", names=["a", "b"])
    ['110101007015', '110101007016']
    >>> official_codes(b.assign(code=["11010100701", "110101008016"]), code_column=None,
    ...                division_code="000000", names=["a", "b"])
    Traceback (most recent call last):
    ...
    gridmap._errors.LayerValidationError: 2 problems in the input:
      - the official community code (column 'code' of `boundaries`) must be 12 digits (6 county + 3 sub-district + 3 community, 统计用区划代码), got '11010100701' for community 'a'. Fix the codes, or name another column with code_column (--code-column).
      - the official code of community 'b', '110101008016', does not start with its sub-district's code '110101007'. Fix one of the two codes.
    """  # noqa: E501 - a doctest's exception message is one line
    from ._errors import LayerValidationError

    column = code_column or CODE_COLUMN
    if column not in boundaries.columns:
        if code_column is None:
            return None
        msg = (f"`boundaries` has no column {code_column!r} of official community codes "
               f"(code_column, --code-column); its columns are "
               f"{[c for c in boundaries.columns if c != 'geometry']}.")
        raise LayerValidationError(msg)
    codes = [_as_code(v) for v in boundaries[column].tolist()]
    where = f"column {column!r} of `boundaries`"
    problems: list[str] = []
    missing = [str(n) for n, c in zip(names, codes, strict=True) if c is None]
    if missing:
        problems.append(
            f"the official community code ({where}) is missing for {len(missing)} "
            f"communit{'y' if len(missing) == 1 else 'ies'} ({', '.join(missing[:5])}"
            f"{', ...' if len(missing) > 5 else ''}). Give every community its 12-digit "
            "code, or none (the codes are then provisional).")
    for n, c in zip(names, codes, strict=True):
        if c is not None and not (len(c) == 12 and c.isdigit()):
            problems.append(
                f"the official community code ({where}) must be 12 digits (6 county + 3 "
                f"sub-district + 3 community, 统计用区划代码), got {c!r} for community "
                f"{n!r}. Fix the codes, or name another column with code_column "
                "(--code-column).")
    seen: dict[str, Any] = {}
    for n, c in zip(names, codes, strict=True):
        if c is not None and c in seen:
            problems.append(f"communities {seen[c]!r} and {n!r} have the same official code "
                            f"{c!r}; every community needs its own.")
        elif c is not None:
            seen[c] = n
    subs: list[str | None] = [None] * len(codes)
    if SUBDISTRICT_CODE_COLUMN in boundaries.columns:
        subs = [_as_code(v) for v in boundaries[SUBDISTRICT_CODE_COLUMN].tolist()]
    elif "subdistrict_id" in boundaries.columns:
        subs = [s if s is not None and len(s) == 9 and s.isdigit() else None
                for s in (_as_code(v) for v in boundaries["subdistrict_id"].tolist())]
    for n, c, sub in zip(names, codes, subs, strict=True):
        if c is None or sub is None:
            continue
        if not (len(sub) == 9 and sub.isdigit()):
            problems.append(f"the sub-district code of community {n!r} must be 9 digits "
                            f"(6 county + 3 sub-district), got {sub!r} (column "
                            f"{SUBDISTRICT_CODE_COLUMN!r} of `boundaries`).")
        elif not c.startswith(sub):
            problems.append(f"the official code of community {n!r}, {c!r}, does not start "
                            f"with its sub-district's code {sub!r}. Fix one of the two "
                            "codes.")
    if division_code != "000000":
        wrong = [f"{n!r} ({c})" for n, c in zip(names, codes, strict=True)
                 if c is not None and not c.startswith(division_code)]
        if wrong:
            problems.append(
                f"the official codes of {len(wrong)} communit"
                f"{'y' if len(wrong) == 1 else 'ies'} ({', '.join(wrong[:3])}) do not start "
                f"with the division code {division_code!r} (division_code, "
                "--division-code). Fix the codes, or leave the division code out: it is "
                "then the first 6 digits of the communities' codes.")
    if problems:
        raise LayerValidationError(problems)
    return [str(c) for c in codes]


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
