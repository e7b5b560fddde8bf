"""The result of a delineation: grids, buildings with their grid, units, metrics."""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import networkx as nx
import pandas as pd

from .changes import id_text
from .datum import from_wgs84, to_wgs84
from .options import UNIT_MEASURES

if TYPE_CHECKING:
    from .options import Options

__all__ = ["METRICS_FILE", "PLAN_FILE", "GridPlan", "read_plan"]

PLAN_FILE = "plan.gpkg"
METRICS_FILE = "metrics.json"
#: the rows of a population table that matched no building
UNMATCHED_FILE = "population_unmatched.csv"
#: the tables a plan is written to PostGIS as (those it has): the layers of
#: plan.gpkg, the code register, the register's unmatched rows and metrics.json
PLAN_TABLES = ("grids", "buildings", "units", "streets", "codes", "population_unmatched",
               "metrics")


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        try:
            return obj.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


@dataclass(frozen=True)
class GridPlan:
    """A grid plan: what :func:`gridmap.delineate` returns.

    Attributes
    ----------
    grids : geopandas.GeoDataFrame
        One row per grid, in the input CRS: ``grid_id``, ``code``, ``kind``,
        ``community_id``, ``subdistrict_id``, the population fields, ``n_buildings``,
        ``flag`` (``oversize``: one indivisible unit heavier than a grid;
        ``island``: a part nothing else connects to), ``deviation`` from the
        community mean, and the quality figures of :func:`gridmap.metrics.evaluate`.
    buildings : geopandas.GeoDataFrame
        Every input building with its original columns and index, plus
        ``grid_id``, ``unit_id`` and the population fields gridmap used.
    units : geopandas.GeoDataFrame
        The units partitioned (street blocks and cells of split blocks) with
        their ``grid_id``.
    metrics : dict
        Overall figures (balance, contiguity, compactness, street share, gap,
        overlap, counts), plus the parameters and the reports of every stage.
    graph : networkx.Graph
        Adjacency of the units (node = unit position).
    area : geopandas.GeoSeries
        The area the grids cover.
    streets : geopandas.GeoDataFrame or None
        The streets inside the area with their ``class``, for the maps.
    previous : GridPlan or None
        For a plan made by :func:`gridmap.repartition`: the plan it re-balanced,
        for :attr:`handover` and :meth:`diff_map`.  Not written to file.
    options : gridmap.options.Options or None
        Every option the plan was made with (written to ``metrics.json`` as
        ``options`` and given back by :func:`read_plan`); None for a plan
        written before options were stored.
    codes : pandas.DataFrame or None
        The code register: every code the plan's grids ever had (``code``,
        ``grid_id``, ``community_id``, ``status`` active or retired, ``since``,
        ``until``), the table ``codes`` of ``plan.gpkg``.  A re-partition retires
        the codes of grids gone and never hands them out again.  None for a plan
        written before the register was kept (its grids' codes, all active).
    unmatched : pandas.DataFrame or None
        The rows of a population table (a register) that matched no building,
        each with its ``row`` in the file and its ``reason``; written as
        ``population_unmatched.csv``.  None when the population was no table.
    """

    grids: gpd.GeoDataFrame
    buildings: gpd.GeoDataFrame
    units: gpd.GeoDataFrame
    metrics: dict[str, Any]
    graph: nx.Graph = field(repr=False)
    area: gpd.GeoSeries = field(repr=False)
    streets: gpd.GeoDataFrame | None = field(default=None, repr=False)
    previous: GridPlan | None = field(default=None, repr=False)
    options: Options | None = field(default=None, repr=False)
    codes: pd.DataFrame | None = field(default=None, repr=False)
    unmatched: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def plan_id(self) -> str:
        """The plan's id: a hash of which grid every unit and building is in.

        Written to ``metrics.json`` and to the table ``plan`` of ``plan.gpkg``;
        :func:`gridmap.apply_edits` checks edits against it, so that edits drawn on
        one plan are never applied to another.  Two plans have the same id when
        every unit and building is in the same grid under the same code.
        """
        return plan_fingerprint(self.grids, self.units, self.buildings,
                                self.params.get("id_column"))

    @property
    def params(self) -> dict[str, Any]:
        """The parameters the plan was made with."""
        return self.metrics.get("params", {})

    @property
    def timings(self) -> dict[str, dict[str, float | None]]:
        """Seconds and peak memory (MB) of every stage of the run.

        ``{stage: {"seconds": s, "cpu_seconds": s, "peak_mb": mb}}`` for read,
        population, units,
        adjacency, partition, plan (dissolving and coding the grids), metrics
        and, once written by :meth:`to_file` or the command line, write and maps;
        the same as ``metrics["timings"]``.  Peak memory is the process's peak
        resident size during the stage (see :mod:`gridmap._progress`).
        """
        return self.metrics.get("timings", {})

    @property
    def violations(self) -> pd.DataFrame:
        """Grids outside the balance tolerance, with the reason."""
        g = self.grids
        bad = g[~g["within_tolerance"].astype(bool)]
        return pd.DataFrame(bad.drop(columns="geometry"))

    def __repr__(self) -> str:
        m = self.metrics

        def pct(key: str, digits: int = 1) -> str:
            v = m.get(key)
            return "n/a" if v is None else f"{v:.{digits}%}"

        pp = m.get("polsby_popper_mean")
        lines = [
            (f"GridPlan: {len(self.grids)} grids, {len(self.buildings)} buildings, "
            f"{len(self.units)} units"),
            (f"  balance by {self.params.get('by')}: target {self.params.get('target')}"
             f"{' m²' if self.params.get('by') in UNIT_MEASURES else ''}, "
            f"tolerance ±{self.params.get('tolerance', 0):.0%}; max deviation "
            f"{pct('max_abs_deviation')}, "
            f"{m.get('n_grids_out_of_tolerance', m.get('n_out_of_tolerance', 0))} grid(s) out "
            "of tolerance"
            + (f", {m['n_communities_out_of_scale']} community(ies) out of scale (mean "
               "beyond target ± tolerance)" if m.get("n_communities_out_of_scale") else "")),
            (f"  contiguous: {m.get('contiguous')}, mean Polsby-Popper "
            f"{'n/a' if pp is None else f'{pp:.2f}'}, street share {pct('street_share')}"),
            f"  gap {pct('gap_share', 4)}, overlap {pct('overlap_share', 4)}",
        ]
        return "\n".join(lines)

    @property
    def handover(self) -> pd.DataFrame:
        """Buildings that change grid, for the grid workers.

        See :func:`gridmap.repartition.handover`.
        """
        from .changes import handover

        if self.previous is None:
            msg = ("this plan has no previous plan to compare with: the handover table "
                   "is for plans made by gridmap.repartition()")
            raise ValueError(msg)
        return handover(self.previous, self)

    def diff_map(self, **kwargs: Any) -> Any:
        """What a re-partition changed, on a map; see :func:`gridmap.render.diff_map`."""
        from .render import diff_map

        return diff_map(self, **kwargs)

    def coverage_map(self, **kwargs: Any) -> Any:
        """A self-contained folium coverage map; see :func:`gridmap.render.coverage_map`."""
        from .render import coverage_map

        return coverage_map(self, **kwargs)

    def workload_map(self, **kwargs: Any) -> Any:
        """A self-contained folium workload map; see :func:`gridmap.render.workload_map`."""
        from .render import workload_map

        return workload_map(self, **kwargs)

    def load_chart(self, **kwargs: Any) -> Any:
        """The load of every grid against the band; see :func:`gridmap.static.load_chart`."""
        from .static import load_chart

        return load_chart(self, **kwargs)

    def static_map(self, path: str | os.PathLike | None = None, **kwargs: Any) -> Any:
        """A static (PNG/PDF/SVG) map; see :func:`gridmap.static.static_map`."""
        from .static import static_map

        return static_map(self, path, **kwargs)

    def export(self, folder: str | os.PathLike, formats: str | Sequence[str] = (
            "shp", "geojson", "xlsx", "csv"), *, encoding: str = "GBK",
            datum: str | None = None, address: str | None = None) -> list[Path]:
        """Write the plan as Shapefile, GeoJSON and the grid roster (xlsx, csv).

        See :func:`gridmap.export.export_plan`; returns the files written.
        """
        from .export import export_plan

        return export_plan(self, folder, formats, encoding=encoding, datum=datum,
                           address=address)

    def editor(self, *, height: int = 640) -> Any:
        """The page to adjust this plan by hand, inline in Jupyter.

        The page ``gridmap edit`` writes (:func:`gridmap.editor.editor_page`), in
        an ``<iframe>`` ``height`` pixels high; its "Save edits" downloads
        ``edits.json`` for :func:`gridmap.apply_edits`.  Without IPython, the
        page's HTML.
        """
        import html

        from .editor import editor_page

        page = editor_page(self)
        try:
            from IPython.display import HTML
        except ImportError:
            return page
        return HTML(f'<iframe srcdoc="{html.escape(page, quote=True)}" '
                    f'style="width:100%;height:{int(height)}px;border:0"></iframe>')

    def to_postgis(self, target: Any) -> list[str]:
        """Write the plan to a PostGIS schema as tables, in one transaction.

        ``target``: ``postgresql://user:pw@host/db#schema`` or ``(engine,
        "schema")``.  The tables are :data:`PLAN_TABLES` (``metrics`` holds
        ``metrics.json`` in one row); only they are replaced, and a failure
        leaves the schema as it was.  :func:`read_plan` reads it back.  Returns
        the tables written.
        """
        from .postgis import write_tables

        layers = self._layers(units=True)
        datum = self.params.get("output_datum") or "wgs84"
        tables: dict[str, pd.DataFrame | None] = {
            name: (from_wgs84(gdf, datum) if datum != "wgs84" and gdf is not None
                   else gdf) for name, gdf in layers.items()}
        tables["codes"] = self.codes
        tables["population_unmatched"] = self.unmatched
        tables["metrics"] = pd.DataFrame({"metrics": [json.dumps(
            _jsonable(self.metrics), ensure_ascii=False)]})
        return write_tables(target, tables)

    def _layers(self, *, units: bool) -> dict[str, gpd.GeoDataFrame | None]:
        """The plan's layers as written (None: a layer it does not have)."""
        return {"grids": self.grids,
                "buildings": self.buildings if len(self.buildings) else None,
                "units": self.units if units and len(self.units) else None,
                "streets": self.streets if self.streets is not None
                and len(self.streets) else None}

    def _write_metrics(self, folder: str | os.PathLike, *,
                       timings: dict[str, Any] | None = None,
                       notes: list[str] | None = None) -> Path:
        """Write ``metrics.json`` into ``folder`` (a run's staging folder).

        The plan's metrics with the ``timings`` of the run's later stages (write, maps)
        and its later ``notes`` added; the plan itself is not changed.
        """
        # the id of the plan as it is now (one read back and changed has another)
        metrics = {"plan_id": self.plan_id,
                   **{k: v for k, v in self.metrics.items() if k != "plan_id"}}
        if timings:
            metrics["timings"] = {**self.timings, **timings}
        if notes:
            metrics["notes"] = [*metrics.get("notes", []),
                                *(n for n in notes if n not in metrics.get("notes", []))]
        path = Path(folder) / METRICS_FILE
        path.write_text(json.dumps(_jsonable(metrics), ensure_ascii=False, indent=2),
                        encoding="utf-8")
        return path

    def _write_layers(self, folder: str | os.PathLike, *,
                      units: bool = True) -> dict[str, float | None]:
        """Write ``plan.gpkg`` into ``folder`` (a run's staging folder).

        Returns the seconds, CPU seconds and peak memory it took (the stage ``write``).
        """
        from ._progress import _reset_peak_rss, peak_rss_mb

        t0, c0 = time.perf_counter(), time.process_time()
        _reset_peak_rss()
        gpkg = Path(folder) / PLAN_FILE
        layers = self._layers(units=units)
        layers["buildings"] = self.buildings  # the layer is there, if empty
        datum = self.params.get("output_datum") or "wgs84"
        for name, gdf in layers.items():
            if gdf is None:
                continue
            # the files in the datum the layers came in (read_plan turns them back)
            shown = from_wgs84(gdf, datum) if datum != "wgs84" else gdf
            shown.to_file(gpkg, layer=name, driver="GPKG", engine="pyogrio")
        if self.unmatched is not None:
            # nothing lost: the register rows no building took, for the office to fix
            self.unmatched.to_csv(Path(folder) / UNMATCHED_FILE, index=False,
                                  encoding="utf-8-sig")
        import pyogrio

        # the id beside the layers too: a plan.gpkg copied without its
        # metrics.json still says which plan it is
        pyogrio.write_dataframe(pd.DataFrame({"plan_id": [self.plan_id]}), gpkg,
                                layer="plan", driver="GPKG")
        if self.codes is not None:

            # an attribute table: every code ever used, active or retired
            pyogrio.write_dataframe(pd.DataFrame(self.codes), gpkg, layer="codes",
                                    driver="GPKG")
        peak = peak_rss_mb()
        return {
            "seconds": round(time.perf_counter() - t0, 3),
            "cpu_seconds": round(time.process_time() - c0, 3),
            "peak_mb": round(peak, 1) if peak is not None else None,
        }

    def to_file(self, out_dir: str | os.PathLike, *, units: bool = True,
                overwrite: bool = False) -> Path:
        """Write ``plan.gpkg`` and ``metrics.json``, together or not at all.

        ``plan.gpkg`` has the layers ``grids``, ``buildings``, ``units`` and,
        when the plan has streets, ``streets``, and the table ``codes`` (the
        code register).

        Both files are written to a temporary folder beside ``out_dir`` and moved
        into place together at the end (:class:`gridmap.output.OutputFolder`):
        a failure or an interrupt leaves ``out_dir`` as it was.  Maps or tables
        of an earlier plan in ``out_dir`` (``coverage.html``, ``changes.csv``...)
        would describe another plan beside this one: they are refused
        (:class:`~gridmap.OutputFolderError`, naming them) unless ``overwrite``,
        which removes them.

        Returns the folder written.
        """
        from .output import OutputFolder

        files = [PLAN_FILE, METRICS_FILE] + ([UNMATCHED_FILE] if self.unmatched is not None
                                             else [])
        with OutputFolder(out_dir, writes=files, overwrite=overwrite) as run:
            written = self._write_layers(run.staging, units=units)
            self._write_metrics(run.staging, timings={"write": written})
            run.commit()
        return Path(out_dir)


