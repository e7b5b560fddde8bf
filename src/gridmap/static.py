"""Static maps and charts for reports (PNG, PDF, SVG), drawn with matplotlib.

Labels are bilingual ("工作量 workload"), so a CJK font is looked for: the
fonts matplotlib knows first, then the system's font folders (a font installed
after matplotlib built its cache is found too), or a font file the user names.
Without one the Chinese parts would print as empty boxes, so they are left out:
the maps are drawn in DejaVu Sans (matplotlib's own font) with English labels,
and one :class:`gridmap.GridmapWarning` says how to install a CJK font.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._errors import GridmapError, GridmapWarning
from .colours import CHART_COLOURS, RAMP, classify, grid_colours
from .io import to_metric

if TYPE_CHECKING:  # maps take a plan; the plan's module imports them, not the reverse
    from .plan import GridPlan

__all__ = ["CJK_FONTS", "FALLBACK_FONT", "cjk_font", "load_chart", "static_map"]

#: CJK fonts looked for, in order (Linux, Windows, macOS names)
CJK_FONTS: tuple[str, ...] = (
    "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "Source Han Sans CN",
    "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "Microsoft YaHei", "SimHei",
    "PingFang SC", "Heiti SC", "Hiragino Sans GB", "Noto Sans CJK JP", "Noto Serif CJK SC",
    "AR PL UMing CN", "Droid Sans Fallback",
)
_FILE_HINTS = ("cjk", "wqy", "wenquanyi", "simhei", "msyh", "pingfang", "sourcehan",
               "droidsansfallback", "uming", "ukai", "notosanssc")


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as exc:
        msg = "gridmap's static maps need matplotlib: pip install matplotlib"
        raise ImportError(msg) from exc
    return plt


def cjk_font(path: str | os.PathLike | None = None) -> str:
    """The name of a font that draws Chinese, registered with matplotlib.

    Parameters
    ----------
    path
        A font file (``.ttf``, ``.otf``, ``.ttc``) to use; else the first of
        :data:`CJK_FONTS` found, else any font file whose name says CJK.

    Raises
    ------
    gridmap.GridmapError
        When no CJK font is found, with how to install one, or ``path`` does
        not exist.  (:func:`static_map` and :func:`load_chart` do not stop
        when none is found: they draw English labels and warn.)
    """
    from matplotlib import font_manager as fm

    if path is not None:
        p = Path(path)
        if not p.exists():
            msg = f"font file {str(path)!r} does not exist; give a .ttf, .otf or .ttc file"
            raise GridmapError(msg)
        fm.fontManager.addfont(str(p))
        return fm.FontProperties(fname=str(p)).get_name()
    known = {f.name for f in fm.fontManager.ttflist}
    for name in CJK_FONTS:
        if name in known:
            return name
    # a font installed after matplotlib built its cache: register it now
    for f in sorted(fm.findSystemFonts()):
        if any(h in Path(f).name.lower().replace("-", "").replace("_", "") for h in _FILE_HINTS):
            try:
                fm.fontManager.addfont(f)
            except (OSError, RuntimeError, ValueError):
                continue
    known = {f.name for f in fm.fontManager.ttflist}
    for name in CJK_FONTS:
        if name in known:
            return name
    msg = (
        "no font that draws Chinese was found, so the static map's labels would "
        "print as empty boxes; install one (Debian/Ubuntu: apt-get install "
        "fonts-noto-cjk; Windows and macOS have one) or pass font='path/to/font.ttf'"
    )
    raise GridmapError(msg)


#: the font used when no CJK font is found (matplotlib ships it)
FALLBACK_FONT = "DejaVu Sans"

#: CJK ideographs, their punctuation and full-width forms: what a fallback drops
_CJK = re.compile(r"[\u2e80-\u2fdf\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff"
                  r"\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef]+")

NO_CJK_FONT = (
    "no font that draws Chinese was found, so the labels of static maps and charts "
    "are in English only (the Chinese parts are left out); for bilingual labels install "
    "one (Debian/Ubuntu: apt-get install fonts-noto-cjk; Windows and macOS have "
    "one) or pass font='path/to/font.ttf' (--font)"
)


def _font_or_fallback(path: str | os.PathLike | None) -> tuple[str, bool]:
    """The font to draw with and whether it draws Chinese.

    A CJK font (:func:`cjk_font`) if there is one; else :data:`FALLBACK_FONT`,
    with one :class:`gridmap.GridmapWarning`.  A named ``path`` that does not
    exist is still an error.
    """
    if path is not None:
        return cjk_font(path), True
    try:
        return cjk_font(), True
    except GridmapError:
        # stacklevel: this helper, static_map or load_chart, then the caller
        warnings.warn(NO_CJK_FONT, GridmapWarning, stacklevel=3)
        return FALLBACK_FONT, False


def _text(label: str, cjk: bool) -> str:
    """``label`` as it can be drawn.

    Whole with a CJK font, else without its Chinese parts ("工作量 workload" ->
    "workload").
    """
    if cjk:
        return label
    text = _CJK.sub(" ", label)
    text = re.sub(r"\s+([,.:;)])", r"\1", re.sub(r"\(\s+", "(", text))
    return re.sub(r"\s{2,}", " ", text).strip(" ,;:")


def _rc(name: str) -> dict[str, Any]:
    # concrete family names, not "sans-serif": artists keep them, so a figure
    # saved later, outside this context, still draws Chinese
    return {"font.family": [name, "DejaVu Sans"], "axes.unicode_minus": False}


def _band(plan: GridPlan) -> tuple[np.ndarray, np.ndarray, float, str]:
    g = plan.grids
    by = plan.params.get("by", "households")
    tol = float(plan.params.get("tolerance", 0.1))
    dev = g["deviation"].to_numpy(dtype=float) if "deviation" in g else np.zeros(len(g))
    flag = (g["flag"].fillna("").astype(str) != "").to_numpy() if "flag" in g \
        else np.zeros(len(g), dtype=bool)
    return dev, flag, tol, by


def load_chart(plan: GridPlan, *, font: str | os.PathLike | None = None, ax: Any = None) -> Any:
    """A chart of every grid's load against the tolerance band.

    Bars are each grid's deviation from its community mean on the balance
    field, sorted; the band ``±tolerance`` is shaded; grids out of the band are
    red, flagged grids (one unit heavier than a grid, islands) orange.

    Parameters
    ----------
    plan : GridPlan
    font
        A CJK font file; default: one found on the system (:func:`cjk_font`).
        With none, the labels are in English only, and a
        :class:`gridmap.GridmapWarning` says so.
    ax
        A matplotlib axes to draw in; default: a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        Save it with ``fig.savefig("load.png", dpi=150)``.

    See Also
    --------
    gridmap.chart.load_chart_svg : the same chart as SVG, for web pages.
    """
    name, cjk = _font_or_fallback(font)
    return _load_chart(plan, name, cjk, ax)


def _load_chart(plan: GridPlan, name: str, cjk: bool, ax: Any) -> Any:
    plt = _pyplot()
    dev, flag, tol, by = _band(plan)
    order = np.lexsort((np.arange(len(dev)), dev))
    with plt.rc_context(_rc(name)):
        if ax is None:
            fig, ax = plt.subplots(figsize=(8, 3.2), dpi=110)
        else:
            fig = ax.figure
        x = np.arange(len(dev))
        # the scale is set by the ordinary grids; flagged ones (heavier than a
        # grid by construction) are cut at the top and say so
        ordinary = np.abs(dev[~flag]) if (~flag).any() else np.array([tol])
        top = max(2 * tol, float(ordinary.max(initial=0))) * 100 * 1.15
        shown = np.clip(dev[order] * 100, -top, top)
        colours = np.where(flag[order], CHART_COLOURS["flagged"],
                           np.where(np.abs(dev[order]) > tol + 1e-9, CHART_COLOURS["out"],
                                    CHART_COLOURS["within"]))
        ax.axhspan(-tol * 100, tol * 100, color=CHART_COLOURS["band"], alpha=0.35, lw=0)
        ax.bar(x, shown, width=1.0, color=colours, lw=0)
        ax.axhline(0, color="#333", lw=0.6)
        ax.set_xlim(-0.5, len(dev) - 0.5)
        ax.set_ylim(-top, top)
        if (np.abs(dev) * 100 > top).any():
            ax.text(0.99, 0.97, "bars cut at the frame", transform=ax.transAxes,
                    ha="right", va="top", fontsize=7, color="#555")
        ax.set_xticks([])
        ax.set_xlabel(_text(f"网格 grids ({len(dev)}), sorted", cjk))
        ax.set_ylabel(_text(f"偏差 deviation (%), {by}", cjk))
        n_out = int(((np.abs(dev) > tol + 1e-9) & ~flag).sum())
        ax.set_title(_text(f"各网格负荷 Load of every grid against the ±{tol:.0%} band: "
                           f"{n_out} out, {int(flag.sum())} flagged", cjk), fontsize=10)
        fig.tight_layout()
    return fig


def chart_png(plan: GridPlan, *, font: str | os.PathLike | None = None) -> bytes:
    """:func:`load_chart` as PNG bytes."""
    plt = _pyplot()
    fig = load_chart(plan, font=font)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def static_map(
    plan: GridPlan,
    path: str | os.PathLike | None = None,
    *,
    kind: str = "coverage",
    font: str | os.PathLike | None = None,
    scheme: str = "Quantiles",
    k: int = 5,
    labels: bool = True,
    dpi: int = 200,
) -> Any:
    """A static coverage or workload map for a report.

    Parameters
    ----------
    plan : GridPlan
    path
        File to write (``.png``, ``.pdf``, ``.svg``); None to only return the figure.
    kind
        ``"coverage"``: grids in colours neighbours never share, outlined and
        labelled with their code; ``"workload"``: workload per grid, classed
        with mapclassify (``scheme``, ``k``), with the load chart below.
    font
        A CJK font file; default: one found on the system (:func:`cjk_font`).
        With none, the map is drawn in DejaVu Sans with the Chinese parts of
        its labels left out, and a :class:`gridmap.GridmapWarning` says so.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if kind not in ("coverage", "workload"):
        msg = f"kind must be 'coverage' or 'workload', got {kind!r}"
        raise GridmapError(msg)
    plt = _pyplot()
    name, cjk = _font_or_fallback(font)
    grids = plan.grids
    metric = to_metric(grids)
    problem = ~metric["within_tolerance"].astype(bool).to_numpy() \
        if "within_tolerance" in metric else np.zeros(len(metric), dtype=bool)
    with plt.rc_context(_rc(name)):
        if kind == "coverage":
            fig, ax = plt.subplots(figsize=(9, 9))
            metric.plot(ax=ax, color=grid_colours(metric), edgecolor="#333", linewidth=0.5)
            title = _text(f"网格覆盖图 Coverage: {len(grids)} grids", cjk)
        else:
            fig, (ax, cax) = plt.subplots(2, 1, figsize=(9, 11.5),
                                          gridspec_kw={"height_ratios": [3.2, 1]})
            values = metric["workload"].to_numpy(dtype=float)
            bins, classes = classify(values, scheme=scheme, k=k)
            colours = [RAMP[len(bins)][c] for c in classes]
            metric.plot(ax=ax, color=colours, edgecolor="#333", linewidth=0.5)
            _legend(ax, bins, values.min(), len(bins), cjk)
            _load_chart(plan, name, cjk, cax)
            title = _text(f"网格工作量 Workload per grid ({scheme}, {len(bins)} classes)",
                          cjk)
        if problem.any():
            metric[problem].boundary.plot(ax=ax, color="#d7191c", linewidth=1.6)
        if labels and len(metric) <= 400:
            pts = metric.geometry.representative_point()
            for code, pt in zip(metric["code"].astype(str), pts, strict=True):
                ax.annotate(_text(code[-3:], cjk), (pt.x, pt.y), ha="center",
                            va="center", fontsize=6)
        ax.set_title(title + ("; red outline: out of tolerance" if problem.any() else ""),
                     fontsize=11)
        ax.set_axis_off()
        ax.set_aspect("equal")
        fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=dpi)
    return fig


def _legend(ax: Any, bins: list[float], vmin: float, k: int, cjk: bool = True) -> None:
    from matplotlib.patches import Patch

    lows = [vmin, *bins[:-1]]
    handles = [Patch(facecolor=RAMP[k][i], edgecolor="#333",
                     label=f"{lows[i]:,.0f} – {bins[i]:,.0f}") for i in range(k)]
    ax.legend(handles=handles, title=_text("工作量 workload", cjk), loc="lower right",
              fontsize=8, title_fontsize=9, frameon=True)
