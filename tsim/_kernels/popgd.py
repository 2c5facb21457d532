"""Numba kernel: gradient descent on the exact population loss for an ensemble of students."""
import math

import numba
import numpy as np
from numba import njit, prange

from .arccos import FM, _loss_grad_ws, _n_chunks, _workspace

STATUS_MAX_STEPS = 0
STATUS_CONVERGED = 1
STATUS_DIVERGED = 2


@njit(cache=True, error_model="numpy", fastmath=FM)
def _train_one(e, W, a, c, TW, Ta, tt, scale, lr, steps, tol, train_a, blowup, record_every,
               ckpt_steps, ckW, cka, status, done, final, curve, split_rows):
    """GD for student e (see :func:`_train_population`); ``split_rows`` runs each step's row
    chunks on threads (same numbers as serially)."""
    E, m, d = W.shape
    K = ckpt_steps.shape[0]
    ws = _workspace(m, d)
    gW = np.empty((m, d))
    ga = np.empty(m)
    Wp = W[e].copy()
    ap = a[e].copy()
    We = W[e]
    ae = a[e]
    kc = 0
    last = math.nan
    for s in range(steps + 1):
        loss = _loss_grad_ws(We, ae, c, TW, Ta, tt, scale, s < steps, gW, ga, ws, split_rows)
        if not math.isfinite(loss) or loss > blowup:
            status[e] = STATUS_DIVERGED
            We[:, :] = Wp
            ae[:] = ap
            done[e] = max(s - 1, 0)
            final[e] = last
            return
        last = loss
        if s % record_every == 0:
            curve[e, s // record_every] = loss
        while kc < K and ckpt_steps[kc] == s:
            ckW[e, kc] = We
            cka[e, kc] = ae
            kc += 1
        if loss <= tol or s == steps:
            status[e] = STATUS_CONVERGED if loss <= tol else STATUS_MAX_STEPS
            done[e] = s
            final[e] = loss
            return
        Wp[:, :] = We
        ap[:] = ae
        lre = lr[e]
        for j in range(m):
            for k in range(d):
                We[j, k] -= lre * gW[j, k]
        if train_a:
            for j in range(m):
                ae[j] -= lre * ga[j]


@njit(cache=True, parallel=True, error_model="numpy")
def _train_students(W, a, c, TW, Ta, tt, scale, lr, steps, tol, train_a, blowup,
                    record_every, ckpt_steps, ckW, cka, split_rows):
    E = W.shape[0]
    R = steps // record_every + 1
    status = np.zeros(E, dtype=np.int64)
    done = np.zeros(E, dtype=np.int64)
    final = np.empty(E)
    curve = np.full((E, R), np.nan)
    if split_rows:
        for e in range(E):
            _train_one(e, W, a, c, TW, Ta, tt, scale, lr, steps, tol, train_a, blowup, record_every,
                       ckpt_steps, ckW, cka, status, done, final, curve, True)
    else:
        for e in prange(E):
            _train_one(e, W, a, c, TW, Ta, tt, scale, lr, steps, tol, train_a, blowup, record_every,
                       ckpt_steps, ckW, cka, status, done, final, curve, False)
    return status, done, final, curve


def _train_population(W, a, c, TW, Ta, tt, scale, lr, steps, tol, train_a, blowup,
                      record_every, ckpt_steps, ckW, cka):
    """GD W <- W - lr_e dL/dW (and a, if train_a) for each student e, in place.

    W (E, m, d), a (E, m), lr (E,), ckpt_steps (K,) sorted, ckW (E, K, m, d), cka (E, K, m).
    Stops a student at ``steps``, at loss <= tol (converged), or at a non-finite loss or a loss
    above ``blowup`` (diverged; W and a are then the last iterate with a finite loss).
    Returns (status (E,), steps_done (E,), final loss (E,), curve (E, R)),
    curve[e, r] = loss at step r * record_every (nan after the student stopped).

    Threads go over students when E >= the thread count, else over the rows of each student's
    pair sum (large m); both give bit-identical numbers. (A plain-Python dispatcher: reading the
    thread count inside a cached kernel is not possible.)
    """
    E, m = W.shape[0], W.shape[1]
    split_rows = E < numba.get_num_threads() and _n_chunks(m) > 1
    return _train_students(W, a, c, TW, Ta, tt, scale, lr, steps, tol, train_a, blowup,
                           record_every, ckpt_steps, ckW, cka, split_rows)
