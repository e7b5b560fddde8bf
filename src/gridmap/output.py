"""The files of one run, put in place all together or not at all.

A run (``gridmap delineate``, ``repartition``, ``map``, or
:meth:`GridPlan.to_file <gridmap.GridPlan.to_file>`) writes its whole set of
files into a staging folder beside the output folder and moves them in at the
end, together.  Until then the output folder is exactly as it was: a failure,
an interrupt or a bad option at any step leaves a good plan already there
untouched.  A lock file in the folder makes a second run into it refuse at
once, and files of an earlier plan that this run would not replace (maps of
another plan beside a new ``plan.gpkg``) are refused, or removed with
``overwrite``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Collection, Iterator
from pathlib import Path
from types import TracebackType

from ._errors import OutputFolderError

__all__ = ["LOCK_FILE", "PLAN_OUTPUTS", "OutputFolder"]

#: every file a plan's run may write into its folder; a file of this list that a
#: run does not write belongs to an earlier plan
PLAN_OUTPUTS: tuple[str, ...] = (
    "plan.gpkg", "metrics.json", "coverage.html", "workload.html", "coverage.png",
    "workload.png", "load_chart.png", "changes.csv", "handover.csv", "diff.html",
    # the exports (gridmap.export)
    *(f"{layer}.{ext}" for layer in ("grids", "buildings")
      for ext in ("shp", "shx", "dbf", "prj", "cpg", "geojson")),
    "shapefile_fields.csv", "roster.xlsx", "roster_grids.csv", "roster_buildings.csv",
    # the rows of a register no building took (gridmap.register)
    "population_unmatched.csv",
)
#: the lock file that marks a folder as being written
LOCK_FILE = ".gridmap.lock"


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """SIGINT and SIGTERM held back while files are moved.

    So that a move is never cut in half; they are delivered at the end (where the
    platform allows).
    """
    held = (signal.SIGINT, signal.SIGTERM)
    try:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    except (AttributeError, ValueError, OSError):  # not on this platform or thread
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


class _Lock:
    """An exclusive lock on ``folder/.gridmap.lock``, held while a run writes."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / LOCK_FILE
        self.fd: int | None = None

    def acquire(self) -> None:
        try:
            import fcntl
        except ImportError:  # Windows: the file's existence is the lock
            fcntl = None  # type: ignore[assignment]
        for _ in range(20):
            if fcntl is None:
                try:
                    fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL)
                except FileExistsError:
                    self._refuse()
            else:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    os.close(fd)
                    self._refuse()
                # the lock is on this file only while the name still points at it
                # (the run before may have removed it between open and flock)
                try:
                    same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
                except FileNotFoundError:
                    same = False
                if not same:
                    os.close(fd)
                    continue
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()} {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
            self.fd = fd
            return
        raise OutputFolderError(f"could not lock {self.path.parent}: its lock file keeps "
                                "changing; is another gridmap run writing to it?")

    def _refuse(self) -> None:
        try:
            holder = self.path.read_text(encoding="utf-8").split()
        except OSError:
            holder = []
        who = (f" (process {holder[0]}, started {' '.join(holder[1:3])})"
               if len(holder) >= 3 else "")
        msg = (f"another gridmap run is writing to {self.path.parent}{who}; wait for it "
               f"to finish or choose another output folder. If no run is going on, "
               f"remove {self.path}.")
        raise OutputFolderError(msg)

    def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        os.close(self.fd)
        self.fd = None


class OutputFolder:
    """The output folder of one run: locked, staged, committed together.

    Parameters
    ----------
    folder
        The output folder (made if missing; removed again if the run fails and
        it was made for it).
    writes
        The files (names, or paths relative to ``folder``) this run will write.
        Files of :data:`PLAN_OUTPUTS` already in a folder this run writes a plan
        to, and not among them, belong to an earlier plan: refused unless
        ``overwrite``, then removed at the commit.
    overwrite
        Remove an earlier plan's files this run does not write; write into
        ``protect``.
    protect
        A folder this run must not write into unless ``overwrite`` (the folder of
        the plan a re-partition reads).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> out = Path(tempfile.mkdtemp()) / "plan"
    >>> with OutputFolder(out, writes=["metrics.json"]) as run:
    ...     _ = (run.staging / "metrics.json").write_text("{}")
    ...     _ = run.commit()
    >>> sorted(p.name for p in out.iterdir())
    ['metrics.json']
    """

    def __init__(self, folder: str | os.PathLike, *, writes: Collection[str],
                 overwrite: bool = False, protect: str | os.PathLike | None = None) -> None:
        self.folder = Path(folder)
        self.writes = [Path(w) for w in writes]
        self.overwrite = overwrite
        self.protect = Path(protect) if protect is not None else None
        self.staging = Path()
        self.committed = False
        self._made: list[Path] = []
        self._lock: _Lock | None = None
        self._stale: list[Path] = []

    # -- before the work -------------------------------------------------------
    def check(self) -> None:
        """Refuse a folder this run cannot write into, before any work."""
        f = self.folder
        if f.exists() and not f.is_dir():
            raise OutputFolderError(f"the output folder {f} is a file; give a folder "
                                    "(it is made if missing).")
        if (self.protect is not None and not self.overwrite and f.exists()
                and f.resolve() == self.protect.resolve()):
            raise OutputFolderError(
                f"the output folder {f} is the folder of the plan being read; write the "
                "new plan to another folder, or pass --overwrite (overwrite=True) to "
                "replace it there (the plan is read first, so nothing is lost if the "
                "run fails).")
        existing = f
        while not existing.exists():
            existing = existing.parent
        if not os.access(existing, os.W_OK | os.X_OK):
            raise OutputFolderError(f"cannot write to {existing} (permission denied); "
                                    "choose an output folder you can write to.")
        self._stale = self._earlier_plan_files()
        if self._stale and not self.overwrite:
            names = ", ".join(str(p.relative_to(f)) for p in self._stale)
            raise OutputFolderError(
                f"{f} holds files of an earlier plan that this run would not replace "
                f"({names}): beside the new plan they would describe another one. Pass "
                "--overwrite (overwrite=True) to remove them, or choose another output "
                "folder.")

    def _earlier_plan_files(self) -> list[Path]:
        ours = {self.folder / w for w in self.writes}
        # the folders this run writes a plan to (its plan.gpkg or metrics.json)
        plan_dirs = {(self.folder / w).parent for w in self.writes
                     if w.name in PLAN_OUTPUTS[:2]}
        return sorted(d / name for d in plan_dirs for name in PLAN_OUTPUTS
                      if (d / name).exists() and d / name not in ours)

    # -- the run ---------------------------------------------------------------
    def __enter__(self) -> OutputFolder:  # not typing.Self: that needs Python 3.11
        made = []
        p = self.folder
        while not p.exists():
            made.append(p)
            p = p.parent
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputFolderError(f"cannot make the output folder {self.folder}: "
                                    f"{exc.strerror or exc}") from None
        self._made = made
        try:
            self._lock = _Lock(self.folder)
            self._lock.acquire()
            self.check()
            self.staging = self._mkdtemp("new")
        except BaseException:
            self._cleanup()
            raise
        return self

    def _mkdtemp(self, what: str) -> Path:
        """A unique temporary folder beside the output folder.

        Inside it where its parent cannot be written; on the same file system, so moves
        are atomic.
        """
        name = self.folder.resolve().name or "out"
        for where in (self.folder.resolve().parent, self.folder):
            try:
                return Path(tempfile.mkdtemp(prefix=f".{name}.gridmap-{what}-", dir=where))
            except OSError:
                continue
        raise OutputFolderError(f"cannot make a temporary folder beside {self.folder}")

    def commit(self) -> list[Path]:
        """Move every staged file into the folder together.

        Remove an earlier plan's files left over (with ``overwrite``).  On any failure
        the folder is put back as it was.  Returns the files written.
        """
        staged = sorted(p for p in self.staging.rglob("*") if p.is_file())
        with signals_deferred():
            backup = self._mkdtemp("old")
            moved_in: list[Path] = []
            saved: list[tuple[Path, Path]] = []
            try:
                for rel in [p.relative_to(self.folder) for p in self._stale] + \
                        [p.relative_to(self.staging) for p in staged]:
                    dest = self.folder / rel
                    if dest.exists():
                        keep = backup / rel
                        keep.parent.mkdir(parents=True, exist_ok=True)
                        os.replace(dest, keep)
                        saved.append((keep, dest))
                for src in staged:
                    dest = self.folder / src.relative_to(self.staging)
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(src, dest)
                    moved_in.append(dest)
            except BaseException:
                for dest in moved_in:
                    with contextlib.suppress(OSError):
                        dest.unlink()
                for keep, dest in saved:
                    with contextlib.suppress(OSError):
                        os.replace(keep, dest)
                raise
            finally:
                shutil.rmtree(backup, ignore_errors=True)
            self.committed = True
        return moved_in

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        with signals_deferred():
            self._cleanup()

    def _cleanup(self) -> None:
        if self.staging != Path():
            shutil.rmtree(self.staging, ignore_errors=True)
        if self._lock is not None:
            self._lock.release()
        if not self.committed:
            # a folder made for this run goes again with the run
            for p in self._made:
                with contextlib.suppress(OSError):
                    p.rmdir()
