"""Loss and error barriers along the linear path between two deep nets.

theta(t) = (1 - t) theta_A + t theta_B on every float state_dict entry, t on a uniform grid of
[0, 1]. With BatchNorm the running statistics of each interpolated net are recomputed on
training batches before it is evaluated (the "reset" of Jordan et al. 2022, arXiv:2211.08403,
REPAIR paper, sec. 3; also git re-basin's BN reset), at every t including the ends.

Barrier (Frankle et al. 2020, arXiv:1912.05671; Entezari et al. 2021, arXiv:2110.06296):
B = max_t [ L(theta(t)) - ((1 - t) L(theta_A) + t L(theta_B)) ], for L the mean test
cross-entropy and for the test error rate.
"""
from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from tsim.barriers import BarrierResult, barrier_from_losses


@dataclass(frozen=True)
class PathBarriers:
    """Barriers on test loss and test error along one path, each a :class:`tsim.barriers.BarrierResult`
    (the core convention: ``value`` the barrier, ``t`` its argmax, ``ts`` the grid, ``losses`` the
    measured curve, ``curve`` the excess over the chord)."""

    loss: BarrierResult
    error: BarrierResult


def interpolate_state(sd_a: dict, sd_b: dict, t: float) -> dict:
    """(1 - t) sd_a + t sd_b on float entries; integer entries (num_batches_tracked) from A."""
    return {k: (torch.lerp(v, sd_b[k].to(v.dtype), t) if v.is_floating_point() else v.clone())
            for k, v in sd_a.items()}


def has_batchnorm(model: nn.Module) -> bool:
    """True if any module is a BatchNorm layer."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def reset_bn(model: nn.Module, X: torch.Tensor, batches: int = 20, batch: int = 128) -> nn.Module:
    """Recompute BatchNorm running statistics as the plain average over the first
    ``batches * batch`` rows of X (cumulative average, momentum None), then set eval mode.

    Models without BatchNorm are returned unchanged (eval mode).
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if bns:
        momenta = [m.momentum for m in bns]
        for m in bns:
            m.reset_running_stats()
            m.momentum = None
        model.train()
        with torch.no_grad():
            for i in range(min(batches, max(1, -(-len(X) // batch)))):
                xb = X[i * batch:(i + 1) * batch]
                if len(xb) > 1:
                    model(xb)
        for m, mom in zip(bns, momenta):
            m.momentum = mom
    model.eval()
    return model


def autocast(device: torch.device | str, amp: bool):
    """bfloat16 autocast on cuda when ``amp``; a no-op context otherwise."""
    if amp and torch.device(device).type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def evaluate(model: nn.Module, X: torch.Tensor, y: torch.Tensor, batch: int = 1000) -> tuple[float, float]:
    """Mean cross-entropy and error rate of ``model`` (eval mode) on X, shape (n, ...), y, shape (n,).

    Always in the model's own precision: autocast (``train.amp``) applies to training only, so a
    barrier means the same number with amp on or off.
    """
    model.eval()
    loss, wrong = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(X), batch):
            out = model(X[i:i + batch]).float()
            yb = y[i:i + batch]
            loss += float(F.cross_entropy(out, yb, reduction="sum"))
            wrong += int((out.argmax(1) != yb).sum())
    return loss / len(X), wrong / len(X)


def barrier(model: nn.Module, sd_a: dict, sd_b: dict, X_test: torch.Tensor, y_test: torch.Tensor,
            grid: int = 11, X_reset: torch.Tensor | None = None, bn_batches: int = 20,
            batch: int = 128) -> PathBarriers:
    """Loss and error barrier between state_dicts A and B (already aligned if wanted).

    Parameters
    ----------
    model : a net of the right architecture (a deep copy is used; the argument is untouched).
    sd_a, sd_b : state_dicts.
    X_test, y_test : evaluation data, shapes (n, *in_shape) and (n,).
    grid : number of t values, t = linspace(0, 1, grid).
    X_reset : training inputs for the BatchNorm reset (needed only with BatchNorm).
    """
    work = copy.deepcopy(model)
    t = np.linspace(0.0, 1.0, grid)
    bn = has_batchnorm(work)
    if bn and X_reset is None:
        raise ValueError("X_reset is required for a model with BatchNorm (its statistics are recomputed).")
    losses, errors = np.empty(grid), np.empty(grid)
    for i, ti in enumerate(t):
        work.load_state_dict(interpolate_state(sd_a, sd_b, float(ti)))
        if bn:
            reset_bn(work, X_reset, bn_batches, batch)
        losses[i], errors[i] = evaluate(work, X_test, y_test)
    return PathBarriers(barrier_from_losses(t, losses), barrier_from_losses(t, errors))
