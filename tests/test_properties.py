"""Property tests over real weights (hypothesis, tests/strategies.py): population loss and gradient,
weight matching and barriers on nets with zero, antiparallel, duplicated, tiny and huge rows.

Tolerances are set from the sizes of the terms, not of the result: ``magnitude`` bounds every term
of the loss (kappa(u, v) <= |u||v| / 2), so rounding errors are a few eps times it.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tsim
from strategies import net_pairs, nets, permutations_of, teachers

EPS = np.finfo(np.float64).eps
# small, deterministic and without a database: CI sees the same examples every run
FAST = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FEW = settings(FAST, max_examples=8)

widths = st.integers(1, 7)
dims = st.integers(1, 6)
inputs_st = st.sampled_from(["gaussian", "sphere"])


@st.composite
def problems(draw, special=True):
    """(student, teacher, inputs) of matching input dimension."""
    d = draw(dims)
    return draw(nets(widths, d, special)), draw(teachers(d)), draw(inputs_st)


def input_scale(inputs, d):
    return 1.0 if inputs == "gaussian" else 1.0 / d


def mass(S):
    """sum_j |c a_j| |w_j|: bounds |f(x)| / |x|."""
    return float(np.sum(np.abs(S.c * S.a) * np.linalg.norm(S.W, axis=1)))


def magnitude(S, T, inputs):
    """Upper bound on every term of the loss: 1/2 (mass(S) + mass(T))^2 (times the input scale)."""
    return input_scale(inputs, S.d) * 0.5 * (mass(S) + mass(T)) ** 2


def path_magnitude(A, B, T, inputs):
    """:func:`magnitude` for every net on the segment (1 - t) A + t B: |a_j(t)| |w_j(t)| <= (|a^A_j| +
    |a^B_j|) (|w^A_j| + |w^B_j|), which can be far above both ends (a huge row meeting a large a)."""
    c = max(abs(A.c), abs(B.c))
    m = float(np.sum(c * (np.abs(A.a) + np.abs(B.a)) * (np.linalg.norm(A.W, axis=1) + np.linalg.norm(B.W, axis=1))))
    return input_scale(inputs, A.d) * 0.5 * (m + mass(T)) ** 2


def features(S):
    """z_j = (w_j, c a_j), the vectors weight matching compares."""
    return np.hstack([S.W, (S.c * S.a)[:, None]])


def is_perm(perm, m):
    perm = np.asarray(perm)
    return perm.shape == (m,) and np.issubdtype(perm.dtype, np.integer) and np.array_equal(np.sort(perm),
                                                                                          np.arange(m))


def matching_slack(ZA, ZB):
    """How far below the optimum of sum_i <z^A_i, z^B_perm(i)> the solver's perm may land.

    The cost is rounded to 12 significant digits of max |C| (a step q <= 1e-11 max |C|) before the
    exact assignment, so sum_i C[i, perm(i)] >= sum_i C[i, pi(i)] - m q for every pi; plus the
    rounding of the inner products themselves.
    """
    m, k = ZA.shape
    C = ZA @ ZB.T
    big = float(np.max(np.linalg.norm(ZA, axis=1)) * np.max(np.linalg.norm(ZB, axis=1)))
    return m * (1e-11 * float(np.max(np.abs(C))) + 4 * k * EPS * big)


# ---------------------------------------------------------------- population loss
@FAST
@given(problems(), st.data())
def test_population_loss_is_nonnegative_and_permutation_invariant(prob, data):
    S, T, inputs = prob
    mag = magnitude(S, T, inputs)
    L = tsim.population_loss(S, T, inputs)
    assert np.isfinite(L)
    assert L >= -1e-12 * mag
    p = data.draw(permutations_of(S.m), label="perm")
    assert abs(tsim.population_loss(S.permute(p), T, inputs) - L) <= 1e-12 * mag
    # the zero student's loss is the teacher energy (the constant term)
    Z = tsim.TwoLayer(np.zeros((S.m, S.d)), S.a, S.c)
    assert tsim.population_loss(Z, T, inputs) == pytest.approx(input_scale(inputs, S.d) * tsim.teacher_energy(T),
                                                               rel=1e-12, abs=1e-300)


@FEW
@given(problems())
def test_population_loss_equals_monte_carlo(prob):
    S, T, inputs = prob
    L = tsim.population_loss(S, T, inputs)
    rng = np.random.default_rng(0)
    n = 40_000
    X = tsim.sample_inputs(n, S.d, inputs, rng)
    r2 = 0.5 * (S.forward(X) - T.forward(X)) ** 2
    assert tsim.empirical_loss(S, X, T.forward(X)) == pytest.approx(r2.mean(), rel=1e-12)
    se = r2.std() / np.sqrt(n)
    assert abs(r2.mean() - L) <= 5 * se + 1e-12 * magnitude(S, T, inputs)


@FAST
@given(problems())
def test_gradient_is_finite_and_zero_on_dead_rows(prob):
    S, T, inputs = prob
    L, gW, ga = tsim.population_loss_grad(S, T, inputs)
    assert np.isfinite(L) and np.all(np.isfinite(gW)) and np.all(np.isfinite(ga))
    assert gW.shape == S.W.shape and ga.shape == S.a.shape
    zero = np.linalg.norm(S.W, axis=1) == 0
    assert np.all(gW[zero] == 0.0) and np.all(ga[zero] == 0.0)  # the relu'(0) = 0 convention
    # population_grad is the same gradient and population_loss the same loss
    gW2, ga2 = tsim.population_grad(S, T, inputs)
    assert np.array_equal(gW, gW2) and np.array_equal(ga, ga2)
    assert tsim.population_loss(S, T, inputs) == pytest.approx(L, rel=0, abs=1e-12 * magnitude(S, T, inputs))


def _row_loss(u, i, S, T, inputs):
    """The terms of L that depend on row i, as a function of w_i = u (exact: the rest cancels in a
    difference). L = s [c^2/2 a^T K(W, W) a - c a^T K(W, W*) a* + const]."""
    u = u[None]
    others = np.delete(np.arange(S.m), i)
    c, ai = S.c, S.a[i]
    self_term = 0.5 * c * c * ai * ai * tsim.kernel_matrix(u, u)[0, 0]
    cross = c * c * ai * float(tsim.kernel_matrix(u, S.W[others])[0] @ S.a[others]) if others.size else 0.0
    teacher = c * ai * float(tsim.kernel_matrix(u, T.W)[0] @ (T.c * T.a))
    return input_scale(inputs, S.d) * (self_term + cross - teacher)


@FAST
@given(problems())
def test_gradient_equals_central_differences(prob):
    """dL/dW by central differences with a step relative to each row's norm; rows with w_i = 0 are
    skipped (L is not differentiable there, tsim returns 0, checked above). Antiparallel and
    duplicated rows stay in: kappa is C^1 at angles 0 and pi (its |t|^3 terms cancel in a central
    difference)."""
    S, T, inputs = prob
    L, gW, ga = tsim.population_loss_grad(S, T, inputs)
    mag = magnitude(S, T, inputs)
    norms = np.linalg.norm(S.W, axis=1)
    P, Q = mass(S), mass(T)
    s = input_scale(inputs, S.d)
    checked = 0
    for i in np.flatnonzero(norms > 0):
        G = s * abs(S.c * S.a[i]) * (P + Q)  # bound on |dL/dw_i|
        h = 1e-5 * norms[i]
        for k in range(S.d):
            E = np.zeros_like(S.W)
            E[i, k] = h
            # (1) the row's own terms: accurate for every row, tiny and huge ones included
            local = (_row_loss(S.W[i] + E[i], i, S, T, inputs) - _row_loss(S.W[i] - E[i], i, S, T, inputs)) / (2 * h)
            assert abs(local - gW[i, k]) <= 1e-6 * G, (i, k, local, gW[i, k])
            # (2) the whole loss: the rounding of L (a few eps times its terms) / h bounds the error
            full = (tsim.population_loss(tsim.TwoLayer(S.W + E, S.a, S.c), T, inputs)
                    - tsim.population_loss(tsim.TwoLayer(S.W - E, S.a, S.c), T, inputs)) / (2 * h)
            assert abs(full - gW[i, k]) <= 1e-6 * G + 1e3 * EPS * mag / h, (i, k, full, gW[i, k])
            checked += 1
    # dL/da: L is quadratic in a, so the central difference is exact up to the rounding of L
    for i in range(S.m):
        h = 1e-3 * max(abs(S.a[i]), 1.0)
        e = np.zeros(S.m)
        e[i] = h
        fd = (tsim.population_loss(tsim.TwoLayer(S.W, S.a + e, S.c), T, inputs)
              - tsim.population_loss(tsim.TwoLayer(S.W, S.a - e, S.c), T, inputs)) / (2 * h)
        G = s * abs(S.c) * norms[i] * (P + Q)  # bound on |dL/da_i|
        mag_h = s * 0.5 * (P + Q + abs(S.c) * norms[i] * h) ** 2  # the terms of L at a +- h e_i
        assert abs(fd - ga[i]) <= 1e-8 * G + 1e3 * EPS * mag_h / h, (i, fd, ga[i])
    assert checked == S.d * np.count_nonzero(norms > 0)


# ---------------------------------------------------------------- weight matching
@FAST
@given(st.data())
def test_weight_matching_recovers_a_planted_permutation(data):
    m, d = data.draw(widths, label="m"), data.draw(dims, label="d")
    A = data.draw(nets(m, d), label="A")
    p = data.draw(permutations_of(m), label="planted")
    B = A.permute(p)
    perm = tsim.weight_matching(A, B)
    assert is_perm(perm, m)
    Bp = B.permute(perm)
    ZA, ZB = features(A), features(Bp)
    slack = matching_slack(ZA, ZA)
    # sum_i |z_i - z_perm(i)|^2 = 2 (optimum - matched objective) <= 2 slack
    dist2 = float(np.sum((ZA - ZB) ** 2))
    assert dist2 <= 2 * slack, (dist2, slack)
    # neurons that differ by more than the rounding can never be swapped: then the recovery is exact
    # (up to swaps of identical neurons, which leave the weights unchanged)
    D2 = np.sum((ZA[:, None] - ZA[None]) ** 2, axis=-1)
    if np.all((D2 == 0) | (D2 > 2 * slack)):
        assert np.array_equal(Bp.W, A.W) and np.array_equal(Bp.a, A.a)
        if np.all(D2[~np.eye(m, dtype=bool)] > 0):  # all neurons distinct: the perm itself is the inverse
            assert np.array_equal(perm, np.argsort(p))
    # the same function
    X = np.random.default_rng(1).standard_normal((64, d))
    tol = np.linalg.norm(X, axis=1) * (2 * np.sqrt(m * dist2) * np.max(np.linalg.norm(ZA, axis=1))
                                       + 1e-13 * mass(A))
    assert np.all(np.abs(A.forward(X) - Bp.forward(X)) <= tol)


@FAST
@given(st.data())
def test_weight_matching_objective_beats_every_other_perm(data):
    m, d = data.draw(widths, label="m"), data.draw(dims, label="d")
    A, B = data.draw(net_pairs(m, d), label="A, B")
    perm = tsim.weight_matching(A, B)
    assert is_perm(perm, m)
    ZA, ZB = features(A), features(B)
    C = ZA @ ZB.T
    rows = np.arange(m)
    got = C[rows, perm].sum()
    slack = matching_slack(ZA, ZB)
    assert got >= C[rows, rows].sum() - slack  # the identity
    q = data.draw(permutations_of(m), label="random perm")
    assert got >= C[rows, q].sum() - slack
    allp = np.array(list(itertools.permutations(range(m))))  # m <= 7: 5040 perms at most
    assert got >= C[rows, allp].sum(axis=1).max() - slack
    # and weight matching minimises the distance ||theta_A - theta_perm(B)||
    assert np.sum((ZA - ZB[perm]) ** 2) <= np.min(np.sum((ZA[None] - ZB[allp]) ** 2, axis=(1, 2))) + 2 * slack


# ---------------------------------------------------------------- barriers
@FAST
@given(st.data())
def test_barrier_to_a_permuted_copy(data):
    d = data.draw(dims, label="d")
    A = data.draw(nets(widths, d), label="A")
    T = data.draw(teachers(d), label="T")
    inputs = data.draw(inputs_st, label="inputs")
    p = data.draw(permutations_of(A.m), label="perm")
    B = A.permute(p)
    mag = magnitude(A, T, inputs)
    r = tsim.barrier(A, B, T, align="weight", inputs=inputs, grid=21)
    assert is_perm(r.perm, A.m)
    assert abs(r.value) <= 1e-10 * mag, (r.value, mag)
    assert np.all(np.abs(r.curve) <= 1e-10 * mag)
    naive = tsim.barrier(A, B, T, inputs=inputs, grid=21)
    assert naive.perm is None
    pmag = path_magnitude(A, B, T, inputs)  # the naive path mixes neurons i and p(i)
    assert naive.value >= -1e-12 * pmag
    assert np.all(naive.losses >= -1e-12 * pmag)  # every point on the path is a net: L >= 0
    assert abs(naive.loss_a - naive.loss_b) <= 1e-12 * mag  # permuting does not change the loss
    assert naive.loss_a == pytest.approx(tsim.population_loss(A, T, inputs), rel=1e-12, abs=1e-12 * mag)
    assert naive.value >= r.value - 1e-10 * pmag


@FAST
@given(st.data())
def test_naive_barrier_is_symmetric(data):
    m, d = data.draw(widths, label="m"), data.draw(dims, label="d")
    A, B = data.draw(net_pairs(m, d), label="A, B")
    T = data.draw(teachers(d), label="T")
    inputs = data.draw(inputs_st, label="inputs")
    ab = tsim.barrier(A, B, T, inputs=inputs, grid=21)
    ba = tsim.barrier(B, A, T, inputs=inputs, grid=21)
    tol = 1e-10 * path_magnitude(A, B, T, inputs)
    assert abs(ab.value - ba.value) <= tol
    assert np.all(np.abs(ab.curve[::-1] - ba.curve) <= tol)
    assert np.all(np.abs(ab.losses[::-1] - ba.losses) <= tol)
    assert ab.loss_a == pytest.approx(tsim.population_loss(A, T, inputs), rel=1e-12,
                                      abs=1e-12 * magnitude(A, T, inputs))
    assert ab.loss_b == pytest.approx(tsim.population_loss(B, T, inputs), rel=1e-12,
                                      abs=1e-12 * magnitude(B, T, inputs))
