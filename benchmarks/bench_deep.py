"""Benchmarks of the deep path (run with ``pytest benchmarks/bench_deep.py --benchmark-enable --benchmark-only``).

1. Classic coordinate descent (CD): ``tsim.deep.match.weight_matching(init="identity", restarts=0)``
   vs the same CD written here in numpy around ``lap.lapjv`` (exact float64), visiting the
   permutations in the same seeded order, so both return the same permutations (checked). Nets: MLP
   784-512-512-512-10 and ResNet-20 (3 blocks per stage) with width x4, BatchNorm, random pairs.
2. Search quality and time of the default ``weight_matching`` (layerwise start, CD, restarts within
   a work budget) beside CD from the identity (tsim's classic path, the algorithm of git-re-basin),
   the numpy/lapjv CD (time) and the ``rebasin`` package (PermutationCoordinateDescent, float32
   costs, scipy's solver; objective and time), on: noisy planted copies (B = hidden-unit
   permutation of A + Gaussian noise ``noise`` x each tensor's std) of 20-64-64-1 (noise 2x, 6 seeds)
   and 784-512-512-512-10 (noise 8x, 2 seeds); independent random 784-512-512-512-10 pairs
   (2 seeds); an independent pair of 64-128-128-128-10 MLPs trained on the teacher data (2 match
   seeds). Objectives are J = sum_k <W_k^A, pi(W_k^B)>, reported as ratios to CD's J and to the
   planted permutation's J. ``init="anneal"`` (graduated assignment start) is shown as the option it is.
3. Training throughput (examples/s) of the MLP 3x512 on MNIST-shaped data and its fraction of the
   measured float32 matmul peak: an MLP step costs about 6 * (weights) flops per example.

Times are best-of-N wall times in one process, reported as ratios (baseline / tsim); the numpy
baseline is timed with all BLAS threads and with one, and the faster is kept (tsim runs nets under
1024 units per layer on one BLAS thread). Nothing asserts a wall-clock time.
"""
from __future__ import annotations

import copy
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")
lap = pytest.importorskip("lap")
from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402

from tsim.deep import match, mnist, models, spec, train  # noqa: E402

try:
    from rebasin import PermutationCoordinateDescent
except ImportError:  # optional baseline: pip install rebasin (it leaves torch as it is)
    PermutationCoordinateDescent = None


def _blas() -> str:
    return ", ".join(f"{i['internal_api']}({i['num_threads']})" for i in threadpool_info())


def _lapjv_max(C: np.ndarray) -> np.ndarray:
    if len(C) == 1:
        return np.zeros(1, dtype=np.int64)
    return lap.lapjv(-C, return_cost=False)[0].astype(np.int64)


def numpy_descent(sp: spec.PermutationSpec, sd_a: dict, sd_b: dict, keys, seed: int = 0,
                  max_iter: int = 100) -> dict:
    """Plain numpy CD from the identity: for each permutation P (seeded random order, as tsim),
    C = sum_{(k, a) in P} W_A^{(a)} (pi_{-P} W_B)^{(a)T}, P <- lap.lapjv(-C) if it raises J."""
    A = {k: sd_a[k].double().numpy() for k in keys}
    B = {k: sd_b[k].double().numpy() for k in keys}
    p2a = {p: [(k, a) for k, a in lst if k in A] for p, lst in sp.perm_to_axes().items()}
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
            new = _lapjv_max(C)
            rows = np.arange(n)
            old = C[rows, perms[p]].sum()
            if C[rows, new].sum() > old + 1e-12 * max(1.0, abs(old)):
                perms[p] = new
                improved = True
        if not improved:
            break
    return perms


def objective(sp: spec.PermutationSpec, sd_a: dict, sd_b: dict, perms: dict, keys) -> float:
    """J = sum_k <W_k^A, pi(W_k^B)> in float64."""
    total = 0.0
    for k in keys:
        b = sd_b[k].double().numpy()
        for a, q in enumerate(sp.axes[k]):
            if q is not None:
                b = np.take(b, np.asarray(perms[q]), axis=a)
        total += float(np.vdot(sd_a[k].double().numpy(), b))
    return total


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _best(fn, repeat: int):
    """(last result, best wall time) of ``repeat`` calls."""
    best, out = np.inf, None
    for _ in range(repeat):
        out, t = _timed(fn)
        best = min(best, t)
    return out, best


def _numpy_time(fn, repeat: int):
    """Best time of fn with all BLAS threads and with one (the faster is the baseline)."""
    out, t_all = _best(fn, repeat)
    with threadpool_limits(limits=1, user_api="blas"):
        _, t_one = _best(fn, repeat)
    return out, min(t_all, t_one)


def rebasin_objective(model_a, sd_b: dict, sp, keys, seed: int, in_shape) -> tuple[float, float]:
    """(J, seconds) of rebasin's PermutationCoordinateDescent aligning a copy of B to A (seeded by
    torch.manual_seed, its order source); J is read from the permuted model."""
    sd_a = model_a.state_dict()
    model_a, model_b = copy.deepcopy(model_a).eval(), copy.deepcopy(model_a).eval()
    model_b.load_state_dict(sd_b)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        t0 = time.perf_counter()
        pcd = PermutationCoordinateDescent(model_a, model_b, torch.randn(2, *in_shape))
        pcd.rebasin()
        seconds = time.perf_counter() - t0
    ident = {p: np.arange(n) for p, n in spec.check_spec(sp, sd_a).items()}
    return objective(sp, sd_a, model_b.state_dict(), ident, keys), seconds


# --------------------------------------------------------------------------- 1. classic CD
NETS = {
    "mlp_3x512": dict(arch="mlp", in_shape=(1, 28, 28), depth=3, width=4, base=128, norm="none"),
    "resnet20_x4": dict(arch="resnet", in_shape=(1, 28, 28), depth=3, width=4, base=16, norm="batch"),
}


def _build(kw: dict, seed: int):
    return models.build(kw["arch"], kw["in_shape"], 10, kw["depth"], kw["width"], kw["base"], kw["norm"], seed=seed)


@pytest.mark.parametrize("name", list(NETS))
def test_classic_descent_vs_numpy(benchmark, record, name):
    a, b = _build(NETS[name], 0), _build(NETS[name], 1)
    sp, keys = spec.spec_for(a), [k for k, _ in a.named_parameters()]
    sd_a, sd_b = a.state_dict(), b.state_dict()

    def run():
        return match.weight_matching(sp, sd_a, sd_b, seed=0, max_iter=20, keys=keys, init="identity", restarts=0)

    res = benchmark.pedantic(run, rounds=1, iterations=1)
    ref, t_ref = _numpy_time(lambda: numpy_descent(sp, sd_a, sd_b, keys, seed=0, max_iter=20), repeat=2)
    _, t_tsim = _best(run, repeat=2)
    agree = np.mean([np.array_equal(res.perms[p].numpy(), ref[p]) for p in ref])
    record(group="deep weight matching, classic CD", case=name, tsim_s=t_tsim, base_s=t_ref,
           baseline="numpy CD + lap.lapjv", sweeps=res.sweeps, same_perms=float(agree))
    print(f"[{name}] same perms for {agree:.0%} of {len(ref)} permutations; BLAS {_blas()}")
    assert agree == 1.0  # same algorithm, same order: same answer (correctness, not speed)


# --------------------------------------------------------------------------- 2. search quality
def planted_pair(sizes, noise: float, seed: int):
    """(model A, state_dict of B, planted perms): B = q(A) + noise x std per tensor (of > 1 entry)."""
    d, *hidden, c = sizes
    a = models.build("mlp", (d,), c, depth=len(hidden), base=hidden[0], seed=seed)
    sp = spec.spec_for(a)
    g = torch.Generator().manual_seed(seed + 1000)
    q = spec.random_perms(spec.check_spec(sp, a.state_dict()), g)
    sd_b = {k: v + noise * v.std() * torch.randn(v.shape, generator=g) if v.numel() > 1 else v
            for k, v in spec.apply_perm(sp, q, a.state_dict()).items()}
    return a, sd_b, {p: torch.argsort(v) for p, v in q.items()}


def random_pair(sizes, seed: int):
    d, *hidden, c = sizes
    a = models.build("mlp", (d,), c, depth=len(hidden), base=hidden[0], seed=seed)
    b = models.build("mlp", (d,), c, depth=len(hidden), base=hidden[0], seed=seed + 1)
    return a, b.state_dict(), None


def trained_pair(sizes, seed: int):
    d, *hidden, c = sizes
    data = [torch.from_numpy(x) for x in mnist.teacher_arrays((d,), 4000, 100, width=64, depth=2, classes=c, seed=0)]
    nets = []
    for s in (seed, seed + 1):
        net = models.build("mlp", (d,), c, depth=len(hidden), base=hidden[0], seed=s)
        train.train(net, data[0], data[1], lr=0.1, epochs=5, batch=64, seed=s)
        nets.append(net)
    return nets[0], nets[1].state_dict(), None


CASES = {  # name: (pair maker, match seeds, timing repeats)
    "planted 20-64-64-1, noise 2x": (lambda s: planted_pair((20, 64, 64, 1), 2.0, s), range(6), 3),
    "planted 784-512-512-512-10, noise 8x": (lambda s: planted_pair((784, 512, 512, 512, 10), 8.0, s), range(2), 1),
    "independent random 784-512-512-512-10": (lambda s: random_pair((784, 512, 512, 512, 10), 10 + 2 * s), range(2), 1),
    "independent trained 64-128-128-128-10": (lambda s: trained_pair((64, 128, 128, 128, 10), 0), range(2), 2),
}
TOTALS: dict = {}


def _one_seed(pair, seed: int, repeat: int) -> dict:
    """Objectives and times of every method on one pair and match seed."""
    a, sd_b, truth = pair
    sp, keys, sd_a = spec.spec_for(a), [k for k, _ in a.named_parameters()], a.state_dict()
    in_shape = (sd_a["fc0.weight"].shape[1],)
    out = {}
    res, out["t_tsim"] = _best(lambda: match.weight_matching(sp, sd_a, sd_b, seed=seed, keys=keys), repeat)
    cd, out["t_cd"] = _best(lambda: match.weight_matching(sp, sd_a, sd_b, seed=seed, keys=keys, init="identity",
                                                           restarts=0), repeat)
    ref, out["t_numpy"] = _numpy_time(lambda: numpy_descent(sp, sd_a, sd_b, keys, seed=seed), repeat)
    ann = match.weight_matching(sp, sd_a, sd_b, seed=seed, keys=keys, init="anneal")
    out.update(J=res.objective, J_cd=cd.objective, J_numpy=objective(sp, sd_a, sd_b, ref, keys),
               J_anneal=ann.objective, t_anneal=ann.seconds, restarts=res.restarts, start=res.start)
    out["J_planted"] = objective(sp, sd_a, sd_b, truth, keys) if truth else np.nan
    if PermutationCoordinateDescent is not None:
        out["J_rebasin"], out["t_rebasin"] = rebasin_objective(a, sd_b, sp, keys, seed, in_shape)
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_search_quality_and_time(benchmark, record, case):
    make, seeds, repeat = CASES[case]
    rows = []
    pair = None
    for seed in seeds:
        if pair is None or "trained" not in case:
            pair = make(seed)
        rows.append(_one_seed(pair, seed, repeat))
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    col = {k: np.array([r[k] for r in rows], dtype=float) for k in rows[0] if k != "start"}
    t_tsim, t_numpy = col["t_tsim"].sum(), col["t_numpy"].sum()
    TOTALS[case] = (t_tsim, t_numpy)
    more = dict(J_over_cd=float(np.mean(col["J"] / col["J_cd"])),
                J_minus_cd=float(np.mean(col["J"] - col["J_cd"])),
                t_cd_s=float(col["t_cd"].sum()), anneal_J_over_cd=float(np.mean(col["J_anneal"] / col["J_cd"])),
                anneal_s=float(col["t_anneal"].sum()), restarts=float(col["restarts"].mean()), seeds=len(rows))
    if not np.isnan(col["J_planted"]).any():
        more.update(J_over_planted=float(np.mean(col["J"] / col["J_planted"])),
                    J_over_planted_min=float(np.min(col["J"] / col["J_planted"])),
                    cd_J_over_planted=float(np.mean(col["J_cd"] / col["J_planted"])),
                    reach_planted=float(np.mean(col["J"] >= col["J_planted"] - 1e-9)))
    if "J_rebasin" in col:
        more.update(rebasin_J_over_cd=float(np.mean(col["J_rebasin"] / col["J_cd"])),
                    rebasin_s=float(col["t_rebasin"].sum()))
        if "J_over_planted" in more:
            more["rebasin_J_over_planted"] = float(np.mean(col["J_rebasin"] / col["J_planted"]))
    else:
        more["rebasin"] = "not installed"
    record(group="deep weight matching, search", case=case, tsim_s=float(t_tsim), base_s=float(t_numpy),
           baseline="numpy CD + lap.lapjv", **more)
    for r in rows:
        print("   " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items()))
    assert np.all(col["J"] >= col["J_cd"] - 1e-9)
    if "J_over_planted" in more:
        assert more["reach_planted"] == 1.0


def test_search_total_time(benchmark, record):
    """Sum over the search cases above (run them first in the same session)."""
    if len(TOTALS) < len(CASES):
        pytest.skip("run with the search cases")
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    t_tsim = sum(t for t, _ in TOTALS.values())
    t_numpy = sum(t for _, t in TOTALS.values())
    record(group="deep weight matching, search", case="total of the cases", tsim_s=t_tsim, base_s=t_numpy,
           baseline="numpy CD + lap.lapjv")
    print(f"BLAS {_blas()}")


# --------------------------------------------------------------------------- 3. training
def _matmul_peak(n: int = 1024) -> float:
    """Measured float32 matmul flop/s (2 n^3 per product)."""
    x, y = torch.randn(n, n), torch.randn(n, n)
    _, t = _best(lambda: x @ y, repeat=5)
    return 2 * n ** 3 / t


@pytest.mark.parametrize("name", list(NETS))
def test_training_throughput(benchmark, name):
    kw = NETS[name]
    n = 2048 if kw["arch"] == "mlp" else 128
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(n, *kw["in_shape"], generator=g), torch.randint(0, 10, (n,), generator=g)

    def one_epoch():
        net = _build(kw, 0)
        return train.train(net, X, y, lr=0.01, epochs=1, batch=128, seed=0)

    stats = benchmark.pedantic(one_epoch, rounds=1, iterations=1)
    _, t = _best(one_epoch, repeat=1 if kw["arch"] == "resnet" else 3)
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
