"""Numba kernels: GD and minibatch SGD on the empirical squared loss for an ensemble.

Per step, on a batch Xb (b, d), yb (b,): H = Xb W^T, f = c relu(H) a, r = f - yb,
L = 1/(2b) sum r^2, dL/da = c/b relu(H)^T r, dL/dW = (c/b) ((r a^T) * 1[H > 0])^T Xb.
Three (b x d x m) products: 6 b m d flops per step.
"""
import math

import numpy as np
from numba import njit, prange

from .popgd import STATUS_CONVERGED, STATUS_DIVERGED, STATUS_MAX_STEPS


@njit(cache=True, inline="always")
def _splitmix64(state):
    """One step of splitmix64: returns (new state, 64-bit output) as uint64."""
    state = state + np.uint64(0x9E3779B97F4A7C15)
    z = state
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return state, z ^ (z >> np.uint64(31))


@njit(cache=True)
def _batch_loss_grad(W, a, c, Xb, yb, want_grad, H, gW, ga):
    """Empirical loss on (Xb, yb) and (if want_grad) gradients into gW, ga. H (b, m) is scratch."""
    b = Xb.shape[0]
    m = W.shape[0]
    H[:, :] = np.dot(Xb, W.T)
    loss = 0.0
    inv_b = 1.0 / b
    if want_grad:
        ga[:] = 0.0
    for p in range(b):
        f = 0.0
        for j in range(m):
            h = H[p, j]
            if h > 0.0:
                f += a[j] * h
        r = c * f - yb[p]
        loss += r * r
        if want_grad:
            cr = c * r * inv_b
            for j in range(m):
                h = H[p, j]
                if h > 0.0:
                    ga[j] += cr * h
                    H[p, j] = cr * a[j]
                else:
                    H[p, j] = 0.0
    if want_grad:
        gW[:, :] = np.dot(H.T, Xb)
    return 0.5 * loss * inv_b


@njit(cache=True, parallel=True)
def _train_samples(W, a, c, X, y, lr, steps, batch, seeds, tol, train_a, blowup,
                   record_every, ckpt_steps, ckW, cka):
    """GD (batch == n) or SGD (batch < n, sampling with replacement) for each student, in place.

    W (E, m, d), a (E, m), X (E, n, d), y (E, n), lr (E,), seeds (E,) uint64.
    The recorded/returned loss is the full training loss. Status, divergence and checkpoints
    as in ``_train_population``.
    """
    E, m, d = W.shape
    n = X.shape[1]
    full = batch >= n
    R = steps // record_every + 1
    K = ckpt_steps.shape[0]
    status = np.zeros(E, dtype=np.int64)
    done = np.zeros(E, dtype=np.int64)
    final = np.empty(E)
    curve = np.full((E, R), np.nan)
    for e in prange(E):
        gW = np.empty((m, d))
        ga = np.empty(m)
        Hn = np.empty((n, m))
        b = n if full else batch
        Hb = np.empty((b, m))
        Xb = np.empty((b, d))
        yb = np.empty(b)
        Wp = W[e].copy()
        ap = a[e].copy()
        state = seeds[e]
        kc = 0
        last = math.nan
        for s in range(steps + 1):
            need_full = full or s % record_every == 0 or s == steps
            loss = math.nan
            if need_full:
                loss = _batch_loss_grad(W[e], a[e], c, X[e], y[e], full, Hn, gW, ga)
                bad = not math.isfinite(loss) or loss > blowup
            else:
                for p in range(b):
                    state, z = _splitmix64(state)
                    idx = np.int64(z % np.uint64(n))
                    Xb[p] = X[e, idx]
                    yb[p] = y[e, idx]
                bl = _batch_loss_grad(W[e], a[e], c, Xb, yb, True, Hb, gW, ga)
                bad = not math.isfinite(bl) or bl > blowup
            if bad:
                status[e] = STATUS_DIVERGED
                W[e] = Wp
                a[e] = ap
                done[e] = max(s - 1, 0)
                final[e] = last
                break
            if need_full:
                last = loss
                if s % record_every == 0:
                    curve[e, s // record_every] = loss
            while kc < K and ckpt_steps[kc] == s:
                ckW[e, kc] = W[e]
                cka[e, kc] = a[e]
                kc += 1
            if need_full and (loss <= tol or s == steps):
                status[e] = STATUS_CONVERGED if loss <= tol else STATUS_MAX_STEPS
                done[e] = s
                final[e] = loss
                break
            if need_full and not full:
                # the full pass gave the loss only: take this step on a fresh minibatch
                for p in range(b):
                    state, z = _splitmix64(state)
                    idx = np.int64(z % np.uint64(n))
                    Xb[p] = X[e, idx]
                    yb[p] = y[e, idx]
                _batch_loss_grad(W[e], a[e], c, Xb, yb, True, Hb, gW, ga)
            Wp[:, :] = W[e]
            ap[:] = a[e]
            W[e] -= lr[e] * gW
            if train_a:
                a[e] -= lr[e] * ga
    return status, done, final, curve
