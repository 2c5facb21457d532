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
statistics reset on training batches at each t). Sparsity: fraction of hidden units whose mean
activation on test inputs is <= tol * (mean over units), and the fraction that is exactly 0.

How the numbers were computed is part of the cell and of every row:

- precision: training runs under ``train.amp`` (autocast to ``train.amp_dtype``, cuda only) and
  ``run.tf32`` (TF32 matmuls/convolutions, cuda only); every measurement (endpoints, sparsity,
  matching activations, barriers, BatchNorm resets) runs in :func:`tsim.deep.barrier.full_precision`
  (float32, no autocast, TF32 off). Rows record what was in force, read back from torch:
  ``device``, ``gpu``, ``amp_used``, ``amp_dtype``, ``tf32_train``, ``tf32_eval``,
  ``train_precision``, ``eval_precision``, ``deterministic``;
- determinism: ``run.deterministic`` calls ``torch.use_deterministic_algorithms(True)`` (errors,
  not warnings), sets ``cudnn.deterministic`` and turns ``cudnn.benchmark`` off; with cuda,
  :func:`cublas_workspace` sets ``CUBLAS_WORKSPACE_CONFIG`` before any CUDA work (the study's
  ``prepare`` calls it before cells run, so pool and Dask workers inherit it);
- device errors: out of memory, CUDA/cuDNN/cuBLAS failures and determinism errors become one-line
  ``ValueError`` s naming the cell (:func:`device_errors`), which the sweep records as the cell's
  failure reason.
