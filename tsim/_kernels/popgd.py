"""Numba kernel: gradient descent on the exact population loss for an ensemble of students."""
import math

import numpy as np
from numba import njit, prange

from .arccos import _loss_grad

STATUS_MAX_STEPS = 0
STATUS_CONVERGED = 1
STATUS_DIVERGED = 2


@njit(cache=True, parallel=True)
def _train_population(W, a, c, TW, Ta, tt, scale, lr, steps, tol, train_a, blowup,
                      record_every, ckpt_steps, ckW, cka):
    """GD W <- W - lr_e dL/dW (and a, if train_a) for each student e, in place.

    W (E, m, d), a (E, m), lr (E,), ckpt_steps (K,) sorted, ckW (E, K, m, d), cka (E, K, m).
    Stops a student at ``steps``, at loss <= tol (converged), or at a non-finite loss or a loss
    above ``blowup`` (diverged; W and a are then the last iterate with a finite loss).
    Returns (status (E,), steps_done (E,), final loss (E,), curve (E, R)),
    curve[e, r] = loss at step r * record_every (nan after the student stopped).
    """
    E, m, d = W.shape
    R = steps // record_every + 1
    K = ckpt_steps.shape[0]
    status = np.zeros(E, dtype=np.int64)
    done = np.zeros(E, dtype=np.int64)
    final = np.empty(E)
    curve = np.full((E, R), np.nan)
    for e in prange(E):
        gW = np.empty((m, d))
        ga = np.empty(m)
        Wp = W[e].copy()
        ap = a[e].copy()
        kc = 0
        last = math.nan
        for s in range(steps + 1):
            loss = _loss_grad(W[e], a[e], c, TW, Ta, tt, scale, True, gW, ga)
            if not math.isfinite(loss) or loss > blowup:
                status[e] = STATUS_DIVERGED
                W[e] = Wp
                a[e] = ap
                done[e] = max(s - 1, 0)
                final[e] = last
                break
            last = loss
            if s % record_every == 0:
                curve[e, s // record_every] = loss
            while kc < K and ckpt_steps[kc] == s:
                ckW[e, kc] = W[e]
                cka[e, kc] = a[e]
                kc += 1
            if loss <= tol or s == steps:
                status[e] = STATUS_CONVERGED if loss <= tol else STATUS_MAX_STEPS
                done[e] = s
                final[e] = loss
                break
            Wp[:, :] = W[e]
            ap[:] = a[e]
            W[e] -= lr[e] * gW
            if train_a:
                a[e] -= lr[e] * ga
    return status, done, final, curve
