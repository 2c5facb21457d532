"""Running a sweep: the cells of a config's grid that the store lacks, on one of three executors.

- in this process, one cell after the other (``workers = 1``; Numba uses every core for the ensemble
  of a cell);
- a local process pool of ``workers`` spawned processes, one Numba/BLAS thread each, a cell per task
  (each cell still trains all its seed pairs as one ensemble);
- a Dask cluster (``scheduler = "local"``: a LocalCluster of ``workers`` processes on this machine;
  ``scheduler = "tcp://HOST:PORT"``: a running scheduler and its workers).

Whatever the executor, only this process writes: each finished cell goes into ``DIR/sweep.sqlite`` in
one transaction (``tsim.sweep.store``), so an interrupted sweep resumes where it stopped and a cell
that raises is recorded as failed with its reason while the others go on.
"""
from __future__ import annotations

import os
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from ..studies import get as get_study
from .grid import Cell, cells
from .store import Store, SweepLock, code_version, export_csv


def run_cell(cell: Cell) -> list[dict]:
    """The rows of one cell: its study routine over all its pairs, tagged with key and point."""
    cfg = cell.config
    rows = get_study(cfg.study).run(cfg, range(cfg.sweep.pairs))
    for r in rows:
        for name, value in cell.point.items():
            col = name.split(".")[1]
            same = col in r and r[col] == value  # the study already reports this field (m, M, d)
            r[col if col not in r or same else name.replace(".", "_")] = value
        r["key"] = cell.key
    return rows


@dataclass(frozen=True)
class Outcome:
    """What a worker returns for one cell: its rows, or the reason (and traceback) it failed."""

    key: str
    rows: list | None
    reason: str | None
    trace: str | None
    wall_s: float
    version: str


_LIMITED = False


