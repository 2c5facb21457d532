"""theory/ predictions checked against the simulator: the kernel form of the loss, sampled global
minima, the closed-form Hessian and critical step, and the brute-force optimal permutation."""
import numpy as np
import pytest

import tsim
from theory.critical import (balanced_counts, critical_lr, gauss_newton_blocks, lambda_max_at_minimum,
                             lambda_max_hvp, predicted_sparsity, predicted_transition)
from theory.kernel import arccos_kernel, loss_and_grad
from theory.matching import matching_gap, sampled_gaps
from theory.minima import minima_barriers, predicted_curve, predicted_exponent, sample_minimum, sample_types
from tsim.alignment.exhaustive import all_perms, barrier_optimal_perm, perm_path_losses


# ---------------------------------------------------------------- kernel form of the loss
@pytest.mark.parametrize("inputs", ["gaussian", "sphere"])
def test_kernel_loss_matches_tsim_and_finite_differences(rng, inputs):
    T = tsim.Teacher.random(3, 5, seed=1)
    W = rng.standard_normal((4, 5))
    W[1] = 0.0                     # a zero neuron
    W[3] = -W[2]                   # antiparallel rows
    a = rng.standard_normal(4)
    S = tsim.TwoLayer(W, a, 0.7)
    L, gW, ga = loss_and_grad(W, a, T.W, T.a, 0.7, inputs)
    L2, gW2, ga2 = tsim.population_loss_grad(S, T, inputs)
    assert L == pytest.approx(L2, rel=1e-10)
    assert np.allclose(gW, gW2, atol=1e-10) and np.allclose(ga, ga2, atol=1e-10)
    assert np.all(gW[1] == 0)
    h = 1e-6
    for i, k in [(0, 0), (2, 3), (3, 1)]:
        E = np.zeros_like(W)
        E[i, k] = h
        fd = (loss_and_grad(W + E, a, T.W, T.a, 0.7, inputs)[0] - loss_and_grad(W - E, a, T.W, T.a, 0.7, inputs)[0])
        assert gW[i, k] == pytest.approx(fd / (2 * h), rel=1e-5, abs=1e-8)


@pytest.mark.parametrize("inputs", ["gaussian", "sphere"])
def test_kernel_loss_matches_monte_carlo(rng, inputs):
    T = tsim.Teacher.orthonormal(2, 4)
    S = tsim.TwoLayer(rng.standard_normal((3, 4)), np.ones(3))
    X = tsim.sample_inputs(200_000, 4, inputs, rng)
    r2 = 0.5 * (S.forward(X) - T.forward(X)) ** 2
    L = loss_and_grad(S.W, S.a, T.W, T.a, 1.0, inputs)[0]
    assert abs(r2.mean() - L) < 4 * r2.std() / np.sqrt(X.shape[0])


def test_arccos_kernel_identities(rng):
    u = rng.standard_normal(5)
    K = arccos_kernel(np.stack([u, 2 * u, -u, 0 * u]), u[None])
    assert K[0, 0] == pytest.approx(u @ u / 2) and K[1, 0] == pytest.approx(u @ u)
    assert K[2, 0] == pytest.approx(0.0, abs=1e-15) and K[3, 0] == 0.0


# ---------------------------------------------------------------- sampled global minima
@pytest.mark.parametrize("r", [0.0, 0.4])
def test_sampled_minima_are_global_minima(rng, r):
    M, d = 3, 6
    T = tsim.Teacher.orthonormal(M, d)
    for m in (3, 7, 40):
        S = sample_minimum(m, M, d, rng, r)
        assert tsim.population_loss(S, T) < 1e-13
        gW, _ = tsim.population_grad(S, T)
        assert np.abs(gW).max() < 1e-12
        types = np.where(np.linalg.norm(S.W, axis=1) > 0, np.argmax(S.W, axis=1), -1)
        for j in range(M):  # each type's alphas sum to 1
            assert S.W[types == j, j].sum() == pytest.approx(1.0)
        assert np.count_nonzero(S.W) == np.count_nonzero(types >= 0)


def test_sparse_types_fraction_and_validation(rng):
    zeros = np.mean([np.mean(sample_types(50, 2, rng, r=0.3) == 0) for _ in range(200)])
    assert abs(zeros - 0.3) < 0.02
    with pytest.raises(ValueError, match="m >= M"):
        sample_types(2, 3, rng)
    with pytest.raises(ValueError, match="r must be"):
        sample_types(5, 2, rng, r=1.0)


