"""Study routines of the alignment toolbox; a config's ``study`` names one (see tsim.studies).

Each routine takes a resolved Config and pair indices and returns flat rows (scalars only):

- ``trajectory``: two students per pair with ``align.checkpoints`` checkpoints (step 0, then
  geometrically spaced); one row per
  checkpoint with the barrier under the single permutation found at checkpoint ``align.perm_at``
  (-1 = end of training), under per-step matching, and unaligned.
- ``multi``: ``align.k`` students per pair (a "group"); for each method in ``align.methods``
  the networks are merged (iterated matching to the mean of the others); one row per group with
  the simplex barrier, the k-average barrier, and pairwise barriers under the shared permutations
  vs pairwise-optimal ones (strong connectivity).
- ``pruning``: two IMP-with-rewinding sequences per pair; one row per sparsity level with the
  barrier under the permutation of level ``align.perm_at`` vs per-level matching.
- ``singular``: one row per rank r of W with singular values and |cos| of the r-th singular
  vectors before/after weight matching, plus the L2 distances before/after (same in every row).
- ``methods``: one row per pair with barrier, teacher agreement, ties and time of each method in
  ``align.methods`` ("optimal" only when m <= align.max_m and tsim.brute exists, else NaN).
"""
from __future__ import annotations

import time

import numpy as np

from .align import align, teacher_agreement
from .barrier import barrier
from .config import Config, ConfigError
from .data import labels, sample_inputs
from .losses import population_loss
from .multi import average_barrier, merge_many, merge_to_reference, simplex_barrier, strong_connectivity
from .network import TwoLayer, init_ensemble
from .sequences import prune_sequence, sequence_barriers
from .spectral import spectral_report
from .studies import make_teacher, output_scale, pair_row, step_sizes, student_rng, train_pairs
from .train import train_gd, train_population, train_sgd

MERGE_ITERS = 10  # sweeps of iterated matching in the multi study


def align_kwargs(cfg: Config, pair: int) -> dict:
    """Keyword arguments of tsim.align.align for a resolved config; rng seeded by (seed, pair)."""
    al = cfg.align
    kw = dict(inputs=cfg.teacher.inputs, rng=np.random.default_rng([cfg.sweep.seed, int(pair), 11]),
              ste_steps=al.ste_steps, ste_lr=al.ste_lr, ste_noise=al.ste_noise, grid=cfg.sweep.grid,
              max_m=al.max_m)
    if al.n_act > 0:
        kw["n"] = al.n_act
    return kw


def _side(i: int) -> int:
    """Seed slot of student i of a group: 0 and 1 as in train_pairs, 2 is the pair's data."""
    return i if i < 2 else i + 1


def train_group(cfg: Config, group: int, k: int, checkpoints=None):
    """Train k students of one group from independent inits (students 0, 1 as train_pairs' A, B)."""
    T = make_teacher(cfg)
    s, tr = cfg.student, cfg.train
    c = output_scale(cfg)
    rngs = [student_rng(cfg, group, _side(i)) for i in range(k)]
    W0, a0 = init_ensemble(k, s.m, T.d, rngs, s.sigma0, s.a0)
    lr = step_sizes(cfg, T, W0, a0, c)
    common = dict(lr=lr, steps=tr.steps, c=c, tol=tr.tol, train_a=s.train_a, record_every=tr.record_every,
                  checkpoints=checkpoints)
    if tr.method == "population":
        return T, train_population(W0, a0, T, inputs=cfg.teacher.inputs, **common)
    rng = student_rng(cfg, group, 2)
    X = sample_inputs(tr.n, T.d, cfg.teacher.inputs, rng)
    y = labels(T, X, tr.noise, rng)
    if tr.method == "gd":
        return T, train_gd(W0, a0, X, y, **common)
    return T, train_sgd(W0, a0, X, y, batch=tr.batch, rng=np.random.default_rng([cfg.sweep.seed, 7919, group]),
                        **common)


