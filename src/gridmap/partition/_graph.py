"""A compact, array-based view of the unit graph used by the partitioners."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

__all__ = ["UnitGraph"]


@dataclass(frozen=True)
class UnitGraph:
    """Units as nodes with weights and positions, edges with cut costs.

    ``i``, ``j`` are edge end points (``i < j``); ``cut`` is the cost of putting a
    grid boundary on that edge (length × cost per metre of its street class);
    ``barrier`` marks barrier edges.  ``indptr``/``nbr``/``eid`` give each node's
    neighbours (CSR), with the edge index of each.  ``pinned`` marks units that
    must stay in their grid (the units a planner moved by hand, during the
    re-balance after the edits): no move takes them out.
    """

    n: int
    weight: np.ndarray
    xy: np.ndarray
    i: np.ndarray
    j: np.ndarray
    cut: np.ndarray
    barrier: np.ndarray
    indptr: np.ndarray
    nbr: np.ndarray
    eid: np.ndarray
    pinned: np.ndarray | None = None

    @classmethod
    def from_edges(
        cls,
        n: int,
        weight: np.ndarray,
        xy: np.ndarray,
        i: np.ndarray,
        j: np.ndarray,
        cut: np.ndarray,
        barrier: np.ndarray | None = None,
        pinned: np.ndarray | None = None,
    ) -> UnitGraph:
        i = np.asarray(i, dtype=np.int64)
        j = np.asarray(j, dtype=np.int64)
        m = len(i)
        if barrier is None:
            barrier = np.zeros(m, dtype=bool)
        src = np.concatenate([i, j])
        dst = np.concatenate([j, i])
        eid = np.concatenate([np.arange(m), np.arange(m)])
        order = np.lexsort((dst, src))
        src, dst, eid = src[order], dst[order], eid[order]
        indptr = np.searchsorted(src, np.arange(n + 1))
        return cls(
            n,
            np.asarray(weight, dtype=float),
            np.asarray(xy, dtype=float),
            i,
            j,
            np.asarray(cut, dtype=float),
            np.asarray(barrier, dtype=bool),
            indptr,
            dst,
            eid,
            None if pinned is None else np.asarray(pinned, dtype=bool),
        )

    def subgraph(self, nodes: np.ndarray) -> UnitGraph:
        """The graph ``nodes`` (sorted, distinct) induce, nodes renumbered 0..len-1.

        Node and edge order are kept, so that whatever runs on the subgraph makes
        the same choices, in the same order, as on the whole graph; working on
        one community's subgraph keeps every array the size of the community.
        """
        nodes = np.asarray(nodes, dtype=np.int64)
        loc = np.full(self.n, -1, dtype=np.int64)
        loc[nodes] = np.arange(len(nodes))
        em = (loc[self.i] >= 0) & (loc[self.j] >= 0)
        return UnitGraph.from_edges(len(nodes), self.weight[nodes], self.xy[nodes],
                                    loc[self.i[em]], loc[self.j[em]], self.cut[em],
                                    self.barrier[em],
                                    None if self.pinned is None else self.pinned[nodes])

    def matrix(self, values: np.ndarray | None = None, edges: np.ndarray | None = None):
        """Symmetric sparse matrix of the edges (``edges`` mask) with ``values``."""
        sel = np.ones(len(self.i), dtype=bool) if edges is None else edges
        v = np.ones(int(sel.sum())) if values is None else np.asarray(values)[sel]
        a = sp.coo_matrix((v, (self.i[sel], self.j[sel])), shape=(self.n, self.n))
        return (a + a.T).tocsr()

    @cached_property
    def adjacency_lists(self) -> list[list[int]]:
        """Every node's neighbours as a Python list, in ``nbr``'s order.

        For the searches that walk the graph a node at a time: a numpy slice and
        its ``tolist`` per node visited cost more than the walk.
        """
        nbr, ptr = self.nbr.tolist(), self.indptr.tolist()
        return [nbr[ptr[v]: ptr[v + 1]] for v in range(self.n)]

    def neighbour_slots(self, nodes: np.ndarray) -> np.ndarray:
        """The positions in ``nbr``/``eid`` of the neighbours of ``nodes``."""
        return self.slots_and_owners(nodes)[0]

    def slots_and_owners(self, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`neighbour_slots`, and for each slot the position in ``nodes`` of its node."""
        starts = self.indptr[nodes]
        lens = self.indptr[nodes + 1] - starts
        total = int(lens.sum())
        if total == 0:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty
        owner = np.repeat(np.arange(len(lens)), lens)
        # start of each node's run, plus the offset within the run
        runs = np.cumsum(lens) - lens
        return (starts - runs)[owner] + np.arange(total), owner

    def inner_edges(self, nodes: np.ndarray, inset: np.ndarray | None = None) -> np.ndarray:
        """The edges with both ends in ``nodes``, in edge order.

        Gathered from the nodes' own neighbours: the cost is what ``nodes`` touch,
        not the size of the graph.  ``inset`` (a mask of ``nodes`` over all
        units) saves making it again.
        """
        nodes = np.asarray(nodes, dtype=np.int64)
        if inset is None:
            inset = np.zeros(self.n, dtype=bool)
            inset[nodes] = True
        if 8 * len(nodes) > self.n:  # most of the graph: one pass over its edges
            return np.flatnonzero(inset[self.i] & inset[self.j])
        slots = self.neighbour_slots(nodes)
        slots = slots[inset[self.nbr[slots]]]
        return np.unique(self.eid[slots])

    def components(self, nodes: np.ndarray, edges: np.ndarray | None = None) -> np.ndarray:
        """Component label of each of ``nodes`` in the graph they induce."""
        nodes = np.asarray(nodes, dtype=np.int64)
        em = self.inner_edges(nodes)
        if edges is not None:
            em = em[edges[em]]
        loc = np.full(self.n, -1, dtype=np.int64)
        loc[nodes] = np.arange(len(nodes))
        a = sp.coo_matrix(
            (np.ones(len(em)), (loc[self.i[em]], loc[self.j[em]])),
            shape=(len(nodes), len(nodes)),
        )
        _, labels = connected_components(a, directed=False)
        return labels

    def adjacent_labels(self, labels: np.ndarray, nodes: np.ndarray) -> set[int]:
        """Labels (>= 0) of the units outside ``nodes`` that touch them."""
        nodes = np.asarray(nodes, dtype=np.int64)
        inset = np.zeros(self.n, dtype=bool)
        inset[nodes] = True
        other = self.nbr[self.neighbour_slots(nodes)]
        other = other[~inset[other]]
        return {int(x) for x in np.unique(labels[other]) if x >= 0}

    def neighbours(self, u: int) -> np.ndarray:
        return self.nbr[self.indptr[u] : self.indptr[u + 1]]
