"""The fast kernel paths: vectorised arccos accuracy, thread-split vs per-student population GD
(bit-identical; both kernel branches are called directly, so this holds on any thread count), and
the hand-loop vs BLAS paths of sample GD (equal up to rounding)."""
import numba
import numpy as np
import pytest
from numba import njit

import tsim
from tsim._kernels import popgd
from tsim._kernels.arccos import _loss_grad_rows, _loss_grad_ws, _n_chunks, _pmt_sn, _workspace
from tsim._kernels.popgd import _train_students, _train_students_rows
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


def _popgd_inputs(T, m, E, seeds, steps=6):
    """The arguments train_population hands to the kernel, for E students of width m."""
    W0, a0 = tsim.init_ensemble(E, m, T.d, [np.random.default_rng(s) for s in seeds])
    W0[0, 5] = 0.0  # a zero neuron
    K = np.array([0, 3], dtype=np.int64)  # checkpoints
    return dict(W=np.ascontiguousarray(W0), a=np.ascontiguousarray(a0 + 0.1 * np.sin(np.arange(m))), c=1.0,
                TW=T.W * 1.0, Ta=T.a * T.c, tt=tsim.teacher_energy(T), scale=1.0, lr=np.full(E, 1e-3),
                steps=steps, tol=0.0, train_a=True, blowup=1e12, record_every=1, ckpt_steps=K,
                ckW=np.full((E, K.size, m, T.d), np.nan), cka=np.full((E, K.size, m), np.nan))


def test_population_row_split_kernel_equals_per_student_kernel():
    """Both population-GD entries, called directly, whatever the thread count: rows of one student
    split into chunks run by prange (_train_students_rows) and whole students run by prange with the
    chunks serial (_train_students) give bit-identical weights, curves and checkpoints."""
    T = tsim.Teacher.orthonormal(4, 8)
    m = 300
    assert _n_chunks(m) > 1  # several row chunks, so split_rows=True really splits
    out = {}
    for split, kernel in ((True, _train_students_rows), (False, _train_students)):
        args = _popgd_inputs(T, m, 2, (3, 4))
        res = kernel(**args)
        out[split] = (args["W"], args["a"], args["ckW"], args["cka"]) + tuple(res)
    for x, y in zip(out[True], out[False]):
        assert np.array_equal(x, y)
    W, a, ckW, cka, status = out[True][:5]
    assert np.all(status == 0)  # both students ran all 6 steps (max_steps), none diverged
    assert np.all(W[0, 5] == 0.0) and not np.array_equal(W[1], ckW[1, 0])  # it trained; the zero row stays
    assert np.all(np.isfinite(out[True][-1]))


def test_population_loss_parallel_chunks_equal_serial_chunks():
    """The loss and gradient with the row chunks on threads (what tsim.population_loss_grad runs
    from m = 1024 on several threads) equal the serial run of the same chunks bit for bit, and the public function."""
    T = tsim.Teacher.random(3, 6, seed=2)
    rng = np.random.default_rng(9)
    S = tsim.TwoLayer(rng.standard_normal((320, 6)), rng.standard_normal(320), 0.5)
    gW, ga = np.empty((S.m, S.d)), np.empty(S.m)
    L = _loss_grad_rows(S.W.copy(), S.a.copy(), S.c, T.W * 1.0, T.a * T.c, tsim.teacher_energy(T), 1.0, True, gW, ga)
    L3, gW3, ga3 = tsim.population_loss_grad(S, T)
    assert L == L3 and np.array_equal(gW, gW3) and np.array_equal(ga, ga3)
    gW2, ga2 = np.empty_like(gW), np.empty_like(ga)
    L2 = _loss_grad_ws(S.W.copy(), S.a.copy(), S.c, T.W * 1.0, T.a * T.c, tsim.teacher_energy(T), 1.0, True, gW2, ga2,
                       _workspace(S.m, S.d))
    assert L == L2 and np.array_equal(gW, gW2) and np.array_equal(ga, ga2)


def test_population_dispatch_on_two_threads(monkeypatch):
    """train_population with numba forced to 2 threads (when the machine allows 2): E = 1 takes the
    row-split branch, E = 2 the per-student branch, and student 0 comes out bit-identical."""
    threads = min(2, numba.config.NUMBA_NUM_THREADS)
    seen = []

    def spy(split, real):
        def call(*args):
            seen.append(split)
            return real(*args)
        return call

    monkeypatch.setattr(popgd, "_train_students_rows", spy(True, popgd._train_students_rows))
    monkeypatch.setattr(popgd, "_train_students", spy(False, popgd._train_students))
    T = tsim.Teacher.orthonormal(4, 8)
    m = 300
    W0, a0 = tsim.init_ensemble(2, m, 8, [np.random.default_rng(s) for s in (3, 4)])
    W0[0, 5] = 0.0
    before = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        r1 = tsim.train_population(W0[:1], a0[:1], T, lr=1e-3, steps=6, train_a=True, record_every=1)
        r2 = tsim.train_population(W0, a0, T, lr=1e-3, steps=6, train_a=True, record_every=1)
    finally:
        numba.set_num_threads(before)
    assert seen == ([True, False] if threads >= 2 else [False, False])
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


def test_path_losses_do_not_depend_on_the_thread_split(monkeypatch):
    """The t-points of a path split into chunks on threads give the same numbers as one serial call,
    and each equals the population loss of the interpolated net."""
    import numba

    from tsim._kernels import arccos

    T = tsim.Teacher.random(3, 5, seed=1)
    rng = np.random.default_rng(4)
    A = tsim.TwoLayer(rng.standard_normal((9, 5)), rng.standard_normal(9))
    B = tsim.TwoLayer(rng.standard_normal((9, 5)), rng.standard_normal(9))
    ts = np.linspace(0.0, 1.0, 7)
    serial = tsim.path_losses(A, B, T, ts)
    monkeypatch.setattr(arccos, "PATH_THREADS_FROM_WORK", 0)
    before = numba.get_num_threads()
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    try:
        split = tsim.path_losses(A, B, T, ts)
    finally:
        numba.set_num_threads(before)
    assert np.array_equal(serial, split)
    for t, v in zip(ts, serial):
        mid = tsim.TwoLayer((1 - t) * A.W + t * B.W, (1 - t) * A.a + t * B.a)
        assert v == pytest.approx(tsim.population_loss(mid, T), rel=1e-12)
