"""Slow, obviously-correct numpy references that the kernels are tested against."""
import numpy as np

import tsim


def kappa(u, v):
    """Arc-cosine kernel for two vectors, from the formula (0 if either is zero)."""
    nu, nv = np.linalg.norm(u), np.linalg.norm(v)
    if nu == 0 or nv == 0:
        return 0.0
    cs = np.clip(u @ v / (nu * nv), -1, 1)
    t = np.arccos(cs)
    return nu * nv * (np.sin(t) + (np.pi - t) * cs) / (2 * np.pi)


def population_loss(W, a, c, TW, Ta, scale=1.0):
    """1/2 E[(f - f*)^2] by double loops over all pairs."""
    m, M = len(a), len(Ta)
    ss = sum(a[i] * a[j] * kappa(W[i], W[j]) for i in range(m) for j in range(m))
    st = sum(a[i] * Ta[k] * kappa(W[i], TW[k]) for i in range(m) for k in range(M))
    tt = sum(Ta[k] * Ta[l] * kappa(TW[k], TW[l]) for k in range(M) for l in range(M))
    return scale * (0.5 * c * c * ss - c * st + 0.5 * tt)


def sample_gd_step(W, a, c, X, y, lr, train_a):
    """One full-batch GD step on 1/(2n) sum (c relu(XW^T) a - y)^2; returns (loss, W', a')."""
    H = X @ W.T
    A = np.maximum(H, 0)
    r = c * A @ a - y
    n = len(y)
    loss = 0.5 * np.mean(r ** 2)
    ga = c * A.T @ r / n
    gW = (c * (r[:, None] * a[None, :]) * (H > 0)).T @ X / n
    return loss, W - lr * gW, (a - lr * ga) if train_a else a


def trained_like_pair(rng, m, d, noise=0.05):
    """Students near teacher-aligned minima, the weight-matching cost of trained nets: rows = one of
    max(2, d // 4) unit teacher directions x an Exp(1) scale + noise; B = a permuted noisy copy of A
    (rank-1 blocks: hard for dense JV, many near-ties). Used by tests/test_match.py and
    benchmarks/bench_matching.py."""
    T = rng.standard_normal((max(2, d // 4), d))
    T /= np.linalg.norm(T, axis=1, keepdims=True)
    s = rng.exponential(1.0, m)
    W = T[rng.integers(0, T.shape[0], m)] * s[:, None] + noise * rng.standard_normal((m, d)) / np.sqrt(d)
    A = tsim.TwoLayer(W, s + noise * rng.standard_normal(m))
    p = rng.permutation(m)
    B = tsim.TwoLayer(A.W[p] + noise * rng.standard_normal((m, d)) / np.sqrt(d),
                      A.a[p] + noise * rng.standard_normal(m))
    return A, B
