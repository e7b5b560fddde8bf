"""The budget of work the balancing may spend, in units of work, not seconds.

A unit of work is a fixed amount of the balancing's own counting: a spanning
tree built over the units of a region (charged by the region's size), a local
move weighed, a solver node of the exact re-cut.  The same input, seed and
effort do the same work and so give the same plan on any machine; a time limit
(``time_limit``) can be laid on top, and then the plan depends on the machine.

The presets (``effort="fast"``, ``"default"``, ``"thorough"``) are rates of work
per grid of the plan (:data:`EFFORT_PRESETS`, at least :data:`MIN_GRIDS` grids
counted), so that a small district is not searched as long as a large one; the
grid count is fixed by the input, so the budget is too.  A whole number is a
budget of its own, whatever the plan's size.  With the presets of
:data:`RENEWING` (``"thorough"``), the work the moves leave where no move helps
goes to the plans of the next seeds (:func:`gridmap.balance.balance`).

The low-level algorithms charge the budget that is active (:func:`active`) with
:func:`charge`, so that a move does not thread it through every call; a move
asks :func:`spent` to stop early.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

__all__ = ["EFFORT_PRESETS", "MIN_GRIDS", "RENEWING", "Work", "active", "charge", "left", "spent",
           "units_of"]

#: the work (units) of each preset per grid of the plan
EFFORT_PRESETS: dict[str, int] = {"fast": 30, "default": 200, "thorough": 2_000}
#: a plan of fewer grids is given the budget of this many
MIN_GRIDS = 10
#: the presets whose work left, where no move helps, goes to new plans of the next
#: seeds (:func:`gridmap.balance.balance`): the thorough effort would otherwise
#: stop with most of its budget unused; the others keep their time (a large
#: district with a grid no plan can bring in would spend all of it on new plans)
RENEWING: frozenset[str] = frozenset({"thorough"})


def units_of(effort: str | int, n_grids: int) -> int:
    """The units of work of an effort for a plan of ``n_grids`` grids.

    A preset's rate times the grids (at least :data:`MIN_GRIDS`), or the number
    itself.

    Examples
    --------
    >>> units_of("default", 196), units_of("default", 4), units_of(5000, 196)
    (39200, 2000, 5000)
    """
    if isinstance(effort, str):
        return EFFORT_PRESETS[effort] * max(int(n_grids), MIN_GRIDS)
    return int(effort)


@dataclass
class Work:
    """A budget of work: ``limit`` units (and ``time_limit`` seconds, if given)."""

    limit: float
    time_limit: float | None = None
    used: float = 0.0
    start: float = field(default_factory=time.perf_counter)
    timed_out: bool = False

    @property
    def spent(self) -> bool:
        """Whether the budget (or the time limit) is used up."""
        if self.used >= self.limit:
            return True
        if self.time_limit is not None and time.perf_counter() - self.start > self.time_limit:
            self.timed_out = True
            return True
        return False

    @property
    def left(self) -> float:
        """The units of work not yet used."""
        return max(self.limit - self.used, 0.0)


_ACTIVE: contextvars.ContextVar[Work | None] = contextvars.ContextVar("gridmap_work",
                                                                      default=None)


@contextlib.contextmanager
def active(work: Work) -> Iterator[Work]:
    """Charge what runs inside to ``work``."""
    token = _ACTIVE.set(work)
    try:
        yield work
    finally:
        _ACTIVE.reset(token)


def charge(units: float) -> None:
    """Charge ``units`` of work to the active budget (none: nothing)."""
    work = _ACTIVE.get()
    if work is not None:
        work.used += units


def left() -> float:
    """The units of work the active budget has left (none active: infinity)."""
    work = _ACTIVE.get()
    return float("inf") if work is None else work.left


def spent() -> bool:
    """Whether the active budget is used up (False when there is none)."""
    work = _ACTIVE.get()
    return work is not None and work.spent
