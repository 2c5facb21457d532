"""Deep nets in torch: MNIST / teacher data, MLP, VGG and ResNet, permutation specs, matching, barriers.

torch is imported lazily: importing this package (or ``tsim``) does not import torch. Import the
submodules directly, e.g. ``from tsim.deep import models, spec, match, barrier``.

Modules
-------
config      frozen dataclasses for a ``study = "deep"`` TOML file -> DeepConfig
mnist       IDX reader (no download, no pickle), MNIST loader, deep ReLU teacher dataset
models      MLP, VGG, ResNet (width multiplier, norm = none | batch | layer)
spec        PermutationSpec (data), spec_for(model), check_spec, random_perms, invariance_error
match       apply_perm, weight_matching (coordinate descent + LAP), activation_matching
barrier     interpolate_state, reset_bn, evaluate, barrier -> BarrierResult
train       train(model, data, cfg, seed, device) -> TrainStats
plot        figures drawn from the result table
experiment  run(raw, out, quick, device, progress) -> summary dict (the CLI entry point)
"""
from __future__ import annotations

import importlib

__all__ = ["config", "mnist", "models", "spec", "match", "barrier", "train", "plot", "experiment", "run"]


def run(raw: dict, out, quick: bool = False, device: str | None = None, progress: bool = True) -> dict:
    """Run a deep study; see :func:`tsim.deep.experiment.run`."""
    from tsim.deep.experiment import run as _run

    return _run(raw, out, quick=quick, device=device, progress=progress)


def __getattr__(name: str):
    if name in __all__:
        return importlib.import_module(f"tsim.deep.{name}")
    raise AttributeError(f"module 'tsim.deep' has no attribute {name!r}")
