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
from .checks import (as_bool, as_float, as_generator, as_generators, as_int, fail, finite_array, int_array,
                     is_rng_sequence, show)
from .losses import input_scale, teacher_energy
from .network import TwoLayer, check_net

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
        """Student e (0 <= e < E, or negative from the end) as a :class:`TwoLayer`."""
        e = self._e(e)
        return TwoLayer(self.W[e], self.a[e], self.c)

    def checkpoint(self, e: int, k: int) -> TwoLayer:
        """Student e at checkpoint k (the step ``ckpt_steps[k]``)."""
        if self.ckpt_W is None:
            raise ValueError("no checkpoints were recorded; pass checkpoints=[...] to the trainer.")
        K = self.ckpt_steps.size
        k = as_int(k, "k", low=-K, high=K - 1,
                   fix=f"Pass a checkpoint index; the checkpoint steps are {self.ckpt_steps.tolist()}.")
        e = self._e(e)
        return TwoLayer(self.ckpt_W[e, k], self.ckpt_a[e, k], self.c)

    def _e(self, e) -> int:
        """Student index e checked against E (negative counts from the end)."""
        E = self.W.shape[0]
        return as_int(e, "e", low=-E, high=E - 1, fix=f"Pass a student index of the E={E} students.")


def _check_lr(lr, E: int) -> np.ndarray:
    """lr as a float64 array (E,): a number, or one per student; every entry finite and > 0."""
    rule = f"a finite number > 0, or an array of E={E} of them (one per student)"
    fix = "Pass positive step sizes."
    arr = np.asarray(lr)
    if arr.dtype.kind not in "iuf":
        raise fail("lr", rule, show(lr), fix, TypeError)
    if arr.ndim > 1 or (arr.ndim == 1 and arr.shape[0] not in (1, E)):
        raise fail("lr", rule, f"shape {arr.shape}", fix)
    out = np.array(np.broadcast_to(arr.astype(np.float64), (E,)), order="C")
    if not (np.all(np.isfinite(out)) and np.all(out > 0)):
        raise fail("lr", rule, show(lr if arr.ndim == 0 else out), fix)
    return out


