"""Speed of the alignment methods, as ratios to a baseline timed in the same process.

Run: ``make bench`` (or ``pytest benchmarks/bench_align.py --benchmark-enable -s``). Each test
times tsim with pytest-benchmark and prints the x-fold against its baseline (best of a few
perf_counter repeats of both); nothing asserts a time, only that both give the same answer.

- weight matching: lapx LAPJV (tsim) vs scipy.optimize.linear_sum_assignment on one cost.
- activation matching: streaming moments in batches (tsim) vs materialising all n activations
  and numpy.corrcoef; and exact Gaussian moments (arc-cosine kernel) vs the sample.
- STE, brute force, merge_many: cost relative to one weight matching of the same nets.
"""
import time

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import tsim
from tsim.alignment import activation_correlation, align
from tsim.match import neuron_features
from tsim.alignment.multi import merge_many, merge_to_reference


def _best(fn, reps=5):
    out = np.inf
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out = min(out, time.perf_counter() - t0)
    return out


def _report(name, fn, base, reps=5):
    t, b = _best(fn, reps), _best(base, reps)
    print(f"\n{name}: tsim {t * 1e3:.3f} ms, baseline {b * 1e3:.3f} ms, x-fold {b / t:.2f}")
    return b / t


@pytest.fixture(scope="module", autouse=True)
def blas():
    for lib in threadpool_info():
        print(f"\nBLAS/threads: {lib.get('internal_api')} {lib.get('version')} threads={lib.get('num_threads')}")


def _nets(m, d, seed=0):
    rng = np.random.default_rng(seed)
    return (tsim.TwoLayer(rng.standard_normal((m, d)), np.ones(m)),
            tsim.TwoLayer(rng.standard_normal((m, d)), np.ones(m)))


@pytest.mark.parametrize("m", [64, 512])
def test_weight_matching_vs_scipy(benchmark, m):
    from scipy.optimize import linear_sum_assignment

    A, B = _nets(m, 32)
    C = neuron_features(A) @ neuron_features(B).T
    perm = benchmark(tsim.weight_matching, A, B)

    def base():
        r, c = linear_sum_assignment(-C)
        return c[np.argsort(r)]

    assert np.isclose(C[np.arange(m), perm].sum(), C[np.arange(m), base()].sum())
    _report(f"weight matching m={m} vs scipy", lambda: tsim.weight_matching(A, B), base)


def test_streaming_activation_moments_vs_corrcoef(benchmark):
    A, B = _nets(128, 32)
    X = np.random.default_rng(1).standard_normal((20000, 32))
    C = benchmark(activation_correlation, A, B, X, batch=4096)

    def base():
        H = np.hstack([np.maximum(X @ A.W.T, 0), np.maximum(X @ B.W.T, 0)])
        return np.corrcoef(H.T)[:128, 128:]

    assert np.allclose(C, base(), atol=1e-10)
    _report("activation moments (streamed, n=20000, m=128) vs corrcoef", lambda: activation_correlation(
        A, B, X, batch=4096), base, reps=3)
    _report("activation moments exact (kernel) vs sample n=20000", lambda: activation_correlation(A, B),
            lambda: activation_correlation(A, B, X, batch=4096), reps=3)


@pytest.mark.parametrize("method", ["activation", "ste", "optimal"])
def test_method_cost_relative_to_weight_matching(benchmark, method):
    m = 6 if method == "optimal" else 32
    if method == "optimal":
        pytest.importorskip("tsim.brute")
    if method == "ste":
        pytest.importorskip("torch")
    A, B = _nets(m, 16)
    T = tsim.Teacher.orthonormal(4, 16)
    kw = dict(T=T, ste_steps=100, grid=11)
    benchmark.pedantic(align, args=(A, B, method), kwargs=kw, rounds=3, iterations=1)
    t, b = _best(lambda: align(A, B, method, **kw), 3), _best(lambda: align(A, B, "weight"), 3)
    print(f"\n{method} (m={m}): {t * 1e3:.3f} ms = {t / b:.1f} x weight matching ({b * 1e3:.3f} ms)")
    assert t > 0 and b > 0


def test_merge_many_vs_reference(benchmark):
    rng = np.random.default_rng(2)
    nets = [tsim.TwoLayer(rng.standard_normal((64, 16)), np.ones(64)) for _ in range(5)]
    mg = benchmark(merge_many, nets, max_iters=20)
    assert len(mg.perms) == 5
    t, b = _best(lambda: merge_many(nets, max_iters=20), 3), _best(lambda: merge_to_reference(nets), 3)
    print(f"\nmerge_many (k=5, m=64, {mg.iters} sweeps): {t * 1e3:.3f} ms = {t / b:.1f} x merge_to_reference")
