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
