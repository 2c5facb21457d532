"""Numba kernel: gradient descent on the exact population loss for an ensemble of students."""
import math

import numba
import numpy as np
from numba import njit, prange

from .arccos import FM, _loss_grad_ws, _n_chunks, _workspace
from .steps import _checkpoint, _diverged, _gd_update, _outputs, _stopped


@njit(cache=True, error_model="numpy", fastmath=FM)
def _train_one(e, W, a, c, TW, Ta, tt, scale, lr, steps, tol, train_a, blowup, record_every,
               ckpt_steps, ckW, cka, status, done, final, curve, split_rows):
    """GD for student e (see :func:`_train_population`); ``split_rows`` runs each step's row
    chunks on threads (same numbers as serially)."""
    E, m, d = W.shape
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
            _diverged(e, s, last, We, ae, Wp, ap, status, done, final)
            return
        last = loss
        if s % record_every == 0:
            curve[e, s // record_every] = loss
        kc = _checkpoint(e, s, kc, ckpt_steps, We, ae, ckW, cka)
        if _stopped(e, s, loss, tol, steps, status, done, final):
            return
        _gd_update(We, ae, Wp, ap, gW, ga, lr[e], train_a)


@njit(cache=True, parallel=True, error_model="numpy")
def _train_students(W, a, c, TW, Ta, tt, scale, lr, steps, tol, train_a, blowup,
                    record_every, ckpt_steps, ckW, cka, split_rows):
    E = W.shape[0]
    status, done, final, curve = _outputs(E, steps, record_every)
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
