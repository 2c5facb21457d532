"""``atlas``: the barrier modulo permutation of one regime, one row per pair and matching method.

A rate atlas (``experiments/rate_atlas.toml``) is one config with ``[[regime]]`` tables; each
regime is the base config with its overrides, and the grid is the union of the regimes' grids
(widths m and dimensions d). One cell computes, for every pair and every method of
``align.methods`` ("weight", "activation", "barrier", ...), the barrier of the exact population
loss on the linear path after that matching, and whether a zero-barrier permutation exists:

- ``atlas.source = "trained"``: the students of :func:`tsim.studies.steps.trained_pairs`, the same
  networks as in every other study. A zero-barrier permutation counts as found when the
  barrier-aware barrier is <= ``atlas.zero_tol`` x the mean endpoint loss + :data:`ROUNDING`
  (a stated tolerance: trained students are minima only up to their endpoint loss); NaN when
  "barrier" is not among the methods.
- ``atlas.source = "minima"``: global minima sampled directly (no training). Every neuron is
  zero or alpha_i w*_j, the alphas of type j summing to a*_j / (c a0), so f = f* exactly
  (relu is positively homogeneous); types are "uniform" on {zero, 1..M}, "dense" (no zero
  neurons) or "sparse" (zero with probability ``atlas.r``), every teacher type present, alphas
  of a type uniform on their simplex. This generalises :func:`theory.minima.sample_minimum`
  (orthonormal teacher, c = a0 = 1) to any teacher and output scale, with the same draws.
  Existence is exact: the Hall condition sum_j max(n_j^A, n_j^B) <= m
  (:func:`tsim.alignment.hall_slack`).

Rows: pair, seed, m, M, d (as :func:`tsim.studies.steps.pair_row`; training columns for trained
regimes), regime, source, matching, barrier (0 when <= :data:`ROUNDING`), t (its argmax), n_tied,
loss_a, loss_b, sparse_a, sparse_b, zero_exists (1.0 / 0.0 / NaN), hall_slack (minima; NaN for
trained), seconds (matching).
A diverged pair gets NaN barriers. :func:`reads` lists the config fields a regime reads; the
loader rejects any other field a regime (or the base) sets.
"""
from __future__ import annotations

import time
from dataclasses import fields

import numpy as np

from ..alignment import align, barrier_aware_matching, hall_slack
from ..barriers import barrier
from ..losses import population_loss
from ..network import TwoLayer
from ..sparsity import sparse_fraction
from ._study import Study
from .steps import (align_kwargs, diverged, group_rng, make_teacher, output_scale, test_losses, trained_pairs)

#: barriers at or below this count as 0 up to float64 rounding of the population loss
ROUNDING = 1e-12
TRIES = 10000  # draws of a type map before giving up (every teacher type must occur)


# --------------------------------------------------------------------------- sampled minima
def zero_probability(kind: str, M: int, r: float) -> float:
    """Probability that a neuron of a sampled minimum is zero: "uniform" 1/(M+1) (types uniform on
    {zero, 1..M}), "dense" 0, "sparse" r."""
    if kind == "uniform":
        return 1.0 / (M + 1)
    if kind == "dense":
        return 0.0
    if kind == "sparse":
        return float(r)
    raise ValueError(f"kind must be 'uniform', 'dense' or 'sparse'; got {kind!r}.")


def sample_types(m: int, M: int, rng: np.random.Generator, r: float = 0.0, tries: int = TRIES) -> np.ndarray:
    """Type of each neuron, shape (m,), in {0 (zero), 1..M}: uniform on 1..M, then zero with
    probability r, redrawn until every type 1..M occurs (the draws of theory.minima.sample_types)."""
    if M < 1 or m < M:
        raise ValueError(f"a global minimum needs m >= M >= 1; got m={m}, M={M}.")
    if not 0 <= r < 1:
        raise ValueError(f"r must be in [0, 1); got {r}.")
    for _ in range(tries):
        types = rng.integers(1, M + 1, size=m)
        if r > 0:
            types[rng.random(m) < r] = 0
        if np.unique(types[types > 0]).size == M:
            return types
    raise ValueError(f"could not draw a minimum with all M={M} types among m={m} neurons at r={r}; "
                     "lower r or raise m.")


