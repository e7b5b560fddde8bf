"""The minimum-cost flow rebalancer of the re-partition: few moves, grids whole."""

from __future__ import annotations

import numpy as np
import pytest

from gridmap.partition import UnitGraph
from gridmap.partition.flow import flow_rebalance


def row(n: int, weight=None) -> UnitGraph:
    w = np.ones(n) if weight is None else np.asarray(weight, dtype=float)
    return UnitGraph.from_edges(n, w, np.c_[np.arange(n), np.zeros(n)],
                                np.arange(n - 1), np.arange(1, n), np.ones(n - 1))


def lattice(nx: int, ny: int, weight: np.ndarray) -> UnitGraph:
    ids = np.arange(nx * ny).reshape(ny, nx)
    i = np.concatenate([ids[:, :-1].ravel(), ids[:-1, :].ravel()])
    j = np.concatenate([ids[:, 1:].ravel(), ids[1:, :].ravel()])
    xy = np.c_[(ids % nx).ravel(), (ids // nx).ravel()].astype(float)
    return UnitGraph.from_edges(nx * ny, weight, xy, i, j, np.ones(len(i)))


def is_whole(g: UnitGraph, labels: np.ndarray, k: int) -> bool:
    nodes = np.flatnonzero(labels == k)
    return len(nodes) > 0 and len(set(g.components(nodes).tolist())) == 1


def test_weight_passes_through_the_middle_grid_with_the_fewest_moves():
    # grids of 5, 3 and 1 units in a row, mean 3: A gives 2 to B, B gives 2 to C
    g = row(9)
    labels = np.array([0] * 5 + [1] * 3 + [2])
    out = flow_rebalance(g, labels, grids=[0, 1, 2], mean=3, tolerance=0.1)
    assert out.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert int((out != labels).sum()) == 4  # the least any plan can move


def test_a_removed_grid_is_shared_among_its_neighbours():
    g = row(9)
    labels = np.array([0] * 3 + [1] * 3 + [2] * 3)
    out = flow_rebalance(g, labels, grids=[0, 1, 2], mean=4.5, tolerance=0.15, remove=[1])
    assert 1 not in out
    assert sorted(np.bincount(out, minlength=3).tolist()) == [0, 4, 5]
    assert is_whole(g, out, 0) and is_whole(g, out, 2)


def test_locked_grids_neither_give_nor_take():
    g = row(9)
    labels = np.array([0] * 5 + [1] * 3 + [2])
    out = flow_rebalance(g, labels, grids=[0, 1, 2], mean=3, tolerance=0.1, locked=[1])
    assert (out == labels).all()  # nothing can pass the locked middle grid


def test_balanced_grids_do_not_move():
    g = row(9)
    labels = np.array([0] * 3 + [1] * 3 + [2] * 3)
    out = flow_rebalance(g, labels, grids=[0, 1, 2], mean=3, tolerance=0.1)
    assert (out == labels).all()


@pytest.mark.parametrize("seed", range(5))
def test_lattice_grids_stay_whole_and_come_into_the_band(seed):
    rng = np.random.default_rng(seed)
    w = rng.integers(5, 15, 400).astype(float)
    g = lattice(20, 20, w)
    # five column bands of four columns each, then growth in the first band
    labels = (np.arange(400) % 20) // 4
    w[(labels == 0)] *= 1.3
    g = lattice(20, 20, w)
    mean = w.sum() / 5
    out = flow_rebalance(g, labels, grids=range(5), mean=mean, tolerance=0.1)
    weights = np.bincount(out, weights=w, minlength=5)
    assert np.all(np.abs(weights / mean - 1) <= 0.1 + 1e-9), weights / mean
    assert all(is_whole(g, out, k) for k in range(5))
    # only what had to move moved: not more than twice the excess carried along
    excess = sum(max(0.0, x - 1.09 * mean) for x in np.bincount(labels, weights=w))
    hops = 4  # at most four boundaries from the first band to the last
    assert w[out != labels].sum() <= 2 * hops * excess
