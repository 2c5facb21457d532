"""``deep``: the same pair study on MLP / VGG / ResNet in torch (MNIST or a deep ReLU teacher).

The routine itself lives in :mod:`tsim.deep.study` (torch is imported only under ``tsim.deep``);
this module registers it. :func:`prepare` runs once in the main process before any cell:

- it resolves ``run.device`` (``--device`` overrides it) into the config before cells are keyed,
  so a cpu and a cuda run never share a cell; the precision fields (``train.amp``,
  ``train.amp_dtype``, ``run.tf32``, ``run.deterministic``) are config fields, hence in every key;
- with cuda it sets ``CUBLAS_WORKSPACE_CONFIG`` (``:4096:8`` unless already set) before any CUDA
  work, so deterministic cuBLAS is possible in this process and in the workers (``--workers``,
  ``--dask local``) started after it, which inherit the environment.
"""
from __future__ import annotations

from dataclasses import replace

from ._study import Study


def run(cfg, pairs) -> list[dict]:
    """Rows of one resolved deep cell: one per seed pair (see :func:`tsim.deep.study.run_pair`)."""
    from ..deep.study import run_pairs

    return run_pairs(cfg, pairs)


def prepare(cfg, device: str | None):
    """The config with ``run.device`` resolved to "cpu" or "cuda" (``device`` overrides the config's);
    with cuda, ``CUBLAS_WORKSPACE_CONFIG`` is set in the environment before any CUDA work."""
    from ..deep.study import cublas_workspace, resolve_device

    resolved = resolve_device(device or cfg.run.device)
    if resolved == "cuda":
        cublas_workspace()
    return replace(cfg, run=replace(cfg.run, device=resolved))


STUDY = Study("deep", run, kind="deep", prepare=prepare)
