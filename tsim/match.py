"""Aligning the hidden neurons of two two-layer networks.

Convention (used everywhere in tsim): ``perm = weight_matching(A, B)`` is an integer array of
length m such that ``B.permute(perm)`` (rows ``B.W[perm]``, ``B.a[perm]``) is aligned with A:
neuron i of A is matched with neuron perm[i] of B.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from .network import TwoLayer

try:  # lapx installs the module `lap`
    import lap as _lap
except ImportError:  # pragma: no cover - lapx is a dependency; scipy is the fallback
    _lap = None


def neuron_features(S: TwoLayer, out: np.ndarray | None = None) -> np.ndarray:
    """z_j = (w_j, c a_j), shape (m, d + 1): everything neuron j carries (into ``out`` if given)."""
    Z = np.empty((S.W.shape[0], S.W.shape[1] + 1)) if out is None else out
    Z[:, :-1] = S.W
    np.multiply(S.a, S.c, out=Z[:, -1])
    return Z


def round_ties(C: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Round C to 12 significant digits of its scale so float noise cannot split an exact tie.

    ``out`` (may be C itself) receives the result without a temporary; round(-C) = -round(C).
    """
    scale = max(float(C.max()), -float(C.min())) if C.size else 0.0  # max |C|, no temporary
    if scale == 0.0:
        return C
    from ._kernels.lap import quantum

    q = quantum(scale)
    R = np.divide(C, q, out=out)
    np.rint(R, out=R)
    R *= q
    return R


#: pricing tolerance and certificate tolerance of a cost not on a rounding grid, times max |C|
FLOAT_TOL = 1e-12


@dataclass(frozen=True)
class Assignment:
    """An optimal assignment with its LP duality certificate.

    Attributes
    ----------
    perm : ndarray of int, shape (m,)   row i is assigned column perm[i]
    u, v : ndarray, shape (m,)          dual prices of rows and columns, in the units of C and the
                                        sense of the problem: maximise: u_i + v_j >= C_ij for all i, j;
                                        minimise: u_i + v_j <= C_ij; equality on (i, perm[i]). In
                                        exact mode they are integers times q, so in C units these hold
                                        up to the rounding of that product (~1 ulp of max |C|)
    certified : bool                    the prices passed the check below (False: the solver
                                        fell back to scipy's exact solver, no prices; u, v are NaN)
    value : float                       sum_i C[i, perm[i]]
    violation : float                   worst violation of dual feasibility or of equality on the
                                        assignment, in units of C (0 in exact mode)
    tol : float                         the tolerance the check allowed, in units of C
    quantum : float                     q > 0: C was on the grid of multiples of q (as round_ties
                                        leaves it) and was solved and checked exactly in integer
                                        units C / q; 0: float mode (tol = FLOAT_TOL max |C|)
    solver : str                        who chose perm: "sap" (sparse shortest augmenting paths);
                                        on a tied optimum "lapjvs" or "scipy" (the earlier rule,
                                        see :func:`solve_lap`); "scipy" also for the uncertified fallback
    unique : bool or None               True: no alternating cycle of tight edges under (u, v), so
                                        perm is the only optimum; False: several optima (or too many
                                        tight edges to tell); None: not certified
    stats : dict                        pricing rounds, rows widened, rows reached by searches, ...
    """

    perm: np.ndarray
    u: np.ndarray
    v: np.ndarray
    certified: bool
    value: float
    violation: float
    tol: float
    quantum: float
    solver: str
    unique: bool | None = None
    stats: dict = field(default_factory=dict)


def _check_square(C: np.ndarray, name: str = "cost") -> np.ndarray:
    C = np.ascontiguousarray(C, dtype=np.float64)
    if C.ndim != 2 or C.shape[0] != C.shape[1]:
        raise ValueError(f"{name} must be a square matrix; got shape {C.shape}.")
    if not np.all(np.isfinite(C)):
        raise ValueError(f"{name} contains non-finite values.")
    return C


