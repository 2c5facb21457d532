"""Benchmarks of sweep execution (run with ``pytest benchmarks/bench_sweep.py --benchmark-enable -s``).

Workload: N = 16 cells of the ``lmc`` study (orthonormal teacher M = 4, d = 16, population GD,
6000 steps, m in {4, ..., 19}, 2 seed pairs per cell, so 4 trainings per cell plus 2 barriers).
The baseline is the trainer called directly: ``run_cell`` in a loop in this process, with Numba's
default threads (the baseline of the 1-worker sweep, which runs in this process) and with one
thread (the baseline of pool and Dask workers, which get one thread each). Reported, as ratios to
that baseline and per cell:

1. store: ``Store.record`` of a finished cell (one SQLite transaction) vs the cell's compute time;
   and the whole in-process runner (lock, grid, store, export) around a cell that costs nothing;
2. sweep with 1 worker (in this process: lock + store + grid) -> trainings/s and overhead per cell;
3. sweep with 2 workers (spawned process pool, 1 Numba/BLAS thread each) -> trainings/s and the
   speed-up over 1 worker, pool start-up included (and reported separately);
4. Dask: cells submitted to a LocalCluster of 1 worker vs direct calls -> overhead per cell, with
   the cluster's start-up reported separately; and the round trip of an empty task.

Times are printed and stored in ``extra_info``; nothing asserts a wall-clock time. The machine's core
count and BLAS are printed, since the 2-worker speed-up is bounded by the free cores.
"""
from __future__ import annotations

import os
import time

import pytest

from tsim.config import from_dict
from tsim.sweep import run as sweep_run
from tsim.sweep.grid import cells
from tsim.sweep.run import attempt, run_cell, run_sweep
from tsim.sweep.store import Store

N_CELLS = 16
PAIRS = 2


def _blas() -> str:
    try:
        from threadpoolctl import threadpool_info

        return ", ".join(f"{i['internal_api']}({i['num_threads']})" for i in threadpool_info())
    except Exception:  # threadpoolctl missing
        return "unknown"


def workload():
    return from_dict(dict(study="lmc", teacher=dict(kind="orthonormal", M=4, d=16),
                          student=dict(m=list(range(4, 4 + N_CELLS))),
                          train=dict(method="population", lr=0.05, lr_unit="absolute", steps=6000, tol=0.0),
                          sweep=dict(pairs=PAIRS, grid=25), output=dict(plots=[])))


def _timed(fn, *args, **kw):
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t0


@pytest.fixture(scope="module")
def direct():
    """Seconds (best of 2) for the N cells called directly, default and 1 Numba thread; their rows."""
    import numba

    grid = cells(workload())
    run_cell(grid[0])  # load the cached kernels
    default = numba.get_num_threads()
    t = {}
    for threads in (default, 1, default, 1):
        numba.set_num_threads(threads)
        rows, dt = _timed(lambda: [run_cell(c) for c in grid])
        t[threads] = min(t.get(threads, float("inf")), dt)
    numba.set_num_threads(default)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\n[sweep] {os.cpu_count()} cores, load average {load:.1f}; BLAS: {_blas()}; {N_CELLS} cells x "
          f"{2 * PAIRS} trainings, called directly: {t[default]:.3f} s with {default} Numba threads "
          f"({N_CELLS * 2 * PAIRS / t[default]:.1f} trainings/s), {t[1]:.3f} s with 1 "
          f"({N_CELLS * 2 * PAIRS / t[1]:.1f} trainings/s)")
    return {"grid": grid, "rows": rows, "t": t[default], "t1": t[1]}


def _report(benchmark, name: str, **info):
    benchmark.extra_info.update(info)
    print(f"[sweep] {name}: " + ", ".join(f"{k} = {v:.4g}" if isinstance(v, float) else f"{k} = {v}"
                                          for k, v in info.items()))


def test_store_overhead(benchmark, direct, tmp_path):
    grid, rows = direct["grid"], direct["rows"]
    cfg = workload()
    st = Store(tmp_path)
    st.register(grid, cfg.to_dict())
    it = iter(range(10 ** 9))

    def record_all():
        n = next(it)
        for c, r in zip(grid, rows):
            st.record(f"{c.key}-{n}", r, wall_s=0.0)

    benchmark.pedantic(record_all, rounds=5, iterations=1, warmup_rounds=1)
    per_cell = benchmark.stats.stats.mean / N_CELLS
    st.close()
    _report(benchmark, "store", ms_per_cell=per_cell * 1e3, fraction_of_cell=per_cell / (direct["t"] / N_CELLS))


