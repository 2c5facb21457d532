"""``lmc``: naive and weight-matched barriers of independently trained pairs.

Train ``sweep.pairs`` pairs of students from independent inits (both students of a pair see the
same data), then report per pair the naive and weight-matched barriers on the exact population
loss, endpoint losses, sparsity and training status (a diverged pair gets NaN barriers);
``certified_wm``: the weight matching came with an LP duality certificate of optimality.
"""
from __future__ import annotations

import numpy as np

from ..barriers import barrier
from ..losses import population_loss
from ..sparsity import effective_neurons, sparse_fraction
from ._study import Study
from .steps import diverged, test_losses, trained_pairs


def run(cfg, pairs) -> list[dict]:
    """Rows of the ``lmc`` study for one resolved cell and the given pair indices."""
    T, _, trained = trained_pairs(cfg, pairs)
    inputs, grid = cfg.teacher.inputs, cfg.sweep.grid
    rows = []
    for p, row, A, B in trained:
        if diverged(row):
            row.update(loss_a=np.nan, loss_b=np.nan, barrier_naive=np.nan, barrier_wm=np.nan, t_naive=np.nan,
                       t_wm=np.nan, n_tied=-1, certified_wm=None)
        else:
            naive = barrier(A, B, T, grid=grid, inputs=inputs)
            wm = barrier(A, B, T, align="weight", grid=grid, inputs=inputs)
            row.update(loss_a=population_loss(A, T, inputs), loss_b=population_loss(B, T, inputs),
                       barrier_naive=naive.value, barrier_wm=wm.value, t_naive=naive.t, t_wm=wm.t,
                       n_tied=wm.n_tied, certified_wm=wm.certified)
        if cfg.train.method != "population":
            row.update(zip(("test_loss_a", "test_loss_b"), test_losses(cfg, T, (A, B), p)))
        row.update(sparse_a=sparse_fraction(A), sparse_b=sparse_fraction(B),
                   eff_a=effective_neurons(A), eff_b=effective_neurons(B))
        rows.append(row)
    return rows


STUDY = Study("lmc", run)