def _solve_sap(K: np.ndarray, C, maximize: bool, q: float, tol: float, hints,
               colmin: np.ndarray | None = None, work: tuple | None = None, dense_search: bool = False) -> Assignment:
    """Solve min sum K[i, perm[i]] (K = +-C, or +-C / q in exact mode) by sparse SAP and certify it.

    hints: guesses of the column prices of K (min form) besides the built-in ones (see solve_lap), a list
    of (m,) arrays or an (h, m) array;
    colmin: the column minima of K, when known; work: the solver's work arrays to reuse (and E);
    dense_search: augmenting searches on whole rows (see :data:`DENSE_M`).
    On a tied optimum the permutation of the earlier rule (:func:`_legacy_assignment` on the same
    input) is returned instead, certified by the same prices.
    """
    from ._kernels.lap import _alternating_cycle, _certify, solve

    m = K.shape[0]
    if work is None:
        work = _solver_work(m)
    x, u, v, st = solve(K, hints, SAP_K, SAP_CAP, tol, arr=SAP_ARR, colmin=colmin, work=work[:5],
                        dense_search=dense_search)
    E = work[5]
    viol, slack, big, n_tight = _certify(K, x, u, v, tol, E)
    if dense_search and not (viol <= tol and slack <= tol):  # never seen: the sparse path, which prices
        return _solve_sap(K, C, maximize, q, tol, hints, colmin, work)
    x = x.copy()  # a view of the work arrays
    unit = q if q > 0 else 1.0
    sign = -1.0 if maximize else 1.0
    certified = bool(viol <= tol and slack <= tol and big < 2.0 ** 52)
    stats = {"rounds": int(st[0]), "widened": int(st[1]), "reached": int(st[2]), "dense": int(st[3]),
             "hint": ("max_i C_ij", "half max_i C_ij", "given")[min(int(st[4]), 2)], "tight": int(n_tight)}
    C = C.K * C.factor if isinstance(C, _Scaled) and not certified else C
    if not certified:  # pragma: no cover - a safety net: never seen in the tests
        return _scipy(C, maximize, stats, max(viol, slack) * unit, tol * unit, q)
    unique = n_tight == 0 or (n_tight <= E.shape[0] and not _alternating_cycle(E, n_tight, x))
    solver = "sap"
    if not unique:  # several optima (or too many tight edges to tell): the earlier rule's choice
        # the earlier input exactly: weight_matching passed -round_ties(S) (= q K bit for bit)
        legacy_in = unit * K if isinstance(C, _Scaled) else (-C if maximize else C)
        p, solver = _legacy_assignment(legacy_in)
        if np.all(np.abs(u + v[p] - K[np.arange(m), p]) <= tol):  # the same prices prove it optimal
            x = p
        else:  # pragma: no cover - the legacy solvers are exact: cannot happen
            solver = "sap"
    return Assignment(perm=x, u=sign * unit * u, v=sign * unit * v, certified=True,
                      value=float(C[np.arange(m), x].sum()), violation=float(max(viol, slack, 0.0)) * unit,
                      tol=tol * unit, quantum=q, solver=solver, unique=bool(unique), stats=stats)


def _legacy_assignment(K: np.ndarray) -> tuple[np.ndarray, str]:
    """(perm, solver) minimising K as tsim did before the certified solver: lapx ``lapjvs`` (exact
    float64) for m < 512, scipy ``linear_sum_assignment`` from 512 on. Used on tied optima only,
    so that their tie-break (which can decide a barrier) is unchanged."""
    m = K.shape[0]
    perm = np.empty(m, dtype=np.int64)
    if _lap is not None and m < SCIPY_FROM_M:
        _, rows, cols = _lap.lapjvs(K, return_cost=True, jvx_like=True, prefer_float32=False)
        perm[rows] = cols
        return perm, "lapjvs"
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(K)
    perm[rows] = cols
    return perm, "scipy"


#: the earlier rule's crossover (lapjvs below, scipy from there), kept for the tie-break on tied optima
SCIPY_FROM_M = 512
#: tight edges off the matching examined for a second optimum, per row (more: treated as tied)
TIGHT_CAP = 8


#: candidate edges per row to start with (and added per widening), and the most before a row is dense
SAP_K, SAP_CAP, SAP_ARR = 12, 64, 2


def solve_lap(C: np.ndarray, maximize: bool = False, col_prices: np.ndarray | None = None) -> Assignment:
    """Exact linear assignment on a square cost C (m, m) with an LP duality certificate.

    Finds perm with sum_i C[i, perm[i]] optimal (max or min) and dual prices u, v:
    maximise: u_i + v_j >= C_ij for all i, j, with equality on (i, perm[i]), which proves optimality
    (weak duality: any assignment scores <= sum u + sum v = the value of perm).

    Exact mode: when C lies on a grid of multiples of q = 10^(floor(log10 max|C|) - 11) (what
    :func:`round_ties` returns), the solver works on the integers C / q (< 10^12 in size), where every
    float64 sum is exact, and the certificate is checked with tolerance 0: perm is exactly optimal
    for the rounded cost. Otherwise (float mode) prices are checked with tol = FLOAT_TOL max |C|,
    which proves the value within 2 m tol of the optimum.

    Solver: shortest augmenting paths (Jonker-Volgenant) on a sparse candidate graph, priced against
    the full matrix until no edge violates the duals (:mod:`tsim._kernels.lap`); O(m^2) memory reads
    per pricing round, far fewer Dijkstra steps than a dense solver on low-rank costs. If the check
    ever failed, scipy's solver would answer instead (``certified=False``, no prices).

    Ties. The prices also tell whether the optimum is unique: it is unless the tight edges
    (u_i + v_j = C_ij) off the assignment close an alternating cycle (``unique``). A unique optimum is
    what every exact solver returns, so perm equals scipy's and lapx's. On a tied optimum perm is
    the one tsim chose before this solver (``lap.lapjvs`` below m = 512, scipy from there, re-solved
    on the same input; ``solver`` says which), certified by the same prices: tie-breaks, which can
    decide a barrier, are unchanged, and equal inputs give equal outputs.

    Parameters
    ----------
    C : ndarray, shape (m, m)    finite costs (or scores with maximize=True)
    maximize : bool
    col_prices : ndarray, shape (m,), optional
        a guess of the optimal column prices v (any values are valid; good ones make the candidate
        graph small), e.g. |y_j|^2 / 2 for C_ij = <x_i, y_j> of near-matching vectors. Used when it
        gives a larger greedy matching than the built-in guesses (v_j = max_i C_ij and half of it).
    """
    C = _check_square(C)
    m = C.shape[0]
    scale = max(float(C.max()), -float(C.min())) if m else 0.0
    if m <= 1 or scale == 0.0:  # nothing to solve: any perm is optimal (the earlier rule picks one)
        perm, solver = (np.arange(m, dtype=np.int64), "trivial") if m <= 1 else _legacy_assignment(C)
        return Assignment(perm=perm, u=np.zeros(m), v=C[0].copy() if m else np.zeros(0), certified=True,
                          value=float(np.trace(C)), violation=0.0, tol=0.0, quantum=0.0, solver=solver,
                          unique=m <= 1)
    from ._kernels.lap import _quantize, quantum

    sign = -1.0 if maximize else 1.0
    K = np.empty_like(C)
    q = quantum(scale)
    for qq in (q, q / 10):  # round_ties's grid of C, or of a C whose rounding reached the next power of 10
        if _quantize(C, qq, sign, K) <= 1e-3:
            q, tol = qq, 0.0
            break
    else:
        q, tol = 0.0, FLOAT_TOL * scale
        np.multiply(C, sign, out=K)
    unit = q if q > 0 else 1.0
    hints = []
    if col_prices is not None:
        h = np.asarray(col_prices, dtype=np.float64) * (sign / unit)
        hints.append(np.rint(h) if q > 0 else h)
    return _solve_sap(K, C, maximize, q, tol, hints)