def _base(cfg: Config, p: int, res, idx) -> dict:
    """Common columns: those of every pair study, or for k networks the first two statuses and
    how many of the k diverged."""
    if len(idx) == 2:
        return pair_row(cfg, res, idx[0] // 2, p)
    st = [str(res.status[i]) for i in idx]
    return {"pair": int(p), "seed": cfg.sweep.seed, "m": cfg.student.m, "status_a": st[0], "status_b": st[1],
            "n_diverged": int(sum(s == "diverged" for s in st))}


def _checkpoints(res, e: int) -> list[TwoLayer]:
    """Student e at each checkpoint; a checkpoint after an early stop holds the final weights."""
    out = []
    for j in range(res.ckpt_steps.size):
        if np.all(np.isfinite(res.ckpt_W[e, j])):
            out.append(res.checkpoint(e, j))
        else:
            out.append(res.student(e))
    return out


# --------------------------------------------------------------------------- trajectory
def trajectory_steps(steps: int, K: int) -> np.ndarray:
    """Checkpoint steps: 0 and K - 1 geometrically spaced steps from 1 to ``steps`` (unique ints).

    Geometric spacing resolves the early phase where the alignment still changes.
    """
    return np.unique(np.concatenate([[0], np.round(np.geomspace(1, steps, K - 1))]).astype(np.int64))


def run_trajectory(cfg: Config, pairs) -> list[dict]:
    """Rows of the ``trajectory`` study: one per pair and checkpoint."""
    pairs = list(pairs)
    al, inputs = cfg.align, cfg.teacher.inputs
    ck = trajectory_steps(cfg.train.steps, al.checkpoints)
    if al.perm_at >= len(ck):
        raise ConfigError("align.perm_at", f"align.perm_at must be -1 or < {len(ck)} (distinct checkpoint steps "
                          f"for train.steps = {cfg.train.steps}); got {al.perm_at}. Lower align.perm_at.")
    T, res = train_pairs(cfg, pairs, checkpoints=ck)
    rows = []
    for k, p in enumerate(pairs):
        base = _base(cfg, p, res, (2 * k, 2 * k + 1))
        if "diverged" in (base["status_a"], base["status_b"]):
            rows.append({**base, "step": np.nan, "barrier_single": np.nan, "barrier_per_step": np.nan,
                         "barrier_naive": np.nan})
            continue
        sa, sb = _checkpoints(res, 2 * k), _checkpoints(res, 2 * k + 1)
        at = al.perm_at if al.perm_at >= 0 else len(ck) - 1
        sq = sequence_barriers(sa, sb, T, at=at, method=al.method, **align_kwargs(cfg, p))
        for j, step in enumerate(ck):
            rows.append({**base, "step": int(step), "perm_step": int(ck[at]), "method": al.method,
                         "barrier_single": float(sq.single[j]), "barrier_per_step": float(sq.per_step[j]),
                         "barrier_naive": float(sq.naive[j]), "n_tied": int(sq.n_tied[j]),
                         "n_tied_single": int(sq.n_tied_single), "perm_agree": float(sq.agree[j]),
                         "loss_a": population_loss(sa[j], T, inputs), "loss_b": population_loss(sb[j], T, inputs)})
    return rows


# --------------------------------------------------------------------------- multi
def run_multi(cfg: Config, pairs) -> list[dict]:
    """Rows of the ``multi`` study: one per group of k networks."""
    al, inputs, grid = cfg.align, cfg.teacher.inputs, cfg.sweep.grid
    methods = [m for m in al.methods if m != "optimal"]
    rows = []
    for p in pairs:
        T, res = train_group(cfg, p, al.k)
        row = _base(cfg, p, res, range(al.k))
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


# --------------------------------------------------------------------------- pruning
def run_pruning(cfg: Config, pairs) -> list[dict]:
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
        rngs = [student_rng(cfg, p, 0), student_rng(cfg, p, 1)]
        W0, a0 = init_ensemble(2, s.m, T.d, rngs, s.sigma0, s.a0)
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


# --------------------------------------------------------------------------- singular vectors
def run_singular(cfg: Config, pairs) -> list[dict]:
    """Rows of the ``singular`` study: one per pair and rank of W."""
    pairs = list(pairs)
    T, res = train_pairs(cfg, pairs)
    inputs, grid = cfg.teacher.inputs, cfg.sweep.grid
    rows = []
    for k, p in enumerate(pairs):
        base = _base(cfg, p, res, (2 * k, 2 * k + 1))
        if "diverged" in (base["status_a"], base["status_b"]):
            rows.append(base)
            continue
        A, B = res.student(2 * k), res.student(2 * k + 1)
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


# --------------------------------------------------------------------------- methods
def run_methods(cfg: Config, pairs) -> list[dict]:
    """Rows of the ``methods`` study: one per pair, barrier/agreement/ties/time of each method."""
    pairs = list(pairs)
    T, res = train_pairs(cfg, pairs)
    inputs, grid = cfg.teacher.inputs, cfg.sweep.grid
    rows = []
    for k, p in enumerate(pairs):
        row = _base(cfg, p, res, (2 * k, 2 * k + 1))
        if "diverged" in (row["status_a"], row["status_b"]):
            rows.append(row)
            continue
        A, B = res.student(2 * k), res.student(2 * k + 1)
        row.update(loss_a=population_loss(A, T, inputs), loss_b=population_loss(B, T, inputs),
                   barrier_naive=barrier(A, B, T, grid=grid, inputs=inputs).value)
        if "ste" in cfg.align.methods:
            import torch  # noqa: F401  (imported before the clock starts)
        for meth in cfg.align.methods:
            if meth == "optimal" and cfg.student.m > cfg.align.max_m:
                row.update({f"barrier_{meth}": np.nan, f"agree_{meth}": np.nan, f"n_tied_{meth}": -1,
                            f"time_{meth}": np.nan})
                continue
            t0 = time.perf_counter()
            r = align(A, B, meth, T=T, **align_kwargs(cfg, p))
            dt = time.perf_counter() - t0
            row.update({f"barrier_{meth}": barrier(A, r.B, T, grid=grid, inputs=inputs).value,
                        f"agree_{meth}": teacher_agreement(A, B, r.perm, T), f"n_tied_{meth}": r.n_tied,
                        f"time_{meth}": dt})
        rows.append(row)
    return rows


ROUTINES = {"trajectory": run_trajectory, "multi": run_multi, "pruning": run_pruning,
            "singular": run_singular, "methods": run_methods}
