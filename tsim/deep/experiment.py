"""Entry point of ``study = "deep"`` configs: train seed pairs per grid cell, align, measure barriers.

For every grid cell (product of the swept fields, e.g. ``model.width`` or ``train.lr``) and seed
pair p (seeds s_A = seed + 2p, s_B = seed + 2p + 1; each seeds the init and the data order),
two nets are trained; then, for each method in ``match.methods``:

- ``naive``: B as trained;
- ``wm``: B permuted by weight matching (coordinate descent seeded with s_A);
- ``am``: B permuted by activation matching on ``match.am_examples`` training inputs;

and the loss / error barriers along the linear path are measured on the test set (BatchNorm
statistics reset on training batches at each t). Sparsity: fraction of hidden units whose mean
activation on test inputs is <= tol * (mean over units), and the fraction that is exactly 0.

Writes ``results.csv`` (one row per cell and pair), ``summary.json`` and PNG figures into ``out``.
"""
from __future__ import annotations

import contextlib
import json
import os
import platform
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from tsim.config import Choice, ConfigError
from tsim.deep.config import DeepConfig, base_width, from_dict, grid, input_shape, resolve

AXIS_COLUMNS = {"model.arch": "arch", "model.width": "width", "model.depth": "depth", "model.base": "base",
                "model.norm": "norm", "train.lr": "lr", "train.epochs": "epochs", "train.batch": "batch",
                "train.optimizer": "optimizer", "train.momentum": "momentum",
                "train.weight_decay": "weight_decay", "train.schedule": "schedule"}


def resolve_device(requested: str) -> str:
    """'cpu' or 'cuda' for a requested 'cpu' | 'cuda' | 'auto' (auto: cuda when available)."""
    import torch

    try:
        Choice(("cpu", "cuda", "auto")).check(requested)
    except ValueError:
        raise ConfigError("run.device", f"run.device must be one of 'cpu', 'cuda', 'auto'; got {requested!r}. "
                          f"Use --device cpu, cuda or auto.") from None
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise ConfigError("run.device", "run.device is 'cuda' but torch sees no CUDA device; got 'cuda'. "
                          "Use device = \"auto\" or \"cpu\".")
    return requested


def load_data(cfg: DeepConfig, device: str):
    """(X_train, y_train, X_test, y_test) as torch tensors on ``device``."""
    import torch

    from tsim.deep import mnist

    d = cfg.data
    if d.dataset == "mnist":
        arrays = mnist.mnist_arrays(d.root or None, d.n_train, d.n_test, d.seed)
    else:
        arrays = mnist.teacher_arrays(input_shape(cfg), d.n_train, d.n_test, d.teacher_width, d.teacher_depth,
                                      d.classes, d.seed)
    return tuple(torch.from_numpy(np.ascontiguousarray(a)).to(device) for a in arrays)


def classes_of(cfg: DeepConfig) -> int:
    """Number of classes: 10 for MNIST, ``data.classes`` for the teacher."""
    return 10 if cfg.data.dataset == "mnist" else cfg.data.classes


def train_one(cfg: DeepConfig, data, seed: int, device: str):
    """One trained model of the cell ``cfg`` (init and data order from ``seed``) and its TrainStats."""
    from tsim.deep import models, train

    m, t = cfg.model, cfg.train
    net = models.build(m.arch, input_shape(cfg), classes_of(cfg), m.depth, m.width, base_width(m), m.norm,
                       seed).to(device)
    stats = train.train(net, data[0], data[1], lr=t.lr, epochs=t.epochs, batch=t.batch, optimizer=t.optimizer,
                        momentum=t.momentum, weight_decay=t.weight_decay, schedule=t.schedule, seed=seed,
                        amp=t.amp)
    return net, stats


def run_pair(cfg: DeepConfig, data, pair: int, device: str) -> dict:
    """Train the pair ``pair`` of the cell ``cfg``; return its result row (barriers per method)."""
    from tsim.deep import barrier, match, models, spec

    Xtr, ytr, Xte, yte = data
    mc, amp = cfg.match, cfg.train.amp
    s_a, s_b = cfg.sweep.seed + 2 * pair, cfg.sweep.seed + 2 * pair + 1
    net_a, st_a = train_one(cfg, data, s_a, device)
    net_b, st_b = train_one(cfg, data, s_b, device)
    sp = spec.spec_for(net_a)
    sd_a, sd_b = net_a.state_dict(), net_b.state_dict()
    row = {k: v for k, v in asdict(cfg.model).items()}
    row.update({k: v for k, v in asdict(cfg.train).items()})
    base = base_width(cfg.model)
    row.update(base=base, hidden=models.scaled(base, cfg.model.width), pair=pair, seed_a=s_a, seed_b=s_b,
               status_a=st_a.status, status_b=st_b.status,
               train_loss_a=st_a.epoch_loss[-1] if st_a.epoch_loss else float("nan"),
               train_loss_b=st_b.epoch_loss[-1] if st_b.epoch_loss else float("nan"),
               train_seconds=st_a.seconds + st_b.seconds,
               examples_per_s=(st_a.examples_per_s + st_b.examples_per_s) / 2)
    for tag, net in (("a", net_a), ("b", net_b)):
        if cfg.model.norm == "batch":
            barrier.reset_bn(net, Xtr, mc.bn_batches, cfg.train.batch)
        row[f"test_loss_{tag}"], row[f"test_error_{tag}"] = barrier.evaluate(net, Xte, yte, amp=amp)
        sparse = match.sparsity(match.unit_activity(net, sp, Xte[:2000]), mc.sparsity_tol)
        row[f"sparse_{tag}"], row[f"dead_{tag}"] = sparse["sparse"], sparse["dead"]
    aligned = {}
    for method in mc.methods:
        if method == "naive":
            aligned[method] = sd_b
        elif method == "wm":
            res = match.weight_matching(sp, sd_a, sd_b, seed=s_a, max_iter=mc.wm_max_iter,
                                        keys=[n for n, _ in net_a.named_parameters()])
            aligned[method] = match.apply_perm(sp, res.perms, sd_b)
            row.update(wm_sweeps=res.sweeps, wm_seconds=res.seconds)
        else:
            res = match.activation_matching(net_a, net_b, sp, Xtr[:mc.am_examples])
            aligned[method] = match.apply_perm(sp, res.perms, sd_b)
            row.update(am_seconds=res.seconds)
    for method, sd in aligned.items():
        r = barrier.barrier(net_a, sd_a, sd, Xte, yte, grid=mc.grid, X_reset=Xtr, bn_batches=mc.bn_batches,
                            batch=cfg.train.batch, amp=amp)
        row[f"barrier_loss_{method}"], row[f"barrier_error_{method}"] = r.loss, r.error
        row[f"mid_loss_{method}"] = float(r.loss_curve[len(r.t) // 2])
    row["device"] = device
    return row


@contextlib.contextmanager
def torch_settings(cfg: DeepConfig, device: str):
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


def _versions() -> dict:
    import matplotlib
    import torch

    try:
        from importlib.metadata import version

        tsim_version = version("tsim")
    except Exception:  # not installed (source tree)
        tsim_version = "source"
    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "matplotlib": matplotlib.__version__, "tsim": tsim_version, "platform": platform.platform()}


def _measured(df, swept: list[str]) -> list[dict]:
    """Per-cell means (and barrier stds) over seed pairs, for summary.json."""
    cols = [c for c in df.columns if c.startswith(("barrier_", "test_error_", "test_loss_", "sparse_", "dead_"))]
    cols += [c for c in ("wm_seconds", "am_seconds", "train_seconds") if c in df.columns]
    keys = swept or ["arch"]
    out = []
    for key, sub in df.groupby(keys, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        rec = {k: (v.item() if hasattr(v, "item") else v) for k, v in zip(keys, key)}
        rec.update({f"{c}_mean": float(sub[c].mean()) for c in cols})
        rec.update({f"{c}_std": float(sub[c].std(ddof=0)) for c in cols if c.startswith("barrier_")})
        rec["pairs"] = int(len(sub))
        out.append(rec)
    return out


def run(raw: dict, out, quick: bool = False, device: str | None = None, progress: bool = True) -> dict:
    """Run a deep study from a parsed TOML dict; write results.csv, summary.json and PNGs into ``out``.

    Parameters
    ----------
    raw : dict, the parsed TOML (``study = "deep"``; ``[quick]`` overrides applied when ``quick``).
    out : path of the output folder (created).
    quick : apply the ``[quick]`` overrides.
    device : "cpu" | "cuda" | "auto" overriding ``run.device`` when not None.
    progress : show a tqdm bar.

    Returns
    -------
    dict, the summary written to ``summary.json``.

    Raises
    ------
    ConfigError
        For a bad config value (naming the field) or an unavailable device / missing data.
    """
    from tqdm import tqdm

    from tsim.deep import plot
    from tsim.sweep.grid import Cell, cell_key
    from tsim.sweep.store import Store, SweepLock

    t0 = time.perf_counter()
    cfg = from_dict(raw, quick=quick)
    dev = resolve_device(device if device is not None else cfg.run.device)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    points = grid(cfg) or [{}]
    cells = [Cell(key=cell_key(c), point=p, config=c) for p, c in zip(points, (resolve(cfg, p) for p in points))]
    swept = [AXIS_COLUMNS.get(k, k.replace(".", "_")) for k, _ in cfg.axes]
    # one store transaction per finished cell: an interrupted run resumes with the same command
    with SweepLock(out), Store(out) as store:
        store.register(cells, cfg.to_dict())
        done = store.finished_keys()
        todo = [(i, c) for i, c in enumerate(cells) if c.key not in done]
        with torch_settings(cfg, dev):
            data = load_data(cfg, dev)
            bar = tqdm(total=len(todo) * cfg.sweep.pairs, desc="deep", disable=not progress, unit="pair")
            for idx, cell in todo:
                t_cell = time.perf_counter()
                rows = []
                for pair in range(cfg.sweep.pairs):
                    bar.set_postfix({AXIS_COLUMNS.get(k, k): v for k, v in cell.point.items()} | {"pair": pair})
                    rows.append({**run_pair(cell.config, data, pair, dev), "cell": idx, "key": cell.key})
                    bar.update(1)
                store.record(cell.key, rows, wall_s=time.perf_counter() - t_cell)
            bar.close()
        df = store.rows([c.key for c in cells])
    df.to_csv(out / "results.csv", index=False)
    figures = plot.draw(df, out, cfg.output.plots, cfg.match.methods, swept, cfg.output.title)
    summary = {
        "study": "deep",
        "quick": bool(quick),
        "config": cfg.to_dict(),
        "device": dev,
        "versions": _versions(),
        "seeds": {"base": cfg.sweep.seed, "pairs": [[cfg.sweep.seed + 2 * p, cfg.sweep.seed + 2 * p + 1]
                                                    for p in range(cfg.sweep.pairs)], "data": cfg.data.seed},
        "n_train": int(len(data[0])), "n_test": int(len(data[2])),
        "cells": len(cells), "rows": len(df),
        "wall_seconds": time.perf_counter() - t0,
        "measured": _measured(df, swept),
        "files": ["results.csv", "summary.json"] + [p.name for p in figures],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary
