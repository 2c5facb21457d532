"""Training kernels: agreement with numpy references, determinism, divergence, checkpoints."""
import numpy as np
import pytest

import tsim
from tests import reference


def test_population_gd_matches_numpy_steps(teacher, rng):
    W0, a0 = tsim.init_ensemble(2, 4, teacher.d, [np.random.default_rng(s) for s in (1, 2)])
    lr = 0.05
    res = tsim.train_population(W0, a0, teacher, lr=lr, steps=5, train_a=True, record_every=1)
    for e in range(2):
        S = tsim.TwoLayer(W0[e], a0[e])
        for _ in range(5):
            gW, ga = tsim.population_grad(S, teacher)
            S = tsim.TwoLayer(S.W - lr * gW, S.a - lr * ga)
        assert np.allclose(res.W[e], S.W, rtol=1e-12, atol=1e-14)
        assert np.allclose(res.a[e], S.a, rtol=1e-12, atol=1e-14)
        assert res.loss[e] == pytest.approx(tsim.population_loss(S, teacher), rel=1e-12)


@pytest.mark.parametrize("train_a", [False, True])
def test_sample_gd_matches_numpy_reference(train_a, teacher, rng):
    X = tsim.sample_inputs(50, teacher.d, "gaussian", rng)
    y = tsim.labels(teacher, X, 0.1, rng)
    W0, a0 = tsim.init_ensemble(3, 4, teacher.d, [np.random.default_rng(s) for s in range(3)])
    c, lr = 0.5, 0.1
    res = tsim.train_gd(W0, a0, X, y, lr=lr, steps=4, c=c, train_a=train_a, record_every=1)
    for e in range(3):
        W, a = W0[e], a0[e]
        losses = []
        for _ in range(4):
            loss, W, a = reference.sample_gd_step(W, a, c, X, y, lr, train_a)
            losses.append(loss)
        assert np.allclose(res.W[e], W, rtol=1e-11, atol=1e-13)
        assert np.allclose(res.a[e], a, rtol=1e-11, atol=1e-13)
        assert np.allclose(res.curve[e, :4], losses, rtol=1e-11)


def test_sgd_is_deterministic_and_moves_towards_teacher(teacher):
    rng = np.random.default_rng(0)
    X = tsim.sample_inputs(200, teacher.d, "gaussian", rng)
    y = tsim.labels(teacher, X, 0.0, rng)
    W0, a0 = tsim.init_ensemble(4, 6, teacher.d, [np.random.default_rng(s) for s in range(4)])
    r1 = tsim.train_sgd(W0, a0, X, y, lr=0.02, steps=300, batch=16, rng=np.random.default_rng(7))
    r2 = tsim.train_sgd(W0, a0, X, y, lr=0.02, steps=300, batch=16, rng=np.random.default_rng(7))
    r3 = tsim.train_sgd(W0, a0, X, y, lr=0.02, steps=300, batch=16, rng=np.random.default_rng(8))
    assert np.array_equal(r1.W, r2.W) and np.array_equal(r1.curve, r2.curve, equal_nan=True)
    assert not np.array_equal(r1.W, r3.W)
    assert np.all(r1.curve[:, -1] < r1.curve[:, 0])


def test_same_seed_same_numbers_population(teacher):
    def run():
        W0, a0 = tsim.init_ensemble(3, 5, teacher.d, [np.random.default_rng([9, s]) for s in range(3)])
        return tsim.train_population(W0, a0, teacher, lr=0.05, steps=200)
    r1, r2 = run(), run()
    assert np.array_equal(r1.W, r2.W) and np.array_equal(r1.loss, r2.loss)


def test_divergence_is_recorded_and_others_go_on(teacher):
    W0, a0 = tsim.init_ensemble(3, 4, teacher.d, [np.random.default_rng(s) for s in range(3)])
    lr = np.array([0.05, 500.0, 0.05])
    res = tsim.train_population(W0, a0, teacher, lr=lr, steps=300, train_a=True)
    assert list(res.status) == ["max_steps", "diverged", "max_steps"]
    assert np.all(np.isfinite(res.W)) and np.all(np.isfinite(res.loss[[0, 2]]))
    assert res.steps[1] < 300 and res.steps[0] == 300
    X = tsim.sample_inputs(64, teacher.d, "gaussian", np.random.default_rng(1))
    y = teacher.forward(X)
    res = tsim.train_gd(W0, a0, X, y, lr=lr, steps=300, train_a=True)
    assert res.status[1] == "diverged" and res.status[0] != "diverged"
    assert np.all(np.isfinite(res.W))


def test_converged_status_and_curve(teacher):
    W0 = teacher.W[None] * 1.01
    res = tsim.train_population(W0, np.ones((1, teacher.M)), teacher, lr=0.5, steps=5000, tol=1e-20,
                                record_every=10)
    assert res.status[0] == "converged"
    assert res.loss[0] <= 1e-20
    rec = res.curve[0][~np.isnan(res.curve[0])]
    assert np.all(np.diff(rec) <= 1e-18)  # GD at a small step decreases the loss


def test_checkpoints_store_weights(teacher):
    W0, a0 = tsim.init_ensemble(2, 3, teacher.d, [np.random.default_rng(s) for s in range(2)])
    full = tsim.train_population(W0, a0, teacher, lr=0.05, steps=20, checkpoints=[0, 10, 20])
    part = tsim.train_population(W0, a0, teacher, lr=0.05, steps=10)
    assert np.array_equal(full.ckpt_W[:, 0], W0)
    assert np.array_equal(full.ckpt_W[:, 1], part.W)
    assert np.array_equal(full.ckpt_W[:, 2], full.W)
    assert full.checkpoint(1, 1).m == 3


def test_bad_arguments(teacher):
    W0, a0 = tsim.init_ensemble(1, 3, teacher.d, [np.random.default_rng(0)])
    with pytest.raises(ValueError, match="lr"):
        tsim.train_population(W0, a0, teacher, lr=-0.1, steps=10)
    with pytest.raises(ValueError, match="steps"):
        tsim.train_population(W0, a0, teacher, lr=0.1, steps=0)
    with pytest.raises(ValueError, match="batch"):
        tsim.train_sgd(W0, a0, np.ones((4, teacher.d)), np.ones(4), lr=0.1, steps=3, batch=8,
                       rng=np.random.default_rng(0))
