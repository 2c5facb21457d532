"""Permutation invariance, planted-permutation recovery, ties."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tsim


@settings(max_examples=40, deadline=None)
@given(m=st.integers(1, 9), seed=st.integers(0, 2 ** 31 - 1))
def test_permuting_never_changes_the_function(m, seed):
    rng = np.random.default_rng(seed)
    d = 4
    S = tsim.TwoLayer(rng.standard_normal((m, d)), rng.standard_normal(m), 0.7)
    perm = rng.permutation(m)
    P = S.permute(perm)
    X = rng.standard_normal((32, d))
    T = tsim.Teacher.random(2, d, seed=1)
    assert np.allclose(P.forward(X), S.forward(X), rtol=1e-12, atol=1e-12)
    assert tsim.population_loss(P, T) == pytest.approx(tsim.population_loss(S, T), rel=1e-12, abs=1e-15)


@settings(max_examples=25, deadline=None)
@given(m=st.integers(2, 40), seed=st.integers(0, 2 ** 31 - 1))
def test_weight_matching_recovers_planted_permutation(m, seed):
    rng = np.random.default_rng(seed)
    A = tsim.TwoLayer(rng.standard_normal((m, 6)), rng.standard_normal(m))
    p = rng.permutation(m)
    noisy = tsim.TwoLayer(A.W + 1e-3 * rng.standard_normal(A.W.shape), A.a + 1e-3 * rng.standard_normal(m))
    B = noisy.permute(p)  # B's neuron k is A's neuron p[k]
    perm = tsim.weight_matching(A, B)
    assert np.array_equal(perm, np.argsort(p))
    assert np.allclose(B.permute(perm).W, noisy.W)


def test_perm_convention_and_scipy_agree(rng):
    A = tsim.TwoLayer(rng.standard_normal((30, 5)), rng.standard_normal(30))
    B = tsim.TwoLayer(rng.standard_normal((30, 5)), rng.standard_normal(30))
    perm = tsim.weight_matching(A, B)
    from scipy.optimize import linear_sum_assignment

    Z = tsim.match.neuron_features(A) @ tsim.match.neuron_features(B).T
    r, c = linear_sum_assignment(Z, maximize=True)
    assert Z[np.arange(30), perm].sum() == pytest.approx(Z[r, c].sum(), rel=1e-12)
    dist = lambda q: np.sum((A.W - B.permute(q).W) ** 2) + np.sum((A.a - B.permute(q).a) ** 2)
    assert dist(perm) <= dist(np.arange(30)) + 1e-12


def test_ties_on_teacher_aligned_minima_are_reported_and_can_decide_the_barrier():
    # two global minima of f* = relu(x_0) + relu(x_1) with a = 1 (Lin-Li-Wu): neurons 0 or alpha e_j.
    # Scores <w, w'> + a a': a type-j/type-k pair and a type-j/zero pair both score 1.
    e = np.eye(2)
    A = tsim.TwoLayer(np.array([e[0], .5 * e[1], .5 * e[1], 0 * e[0]]), np.ones(4))
    B = tsim.TwoLayer(np.array([.5 * e[0], .5 * e[0], e[1], 0 * e[0]]), np.ones(4))
    T = tsim.Teacher.orthonormal(2, 2)
    assert tsim.population_loss(A, T) < 1e-14 and tsim.population_loss(B, T) < 1e-14
    perm = tsim.weight_matching(A, B)
    assert all(np.array_equal(perm, tsim.weight_matching(A, B)) for _ in range(3))
    rep = tsim.weight_matching_ties(A, B, perm)
    assert not rep.unique and rep.n_tied >= 2
    score = tsim.match.neuron_features(A) @ tsim.match.neuron_features(B).T
    barriers = []
    for i, k in rep.pairs:
        q = perm.copy()
        q[[i, k]] = perm[[k, i]]
        assert score[np.arange(4), q].sum() == pytest.approx(score[np.arange(4), perm].sum())
        barriers.append(tsim.barrier(A, B, T, perm=q).value)
    barriers.append(tsim.barrier(A, B, T, perm=perm).value)
    assert max(barriers) - min(barriers) > 1e-3


def test_unique_optimum_has_no_ties(rng):
    A = tsim.TwoLayer(rng.standard_normal((8, 4)), np.ones(8))
    B = A.permute(rng.permutation(8))
    assert tsim.weight_matching_ties(A, B, tsim.weight_matching(A, B)).unique


def test_bad_perm_and_shapes(rng):
    A = tsim.TwoLayer(rng.standard_normal((3, 2)), np.ones(3))
    with pytest.raises(ValueError, match="perm"):
        A.permute([0, 0, 1])
    with pytest.raises(ValueError, match="Pad"):
        tsim.weight_matching(A, tsim.TwoLayer(rng.standard_normal((4, 2)), np.ones(4)))