"""
from __future__ import annotations

import contextlib
import os
import platform
import re
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
                        amp=t.amp, amp_dtype=t.amp_dtype)
    return net, stats


def precision_label(amp: bool, amp_dtype: str, tf32: bool) -> str:
    """The precision in words: "float32", "float32+tf32", "bfloat16-autocast", "float16-autocast+tf32", ..."""
    return (f"{amp_dtype}-autocast" if amp else "float32") + ("+tf32" if tf32 else "")


def precision_record(cfg, device: str, train_flags: dict, eval_flags: dict) -> dict:
    """The row fields that say how a pair was computed, from the TF32 flags read back during
    training and measurement (effective only on cuda) and the determinism flag now in force."""
    import torch

    cuda = device == "cuda"
    amp_used = bool(cfg.train.amp and cuda)
    tf32_train = bool(cuda and all(train_flags.values()))
    tf32_eval = bool(cuda and any(v is not False for v in eval_flags.values()))
    return {"device": device, "gpu": torch.cuda.get_device_name() if cuda else "",
            "amp_used": amp_used, "amp_dtype": cfg.train.amp_dtype, "tf32_train": tf32_train,
            "tf32_eval": tf32_eval, "train_precision": precision_label(amp_used, cfg.train.amp_dtype, tf32_train),
            "eval_precision": precision_label(False, "float32", tf32_eval),
            "deterministic": torch.are_deterministic_algorithms_enabled()}


def _train_pair(cfg, data, s_a: int, s_b: int, device: str):
    """Both nets of a pair, trained under ``run.tf32``; also the TF32 flags that were in force."""
    from tsim.deep import barrier

    with barrier.tf32(cfg.run.tf32):
        net_a, st_a = train_one(cfg, data, s_a, device)
        net_b, st_b = train_one(cfg, data, s_b, device)
        flags = barrier.tf32_state()
    return (net_a, st_a), (net_b, st_b), flags


def _endpoint_fields(cfg, net_a, net_b, sp, data) -> dict:
    """Test loss / error and sparsity of both ends (BatchNorm reset first), full precision."""
    from tsim.deep import barrier, match

    Xtr, _, Xte, yte = data
    mc, row = cfg.match, {}
    for tag, net in (("a", net_a), ("b", net_b)):
        if cfg.model.norm == "batch":
            barrier.reset_bn(net, Xtr, mc.bn_batches, cfg.train.batch)
        row[f"test_loss_{tag}"], row[f"test_error_{tag}"] = barrier.evaluate(net, Xte, yte)
        sparse = match.sparsity(match.unit_activity(net, sp, Xte[:2000]), mc.sparsity_tol)
        row[f"sparse_{tag}"], row[f"dead_{tag}"] = sparse["sparse"], sparse["dead"]
    return row


def _aligned(cfg, net_a, net_b, sp, Xtr, seed: int, row: dict) -> dict:
    """{method: state_dict of B aligned to A} for every method of ``match.methods``; timings go into row."""
    from tsim.deep import match, spec

    mc = cfg.match
    sd_a, sd_b = net_a.state_dict(), net_b.state_dict()
    aligned = {}
    for method in mc.methods:
        if method == "naive":
            aligned[method] = sd_b
        elif method == "weight":
            res = match.weight_matching(sp, sd_a, sd_b, seed=seed, max_iter=mc.wm_max_iter,
                                        keys=[n for n, _ in net_a.named_parameters()])
            aligned[method] = spec.apply_perm(sp, res.perms, sd_b)
            row.update(weight_sweeps=res.sweeps, weight_seconds=res.seconds)
        else:
            res = match.activation_matching(net_a, net_b, sp, Xtr[:mc.am_examples])
            aligned[method] = spec.apply_perm(sp, res.perms, sd_b)
            row.update(activation_seconds=res.seconds)
    return aligned


def run_pair(cfg, data, pair: int, device: str) -> dict:
    """Train the pair ``pair`` of the cell ``cfg``; return its result row (barriers per method)."""
    from tsim.deep import barrier, models, spec

    Xtr, ytr, Xte, yte = data
    mc = cfg.match
    s_a, s_b = cfg.sweep.seed + 2 * pair, cfg.sweep.seed + 2 * pair + 1
    (net_a, st_a), (net_b, st_b), train_flags = _train_pair(cfg, data, s_a, s_b, device)
    sp = spec.spec_for(net_a)
    row = dict(asdict(cfg.model))
    row.update(asdict(cfg.train))
    base = models.base_width(cfg.model.arch, cfg.model.base)
    row.update(base=base, hidden=models.scaled(base, cfg.model.width), pair=pair, seed_a=s_a, seed_b=s_b,
               status_a=st_a.status, status_b=st_b.status,
               train_loss_a=st_a.epoch_loss[-1] if st_a.epoch_loss else float("nan"),
               train_loss_b=st_b.epoch_loss[-1] if st_b.epoch_loss else float("nan"),
               train_seconds=st_a.seconds + st_b.seconds,
               examples_per_s=(st_a.examples_per_s + st_b.examples_per_s) / 2)
    with barrier.full_precision(device):
        eval_flags = barrier.tf32_state()
        row.update(_endpoint_fields(cfg, net_a, net_b, sp, data))
        aligned = _aligned(cfg, net_a, net_b, sp, Xtr, s_a, row)
        sd_a = net_a.state_dict()
        for method, sd in aligned.items():
            r = barrier.barrier(net_a, sd_a, sd, Xte, yte, grid=mc.grid, X_reset=Xtr, bn_batches=mc.bn_batches,
                                batch=cfg.train.batch)
            row[f"barrier_loss_{method}"], row[f"barrier_error_{method}"] = r.loss.value, r.error.value
            row[f"mid_loss_{method}"] = float(r.loss.losses[len(r.loss.ts) // 2])
    row.update(precision_record(cfg, device, train_flags, eval_flags))
    return row


#: value of CUBLAS_WORKSPACE_CONFIG that makes cuBLAS deterministic (torch's reproducibility notes)
CUBLAS_WORKSPACE = ":4096:8"


def cublas_workspace() -> str:
    """Set ``CUBLAS_WORKSPACE_CONFIG`` (unless already set) and return its value.

    cuBLAS reads it when its handle is created, i.e. at the first CUDA matmul, so it must be set
    before any CUDA work: :func:`tsim.studies.deep.prepare` calls this before cells run (worker
    processes started after it inherit the variable); :func:`torch_settings` calls it again for
    cells run by workers that did not (a remote Dask worker).
    """
    return os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)


@contextlib.contextmanager
def torch_settings(cfg, device: str):
    """Threads and determinism for the run; restores torch's global settings after.

    With ``run.deterministic``: ``torch.use_deterministic_algorithms(True)`` (an op without a
    deterministic implementation raises), ``cudnn.deterministic = True``; ``cudnn.benchmark`` is
    off either way (its autotuning may pick different kernels from run to run).
    """
    import torch

    cudnn = torch.backends.cudnn
    old = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
           torch.is_deterministic_algorithms_warn_only_enabled(), cudnn.deterministic, cudnn.benchmark)
    if device == "cuda":
        cublas_workspace()
    if cfg.run.threads:
        torch.set_num_threads(cfg.run.threads)
    torch.use_deterministic_algorithms(cfg.run.deterministic)
    cudnn.deterministic, cudnn.benchmark = bool(cfg.run.deterministic), False
    try:
        yield
    finally:
        torch.set_num_threads(old[0])
        torch.use_deterministic_algorithms(old[1], warn_only=old[2])
        cudnn.deterministic, cudnn.benchmark = old[3], old[4]


def describe_cell(cfg) -> str:
    """A short name of a cell for error messages: arch, width, depth, batch, device, precision."""
    m, t = cfg.model, cfg.train
    amp = f", amp {t.amp_dtype}" if t.amp else ""
    return (f"(arch={m.arch}, width={m.width:g}, depth={m.depth}, batch={t.batch}, device={cfg.run.device}"
            f"{amp})")


def _one_line(exc: BaseException, limit: int = 200) -> str:
    """The first sentence-ish of an exception message, on one line, at most ``limit`` characters."""
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


_DEVICE_ERROR = re.compile(r"CUDA error|CUDA driver|CUBLAS_STATUS|CUDNN_STATUS|cuDNN error|device-side assert")
_ALLOCATE = re.compile(r"[Tt]ried to allocate [0-9.]+ ?(?:[KMGT]i?B|bytes)")


def _oom_message(cfg, exc: BaseException) -> str:
    found = _ALLOCATE.search(str(exc))
    detail = f" ({found.group(0)})" if found else ""
    where = "CPU" if "can't allocate memory" in str(exc) else "CUDA"  # torch's CPU allocator says so
    return f"{where} out of memory in cell {describe_cell(cfg)}{detail}: lower train.batch or model.width."


def _translate(cfg, exc: RuntimeError) -> ValueError | None:
    """A one-line ValueError for a device failure, or None for any other RuntimeError."""
    import torch

    msg = str(exc)
    if isinstance(exc, torch.cuda.OutOfMemoryError) or "can't allocate memory" in msg:
        return ValueError(_oom_message(cfg, exc))
    if "CUBLAS_WORKSPACE_CONFIG" in msg:
        return ValueError(f"run.deterministic = true needs CUBLAS_WORKSPACE_CONFIG={CUBLAS_WORKSPACE} set before "
                          f"CUDA starts (cell {describe_cell(cfg)}); `tsim run` sets it, else export it first or "
                          f"set run.deterministic = false.")
    if "use_deterministic_algorithms" in msg:
        op = msg.split(" ", 1)[0] if " does not have a deterministic" in msg else "an operation"
        return ValueError(f"run.deterministic = true but {op} has no deterministic implementation on "
                          f"{cfg.run.device} in cell {describe_cell(cfg)}; set run.deterministic = false to "
                          f"allow it ({_one_line(exc, 160)})")
    if _DEVICE_ERROR.search(msg):
        return ValueError(f"device error in cell {describe_cell(cfg)}: {_one_line(exc)}")
    return None


@contextlib.contextmanager
def device_errors(cfg):
    """Turn out-of-memory, CUDA/cuDNN/cuBLAS and determinism errors into one-line ValueErrors naming
    the cell (e.g. "CUDA out of memory in cell (...): lower train.batch or model.width."); the
    sweep records them as the cell's failure reason. Other exceptions pass unchanged."""
    try:
        yield
    except RuntimeError as exc:
        clear = _translate(cfg, exc)
        if clear is None:
            raise
        raise clear from exc