def sample_minimum(T: TwoLayer, m: int, rng: np.random.Generator, r: float = 0.0, c: float = 1.0,
                   a0: float = 1.0) -> tuple[TwoLayer, np.ndarray]:
    """A global minimum of teacher T of width m, and its neuron types.

    w_i = alpha_i w*_j for a neuron of type j (0 for a zero neuron), a_i = a0, output scale c,
    (alpha_i)_{i of type j} ~ (a*_j c* / (c a0)) Dirichlet(1, ..., 1), so that
    c sum_i a0 relu(w_i . x) = sum_j c* a*_j relu(w*_j . x) = f*(x) exactly.

    Parameters
    ----------
    T : Teacher, W (M, d), a* > 0
    m : int >= M
    rng : Generator
    r : float in [0, 1)      zero probability of a neuron (:func:`zero_probability`)
    c, a0 : float            output scale and the common output weight (c a0 > 0)

    Returns
    -------
    S : TwoLayer, W (m, d), a (m,) = a0, c
    types : ndarray of int, shape (m,)
    """
    if not c * a0 > 0 or np.any(T.a * T.c <= 0):
        raise ValueError(f"sampled minima need c * a0 > 0 and a teacher with positive output weights; got "
                         f"c * a0 = {c * a0:g}.")
    types = sample_types(m, T.m, rng, r)
    W = np.zeros((m, T.d))
    for j in range(1, T.m + 1):
        idx = np.flatnonzero(types == j)
        alphas = rng.dirichlet(np.ones(idx.size))
        W[idx] = np.outer(alphas * (T.a[j - 1] * T.c / (c * a0)), T.W[j - 1])
    return TwoLayer(W, np.full(m, float(a0)), c), types


def minima_pairs(cfg, pairs):
    """(T, [(p, row, A, B, hall slack), ...]) of a "minima" regime: A from seed stream 0 of pair p,
    B from stream 1 (the streams of the students' inits)."""
    T = make_teacher(cfg)
    s = cfg.student
    r = zero_probability(cfg.atlas.minima, T.m, cfg.atlas.r)
    c = output_scale(cfg)
    out = []
    for p in pairs:
        A, ta = sample_minimum(T, s.m, group_rng(cfg, p, 0), r, c, s.a0)
        B, tb = sample_minimum(T, s.m, group_rng(cfg, p, 1), r, c, s.a0)
        row = {"pair": int(p), "seed": cfg.sweep.seed, "m": s.m, "M": cfg.teacher.M, "d": cfg.teacher.d,
               "status_a": "sampled", "status_b": "sampled"}
        out.append((int(p), row, A, B, hall_slack(ta, tb, T.m)))
    return T, out


# --------------------------------------------------------------------------- one pair
def matched(cfg, T, A: TwoLayer, B: TwoLayer, p: int, method: str) -> dict:
    """Barrier after one matching method: barrier, t, n_tied, seconds (and hall_slack for "barrier")."""
    inputs, grid = cfg.teacher.inputs, cfg.sweep.grid
    t0 = time.perf_counter()
    if method == "barrier":
        perm, _, info = barrier_aware_matching(A, B, T, inputs=inputs, grid=grid, max_sweeps=cfg.atlas.search_sweeps)
        n_tied = -1
    elif method == "optimal" and cfg.student.m > cfg.align.max_m:
        return {"barrier": np.nan, "t": np.nan, "n_tied": -1, "seconds": np.nan}
    else:
        res = align(A, B, method, T=T, **align_kwargs(cfg, p))
        perm, n_tied = res.perm, res.n_tied
    dt = time.perf_counter() - t0
    b = barrier(A, B, T, perm=perm, grid=grid, inputs=inputs)
    value = b.value if b.value > ROUNDING else 0.0  # float64 rounding of the losses is not a barrier
    return {"barrier": value, "t": b.t, "n_tied": int(n_tied), "seconds": dt}


