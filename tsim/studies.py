"""Study routines: what one grid cell computes. A config's top-level ``study`` names one.

``lmc``: train ``sweep.pairs`` pairs of students from independent inits (both students of a
pair see the same data), then report per pair the naive and weight-matched barriers on the
exact population loss, endpoint losses, sparsity and training status.
"""
from __future__ import annotations

import numpy as np

from .barrier import barrier
from .config import Config, check_cross
from .data import labels, sample_inputs
from .losses import empirical_loss, hessian_max_eig, population_loss
from .network import TwoLayer, init_ensemble
from .sparsity import effective_neurons, sparse_fraction
from .teacher import Teacher
from .train import TrainResult, train_gd, train_population, train_sgd


def make_teacher(cfg: Config) -> Teacher:
    """The teacher of a resolved config (cross-field rules checked first)."""
    check_cross(cfg)
    t = cfg.teacher
    if t.kind == "orthonormal":
        return Teacher.orthonormal(t.M, t.d)
    return Teacher.random(t.M, t.d, seed=t.seed)


def output_scale(cfg: Config) -> float:
    """c = 1 or 1/m."""
    return 1.0 if cfg.student.scale == "1" else 1.0 / cfg.student.m


def student_rng(cfg: Config, pair: int, side: int) -> np.random.Generator:
    """The Generator of ``side`` (0 = student A, 1 = student B, 2 = the pair's training data,
    3 = its test data) of pair ``pair``."""
    return np.random.default_rng([cfg.sweep.seed, pair, side])


def step_sizes(cfg: Config, T: Teacher, W0: np.ndarray, a0: np.ndarray, c: float) -> np.ndarray:
    """lr per student: train.lr, or train.lr * 2/lambda_max(init) when train.lr_unit = "critical"."""
    if cfg.train.lr_unit == "absolute":
        return np.full(W0.shape[0], cfg.train.lr)
    lams = np.array([hessian_max_eig(TwoLayer(W0[e], a0[e], c), T, cfg.teacher.inputs, cfg.student.train_a)
                     for e in range(W0.shape[0])])
    return cfg.train.lr * 2.0 / lams


def train_pairs(cfg: Config, pairs, checkpoints=None) -> tuple[Teacher, TrainResult]:
    """Train students 2p (A) and 2p + 1 (B) for each p in ``pairs`` as one ensemble."""
    T = make_teacher(cfg)
    s, tr = cfg.student, cfg.train
    c = output_scale(cfg)
    rngs = [student_rng(cfg, p, side) for p in pairs for side in (0, 1)]
    W0, a0 = init_ensemble(len(rngs), s.m, T.d, rngs, s.sigma0 * s.m ** (-s.init_exponent), s.a0)
    lr = step_sizes(cfg, T, W0, a0, c)
    common = dict(lr=lr, steps=tr.steps, c=c, tol=tr.tol, train_a=s.train_a, record_every=tr.record_every,
                  checkpoints=checkpoints)
    if tr.method == "population":
        return T, train_population(W0, a0, T, inputs=cfg.teacher.inputs, **common)
    X = np.empty((len(rngs), tr.n, T.d))
    y = np.empty((len(rngs), tr.n))
    for k, p in enumerate(pairs):
        rng = student_rng(cfg, p, 2)
        Xp = sample_inputs(tr.n, T.d, cfg.teacher.inputs, rng)
        X[2 * k: 2 * k + 2] = Xp
        y[2 * k: 2 * k + 2] = labels(T, Xp, tr.noise, rng)
    if tr.method == "gd":
        return T, train_gd(W0, a0, X, y, **common)
    rng = np.random.default_rng([cfg.sweep.seed, 7919, *pairs])
    return T, train_sgd(W0, a0, X, y, batch=tr.batch, rng=rng, **common)


def pair_row(cfg: Config, res: TrainResult, k: int, p: int) -> dict:
    """The columns every two-student study reports for pair p (students 2k and 2k + 1 of res)."""
    i, j = 2 * k, 2 * k + 1
    return {"pair": int(p), "seed": cfg.sweep.seed, "m": cfg.student.m, "M": cfg.teacher.M, "d": cfg.teacher.d,
            "lr_a": float(res.lr[i]), "lr_b": float(res.lr[j]),
            "status_a": str(res.status[i]), "status_b": str(res.status[j]),
            "steps_a": int(res.steps[i]), "steps_b": int(res.steps[j]),
            "train_loss_a": float(res.loss[i]), "train_loss_b": float(res.loss[j])}


def test_losses(cfg: Config, T: Teacher, students, pair: int) -> list[float]:
    """Empirical loss of each student on ``train.n_test`` fresh labelled samples (label noise
    included), drawn from the pair's own Generator; ``loss_a``/``loss_b`` hold the exact value."""
    rng = student_rng(cfg, pair, 3)
    X = sample_inputs(cfg.train.n_test, T.d, cfg.teacher.inputs, rng)
    y = labels(T, X, cfg.train.noise, rng)
    return [empirical_loss(S, X, y) for S in students]


def run_lmc(cfg: Config, pairs) -> list[dict]:
    """Rows of the ``lmc`` study for one resolved cell and the given pair indices."""
    T, res = train_pairs(cfg, list(pairs))
    inputs = cfg.teacher.inputs
    rows = []
    for k, p in enumerate(pairs):
        A, B = res.student(2 * k), res.student(2 * k + 1)
        row = pair_row(cfg, res, k, p)
        if "diverged" in (row["status_a"], row["status_b"]):
            row.update(loss_a=np.nan, loss_b=np.nan, barrier_naive=np.nan, barrier_wm=np.nan, t_naive=np.nan,
                       t_wm=np.nan, n_tied=-1)
        else:
            naive = barrier(A, B, T, grid=cfg.sweep.grid, inputs=inputs)
            wm = barrier(A, B, T, align="weight", grid=cfg.sweep.grid, inputs=inputs)
            row.update(loss_a=population_loss(A, T, inputs), loss_b=population_loss(B, T, inputs),
                       barrier_naive=naive.value, barrier_wm=wm.value, t_naive=naive.t, t_wm=wm.t,
                       n_tied=wm.n_tied)
        if cfg.train.method != "population":
            row.update(zip(("test_loss_a", "test_loss_b"), test_losses(cfg, T, (A, B), p)))
        row.update(sparse_a=sparse_fraction(A), sparse_b=sparse_fraction(B),
                   eff_a=effective_neurons(A), eff_b=effective_neurons(B))
        rows.append(row)
    return rows


def _align_study(name: str):
    """Lazy wrapper of a routine in tsim.studies_align (which imports this module)."""

    def run(cfg: Config, pairs) -> list[dict]:
        from .studies_align import ROUTINES

        return ROUTINES[name](cfg, pairs)

    run.__name__ = f"run_{name}"
    return run


STUDY_ROUTINES = {"lmc": run_lmc}
STUDY_ROUTINES.update({name: _align_study(name) for name in ("trajectory", "multi", "pruning", "singular",
                                                              "methods")})
