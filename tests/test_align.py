"""Alignment toolbox: one interface, activation matching with streaming moments, STE, padding,
teacher ground truth."""
import numpy as np
import pytest

import tsim
from tsim.alignment import (ActivationMoments, activation_correlation, align, functional_recovery, pad_pair,
                        planted_recovery, population_correlation, teacher_agreement, teacher_alignment)


def _net(rng, m, d, c=1.0):
    return tsim.TwoLayer(rng.standard_normal((m, d)), rng.standard_normal(m), c)


@pytest.mark.parametrize("seed", range(6))
def test_activation_and_weight_matching_agree_on_a_permuted_copy(seed):
    rng = np.random.default_rng(seed)
    A = _net(rng, 7, 5)
    p = rng.permutation(7)
    B = tsim.TwoLayer(A.W[p] + 1e-4 * rng.standard_normal((7, 5)), A.a[p])
    wm = align(A, B, "weight")
    am = align(A, B, "activation")
    am_s = align(A, B, "activation", n=20000, rng=rng, batch=999)
    assert np.array_equal(wm.perm, np.argsort(p))
    assert np.array_equal(am.perm, wm.perm)
    assert np.array_equal(am_s.perm, wm.perm)
    assert planted_recovery(am.perm, p) == 1.0
    assert functional_recovery(A, B, np.argsort(p), rtol=1e-3) == 1.0
    assert tsim.barrier(A, am.B, tsim.Teacher.orthonormal(3, 5)).value < 1e-6


def test_streaming_moments_do_not_depend_on_the_batching(rng):
    A, B = _net(rng, 4, 6), _net(rng, 5, 6)
    X = rng.standard_normal((1000, 6))
    HA, HB = np.maximum(X @ A.W.T, 0), np.maximum(X @ B.W.T, 0)
    ref = np.corrcoef(HA.T, HB.T)[:4, 4:]
    for batch in (1, 7, 1000, 5000):
        assert np.allclose(activation_correlation(A, B, X, batch=batch), ref, atol=1e-12)
    acc = ActivationMoments(4, 5)
    for s in range(0, 1000, 333):
        acc.update(HA[s:s + 333], HB[s:s + 333])
    assert acc.n == 1000 and np.allclose(acc.correlation(), ref, atol=1e-12)


def test_population_correlation_matches_monte_carlo(rng):
    A, B = _net(rng, 3, 4), _net(rng, 3, 4)
    exact = population_correlation(A.W, B.W)
    mc = activation_correlation(A, B, n=400_000, rng=rng)
    # sample correlations have standard error <= 1/sqrt(n) ~ 0.0016
    assert np.max(np.abs(exact - mc)) < 0.01
    assert np.allclose(np.diag(population_correlation(A.W, A.W)), 1.0)


def test_zero_neurons_have_zero_correlation(rng):
    A = _net(rng, 3, 4).pad(5)
    C = population_correlation(A.W, A.W)
    assert np.all(C[3:] == 0) and np.all(C[:, 3:] == 0)


def test_different_widths_are_padded_and_said_so(rng, teacher):
    A = _net(rng, 4, teacher.d)
    p = rng.permutation(6)
    B = A.pad(6).permute(p)  # A's function with two zero neurons, shuffled
    for method in ("weight", "activation"):
        r = align(A, B, method)
        assert r.padded and (r.m_a, r.m_b, r.m) == (4, 6, 6)
        assert np.allclose(r.A.W, A.pad(6).W) and np.allclose(r.B.W[:4], A.W)
        assert tsim.barrier(r.A, r.B, teacher).value < 1e-12
    r2 = align(B, A, "weight")
    assert r2.padded and r2.B.m == 6
    A2, B2, padded = pad_pair(A, A)
    assert not padded and A2.m == 4


