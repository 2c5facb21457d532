"""Shared helpers for the benchmarks: BLAS report, side-by-side timing, ratio records.

Every benchmark times tsim and its baseline in the same process and records
``ratio = baseline time / tsim time`` (and, where it applies, a fraction of the machine's
matrix-multiply rate measured in the same run). Records go to ``benchmark.extra_info`` and to
``benchmarks/data/ratios.json``; ``python benchmarks/render.py`` turns them into
``benchmarks/RESULTS.md`` and a plot. Nothing here asserts a time.
"""
from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import pytest

RESULTS: list[dict] = []
OUT = Path(__file__).parent / "data" / "ratios.json"  # (results/ is git-ignored)
_MACHINE: dict = {}


def blas_info() -> list[dict]:
    """threadpoolctl's view of every loaded BLAS/OpenMP pool (numpy's, scipy's (numba's np.dot), torch's)."""
    import scipy.linalg  # noqa: F401  (loads scipy's OpenBLAS, the one numba's np.dot calls)
    from threadpoolctl import threadpool_info

    keys = ("user_api", "internal_api", "prefix", "version", "architecture", "num_threads")
    return [{k: d.get(k) for k in keys} for d in threadpool_info()]


def best_time(fn, repeat: int = 5, number: int = 1, budget: float | None = None) -> float:
    """Smallest wall time of one call of fn over ``repeat`` rounds of ``number`` calls (seconds).

    Stops early once ``budget`` seconds are spent (at least one round runs).
    """
    fn()  # warm-up (JIT compilation, caches)
    best = np.inf
    start = time.perf_counter()
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - t0) / number)
        if budget is not None and time.perf_counter() - start > budget:
            break
    return float(best)


def matmul_rate(dtype=np.float64, n: int = 2000) -> float:
    """The machine's measured matrix-multiply rate in GFLOP/s: numpy (n x n) @ (n x n), 2 n^3 flops,
    best of 5, all BLAS threads."""
    key = f"matmul_gflops_{np.dtype(dtype).name}"
    if key not in _MACHINE:
        rng = np.random.default_rng(0)
        A = rng.standard_normal((n, n)).astype(dtype)
        B = rng.standard_normal((n, n)).astype(dtype)
        t = best_time(lambda: A @ B, repeat=5)
        _MACHINE[key] = 2.0 * n ** 3 / t / 1e9
    return _MACHINE[key]


@pytest.fixture(scope="session")
def gemm_rate():
    """Measured float64 matmul GFLOP/s (same run)."""
    return matmul_rate(np.float64)


@pytest.fixture
def record(request):
    """record(group=..., tsim_s=..., base_s=..., **more): stores a row with the ratio, prints it."""
    bench = request.getfixturevalue("benchmark") if "benchmark" in request.fixturenames else None

    def _record(group: str, case: str, tsim_s: float, base_s: float | None = None, baseline: str = "",
                **more):
        row = {"group": group, "case": case, "test": request.node.nodeid, "tsim_s": tsim_s,
               "threads": bench_threads() or os.cpu_count()}
        if base_s is not None:
            row.update(baseline=baseline, base_s=base_s, ratio=base_s / tsim_s)
        row.update(more)
        RESULTS.append(row)
        if bench is not None:
            bench.extra_info.update({k: v for k, v in row.items() if k not in ("test",)})
        text = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
                         if k != "test")
        print(f"\n[bench] {text}")
        return row

    return _record


def bench_threads() -> int | None:
    """TSIM_BENCH_THREADS=N runs everything (BLAS, numba, torch) on N threads; unset: all cores."""
    v = os.environ.get("TSIM_BENCH_THREADS")
    return int(v) if v else None


def pytest_configure(config):
    n = bench_threads()
    if n is None:
        return
    import numba
    import scipy.linalg  # noqa: F401
    from threadpoolctl import threadpool_limits

    numba.set_num_threads(n)
    config._tsim_limits = threadpool_limits(limits=n)  # numpy's and scipy's OpenBLAS (numba's np.dot)


def pytest_report_header(config):
    try:
        lines = [f"BLAS: {d}" for d in blas_info()]
    except Exception as exc:  # pragma: no cover - report only
        lines = [f"BLAS info unavailable: {exc}"]
    env = {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS",
                                          "NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "TSIM_BENCH_THREADS",
                                          "OMP_WAIT_POLICY")}
    return lines + [f"env: {env}", f"cpus: {os.cpu_count()}"]


def pytest_sessionfinish(session, exitstatus):
    if not RESULTS:
        return
    import numba

    old = {}
    if OUT.exists():
        try:
            old = json.loads(OUT.read_text())
        except ValueError:
            old = {}
    def key(r):
        return r["group"], r["case"], r.get("threads")

    rows = {key(r): r for r in old.get("results", [])}
    rows.update({key(r): r for r in RESULTS})
    machine = dict(old.get("machine", {}))
    if _MACHINE:  # without a machine measurement this session (e.g. bench_matching alone, whose rows carry
        # their own date and matmul rate) the machine section stays that of the run that measured it
        machine.update(_MACHINE)
        machine.update({
            "cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "numba_threads": numba.get_num_threads(), "blas": blas_info(),
            "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "TSIM_BENCH_THREADS",
                                                   "OMP_WAIT_POLICY")},
            "date": time.strftime("%Y-%m-%d %H:%M"),
            "loadavg": os.getloadavg() if hasattr(os, "getloadavg") else None,
        })
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"machine": machine, "results": list(rows.values())}, indent=1, default=float))
