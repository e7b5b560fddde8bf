"""Shared fixtures: small hand-made cities with known answers, and the real data."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from shapely import LineString

try:
    from hypothesis import settings as _hypothesis_settings

    # the same examples on every run: a property test that found a case once
    # finds it every time, and a green suite stays green (no example database)
    _hypothesis_settings.register_profile("gridmap", derandomize=True, database=None)
    _hypothesis_settings.load_profile("gridmap")
except ImportError:  # hypothesis comes with the test extra
    pass

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
SHARED = ROOT.parent / "shared" / "data"
CRS = "EPSG:32651"


def grid_city(nx: int = 4, ny: int = 4, *, block: float = 100.0, per_block: int = 1,
              households: float = 100.0, crs: str = CRS):
    """``nx`` × ``ny`` street blocks of ``block`` metres, ``per_block`` buildings each.

    Streets run along every block edge (residential), the outer ring included.
    Returns (buildings, streets).
    """
    rows = []
    side = block * 0.6 / per_block
    for bx in range(nx):
        for by in range(ny):
            for k in range(per_block):
                x0 = bx * block + block * 0.2 + k * side
                y0 = by * block + block * 0.2
                rows.append(
                    {
                        "id": f"b{bx}-{by}-{k}",
                        "households": households,
                        "geometry": shapely.box(x0 + 1, y0, x0 + side - 1, y0 + block * 0.6),
                    }
                )
    buildings = gpd.GeoDataFrame(rows, crs=crs)
    lines = [LineString([(x * block, 0), (x * block, ny * block)]) for x in range(nx + 1)]
    lines += [LineString([(0, y * block), (nx * block, y * block)]) for y in range(ny + 1)]
    streets = gpd.GeoDataFrame({"highway": ["residential"] * len(lines)}, geometry=lines, crs=crs)
    return buildings, streets


@pytest.fixture
def city4():
    return grid_city(4, 4)


@pytest.fixture(scope="session")
def bundled():
    path = DATA / "shanghai_bund.gpkg"
    if not path.exists():
        pytest.skip("bundled data missing")
    return path


@pytest.fixture(scope="session")
def bundled_demo(bundled, tmp_path_factory):
    """The folder the README's demo command writes for the bundled data, made once
    for the tests that only read it (a delineation of the Bund takes about a
    minute)."""
    from gridmap.cli import main

    out = tmp_path_factory.mktemp("demo") / "shanghai"
    rc = main(["delineate", "--buildings", str(bundled), "--streets", str(bundled),
               "--target", "300", "--tolerance", "0.1", "--by", "households",
               "--out", str(out), "--quiet"])
    assert rc == 0
    return out


@pytest.fixture(scope="session")
def bundled_plan(bundled_demo):
    """The demo's plan as read back from the files it wrote."""
    import gridmap

    return gridmap.read_plan(bundled_demo)


def run_stages(buildings, streets, *, boundaries=None, sites=None, split=None,
               **keywords):
    """Stages 1 to 5 of a plan through their public functions, as
    :func:`gridmap.delineation.make_plan` runs them, for the tests of the later
    stages (balance, assemble) on small hand-made cities.

    ``keywords`` are :func:`gridmap.delineate`'s (``target=400, seed=0``...);
    ``split`` says which blocks are cut between their buildings (default: those
    holding more than their community's target).  Returns a namespace with
    ``options``, ``layers``, ``counts``, ``area``, ``carve``, ``communities``,
    ``maker``, ``units`` and ``notes``.
    """
    import dataclasses
    from types import SimpleNamespace

    import numpy as np

    from gridmap.communities import find_communities
    from gridmap.layers import COUNT_FIELDS, EXTRA_FIELDS, LayerSources, read_layers
    from gridmap.options import options_from_keywords
    from gridmap.population import place_population
    from gridmap.special import carve_special_grids
    from gridmap.units import UnitMaker, make_blocks, study_area

    options, problems = options_from_keywords({}, keywords)
    assert not problems, problems
    layers = read_layers(LayerSources(buildings, streets, boundaries=boundaries,
                                      sites=sites), options)
    notes: list[str] = []
    counts = place_population(layers.buildings, layers.population, layers.units, options,
                              count_fields=COUNT_FIELDS, extra_fields=EXTRA_FIELDS,
                              notes=notes)
    lines, bnd = layers.street_lines, layers.boundaries
    area, _ = study_area(layers.buildings.geometry, lines.geometry,
                         boundaries=bnd.geometry if bnd is not None else None)
    geoms = np.asarray(layers.buildings.geometry.values)
    carve = carve_special_grids(layers.sites, lines, area, options.special,
                                given_units=False, buildings=geoms,
                                load=counts.weight, notes=notes)
    blocks = make_blocks(geoms, lines.geometry, area,
                         communities=np.asarray(bnd.geometry.values) if bnd is not None
                         else None, carve=carve.geometry if len(carve) else None)
    maker = UnitMaker(blocks, geoms, counts.weight, lines.geometry, lines.classes,
                      options.inputs.cut_cost, options.inputs.barriers)
    communities = find_communities(blocks, bnd, layers.buildings, counts.weight,
                                   options.balance, graph_of=maker.graph,
                                   building_geoms=geoms, seed=options.search.seed,
                                   notes=notes)
    maker = dataclasses.replace(maker, blocks=communities.blocks)
    if split is None:
        blocks = communities.blocks
        split = ((blocks.loads(counts.weight) > communities.target[blocks.community])
                 & (maker.n_buildings > 1))
    units = maker.make(np.asarray(split, dtype=bool))
    return SimpleNamespace(options=options, layers=layers, counts=counts, area=area,
                           carve=carve, communities=communities, maker=maker, units=units,
                           notes=notes)
