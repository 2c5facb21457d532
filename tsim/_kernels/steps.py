"""Bookkeeping shared by the training kernels (population GD, sample GD/SGD): outputs, divergence,
checkpoints, stopping and the GD update. All inlined into the callers' loops."""
import numpy as np
from numba import njit

from .arccos import FM

STATUS_MAX_STEPS = 0
STATUS_CONVERGED = 1
STATUS_DIVERGED = 2


def _outputs(E, steps, record_every):
    """(status (E,), steps done (E,), final loss (E,), curve (E, R) of nan), R = steps // record_every + 1
    (plain numpy: the drivers that allocate them are Python)."""
    R = steps // record_every + 1
    return np.zeros(E, dtype=np.int64), np.zeros(E, dtype=np.int64), np.empty(E), np.full((E, R), np.nan)


@njit(cache=True, inline="always", error_model="numpy")
def _copy(dst, src):
    """dst[...] = src for two arrays of one shape, as a loop: an array assignment compiles Numba's
    broadcast check and its message formatting (seconds on a cold cache)."""
    d = dst.reshape(-1)
    s = src.reshape(-1)
    for i in range(d.size):
        d[i] = s[i]


@njit(cache=True, inline="always", error_model="numpy")
def _diverged(e, s, last, We, ae, Wp, ap, status, done, final):
    """Student e diverged at step s: restore the last finite iterate (Wp, ap) and record it."""
    status[e] = STATUS_DIVERGED
    _copy(We, Wp)
    _copy(ae, ap)
    done[e] = max(s - 1, 0)
    final[e] = last


@njit(cache=True, inline="always", error_model="numpy")
def _checkpoint(e, s, kc, ckpt_steps, We, ae, ckW, cka):
    """Store (We, ae) for every checkpoint at step s; returns the next checkpoint index."""
    while kc < ckpt_steps.shape[0] and ckpt_steps[kc] == s:
        _copy(ckW[e, kc], We)
        _copy(cka[e, kc], ae)
        kc += 1
    return kc


@njit(cache=True, inline="always", error_model="numpy")
def _stopped(e, s, loss, tol, steps, status, done, final):
    """True (and the outcome recorded) when loss <= tol (converged) or s == steps (max_steps)."""
    if loss <= tol or s == steps:
        status[e] = STATUS_CONVERGED if loss <= tol else STATUS_MAX_STEPS
        done[e] = s
        final[e] = loss
        return True
    return False


@njit(cache=True, inline="always", error_model="numpy", fastmath=FM)
def _gd_update(We, ae, Wp, ap, gW, ga, lre, train_a):
    """Keep the current iterate in (Wp, ap), then W <- W - lr dL/dW (and a <- a - lr dL/da)."""
    m, d = We.shape
    _copy(Wp, We)
    _copy(ap, ae)
    for j in range(m):
        for k in range(d):
            We[j, k] -= lre * gW[j, k]
    if train_a:
        for j in range(m):
            ae[j] -= lre * ga[j]
