"""``trajectory``: one permutation for whole training trajectories.

Two students per pair with ``align.checkpoints`` checkpoints (step 0, then geometrically spaced);
one row per checkpoint with the barrier under the single permutation found at checkpoint
``align.perm_at`` (-1 = end of training), under per-step matching, and unaligned.
"""
from __future__ import annotations

import numpy as np

from ..alignment import sequence_barriers
from ..errors import ConfigError
from ..losses import population_loss
from ._study import Study
from .steps import align_kwargs, checkpoints_of, diverged, pair_row, train_students


def trajectory_steps(steps: int, K: int) -> np.ndarray:
    """Checkpoint steps: 0 and K - 1 geometrically spaced steps from 1 to ``steps`` (unique ints).

    Geometric spacing resolves the early phase where the alignment still changes.
    """
    return np.unique(np.concatenate([[0], np.round(np.geomspace(1, steps, K - 1))]).astype(np.int64))


def run(cfg, pairs) -> list[dict]:
    """Rows of the ``trajectory`` study: one per pair and checkpoint."""
    pairs = list(pairs)
    al, inputs = cfg.align, cfg.teacher.inputs
    ck = trajectory_steps(cfg.train.steps, al.checkpoints)
    if al.perm_at >= len(ck):
        raise ConfigError("align.perm_at", f"align.perm_at must be -1 or < {len(ck)} (distinct checkpoint steps "
                          f"for train.steps = {cfg.train.steps}); got {al.perm_at}. Lower align.perm_at.")
    T, res = train_students(cfg, pairs, checkpoints=ck)
    rows = []
    for k, p in enumerate(pairs):
        base = pair_row(cfg, res, 2 * k, 2 * k + 1, p)
        if diverged(base):
            rows.append({**base, "step": np.nan, "barrier_single": np.nan, "barrier_per_step": np.nan,
                         "barrier_naive": np.nan})
            continue
        sa, sb = checkpoints_of(res, 2 * k), checkpoints_of(res, 2 * k + 1)
        at = al.perm_at if al.perm_at >= 0 else len(ck) - 1
        sq = sequence_barriers(sa, sb, T, at=at, method=al.method, **align_kwargs(cfg, p))
        for j, step in enumerate(ck):
            rows.append({**base, "step": int(step), "perm_step": int(ck[at]), "method": al.method,
                         "barrier_single": float(sq.single[j]), "barrier_per_step": float(sq.per_step[j]),
                         "barrier_naive": float(sq.naive[j]), "n_tied": int(sq.n_tied[j]),
                         "n_tied_single": int(sq.n_tied_single), "perm_agree": float(sq.agree[j]),
                         "loss_a": population_loss(sa[j], T, inputs), "loss_b": population_loss(sb[j], T, inputs)})
    return rows


STUDY = Study("trajectory", run)
