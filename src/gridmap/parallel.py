"""Run the communities of a district in parallel on Dask.

Each community is partitioned on its own subgraph with its own random stream
(derived from the seed and the community's position), so the plan does not
depend on where or in which order the communities run: serial, a local Dask
cluster or a real one give the same plan.

Dask is an optional dependency (``pip install "gridmap[dask]"``), imported only
when asked for.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["community_map"]

#: ``scheduler=`` values that run on this machine without a cluster
LOCAL_SCHEDULERS = ("threads", "processes", "synchronous")


def _dask() -> Any:
    try:
        import dask
        import distributed
    except ImportError as exc:
        msg = ("running communities in parallel needs Dask: "
               'pip install "gridmap[dask]" (or pip install "dask[distributed]")')
        raise ImportError(msg) from exc
    return dask, distributed


def community_map(func: Callable[..., Any], tasks: Sequence[tuple], *,
                  scheduler: str | None = None) -> list[Any]:
    """``[func(*t) for t in tasks]``, in parallel when a scheduler is given.

    Parameters
    ----------
    func
        A module-level function (it is sent to other processes).
    tasks
        The arguments of each call.
    scheduler
        None: one after the other, here. ``"local"``: a Dask cluster on this
        machine, one single-threaded worker process per core. ``"threads"``,
        ``"processes"``, ``"synchronous"``: Dask's own local schedulers. Any
        other string: the address of a running Dask scheduler
        (``"tcp://10.0.0.5:8786"``).

    Returns
    -------
    list
        The results in the order of ``tasks``.

    Examples
    --------
    >>> community_map(pow, [(2, 3), (3, 2)])
    [8, 9]
    """
    if scheduler is None or len(tasks) < 2:
        return [func(*t) for t in tasks]
    dask, distributed = _dask()
    if scheduler in LOCAL_SCHEDULERS:
        calls = [dask.delayed(func)(*t) for t in tasks]
        return list(dask.compute(*calls, scheduler=scheduler))
    if scheduler == "local":
        n = min(len(tasks), os.cpu_count() or 1)
        with distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                      dashboard_address=None) as cluster, \
                distributed.Client(cluster) as client:
            return client.gather(client.map(func, *zip(*tasks, strict=True), pure=False))
    with distributed.Client(scheduler) as client:
        return client.gather(client.map(func, *zip(*tasks, strict=True), pure=False))
