"""Barrier-aware matching: a permutation chosen for the loss barrier itself, never worse than WM.

Weight matching (WM) maximises sum_i <z^A_i, z^B_perm(i)>, z = (w, c a), a proxy for the barrier
B(perm) = max_t [L((1 - t) A + t perm(B)) - ((1 - t) L(A) + t L(B))] (Entezari et al. 2022,
arXiv:2110.06296; Ainsworth et al. 2023, arXiv:2209.04836). Here the barrier is minimised on the
same t-grid as :func:`tsim.barrier`, in two steps, for two-layer nets of width m:

1. Teacher-aligned nets (exact, any m). Every neuron either zero (w_i = 0) or of type j
   (w_i = alpha_i w*_j / |w*_j|, alpha_i > 0), with one common output weight gamma = c a_i for
   every neuron of A and B (c_A = c_B); e.g. the global minima of Lin, Li, Wu 2024
   (arXiv:2404.06391): teacher f* = sum_j relu(e_j . x), a = 1 fixed, alphas of each type summing
   to 1. With n_j^A, n_j^B the type counts,

       a zero-barrier permutation exists  <=>  sum_j max(n_j^A, n_j^B) <= m   (hall_slack >= 0),

   for global minima A, B (L(A) = L(B) = 0) and pairwise non-parallel teacher directions.
   (<=) Pair type-j neurons with type-j or zero neurons only. Since relu is positively
   homogeneous, a type-j pair contributes gamma ((1 - t) alpha + t beta) relu(w^_j . x) and a
   type-j/zero pair gamma (1 - t) alpha relu(w^_j . x) (or gamma t beta relu(.)), so the path
   function is exactly f_t = (1 - t) f_A + t f_B, whatever the magnitudes alpha, beta: each
   type's total (1 - t) sum alpha^A + t sum alpha^B stays 1 on minima, and in general
   L(f_t) <= (1 - t) L(A) + t L(B) by convexity of the square loss in f, so the barrier is 0
   (for any teacher-aligned A, B, minima or not). Such a pairing exists iff B has enough zeros
   for A's surplus, sum_j (n_j^A - n_j^B)_+ <= z^B, and vice versa; both read
   sum_j max(n_j^A, n_j^B) <= m. (=>) A cross pair (alpha w^_j, beta w^_k), j != k, leaves the
   residual relu(((1 - t) alpha w^_j + t beta w^_k) . x) - (1 - t) alpha relu(w^_j . x)
   - t beta relu(w^_k . x) <= 0 (convexity of relu), < 0 on a set of positive measure; all
   residuals have one sign, so f_t != f* and L(t) > 0 = the line for t in (0, 1). Zero
   neurons must carry the common gamma too: a type-j/zero pair with a zero neuron of output
   weight a' != gamma contributes (1 - t) alpha ((1 - t) gamma + t a') c relu(.), not linear in t.
   The construction is one assignment: maximise the WM score over the allowed pairs (same type,
   or a zero on either side), with every forbidden pair penalised by more than any score
   difference; it uses the fewest cross pairs possible, (-hall_slack)_+, and among those is
   WM's choice.
2. Any nets: local search on the exact population barrier, from the better of WM and step 1.
   Pair swaps (i, k) of the permutation are tried in order (first improvement) and accepted
   only when they lower max_t excess loss on the t-grid by more than a rounding tolerance;
   each test costs O(m) per t-point through incremental kernel updates
   (:mod:`tsim._kernels.local_search`). Sweeps stop when none is accepted, or at the budget.

The result is never worse than WM on the same grid: the returned permutation's barrier,
recomputed exactly by :func:`tsim.barrier`, is compared with WM's and WM is kept unless beaten.
"""
from __future__ import annotations

import time

import numpy as np

from .._kernels.local_search import _sweep
from ..barriers import barrier
from ..losses import input_scale, path_losses, teacher_energy
from ..match import solve_assignment, weight_scores
from ..network import TwoLayer, check_net, check_perm

COS_TOL = 1e-6    # type j: cos(w_i, w*_j) >= 1 - COS_TOL
ZERO_TOL = 1e-8   # zero neuron: |w_i| <= ZERO_TOL * max_i |w_i| over both nets
GAMMA_RTOL = 1e-9  # common output weight: |c a_i - gamma| <= GAMMA_RTOL |gamma|
SEARCH_RTOL = 1e-12  # a swap must lower the peak excess by more than SEARCH_RTOL * (loss scale)
MAX_SWEEPS = 50


