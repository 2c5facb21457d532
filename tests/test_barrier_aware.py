"""Barrier-aware matching (align="barrier"): never worse than weight matching, exact on
teacher-aligned minima (the Hall-type condition), never better than brute force."""
import numpy as np
import pytest

import tsim
from theory.minima import sample_minimum
from tsim._kernels import local_search as ls
from tsim.alignment import (align, barrier_aware_matching, barrier_optimal_perm, hall_slack, teacher_types,
                            type_matching)
from tsim.alignment.barrier_aware import local_search
from tsim.losses import path_losses, teacher_energy
from tsim.match import weight_scores


def _net(rng, m, d, c=1.0):
    return tsim.TwoLayer(rng.standard_normal((m, d)) / np.sqrt(d), rng.standard_normal(m), c)


def _noisy(S, rng, eps):
    return tsim.TwoLayer(S.W + eps * rng.standard_normal(S.W.shape) / S.m, S.a, S.c)


def _wm(A, B, T, grid, inputs="gaussian"):
    return tsim.barrier(A, B, T, align="weight", grid=grid, inputs=inputs).value


@pytest.fixture(scope="module")
def trained():
    """Two pairs of students trained on the orthonormal M = 3 teacher (population GD), m = 12."""
    T = tsim.Teacher.orthonormal(3, 6)
    W0, a0 = tsim.init_ensemble(4, 12, 6, [np.random.default_rng(s) for s in range(4)], sigma0=0.3)
    res = tsim.train_population(W0, a0, T, lr=0.05, steps=3000)
    return T, [(res.student(0), res.student(1)), (res.student(2), res.student(3))]


def test_swap_delta_and_update_match_the_exact_path_loss():
    rng = np.random.default_rng(0)
    m, d, G = 6, 5, 7
    T = tsim.Teacher.random(3, d, seed=1)
    A, B = _net(rng, m, d, 0.7), _net(rng, m, d, 1.3)
    A = tsim.TwoLayer(np.vstack([A.W[:-1], np.zeros((1, d))]), A.a, A.c)  # a zero neuron too
    perm = rng.permutation(m)
    ts = np.linspace(0.0, 1.0, G)
    ends = path_losses(A, B, T, np.array([0.0, 1.0]))
    line = (1 - ts) * ends[0] + ts * ends[1]
    AA, AB, BB = A.W @ A.W.T, A.W @ B.W.T, B.W @ B.W.T
    ABp, BBp, BAt = AB[:, perm].copy(), BB[:, perm].copy(), AB.T.copy()
    tn = np.linalg.norm(T.W, axis=1)
    nr, iv, b, hb, R = (np.empty((G, m)) for _ in range(5))
    e = np.empty(G)
    bufs = [np.empty(m) for _ in range(6)]
    teach = (A.W @ T.W.T, B.W @ T.W.T, tn, 1.0 / tn, T.a * T.c)
    E = teacher_energy(T)
    ls._build(ts, perm, AA, AB, BB, ABp, BAt, BBp, *teach, A.a, B.a, A.c, B.c, 1.0, E, line, nr, iv, b, hb, R, e,
              bufs[0], bufs[1])
    assert np.allclose(e, path_losses(A, B.permute(perm), T, ts) - line, rtol=0, atol=1e-13)
    i, k = 1, 4
    swapped = perm.copy()
    swapped[[i, k]] = perm[[k, i]]
    exact = path_losses(A, B.permute(swapped), T, ts) - line
    for g in range(G):
        ls._rows(ts[g], i, perm[k], AA, ABp, BAt, BBp, bufs[0], bufs[1])
        ls._rows(ts[g], k, perm[i], AA, ABp, BAt, BBp, bufs[2], bufs[3])
        dg = ls._swap_delta(g, ts[g], i, k, *bufs[:4], perm, AA, AB, BB, *teach, A.a, B.a, A.c, B.c, 1.0,
                            nr, iv, b, hb, R)
        assert e[g] + dg == pytest.approx(exact[g], abs=1e-13)
    for g in range(G):
        ls._apply_swap(g, ts[g], i, k, perm, AA, AB, BB, ABp, BAt, BBp, *teach, A.a, B.a, A.c, B.c, 1.0, E, line,
                       nr, iv, b, hb, R, e, *bufs)
    ls._swap_columns(perm, ABp, BBp, BB, AB, i, k)
    assert np.array_equal(perm, swapped) and np.array_equal(ABp, AB[:, perm])
    assert np.allclose(e, exact, rtol=0, atol=1e-13)


