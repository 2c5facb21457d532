"""``deep``: the same pair study on MLP / VGG / ResNet in torch (MNIST or a deep ReLU teacher).

The routine itself lives in :mod:`tsim.deep.study` (torch is imported only under ``tsim.deep``);
this module registers it, and resolves ``run.device`` (``--device`` overrides it) into the config
before cells are keyed, so a cpu and a cuda run never share a cell.
"""
from __future__ import annotations

from dataclasses import replace

from ._study import Study


def run(cfg, pairs) -> list[dict]:
    """Rows of one resolved deep cell: one per seed pair (see :func:`tsim.deep.study.run_pair`)."""
    from ..deep.study import run_pairs

    return run_pairs(cfg, pairs)


def prepare(cfg, device: str | None):
    """The config with ``run.device`` resolved to "cpu" or "cuda" (``device`` overrides the config's)."""
    from ..deep.study import resolve_device

    return replace(cfg, run=replace(cfg.run, device=resolve_device(device or cfg.run.device)))


STUDY = Study("deep", run, kind="deep", prepare=prepare)