def test_ste_recovers_a_planted_permutation_and_never_loses_to_wm_at_the_midpoint(rng):
    T = tsim.Teacher.orthonormal(3, 5)
    A = _net(rng, 5, 5)
    p = rng.permutation(5)
    r = align(A, A.permute(p), "ste", T=T, ste_steps=20, rng=np.random.default_rng(0))
    assert np.array_equal(r.perm, np.argsort(p))
    A, B = _net(rng, 5, 5), _net(rng, 5, 5)
    mid = lambda perm: tsim.population_loss(A.interpolate(B.permute(perm), 0.5), T)  # noqa: E731
    ste = align(A, B, "ste", T=T, ste_steps=40, rng=np.random.default_rng(0))
    assert ste.score == pytest.approx(mid(ste.perm), rel=1e-10)
    assert ste.score <= mid(tsim.weight_matching(A, B)) + 1e-12
    again = align(A, B, "ste", T=T, ste_steps=40, ste_noise=0.1, rng=np.random.default_rng(3))
    same = align(A, B, "ste", T=T, ste_steps=40, ste_noise=0.1, rng=np.random.default_rng(3))
    assert np.array_equal(again.perm, same.perm) and again.score == same.score


def test_brute_force_never_loses_to_weight_matching_on_the_barrier(rng):
    T = tsim.Teacher.orthonormal(2, 4)
    for _ in range(3):
        A, B = _net(rng, 4, 4), _net(rng, 4, 4)
        opt = align(A, B, "optimal", T=T, grid=11)
        wm = tsim.barrier(A, B, T, align="weight", grid=11).value
        assert opt.score <= wm + 1e-12
        assert tsim.barrier(A, opt.B, T, grid=11).value == pytest.approx(opt.score, abs=1e-12)


def test_optimal_refuses_a_large_width(rng, teacher):
    A = _net(rng, 9, teacher.d)
    with pytest.raises(ValueError, match="max_m"):
        align(A, A, "optimal", T=teacher, max_m=8)


def test_bad_method_and_missing_inputs_name_the_parameter(rng, teacher):
    A = _net(rng, 3, teacher.d)
    with pytest.raises(ValueError, match="method"):
        align(A, A, "magic")
    with pytest.raises(ValueError, match="rng"):
        align(A, A, "activation", n=100)
    with pytest.raises(ValueError, match="inputs"):
        activation_correlation(A, A, inputs="sphere")
    with pytest.raises(ValueError, match="teacher"):
        align(A, A, "ste")


def test_ties_on_teacher_aligned_minima_are_surfaced():
    # a fixed to 1 (train_a = false): A has neurons (e1, 0), B has (0, e2); z = (w, a) gives
    # <z_e1, z_0> = <z_e1, z_e2> = 1, so every pairing scores the same and a tie-break decides
    A = tsim.TwoLayer([[1.0, 0, 0], [0, 0, 0]], [1.0, 1.0])
    B = tsim.TwoLayer([[0.0, 0, 0], [0, 1.0, 0]], [1.0, 1.0])
    assert align(A, B, "weight").n_tied == 2
    C = tsim.TwoLayer([[1.0, 0, 0], [0, 1.0, 0]], [1.0, 1.0])
    assert align(C, C.permute([1, 0]), "weight").n_tied == 0


def test_teacher_alignment_and_agreement(rng):
    T = tsim.Teacher.orthonormal(3, 6)
    # student: teacher neurons scaled, one split in two halves, and a zero neuron
    S = tsim.TwoLayer(np.vstack([2 * T.W[0], T.W[1], 0.5 * T.W[2], 0.5 * T.W[2], np.zeros(6)]), np.ones(5))
    ta = teacher_alignment(S, T)
    assert list(ta.best) == [0, 1, 2, 2, -1]
    assert np.allclose(ta.best_cos[:4], 1.0) and np.isnan(ta.best_cos[4])
    p = rng.permutation(5)
    assert teacher_agreement(S, S.permute(p), np.argsort(p), T) == 1.0
    assert teacher_agreement(S, S, [1, 0, 2, 3, 4], T) == pytest.approx(3 / 5)