@pytest.mark.parametrize("inputs", ["gaussian", "sphere"])
def test_never_worse_than_weight_matching_on_random_students(rng, inputs):
    T = tsim.Teacher.random(3, 6, seed=2)
    for m, c in ((10, 1.0), (16, 1.0 / 16)):
        A, B = _net(rng, m, 6, c), _net(rng, m, 6, c)
        for grid in (9, 25):
            r = align(A, B, "barrier", T=T, grid=grid, inputs=inputs)
            wm = _wm(A, B, T, grid, inputs)
            assert r.score <= wm and r.info["barrier_weight"] == wm
            assert tsim.barrier(A, B, T, perm=r.perm, grid=grid, inputs=inputs).value == r.score
            assert tsim.barrier(A, B, T, align="barrier", grid=grid, inputs=inputs).value == r.score
            assert r.info["aligned"] is False and r.info["exists"] is None


def test_never_worse_than_weight_matching_on_trained_students_and_often_better(trained):
    T, pairs = trained
    gains = 0
    for A, B in pairs:
        perm, value, info = barrier_aware_matching(A, B, T, grid=25)
        wm = _wm(A, B, T, 25)
        assert value <= wm and info["barrier_weight"] == wm and info["converged"]
        assert tsim.barrier(A, B, T, perm=perm, grid=25).value == value
        gains += value < wm
    assert gains >= 1


def test_between_brute_force_and_weight_matching_and_mostly_optimal():
    rng = np.random.default_rng(7)
    T = tsim.Teacher.orthonormal(3, 6)
    n = hits = 0
    for kind in ("random", "near_minimum", "sampled"):
        for _ in range(6):
            m = int(rng.integers(3, 7))
            if kind == "random":
                A, B = _net(rng, m, 6), _net(rng, m, 6)
            elif kind == "near_minimum":
                A, B = (_noisy(sample_minimum(m, 3, 6, rng), rng, 0.05) for _ in range(2))
            else:
                A, B = (sample_minimum(m, 3, 6, rng, r=0.2) for _ in range(2))
            perm, value, info = barrier_aware_matching(A, B, T, grid=9)
            _, best = barrier_optimal_perm(A, B, T, grid=9)
            assert best - 1e-12 <= value <= info["barrier_weight"]
            n += 1
            hits += value <= best + 1e-12
    assert hits >= 0.9 * n


def test_hall_condition_decides_zero_barrier_at_small_m():
    # brute force over all perms: a zero-barrier perm exists exactly when hall_slack >= 0
    rng = np.random.default_rng(3)
    T = tsim.Teacher.orthonormal(3, 5)
    seen = set()
    for _ in range(12):
        m = int(rng.integers(3, 7))
        A, B = sample_minimum(m, 3, 5, rng, r=0.3), sample_minimum(m, 3, 5, rng, r=0.3)
        _, value, info = barrier_aware_matching(A, B, T, grid=9)
        _, best = barrier_optimal_perm(A, B, T, grid=9)
        assert info["aligned"] and info["exists"] == (info["hall_slack"] >= 0)
        assert info["exists"] == (best < 1e-10)
        if info["exists"]:
            assert abs(value) < 1e-10
        seen.add(info["exists"])
    assert seen == {True, False}


def test_exact_on_sampled_minima_where_weight_matching_is_not():
    rng = np.random.default_rng(11)
    T = tsim.Teacher.orthonormal(4, 8)
    wm_positive = 0
    for _ in range(4):  # neuron-sparse minima: enough zeros for the Hall condition
        A, B = sample_minimum(60, 4, 8, rng, r=0.3), sample_minimum(60, 4, 8, rng, r=0.3)
        r = align(A, B, "barrier", T=T, grid=25)
        assert r.info["exists"] and r.info["hall_slack"] >= 0
        assert abs(r.score) < 1e-10 and abs(tsim.barrier(A, r.B, T, grid=25).value) < 1e-10
        wm_positive += _wm(A, B, T, 25) > 1e-10
    assert wm_positive >= 1
    for _ in range(2):  # no zeros (r = 0) and unequal type counts: no zero-barrier permutation
        A, B = sample_minimum(60, 4, 8, rng), sample_minimum(60, 4, 8, rng)
        perm, value, info = barrier_aware_matching(A, B, T, grid=25)
        assert info["hall_slack"] < 0 and info["exists"] is False
        assert 1e-12 < value <= info["barrier_weight"]