def teacher_types(S: TwoLayer, T: TwoLayer, scale: float | None = None, cos_tol: float = COS_TOL,
                  zero_tol: float = ZERO_TOL) -> np.ndarray:
    """Type of each neuron of S with respect to the teacher directions w*_1..w*_M.

    type_i = 0 if |w_i| <= zero_tol * scale (a zero neuron), j in 1..M if
    cos(w_i, w*_j) >= 1 - cos_tol (the nearest such direction), -1 otherwise (not aligned).

    Parameters
    ----------
    S : TwoLayer, W (m, d)
    T : TwoLayer, W (M, d)       teacher; rows w*_j (zero rows are never a type)
    scale : float                norm scale for zero detection (default max_i |w_i| of S)

    Returns
    -------
    types : ndarray of int, shape (m,)
    """
    nw = np.linalg.norm(S.W, axis=1)
    nt = np.linalg.norm(T.W, axis=1)
    scale = float(nw.max()) if scale is None else float(scale)
    cos = (S.W @ T.W.T) / np.maximum(np.outer(nw, nt), 1e-300)
    cos[:, nt == 0.0] = -np.inf
    best = np.argmax(cos, axis=1)
    types = np.where(cos[np.arange(S.m), best] >= 1.0 - cos_tol, best + 1, -1)
    types[nw <= zero_tol * scale] = 0
    return types.astype(np.int64)


def hall_slack(types_a: np.ndarray, types_b: np.ndarray, M: int) -> int:
    """m - sum_j max(n_j^A, n_j^B), j = 1..M: >= 0 iff every type-j neuron can get a type-j or zero partner."""
    na = np.bincount(types_a[types_a > 0], minlength=M + 1)[1:]
    nb = np.bincount(types_b[types_b > 0], minlength=M + 1)[1:]
    return int(types_a.size - np.maximum(na, nb).sum())


def common_output_weight(A: TwoLayer, B: TwoLayer, rtol: float = GAMMA_RTOL) -> bool:
    """True when c_A = c_B and c a_i is one value gamma for every neuron of A and B."""
    g = np.concatenate([A.c * A.a, B.c * B.a])
    tol = rtol * max(abs(float(g[0])), 1e-300)
    return bool(abs(A.c - B.c) <= rtol * max(abs(A.c), 1e-300) and np.all(np.abs(g - g[0]) <= tol))


def type_matching(types_a: np.ndarray, types_b: np.ndarray, S_wm: np.ndarray) -> np.ndarray:
    """Assignment that pairs type j with type j or a zero wherever possible, then maximises S_wm.

    Maximises sum_i S_wm[i, perm(i)] - P * [pair (i, perm(i)) forbidden], a pair being allowed
    when both types are equal or either is 0, with P = 2 m max|S_wm| + 1 > any difference of
    score sums: the optimum has the fewest forbidden pairs, (-hall_slack)_+, and among those the
    best WM score. One exact assignment (:func:`tsim.match.solve_assignment`).

    Returns
    -------
    perm : ndarray of int, shape (m,)
    """
    ta, tb = types_a[:, None], types_b[None, :]
    allowed = (ta == tb) | (ta == 0) | (tb == 0)
    P = 2.0 * S_wm.shape[0] * max(float(np.abs(S_wm).max()), 1.0) + 1.0
    return solve_assignment(np.where(allowed, S_wm, S_wm - P), maximize=True)


def local_search(A: TwoLayer, B: TwoLayer, T: TwoLayer, perm, inputs: str = "gaussian", grid: int = 25,
                 max_sweeps: int = MAX_SWEEPS, max_seconds: float | None = None,
                 rtol: float = SEARCH_RTOL) -> tuple[np.ndarray, dict]:
    """Pair-swap descent on the barrier max_t e_t(perm) from ``perm`` (see the module docstring).

    e_t(perm) = L((1 - t) A + t B.permute(perm)) - ((1 - t) L(A) + t L(B)) on ``grid`` uniform
    t-points, L the exact population loss. A sweep tries every pair i < k once (O(m^2) tests of
    O(m) each at the peak t-point; the other t-points only for tests that lower the peak) and
    accepts a swap when it lowers the maximum over the interior t-points by more than
    rtol * (scale E* + max_t of the line), E* = 1/2 E[f*^2].

    Parameters
    ----------
    A, B : TwoLayer, same shape (m, d);  T : teacher (M, d)
    perm : ndarray of int, shape (m,)   start (B.permute(perm) aligned with A)
    max_sweeps : int                    at most this many sweeps
    max_seconds : float or None         no new sweep starts after this many seconds

    Returns
    -------
    perm : ndarray of int, shape (m,)
    info : dict                         sweeps, swaps, seconds, converged (last sweep accepted none)
    """
    t0 = time.perf_counter()
    perm = check_perm(perm, B.m).astype(np.int64).copy()
    ts = np.linspace(0.0, 1.0, int(grid))
    ends = path_losses(A, B, T, np.array([0.0, 1.0]), inputs)
    line = (1.0 - ts) * ends[0] + ts * ends[1]
    scale, energy = input_scale(inputs, A.d), teacher_energy(T)
    tol = rtol * (scale * energy + float(np.abs(line).max()))
    TW = np.ascontiguousarray(T.W, dtype=np.float64)
    args = (A.W @ A.W.T, A.W @ B.W.T, B.W @ B.W.T, A.W @ TW.T, B.W @ TW.T, np.linalg.norm(TW, axis=1),
            T.a * T.c, np.ascontiguousarray(A.a), np.ascontiguousarray(B.a), float(A.c), float(B.c), scale,
            energy, line, tol)
    sweeps = swaps = 0
    converged = False
    while sweeps < int(max_sweeps):
        if max_seconds is not None and time.perf_counter() - t0 > max_seconds:
            break
        accepted, _ = _sweep(ts, perm, *args)
        sweeps += 1
        swaps += int(accepted)
        if accepted == 0:
            converged = True
            break
    return perm, {"sweeps": sweeps, "swaps": swaps, "converged": converged,
                  "seconds": time.perf_counter() - t0}


