"""Deep nets in torch: MNIST / teacher data, MLP, VGG and ResNet, permutation specs, matching, barriers.

torch is imported lazily: importing this package (or ``tsim``) does not import torch. Import the
submodules directly, e.g. ``from tsim.deep import models, spec, match, barrier``. Deep configs
(``study = "deep"``) are ordinary studies: ``tsim run`` runs them through the shared sweep runner
(:mod:`tsim.studies.deep` registers :func:`tsim.deep.study.run_pairs`).

Modules
-------
mnist       IDX reader (no download, no pickle), MNIST loader, deep ReLU teacher dataset (numpy only)
models      MLP, VGG, ResNet (width multiplier, norm = none | batch | layer)
spec        PermutationSpec (data), spec_for(model), check_spec, apply_perm, random_perms, invariance_error
match       weight_matching (layer-by-layer start from the input side, then coordinate descent with
            exact LAPs, restarts within a work budget, best objective kept), activation_matching, sparsity
barrier     interpolate_state, reset_bn, evaluate, barrier -> PathBarriers (two tsim.BarrierResult)
train       train(model, X, y, ...) -> TrainStats
study       one grid cell of the ``deep`` study: train pairs, align, measure
"""
from __future__ import annotations

import importlib

__all__ = ["mnist", "models", "spec", "match", "barrier", "train", "study"]


def __getattr__(name: str):
    if name in __all__:
        return importlib.import_module(f"tsim.deep.{name}")
    raise AttributeError(f"module 'tsim.deep' has no attribute {name!r}")