def test_runner_overhead(benchmark, direct, tmp_path, monkeypatch):
    """run_sweep with workers = 1 around precomputed rows: the cost of everything but the training."""
    by_key = {c.key: r for c, r in zip(direct["grid"], direct["rows"])}
    monkeypatch.setattr(sweep_run, "run_cell", lambda cell: [dict(r) for r in by_key[cell.key]])
    cfg = workload()
    runs = iter(range(10 ** 9))
    benchmark.pedantic(lambda: run_sweep(cfg, tmp_path / f"r{next(runs)}", progress=False), rounds=5,
                       iterations=1, warmup_rounds=1)
    per_cell = benchmark.stats.stats.mean / N_CELLS
    _report(benchmark, "runner without training", ms_per_cell=per_cell * 1e3,
            fraction_of_cell=per_cell / (direct["t"] / N_CELLS))


def _paired(benchmark, fn, baseline, rounds: int):
    """Time ``fn`` with pytest-benchmark, running ``baseline`` (timed here) just before each round.

    Returns (best fn time, best baseline time): pairing the two in time keeps their ratio meaningful
    on a machine whose load changes during the run.
    """
    base = []

    def setup():
        base.append(_timed(baseline)[1])

    out = benchmark.pedantic(fn, setup=setup, rounds=rounds, iterations=1)
    return out, benchmark.stats.stats.min, min(base)


def _direct(grid, threads: int):
    import numba

    def run():
        default = numba.get_num_threads()
        numba.set_num_threads(threads)
        try:
            return [run_cell(c) for c in grid]
        finally:
            numba.set_num_threads(default)

    return run


@pytest.mark.parametrize("workers", [1, 2])
def test_sweep_throughput(benchmark, direct, tmp_path, workers):
    import numba

    cfg = workload()
    runs = iter(range(10 ** 9))

    def sweep():
        return run_sweep(cfg, tmp_path / f"w{workers}-{next(runs)}", progress=False, workers=workers)

    threads = numba.get_num_threads() if workers == 1 else 1
    df, t, base = _paired(benchmark, sweep, _direct(direct["grid"], threads), rounds=3 if workers == 1 else 2)
    assert len(df) == N_CELLS * PAIRS
    info = dict(trainings_per_s=N_CELLS * 2 * PAIRS / t, cells_per_s=N_CELLS / t,
                direct_trainings_per_s=N_CELLS * 2 * PAIRS / base, direct_threads=threads, x_direct=base / t)
    if workers == 1:
        info["overhead_ms_per_cell"] = (t - base) / N_CELLS * 1e3
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"),
                                 initializer=sweep_run._init_worker) as ex:
            _, start = _timed(lambda: list(ex.map(attempt, direct["grid"][:workers])))
        info.update(pool_startup_s=start, trainings_per_s_after_startup=N_CELLS * 2 * PAIRS / max(t - start, 1e-9))
    _report(benchmark, f"sweep, {workers} worker(s)", **info)


def test_dask_overhead(benchmark, direct):
    pytest.importorskip("distributed")
    grid = direct["grid"]
    client, start = _timed(sweep_run.dask_client, "local", 1)
    try:
        client.submit(attempt, grid[0], 1, pure=False).result()  # worker imports and loads kernels
        _, noop = _timed(lambda: [client.submit(sum, [i], pure=False).result() for i in range(50)])

        def via_dask():
            futs = [client.submit(attempt, c, 1, pure=False) for c in grid]
            return client.gather(futs)

        out, t, base = _paired(benchmark, via_dask, _direct(grid, 1), rounds=3)
        assert all(o.rows is not None for o in out)
    finally:
        client.close()
        client.cluster.close()
    _report(benchmark, "dask LocalCluster(1 worker, 1 thread)", cluster_startup_s=start, x_direct_1thread=base / t,
            overhead_ms_per_cell=(t - base) / N_CELLS * 1e3, empty_task_roundtrip_ms=noop / 50 * 1e3)
