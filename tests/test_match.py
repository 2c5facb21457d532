"""Permutation invariance, planted-permutation recovery, ties."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tsim
from tests import reference


@settings(max_examples=40, deadline=None)
@given(m=st.integers(1, 9), seed=st.integers(0, 2 ** 31 - 1))
def test_permuting_never_changes_the_function(m, seed):
    rng = np.random.default_rng(seed)
    d = 4
    S = tsim.TwoLayer(rng.standard_normal((m, d)), rng.standard_normal(m), 0.7)
    perm = rng.permutation(m)
    P = S.permute(perm)
    X = rng.standard_normal((32, d))
    T = tsim.Teacher.random(2, d, seed=1)
    assert np.allclose(P.forward(X), S.forward(X), rtol=1e-12, atol=1e-12)
    assert tsim.population_loss(P, T) == pytest.approx(tsim.population_loss(S, T), rel=1e-12, abs=1e-15)


@settings(max_examples=25, deadline=None)
@given(m=st.integers(2, 40), seed=st.integers(0, 2 ** 31 - 1))
def test_weight_matching_recovers_planted_permutation(m, seed):
    rng = np.random.default_rng(seed)
    A = tsim.TwoLayer(rng.standard_normal((m, 6)), rng.standard_normal(m))
    p = rng.permutation(m)
    noisy = tsim.TwoLayer(A.W + 1e-3 * rng.standard_normal(A.W.shape), A.a + 1e-3 * rng.standard_normal(m))
    B = noisy.permute(p)  # B's neuron k is A's neuron p[k]
    perm = tsim.weight_matching(A, B)
    assert np.array_equal(perm, np.argsort(p))
    assert np.allclose(B.permute(perm).W, noisy.W)


def test_perm_convention_and_scipy_agree(rng):
    A = tsim.TwoLayer(rng.standard_normal((30, 5)), rng.standard_normal(30))
    B = tsim.TwoLayer(rng.standard_normal((30, 5)), rng.standard_normal(30))
    perm = tsim.weight_matching(A, B)
    from scipy.optimize import linear_sum_assignment

    Z = tsim.match.neuron_features(A) @ tsim.match.neuron_features(B).T
    r, c = linear_sum_assignment(Z, maximize=True)
    assert Z[np.arange(30), perm].sum() == pytest.approx(Z[r, c].sum(), rel=1e-12)
    dist = lambda q: np.sum((A.W - B.permute(q).W) ** 2) + np.sum((A.a - B.permute(q).a) ** 2)
    assert dist(perm) <= dist(np.arange(30)) + 1e-12


def test_ties_on_teacher_aligned_minima_are_reported_and_can_decide_the_barrier():
    # two global minima of f* = relu(x_0) + relu(x_1) with a = 1 (Lin-Li-Wu): neurons 0 or alpha e_j.
    # Scores <w, w'> + a a': a type-j/type-k pair and a type-j/zero pair both score 1.
    e = np.eye(2)
    A = tsim.TwoLayer(np.array([e[0], .5 * e[1], .5 * e[1], 0 * e[0]]), np.ones(4))
    B = tsim.TwoLayer(np.array([.5 * e[0], .5 * e[0], e[1], 0 * e[0]]), np.ones(4))
    T = tsim.Teacher.orthonormal(2, 2)
    assert tsim.population_loss(A, T) < 1e-14 and tsim.population_loss(B, T) < 1e-14
    perm = tsim.weight_matching(A, B)
    assert all(np.array_equal(perm, tsim.weight_matching(A, B)) for _ in range(3))
    rep = tsim.weight_matching_ties(A, B, perm)
    assert not rep.unique and rep.n_tied >= 2
    score = tsim.match.neuron_features(A) @ tsim.match.neuron_features(B).T
    barriers = []
    for i, k in rep.pairs:
        q = perm.copy()
        q[[i, k]] = perm[[k, i]]
        assert score[np.arange(4), q].sum() == pytest.approx(score[np.arange(4), perm].sum())
        barriers.append(tsim.barrier(A, B, T, perm=q).value)
    barriers.append(tsim.barrier(A, B, T, perm=perm).value)
    assert max(barriers) - min(barriers) > 1e-3


def test_unique_optimum_has_no_ties(rng):
    A = tsim.TwoLayer(rng.standard_normal((8, 4)), np.ones(8))
    B = A.permute(rng.permutation(8))
    assert tsim.weight_matching_ties(A, B, tsim.weight_matching(A, B)).unique


def test_bad_perm_and_shapes(rng):
    A = tsim.TwoLayer(rng.standard_normal((3, 2)), np.ones(3))
    with pytest.raises(ValueError, match="perm"):
        A.permute([0, 0, 1])
    with pytest.raises(ValueError, match="Pad"):
        tsim.weight_matching(A, tsim.TwoLayer(rng.standard_normal((4, 2)), np.ones(4)))


# ----------------------------------------------------------------------------- certified solver (issue 12)
from scipy.optimize import linear_sum_assignment  # noqa: E402

from tsim.match import (Assignment, certificate_holds, round_ties, solve_lap, weight_assignment,  # noqa: E402
                        weight_scores)


def _scipy_value(C, maximize):
    r, c = linear_sum_assignment(C, maximize=maximize)
    return C[r, c].sum()


_trained_like = reference.trained_like_pair


@pytest.mark.parametrize("maximize", [True, False])
@pytest.mark.parametrize("m, d", [(7, 3), (60, 4), (300, 16)])
def test_certificate_holds_and_matches_scipy_on_random_costs(rng, m, d, maximize):
    C = round_ties(rng.standard_normal((m, d)) @ rng.standard_normal((d, m)))
    res = solve_lap(C, maximize=maximize)
    assert isinstance(res, Assignment) and res.certified and res.quantum > 0 and res.violation == 0.0
    assert res.value == pytest.approx(_scipy_value(C, maximize), rel=1e-13)
    # independent check in float64 (prices converted from integer units: tolerance a few ulps of max|C|)
    assert certificate_holds(C, res.perm, res.u, res.v, maximize, tol=1e-12 * np.abs(C).max())
    r, c = linear_sum_assignment(C, maximize=maximize)
    assert res.unique and np.array_equal(res.perm, c)  # a unique optimum: the same perm as scipy


def test_certificate_fails_when_the_assignment_or_prices_are_corrupted(rng):
    C = round_ties(rng.standard_normal((40, 5)) @ rng.standard_normal((5, 40)))
    res = solve_lap(C, maximize=True)
    tol = 1e-12 * np.abs(C).max()
    assert certificate_holds(C, res.perm, res.u, res.v, True, tol)
    bad = res.perm.copy()
    bad[[0, 1]] = bad[[1, 0]]
    assert not certificate_holds(C, bad, res.u, res.v, True, tol)  # slackness breaks on the swapped pair
    assert not certificate_holds(C, res.perm[::-1], res.u, res.v, True, tol)
    u = res.u.copy()
    u[3] -= 1e-3  # row 3 no longer covers its row: infeasible
    assert not certificate_holds(C, res.perm, u, res.v, True, tol)
    assert not certificate_holds(C, res.perm, res.u, res.v, False, tol)  # wrong sense


def test_float_mode_costs_are_certified_within_their_tolerance(rng):
    C = rng.random((50, 50)) * 1e3 + np.pi  # not on a rounding grid
    res = solve_lap(C)
    assert res.certified and res.quantum == 0.0 and res.tol == pytest.approx(1e-12 * np.abs(C).max())
    assert res.value == pytest.approx(_scipy_value(C, False), rel=1e-12)
    assert certificate_holds(C, res.perm, res.u, res.v, False, res.tol)


@pytest.mark.parametrize("m", [6, 40, 520])
def test_tied_costs_are_certified_and_keep_the_earlier_tie_break(rng, m):
    C = rng.integers(0, 3, (m, m)).astype(float)  # integers: massive ties
    res = solve_lap(C, maximize=True)
    assert res.certified and res.unique is False
    assert res.value == _scipy_value(C, True)
    assert certificate_holds(C, res.perm, res.u, res.v, True, 1e-12 * np.abs(C).max())
    legacy, name = tsim.match._legacy_assignment(-C)
    assert res.solver == name == ("lapjvs" if m < tsim.match.SCIPY_FROM_M else "scipy")
    assert np.array_equal(res.perm, legacy)
    assert all(np.array_equal(res.perm, solve_lap(C, maximize=True).perm) for _ in range(2))  # deterministic


def test_small_candidate_lists_force_widening_and_dense_rows_and_stay_exact(rng, monkeypatch):
    monkeypatch.setattr(tsim.match, "SAP_K", 2)
    monkeypatch.setattr(tsim.match, "SAP_CAP", 4)
    for C in (round_ties(np.outer(rng.exponential(size=80), rng.exponential(size=80))),  # rank 1
              round_ties(rng.standard_normal((80, 3)) @ rng.standard_normal((3, 80)))):
        res = solve_lap(C, maximize=True)
        assert res.certified and res.stats["widened"] > 0
        assert res.value == pytest.approx(_scipy_value(C, True), rel=1e-13)
        assert certificate_holds(C, res.perm, res.u, res.v, True, 1e-12 * np.abs(C).max())
    assert res.stats["dense"] > 0 or res.stats["rounds"] > 1


@pytest.mark.parametrize("kind", ["random", "trained"])
@pytest.mark.parametrize("m, d", [(200, 16), (96, 60)])  # candidate-list searches; whole-row searches
def test_weight_assignment_is_certified_and_equals_scipy_on_the_rounded_score(rng, kind, m, d):
    if kind == "random":
        A = tsim.TwoLayer(rng.standard_normal((m, d)), rng.standard_normal(m))
        B = tsim.TwoLayer(rng.standard_normal((m, d)), rng.standard_normal(m))
    else:
        A, B = _trained_like(rng, m, d)
    res = weight_assignment(A, B)
    S = weight_scores(A, B)
    r, c = linear_sum_assignment(S, maximize=True)
    assert res.certified and res.unique and res.violation == 0.0
    assert np.array_equal(res.perm, c) and np.array_equal(res.perm, tsim.weight_matching(A, B))
    assert res.value == pytest.approx(S[r, c].sum(), rel=1e-14)
    assert certificate_holds(S, res.perm, res.u, res.v, True, 1e-12 * np.abs(S).max())


def test_weight_matching_recovers_a_planted_permutation_at_larger_m(rng):
    m = 700
    A = tsim.TwoLayer(rng.standard_normal((m, 8)), rng.standard_normal(m))
    p = rng.permutation(m)
    B = tsim.TwoLayer(A.W + 1e-3 * rng.standard_normal(A.W.shape), A.a.copy()).permute(p)
    res = weight_assignment(A, B)
    assert res.certified and np.array_equal(res.perm, np.argsort(p))


def test_certified_is_surfaced_in_align_results(rng):
    A = tsim.TwoLayer(rng.standard_normal((12, 3)), rng.standard_normal(12))
    B = tsim.TwoLayer(rng.standard_normal((10, 3)), rng.standard_normal(10))  # padded to 12
    assert tsim.align(A, B, "weight").certified is True
    assert tsim.align(A, B, "activation").certified is True
    T = tsim.Teacher.random(2, 3, seed=0)
    assert tsim.align(A, B, "ste", T=T, ste_steps=2).certified is None
    assert "certified" not in tsim.align(A, B, "weight").info


def test_trivial_sizes_and_validation():
    assert solve_lap(np.array([[2.5]]), maximize=True).perm.tolist() == [0]
    z = solve_lap(np.zeros((3, 3)))
    assert z.certified and sorted(z.perm.tolist()) == [0, 1, 2]
    with pytest.raises(ValueError, match="square"):
        solve_lap(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="non-finite"):
        solve_lap(np.array([[0.0, np.nan], [1.0, 2.0]]))
    big = tsim.TwoLayer(np.full((4, 2), 1e200), np.ones(4))  # scores overflow to inf, and to inf - inf = NaN
    for other in (big, tsim.TwoLayer(np.array([[1e200, -1e200]] * 4), np.ones(4))):
        with np.errstate(all="ignore"), pytest.raises(ValueError, match="non-finite"):
            weight_assignment(big, other)
    zero = tsim.TwoLayer(np.zeros((3, 2)), np.zeros(3))  # S = 0: every perm optimal
    assert weight_assignment(zero, zero).certified


@pytest.mark.parametrize("m, d", [(40, 7), (130, 3), (64, 200)])
def test_round_scores_kernel_is_round_ties_and_the_hint(m, d):
    """The fused kernel of weight matching: -K is round_ties(S) bit for bit (q = quantum(max|S|)), its column
    minima, and the column price hint rint(-|z_j|^2 / 2q)."""
    from tsim._kernels.lap import _round_scores, quantum
    from tsim.match import neuron_features

    rng = np.random.default_rng(m)
    A, B = (tsim.TwoLayer(rng.standard_normal((m, d)) * 10.0 ** rng.integers(-5, 5), rng.standard_normal(m))
            for _ in range(2))
    ZB = neuron_features(B)
    S = neuron_features(A) @ ZB.T
    K, colmin, hint = S.copy(), np.empty(m), np.empty(m)
    q = _round_scores(K, colmin, ZB, hint)
    assert q == quantum(float(np.abs(S).max()))
    assert np.array_equal(-K * q, round_ties(S.copy())) and np.array_equal(colmin, K.min(axis=0))
    assert np.allclose(hint, np.rint(-(ZB ** 2).sum(axis=1) / (2 * q)), rtol=1e-14, atol=1.0)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 23), seed=st.integers(0, 2 ** 31 - 1), ties=st.booleans())
def test_lap_row_kernels_equal_numpy(n, seed, ties):
    """The four-accumulator passes of the LAP kernels give numpy's min, first argmin, max and counts
    (exactly: min and max do not round), remainder loops included (n not a multiple of 4)."""
    from tsim._kernels.lap import _argmin, _maxcount, _rowmin

    rng = np.random.default_rng(seed)
    row, v = rng.standard_normal(n), rng.standard_normal(n)
    if ties:  # integer costs with repeated values: the first index of the minimum must win
        row, v = rng.integers(-3, 3, n).astype(float), np.zeros(n)
    r = row - v
    assert _rowmin(row, v) == r.min()
    b, j = _argmin(row, v)
    assert b == r.min() and j == int(np.argmin(r))
    ui = float(rng.standard_normal())
    lo = float(np.median(ui + v - row))
    w, c = _maxcount(row, ui, v, lo)
    assert w == (ui + v - row).max() and c == int(((ui + v - row) >= lo).sum())


def test_weight_assignment_reuses_its_workspace_without_leaking_between_calls(rng, monkeypatch):
    """Repeated calls share per-thread arrays: a result is never changed by a later call, other shapes
    in between do not disturb it, and threads get their own arrays (same answers as one at a time)."""
    from concurrent.futures import ThreadPoolExecutor

    from tsim.match import weight_assignment

    pairs = [reference.trained_like_pair(np.random.default_rng(s), m, d) for s, (m, d) in
             enumerate([(40, 6), (40, 6), (25, 9), (40, 6)])]
    first = weight_assignment(*pairs[0])
    kept = first.perm.copy(), first.u.copy(), first.v.copy()
    alone = [weight_assignment(A, B) for A, B in pairs]
    assert all(np.array_equal(a, b) for a, b in zip(kept, (first.perm, first.u, first.v)))
    assert np.array_equal(alone[0].perm, first.perm) and alone[0].value == first.value
    with ThreadPoolExecutor(4) as ex:
        threaded = list(ex.map(lambda p: weight_assignment(*p), pairs * 3))
    for r, a in zip(threaded, alone * 3):
        assert np.array_equal(r.perm, a.perm) and r.value == a.value and r.certified
    import tsim.match as tm

    assert tm._WORK.w[0] == (40, 6)  # the last shape is kept ...
    monkeypatch.setattr(tm, "WORKSPACE_MAX", 20 * 20)
    assert weight_assignment(*pairs[2]).value == alone[2].value
    assert tm._WORK.w is None  # ... unless its score matrix is above the bound: nothing held
    again = weight_assignment(*pairs[0])
    assert tm._WORK.w is None and np.array_equal(again.perm, first.perm) and again.value == first.value


@settings(max_examples=30, deadline=None)
@given(m=st.integers(2, 40), seed=st.integers(0, 2 ** 31 - 1), levels=st.sampled_from([0, 3, 50]))
def test_whole_row_searches_are_exact_with_certified_prices(m, seed, levels):
    """The dense (Jonker-Volgenant) search path on random and heavily tied integer costs: the optimum
    of scipy, prices feasible on every entry and tight on the assignment, in exact arithmetic."""
    from scipy.optimize import linear_sum_assignment

    from tsim._kernels.lap import _certify, solve

    rng = np.random.default_rng(seed)
    K = (rng.integers(0, levels, (m, m)) if levels else rng.integers(-10 ** 9, 10 ** 9, (m, m))).astype(float)
    x, u, v, st = solve(K, [], 3, 6, 0.0, dense_search=True)
    r, c = linear_sum_assignment(K)
    assert np.array_equal(np.sort(x), np.arange(m)) and K[np.arange(m), x].sum() == K[r, c].sum()
    viol, slack, big, _ = _certify(K, x, u, v, 0.0, np.empty((8 * m, 2), np.int64))
    assert viol <= 0.0 and slack == 0.0 and st[1] == 0  # no row widened: searches never get stuck



def test_whole_row_path_falls_back_to_the_pricing_path(monkeypatch):
    """If the whole-row path's prices ever failed the certificate, the sparse path (which prices
    against the whole matrix) solves again: same certified optimum."""
    import tsim._kernels.lap as lapk

    rng = np.random.default_rng(3)
    A, B = (tsim.TwoLayer(rng.standard_normal((40, 30)), rng.standard_normal(40)) for _ in range(2))
    ref = weight_assignment(A, B)
    assert ref.stats["rounds"] == 0  # the whole-row path: no pricing round
    calls = []
    certify = lapk._certify

    def fail_once(K, x, u, v, tol, E):
        out = certify(K, x, u, v, tol, E)
        calls.append(1)
        return (1.0,) + tuple(out[1:]) if len(calls) == 1 else out

    monkeypatch.setattr(lapk, "_certify", fail_once)
    res = weight_assignment(A, B)
    assert len(calls) == 2 and res.certified and res.stats["rounds"] >= 1
    assert np.array_equal(res.perm, ref.perm) and res.value == ref.value


def test_quantum_is_twelve_significant_digits_of_the_scale():
    """q = 10^(floor(log10 scale) - 11), as numpy computes it, at and around the powers of ten (where a
    last-bit difference of log10 would move the exponent) and elsewhere; rounding twice changes nothing."""
    from tsim._kernels.lap import quantum

    rng = np.random.default_rng(0)
    scales = [x for e in range(-30, 31) for p in (float(f"1e{e}"),)
              for x in (p, np.nextafter(p, 0.0), np.nextafter(p, np.inf))] + list(10.0 ** rng.uniform(-30, 30, 2000))
    for s in scales:
        q = quantum(float(s))
        assert q == 10.0 ** (np.floor(np.log10(s)) - 11) and 1e11 * (1 - 1e-14) <= s / q < 1e12 * (1 + 1e-14)
    C = rng.standard_normal((30, 30)) * 10.0 ** rng.uniform(-8, 8, (30, 1))
    R = round_ties(C.copy())
    assert np.array_equal(round_ties(R.copy()), R) and np.abs(R - C).max() <= 0.501 * quantum(float(np.abs(C).max()))
