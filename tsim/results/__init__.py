"""The results face: what a finished sweep becomes on disk.

- :mod:`~tsim.results.summary`: measured numbers (extrema, power-law fits, transitions, per-cell
  means) and versions; :func:`write_summary` writes ``summary.json`` in one schema for every study;
- :mod:`~tsim.results.figures` (two-layer) and :mod:`~tsim.results.deep_figures`: figures from
  the result table only; :func:`draw` picks by study;
- :mod:`~tsim.results.report`: a Markdown page of measured numbers beside the papers' claims.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from . import deep_figures, figures
from .summary import summarize, swept_columns, versions


def draw(df: pd.DataFrame, cfg, out: Path) -> list[Path]:
    """The figures ``cfg.output.plots`` asks for, written into ``out``; returns their paths."""
    if cfg.study == "deep":
        return deep_figures.draw(df, Path(out), cfg.output.plots, cfg.match.methods, swept_columns(cfg),
                                 cfg.output.title)
    return figures.draw(df, cfg.output.plots, Path(out), cfg)


def write_summary(out: Path, cfg, df: pd.DataFrame, *, config_file: str, quick: bool, wall_time_s: float,
                  figure_paths, cell_time_s: float | None = None) -> dict:
    """Write ``out/summary.json`` (the same keys for every study) and return it.

    Keys: study, config (resolved, axes as lists), config_file, quick, versions, seeds, rows,
    wall_time_s (this command's compute: a rerun that only redraws takes seconds), cell_time_s (the
    compute of every cell behind the rows, whichever command ran it; with N workers the sweep takes
    about cell_time_s / N), measured (:func:`tsim.results.summary.summarize`), figures.
    """
    summary = {"study": cfg.study, "config": cfg.to_dict(), "config_file": config_file, "quick": bool(quick),
               "versions": versions(cfg.study, cfg), "seeds": {"sweep.seed": cfg.sweep.seed, "pairs": cfg.sweep.pairs},
               "rows": int(len(df)), "wall_time_s": round(float(wall_time_s), 3),
               "cell_time_s": None if cell_time_s is None else round(float(cell_time_s), 3),
               "measured": summarize(df, cfg), "figures": [Path(f).name for f in figure_paths]}
    if cfg.study == "deep":
        summary["device"] = cfg.run.device
        summary["seeds"]["data.seed"] = cfg.data.seed
    else:
        summary["seeds"]["teacher.seed"] = cfg.teacher.seed
    (Path(out) / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary
