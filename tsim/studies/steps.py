"""The shared steps every two-layer study is built from: teacher, students, data, training, rows.

One helper trains students for every study (:func:`train_students`), so every field of
``[student]`` and ``[train]`` (init scale and its width exponent, output scale, a0, train_a, lr unit,
method, data, label noise, SGD batch) means the same thing in every study, and student i of group g
is the same network whichever study trains it.

Seeds. Every random draw comes from ``numpy.random.default_rng([sweep.seed, group, stream])``:
stream 0 and 1 are the inits of students 0 (A) and 1 (B) of the group, 2 its training data,
3 its test data, 4, 5, ... the inits of students 2, 3, ... (k-network studies); SGD minibatches of
student i use ``[sweep.seed, SGD_STREAM, group, stream(i)]``. A student's numbers therefore depend
only on (seed, group, i), not on how many groups a cell trains together.
"""
from __future__ import annotations

import numpy as np

from ..data import labels, sample_inputs
from ..losses import empirical_loss, hessian_max_eig
from ..network import TwoLayer, init_ensemble
from ..teacher import Teacher
from ..train import TrainResult, train_gd, train_population, train_sgd

DATA, TEST = 2, 3      # seed streams of a group's training and test data
SGD_STREAM = 7919      # first entry of the seeds of SGD minibatch draws


def make_teacher(cfg) -> Teacher:
    """The teacher of a resolved config."""
    t = cfg.teacher
    if t.kind == "orthonormal":
        return Teacher.orthonormal(t.M, t.d)
    return Teacher.random(t.M, t.d, seed=t.seed)


def output_scale(cfg) -> float:
    """c = 1 or 1/m."""
    return 1.0 if cfg.student.scale == "1" else 1.0 / cfg.student.m


def stream(i: int) -> int:
    """Seed stream of student i of a group: 0, 1 for A and B, then 4, 5, ... (2, 3 are the data)."""
    return i if i < 2 else i + 2


def group_rng(cfg, group: int, stream_: int) -> np.random.Generator:
    """The Generator of one seed stream of one group (pair) of a cell."""
    return np.random.default_rng([cfg.sweep.seed, int(group), int(stream_)])


def init_students(cfg, d: int, slots) -> tuple[np.ndarray, np.ndarray]:
    """Initial (W0 (E, m, d), a0 (E, m)) of the students ``slots`` = [(group, i), ...].

    w_j ~ N(0, s^2 I / d) with s = student.sigma0 * m^(-student.init_exponent); a_j = student.a0.
    """
    s = cfg.student
    rngs = [group_rng(cfg, g, stream(i)) for g, i in slots]
    return init_ensemble(len(rngs), s.m, d, rngs, s.sigma0 * s.m ** (-s.init_exponent), s.a0)


def step_sizes(cfg, T: Teacher, W0: np.ndarray, a0: np.ndarray, c: float) -> np.ndarray:
    """lr per student: train.lr, or train.lr * 2/lambda_max(init) when train.lr_unit = "critical"."""
    if cfg.train.lr_unit == "absolute":
        return np.full(W0.shape[0], cfg.train.lr)
    lams = np.array([hessian_max_eig(TwoLayer(W0[e], a0[e], c), T, cfg.teacher.inputs, cfg.student.train_a)
                     for e in range(W0.shape[0])])
    return cfg.train.lr * 2.0 / lams


def group_data(cfg, T: Teacher, group: int) -> tuple[np.ndarray, np.ndarray]:
    """Training sample (X (n, d), y (n,)) of a group: every student of the group sees it."""
    rng = group_rng(cfg, group, DATA)
    X = sample_inputs(cfg.train.n, T.d, cfg.teacher.inputs, rng)
    return X, labels(T, X, cfg.train.noise, rng)


