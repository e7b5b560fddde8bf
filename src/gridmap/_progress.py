"""Progress bars and the seconds and peak memory of every stage of a run.

Bars are tqdm's (``tqdm.auto``: a widget in a notebook when ipywidgets is
there, text on stderr otherwise).  Peak memory is the process's peak resident
size: on Linux the ``VmHWM`` of ``/proc/self/status``, reset at the start of
every stage (``/proc/self/clear_refs``), so each stage gets its own peak;
elsewhere ``resource.getrusage(RUSAGE_SELF).ru_maxrss``, the peak of the run so
far.  Both cost nothing measurable, unlike ``tracemalloc``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator, Sized
from typing import Any, TypeVar

__all__ = ["STAGES", "StageTimer", "bar", "peak_rss_mb", "want_progress"]

T = TypeVar("T")

#: the stages of a run, in order, as ``metrics["timings"]`` names them; ``plan``
#: is the assembly of the grids (dissolve, codes, outputs) between partition and
#: metrics
STAGES = ("read", "population", "units", "adjacency", "partition", "plan", "metrics",
          "maps", "write")


def peak_rss_mb() -> float | None:
    """Peak resident memory of this process in MB (since the last reset on Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        # kilobytes on Linux, bytes on macOS
        return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024
    except (ImportError, OSError):
        return None


def _reset_peak_rss() -> None:
    # Linux lets a process reset its high-water mark, so each stage gets its own peak
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
    except OSError:
        pass


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ip = shell.get_ipython()
    except AttributeError:
        return False
    return ip is not None and "IPKernelApp" in getattr(ip, "config", {})


def want_progress(progress: bool | None) -> bool:
    """Whether to draw bars: as asked, else (None) on a terminal or in a notebook."""
    if progress is not None:
        return bool(progress)
    try:
        tty = sys.stderr.isatty()
    except (AttributeError, ValueError):
        tty = False
    return tty or _in_notebook()


def bar(iterable: Iterable[T], *, total: int | None = None, desc: str = "",
        enabled: bool = False, min_items: int = 2) -> Iterable[T]:
    """``iterable`` with a tqdm bar on stderr when ``enabled`` (and it is worth one).

    The bar is transient (it disappears when done) so that only the stage bar stays.
    """
    if not enabled:
        return iterable
    n = total if total is not None else (len(iterable) if isinstance(iterable, Sized)
                                         else None)
    if n is not None and n < min_items:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=n, desc=desc, leave=False, file=sys.stderr,
                dynamic_ncols=True, mininterval=0.5)


class StageTimer:
    """Seconds (wall clock and CPU) and peak memory of each stage, and the stage bar.

    The timings are for ``metrics["timings"]``.

    ``stage(name)`` closes the stage running and opens ``name``; a stage opened
    again adds to its seconds and keeps the larger peak.  ``done()`` closes the
    last stage and returns the timings, ``{stage: {"seconds", "cpu_seconds",
    "peak_mb"}}``; CPU seconds tell a slow stage from a busy machine.

    Examples
    --------
    >>> t = StageTimer(progress=False)
    >>> t.stage("read"); t.stage("units")
    >>> sorted(t.done())
    ['read', 'units']
    """

    def __init__(self, progress: bool | None = False, *,
                 stages: tuple[str, ...] = STAGES) -> None:
        self.timings: dict[str, dict[str, float | None]] = {}
        self.progress = want_progress(progress)
        self._t = time.perf_counter()
        self._cpu = time.process_time()
        self._stage: str | None = None
        self._closed: set[str] = set()
        self._bar: Any = None
        if self.progress:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=len(stages), desc="gridmap", unit="stage",
                             file=sys.stderr, dynamic_ncols=True,
                             bar_format="{desc}: {n_fmt}/{total_fmt} stages "
                             "|{bar}| {elapsed}{postfix}")

    def stage(self, name: str) -> None:
        """Close the stage running (if any) and start ``name``."""
        self._close()
        self._stage = name
        if self._bar is not None:
            self._bar.set_postfix_str(name)
        _reset_peak_rss()
        self._t = time.perf_counter()
        self._cpu = time.process_time()

    def bar(self, iterable: Iterable[T], *, total: int | None = None,
            desc: str | None = None) -> Iterable[T]:
        """``iterable`` with a bar of the stage running (when bars are on)."""
        return bar(iterable, total=total, desc=desc or self._stage or "",
                   enabled=self.progress)

    def _close(self) -> None:
        if self._stage is None:
            return
        peak = peak_rss_mb()
        sec = time.perf_counter() - self._t
        cpu = time.process_time() - self._cpu
        # a stage this timer closed before adds up; one recorded elsewhere (the
        # write of to_file) is replaced by this measure of the same work
        old = self.timings.get(self._stage) if self._stage in self._closed else None
        if old is not None:
            sec += float(old["seconds"] or 0.0)
            cpu += float(old.get("cpu_seconds") or 0.0)
            if peak is not None and old["peak_mb"] is not None:
                peak = max(peak, float(old["peak_mb"]))
        self.timings[self._stage] = {
            "seconds": round(sec, 3),
            "cpu_seconds": round(cpu, 3),
            "peak_mb": round(peak, 1) if peak is not None else None,
        }
        if self._bar is not None and self._stage not in self._closed:
            self._bar.update(1)
        self._closed.add(self._stage)
        self._stage = None

    def done(self, *, close_bar: bool = False) -> dict[str, dict[str, float | None]]:
        """Close the stage running; the timings so far."""
        self._close()
        if close_bar:
            self.close()
        return self.timings

    def close(self) -> None:
        """Close the stage bar."""
        self._close()
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __iter__(self) -> Iterator[str]:
        return iter(self.timings)
