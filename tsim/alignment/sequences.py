"""Simultaneous weak connectivity along sequences: training trajectories and pruning sequences.

One permutation pi, computed once (at one checkpoint, or at one sparsity level), is applied at
every step k of two sequences A_k, B_k; the barrier B(A_k, pi(B_k)) is compared with per-step
matching B(A_k, pi_k(B_k)) (Sharma et al. 2024, arXiv:2310.06846, "simultaneous weak LMC").
Pruning is iterative magnitude pruning (IMP) with rewinding (Frankle et al. 2020,
arXiv:1912.05671) of the first-layer weights, trained on the exact population loss.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..barriers import barrier
from ..losses import population_loss, population_loss_grad
from ..network import TwoLayer
from .interface import align


@dataclass(frozen=True)
class SequenceBarriers:
    """Barriers along two aligned sequences of K networks.

    Attributes
    ----------
    single : ndarray, (K,)      barrier at step k under the one permutation ``perm``
    per_step : ndarray, (K,)    barrier at step k with B_k aligned to A_k on its own
    naive : ndarray, (K,)       barrier without alignment
    perm : ndarray, (m,)        the single permutation (computed at index ``at``)
    at : int                    the step index the single permutation was computed at
    n_tied : ndarray, (K,)      tied rows of the per-step alignment
    n_tied_single : int         tied rows of the single alignment
    agree : ndarray, (K,)       fraction of rows where the per-step perm equals the single one
    """

    single: np.ndarray
    per_step: np.ndarray
    naive: np.ndarray
    perm: np.ndarray
    at: int
    n_tied: np.ndarray
    n_tied_single: int
    agree: np.ndarray


def sequence_barriers(seq_a, seq_b, T: TwoLayer, *, at: int = -1, method: str = "weight", grid: int = 25,
                      inputs: str = "gaussian", **kw) -> SequenceBarriers:
    """Barrier at every step of two sequences under one permutation vs per-step alignment.

    Parameters
    ----------
    seq_a, seq_b : sequences of K TwoLayer   (checkpoints, or pruning levels) of equal width
    T : teacher                              the loss is the exact population loss
    at : int                                 index (negative counts from the end) of the step
                                             whose alignment is used everywhere
    method, kw                               passed to :func:`tsim.alignment.align`
    """
    seq_a, seq_b = list(seq_a), list(seq_b)
    K = len(seq_a)
    if K < 1 or len(seq_b) != K:
        raise ValueError(f"seq_a and seq_b must have the same positive length; got {K} and {len(seq_b)}.")
    if not -K <= at < K:
        raise ValueError(f"at must index one of the {K} steps; got {at}.")
    at = at % K
    r0 = align(seq_a[at], seq_b[at], method, T=T, inputs=inputs, **kw)
    single, per, naive, ties, agree = (np.empty(K) for _ in range(5))
    for k, (A, B) in enumerate(zip(seq_a, seq_b)):
        single[k] = barrier(A, B, T, grid=grid, inputs=inputs, perm=r0.perm).value
        rk = r0 if k == at else align(A, B, method, T=T, inputs=inputs, **kw)
        per[k] = barrier(A, rk.B, T, grid=grid, inputs=inputs).value
        naive[k] = barrier(A, B, T, grid=grid, inputs=inputs).value
        ties[k] = rk.n_tied
        agree[k] = float(np.mean(rk.perm == r0.perm))
    return SequenceBarriers(single=single, per_step=per, naive=naive, perm=r0.perm, at=at,
                            n_tied=ties.astype(int), n_tied_single=r0.n_tied, agree=agree)


def trajectory_barriers(ckpt_a, ckpt_b, T: TwoLayer, *, at: int = -1, **kw) -> SequenceBarriers:
    """:func:`sequence_barriers` for two training trajectories (checkpoints of two seeds).

    ``at = -1`` uses the permutation found at the end of training; ``at = 0`` the one at init.
    """
    return sequence_barriers(ckpt_a, ckpt_b, T, at=at, **kw)


# --------------------------------------------------------------------------- pruning
def masked_gd(S: TwoLayer, T: TwoLayer, mask: np.ndarray, *, lr: float, steps: int, train_a: bool = False,
              inputs: str = "gaussian", tol: float = 0.0) -> tuple[TwoLayer, str, int]:
    """GD on the exact population loss with a fixed first-layer mask: W <- (W - eta dL/dW) * mask.

    Returns (network, status, steps taken); status is "converged" (L <= tol), "max_steps" or
    "diverged" (non-finite loss; the last finite iterate is returned).
    """
    mask = np.asarray(mask, dtype=np.float64)
    if mask.shape != S.W.shape:
        raise ValueError(f"mask must have shape {S.W.shape}; got {mask.shape}.")
    if not lr > 0:
        raise ValueError(f"lr must be > 0; got {lr}.")
    W, a = S.W * mask, S.a.copy()
    for k in range(int(steps)):
        L, gW, ga = population_loss_grad(TwoLayer(W, a, S.c), T, inputs)
        if not np.isfinite(L):
            return TwoLayer(W, a, S.c), "diverged", k
        if L <= tol:
            return TwoLayer(W, a, S.c), "converged", k
        Wn = (W - lr * gW) * mask
        an = a - lr * ga if train_a else a
        if not (np.all(np.isfinite(Wn)) and np.all(np.isfinite(an))):
            return TwoLayer(W, a, S.c), "diverged", k
        W, a = Wn, an
    return TwoLayer(W, a, S.c), "max_steps", int(steps)


@dataclass(frozen=True)
class PruneSequence:
    """Networks of one IMP run, level 0 dense.

    Attributes
    ----------
    nets : list of TwoLayer (L + 1)   trained network at each level
    masks : ndarray, (L + 1, m, d)    first-layer masks (1 = kept)
    sparsity : ndarray, (L + 1,)      fraction of first-layer weights pruned
    loss : ndarray, (L + 1,)          population loss after training at each level
    status : list of str              training status at each level
    """

    nets: list
    masks: np.ndarray
    sparsity: np.ndarray
    loss: np.ndarray
    status: list


def prune_sequence(S0: TwoLayer, T: TwoLayer, *, levels: int = 4, rate: float = 0.5, lr: float, steps: int,
                   rewind_step: int = 0, train_a: bool = False, inputs: str = "gaussian",
                   tol: float = 0.0) -> PruneSequence:
    """Iterative magnitude pruning with rewinding, from the initialisation S0.

    Level 0 trains S0 densely for ``steps`` GD steps. Level l keeps the largest-magnitude
    (1 - rate)^l fraction of first-layer weights of the level l-1 network (global over W;
    a is not pruned), rewinds the kept weights to their values at ``rewind_step`` of the dense
    run (0 = the initialisation) and retrains them with the mask fixed.
    """
    if levels < 0:
        raise ValueError(f"levels must be >= 0; got {levels}.")
    if not 0 < rate < 1:
        raise ValueError(f"rate must be in (0, 1); got {rate}.")
    if not 0 <= rewind_step <= steps:
        raise ValueError(f"rewind_step must be in [0, steps={steps}]; got {rewind_step}.")
    mask = np.ones_like(S0.W)
    rew, st0, _ = masked_gd(S0, T, mask, lr=lr, steps=rewind_step, train_a=train_a, inputs=inputs, tol=-1.0)
    net, st, done = masked_gd(rew, T, mask, lr=lr, steps=steps - rewind_step, train_a=train_a, inputs=inputs,
                              tol=tol)
    nets, masks, status = [net], [mask], [st]
    n = mask.size
    for lev in range(1, levels + 1):
        keep = int(round(n * (1 - rate) ** lev))
        keep = max(keep, 1)
        mag = np.abs(nets[-1].W * masks[-1]).ravel()
        order = np.argsort(-mag, kind="stable")
        new = np.zeros(n)
        new[order[:keep]] = 1.0
        new = new.reshape(mask.shape) * masks[-1]  # a pruned weight stays pruned
        start = TwoLayer(rew.W * new, rew.a, rew.c)
        net, st, _ = masked_gd(start, T, new, lr=lr, steps=steps - rewind_step, train_a=train_a, inputs=inputs,
                               tol=tol)
        nets.append(net)
        masks.append(new)
        status.append(st)
    masks = np.stack(masks)
    return PruneSequence(nets=nets, masks=masks, sparsity=1.0 - masks.reshape(len(nets), -1).mean(axis=1),
                         loss=np.array([population_loss(S, T, inputs) for S in nets]), status=status)


def pruning_barriers(seq_a: PruneSequence, seq_b: PruneSequence, T: TwoLayer, *, at: int = 0,
                     **kw) -> SequenceBarriers:
    """:func:`sequence_barriers` along two pruning sequences; ``at = 0`` aligns the dense pair."""
    return sequence_barriers(seq_a.nets, seq_b.nets, T, at=at, **kw)
