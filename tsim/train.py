"""Training an ensemble of E students: GD on the exact population loss, GD/SGD on samples.

Every trainer takes initial weights W0 (E, m, d), a0 (E, m) and returns a :class:`TrainResult`.
A student whose loss becomes non-finite or exceeds ``blowup`` stops with status "diverged" and
keeps its last finite iterate; the other students go on.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._kernels.popgd import _train_population
from ._kernels.steps import STATUS_CONVERGED, STATUS_DIVERGED, STATUS_MAX_STEPS
from ._kernels.samplegd import _train_samples
from .losses import input_scale, teacher_energy
from .network import TwoLayer

STATUS_NAMES = {STATUS_MAX_STEPS: "max_steps", STATUS_CONVERGED: "converged", STATUS_DIVERGED: "diverged"}
BLOWUP = 1e6  # a loss above BLOWUP * max(initial loss, 1) counts as diverged


@dataclass(frozen=True)
class TrainResult:
    """Outcome of training E students.

    Attributes
    ----------
    W : ndarray, shape (E, m, d)      final (or last finite) first-layer weights
    a : ndarray, shape (E, m)         final output weights
    c : float                         output scale
    status : ndarray of str, (E,)     "converged" (loss <= tol), "max_steps" or "diverged"
    steps : ndarray of int, (E,)      steps taken
    loss : ndarray, shape (E,)        training loss at the returned weights
    curve : ndarray, shape (E, R)     loss every ``record_every`` steps (nan after a stop)
    curve_steps : ndarray, shape (R,)
    lr : ndarray, shape (E,)          step sizes used
    ckpt_steps : ndarray, shape (K,)  checkpoint steps (empty if none requested)
    ckpt_W : ndarray, shape (E, K, m, d) or None   weights at each checkpoint (nan if stopped before)
    ckpt_a : ndarray, shape (E, K, m) or None
    """

    W: np.ndarray
    a: np.ndarray
    c: float
    status: np.ndarray
    steps: np.ndarray
    loss: np.ndarray
    curve: np.ndarray
    curve_steps: np.ndarray
    lr: np.ndarray
    ckpt_steps: np.ndarray
    ckpt_W: np.ndarray | None = None
    ckpt_a: np.ndarray | None = None

    def student(self, e: int) -> TwoLayer:
        """Student e as a :class:`TwoLayer`."""
        return TwoLayer(self.W[e], self.a[e], self.c)

    def checkpoint(self, e: int, k: int) -> TwoLayer:
        """Student e at checkpoint k."""
        if self.ckpt_W is None:
            raise ValueError("no checkpoints were recorded; pass checkpoints=[...] to the trainer.")
        return TwoLayer(self.ckpt_W[e, k], self.ckpt_a[e, k], self.c)


def _prepare(W0, a0, lr, steps, tol, record_every, checkpoints):
    W = np.array(W0, dtype=np.float64, order="C")
    if W.ndim == 2:
        W = W[None]
    if W.ndim != 3:
        raise ValueError(f"W0 must have shape (E, m, d) or (m, d); got {np.shape(W0)}.")
    E, m, d = W.shape
    a = np.array(np.broadcast_to(np.asarray(a0, dtype=np.float64), (E, m)), order="C")
    if not (np.all(np.isfinite(W)) and np.all(np.isfinite(a))):
        raise ValueError("W0 and a0 must be finite.")
    lr = np.array(np.broadcast_to(np.asarray(lr, dtype=np.float64), (E,)), order="C")
    if not np.all(lr > 0) or not np.all(np.isfinite(lr)):
        raise ValueError(f"lr must be > 0 and finite; got {lr}.")
    if int(steps) < 1:
        raise ValueError(f"steps must be >= 1; got {steps}.")
    if tol < 0:
        raise ValueError(f"tol must be >= 0; got {tol}.")
    if int(record_every) < 1:
        raise ValueError(f"record_every must be >= 1; got {record_every}.")
    ck = np.unique(np.asarray([] if checkpoints is None else checkpoints, dtype=np.int64))
    if ck.size and (ck[0] < 0 or ck[-1] > steps):
        raise ValueError(f"checkpoints must lie in [0, steps={steps}]; got {ck}.")
    ckW = np.full((E, ck.size, m, d), np.nan)
    cka = np.full((E, ck.size, m), np.nan)
    return W, a, lr, ck, ckW, cka


def _result(W, a, c, out, lr, steps, record_every, ck, ckW, cka):
    status, done, final, curve = out
    return TrainResult(W=W, a=a, c=float(c), status=np.array([STATUS_NAMES[s] for s in status]),
                       steps=done, loss=final, curve=curve,
                       curve_steps=np.arange(curve.shape[1]) * record_every, lr=lr, ckpt_steps=ck,
                       ckpt_W=ckW if ck.size else None, ckpt_a=cka if ck.size else None)


def train_population(W0, a0, T: TwoLayer, *, lr, steps: int, c: float = 1.0, tol: float = 0.0,
                     train_a: bool = False, inputs: str = "gaussian", record_every: int = 100,
                     checkpoints=None) -> TrainResult:
    """GD on the exact population loss: theta <- theta - eta dL/dtheta, for E students at once.

    Parameters
    ----------
    W0 : ndarray, shape (E, m, d)   initial first layers (a (m, d) array means E = 1)
    a0 : ndarray, shape (E, m) or broadcastable   initial output weights
    T : Teacher
    lr : float or ndarray, shape (E,)   step size eta (per student if an array)
    steps : int                         maximum number of GD steps
    tol : float                         stop with "converged" once L <= tol
    train_a : bool                      also train a (otherwise fixed)
    inputs : "gaussian" or "sphere"     (the sphere loss is the Gaussian one / d)
    checkpoints : sequence of int       steps at which to store W and a
    """
    W, a, lr, ck, ckW, cka = _prepare(W0, a0, lr, steps, tol, record_every, checkpoints)
    if W.shape[2] != T.d:
        raise ValueError(f"students have d={W.shape[2]} but the teacher has d={T.d}.")
    scale = input_scale(inputs, T.d)
    tt = teacher_energy(T)
    blowup = BLOWUP * max(tt * scale, 1.0)
    out = _train_population(W, a, float(c), T.W * 1.0, T.a * T.c, tt, scale, lr, int(steps), float(tol),
                            bool(train_a), blowup, int(record_every), ck, ckW, cka)
    return _result(W, a, c, out, lr, steps, record_every, ck, ckW, cka)


def _train_on_samples(W0, a0, X, y, *, lr, steps, batch, rng, c, tol, train_a, record_every, checkpoints):
    W, a, lr, ck, ckW, cka = _prepare(W0, a0, lr, steps, tol, record_every, checkpoints)
    E = W.shape[0]
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if X.ndim == 2:
        X = np.broadcast_to(X, (E,) + X.shape)
        y = np.broadcast_to(y, (E,) + y.shape)
    if X.ndim != 3 or X.shape[0] != E or X.shape[2] != W.shape[2] or y.shape != X.shape[:2]:
        raise ValueError(f"X must be (n, d) or (E, n, d) with d={W.shape[2]}, y (n,) or (E, n); "
                         f"got X {X.shape}, y {y.shape}.")
    X = np.ascontiguousarray(X)
    y = np.ascontiguousarray(y)
    if batch < 1:
        raise ValueError(f"batch must be >= 1; got {batch}.")
    seeds = rng.integers(0, 2 ** 63, size=E, dtype=np.uint64) if rng is not None else np.zeros(E, np.uint64)
    blowup = BLOWUP * max(0.5 * float(np.mean(y ** 2)), 1.0)
    out = _train_samples(W, a, float(c), X, y, lr, int(steps), int(batch), seeds, float(tol), bool(train_a),
                         blowup, int(record_every), ck, ckW, cka)
    return _result(W, a, c, out, lr, steps, record_every, ck, ckW, cka)


def train_gd(W0, a0, X, y, *, lr, steps: int, c: float = 1.0, tol: float = 0.0, train_a: bool = False,
             record_every: int = 100, checkpoints=None) -> TrainResult:
    """Full-batch GD on the empirical loss 1/(2n) sum (f(x_p) - y_p)^2.

    X : ndarray, shape (n, d) shared by all students, or (E, n, d) one set per student;
    y : ndarray, shape (n,) or (E, n). Other parameters as in :func:`train_population`.
    """
    n = np.shape(X)[-2]
    return _train_on_samples(W0, a0, X, y, lr=lr, steps=steps, batch=n, rng=None, c=c, tol=tol,
                             train_a=train_a, record_every=record_every, checkpoints=checkpoints)


def train_sgd(W0, a0, X, y, *, lr, steps: int, batch: int, rng: np.random.Generator, c: float = 1.0,
              tol: float = 0.0, train_a: bool = False, record_every: int = 100,
              checkpoints=None) -> TrainResult:
    """Minibatch SGD (batch drawn with replacement; one seed per student drawn from ``rng``).

    The recorded loss is the full training loss every ``record_every`` steps; ``tol`` is checked
    there. Other parameters as in :func:`train_gd`.
    """
    if batch > np.shape(X)[-2]:
        raise ValueError(f"batch ({batch}) must be <= n ({np.shape(X)[-2]}).")
    return _train_on_samples(W0, a0, X, y, lr=lr, steps=steps, batch=batch, rng=rng, c=c, tol=tol,
                             train_a=train_a, record_every=record_every, checkpoints=checkpoints)
