"""Minibatch training of a deep classifier on in-memory tensors (cross-entropy).

theta <- theta - eta_s * g (SGD with momentum mu and weight decay) or Adam, eta_s the lr at
step s: constant, or cosine eta_s = eta (1 + cos(pi s / S)) / 2 over the S steps of training.
The shuffling order is drawn from a ``torch.Generator`` seeded with ``seed`` (on CPU), so the
same seed gives the same run on CPU. Divergence (a non-finite loss) is an outcome: training
stops, the weights of the last finished epoch are restored and ``status = "diverged"``.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from tsim.deep.barrier import autocast


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


def train(model: nn.Module, X: torch.Tensor, y: torch.Tensor, *, lr: float = 0.05, epochs: int = 5,
          batch: int = 128, optimizer: str = "sgd", momentum: float = 0.9, weight_decay: float = 0.0,
          schedule: str = "cosine", seed: int = 0, amp: bool = False) -> TrainStats:
    """Train ``model`` in place on X, shape (n, *in_shape), y, shape (n,) (same device as the model).

    Parameters
    ----------
    lr : peak step size eta.
    schedule : "constant" or "cosine" (per step, to 0 at the end).
    seed : seeds the shuffling generator.
    amp : bfloat16 autocast on cuda (ignored on cpu).
    """
    if schedule not in ("constant", "cosine"):
        raise ValueError(f"schedule must be 'constant' or 'cosine'; got {schedule!r}.")
    if len(X) != len(y) or len(X) == 0:
        raise ValueError(f"X and y must have the same positive length; got {len(X)} and {len(y)}.")
    t0 = time.perf_counter()
    opt = _optimizer(model, optimizer, lr, momentum, weight_decay)
    per_epoch = max(1, math.ceil(len(X) / batch))
    total = epochs * per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, (lambda s: 0.5 * (1 + math.cos(math.pi * s / total))) if schedule == "cosine" else (lambda s: 1.0))
    gen = torch.Generator().manual_seed(seed)
    losses, steps, status = [], 0, "ok"
    model.train()
    for _ in range(epochs):
        saved = copy.deepcopy(model.state_dict())
        order = torch.randperm(len(X), generator=gen).to(X.device)
        run, seen = 0.0, 0
        for i in range(per_epoch):
            idx = order[i * batch:(i + 1) * batch]
            if len(idx) < 2 and per_epoch > 1:
                continue  # a batch of one breaks BatchNorm; skip the tail
            with autocast(X.device, amp):
                loss = F.cross_entropy(model(X[idx]).float(), y[idx])
            if not torch.isfinite(loss):
                status = "diverged"
                break
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            steps += 1
            run += float(loss.detach()) * len(idx)
            seen += len(idx)
        if status == "diverged":
            model.load_state_dict(saved)
            break
        losses.append(run / max(seen, 1))
    model.eval()
    seconds = time.perf_counter() - t0
    return TrainStats(status, tuple(losses), steps, seconds, steps * batch / max(seconds, 1e-9))
