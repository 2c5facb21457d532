"""Loss barriers on the linear path between two networks (Entezari et al. 2022, arXiv:2110.06296).

B = max_t [ L((1 - t) A + t B) - ((1 - t) L(A) + t L(B)) ],  t on a uniform grid of [0, 1].
"Modulo permutation" (align="weight") first replaces B by B.permute(weight_matching(A, B)).

This module is core: it knows no alignment method itself. ``align=NAME`` is looked up in
:data:`ALIGNERS`, a registry that :mod:`tsim.alignment` fills when it is imported (``import tsim``
does), so the core never imports the toolbox above it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .losses import empirical_loss, path_losses
from .network import TwoLayer, check_perm

#: name -> callable(A, B, *, T, X, inputs, grid) returning an object with ``perm`` and ``n_tied``;
#: filled by :mod:`tsim.alignment` (see :func:`register_aligner`).
ALIGNERS: dict = {}


def register_aligner(name: str, fn) -> None:
    """Make ``barrier(..., align=name)`` call ``fn(A, B, T=T, X=X, inputs=inputs, grid=grid)``."""
    ALIGNERS[name] = fn


def aligner(name: str):
    """The registered alignment callable of ``name``; ValueError listing the known names otherwise."""
    if name not in ALIGNERS:
        raise ValueError(f"align must be None or one of {tuple(ALIGNERS)}; got {name!r}.")
    return ALIGNERS[name]


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
    certified : bool or None      the aligner's assignment came with an LP duality certificate (weight and
                                  activation matching); None when not aligned or the method solves none
    """

    value: float
    t: float
    curve: np.ndarray
    ts: np.ndarray
    losses: np.ndarray
    perm: np.ndarray | None = None
    n_tied: int = 0
    certified: bool | None = None

    @property
    def loss_a(self) -> float:
        return float(self.losses[0])

    @property
    def loss_b(self) -> float:
        return float(self.losses[-1])


def barrier(A: TwoLayer, B: TwoLayer, T: TwoLayer | None = None, *, align=None, grid: int = 51,
            inputs: str = "gaussian", X: np.ndarray | None = None, y: np.ndarray | None = None,
            perm=None) -> BarrierResult:
    """Loss barrier between A and B (B aligned to A first by the method ``align`` names, one of
    :data:`ALIGNERS` ("weight", "activation", "ste", "optimal", ...; see :func:`tsim.alignment.align`),
    or by a given ``perm``).

    The loss is the exact population loss against teacher T (``inputs`` "gaussian" or "sphere")
    unless a sample X (n, d) is given; then it is the empirical loss on (X, y), y defaulting to
    T's outputs on X. ``grid`` t-points include 0 and 1.
    """
    if isinstance(grid, bool) or not isinstance(grid, (int, np.integer)) or grid < 2:
        raise ValueError(f"grid must be an integer >= 2; got {grid!r}. Pass the number of t-points, e.g. 51.")
    if A.d != B.d:
        raise ValueError(f"A and B must have the same input dimension d; got d={A.d} and d={B.d}.")
    n_tied, certified = 0, None
    if align is not None and perm is None:
        if A.m != B.m:
            raise ValueError(f"A and B must have the same width; got {A.m} and {B.m}. Pad the narrower one "
                             "(TwoLayer.pad) or use tsim.align, which pads.")
        r = aligner(align)(A, B, T=T, X=X, inputs=inputs, grid=int(grid))
        perm, n_tied, certified = r.perm, r.n_tied, getattr(r, "certified", None)
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
    return barrier_from_losses(ts, losses, perm=perm, n_tied=n_tied, certified=certified)


def barrier_from_losses(ts, losses, *, perm=None, n_tied: int = 0, certified: bool | None = None) -> BarrierResult:
    """The barrier of a loss curve measured on a t-grid: the one reading of a path, for any model.

    curve(t) = L(t) - ((1 - t) L(0) + t L(1)); value = max_t curve, t its argmax (the first on ties).

    Parameters
    ----------
    ts : ndarray, shape (grid,)       increasing, ts[0] = 0 and ts[-1] = 1
    losses : ndarray, shape (grid,)   L at each t (a NaN or inf loss gives a NaN or inf barrier)
    """
    ts = np.asarray(ts, dtype=np.float64)
    losses = np.asarray(losses, dtype=np.float64)
    if ts.ndim != 1 or ts.shape != losses.shape or ts.size < 2:
        raise ValueError(f"ts and losses must be 1-d of the same length >= 2; got {ts.shape} and {losses.shape}.")
    curve = losses - ((1 - ts) * losses[0] + ts * losses[-1])
    k = int(np.nanargmax(curve)) if np.any(np.isfinite(curve)) else 0
    value = float(curve[k]) if np.all(np.isfinite(curve)) else float(np.max(curve))
    return BarrierResult(value=value, t=float(ts[k]), curve=curve, ts=ts, losses=losses, perm=perm,
                         n_tied=int(n_tied), certified=certified)
