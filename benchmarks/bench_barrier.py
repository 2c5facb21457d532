"""Population barrier on 51 t-points at m = 4096 (d = 16, M = 4) vs the numpy reference loss.

tsim.barrier evaluates the exact population loss at each t (parallel over t, symmetric pair
sum); the baseline is :func:`reference.population_loss_grad` at each t (full matrices), timed on
a few t-points and scaled to 51.
"""
import numpy as np

import tsim
from benchmarks import reference
from benchmarks.conftest import best_time


def test_barrier_m4096(benchmark, record):
    m, d, grid = 4096, 16, 51
    T = tsim.Teacher.orthonormal(4, d)
    rng = np.random.default_rng(0)
    A = tsim.TwoLayer(rng.standard_normal((m, d)) / np.sqrt(m), np.ones(m))
    B = tsim.TwoLayer(rng.standard_normal((m, d)) / np.sqrt(m), np.ones(m))
    TW, Ta = T.W * 1.0, T.a * T.c

    res = benchmark.pedantic(lambda: tsim.barrier(A, B, T, grid=grid), rounds=2, iterations=1, warmup_rounds=1)
    t_tsim = min(benchmark.stats.stats.data)
    ts = res.ts[[0, 25, 50]]

    def numpy_points():
        return [reference.population_loss_grad((1 - t) * A.W + t * B.W, (1 - t) * A.a + t * B.a, 1.0, TW, Ta)[0]
                for t in ts]

    ref = numpy_points()
    assert np.allclose(ref, res.losses[[0, 25, 50]], rtol=1e-10)
    t_np = best_time(numpy_points, repeat=1) * grid / len(ts)
    record("barrier (51 t-points)", f"m={m}, d={d}, M=4", t_tsim, t_np, "numpy reference loss (x51)",
           loss_evals_per_s=grid / t_tsim)
