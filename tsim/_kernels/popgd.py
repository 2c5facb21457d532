"""Numba kernel: gradient descent on the exact population loss for an ensemble of students.

Two entries, chosen by a plain-Python dispatcher so that a run compiles only the one it uses:
students on Python threads (the kernel releases the GIL) with each student's pair sum serial
(:func:`_train_students`), or students
one after another with each pair sum split over threads (:func:`_train_students_rows`, large m and
fewer students than threads). Both give bit-identical numbers.
"""
import math

import numba
import numpy as np
from numba import njit

from .arccos import FM, _loss_grad_ws, _loss_grad_ws_rows, _n_chunks, _workspace
from . import parallel_for
from .steps import _checkpoint, _diverged, _gd_update, _outputs, _stopped


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FM)
def _train_one(e, W, a, c, TW, Ta, tt, scale, lr, steps, tol, train_a, blowup, record_every,
               ckpt_steps, ckW, cka, status, done, final, curve):
    """GD for student e (see :func:`_train_population`), its pair sums serial."""
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
        loss = _loss_grad_ws(We, ae, c, TW, Ta, tt, scale, s < steps, gW, ga, ws)
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


@njit(cache=True, nogil=True, error_model="numpy", fastmath=FM)
def _train_one_rows(e, W, a, c, TW, Ta, tt, scale, lr, steps, tol, train_a, blowup, record_every,
                    ckpt_steps, ckW, cka, status, done, final, curve):
    """:func:`_train_one` with each step's pair sum on threads. The loop is written twice on
    purpose: a flag choosing the loss would compile both chains into every run (cold start)."""
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
        loss = _loss_grad_ws_rows(We, ae, c, TW, Ta, tt, scale, s < steps, gW, ga, ws)
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


def _train_students(W, a, c, TW, Ta, tt, scale, lr, steps, tol, train_a, blowup,
                    record_every, ckpt_steps, ckW, cka):
    """Students on threads (:func:`parallel_for`), each one's pair sums serial."""
    E = W.shape[0]
    out = _outputs(E, steps, record_every)
    parallel_for(lambda e: _train_one(e, W, a, c, TW, Ta, tt, scale, lr, steps, tol, train_a, blowup,
                                      record_every, ckpt_steps, ckW, cka, *out), E)
    return out


def _train_students_rows(W, a, c, TW, Ta, tt, scale, lr, steps, tol, train_a, blowup,
                         record_every, ckpt_steps, ckW, cka):
    """Students one after another, each step's pair sums on threads."""
    E = W.shape[0]
    out = _outputs(E, steps, record_every)
    for e in range(E):
        _train_one_rows(e, W, a, c, TW, Ta, tt, scale, lr, steps, tol, train_a, blowup, record_every,
                        ckpt_steps, ckW, cka, *out)
    return out


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
    thread count inside a cached kernel is not possible, and each run compiles one entry only.)
    """
    E, m = W.shape[0], W.shape[1]
    split_rows = E < numba.get_num_threads() and _n_chunks(m) > 1
    kernel = _train_students_rows if split_rows else _train_students
    return kernel(W, a, c, TW, Ta, tt, scale, lr, steps, tol, train_a, blowup, record_every, ckpt_steps, ckW,
                  cka)
