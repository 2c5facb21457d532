"""Benchmarks of the deep path (run with ``pytest benchmarks --benchmark-enable``).

1. Deep weight matching (``tsim.deep.match.weight_matching``: torch float64 cost matrices + lap's
   Jonker-Volgenant solver) vs a plain reference written here: the same coordinate descent in numpy
   with ``scipy.optimize.linear_sum_assignment`` per permutation, visiting the permutations in the
   same seeded order, so both return the same permutations (checked). Nets: MLP 784-512-512-512-10
   and ResNet-20 (3 blocks per stage) with width x4 (64/128/256 channels), BatchNorm.
   Cost per sweep: sum over entries of n_P^2 * (entry size / n_P) flops for C plus O(n_P^3) per LAP.
2. Training throughput (examples/s) of the MLP 3x512 on MNIST-shaped data and its fraction of
   the measured float32 matmul peak: an MLP step costs about 6 * (weights) flops per example
   (2 forward, 4 backward).

Times are reported as ratios and printed; nothing asserts a wall-clock time.
"""
from __future__ import annotations

import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from scipy.optimize import linear_sum_assignment  # noqa: E402

from tsim.deep import match, models, spec, train  # noqa: E402


def _blas() -> str:
    try:
        from threadpoolctl import threadpool_info

        return ", ".join(f"{i['internal_api']}({i['num_threads']})" for i in threadpool_info())
    except Exception:  # threadpoolctl missing
        return "unknown"


def reference_weight_matching(sp: spec.PermutationSpec, sd_a: dict, sd_b: dict, seed: int = 0,
                              max_iter: int = 100, keys=None) -> dict:
    """Plain numpy + scipy coordinate descent: for each permutation P (seeded random order),
    C = sum_{(k, a) in P} W_A^{(a)} (pi_{-P} W_B)^{(a)T}, P <- linear_sum_assignment(C, maximize)."""
    keys = set(keys or [k for k, v in sd_a.items() if v.is_floating_point() and "running" not in k])
    A = {k: sd_a[k].double().numpy() for k in keys}
    B = {k: sd_b[k].double().numpy() for k in keys}
    p2a = {p: [(k, a) for k, a in lst if k in keys] for p, lst in sp.perm_to_axes().items()}
    sizes = spec.check_spec(sp, sd_a)
    names = list(sizes)
    perms = {p: np.arange(n) for p, n in sizes.items()}
    gen = torch.Generator().manual_seed(seed)
    for _ in range(max_iter):
        improved = False
        for idx in torch.randperm(len(names), generator=gen).tolist():
            p = names[idx]
            n = sizes[p]
            C = np.zeros((n, n))
            for k, a in p2a[p]:
                wb = B[k]
                for ax, q in enumerate(sp.axes[k]):
                    if q is not None and q != p:
                        wb = np.take(wb, perms[q], axis=ax)
                C += np.moveaxis(A[k], a, 0).reshape(n, -1) @ np.moveaxis(wb, a, 0).reshape(n, -1).T
            new = linear_sum_assignment(C, maximize=True)[1]
            if C[np.arange(n), new].sum() > C[np.arange(n), perms[p]].sum() + 1e-12 * max(
                    1.0, abs(C[np.arange(n), perms[p]].sum())):
                perms[p] = new
                improved = True
        if not improved:
            break
    return perms


def _best_of(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


NETS = {
    "mlp_3x512": dict(arch="mlp", in_shape=(1, 28, 28), depth=3, width=4, base=128, norm="none"),
    "resnet20_x4": dict(arch="resnet", in_shape=(1, 28, 28), depth=3, width=4, base=16, norm="batch"),
}


@pytest.mark.parametrize("name", list(NETS))
def test_weight_matching_vs_scipy(benchmark, name):
    kw = NETS[name]
    a = models.build(kw["arch"], kw["in_shape"], 10, kw["depth"], kw["width"], kw["base"], kw["norm"], seed=0)
    b = models.build(kw["arch"], kw["in_shape"], 10, kw["depth"], kw["width"], kw["base"], kw["norm"], seed=1)
    sp = spec.spec_for(a)
    keys = [k for k, _ in a.named_parameters()]
    sd_a, sd_b = a.state_dict(), b.state_dict()
    res = benchmark.pedantic(match.weight_matching, args=(sp, sd_a, sd_b),
                             kwargs=dict(seed=0, max_iter=20, keys=keys), rounds=3, iterations=1)
    ref = reference_weight_matching(sp, sd_a, sd_b, seed=0, max_iter=20, keys=keys)
    agree = np.mean([np.array_equal(res.perms[p].numpy(), ref[p]) for p in ref])
    t_tsim = _best_of(lambda: match.weight_matching(sp, sd_a, sd_b, seed=0, max_iter=20, keys=keys))
    t_ref = _best_of(lambda: reference_weight_matching(sp, sd_a, sd_b, seed=0, max_iter=20, keys=keys))
    print(f"\n[{name}] weight matching: tsim {t_tsim * 1e3:.1f} ms ({res.sweeps} sweeps), "
          f"numpy+scipy reference {t_ref * 1e3:.1f} ms -> {t_ref / t_tsim:.2f}x; "
          f"same perms for {agree:.0%} of {len(ref)} permutations; BLAS {_blas()}")
    assert agree == 1.0  # same algorithm, same order: same answer (correctness, not speed)


def _matmul_peak(n: int = 1024) -> float:
    """Measured float32 matmul flop/s (2 n^3 per product)."""
    x, y = torch.randn(n, n), torch.randn(n, n)
    t = _best_of(lambda: x @ y, repeat=5)
    return 2 * n ** 3 / t


@pytest.mark.parametrize("name", list(NETS))
def test_training_throughput(benchmark, name):
    kw = NETS[name]
    n = 2048 if kw["arch"] == "mlp" else 128
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(n, *kw["in_shape"], generator=g), torch.randint(0, 10, (n,), generator=g)

    def one_epoch():
        net = models.build(kw["arch"], kw["in_shape"], 10, kw["depth"], kw["width"], kw["base"], kw["norm"], seed=0)
        return train.train(net, X, y, lr=0.01, epochs=1, batch=128, seed=0)

    stats = benchmark.pedantic(one_epoch, rounds=1, iterations=1)
    t = _best_of(one_epoch, repeat=1 if kw["arch"] == "resnet" else 3)
    rate = n / t
    line = (f"\n[{name}] training: {rate:,.0f} examples/s ({stats.steps} steps of 128), "
            f"{torch.get_num_threads()} threads")
    if kw["arch"] == "mlp":
        weights = sum(p.numel() for p in models.build(**kw).parameters())
        peak = _matmul_peak()
        line += f"; {6 * weights * rate / 1e9:.2f} GFLOP/s = {6 * weights * rate / peak:.0%} of matmul peak " \
                f"({peak / 1e9:.1f} GFLOP/s)"
    print(line)
    assert stats.status == "ok"