def pair_rows(cfg, T, p: int, row: dict, A: TwoLayer, B: TwoLayer, slack) -> list[dict]:
    """One row per method of ``align.methods`` for pair p (NaN barriers when it diverged)."""
    a = cfg.atlas
    base = {**row, "regime": a.regime, "source": a.source, "sparse_a": sparse_fraction(A),
            "sparse_b": sparse_fraction(B), "hall_slack": np.nan if slack is None else float(slack)}
    bad = diverged(row)
    if bad:
        base.update(loss_a=np.nan, loss_b=np.nan)
    else:
        base.update(loss_a=population_loss(A, T, cfg.teacher.inputs), loss_b=population_loss(B, T, cfg.teacher.inputs))
    if a.source == "trained" and cfg.train.method != "population":
        base.update(zip(("test_loss_a", "test_loss_b"), test_losses(cfg, T, (A, B), p)))
    nan = {"barrier": np.nan, "t": np.nan, "n_tied": -1, "seconds": np.nan}
    rows = [{**base, "matching": meth, **(nan if bad else matched(cfg, T, A, B, p, meth))}
            for meth in cfg.align.methods]
    exists = np.nan
    if slack is not None:
        exists = float(slack >= 0)
    elif not bad and "barrier" in cfg.align.methods:
        ba = next(r["barrier"] for r in rows if r["matching"] == "barrier")
        exists = float(ba <= a.zero_tol * 0.5 * (base["loss_a"] + base["loss_b"]) + ROUNDING)
    for r in rows:
        r["zero_exists"] = exists
    return rows


def run(cfg, pairs) -> list[dict]:
    """Rows of the ``atlas`` study for one resolved cell (one regime, m, d) and the given pairs."""
    if cfg.atlas.source == "minima":
        T, sampled = minima_pairs(cfg, [int(p) for p in pairs])
        return [r for p, row, A, B, slack in sampled for r in pair_rows(cfg, T, p, row, A, B, slack)]
    T, _, trained = trained_pairs(cfg, pairs)
    return [r for p, row, A, B in trained for r in pair_rows(cfg, T, p, row, A, B, None)]


# --------------------------------------------------------------------------- what a regime reads
def _all(cfg, section: str) -> set[str]:
    return {f"{section}.{f.name}" for f in fields(getattr(cfg, section))}


def reads(cfg) -> set[str]:
    """Dotted names of the config fields one regime (a Config of study "atlas") reads.

    Every regime: teacher, sweep, output, the analysis fields of its measures, align.methods and
    the options of the methods it runs, atlas.regime/source/search_sweeps. Trained regimes: every
    student field, train.method/lr/lr_unit/steps/tol/record_every, train.n, noise and n_test on
    samples ("gd", "sgd"), train.batch for "sgd", atlas.zero_tol. Sampled minima: student.m,
    scale and a0 (the common output weight), atlas.minima, and atlas.r when minima = "sparse".
    """
    out = _all(cfg, "teacher") | _all(cfg, "sweep") | _all(cfg, "output")
    an = {"analysis.measures", "analysis.group_by", "analysis.y"}
    if {"power_law"} & set(cfg.analysis.measures):
        an |= {"analysis.fit_min_m", "analysis.n_boot"}
    if "transition" in cfg.analysis.measures:
        an |= {"analysis.transition_x", "analysis.transition_level"}
    out |= an | {"align.methods", "atlas.regime", "atlas.source", "atlas.search_sweeps"}
    meths = set(cfg.align.methods)
    if "activation" in meths:
        out.add("align.n_act")
    if "ste" in meths:
        out |= {"align.ste_steps", "align.ste_lr", "align.ste_noise"}
    if "optimal" in meths:
        out.add("align.max_m")
    if cfg.atlas.source == "minima":
        out |= {"student.m", "student.scale", "student.a0", "atlas.minima"}
        if cfg.atlas.minima == "sparse":
            out.add("atlas.r")
        return out
    out |= _all(cfg, "student") | {"atlas.zero_tol"}
    out |= {f"train.{k}" for k in ("method", "lr", "lr_unit", "steps", "tol", "record_every")}
    if cfg.train.method != "population":
        out |= {"train.n", "train.noise", "train.n_test"}
    if cfg.train.method == "sgd":
        out.add("train.batch")
    return out


STUDY = Study("atlas", run)
