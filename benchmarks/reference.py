"""Plain vectorised numpy baselines that the benchmarks time tsim against.

These are the "straightforward" implementations: whole (m, m) matrices, one numpy call per
formula term, no use of symmetry. They are also checked against tsim for equal numbers.
"""
import numpy as np

INV_2PI = 1.0 / (2.0 * np.pi)


def _angles(U, V, nu, nv):
    """(pi - theta, sin theta, kappa) matrices for rows of U (p, d), V (q, d); zero rows give 0."""
    N = np.outer(nu, nv)
    with np.errstate(divide="ignore", invalid="ignore"):
        cs = np.where(N > 0, (U @ V.T) / N, 0.0)
    cs = np.clip(cs, -1.0, 1.0)
    pmt = np.pi - np.arccos(cs)
    sn = np.sqrt(np.maximum(0.0, 1.0 - cs * cs))
    K = N * (sn + pmt * cs) * INV_2PI
    return pmt, sn, K


def population_loss_grad(W, a, c, TW, Ta, scale=1.0):
    """Exact population loss and gradient, vectorised numpy (no symmetry, full matrices).

    L = scale (1/2 c^2 a^T K(W, W) a - c a^T K(W, W*) a* + 1/2 a*^T K(W*, W*) a*),
    dL/dw_i = scale (c^2 a_i sum_j a_j d1k(w_i, w_j) - c a_i sum_l a*_l d1k(w_i, w*_l)),
    d1k(u, v) = ((pi - t) v + sin t |v| u / |u|) / (2 pi). Returns (loss, gW (m, d), ga (m,)).
    """
    nw = np.linalg.norm(W, axis=1)
    nt = np.linalg.norm(TW, axis=1)
    Pss, Sss, Kss = _angles(W, W, nw, nw)
    Pst, Sst, Kst = _angles(W, TW, nw, nt)
    _, _, Ktt = _angles(TW, TW, nt, nt)
    loss = scale * (0.5 * c * c * a @ Kss @ a - c * a @ Kst @ Ta + 0.5 * Ta @ Ktt @ Ta)
    ga = scale * (c * c * Kss @ a - c * Kst @ Ta)
    lin = c * c * (Pss * a[None, :]) @ W - c * (Pst * Ta[None, :]) @ TW
    rad = c * c * (Sss * a[None, :]) @ nw - c * (Sst * Ta[None, :]) @ nt
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.where(nw[:, None] > 0, W / nw[:, None], 0.0)
    gW = scale * INV_2PI * a[:, None] * (lin + rad[:, None] * u)
    gW[nw == 0] = 0.0
    ga[nw == 0] = 0.0
    return float(loss), gW, ga


def population_gd_step(W, a, c, TW, Ta, lr, scale=1.0):
    """One GD step on the population loss (W only): returns (loss, W')."""
    loss, gW, _ = population_loss_grad(W, a, c, TW, Ta, scale)
    return loss, W - lr * gW


def sample_gd_step(W, a, c, X, y, lr, train_a=False):
    """One full-batch GD step on 1/(2n) sum_p (c relu(W x_p) . a - y_p)^2; returns (loss, W', a').

    6 n m d flops: H = X W^T, then dL/dW = (c/n) ((r a^T) * 1[H > 0])^T X (plus O(n m) work).
    """
    H = X @ W.T
    A = np.maximum(H, 0.0)
    r = c * (A @ a) - y
    n = y.shape[0]
    loss = 0.5 * float(r @ r) / n
    D = (c / n) * (r[:, None] * a[None, :]) * (H > 0)
    gW = D.T @ X
    ga = (c / n) * (A.T @ r)
    return loss, W - lr * gW, (a - lr * ga) if train_a else a


def torch_train_gd(W0, a0, X, y, lr, steps, c=1.0, dtype="float64"):
    """Full-batch GD with torch autograd on CPU, one student: returns (loss, W, a) as numpy."""
    import torch

    dt = getattr(torch, dtype)
    Xt = torch.as_tensor(X, dtype=dt)
    yt = torch.as_tensor(y, dtype=dt)
    W = torch.tensor(W0, dtype=dt, requires_grad=True)
    a = torch.as_tensor(a0, dtype=dt)
    loss = None
    for _ in range(steps):
        r = c * (torch.relu(Xt @ W.T) @ a) - yt
        loss = 0.5 * (r * r).mean()
        (g,) = torch.autograd.grad(loss, W)
        with torch.no_grad():
            W -= lr * g
    return float(loss), W.detach().numpy().astype(np.float64), a.numpy().astype(np.float64)
