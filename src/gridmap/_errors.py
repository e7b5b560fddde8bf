"""Exceptions raised by gridmap.

Every error subclasses :class:`GridmapError` and a built-in (``ValueError`` or
``TypeError``) so that callers can catch either.
"""

from __future__ import annotations

__all__ = [
    "CRSMismatchError",
    "DisconnectedUnitsError",
    "EditError",
    "GridmapError",
    "GridmapWarning",
    "InfeasiblePartitionError",
    "LayerValidationError",
    "OptionError",
    "OutputFolderError",
]


class GridmapError(Exception):
    """Base class of every gridmap error."""


class GridmapWarning(UserWarning):
    """Input that gridmap repaired or worked around (and says so in the plan's notes)."""


class _ProblemsError(GridmapError, ValueError):
    """An error that lists every problem found, one message each."""

    #: what the problems are in, for the message's first line
    about = "the input"

    def __init__(self, problems: list[str] | str) -> None:
        if isinstance(problems, str):
            problems = [problems]
        self.problems = list(problems)
        if len(self.problems) == 1:
            msg = self.problems[0]
        else:
            msg = f"{len(self.problems)} problems in {self.about}:\n" + "\n".join(
                f"  - {p}" for p in self.problems
            )
        super().__init__(msg)


class LayerValidationError(_ProblemsError):
    """An input layer is unusable: empty, wrong geometry, missing column, bad values.

    ``problems`` holds every problem found, one message each, so that all of them
    can be fixed in one go.
    """


class OptionError(_ProblemsError):
    """An option has a value gridmap cannot use (a map scheme, a CRS, a font...).

    Raised before any work starts; ``problems`` lists every bad option.
    """

    about = "the options"


class EditError(_ProblemsError):
    """Edits drawn by hand (``edits.json``) that cannot be applied to the plan.

    Edits of another plan, a move whose ``from`` no longer holds, a unit or grid
    the plan does not have, or a result with a grid in pieces or empty;
    ``problems`` lists every one found.
    """

    about = "the edits"


class OutputFolderError(GridmapError, OSError):
    """The output folder cannot take this run's files.

    It is not writable, another run is writing to it, or it holds files of an earlier
    plan that this run would leave behind.
    """


class CRSMismatchError(LayerValidationError):
    """Layers have different or missing coordinate reference systems."""


class InfeasiblePartitionError(GridmapError, ValueError):
    """The requested partition cannot be made (e.g. a target above the total)."""


class DisconnectedUnitsError(GridmapError, ValueError):
    """Units form several parts that the island policy refuses to join."""
