"""gridmap: community management grids (网格) for Chinese cities.

Partition a district's buildings, streets and population into balanced,
contiguous, street-bounded grids; measure them; map them.
"""

from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, version

from ._errors import (
    CRSMismatchError,
    DisconnectedUnitsError,
    EditError,
    GridmapError,
    GridmapWarning,
    InfeasiblePartitionError,
    LayerValidationError,
    OptionError,
    OutputFolderError,
)
from .compare import BasisComparison, compare_bases
from .delineation import delineate
from .edits import apply_edits
from .io import read_layer
from .metrics import evaluate
from .plan import GridPlan, read_plan
from .repartition import repartition

try:
    __version__ = version("gridmap")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0+unknown"

logging.getLogger("gridmap").addHandler(logging.NullHandler())

__all__ = [
    "BasisComparison",
    "CRSMismatchError",
    "DisconnectedUnitsError",
    "EditError",
    "GridPlan",
    "GridmapError",
    "GridmapWarning",
    "InfeasiblePartitionError",
    "LayerValidationError",
    "OptionError",
    "OutputFolderError",
    "__version__",
    "apply_edits",
    "compare_bases",
    "delineate",
    "evaluate",
    "read_layer",
    "read_plan",
    "repartition",
]
