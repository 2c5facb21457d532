"""``methods``: alignment methods side by side on the same trained pairs.

One row per pair with barrier, teacher agreement, ties, time and ``certified_<method>`` of each
method in ``align.methods`` ("optimal" only when m <= align.max_m, else NaN). ``certified_<method>``:
True when the method's assignment came with an LP duality certificate (weight and activation
matching, :func:`tsim.match.solve_lap`), False when it fell back to an uncertified solver, None for
methods that solve no assignment. With both "weight" and
"barrier" (barrier-aware matching, :mod:`tsim.alignment.barrier_aware`) compared, the row also
has ``excess_weight_over_barrier`` = barrier_weight - barrier_barrier >= 0: how far weight
matching is above the best barrier found, on the same t-grid (0 when WM is kept).
"""
from __future__ import annotations

import time

import numpy as np

from ..alignment import align, teacher_agreement
from ..barriers import barrier
from ..losses import population_loss
from ._study import Study
from .steps import align_kwargs, diverged, trained_pairs


def run(cfg, pairs) -> list[dict]:
    """Rows of the ``methods`` study: one per pair, barrier/agreement/ties/time of each method."""
    T, _, trained = trained_pairs(cfg, pairs)
    inputs, grid = cfg.teacher.inputs, cfg.sweep.grid
    rows = []
    for p, row, A, B in trained:
        if diverged(row):
            rows.append(row)
            continue
        row.update(loss_a=population_loss(A, T, inputs), loss_b=population_loss(B, T, inputs),
                   barrier_naive=barrier(A, B, T, grid=grid, inputs=inputs).value)
        for meth in cfg.align.methods:
            if meth == "optimal" and cfg.student.m > cfg.align.max_m:
                row.update({f"barrier_{meth}": np.nan, f"agree_{meth}": np.nan, f"n_tied_{meth}": -1,
                            f"time_{meth}": np.nan, f"certified_{meth}": None})
                continue
            t0 = time.perf_counter()
            r = align(A, B, meth, T=T, **align_kwargs(cfg, p))
            dt = time.perf_counter() - t0
            row.update({f"barrier_{meth}": barrier(A, r.B, T, grid=grid, inputs=inputs).value,
                        f"agree_{meth}": teacher_agreement(A, B, r.perm, T), f"n_tied_{meth}": r.n_tied,
                        f"time_{meth}": dt, f"certified_{meth}": r.certified})
        rows.append(excess_over_barrier(row))
    return rows


def excess_over_barrier(row: dict) -> dict:
    """``row`` with excess_weight_over_barrier = barrier_weight - barrier_barrier when it has both."""
    if "barrier_weight" in row and "barrier_barrier" in row:
        row["excess_weight_over_barrier"] = row["barrier_weight"] - row["barrier_barrier"]
    return row


STUDY = Study("methods", run)