def test_trained_students_are_teacher_aligned_minima():
    """Population GD ends at (near) the minima that theory.minima samples: each neuron ~0 or ~alpha e_j."""
    T = tsim.Teacher.orthonormal(2, 4)
    rngs = [np.random.default_rng([5, e]) for e in range(2)]
    W0, a0 = tsim.init_ensemble(2, 5, 4, rngs, sigma0=0.05)
    res = tsim.train_population(W0, a0, T, lr=0.05, steps=20000, tol=1e-14)
    for e in range(2):
        S = res.student(e)
        assert tsim.population_loss(S, T) < 1e-8
        n = np.linalg.norm(S.W, axis=1)
        off = np.sort(np.abs(S.W[:, :2]), axis=1)[:, 0]  # weight on the other teacher direction
        # angle to the nearest e_j below 0.01 rad (it decays slowly: the loss is cubic in the angle)
        assert np.all((n < 1e-3) | (off < 1e-2 * n))
        assert np.abs(S.W[:, 2:]).max() < 1e-3   # nothing outside span(e_1, e_2)


def test_minima_barriers_shapes_and_order(rng):
    df = minima_barriers(6, 2, 4, 6, rng, aligns=("naive", "weight", "optimal"))
    assert len(df) == 6 and {"barrier_naive", "barrier_wm", "barrier_opt", "n_tied"} <= set(df.columns)
    assert (df["barrier_opt"] <= df["barrier_wm"] + 1e-12).all()
    assert (df["barrier_opt"] >= -1e-12).all()


def test_predicted_curve_decays_and_has_an_exponent():
    curve = predicted_curve([4, 8, 16, 32, 64, 128], M=2, d=4, n=12, seed=3)
    means = curve.groupby("m")["barrier_wm"].mean()
    assert means.loc[128] < means.loc[8]
    fit = predicted_exponent(curve, min_m=16, n_boot=100)
    assert fit.alpha > 0.2 and fit.ci[0] < fit.alpha < fit.ci[1]


# ---------------------------------------------------------------- Hessian and critical step
def test_gauss_newton_blocks_match_monte_carlo(rng):
    M, d = 2, 3
    S = gauss_newton_blocks(M, d)
    X = rng.standard_normal((400_000, d))
    est = np.einsum("n,ni,nk->ik", (X[:, 0] > 0) & (X[:, 1] > 0), X, X) / X.shape[0]
    assert np.allclose(est, S[0, 1], atol=5e-3)
    assert np.allclose(gauss_newton_blocks(M, d, "sphere"), S / d)


@pytest.mark.parametrize("r", [0.0, 0.5])
def test_closed_form_lambda_max_equals_hvp_lanczos(rng, r):
    M, d = 3, 5
    T = tsim.Teacher.orthonormal(M, d)
    S = sample_minimum(9, M, d, rng, r)
    nz = np.linalg.norm(S.W, axis=1) > 0
    counts = [np.sum(nz & (np.argmax(S.W, axis=1) == j)) for j in range(M)]
    lam = lambda_max_at_minimum(counts, d)
    assert lambda_max_hvp(S, T) == pytest.approx(lam, rel=1e-4)
    assert critical_lr(S, T) == pytest.approx(2 / lam, rel=1e-4)
    # only the counts matter, and the spectrum scales linearly with them
    assert lambda_max_at_minimum(2 * np.asarray(counts), d) == pytest.approx(2 * lam)


def test_gd_stability_switches_at_the_critical_step(rng):
    """GD started next to a minimum stays below 2/lambda_max and leaves it above."""
    M, d = 2, 3
    T = tsim.Teacher.orthonormal(M, d)
    S = sample_minimum(4, M, d, rng)
    eta = critical_lr(S, T)
    W0 = S.W + 1e-4 * rng.standard_normal(S.W.shape) * (S.W != 0)
    W0 = np.stack([W0, W0])
    res = tsim.train_population(W0, np.ones((2, 4)), T, lr=np.array([0.9 * eta, 1.1 * eta]), steps=3000)
    drift = np.linalg.norm(res.W - S.W[None], axis=(1, 2))
    assert drift[0] < 1e-3 and (drift[1] > 1e-2 or res.status[1] == "diverged")


def test_predicted_transition_and_sparsity():
    p = predicted_transition(32, 4, 16, lam_init=6.0)
    assert p["sparsify"] < p["diverge"] and p["lambda_dense"] == pytest.approx(8 * p["lambda_one"], rel=1e-12)
    assert np.array_equal(balanced_counts(10, 4), [3, 3, 2, 2])
    eta = np.array([0.5, 1.0, 1.2, 10.0]) * p["eta_sparsify"]  # 10x is above 2/lambda_one
    sp = predicted_sparsity(eta, 32, 4, 16)
    assert sp[0] == 0.0 and sp[2] > 0 and np.isnan(sp[3])
    assert np.all(np.diff(sp[:3]) >= 0)


# ---------------------------------------------------------------- brute force vs weight matching
def test_perm_path_losses_equal_tsim_path_losses(rng):
    T = tsim.Teacher.orthonormal(2, 3)
    A = tsim.TwoLayer(rng.standard_normal((4, 3)), rng.standard_normal(4), 0.5)
    B = tsim.TwoLayer(rng.standard_normal((4, 3)), rng.standard_normal(4), 0.5)
    perms = all_perms(4)[::5]
    ts = np.linspace(0, 1, 7)
    got = perm_path_losses(A, B, T, perms, ts, "sphere")
    for k, p in enumerate(perms):
        assert np.allclose(got[k], tsim.path_losses(A, B.permute(p), T, ts, "sphere"), rtol=1e-10, atol=1e-13)


def test_barrier_optimal_perm_is_optimal_and_consistent(rng):
    T = tsim.Teacher.orthonormal(2, 4)
    A = sample_minimum(6, 2, 4, rng)
    B = sample_minimum(6, 2, 4, rng)
    perm, value = tsim.barrier_optimal_perm(A, B, T, grid=25)
    assert value == pytest.approx(tsim.barrier(A, B, T, perm=perm, grid=25).value, abs=1e-14)
    for p in all_perms(6)[::97]:  # no permutation does better
        assert tsim.barrier(A, B, T, perm=p, grid=25).value >= value - 1e-14
    assert value <= tsim.barrier(A, B, T, align="weight", grid=25).value + 1e-14


def test_barrier_optimal_perm_recovers_planted_permutation(rng):
    T = tsim.Teacher.orthonormal(3, 4)
    A = sample_minimum(6, 3, 4, rng)
    p = np.array([5, 3, 0, 4, 1, 2])
    B = A.permute(p)
    assert tsim.barrier(A, B, T).value > 1e-4  # without alignment the copies are not connected
    perm, value = barrier_optimal_perm(A, B, T)
    assert np.array_equal(np.sort(perm), np.arange(6))
    assert abs(value) < 1e-12
    # Neurons alpha e_j of one type can be exchanged at zero barrier (their sum stays 1 along the
    # path), so the planted permutation is recovered up to swaps within a type: every neuron of A is
    # matched with a neuron of B of its own type (a cross-type match would leave a barrier).
    types = np.argmax(A.W, axis=1)
    assert np.array_equal(np.argmax(B.permute(perm).W, axis=1), types)
    same_type = types[:, None] == types[None, :]
    assert np.all(same_type[np.arange(6), p[perm]])  # A-neuron i <-> A-neuron p[perm[i]], same type
    assert tsim.barrier(A, B, T, perm=perm).value == pytest.approx(value, abs=1e-14)


def test_barrier_optimal_perm_recovers_unique_planted_permutation(rng):
    """One neuron per teacher direction (m = M): the rows are distinct and every permutation other
    than the planted one mixes two types, so the recovery is exact."""
    T = tsim.Teacher.orthonormal(5, 6)
    A = sample_minimum(5, 5, 6, rng)
    p = np.array([3, 0, 4, 1, 2])
    B = A.permute(p)
    perm, value = barrier_optimal_perm(A, B, T)
    assert abs(value) < 1e-12
    assert np.array_equal(perm, np.argsort(p))  # B.permute(perm) = A exactly
    assert np.array_equal(B.permute(perm).W, A.W) and np.array_equal(B.permute(perm).a, A.a)
    for q in all_perms(5)[1::7]:  # any other permutation leaves a barrier
        if not np.array_equal(q, perm):
            assert tsim.barrier(A, B, T, perm=q, grid=25).value > 1e-3


def test_barrier_optimal_perm_validates():
    T = tsim.Teacher.orthonormal(2, 3)
    A = tsim.TwoLayer(np.ones((9, 3)), np.ones(9))
    with pytest.raises(ValueError, match="max_m"):
        barrier_optimal_perm(A, A, T)
    with pytest.raises(ValueError, match="grid"):
        barrier_optimal_perm(A, A, T, grid=1, max_m=9)


def test_matching_gap_is_nonnegative_on_minima():
    df = sampled_gaps([4, 5], M=2, d=3, n=4, seed=1)
    assert (df["gap"] >= -1e-12).all() and len(df) == 8
    T = tsim.Teacher.orthonormal(2, 3)
    A = sample_minimum(3, 2, 3, np.random.default_rng(0))
    g = matching_gap(A, A, T)
    assert g["barrier_opt"] == pytest.approx(0.0, abs=1e-14)
