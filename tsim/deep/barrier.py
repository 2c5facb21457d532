"""Loss and error barriers along the linear path between two deep nets, measured in full precision.

theta(t) = (1 - t) theta_A + t theta_B on every float state_dict entry, t on a uniform grid of
[0, 1]. With BatchNorm the running statistics of each interpolated net are recomputed on
training batches before it is evaluated (the "reset" of Jordan et al. 2022, arXiv:2211.08403,
REPAIR paper, sec. 3; also git re-basin's BN reset), at every t including the ends.

Barrier (Frankle et al. 2020, arXiv:1912.05671; Entezari et al. 2021, arXiv:2110.06296):
B = max_t [ L(theta(t)) - ((1 - t) L(theta_A) + t L(theta_B)) ], for L the mean test
cross-entropy and for the test error rate.

Numerics of measurement (stated once, used by :func:`evaluate` and :func:`reset_bn`):
:func:`full_precision` runs float32 with autocast disabled and TF32 off for cuBLAS matmuls and
cuDNN convolutions (the torch flags are set explicitly and restored after), whatever the caller's
autocast or TF32 state; so a barrier means the same number whether ``train.amp`` or
``run.tf32`` was on during training. Training precision (:func:`autocast`, :func:`tf32`) is chosen
by :mod:`tsim.deep.train` and :mod:`tsim.deep.study`. Hot loops keep their sums on the device and
read them back once: :func:`evaluate` syncs once per call, :func:`reset_bn` never.
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


#: autocast dtypes of ``train.amp_dtype``
AMP_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


def _bn_layers(model: nn.Module) -> list:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def reset_bn(model: nn.Module, X: torch.Tensor, batches: int = 20, batch: int = 128) -> nn.Module:
    """Recompute BatchNorm running statistics as the plain average over the first
    ``batches * batch`` rows of X, then set eval mode; in :func:`full_precision`, as evaluation.

    The cumulative average of k batch statistics is what ``momentum = None`` computes, but torch
    reads ``num_batches_tracked`` back to the host for that (a sync per BatchNorm layer per
    batch); here the k-th batch gets ``momentum = 1 / k``, a host number, which gives the same
    running statistics without a sync. Batches of one row are skipped. Models without BatchNorm
    are returned unchanged (eval mode).
    """
    bns = _bn_layers(model)
    if bns:
        momenta = [m.momentum for m in bns]
        for m in bns:
            m.reset_running_stats()
        model.train()
        k = 0
        try:
            with torch.no_grad(), full_precision(X.device):
                for i in range(min(batches, max(1, -(-len(X) // batch)))):
                    xb = X[i * batch:(i + 1) * batch]
                    if len(xb) < 2:
                        continue
                    k += 1
                    for m in bns:
                        m.momentum = 1.0 / k
                    model(xb)
        finally:
            for m, mom in zip(bns, momenta):
                m.momentum = mom
    model.eval()
    return model


def autocast(device: torch.device | str, amp: bool, dtype: str = "bfloat16"):
    """Autocast to ``dtype`` ("bfloat16" or "float16") on cuda when ``amp``; a no-op context otherwise.

    Used for training only; measurement runs in :func:`full_precision`.
    """
    if amp and torch.device(device).type == "cuda":
        return torch.autocast("cuda", dtype=AMP_DTYPES[dtype])
    return contextlib.nullcontext()


def tf32_state() -> dict:
    """The TF32 flags now in force: {"matmul": bool, "cudnn": bool} (None where torch refuses to say)."""
    out = {}
    for name, get in (("matmul", lambda: torch.backends.cuda.matmul.allow_tf32),
                      ("cudnn", lambda: torch.backends.cudnn.allow_tf32)):
        try:
            out[name] = bool(get())
        except RuntimeError:  # legacy and new precision APIs were mixed by someone else
            out[name] = None
    return out


def _set_tf32(matmul: bool, cudnn: bool) -> None:
    torch.backends.cuda.matmul.allow_tf32 = bool(matmul)
    torch.backends.cudnn.allow_tf32 = bool(cudnn)


#: torch >= 2.9 precision settings (new API): (module path, attribute) read and restored when the
#: legacy flags cannot be read
_NEW_API = (("cuda.matmul", "fp32_precision"), ("cudnn.conv", "fp32_precision"), ("cudnn.rnn", "fp32_precision"))


def _backend(path: str):
    obj = torch.backends
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def _snapshot():
    """The TF32 settings to restore: the legacy flags, or the new-API strings when the flags cannot be read."""
    state = tf32_state()
    if None not in state.values():
        return "legacy", state
    return "new", {(path, attr): getattr(_backend(path), attr, None) for path, attr in _NEW_API}


def _restore(snap) -> None:
    kind, state = snap
    if kind == "legacy":
        _set_tf32(state["matmul"], state["cudnn"])
        return
    for (path, attr), value in state.items():
        if value is not None:
            setattr(_backend(path), attr, value)


@contextlib.contextmanager
def tf32(enabled: bool):
    """TF32 for cuBLAS matmuls and cuDNN convolutions set to ``enabled`` (both legacy flags,
    ``torch.backends.cuda.matmul.allow_tf32`` and ``torch.backends.cudnn.allow_tf32``, explicitly),
    restored on exit. The flags matter on cuda only (torch's cudnn default is True)."""
    snap = _snapshot()
    _set_tf32(enabled, enabled)
    try:
        yield
    finally:
        _restore(snap)


@contextlib.contextmanager
def full_precision(device: torch.device | str = "cpu"):
    """The numeric path of every measurement: float32, autocast disabled, TF32 off; restored after."""
    with tf32(False), torch.autocast(torch.device(device).type, enabled=False):
        yield


def evaluate(model: nn.Module, X: torch.Tensor, y: torch.Tensor, batch: int = 1000) -> tuple[float, float]:
    """Mean cross-entropy and error rate of ``model`` (eval mode) on X, shape (n, ...), y, shape (n,).

    Always in :func:`full_precision` (autocast disabled, TF32 off), whatever the caller's state:
    ``train.amp`` applies to training only, so a barrier means the same number with amp on or
    off. The summed loss (float64) and the count of errors stay on the device; one sync at the end.
    """
    model.eval()
    loss = torch.zeros((), dtype=torch.float64, device=X.device)
    wrong = torch.zeros((), dtype=torch.int64, device=X.device)
    with torch.no_grad(), full_precision(X.device):
        for i in range(0, len(X), batch):
            out = model(X[i:i + batch]).float()
            yb = y[i:i + batch]
            loss += F.cross_entropy(out, yb, reduction="sum").double()
            wrong += (out.argmax(1) != yb).sum()
    total, n_wrong = torch.stack([loss, wrong.double()]).tolist()  # the one sync
    return total / len(X), n_wrong / len(X)


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