def train_students(cfg, groups, k: int = 2, checkpoints=None) -> tuple[Teacher, TrainResult]:
    """Train k students for each group in ``groups`` as one ensemble; student i of group g is
    ensemble member ``groups.index(g) * k + i``.

    Parameters
    ----------
    cfg : a resolved two-layer Config (one grid cell)
    groups : sequence of int, the pair (group) indices
    k : students per group (2 for pair studies)
    checkpoints : steps at which to save weights (TrainResult.ckpt_W), or None
    """
    groups = [int(g) for g in groups]
    T = make_teacher(cfg)
    tr, c = cfg.train, output_scale(cfg)
    slots = [(g, i) for g in groups for i in range(k)]
    W0, a0 = init_students(cfg, T.d, slots)
    common = dict(lr=step_sizes(cfg, T, W0, a0, c), steps=tr.steps, c=c, tol=tr.tol,
                  train_a=cfg.student.train_a, record_every=tr.record_every, checkpoints=checkpoints)
    if tr.method == "population":
        return T, train_population(W0, a0, T, inputs=cfg.teacher.inputs, **common)
    X = np.empty((len(slots), tr.n, T.d))
    y = np.empty((len(slots), tr.n))
    for j, g in enumerate(groups):
        X[j * k:(j + 1) * k], y[j * k:(j + 1) * k] = group_data(cfg, T, g)
    if tr.method == "gd":
        return T, train_gd(W0, a0, X, y, **common)
    rngs = [np.random.default_rng([cfg.sweep.seed, SGD_STREAM, g, stream(i)]) for g, i in slots]
    return T, train_sgd(W0, a0, X, y, batch=tr.batch, rng=rngs, **common)


def pair_row(cfg, res: TrainResult, i: int, j: int, p: int) -> dict:
    """The columns every two-student study reports for pair p (students i and j of res)."""
    return {"pair": int(p), "seed": cfg.sweep.seed, "m": cfg.student.m, "M": cfg.teacher.M, "d": cfg.teacher.d,
            "lr_a": float(res.lr[i]), "lr_b": float(res.lr[j]),
            "status_a": str(res.status[i]), "status_b": str(res.status[j]),
            "steps_a": int(res.steps[i]), "steps_b": int(res.steps[j]),
            "train_loss_a": float(res.loss[i]), "train_loss_b": float(res.loss[j])}


def trained_pairs(cfg, pairs, checkpoints=None):
    """Train the pairs of a cell and return (T, res, [(p, row, A, B), ...]): per pair its index, the
    columns of :func:`pair_row` and the trained students A (2k) and B (2k + 1) of ``res``."""
    pairs = [int(p) for p in pairs]
    T, res = train_students(cfg, pairs, checkpoints=checkpoints)
    return T, res, [(p, pair_row(cfg, res, 2 * k, 2 * k + 1, p), res.student(2 * k), res.student(2 * k + 1))
                    for k, p in enumerate(pairs)]


def diverged(row: dict) -> bool:
    """True when student A or B of a row diverged (its barrier is then not measured)."""
    return "diverged" in (row.get("status_a"), row.get("status_b"))


def test_losses(cfg, T: Teacher, students, group: int) -> list[float]:
    """Empirical loss of each student on ``train.n_test`` fresh labelled samples (label noise
    included), drawn from the group's own test stream."""
    rng = group_rng(cfg, group, TEST)
    X = sample_inputs(cfg.train.n_test, T.d, cfg.teacher.inputs, rng)
    y = labels(T, X, cfg.train.noise, rng)
    return [empirical_loss(S, X, y) for S in students]


def align_kwargs(cfg, group: int) -> dict:
    """Keyword arguments of :func:`tsim.alignment.align` for a resolved config; rng seeded by (seed, group)."""
    al = cfg.align
    kw = dict(inputs=cfg.teacher.inputs, rng=np.random.default_rng([cfg.sweep.seed, int(group), 11]),
              ste_steps=al.ste_steps, ste_lr=al.ste_lr, ste_noise=al.ste_noise, grid=cfg.sweep.grid,
              max_m=al.max_m)
    if al.n_act > 0:
        kw["n"] = al.n_act
    return kw


def checkpoints_of(res: TrainResult, e: int) -> list[TwoLayer]:
    """Student e at each checkpoint; a checkpoint after an early stop holds the final weights."""
    return [res.checkpoint(e, j) if np.all(np.isfinite(res.ckpt_W[e, j])) else res.student(e)
            for j in range(res.ckpt_steps.size)]
