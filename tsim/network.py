"""Two-layer ReLU networks f(x) = c sum_j a_j relu(w_j . x)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .checks import as_float, as_generator, as_generators, as_int, fail, finite_array, show


def check_net(net, name: str = "S") -> "TwoLayer":
    """``net`` itself if it is a :class:`TwoLayer` (a Teacher is one); a TypeError naming ``name`` otherwise."""
    if not isinstance(net, TwoLayer):
        raise fail(name, "a TwoLayer network (or a Teacher)", show(net),
                   "Build one with tsim.TwoLayer(W, a) or tsim.Teacher(W).", TypeError)
    return net


def check_same_d(A: "TwoLayer", B: "TwoLayer", names: str = "S and T") -> None:
    """ValueError unless the two networks ``names`` (e.g. "S and T") have the same input dimension d."""
    if A.d != B.d:
        raise ValueError(f"{names} must have the same input dimension d; got d={A.d} and d={B.d}. "
                         "Networks only meet on the same inputs x in R^d.")


@dataclass(frozen=True, eq=False)
class TwoLayer:
    """A two-layer ReLU network f(x) = c sum_j a_j relu(w_j . x).

    Attributes
    ----------
    W : ndarray, shape (m, d)
        First-layer weights, rows w_j.
    a : ndarray, shape (m,)
        Output weights.
    c : float
        Output scale (1 for the unscaled net, 1/m for the mean-field scaling).
    """

    W: np.ndarray
    a: np.ndarray
    c: float = 1.0

    def __post_init__(self):
        W = np.array(finite_array(self.W, "W", ndim=2), order="C")  # own copy: it is frozen below
        m, d = W.shape
        if m < 1 or d < 1:
            raise fail("W", "of shape (m, d) with m >= 1 neurons and d >= 1 inputs", f"shape {W.shape}",
                       "Pass at least one neuron and one input dimension.")
        a = np.array(finite_array(self.a, "a", ndim=1), order="C")
        if a.shape[0] != m:
            raise fail("a", f"of shape ({m},) to match W {W.shape}", f"shape {a.shape}",
                       "Pass one output weight a_j per row w_j of W.")
        c = as_float(self.c, "c")
        W.setflags(write=False)
        a.setflags(write=False)
        object.__setattr__(self, "W", W)
        object.__setattr__(self, "a", a)
        object.__setattr__(self, "c", c)

    @property
    def m(self) -> int:
        """Width (number of hidden neurons)."""
        return self.W.shape[0]

    @property
    def d(self) -> int:
        """Input dimension."""
        return self.W.shape[1]

    def forward(self, X: np.ndarray) -> np.ndarray:
        """Outputs f(X) for finite X of shape (n, d) -> (n,)."""
        X = finite_array(X, "X", ndim=2)
        if X.shape[1] != self.d:
            raise fail("X", f"of shape (n, {self.d}) (d = the network's input dimension)", f"shape {X.shape}",
                       "Pass samples with as many columns as the network has inputs.")
        return self.c * (np.maximum(X @ self.W.T, 0.0) @ self.a)

    def permute(self, perm) -> "TwoLayer":
        """The same function with hidden neurons reordered: rows W[perm], a[perm]."""
        perm = check_perm(perm, self.m)
        return TwoLayer(self.W[perm], self.a[perm], self.c)

    def interpolate(self, other: "TwoLayer", t: float) -> "TwoLayer":
        """(1 - t) self + t other, parameter-wise (W, a and c); t a finite number (any, not only [0, 1])."""
        check_net(other, "other")
        check_same_d(self, other, "self and other")
        if other.m != self.m:
            raise fail("other", f"of the same width m={self.m} as self", f"m={other.m}",
                       "Pad the narrower net first (TwoLayer.pad).")
        t = as_float(t, "t")
        return TwoLayer((1 - t) * self.W + t * other.W, (1 - t) * self.a + t * other.a,
                        (1 - t) * self.c + t * other.c)

    def pad(self, m: int) -> "TwoLayer":
        """The same function with zero neurons appended up to width m (>= the current width)."""
        m = as_int(m, "m", low=self.m, fix=f"Pad to a width at least the current one, {self.m}.")
        W = np.zeros((m, self.d))
        a = np.zeros(m)
        W[: self.m] = self.W
        a[: self.m] = self.a
        return TwoLayer(W, a, self.c)

    @classmethod
    def init(cls, m: int, d: int, rng, sigma0: float = 1.0, a0: float = 1.0, c: float = 1.0) -> "TwoLayer":
        """Random init w_j ~ N(0, sigma0^2 I / d), a_j = a0.

        ``rng`` is a numpy Generator or an integer seed; see :func:`init_ensemble`.
        """
        W, a = init_ensemble(1, m, d, [as_generator(rng, "rng")], sigma0, a0)
        return cls(W[0], a[0], c)


def init_ensemble(E: int, m: int, d: int, rngs, sigma0: float = 1.0, a0: float = 1.0):
    """E independent inits, W (E, m, d) with w_j ~ N(0, sigma0^2 I/d), a (E, m) = a0.

    Parameters
    ----------
    E, m, d : int >= 1
        Students, width, input dimension.
    rngs : sequence of E numpy Generators or integer seeds
        One per student, so that a student's init depends only on its own seed (a single
        Generator or seed is accepted for E = 1). Student e draws ``rngs[e].standard_normal((m, d))``.
    sigma0 : float > 0
    a0 : float
        The initial output weight of every neuron.
    """
    E = as_int(E, "E", low=1, fix="Pass the number of students as a whole number.")
    m = as_int(m, "m", low=1, fix="Pass the width as a whole number of neurons.")
    d = as_int(d, "d", low=1, fix="Pass the input dimension as a whole number.")
    gens = as_generators(rngs, E)
    sigma0 = as_float(sigma0, "sigma0", low=0, open_low=True)
    a0 = as_float(a0, "a0")
    W = np.stack([r.standard_normal((m, d)) * (sigma0 / np.sqrt(d)) for r in gens])
    a = np.full((E, m), a0)
    return np.ascontiguousarray(W), a


def check_perm(perm, m: int) -> np.ndarray:
    """Validate a permutation of range(m) (an integer array); return it as an int64 array."""
    m = as_int(m, "m", low=0)
    rule, fix = f"a permutation of range({m})", f"Pass an integer array holding each of 0..{m - 1} once."
    try:
        arr = np.asarray(perm)
    except ValueError:  # ragged
        raise fail("perm", rule, show(perm), fix) from None
    if arr.shape != (m,) or not np.issubdtype(arr.dtype, np.integer) \
            or not np.array_equal(np.sort(arr), np.arange(m)):
        raise fail("perm", rule, show(arr), fix)
    return arr.astype(np.int64)
