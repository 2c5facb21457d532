"""Aligning the hidden neurons of two two-layer networks.

Convention (used everywhere in tsim): ``perm = weight_matching(A, B)`` is an integer array of
length m such that ``B.permute(perm)`` (rows ``B.W[perm]``, ``B.a[perm]``) is aligned with A:
neuron i of A is matched with neuron perm[i] of B.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .network import TwoLayer

try:  # lapx installs the module `lap`
    import lap as _lap
except ImportError:  # pragma: no cover - lapx is a dependency; scipy is the fallback
    _lap = None


def neuron_features(S: TwoLayer) -> np.ndarray:
    """z_j = (w_j, c a_j), shape (m, d + 1): everything neuron j carries."""
    return np.hstack([S.W, (S.c * S.a)[:, None]])


def round_ties(C: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Round C to 12 significant digits of its scale so float noise cannot split an exact tie.

    ``out`` (may be C itself) receives the result without a temporary; round(-C) = -round(C).
    """
    scale = max(float(C.max()), -float(C.min())) if C.size else 0.0  # max |C|, no temporary
    if scale == 0.0:
        return C
    q = 10.0 ** (np.floor(np.log10(scale)) - 11)
    R = np.divide(C, q, out=out)
    np.rint(R, out=R)
    R *= q
    return R


SCIPY_FROM_M = 512  # measured crossover of the two exact float64 solvers (benchmarks/bench_matching.py)


def solve_assignment(C: np.ndarray, maximize: bool = False) -> np.ndarray:
    """Exact linear assignment on a square cost C (m, m): perm with sum_i C[i, perm[i]] optimal.

    Both solvers are exact in float64: LAPJV from lapx (``lap.lapjvs``, prefer_float32=False) for
    m < ``SCIPY_FROM_M``, scipy.optimize.linear_sum_assignment from there on (in float64 it was
    1.6-3x faster than lapjvs at m = 1024..4096 on inner-product costs here, see
    benchmarks/RESULTS.md) or whenever lapx is missing. Deterministic for a given C.
    """
    C = np.ascontiguousarray(C, dtype=np.float64)
    if C.ndim != 2 or C.shape[0] != C.shape[1]:
        raise ValueError(f"cost must be a square matrix; got shape {C.shape}.")
    if not np.all(np.isfinite(C)):
        raise ValueError("cost contains non-finite values.")
    if maximize:
        C = -C
    m = C.shape[0]
    if m == 1:
        return np.zeros(1, dtype=np.int64)
    if _lap is not None and m < SCIPY_FROM_M:
        _, rows, cols = _lap.lapjvs(C, return_cost=True, jvx_like=True, prefer_float32=False)
        perm = np.empty(m, dtype=np.int64)
        perm[rows] = cols
        return perm
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(C)
    perm = np.empty(m, dtype=np.int64)
    perm[rows] = cols
    return perm


def weight_scores(A: TwoLayer, B: TwoLayer) -> np.ndarray:
    """S[i, k] = <z^A_i, z^B_k>, shape (m_A, m_B), rounded for ties (one GEMM, rounded in place)."""
    C = neuron_features(A) @ neuron_features(B).T
    return round_ties(C, out=C)


def weight_matching(A: TwoLayer, B: TwoLayer) -> np.ndarray:
    """Permutation of B's neurons that best matches A's weights.

    Solves  max_perm sum_i <z^A_i, z^B_perm(i)>,  z_j = (w_j, c a_j),
    which for one hidden layer is exactly  min_perm ||theta_A - theta_{perm(B)}||^2  and is one
    linear assignment (Ainsworth et al. 2023, arXiv:2209.04836). Ties: the cost is rounded to 12
    significant digits and solved exactly (:func:`solve_assignment`), so equal inputs give equal
    outputs; use :func:`assignment_ties` to see whether the optimum was unique.

    Returns
    -------
    perm : ndarray of int, shape (m,)   ``B.permute(perm)`` is aligned with A.
    """
    if A.d != B.d:
        raise ValueError(f"A and B must have the same input dimension d; got d={A.d} and d={B.d}.")
    if A.m != B.m:
        raise ValueError(f"A and B must have the same width m to be matched; got m={A.m} and m={B.m}. "
                         "Pad the narrower one with zero neurons (TwoLayer.pad) or use tsim.align, which pads.")
    C = weight_scores(A, B)
    np.negative(C, out=C)  # minimise -C in place: the same LAP input as maximize=True, no copy
    return solve_assignment(C, maximize=False)


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
