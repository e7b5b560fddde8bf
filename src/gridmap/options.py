"""Options as objects: each a concept a planner knows, each checking its own values.

An option object is frozen and checks every value when it is made, so a bad
value is refused before any work starts, with what is wrong, the value seen and
how to fix it (:class:`~gridmap.OptionError`).  The command line builds the same
objects from its arguments, so an option is checked in one place.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._errors import OptionError

__all__ = ["MAP_SCHEMES", "TILE_PRESETS", "MapOptions", "check_crs"]

#: base maps known by name; anything else must be a tile URL template
TILE_PRESETS = ("none", "osm", "amap", "tencent")
#: the fewest and the most classes of a classed (choropleth) map
CLASSES_RANGE = (2, 7)


def _map_schemes() -> tuple[str, ...]:
    """mapclassify's classifiers that class values into ``k`` classes unaided
    (``UserDefined`` needs bins of its own)."""
    import mapclassify

    return tuple(c for c in mapclassify.CLASSIFIERS if c != "UserDefined")


#: classification schemes of the workload map (mapclassify's, by name)
MAP_SCHEMES: tuple[str, ...] = _map_schemes()


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class MapOptions:
    """How the maps of a plan are drawn: base map, classes, privacy, static output.

    Parameters
    ----------
    tiles
        Base map: ``None`` or ``"none"`` (default, draws offline), ``"osm"``,
        ``"amap"``, ``"tencent"``, or a tile URL template with ``{z}``, ``{x}``
        and ``{y}`` (or ``{-y}``), e.g. an intranet tile server.
    gcj02
        Shift the overlay to GCJ-02 for a GCJ-02 tile URL (None: automatic for
        ``amap`` and ``tencent``).
    buildings
        Draw the buildings on the coverage map: True, False, or None (only up to
        :data:`gridmap.render.BUILDINGS_SHOWN`).
    privacy_threshold
        Counts under this show as ``<N`` (a whole number of at least 1).
    scheme, classes
        mapclassify scheme (:data:`MAP_SCHEMES`, any case) and number of
        classes (2 to 7) of the workload map.
    png
        Also draw the static PNG maps and the load chart.
    font
        A font file (.ttf, .otf, .ttc) for the static maps' Chinese labels.

    Examples
    --------
    >>> MapOptions(scheme="quantiles").scheme
    'Quantiles'
    >>> MapOptions(classes=99)
    Traceback (most recent call last):
    ...
    gridmap._errors.OptionError: classes must be a whole number from 2 to 7, got 99 (--classes).
    """

    tiles: str | None = None
    gcj02: bool | None = None
    buildings: bool | None = None
    privacy_threshold: int = 5
    scheme: str = "Quantiles"
    classes: int = 5
    png: bool = False
    font: str | os.PathLike | None = None

    def __post_init__(self) -> None:
        problems = []
        tiles = self.tiles
        if isinstance(tiles, str) and tiles.strip().lower() == "none":
            tiles = None
        if tiles is not None:
            if not isinstance(tiles, str) or not tiles.strip():
                problems.append(f"tiles must be a preset or a tile URL, got {tiles!r}.")
            elif tiles not in TILE_PRESETS and not _is_tile_template(tiles):
                problems.append(
                    f"tiles {tiles!r} is neither a base map gridmap knows "
                    f"({', '.join(TILE_PRESETS)}) nor a tile URL template with {{z}}, "
                    "{x} and {y} (e.g. https://tiles.example.gov.cn/{z}/{x}/{y}.png) "
                    "(--tiles).")
        object.__setattr__(self, "tiles", tiles)
        scheme = self.scheme
        known = {s.lower(): s for s in MAP_SCHEMES}
        if not isinstance(scheme, str) or scheme.lower() not in known:
            why = (" needs class bounds of its own, which gridmap does not take"
                   if isinstance(scheme, str) and scheme.lower() == "userdefined" else
                   " is not a classification scheme")
            problems.append(f"scheme {scheme!r}{why}; use one of {', '.join(MAP_SCHEMES)} "
                            "(--scheme; default Quantiles).")
        else:
            object.__setattr__(self, "scheme", known[scheme.lower()])
        lo, hi = CLASSES_RANGE
        if not _whole(self.classes) or not lo <= self.classes <= hi:
            problems.append(f"classes must be a whole number from {lo} to {hi}, got "
                            f"{self.classes!r} (--classes).")
        if not _whole(self.privacy_threshold) or self.privacy_threshold < 1:
            problems.append(
                f"privacy_threshold must be a whole number of at least 1, got "
                f"{self.privacy_threshold!r}: counts under it show as '<N' "
                "(--privacy-threshold; default 5).")
        if self.font is not None:
            problem = _font_problem(self.font)
            if problem:
                problems.append(problem)
        if problems:
            raise OptionError(problems)


def _is_tile_template(url: str) -> bool:
    return "{z}" in url and "{x}" in url and ("{y}" in url or "{-y}" in url)


def _font_problem(path: str | os.PathLike) -> str | None:
    """What is wrong with a font file, or None when matplotlib can read it."""
    p = Path(path)
    if not p.is_file():
        return (f"font file {str(path)!r} does not exist; give a .ttf, .otf or .ttc "
                "file that draws Chinese (--font), e.g. "
                "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
    try:
        from matplotlib import ft2font

        ft2font.FT2Font(str(p))
    except ImportError:  # no matplotlib: the static maps say so when drawn
        return None
    except (OSError, RuntimeError, ValueError) as exc:
        return (f"font file {str(path)!r} is not a font matplotlib can read ({exc}); "
                "give a .ttf, .otf or .ttc file (--font)")
    return None


def check_crs(crs: Any) -> None:
    """Refuse a working CRS that is unknown or not projected in metres.

    Examples
    --------
    >>> check_crs("auto"); check_crs("EPSG:32651")
    >>> check_crs("EPSG:999999")
    Traceback (most recent call last):
    ...
    gridmap._errors.OptionError: crs 'EPSG:999999' is not a CRS PROJ knows (crs not found); give an EPSG code of a projected CRS in metres, e.g. EPSG:32651 (UTM 51N) or EPSG:4549 (CGCS2000 Gauss-Krüger CM 120E), or 'auto' (--crs; default auto).
    """
    if crs is None or (isinstance(crs, str) and crs == "auto"):
        return
    import pyproj

    hint = ("give an EPSG code of a projected CRS in metres, e.g. EPSG:32651 (UTM 51N) "
            "or EPSG:4549 (CGCS2000 Gauss-Krüger CM 120E), or 'auto' (--crs; default "
            "auto).")
    try:
        parsed = pyproj.CRS.from_user_input(crs)
    except pyproj.exceptions.CRSError as exc:
        why = "crs not found" if "not found" in str(exc) else str(exc).split(":")[-1].strip()
        raise OptionError(f"crs {crs!r} is not a CRS PROJ knows ({why}); {hint}") from None
    units = {ax.unit_name for ax in parsed.axis_info}
    if not parsed.is_projected or not units <= {"metre", "meter", "m"}:
        raise OptionError(f"crs {crs!r} ({parsed.name}) is not a projected CRS in "
                          f"metres; {hint}")
