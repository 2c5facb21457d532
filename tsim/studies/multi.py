"""``multi``: barriers among k >= 3 networks.

``align.k`` students per group; for each method in ``align.methods`` the networks are merged
(iterated matching to the mean of the others); one row per group with the simplex barrier, the
k-average barrier, and pairwise barriers under the shared permutations vs pairwise-optimal ones
(strong connectivity).
"""
from __future__ import annotations

import numpy as np

from ..alignment import average_barrier, merge_many, merge_to_reference, simplex_barrier, strong_connectivity
from ..losses import population_loss
from ._study import Study
from .steps import align_kwargs, train_students

MERGE_ITERS = 10  # sweeps of iterated matching


def group_row(cfg, res, group: int, k: int) -> dict:
    """Common columns of a group of k networks: the first two statuses and how many diverged."""
    st = [str(res.status[i]) for i in range(k)]
    return {"pair": int(group), "seed": cfg.sweep.seed, "m": cfg.student.m, "status_a": st[0], "status_b": st[1],
            "n_diverged": int(sum(s == "diverged" for s in st))}


def run(cfg, pairs) -> list[dict]:
    """Rows of the ``multi`` study: one per group of k networks."""
    al, inputs, grid = cfg.align, cfg.teacher.inputs, cfg.sweep.grid
    methods = [m for m in al.methods if m != "optimal"]
    rows = []
    for p in pairs:
        T, res = train_students(cfg, [p], k=al.k)
        row = group_row(cfg, res, p, al.k)
        row["k"] = al.k
        if row["n_diverged"]:
            rows.append(row)
            continue
        nets = [res.student(i) for i in range(al.k)]
        row["loss_mean"] = float(np.mean([population_loss(S, T, inputs) for S in nets]))
        row["simplex_naive"] = simplex_barrier(nets, T, grid=al.simplex_grid, inputs=inputs).value
        row["kavg_naive"] = average_barrier(nets, T, inputs)
        ref = merge_to_reference(nets, 0, "weight")
        row["simplex_ref"] = simplex_barrier(ref.nets, T, grid=al.simplex_grid, inputs=inputs).value
        row["kavg_ref"] = average_barrier(ref.nets, T, inputs)
        for meth in methods:
            kw = align_kwargs(cfg, p)
            rng = kw.pop("rng")
            mg = merge_many(nets, meth, max_iters=MERGE_ITERS, rng=rng, T=T, **kw)
            rest = {k: v for k, v in kw.items() if k not in ("inputs", "grid")}
            sc = strong_connectivity(nets, T, method=meth, grid=grid, inputs=inputs, merge=mg, rng=rng, **rest)
            row[f"simplex_{meth}"] = simplex_barrier(mg.nets, T, grid=al.simplex_grid, inputs=inputs).value
            row[f"kavg_{meth}"] = average_barrier(mg.nets, T, inputs)
            row[f"iters_{meth}"] = mg.iters
            row[f"converged_{meth}"] = bool(mg.converged)
            row[f"n_tied_{meth}"] = mg.n_tied
            for name, v in sc.summary().items():
                if name.startswith("naive"):
                    row[name] = v
                else:
                    row[f"{name}_{meth}"] = v
        rows.append(row)
    return rows


STUDY = Study("multi", run)