def plan_fingerprint(grids: pd.DataFrame, units: pd.DataFrame, buildings: pd.DataFrame,
                     id_column: str | None = None) -> str:
    """The id of a plan: 16 hex digits of a SHA-256 of its assignment.

    Over the grids' ids and codes, every unit's grid and every building's id,
    unit and grid, as text (so that a plan read back from its files has the id
    it was written with); geometry is left out.
    """
    digest = hashlib.sha256()
    id_col = id_column if id_column in buildings.columns else None
    for frame, cols in ((grids, ["grid_id", "code"]), (units, ["unit_id", "grid_id"]),
                        (buildings, [c for c in (id_col, "unit_id", "grid_id") if c])):
        have = [c for c in cols if c in frame.columns]
        for c in have:
            values = pd.Series(frame[c]).astype(object)
            text = values.map(id_text)
            digest.update(c.encode())
            digest.update("\x1f".join(text.tolist()).encode())
    return digest.hexdigest()[:16]


def read_plan(path: str | os.PathLike) -> GridPlan:
    """Read a plan written by :meth:`GridPlan.to_file` (its folder or its ``plan.gpkg``).

    The unit graph is rebuilt from the units layer; ``metrics.json`` is read when
    it sits beside the GeoPackage.  A plan written to PostGIS is read from its
    schema, ``postgresql://...#schema`` (as :meth:`GridPlan.to_postgis` wrote it).

    Examples
    --------
    >>> import geopandas as gpd, shapely, tempfile, gridmap
    >>> from shapely import LineString
    >>> b = gpd.GeoDataFrame({"households": [100] * 4},
    ...     geometry=[shapely.box(x * 50 + 10, 10, x * 50 + 30, 30) for x in range(4)],
    ...     crs=32651)
    >>> s = gpd.GeoDataFrame({"highway": ["residential"] * 7},
    ...     geometry=[LineString([(v, -5), (v, 45)]) for v in (0, 50, 100, 150, 200)]
    ...     + [LineString([(-5, v), (205, v)]) for v in (0, 40)], crs=32651)
    >>> folder = gridmap.delineate(b, s, target=200).to_file(tempfile.mkdtemp())
    >>> len(read_plan(folder).grids)
    2
    """
    from ._errors import LayerValidationError
    from .postgis import is_database

    if is_database(path):
        return _read_plan_from_database(path)
    p = Path(path)
    gpkg = p / PLAN_FILE if p.is_dir() else p
    if not gpkg.exists():
        msg = f"no plan at {str(path)!r}: expected a folder holding {PLAN_FILE} or the file"
        raise LayerValidationError(msg)
    import pyogrio

    layers = {str(n) for n in pyogrio.list_layers(gpkg)[:, 0]}
    if "grids" not in layers:
        msg = f"{gpkg} has no layer 'grids' (layers: {sorted(layers)}); is it a gridmap plan?"
        raise LayerValidationError(msg)

    def layer(name: str) -> gpd.GeoDataFrame | None:
        return gpd.read_file(gpkg, layer=name, engine="pyogrio") if name in layers else None

    metrics_path = gpkg.parent / METRICS_FILE
    metrics = (json.loads(metrics_path.read_text(encoding="utf-8"))
               if metrics_path.exists() else {})
    codes = (pyogrio.read_dataframe(gpkg, layer="codes", read_geometry=False)
             if "codes" in layers else None)
    unmatched_path = gpkg.parent / UNMATCHED_FILE
    unmatched = (pd.read_csv(unmatched_path, encoding="utf-8-sig")
                 if unmatched_path.exists() else None)
    grids = layer("grids")
    assert grids is not None
    return plan_from_layers(grids, layer("buildings"), layer("units"), layer("streets"),
                            metrics, codes, unmatched)


