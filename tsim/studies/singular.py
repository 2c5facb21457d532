"""``singular``: singular-vector alignment before and after matching (Ito et al. 2024).

One row per pair and rank r of W with singular values and |cos| of the r-th singular vectors
before/after alignment, plus the L2 distances before/after (the same in every row of a pair).
"""
from __future__ import annotations

from ..alignment import align, spectral_report
from ..barriers import barrier
from ._study import Study
from .steps import align_kwargs, diverged, trained_pairs


def run(cfg, pairs) -> list[dict]:
    """Rows of the ``singular`` study: one per pair and rank of W."""
    T, _, trained = trained_pairs(cfg, pairs)
    inputs, grid = cfg.teacher.inputs, cfg.sweep.grid
    rows = []
    for p, base, A, B in trained:
        if diverged(base):
            rows.append(base)
            continue
        r = align(A, B, cfg.align.method, T=T, **align_kwargs(cfg, p))
        rep = spectral_report(A, B, r.perm)
        common = {**base, "method": cfg.align.method, "n_tied": r.n_tied,
                  "dist_before": rep.before.dist, "dist_after": rep.after.dist,
                  "rel_dist_before": rep.before.rel, "rel_dist_after": rep.after.rel,
                  "a_cos_before": rep.a_before, "a_cos_after": rep.a_after,
                  "barrier_naive": barrier(A, B, T, grid=grid, inputs=inputs).value,
                  "barrier_aligned": barrier(A, r.B, T, grid=grid, inputs=inputs).value}
        for rr in rep.rows():
            rows.append({**common, **rr})
    return rows


STUDY = Study("singular", run)
