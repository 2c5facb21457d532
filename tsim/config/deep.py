"""Config of a deep study (``study = "deep"``): frozen dataclasses, validation, sweep axes.

Sections ``[data]``, ``[model]``, ``[train]``, ``[match]``, ``[sweep]``, ``[run]``, ``[output]``;
keys equal the dataclass fields below. An optional ``[quick]`` table with the same layout
replaces values under ``--quick``. A field marked sweepable may hold a list (or a
``{geomspace = [lo, hi, n]}``-style axis as in :mod:`tsim.config`); the grid is the product.

Loaded by :func:`tsim.config.from_dict`. Every error is a :class:`tsim.errors.ConfigError` naming the field, the rule, the value and the fix.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..alignment import METHODS as ALIGN_METHODS
from ..deep.mnist import input_shape
from ..errors import ConfigError
from ..results.deep_figures import PLOTS as FIGURES
from .constraints import Choice, Interval, IntTuple, Text, TextList, as_dict, rule


@dataclass(frozen=True)
class DataConfig:
    """Dataset: real MNIST (IDX files under ``root/MNIST/raw``) or a random deep ReLU teacher.

    ``root = ""`` means the env var ``TSIM_DATA``, else ``../shared/data/mnist`` next to the repo.
    ``n_train = 0`` uses every training example. The teacher draws x ~ N(0, I_d), d = prod(shape),
    labels y = argmax f*(x) of a ReLU MLP with ``teacher_depth`` hidden layers of ``teacher_width``.
    """

    dataset: str = rule(Choice(("mnist", "teacher")), "mnist", "use 'mnist' or 'teacher'", sweepable=False)
    root: str = rule(Text(), "", "give the folder holding MNIST/raw, or \"\" for $TSIM_DATA", sweepable=False)
    n_train: int = rule(Interval(int, 0, example=10000), 0, "use 0 (all) or a positive subset size",
                        sweepable=False)
    n_test: int = rule(Interval(int, 0, example=10000), 0, "use 0 (all) or a positive test size",
                       sweepable=False)
    shape: tuple = rule(IntTuple(), (), "give the teacher input shape, e.g. [1, 8, 8] or [64]",
                        sweepable=False)
    classes: int = rule(Interval(int, 2, example=10), 10, "use at least 2 classes", sweepable=False)
    teacher_width: int = rule(Interval(int, 1, example=64), 64, "use a positive teacher width",
                              sweepable=False)
    teacher_depth: int = rule(Interval(int, 1, example=3), 3, "use at least one teacher hidden layer",
                              sweepable=False)
    seed: int = rule(Interval(int, 0, example=0), 0, "use a non-negative data seed", sweepable=False)


@dataclass(frozen=True)
class ModelConfig:
    """Architecture; hidden widths are round(base * width) (channels for conv nets)."""

    arch: str = rule(Choice(("mlp", "vgg", "resnet")), "mlp", "use 'mlp', 'vgg' or 'resnet'")
    width: float = rule(Interval(float, 0.0, open_low=True, example=1.0), 1.0,
                        "use a positive width multiplier such as 1 or 2")
    depth: int = rule(Interval(int, 1, example=3), 3,
                      "use a positive depth (MLP hidden layers; VGG conv layers and ResNet blocks per stage)")
    base: int = rule(Interval(int, 0, example=128), 0,
                     "use a base width (MLP units, first-stage conv channels) or 0 for the arch default")
    norm: str = rule(Choice(("none", "batch", "layer")), "none", "use 'none', 'batch' or 'layer'")


@dataclass(frozen=True)
class TrainConfig:
    """SGD (momentum) or Adam on cross-entropy, ``epochs`` passes, cosine or constant lr.

    ``amp`` autocasts the training forward pass to ``amp_dtype`` on cuda (ignored on cpu: each row
    records the effective ``amp_used``); measurement never autocasts (see :class:`RunConfig`).
    """

    optimizer: str = rule(Choice(("sgd", "adam")), "sgd", "use 'sgd' or 'adam'")
    lr: float = rule(Interval(float, 0.0, open_low=True, example=0.05), 0.05,
                     "set a positive step size such as 0.05")
    momentum: float = rule(Interval(float, 0.0, 1.0, example=0.9), 0.9, "use a momentum in [0, 1]")
    weight_decay: float = rule(Interval(float, 0.0, example=0.0), 0.0, "use a weight decay >= 0")
    epochs: int = rule(Interval(int, 1, example=5), 5, "use a positive number of epochs")
    batch: int = rule(Interval(int, 1, example=128), 128, "use a positive minibatch size")
    schedule: str = rule(Choice(("constant", "cosine")), "cosine", "use 'constant' or 'cosine'")
    amp: bool = rule(Choice((False, True)), False,
                     "true enables autocast (train.amp_dtype) for training on cuda (ignored on cpu)",
                     sweepable=False)
    amp_dtype: str = rule(Choice(("bfloat16", "float16")), "bfloat16",
                          "use 'bfloat16' or 'float16' (float16 adds loss scaling)", sweepable=False)


#: "naive" (no alignment) and the methods of :data:`tsim.alignment.METHODS` that deep nets implement
METHODS = ("naive",) + tuple(m for m in ("weight", "activation") if m in ALIGN_METHODS)


@dataclass(frozen=True)
class MatchConfig:
    """Alignment and barrier: methods, t-grid, BatchNorm reset and activation batches."""

    methods: tuple = rule(TextList(METHODS), METHODS, "choose methods from the list", sweepable=False)
    grid: int = rule(Interval(int, 3, example=11), 11, "use at least 3 t-points", sweepable=False)
    wm_max_iter: int = rule(Interval(int, 1, example=100), 100, "use a positive iteration cap",
                            sweepable=False)
    am_examples: int = rule(Interval(int, 1, example=2000), 2000,
                            "use a positive number of training examples for activation matching",
                            sweepable=False)
    bn_batches: int = rule(Interval(int, 1, example=20), 20,
                           "use a positive number of batches to reset BatchNorm statistics", sweepable=False)
    sparsity_tol: float = rule(Interval(float, 0.0, example=0.01), 0.01,
                               "a unit is sparse when its mean activation <= tol * mean over units",
                               sweepable=False)


@dataclass(frozen=True)
class SweepConfig:
    """``pairs`` independent seed pairs (seed + 2p, seed + 2p + 1) per grid cell."""

    pairs: int = rule(Interval(int, 1, example=3), 3, "use at least one seed pair", sweepable=False)
    seed: int = rule(Interval(int, 0, example=0), 0, "use a non-negative base seed", sweepable=False)
    workers: int = rule(Interval(int, 0, example=1), 1,
                        "use 1 (this process), N > 1 worker processes, or 0 for one per core", sweepable=False)


@dataclass(frozen=True)
class RunConfig:
    """Where and how to compute.

    ``device``: ``auto`` picks cuda when available; it is resolved before cells are keyed, so a cpu
    and a cuda run never share a cell. ``tf32`` (default false) lets cuBLAS matmuls and cuDNN
    convolutions use TF32 during *training* on cuda. Measurement (test loss and error, BatchNorm
    reset, barriers, activation statistics) always runs in float32 with autocast disabled and
    TF32 off, whatever ``tf32`` and ``train.amp`` say. ``deterministic`` (default true) calls
    ``torch.use_deterministic_algorithms(True)``: an op without a deterministic implementation is
    an error (the cell fails with the op's name), not a warning; with cuda,
    ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` is set before any CUDA work (unless already set).
    """

    device: str = rule(Choice(("cpu", "cuda", "auto")), "auto", "use 'cpu', 'cuda' or 'auto'",
                       sweepable=False)
    threads: int = rule(Interval(int, 0, example=2), 0, "use 0 (torch default) or a thread count",
                        sweepable=False)
    deterministic: bool = rule(Choice((False, True)), True,
                               "true calls torch.use_deterministic_algorithms(True): a nondeterministic op "
                               "is an error", sweepable=False)
    tf32: bool = rule(Choice((False, True)), False,
                      "true allows TF32 matmuls/convolutions for training on cuda; measurement is always "
                      "float32 with TF32 off", sweepable=False)


DEEP_PLOTS = tuple(FIGURES)


@dataclass(frozen=True)
class OutputConfig:
    """Where and which figures to draw (x axis: the swept field, model.width or train.lr)."""

    dir: str = rule(Text(), "results/deep", "give an output folder", sweepable=False)
    plots: tuple = rule(TextList(DEEP_PLOTS), ("barrier", "sparsity"), "choose plots from the list",
                        sweepable=False)
    title: str = rule(Text(), "", "give a figure title or \"\"", sweepable=False)


SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "model": ModelConfig,
    "train": TrainConfig,
    "match": MatchConfig,
    "sweep": SweepConfig,
    "run": RunConfig,
    "output": OutputConfig,
}


@dataclass(frozen=True)
class DeepConfig:
    """A whole deep config; sweep axes live in ``axes`` as ((dotted name, values), ...)."""

    study: str = "deep"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    match: MatchConfig = field(default_factory=MatchConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    run: RunConfig = field(default_factory=RunConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    axes: tuple = ()

    def to_dict(self) -> dict:
        """Plain nested dict (axes as lists), for summary.json."""
        return as_dict(self, SECTIONS)


def check_cross(cfg: DeepConfig) -> None:
    """Rules between fields of one resolved cell."""
    d = cfg.data
    if d.shape and d.dataset == "mnist" and tuple(d.shape) != (1, 28, 28):
        raise ConfigError("data.shape", f"data.shape must be [1, 28, 28] (or empty) for MNIST; "
                          f"got {list(d.shape)!r}. Remove data.shape or use dataset = \"teacher\".")
    shape = input_shape(d.dataset, d.shape)
    if cfg.model.arch in ("vgg", "resnet") and len(shape) != 3:
        raise ConfigError("data.shape", f"model.arch = {cfg.model.arch!r} needs a (channels, height, width) "
                          f"input; got data.shape = {list(d.shape)!r}. Give three sizes such as [1, 8, 8].")
    if d.dataset == "teacher" and (d.n_train == 0 or d.n_test == 0):
        raise ConfigError("data.n_train", f"data.n_train and data.n_test must be > 0 for the teacher dataset; "
                          f"got {d.n_train}, {d.n_test}. Set both, e.g. n_train = 4000, n_test = 2000.")


