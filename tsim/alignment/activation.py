"""Activation matching: an assignment on the correlation of hidden activations relu(w_i . x).

Moments are exact Gaussian ones (arc-cosine kernel) or accumulated over a sample in batches
(streaming, memory O(m^2) whatever n). Reference: Ainsworth, Hayase, Srinivasa 2023,
arXiv:2209.04836 (activation matching); Li et al. 2015, arXiv:1511.07543.
"""
from __future__ import annotations

import math

import numpy as np

from ..data import sample_inputs
from ..losses import kernel_matrix
from ..match import round_ties, solve_assignment
from ..network import TwoLayer


class ActivationMoments:
    """Streaming first and second moments of two activation vectors h^A (m_a,), h^B (m_b,).

    ``update(HA, HB)`` takes a batch (n_b, m_a), (n_b, m_b) and merges its centred moments
    with Chan et al.'s pairwise rule, so memory stays O((m_a + m_b)^2) whatever the total n:
    C_AB <- C_AB + C_AB^batch + delta_A delta_B^T n n_b / (n + n_b), delta = batch mean - mean.
    ``correlation()`` is cov_ij / sqrt(var_i var_j), 0 where a variance is 0 (dead or zero neurons).
    """

    def __init__(self, m_a: int, m_b: int):
        self.n = 0
        self.mean_a = np.zeros(m_a)
        self.mean_b = np.zeros(m_b)
        self.m2_a = np.zeros(m_a)
        self.m2_b = np.zeros(m_b)
        self.c_ab = np.zeros((m_a, m_b))

    def update(self, HA: np.ndarray, HB: np.ndarray) -> "ActivationMoments":
        """Merge one batch of activations; returns self."""
        HA = np.asarray(HA, dtype=np.float64)
        HB = np.asarray(HB, dtype=np.float64)
        if HA.ndim != 2 or HB.ndim != 2 or HA.shape[0] != HB.shape[0] \
                or HA.shape[1] != self.mean_a.size or HB.shape[1] != self.mean_b.size:
            raise ValueError(f"HA and HB must be (n, {self.mean_a.size}) and (n, {self.mean_b.size}); "
                             f"got {HA.shape} and {HB.shape}.")
        nb = HA.shape[0]
        if nb == 0:
            return self
        ma, mb = HA.mean(axis=0), HB.mean(axis=0)
        CA, CB = HA - ma, HB - mb
        da, db = ma - self.mean_a, mb - self.mean_b
        n = self.n
        tot = n + nb
        w = n * nb / tot
        self.m2_a += (CA * CA).sum(axis=0) + da * da * w
        self.m2_b += (CB * CB).sum(axis=0) + db * db * w
        self.c_ab += CA.T @ CB + np.outer(da, db) * w
        self.mean_a += da * (nb / tot)
        self.mean_b += db * (nb / tot)
        self.n = tot
        return self

    def correlation(self) -> np.ndarray:
        """Pearson correlation matrix, shape (m_a, m_b); 0 where either variance is 0."""
        if self.n < 2:
            raise ValueError(f"need at least 2 samples for a correlation; got n={self.n}.")
        return _corr(self.c_ab, self.m2_a, self.m2_b)


def _corr(cov: np.ndarray, var_a: np.ndarray, var_b: np.ndarray) -> np.ndarray:
    sa, sb = np.sqrt(np.maximum(var_a, 0.0)), np.sqrt(np.maximum(var_b, 0.0))
    den = np.outer(sa, sb)
    tiny = 1e-12 * max(float(np.max(den)) if den.size else 0.0, 1e-300)
    out = np.zeros_like(cov)
    ok = den > tiny
    out[ok] = cov[ok] / den[ok]
    return np.clip(out, -1.0, 1.0)


def population_correlation(WA: np.ndarray, WB: np.ndarray) -> np.ndarray:
    """Exact correlation of relu(w^A_i . x) and relu(w^B_j . x) for x ~ N(0, I), shape (m_a, m_b).

    E[relu(u.x)] = |u| / sqrt(2 pi),  E[relu(u.x) relu(v.x)] = kappa(u, v) (arc-cosine kernel),
    so cov = kappa(u, v) - |u||v| / (2 pi), var = |u|^2 (1/2 - 1/(2 pi)). Correlations are
    invariant to the input norm only for Gaussian inputs; on the sphere use a sample.
    """
    na, nb = np.linalg.norm(WA, axis=1), np.linalg.norm(WB, axis=1)
    cov = kernel_matrix(WA, WB) - np.outer(na, nb) / (2 * math.pi)
    k = 0.5 - 1.0 / (2 * math.pi)
    return _corr(cov, k * na ** 2, k * nb ** 2)


def activation_correlation(A: TwoLayer, B: TwoLayer, X: np.ndarray | None = None, *, n: int | None = None,
                           rng: np.random.Generator | None = None, inputs: str = "gaussian",
                           batch: int = 4096) -> np.ndarray:
    """Correlation matrix (m_a, m_b) of the hidden activations of A and B.

    Exact Gaussian moments when neither X nor n is given; otherwise streamed over X (n, d) or
    over n fresh inputs drawn from ``rng`` in batches of ``batch`` (``inputs`` "gaussian" or
    "sphere"), so memory does not grow with n.
    """
    if batch < 1:
        raise ValueError(f"batch must be >= 1; got {batch}.")
    if X is None and n is None:
        if inputs != "gaussian":
            raise ValueError(f"exact activation moments exist for inputs='gaussian' only; got {inputs!r}. "
                             "Pass a sample X or a sample size n with rng.")
        return population_correlation(A.W, B.W)
    acc = ActivationMoments(A.m, B.m)
    if X is not None:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != A.d:
            raise ValueError(f"X must have shape (n, {A.d}); got {X.shape}.")
        for s in range(0, X.shape[0], batch):
            Xb = X[s: s + batch]
            acc.update(np.maximum(Xb @ A.W.T, 0.0), np.maximum(Xb @ B.W.T, 0.0))
    else:
        if rng is None:
            raise ValueError("activation matching on n fresh samples needs rng (a numpy Generator).")
        if int(n) < 2:
            raise ValueError(f"n must be >= 2; got {n}.")
        left = int(n)
        while left > 0:
            Xb = sample_inputs(min(batch, left), A.d, inputs, rng)
            acc.update(np.maximum(Xb @ A.W.T, 0.0), np.maximum(Xb @ B.W.T, 0.0))
            left -= Xb.shape[0]
    return acc.correlation()


def activation_matching(A: TwoLayer, B: TwoLayer, X: np.ndarray | None = None, **kw) -> np.ndarray:
    """perm maximising sum_i corr(h^A_i, h^B_perm(i)) (Ainsworth et al. 2023, arXiv:2209.04836).

    Keyword arguments go to :func:`activation_correlation`. ``B.permute(perm)`` aligns with A.
    """
    if A.W.shape != B.W.shape:
        raise ValueError(f"A and B must have the same shape; got {A.W.shape} and {B.W.shape}. Use tsim.alignment.align(), which pads.")
    return solve_assignment(round_ties(activation_correlation(A, B, X, **kw)), maximize=True)