def run_pairs(cfg, pairs) -> list[dict]:
    """Rows of one resolved deep cell (``run.device`` already resolved to cpu or cuda)."""
    device = cfg.run.device
    with device_errors(cfg), torch_settings(cfg, device):
        data = load_data(cfg.data, device)
        return [run_pair(cfg, data, int(p), device) for p in pairs]


def _gpu_info() -> dict:
    import torch

    if not torch.cuda.is_available():
        return {"gpu": None, "gpu_capability": None, "gpu_memory_gib": None}
    props = torch.cuda.get_device_properties(0)
    return {"gpu": props.name, "gpu_capability": f"{props.major}.{props.minor}",
            "gpu_memory_gib": round(props.total_memory / 2 ** 30, 1)}


def torch_versions(cfg=None) -> dict:
    """torch, CUDA and cuDNN versions, the GPU, and the precision state, for summary.json.

    Always: the process's TF32 flags and float32 matmul precision outside a run
    (``process_tf32_matmul``, ``process_tf32_cudnn``, ``process_float32_matmul_precision``: torch's
    defaults unless the caller changed them; a run sets its own and restores these),
    ``CUBLAS_WORKSPACE_CONFIG`` and the measurement policy (``eval_precision``: float32, no
    autocast, TF32 off). With a resolved deep config ``cfg``, also the effective
    training precision of its runs (``amp_used``, ``amp_dtype``, ``tf32_train``,
    ``train_precision``, ``deterministic``); rows carry the same fields.
    """
    import torch

    from tsim.deep.barrier import tf32_state

    flags = tf32_state()
    try:
        matmul_precision = torch.get_float32_matmul_precision()
    except RuntimeError:  # mixed legacy / new precision APIs
        matmul_precision = None
    out = {"torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
           **_gpu_info(), "platform": platform.platform(), "process_tf32_matmul": flags["matmul"],
           "process_tf32_cudnn": flags["cudnn"], "process_float32_matmul_precision": matmul_precision,
           "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
           "eval_precision": "float32 (no autocast, TF32 off)"}
    if cfg is not None and getattr(cfg, "study", None) == "deep":
        cuda = cfg.run.device == "cuda"
        amp_used, tf32_train = bool(cfg.train.amp and cuda), bool(cfg.run.tf32 and cuda)
        out.update(amp_used=amp_used, amp_dtype=cfg.train.amp_dtype, tf32_train=tf32_train,
                   train_precision=precision_label(amp_used, cfg.train.amp_dtype, tf32_train),
                   deterministic=cfg.run.deterministic)
    return out