def certificate_holds(C: np.ndarray, perm: np.ndarray, u: np.ndarray, v: np.ndarray, maximize: bool = False,
                      tol: float = 0.0) -> bool:
    """Whether prices (u, v) prove perm optimal for C: an independent numpy check, O(m^2) memory.

    maximise: u_i + v_j >= C_ij - tol for all i, j and |u_i + v_perm(i) - C_i,perm(i)| <= tol
    (minimise: <=). Then sum_i C[i, perm[i]] is within 2 m tol of the optimum (exactly optimal at
    tol = 0; :func:`solve_lap` checks exact-mode results in integer units, where tol = 0).
    """
    C = np.asarray(C, dtype=np.float64)
    perm = np.asarray(perm)
    u = np.asarray(u, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    m = C.shape[0]
    if perm.shape != (m,) or not np.array_equal(np.sort(perm), np.arange(m)) or not np.all(np.isfinite(u)):
        return False
    gap = u[:, None] + v[None, :] - C
    if not maximize:
        gap = -gap
    return bool(gap.min() >= -tol and np.all(np.abs(gap[np.arange(m), perm]) <= tol))


def solve_assignment(C: np.ndarray, maximize: bool = False) -> np.ndarray:
    """Exact linear assignment on a square cost C (m, m): perm with sum_i C[i, perm[i]] optimal.

    ``solve_lap(C, maximize).perm``: see :func:`solve_lap` for the solver, the certificate and
    what is guaranteed on ties.
    """
    return solve_lap(C, maximize).perm


def weight_scores(A: TwoLayer, B: TwoLayer) -> np.ndarray:
    """S[i, k] = <z^A_i, z^B_k>, shape (m_A, m_B), rounded for ties (one GEMM, rounded in place)."""
    C = neuron_features(A) @ neuron_features(B).T
    return round_ties(C, out=C)


def weight_assignment(A: TwoLayer, B: TwoLayer) -> Assignment:
    """Weight matching of B to A with its duality certificate (see :func:`weight_matching`).

    One GEMM builds S = Z_A Z_B^T, z = (w, c a); S is rounded as :func:`round_ties` does (to its
    grid of q = 10^(floor(log10 max|S|) - 11)) straight into integers S / q, which the sparse
    solver maximises exactly (:func:`solve_lap`, exact mode), column prices guessed as |z^B_j|^2 / 2.
    ``perm``, ``value`` and the prices u, v refer to the rounded S.
    """
    if A.d != B.d:
        raise ValueError(f"A and B must have the same input dimension d; got d={A.d} and d={B.d}.")
    if A.m != B.m:
        raise ValueError(f"A and B must have the same width m to be matched; got m={A.m} and m={B.m}. "
                         "Pad the narrower one with zero neurons (TwoLayer.pad) or use tsim.align, which pads.")
    m = A.m
    if m <= 1:
        return solve_lap(weight_scores(A, B), maximize=True)
    from ._kernels.lap import _round_scores

    ZA, ZB, K, colmin, hint, work = _workspace(m, A.d)
    neuron_features(A, out=ZA)
    neuron_features(B, out=ZB)
    np.matmul(ZA, ZB.T, out=K)
    # K = -rint(S / q), to minimise: the S of weight_scores (round_ties) is -q K exactly
    q = _round_scores(K, colmin, ZB, hint[0])
    if q == 0.0:  # max |S| is 0 (or not finite: rejected by the solver's check)
        return solve_lap(round_ties(K.copy()), maximize=True)
    return _solve_sap(K, _Scaled(K, -q), True, q, 0.0, hint, colmin, work,  # column prices guessed as |z^B_j|^2 / 2
                      dense_search=m <= DENSE_M)


#: weight matching of width m <= DENSE_M runs its augmenting searches on whole rows (vectorised passes):
#: the solve takes 0.67-1.0x the time of the candidate-list searches at m = 128-256, d = 16-256, random and
#: trained costs; at m = 512 the lists are faster on random costs (whole rows 1.1-1.2x)
DENSE_M = 256


_WORK = threading.local()


def _workspace(m: int, d: int) -> tuple:
    """Per-thread arrays of :func:`weight_assignment` for (m, d), kept for the next call of that shape.

    Z_A, Z_B (m, d + 1), the score K (m, m), column minima (m,), the column price hint (1, m) and the
    solver's work arrays (:func:`_solver_work`). Fresh pages cost more than the arithmetic on them here
    (first touch ~1.5 GB/s against ~4 GB/s for a rewrite), so a sweep matching many pairs of one shape
    reuses one set. Only the last shape is kept, and only up to :data:`WORKSPACE_MAX` entries of K
    (32 MiB; beyond, the solve outweighs the pages and nothing is held); nothing in them outlives a
    call's result.
    """
    w = getattr(_WORK, "w", None)
    if w is None or w[0] != (m, d):
        w = ((m, d), np.empty((m, d + 1)), np.empty((m, d + 1)), np.empty((m, m)), np.empty(m), np.empty((1, m)),
             _solver_work(m))
        _WORK.w = w if m * m <= WORKSPACE_MAX else None
    return w[1:]


def _solver_work(m: int) -> tuple:
    """The arrays :func:`_solve_sap` works in for width m: the solver's (:func:`tsim._kernels.lap.work_arrays`)
    and E, the certificate's list of tight edges (TIGHT_CAP m, 2)."""
    from ._kernels.lap import work_arrays

    return work_arrays(m, SAP_K, SAP_CAP) + (np.empty((TIGHT_CAP * m, 2), np.int64),)


#: the largest score matrix (entries) a thread keeps between weight matchings: m <= 2048
WORKSPACE_MAX = 2 ** 22


class _Scaled:
    """C = factor * K without forming it: only C[rows, cols] (the assignment's value) is read."""

    def __init__(self, K, factor):
        self.K, self.factor, self.shape = K, factor, K.shape

    def __getitem__(self, idx):
        return self.K[idx] * self.factor


def weight_matching(A: TwoLayer, B: TwoLayer) -> np.ndarray:
    """Permutation of B's neurons that best matches A's weights.

    Solves  max_perm sum_i <z^A_i, z^B_perm(i)>,  z_j = (w_j, c a_j),
    which for one hidden layer is exactly  min_perm ||theta_A - theta_{perm(B)}||^2  and is one
    linear assignment (Ainsworth et al. 2023, arXiv:2209.04836). Ties: the score is rounded to 12
    significant digits (:func:`round_ties`) and solved exactly with a duality certificate
    (:func:`weight_assignment`, :func:`solve_lap`), so equal inputs give equal outputs; use
    :func:`assignment_ties` to see whether the optimum was unique.

    Returns
    -------
    perm : ndarray of int, shape (m,)   ``B.permute(perm)`` is aligned with A.
    """
    return weight_assignment(A, B).perm


@dataclass(frozen=True)
class TieReport:
    """Ties of an optimal assignment found by 2-swaps.

    Attributes
    ----------
    n_tied : int              rows i that can swap partners with some row k at no change of the objective
    pairs : ndarray, (p, 2)   the tied row pairs (i, k), i < k
    """

    n_tied: int
    pairs: np.ndarray

    @property
    def unique(self) -> bool:
        """True when no 2-swap tie exists (a tie over a longer cycle is not detected)."""
        return self.n_tied == 0


def assignment_ties(S: np.ndarray, perm: np.ndarray, rtol: float = 1e-9) -> TieReport:
    """Rows whose partners can be swapped without changing sum_i S[i, perm[i]] (a score to maximise).

    For rows i, k: delta_ik = S[i,p_i] + S[k,p_k] - S[i,p_k] - S[k,p_i] >= 0 at an optimum; a
    zero delta (within rtol times the score scale) is a tie. On teacher-aligned minima (neurons 0
    or alpha e_j) a type-j/type-k pair and a type-j/zero pair both score 0, so such ties decide
    the matching and can decide the barrier.
    """
    S = np.asarray(S, dtype=np.float64)
    perm = np.asarray(perm)
    own = S[np.arange(S.shape[0]), perm]
    cross = S[:, perm]  # cross[i, k] = S[i, p_k]
    delta = own[:, None] + own[None, :] - cross - cross.T
    tol = rtol * max(float(np.max(np.abs(S))), 1e-300)
    iu = np.triu_indices(S.shape[0], k=1)
    tied = np.abs(delta[iu]) <= tol
    pairs = np.column_stack([iu[0][tied], iu[1][tied]])
    return TieReport(n_tied=int(np.unique(pairs).size), pairs=pairs)


def weight_matching_ties(A: TwoLayer, B: TwoLayer, perm: np.ndarray) -> TieReport:
    """:func:`assignment_ties` for the weight-matching score of A and B at ``perm``."""
    return assignment_ties(weight_scores(A, B), perm)
