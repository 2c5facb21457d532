"""Minibatch training of a deep classifier on in-memory tensors (cross-entropy).

theta <- theta - eta_s * g (SGD with momentum mu and weight decay) or Adam, eta_s the lr at
step s: constant, or cosine eta_s = eta (1 + cos(pi s / S)) / 2 over the S steps of training.
The shuffling order is drawn from a ``torch.Generator`` seeded with ``seed`` (on CPU), so the
same seed gives the same run on CPU. Divergence (a non-finite loss) is an outcome: training
stops, the weights of the last finished epoch are restored and ``status = "diverged"``.

The loop does not wait for the device at every step: the epoch's loss is summed on the device
and divergence is checked on that sum (a non-finite step loss makes it non-finite) every
``check_every`` steps and at the end of each epoch, the only points where the host reads a
number back. A divergent step is therefore noticed at most ``check_every - 1`` steps late; the
weights of the last finished epoch are restored either way. With ``amp`` on cuda the forward
pass runs under autocast to ``amp_dtype``; float16 also scales the loss (``torch.amp.GradScaler``,
whose skipped-step check reads one flag per step, torch's own sync).
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from tsim.deep.barrier import AMP_DTYPES, autocast


@dataclass(frozen=True)
class TrainStats:
    """Outcome of :func:`train`.

    Attributes
    ----------
    status : "ok" | "diverged"
    epoch_loss : tuple of float, mean training loss per finished epoch
    steps : int, optimizer steps taken
    seconds : float, wall time
    examples_per_s : float, training throughput
    """

    status: str
    epoch_loss: tuple
    steps: int
    seconds: float
    examples_per_s: float


def _optimizer(model: nn.Module, optimizer: str, lr: float, momentum: float, weight_decay: float):
    if optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    if optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    raise ValueError(f"optimizer must be 'sgd' or 'adam'; got {optimizer!r}.")


def _scheduler(opt, schedule: str, total: int):
    if schedule not in ("constant", "cosine"):
        raise ValueError(f"schedule must be 'constant' or 'cosine'; got {schedule!r}.")
    cosine = (lambda s: 0.5 * (1 + math.cos(math.pi * s / total)))
    return torch.optim.lr_scheduler.LambdaLR(opt, cosine if schedule == "cosine" else (lambda s: 1.0))


def _scaler(device: torch.device, amp: bool, amp_dtype: str):
    """A GradScaler for float16 autocast on cuda; None otherwise (bfloat16 has float32's range)."""
    if amp_dtype not in AMP_DTYPES:
        raise ValueError(f"amp_dtype must be one of {tuple(AMP_DTYPES)}; got {amp_dtype!r}.")
    if amp and amp_dtype == "float16" and device.type == "cuda":
        return torch.amp.GradScaler("cuda")
    return None


def _step(model, opt, scaler, X, y, idx, amp: bool, amp_dtype: str) -> torch.Tensor:
    """One optimizer step on rows ``idx``; returns the batch's summed loss (a device tensor, no sync)."""
    with autocast(X.device, amp, amp_dtype):
        loss = F.cross_entropy(model(X[idx]).float(), y[idx])
    opt.zero_grad(set_to_none=True)
    if scaler is None:
        loss.backward()
        opt.step()
    else:
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    return loss.detach().double() * len(idx)


def _finite(total: torch.Tensor) -> bool:
    """True when the device sum is finite (one host read)."""
    return bool(torch.isfinite(total).item())


def train(model: nn.Module, X: torch.Tensor, y: torch.Tensor, *, lr: float = 0.05, epochs: int = 5,
          batch: int = 128, optimizer: str = "sgd", momentum: float = 0.9, weight_decay: float = 0.0,
          schedule: str = "cosine", seed: int = 0, amp: bool = False, amp_dtype: str = "bfloat16",
          check_every: int = 50) -> TrainStats:
    """Train ``model`` in place on X, shape (n, *in_shape), y, shape (n,) (same device as the model).

    Parameters
    ----------
    lr : peak step size eta.
    schedule : "constant" or "cosine" (per step, to 0 at the end).
    seed : seeds the shuffling generator.
    amp : autocast to ``amp_dtype`` ("bfloat16" or "float16") on cuda (ignored on cpu).
    check_every : steps between divergence checks (each one host sync); also checked at epoch end.
    """
    if len(X) != len(y) or len(X) == 0:
        raise ValueError(f"X and y must have the same positive length; got {len(X)} and {len(y)}.")
    if check_every < 1:
        raise ValueError(f"check_every must be >= 1; got {check_every}.")
    t0 = time.perf_counter()
    opt = _optimizer(model, optimizer, lr, momentum, weight_decay)
    per_epoch = max(1, math.ceil(len(X) / batch))
    sched = _scheduler(opt, schedule, epochs * per_epoch)
    scaler = _scaler(X.device, amp, amp_dtype)
    gen = torch.Generator().manual_seed(seed)
    losses, steps, status = [], 0, "ok"
    model.train()
    for _ in range(epochs):
        saved = copy.deepcopy(model.state_dict())
        order = torch.randperm(len(X), generator=gen).to(X.device)
        total = torch.zeros((), dtype=torch.float64, device=X.device)
        seen = 0
        for i in range(per_epoch):
            idx = order[i * batch:(i + 1) * batch]
            if len(idx) < 2 and per_epoch > 1:
                continue  # a batch of one breaks BatchNorm; skip the tail
            total += _step(model, opt, scaler, X, y, idx, amp, amp_dtype)
            sched.step()
            steps += 1
            seen += len(idx)
            if steps % check_every == 0 and not _finite(total):
                status = "diverged"
                break
        mean = total.item() / max(seen, 1) if status == "ok" else math.nan  # the epoch's sync
        if not math.isfinite(mean):
            status = "diverged"
            model.load_state_dict(saved)
            break
        losses.append(mean)
    model.eval()
    seconds = time.perf_counter() - t0
    return TrainStats(status, tuple(losses), steps, seconds, steps * batch / max(seconds, 1e-9))
