"""Compounds (小区) heavier than a grid, divided into pieces the grids are made of.

A compound is kept whole (its blocks merged into one) unless it alone exceeds a
grid: then it is divided into the fewest pieces that each fit under the band's
upper edge, ``ceil(weight / upper)``, cut between its buildings (the cells of a
tessellation of the compound, which run along its internal lanes where it has
them) by the spanning-tree bisection, so that every piece is contiguous and of
about the same weight.  Only the compound's own buildings are divided (its
street block may hold others).  Each piece's buildings share a compound label of
their own, which the cutting of the block (heavier than a grid, it is cut) keeps
in one cell: a piece is a unit, and a grid holds at most what fits its band (a
piece lighter than the band's lower edge takes units from outside the compound, as
the rule allows).  The plan
marks the grids holding a piece with the compound's id (``compound_part``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import shapely

from .adjacency import build_adjacency
from .partition import UnitGraph
from .partition.bisection import recursive_bisection
from .units import Blocks, tessellate

__all__ = ["divide_compounds"]


def divide_compounds(blocks: Blocks, buildings: np.ndarray, weight: np.ndarray,
                     upper: np.ndarray, *, tolerance: np.ndarray, seed: int | None,
                     names: list[Any]) -> tuple[Blocks, dict[int, Any], list[str]]:
    """The blocks with every compound heavier than a grid divided into pieces.

    ``upper`` and ``tolerance`` are per community (the band's upper edge: the
    target × (1 + tolerance)); ``names`` the compounds' ids.  Only the compound's
    own buildings are divided (a street block may hold others beside it): each
    piece gets a compound label of its own, which the cutting of the block (it is
    heavier than a grid, so it is cut) keeps in one cell.  Returns the blocks
    with the new labels, the compound id of every piece's label, and notes.
    """
    compound = blocks.compound
    inside = compound >= 0
    totals = np.bincount(compound[inside], weights=weight[inside])
    # only a compound heavier than the lightest grid's edge can need dividing: the
    # others are not looked at one by one
    labels = np.flatnonzero(totals > float(np.min(upper, initial=np.inf)))
    if not len(labels):
        return blocks, {}, []
    rng = np.random.default_rng(seed)
    building_block = blocks.building_block
    new_compound = compound.copy()
    next_label = int(compound.max()) + 1
    pieces_of: dict[int, Any] = {}
    notes: list[str] = []
    for c in labels.tolist():
        members = np.flatnonzero(compound == c)
        held = np.unique(building_block[members])
        if len(held) != 1:
            continue  # a compound over several blocks (a carved one): left as it is
        b = int(held[0])
        if blocks.special is not None and blocks.special[b] >= 0:
            continue
        com = min(int(blocks.community[b]), len(upper) - 1)
        total = float(totals[c])
        if total <= float(upper[com]):
            continue
        # the cells of every building of the block; the pieces are made of the
        # compound's cells alone
        in_block = np.flatnonzero(building_block == b)
        cell_of, cells = tessellate(blocks.geometry[b], buildings[in_block], in_block)
        adj = build_adjacency(np.asarray(cells, dtype=object))
        w = np.bincount(cell_of, weights=weight[in_block], minlength=len(cells))
        cen = shapely.centroid(np.asarray(cells, dtype=object))
        xy = np.column_stack([shapely.get_x(cen), shapely.get_y(cen)])
        g = UnitGraph.from_edges(len(cells), w, xy, adj.i, adj.j, adj.length, adj.barrier)
        own = np.unique(cell_of[np.isin(in_block, members)])
        parts = _pieces(g, own, float(upper[com]), float(tolerance[com]), rng)
        if len(parts) < 2:
            continue
        name = names[c] if c < len(names) else c + 1
        for part in parts:
            new_compound[in_block[np.isin(cell_of, part)]] = next_label
            pieces_of[next_label] = name
            next_label += 1
        weights = ", ".join(f"{float(w[p].sum()):,.0f}" for p in parts)
        notes.append(f"compound {name!r} holds {total:,.0f}, more than a grid "
                     f"({float(upper[com]):,.0f} at most): divided between its buildings "
                     f"into {len(parts)} pieces ({weights}), each kept whole in one grid.")
    if not pieces_of:
        return blocks, {}, []
    return dataclasses.replace(blocks, compound=new_compound), pieces_of, notes


def _pieces(g: UnitGraph, nodes: np.ndarray, upper: float, tolerance: float,
            rng: np.random.Generator) -> list[np.ndarray]:
    """The cells ``nodes`` of a compound in the fewest contiguous pieces under ``upper``.

    A building heavier than a grid is a piece alone (a grid of its own, flagged
    oversize, as anywhere); the rest, part by connected part, is cut into
    ``ceil(weight / upper)`` pieces of about the same weight, and a piece left over
    ``upper`` by lumpy cells is cut in two again.
    """
    heavy = nodes[g.weight[nodes] > upper]
    rest = np.setdiff1d(nodes, heavy)
    parts = [np.array([h]) for h in heavy.tolist()]
    if not len(rest):
        return parts
    comp = g.components(rest)
    for c in np.unique(comp).tolist():
        part = rest[comp == c]
        total = float(g.weight[part].sum())
        k = max(1, math.ceil(total / upper - 1e-9))
        if k == 1 or len(part) < k:
            parts.append(part)
            continue
        pieces = recursive_bisection(g, part, k, tolerance=tolerance, rng=rng,
                                     mean=total / k, n_trees=12)
        # lumpy cells can leave a piece over the edge: cut it again, in two
        for _ in range(2 * len(part)):
            over = [p for p in pieces if float(g.weight[p].sum()) > upper and len(p) > 1]
            if not over:
                break
            p = over[0]
            pieces = [q for q in pieces if q is not p]
            pieces.extend(recursive_bisection(g, p, 2, tolerance=tolerance, rng=rng,
                                              n_trees=12))
        parts.extend(pieces)
    return parts
