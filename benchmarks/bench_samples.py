"""Sample-based GD/SGD step vs numpy and torch CPU (float64 and float32), and ensembles.

One full-batch GD step on 1/(2n) sum_p (relu(W x_p) . a - y_p)^2 costs 4 n m d flops (two
(n x d x m) products: H = X W^T and dL/dW = D^T X; the input gradient, the third product of a
usual backward pass, is not needed) plus O(n m). Achieved rate = 4 n m d / step time, reported
as a fraction of the float64 matmul rate measured in the same run (numpy 2000^3, all threads).
torch baselines are timed with torch's default thread count and with one thread; the faster is
the baseline (one thread wins on tiny shapes).
"""
import numpy as np
import pytest

import tsim
from benchmarks import reference
from benchmarks.conftest import best_time

SHAPES = {  # name: (n, d, m, steps)
    "tiny": (1000, 16, 16, 200),
    "small": (1000, 16, 128, 50),
    "medium": (4000, 50, 200, 20),
    "large": (10000, 100, 1000, 8),
}


def _data(n, d, m, E, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    T = tsim.Teacher.random(4, d, seed)
    y = T.forward(X)
    W0, a0 = tsim.init_ensemble(E, m, d, [np.random.default_rng([seed, e]) for e in range(E)])
    return X, y, W0, a0 / m


def _torch_time(W0, a0, X, y, lr, steps, dtype, repeat=2):
    import torch

    from benchmarks.conftest import bench_threads

    best = np.inf
    steps = min(steps, 20)  # per-step time; keeps slow thread settings short
    default = bench_threads() or torch.get_num_threads()
    for threads in sorted({1, default}):
        torch.set_num_threads(threads)
        try:
            t = best_time(lambda: reference.torch_train_gd(W0, a0, X, y, lr, steps, dtype=dtype), repeat=repeat,
                          budget=30)
        finally:
            torch.set_num_threads(default)
        best = min(best, t)
    return best / steps


@pytest.mark.parametrize("shape", list(SHAPES))
def test_sample_gd_step(benchmark, record, gemm_rate, shape):
    pytest.importorskip("torch")
    n, d, m, steps = SHAPES[shape]
    X, y, W0, a0 = _data(n, d, m, 1)
    lr = 0.05

    res = tsim.train_gd(W0, a0, X, y, lr=lr, steps=2)
    W, a = W0[0], a0[0]
    for _ in range(2):
        _, W, a = reference.sample_gd_step(W, a, 1.0, X, y, lr)
    assert np.allclose(res.W[0], W, rtol=1e-9, atol=1e-12)

    def run_tsim():
        return tsim.train_gd(W0, a0, X, y, lr=lr, steps=steps, record_every=steps)

    benchmark.pedantic(run_tsim, rounds=2, iterations=1, warmup_rounds=1)
    t_tsim = min(min(benchmark.stats.stats.data), best_time(run_tsim, repeat=2)) / steps
    t_np = best_time(lambda: reference.sample_gd_step(W0[0], a0[0], 1.0, X, y, lr), repeat=max(3, steps // 2),
                     budget=20)
    t_t64 = _torch_time(W0[0], a0[0], X, y, lr, steps, "float64")
    t_t32 = _torch_time(W0[0], a0[0], X, y, lr, steps, "float32")
    flops = 4.0 * n * m * d
    rate = flops / t_tsim / 1e9
    case = f"{shape}: n={n}, d={d}, m={m}"
    common = dict(tsim_gflops=rate, frac_of_matmul=rate / gemm_rate, matmul_gflops=gemm_rate)
    record("sample GD step", case, t_tsim, t_np, "numpy reference", **common)
    record("sample GD step vs torch f64", case, t_tsim, t_t64, "torch CPU float64", **common,
           target=1.0 if shape == "large" else None, frac_target=0.7 if shape == "large" else None)
    record("sample GD step vs torch f32", case, t_tsim, t_t32, "torch CPU float32", **common)


@pytest.mark.parametrize("shape", ["tiny", "medium"])
def test_sample_sgd_step(benchmark, record, shape):
    n, d, m, steps = SHAPES[shape]
    steps *= 10
    batch = 64
    X, y, W0, a0 = _data(n, d, m, 1)
    lr = 0.05
    rng_np = np.random.default_rng(1)

    def run_tsim():
        return tsim.train_sgd(W0, a0, X, y, lr=lr, steps=steps, batch=batch, rng=np.random.default_rng(0),
                              record_every=steps)

    def numpy_sgd_step():
        idx = rng_np.integers(0, n, batch)
        return reference.sample_gd_step(W0[0], a0[0], 1.0, X[idx], y[idx], lr)

    benchmark.pedantic(run_tsim, rounds=2, iterations=1, warmup_rounds=1)
    # the run includes two full-loss passes (steps 0 and `steps`): charge them to tsim
    t_tsim = min(min(benchmark.stats.stats.data), best_time(run_tsim, repeat=2)) / steps
    t_np = best_time(lambda: [numpy_sgd_step() for _ in range(100)], repeat=3) / 100
    record("sample SGD step (batch 64)", f"{shape}: n={n}, d={d}, m={m}", t_tsim, t_np, "numpy reference")


@pytest.mark.parametrize("E", [1, 16, 64])
def test_ensemble_per_student(benchmark, record, E):
    """Tiny shape (n=1000, d=16, m=16): E students in one call vs torch CPU one student at a time."""
    pytest.importorskip("torch")
    n, d, m, steps = SHAPES["tiny"]
    X, y, W0, a0 = _data(n, d, m, E)
    lr = 0.05

    import numba

    def run_tsim():
        return tsim.train_gd(W0, a0, X, y, lr=lr, steps=steps, record_every=steps)

    # an ensemble is spread over all cores (the point of ensembles), even under TSIM_BENCH_THREADS
    threads_before = numba.get_num_threads()
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    try:
        benchmark.pedantic(run_tsim, rounds=2, iterations=1, warmup_rounds=1)
        t_tsim = min(min(benchmark.stats.stats.data), best_time(run_tsim, repeat=2)) / (steps * E)
        threads = numba.get_num_threads()
    finally:
        numba.set_num_threads(threads_before)
    t_torch = _torch_time(W0[0], a0[0], X, y, lr, steps, "float64")
    t_torch32 = _torch_time(W0[0], a0[0], X, y, lr, steps, "float32")
    target = {16: 5.0, 64: 10.0}.get(E)
    record("ensemble GD, per student-step", f"E={E} (n={n}, d={d}, m={m})", t_tsim, t_torch,
           "torch CPU float64, one student at a time", target=target, torch_f32_ratio=t_torch32 / t_tsim,
           tsim_threads=threads, threads=threads)
