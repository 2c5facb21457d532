"""Teacher-based ground truth for an alignment: planted and functional recovery, teacher agreement."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..match import neuron_features
from ..network import TwoLayer, check_perm


def planted_recovery(perm, planted) -> float:
    """Fraction of neurons matched as planted: B = A.permute(planted) is undone by argsort(planted).

    Returns mean_i [perm[i] == argsort(planted)[i]] in [0, 1]. Duplicate or zero neurons in A can
    be swapped at no cost; use :func:`functional_recovery` to count those as recovered.
    """
    planted = check_perm(planted, len(planted))
    perm = check_perm(perm, planted.size)
    return float(np.mean(perm == np.argsort(planted)))


def functional_recovery(A: TwoLayer, B: TwoLayer, perm, rtol: float = 1e-8) -> float:
    """Fraction of i with neuron perm[i] of B equal to neuron i of A (features z = (w, c a)) within rtol."""
    perm = check_perm(perm, B.m)
    za, zb = neuron_features(A), neuron_features(B.permute(perm))
    scale = max(float(np.max(np.abs(za))), 1e-300)
    return float(np.mean(np.max(np.abs(za - zb), axis=1) <= rtol * scale))


@dataclass(frozen=True)
class TeacherAlignment:
    """How each student neuron lines up with the teacher neurons.

    Attributes
    ----------
    cos : ndarray, shape (m, M)     cos angle(w_j, w*_k); 0 for a zero neuron
    best : ndarray of int, (m,)     argmax_k cos[j, k], -1 for a neuron with |c a_j| |w_j| <= tol
    best_cos : ndarray, (m,)        cos[j, best[j]] (nan for inactive neurons)
    active : ndarray of bool, (m,)  |c a_j| |w_j| > tol * max_j |c a_j| |w_j|
    """

    cos: np.ndarray
    best: np.ndarray
    best_cos: np.ndarray
    active: np.ndarray


def teacher_alignment(S: TwoLayer, T: TwoLayer, tol: float = 1e-3) -> TeacherAlignment:
    """Cosine of each student neuron with each teacher neuron and its best teacher partner.

    A neuron is active when its output magnitude |c a_j| |w_j| exceeds ``tol`` times the largest
    (the same rule as tsim.sparse_fraction); inactive neurons get best = -1.
    """
    if S.d != T.d:
        raise ValueError(f"student and teacher input dimensions differ: {S.d} vs {T.d}.")
    nw, nt = np.linalg.norm(S.W, axis=1), np.linalg.norm(T.W, axis=1)
    den = np.outer(nw, nt)
    cos = np.divide(S.W @ T.W.T, den, out=np.zeros_like(den), where=den > 0)
    mag = np.abs(S.c * S.a) * nw
    active = mag > tol * max(float(mag.max()), 1e-300)
    best = np.where(active, np.argmax(cos, axis=1), -1)
    best_cos = np.where(active, cos[np.arange(S.m), np.maximum(best, 0)], np.nan)
    return TeacherAlignment(cos=cos, best=best, best_cos=best_cos, active=active)


def teacher_agreement(A: TwoLayer, B: TwoLayer, perm, T: TwoLayer, tol: float = 1e-3) -> float:
    """Fraction of matched pairs (i, perm[i]) that sit on the same teacher neuron.

    A pair counts when both neurons are inactive, or both are active with the same best teacher
    neuron (see :func:`teacher_alignment`). 1 means the matching is right by the teacher's
    labelling, whatever its weight-matching score; nan if A and B widths differ (pad first).
    """
    perm = check_perm(perm, B.m)
    if A.m != B.m:
        raise ValueError(f"A and B must have the same width; got {A.m} and {B.m}. Pad first (pad_pair).")
    ta, tb = teacher_alignment(A, T, tol), teacher_alignment(B.permute(perm), T, tol)
    return float(np.mean(ta.best == tb.best))