def _read_plan_from_database(source: Any) -> GridPlan:
    """A plan written by :meth:`GridPlan.to_postgis` (``postgresql://...#schema``)."""
    from ._errors import LayerValidationError
    from .postgis import read_tables

    tables = read_tables(source, PLAN_TABLES)
    if "grids" not in tables:
        msg = f"no plan in PostGIS at {source!r}: the schema has no table 'grids'."
        raise LayerValidationError(msg)
    metrics = json.loads(tables["metrics"]["metrics"].iloc[0]) if "metrics" in tables \
        else {}
    return plan_from_layers(tables["grids"], tables.get("buildings"), tables.get("units"),
                            tables.get("streets"), metrics, tables.get("codes"),
                            tables.get("population_unmatched"))


def plan_from_layers(grids: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame | None,
                     units: gpd.GeoDataFrame | None, streets: gpd.GeoDataFrame | None,
                     metrics: dict[str, Any], codes: pd.DataFrame | None,
                     unmatched: pd.DataFrame | None = None) -> GridPlan:
    """A plan from its layers as written (a GeoPackage's, or PostGIS tables).

    Layers written in a web-map datum are turned back to WGS84; the unit graph is
    rebuilt from the units.
    """
    import shapely

    buildings = buildings if buildings is not None else gpd.GeoDataFrame(
        geometry=[], crs=grids.crs)
    units = units if units is not None else gpd.GeoDataFrame(geometry=[], crs=grids.crs)
    datum = metrics.get("params", {}).get("output_datum") or "wgs84"
    if datum != "wgs84":
        # written in the datum its layers came in: the plan works in WGS84
        grids, buildings, units = (to_wgs84(g, datum) for g in (grids, buildings, units))
        streets = to_wgs84(streets, datum) if streets is not None else None
    graph: nx.Graph[int] = nx.Graph()
    if len(units):
        from .adjacency import build_adjacency
        from .io import to_metric

        metric = to_metric(units)
        graph = build_adjacency(metric.geometry.values).to_networkx()
    area = gpd.GeoSeries([shapely.union_all(grids.geometry.values)], crs=grids.crs)
    options = None
    if isinstance(metrics.get("options"), dict):
        from .options import Options

        options = Options.from_dict(metrics["options"])
    if codes is not None:
        codes = codes.copy()
        codes["until"] = codes["until"].astype(object).where(codes["until"].notna(), None)
    return GridPlan(grids=grids, buildings=buildings, units=units, metrics=metrics,
                    graph=graph, area=area, streets=streets, options=options, codes=codes,
                    unmatched=unmatched)
