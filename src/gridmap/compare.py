"""Grids drawn on the register against grids drawn on the people who live there.

人户分离: a fifth of China's people do not live where they are registered, and a
grid drawn on the household register (户籍) misses the floating population and
counts the absent.  :func:`compare_bases` draws the same district on each basis,
with the same target, and measures every plan's grids on the actual population
(实有人口): the grids of the register-based plan whose actual load is over the
band are the grid workers that plan overloads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .plan import GridPlan

__all__ = ["BasisComparison", "compare_bases"]


@dataclass(frozen=True)
class BasisComparison:
    """What :func:`compare_bases` returns.

    Attributes
    ----------
    plans : dict
        The plan drawn on each basis (``{"pop_registered": GridPlan, ...}``).
    grids : pandas.DataFrame
        One row per grid of every plan: ``basis``, ``grid_id``, ``code``, the
        value on its own basis, the ``reference`` value (actual population),
        ``load`` = reference / target, ``overloaded`` (load above
        1 + tolerance), ``underloaded`` (below 1 - tolerance), ``workers``.
    summary : pandas.DataFrame
        One row per basis: grids, grids overloaded and underloaded on the
        reference, the largest load, the share of the reference population in
        overloaded grids, and the max deviation on its own basis.
    """

    plans: dict[str, GridPlan]
    grids: pd.DataFrame
    summary: pd.DataFrame
    reference: str
    target: float
    tolerance: float

    def overloaded(self, basis: str = "pop_registered") -> pd.DataFrame:
        """The grids of the plan on ``basis`` whose reference load is over the band."""
        g = self.grids
        return g[(g["basis"] == basis) & g["overloaded"]].sort_values("load", ascending=False)


def compare_bases(
    buildings: Any,
    streets: Any = None,
    population: Any = None,
    *,
    bases: Sequence[str] = ("pop_registered", "pop_actual"),
    reference: str = "pop_actual",
    target: float = 900,
    tolerance: float = 0.1,
    encoding: str | None = None,
    **kwargs: Any,
) -> BasisComparison:
    """Delineate on each basis with the same target; measure all on the reference.

    Parameters
    ----------
    buildings, streets, population
        As for :func:`gridmap.delineate`; the population must carry every basis
        and the reference (e.g. ``pop_registered`` and ``pop_actual``).
    bases
        The balance fields to draw plans on (default: registered, then actual).
    reference
        The field the grid workers' real load is measured on (default actual).
    target, tolerance
        Target per grid and tolerance, the same for every basis (people per grid
        when the bases are populations).
    encoding
        The text encoding of the Shapefiles and CSVs read (e.g. ``"gbk"``), as
        for :func:`gridmap.delineate`.
    **kwargs
        Any other option of :func:`gridmap.delineate` (boundaries, seed, ...).

    Returns
    -------
    BasisComparison

    Examples
    --------
    Floating residents crowd the four eastern blocks; on the register every
    block looks the same:

    >>> import geopandas as gpd, shapely
    >>> from shapely import LineString
    >>> b = gpd.GeoDataFrame({"pop_registered": [100] * 8,
    ...                       "pop_actual": [100] * 4 + [200] * 4},
    ...     geometry=[shapely.box(x * 50 + 10, 10, x * 50 + 30, 30) for x in range(8)],
    ...     crs=32651)
    >>> s = gpd.GeoDataFrame({"highway": ["residential"] * 11},
    ...     geometry=[LineString([(v, -5), (v, 45)]) for v in range(0, 401, 50)]
    ...     + [LineString([(-5, v), (405, v)]) for v in (0, 40)], crs=32651)
    >>> c = compare_bases(b, s, target=400, tolerance=0.1)
    >>> c.summary[["grids", "overloaded"]].to_dict("index")
    {'pop_registered': {'grids': 2, 'overloaded': 1}, 'pop_actual': {'grids': 3, 'overloaded': 0}}
    >>> c.overloaded("pop_registered")[["value", "reference", "load"]].to_dict("records")
    [{'value': 400.0, 'reference': 800.0, 'load': 2.0}]
    """
    from ._errors import GridmapError
    from .delineation import delineate

    bases = list(dict.fromkeys(bases))
    if not bases:
        msg = "give at least one basis, e.g. bases=('pop_registered', 'pop_actual')"
        raise GridmapError(msg)
    groups = tuple(kwargs.pop("groups", ()))
    plans: dict[str, GridPlan] = {}
    rows, summary = [], []
    for basis in bases:
        # the other bases ride along as groups so that every plan reports them
        carry = tuple(x for x in (*bases, reference) if x != basis
                      and x not in ("households", "pop_actual"))
        plan = delineate(buildings, streets, population, by=basis, target=target,
                         tolerance=tolerance, groups=tuple(dict.fromkeys((*groups, *carry))),
                         encoding=encoding, **kwargs)
        plans[basis] = plan
        g = plan.grids
        if reference not in g or g[reference].isna().all():
            msg = (f"the plan on {basis!r} has no {reference!r} per grid: give the "
                   f"reference population (a column {reference!r})")
            raise GridmapError(msg)
        ref = g[reference].to_numpy(dtype=float)
        load = ref / target
        over = load > 1 + tolerance + 1e-9
        under = load < 1 - tolerance - 1e-9
        rows.append(pd.DataFrame({
            "basis": basis,
            "grid_id": g["grid_id"].to_numpy(),
            "code": g["code"].to_numpy(),
            "value": g[basis].to_numpy(dtype=float),
            "reference": ref,
            "load": load,
            "overloaded": over,
            "underloaded": under,
            "workers": g["workers"].to_numpy() if "workers" in g else np.nan,
        }))
        total = float(ref.sum())
        summary.append({
            "basis": basis,
            "grids": len(g),
            "overloaded": int(over.sum()),
            "underloaded": int(under.sum()),
            "max_load": float(load.max(initial=0.0)),
            "share_in_overloaded": float(ref[over].sum() / total) if total else 0.0,
            "max_abs_deviation_own_basis": plan.metrics.get("max_abs_deviation"),
        })
    table = pd.concat(rows, ignore_index=True)
    summ = pd.DataFrame(summary).set_index("basis")
    summ.index.name = None
    return BasisComparison(plans=plans, grids=table, summary=summ, reference=reference,
                           target=float(target), tolerance=float(tolerance))
