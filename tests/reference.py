"""Slow, obviously-correct numpy references that the kernels are tested against."""
import numpy as np


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
