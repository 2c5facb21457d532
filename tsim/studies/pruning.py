"""``pruning``: one permutation for two pruning sequences.

Two IMP-with-rewinding sequences per pair (population GD); one row per sparsity level with the
barrier under the permutation of level ``align.perm_at`` vs per-level matching.
"""
from __future__ import annotations

from ..alignment import prune_sequence, sequence_barriers
from ..errors import ConfigError
from ..network import TwoLayer
from ._study import Study
from .steps import align_kwargs, init_students, make_teacher, output_scale, step_sizes


def run(cfg, pairs) -> list[dict]:
    """Rows of the ``pruning`` study: one per pair and sparsity level (population GD only)."""
    if cfg.train.method != "population":
        raise ConfigError("train.method", f"study 'pruning' trains on the exact population loss; train.method "
                          f"must be 'population'; got {cfg.train.method!r}. Set train.method = \"population\".")
    al, s, inputs = cfg.align, cfg.student, cfg.teacher.inputs
    if al.rewind_step > cfg.train.steps:
        raise ConfigError("align.rewind_step", f"align.rewind_step must be <= train.steps ({cfg.train.steps}); "
                          f"got {al.rewind_step}. Lower align.rewind_step.")
    T = make_teacher(cfg)
    c = output_scale(cfg)
    rows = []
    for p in pairs:
        W0, a0 = init_students(cfg, T.d, [(p, 0), (p, 1)])
        lr = step_sizes(cfg, T, W0, a0, c)
        seqs = [prune_sequence(TwoLayer(W0[e], a0[e], c), T, levels=al.prune_levels, rate=al.prune_rate,
                               lr=float(lr[e]), steps=cfg.train.steps, rewind_step=al.rewind_step,
                               train_a=s.train_a, inputs=inputs, tol=cfg.train.tol) for e in range(2)]
        at = al.perm_at if al.perm_at >= 0 else al.prune_levels
        sq = sequence_barriers(seqs[0].nets, seqs[1].nets, T, at=at, method=al.method, **align_kwargs(cfg, p))
        for lev in range(al.prune_levels + 1):
            rows.append({"pair": int(p), "seed": cfg.sweep.seed, "m": s.m, "level": lev, "perm_level": at,
                         "method": al.method, "status_a": seqs[0].status[lev], "status_b": seqs[1].status[lev],
                         "sparsity": float(0.5 * (seqs[0].sparsity[lev] + seqs[1].sparsity[lev])),
                         "loss_a": float(seqs[0].loss[lev]), "loss_b": float(seqs[1].loss[lev]),
                         "barrier_single": float(sq.single[lev]), "barrier_per_step": float(sq.per_step[lev]),
                         "barrier_naive": float(sq.naive[lev]), "n_tied": int(sq.n_tied[lev]),
                         "perm_agree": float(sq.agree[lev])})
    return rows


STUDY = Study("pruning", run)
