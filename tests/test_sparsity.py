import numpy as np
import pytest

import tsim


def test_sparsity_measures():
    W = np.array([[1.0, 0], [0, 2.0], [1e-6, 0], [0, 0]])
    S = tsim.TwoLayer(W, np.ones(4))
    assert tsim.neuron_magnitudes(S) == pytest.approx([1, 2, 1e-6, 0])
    assert tsim.sparse_fraction(S, rel=1e-3) == 0.5
    assert tsim.effective_neurons(S) == pytest.approx((3 + 1e-6) ** 2 / (5 + 1e-12))
    dense = tsim.TwoLayer(np.eye(5), np.ones(5))
    assert tsim.effective_neurons(dense) == pytest.approx(5) and tsim.sparse_fraction(dense) == 0
    assert tsim.sparse_fraction(tsim.TwoLayer(np.zeros((2, 2)), np.ones(2))) == 1.0
    # invariant under permutation and positive rescaling of (a_j, w_j) -> (a_j / s, s w_j)
    P = S.permute([3, 2, 1, 0])
    assert tsim.effective_neurons(P) == pytest.approx(tsim.effective_neurons(S))
    assert tsim.sparse_fraction(P) == tsim.sparse_fraction(S)
    assert np.array_equal(tsim.neuron_magnitudes(P), tsim.neuron_magnitudes(S)[[3, 2, 1, 0]])


@pytest.mark.parametrize("c", [1.0, 0.25])
def test_sparsity_is_invariant_under_relu_rescaling(rng, c):
    """relu(s w.x) = s relu(w.x) for s > 0: (w_j, a_j) -> (s_j w_j, a_j / s_j), one s_j per neuron, is
    the same network, and s_j = |c a_j| |w_j| (so both measures) does not change."""
    W = rng.standard_normal((6, 4))
    W[1] *= 1e-5   # a neuron below the 1e-3 threshold
    W[4] = 0.0     # a dead one
    a = rng.standard_normal(6)
    S = tsim.TwoLayer(W, a, c)
    s = np.array([1e-3, 7.0, 0.5, 1e4, 3.0, 2.0])
    R = tsim.TwoLayer(s[:, None] * W, a / s, c)
    X = rng.standard_normal((50, 4))
    assert np.allclose(R.forward(X), S.forward(X), rtol=1e-12, atol=1e-12)  # the same function
    assert np.allclose(tsim.neuron_magnitudes(R), tsim.neuron_magnitudes(S), rtol=1e-13, atol=0)
    assert tsim.sparse_fraction(S) == pytest.approx(2 / 6)
    assert tsim.sparse_fraction(R) == tsim.sparse_fraction(S)
    assert tsim.effective_neurons(R) == pytest.approx(tsim.effective_neurons(S), rel=1e-13)
    # the measures depend on the product |a_j| |w_j|: rescaling w_j alone changes them
    U = tsim.TwoLayer(s[:, None] * W, a, c)
    assert tsim.effective_neurons(U) != pytest.approx(tsim.effective_neurons(S), rel=1e-3)


@pytest.mark.parametrize("how", ["W", "a", "c"])
def test_sparsity_is_invariant_under_global_scaling(rng, how):
    """Both measures are relative (threshold rel * max_k s_k, participation ratio), so multiplying
    every s_j by one k > 0 (W -> k W, a -> k a or c -> k c) leaves them unchanged."""
    W = rng.standard_normal((8, 3))
    W[[2, 5]] *= 1e-6
    a = rng.standard_normal(8)
    S = tsim.TwoLayer(W, a, 0.5)
    for k in (1e-6, 3.0, 1e5):
        R = tsim.TwoLayer(k * W if how == "W" else W, k * a if how == "a" else a, 0.5 * k if how == "c" else 0.5)
        assert np.allclose(tsim.neuron_magnitudes(R), k * tsim.neuron_magnitudes(S), rtol=1e-13, atol=0)
        assert tsim.sparse_fraction(R) == tsim.sparse_fraction(S) == pytest.approx(2 / 8)
        assert tsim.effective_neurons(R) == pytest.approx(tsim.effective_neurons(S), rel=1e-13)