def barrier_aware_matching(A: TwoLayer, B: TwoLayer, T: TwoLayer, inputs: str = "gaussian", grid: int = 25,
                           max_sweeps: int = MAX_SWEEPS, max_seconds: float | None = None,
                           S_wm: np.ndarray | None = None, cos_tol: float = COS_TOL,
                           zero_tol: float = ZERO_TOL) -> tuple[np.ndarray, float, dict]:
    """The permutation of B with the lowest barrier found: teacher-type construction + local search.

    Parameters
    ----------
    A, B : TwoLayer, same shape (m, d)
    T : TwoLayer                  teacher (M, d): the population loss, and the types of step 1
    inputs : "gaussian" or "sphere"
    grid : int >= 2               t-points of the barrier (the same grid as :func:`tsim.barrier`)
    max_sweeps, max_seconds       budget of the local search (see :func:`local_search`)
    S_wm : ndarray (m, m)         the rounded WM score (:func:`tsim.match.weight_scores`), if at hand
    cos_tol, zero_tol             type detection (:func:`teacher_types`)

    Returns
    -------
    perm : ndarray of int, shape (m,)   ``B.permute(perm)`` is aligned with A
    value : float                       its barrier, = tsim.barrier(A, B, T, perm=perm, grid=grid).value
                                        <= the WM barrier on that grid
    info : dict
        aligned (both nets teacher-aligned with a common output weight), exists (a zero-barrier
        permutation exists: hall_slack >= 0; None unless aligned), hall_slack (None unless every
        neuron has a type), barrier_weight (WM's barrier), start ("weight" or "types"), sweeps,
        swaps, converged, seconds (local search).
    """
    for net, name in ((A, "A"), (B, "B"), (T, "T")):
        check_net(net, name)
    if A.W.shape != B.W.shape:
        raise ValueError(f"A and B must have the same shape; got {A.W.shape} and {B.W.shape}. "
                         "Pad the narrower one (TwoLayer.pad) or use tsim.align, which pads.")
    if A.d != T.d:
        raise ValueError(f"student and teacher input dimensions differ: {A.d} vs {T.d}.")
    if isinstance(grid, bool) or not isinstance(grid, (int, np.integer)) or grid < 2:
        raise ValueError(f"grid must be an integer >= 2; got {grid!r}.")
    S_wm = weight_scores(A, B) if S_wm is None else S_wm

    def value(p):
        return barrier(A, B, T, perm=p, grid=int(grid), inputs=inputs).value

    wm = solve_assignment(S_wm, maximize=True)
    v_wm = value(wm)
    scale = max(float(np.linalg.norm(A.W, axis=1).max()), float(np.linalg.norm(B.W, axis=1).max()))
    ta = teacher_types(A, T, scale, cos_tol, zero_tol)
    tb = teacher_types(B, T, scale, cos_tol, zero_tol)
    typed = bool(np.all(ta >= 0) and np.all(tb >= 0))
    slack = hall_slack(ta, tb, T.m) if typed else None
    aligned = typed and common_output_weight(A, B)
    start, v_start, how = wm, v_wm, "weight"
    if typed:
        tp = type_matching(ta, tb, S_wm)
        v_tp = value(tp)
        if v_tp < v_start:
            start, v_start, how = tp, v_tp, "types"
    perm, info = local_search(A, B, T, start, inputs, grid, max_sweeps, max_seconds)
    v = value(perm) if info["swaps"] else v_start
    if not v < v_start:
        perm, v = start, v_start
    info.update(aligned=aligned, exists=(slack >= 0) if aligned else None, hall_slack=slack,
                barrier_weight=v_wm, start=how)
    return perm, float(v), info