def test_same_type_pairs_of_any_magnitude_stay_on_the_minimum_manifold():
    # f* = relu(x_1) + relu(x_2), a = 1: alphas of a type sum to 1; pairing type j with type j
    # (magnitudes 0.2/0.8 vs 0.5/0.5) or with a zero keeps f_t = f*; one cross pair does not
    T = tsim.Teacher.orthonormal(2, 3)
    e1, e2, z = np.eye(3)[0], np.eye(3)[1], np.zeros(3)
    A = tsim.TwoLayer(np.array([0.2 * e1, 0.8 * e1, e2, z]), np.ones(4))
    B = tsim.TwoLayer(np.array([0.5 * e1, 0.5 * e1, 0.3 * e2, 0.7 * e2]), np.ones(4))
    assert tsim.population_loss(A, T) < 1e-15 and tsim.population_loss(B, T) < 1e-15
    for perm in ([0, 1, 2, 3], [1, 0, 3, 2], [0, 1, 3, 2]):
        assert abs(tsim.barrier(A, B, T, perm=perm, grid=21).value) < 1e-14
    assert tsim.barrier(A, B, T, perm=[0, 2, 1, 3], grid=21).value > 1e-4
    ta, tb = teacher_types(A, T), teacher_types(B, T)
    assert list(ta) == [1, 1, 2, 0] and list(tb) == [1, 1, 2, 2] and hall_slack(ta, tb, 2) == 0
    perm = type_matching(ta, tb, weight_scores(A, B))
    assert all(ta[i] in (0, tb[perm[i]]) for i in range(4))
    # a common output weight is part of the condition: a zero neuron with a' != a breaks linearity in t
    A2 = tsim.TwoLayer(A.W, np.array([1.0, 1.0, 1.0, 3.0]))
    assert tsim.barrier(A2, B, T, perm=[0, 1, 2, 3], grid=21).value > 1e-4
    assert barrier_aware_matching(A2, B, T, grid=21)[2]["exists"] is None


def test_types_are_detected_robustly():
    rng = np.random.default_rng(5)
    T = tsim.Teacher.orthonormal(3, 6)
    S = sample_minimum(20, 3, 6, rng, r=0.3)
    exact = teacher_types(S, T)
    assert np.array_equal(exact, np.where(S.W.any(axis=1), S.W[:, :3].argmax(axis=1) + 1, 0))
    assert np.array_equal(teacher_types(_noisy(S, rng, 1e-9), T), exact)
    noisy = teacher_types(_noisy(S, rng, 1e-2), T)
    assert np.all(noisy[exact > 0] == -1)


def test_deterministic_budget_and_padding(rng):
    T = tsim.Teacher.orthonormal(3, 6)
    A, B = (_noisy(sample_minimum(30, 3, 6, rng), rng, 0.05) for _ in range(2))
    p1, v1, i1 = barrier_aware_matching(A, B, T, grid=15)
    p2, v2, i2 = barrier_aware_matching(A, B, T, grid=15)
    assert np.array_equal(p1, p2) and v1 == v2 and i1["swaps"] == i2["swaps"]
    _, v3, i3 = barrier_aware_matching(A, B, T, grid=15, max_sweeps=1)
    assert i3["sweeps"] == 1 and v1 <= v3 <= i3["barrier_weight"]
    _, v4, i4 = barrier_aware_matching(A, B, T, grid=15, max_seconds=0.0)
    assert i4["sweeps"] == 0 and v4 <= i4["barrier_weight"]
    perm, info = local_search(A, B, T, np.arange(30), grid=15, max_sweeps=2)
    assert info["sweeps"] <= 2 and sorted(perm) == list(range(30))
    narrow = tsim.TwoLayer(A.W[:25], A.a[:25])
    r = align(narrow, B, "barrier", T=T, grid=15)
    assert r.padded and r.m == 30 and r.score <= tsim.barrier(r.A, B, T, align="weight", grid=15).value
    with pytest.raises(ValueError, match="teacher"):
        align(A, B, "barrier")
