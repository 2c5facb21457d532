"""Two-layer weight matching vs the assignment solvers called directly on a ready cost.

A, B: random two-layer nets (d = 16), cost C_ij = <z^A_i, z^B_j>, z = (w, c a), the hardest
(no planted structure) inner-product case. tsim.weight_matching builds C (one GEMM), rounds it
for ties and solves it exactly; the baselines get C ready-made:
``lap.lapjv(-C)`` and ``scipy.optimize.linear_sum_assignment(C, maximize=True)``.
Deep and activation matching are benchmarked in bench_deep.py and bench_align.py.
"""
import numpy as np
import pytest

import tsim
from benchmarks.conftest import best_time
from tsim.match import neuron_features

lap = pytest.importorskip("lap")


def _pair(m, d=16, seed=0):
    rng = np.random.default_rng(seed)
    A = tsim.TwoLayer(rng.standard_normal((m, d)), rng.standard_normal(m))
    B = tsim.TwoLayer(rng.standard_normal((m, d)), rng.standard_normal(m))
    return A, B


@pytest.mark.parametrize("m", [128, 1024, 4096])
def test_weight_matching(benchmark, record, m):
    from scipy.optimize import linear_sum_assignment

    A, B = _pair(m)
    C = neuron_features(A) @ neuron_features(B).T
    repeat = 3 if m < 4096 else 1

    perm = tsim.weight_matching(A, B)
    rows, cols = linear_sum_assignment(C, maximize=True)
    # same optimum value (the permutations may differ only on exact ties)
    assert np.isclose(C[np.arange(m), perm].sum(), C[rows, cols].sum(), rtol=1e-12)

    benchmark.pedantic(lambda: tsim.weight_matching(A, B), rounds=repeat, iterations=1, warmup_rounds=0)
    t_tsim = min(benchmark.stats.stats.data)
    t_jv = best_time(lambda: lap.lapjv(-C), repeat=repeat)
    t_lsa = best_time(lambda: linear_sum_assignment(C, maximize=True), repeat=repeat)
    case = f"m={m}, d=16"
    record("weight matching vs lap.lapjv", case, t_tsim, t_jv, "lap.lapjv on ready cost",
           target=1 / 1.2)
    record("weight matching vs scipy", case, t_tsim, t_lsa, "scipy linear_sum_assignment on ready cost",
           target=1.0 if m == 4096 else None)
