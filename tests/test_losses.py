"""Population loss: closed form vs Monte Carlo, vs a loop reference, identities, gradients."""
import numpy as np
import pytest

import tsim
from tests import reference


def random_student(rng, m, d, c=1.0):
    return tsim.TwoLayer(rng.standard_normal((m, d)) / np.sqrt(d), rng.standard_normal(m), c)


@pytest.mark.parametrize("inputs", ["gaussian", "sphere"])
def test_population_loss_matches_monte_carlo(inputs, rng):
    d = 6
    T = tsim.Teacher.random(M=3, d=d, seed=1, a=[1.0, -0.5, 2.0])
    S = random_student(rng, 5, d)
    exact = tsim.population_loss(S, T, inputs)
    n = 200_000
    X = tsim.sample_inputs(n, d, inputs, rng)
    sq = 0.5 * (S.forward(X) - T.forward(X)) ** 2
    se = sq.std() / np.sqrt(n)
    assert abs(sq.mean() - exact) < 5 * se


def test_sphere_is_gaussian_over_d(rng, teacher):
    S = random_student(rng, 4, teacher.d)
    assert tsim.population_loss(S, teacher, "sphere") == pytest.approx(
        tsim.population_loss(S, teacher, "gaussian") / teacher.d, rel=1e-12)


def test_kernel_matches_monte_carlo(rng):
    U = rng.standard_normal((3, 4))
    V = rng.standard_normal((2, 4))
    X = rng.standard_normal((400_000, 4))
    mc = np.maximum(X @ U.T, 0).T @ np.maximum(X @ V.T, 0) / len(X)
    assert np.allclose(tsim.kernel_matrix(U, V), mc, rtol=0.03, atol=0.01)


def test_loss_matches_loop_reference(rng):
    T = tsim.Teacher.random(M=3, d=4, seed=2, a=[0.5, 1.0, -1.0])
    S = random_student(rng, 6, 4, c=0.3)
    W = S.W.copy()
    W[2] = 0.0
    W[4] = -W[1]  # antiparallel pair
    S = tsim.TwoLayer(W, S.a, S.c)
    ref = reference.population_loss(S.W, S.a, S.c, T.W, T.a)
    assert tsim.population_loss(S, T) == pytest.approx(ref, rel=1e-12, abs=1e-14)


def test_identities(teacher):
    # student equal to the teacher: loss 0; zero student: 1/2 E[f*^2]; m = 1 by hand
    assert abs(tsim.population_loss(tsim.TwoLayer(teacher.W, teacher.a), teacher)) < 1e-14
    zero = tsim.TwoLayer(np.zeros((2, teacher.d)), np.ones(2))
    assert tsim.population_loss(zero, teacher) == pytest.approx(tsim.teacher_energy(teacher))
    # orthonormal teacher, M = 3: E f*^2 = 3 * 1/2 + 6 * kappa(e_i, e_j) = 3/2 + 6/(2 pi)
    assert tsim.teacher_energy(teacher) == pytest.approx(0.5 * (1.5 + 6 / (2 * np.pi)))
    # m = 1 student w = alpha e_1 against teacher e_1 alone: L = (alpha - 1)^2 / 4
    T1 = tsim.Teacher.orthonormal(1, 3)
    S1 = tsim.TwoLayer([[0.3, 0, 0]], [1.0])
    assert tsim.population_loss(S1, T1) == pytest.approx(0.7 ** 2 / 4)


@pytest.mark.parametrize("c", [1.0, 0.25])
@pytest.mark.parametrize("inputs", ["gaussian", "sphere"])
def test_gradient_matches_finite_differences(c, inputs, rng):
    T = tsim.Teacher.random(M=2, d=4, seed=3)
    W = rng.standard_normal((5, 4))
    W[3] = -W[0] * 0.7  # antiparallel rows
    W[4] = 2.0 * W[1]  # parallel rows
    S = tsim.TwoLayer(W, rng.standard_normal(5), c)
    _, gW, ga = tsim.population_loss_grad(S, T, inputs)
    h = 1e-6
    for i in range(5):
        for k in range(4):
            Wp, Wm = W.copy(), W.copy()
            Wp[i, k] += h
            Wm[i, k] -= h
            fd = (tsim.population_loss(tsim.TwoLayer(Wp, S.a, c), T, inputs)
                  - tsim.population_loss(tsim.TwoLayer(Wm, S.a, c), T, inputs)) / (2 * h)
            assert gW[i, k] == pytest.approx(fd, rel=1e-5, abs=1e-7)
        ap, am = S.a.copy(), S.a.copy()
        ap[i] += h
        am[i] -= h
        fd = (tsim.population_loss(tsim.TwoLayer(W, ap, c), T, inputs)
              - tsim.population_loss(tsim.TwoLayer(W, am, c), T, inputs)) / (2 * h)
        assert ga[i] == pytest.approx(fd, rel=1e-5, abs=1e-7)


def test_zero_neuron_gives_finite_zero_gradient(teacher):
    W = np.zeros((3, teacher.d))
    W[0, 0] = 0.5
    S = tsim.TwoLayer(W, np.ones(3))
    loss, gW, ga = tsim.population_loss_grad(S, teacher)
    assert np.isfinite(loss) and np.all(np.isfinite(gW)) and np.all(np.isfinite(ga))
    assert np.all(gW[1:] == 0.0) and np.all(ga[1:] == 0.0)
    assert np.any(gW[0] != 0.0)


def test_hessian_max_eig_matches_dense_hessian(rng):
    T = tsim.Teacher.orthonormal(2, 3)
    S = random_student(rng, 3, 3)
    n = S.m * S.d
    H = np.zeros((n, n))
    h = 1e-5
    for p in range(n):
        Wp, Wm = S.W.copy().ravel(), S.W.copy().ravel()
        Wp[p] += h
        Wm[p] -= h
        gp, _ = tsim.population_grad(tsim.TwoLayer(Wp.reshape(S.W.shape), S.a), T)
        gm, _ = tsim.population_grad(tsim.TwoLayer(Wm.reshape(S.W.shape), S.a), T)
        H[:, p] = (gp - gm).ravel() / (2 * h)
    lam = np.linalg.eigvalsh(0.5 * (H + H.T)).max()
    assert tsim.hessian_max_eig(S, T) == pytest.approx(lam, rel=1e-4)


def test_bad_inputs_name_the_parameter(teacher):
    S = tsim.TwoLayer(np.ones((2, teacher.d)), np.ones(2))
    with pytest.raises(ValueError, match="inputs"):
        tsim.population_loss(S, teacher, "uniform")
    with pytest.raises(ValueError, match="dimension"):
        tsim.population_loss(tsim.TwoLayer(np.ones((2, 2)), np.ones(2)), teacher)