def _prepare(W0, a0, lr, steps, tol, record_every, checkpoints, c, train_a):
    """Validated copies of the common trainer arguments (see :func:`train_population`)."""
    W = np.array(finite_array(W0, "W0", ndim=(2, 3)), order="C")  # own copy: the kernels update it
    if W.ndim == 2:
        W = W[None]
    E, m, d = W.shape
    if min(E, m, d) < 1:
        raise fail("W0", "of shape (E, m, d) or (m, d) with E, m, d >= 1", f"shape {W.shape}",
                   "Pass at least one student, neuron and input dimension.")
    a0 = finite_array(a0, "a0")
    try:
        a = np.array(np.broadcast_to(a0, (E, m)), order="C")
    except ValueError:
        raise fail("a0", f"a number or an array broadcastable to (E, m) = {(E, m)}", f"shape {a0.shape}",
                   "Pass one output weight per neuron (and student).") from None
    lr = _check_lr(lr, E)
    steps = as_int(steps, "steps", low=1, fix="Pass a whole number of steps.")
    tol = as_float(tol, "tol", low=0, finite=False, fix="Pass a loss tolerance such as 1e-10 (0 never stops early).")
    record_every = as_int(record_every, "record_every", low=1, fix="Pass a whole number of steps.")
    ck = np.unique(int_array([] if checkpoints is None else checkpoints, "checkpoints", low=0, high=steps))
    c = as_float(c, "c")
    train_a = as_bool(train_a, "train_a")
    ckW = np.full((E, ck.size, m, d), np.nan)
    cka = np.full((E, ck.size, m), np.nan)
    return W, a, lr, steps, tol, record_every, ck, ckW, cka, c, train_a


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
    W0 : ndarray, shape (E, m, d)   initial first layers (a (m, d) array means E = 1), finite
    a0 : ndarray, shape (E, m) or broadcastable   initial output weights, finite
    T : Teacher                     (any TwoLayer) with the students' input dimension d
    lr : float or ndarray, shape (E,)   step size eta > 0 (per student if an array)
    steps : int >= 1                    maximum number of GD steps
    c : float                           output scale of the students
    tol : float >= 0                    stop with "converged" once L <= tol
    train_a : bool                      also train a (otherwise fixed)
    inputs : "gaussian" or "sphere"     (the sphere loss is the Gaussian one / d)
    record_every : int >= 1             steps between two entries of ``curve``
    checkpoints : sequence of int       steps in [0, steps] at which to store W and a

    Raises
    ------
    TypeError, ValueError
        An argument breaks the rule above; the message names it.
    """
    W, a, lr, steps, tol, record_every, ck, ckW, cka, c, train_a = _prepare(
        W0, a0, lr, steps, tol, record_every, checkpoints, c, train_a)
    check_net(T, "T")
    if W.shape[2] != T.d:
        raise ValueError(f"the students W0 and the teacher T must have the same input dimension d; "
                         f"got d={W.shape[2]} and d={T.d}. Pass W0 of shape (E, m, {T.d}).")
    scale = input_scale(inputs, T.d)
    tt = teacher_energy(T)
    blowup = BLOWUP * max(tt * scale, 1.0)
    out = _train_population(W, a, c, T.W * 1.0, T.a * T.c, tt, scale, lr, steps, tol,
                            train_a, blowup, record_every, ck, ckW, cka)
    return _result(W, a, c, out, lr, steps, record_every, ck, ckW, cka)


def _check_samples(X, y, E: int, d: int):
    """X (E, n, d) and y (E, n), C-contiguous, from X (n, d), y (n,) shared by all students or
    X (E, n, d), y (E, n) one sample per student; finite, n >= 1."""
    X = finite_array(X, "X", ndim=(2, 3))
    y = finite_array(y, "y", ndim=X.ndim - 1,
                     fix="Remove the samples with non-finite labels (and their rows of X).")
    if X.shape[-1] != d:
        raise ValueError(f"the students W0 and the samples X must have the same input dimension d; "
                         f"got d={d} and d={X.shape[-1]}. Pass X of shape (n, {d}).")
    if X.ndim == 3 and X.shape[0] != E:
        raise fail("X", f"of shape (n, d) or (E, n, d) with E={E} students", f"shape {X.shape}",
                   "Pass one sample shared by all students, or one per student.")
    if X.shape[-2] < 1:
        raise fail("X", "a sample of n >= 1 rows", f"shape {X.shape}", "Pass at least one sample.")
    if y.shape != X.shape[:-1]:
        raise fail("y", f"of shape {X.shape[:-1]} (one label per row of X)", f"shape {y.shape}",
                   "Pass y = f(X), one label per sample.")
    if X.ndim == 2:
        X = np.broadcast_to(X, (E,) + X.shape)
        y = np.broadcast_to(y, (E,) + y.shape)
    return np.ascontiguousarray(X), np.ascontiguousarray(y)


def _sgd_seeds(rng, E: int) -> np.ndarray:
    """One uint64 kernel seed per student: E draws from one Generator, or one draw from each of E."""
    if rng is None:
        raise fail("rng", f"a numpy Generator, a seed, or a sequence of E={E} of them (one per student)", "None",
                   "SGD draws its minibatches at random: pass numpy.random.default_rng(seed).", TypeError)
    if is_rng_sequence(rng):
        gens = as_generators(rng, E, "rng")
        return np.array([g.integers(0, 2 ** 63, dtype=np.uint64) for g in gens], dtype=np.uint64)
    return as_generator(rng, "rng").integers(0, 2 ** 63, size=E, dtype=np.uint64)


def _train_on_samples(W0, a0, X, y, *, lr, steps, batch, rng, c, tol, train_a, record_every, checkpoints):
    W, a, lr, steps, tol, record_every, ck, ckW, cka, c, train_a = _prepare(
        W0, a0, lr, steps, tol, record_every, checkpoints, c, train_a)
    E = W.shape[0]
    X, y = _check_samples(X, y, E, W.shape[2])
    n = X.shape[1]
    if batch is None:  # full batch (GD); the seeds are unused
        batch, seeds = n, np.zeros(E, np.uint64)
    else:
        batch = as_int(batch, "batch", low=1, high=n, fix=f"Pass a minibatch size between 1 and n = {n}.")
        seeds = _sgd_seeds(rng, E)
    blowup = BLOWUP * max(0.5 * float(np.mean(y ** 2)), 1.0)
    out = _train_samples(W, a, c, X, y, lr, steps, batch, seeds, tol, train_a,
                         blowup, record_every, ck, ckW, cka)
    return _result(W, a, c, out, lr, steps, record_every, ck, ckW, cka)


def train_gd(W0, a0, X, y, *, lr, steps: int, c: float = 1.0, tol: float = 0.0, train_a: bool = False,
             record_every: int = 100, checkpoints=None) -> TrainResult:
    """Full-batch GD on the empirical loss 1/(2n) sum (f(x_p) - y_p)^2.

    X : ndarray, shape (n, d) shared by all students, or (E, n, d) one set per student; finite.
    y : ndarray, shape (n,) or (E, n) accordingly; finite.
    Other parameters as in :func:`train_population`.
    """
    return _train_on_samples(W0, a0, X, y, lr=lr, steps=steps, batch=None, rng=None, c=c, tol=tol,
                             train_a=train_a, record_every=record_every, checkpoints=checkpoints)


def train_sgd(W0, a0, X, y, *, lr, steps: int, batch: int, rng, c: float = 1.0,
              tol: float = 0.0, train_a: bool = False, record_every: int = 100,
              checkpoints=None) -> TrainResult:
    """Minibatch SGD (batch drawn with replacement), each student from its own kernel seed.

    Parameters
    ----------
    batch : int in [1, n]
        Minibatch size.
    rng : numpy Generator, integer seed, or sequence of E Generators/seeds (required)
        One Generator (or seed) draws the E students' seeds at once,
        ``rng.integers(0, 2**63, size=E, dtype=np.uint64)``, so student e's noise depends on
        the whole ensemble. A sequence gives student e the seed
        ``rngs[e].integers(0, 2**63, dtype=np.uint64)``: its noise depends on its own Generator
        only (the same student trained in any ensemble gets the same minibatches). For E = 1
        both forms give the same numbers.

    The recorded loss is the full training loss every ``record_every`` steps; ``tol`` is checked
    there. Other parameters as in :func:`train_gd`.
    """
    return _train_on_samples(W0, a0, X, y, lr=lr, steps=steps, batch=batch, rng=rng, c=c, tol=tol,
                             train_a=train_a, record_every=record_every, checkpoints=checkpoints)
