"""Straight-through estimator (STE) for a permutation, on the exact population loss (numpy).

The STE learns a permutation of B's hidden neurons by gradient descent on a proxy network
theta~ = (W~, a~) that is projected onto B's permutations in every forward pass
(Ainsworth, Hayase, Srinivasa 2023, "Git Re-Basin", arXiv:2209.04836, Sec. 3.3). For a
two-layer net the straight-through gradient has a closed form, so no autodiff is needed:

    perm_k   = weight_matching(theta~_k, B)                 (one exact linear assignment)
    B_st     = B.permute(perm_k)                            (forward value of the STE weights)
    mid      = ((W_A + W_st) / 2, (a_A + a_st) / 2, c_mid),  c_mid = (c_A + c_B) / 2
    loss_k   = L(mid)                                       (exact population loss)
    g_k      = dL(mid)/dB_st = 1/2 (dL/dW (mid), dL/da (mid))   (straight-through: d B_st/d theta~ = I)
    theta~   <- Adam(theta~, g_k)

The perm of lowest midpoint loss among those visited is returned. With noise = 0 and no
``init`` the first visited perm is weight matching's, so the STE never ends above weight
matching on the midpoint loss.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from ..data import check_inputs
from ..losses import population_loss_grad
from ..match import weight_matching
from ..network import TwoLayer, check_perm

ADAM_B1, ADAM_B2, ADAM_EPS = 0.9, 0.999, 1e-8
BEST_RTOL = 1e-15  # a visited perm replaces the best one only if lower by more than this (relative)


def midpoint(A: TwoLayer, B_st: TwoLayer) -> TwoLayer:
    """The midpoint network ((W_A + W_st) / 2, (a_A + a_st) / 2, (c_A + c_st) / 2)."""
    return TwoLayer(0.5 * (A.W + B_st.W), 0.5 * (A.a + B_st.a), 0.5 * (A.c + B_st.c))


def midpoint_loss_grad(A: TwoLayer, B_st: TwoLayer, T: TwoLayer, inputs: str = "gaussian"):
    """Midpoint loss and its gradient with respect to B_st's weights.

    Returns (L(mid), dL/dW_st (m, d), dL/da_st (m,)) with mid = :func:`midpoint`; by the chain
    rule through mid = (A + B_st) / 2 the gradient is half the gradient of L at mid. Under the
    straight-through estimator this is also the gradient with respect to the proxy theta~.
    """
    loss, gW, ga = population_loss_grad(midpoint(A, B_st), T, inputs)
    return loss, 0.5 * gW, 0.5 * ga


def adam_step(x: np.ndarray, g: np.ndarray, mom: np.ndarray, vel: np.ndarray, k: int, lr: float):
    """One bias-corrected Adam step (Kingma & Ba 2015) at iteration k = 0, 1, ...; pure.

    mom <- b1 mom + (1 - b1) g,  vel <- b2 vel + (1 - b2) g^2,
    x <- x - lr (mom / (1 - b1^(k+1))) / (sqrt(vel / (1 - b2^(k+1))) + eps).
    Returns (x, mom, vel) as new arrays.
    """
    mom = ADAM_B1 * mom + (1 - ADAM_B1) * g
    vel = ADAM_B2 * vel + (1 - ADAM_B2) * (g * g)
    mhat = mom / (1 - ADAM_B1 ** (k + 1))
    vhat = vel / (1 - ADAM_B2 ** (k + 1))
    return x - lr * mhat / (np.sqrt(vhat) + ADAM_EPS), mom, vel


def _is_better(val: float, best: float) -> bool:
    """val beats best by more than BEST_RTOL relative (absolute below |best| = 1)."""
    return val < best - BEST_RTOL * max(1.0, abs(best) if math.isfinite(best) else 1.0)


def _check_args(A, B, T, inputs, steps, lr, noise, rng, init):
    if A.W.shape != B.W.shape:
        raise ValueError(f"A and B must have the same shape; got {A.W.shape} and {B.W.shape}. "
                         "Pad the narrower one with zero neurons (TwoLayer.pad).")
    if T is None:
        raise ValueError("T is None: the STE minimises the population loss; give the teacher T.")
    check_inputs(inputs)
    if isinstance(steps, (bool, np.bool_)) or not isinstance(steps, numbers.Integral) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1; got {steps!r}.")
    if isinstance(lr, (bool, np.bool_)) or not isinstance(lr, numbers.Real) \
            or not math.isfinite(lr) or not lr > 0:
        raise ValueError(f"lr must be a finite float > 0; got {lr!r}.")
    if isinstance(noise, (bool, np.bool_)) or not isinstance(noise, numbers.Real) \
            or not math.isfinite(noise) or noise < 0:
        raise ValueError(f"noise must be a finite float >= 0; got {noise!r}.")
    if noise > 0 and rng is None:
        raise ValueError(f"noise={noise} > 0 needs rng (a numpy Generator) to draw the initial noise; "
                         "got rng=None.")
    if init is not None:
        try:
            check_perm(init, B.m)
        except ValueError as err:
            raise ValueError(f"init must be a permutation of range({B.m}); got {init!r}.") from err


def _initial_proxy(A: TwoLayer, noise: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """theta~_0 = (W_A + noise * rms(W_A) * N(0, 1), a_A); no draw when noise = 0."""
    W = np.array(A.W)
    if noise > 0:
        rms = float(np.sqrt(np.mean(A.W ** 2))) or 1.0
        W = W + noise * rms * rng.standard_normal(A.W.shape)
    return W, np.array(A.a)


def ste_matching(A: TwoLayer, B: TwoLayer, T: TwoLayer, *, inputs: str = "gaussian", steps: int = 200,
                 lr: float = 0.01, noise: float = 0.0, rng: np.random.Generator | None = None,
                 init: np.ndarray | None = None) -> tuple[np.ndarray, float, np.ndarray]:
    """Permutation of B learned by the straight-through estimator on the exact midpoint loss.

    A proxy theta~ = (W~ (m, d), a~ (m,)) starts at A, W~ plus ``noise * rms(W_A) * N(0, 1)``
    drawn from ``rng``. Step k = 0 .. steps-1:

    - perm_k = weight_matching(TwoLayer(W~, a~, c_A), B) (``init`` instead at k = 0 if given);
    - loss_k = L(mid), mid = ((W_A + W_B[perm_k]) / 2, (a_A + a_B[perm_k]) / 2, (c_A + c_B) / 2),
      L the exact population loss 1/2 E[(f_mid - f*)^2] against the teacher T;
    - the straight-through gradient dloss_k/dtheta~ = (1/2 dL/dW (mid), 1/2 dL/da (mid)) feeds
      one bias-corrected Adam step (b1 = 0.9, b2 = 0.999, eps = 1e-8, step ``lr``).

    Parameters
    ----------
    A, B : TwoLayer           same shape (m, d); pad the narrower net first
    T : TwoLayer              teacher, input dimension d
    inputs : str              "gaussian" or "sphere"
    steps : int               number of STE iterations, >= 1
    lr : float                Adam step size, finite and > 0
    noise : float             relative scale of the initial noise on W~, finite and >= 0
    rng : numpy Generator     source of the initial noise (required when noise > 0; untouched at 0)
    init : ndarray of int (m,), optional   the perm used at step 0 instead of weight matching

    Returns
    -------
    perm : ndarray of int, shape (m,)   the visited perm of lowest midpoint loss (a later perm
                                        replaces it only if lower by more than 1e-15 relative);
                                        ``B.permute(perm)`` is aligned with A
    best : float                        midpoint loss at perm
    curve : ndarray, shape (steps,)     midpoint loss loss_k at each step

    References
    ----------
    Ainsworth, Hayase, Srinivasa 2023, "Git Re-Basin: Merging Models modulo Permutation
    Symmetries", arXiv:2209.04836, Sec. 3.3.
    """
    _check_args(A, B, T, inputs, steps, lr, noise, rng, init)
    steps, lr, noise = int(steps), float(lr), float(noise)
    Wt, at = _initial_proxy(A, noise, rng)
    mW, vW = np.zeros_like(Wt), np.zeros_like(Wt)
    ma, va = np.zeros_like(at), np.zeros_like(at)
    best, best_perm = math.inf, None
    curve = np.empty(steps)
    for k in range(steps):
        if k == 0 and init is not None:
            perm = check_perm(init, B.m)
        else:
            perm = weight_matching(TwoLayer(Wt, at, A.c), B)
        loss, gW, ga = midpoint_loss_grad(A, B.permute(perm), T, inputs)
        curve[k] = loss
        if _is_better(loss, best):
            best, best_perm = loss, perm.copy()
        Wt, mW, vW = adam_step(Wt, gW, mW, vW, k, lr)
        at, ma, va = adam_step(at, ga, ma, va, k, lr)
    return best_perm, float(best), curve
