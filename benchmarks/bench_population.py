"""Population-loss GD step (loss + gradient + update) vs the vectorised numpy reference.

d = 16, M = 4 (orthonormal teacher), m in {64, 512, 2048}; one student (E = 1), a fixed.
tsim: ``train_population`` (Numba kernel, symmetric pair sum, vectorised arccos, rows on
threads for large m); numpy: :func:`reference.population_gd_step` (full (m, m) matrices).
Also reported as pairwise-kernel evaluations per second, counting the m^2 + m M kernel
entries of the loss for both (tsim evaluates each student pair once).
"""
import numpy as np
import pytest

import tsim
from benchmarks import reference
from benchmarks.conftest import best_time

D, M_TEACHER = 16, 4


@pytest.mark.parametrize("m", [64, 512, 2048])
def test_population_gd_step(benchmark, record, m):
    T = tsim.Teacher.orthonormal(M_TEACHER, D)
    W0, a0 = tsim.init_ensemble(1, m, D, [np.random.default_rng(m)])
    lr = 1e-3 / m
    steps = max(2, 40000 // m)
    TW, Ta = T.W * 1.0, T.a * T.c

    # same numbers: 3 steps of both
    res = tsim.train_population(W0, a0, T, lr=lr, steps=3)
    W = W0[0]
    for _ in range(3):
        _, W = reference.population_gd_step(W, a0[0], 1.0, TW, Ta, lr)
    assert np.allclose(res.W[0], W, rtol=1e-10, atol=1e-12)

    def run_tsim():
        return tsim.train_population(W0, a0, T, lr=lr, steps=steps, record_every=steps)

    def run_numpy():
        W = W0[0]
        for _ in range(steps):
            _, W = reference.population_gd_step(W, a0[0], 1.0, TW, Ta, lr)
        return W

    benchmark.pedantic(run_tsim, rounds=3, iterations=1, warmup_rounds=1)
    t_tsim = min(benchmark.stats.stats.data) / steps
    t_tsim = min(t_tsim, best_time(run_tsim, repeat=3) / steps)
    n_np = max(1, steps // (8 if m >= 2048 else 1))
    t_np = best_time(lambda: [reference.population_gd_step(W0[0], a0[0], 1.0, TW, Ta, lr)
                              for _ in range(n_np)], repeat=3, budget=20) / n_np
    pairs = m * m + m * M_TEACHER
    record("population GD step", f"m={m}, d={D}, M={M_TEACHER}", t_tsim, t_np, "numpy reference",
           tsim_pairs_per_s=pairs / t_tsim, numpy_pairs_per_s=pairs / t_np, target=10.0 if m == 512 else None)
