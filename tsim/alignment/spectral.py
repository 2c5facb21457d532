"""Weight matching seen through distances and singular vectors (Ito et al. 2024, arXiv:2402.04051).

For a two-layer net the weight matrices are W (m, d) and a^T (1, m). A hidden permutation P
acts as W -> P W, a -> P a: singular values and the d-side (right) singular vectors of W are
unchanged, the m-side (left) singular vectors are permuted. Ito et al. argue that weight
matching works by aligning the dominant singular directions of the two networks; we measure,
per rank r, |<u_r^A, u_r^B>| before and after matching.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..network import TwoLayer, check_perm


def _theta(S: TwoLayer) -> np.ndarray:
    return np.concatenate([S.W.ravel(), S.c * S.a])


@dataclass(frozen=True)
class Distance:
    """L2 distance of two parameter vectors theta = (W, c a).

    Attributes
    ----------
    dist : float   ||theta_A - theta_B||
    rel : float    dist / sqrt(||theta_A||^2 + ||theta_B||^2): 0 for equal nets, about 1 for
                   independent random ones, at most sqrt(2) (0 if both are zero)
    """

    dist: float
    rel: float


def l2_distance(A: TwoLayer, B: TwoLayer, perm=None) -> Distance:
    """||theta_A - theta_{perm(B)}|| and its size relative to the norms (perm=None: no permutation)."""
    if A.W.shape != B.W.shape:
        raise ValueError(f"A and B must have the same shape; got {A.W.shape} and {B.W.shape}. Pad first.")
    if perm is not None:
        B = B.permute(check_perm(perm, B.m))
    ta, tb = _theta(A), _theta(B)
    dist = float(np.linalg.norm(ta - tb))
    den = float(np.sqrt(ta @ ta + tb @ tb))
    return Distance(dist=dist, rel=dist / den if den > 0 else 0.0)


@dataclass(frozen=True)
class SVDAlignment:
    """Singular values of two matrices and the alignment of their singular vectors rank by rank.

    Attributes
    ----------
    s_a, s_b : ndarray, (r,)    singular values, descending, r = min of the shapes
    left : ndarray, (r,)        |<u_k^A, u_k^B>|, left singular vectors (rows side)
    right : ndarray, (r,)       |<v_k^A, v_k^B>|, right singular vectors (columns side)
    left_best : ndarray, (r,)   max_j |<u_k^A, u_j^B>| (robust to near-equal singular values
                                swapping their order)
    """

    s_a: np.ndarray
    s_b: np.ndarray
    left: np.ndarray
    right: np.ndarray
    left_best: np.ndarray


def svd_alignment(MA: np.ndarray, MB: np.ndarray) -> SVDAlignment:
    """Rank-by-rank |cos| between the singular vectors of MA and MB, both (p, q).

    Singular vectors are defined up to sign (and, for repeated singular values, up to rotation),
    hence absolute cosines; a zero singular value gives an arbitrary vector, so compare only the
    leading ranks of a rank-deficient matrix.
    """
    MA, MB = np.asarray(MA, dtype=np.float64), np.asarray(MB, dtype=np.float64)
    if MA.shape != MB.shape or MA.ndim != 2:
        raise ValueError(f"MA and MB must be 2-d of one shape; got {MA.shape} and {MB.shape}.")
    Ua, sa, Vta = np.linalg.svd(MA, full_matrices=False)
    Ub, sb, Vtb = np.linalg.svd(MB, full_matrices=False)
    left = np.abs(np.sum(Ua * Ub, axis=0))
    right = np.abs(np.sum(Vta * Vtb, axis=1))
    best = np.max(np.abs(Ua.T @ Ub), axis=1)
    return SVDAlignment(s_a=sa, s_b=sb, left=left, right=right, left_best=best)


@dataclass(frozen=True)
class SpectralReport:
    """Weight matching through distances and singular vectors, before and after matching.

    Attributes
    ----------
    before, after : Distance            L2 distance without and with ``perm``
    W_before, W_after : SVDAlignment    of W_A vs W_B and W_A vs P W_B (left = m-side vectors)
    a_before, a_after : float           |cos(a_A, a_B)| and |cos(a_A, P a_B)| (a^T is rank one)
    perm : ndarray, (m,)
    """

    before: Distance
    after: Distance
    W_before: SVDAlignment
    W_after: SVDAlignment
    a_before: float
    a_after: float
    perm: np.ndarray

    def rows(self) -> list[dict]:
        """One flat dict per rank of W: rank, s_a, s_b, left/right/left_best before and after."""
        out = []
        for r in range(self.W_before.s_a.size):
            out.append({"rank": r + 1, "s_a": float(self.W_before.s_a[r]), "s_b": float(self.W_before.s_b[r]),
                        "left_before": float(self.W_before.left[r]), "left_after": float(self.W_after.left[r]),
                        "left_best_before": float(self.W_before.left_best[r]),
                        "left_best_after": float(self.W_after.left_best[r]),
                        "right": float(self.W_after.right[r])})
        return out


def _abs_cos(x: np.ndarray, y: np.ndarray) -> float:
    den = float(np.linalg.norm(x) * np.linalg.norm(y))
    return abs(float(x @ y)) / den if den > 0 else 0.0


def spectral_report(A: TwoLayer, B: TwoLayer, perm) -> SpectralReport:
    """Distances and singular-vector alignment of A and B before and after B.permute(perm)."""
    perm = check_perm(perm, B.m)
    if A.W.shape != B.W.shape:
        raise ValueError(f"A and B must have the same shape; got {A.W.shape} and {B.W.shape}. Pad first.")
    Bp = B.permute(perm)
    return SpectralReport(before=l2_distance(A, B), after=l2_distance(A, Bp),
                          W_before=svd_alignment(A.W, B.W), W_after=svd_alignment(A.W, Bp.W),
                          a_before=_abs_cos(A.a, B.a), a_after=_abs_cos(A.a, Bp.a), perm=perm)
