"""One grid cell of ``study = "deep"``: train seed pairs, align, measure barriers (torch).

Registered as the study ``deep`` by :mod:`tsim.studies.deep`, so deep configs go through the same
sweep runner, store, summary and figures as the two-layer studies. For every seed pair p
(seeds s_A = seed + 2p, s_B = seed + 2p + 1; each seeds the init and the data order) two nets
are trained; then, for each method in ``match.methods`` (the alignment vocabulary of
:data:`tsim.alignment.METHODS`, plus ``naive``):

- ``naive``: B as trained;
- ``weight``: B permuted by weight matching (coordinate descent seeded with s_A);
- ``activation``: B permuted by activation matching on ``match.am_examples`` training inputs;

and the loss / error barriers along the linear path are measured on the test set (BatchNorm
statistics reset on training batches at each t), always in full precision. Sparsity: fraction of
hidden units whose mean activation on test inputs is <= tol * (mean over units), and the
fraction that is exactly 0.
"""
from __future__ import annotations

import contextlib
import os
import platform
from dataclasses import asdict
from functools import lru_cache

import numpy as np

from tsim.errors import ConfigError


def resolve_device(requested: str) -> str:
    """'cpu' or 'cuda' for a requested 'cpu' | 'cuda' | 'auto' (auto: cuda when available)."""
    import torch

    if requested not in ("cpu", "cuda", "auto"):
        raise ConfigError("run.device", f"run.device must be one of 'cpu', 'cuda', 'auto'; got {requested!r}. "
                          f"Use --device cpu, cuda or auto.")
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise ConfigError("run.device", "run.device is 'cuda' but torch sees no CUDA device; got 'cuda'. "
                          "Use device = \"auto\" or \"cpu\".")
    return requested


@lru_cache(maxsize=2)
def load_data(data, device: str):
    """(X_train, y_train, X_test, y_test) as torch tensors on ``device`` for a DataConfig (cached per process)."""
    import torch

    from tsim.deep import mnist

    if data.dataset == "mnist":
        arrays = mnist.mnist_arrays(data.root or None, data.n_train, data.n_test, data.seed)
    else:
        arrays = mnist.teacher_arrays(mnist.input_shape(data.dataset, data.shape), data.n_train, data.n_test,
                                      data.teacher_width, data.teacher_depth, data.classes, data.seed)
    return tuple(torch.from_numpy(np.ascontiguousarray(a)).to(device) for a in arrays)


def classes_of(cfg) -> int:
    """Number of classes: 10 for MNIST, ``data.classes`` for the teacher."""
    return 10 if cfg.data.dataset == "mnist" else cfg.data.classes


def train_one(cfg, data, seed: int, device: str):
    """One trained model of the cell ``cfg`` (init and data order from ``seed``) and its TrainStats."""
    from tsim.deep import mnist, models, train

    m, t = cfg.model, cfg.train
    net = models.build(m.arch, mnist.input_shape(cfg.data.dataset, cfg.data.shape), classes_of(cfg), m.depth,
                       m.width, models.base_width(m.arch, m.base), m.norm, seed).to(device)
    stats = train.train(net, data[0], data[1], lr=t.lr, epochs=t.epochs, batch=t.batch, optimizer=t.optimizer,
                        momentum=t.momentum, weight_decay=t.weight_decay, schedule=t.schedule, seed=seed,
                        amp=t.amp)
    return net, stats


def run_pair(cfg, data, pair: int, device: str) -> dict:
    """Train the pair ``pair`` of the cell ``cfg``; return its result row (barriers per method)."""
    from tsim.deep import barrier, match, models, spec

    Xtr, ytr, Xte, yte = data
    mc = cfg.match
    s_a, s_b = cfg.sweep.seed + 2 * pair, cfg.sweep.seed + 2 * pair + 1
    net_a, st_a = train_one(cfg, data, s_a, device)
    net_b, st_b = train_one(cfg, data, s_b, device)
    sp = spec.spec_for(net_a)
    sd_a, sd_b = net_a.state_dict(), net_b.state_dict()
    row = dict(asdict(cfg.model))
    row.update(asdict(cfg.train))
    base = models.base_width(cfg.model.arch, cfg.model.base)
    row.update(base=base, hidden=models.scaled(base, cfg.model.width), pair=pair, seed_a=s_a, seed_b=s_b,
               status_a=st_a.status, status_b=st_b.status,
               train_loss_a=st_a.epoch_loss[-1] if st_a.epoch_loss else float("nan"),
               train_loss_b=st_b.epoch_loss[-1] if st_b.epoch_loss else float("nan"),
               train_seconds=st_a.seconds + st_b.seconds,
               examples_per_s=(st_a.examples_per_s + st_b.examples_per_s) / 2)
    for tag, net in (("a", net_a), ("b", net_b)):
        if cfg.model.norm == "batch":
            barrier.reset_bn(net, Xtr, mc.bn_batches, cfg.train.batch)
        row[f"test_loss_{tag}"], row[f"test_error_{tag}"] = barrier.evaluate(net, Xte, yte)
        sparse = match.sparsity(match.unit_activity(net, sp, Xte[:2000]), mc.sparsity_tol)
        row[f"sparse_{tag}"], row[f"dead_{tag}"] = sparse["sparse"], sparse["dead"]
    aligned = {}
    for method in mc.methods:
        if method == "naive":
            aligned[method] = sd_b
        elif method == "weight":
            res = match.weight_matching(sp, sd_a, sd_b, seed=s_a, max_iter=mc.wm_max_iter,
                                        keys=[n for n, _ in net_a.named_parameters()])
            aligned[method] = spec.apply_perm(sp, res.perms, sd_b)
            row.update(weight_sweeps=res.sweeps, weight_seconds=res.seconds)
        else:
            res = match.activation_matching(net_a, net_b, sp, Xtr[:mc.am_examples])
            aligned[method] = spec.apply_perm(sp, res.perms, sd_b)
            row.update(activation_seconds=res.seconds)
    for method, sd in aligned.items():
        r = barrier.barrier(net_a, sd_a, sd, Xte, yte, grid=mc.grid, X_reset=Xtr, bn_batches=mc.bn_batches,
                            batch=cfg.train.batch)
        row[f"barrier_loss_{method}"], row[f"barrier_error_{method}"] = r.loss.value, r.error.value
        row[f"mid_loss_{method}"] = float(r.loss.losses[len(r.loss.ts) // 2])
    row["device"] = device
    return row


@contextlib.contextmanager
def torch_settings(cfg, device: str):
    """Threads and deterministic algorithms for the run; restores torch's global settings after."""
    import torch

    old_threads, old_det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    if device == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    if cfg.run.threads:
        torch.set_num_threads(cfg.run.threads)
    torch.use_deterministic_algorithms(cfg.run.deterministic, warn_only=True)
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det)


def run_pairs(cfg, pairs) -> list[dict]:
    """Rows of one resolved deep cell (``run.device`` already resolved to cpu or cuda)."""
    device = cfg.run.device
    with torch_settings(cfg, device):
        data = load_data(cfg.data, device)
        return [run_pair(cfg, data, int(p), device) for p in pairs]


def torch_versions() -> dict:
    """torch, CUDA and cuDNN versions and the GPU name (None where absent), for summary.json."""
    import torch

    cuda = torch.cuda.is_available()
    return {"torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
            "gpu": torch.cuda.get_device_name(0) if cuda else None, "platform": platform.platform()}
