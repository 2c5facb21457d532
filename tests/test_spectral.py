"""Distances and singular-vector alignment before and after weight matching."""
import numpy as np
import pytest

import tsim
from tsim.alignment.spectral import l2_distance, spectral_report, svd_alignment


def test_distance_vanishes_after_matching_a_permuted_copy(rng):
    A = tsim.TwoLayer(rng.standard_normal((6, 4)), rng.standard_normal(6), 0.5)
    p = rng.permutation(6)
    B = A.permute(p)
    before, after = l2_distance(A, B), l2_distance(A, B, tsim.weight_matching(A, B))
    assert before.rel > 0.1 and after.dist == pytest.approx(0.0, abs=1e-12)
    theta = np.concatenate([A.W.ravel(), A.c * A.a])
    assert before.dist <= 2 * np.linalg.norm(theta) + 1e-12
    assert l2_distance(A, tsim.TwoLayer(-A.W, -A.a, 0.5)).rel == pytest.approx(np.sqrt(2))


def test_singular_values_are_permutation_invariant_and_left_vectors_align(rng):
    A = tsim.TwoLayer(rng.standard_normal((7, 4)) * np.array([4.0, 2.0, 1.0, 0.5]), np.ones(7))
    p = rng.permutation(7)
    B = A.permute(p)
    rep = spectral_report(A, B, tsim.weight_matching(A, B))
    assert np.allclose(rep.W_before.s_a, rep.W_before.s_b)
    assert np.allclose(rep.W_before.right, 1.0)          # d-side vectors do not see the permutation
    assert np.allclose(rep.W_after.left, 1.0)             # m-side vectors align after matching
    assert rep.W_before.left.min() < 0.9                  # ... and not before
    rows = rep.rows()
    assert [r["rank"] for r in rows] == [1, 2, 3, 4] and all(r["left_after"] > 0.999 for r in rows)


def test_svd_alignment_rejects_shape_mismatch():
    with pytest.raises(ValueError, match="MA and MB"):
        svd_alignment(np.eye(3), np.eye(4))