def limit_threads(threads: int | str | None) -> None:
    """Numba threads of this thread and BLAS threads of this process (once); None leaves them.

    ``"auto"`` (Dask workers of a remote cluster): cores / threads of the worker.
    """
    global _LIMITED
    if threads is None:
        return
    if threads == "auto":
        try:
            from distributed import get_worker

            threads = max(1, (os.cpu_count() or 1) // get_worker().state.nthreads)
        except (ImportError, ValueError, AttributeError):
            return
    from .._kernels import set_threads

    set_threads(threads)
    if not _LIMITED:
        from threadpoolctl import threadpool_limits

        threadpool_limits(int(threads))
        _LIMITED = True


def attempt(cell: Cell, threads: int | str | None = None) -> Outcome:
    """Run one cell and never raise (except on interrupt): a failure becomes an Outcome with a reason."""
    limit_threads(threads)
    t0 = time.perf_counter()
    try:
        rows = run_cell(cell)
        return Outcome(cell.key, rows, None, None, time.perf_counter() - t0, code_version())
    except Exception as exc:  # a cell's failure is data: record it and go on
        return Outcome(cell.key, None, f"{type(exc).__name__}: {exc}", traceback.format_exc(),
                       time.perf_counter() - t0, code_version())


def _init_worker() -> None:
    limit_threads(1)


# ---------------------------------------------------------------------- executors
def _sequential(todo: list[Cell]):
    for cell in todo:
        yield attempt(cell)


def _pool(todo: list[Cell], workers: int):
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    ex = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"), initializer=_init_worker)
    try:
        futures = [ex.submit(attempt, cell) for cell in todo]
        for fut in as_completed(futures):
            try:
                yield fut.result()
            except BrokenProcessPool:
                raise RuntimeError("a worker process of the sweep died (out of memory or killed); the "
                                   "finished cells are saved. Run the same command again to resume, with "
                                   "fewer --workers if memory ran out.") from None
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


def dask_client(scheduler: str, workers: int):
    """A ``distributed.Client``: a LocalCluster of ``workers`` processes for "local", else the address."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:  # pragma: no cover - dask is a dependency
        raise ValueError("--dask/--scheduler need dask[distributed]: pip install 'dask[distributed]'.") from None
    if scheduler == "local":
        import logging

        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=logging.ERROR)
        return Client(cluster)
    try:
        return Client(scheduler, timeout="20s")
    except (OSError, TimeoutError) as exc:
        raise ValueError(f"cannot reach a Dask scheduler at --scheduler {scheduler} ({exc}). Start one with "
                         "`dask scheduler` and workers with `dask worker tcp://HOST:8786` (see docs/sweeps.md), "
                         "or use --dask local.") from None


def _dask(todo: list[Cell], workers: int, scheduler: str):
    from distributed import as_completed

    client = dask_client(scheduler, workers)
    threads = 1 if scheduler == "local" else "auto"
    try:
        futures = [client.submit(attempt, cell, threads, key=f"tsim-cell-{cell.key}", pure=False)
                   for cell in todo]
        for fut in as_completed(futures):
            if fut.status == "error":  # the task itself could not run (lost worker, unpicklable result)
                exc = fut.exception()
                key = fut.key.removeprefix("tsim-cell-") if isinstance(fut.key, str) else str(fut.key)
                yield Outcome(key, None, f"{type(exc).__name__}: {exc}", None, float("nan"), "unknown")
            else:
                yield fut.result()
            fut.release()
    finally:
        cluster = getattr(client, "cluster", None)
        client.close()
        if cluster is not None and scheduler == "local":
            cluster.close()


def _executor(todo: list[Cell], workers: int, scheduler: str | None):
    if scheduler:
        return _dask(todo, workers, scheduler)
    if workers > 1 and len(todo) > 1:
        return _pool(todo, min(workers, len(todo)))
    return _sequential(todo)


# ---------------------------------------------------------------------- the sweep
def run_sweep(cfg, out: Path, progress: bool = True, workers: int | None = 1,
              scheduler: str | None = None) -> pd.DataFrame:
    """Compute every cell of ``cfg``'s grid that ``out/sweep.sqlite`` lacks; return all finished rows.

    Parameters
    ----------
    cfg : Config or DeepConfig
        The sweep (its axes make the grid).
    out : Path
        Output folder; holds the store, its lock and, at the end, ``results.csv``.
    progress : bool
        Show one progress bar over all cells (finished ones counted from the start) with an ETA.
    workers : int or None
        Worker processes (the local pool, or a Dask LocalCluster); 1 runs in this process; None or 0:
        one per core.
    scheduler : str or None
        None: no Dask. "local": a Dask LocalCluster. "tcp://HOST:PORT": a running Dask scheduler.

    Returns
    -------
    DataFrame
        The rows of the finished cells of this grid in grid order (one per seed pair; failed cells have
        none, see ``tsim status``), with the swept fields, ``key`` and ``code_version`` as columns.

    Raises
    ------
    ValueError
        Another sweep writes into ``out``, or ``out`` holds a file tsim cannot read as its store.
    """
    out = Path(out)
    workers = int(workers) if workers else (os.cpu_count() or 1)
    if workers < 1:
        raise ValueError(f"workers must be >= 1; got {workers}.")
    with SweepLock(out):
        with Store(out) as store:
            grid = cells(cfg)
            store.register(grid, cfg.to_dict())
            finished = store.finished_keys()
            todo = [c for c in grid if c.key not in finished]
            counts = {"failed": 0, "diverged": 0}
            with tqdm(total=len(grid), initial=len(grid) - len(todo), desc="cells", unit="cell",
                      disable=not progress, dynamic_ncols=True) as bar:
                for o in _executor(todo, workers, scheduler):
                    status = store.record(o.key, o.rows, o.reason, o.trace, o.wall_s, o.version)
                    if status in counts:
                        counts[status] += 1
                        bar.set_postfix(counts, refresh=False)
                    bar.update(1)
            df = store.rows([c.key for c in grid])
        export_csv(out, df)
    return df
