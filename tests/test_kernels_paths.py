"""The fast kernel paths: vectorised arccos accuracy, thread-split vs per-student population GD
(bit-identical), and the hand-loop vs BLAS paths of sample GD (equal up to rounding)."""
import numpy as np
import pytest
from numba import njit

import tsim
from tsim._kernels.arccos import _pmt_sn
from tsim._kernels.samplegd import _loss_grad_set


@njit(cache=True)
def _pmt_many(x):
    out = np.empty(x.size)
    for i in range(x.size):
        out[i] = _pmt_sn(x[i])[0]
    return out


def test_pi_minus_arccos_is_accurate_to_rounding():
    x = np.concatenate([np.linspace(-1, 1, 20001), -1 + np.logspace(-16, -1, 300), 1 - np.logspace(-16, -1, 300)])
    x = np.clip(x, -1.0, 1.0)
    got = _pmt_many(x)
    # references without cancellation: pi - acos(x) = 2 asin(sqrt((1 + x) / 2)) = pi - 2 asin(sqrt((1 - x) / 2))
    ref = np.where(x < 0, 2.0 * np.arcsin(np.sqrt((1.0 + x) / 2.0)), np.pi - 2.0 * np.arcsin(np.sqrt((1.0 - x) / 2.0)))
    assert np.all(np.abs(got - ref) <= 6e-16 * np.abs(ref))
    # numpy's pi - arccos loses ~half the digits near x = -1; this one does not
    assert np.allclose(got[np.abs(x) < 0.9], np.pi - np.arccos(x[np.abs(x) < 0.9]), rtol=1e-15, atol=0)
    assert _pmt_many(np.array([-1.0]))[0] == 0.0 and _pmt_many(np.array([1.0]))[0] == np.pi


def test_population_thread_split_equals_per_student_path():
    T = tsim.Teacher.orthonormal(4, 8)
    m = 300  # several row chunks: E = 1 splits rows over threads, E = 2 runs students in parallel
    W0, a0 = tsim.init_ensemble(2, m, 8, [np.random.default_rng(s) for s in (3, 4)])
    W0[0, 5] = 0.0  # a zero neuron
    r1 = tsim.train_population(W0[:1], a0[:1], T, lr=1e-3, steps=6, train_a=True, record_every=1)
    r2 = tsim.train_population(W0, a0, T, lr=1e-3, steps=6, train_a=True, record_every=1)
    assert np.array_equal(r1.W[0], r2.W[0]) and np.array_equal(r1.curve[0], r2.curve[0])
    assert np.all(r1.W[0, 5] == 0.0)


@pytest.mark.parametrize("m,d", [(13, 7), (40, 16)])
def test_sample_hand_and_blas_paths_agree(m, d):
    rng = np.random.default_rng(0)
    n = 700
    X = rng.standard_normal((n, d))
    y = rng.standard_normal(n)
    W = rng.standard_normal((m, d))
    a = rng.standard_normal(m)
    out = {}
    for use_blas in (False, True):
        H = np.empty((256, m)) if use_blas else np.empty((m, 1024))
        gW, ga = np.empty((m, d)), np.empty(m)
        loss = _loss_grad_set(W, a, 0.5, np.ascontiguousarray(X.T), X, y, True, use_blas, H, np.empty(1024), gW,
                              ga, np.empty((m, d)))
        out[use_blas] = (loss, gW, ga)
    assert out[False][0] == pytest.approx(out[True][0], rel=1e-13)
    assert np.allclose(out[False][1], out[True][1], rtol=1e-12, atol=1e-14)
    assert np.allclose(out[False][2], out[True][2], rtol=1e-12, atol=1e-14)
