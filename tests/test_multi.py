"""Many networks: merging, simplex and k-average barriers, strong connectivity."""
import numpy as np
import pytest

import tsim
from tsim.alignment.multi import (average, average_barrier, merge_many, merge_to_reference, simplex_barrier, simplex_grid,
                        strong_connectivity)


def _copies(rng, k, m=6, d=5, noise=0.0):
    A = tsim.TwoLayer(rng.standard_normal((m, d)), rng.standard_normal(m))
    perms = [np.arange(m)] + [rng.permutation(m) for _ in range(k - 1)]
    nets = [tsim.TwoLayer(A.W[p] + noise * rng.standard_normal((m, d)), A.a[p]) for p in perms]
    return A, perms, nets


def test_simplex_grid_covers_the_simplex():
    lam = simplex_grid(3, 5)
    assert lam.shape == (15, 3)  # C(5 + 1, 2)
    assert np.allclose(lam.sum(axis=1), 1.0) and lam.min() >= 0
    for v in np.eye(3):
        assert np.any(np.all(np.isclose(lam, v), axis=1))
    with pytest.raises(ValueError, match="grid"):
        simplex_grid(3, 1)


def test_two_network_simplex_barrier_is_the_barrier(rng, teacher):
    A = tsim.TwoLayer(rng.standard_normal((4, teacher.d)), np.ones(4))
    B = tsim.TwoLayer(rng.standard_normal((4, teacher.d)), np.ones(4))
    assert simplex_barrier([A, B], teacher, grid=11).value == pytest.approx(
        tsim.barrier(A, B, teacher, grid=11).value, rel=1e-12, abs=1e-14)


@pytest.mark.parametrize("k", [3, 4])
def test_merged_copies_of_one_network_have_zero_barrier(k, rng, teacher):
    A, perms, nets = _copies(rng, k, d=teacher.d)
    assert abs(average_barrier(nets, teacher)) > 1e-3  # unaligned copies do not average to A
    for mg in (merge_to_reference(nets), merge_many(nets, rng=rng), merge_many(nets[::-1])):
        assert simplex_barrier(mg.nets, teacher, grid=6).value == pytest.approx(0.0, abs=1e-12)
        assert average_barrier(mg.nets, teacher) == pytest.approx(0.0, abs=1e-12)
        assert np.allclose(mg.average.W, mg.nets[0].W)
    assert merge_many(nets).converged


def test_merge_many_does_not_depend_on_the_reference(rng, teacher):
    _, perms, nets = _copies(rng, 4, d=teacher.d, noise=0.05)
    a = merge_many(nets)
    order = [2, 0, 3, 1]
    b = merge_many([nets[i] for i in order])
    # relative alignment of networks i and j: perms[i] vs perms[j] up to one common relabelling
    for x in range(4):
        for y in range(4):
            i, j = order[x], order[y]
            rel_a = a.perms[i][np.argsort(a.perms[j])]
            rel_b = b.perms[x][np.argsort(b.perms[y])]
            assert np.array_equal(rel_a, rel_b)


def test_strong_connectivity_on_noisy_copies(rng, teacher):
    _, _, nets = _copies(rng, 3, d=teacher.d, noise=0.02)
    sc = strong_connectivity(nets, teacher, grid=11)
    for M in (sc.shared, sc.pairwise, sc.naive):
        assert np.allclose(M, M.T) and np.all(np.diag(M) == 0)
    s = sc.summary()
    assert s["shared_max"] < 0.1 * s["naive_max"]
    assert s["pairwise_max"] < 0.1 * s["naive_max"]


def test_average_and_padding(rng, teacher):
    A = tsim.TwoLayer(rng.standard_normal((3, teacher.d)), np.ones(3))
    B = tsim.TwoLayer(rng.standard_normal((5, teacher.d)), np.ones(5))
    mg = merge_to_reference([A, B])
    assert all(S.m == 5 for S in mg.nets)
    avg = average([A.pad(5), A.pad(5)])
    assert np.allclose(avg.W, A.pad(5).W)
    with pytest.raises(ValueError, match="at least 2"):
        merge_many([A])
