"""Loss barriers on the linear path between two networks (Entezari et al. 2022, arXiv:2110.06296).

B = max_t [ L((1 - t) A + t B) - ((1 - t) L(A) + t L(B)) ],  t on a uniform grid of [0, 1].
"Modulo permutation" (align="weight") first replaces B by B.permute(weight_matching(A, B)); the
other methods of :func:`tsim.align` ("activation", "ste", "optimal") can be named the same way.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .losses import empirical_loss, path_losses
from .align import METHODS, align as align_nets
from .network import TwoLayer, check_perm

ALIGN = (None,) + tuple(METHODS)


@dataclass(frozen=True)
class BarrierResult:
    """A barrier and the path behind it.

    Attributes
    ----------
    value : float                 max_t of the excess loss (the barrier; 0 up to rounding if convex)
    t : float                     the t attaining it
    curve : ndarray, (grid,)      excess loss L(path(t)) - ((1 - t) L(A) + t L(B)) at each t
    ts : ndarray, (grid,)         the t-grid
    losses : ndarray, (grid,)     L(path(t))
    perm : ndarray or None        permutation applied to B (None for the naive barrier)
    n_tied : int                  rows with a tied weight-matching partner (0 if not aligned)
    """

    value: float
    t: float
    curve: np.ndarray
    ts: np.ndarray
    losses: np.ndarray
    perm: np.ndarray | None = None
    n_tied: int = 0

    @property
    def loss_a(self) -> float:
        return float(self.losses[0])

    @property
    def loss_b(self) -> float:
        return float(self.losses[-1])


def barrier(A: TwoLayer, B: TwoLayer, T: TwoLayer | None = None, *, align=None, grid: int = 51,
            inputs: str = "gaussian", X: np.ndarray | None = None, y: np.ndarray | None = None,
            perm=None) -> BarrierResult:
    """Loss barrier between A and B (B aligned to A first by ``align`` = "weight", "activation", "ste"
    or "optimal" (see :func:`tsim.align`), or by a given ``perm``).

    The loss is the exact population loss against teacher T (``inputs`` "gaussian" or "sphere")
    unless a sample X (n, d) is given; then it is the empirical loss on (X, y), y defaulting to
    T's outputs on X. ``grid`` t-points include 0 and 1.
    """
    if align not in ALIGN:
        raise ValueError(f"align must be one of {ALIGN}; got {align!r}.")
    if grid < 2:
        raise ValueError(f"grid must be >= 2; got {grid}.")
    n_tied = 0
    if align is not None and perm is None:
        if A.m != B.m:
            raise ValueError(f"A and B must have the same width; got {A.m} and {B.m}. Pad the narrower one "
                             "(TwoLayer.pad) or use tsim.align, which pads.")
        r = align_nets(A, B, align, T=T, X=X, inputs=inputs, grid=int(grid))
        perm, n_tied = r.perm, r.n_tied
    if perm is not None:
        perm = check_perm(perm, B.m)
        B = B.permute(perm)
    ts = np.linspace(0.0, 1.0, int(grid))
    if X is not None:
        if y is None:
            if T is None:
                raise ValueError("give y or a teacher T to label X.")
            y = T.forward(X)
        losses = np.array([empirical_loss(A.interpolate(B, t), X, y) for t in ts])
    else:
        if T is None:
            raise ValueError("the population barrier needs a teacher T (or pass a sample X, y).")
        losses = path_losses(A, B, T, ts, inputs)
    curve = losses - ((1 - ts) * losses[0] + ts * losses[-1])
    k = int(np.argmax(curve))
    return BarrierResult(value=float(curve[k]), t=float(ts[k]), curve=curve, ts=ts, losses=losses,
                         perm=perm, n_tied=n_tied)
